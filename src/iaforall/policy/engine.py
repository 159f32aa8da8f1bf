"""The decisions rules take on texts: a pure function, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from iaforall.policy.rules import Action, Rule, Rules, Stage
from iaforall.policy.safe_regex import search_windows
from iaforall.store.folding import fold

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
    """One decision per rule and text it matches, in rule order then text order."""
    active = rules.for_stage(stage)
    if not active or not texts:
        return []
    folded = [_Folded.of(t.text) if any(r.match.folded for r in active) else None for t in texts]
    decisions = []
    for rule in active:
        for checked, fold_map in zip(texts, folded, strict=True):
            span = _find(rule, checked.text, fold_map)
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


def _find(rule: Rule, text: str, folded: _Folded | None) -> tuple[int, int] | None:
    if folded is None or not rule.match.folded:
        found = search_windows(rule.match.pattern, text)
        return None if found is None else found.span()
    found = search_windows(rule.match.pattern, folded.text)
    return None if found is None else folded.original_span(*found.span())


@dataclass(frozen=True, slots=True)
class _Folded:
    """A text folded (case and accents removed), with where each folded character came from."""

    text: str
    origins: tuple[int, ...]  # index in the original text of each folded character
    length: int

    @classmethod
    def of(cls, text: str) -> _Folded:
        pieces, origins = [], []
        for i, ch in enumerate(text):
            piece = fold(ch)
            pieces.append(piece)
            origins.extend([i] * len(piece))
        return cls("".join(pieces), tuple(origins), len(text))

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        if start >= len(self.origins):
            return self.length, self.length
        last = self.origins[end - 1] + 1 if end > start else self.origins[start]
        return self.origins[start], last


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
