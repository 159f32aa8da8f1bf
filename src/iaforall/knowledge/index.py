"""The retrieval index: chunk vectors and words, searched by meaning, by keywords, or both.

Pure storage, called by the knowledge-base layer (which owns knowledge bases, documents and
chunk texts; this module keeps only what search needs). Calls block: run them in a thread.

    index = KnowledgeIndex(database)    # one per server: it keeps big bases' vectors in memory
    index.add(kb_id, [(chunk_id, text, vector), ...])   # replaces chunks already there
    index.warm([kb_id])                 # once a base is ingested: its first search is then fast
    index.search([kb_id], query_vector, "query text", k=5, mode="hybrid")  # -> [Hit]
    index.remove(kb_id)                 # the whole knowledge base
    index.remove(kb_id, [chunk_id])     # some of its chunks
    index.close()                       # at shutdown (its helper threads)

- `vector` mode: cosine similarity (exact, every chunk of the knowledge bases is compared).
- `keyword` mode: BM25 over the words (case and accents ignored), any word may match, a long
  word by its first `word_prefix` characters (5: "libraries" finds "library", "trophies"
  "trophées").
- `hybrid`: both lists' candidates, each given its cosine and its BM25, fused by scores:
  `vector_weight * cosine + (1 - vector_weight) * BM25`, each scaled to [0, 1] (see fusion.py).

This module keeps what every database shares (the bases and the rows of the index, the search
itself); each database stores vectors and words its own way: index_sqlite.py (sqlite-vec and
FTS5, the default), index_postgresql.py (vectors as bytes, tsvector words); big bases, and all
of PostgreSQL's, are searched in a copy of their vectors kept in memory (vectors_in_memory.py).
Measured by bench/knowledge.py: see docs/knowledge.md.

All the chunks of one knowledge base have vectors of the same size (its embedding model's); a
search over several bases compares the query vector with those of its own size only.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, bindparam, text

from iaforall.core.types import KnowledgeBaseId
from iaforall.knowledge.fusion import (
    VECTOR_WEIGHT,
    WORD_PREFIX,
    Term,
    fuse_scores,
    match_terms,
)
from iaforall.knowledge.index_backend import (
    MAX_DIMENSIONS,
    Found,
    IndexBackend,
    IndexedBase,
    IndexError_,
    Row,
    Vector,
    unit_vector,
)
from iaforall.knowledge.index_postgresql import PostgresqlIndex
from iaforall.knowledge.index_sqlite import SqliteIndex
from iaforall.knowledge.query_words import query_pairs, query_words
from iaforall.knowledge.vectors_in_memory import VectorCache, Vectors
from iaforall.store.database import Database

Mode = Literal["vector", "keyword", "hybrid"]
MODES: tuple[Mode, ...] = ("vector", "keyword", "hybrid")


@dataclass(frozen=True, slots=True)
class Hit:
    """One chunk found. `score`: cosine similarity (vector), BM25 (keyword, higher is better)
    or the fused score (hybrid); the ranks (1 = best) say where each list put it."""

    chunk_id: str
    kb_id: KnowledgeBaseId
    score: float
    vector_rank: int | None = None
    keyword_rank: int | None = None


class KnowledgeIndex:
    def __init__(
        self,
        database: Database,
        *,
        candidates: int = 50,
        memory_from: int = 10_000,
        cache_mb: int = 1024,
        vector_weight: float = VECTOR_WEIGHT,
        word_prefix: int = WORD_PREFIX,
    ) -> None:
        """`candidates`: how many of each list hybrid search fuses (at least k).
        `vector_weight`: the meaning's share of hybrid search's score, 0 to 1 (the words have
        the rest). `word_prefix`: a query word longer than this many characters matches the
        words that start like it (0: whole words only).
        `memory_from`: on SQLite, a base of this many chunks or more is searched in a copy of
        its vectors kept in memory (sqlite-vec reads every vector from its pages at each
        search, ~0.7 ms per thousand here, numpy ~0.15); smaller ones are searched by
        sqlite-vec. On PostgreSQL every base is.
        `cache_mb`: memory for those copies, the least recently used dropped first."""
        self.database = database
        self.candidates = candidates
        self.memory_from = memory_from
        if not 0.0 <= vector_weight <= 1.0:
            raise ValueError("vector_weight must be between 0 and 1.")
        self.vector_weight = vector_weight
        self.word_prefix = max(0, word_prefix)
        self._backend: IndexBackend = (
            SqliteIndex(memory_from) if database.is_sqlite else PostgresqlIndex()
        )
        self._matrices = VectorCache(cache_mb * 1_000_000)
        self._helpers = ThreadPoolExecutor(2, thread_name_prefix="knowledge-index")

    def close(self) -> None:
        """Stop the helper threads (the database is the caller's to close)."""
        self._helpers.shutdown(wait=True)

    # -- writing ------------------------------------------------------------------------

    def add(self, kb_id: KnowledgeBaseId, chunks: Iterable[tuple[str, str, Vector]]) -> int:
        """Store chunks (chunk id, text, vector) in a knowledge base, replacing any with the
        same id there. All or nothing; returns how many were stored."""
        rows: list[Row] = [(str(chunk_id), str(body), vector) for chunk_id, body, vector in chunks]
        if not rows:
            return 0
        ids = [r[0] for r in rows]
        if len(set(ids)) != len(ids):
            raise IndexError_("The same chunk id appears twice.")
        with self.database.engine.begin() as connection:
            dimensions = self._dimensions(connection, kb_id, len(np.ravel(rows[0][2])))
            vectors = [unit_vector(r[2], dimensions) for r in rows]
            replaced = self._delete(connection, kb_id, ids)
            self._backend.insert(connection, kb_id, dimensions, rows, vectors)
            self._touch(connection, kb_id, len(rows) - replaced)
        return len(rows)

    def remove(self, kb_id: KnowledgeBaseId, chunk_ids: Iterable[str] | None = None) -> int:
        """Remove some chunks of a knowledge base, or all of it (chunk_ids None); returns how
        many chunks went."""
        with self.database.engine.begin() as connection:
            if chunk_ids is None:
                gone = self._delete(connection, kb_id, None)
                connection.execute(
                    text("DELETE FROM knowledge_index_kbs WHERE kb_id = :kb"), {"kb": kb_id}
                )
            else:
                gone = self._delete(connection, kb_id, [str(c) for c in chunk_ids])
                self._touch(connection, kb_id, -gone)
        self._matrices.drop(kb_id)
        return gone

    def _dimensions(self, connection: Connection, kb_id: KnowledgeBaseId, size: int) -> int:
        """The knowledge base's vector size; recorded on its first chunks."""
        known = _known_dimensions(connection, kb_id)
        if known is not None:
            return known
        if not 0 < size <= MAX_DIMENSIONS:
            raise IndexError_(f"A vector must have 1 to {MAX_DIMENSIONS} numbers, not {size}.")
        connection.execute(
            text(
                "INSERT INTO knowledge_index_kbs (kb_id, dimensions, version, chunks) "
                "VALUES (:kb, :d, 0, 0)"
            ),
            {"kb": kb_id, "d": size},
        )
        self._backend.new_base(connection, size)
        return size

    def _touch(self, connection: Connection, kb_id: KnowledgeBaseId, added: int) -> None:
        """A new version of the base (in-memory copies of its vectors are read again), with
        `added` more chunks (or fewer)."""
        connection.execute(
            text(
                "UPDATE knowledge_index_kbs SET version = version + 1, chunks = chunks + :added "
                "WHERE kb_id = :kb"
            ),
            {"kb": kb_id, "added": added},
        )
        self._matrices.drop(kb_id)

    def _delete(
        self, connection: Connection, kb_id: KnowledgeBaseId, chunk_ids: list[str] | None
    ) -> int:
        if chunk_ids is None:
            found = connection.execute(
                text("SELECT id FROM knowledge_index WHERE kb_id = :kb"), {"kb": kb_id}
            ).scalars()
        else:
            found = connection.execute(
                text(
                    "SELECT id FROM knowledge_index WHERE kb_id = :kb AND chunk_id IN :chunks"
                ).bindparams(bindparam("chunks", expanding=True)),
                {"kb": kb_id, "chunks": chunk_ids},
            ).scalars()
        ids = [int(i) for i in found]
        if ids:
            self._backend.delete(connection, _known_dimensions(connection, kb_id), ids)
        return len(ids)

    # -- reading ------------------------------------------------------------------------

    def count(self, kb_id: KnowledgeBaseId) -> int:
        with self.database.engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM knowledge_index WHERE kb_id = :kb"), {"kb": kb_id}
                ).scalar_one()
            )

    def dimensions(self, kb_id: KnowledgeBaseId) -> int | None:
        """The size of the knowledge base's vectors; None while it has none."""
        with self.database.engine.connect() as connection:
            return _known_dimensions(connection, kb_id)

    def search(
        self,
        kb_ids: Iterable[KnowledgeBaseId],
        query_vector: Vector | None,
        query_text: str | None,
        k: int = 5,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """The k best chunks of these knowledge bases for the query, best first."""
        if mode not in MODES:
            raise IndexError_(f"The search mode must be one of {', '.join(MODES)}, not {mode!r}.")
        if k < 1:
            raise IndexError_("k must be at least 1.")
        kbs = sorted({str(kb) for kb in kb_ids})
        if not kbs:
            return []
        wanted = k if mode != "hybrid" else max(k, self.candidates)
        query = None if query_vector is None or mode == "keyword" else unit_vector(query_vector)
        terms: list[Term] = []
        if mode != "vector":
            words = query_words(query_text or "")
            terms = match_terms(words, query_pairs(query_text or ""), self.word_prefix)
        with self.database.engine.connect() as connection:
            bases, total = self._bases_and_total(connection, kbs)
            share = sum(b.chunks for b in bases.values()) / total if total else 0.0
            by_vector: list[Found] = []
            by_words: list[Found] = []
            if query is not None and terms:
                # Both at once, the words on a connection of their own: sqlite and numpy
                # let go of the GIL, so on 2 cores hybrid costs about the slower of the two.
                pending = self._helpers.submit(self._keywords_apart, kbs, terms, wanted, share)
                try:
                    by_vector = self._nearest(connection, bases, query, wanted)
                finally:
                    by_words = pending.result()
            elif query is not None:
                by_vector = self._nearest(connection, bases, query, wanted)
            elif terms:
                by_words = self._backend.keywords(connection, kbs, terms, wanted, share)
            if mode == "hybrid":
                vector_rank = {f.id: r for r, f in enumerate(by_vector, 1)}
                word_rank = {f.id: r for r, f in enumerate(by_words, 1)}
                cosines = {f.id: f.score for f in by_vector}
                if query is not None:
                    missing = [f.id for f in by_words if f.id not in cosines]
                    cosines.update(self._cosines(connection, bases, query, missing))
                fused = fuse_scores(
                    [(f.id, f.score) for f in by_words], cosines, self.vector_weight
                )
                found = [Found(i, s) for i, s in fused[:k]]
            else:
                found = (by_vector if mode == "vector" else by_words)[:k]
                vector_rank = {f.id: r for r, f in enumerate(found, 1)} if mode == "vector" else {}
                word_rank = {f.id: r for r, f in enumerate(found, 1)} if mode == "keyword" else {}
            names = self._names(connection, [f.id for f in found], kbs)
        return [
            Hit(*names[f.id], f.score, vector_rank.get(f.id), word_rank.get(f.id))
            for f in found
            if f.id in names
        ]

    def _names(
        self, connection: Connection, ids: list[int], kbs: list[str]
    ) -> dict[int, tuple[str, KnowledgeBaseId]]:
        """Chunk id and base of each row found, if it is of one of these bases."""
        if not ids:
            return {}
        rows = connection.execute(
            text("SELECT id, chunk_id, kb_id FROM knowledge_index WHERE id IN :ids").bindparams(
                bindparam("ids", expanding=True)
            ),
            {"ids": ids},
        )
        return {
            int(i): (str(chunk), KnowledgeBaseId(str(kb))) for i, chunk, kb in rows if kb in kbs
        }

    def _bases_and_total(
        self, connection: Connection, kbs: list[str]
    ) -> tuple[dict[str, IndexedBase], int]:
        """These bases (those that exist), and how many chunks all bases hold together."""
        rows = connection.execute(
            text(
                "SELECT kb_id, dimensions, version, chunks, "
                "(SELECT coalesce(sum(chunks), 0) FROM knowledge_index_kbs) "
                "FROM knowledge_index_kbs WHERE kb_id IN :kbs"
            ).bindparams(bindparam("kbs", expanding=True)),
            {"kbs": kbs},
        ).all()
        total = int(rows[0][4]) if rows else 0
        return {str(kb): IndexedBase(int(d), int(v), int(n)) for kb, d, v, n, _ in rows}, total

    def warm(self, kb_ids: Iterable[KnowledgeBaseId]) -> None:
        """Read the vectors of these bases into memory now (those searched from memory), so
        that their first search does not (~2 s per 100,000 chunks)."""
        with self.database.engine.connect() as connection:
            for kb, base in self._bases_and_total(connection, sorted(set(kb_ids)))[0].items():
                if self._backend.searched_in_memory(base):
                    self._matrix(connection, kb, base)

    def _matrix(self, connection: Connection, kb: str, base: IndexedBase) -> Vectors:
        return self._matrices.get(
            kb,
            base.version,
            lambda: Vectors.of(self._backend.read_vectors(connection, kb, base)),
        )

    def _nearest(
        self,
        connection: Connection,
        bases: dict[str, IndexedBase],
        query: npt.NDArray[np.float32],
        n: int,
    ) -> list[Found]:
        found: list[Found] = []
        for kb, base in bases.items():
            if base.dimensions != query.size:
                continue
            if self._backend.searched_in_memory(base):
                found += self._matrix(connection, kb, base).nearest(query, n)
            else:
                found += self._backend.nearest(connection, kb, query, n)
        found.sort(key=lambda f: -f.score)
        return found[:n]

    def _cosines(
        self,
        connection: Connection,
        bases: dict[str, IndexedBase],
        query: npt.NDArray[np.float32],
        ids: list[int],
    ) -> dict[int, float]:
        """The cosine similarity to the query of these rows (those of a base of the query's
        vector size; the others are left out)."""
        found: dict[int, float] = {}
        if not ids:
            return found
        on_disk = False
        for kb, base in bases.items():
            if base.dimensions != query.size:
                continue
            if not self._backend.searched_in_memory(base):
                on_disk = True
                continue
            rows, vectors = self._matrix(connection, kb, base).rows(ids)
            found.update(zip(rows.tolist(), (vectors @ query).tolist(), strict=True))
        if on_disk:
            rest = [i for i in ids if i not in found]
            found.update(self._backend.cosines(connection, query, rest))
        return found

    def _keywords_apart(
        self, kbs: list[str], terms: list[Term], n: int, share: float
    ) -> list[Found]:
        with self.database.engine.connect() as connection:
            return self._backend.keywords(connection, kbs, terms, n, share)


def _known_dimensions(connection: Connection, kb_id: KnowledgeBaseId) -> int | None:
    found = connection.execute(
        text("SELECT dimensions FROM knowledge_index_kbs WHERE kb_id = :kb"), {"kb": kb_id}
    ).scalar()
    return None if found is None else int(found)
