"""The JSON documents shared by ``gatekeeper status/list --json`` and ``/api``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from flask import Blueprint, abort, g, jsonify
from sqlmodel import Session, col, select

from gatekeeper import mentorships as lifecycle
from gatekeeper.auth import User, roles
from gatekeeper.db import get_session
from gatekeeper.models import MentorAssignment, Mentorship, PullRequest, utcnow
from gatekeeper.pages import PRIVATE_PULL, private_repositories, sees_private

bp = Blueprint("api", __name__, url_prefix="/api")

# The command line runs where the database is, with its credentials: it is shown everything.
CLI: Final = "cli"
# Who reads a document: the CLI, or a web visitor (signed in or not).
Viewer = User | Literal["cli"] | None


def pull_request_document(pull: PullRequest) -> dict[str, Any]:
    """One tracked pull request and its gate."""
    return {
        "repo": pull.repo,
        "number": pull.number,
        "title": pull.title,
        "url": pull.url,
        "author": pull.author_display,
        "head_sha": pull.head_sha,
        "state": "merged" if pull.merged else pull.state,
        "gate": pull.gate,
        "approved_by": list(pull.approved_by),
    }


def redacted_pull_document(pull: PullRequest) -> dict[str, Any]:
    """A pull request in a private repository, for a reader who may not see it: its gate only."""
    return {
        "redacted": PRIVATE_PULL,
        "repo": None,
        "number": None,
        "title": None,
        "url": None,
        "author": None,
        "head_sha": None,
        "state": "merged" if pull.merged else pull.state,
        "gate": pull.gate,
        "approved_by": None,
    }


def mentorship_document(
    mentorship: Mentorship,
    *,
    mentors: list[MentorAssignment],
    pulls: list[PullRequest],
    now: datetime,
    hidden: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The document describing one mentorship at ``now``; pulls in ``hidden`` repos redacted."""
    vote = lifecycle.vote_of(mentorship)
    promotion = None
    if vote is not None or mentorship.override_reason:
        promotion = {
            "vote_url": mentorship.vote_url,
            "votes_for": mentorship.votes_for,
            "votes_against": mentorship.votes_against,
            "vote_opened": _iso(mentorship.vote_opened),
            "vote_closed": _iso(mentorship.vote_closed),
            # "discourse" (read from the forum's poll at fetched_at) or "manual" (typed).
            "source": mentorship.vote_source if vote is not None else None,
            "fetched_at": _iso(mentorship.vote_fetched_at),
            "pep13_passed": vote.passes if vote else None,
            "pep13_problems": vote.problems() if vote else [],
            "override_reason": mentorship.override_reason,
        }
    return {
        "mentee": mentorship.mentee_display,
        "mentors": [assignment.mentor_display for assignment in mentors],
        "state": lifecycle.state_of(mentorship, now),
        "started_at": _iso(mentorship.started_at),
        "ends_at": _iso(mentorship.ends_at),
        "ended_at": _iso(lifecycle.effective_end(mentorship))
        if lifecycle.state_of(mentorship, now) == "ended"
        else None,
        "end_reason": mentorship.end_reason or ("expired" if now >= mentorship.ends_at else None),
        "days_left": lifecycle.days_left(mentorship, now),
        "promotion": promotion,
        "approvals_required": mentorship.approvals_required,
        "repositories": list(mentorship.repositories),
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

    For a web ``viewer``, a fourth finds the private repositories: their pull requests are
    redacted in each mentorship the viewer is not a maintainer, the mentee or a mentor of.
    """
    ids = [m.id for m in found if m.id is not None]
    mentors = lifecycle.mentors_by_mentorship(session, mentorship_ids=ids)
    pulls: dict[int, list[PullRequest]] = {mid: [] for mid in ids}
    if ids:
        rows = session.exec(
            select(PullRequest)
            .where(col(PullRequest.gated_mentorship_id).in_(ids))
            .order_by(col(PullRequest.first_seen_at), col(PullRequest.id))
        )
        for row in rows:
            assert row.gated_mentorship_id is not None
            pulls[row.gated_mentorship_id].append(row)
    outsider = {
        m.id
        for m in found
        if m.id is not None
        and viewer != CLI
        and not sees_private(
            roles(viewer, mentee=m.mentee, mentors=[a.mentor for a in mentors[m.id]])
        )
    }
    private = private_repositories(session, repos=[p.repo for mid in outsider for p in pulls[mid]])
    return [
        mentorship_document(
            m,
            mentors=mentors[m.id],
            pulls=pulls[m.id],
            now=now,
            hidden=private if m.id in outsider else frozenset(),
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


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@bp.get("/mentorships")
def mentorships_api():  # type: ignore[no-untyped-def]
    """Every mentorship, as ``gatekeeper list --all --json`` prints it (private pulls redacted)."""
    return jsonify(list_documents(get_session(), include_ended=True, now=utcnow(), viewer=g.user))


@bp.get("/mentorships/<mentee>")
def mentorship_api(mentee: str):  # type: ignore[no-untyped-def]
    """One mentee's mentorship, as ``gatekeeper status --json`` prints it (private pulls redacted)."""
    try:
        return jsonify(status_document(get_session(), mentee=mentee, now=utcnow(), viewer=g.user))
    except lifecycle.MentorshipError as error:
        abort(404, description=str(error))


@bp.get("/mentorships/<mentee>/report")
def report_api(mentee: str):  # type: ignore[no-untyped-def]
    """The month's report, as ``gatekeeper report --json`` prints it (private pulls redacted)."""
    from flask import current_app

    from gatekeeper import report  # it builds on this module's documents
    from gatekeeper.extensions import settings_of

    base_url = settings_of(current_app).base_url
    try:
        found = report.current(get_session(), mentee=mentee, base_url=base_url, viewer=g.user)
    except lifecycle.MentorshipError as error:
        abort(404, description=str(error))
    return jsonify(report.document(found))
