"""Searching one's conversations reads one's own rows only: other people's messages, however
many or large, are neither folded nor scanned (measured on a real SQLite file: characters
given to the fold function, and SQLite's own count of virtual-machine steps)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from iaforall.store import database as database_module
from iaforall.store.conversations import Conversations, NewMessage
from iaforall.store.database import Database

STEP = 10  # SQLite calls the progress handler every STEP virtual-machine instructions


@dataclass
class Meter:
    folded_chars: int = 0
    steps: int = 0
    log: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.folded_chars = self.steps = 0


@pytest.fixture
def metered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Conversations, Meter]]:
    meter = Meter()
    real = database_module._fold_or_none

    def counting(text: str | None) -> str | None:
        meter.folded_chars += len(text or "")
        return real(text)

    # Registered on each new connection by name lookup, so the counting one is used.
    monkeypatch.setattr(database_module, "_fold_or_none", counting)
    database = Database(f"sqlite:///{tmp_path / 'iaforall.db'}")
    database.upgrade()

    def on_connect(connection: Any, _record: Any) -> None:
        assert isinstance(connection, sqlite3.Connection)

        def step() -> int:
            meter.steps += 1
            return 0

        connection.set_progress_handler(step, STEP)

    event.listen(database.engine, "connect", on_connect)
    database.engine.dispose()  # connections made from now on are metered
    yield Conversations(database), meter
    database.close()


def _alice(store: Conversations) -> str:
    store.create("alice", title="Cuisine", messages=[NewMessage("user", "Des crêpes ce soir ?")])
    store.create("alice", title="Maths", messages=[NewMessage("user", "2 + 2 ?")])
    return store.create("alice", title="Voyage", messages=[NewMessage("user", "Lyon")]).id


def test_search_never_folds_other_peoples_messages(metered: tuple[Conversations, Meter]) -> None:
    store, meter = metered
    _alice(store)
    # Bob's messages all contain the words searched for: 300 messages of 20 KB (6 MB).
    big = "crêpes " + "x" * 20_000
    store.create("bob", title="crêpes de Bob", messages=[NewMessage("user", big)] * 300)
    meter.reset()
    found = store.list("alice", "CREPES")
    assert [c.title for c in found] == ["Cuisine"]  # never Bob's
    assert found[0].snippet is not None and "crêpes" in found[0].snippet
    # Alice's own text is about 60 characters; Bob's is 6 million.
    assert meter.folded_chars < 1_000, meter.folded_chars
    assert store.list("alice", "Bob") == []
    assert [c.title for c in store.list("bob", "crepes")] == ["crêpes de Bob"]


def test_listing_and_searching_cost_the_same_whatever_others_store(
    metered: tuple[Conversations, Meter],
) -> None:
    store, meter = metered
    _alice(store)

    def cost() -> tuple[int, int]:
        meter.reset()
        store.list("alice")
        listing = meter.steps
        meter.reset()
        assert [c.title for c in store.list("alice", "lyon")] == ["Voyage"]
        return listing, meter.steps

    before = cost()
    for n in range(20):  # Bob: 20 conversations of 200 messages each, some matching
        store.create(
            "bob",
            title=f"bob {n}",
            messages=[NewMessage("user", f"Lyon, message {i}") for i in range(200)],
        )
    after = cost()
    # Same work for Alice with Bob's 4,000 messages as without them (a scan of Bob's rows
    # would cost thousands of steps more).
    assert after[0] <= before[0] * 1.5 + 5, (before, after)
    assert after[1] <= before[1] * 1.5 + 5, (before, after)
