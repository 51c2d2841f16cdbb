"""What each dashboard page shows, read with a bounded number of queries (none per row)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session

from gatekeeper import away, gate, needs, outbox, queries, reminders, timeline, votes
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.approvals import approval_refusal
from gatekeeper.auth import User, roles
from gatekeeper.gate import GateState
from gatekeeper.models import (
    Absence,
    AuditEvent,
    CommitCheck,
    MentorAssignment,
    Mentorship,
    PullRequest,
    Review,
)
from gatekeeper.refusals import Refusal
from gatekeeper.terms import terms_of
from gatekeeper.visibility import (
    PRIVATE_PULL,
    Scope,
    hidden_from,
    may_see_pull,
    scope_names,
    sees_private,
    shown_detail,
)

RECENTLY_ENDED = 10
AUDIT_SHOWN = 200


@dataclasses.dataclass
class Progress:
    """Where a mentorship stands in its period."""

    state: str
    day: int
    total_days: int
    percent: int
    days_left: int
    days_to_start: int

    @classmethod
    def of(cls, mentorship: Mentorship, now: datetime) -> Progress:
        """Day N of M, counted from the start; a finished period shows full."""
        state = lifecycle.state_of(mentorship, now)
        end = lifecycle.effective_end(mentorship)
        total = lifecycle.total_days(mentorship)
        day = lifecycle.day_of(mentorship, now)
        elapsed = (min(now, end) - mentorship.started_at).total_seconds()
        span = max((mentorship.ends_at - mentorship.started_at).total_seconds(), 1)
        percent = 100 if state == "ended" else min(max(int(100 * elapsed / span), 0), 100)
        return cls(
            state,
            day,
            total,
            percent,
            lifecycle.days_left(mentorship, now),
            lifecycle.days_until_start(mentorship, now),
        )

    @property
    def left(self) -> str:
        """ "18 days left", or "last day"."""
        return lifecycle.left_words(self.days_left)


@dataclasses.dataclass
class Row:
    """One mentorship on the overview."""

    mentorship: Mentorship
    mentors: list[MentorAssignment]
    progress: Progress
    waiting: int = 0
    approved: int = 0
    bypassed: int = 0
    roles: frozenset[str] = frozenset()
    waiting_for_viewer: int = 0


@dataclasses.dataclass
class Yours:
    """A signed-in mentee's own month, as the front page shows it to them."""

    mentorship: Mentorship
    waiting: list[PullRequest]  # their open pull requests waiting for a mentor


@dataclasses.dataclass
class Overview:
    """The front page: rows grouped by state, and what waits for the viewer."""

    active: list[Row]
    scheduled: list[Row]
    ended: list[Row]
    for_viewer: list[PullRequest]
    yours: Yours | None = None

    @property
    def empty(self) -> bool:
        """No mentorship was ever started."""
        return not (self.active or self.scheduled or self.ended)


def overview_page(session: Session, *, user: User | None, now: datetime) -> Overview:
    """Open mentorships and the most recently ended ones, from five queries whatever their number."""
    current = lifecycle.all_mentorships(session, include_ended=False, now=now)
    ended = queries.recently_ended(session, now=now, limit=RECENTLY_ENDED)
    found = current + ended
    ids = [m.id for m in found if m.id is not None]
    mentors = lifecycle.mentors_by_mentorship(session, mentorship_ids=ids)
    counts = queries.gate_counts(session, mentorship_ids=ids)
    rows = []
    for mentorship in found:
        assert mentorship.id is not None
        assigned = mentors[mentorship.id]
        rows.append(
            Row(
                mentorship,
                assigned,
                Progress.of(mentorship, now),
                roles=roles(user, mentee=mentorship.mentee, mentors=[a.mentor for a in assigned]),
                **counts.get(mentorship.id, {}),
            )
        )
    for_viewer: list[PullRequest] = []
    yours = None
    if user is not None:
        # Only pull requests of mentorships the viewer mentors: theirs to see, private or not.
        mine = [
            r.mentorship.id for r in rows if "mentor" in r.roles and r.progress.state == "active"
        ]
        for_viewer = queries.waiting_for_login(session, mentorship_ids=mine, login=user.login)
        per_mentorship: dict[int | None, int] = defaultdict(int)
        for pull in for_viewer:
            per_mentorship[pull.gated_mentorship_id] += 1
        for row in rows:
            row.waiting_for_viewer = per_mentorship.get(row.mentorship.id, 0)
        own = [r.mentorship for r in rows if "mentee" in r.roles and r.progress.state == "active"]
        if own:
            own_waiting = [
                pull
                for pull in queries.waiting_for_login(
                    session, mentorship_ids=[own[0].id], login=user.login
                )
                if pull.author == user.login
            ]
            yours = Yours(own[0], own_waiting)
    return Overview(
        active=[r for r in rows if r.progress.state == "active"],
        scheduled=[r for r in rows if r.progress.state == "scheduled"],
        ended=[r for r in rows if r.progress.state == "ended"],
        for_viewer=for_viewer,
        yours=yours,
    )


