"""A pull request's deliveries applied together: each delivery names the pull request it is about

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUED = sa.text("outcome = 'queued'")


def upgrade() -> None:
    # Deliveries stored before this are applied one at a time, as they were.
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("repository_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("pull_number", sa.Integer(), nullable=True))
    op.create_index(
        "ix_delivery_queued_for_pull",
        "delivery",
        ["repository_id", "pull_number", "received_at"],
        postgresql_where=QUEUED,
        sqlite_where=QUEUED,
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_queued_for_pull", table_name="delivery")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("pull_number")
        batch.drop_column("repository_id")
