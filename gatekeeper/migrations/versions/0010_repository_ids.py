"""Repositories by GitHub id: the Repository row's id, each pull request's, and scopes' ids

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-05 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Ids are learned from the next payload or answer naming each repository: none is known
    # to the database yet, and a migration asks GitHub nothing.
    with op.batch_alter_table("repository") as batch_op:
        batch_op.add_column(sa.Column("github_id", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint("uq_repository_github_id", ["github_id"])
    with op.batch_alter_table("pullrequest") as batch_op:
        batch_op.add_column(sa.Column("repo_id", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("mentorship") as batch_op:
        batch_op.add_column(
            sa.Column("repository_ids", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("mentorship") as batch_op:
        batch_op.drop_column("repository_ids")
    with op.batch_alter_table("pullrequest") as batch_op:
        batch_op.drop_column("repo_id")
    with op.batch_alter_table("repository") as batch_op:
        batch_op.drop_constraint("uq_repository_github_id", type_="unique")
        batch_op.drop_column("github_id")
