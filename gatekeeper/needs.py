"""What needs a maintainer: bypasses not yet acknowledged, months about to end, pull requests
waiting long, mentorships short of mentors; and what acknowledging or removing does.

Each list is one query (or two), never one per row; ``/me`` shows them to maintainers.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from gatekeeper import gate
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.models import AuditEvent, MentorAssignment, Mentorship, PullRequest, Review

# The audit kind of a bypass's acknowledgement; report.py reads the same kind (its ACKNOWLEDGED).
ACKNOWLEDGED = "bypass_acknowledged"
ENDING_WITHIN = timedelta(days=3)
WAITING_LONGER_THAN = timedelta(days=2)


@dataclasses.dataclass(frozen=True)
class Bypass:
    """A pull request merged while its gate waited, and the mentorship it bypassed."""

    pull: PullRequest
    mentorship: Mentorship | None


@dataclasses.dataclass(frozen=True)
class Short:
    """An active mentorship with fewer current mentors than its approvals need (maybe none)."""

    mentorship: Mentorship
    mentors: int


@dataclasses.dataclass(frozen=True)
class Needs:
    """Everything on a maintainer's list."""

    bypasses: list[Bypass]
    ending: list[Mentorship]
    waiting: list[PullRequest]
    short: list[Short]

    @property
    def empty(self) -> bool:
        """Nothing needs the maintainer."""
        return not (self.bypasses or self.ending or self.waiting or self.short)


def for_maintainer(session: Session, *, now: datetime) -> Needs:
    """The maintainer's list at ``now``, from five queries whatever its length."""
    return Needs(
        bypasses=unacknowledged_bypasses(session),
        ending=ending_soon(session, now=now),
        waiting=waiting_long(session, now=now),
        short=short_of_mentors(session, now=now),
    )


def _acknowledged() -> sa.Exists:
    """Whether an acknowledgement names the pull request of the enclosing query."""
    return sa.exists().where(
        col(AuditEvent.kind) == ACKNOWLEDGED,
        col(AuditEvent.repo) == col(PullRequest.repo),
        col(AuditEvent.pr_number) == col(PullRequest.number),
    )


def unacknowledged_bypasses(session: Session) -> list[Bypass]:
    """Bypassed pull requests no maintainer has acknowledged yet, most recent merge first."""
    pulls = list(
        session.exec(
            select(PullRequest)
            .where(PullRequest.gate == "bypassed")
            .where(~_acknowledged())
            .order_by(col(PullRequest.merged_at).desc(), col(PullRequest.id).desc())
        )
    )
    ids = {p.gated_mentorship_id for p in pulls if p.gated_mentorship_id is not None}
    mentorships = (
        {m.id: m for m in session.exec(select(Mentorship).where(col(Mentorship.id).in_(ids)))}
        if ids
        else {}
    )
    return [Bypass(pull, mentorships.get(pull.gated_mentorship_id)) for pull in pulls]


def ending_soon(
    session: Session, *, now: datetime, within: timedelta = ENDING_WITHIN
) -> list[Mentorship]:
    """Active mentorships whose gate lifts within ``within`` of ``now``, soonest first."""
    return list(
        session.exec(
            select(Mentorship)
            .where(col(Mentorship.ended_at).is_(None))
            .where(Mentorship.started_at <= now)
            .where(Mentorship.ends_at > now)
            .where(Mentorship.ends_at <= now + within)
            .order_by(col(Mentorship.ends_at))
        )
    )


def waiting_long(
    session: Session, *, now: datetime, longer_than: timedelta = WAITING_LONGER_THAN
) -> list[PullRequest]:
    """Open pull requests that have waited for a mentor longer than ``longer_than``, longest first."""
    return list(
        session.exec(
            select(PullRequest)
            .where(PullRequest.state == "open")
            .where(PullRequest.gate == "waiting")
            .where(col(PullRequest.waiting_since) <= now - longer_than)
            .order_by(col(PullRequest.waiting_since), col(PullRequest.id))
        )
    )


def short_of_mentors(session: Session, *, now: datetime) -> list[Short]:
    """Active mentorships with fewer current mentors than approvals required: their pull
    requests can never be approved (none at all when the last mentor was taken off)."""
    current = (
        select(col(MentorAssignment.mentorship_id), func.count().label("mentors"))
        .where(col(MentorAssignment.removed_at).is_(None))
        .group_by(col(MentorAssignment.mentorship_id))
        .subquery()
    )
    mentors = func.coalesce(current.c.mentors, 0)
    rows = session.exec(
        select(Mentorship, mentors)
        .outerjoin(current, current.c.mentorship_id == Mentorship.id)
        .where(col(Mentorship.ended_at).is_(None))
        .where(Mentorship.started_at <= now)
        .where(Mentorship.ends_at > now)
        .where((mentors < Mentorship.approvals_required) | (mentors == 0))
        .order_by(col(Mentorship.ends_at))
    )
    return [Short(mentorship, count) for mentorship, count in rows]


