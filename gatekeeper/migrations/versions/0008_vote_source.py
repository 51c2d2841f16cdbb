"""Where a promotion vote's numbers came from: typed, or read from the forum's poll

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gatekeeper.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mentorship") as batch_op:
        batch_op.add_column(
            sa.Column("vote_source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "vote_fetched_at", gatekeeper.models.UTCDateTime(timezone=True), nullable=True
            )
        )
    # Every vote recorded before the forum could be read was typed by hand.
    op.execute("UPDATE mentorship SET vote_source = 'manual' WHERE votes_for IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("mentorship") as batch_op:
        batch_op.drop_column("vote_fetched_at")
        batch_op.drop_column("vote_source")
