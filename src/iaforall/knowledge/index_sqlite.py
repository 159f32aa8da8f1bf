"""The retrieval index on SQLite (the default): vectors in sqlite-vec `vec0` tables (cosine
distance), one per vector size, partitioned by knowledge base, so a search reads only the bases
it is asked about; words in an FTS5 table, with each chunk's base as one more word.

sqlite-vec compares every vector at each search, reading each from its pages: ~0.7 ms per
thousand here, so a base of `memory_from` (10,000) chunks or more is searched in a copy of its
vectors kept in memory instead (vectors_in_memory.py), read straight from sqlite-vec's own
blocks."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from iaforall.knowledge.fusion import Term
from iaforall.knowledge.index_backend import (
    MAX_DIMENSIONS,
    Found,
    IndexedBase,
    IndexError_,
    Matrix,
    Row,
)


class SqliteIndex:
    """`memory_from`: a base of this many chunks or more is searched in memory."""

    def __init__(self, memory_from: int) -> None:
        self.memory_from = memory_from

    # -- writing ------------------------------------------------------------------------

    def new_base(self, connection: Connection, dimensions: int) -> None:
        connection.exec_driver_sql(vectors_table_sql(dimensions))

    def insert(
        self,
        connection: Connection,
        kb_id: str,
        dimensions: int,
        rows: list[Row],
        vectors: list[npt.NDArray[np.float32]],
    ) -> None:
        cursor = connection.connection.cursor()
        try:
            new_ids = []
            for chunk_id, _, _ in rows:
                cursor.execute(
                    "INSERT INTO knowledge_index (kb_id, chunk_id) VALUES (?, ?)", (kb_id, chunk_id)
                )
                new_ids.append(cursor.lastrowid)
            cursor.executemany(
                f"INSERT INTO {vectors_table(dimensions)} (id, kb_id, embedding) VALUES (?, ?, ?)",
                [(i, kb_id, v.tobytes()) for i, v in zip(new_ids, vectors, strict=True)],
            )
            cursor.executemany(
                "INSERT INTO knowledge_fts (rowid, text, kb_id) VALUES (?, ?, ?)",
                [(i, r[1], kb_token(kb_id)) for i, r in zip(new_ids, rows, strict=True)],
            )
        finally:
            cursor.close()

    def delete(self, connection: Connection, dimensions: int | None, ids: list[int]) -> None:
        rows = [(i,) for i in ids]
        cursor = connection.connection.cursor()
        try:
            if dimensions is not None:
                cursor.executemany(f"DELETE FROM {vectors_table(dimensions)} WHERE id = ?", rows)
            cursor.executemany("DELETE FROM knowledge_fts WHERE rowid = ?", rows)
            cursor.executemany("DELETE FROM knowledge_index WHERE id = ?", rows)
        finally:
            cursor.close()

    # -- vectors ------------------------------------------------------------------------

    def searched_in_memory(self, base: IndexedBase) -> bool:
        return base.chunks >= self.memory_from

    def read_vectors(self, connection: Connection, kb_id: str, base: IndexedBase) -> Matrix:
        table = vectors_table(base.dimensions)
        fast = read_vec0_chunks(connection, table, kb_id, base)
        if fast is not None:
            return fast
        rows = connection.exec_driver_sql(
            f"SELECT id, embedding FROM {table} WHERE kb_id = ?", (kb_id,)
        ).all()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype="<f4")
        return ids, matrix.reshape(len(rows), base.dimensions)

    def nearest(
        self, connection: Connection, kb_id: str, query: npt.NDArray[np.float32], n: int
    ) -> list[Found]:
        rows = connection.exec_driver_sql(
            f"SELECT id, distance FROM {vectors_table(query.size)} "
            "WHERE embedding MATCH ? AND k = ? AND kb_id = ?",
            (query.tobytes(), n, kb_id),
        )
        return [Found(int(i), 1.0 - float(d)) for i, d in rows]

    def cosines(
        self, connection: Connection, query: npt.NDArray[np.float32], ids: list[int]
    ) -> dict[int, float]:
        # One by one: vec0 reads a row by its id at once, but scans for `IN`.
        table = vectors_table(query.size)
        found: dict[int, float] = {}
        for i in ids:
            row = connection.exec_driver_sql(
                f"SELECT embedding FROM {table} WHERE id = ?", (i,)
            ).first()
            if row is not None:
                found[i] = float(np.frombuffer(row[0], dtype="<f4") @ query)
        return found

    # -- words --------------------------------------------------------------------------

    def keywords(
        self, connection: Connection, kbs: list[str], terms: list[Term], n: int, share: float
    ) -> list[Found]:
        words = "text : (" + " OR ".join(_phrase(" ".join(t)) + "*" * p for t, p in terms) + ")"
        search = (
            "SELECT rowid, bm25(knowledge_fts, 1.0, 0.0) AS rank, kb_id FROM knowledge_fts "
            "WHERE knowledge_fts MATCH ? ORDER BY rank LIMIT ?"
        )
        tokens = {kb_token(kb) for kb in kbs}
        if share >= 0.5:
            # These bases are most of the index: the words alone, without the bases' filter
            # (which reads a word for each of their chunks: ~6 ms per 100,000), their best 2n,
            # then these bases' among them. The same BM25 either way (the filter's column has
            # weight 0), and the same result whenever n of them are among those 2n, or there
            # were not 2n at all: else the search is made again, filtered.
            rows = connection.exec_driver_sql(search, (words, 2 * n)).all()
            ours = [r for r in rows if r[2] in tokens]
            if len(ours) >= n or len(rows) < 2 * n:
                return [Found(int(i), -float(r)) for i, r, _ in ours[:n]]
        # The bases' words filter in FTS5 itself (a join would be paid for every match); the
        # index checks each hit's base.
        match = "kb_id : (" + " OR ".join(_phrase(token) for token in sorted(tokens)) + ")"
        rows = connection.exec_driver_sql(search, (f"{match} AND {words}", n)).all()
        return [Found(int(i), -float(r)) for i, r, _ in rows]


def read_vec0_chunks(
    connection: Connection, table: str, kb_id: str, base: IndexedBase
) -> Matrix | None:
    """A base's vectors read straight from sqlite-vec 0.1's storage: blocks of 1024 vectors
    with a bitmap of the slots in use (~0.15 s per 100,000 vectors, where reading them one by
    one through the vec0 table takes ~5 s). None when the storage is not the one known here,
    or does not hold the number of vectors expected: then they are read one by one."""
    try:
        info = connection.exec_driver_sql(f"SELECT key, value FROM {table}_info").all()
        version: dict[Any, Any] = dict(info)
        if (version.get("CREATE_VERSION_MAJOR"), version.get("CREATE_VERSION_MINOR")) != (0, 1):
            return None
        rows = connection.exec_driver_sql(
            f"SELECT c.size, c.validity, c.rowids, v.vectors FROM {table}_chunks c "
            f"JOIN {table}_vector_chunks00 v ON v.rowid = c.chunk_id "
            "WHERE c.partition00 = ? ORDER BY c.chunk_id",
            (kb_id,),
        ).all()
    except DBAPIError:
        return None
    ids, blocks = [], []
    for size, validity, rowids, vectors in rows:
        used = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little")[:size]
        used = used.astype(bool)
        block = np.frombuffer(vectors, dtype="<f4")
        if len(rowids) != 8 * size or block.size != size * base.dimensions:
            return None
        ids.append(np.frombuffer(rowids, dtype=np.int64)[used])
        blocks.append(block.reshape(size, base.dimensions)[used])
    if sum(len(i) for i in ids) != base.chunks:
        return None
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros((0, base.dimensions), dtype=np.float32)
    return np.concatenate(ids), np.concatenate(blocks)


def kb_token(kb_id: str) -> str:
    """A base's name in the words table: one word, so that filtering by it costs little."""
    return "kb" + hashlib.sha256(kb_id.encode()).hexdigest()[:24]


def _phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def vectors_table(dimensions: int) -> str:
    if not 0 < dimensions <= MAX_DIMENSIONS:
        raise IndexError_(f"A vector must have 1 to {MAX_DIMENSIONS} numbers, not {dimensions}.")
    return f"knowledge_vectors_{int(dimensions)}"


def vectors_table_sql(dimensions: int) -> str:
    return (
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {vectors_table(dimensions)} USING vec0("
        "id INTEGER PRIMARY KEY, kb_id TEXT PARTITION KEY, "
        f"embedding FLOAT[{int(dimensions)}] DISTANCE_METRIC=cosine)"
    )
