"""The reads behind the pages, ``/me``, ``/api`` and the report: keyword-only, typed, each
taking the ``session`` it reads with, none run once per row.

They live together here, not beside the writes in ``pulls.py`` and ``mentorships.py``, while
those two are being reshaped (people by id, decisions loaded once); each is small enough to
move there later without its callers noticing more than the import.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from gatekeeper import mentorships as lifecycle
from gatekeeper.gate import GateState
from gatekeeper.models import (
    AuditEvent,
    EndReason,
    MentorAssignment,
    Mentorship,
    PullRequest,
    ReportPost,
    Repository,
)

# The audit kind of a bypass's acknowledgement, as ``needs`` writes it and the report reads it.
ACKNOWLEDGED = "bypass_acknowledged"


# ---------------------------------------------------------------- repositories


def repository_privacy(session: Session, *, repos: Iterable[str]) -> dict[str, bool | None]:
    """Whether each of ``repos`` (lowercase full names) that Gatekeeper knows is private, in one
    query (none when ``repos`` is empty); a repository it never heard of is absent."""
    wanted = sorted(set(repos))
    if not wanted:
        return {}
    return dict(
        session.exec(
            select(Repository.full_name, Repository.private).where(
                col(Repository.full_name).in_(wanted)
            )
        ).all()
    )


# ---------------------------------------------------------------- mentorships


def mentorship_of_pull(session: Session, *, pull: PullRequest) -> Mentorship | None:
    """The mentorship a pull request is shown under: the one gating it, else its author's latest."""
    if pull.gated_mentorship_id is not None:
        gating = session.get(Mentorship, pull.gated_mentorship_id)
        if gating is not None:
            return gating
    return lifecycle.latest_mentorship(session, mentee=pull.author)


def mentorships_by_id(session: Session, *, ids: Iterable[int]) -> dict[int, Mentorship]:
    """Several mentorships by id, in one query."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    found = session.exec(select(Mentorship).where(col(Mentorship.id).in_(wanted)))
    return {m.id: m for m in found if m.id is not None}


def recently_ended(session: Session, *, now: datetime, limit: int) -> list[Mentorship]:
    """The ``limit`` mentorships that ended (or lapsed) most recently before ``now``."""
    finished = col(Mentorship.ended_at).is_not(None) | (Mentorship.ends_at <= now)
    return list(
        session.exec(
            select(Mentorship)
            .where(finished)
            .order_by(func.coalesce(Mentorship.ended_at, Mentorship.ends_at).desc())
            .limit(limit)
        )
    )


def earlier_mentorships(session: Session, *, mentorship: Mentorship) -> list[Mentorship]:
    """The mentee's other mentorships, latest start first."""
    return list(
        session.exec(
            select(Mentorship)
            .where(Mentorship.mentee == mentorship.mentee)
            .where(Mentorship.id != mentorship.id)
            .order_by(col(Mentorship.started_at).desc())
        )
    )


def mentored_by(session: Session, *, login: str) -> list[Mentorship]:
    """Mentorships not marked ended that ``login`` currently mentors, soonest end first
    (the caller decides which are active at its moment)."""
    return list(
        session.exec(
            select(Mentorship)
            .join(MentorAssignment, col(MentorAssignment.mentorship_id) == Mentorship.id)
            .where(MentorAssignment.mentor == login.lower())
            .where(col(MentorAssignment.removed_at).is_(None))
            .where(col(Mentorship.ended_at).is_(None))
            .order_by(col(Mentorship.ends_at))
        )
    )


def running_and_ending(
    session: Session, *, now: datetime, after: datetime, until: datetime
) -> list[Mentorship]:
    """Mentorships started by ``now``, not marked ended, whose end falls in (after, until],
    soonest end first."""
    return list(
        session.exec(
            select(Mentorship)
            .where(col(Mentorship.ended_at).is_(None))
            .where(Mentorship.started_at <= now)
            .where(Mentorship.ends_at > after)
            .where(Mentorship.ends_at <= until)
            .order_by(col(Mentorship.ends_at))
        )
    )


def expired_since(session: Session, *, since: datetime) -> list[Mentorship]:
    """Mentorships that ended by expiring after ``since``, soonest end first."""
    return list(
        session.exec(
            select(Mentorship)
            .where(Mentorship.end_reason == EndReason.EXPIRED)
            .where(Mentorship.ends_at > since)
            .order_by(col(Mentorship.ends_at))
        )
    )


def short_of_mentors(session: Session, *, now: datetime) -> list[tuple[Mentorship, int]]:
    """Active mentorships with fewer current mentors than approvals required (or none), and
    how many they have, soonest end first."""
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
    return [(mentorship, count) for mentorship, count in rows]


def assignments_of(session: Session, *, mentorship: Mentorship) -> list[MentorAssignment]:
    """Every mentor assignment of the mentorship, removed ones included, in the order added."""
    return list(
        session.exec(
            select(MentorAssignment)
            .where(MentorAssignment.mentorship_id == mentorship.id)
            .order_by(col(MentorAssignment.added_at), col(MentorAssignment.id))
        )
    )


# ---------------------------------------------------------------- pull requests


def pulls_of_period(session: Session, *, mentorship: Mentorship) -> list[PullRequest]:
    """The mentee's pull requests the mentorship gated, or first seen during its period,
    oldest first."""
    in_period = sa.and_(
        col(PullRequest.author) == mentorship.mentee,
        col(PullRequest.first_seen_at) >= mentorship.started_at,
        col(PullRequest.first_seen_at) < lifecycle.effective_end(mentorship),
    )
    return list(
        session.exec(
            select(PullRequest)
            .where(sa.or_(col(PullRequest.gated_mentorship_id) == mentorship.id, in_period))
            .order_by(col(PullRequest.first_seen_at), col(PullRequest.id))
        )
    )


