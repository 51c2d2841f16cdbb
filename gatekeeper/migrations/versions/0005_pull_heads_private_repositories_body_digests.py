"""Pull request heads over time, private repositories, delivery body digests, claim tokens

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gatekeeper.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pullhead",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pull_request_id", sa.Integer(), nullable=False),
        sa.Column("head_sha", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("since", gatekeeper.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pull_request_id"], ["pullrequest.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pull_request_id", "head_sha"),
    )
    op.create_index("ix_pullhead_pull_request_id", "pullhead", ["pull_request_id"])
    # What is known of each pull request's head so far: its current one, since first seen.
    op.execute(
        "INSERT INTO pullhead (pull_request_id, head_sha, since)"
        " SELECT id, head_sha, first_seen_at FROM pullrequest"
    )
    with op.batch_alter_table("repository") as batch_op:
        batch_op.add_column(
            sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.add_column(
            sa.Column("body_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.create_index("ix_delivery_body_digest", ["body_digest"])

    with op.batch_alter_table("commitcheck") as batch_op:
        batch_op.add_column(
            sa.Column("claim_token", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("commitcheck") as batch_op:
        batch_op.drop_column("claim_token")
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.drop_index("ix_delivery_body_digest")
        batch_op.drop_column("body_digest")
    with op.batch_alter_table("repository") as batch_op:
        batch_op.drop_column("private")
    op.drop_index("ix_pullhead_pull_request_id", table_name="pullhead")
    op.drop_table("pullhead")
