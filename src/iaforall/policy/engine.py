"""The decisions rules take on texts: a pure function, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from iaforall.policy.folded_text import FoldedText
from iaforall.policy.linear_regex import Haystack
from iaforall.policy.rules import Action, Rule, Rules, Stage

EXCERPT_CONTEXT = 30  # characters kept on each side of the matched text
EXCERPT_MATCH = 60  # at most this much of the matched text itself


@dataclass(frozen=True, slots=True)
class Checked:
    """One text to check, and where it comes from (`messages[2]`, `prompt`, `output`)."""

    where: str
    text: str


@dataclass(frozen=True, slots=True)
class Decision:
    rule_id: str
    description: str
    action: Action
    stage: Stage
    where: str
    excerpt: str

    def public(self) -> dict[str, Any]:
        """What the user is told (and what an API answer carries)."""
        return {
            "rule": self.rule_id,
            "description": self.description,
            "action": self.action,
            "applies_to": self.stage,
            "where": self.where,
            "excerpt": self.excerpt,
        }


def evaluate(
    rules: Rules, texts: Sequence[Checked], stage: Stage, language: str | None = None
) -> list[Decision]:
    """One decision per rule and text it matches, in rule order then text order.

    Linear in the texts' length whatever the rules: RE2 searches, folding on whole strings.
    How much text may be read at all is the caller's bound (`Policy`, `rules_max_chars`)."""
    active = rules.for_stage(stage)
    if not active or not texts:
        return []
    any_keywords = any(r.match.folded for r in active)
    any_regex = not all(r.match.folded for r in active)
    searched = [_Searched.of(t.text, keywords=any_keywords, regex=any_regex) for t in texts]
    decisions = []
    for rule in active:
        for checked, text in zip(texts, searched, strict=True):
            span = text.find(rule)
            if span is not None:
                decisions.append(
                    Decision(
                        rule.id,
                        rule.describe(language),
                        rule.action,
                        stage,
                        checked.where,
                        excerpt(checked.text, *span),
                    )
                )
    return decisions


def blocking(decisions: Sequence[Decision]) -> list[Decision]:
    return [d for d in decisions if d.action == "block"]


@dataclass(frozen=True, slots=True)
class _Searched:
    """One text as the rules search it: as written (regex rules) and folded (keyword rules),
    each prepared once for every rule."""

    as_written: Haystack | None
    folded: FoldedText | None
    folded_haystack: Haystack | None

    @classmethod
    def of(cls, text: str, *, keywords: bool, regex: bool) -> _Searched:
        folded = FoldedText.of(text) if keywords else None
        return cls(
            Haystack.of(text) if regex else None,
            folded,
            None if folded is None else Haystack.of(folded.text),
        )

    def find(self, rule: Rule) -> tuple[int, int] | None:
        """Where `rule` first matches, in the original text."""
        if not rule.match.folded:
            assert self.as_written is not None
            return rule.match.pattern.search(self.as_written)
        assert self.folded is not None and self.folded_haystack is not None
        span = rule.match.pattern.search(self.folded_haystack)
        return None if span is None else self.folded.original_span(*span)


def excerpt(text: str, start: int, end: int) -> str:
    """The matched text with a little context, on one line, "…" where it was cut."""
    matched = text[start:end]
    if len(matched) > EXCERPT_MATCH:
        matched = matched[:EXCERPT_MATCH] + "…"
    before_at = max(0, start - EXCERPT_CONTEXT)
    after_at = min(len(text), end + EXCERPT_CONTEXT)
    before = ("…" if before_at else "") + text[before_at:start]
    after = text[end:after_at] + ("…" if after_at < len(text) else "")
    return " ".join((before + matched + after).split())