# ---------------------------------------------------------------- acknowledging a bypass


@dataclasses.dataclass(frozen=True)
class Acknowledgement:
    """Who acknowledged a bypass, when, and their note (empty when none was written)."""

    by: str
    at: datetime
    note: str


def acknowledgement_of(session: Session, *, pull: PullRequest) -> Acknowledgement | None:
    """The latest acknowledgement of ``pull``'s bypass, as the report reads it too."""
    event = session.exec(
        select(AuditEvent)
        .where(AuditEvent.kind == ACKNOWLEDGED)
        .where(AuditEvent.repo == pull.repo)
        .where(AuditEvent.pr_number == pull.number)
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
    ).first()
    return Acknowledgement(event.actor, event.at, event.detail) if event else None


def acknowledge(
    session: Session, *, pull: PullRequest, actor: str, note: str | None, now: datetime
) -> bool:
    """Record that ``actor`` looked at ``pull``'s bypass; whether anything was recorded.

    Acknowledging again updates: a different note is a new event that supersedes the last
    (the audit log is never rewritten, and the page and the report show the latest), while
    the same note again records nothing, so there is never a second identical record.
    Lock ``pull`` first: two maintainers acknowledging at once then take turns.
    """
    if pull.gate != "bypassed":
        raise lifecycle.MentorshipError(
            f"{pull.repo}#{pull.number} was not merged without approval; there is nothing to"
            " acknowledge"
        )
    try:
        text = lifecycle.bounded_text(note, what="the note") or ""
    except lifecycle.MentorshipError as error:
        raise lifecycle.MentorshipError(str(error), field="note") from None
    last = acknowledgement_of(session, pull=pull)
    if last is not None and last.note == text:
        return False
    lifecycle.record(
        session,
        mentorship=session.get(Mentorship, pull.gated_mentorship_id)
        if pull.gated_mentorship_id
        else None,
        actor=actor,
        kind=ACKNOWLEDGED,
        detail=text,
        at=now,
        repo=pull.repo,
        pr_number=pull.number,
    )
    return True


# ---------------------------------------------------------------- removing a mentor


@dataclasses.dataclass(frozen=True)
class Removal:
    """What taking a mentor off would do to the mentee's open pull requests."""

    mentor: str  # display form
    remaining: list[str]  # the mentors left, display form
    waiting: list[PullRequest]  # still waiting: only the remaining mentors can approve
    reopened: list[PullRequest]  # approved now, waiting again once this approval stops counting
    refusal: str | None  # why the removal would be refused, if it would


def removal_of(session: Session, *, mentorship: Mentorship, mentor: str, now: datetime) -> Removal:
    """The gate of each open pull request with and without ``mentor``, by ``gate.evaluate``."""
    assert mentorship.id is not None
    terms = store.terms_of(session, mentorship)
    login = lifecycle.canonical_login(mentor)
    display = {name.lower(): name for name in terms.mentor_display}
    without = dataclasses.replace(
        terms,
        mentors=terms.mentors - {login},
        mentor_display=tuple(n for n in terms.mentor_display if n.lower() != login),
    )
    pulls = store.open_pulls_gated_by(session, mentorship_id=mentorship.id)
    reviews: dict[int, list[Review]] = {p.id: [] for p in pulls if p.id is not None}
    if reviews:
        for review in session.exec(
            select(Review)
            .where(col(Review.pull_request_id).in_(sorted(reviews)))
            .order_by(col(Review.submitted_at), col(Review.id))
        ):
            reviews[review.pull_request_id].append(review)
    waiting, reopened = [], []
    for pull in pulls:
        after = gate.evaluate(
            store.gate_pull(pull), without, store.signals(reviews.get(pull.id or 0, [])), now
        )
        if after.waiting and pull.gate == "waiting":
            waiting.append(pull)
        elif after.waiting and pull.gate == "approved":
            reopened.append(pull)
    return Removal(
        mentor=display.get(login, mentor),
        remaining=list(without.mentor_display),
        waiting=waiting,
        reopened=reopened,
        refusal=lifecycle.removal_refusal(session, mentorship=mentorship, mentor=mentor),
    )
