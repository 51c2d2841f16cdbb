"""What needs a maintainer: bypasses not yet acknowledged, months about to end, pull requests
waiting long, mentorships short of mentors; and what acknowledging or removing does.

Each list is one query (or two) from ``queries``, never one per row; ``/me`` shows them to
maintainers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from gatekeeper import away, gate, queries
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.gate import GateState
from gatekeeper.models import AuditEvent, Mentorship, PullRequest
from gatekeeper.queries import ACKNOWLEDGED
from gatekeeper.terms import terms_of

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
    unattended: list[away.Stranded] = dataclasses.field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing needs the maintainer."""
        return not (self.bypasses or self.ending or self.waiting or self.short or self.unattended)

    @property
    def urgent(self) -> int:
        """How many things the landing page puts first: unacknowledged bypasses, pull
        requests waiting long, and mentorships whose every mentor is away."""
        return len(self.bypasses) + len(self.waiting) + len(self.unattended)

    @property
    def count(self) -> int:
        """How many things the maintainer's list (``/me``) holds."""
        return self.urgent + len(self.ending) + len(self.short)


def for_maintainer(session: Session, *, now: datetime) -> Needs:
    """The maintainer's list at ``now``, from five queries whatever its length."""
    return Needs(
        bypasses=unacknowledged_bypasses(session),
        ending=queries.running_and_ending(session, now=now, after=now, until=now + ENDING_WITHIN),
        waiting=queries.waiting_since_before(session, moment=now - WAITING_LONGER_THAN),
        short=[Short(m, count) for m, count in queries.short_of_mentors(session, now=now)],
        unattended=every_mentor_away(session, now=now),
    )


def every_mentor_away(session: Session, *, now: datetime) -> list[away.Stranded]:
    """Active mentorships whose every current mentor is away at ``now``, with the mentee's
    waiting pull requests; the landing page and ``/me`` show them to maintainers."""
    return away.stranded(session, now=now)


def unacknowledged_bypasses(session: Session) -> list[Bypass]:
    """Bypassed pull requests no maintainer has acknowledged yet, most recent merge first,
    each with the mentorship it bypassed."""
    pulls = queries.unacknowledged_bypasses(session)
    mentorships = queries.mentorships_by_id(
        session, ids=[p.gated_mentorship_id for p in pulls if p.gated_mentorship_id is not None]
    )
    return [Bypass(pull, mentorships.get(pull.gated_mentorship_id or 0)) for pull in pulls]


# ---------------------------------------------------------------- acknowledging a bypass


@dataclasses.dataclass(frozen=True)
class Acknowledgement:
    """Who acknowledged a bypass, when, and their note (empty when none was written)."""

    by: str
    at: datetime
    note: str


def acknowledgement_of(session: Session, *, pull: PullRequest) -> Acknowledgement | None:
    """The latest acknowledgement of ``pull``'s bypass, as the report reads it too."""
    event = queries.latest_acknowledgement(session, repo=pull.repo, number=pull.number)
    return Acknowledgement(event.actor, event.at, event.detail) if event else None


def acknowledgements_of(
    session: Session, *, pulls: Iterable[PullRequest]
) -> dict[int, Acknowledgement]:
    """The latest acknowledgement of each of ``pulls``' bypasses, by pull id, in one query."""
    by_name = {(p.repo, p.number): p.id for p in pulls if p.id is not None}
    if not by_name:
        return {}
    events = session.exec(
        select(AuditEvent)
        .where(AuditEvent.kind == ACKNOWLEDGED)
        .where(col(AuditEvent.repo).in_(sorted({repo for repo, _ in by_name})))
        .order_by(col(AuditEvent.at), col(AuditEvent.id))
    )
    found: dict[int, Acknowledgement] = {}
    for event in events:  # oldest first: the latest of each stays
        pull_id = by_name.get((event.repo or "", event.pr_number or 0))
        if pull_id is not None:
            found[pull_id] = Acknowledgement(event.actor, event.at, event.detail)
    return found


def acknowledge(
    session: Session, *, pull: PullRequest, actor: str, note: str | None, now: datetime
) -> bool:
    """Record that ``actor`` looked at ``pull``'s bypass; whether anything was recorded.

    Acknowledging again updates: a different note is a new event that supersedes the last
    (the audit log is never rewritten, and the page and the report show the latest), while
    the same note again records nothing, so there is never a second identical record.
    Lock ``pull`` first: two maintainers acknowledging at once then take turns.
    """
    if pull.gate != GateState.BYPASSED:
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
    terms = terms_of(session, mentorship)
    login = lifecycle.canonical_login(mentor)
    display = {name.lower(): name for name in terms.mentor_display}
    without = dataclasses.replace(
        terms,
        mentors=terms.mentors - {login},
        mentor_ids={i: m for i, m in terms.mentor_ids.items() if m != login},
        mentor_display=tuple(n for n in terms.mentor_display if n.lower() != login),
    )
    pulls = store.open_pulls_gated_by(session, mentorship_id=mentorship.id)
    reviews = store.reviews_by_pull(session, pull_ids=[p.id for p in pulls if p.id is not None])
    waiting, reopened = [], []
    for pull in pulls:
        after = gate.evaluate(
            store.gate_pull(pull), without, store.signals(reviews.get(pull.id or 0, [])), now
        )
        if after.waiting and pull.gate == GateState.WAITING:
            waiting.append(pull)
        elif after.waiting and pull.gate == GateState.APPROVED:
            reopened.append(pull)
    return Removal(
        mentor=display.get(login, mentor),
        remaining=list(without.mentor_display),
        waiting=waiting,
        reopened=reopened,
        refusal=lifecycle.removal_refusal(session, mentorship=mentorship, mentor=mentor),
    )
