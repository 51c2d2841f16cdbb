"""The JSON documents shared by ``gatekeeper status/list --json`` and ``/api``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify
from sqlmodel import Session

from gatekeeper import mentorships as lifecycle
from gatekeeper import queries, report
from gatekeeper.db import get_session
from gatekeeper.documents import (
    iso,
    promotion_document,
    pull_request_document,
    redacted_pull_document,
)
from gatekeeper.extensions import settings_of
from gatekeeper.models import MentorAssignment, Mentorship, PullRequest, utcnow
from gatekeeper.visibility import (
    CLI,
    NOTHING_HIDDEN,
    Scope,
    Viewer,
    hidden_names,
    sees_all,
)

bp = Blueprint("api", __name__, url_prefix="/api")


def mentorship_document(
    mentorship: Mentorship,
    *,
    mentors: list[MentorAssignment],
    pulls: list[PullRequest],
    now: datetime,
    hidden: frozenset[str] = NOTHING_HIDDEN,
) -> dict[str, Any]:
    """The document describing one mentorship at ``now``; the ``hidden`` repositories' pull
    requests redacted, and in its scope only counted (``repositories_hidden``)."""
    state = lifecycle.state_of(mentorship, now)
    scope = Scope.of(mentorship.repositories, hidden=hidden)
    return {
        "mentee": mentorship.mentee_display,
        "mentors": [assignment.mentor_display for assignment in mentors],
        "state": state,
        "started_at": iso(mentorship.started_at),
        "ends_at": iso(mentorship.ends_at),
        "ended_at": iso(lifecycle.effective_end(mentorship)) if state == "ended" else None,
        "end_reason": mentorship.end_reason or ("expired" if now >= mentorship.ends_at else None),
        "days_left": lifecycle.days_left(mentorship, now),
        "promotion": promotion_document(mentorship),
        "approvals_required": mentorship.approvals_required,
        "repositories": list(scope.named),
        "repositories_hidden": scope.hidden,
        "dismiss_stale_approvals": mentorship.dismiss_stale_approvals,
        "same_content_approvals": mentorship.same_content_approvals,
        "gate_approved_prs": mentorship.gate_approved_prs,
        "pull_requests": [
            redacted_pull_document(pull) if pull.repo in hidden else pull_request_document(pull)
            for pull in pulls
        ],
    }


def documents(
    session: Session, *, found: list[Mentorship], now: datetime, viewer: Viewer = CLI
) -> list[dict[str, Any]]:
    """Documents for several mentorships from three queries, whatever their number.

    For a web ``viewer``, a fourth tells which repositories are private: in each mentorship
    the viewer is not a maintainer, the mentee or a mentor of, those are hidden.
    """
    ids = [m.id for m in found if m.id is not None]
    mentors = lifecycle.mentors_by_mentorship(session, mentorship_ids=ids)
    pulls = queries.pulls_by_mentorship(session, mentorship_ids=ids)
    outsider = [
        m
        for m in found
        if m.id is not None
        and not sees_all(viewer, mentee=m.mentee, mentors=[a.mentor for a in mentors[m.id]])
    ]
    named = [
        name for m in outsider for name in [*m.repositories, *(p.repo for p in pulls[m.id or 0])]
    ]
    known = queries.repository_privacy(session, repos=named)
    hidden = {
        m.id: hidden_names(
            pulls=[p.repo for p in pulls[m.id or 0]], scope=m.repositories, private=known
        )
        for m in outsider
    }
    return [
        mentorship_document(
            m,
            mentors=mentors[m.id],
            pulls=pulls[m.id],
            now=now,
            hidden=hidden.get(m.id, NOTHING_HIDDEN),
        )
        for m in found
        if m.id is not None
    ]


def status_document(
    session: Session, *, mentee: str, now: datetime, viewer: Viewer = CLI
) -> dict[str, Any]:
    """``status --json``: the mentee's current mentorship, else their latest."""
    mentorship = lifecycle.latest_mentorship(session, mentee=mentee)
    return documents(session, found=[mentorship], now=now, viewer=viewer)[0]


def list_documents(
    session: Session, *, include_ended: bool, now: datetime, viewer: Viewer = CLI
) -> list[dict[str, Any]]:
    """``list --json``: open mentorships, or every mentorship with ``include_ended``."""
    found = lifecycle.all_mentorships(session, include_ended=include_ended, now=now)
    return documents(session, found=found, now=now, viewer=viewer)


@bp.get("/mentorships")
def mentorships_api():  # type: ignore[no-untyped-def]
    """Every mentorship, as ``gatekeeper list --all --json`` prints it (private names hidden)."""
    return jsonify(list_documents(get_session(), include_ended=True, now=utcnow(), viewer=g.user))


@bp.get("/mentorships/<mentee>")
def mentorship_api(mentee: str):  # type: ignore[no-untyped-def]
    """One mentee's mentorship, as ``gatekeeper status --json`` prints it (private names hidden)."""
    try:
        return jsonify(status_document(get_session(), mentee=mentee, now=utcnow(), viewer=g.user))
    except lifecycle.MentorshipError as error:
        abort(404, description=str(error))


@bp.get("/mentorships/<mentee>/report")
def report_api(mentee: str):  # type: ignore[no-untyped-def]
    """The month's report, as ``gatekeeper report --json`` prints it (private names hidden)."""
    base_url = settings_of(current_app).base_url
    try:
        found = report.current(get_session(), mentee=mentee, base_url=base_url, viewer=g.user)
    except lifecycle.MentorshipError as error:
        abort(404, description=str(error))
    return jsonify(report.document(found))
