"""Operator regexes run on RE2: any pattern it compiles searches in linear time; what it
cannot compile is refused with RE2's reason."""

from __future__ import annotations

import time

import pytest

from iaforall.core.folding import fold
from iaforall.policy.linear_regex import (
    Haystack,
    RefusedPattern,
    compile_keywords,
    compile_regex,
)


def search(pattern: str, text: str) -> str | None:
    span = compile_regex(pattern).search(Haystack.of(text))
    return None if span is None else text[span[0] : span[1]]


def keywords(words: list[str], text: str) -> tuple[int, int] | None:
    return compile_keywords(words).search(Haystack.of(fold(text)))


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        (r"\b0[1-9](?:[ .]?\d{2}){4}\b", "appelle le 06 12 34 56 78 !", "06 12 34 56 78"),
        (r"(?:cat|dog)s?", "Two DOGS", "DOGS"),  # case ignored
        (r"crème", "CRÈME brûlée", "CRÈME"),  # case ignored beyond ASCII
        (r"(?P<user>\w+)@\w+\.\w+", "écris à me@home.fr", "me@home.fr"),
        (r"\p{Greek}+", "en grec : λόγος.", "λόγος"),
        (r"(a+)+$", "aaab", None),  # the exponential kind in Python: harmless here
        (r"[(+]+x", "a(+x", "(+x"),
    ],
)
def test_found_where_python_would(pattern: str, text: str, found: str | None) -> None:
    assert search(pattern, text) == found


def test_spans_are_characters_not_bytes() -> None:
    text = "é" * 10 + "😀 bombe " + "\ud800" + " bombe"  # 2 and 4 bytes, and a lone surrogate
    haystack = Haystack.of(text)
    assert compile_regex("bombe").search(haystack) == (12, 17)
    assert compile_regex(r"\?\s*bombe").search(haystack) == (18, 25)  # the surrogate is "?"


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)x\1", "invalid escape sequence: \\1 (back references are not supported)"),
        (r"(?P<x>a)(?P=x)", "back references are not supported"),
        (r"bomb(?!er)", "invalid perl operator: (?! (look-ahead is not supported)"),
        (r"(?=bomb)\w+", "look-ahead is not supported"),
        (r"(?<!\w)bomb", "invalid perl operator: (?<! (look-behind is not supported)"),
        (r"(?<=a)b", "look-behind is not supported"),
        (r"a++b", "possessive repeats are not needed"),
        (r"bomb\Z", "write \\z for the end of the text"),
        ("[a-", "missing ]: [a-"),
        ("a{2000}", "invalid repetition size"),
    ],
)
def test_what_re2_cannot_compile_is_refused_with_its_reason(pattern: str, reason: str) -> None:
    with pytest.raises(RefusedPattern) as refused:
        compile_regex(pattern)
    assert str(refused.value).startswith("RE2 cannot compile it: ")
    assert reason in str(refused.value)


@pytest.mark.parametrize(("pattern", "reason"), [("", "empty"), ("a*", "matches an empty")])
def test_a_pattern_that_matches_everything_is_refused(pattern: str, reason: str) -> None:
    with pytest.raises(RefusedPattern, match=reason):
        compile_regex(pattern)


@pytest.mark.parametrize(
    ("words", "text", "found"),
    [
        (["bomb"], "a bomber jacket", None),  # whole words only
        (["bomb"], "the bomb.", (4, 8)),
        (["bombe artisanale"], "Une BOMBE \u00a0\t ARTISANALE", (4, 23)),  # any spaces
        (["война"], "это война!", (4, 9)),  # words in any script: RE2's \b is ASCII only
        (["война"], "войнах", None),
        (["c++"], "I write c++ code", (8, 11)),  # a keyword ending in punctuation
        (["c++"], "c++11", None),
        (["pipe", "pipe bomb"], "a pipe bomb", (2, 11)),  # the longest keyword wins
        (["bomb"], "bomb", (0, 4)),  # at both ends of the text
        (["naïve"], "NAÏVE", (0, 5)),
    ],
)
def test_keywords(words: list[str], text: str, found: tuple[int, int] | None) -> None:
    assert keywords(words, text) == found


def seconds(pattern: str, text: str) -> float:
    compiled, haystack = compile_regex(pattern), Haystack.of(text)
    started = time.perf_counter()
    compiled.search(haystack)
    return time.perf_counter() - started


@pytest.mark.parametrize(
    ("pattern", "adversarial"),
    [
        # Both were accepted by the old guard on Python's re: 400 characters took 9 to 12 s.
        (r"\d+\s*\d+\s*\d+x", "1" * 100_000),
        (r"a*a*a*b", "a" * 100_000),
        (r"(\w+\s?)+x", "word " * 20_000),  # the exponential kind
        (r"\w+@\w+", "a" * 100_000),  # the quadratic kind
    ],
)
def test_adversarial_texts_cost_what_benign_ones_do(pattern: str, adversarial: str) -> None:
    benign = "z" * len(adversarial)
    # Best of three, measured in the same run: a ratio, so that a busy machine does not
    # fail it. Backtracking would be thousands of times slower (hours, on these sizes).
    ratio = min(seconds(pattern, adversarial) for _ in range(3)) / max(
        min(seconds(pattern, benign) for _ in range(3)), 1e-4
    )
    assert ratio < 50


def test_a_search_is_linear_in_the_text() -> None:
    pattern = r"\d+\s*\d+\s*\d+x"
    small = min(seconds(pattern, "1" * 100_000) for _ in range(3))
    large = min(seconds(pattern, "1" * 1_000_000) for _ in range(3))
    assert large / max(small, 1e-4) < 40  # 10 times the text; quadratic would be 100


def test_many_long_keywords_are_cut_into_patterns_searched_together() -> None:
    # 1,000 keywords of 100 Cyrillic letters: one pattern's automaton would outgrow its
    # memory on some texts (4 s on a million characters); several stay fast.
    letters = "дорогаяжизньвклмнпстуфхцчшщыэю"
    words = [
        "".join(letters[(i * 7 + j * j) % len(letters)] for j in range(100)) + str(i)
        for i in range(1000)
    ]
    pattern = compile_keywords(words)
    assert len(pattern.compiled) > 1
    last, first = words[-1], words[0]
    text = f"в начале {last}, потом {first} и {last}"
    assert keywords(words, text) == (9, 9 + len(last))  # the first in the text, any pattern
    assert keywords([*words, "в начале"], text) == (0, 8)
    assert keywords(["пото", "потом"], text) == (text.index("потом"), text.index("потом") + 5)
