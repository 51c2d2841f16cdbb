"""The merge queue's living groups, each carrying one pull request whose gate decides it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gatekeeper.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mergegroup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repo", sqlmodel.sql.sqltypes.AutoString(length=140), nullable=False),
        sa.Column("head_sha", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("head_ref", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("base_ref", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("created_at", gatekeeper.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", gatekeeper.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("destroyed_reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repo", "head_sha"),
    )
    op.create_index("ix_mergegroup_number", "mergegroup", ["number"])


def downgrade() -> None:
    op.drop_index("ix_mergegroup_number", table_name="mergegroup")
    op.drop_table("mergegroup")
