"""Operator patterns on RE2: a search takes time linear in the text, whatever the pattern.

Python's `re` backtracks: `a*a*a*b` on 400 letters takes seconds, and no guard written around
it catches every such pattern. RE2 (google-re2) never backtracks, so any pattern it compiles is
safe on any text; what it cannot run in linear time (back references, look-ahead and
look-behind) it refuses to compile, and the rules file is refused at start with its reason.
Syntax: https://github.com/google/re2/wiki/Syntax (see docs/policy.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import re2

from iaforall.core.folding import fold

# RE2 caches the states of its automaton up to this much memory per pattern (8 MiB by
# default); past it, it restarts the cache, still in linear time but slower. A rule of 1,000
# long keywords needs more: 32 MiB keeps it under a second on a million characters.
MAX_MEMORY = 32 << 20

# Keywords per compiled pattern, in bytes of pattern: past ~100 KB (1,000 keywords of 100
# Cyrillic letters), the automaton of one pattern outgrows MAX_MEMORY on some texts and RE2
# falls back to its slower engine (4 s on a million characters instead of 0.07 s in two).
GROUP_BYTES = 50_000

# "Whole words": a keyword is neither preceded nor followed by a letter, mark, digit or "_"
# (what Python's \w means; RE2's \w and \b are ASCII only). RE2 has no look-around, so the
# pattern takes the neighbouring character and the keyword is its group 1.
_WORD_CHAR = r"[\p{L}\p{M}\p{N}_]"
_NOT_WORD_CHAR = r"[^\p{L}\p{M}\p{N}_]"
# Python's \s: Unicode spaces (folding turns most into " ", not all), and the separators.
_SPACES = r"[\s\p{Z}\x{1c}-\x{1f}\x{85}]+"


class RefusedPattern(ValueError):
    """A regex that cannot be a rule; the message says why, for the operator."""


@dataclass(frozen=True, slots=True)
class Haystack:
    """A text and its UTF-8 form, encoded once for every pattern searched in it."""

    text: str
    data: bytes

    @classmethod
    def of(cls, text: str) -> Haystack:
        # A lone surrogate (JSON "\\ud800") cannot be UTF-8: "?" takes its place, one
        # character for one, so offsets stay the same.
        return cls(text, text.encode("utf-8", "replace"))

    def characters(self, start: int, end: int) -> tuple[int, int]:
        """The character span of the byte span [start, end)."""
        first = len(self.data[:start].decode("utf-8"))
        return first, first + len(self.data[start:end].decode("utf-8"))


@dataclass(frozen=True, slots=True)
class LinearPattern:
    """Compiled patterns searched together: the first match of any of them, the longest where
    several start at the same place. `group` is the part of a match that is the matched text."""

    compiled: tuple[re2._Regexp[str], ...]
    group: int = 0

    def search(self, haystack: Haystack) -> tuple[int, int] | None:
        """The character span of the first match in the text, or None."""
        best: tuple[int, int] | None = None
        for compiled in self.compiled:
            found = compiled.search(haystack.data)
            if found is not None:
                start, end = found.span(self.group)
                if best is None or start < best[0] or (start == best[0] and end > best[1]):
                    best = (start, end)
        return None if best is None else haystack.characters(*best)


def _options(*, ignore_case: bool) -> re2.Options:
    options = re2.Options()
    options.case_sensitive = not ignore_case
    options.max_mem = MAX_MEMORY
    options.log_errors = False  # the reason goes to the operator in our message instead
    return options


def compile_regex(pattern: str) -> LinearPattern:
    """An operator's regex, case ignored; RefusedPattern saying why RE2 cannot take it."""
    if not pattern:
        raise RefusedPattern("the pattern is empty")
    try:
        compiled = re2.compile(pattern, _options(ignore_case=True))
    except re2.error as exc:
        raise RefusedPattern(_reason(exc)) from None
    if compiled.search(b"") is not None:
        raise RefusedPattern("the pattern matches an empty text, so it would match everything")
    return LinearPattern((compiled,))


def compile_keywords(words: Iterable[str]) -> LinearPattern:
    """Keywords as whole words in folded text (search it in `fold(text)`): spaces in a
    keyword match any run of spaces; the longest keyword wins where several start."""
    alternatives = sorted({_keyword(w) for w in words}, key=len, reverse=True)
    options = _options(ignore_case=False)
    compiled = []
    try:
        for group in _groups(alternatives):
            source = f"(?:^|{_NOT_WORD_CHAR})(" + "|".join(group) + f")(?:{_NOT_WORD_CHAR}|$)"
            compiled.append(re2.compile(source, options))
    except re2.error as exc:  # not with keywords of 100 characters at most, but say so
        raise RefusedPattern(f"the keywords cannot be searched: {_reason(exc)}") from None
    return LinearPattern(tuple(compiled), group=1)


def _groups(alternatives: list[str]) -> list[list[str]]:
    """The keywords cut into patterns of at most `GROUP_BYTES` each."""
    groups: list[list[str]] = [[]]
    size = 0
    for alternative in alternatives:
        length = len(alternative.encode("utf-8")) + 1
        if groups[-1] and size + length > GROUP_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(alternative)
        size += length
    return groups


def _keyword(word: str) -> str:
    return _SPACES.join(re2.escape(part) for part in fold(word).split())


# What a Python regex writer meets most, said in their words after RE2's own reason.
_HINTS = (
    *(
        (f"invalid escape sequence: \\{d}", "back references are not supported")
        for d in "123456789"
    ),
    ("invalid perl operator: (?P", "back references are not supported"),
    ("invalid perl operator: (?=", "look-ahead is not supported"),
    ("invalid perl operator: (?!", "look-ahead is not supported"),
    ("invalid perl operator: (?<", "look-behind is not supported"),
    ("invalid perl operator: (?>", "atomic groups are not needed: RE2 never backtracks"),
    *(
        (
            f"bad repetition operator: {op}+",
            "possessive repeats are not needed: RE2 never backtracks",
        )
        for op in "*+?"
    ),
    ("invalid escape sequence: \\Z", "write \\z for the end of the text"),
    ("pattern too large", f"at most {MAX_MEMORY >> 20} MiB once compiled"),
)


def _reason(exc: re2.error) -> str:
    """RE2's own reason (bytes), with a word on the Python features it does not have."""
    detail = exc.args[0] if exc.args else ""
    reason = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
    hint = next((f" ({h})" for start, h in _HINTS if reason.startswith(start)), "")
    return f"RE2 cannot compile it: {reason}{hint}"
