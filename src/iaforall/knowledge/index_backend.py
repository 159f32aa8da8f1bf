"""What the retrieval index's storage backends share: the rows they find, the bases they
hold, the unit vectors they store, and the small contract each backend (SQLite, PostgreSQL)
fulfils for `KnowledgeIndex` (index.py), which keeps the tables common to both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from iaforall.knowledge.fusion import Term

MAX_DIMENSIONS = 8192
Vector = Sequence[float] | npt.NDArray[np.floating[Any]]
Row = tuple[str, str, Vector]  # chunk id, text, vector
Matrix = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]  # rows' ids, their vectors


class IndexError_(ValueError):
    """A chunk or a query the index cannot take (wrong vector size, empty vector...)."""


@dataclass(frozen=True, slots=True)
class IndexedBase:
    """A knowledge base as the index knows it: its vectors' size, its version (raised by every
    change, by any process) and how many chunks it holds."""

    dimensions: int
    version: int
    chunks: int


@dataclass(frozen=True, slots=True)
class Found:
    """One row of the index found by a search, with its score (higher is better)."""

    id: int
    score: float


def unit_vector(vector: Vector, dimensions: int | None = None) -> npt.NDArray[np.float32]:
    """The vector scaled to length 1, as little-endian float32; refused when it is empty, too
    long, not of the base's size, not finite or all zeros."""
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if v.size == 0 or v.size > MAX_DIMENSIONS:
        raise IndexError_(f"A vector must have 1 to {MAX_DIMENSIONS} numbers, not {v.size}.")
    if dimensions is not None and v.size != dimensions:
        raise IndexError_(f"This knowledge base holds {dimensions}-number vectors, not {v.size}.")
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0.0:
        raise IndexError_("A vector must be finite and not all zeros.")
    unit: npt.NDArray[np.float32] = (v / norm).astype("<f4")
    return unit


class IndexBackend(Protocol):
    """Where one database keeps chunk vectors and words, and how it searches them. Every call
    runs on the caller's connection (inside its transaction when it writes)."""

    def new_base(self, connection: Connection, dimensions: int) -> None:
        """A base with vectors of this size is about to get its first chunks."""

    def insert(
        self,
        connection: Connection,
        kb_id: str,
        dimensions: int,
        rows: list[Row],
        vectors: list[npt.NDArray[np.float32]],
    ) -> None:
        """Store these chunks (already checked, their vectors made unit)."""

    def delete(self, connection: Connection, dimensions: int | None, ids: list[int]) -> None:
        """Delete these rows of the index (those of a base with vectors of this size)."""

    def searched_in_memory(self, base: IndexedBase) -> bool:
        """Whether this base's vectors are searched in a copy kept in memory."""

    def read_vectors(self, connection: Connection, kb_id: str, base: IndexedBase) -> Matrix:
        """All the vectors of a base (and their rows' ids), for the copy kept in memory."""

    def nearest(
        self, connection: Connection, kb_id: str, query: npt.NDArray[np.float32], n: int
    ) -> list[Found]:
        """The n rows of a base searched on disk nearest to the query, best first."""

    def cosines(
        self, connection: Connection, query: npt.NDArray[np.float32], ids: list[int]
    ) -> dict[int, float]:
        """The cosine similarity to the query of these rows, read from disk."""

    def keywords(
        self, connection: Connection, kbs: list[str], terms: list[Term], n: int, share: float
    ) -> list[Found]:
        """The n rows of these bases that best match the words, best first. `share`: how much
        of the index (its chunks) these bases are, 0 to 1."""