ENDED_PER_PAGE = 25


@dataclasses.dataclass(frozen=True)
class EndedPage:
    """One page of the past mentorships, searched by the mentee's login."""

    mentorships: list[Mentorship]
    mentors: dict[int, list[MentorAssignment]]
    search: str
    page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages the search fills (at least one, perhaps empty)."""
        return max((self.total + ENDED_PER_PAGE - 1) // ENDED_PER_PAGE, 1)


def ended_page(session: Session, *, search: str, page: int, now: datetime) -> EndedPage:
    """Page ``page`` (from 1) of the mentorships that ended, latest end first, from two
    queries (three with their mentors) whatever their number."""
    found, total = queries.ended_page(
        session,
        now=now,
        search=search,
        offset=(page - 1) * ENDED_PER_PAGE,
        limit=ENDED_PER_PAGE,
    )
    ids = [m.id for m in found if m.id is not None]
    mentors = lifecycle.mentors_by_mentorship(session, mentorship_ids=ids) if ids else {}
    return EndedPage(found, dict(mentors), search, page, total)


@dataclasses.dataclass
class Queue:
    """What waits for one mentor."""

    mentorships: list[Mentorship]
    pulls: list[PullRequest]


def waiting_for(session: Session, *, login: str, now: datetime) -> Queue:
    """The active mentorships ``login`` mentors and their pull requests waiting for approval."""
    mentored = [m for m in queries.mentored_by(session, login=login) if lifecycle.is_active(m, now)]
    return Queue(
        mentored,
        queries.waiting_for_login(session, mentorship_ids=[m.id for m in mentored], login=login),
    )


# ---------------------------------------------------------------- one mentee


@dataclasses.dataclass
class PullRow:
    """A pull request in the mentee's table."""

    pull: PullRequest | None  # None: in a private repository the viewer may not see
    shown_state: str  # waiting, approved, merged, bypassed, lifted, not_required, closed
    waited: float | None  # seconds it waited (so far) for a mentor
    blocker: gate.Blocker | None = None  # what a waiting one still needs
    may_remind: bool = False  # the viewer is its author and may remind the mentors now
    # For its author: when they last reminded the mentors, and when they may again.
    reminded_at: datetime | None = None
    next_reminder_at: datetime | None = None
    # A bypass (merged without approval): the maintainer's acknowledgement, if any yet.
    acknowledged: needs.Acknowledgement | None = None


@dataclasses.dataclass(frozen=True)
class LogLine:
    """One audit event as the viewer may see it."""

    at: datetime
    actor: str
    kind: str
    detail: str
    pull: str | None  # "owner/repo#7", PRIVATE_PULL, or None when about no pull request
    href: str | None = None  # the pull request's page; None when redacted or about none
    count: int = 1  # how many identical events in a row this line stands for
    first_at: datetime | None = None  # the earliest of them, when more than one
    # Which pull request it is about, for telling repetitions apart; never shown, since a
    # redacted line's ``pull`` reads the same for every private pull request.
    subject: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def of(cls, event: AuditEvent, *, hidden: frozenset[str]) -> LogLine:
        """The event as the viewer may read it: a pull request in a ``hidden`` repository
        unnamed, and the detail as ``visibility.shown_detail`` leaves it."""
        detail = shown_detail(event, hidden=hidden)
        if event.repo is None or event.pr_number is None:
            return cls(event.at, event.actor, event.kind, detail, None)
        if event.repo in hidden:
            subject = f"{event.repo}#{event.pr_number}"
            return cls(event.at, event.actor, event.kind, detail, PRIVATE_PULL, subject=subject)
        return cls(
            event.at,
            event.actor,
            event.kind,
            detail,
            f"{event.repo}#{event.pr_number}",
            href=f"/pulls/{event.repo}/{event.pr_number}",
        )

    @property
    def same(self) -> tuple[str, str, str | None, str, str | None]:
        """What makes two lines repetitions of each other."""
        return (self.kind, self.actor, self.pull, self.detail, self.subject)


