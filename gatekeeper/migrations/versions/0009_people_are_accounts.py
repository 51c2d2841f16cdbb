"""People are GitHub accounts: user ids beside logins, the accounts seen, maintainers' ids

Revision ID: 0009
Revises: 0011
Create Date: 2026-12-05 18:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gatekeeper.models

revision: str = "0009"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = gatekeeper.models.UTCDateTime(timezone=True)
LOGIN = sqlmodel.sql.sqltypes.AutoString(length=39)
# (table, id column): each is learned later (see people.py); rows from before stay None.
ID_COLUMNS = (
    ("mentorship", "mentee_id"),
    ("mentorassignment", "mentor_id"),
    ("pullrequest", "author_id"),
    ("review", "reviewer_id"),
)


def upgrade() -> None:
    for table, column in ID_COLUMNS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column(column, sa.BigInteger(), nullable=True))
            batch_op.create_index(f"ix_{table}_{column}", [column], unique=False)
    op.create_table(
        "account",
        sa.Column("github_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("login", LOGIN, nullable=False),
        sa.Column("display", LOGIN, nullable=False),
        sa.Column("seen_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("github_id"),
    )
    op.create_index("ix_account_login", "account", ["login"], unique=False)
    op.create_table(
        "maintainer",
        sa.Column("login", LOGIN, nullable=False),
        sa.Column("github_id", sa.BigInteger(), nullable=False),
        sa.Column("learned_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("login"),
    )
    op.create_index("ix_maintainer_github_id", "maintainer", ["github_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_maintainer_github_id", table_name="maintainer")
    op.drop_table("maintainer")
    op.drop_index("ix_account_login", table_name="account")
    op.drop_table("account")
    for table, column in reversed(ID_COLUMNS):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_index(f"ix_{table}_{column}")
            batch_op.drop_column(column)
