"""The audit log on a real SQLite file, migrated by the real Alembic: append-only, filtered,
paged, exported."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from iaforall.store import audit
from iaforall.store.audit import AuditFilter, AuditLog, AuditRecord, export_csv, export_json
from iaforall.store.database import Database

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def database(any_database: Database) -> Database:
    """SQLite and a real PostgreSQL (tests/store/postgres.py)."""
    return any_database


def entry(n: int, **fields: object) -> AuditRecord:
    values: dict[str, object] = {
        "user": "ana" if n % 2 else "bob",
        "rule_id": "no-weapons" if n % 3 else "phone-numbers",
        "description": "A rule.",
        "action": "block" if n % 3 else "warn",
        "stage": "input",
        "where": f"messages[{n}]",
        "excerpt": f"excerpt {n}",
        "model": "tiny:latest",
        "kind": "chat",
        "at": T0 + timedelta(minutes=n),
    }
    values.update(fields)
    return AuditRecord(**values)  # type: ignore[arg-type]


def test_entries_are_kept_as_written(database: Database) -> None:
    log = AuditLog(database)
    log.add([entry(1, excerpt="Une bombe artisanale ?", where="messages[2]")])
    (found,) = log.list()
    assert found.as_json() == {
        "id": 1,
        "at": "2026-11-29T12:01:00Z",
        "user": "ana",
        "rule_id": "no-weapons",
        "description": "A rule.",
        "action": "block",
        "stage": "input",
        "where": "messages[2]",
        "excerpt": "Une bombe artisanale ?",
        "model": "tiny:latest",
        "kind": "chat",
    }


def test_the_database_refuses_to_change_or_remove_an_entry(database: Database) -> None:
    AuditLog(database).add([entry(1)])
    for statement in ("UPDATE audit_log SET excerpt = 'nothing'", "DELETE FROM audit_log"):
        with (
            pytest.raises(sa.exc.IntegrityError, match="append-only"),
            database.engine.begin() as c,
        ):
            c.execute(sa.text(statement))
    assert AuditLog(database).list()[0].excerpt == "excerpt 1"


def test_the_repository_offers_no_way_to_change_the_log() -> None:
    public = {name for name in vars(AuditLog) if not name.startswith("_")}
    assert public == {"add", "list", "iterate"}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (AuditFilter(), list(range(12, 0, -1))),
        (AuditFilter(user="ana"), [11, 9, 7, 5, 3, 1]),
        (AuditFilter(rule_id="phone-numbers"), [12, 9, 6, 3]),
        (AuditFilter(action="warn", user="bob"), [12, 6]),
        (AuditFilter(since=T0 + timedelta(minutes=10)), [12, 11, 10]),
        (AuditFilter(until=T0 + timedelta(minutes=3)), [2, 1]),
        (
            AuditFilter(since=T0 + timedelta(minutes=4), until=T0 + timedelta(minutes=8)),
            [7, 6, 5, 4],
        ),
        (AuditFilter(user="nobody"), []),
    ],
)
def test_filters(database: Database, where: AuditFilter, expected: list[int]) -> None:
    log = AuditLog(database)
    log.add([entry(n) for n in range(1, 13)])
    assert [e.id for e in log.list(where)] == expected
    assert [e.id for e in log.iterate(where)] == sorted(expected)


def test_pages_newest_first(database: Database) -> None:
    log = AuditLog(database)
    log.add([entry(n) for n in range(1, 8)])
    first = log.list(limit=3)
    second = log.list(limit=3, before=first[-1].id)
    third = log.list(limit=3, before=second[-1].id)
    assert [[e.id for e in page] for page in (first, second, third)] == [[7, 6, 5], [4, 3, 2], [1]]


def test_export_reads_a_large_log_in_batches(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "EXPORT_BATCH", 4)
    log = AuditLog(database)
    log.add([entry(n) for n in range(1, 11)])
    assert [e.id for e in log.iterate()] == list(range(1, 11))
    assert [e.id for e in log.iterate(AuditFilter(user="bob"))] == [2, 4, 6, 8, 10]


def test_csv_export(database: Database) -> None:
    log = AuditLog(database)
    log.add([entry(1, excerpt='say "hi", then\nleave'), entry(2, excerpt="=HYPERLINK(1)")])
    rows = list(csv.DictReader(io.StringIO("".join(export_csv(log.iterate())))))
    assert [r["id"] for r in rows] == ["1", "2"]
    assert rows[0]["excerpt"] == 'say "hi", then\nleave'
    assert rows[0]["at"] == "2026-11-29T12:01:00Z"
    assert rows[1]["excerpt"] == "'=HYPERLINK(1)"  # never a formula in a spreadsheet
    assert list(rows[0]) == list(audit.FIELDS)


def test_json_export(database: Database) -> None:
    log = AuditLog(database)
    assert json.loads("".join(export_json(log.iterate()))) == []
    log.add([entry(1), entry(2, excerpt="crêpes ✓")])
    exported = json.loads("".join(export_json(log.iterate())))
    assert [e["excerpt"] for e in exported] == ["excerpt 1", "crêpes ✓"]
    assert exported[0] == log.list()[-1].as_json()
