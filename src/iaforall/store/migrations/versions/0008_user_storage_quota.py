"""a user's own storage quota (MB of knowledge files and conversation images)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_quotas") as batch:
        batch.add_column(sa.Column("storage_mb", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_quotas") as batch:
        batch.drop_column("storage_mb")
