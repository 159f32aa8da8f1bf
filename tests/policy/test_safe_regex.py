"""Operator regexes: the kinds that can stall the server are refused; long texts stay fast."""

from __future__ import annotations

import re
import time

import pytest

from iaforall.policy.safe_regex import (
    MAX_MATCH,
    MAX_PATTERN,
    WINDOW,
    UnsafePattern,
    compile_safe,
    search_windows,
)


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?:ab)+",
        r"\b0[1-9](?:[ .]?\d{2}){4}\b",
        r"(?i)foo",
        r"(?P<x>a)b",
        r"(?<!\w)foo(?!\w)",
        r"[(+]+x",
        r"\w+@\w+\.\w+",
        r"(?:cat|dog)s?",
        r"a{2,5}b",
        r"(?:ab){3}",
        r"[\]]+\]",
        r"\(a+\)+",
    ],
)
def test_accepted(pattern: str) -> None:
    assert compile_safe(pattern).pattern == pattern


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a+)+$", "repeated group before '+'"),
        (r"(a|ab)*c", "repeated group before '*'"),
        (r"((a*))*", "repeated group"),
        (r"(\w+\s?)+x", "repeated group"),
        (r"(?:a|b){1,50}", "repeated group before '{1,50}'"),
        (r"(?:x?y){2,}", "repeated group before '{2,}'"),
        (r"(?:(?:ab)+c)+", "repeated group"),
        (r"(a)\1", "back references"),
        (r"(?P<x>a)(?P=x)", "back references"),
        (r"a*", "matches an empty text"),
        ("", "empty"),
        ("a" * (MAX_PATTERN + 1), "longer than"),
    ],
)
def test_refused(pattern: str, reason: str) -> None:
    with pytest.raises(UnsafePattern, match=re.escape(reason)):
        compile_safe(pattern)


def test_invalid_is_a_regex_error() -> None:
    with pytest.raises(re.error):
        compile_safe("[a-")


def test_a_quadratic_pattern_on_a_long_text_stays_fast() -> None:
    # Searched at once, this takes minutes (each start rescans the run of letters).
    pattern = compile_safe(r"\w+@\w+")
    text = "a" * 200_000
    started = time.perf_counter()
    assert search_windows(pattern, text) is None
    assert time.perf_counter() - started < 5
    assert search_windows(pattern, text + " me@home").group() == "me@home"


@pytest.mark.parametrize("at", [0, WINDOW - 3, WINDOW - MAX_MATCH, 3 * WINDOW + 7])
def test_matches_across_window_cuts_are_found_whole(at: int) -> None:
    text = "." * at + "bombe artisanale" + " y" * 3000
    found = search_windows(compile_safe(r"\bbombe artisanale\b"), text)
    assert found is not None and found.start() == text.index("bombe")


def test_a_word_cut_by_a_window_is_no_false_match() -> None:
    text = " " * (WINDOW - 4) + "bomber jacket" + " " * 50
    assert text[WINDOW - 4 : WINDOW] == "bomb"
    assert search_windows(compile_safe(r"\bbomb\b"), text) is None
