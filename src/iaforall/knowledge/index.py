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

On SQLite (the default) vectors live in sqlite-vec `vec0` tables (cosine distance), one per
vector size, partitioned by knowledge base, so a search reads only the bases it is asked about;
words live in an FTS5 table. sqlite-vec compares every vector at each search, reading each from
its pages: ~0.7 ms per thousand here, so a base of `memory_from` (10,000) chunks or more is
searched in a copy of its vectors kept in memory instead (numpy: ~0.2 ms per thousand; 2 KB per
chunk of 512 numbers), read from sqlite-vec's own blocks and dropped when the base changes. On
PostgreSQL, where no pgvector reaches our machines, vectors are stored as bytes beside each row
and every base is searched that way; words are a `tsvector` ('simple' configuration over case-
and accent-folded text) with a GIN index. Measured by bench/knowledge.py: see
docs/knowledge.md.

All the chunks of one knowledge base have vectors of the same size (its embedding model's); a
search over several bases compares the query vector with those of its own size only.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, bindparam, text
from sqlalchemy.exc import DBAPIError

from iaforall.knowledge.fusion import (
    VECTOR_WEIGHT,
    WORD_PREFIX,
    Term,
    fuse_scores,
    match_terms,
)
from iaforall.store.database import Database
from iaforall.store.folding import fold

Mode = Literal["vector", "keyword", "hybrid"]
MODES: tuple[Mode, ...] = ("vector", "keyword", "hybrid")
MAX_QUERY_WORDS = 32
MAX_DIMENSIONS = 8192
Vector = Sequence[float] | npt.NDArray[np.floating[Any]]

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


class IndexError_(ValueError):
    """A chunk or a query the index cannot take (wrong vector size, empty vector...)."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One chunk found. `score`: cosine similarity (vector), BM25 (keyword, higher is better)
    or the fused score (hybrid); the ranks (1 = best) say where each list put it."""

    chunk_id: str
    kb_id: str
    score: float
    vector_rank: int | None = None
    keyword_rank: int | None = None


@dataclass(frozen=True, slots=True)
class _Base:
    dimensions: int
    version: int
    chunks: int


@dataclass(frozen=True, slots=True)
class _Found:
    id: int
    score: float


def _unit(vector: Vector, dimensions: int | None = None) -> npt.NDArray[np.float32]:
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
        self._sqlite = database.is_sqlite
        self._matrices = _MatrixCache(cache_mb * 1_000_000)
        self._helpers = ThreadPoolExecutor(2, thread_name_prefix="knowledge-index")

    def close(self) -> None:
        """Stop the helper threads (the database is the caller's to close)."""
        self._helpers.shutdown(wait=True)

    # -- writing ------------------------------------------------------------------------

    def add(self, kb_id: str, chunks: Iterable[tuple[str, str, Vector]]) -> int:
        """Store chunks (chunk id, text, vector) in a knowledge base, replacing any with the
        same id there. All or nothing; returns how many were stored."""
        rows = [(str(chunk_id), str(body), vector) for chunk_id, body, vector in chunks]
        if not rows:
            return 0
        ids = [r[0] for r in rows]
        if len(set(ids)) != len(ids):
            raise IndexError_("The same chunk id appears twice.")
        with self.database.engine.begin() as connection:
            dimensions = self._dimensions(connection, kb_id, len(np.ravel(rows[0][2])))
            vectors = [_unit(r[2], dimensions) for r in rows]
            replaced = self._delete(connection, kb_id, ids)
            if self._sqlite:
                self._add_sqlite(connection, kb_id, dimensions, rows, vectors)
            else:
                self._add_postgresql(connection, kb_id, rows, vectors)
            self._touch(connection, kb_id, len(rows) - replaced)
        return len(rows)

    def remove(self, kb_id: str, chunk_ids: Iterable[str] | None = None) -> int:
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

    def _dimensions(self, connection: Connection, kb_id: str, size: int) -> int:
        """The knowledge base's vector size; recorded on its first chunks."""
        known = connection.execute(
            text("SELECT dimensions FROM knowledge_index_kbs WHERE kb_id = :kb"), {"kb": kb_id}
        ).scalar()
        if known is not None:
            return int(known)
        if not 0 < size <= MAX_DIMENSIONS:
            raise IndexError_(f"A vector must have 1 to {MAX_DIMENSIONS} numbers, not {size}.")
        connection.execute(
            text(
                "INSERT INTO knowledge_index_kbs (kb_id, dimensions, version, chunks) "
                "VALUES (:kb, :d, 0, 0)"
            ),
            {"kb": kb_id, "d": size},
        )
        if self._sqlite:
            connection.exec_driver_sql(_vectors_table_sql(size))
        return size

    def _touch(self, connection: Connection, kb_id: str, added: int) -> None:
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

    def _add_sqlite(
        self,
        connection: Connection,
        kb_id: str,
        dimensions: int,
        rows: list[tuple[str, str, Vector]],
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
                f"INSERT INTO {_vectors_table(dimensions)} (id, kb_id, embedding) VALUES (?, ?, ?)",
                [(i, kb_id, v.tobytes()) for i, v in zip(new_ids, vectors, strict=True)],
            )
            cursor.executemany(
                "INSERT INTO knowledge_fts (rowid, text, kb_id) VALUES (?, ?, ?)",
                [(i, r[1], _kb_token(kb_id)) for i, r in zip(new_ids, rows, strict=True)],
            )
        finally:
            cursor.close()

    def _add_postgresql(
        self,
        connection: Connection,
        kb_id: str,
        rows: list[tuple[str, str, Vector]],
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

    def _delete(self, connection: Connection, kb_id: str, chunk_ids: list[str] | None) -> int:
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
        ids = [(int(i),) for i in found]
        if not ids:
            return 0
        if self._sqlite:
            dimensions = connection.execute(
                text("SELECT dimensions FROM knowledge_index_kbs WHERE kb_id = :kb"),
                {"kb": kb_id},
            ).scalar()
            cursor = connection.connection.cursor()
            try:
                if dimensions is not None:
                    table = _vectors_table(int(dimensions))
                    cursor.executemany(f"DELETE FROM {table} WHERE id = ?", ids)
                cursor.executemany("DELETE FROM knowledge_fts WHERE rowid = ?", ids)
                cursor.executemany("DELETE FROM knowledge_index WHERE id = ?", ids)
            finally:
                cursor.close()
        else:
            connection.execute(
                text("DELETE FROM knowledge_index WHERE id = :id"), [{"id": i} for (i,) in ids]
            )
        return len(ids)

    # -- reading ------------------------------------------------------------------------

    def count(self, kb_id: str) -> int:
        with self.database.engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM knowledge_index WHERE kb_id = :kb"), {"kb": kb_id}
                ).scalar_one()
            )

    def dimensions(self, kb_id: str) -> int | None:
        """The size of the knowledge base's vectors; None while it has none."""
        with self.database.engine.connect() as connection:
            found = connection.execute(
                text("SELECT dimensions FROM knowledge_index_kbs WHERE kb_id = :kb"), {"kb": kb_id}
            ).scalar()
        return None if found is None else int(found)

    def search(
        self,
        kb_ids: Iterable[str],
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
        query = None if query_vector is None or mode == "keyword" else _unit(query_vector)
        terms: list[Term] = []
        if mode != "vector":
            words = query_words(query_text or "")
            terms = match_terms(words, query_pairs(query_text or ""), self.word_prefix)
        with self.database.engine.connect() as connection:
            bases, total = self._bases_and_total(connection, kbs)
            share = sum(b.chunks for b in bases.values()) / total if total else 0.0
            by_vector: list[_Found] = []
            by_words: list[_Found] = []
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
                by_words = self._keywords(connection, kbs, terms, wanted, share)
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
                found = [_Found(i, s) for i, s in fused[:k]]
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
    ) -> dict[int, tuple[str, str]]:
        """Chunk id and base of each row found, if it is of one of these bases."""
        if not ids:
            return {}
        rows = connection.execute(
            text("SELECT id, chunk_id, kb_id FROM knowledge_index WHERE id IN :ids").bindparams(
                bindparam("ids", expanding=True)
            ),
            {"ids": ids},
        )
        return {int(i): (str(chunk), str(kb)) for i, chunk, kb in rows if kb in kbs}

    def _bases_and_total(
        self, connection: Connection, kbs: list[str]
    ) -> tuple[dict[str, _Base], int]:
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
        return {str(kb): _Base(int(d), int(v), int(n)) for kb, d, v, n, _ in rows}, total

    def warm(self, kb_ids: Iterable[str]) -> None:
        """Read the vectors of these bases into memory now (those searched from memory), so
        that their first search does not (~2 s per 100,000 chunks)."""
        with self.database.engine.connect() as connection:
            for kb, base in self._bases_and_total(connection, sorted(set(kb_ids)))[0].items():
                if self._in_memory(base):
                    self._matrix(connection, kb, base)

    def _in_memory(self, base: _Base) -> bool:
        return not self._sqlite or base.chunks >= self.memory_from

    def _matrix(self, connection: Connection, kb: str, base: _Base) -> _Vectors:
        def read() -> _Vectors:
            if self._sqlite:
                table = _vectors_table(base.dimensions)
                fast = _read_vec0_chunks(connection, table, kb, base)
                if fast is not None:
                    return _Vectors.of(*fast)
                rows = connection.exec_driver_sql(
                    f"SELECT id, embedding FROM {table} WHERE kb_id = ?", (kb,)
                ).all()
            else:
                rows = connection.execute(
                    text("SELECT id, vector FROM knowledge_index WHERE kb_id = :kb"), {"kb": kb}
                ).all()
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            matrix = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype="<f4")
            return _Vectors.of(ids, matrix.reshape(len(rows), base.dimensions))

        return self._matrices.get(kb, base.version, read)

    def _nearest(
        self,
        connection: Connection,
        bases: dict[str, _Base],
        query: npt.NDArray[np.float32],
        n: int,
    ) -> list[_Found]:
        found: list[_Found] = []
        for kb, base in bases.items():
            if base.dimensions != query.size:
                continue
            if self._in_memory(base):
                found += _nearest_in(self._matrix(connection, kb, base), query, n)
            else:
                found += self._nearest_sqlite(connection, kb, query, n)
        found.sort(key=lambda f: -f.score)
        return found[:n]

    def _cosines(
        self,
        connection: Connection,
        bases: dict[str, _Base],
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
            if not self._in_memory(base):
                on_disk = True
                continue
            rows, vectors = self._matrix(connection, kb, base).rows(ids)
            found.update(zip(rows.tolist(), (vectors @ query).tolist(), strict=True))
        if on_disk:  # one by one: vec0 reads a row by its id at once, but scans for `IN`
            table = _vectors_table(query.size)
            for i in ids:
                if i in found:
                    continue
                row = connection.exec_driver_sql(
                    f"SELECT embedding FROM {table} WHERE id = ?", (i,)
                ).first()
                if row is not None:
                    found[i] = float(np.frombuffer(row[0], dtype="<f4") @ query)
        return found

    def _nearest_sqlite(
        self, connection: Connection, kb: str, query: npt.NDArray[np.float32], n: int
    ) -> list[_Found]:
        rows = connection.exec_driver_sql(
            f"SELECT id, distance FROM {_vectors_table(query.size)} "
            "WHERE embedding MATCH ? AND k = ? AND kb_id = ?",
            (query.tobytes(), n, kb),
        )
        return [_Found(int(i), 1.0 - float(d)) for i, d in rows]

    def _keywords_apart(
        self, kbs: list[str], terms: list[Term], n: int, share: float
    ) -> list[_Found]:
        with self.database.engine.connect() as connection:
            return self._keywords(connection, kbs, terms, n, share)

    def _keywords(
        self, connection: Connection, kbs: list[str], terms: list[Term], n: int, share: float
    ) -> list[_Found]:
        """`share`: how much of the index (its chunks) these bases are, 0 to 1."""
        if self._sqlite:
            return self._keywords_sqlite(connection, kbs, terms, n, share)
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
        return [_Found(int(i), float(r)) for i, r in rows]

    def _keywords_sqlite(
        self, connection: Connection, kbs: list[str], terms: list[Term], n: int, share: float
    ) -> list[_Found]:
        words = "text : (" + " OR ".join(_phrase(" ".join(t)) + "*" * p for t, p in terms) + ")"
        search = (
            "SELECT rowid, bm25(knowledge_fts, 1.0, 0.0) AS rank, kb_id FROM knowledge_fts "
            "WHERE knowledge_fts MATCH ? ORDER BY rank LIMIT ?"
        )
        tokens = {_kb_token(kb) for kb in kbs}
        if share >= 0.5:
            # These bases are most of the index: the words alone, without the bases' filter
            # (which reads a word for each of their chunks: ~6 ms per 100,000), their best 2n,
            # then these bases' among them. The same BM25 either way (the filter's column has
            # weight 0), and the same result whenever n of them are among those 2n, or there
            # were not 2n at all: else the search is made again, filtered.
            rows = connection.exec_driver_sql(search, (words, 2 * n)).all()
            ours = [r for r in rows if r[2] in tokens]
            if len(ours) >= n or len(rows) < 2 * n:
                return [_Found(int(i), -float(r)) for i, r, _ in ours[:n]]
        # The bases' words filter in FTS5 itself (a join would be paid for every match);
        # `_names` checks each hit's base.
        match = "kb_id : (" + " OR ".join(_phrase(token) for token in sorted(tokens)) + ")"
        rows = connection.exec_driver_sql(search, (f"{match} AND {words}", n)).all()
        return [_Found(int(i), -float(r)) for i, r, _ in rows]


def _nearest_in(matrix: _Vectors, query: npt.NDArray[np.float32], n: int) -> list[_Found]:
    ids, vectors = matrix.ids, matrix.vectors
    if not len(ids):
        return []
    # One thread: the product is bound by memory, and hybrid search runs the keywords on the
    # other core meanwhile (two BLAS threads then fight a third, and a busy engine, for 2 cores).
    with _one_blas_thread():
        scores = vectors @ query
    top = np.argpartition(-scores, n - 1)[:n] if n < len(ids) else np.arange(len(ids))
    top = top[np.argsort(-scores[top], kind="stable")]
    return [_Found(int(ids[i]), float(scores[i])) for i in top]


def _read_vec0_chunks(connection: Connection, table: str, kb: str, base: _Base) -> Matrix | None:
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
            (kb,),
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


def _kb_token(kb_id: str) -> str:
    """A base's name in the words table: one word, so that filtering by it costs little."""
    return "kb" + hashlib.sha256(kb_id.encode()).hexdigest()[:24]


def _phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _vectors_table(dimensions: int) -> str:
    if not 0 < dimensions <= MAX_DIMENSIONS:
        raise IndexError_(f"A vector must have 1 to {MAX_DIMENSIONS} numbers, not {dimensions}.")
    return f"knowledge_vectors_{int(dimensions)}"


def _vectors_table_sql(dimensions: int) -> str:
    return (
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {_vectors_table(dimensions)} USING vec0("
        "id INTEGER PRIMARY KEY, kb_id TEXT PARTITION KEY, "
        f"embedding FLOAT[{int(dimensions)}] DISTANCE_METRIC=cosine)"
    )


Matrix = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class _Vectors:
    """A base's vectors in memory, with their rows' ids, and those ids' order (to find rows)."""

    ids: npt.NDArray[np.int64]
    vectors: npt.NDArray[np.float32]
    order: npt.NDArray[np.intp]
    sorted_ids: npt.NDArray[np.int64]

    @classmethod
    def of(cls, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> _Vectors:
        order = np.argsort(ids, kind="stable")
        return cls(ids, vectors, order, ids[order])

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.vectors.nbytes + self.order.nbytes + self.sorted_ids.nbytes

    def rows(self, wanted: Sequence[int]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The ids among `wanted` held here, and their vectors."""
        if not len(self.ids) or not len(wanted):
            return np.zeros(0, dtype=np.int64), self.vectors[:0]
        sorted_ids = self.sorted_ids
        asked = np.asarray(wanted, dtype=np.int64)
        at = np.minimum(np.searchsorted(sorted_ids, asked), len(sorted_ids) - 1)
        held = sorted_ids[at] == asked
        positions = self.order[at[held]]
        return self.ids[positions], self.vectors[positions]


class _MatrixCache:
    """PostgreSQL only: each base's vectors as one matrix (with its rows' ids), the least
    recently used evicted beyond the budget. A base's version (raised by every change, by any
    process) tells when a matrix is out of date."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[int, _Vectors]] = OrderedDict()

    def get(self, kb: str, version: int, read: Callable[[], _Vectors]) -> _Vectors:
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