def collapse(lines: Iterable[LogLine]) -> list[LogLine]:
    """Consecutive identical lines (kind, actor, pull request, detail) as one, with a count:
    a redelivered webhook or a gate decided again says nothing new the second time."""
    kept: list[LogLine] = []
    for line in lines:
        if kept and kept[-1].same == line.same:
            last = kept[-1]
            kept[-1] = dataclasses.replace(last, count=last.count + 1, first_at=line.at)
        else:
            kept.append(line)
    return kept


@dataclasses.dataclass
class MenteePage:
    """Everything the mentee page shows."""

    mentorship: Mentorship
    mentors: list[MentorAssignment]
    progress: Progress
    roles: frozenset[str]
    vote: votes.Vote | None
    pulls: list[PullRow]
    events: list[LogLine]
    lanes: list[timeline.Lane]
    earlier: list[Mentorship]
    scope: Scope  # the repositories it gates, as the viewer may see them
    away: dict[str, Absence] = dataclasses.field(default_factory=dict)  # by mentor login

    @property
    def present_mentors(self) -> list[str]:
        """The mentors to ask now (logins as shown): those not away."""
        return away.present([a.mentor_display for a in self.mentors], self.away)

    @property
    def bypassed(self) -> list[PullRow]:
        """Pull requests merged without a mentor's approval."""
        return [row for row in self.pulls if row.shown_state == GateState.BYPASSED and row.pull]

    @property
    def waiting(self) -> list[PullRow]:
        """Pull requests that still wait for a mentor."""
        return [row for row in self.pulls if row.shown_state == GateState.WAITING]


