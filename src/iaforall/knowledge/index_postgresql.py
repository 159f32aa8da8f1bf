"""The retrieval index on PostgreSQL: where no pgvector reaches our machines, vectors are
stored as bytes beside each row and every base is searched in a copy of its vectors kept in
memory (vectors_in_memory.py); words are a `tsvector` ('simple' configuration over case- and
accent-folded text) with a GIN index."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, bindparam, text

from iaforall.core.folding import fold
from iaforall.knowledge.fusion import Term
from iaforall.knowledge.index_backend import Found, IndexedBase, Matrix, Row


class PostgresqlIndex:
    # -- writing ------------------------------------------------------------------------

    def new_base(self, connection: Connection, dimensions: int) -> None:
        """Nothing to make: every base's vectors share the index's table."""

    def insert(
        self,
        connection: Connection,
        kb_id: str,
        dimensions: int,
        rows: list[Row],
        vectors: list[npt.NDArray[np.float32]],
    ) -> None:
        connection.execute(
            text(
                "INSERT INTO knowledge_index (kb_id, chunk_id, vector, words) "
                "VALUES (:kb, :chunk, :vector, to_tsvector('simple', :words))"
            ),
            [
                {"kb": kb_id, "chunk": r[0], "vector": v.tobytes(), "words": fold(r[1])}
                for r, v in zip(rows, vectors, strict=True)
            ],
        )

    def delete(self, connection: Connection, dimensions: int | None, ids: list[int]) -> None:
        connection.execute(
            text("DELETE FROM knowledge_index WHERE id = :id"), [{"id": i} for i in ids]
        )

    # -- vectors: all in memory ---------------------------------------------------------

    def searched_in_memory(self, base: IndexedBase) -> bool:
        return True

    def read_vectors(self, connection: Connection, kb_id: str, base: IndexedBase) -> Matrix:
        rows = connection.execute(
            text("SELECT id, vector FROM knowledge_index WHERE kb_id = :kb"), {"kb": kb_id}
        ).all()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype="<f4")
        return ids, matrix.reshape(len(rows), base.dimensions)

    def nearest(
        self, connection: Connection, kb_id: str, query: npt.NDArray[np.float32], n: int
    ) -> list[Found]:
        """Never asked: every base is searched in memory."""
        return []

    def cosines(
        self, connection: Connection, query: npt.NDArray[np.float32], ids: list[int]
    ) -> dict[int, float]:
        """Never asked: every base is searched in memory."""
        return {}

    # -- words --------------------------------------------------------------------------

    def keywords(
        self, connection: Connection, kbs: list[str], terms: list[Term], n: int, share: float
    ) -> list[Found]:
        # Words are \w+ only (query_words): quoted, they are lexemes as they are.
        query = " | ".join(
            "(" + " <-> ".join(f"'{w}'" for w in t) + ":*" * p + ")" for t, p in terms
        )
        rows = connection.execute(
            text(
                "SELECT id, ts_rank(words, q) AS rank FROM knowledge_index, "
                "to_tsquery('simple', :query) AS q "
                "WHERE kb_id IN :kbs AND words @@ q ORDER BY rank DESC, id LIMIT :n"
            ).bindparams(bindparam("kbs", expanding=True)),
            {"query": query, "kbs": kbs, "n": n},
        )
        return [Found(int(i), float(r)) for i, r in rows]
