"""A mentee reminds their mentors of a pull request that has waited: its reviews are asked for
again on GitHub, at most once a day per pull request, and the reminder is audited."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from gatekeeper import away, jobs
from gatekeeper.config import Settings
from gatekeeper.decisions import audit, mentorship_of
from gatekeeper.gate import GateState
from gatekeeper.models import AuditEvent, PullRequest
from gatekeeper.terms import terms_of

# A day: long enough that mentors are not nagged, short enough that nothing is forgotten.
WAIT_BEFORE_REMINDING = timedelta(days=1)
BETWEEN_REMINDERS = timedelta(days=1)
KIND = "reminded"


def may_ask(pull: PullRequest, *, mentee: str | None, login: str | None) -> bool:
    """Whether ``login`` is the one who may remind: the author, the mentee themselves (someone
    else's pull request waiting because the mentee approved it is not theirs to chase)."""
    return login is not None and mentee is not None and login.lower() == pull.author == mentee


def refusal(
    pull: PullRequest, *, last: datetime | None, now: datetime, enabled: bool = True
) -> str | None:
    """Why the mentors may not be reminded of ``pull`` now (None: they may).

    ``enabled`` is the service's ``request_reviews`` setting: with review requests turned
    off, a reminder would have nothing to send.
    """
    if not enabled:
        return "review requests are turned off here (GATEKEEPER_REQUEST_REVIEWS)"
    if pull.state != "open" or pull.gate != GateState.WAITING:
        return "it does not wait for a mentor"
    waited = now - (pull.waiting_since or now)
    if waited < WAIT_BEFORE_REMINDING:
        return "it has waited less than a day; mentors were asked for a review when it began"
    if last is not None and now - last < BETWEEN_REMINDERS:
        return f"they were reminded {last:%Y-%m-%d %H:%M} UTC; once a day is enough"
    return None


def last_reminders(session: Session, *, pulls: list[PullRequest]) -> dict[int, datetime]:
    """When each of ``pulls`` was last reminded of, in one query."""
    by_name: dict[tuple[str | None, int | None], int] = {
        (p.repo, p.number): p.id for p in pulls if p.id is not None
    }
    if not by_name:
        return {}
    rows = session.exec(
        select(AuditEvent.repo, AuditEvent.pr_number, func.max(AuditEvent.at))
        .where(AuditEvent.kind == KIND)
        .where(col(AuditEvent.repo).in_(sorted({repo for repo, _ in by_name})))
        .group_by(col(AuditEvent.repo), col(AuditEvent.pr_number))
    )
    return {
        pull_id: at
        for repo, number, at in rows
        if (pull_id := by_name.get((repo, number))) is not None
    }


def remind(
    session: Session, pull: PullRequest, *, login: str, settings: Settings, now: datetime
) -> str | None:
    """Ask ``pull``'s mentors for their review again; returns why not, if refused.

    ``pull`` must be locked (``pulls.find_pull(..., lock=True)``): two presses at once then
    make one reminder.
    """
    mentorship = mentorship_of(session, pull)
    if mentorship is None or not may_ask(pull, mentee=mentorship.mentee, login=login):
        return "only the author, under mentorship, reminds their mentors"
    last = last_reminders(session, pulls=[pull]).get(pull.id or 0)
    why = refusal(pull, last=last, now=now, enabled=settings.request_reviews)
    if why is not None:
        return why
    terms = terms_of(session, mentorship)
    absent = away.of_terms(session, terms, now=now)
    mentors = away.present(
        [name for name in terms.mentor_display if name.lower() != pull.author], absent
    )
    if not mentors:
        return (
            "all your mentors are away ("
            + "; ".join(away.words(a, login=login) for login, a in sorted(absent.items()))
            + ")"
        )
    jobs.enqueue(
        session,
        key=f"request_reviews:{pull.repo}#{pull.number}",
        args=jobs.RequestReviews(repo=pull.repo, number=pull.number, logins=tuple(mentors)),
        now=now,
    )
    audit(
        session,
        pull,
        actor=pull.author,
        kind=KIND,
        detail="asked " + ", ".join(f"@{name}" for name in mentors) + " for a review again",
        at=now,
    )
    return None