def mentee_page(
    session: Session,
    *,
    mentee: str,
    user: User | None,
    now: datetime,
    request_reviews: bool = True,
) -> MenteePage | None:
    """The mentee's current (else latest) mentorship; None for someone never mentored.

    A viewer outside the mentorship sees its private pull requests as redacted rows, and the
    private repositories of its scope (now and in the audit log) counted, not named.
    """
    mentorship = lifecycle.latest_mentorship(session, mentee=mentee)
    if mentorship is None:
        return None
    assert mentorship.id is not None
    mentors = lifecycle.mentors_of(session, mentorship=mentorship)
    viewer_roles = roles(user, mentee=mentorship.mentee, mentors=[a.mentor for a in mentors])
    pulls = queries.pulls_of_period(session, mentorship=mentorship)
    events = queries.audit_events(
        session, mentorship_id=mentorship.id, newest_first=True, limit=AUDIT_SHOWN
    )
    hidden = hidden_from(
        session,
        sees=sees_private(viewer_roles),
        pulls=[p.repo for p in pulls] + [e.repo for e in events if e.repo],
        scope=[*mentorship.repositories, *scope_names(events)],
    )
    absent = away.of_mentors(session, mentors, now=now)
    # Whom to ask: the mentors who are present (an away mentor's approval still counts).
    terms = away.asking(terms_of(session, mentorship), absent)
    waiting_ids = [p.id for p in pulls if p.id is not None and shown_state(p) == GateState.WAITING]
    reviews = store.reviews_by_pull(session, pull_ids=waiting_ids)
    reminded = reminders.last_reminders(session, pulls=[p for p in pulls if p.id in reviews])
    acknowledged = needs.acknowledgements_of(
        session, pulls=[p for p in pulls if shown_state(p) == GateState.BYPASSED]
    )
    rows, lanes = [], []
    for pull in pulls:
        shown = shown_state(pull)
        private = pull.repo in hidden
        row = PullRow(None if private else pull, shown, store.waited_seconds(pull, now=now))
        if pull.id in reviews and not private:
            row.blocker = gate.blocker(
                store.gate_pull(pull), terms, store.signals(reviews[pull.id]), now
            )
            author = reminders.may_ask(
                pull, mentee=mentorship.mentee, login=user.login if user else None
            )
            last = reminded.get(pull.id)
            row.may_remind = author and (
                reminders.refusal(pull, last=last, now=now, enabled=request_reviews) is None
            )
            if author and last is not None and now - last < reminders.BETWEEN_REMINDERS:
                row.reminded_at, row.next_reminder_at = last, last + reminders.BETWEEN_REMINDERS
        if shown == GateState.BYPASSED and not private:
            row.acknowledged = acknowledged.get(pull.id or 0)
        rows.append(row)
        lanes.append(
            timeline.Lane(
                label="private" if private else f"#{pull.number}",
                href="#pulls" if private else f"/pulls/{pull.repo}/{pull.number}",
                start=pull.gated_at or pull.first_seen_at,
                end=None if shown == GateState.WAITING else pull.settled_at,
                state=shown if shown != "closed" else GateState.NOT_REQUIRED,
                detail=PRIVATE_PULL if private else pull.title,  # the row says the state
            )
        )
    return MenteePage(
        mentorship=mentorship,
        mentors=mentors,
        progress=Progress.of(mentorship, now),
        roles=viewer_roles,
        vote=votes.vote_of(mentorship),
        pulls=list(reversed(rows)),
        events=collapse(LogLine.of(event, hidden=hidden) for event in events),
        lanes=lanes,
        earlier=queries.earlier_mentorships(session, mentorship=mentorship),
        scope=Scope.of(mentorship.repositories, hidden=hidden),
        away=absent,
    )


STATE_WORDS = {
    "waiting": "waiting for a mentor",
    "approved": "approved",
    "merged": "approved and merged",
    "bypassed": "merged without approval",
    "lifted": "gate lifted before approval",
    "not_required": "no approval needed",
    "closed": "closed",
}


def shown_state(pull: PullRequest) -> str:
    """The gate as people think of it: a merged approved PR is 'merged', a closed one 'closed'."""
    if pull.gate in (GateState.BYPASSED, GateState.LIFTED, GateState.OVERRIDDEN):
        return pull.gate
    if pull.merged:
        return "merged" if pull.gate == GateState.APPROVED else GateState.NOT_REQUIRED
    if pull.state != "open":
        return "closed"
    return pull.gate


# ---------------------------------------------------------------- one pull request


@dataclasses.dataclass
class Verdict:
    """A review or approval, and whether it counts towards the gate."""

    review: Review
    counts: bool
    why: str


@dataclasses.dataclass
class PullPage:
    """Everything the pull request page shows."""

    pull: PullRequest
    mentorship: Mentorship | None
    terms: gate.Terms | None
    shown_state: str
    verdicts: list[Verdict]
    approvers: list[str]  # mentors who may approve (display form)
    standing: list[str]
    roles: frozenset[str]
    refusal: Refusal | None
    check: CommitCheck | None = None  # the outbox row of the head commit
    waited: float | None = None  # seconds it waited (so far) for a mentor
    out_of_scope: bool = False  # its author's active mentorship does not cover its repository
    blocker: gate.Blocker | None = None  # what it still needs, while it waits
    may_remind: bool = False  # the viewer is its author and may remind the mentors now
    # For its author: when they last reminded the mentors, and when they may again.
    reminded_at: datetime | None = None
    next_reminder_at: datetime | None = None
    # A bypass (merged without approval): the maintainer's acknowledgement, if any yet.
    acknowledged: needs.Acknowledgement | None = None
    remind_refusal: str | None = None  # why the author may not remind them yet
    scope: Scope | None = None  # what its mentorship gates, as the viewer may see it, when outside

    @property
    def check_status(self) -> str:
        """Where the head commit's check stands on GitHub, in a few words."""
        check = self.check
        if check is None or check.version == 0:
            return "not asked for yet"
        if check.posted_version < check.version:
            if check.last_error:
                return f"being updated; the last try failed ({check.last_error}), retrying"
            return "being updated"
        if check.gave_up:
            return f"not posted: GitHub refused it ({check.last_error})"
        return "posted"

    @property
    def can_approve(self) -> bool:
        """Whether the viewer sees the "Approve merge" button."""
        viewer_counted = "viewer_standing" in self.roles
        return (
            "mentor" in self.roles
            and self.refusal is None
            and self.pull.gate == GateState.WAITING
            and not viewer_counted
        )


