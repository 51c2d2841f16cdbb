"""Typed views of the webhook (and REST) payloads Gatekeeper uses: only what it needs.

GitHub's REST answers share these shapes, so the GitHub gateway parses with the same functions.
Logins and repository names are normalised to lowercase here, with the display form kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


class PayloadError(ValueError):
    """A payload lacks a field Gatekeeper needs."""


@dataclasses.dataclass(frozen=True)
class PullInfo:
    """A pull request snapshot."""

    repo: str
    repo_display: str
    number: int
    author: str
    author_display: str
    title: str
    url: str
    head_sha: str
    base_ref: str
    draft: bool | None  # None: the payload does not say (review events' trimmed pull request)
    state: str
    merged: bool
    merged_by: str | None  # None: unknown or not merged
    merged_at: datetime | None
    updated_at: datetime | None


@dataclasses.dataclass(frozen=True)
class ReviewInfo:
    """A pull request review; states are uppercase as the REST API gives them."""

    id: int
    reviewer: str
    reviewer_display: str
    state: str
    commit_id: str | None
    submitted_at: datetime | None


@dataclasses.dataclass(frozen=True)
class Envelope:
    """What every event carries: who sent it, where, and through which installation."""

    event: str
    action: str | None
    sender: str | None
    sender_type: str | None
    repo: str | None
    repo_display: str | None
    installation_id: int | None


def timestamp(value: Any) -> datetime | None:
    """GitHub's ISO 8601 times (with Z) as aware UTC datetimes."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def envelope(event: str, payload: Mapping[str, Any]) -> Envelope:
    """The common parts of any event."""
    sender = payload.get("sender") or {}
    repository = payload.get("repository") or {}
    installation = payload.get("installation") or {}
    full_name = repository.get("full_name")
    return Envelope(
        event=event,
        action=payload.get("action"),
        sender=(sender.get("login") or "").lower() or None,
        sender_type=sender.get("type"),
        repo=full_name.lower() if full_name else None,
        repo_display=full_name,
        installation_id=installation.get("id"),
    )


def pull_info(data: Mapping[str, Any]) -> PullInfo:
    """Parse a pull request object (webhook ``pull_request`` or REST answer)."""
    try:
        base = data["base"]
        full_name = base["repo"]["full_name"]
        user = data["user"]["login"]
        merged_by = data.get("merged_by") or {}
        return PullInfo(
            repo=full_name.lower(),
            repo_display=full_name,
            number=int(data["number"]),
            author=user.lower(),
            author_display=user,
            title=data.get("title") or "",
            url=data.get("html_url") or "",
            head_sha=data["head"]["sha"],
            base_ref=base.get("ref") or "",
            draft=bool(data["draft"]) if "draft" in data else None,
            state=data.get("state") or "open",
            merged=bool(data.get("merged") or data.get("merged_at")),
            merged_by=(merged_by.get("login") or "").lower() or None,
            merged_at=timestamp(data.get("merged_at")),
            updated_at=timestamp(data.get("updated_at")),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise PayloadError(f"pull request payload lacks {error}") from None


def review_info(data: Mapping[str, Any]) -> ReviewInfo:
    """Parse a review (webhook states are lowercase, REST's uppercase: normalise)."""
    try:
        login = data["user"]["login"]
        return ReviewInfo(
            id=int(data["id"]),
            reviewer=login.lower(),
            reviewer_display=login,
            state=str(data["state"]).upper(),
            commit_id=data.get("commit_id"),
            submitted_at=timestamp(data.get("submitted_at")),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise PayloadError(f"review payload lacks {error}") from None


def installation_repositories(payload: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Repositories added and removed by an ``installation``/``installation_repositories`` event."""
    added = payload.get("repositories_added") or payload.get("repositories") or []
    removed = payload.get("repositories_removed") or []
    return [r["full_name"] for r in added], [r["full_name"] for r in removed]
