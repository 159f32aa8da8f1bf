"""knowledge_index: chunk vectors and words for retrieval (see iaforall.knowledge.index)

On SQLite: vectors in sqlite-vec `vec0` tables (one per vector size, partitioned by knowledge
base; the 512-dimension one of the default encoder is made here, others when first used) and
words in an FTS5 table (BM25). On PostgreSQL (no pgvector in our registries): vectors as bytes
beside each row, searched in numpy, and words as a `tsvector` with a GIN index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The same text as iaforall.knowledge.index (a migration never imports the code it migrates).
# kb_id holds one word per base (a hash of its id), so that filtering by it is cheap.
FTS = (
    "CREATE VIRTUAL TABLE knowledge_fts USING fts5("
    "text, kb_id, tokenize = 'unicode61 remove_diacritics 2')"
)
VECTORS_512 = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS knowledge_vectors_512 USING vec0("
    "id INTEGER PRIMARY KEY, kb_id TEXT PARTITION KEY, "
    "embedding FLOAT[512] DISTANCE_METRIC=cosine)"
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "knowledge_index_kbs",
        sa.Column("kb_id", sa.String(64), primary_key=True),
        sa.Column("dimensions", sa.Integer(), nullable=False),
        # Raised by every change of the base: in-memory copies of its vectors are then stale.
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("chunks", sa.Integer(), nullable=False, server_default="0"),
    )
    columns: list[sa.Column[object]] = [
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kb_id", sa.String(64), nullable=False),
        sa.Column("chunk_id", sa.String(64), nullable=False),
    ]
    if not sqlite:
        columns += [
            sa.Column("vector", sa.LargeBinary(), nullable=False),  # float32, little-endian
            sa.Column("words", postgresql.TSVECTOR(), nullable=False),
        ]
    op.create_table(
        "knowledge_index",
        *columns,
        sa.UniqueConstraint("kb_id", "chunk_id", name="uq_knowledge_index_kb_chunk"),
        sqlite_autoincrement=True,  # ids are never reused: vec0 and FTS5 rows follow them
    )
    op.create_index("ix_knowledge_index_chunk_id", "knowledge_index", ["chunk_id"])
    if sqlite:
        op.execute(FTS)
        op.execute(VECTORS_512)
    else:
        op.create_index(
            "ix_knowledge_index_words", "knowledge_index", ["words"], postgresql_using="gin"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        names = bind.execute(
            sa.text(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE "
                "'CREATE VIRTUAL TABLE%' AND name LIKE 'knowledge_vectors_%'"
            )
        ).scalars()
        for name in list(names):
            op.execute(f'DROP TABLE "{name}"')  # its shadow tables go with it
        op.execute("DROP TABLE knowledge_fts")
    op.drop_table("knowledge_index")
    op.drop_table("knowledge_index_kbs")
