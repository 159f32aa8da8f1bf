"""audit_log: the decisions of the published content rules (append-only)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_REFUSAL = "the audit log is append-only"

# The database itself refuses to change or remove an entry, whatever code runs.
_SQLITE = [
    f"""CREATE TRIGGER audit_log_no_{verb} BEFORE {verb.upper()} ON audit_log
    BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"""
    for verb in ("update", "delete")
]
_POSTGRESQL = [
    f"""CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '{_REFUSAL}' USING ERRCODE = 'restrict_violation'; END $$""",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_user_id", "audit_log", ["user_id"])
    op.create_index("ix_audit_log_rule_id", "audit_log", ["rule_id"])
    op.create_index("ix_audit_log_rule_at", "audit_log", ["rule_id", "at"])
    for statement in _statements():
        op.execute(statement)


def _statements() -> list[str]:
    dialect = op.get_bind().dialect.name
    return {"sqlite": _SQLITE, "postgresql": _POSTGRESQL}.get(dialect, [])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    else:
        op.drop_table("audit_log")  # its triggers go with it
