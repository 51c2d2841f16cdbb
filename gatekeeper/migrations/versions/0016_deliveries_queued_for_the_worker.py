"""Deliveries stored as they came, for the worker to apply: the raw body replaces the payload

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gatekeeper.models

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUED = sa.text("outcome = 'queued'")


def upgrade() -> None:
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.add_column(sa.Column("body", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("retry_at", gatekeeper.models.UTCDateTime(timezone=True), nullable=True)
        )
    # A deferred delivery kept its parsed payload: it keeps the same JSON as its body.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE delivery SET body = convert_to(payload::text, 'UTF8') WHERE payload IS NOT NULL"
        )
    else:
        op.execute("UPDATE delivery SET body = CAST(payload AS BLOB) WHERE payload IS NOT NULL")
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.drop_column("payload")
    op.create_index(
        "ix_delivery_queued",
        "delivery",
        ["received_at"],
        postgresql_where=QUEUED,
        sqlite_where=QUEUED,
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_queued", table_name="delivery")
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
    # A delivery still queued had no place before, and no worker of that version would apply
    # it: it is kept as failed, with its payload and why, for GitHub's "Redeliver".
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE delivery SET payload = convert_from(body, 'UTF8')::json WHERE body IS NOT NULL"
        )
    else:
        op.execute("UPDATE delivery SET payload = CAST(body AS TEXT) WHERE body IS NOT NULL")
    op.execute(
        "UPDATE delivery SET outcome = 'failed',"
        " error = 'still queued when Gatekeeper was downgraded: redeliver it from GitHub'"
        " WHERE outcome = 'queued'"
    )
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.drop_column("retry_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("body")
