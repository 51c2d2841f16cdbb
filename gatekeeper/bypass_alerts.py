"""The comment that tells a mentee's mentors their pull request merged while its gate waited.

One comment per pull request, ever. ``queue`` runs in the transaction that records the
bypass (``decisions``): it keeps one ``BypassAlert`` row per pull request and asks for a
``bypass_comment`` job. The worker runs the job: it reads the pull request's reviews from
GitHub, then ``due`` says whether to post, and ``mark_attempted`` / ``record_posted`` keep
what happened, so a redelivery, a second worker or a lost answer never writes a second one.

When to post: events arrive out of order, so a bypass recorded from a ``closed`` event can
be cleared a moment later by an approval given before the merge whose delivery came after.
A comment cannot be taken back, so the job waits ``SETTLE_DELAY`` (the late deliveries
arrive within seconds), then reads the reviews from GitHub itself (one that never arrives
counts too), and posts only if the stored gate still says "bypassed".
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gatekeeper import db, jobs
from gatekeeper import mentorships as lifecycle
from gatekeeper.config import Settings
from gatekeeper.gate import GateState
from gatekeeper.models import BypassAlert, JobKind, MentorAssignment, Mentorship, PullRequest

KIND = JobKind.BYPASS_COMMENT
SETTLE_DELAY = timedelta(minutes=2)
# Hidden in the rendered comment; found again when a post's answer was lost.
MARKER = "<!-- gatekeeper:bypass -->"


def job_key(repo: str, number: int) -> str:
    """The one job that comments on ``repo#number``."""
    return f"{KIND}:{repo}#{number}"


def queue(
    session: Session, pull: PullRequest, *, mentorship: Mentorship | None, now: datetime
) -> bool:
    """Ask for the bypass comment on ``pull`` unless its mentorship turned alerts off."""
    if mentorship is None or not mentorship.bypass_alerts:
        return False
    if pull.id is None:  # first seen already merged: the alert needs its row
        session.add(pull)
        session.flush()
    assert pull.id is not None
    db.insert_missing(
        session,
        BypassAlert,
        {"pull_request_id": pull.id, "queued_at": now},
        ["pull_request_id"],
    )
    jobs.enqueue(
        session,
        key=job_key(pull.repo, pull.number),
        args=jobs.BypassComment(repo=pull.repo, number=pull.number),
        now=now,
        run_after=now + SETTLE_DELAY,
    )
    return True


@dataclasses.dataclass(frozen=True)
class Due:
    """A comment to post now, and whether an earlier try may already have posted it."""

    alert_id: int
    body: str
    attempted: bool


def due(session: Session, *, repo: str, number: int, settings: Settings) -> Due | None:
    """The comment ``repo#number`` needs now; None once posted, if the bypass was cleared,
    or if the mentorship's alerts were turned off meanwhile. Locks the alert's row."""
    pull = session.exec(
        select(PullRequest).where(PullRequest.repo == repo).where(PullRequest.number == number)
    ).first()
    if pull is None or pull.gate != GateState.BYPASSED or pull.gated_mentorship_id is None:
        return None
    alert = session.exec(
        select(BypassAlert)
        .where(BypassAlert.pull_request_id == pull.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    mentorship = session.get(Mentorship, pull.gated_mentorship_id)
    if alert is None or alert.comment_id is not None or alert.id is None:
        return None
    if mentorship is None or not mentorship.bypass_alerts:
        return None
    mentors = lifecycle.mentors_of(session, mentorship=mentorship)
    body = render(pull, mentorship=mentorship, mentors=mentors, settings=settings)
    return Due(alert.id, body, attempted=alert.attempted_at is not None)


def mark_attempted(session: Session, due: Due, *, now: datetime) -> None:
    """Note, before the post goes out, that it may reach GitHub: a retry looks first."""
    session.execute(
        sa.update(BypassAlert)
        .where(col(BypassAlert.id) == due.alert_id)
        .where(col(BypassAlert.attempted_at).is_(None))
        .values(attempted_at=now)
    )
    session.commit()


def record_posted(session: Session, due: Due, *, comment_id: int, now: datetime) -> None:
    """The comment is on GitHub: nothing will post it again."""
    session.execute(
        sa.update(BypassAlert)
        .where(col(BypassAlert.id) == due.alert_id)
        .where(col(BypassAlert.comment_id).is_(None))
        .values(comment_id=comment_id, posted_at=now)
    )
    session.commit()


def render(
    pull: PullRequest,
    *,
    mentorship: Mentorship,
    mentors: list[MentorAssignment],
    settings: Settings,
) -> str:
    """The comment: who merged, that no mentor had approved, the mentors, the dashboard link."""
    merger = f"@{pull.merged_by}" if pull.merged_by else "Someone"
    handles = ", ".join(f"@{a.mentor_display}" for a in mentors) or "(none assigned)"
    link = f"{settings.base_url}/pulls/{pull.repo}/{pull.number}"
    return (
        f"{MARKER}\n"
        f"**Merged without mentor approval.** {merger} merged this pull request while its "
        f"`{settings.check_name}` check was still waiting: no mentor had approved it.\n\n"
        f"Mentors of @{mentorship.mentee_display}: {handles}. "
        f"The pull request's page on Gatekeeper: {link}\n"
    )
