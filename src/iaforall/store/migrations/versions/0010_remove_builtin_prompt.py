"""a conversation may remove its model's built-in system prompt (an empty one is sent)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, never batch mode: on SQLite, batch mode rebuilds the table with this
    # server default, and dropping the old `conversations` cascades to every message
    # (tests/store/test_upgrades.py caught it).
    op.add_column(
        "conversations",
        sa.Column("remove_builtin_prompt", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("remove_builtin_prompt")
