"""Small factories for the rows and values the unit tests of the store build: a pull request
as GitHub reports it, a review, a mentorship, and the settings a decision reads."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from fakegithub import default_user_id
from gatekeeper import mentorships as lifecycle
from gatekeeper import people
from gatekeeper.config import Settings
from gatekeeper.events import Person, PullInfo, ReviewInfo
from gatekeeper.models import AuditEvent, Job, Mentorship

REPO = "python/cpython"
SHA, NEW_SHA = "a" * 40, "b" * 40
NOW = datetime(2024, 11, 12, 15, 30, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def settings(**overrides: Any) -> Settings:
    """The settings a decision reads (its database is the session's, never this URL)."""
    return dataclasses.replace(Settings(database_url="sqlite://"), **overrides)


def pull_info(number: int = 7, **fields: Any) -> PullInfo:
    """A snapshot of an open pull request by ``mpage`` on ``SHA``, updated at ``NOW``; each
    person is the account GitHub's payloads give their login (``default_user_id``)."""
    author = fields.pop("author", "mpage")
    merged_by = fields.get("merged_by")
    values: dict[str, Any] = {
        "repo": REPO,
        "repo_display": REPO,
        "number": number,
        "author": author,
        "author_display": author,
        "author_id": default_user_id(author),
        "merged_by_id": default_user_id(merged_by) if merged_by else None,
        "merged_by_display": merged_by,
        "title": "A change",
        "url": f"https://github.com/{REPO}/pull/{number}",
        "head_sha": SHA,
        "base_ref": "main",
        "draft": False,
        "state": "open",
        "merged": False,
        "merged_by": None,
        "merged_at": None,
        "updated_at": NOW,
    }
    values.update(fields)
    return PullInfo(**values)


def merged_info(
    number: int = 7, *, by: str | None = "ambv", at: datetime = NOW, **fields: Any
) -> PullInfo:
    """A snapshot of a pull request merged at ``at`` by ``by`` (None: a payload that does not
    say), updated then unless ``updated_at`` says otherwise."""
    fields.setdefault("updated_at", at)
    return pull_info(number, state="closed", merged=True, merged_by=by, merged_at=at, **fields)


def review_info(
    id: int = 100,
    *,
    reviewer: str = "colesbury",
    state: str = "APPROVED",
    commit_id: str | None = SHA,
    at: datetime = NOW,
) -> ReviewInfo:
    """A review as GitHub reports it, by the account of ``reviewer``'s ``default_user_id``."""
    return ReviewInfo(id, reviewer, reviewer, state, commit_id, at, default_user_id(reviewer))


def mentorship(
    session: Session,
    mentee: str = "mpage",
    mentors: tuple[str, ...] = ("colesbury", "vstinner"),
    *,
    start: datetime = NOW - DAY,
    **options: Any,
) -> Mentorship:
    """A mentorship started by ``boss`` at ``start`` (active at ``NOW`` by default), committed;
    its people are accounts already seen (``default_user_id``), as after their first event."""
    for login in (mentee, *mentors):
        people.learn(session, Person(default_user_id(login), login.lower(), login), at=start)
    made = lifecycle.promote(
        session, mentee=mentee, mentors=list(mentors), actor="boss", now=start, **options
    )
    session.commit()
    return made


def audit_kinds(session: Session, *, kind_prefix: str = "") -> list[str]:
    """The kinds of the audit events about pull requests, oldest first."""
    events = session.exec(
        select(AuditEvent)
        .where(col(AuditEvent.pr_number).is_not(None))
        .order_by(col(AuditEvent.id))
    )
    return [e.kind for e in events if e.kind.startswith(kind_prefix)]


def jobs_of(session: Session) -> dict[str, Job]:
    """The queued jobs by key."""
    return {job.key: job for job in session.exec(select(Job))}
