"""A versioned outbox per commit, a job queue, redeliveries; repositories can be gone

Replaces ``postedcheck`` (what was posted) and ``mergegroup`` with ``commitcheck`` (what each
commit should show, with a version, and what was posted), drops ``pullrequest.needs_post``,
and keeps delivery ids whole.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gatekeeper.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

When = gatekeeper.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "commitcheck",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repo", sqlmodel.sql.sqltypes.AutoString(length=140), nullable=False),
        sa.Column("head_sha", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("desired_at", When, nullable=False),
        sa.Column("fresh_version", sa.Integer(), nullable=True),
        sa.Column("expires_at", When, nullable=True),
        sa.Column("posted_version", sa.Integer(), nullable=False),
        sa.Column("posted_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("check_run_id", sa.BigInteger(), nullable=True),
        sa.Column("posted_at", When, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", When, nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("gave_up", sa.Boolean(), nullable=False),
        sa.Column("claimed_until", When, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repo", "head_sha", "name"),
    )
    op.create_index("ix_commitcheck_pending", "commitcheck", ["posted_version", "version"])
    # What GitHub shows stays known, so nothing is posted twice after the upgrade.
    op.execute(
        "INSERT INTO commitcheck (repo, head_sha, name, version, fingerprint, body, desired_at,"
        " posted_version, posted_fingerprint, check_run_id, posted_at, attempts, gave_up)"
        " SELECT repo, head_sha, name, 1, fingerprint, '{}', posted_at, 1, fingerprint,"
        " check_run_id, posted_at, 0, false FROM postedcheck"
    )
    op.drop_table("postedcheck")
    with op.batch_alter_table("mergegroup") as batch_op:
        batch_op.drop_index("ix_mergegroup_posted_at")
    op.drop_table("mergegroup")

    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("run_after", When, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("claimed_until", When, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_job_key", "job", ["key"], unique=True)
    op.create_index("ix_job_run_after", "job", ["run_after"])
    op.create_table(
        "redelivery",
        sa.Column("guid", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("github_id", sa.BigInteger(), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("requested_at", When, nullable=False),
        sa.PrimaryKeyConstraint("guid"),
    )
    op.create_table(
        "sweeprun",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("finished_at", When, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("pullrequest") as batch_op:
        batch_op.drop_index("ix_pullrequest_needs_post")
        batch_op.drop_column("needs_post")
    with op.batch_alter_table("repository") as batch_op:
        batch_op.add_column(sa.Column("gone_at", When, nullable=True))
        batch_op.add_column(sa.Column("scanned_at", When, nullable=True))
        batch_op.add_column(
            sa.Column("pulls_etags", sa.JSON(), nullable=False, server_default="[]")
        )
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.alter_column(
            "delivery_id",
            type_=sqlmodel.sql.sqltypes.AutoString(length=255),
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
        )
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.drop_column("payload")
        batch_op.alter_column(
            "delivery_id",
            type_=sqlmodel.sql.sqltypes.AutoString(length=64),
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=255),
        )
    with op.batch_alter_table("repository") as batch_op:
        batch_op.drop_column("pulls_etags")
        batch_op.drop_column("scanned_at")
        batch_op.drop_column("gone_at")
    with op.batch_alter_table("pullrequest") as batch_op:
        batch_op.add_column(
            sa.Column("needs_post", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index("ix_pullrequest_needs_post", ["needs_post"])
    op.drop_table("sweeprun")
    op.drop_table("redelivery")
    op.drop_index("ix_job_run_after", table_name="job")
    op.drop_index("ix_job_key", table_name="job")
    op.drop_table("job")
    op.create_table(
        "mergegroup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repo", sqlmodel.sql.sqltypes.AutoString(length=140), nullable=False),
        sa.Column("head_sha", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=True),
        sa.Column("requested_at", When, nullable=False),
        sa.Column("posted_at", When, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repo", "head_sha"),
    )
    with op.batch_alter_table("mergegroup") as batch_op:
        batch_op.create_index("ix_mergegroup_posted_at", ["posted_at"], unique=False)
    op.create_table(
        "postedcheck",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repo", sqlmodel.sql.sqltypes.AutoString(length=140), nullable=False),
        sa.Column("head_sha", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("check_run_id", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("posted_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repo", "head_sha", "name"),
    )
    op.execute(
        "INSERT INTO postedcheck (repo, head_sha, name, check_run_id, fingerprint, posted_at)"
        " SELECT repo, head_sha, name, check_run_id, posted_fingerprint, posted_at FROM commitcheck"
        " WHERE check_run_id IS NOT NULL AND posted_at IS NOT NULL"
    )
    op.drop_index("ix_commitcheck_pending", table_name="commitcheck")
    op.drop_table("commitcheck")
