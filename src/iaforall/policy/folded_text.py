"""A text folded for keyword rules, and the way back from a match in it to the original text.

Folding changes lengths ("ß" is "ss", "é" written as e + accent is "e"), so a match in the
folded text is mapped back to the original to quote it. Keeping the origin of every folded
character costs a Python object per character (60 bytes each); this keeps only where each
block of `BLOCK` characters starts in the folded text, and re-folds prefixes of the one
block a match starts or ends in to find the exact place.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from iaforall.core.folding import fold

BLOCK = 4_096  # characters of the original text folded at once


@dataclass(frozen=True, slots=True)
class FoldedText:
    original: str
    text: str  # fold(original)
    starts: tuple[int, ...]  # where block i of the original starts in `text`

    @classmethod
    def of(cls, original: str) -> FoldedText:
        # Folding block by block gives fold(original): a character folds the same wherever
        # it is (see core/folding.py).
        blocks = [fold(original[at : at + BLOCK]) for at in range(0, len(original), BLOCK)]
        starts, at = [], 0
        for block in blocks:
            starts.append(at)
            at += len(block)
        return cls(original, "".join(blocks), tuple(starts))

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that folds to `text[start:end]` (whole characters:
        a match that starts inside the "ss" of "ß" starts at the "ß")."""
        if start >= len(self.text):
            return len(self.original), len(self.original)
        first = self._origin(start)
        return first, (self._origin(end - 1) + 1 if end > start else first)

    def _origin(self, at: int) -> int:
        """The index in the original of the character that folded character `at` came from."""
        block = bisect_right(self.starts, at) - 1
        first = block * BLOCK
        chars = self.original[first : first + BLOCK]
        # The first character whose folded prefix reaches past `at`: a dozen folds of the
        # block's prefixes, as folded lengths only grow with the prefix.
        return first + bisect_right(
            range(len(chars)), at - self.starts[block], key=lambda n: len(fold(chars[: n + 1]))
        )
