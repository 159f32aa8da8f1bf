"""Alembic environment: migrations run on the connection that `Database.upgrade` passes in."""

from __future__ import annotations

from alembic import context

from iaforall.store import accounts  # noqa: F401  (registers its tables on Base)
from iaforall.store.tables import Base

connection = context.config.attributes["connection"]
# Batch mode lets ALTER TABLE work on SQLite (it copies the table), a no-op elsewhere.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
