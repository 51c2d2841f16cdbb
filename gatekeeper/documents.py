"""The JSON documents that ``/api``, the command line and the report share: a mentorship
(``status --json``, ``list --json``), a pull request (whole or redacted) and a promotion record.

Kept apart from ``api.py``, which serves them, so that the report builds on them without
importing ``api`` (which serves the report), and ``gatekeeper status`` and ``list`` print
them without importing Flask.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from gatekeeper import standing, votes
from gatekeeper.standing import EndReason
from gatekeeper.visibility import (
    CLI,
    NOTHING_HIDDEN,
    PRIVATE_PULL,
    Scope,
    Viewer,
    hidden_names,
    sees_all,
)

# The queries (and the ORM under them) are imported where they run: ``gatekeeper status`` and
# ``list`` shape rows read without the ORM with the functions above ``documents`` (readings.py).
if TYPE_CHECKING:
    from sqlmodel import Session

    from gatekeeper.models import MentorAssignment, Mentorship, PullRequest


def iso(value: date | datetime | None) -> str | None:
    """ISO 8601, or None."""
    return value.isoformat() if value is not None else None


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


def promotion_document(mentorship: Mentorship) -> dict[str, Any] | None:
    """The promotion vote, its PEP 13 result and any override; None when neither was given."""
    vote = votes.vote_of(mentorship)
    if vote is None and not mentorship.override_reason:
        return None
    return {
        "vote_url": mentorship.vote_url,
        "votes_for": mentorship.votes_for,
        "votes_against": mentorship.votes_against,
        "vote_opened": iso(mentorship.vote_opened),
        "vote_closed": iso(mentorship.vote_closed),
        # "discourse" (read from the forum's poll at fetched_at) or "manual" (typed).
        "source": mentorship.vote_source if vote is not None else None,
        "fetched_at": iso(mentorship.vote_fetched_at),
        "pep13_passed": vote.passes if vote else None,
        "pep13_problems": vote.problems() if vote else [],
        "override_reason": mentorship.override_reason,
    }


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
    state = standing.state_of(mentorship, now)
    scope = Scope.of(mentorship.repositories, hidden=hidden)
    return {
        "mentee": mentorship.mentee_display,
        "mentors": [assignment.mentor_display for assignment in mentors],
        "state": state,
        "started_at": iso(mentorship.started_at),
        "ends_at": iso(mentorship.ends_at),
        "ended_at": iso(standing.effective_end(mentorship)) if state == "ended" else None,
        "end_reason": mentorship.end_reason
        or (EndReason.EXPIRED if now >= mentorship.ends_at else None),
        "days_left": standing.days_left(mentorship, now),
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
    from gatekeeper import mentorships as lifecycle
    from gatekeeper import queries

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
    from gatekeeper import mentorships as lifecycle

    mentorship = lifecycle.latest_mentorship(session, mentee=mentee)
    if mentorship is None:  # the CLI says it in one line, /api as a 404
        raise lifecycle.MentorshipError(lifecycle.no_mentorship(mentee))
    return documents(session, found=[mentorship], now=now, viewer=viewer)[0]


def list_documents(
    session: Session, *, include_ended: bool, now: datetime, viewer: Viewer = CLI
) -> list[dict[str, Any]]:
    """``list --json``: open mentorships, or every mentorship with ``include_ended``."""
    from gatekeeper import mentorships as lifecycle

    found = lifecycle.all_mentorships(session, include_ended=include_ended, now=now)
    return documents(session, found=found, now=now, viewer=viewer)
