"""A database made by the oldest schema this code supports, filled at each step with what that
schema holds, then upgraded to the latest: every row reads through today's store API, and the
audit log still refuses changes. On SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, text
from sqlalchemy.exc import DBAPIError

from iaforall.core.types import DocumentId, KnowledgeBaseId
from iaforall.knowledge.bases import KnowledgeBases
from iaforall.knowledge.index import KnowledgeIndex
from iaforall.people.accounts import Accounts
from iaforall.people.secrets import digest, hash_password
from iaforall.store.audit import AuditLog
from iaforall.store.conversations import Conversations
from iaforall.store.database import Database, known_schema_versions

OLDEST = known_schema_versions()[0]
WHEN = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).replace(tzinfo=None)
PASSWORD = "an old but long password"
KEY_ID = "0123456789ab"
KEY_SECRET = "s3cret-of-the-old-key-0123456789abcdefghijk"
PNG = bytes.fromhex("89504e470d0a1a0a")
VECTOR = [1.0] + [0.0] * 511


def _insert(database: Database, table: str, *rows: dict[str, Any]) -> None:
    """Rows written in the table as the schema of the moment has it (reflected, not today's
    classes, which describe the latest schema)."""
    with database.engine.begin() as connection:
        reflected = Table(table, MetaData(), autoload_with=connection)
        connection.execute(reflected.insert(), list(rows))


def _fill_step_by_step(database: Database) -> None:
    database.upgrade(OLDEST)
    _insert(database, "conversations", {
        "id": "c1", "owner": "u1", "title": "Crêpes", "model": "tiny:latest",
        "system_prompt": "", "settings": {"temperature": 0.2},
        "created_at": WHEN, "updated_at": WHEN,
    })  # fmt: skip
    _insert(
        database,
        "messages",
        *(
            {
                "id": f"m{i}",
                "conversation_id": "c1",
                "position": i,
                "role": role,
                "content": content,
                "model": None,
                "status": "complete",
                "error": None,
                "prompt_tokens": None,
                "completion_tokens": None,
                "created_at": WHEN,
            }
            for i, (role, content) in enumerate(
                [("user", "How do I make crêpes?"), ("assistant", "Flour, eggs, milk.")]
            )
        ),
    )
    database.upgrade("0002")
    _insert(database, "users", {
        "id": "u1", "name": "ada", "role": "admin", "password_hash": hash_password(PASSWORD),
        "disabled": False, "created_at": WHEN,
    })  # fmt: skip
    _insert(database, "api_keys", {
        "id": KEY_ID, "user_id": "u1", "name": "laptop", "secret_hash": digest(KEY_SECRET),
        "created_at": WHEN, "last_used_at": None, "revoked_at": None,
    })  # fmt: skip
    _insert(database, "user_quotas", {
        "user_id": "u1", "tokens_per_day": 1000, "concurrent_requests": 2, "max_context": None,
    })  # fmt: skip
    _insert(database, "usage_events", {
        "user_id": "u1", "model": "tiny:latest", "at": WHEN,
        "prompt_tokens": 12, "completion_tokens": 34,
    })  # fmt: skip
    database.upgrade("0003")
    _insert(database, "audit_log", {
        "at": WHEN, "user_id": "u1", "rule_id": "no-secrets", "description": "No passwords",
        "action": "warn", "stage": "input", "location": "messages[0]", "excerpt": "password",
        "model": "tiny:latest", "kind": "chat",
    })  # fmt: skip
    database.upgrade("0004")
    _insert(database, "message_images", {
        "id": "i1", "message_id": "m0", "position": 0, "media_type": "image/png",
        "name": "pan.png", "size": len(PNG), "data": PNG,
    })  # fmt: skip
    database.upgrade("0006")
    _insert(database, "knowledge_bases", {
        "id": "kb1", "owner": "u1", "name": "Recipes", "description": "",
        "embedding_model": "embed", "created_at": WHEN, "updated_at": WHEN,
    })  # fmt: skip
    _insert(database, "knowledge_documents", {
        "id": "d1", "kb_id": "kb1", "name": "crepes.txt", "size": 5, "sha256": "0" * 64,
        "status": "ready", "progress": 1.0, "error": None, "error_code": None,
        "format": "text", "pages": 1, "ocr_pages": 0, "chunks": 1,
        "created_at": WHEN, "updated_at": WHEN,
    })  # fmt: skip
    _insert(database, "knowledge_chunks", {
        "id": "ch1", "document_id": "d1", "kb_id": "kb1", "position": 0,
        "text": "Flour, eggs, milk.", "location": "", "page": 1, "start": 0, "end": 18,
        "ocr": False,
    })  # fmt: skip
    index = KnowledgeIndex(database)  # its tables have not changed since 0005
    try:
        index.add(KnowledgeBaseId("kb1"), [("ch1", "Flour, eggs, milk.", VECTOR)])
    finally:
        index.close()


def test_the_oldest_schema_upgrades_with_every_row(database_url: str, tmp_path: Path) -> None:
    database = Database(database_url)
    try:
        _fill_step_by_step(database)
        database.upgrade()
        assert database.schema_version() == known_schema_versions()[-1]

        conversation = Conversations(database).get("u1", "c1")  # type: ignore[arg-type]
        assert conversation.title == "Crêpes" and conversation.knowledge == ()
        assert [m.content for m in conversation.messages] == [
            "How do I make crêpes?",
            "Flour, eggs, milk.",
        ]
        image = Conversations(database).image("u1", "c1", "i1")  # type: ignore[arg-type]
        assert image.data == PNG

        accounts = Accounts(database, session_hours=1)
        assert accounts.check_password("ada", PASSWORD) is not None
        assert accounts.key_principal(f"iaf_{KEY_ID}_{KEY_SECRET}") is not None
        ada = accounts.get_user("ada")
        assert ada.quota.tokens_per_day == 1000 and ada.quota.storage_mb is None
        assert sum(r.completion_tokens for r in accounts.usage(days=366 * 5)) == 34

        entries = AuditLog(database).list()
        assert [(e.rule_id, e.excerpt) for e in entries] == [("no-secrets", "password")]

        bases = KnowledgeBases(database, tmp_path / "knowledge")
        assert [b.name for b in bases.all_for("u1")] == ["Recipes"]
        [document] = bases.documents("u1", KnowledgeBaseId("kb1"))
        assert document.status == "ready"
        assert bases.chunk_ids(DocumentId("d1")) == ["ch1"]
        index = KnowledgeIndex(database)
        try:
            hits = index.search([KnowledgeBaseId("kb1")], VECTOR, "eggs", k=1)
        finally:
            index.close()
        assert [h.chunk_id for h in hits] == ["ch1"]

        for statement in ("UPDATE audit_log SET excerpt = 'gone'", "DELETE FROM audit_log"):
            refused = pytest.raises(DBAPIError, match="append-only")
            with refused, database.engine.begin() as connection:
                connection.execute(text(statement))
        assert len(AuditLog(database).list()) == 1
    finally:
        database.close()
