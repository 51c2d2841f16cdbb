"""Bypass alerts: a setting per mentorship, and the one comment per bypassed pull request

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gatekeeper.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = gatekeeper.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("mentorship") as batch_op:
        # Running mentorships get the alerts too: on is the default.
        batch_op.add_column(
            sa.Column("bypass_alerts", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.create_table(
        "bypassalert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pull_request_id", sa.Integer(), nullable=False),
        sa.Column("queued_at", WHEN, nullable=False),
        sa.Column("attempted_at", WHEN, nullable=True),
        sa.Column("comment_id", sa.BigInteger(), nullable=True),
        sa.Column("posted_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["pull_request_id"], ["pullrequest.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pull_request_id"),
    )


def downgrade() -> None:
    op.drop_table("bypassalert")
    with op.batch_alter_table("mentorship") as batch_op:
        batch_op.drop_column("bypass_alerts")
