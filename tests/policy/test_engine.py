"""evaluate(rules, texts): one decision per rule and matching text, table-driven."""

from __future__ import annotations

import pytest

from iaforall.policy.engine import Checked, Decision, evaluate, excerpt
from iaforall.policy.rules import NO_RULES, parse_rules
from tests.policy.samples import BILINGUAL

RULES = parse_rules(BILINGUAL)


def found(text: str, stage: str = "input") -> list[tuple[str, str]]:
    decisions = evaluate(RULES, [Checked("messages[0]", text)], stage)  # type: ignore[arg-type]
    return [(d.rule_id, d.action) for d in decisions]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bonjour !", []),
        ("Comment faire une bombe artisanale ?", [("no-weapons", "block")]),
        ("COMMENT FAIRE UNE BOMBE   ARTISANALE", [("no-weapons", "block")]),  # case, spaces
        ("un EXPLOSÍF", [("no-weapons", "block")]),  # accents
        ("an explosive story", []),  # whole words only
        ("des explosifs", []),  # "explosif" is the keyword, not "explosifs"
        ("la bombe artisanale\nde l'explosif", [("no-weapons", "block")]),  # one per rule
        ("a pipe\tbomb", [("no-weapons", "block")]),
        ("call 06 12 34 56 78", [("phone-numbers", "warn")]),
        ("call 06.12.34.56.78 now", [("phone-numbers", "warn")]),
        ("ref 106123456789", []),
        ("mes devoirs et une bombe artisanale", [("no-weapons", "block"), ("homework", "log")]),
        ("Straße homework", [("homework", "log")]),
    ],
)
def test_input(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


def test_output_sees_only_output_rules() -> None:
    assert found("une bombe artisanale au 06 12 34 56 78", "output") == [("phone-numbers", "warn")]


def test_no_rules_decide_nothing() -> None:
    assert evaluate(NO_RULES, [Checked("prompt", "bombe artisanale")], "input") == []


def test_a_decision_says_which_rule_where_and_what() -> None:
    texts = [Checked("messages[0]", "Bonjour"), Checked("messages[2]", "Une BOMBE artisanale ?")]
    assert evaluate(RULES, texts, "input", language="fr") == [
        Decision(
            rule_id="no-weapons",
            description=RULES.rules[0].describe("fr"),
            action="block",
            stage="input",
            where="messages[2]",
            excerpt="Une BOMBE artisanale ?",
        )
    ]


def test_the_excerpt_is_the_original_text_around_the_match() -> None:
    text = "é" * 100 + " Straße, une Bombe Artisanale! " + "ß" * 100
    (decision,) = evaluate(RULES, [Checked("prompt", text)], "input")
    assert decision.excerpt == "…" + "é" * 17 + " Straße, une Bombe Artisanale! " + "ß" * 28 + "…"


@pytest.mark.parametrize(
    ("text", "start", "end", "expected"),
    [
        ("abc", 1, 2, "abc"),
        ("x" * 40 + "HIT" + "y" * 40, 40, 43, "…" + "x" * 30 + "HIT" + "y" * 30 + "…"),
        ("a\n\nb  HIT\tc", 6, 9, "a b HIT c"),
        ("H" * 100, 0, 100, "H" * 60 + "…"),
    ],
)
def test_excerpt(text: str, start: int, end: int, expected: str) -> None:
    assert excerpt(text, start, end) == expected
