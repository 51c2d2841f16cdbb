"""What an approval binds to: heads and bases as seen over time, commit trees, overrides

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-05 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gatekeeper.models

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "headseen",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pull_request_id", sa.Integer(), nullable=False),
        sa.Column("head_sha", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("base_ref", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("seen_at", gatekeeper.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pull_request_id"], ["pullrequest.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pull_request_id", "seen_at", "head_sha", "base_ref"),
    )
    op.create_index("ix_headseen_pull_request_id", "headseen", ["pull_request_id"])
    # What the old table knew: each head once, at the moment it was first seen.
    op.execute(
        "INSERT INTO headseen (pull_request_id, head_sha, base_ref, seen_at)"
        " SELECT h.pull_request_id, h.head_sha, p.base_ref, h.since"
        " FROM pullhead h JOIN pullrequest p ON p.id = h.pull_request_id"
    )
    op.drop_index("ix_pullhead_pull_request_id", table_name="pullhead")
    op.drop_table("pullhead")

    op.create_table(
        "committree",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repo", sqlmodel.sql.sqltypes.AutoString(length=140), nullable=False),
        sa.Column("sha", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("tree_sha", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repo", "sha"),
    )
    op.create_table(
        "override",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pull_request_id", sa.Integer(), nullable=False),
        sa.Column("maintainer", sqlmodel.sql.sqltypes.AutoString(length=39), nullable=False),
        sa.Column(
            "maintainer_display", sqlmodel.sql.sqltypes.AutoString(length=39), nullable=False
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("commit_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("given_at", gatekeeper.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("comment_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["pull_request_id"], ["pullrequest.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("comment_id"),
    )
    op.create_index("ix_override_pull_request_id", "override", ["pull_request_id"])
    with op.batch_alter_table("pullrequest") as batch_op:
        batch_op.add_column(
            sa.Column(
                "base_changed_at", gatekeeper.models.UTCDateTime(timezone=True), nullable=True
            )
        )
    with op.batch_alter_table("mentorship") as batch_op:
        batch_op.add_column(
            sa.Column(
                "same_content_approvals", sa.Boolean(), nullable=False, server_default=sa.true()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("mentorship") as batch_op:
        batch_op.drop_column("same_content_approvals")
    with op.batch_alter_table("pullrequest") as batch_op:
        batch_op.drop_column("base_changed_at")
    op.drop_index("ix_override_pull_request_id", table_name="override")
    op.drop_table("override")
    op.drop_table("committree")
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
    op.execute(
        "INSERT INTO pullhead (pull_request_id, head_sha, since)"
        " SELECT pull_request_id, head_sha, MIN(seen_at) FROM headseen"
        " GROUP BY pull_request_id, head_sha"
    )
    op.drop_index("ix_headseen_pull_request_id", table_name="headseen")
    op.drop_table("headseen")
