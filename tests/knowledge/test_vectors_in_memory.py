"""Vectors searched in memory, on their own: exact nearest rows, rows found by id, and a cache
bounded in bytes that reads a base again when its version changes."""

from __future__ import annotations

import numpy as np

from iaforall.knowledge.index_backend import Found
from iaforall.knowledge.vectors_in_memory import VectorCache, Vectors


def vectors(ids: list[int], rows: list[list[float]]) -> Vectors:
    matrix = np.asarray(rows, dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return Vectors.of((np.asarray(ids, dtype=np.int64), matrix))


def test_nearest_rows_best_first_and_rows_by_id() -> None:
    held = vectors([30, 10, 20], [[1, 0], [0, 1], [1, 1]])
    query = np.asarray([1, 0], dtype=np.float32)
    found = held.nearest(query, 2)
    assert [f.id for f in found] == [30, 20]
    assert found[0] == Found(30, 1.0)
    assert [f.id for f in held.nearest(query, 10)] == [30, 20, 10]
    ids, rows = held.rows([20, 99, 10])
    assert ids.tolist() == [20, 10] and rows.shape == (2, 2)
    assert held.rows([])[0].size == 0


def test_the_cache_keeps_to_its_budget_and_reads_a_new_version() -> None:
    one = vectors([1], [[1, 0]])
    cache = VectorCache(budget=one.nbytes)  # room for one base
    reads: list[str] = []

    def read(name: str, value: Vectors) -> Vectors:
        reads.append(name)
        return value

    cache.get("a", 1, lambda: read("a1", one))
    cache.get("a", 1, lambda: read("a1 again", one))
    cache.get("b", 1, lambda: read("b1", one))  # "a" is dropped: over budget
    cache.get("a", 1, lambda: read("a1 after b", one))
    cache.get("a", 2, lambda: read("a2", one))  # changed: read again
    cache.drop("a")
    cache.get("a", 2, lambda: read("a2 dropped", one))
    assert reads == ["a1", "b1", "a1 after b", "a2", "a2 dropped"]
