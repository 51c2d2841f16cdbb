"""Notices to the team's chat: a per-mentorship webhook URL, and one row per notice

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gatekeeper.models

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mentorship") as batch_op:
        batch_op.add_column(
            sa.Column("notify_url", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
    op.create_table(
        "notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mentorship_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("repo", sqlmodel.sql.sqltypes.AutoString(length=140), nullable=True),
        sa.Column("pr_number", sa.Integer(), nullable=True),
        sa.Column("queued_at", gatekeeper.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", gatekeeper.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("failed_at", gatekeeper.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["mentorship_id"], ["mentorship.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mentorship_id", "kind", "subject"),
    )
    op.create_index("ix_notice_mentorship_id", "notice", ["mentorship_id"])


def downgrade() -> None:
    op.drop_index("ix_notice_mentorship_id", table_name="notice")
    op.drop_table("notice")
    with op.batch_alter_table("mentorship") as batch_op:
        batch_op.drop_column("notify_url")
