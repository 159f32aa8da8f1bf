"""The words and word pairs a keyword search looks for: case- and accent-folded, without the
words too common to tell passages apart, at most MAX_QUERY_WORDS (the cost of a search grows
with them)."""

from __future__ import annotations

import itertools
import re

from iaforall.core.folding import fold

MAX_QUERY_WORDS = 32

_WORD = re.compile(r"\w+")
_PUNCTUATION = re.compile(r"[^\w\s'\u2019-]+")  # all but hyphens and apostrophes
# Words too common to tell passages apart (English and French, folded): a query's other words
# are searched without them, which also spares reading their long lists of passages.
_STOPWORDS = """
    a an and are as at be been but by can could did do does for from had has have how i if in
    into is it its many me much my no not of on or our so than that the their them then there
    these they this those to was we were what when where which who whom why will with would you
    your au aux avec ce ces cet cette combien comment dans de des du elle en est et etait eu il
    ils je la le les leur leurs lui ma mais me mes moi mon ne nos notre nous on ou par pas pour
    qu que quel quelle quelles quels qui sa se ses son sont sur ta te tes toi ton tu un une vos
    votre vous y a t d l s n c j m
"""
STOPWORDS = frozenset(_STOPWORDS.split())


def query_pairs(query: str) -> list[tuple[str, str]]:
    """The distinct pairs of words next to each other in the query (not across punctuation
    other than hyphens and apostrophes), case- and accent-folded, neither of them a common
    word, at most MAX_QUERY_WORDS."""
    pairs = [
        (a, b)
        for part in _PUNCTUATION.split(fold(query))
        for a, b in itertools.pairwise(_WORD.findall(part))
        if STOPWORDS.isdisjoint((a, b))
    ]
    return list(dict.fromkeys(pairs))[:MAX_QUERY_WORDS]


def query_words(query: str) -> list[str]:
    """The distinct words of a query, case- and accent-folded, without the most common ones
    (unless it has no others), at most MAX_QUERY_WORDS."""
    words = list(dict.fromkeys(_WORD.findall(fold(query))))
    telling = [w for w in words if w not in STOPWORDS]
    return (telling or words)[:MAX_QUERY_WORDS]
