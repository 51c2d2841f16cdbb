"""The JSON shapes of stored rows that ``/api``, the command line and the report share: a pull
request (whole or redacted) and a mentorship's promotion record.

Kept apart from ``api.py`` (which composes them into the mentorship documents and serves
them) so that the report builds on them without importing ``api``, which serves the report.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from gatekeeper import mentorships as lifecycle
from gatekeeper.models import Mentorship, PullRequest
from gatekeeper.visibility import PRIVATE_PULL


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
    vote = lifecycle.vote_of(mentorship)
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
