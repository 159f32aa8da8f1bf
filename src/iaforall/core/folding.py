"""Text folded for search: case and accents ignored, so "CREPES" finds "crêpes"."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np
import numpy.typing as npt


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    decomposed = unicodedata.normalize("NFKD", ch)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def fold(text: str) -> str:
    """`text` decomposed (NFKD), without its combining marks, case-folded: what `_fold_char`
    does to each character, done on the whole string (no Python object per character, so a
    long text costs a few bytes per character, not a hundred)."""
    if text.isascii():
        return text.lower()  # ASCII is its own NFKD form, and casefold() is lower() there
    decomposed = unicodedata.normalize("NFKD", text)
    # Equal to folding each character apart: NFKD decomposes character by character and
    # only reorders marks (the ones dropped here), and casefold() knows no context.
    codes = np.frombuffer(decomposed.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    kept = codes[~_is_combining()[codes]]
    return kept.tobytes().decode("utf-32-le", "surrogatepass").casefold()


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


def strip_marks(text: str) -> str:
    """`text` in compatibility form (NFKD) without its combining marks: accents gone, case kept.
    What `fold` does but for the case."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _escape(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


@lru_cache(maxsize=1)
def _combining_ranges() -> tuple[tuple[int, int], ...]:
    """The code points of every combining mark, as inclusive ranges (read once: ~0.3 s)."""
    ranges: list[tuple[int, int]] = []
    for cp in range(0x300, 0x110000):
        if unicodedata.combining(chr(cp)):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return tuple(ranges)


@lru_cache(maxsize=1)
def _is_combining() -> npt.NDArray[np.bool_]:
    """One flag per code point (1.1 MB): is it a combining mark?"""
    flags = np.zeros(0x110000, dtype=np.bool_)
    for first, last in _combining_ranges():
        flags[first : last + 1] = True
    return flags


@lru_cache(maxsize=1)
def combining_marks_class() -> str:
    """A PostgreSQL regular-expression bracket expression of every combining mark: the
    characters `fold` drops after decomposing, so the database can drop the same ones."""
    return "[" + "".join(f"{_escape(a)}-{_escape(b)}" for a, b in _combining_ranges()) + "]"
