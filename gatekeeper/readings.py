"""What ``gatekeeper status`` and ``list`` read, with SQLAlchemy Core: no ORM, no SQLModel.

Importing SQLModel and the models costs more than everything else these two commands do, so
they read the three tables they show here, as plain rows carrying the models' column names,
and shape them with ``documents.mentorship_document``, as ``/api`` does. The queries are those
of ``mentorships.latest_mentorship``, ``all_mentorships``, ``mentors_by_mentorship`` and
``queries.pulls_by_mentorship``; ``tests/test_cli_startup.py`` checks that both give the same
documents. The command line sees every repository, so nothing is redacted.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from gatekeeper import documents, standing
from gatekeeper.columns import UTCDateTime

_metadata = sa.MetaData()

mentorship = sa.Table(
    "mentorship",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("mentee", sa.String),
    sa.Column("mentee_display", sa.String),
    sa.Column("started_at", UTCDateTime),
    sa.Column("ends_at", UTCDateTime),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("end_reason", sa.String),
    sa.Column("repositories", sa.JSON),
    sa.Column("approvals_required", sa.Integer),
    sa.Column("dismiss_stale_approvals", sa.Boolean),
    sa.Column("same_content_approvals", sa.Boolean),
    sa.Column("gate_approved_prs", sa.Boolean),
    sa.Column("vote_url", sa.String),
    sa.Column("votes_for", sa.Integer),
    sa.Column("votes_against", sa.Integer),
    sa.Column("vote_opened", sa.Date),
    sa.Column("vote_closed", sa.Date),
    sa.Column("vote_source", sa.String),
    sa.Column("vote_fetched_at", UTCDateTime),
    sa.Column("override_reason", sa.String),
)

mentor_assignment = sa.Table(
    "mentorassignment",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("mentorship_id", sa.Integer),
    sa.Column("mentor_display", sa.String),
    sa.Column("removed_at", UTCDateTime),
)

pull_request = sa.Table(
    "pullrequest",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("repo", sa.String),
    sa.Column("number", sa.Integer),
    sa.Column("title", sa.String),
    sa.Column("url", sa.String),
    sa.Column("author_display", sa.String),
    sa.Column("head_sha", sa.String),
    sa.Column("state", sa.String),
    sa.Column("merged", sa.Boolean),
    sa.Column("gate", sa.String),
    sa.Column("approved_by", sa.JSON),
    sa.Column("first_seen_at", UTCDateTime),
    sa.Column("gated_mentorship_id", sa.Integer),
)


def status_document(connection: sa.Connection, *, mentee: str, now: datetime) -> dict[str, Any]:
    """``status --json``: the mentee's open mentorship, else their latest; refused (one line)
    for someone never mentored."""
    found = _latest(connection, mentee=mentee)
    if found is None:
        raise standing.MentorshipError(standing.no_mentorship(mentee))
    return _documents(connection, [found], now=now)[0]


def list_documents(
    connection: sa.Connection, *, include_ended: bool, now: datetime
) -> list[dict[str, Any]]:
    """``list --json``: open mentorships, or all, soonest end first, ended last."""
    open_now = mentorship.c.ended_at.is_(None) & (mentorship.c.ends_at > now)
    query = sa.select(mentorship)
    if not include_ended:
        query = query.where(open_now)
    ended_last = sa.case((open_now, 0), else_=1)
    rows = connection.execute(query.order_by(ended_last, mentorship.c.ends_at)).all()
    return _documents(connection, list(rows), now=now)


def _latest(connection: sa.Connection, *, mentee: str) -> sa.Row[Any] | None:
    try:
        login = standing.canonical_login(mentee)
    except standing.MentorshipError:
        return None  # a name that is no login was never mentored
    return connection.execute(
        sa.select(mentorship)
        .where(mentorship.c.mentee == login)
        .order_by(mentorship.c.ended_at.is_not(None), mentorship.c.started_at.desc())
        .limit(1)
    ).first()


def _documents(
    connection: sa.Connection, found: list[sa.Row[Any]], *, now: datetime
) -> list[dict[str, Any]]:
    """The documents of ``found``, their mentors and pull requests read in one query each."""
    ids = [row.id for row in found]
    # Rows carry the models' column names, which is all the documents read of them.
    mentors: defaultdict[int, list[Any]] = defaultdict(list)
    pulls: defaultdict[int, list[Any]] = defaultdict(list)
    if ids:
        for row in connection.execute(
            sa.select(mentor_assignment)
            .where(mentor_assignment.c.mentorship_id.in_(ids))
            .where(mentor_assignment.c.removed_at.is_(None))
            .order_by(mentor_assignment.c.id)
        ):
            mentors[row.mentorship_id].append(row)
        for row in connection.execute(
            sa.select(pull_request)
            .where(pull_request.c.gated_mentorship_id.in_(ids))
            .order_by(pull_request.c.first_seen_at, pull_request.c.id)
        ):
            pulls[row.gated_mentorship_id].append(row)
    return [
        documents.mentorship_document(
            row,  # type: ignore[arg-type]
            mentors=mentors[row.id],
            pulls=pulls[row.id],
            now=now,
        )
        for row in found
    ]
