"""Claims and lookups without a scan: the checks owed, the leases held, a commit's pull requests

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWED = sa.text("posted_version < version")
LEASED = sa.text("claimed_until IS NOT NULL")


def upgrade() -> None:
    # The index on (posted_version, version) could not answer "posted_version < version",
    # a comparison of two columns: every claim read the whole table.
    op.drop_index("ix_commitcheck_pending", table_name="commitcheck")
    op.create_index(
        "ix_commitcheck_owed",
        "commitcheck",
        ["desired_at", "id"],
        postgresql_where=OWED,
        sqlite_where=OWED,
    )
    # Every delivery that touches a commit asks for its pull requests; a repository keeps
    # every pull request it ever had.
    op.create_index("ix_pullrequest_repo_head_sha", "pullrequest", ["repo", "head_sha"])
    op.create_index(
        "ix_commitcheck_leased",
        "commitcheck",
        ["installation_id", "claimed_until"],
        postgresql_where=LEASED,
        sqlite_where=LEASED,
    )


def downgrade() -> None:
    op.drop_index("ix_pullrequest_repo_head_sha", table_name="pullrequest")
    op.drop_index("ix_commitcheck_leased", table_name="commitcheck")
    op.drop_index("ix_commitcheck_owed", table_name="commitcheck")
    op.create_index("ix_commitcheck_pending", "commitcheck", ["posted_version", "version"])
