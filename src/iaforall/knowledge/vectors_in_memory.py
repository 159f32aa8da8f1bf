"""Knowledge bases' vectors searched in memory: each base's vectors as one numpy matrix, kept
in a cache bounded in bytes (the least recently used dropped first), compared exactly with a
query (~0.2 ms per thousand vectors of 512 numbers here, where sqlite-vec takes ~0.7).

Used for every base on PostgreSQL, and on SQLite for the big bases (see index_sqlite.py)."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from iaforall.knowledge.index_backend import Found, Matrix


@dataclass(frozen=True, slots=True)
class Vectors:
    """A base's vectors in memory, with their rows' ids, and those ids' order (to find rows)."""

    ids: npt.NDArray[np.int64]
    vectors: npt.NDArray[np.float32]
    order: npt.NDArray[np.intp]
    sorted_ids: npt.NDArray[np.int64]

    @classmethod
    def of(cls, matrix: Matrix) -> Vectors:
        ids, vectors = matrix
        order = np.argsort(ids, kind="stable")
        return cls(ids, vectors, order, ids[order])

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.vectors.nbytes + self.order.nbytes + self.sorted_ids.nbytes

    def rows(self, wanted: Sequence[int]) -> Matrix:
        """The ids among `wanted` held here, and their vectors."""
        if not len(self.ids) or not len(wanted):
            return np.zeros(0, dtype=np.int64), self.vectors[:0]
        sorted_ids = self.sorted_ids
        asked = np.asarray(wanted, dtype=np.int64)
        at = np.minimum(np.searchsorted(sorted_ids, asked), len(sorted_ids) - 1)
        held = sorted_ids[at] == asked
        positions = self.order[at[held]]
        return self.ids[positions], self.vectors[positions]

    def nearest(self, query: npt.NDArray[np.float32], n: int) -> list[Found]:
        """The n rows nearest to the (unit) query by cosine similarity, best first."""
        ids, vectors = self.ids, self.vectors
        if not len(ids):
            return []
        # One thread: the product is bound by memory, and hybrid search runs the keywords on
        # the other core meanwhile (two BLAS threads then fight a third, and a busy engine,
        # for 2 cores).
        with _one_blas_thread():
            scores = vectors @ query
        top = np.argpartition(-scores, n - 1)[:n] if n < len(ids) else np.arange(len(ids))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Found(int(ids[i]), float(scores[i])) for i in top]


class VectorCache:
    """Each base's vectors as one matrix (with its rows' ids), the least recently used evicted
    beyond the budget (bytes). A base's version (raised by every change, by any process) tells
    when a matrix is out of date."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[int, Vectors]] = OrderedDict()

    def get(self, kb: str, version: int, read: Callable[[], Vectors]) -> Vectors:
        with self._lock:
            cached = self._entries.get(kb)
            if cached is not None and cached[0] == version:
                self._entries.move_to_end(kb)
                return cached[1]
        entry = read()  # read after the version: never older than it
        with self._lock:
            self._entries[kb] = (version, entry)
            self._entries.move_to_end(kb)
            while len(self._entries) > 1 and self._size() > self.budget:
                self._entries.popitem(last=False)
        return entry

    def _size(self) -> int:
        return sum(m.nbytes for _, m in self._entries.values())

    def drop(self, kb: str) -> None:
        with self._lock:
            self._entries.pop(kb, None)


@functools.cache
def _blas() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    controller = _blas()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield
