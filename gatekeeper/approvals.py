"""Mentor approvals without a review (the check's button, a comment, the dashboard) and
maintainers' overrides: recording them, and the audit trail of every one and every refusal.

Who may approve is ``gate.approval_refusal``, the same rule for all three ways.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from gatekeeper import gate
from gatekeeper import pulls as store
from gatekeeper.config import Settings
from gatekeeper.decisions import audit, mentorship_of, reevaluate
from gatekeeper.models import PullRequest


def approval_refusal(session: Session, pull: PullRequest, *, login: str) -> str | None:
    """Why ``login`` may not approve ``pull`` now, or None if they may."""
    mentorship = mentorship_of(session, pull)
    refusal = gate.approval_refusal(
        store.gate_pull(pull),
        store.terms_of(session, mentorship) if mentorship is not None else None,
        # After its mentorship stopped gating it, an approved pull request keeps its record
        # but takes no more approvals.
        gated=pull.gate == "waiting"
        or (pull.gate in ("approved", "overridden") and pull.lifted_at is None),
        login=login,
    )
    if refusal is None and login.lower() in pull.approved_by:
        # A second press (or a second tab) would store a second record of the same approval.
        return "your approval already counts for this pull request"
    return refusal


def approve(
    session: Session,
    pull: PullRequest,
    *,
    login: str,
    source: str,
    settings: Settings,
    now: datetime,
    github_id: int | None = None,
    commit_id: str | None = None,
    given_at: datetime | None = None,
) -> str | None:
    """Record a mentor's approval (on ``commit_id``, else the current head) and re-evaluate.

    ``given_at`` is when the mentor gave it (a comment's creation), if not ``now``.
    Returns why not, if refused.
    """
    reevaluate(session, pull, settings=settings, now=now)  # the stored gate may be out of date
    refusal = approval_refusal(session, pull, login=login)
    if refusal is not None:
        audit(
            session,
            pull,
            actor=login.lower(),
            kind="approval_refused",
            detail=f"{source}: {refusal}",
            at=now,
        )
        return refusal
    store.add_approval(
        session,
        pull=pull,
        mentor=login.lower(),
        mentor_display=login,
        source=source,
        now=min(given_at or now, now),
        github_id=github_id,
        commit_id=commit_id,
    )
    session.flush()
    reevaluate(session, pull, settings=settings, now=now)
    if login.lower() in pull.approved_by or pull.state != "open":
        audit_approval(session, pull, login=login, source=source, now=now)
    else:  # recorded, but a later word of the mentor's (or a newer commit) outweighs it
        audit(
            session,
            pull,
            actor=login.lower(),
            kind="approval_not_counted",
            detail=f"{source}: outweighed by a later review or given on an older commit",
            at=now,
        )
    return None


def audit_approval(
    session: Session, pull: PullRequest, *, login: str, source: str, now: datetime
) -> None:
    """Record that a mentor approved ``pull``."""
    audit(
        session,
        pull,
        actor=login.lower(),
        kind="approval",
        detail=f"{source} on {pull.head_sha[:12]}",
        at=now,
    )


REASON_LIMIT = 500


def override_refusal(
    session: Session, pull: PullRequest, *, login: str, reason: str, settings: Settings
) -> str | None:
    """Why ``login`` may not override ``pull``'s gate with ``reason``, or None if they may."""
    if login.lower() not in settings.maintainers:
        return "only maintainers can override the gate"
    if pull.state != "open":
        return "the pull request is closed"
    if pull.gated_mentorship_id is None or pull.lifted_at is not None:
        return "no mentorship gates this pull request"
    if not reason.strip():
        return "an override needs a reason: /gatekeeper override REASON"
    if len(reason) > REASON_LIMIT:
        return f"the reason is longer than {REASON_LIMIT} characters"
    return None


def override(
    session: Session,
    pull: PullRequest,
    *,
    login: str,
    reason: str,
    source: str,
    commit_id: str,
    settings: Settings,
    now: datetime,
    given_at: datetime | None = None,
    comment_id: int | None = None,
) -> str | None:
    """Record a maintainer's override of ``pull``'s gate for ``commit_id``'s content and
    re-evaluate; why not, if refused. It holds until a push brings other content."""
    reevaluate(session, pull, settings=settings, now=now)
    reason = " ".join(reason.split())
    refusal = override_refusal(session, pull, login=login, reason=reason, settings=settings)
    if refusal is not None:
        audit(
            session,
            pull,
            actor=login.lower(),
            kind="override_refused",
            detail=f"{source}: {refusal}",
            at=now,
        )
        return refusal
    store.add_override(
        session,
        pull=pull,
        maintainer=login.lower(),
        maintainer_display=login,
        reason=reason,
        commit_id=commit_id,
        given_at=min(given_at or now, now),
        comment_id=comment_id,
    )
    session.flush()
    reevaluate(session, pull, settings=settings, now=now)
    audit(
        session,
        pull,
        actor=login.lower(),
        kind="override",
        detail=f"{source} on {commit_id[:12]}: {reason}",
        at=now,
    )
    return None
