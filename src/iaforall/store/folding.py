"""Text folded for search: case and accents ignored, so "CREPES" finds "crêpes"."""

from __future__ import annotations

import unicodedata
from functools import lru_cache


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    decomposed = unicodedata.normalize("NFKD", ch)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def fold(text: str) -> str:
    return "".join(_fold_char(ch) for ch in text)


def find_folded(text: str, query: str) -> int:
    """Where `query` starts in `text`, comparing folded forms; -1 if absent."""
    needle = fold(query)
    if not needle:
        return -1
    folded, starts = [], []
    for i, ch in enumerate(text):
        piece = _fold_char(ch)
        folded.append(piece)
        starts.extend([i] * len(piece))
    at = "".join(folded).find(needle)
    return -1 if at < 0 else starts[at]
