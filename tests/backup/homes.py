"""Homes filled through the store's own API (accounts, keys, usage, audit, conversations with
an image, a knowledge base with a file and its index, rules, a model's manifest), and read back
whole to compare two homes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

from iaforall.core.types import Usage
from iaforall.knowledge.bases import KnowledgeBases, NewChunk
from iaforall.knowledge.index import KnowledgeIndex
from iaforall.people.accounts import Accounts
from iaforall.settings import DatabaseSettings, PolicySettings, Settings, StoreSettings
from iaforall.store.audit import AuditLog, AuditRecord
from iaforall.store.conversations import Conversations, NewImage, NewMessage
from iaforall.store.database import Database
from iaforall.store.private import private_dir
from tests.store.postgres import PostgresServer

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
RULES = b'[[rules]]\nid = "no-secrets"\ndescription = "No passwords"\naction = "warn"\n'
TABLES = (
    "users",
    "api_keys",
    "usage_events",
    "audit_log",
    "conversations",
    "messages",
    "message_images",
    "knowledge_bases",
    "knowledge_documents",
    "knowledge_chunks",
    "knowledge_index",
)


def settings_for(home: Path, database_url: str = "", rules: Path | None = None) -> Settings:
    return Settings(
        store=StoreSettings(home=home, install_missing=False),
        database=DatabaseSettings(database_url=database_url),
        policy=PolicySettings(rules_file=rules),
    )


def new_postgresql_database(postgres: PostgresServer, name: str) -> str:
    """A real database of its own (pg_dump copies whole databases, not the test schemas)."""
    with psycopg.connect(
        f"host=127.0.0.1 port={postgres.port} user=postgres dbname=postgres", autocommit=True
    ) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
        connection.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    return f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/{name}"


def fill(
    settings: Settings,
    *,
    conversations: int = 3,
    document_bytes: int = 20_000,
    owner: str = "ada",
    conversations_of: str | None = None,
) -> None:
    """People's data in `settings`' home and database, written through the store's API; the
    conversations are `owner`'s, or `conversations_of`'s (e.g. the local user)."""
    home = settings.store.home
    private_dir(home)
    database = Database(settings.database_url)
    database.upgrade()
    try:
        accounts = Accounts(database, session_hours=1)
        ada = accounts.create_user(owner, None, "admin")
        accounts.create_key(owner, "laptop")
        accounts.record_usage(ada.id, "tiny:latest", Usage(12, 34))
        AuditLog(database).add(
            [
                AuditRecord(
                    ada.id,
                    "no-secrets",
                    "No passwords",
                    "warn",
                    "input",
                    "messages[0]",
                    "my password",
                    "tiny:latest",
                    "chat",
                )
            ]
        )
        store = Conversations(database)
        for i in range(conversations):
            store.create(
                conversations_of or ada.id,
                title=f"Conversation {i} é",
                messages=[
                    NewMessage("user", f"Question {i}", images=(NewImage("image/png", "p", PNG),)),
                    NewMessage("assistant", f"Answer {i} " + "x" * 500, model="tiny:latest"),
                ],
            )
        bases = KnowledgeBases(database, home / "knowledge")
        base = bases.create(ada.id, "Notes", "", "embed")
        upload = home / "upload.txt"
        body = (b"The library opens at nine. " * (document_bytes // 27 + 1))[:document_bytes]
        upload.write_bytes(body)
        document = bases.add_document(
            ada.id,
            base.id,
            name="notes.txt",
            size=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
            file=upload,
        )
        bases.save_chunks(
            document.id,
            base.id,
            [NewChunk("c1", 0, "The library opens at nine.", "", 1, 0, 26, False)],
        )
        index = KnowledgeIndex(database)
        try:
            index.add(base.id, [("c1", "The library opens at nine.", [1.0] + [0.0] * 511)])
        finally:
            index.close()
    finally:
        database.close()
    manifests = home / "manifests"
    manifests.mkdir(exist_ok=True)
    (manifests / "tiny@latest.json").write_text(
        json.dumps(
            {
                "name": "tiny:latest",
                "file": "tiny@latest.gguf",
                "size": 10,
                "sha256": "a" * 64,
                "source": "hf:owner/repo/tiny.gguf",
                "metadata": {"family": "llama"},
                "added_at": "2026-12-01T00:00:00Z",
            }
        )
    )
    if settings.policy.rules_file is not None:
        settings.policy.rules_file.write_bytes(RULES)


def contents(settings: Settings) -> dict[str, Any]:
    """Every row of people's tables (sorted) and every knowledge file's bytes."""
    database = Database(settings.database_url)
    try:
        with database.engine.connect() as connection:
            rows = {
                table: sorted(
                    repr(tuple(row)) for row in connection.execute(text(f"SELECT * FROM {table}"))
                )
                for table in TABLES
            }
    finally:
        database.close()
    knowledge = settings.store.home / "knowledge"
    files = {
        p.relative_to(knowledge).as_posix(): p.read_bytes()
        for p in sorted(knowledge.rglob("*"))
        if p.is_file()
    }
    return {"rows": rows, "files": files}
