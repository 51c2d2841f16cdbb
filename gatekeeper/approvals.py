"""Mentor approvals without a review (the check's button, a comment, the dashboard) and
maintainers' overrides: recording them, and the audit trail of every one and every refusal.

Who may approve is ``gate.approval_refusal``, the same rule for all three ways: a mentor is
an account (``user_id``), not a login; the login is what the audit log shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlmodel import Session

from gatekeeper import gate, notify, people
from gatekeeper import pulls as store
from gatekeeper.config import Settings
from gatekeeper.decisions import audit, mentorship_of, reevaluate
from gatekeeper.events import Person
from gatekeeper.gate import ApprovalSource, GateState
from gatekeeper.models import PullRequest
from gatekeeper.outbox import Touched
from gatekeeper.refusals import Refusal, RefusalKind
from gatekeeper.terms import terms_of


def approval_refusal(
    session: Session,
    pull: PullRequest,
    *,
    login: str,
    user_id: int | None,
    repeat_ok: bool = False,
    known: Mapping[int, gate.Terms] | None = None,
) -> Refusal | None:
    """Why the account ``user_id`` (``login``) may not approve ``pull`` now, or None if it may
    (``repeat_ok``: even when their approval already counts). ``known``: terms already read,
    by mentorship id (``decisions.Reevaluated.terms``)."""
    mentorship = mentorship_of(session, pull)
    terms = None
    if mentorship is not None and mentorship.id is not None:
        terms = (known or {}).get(mentorship.id) or terms_of(session, mentorship)
    refusal = gate.approval_refusal(
        store.gate_pull(pull),
        terms,
        # After its mentorship stopped gating it, an approved pull request keeps its record
        # but takes no more approvals.
        gated=pull.gate == GateState.WAITING
        or (pull.gate in (GateState.APPROVED, GateState.OVERRIDDEN) and pull.lifted_at is None),
        login=login,
        user_id=user_id,
    )
    if refusal is None and not repeat_ok and login.lower() in pull.approved_by:
        # A second press (or a second tab) would store a second record of the same approval.
        return Refusal(RefusalKind.CONFLICT, "your approval already counts for this pull request")
    return refusal


def approve(
    session: Session,
    pull: PullRequest,
    *,
    login: str,
    user_id: int | None,
    source: ApprovalSource,
    settings: Settings,
    now: datetime,
    github_id: int | None = None,
    commit_id: str | None = None,
    given_at: datetime | None = None,
) -> tuple[Refusal | None, Touched]:
    """Record a mentor's approval (on ``commit_id``, else the current head) and re-evaluate.

    ``given_at`` is when the mentor gave it (a comment's creation), if not ``now``.
    Returns why not, if refused, and the commits whose check it touched. Whoever approves is learned first (``people.learn``): the
    sender of a signed event or a signed-in account says who they are.
    """
    if user_id is not None:
        account = Person(user_id, login.lower(), login)
        people.learn(session, account, at=given_at or now, maintainers=settings.maintainers)
    # The stored gate may be out of date.
    # The approver's mentorship is read with the others: the next decision weighs their
    # approval (a mentee's may not count), and reads no mentorship again.
    approver = [(user_id, login.lower())] if user_id is not None else []
    refreshed = reevaluate(session, pull, settings=settings, now=now, also=approver)
    touched = refreshed.touched
    # A comment is bound to the head of its moment, which a push delivered later may change
    # (``pulls.rebind_comments``): each is kept, so a later one can still count then.
    refusal = approval_refusal(
        session,
        pull,
        login=login,
        user_id=user_id,
        repeat_ok=source == ApprovalSource.COMMENT,
        known=refreshed.terms,
    )
    if refusal is not None or user_id is None:
        audit(
            session,
            pull,
            actor=login.lower(),
            kind="approval_refused",
            detail=f"{source}: {refusal or 'who gave it is unknown'}",
            at=now,
        )
        return refusal or Refusal(RefusalKind.NOT_ALLOWED, "who gave it is unknown"), touched
    store.add_approval(
        session,
        pull=pull,
        mentor=login.lower(),
        mentor_display=login,
        mentor_id=user_id,
        source=source,
        now=min(given_at or now, now),
        github_id=github_id,
        commit_id=commit_id,
    )
    session.flush()
    touched |= reevaluate(
        session, pull, settings=settings, now=now, known=refreshed.mentorships
    ).touched
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
    return None, touched


def audit_approval(
    session: Session, pull: PullRequest, *, login: str, source: ApprovalSource, now: datetime
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
    session: Session,
    pull: PullRequest,
    *,
    login: str,
    user_id: int | None,
    reason: str,
    settings: Settings,
) -> str | None:
    """Why the account ``user_id`` (``login``) may not override ``pull``'s gate with
    ``reason``, or None if it may. Maintainers are accounts, as everywhere (``people``)."""
    if not people.is_maintainer(
        session, user_id=user_id, login=login.lower(), maintainers=settings.maintainers
    ):
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
    user_id: int | None,
    reason: str,
    source: str,
    commit_id: str,
    settings: Settings,
    now: datetime,
    given_at: datetime | None = None,
    comment_id: int | None = None,
) -> tuple[str | None, Touched]:
    """Record a maintainer's override of ``pull``'s gate for ``commit_id``'s content and
    re-evaluate; why not, if refused, and the commits whose check it touched. It holds until
    a push brings other content."""
    refreshed = reevaluate(session, pull, settings=settings, now=now)
    touched = refreshed.touched
    reason = " ".join(reason.split())
    refusal = override_refusal(
        session, pull, login=login, user_id=user_id, reason=reason, settings=settings
    )
    if refusal is not None:
        audit(
            session,
            pull,
            actor=login.lower(),
            kind="override_refused",
            detail=f"{source}: {refusal}",
            at=now,
        )
        return refusal, touched
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
    touched |= reevaluate(
        session, pull, settings=settings, now=now, known=refreshed.mentorships
    ).touched
    audit(
        session,
        pull,
        actor=login.lower(),
        kind="override",
        detail=f"{source} on {commit_id[:12]}: {reason}",
        at=now,
    )
    mentorship = mentorship_of(session, pull)
    told = notify.override(
        session, pull, maintainer=login, reason=reason, commit_id=commit_id, mentorship=mentorship
    )
    notify.tell(session, told, mentorship=mentorship, settings=settings, now=now)
    return None, touched
