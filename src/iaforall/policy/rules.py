"""The operator's rules file (TOML), validated once at start.

A rule: `id`, a `description` shown to users (one text, or one per language), a `match`
(`keywords` or `regex`), where it `applies_to` (`input`: what the client sends; `output`: the
model's answer) and its `action` (`block`, `warn` or `log`). See docs/policy.md.
"""

from __future__ import annotations

import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from iaforall.core.folding import fold
from iaforall.policy.linear_regex import (
    LinearPattern,
    RefusedPattern,
    compile_keywords,
    compile_regex,
)

Action = Literal["block", "warn", "log"]
Stage = Literal["input", "output"]

MAX_RULES = 200
MAX_KEYWORDS = 1_000
DEFAULT_LANGUAGE = "en"

_SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1_000)]


class RulesFileError(Exception):
    """The rules file cannot be used; the message says where and why, for the operator."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Match(_Frozen):
    """Exactly one of: keywords (whole words, case and accents ignored) or a regex (RE2
    syntax, searched as written, case ignored)."""

    keywords: tuple[Keyword, ...] | None = Field(None, max_length=MAX_KEYWORDS)
    regex: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Match:
        if (self.keywords is None) == (self.regex is None):
            raise ValueError("give exactly one of 'keywords' (a list of words) or 'regex'")
        if self.keywords is not None and not self.keywords:
            raise ValueError("'keywords' is empty")
        return self

    @field_validator("keywords")
    @classmethod
    def _searchable(cls, words: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for word in words or ():
            if not fold(word).strip():
                raise ValueError(f"the keyword {word!r} cannot be searched")
        if words:
            try:
                compile_keywords(words)
            except RefusedPattern as exc:
                raise ValueError(str(exc)) from None
        return words

    @field_validator("regex")
    @classmethod
    def _linear(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                compile_regex(pattern)
            except RefusedPattern as exc:
                # As written in the file (a repr would double every backslash).
                raise ValueError(f"the regex '{pattern}' is refused: {exc}") from None
        return pattern

    @cached_property
    def pattern(self) -> LinearPattern:
        """The pattern searched, compiled once: the regex itself, or the keywords as whole
        words in folded text (searched in `fold(text)`, see `folded`)."""
        if self.regex is not None:
            return compile_regex(self.regex)
        return compile_keywords(self.keywords or ())

    @property
    def folded(self) -> bool:
        return self.regex is None


class Rule(_Frozen):
    id: str = Field(max_length=64)
    description: dict[str, Text]
    match: Match
    applies_to: tuple[Stage, ...] = ("input",)
    action: Action

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(
                f"{value!r} is not a valid id: lowercase letters and digits joined by '-' or "
                "'_', such as 'no-weapons'"
            )
        return value

    @field_validator("description", mode="before")
    @classmethod
    def _per_language(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {DEFAULT_LANGUAGE: value}
        if isinstance(value, dict):
            bad = [code for code in value if not _LANGUAGE.match(str(code))]
            if bad:
                raise ValueError(f"{bad[0]!r} is not a language code such as 'en' or 'fr'")
            if not value:
                raise ValueError("give a description: a text, or texts by language")
        return value

    @field_validator("applies_to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("applies_to")
    @classmethod
    def _some_stage(cls, value: tuple[Stage, ...]) -> tuple[Stage, ...]:
        if not value:
            raise ValueError("give 'input', 'output' or both")
        return tuple(dict.fromkeys(value))

    def describe(self, language: str | None = None) -> str:
        """The description in `language` (or its primary tag), else English, else the first."""
        wanted = (language or "").lower()
        for candidate in (wanted, wanted.split("-")[0], DEFAULT_LANGUAGE):
            for code, text in self.description.items():
                if code.lower() == candidate:
                    return text
        return next(iter(self.description.values()))


class Rules(_Frozen):
    """The active rules, in file order. No rules (the default) means no checks at all."""

    rules: tuple[Rule, ...] = Field((), max_length=MAX_RULES)

    @model_validator(mode="after")
    def _unique_ids(self) -> Rules:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"the id '{rule.id}' is used by two rules; ids must be unique")
            seen.add(rule.id)
        return self

    def __bool__(self) -> bool:
        return bool(self.rules)

    def for_stage(self, stage: Stage) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if stage in r.applies_to)


NO_RULES = Rules()


def parse_rules(text: str, source: str = "the rules file") -> Rules:
    """Rules from TOML text; RulesFileError naming the rule and the problem otherwise."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesFileError(f"{source} is not valid TOML: {exc}.") from None
    unknown = sorted(set(document) - {"rule"})
    if unknown:
        raise RulesFileError(
            f"{source}: unknown top-level key '{unknown[0]}'; rules are written as [[rule]] "
            "tables (see docs/policy.md)."
        )
    raw = document.get("rule", [])
    if not isinstance(raw, list):
        raise RulesFileError(f"{source}: 'rule' must be written as [[rule]] tables.")
    try:
        return Rules.model_validate({"rules": raw})
    except ValidationError as exc:
        raise RulesFileError(_explain(exc, raw, source)) from None


def load_rules(path: Path | None) -> Rules:
    """The rules in `path`; none when no file is configured."""
    if path is None:
        return NO_RULES
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesFileError(f"The rules file {path} cannot be read: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise RulesFileError(f"The rules file {path} is not UTF-8 text.") from None
    return parse_rules(text, f"The rules file {path}")


def _explain(exc: ValidationError, raw: list[Any], source: str) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        if loc[:1] == ["rules"] and len(loc) >= 2 and isinstance(loc[1], int):
            index = loc[1]
            entry = raw[index] if index < len(raw) else None
            rule_id = entry.get("id") if isinstance(entry, dict) else None
            who = f"rule '{rule_id}'" if rule_id else f"rule number {index + 1}"
            field = ".".join(str(p) for p in loc[2:] if not _is_type_tag(p))
            where = f"{who}, '{field}'" if field else who
        else:
            where = "rules"
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"{source}: {problems[0]}{more}."


def _is_type_tag(part: str | int) -> bool:
    return isinstance(part, str) and ("[" in part or part in {"str", "dict", "list", "tuple"})
