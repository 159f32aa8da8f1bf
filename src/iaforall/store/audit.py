"""The audit log of policy decisions: append-only (add, list, export; never update or delete).

Each row is one decision a published rule took: who, when, which rule, what it did, on which
model and part of the request, with a short excerpt of the matched text. Admins read it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import Select

from iaforall.store.database import Database
from iaforall.store.tables import Base, UtcDateTime, utcnow

EXPORT_BATCH = 1_000
FIELDS = (
    "id",
    "at",
    "user",
    "rule_id",
    "description",
    "action",
    "stage",
    "where",
    "excerpt",
    "model",
    "kind",
)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    user: Mapped[str] = mapped_column("user_id", String(64), index=True)
    rule_id: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text)  # as the rule said it then
    action: Mapped[str] = mapped_column(String(8))  # block | warn | log
    stage: Mapped[str] = mapped_column(String(8))  # input | output
    where: Mapped[str] = mapped_column("location", String(64))  # messages[2], prompt, output
    excerpt: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # chat | completion | web

    __table_args__ = (Index("ix_audit_log_rule_at", "rule_id", "at"),)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One decision to write."""

    user: str
    rule_id: str
    description: str
    action: str
    stage: str
    where: str
    excerpt: str
    model: str | None
    kind: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditView:
    id: int
    at: datetime
    user: str
    rule_id: str
    description: str
    action: str
    stage: str
    where: str
    excerpt: str
    model: str | None
    kind: str

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat().replace("+00:00", "Z")}


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Entries with `since <= at < until`, of this user, rule and action (None: any)."""

    since: datetime | None = None
    until: datetime | None = None
    user: str | None = None
    rule_id: str | None = None
    action: str | None = None

    def apply(self, query: Select[AuditEntry]) -> Select[AuditEntry]:
        if self.since is not None:
            query = query.where(AuditEntry.at >= self.since)
        if self.until is not None:
            query = query.where(AuditEntry.at < self.until)
        if self.user is not None:
            query = query.where(AuditEntry.user == self.user)
        if self.rule_id is not None:
            query = query.where(AuditEntry.rule_id == self.rule_id)
        if self.action is not None:
            query = query.where(AuditEntry.action == self.action)
        return query


def _view(row: AuditEntry) -> AuditView:
    return AuditView(
        row.id,
        row.at,
        row.user,
        row.rule_id,
        row.description,
        row.action,
        row.stage,
        row.where,
        row.excerpt,
        row.model,
        row.kind,
    )


class AuditLog:
    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, records: Sequence[AuditRecord]) -> None:
        """Write decisions, all or none (one transaction)."""
        if not records:
            return
        with self._db.session() as session:
            session.add_all(
                AuditEntry(
                    at=record.at or utcnow(),
                    user=record.user,
                    rule_id=record.rule_id,
                    description=record.description,
                    action=record.action,
                    stage=record.stage,
                    where=record.where,
                    excerpt=record.excerpt,
                    model=record.model,
                    kind=record.kind,
                )
                for record in records
            )

    def list(
        self, where: AuditFilter = AuditFilter(), *, limit: int = 100, before: int | None = None
    ) -> list[AuditView]:
        """A page, newest first; the next page is `before=` the last id of this one."""
        query = where.apply(select(AuditEntry))
        if before is not None:
            query = query.where(AuditEntry.id < before)
        query = query.order_by(AuditEntry.id.desc()).limit(limit)
        with self._db.session() as session:
            return [_view(row) for row in session.scalars(query)]

    def iterate(self, where: AuditFilter = AuditFilter()) -> Iterator[AuditView]:
        """Every matching entry, oldest first, read in batches (a short transaction each), so
        a large log is exported without being held in memory."""
        after = 0
        while True:
            query = where.apply(select(AuditEntry)).where(AuditEntry.id > after)
            with self._db.session() as session:
                rows = [
                    _view(r)
                    for r in session.scalars(query.order_by(AuditEntry.id).limit(EXPORT_BATCH))
                ]
            yield from rows
            if len(rows) < EXPORT_BATCH:
                return
            after = rows[-1].id


def export_csv(entries: Iterator[AuditView]) -> Iterator[str]:
    """A CSV header then one line per entry, as they come. Cells a spreadsheet would read as a
    formula (=, +, -, @ first) are prefixed with ' so an excerpt cannot run in it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells: Sequence[Any]) -> str:
        writer.writerow(cells)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(FIELDS)
    for entry in entries:
        row = entry.as_json()
        yield line([_inert(row[name]) for name in FIELDS])


def _inert(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def export_json(entries: Iterator[AuditView]) -> Iterator[str]:
    """A JSON array written entry by entry."""
    yield "["
    for i, entry in enumerate(entries):
        yield ("," if i else "") + "\n" + json.dumps(entry.as_json(), ensure_ascii=False)
    yield "\n]\n"
