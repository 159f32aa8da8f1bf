"""Hybrid search's fusion by scores, and the terms a query's words become (pure functions)."""

from __future__ import annotations

import pytest

from iaforall.knowledge.fusion import fuse_scores, match_terms


def test_a_passage_the_words_find_far_ahead_stays_ahead() -> None:
    # By ranks alone (RRF), "a" (first by words, third by meaning) and "b" (second in both)
    # are all but tied; by scores, "a"'s lead in BM25 counts.
    words = [("a", 30.0), ("b", 10.0), ("c", 9.5)]
    cosines = {"x": 0.52, "b": 0.51, "a": 0.50, "c": 0.30}
    fused = fuse_scores(words, cosines, weight=0.4)
    assert [key for key, _ in fused] == ["a", "x", "b", "c"]
    scores = dict(fused)
    # Each scaled to 0-1 over the candidates; x, not found by the words, has no BM25.
    assert scores["a"] == pytest.approx(0.6 + 0.4 * 0.2 / 0.22)
    assert scores["x"] == pytest.approx(0.4)
    assert scores["b"] == pytest.approx(0.6 * 0.5 / 20.5 + 0.4 * 0.21 / 0.22)
    assert scores["c"] == pytest.approx(0.0)


def test_the_meaning_decides_between_passages_the_words_find_alike() -> None:
    words = [("a", 10.0), ("b", 9.9), ("c", 2.0)]
    cosines = {"a": 0.2, "b": 0.8, "c": 0.5}
    assert [key for key, _ in fuse_scores(words, cosines, weight=0.4)] == ["b", "a", "c"]
    assert [key for key, _ in fuse_scores(words, cosines, weight=0.0)] == ["a", "b", "c"]


def test_the_weight_goes_from_words_only_to_meaning_only() -> None:
    words = [("a", 5.0), ("b", 1.0)]
    cosines = {"b": 0.9, "c": 0.5, "a": 0.1}
    assert [k for k, _ in fuse_scores(words, cosines, weight=0.0)][:2] == ["a", "b"]
    assert [k for k, _ in fuse_scores(words, cosines, weight=1.0)] == ["b", "c", "a"]


def test_one_list_alone_and_nothing() -> None:
    assert fuse_scores([], {}) == []
    # No words found: the cosine order; no comparable vector: the words' order.
    assert [k for k, _ in fuse_scores([], {"a": 0.1, "b": 0.7})] == ["b", "a"]
    assert [k for k, _ in fuse_scores([("a", 2.0), ("b", 1.0)], {})] == ["a", "b"]
    # One passage by words, equal cosines: it counts fully, the others not at all.
    fused = dict(fuse_scores([("a", 3.0)], {"a": 0.5, "b": 0.5}, weight=0.4))
    assert fused == {"a": pytest.approx(1.0), "b": pytest.approx(0.4)}


def test_terms_prefixes_and_pairs() -> None:
    terms = match_terms(["libraries", "pau", "library"], [("jade", "andre")], prefix=4)
    assert terms == [(("libr",), True), (("pau",), False), (("jade", "andre"), False)]
    assert match_terms(["libraries", "pau"], prefix=0) == [
        (("libraries",), False),
        (("pau",), False),
    ]
    assert match_terms(["abcd", "abcde"], prefix=4) == [(("abcd",), False), (("abcd",), True)]
