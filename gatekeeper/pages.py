"""What each dashboard page shows, read with a bounded number of queries (none per row)."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from gatekeeper import gate, outbox, reminders, timeline
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.approvals import approval_refusal
from gatekeeper.auth import User, is_maintainer, roles
from gatekeeper.models import (
    AuditEvent,
    CommitCheck,
    MentorAssignment,
    Mentorship,
    PullRequest,
    Repository,
    Review,
)

RECENTLY_ENDED = 10
AUDIT_SHOWN = 200

# What someone who may not see a private repository's pull request is shown instead.
PRIVATE_PULL = "a pull request in a private repository"
SEES_PRIVATE = frozenset({"maintainer", "mentor", "mentee"})


# ---------------------------------------------------------------- private repositories


def sees_private(viewer_roles: frozenset[str]) -> bool:
    """Maintainers and the mentorship's own mentee and mentors see its private pull requests."""
    return not SEES_PRIVATE.isdisjoint(viewer_roles)


def private_repositories(session: Session, *, repos: Iterable[str]) -> frozenset[str]:
    """Which of ``repos`` (lowercase full names) are private, in one query.

    A repository no payload has described yet counts as public, as GitHub's default is.
    """
    wanted = sorted(set(repos))
    if not wanted:
        return frozenset()
    return frozenset(
        session.exec(
            select(Repository.full_name)
            .where(col(Repository.full_name).in_(wanted))
            .where(col(Repository.private))
        )
    )


def page_mentorship(session: Session, pull: PullRequest) -> Mentorship | None:
    """The mentorship a pull request is shown under: the one gating it, else its author's latest."""
    if pull.gated_mentorship_id is not None:
        gating = session.get(Mentorship, pull.gated_mentorship_id)
        if gating is not None:
            return gating
    try:
        return lifecycle.latest_mentorship(session, mentee=pull.author)
    except lifecycle.MentorshipError:
        return None


