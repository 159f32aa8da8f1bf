"""The retrieval index on SQLite (sqlite-vec, FTS5) and on a real PostgreSQL (numpy, tsvector):
vectors, keywords and hybrid search, knowledge bases kept apart, replace and remove."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect, text

from iaforall.knowledge.index import KnowledgeIndex
from iaforall.knowledge.index_backend import IndexError_
from iaforall.knowledge.index_sqlite import read_vec0_chunks
from iaforall.knowledge.query_words import query_pairs, query_words
from iaforall.store.database import Database

DIMS = 8


def unit(*values: float) -> list[float]:
    v = np.zeros(DIMS, dtype=np.float32)
    v[: len(values)] = values
    return list(v / np.linalg.norm(v))


PASSAGES = [
    ("c1", "Les crêpes bretonnes se font avec de la farine de sarrasin.", unit(1, 0.1)),
    ("c2", "The railway station of Lyon opened in 1857.", unit(0, 1)),
    ("c3", "Photosynthesis turns light into chemical energy in plants.", unit(0, 0, 1)),
    ("c4", "Le budget de la commune a été voté en mars.", unit(0.2, 0, 0, 1)),
]


@pytest.fixture(params=[10_000, 1], ids=["sqlite-vec", "in-memory"])
def index(any_database: Database, request: pytest.FixtureRequest) -> KnowledgeIndex:
    """On SQLite, small bases are searched by sqlite-vec, big ones (here: all) in memory;
    on PostgreSQL always in memory."""
    index = KnowledgeIndex(any_database, memory_from=request.param)
    index.add("kb-a", PASSAGES)
    return index


def ids(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.chunk_id for h in hits]


def test_vector_search_ranks_by_cosine(index: KnowledgeIndex) -> None:
    hits = index.search(["kb-a"], unit(0.1, 1), None, k=2, mode="vector")
    assert ids(hits) == ["c2", "c1"]
    assert hits[0].score == pytest.approx(float(np.dot(unit(0.1, 1), unit(0, 1))), abs=1e-5)
    assert hits[0].vector_rank == 1 and hits[0].keyword_rank is None
    assert hits[0].kb_id == "kb-a"


def test_keyword_search_ignores_case_and_accents(index: KnowledgeIndex) -> None:
    hits = index.search(["kb-a"], None, "CREPES de SARRASIN?", k=3, mode="keyword")
    assert ids(hits)[0] == "c1"
    assert hits[0].score > 0 and hits[0].keyword_rank == 1
    assert index.search(["kb-a"], None, "gare ferroviaire", k=3, mode="keyword") == []


def test_hybrid_fuses_both_lists(index: KnowledgeIndex) -> None:
    # The vector points at c3, the words at c2: both come first, before the rest.
    hits = index.search(["kb-a"], unit(0, 0, 1), "railway station Lyon", k=4, mode="hybrid")
    assert set(ids(hits)[:2]) == {"c2", "c3"}
    top = {h.chunk_id: h for h in hits}
    assert top["c2"].keyword_rank == 1 and top["c3"].vector_rank == 1
    # Fused by scores: c2 has the best (only) BM25 and the lowest cosine, c3 the reverse.
    assert top["c2"].score == pytest.approx(1 - index.vector_weight)
    assert top["c3"].score == pytest.approx(index.vector_weight)
    # With no words in the query, hybrid is the vector ranking.
    assert ids(index.search(["kb-a"], unit(0, 1), "", k=1)) == ["c2"]


def test_knowledge_bases_are_kept_apart(index: KnowledgeIndex) -> None:
    index.add("kb-b", [("b1", "Lyon railway station timetable", unit(0, 1))])
    assert ids(index.search(["kb-a"], unit(0, 1), "railway", k=5, mode="vector"))[0] == "c2"
    assert "b1" not in ids(index.search(["kb-a"], unit(0, 1), "railway", k=5))
    both = index.search(["kb-a", "kb-b"], unit(0, 1), "railway timetable", k=2, mode="hybrid")
    assert set(ids(both)) == {"c2", "b1"}
    assert index.search(["kb-none"], unit(0, 1), "railway", k=5) == []
    assert index.search([], unit(0, 1), "railway", k=5) == []


def test_adding_a_chunk_again_replaces_it(index: KnowledgeIndex) -> None:
    index.add("kb-a", [("c2", "A new text about tulips in Amsterdam.", unit(0, 0, 0, 0, 1))])
    assert index.count("kb-a") == 4
    assert index.search(["kb-a"], None, "railway", k=5, mode="keyword") == []
    assert ids(index.search(["kb-a"], None, "tulips", k=5, mode="keyword")) == ["c2"]
    assert ids(index.search(["kb-a"], unit(0, 0, 0, 0, 1), None, k=1, mode="vector")) == ["c2"]


def test_remove_chunks_then_the_whole_base(index: KnowledgeIndex, any_database: Database) -> None:
    index.add("kb-b", [("b1", "Lyon railway", unit(0, 1))])
    assert index.remove("kb-a", ["c2", "missing"]) == 1
    assert "c2" not in ids(index.search(["kb-a"], unit(0, 1), "railway", k=5))
    assert index.count("kb-a") == 3
    assert index.remove("kb-a") == 3
    assert index.count("kb-a") == 0 and index.dimensions("kb-a") is None
    assert index.search(["kb-a"], unit(1), "crepes", k=5) == []
    assert ids(index.search(["kb-b"], unit(0, 1), "railway", k=5)) == ["b1"]
    with any_database.engine.connect() as connection:
        left = connection.execute(text("SELECT count(*) FROM knowledge_index")).scalar_one()
    assert left == 1
    # A base can start again with another vector size.
    index.add("kb-a", [("x", "again", [1.0, 2.0, 3.0])])
    assert index.dimensions("kb-a") == 3


def test_vectors_of_another_size_are_refused(index: KnowledgeIndex) -> None:
    with pytest.raises(IndexError_, match="8-number"):
        index.add("kb-a", [("c9", "wrong size", [1.0, 0.0])])
    with pytest.raises(IndexError_, match="zeros"):
        index.add("kb-a", [("c9", "zero", [0.0] * DIMS)])
    with pytest.raises(IndexError_, match="twice"):
        index.add("kb-a", [("c9", "a", unit(1)), ("c9", "b", unit(1))])
    with pytest.raises(IndexError_, match="mode"):
        index.search(["kb-a"], unit(1), "x", mode="magic")  # type: ignore[arg-type]
    assert index.count("kb-a") == 4  # nothing half-stored
    # A query of another size finds nothing by vector (that base holds another model's vectors).
    assert index.search(["kb-a"], [1.0, 0.0], None, mode="vector") == []


def test_bases_of_different_sizes_live_side_by_side(index: KnowledgeIndex) -> None:
    index.add("kb-small", [("s1", "tiny vectors", [1.0, 0.0, 0.0]), ("s2", "x", [0.0, 1.0, 0.0])])
    assert ids(index.search(["kb-small"], [0.0, 1.0, 0.1], None, mode="vector")) == ["s2", "s1"]
    mixed = index.search(["kb-a", "kb-small"], unit(0, 1), "tiny", k=3)
    assert {"c2", "s1"} <= set(ids(mixed))


def test_changes_made_by_another_process_are_seen(
    index: KnowledgeIndex, any_database: Database
) -> None:
    index.warm(["kb-a", "kb-none"])
    assert ids(index.search(["kb-a"], unit(0, 1), None, k=1, mode="vector")) == ["c2"]
    other = KnowledgeIndex(Database(any_database.url))  # another server, same database
    other.add("kb-a", [("c5", "a newcomer", unit(0, 1, 0.01))])
    other.remove("kb-a", ["c2"])
    other.database.close()
    assert ids(index.search(["kb-a"], unit(0, 1), None, k=1, mode="vector")) == ["c5"]


def test_the_migration_makes_the_tables(any_database: Database) -> None:
    with any_database.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    assert {"knowledge_index", "knowledge_index_kbs"} <= tables
    if any_database.is_sqlite:
        assert {"knowledge_fts", "knowledge_vectors_512"} <= tables


def test_many_chunks_top_k_is_exact(any_database: Database) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((600, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = KnowledgeIndex(any_database)
    index.add("big", [(f"n{i}", f"passage number {i}", v) for i, v in enumerate(vectors)])
    query = vectors[42] + 0.3 * rng.standard_normal(16).astype(np.float32)
    query /= np.linalg.norm(query)
    expected = [f"n{i}" for i in np.argsort(-(vectors @ query))[:10]]
    assert ids(index.search(["big"], query, None, k=10, mode="vector")) == expected


def test_query_words_and_fusion() -> None:
    assert query_words('Où est la "gare" de Lyon-Part-Dieu ? où') == [
        "gare",
        "lyon",
        "part",
        "dieu",
    ]
    assert query_words("How many of them?") == ["how", "many", "of", "them"]  # nothing else
    assert query_words("!!! ???") == []
    assert len(query_words(" ".join(f"w{i}" for i in range(100)))) == 32
    assert query_pairs("Où est la gare de Lyon-Part-Dieu ? Lyon part") == [
        ("lyon", "part"),
        ("part", "dieu"),
    ]
    assert query_pairs("the cat and the dog") == []


def test_words_match_by_their_beginning(any_database: Database) -> None:
    passages = [
        ("p1", "The public library lends dictionaries.", unit(1)),
        ("p2", "Les trophées du club de voile.", unit(0, 1)),
        ("p3", "A pot of honey.", unit(0, 0, 1)),
    ]
    index = KnowledgeIndex(any_database)  # words longer than 4 letters: their first 4
    index.add("kb", passages)
    assert ids(index.search(["kb"], None, "libraries", mode="keyword")) == ["p1"]
    assert ids(index.search(["kb"], None, "Trophies?", mode="keyword")) == ["p2"]
    assert ids(index.search(["kb"], None, "pot", mode="keyword")) == ["p3"]  # short: whole
    assert index.search(["kb"], None, "pots", mode="keyword") == []
    whole = KnowledgeIndex(any_database, word_prefix=0)
    assert whole.search(["kb"], None, "libraries trophies", mode="keyword") == []
    assert ids(whole.search(["kb"], None, "library", mode="keyword")) == ["p1"]


def test_words_next_to_each_other_count_as_a_phrase(any_database: Database) -> None:
    passages = [
        ("apart", "Thomas Martin met Jade Henry in Arles, then Thomas Henry.", unit(1)),
        ("together", "In Arles, trees were planted with Thomas Henry's help.", unit(0, 1)),
    ]
    index = KnowledgeIndex(any_database)
    index.add("kb", passages)
    # The first passage has each word more often, the second has them side by side.
    assert ids(index.search(["kb"], None, "Thomas Henry", mode="keyword"))[0] == "apart"
    index.remove("kb", ["apart"])
    index.add("kb", [("apart", "Thomas Martin met Jade Henry in Arles.", unit(1))])
    assert ids(index.search(["kb"], None, "Thomas Henry Arles", mode="keyword")) == [
        "together",
        "apart",
    ]


@pytest.mark.parametrize("memory_from", [1, 10_000], ids=["in-memory", "sqlite-vec"])
def test_hybrid_gives_the_words_candidates_their_cosine(
    any_database: Database, memory_from: int
) -> None:
    # "near" and "far" match the words equally ("far" first, stored first); neither is among
    # the meaning's 2 candidates, yet "near" comes first on its own cosine, computed for it.
    index = KnowledgeIndex(any_database, candidates=2, memory_from=memory_from)
    index.add(
        "kb",
        [
            ("far", "red apples", unit(0.1, 1)),
            ("near", "red apples", unit(1, 0.3)),
            ("other", "green pears", unit(1)),
            ("other2", "yellow lemons", unit(1, 0.01)),
        ],
    )
    hits = index.search(["kb"], unit(1), "red apples", k=2, mode="hybrid")
    assert ids(hits) == ["near", "far"]
    assert hits[0].vector_rank is None and hits[0].keyword_rank is not None
    assert hits[0].score > hits[1].score


def test_big_bases_are_read_whole_from_sqlite_vec_storage(tmp_path: Path) -> None:
    """The fast read of sqlite-vec's blocks gives what the vec0 table gives row by row,
    holes left by removed chunks included."""
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    database.upgrade()
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((2500, DIMS)).astype(np.float32)
    index = KnowledgeIndex(database, memory_from=1)
    index.add("big", [(f"n{i}", "x", v) for i, v in enumerate(vectors[:2100])])
    index.add("other", [(f"o{i}", "x", v) for i, v in enumerate(vectors[2100:])])
    index.remove("big", [f"n{i}" for i in range(0, 2100, 7)])
    with database.engine.connect() as connection:
        base = index._bases_and_total(connection, ["big"])[0]["big"]
        fast = read_vec0_chunks(connection, "knowledge_vectors_8", "big", base)
        slow = connection.exec_driver_sql(
            "SELECT id, embedding FROM knowledge_vectors_8 WHERE kb_id = 'big' ORDER BY id"
        ).all()
    assert fast is not None and base.chunks == len(slow) == 1800
    order = np.argsort(fast[0])
    assert fast[0][order].tolist() == [r[0] for r in slow]
    expected = np.stack([np.frombuffer(r[1], dtype="<f4") for r in slow])
    assert np.array_equal(fast[1][order], expected)
    database.close()


def test_a_base_that_is_most_of_the_index_is_searched_exactly(any_database: Database) -> None:
    # "big" holds most chunks, so its words are first searched without the bases' filter;
    # "small"'s passages say "apple" more, and fill the best places: the search is made
    # again, filtered, and still finds big's one apple.
    index = KnowledgeIndex(any_database)
    filler = [(f"b{i}", f"nothing to see here, number {i}", unit(1)) for i in range(8)]
    index.add("big", [*filler, ("b-apple", "a long story that ends with one apple", unit(1))])
    index.add("small", [(f"s{i}", "apple apple apple", unit(1)) for i in range(4)])
    assert ids(index.search(["big"], None, "apple", k=1, mode="keyword")) == ["b-apple"]
    assert ids(index.search(["big"], unit(1), "apple", k=1, mode="hybrid")) == ["b-apple"]
    found = index.search(["big", "small"], None, "apple", k=5, mode="keyword")
    assert set(ids(found)) == {"b-apple", "s0", "s1", "s2", "s3"}
