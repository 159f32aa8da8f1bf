"""Folded text for keyword rules: the same folding, character by character or whole; matches
mapped back to the original text; memory and time linear in the text."""

from __future__ import annotations

import random
import time
import tracemalloc

import pytest

from iaforall.core.folding import _fold_char, fold
from iaforall.policy.engine import Checked, evaluate
from iaforall.policy.folded_text import BLOCK, FoldedText
from iaforall.policy.rules import parse_rules

# Characters whose folded form is longer ("ß", "ﬁ", "ﷺ" is 18 letters), shorter (a base and
# its accents), or that are astral, lone surrogates or from other scripts.
ALPHABET = ["a", "Z", " ", "é", "e\u0301", "ß", "ﬁ", "ﷺ", "İ", "Σ", "한", "😀", "\ud800", "x\u0327"]

KEYWORD_RULES = parse_rules(
    '[[rule]]\nid = "k"\naction = "block"\ndescription = "d"\n'
    'match.keywords = ["bombe artisanale", "explosif"]\n'
)


def random_text(seed: int, length: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(ALPHABET) for _ in range(length))


def test_every_code_point_folds_alone_as_in_a_text() -> None:
    every = "".join(chr(cp) for cp in range(0x110000))
    assert fold(every) == "".join(_fold_char(ch) for ch in every)


@pytest.mark.parametrize("seed", range(3))
def test_matches_map_back_to_the_characters_they_came_from(seed: int) -> None:
    text = random_text(seed, 3 * BLOCK)
    folded = FoldedText.of(text)
    assert folded.text == fold(text)
    # The reference: the origin of every folded character, kept one by one.
    origins = [i for i, ch in enumerate(text) for _ in _fold_char(ch)]
    rng = random.Random(seed)
    for _ in range(60):
        start = rng.randrange(len(folded.text))
        end = rng.randrange(start + 1, min(len(folded.text), start + 300) + 1)
        assert folded.original_span(start, end) == (origins[start], origins[end - 1] + 1)


def test_a_keyword_across_a_block_cut_is_quoted_from_the_original() -> None:
    head = "ß" * (BLOCK - 5)  # each "ß" folds to "ss": folded offsets run ahead of the original
    text = head + " une BOMBE Artisanale, oui"
    (decision,) = evaluate(KEYWORD_RULES, [Checked("prompt", text)], "input")
    assert decision.excerpt.endswith("ß une BOMBE Artisanale, oui")


def peak_bytes_per_character(text: str) -> float:
    tracemalloc.start()
    try:
        decisions = evaluate(KEYWORD_RULES, [Checked("messages[0]", text)], "input")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [d.rule_id for d in decisions] == ["k"]
    return peak / len(text)


def test_a_long_message_costs_a_few_bytes_per_character() -> None:
    # Was ~60 bytes per character (a Python int for each): 1.9 GB for a 30 MB message.
    unit = "Une phrase écrite en français, sans rien de méchant ; Straße. "
    text = unit * (3_000_000 // len(unit)) + " une bombe artisanale"
    assert peak_bytes_per_character(text) < 16


def seconds(text: str) -> float:
    started = time.perf_counter()
    evaluate(KEYWORD_RULES, [Checked("messages[0]", text)], "input")
    return time.perf_counter() - started


def test_time_grows_linearly_with_the_text() -> None:
    small, large = random_text(7, 100_000), random_text(7, 1_000_000)
    ratio = min(seconds(large) for _ in range(2)) / min(seconds(small) for _ in range(2))
    assert ratio < 30  # 10 times the text