def may_see_pull(session: Session, pull: PullRequest, *, user: User | None) -> bool:
    """Whether ``user`` may see ``pull`` at all (a refused one is answered as never seen)."""
    if is_maintainer(user) or not private_repositories(session, repos=[pull.repo]):
        return True
    mentorship = page_mentorship(session, pull)
    if mentorship is None:
        return False
    mentors = [a.mentor for a in lifecycle.mentors_of(session, mentorship=mentorship)]
    return sees_private(roles(user, mentee=mentorship.mentee, mentors=mentors))


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
        total = max(
            math.ceil((mentorship.ends_at - mentorship.started_at).total_seconds() / 86400), 1
        )
        elapsed = (min(now, end) - mentorship.started_at).total_seconds()
        day = min(max(math.floor(elapsed / 86400) + 1, 1), total) if elapsed >= 0 else 0
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
    finished = col(Mentorship.ended_at).is_not(None) | (Mentorship.ends_at <= now)
    ended = list(
        session.exec(
            select(Mentorship)
            .where(finished)
            .order_by(func.coalesce(Mentorship.ended_at, Mentorship.ends_at).desc())
            .limit(RECENTLY_ENDED)
        )
    )
    found = current + ended
    ids = [m.id for m in found if m.id is not None]
    mentors = lifecycle.mentors_by_mentorship(session, mentorship_ids=ids)
    counts = gate_counts(session, mentorship_ids=ids)
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
        for_viewer = _waiting_in(session, mentorship_ids=mine, login=user.login)
        per_mentorship: dict[int | None, int] = defaultdict(int)
        for pull in for_viewer:
            per_mentorship[pull.gated_mentorship_id] += 1
        for row in rows:
            row.waiting_for_viewer = per_mentorship.get(row.mentorship.id, 0)
        own = [r.mentorship for r in rows if "mentee" in r.roles and r.progress.state == "active"]
        if own:
            own_waiting = [
                pull
                for pull in _waiting_in(session, mentorship_ids=[own[0].id], login=user.login)
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


def gate_counts(session: Session, *, mentorship_ids: list[int]) -> dict[int, dict[str, int]]:
    """Waiting (open), approved and bypassed pull requests per mentorship, in one GROUP BY."""
    if not mentorship_ids:
        return {}
    rows = session.exec(
        select(
            PullRequest.gated_mentorship_id,
            PullRequest.gate,
            PullRequest.state,
            func.count(),
        )
        .where(col(PullRequest.gated_mentorship_id).in_(mentorship_ids))
        .where(col(PullRequest.gate).in_(["waiting", "approved", "bypassed"]))
        .group_by(
            col(PullRequest.gated_mentorship_id), col(PullRequest.gate), col(PullRequest.state)
        )
    )
    counts: dict[int, dict[str, int]] = defaultdict(
        lambda: {"waiting": 0, "approved": 0, "bypassed": 0}
    )
    for mentorship_id, gate_state, state, number in rows:
        # A pull request closed unmerged while waiting no longer waits for anyone.
        if mentorship_id is None or (gate_state == "waiting" and state != "open"):
            continue
        counts[mentorship_id][gate_state] += number
    return dict(counts)


def _waiting_in(
    session: Session, *, mentorship_ids: list[int | None], login: str
) -> list[PullRequest]:
    """Open pull requests of these mentorships still waiting, that ``login`` has not approved."""
    wanted = [i for i in mentorship_ids if i is not None]
    if not wanted:
        return []
    pulls = session.exec(
        select(PullRequest)
        .where(col(PullRequest.gated_mentorship_id).in_(wanted))
        .where(PullRequest.state == "open")
        .where(PullRequest.gate == "waiting")
        .order_by(col(PullRequest.waiting_since), col(PullRequest.id))
    )
    return [pull for pull in pulls if login not in pull.approved_by]


@dataclasses.dataclass
class Queue:
    """What waits for one mentor."""

    mentorships: list[Mentorship]
    pulls: list[PullRequest]


def waiting_for(session: Session, *, login: str, now: datetime) -> Queue:
    """The active mentorships ``login`` mentors and their pull requests waiting for approval."""
    mentored = [
        m
        for m in session.exec(
            select(Mentorship)
            .join(MentorAssignment, col(MentorAssignment.mentorship_id) == Mentorship.id)
            .where(MentorAssignment.mentor == login.lower())
            .where(col(MentorAssignment.removed_at).is_(None))
            .where(col(Mentorship.ended_at).is_(None))
            .order_by(col(Mentorship.ends_at))
        )
        if lifecycle.is_active(m, now)
    ]
    return Queue(
        mentored, _waiting_in(session, mentorship_ids=[m.id for m in mentored], login=login)
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
        """The event, without its pull request's name or detail when its repository is hidden."""
        if event.repo is None or event.pr_number is None:
            return cls(event.at, event.actor, event.kind, event.detail, None)
        if event.repo in hidden:
            # The detail may hold the head commit or the gate's title: only the kind is shown.
            return cls(
                event.at,
                event.actor,
                event.kind,
                "",
                PRIVATE_PULL,
                subject=f"{event.repo}#{event.pr_number}",
            )
        return cls(
            event.at,
            event.actor,
            event.kind,
            event.detail,
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
    vote: lifecycle.Vote | None
    pulls: list[PullRow]
    events: list[LogLine]
    lanes: list[timeline.Lane]
    earlier: list[Mentorship]

    @property
    def waiting(self) -> list[PullRow]:
        """Pull requests that still wait for a mentor."""
        return [row for row in self.pulls if row.shown_state == "waiting"]


def mentee_page(
    session: Session,
    *,
    mentee: str,
    user: User | None,
    now: datetime,
    request_reviews: bool = True,
) -> MenteePage:
    """The mentee's current (else latest) mentorship; raises MentorshipError for strangers.

    A viewer outside the mentorship sees its private pull requests as redacted rows.
    """
    mentorship = lifecycle.latest_mentorship(session, mentee=mentee)
    assert mentorship.id is not None
    mentors = lifecycle.mentors_of(session, mentorship=mentorship)
    viewer_roles = roles(user, mentee=mentorship.mentee, mentors=[a.mentor for a in mentors])
    in_period = sa.and_(
        col(PullRequest.author) == mentorship.mentee,
        col(PullRequest.first_seen_at) >= mentorship.started_at,
        col(PullRequest.first_seen_at) < lifecycle.effective_end(mentorship),
    )
    pulls = list(
        session.exec(
            select(PullRequest)
            .where(sa.or_(col(PullRequest.gated_mentorship_id) == mentorship.id, in_period))
            .order_by(col(PullRequest.first_seen_at), col(PullRequest.id))
        )
    )
    events = list(
        session.exec(
            select(AuditEvent)
            .where(AuditEvent.mentorship_id == mentorship.id)
            .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
            .limit(AUDIT_SHOWN)
        )
    )
    earlier = [
        m
        for m in session.exec(
            select(Mentorship)
            .where(Mentorship.mentee == mentorship.mentee)
            .where(Mentorship.id != mentorship.id)
            .order_by(col(Mentorship.started_at).desc())
        )
    ]
    hidden = (
        frozenset()
        if sees_private(viewer_roles)
        else private_repositories(
            session, repos=[p.repo for p in pulls] + [e.repo for e in events if e.repo]
        )
    )
    terms = store.terms_of(session, mentorship)
    waiting_ids = [p.id for p in pulls if p.id is not None and shown_state(p) == "waiting"]
    reviews = store.reviews_by_pull(session, pull_ids=waiting_ids)
    reminded = reminders.last_reminders(session, pulls=[p for p in pulls if p.id in reviews])
    rows, lanes = [], []
    for pull in pulls:
        shown = shown_state(pull)
        private = pull.repo in hidden
        row = PullRow(None if private else pull, shown, store.waited_seconds(pull, now=now))
        if pull.id in reviews and not private:
            row.blocker = gate.blocker(
                store.gate_pull(pull), terms, store.signals(reviews[pull.id]), now
            )
            row.may_remind = reminders.may_ask(
                pull, mentee=mentorship.mentee, login=user.login if user else None
            ) and (
                reminders.refusal(
                    pull, last=reminded.get(pull.id), now=now, enabled=request_reviews
                )
                is None
            )
        rows.append(row)
        lanes.append(
            timeline.Lane(
                label="private" if private else f"#{pull.number}",
                href="#pulls" if private else f"/pulls/{pull.repo}/{pull.number}",
                start=pull.gated_at or pull.first_seen_at,
                end=None if shown == "waiting" else pull.settled_at,
                state=shown if shown != "closed" else "not_required",
                detail=PRIVATE_PULL if private else pull.title,  # the row says the state
            )
        )
    return MenteePage(
        mentorship=mentorship,
        mentors=mentors,
        progress=Progress.of(mentorship, now),
        roles=viewer_roles,
        vote=lifecycle.vote_of(mentorship),
        pulls=list(reversed(rows)),
        events=collapse(LogLine.of(event, hidden=hidden) for event in events),
        lanes=lanes,
        earlier=earlier,
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
    if pull.gate in ("bypassed", "lifted", "overridden"):
        return pull.gate
    if pull.merged:
        return "merged" if pull.gate == "approved" else "not_required"
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
    refusal: str | None
    check: CommitCheck | None = None  # the outbox row of the head commit
    waited: float | None = None  # seconds it waited (so far) for a mentor
    out_of_scope: bool = False  # its author's active mentorship does not cover its repository
    blocker: gate.Blocker | None = None  # what it still needs, while it waits
    may_remind: bool = False  # the viewer is its author and may remind the mentors now
    remind_refusal: str | None = None  # why the author may not remind them yet

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
            and self.pull.gate == "waiting"
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
    mentorship = page_mentorship(session, pull)
    terms = store.terms_of(session, mentorship) if mentorship is not None else None
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
        refusal = approval_refusal(session, pull, login=user.login)
    blocker, remind_refusal, asks = None, None, False
    if terms is not None and pull.gate == "waiting" and pull.state == "open":
        blocker = gate.blocker(store.gate_pull(pull), terms, store.signals(reviews), now)
        asks = reminders.may_ask(pull, mentee=terms.mentee, login=user.login if user else None)
        if asks:
            last = reminders.last_reminders(session, pulls=[pull]).get(pull.id or 0)
            remind_refusal = reminders.refusal(pull, last=last, now=now, enabled=request_reviews)
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
        out_of_scope=terms is not None
        and terms.mentee == pull.author
        and terms.is_active(now)
        and not terms.covers(pull.repo),
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