def pull_page(
    session: Session,
    *,
    repo: str,
    number: int,
    user: User | None,
    now: datetime,
    check_name: str = "mentor-approval",
    request_reviews: bool = True,
) -> PullPage | None:
    """The pull request, its mentorship's terms and a verdict on each review.

    None if unknown, or in a private repository the viewer may not see (they get the same 404).
    """
    pull = store.find_pull(session, repo=repo, number=number)
    if pull is None or not may_see_pull(session, pull, user=user):
        return None
    mentorship = queries.mentorship_of_pull(session, pull=pull)
    terms = terms_of(session, mentorship) if mentorship is not None else None
    reviews = store.reviews_of(session, pull=pull)
    standing = (
        gate.standing_approvals(store.gate_pull(pull), terms, store.signals(reviews))
        if terms
        else []
    )
    viewer_roles: frozenset[str] = frozenset()
    refusal = None
    approvers: list[str] = []
    if mentorship is not None and terms is not None:
        approvers = [n for n in terms.mentor_display if n.lower() != pull.author]
        viewer_roles = roles(user, mentee=mentorship.mentee, mentors=terms.mentors)
        if user is not None and user.login in standing:
            viewer_roles |= {"viewer_standing"}
    if user is not None:
        refusal = approval_refusal(session, pull, login=user.login, user_id=user.id)
    blocker, remind_refusal, asks = None, None, False
    if terms is not None and pull.gate == GateState.WAITING and pull.state == "open":
        asking = away.asking(terms, away.of_terms(session, terms, now=now))  # who is present
        blocker = gate.blocker(store.gate_pull(pull), asking, store.signals(reviews), now)
        asks = reminders.may_ask(pull, mentee=terms.mentee, login=user.login if user else None)
        if asks:
            last = reminders.last_reminders(session, pulls=[pull]).get(pull.id or 0)
            remind_refusal = reminders.refusal(pull, last=last, now=now, enabled=request_reviews)
    out_of_scope = (
        terms is not None
        and terms.mentee == pull.author
        and terms.is_active(now)
        and not terms.covers(pull.repo)
    )
    scope = None
    if out_of_scope and mentorship is not None:
        hidden = hidden_from(
            session,
            sees=sees_private(viewer_roles),
            pulls=[pull.repo],
            scope=mentorship.repositories,
        )
        scope = Scope.of(mentorship.repositories, hidden=hidden)
    return PullPage(
        blocker=blocker,
        may_remind=blocker is not None and asks and remind_refusal is None,
        remind_refusal=remind_refusal,
        pull=pull,
        mentorship=mentorship,
        terms=terms,
        shown_state=shown_state(pull),
        verdicts=verdicts(pull, terms, reviews, now=now),
        approvers=approvers,
        standing=standing,
        roles=viewer_roles,
        refusal=refusal,
        check=outbox.check_of(session, repo=pull.repo, head_sha=pull.head_sha, name=check_name),
        waited=store.waited_seconds(pull, now=now),
        out_of_scope=out_of_scope,
        scope=scope,
    )


def verdicts(
    pull: PullRequest, terms: gate.Terms | None, reviews: list[Review], *, now: datetime
) -> list[Verdict]:
    """Each decisive review, oldest first, with why it does or does not count (gate.py's rules)."""
    by_key = {r.id or 0: r for r in reviews}
    moment = pull.merged_at if pull.merged and pull.merged_at else now
    return [
        Verdict(by_key[v.signal.key], v.counts, v.why)
        for v in gate.signal_verdicts(store.gate_pull(pull), terms, store.signals(reviews), moment)
    ]
