"""Session generations: signing out voids every copy of the session cookie

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sessiongeneration",
        sa.Column("login", sqlmodel.sql.sqltypes.AutoString(length=39), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("login"),
    )


def downgrade() -> None:
    op.drop_table("sessiongeneration")
