"""The conversation store on each database: SQLite and a real PostgreSQL."""

from __future__ import annotations

import pytest

from iaforall.store.conversations import Conversations
from iaforall.store.database import Database


@pytest.fixture
def store(any_database: Database) -> Conversations:
    """Conversations on a migrated database: SQLite, then PostgreSQL (tests/store/postgres.py)."""
    return Conversations(any_database)
