"""The month's report posted to the promotion vote's forum topic

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 22:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gatekeeper.models

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reportpost",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mentorship_id", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("claimed_at", gatekeeper.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True),
        sa.Column("posted_at", gatekeeper.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("uncertain", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["mentorship_id"], ["mentorship.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mentorship_id", "ordinal"),
    )
    op.create_index("ix_reportpost_mentorship_id", "reportpost", ["mentorship_id"])


def downgrade() -> None:
    op.drop_index("ix_reportpost_mentorship_id", table_name="reportpost")
    op.drop_table("reportpost")