def pulls_by_mentorship(
    session: Session, *, mentorship_ids: Iterable[int]
) -> dict[int, list[PullRequest]]:
    """The pull requests each mentorship gated, oldest first, in one query."""
    wanted = sorted(set(mentorship_ids))
    grouped: dict[int, list[PullRequest]] = {mid: [] for mid in wanted}
    if wanted:
        for pull in session.exec(
            select(PullRequest)
            .where(col(PullRequest.gated_mentorship_id).in_(wanted))
            .order_by(col(PullRequest.first_seen_at), col(PullRequest.id))
        ):
            assert pull.gated_mentorship_id is not None
            grouped[pull.gated_mentorship_id].append(pull)
    return grouped


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
        .where(
            col(PullRequest.gate).in_([GateState.WAITING, GateState.APPROVED, GateState.BYPASSED])
        )
        .group_by(
            col(PullRequest.gated_mentorship_id), col(PullRequest.gate), col(PullRequest.state)
        )
    )
    counts: dict[int, dict[str, int]] = defaultdict(
        lambda: {GateState.WAITING: 0, GateState.APPROVED: 0, GateState.BYPASSED: 0}
    )
    for mentorship_id, gate_state, state, number in rows:
        # A pull request closed unmerged while waiting no longer waits for anyone.
        if mentorship_id is None or (gate_state == GateState.WAITING and state != "open"):
            continue
        counts[mentorship_id][gate_state] += number
    return dict(counts)


def waiting_for_login(
    session: Session, *, mentorship_ids: Iterable[int | None], login: str
) -> list[PullRequest]:
    """Open pull requests of these mentorships still waiting, that ``login`` has not approved,
    longest waiting first."""
    wanted = [i for i in mentorship_ids if i is not None]
    if not wanted:
        return []
    pulls = session.exec(
        select(PullRequest)
        .where(col(PullRequest.gated_mentorship_id).in_(wanted))
        .where(PullRequest.state == "open")
        .where(PullRequest.gate == GateState.WAITING)
        .order_by(col(PullRequest.waiting_since), col(PullRequest.id))
    )
    return [pull for pull in pulls if login not in pull.approved_by]


def waiting_since_before(session: Session, *, moment: datetime) -> list[PullRequest]:
    """Open pull requests waiting for a mentor since ``moment`` or earlier, longest first."""
    return list(
        session.exec(
            select(PullRequest)
            .where(PullRequest.state == "open")
            .where(PullRequest.gate == GateState.WAITING)
            .where(col(PullRequest.waiting_since) <= moment)
            .order_by(col(PullRequest.waiting_since), col(PullRequest.id))
        )
    )


def _acknowledged() -> sa.Exists:
    """Whether an acknowledgement names the pull request of the enclosing query."""
    return sa.exists().where(
        col(AuditEvent.kind) == ACKNOWLEDGED,
        col(AuditEvent.repo) == col(PullRequest.repo),
        col(AuditEvent.pr_number) == col(PullRequest.number),
    )


def unacknowledged_bypasses(session: Session) -> list[PullRequest]:
    """Bypassed pull requests no maintainer has acknowledged yet, most recent merge first."""
    return list(
        session.exec(
            select(PullRequest)
            .where(PullRequest.gate == GateState.BYPASSED)
            .where(~_acknowledged())
            .order_by(col(PullRequest.merged_at).desc(), col(PullRequest.id).desc())
        )
    )


# ---------------------------------------------------------------- the audit log


def audit_events(
    session: Session,
    *,
    mentorship_id: int,
    kinds: Iterable[str] | None = None,
    newest_first: bool = False,
    limit: int | None = None,
) -> list[AuditEvent]:
    """The mentorship's audit events (only ``kinds``, when given), in time order."""
    query = select(AuditEvent).where(AuditEvent.mentorship_id == mentorship_id)
    if kinds is not None:
        query = query.where(col(AuditEvent.kind).in_(sorted(set(kinds))))
    if newest_first:
        query = query.order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
    else:
        query = query.order_by(col(AuditEvent.at), col(AuditEvent.id))
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


def latest_acknowledgement(session: Session, *, repo: str, number: int) -> AuditEvent | None:
    """The latest acknowledgement of the bypass of ``repo#number``, if any."""
    return session.exec(
        select(AuditEvent)
        .where(AuditEvent.kind == ACKNOWLEDGED)
        .where(AuditEvent.repo == repo)
        .where(AuditEvent.pr_number == number)
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
    ).first()


# ---------------------------------------------------------------- the report's forum post


def latest_report_post(session: Session, *, mentorship_id: int) -> ReportPost | None:
    """The latest claim to post the mentorship's report to its vote's thread, confirmed or not."""
    return session.exec(
        select(ReportPost)
        .where(ReportPost.mentorship_id == mentorship_id)
        .order_by(col(ReportPost.ordinal).desc())
    ).first()


def confirmed_report_post(session: Session, *, mentorship_id: int) -> ReportPost | None:
    """The latest post of the mentorship's report that the forum confirmed, if any."""
    return session.exec(
        select(ReportPost)
        .where(ReportPost.mentorship_id == mentorship_id)
        .where(col(ReportPost.url).is_not(None))
        .order_by(col(ReportPost.ordinal).desc())
    ).first()
