"""A pull request's record of its month: when it first waited, settled, and the gate lifted

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gatekeeper.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = gatekeeper.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("pullrequest") as batch_op:
        batch_op.add_column(sa.Column("gated_at", WHEN, nullable=True))
        batch_op.add_column(sa.Column("settled_at", WHEN, nullable=True))
        batch_op.add_column(sa.Column("lifted_at", WHEN, nullable=True))
    # Until now these moments lived only in the audit log: copy them from there.
    op.execute(
        "UPDATE pullrequest SET gated_at = (SELECT min(a.at) FROM auditevent a"
        " WHERE a.kind = 'gate_waiting' AND a.repo = pullrequest.repo"
        " AND a.pr_number = pullrequest.number)"
    )
    op.execute(
        "UPDATE pullrequest SET settled_at = (SELECT max(a.at) FROM auditevent a"
        " WHERE a.kind = 'gate_approved' AND a.repo = pullrequest.repo"
        " AND a.pr_number = pullrequest.number) WHERE gate = 'approved'"
    )
    op.execute(
        "UPDATE pullrequest SET settled_at = merged_at"
        " WHERE gate = 'bypassed' OR (merged AND settled_at IS NULL AND gated_at IS NOT NULL)"
    )


def downgrade() -> None:
    op.execute("UPDATE pullrequest SET gate = 'not_required' WHERE gate = 'lifted'")
    with op.batch_alter_table("pullrequest") as batch_op:
        batch_op.drop_column("lifted_at")
        batch_op.drop_column("settled_at")
        batch_op.drop_column("gated_at")
