"""How hybrid search merges what the words found with what the meaning found, and how a
query's words are matched.

Fusion by scores (a convex combination, Bruch et al., "An Analysis of Fusion Functions for
Hybrid Retrieval", 2023): every passage either list found is given both its scores: its cosine
similarity to the query (computed for the passages only the words found) and its BM25 (the
lowest of the words' list for the passages only the meaning found, which the words ranked lower
or not at all). Each is scaled to [0, 1] over the candidates (min-max), and the fused score is
`weight * cosine + (1 - weight) * bm25`. Unlike reciprocal rank fusion, which only sees ranks,
a passage that the words find far ahead of the rest stays ahead, while the meaning still
decides between passages the words find about as good; on bench/knowledge.py rank fusion made
hybrid worse than words alone at 100,000 passages (0.69 against 0.80), this does not.

Words matched by their beginning (truncation, the simplest stemmer: McNamee and Mayfield,
"Character N-Gram Tokenization for European Language Text Retrieval", 2004): a query word
longer than `prefix` characters matches every word that starts with its first `prefix`, so
"libraries" finds "library", "vaccines" finds "vaccins" and "trophies" finds "trophées" (accents
are already ignored). It finds more passages that only share a root, which the fusion then
sorts out with the meaning.

Word pairs (the sequential dependence model's ordered pairs: Metzler and Croft, "A Markov
Random Field Model for Term Dependencies", 2005): two words next to each other in the query
(neither a common word) are also looked for as a phrase, which BM25 scores as one more term,
so that a passage naming "Thomas Henry" or "public library" outranks one that has "Thomas" here
and "Henry" there. Names and places are what a question in another language still shares with
its passage: on bench/knowledge.py, pairs and 5-letter prefixes together took keyword recall@5
of those questions from 0.05 to 0.57 at 100,000 passages (either alone: 0.29).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

Key = TypeVar("Key")

VECTOR_WEIGHT = 0.4
WORD_PREFIX = 5


def _scaled(values: Mapping[Key, float], keys: Sequence[Key]) -> dict[Key, float]:
    """Each key's value scaled to [0, 1] over the values (min-max; all equal: 1); 0 for a key
    without one."""
    low, high = min(values.values(), default=0.0), max(values.values(), default=0.0)
    return {
        key: (1.0 if high <= low else (values[key] - low) / (high - low)) if key in values else 0.0
        for key in keys
    }


def fuse_scores(
    by_words: Sequence[tuple[Key, float]],
    cosines: Mapping[Key, float],
    weight: float = VECTOR_WEIGHT,
) -> list[tuple[Key, float]]:
    """(key, fused score in [0, 1]), best first, for the candidates of both lists.

    `by_words`: the words' list, (key, BM25 with higher better), best first. `cosines`: the
    cosine similarity of every candidate whose vector is comparable with the query (those of
    the meaning's list, and those of the words' list); a candidate without one (a base of
    another vector size, or a query without a vector) counts as the least similar, and one
    that the words did not find as the least matching. `weight`: the meaning's share, 0 to 1.
    """
    words = dict(by_words)
    keys = list(dict.fromkeys([*words, *cosines]))
    bm25 = _scaled(words, keys)
    meaning = _scaled(cosines, keys)
    fused = {key: weight * meaning[key] + (1.0 - weight) * bm25[key] for key in keys}
    # Equal scores keep the words' order, then the meaning's.
    order = {key: i for i, key in enumerate(keys)}
    return sorted(fused.items(), key=lambda item: (-item[1], order[item[0]]))


Term = tuple[tuple[str, ...], bool]  # words in a row (a phrase), and whether the last is a prefix


def match_terms(
    words: Sequence[str], pairs: Sequence[tuple[str, str]] = (), prefix: int = WORD_PREFIX
) -> list[Term]:
    """The terms to look for, each once: every word (by its first `prefix` characters when it
    is longer; 0: whole words), then every pair of words as a phrase of whole words."""
    terms: dict[Term, None] = {}
    for word in words:
        if prefix and len(word) > prefix:
            terms[((word[:prefix],), True)] = None
        else:
            terms[((word,), False)] = None
    for pair in pairs:
        terms[(pair, False)] = None
    return list(terms)
