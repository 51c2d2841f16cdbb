"""Typed views of the webhook (and REST) payloads Gatekeeper uses: only what it needs.

Every field a handler reads is checked here, once, for its type and shape: a payload that
does not fit raises one ``PayloadError`` with a one-line reason, so nothing malformed gets
further than this module (nor to the database, which would refuse it less politely).
GitHub's REST answers share these shapes, so the GitHub gateway parses with the same
functions. Logins and repository names are normalised to lowercase, the display form kept.
Wherever a login is read, so is the account's user id (``user.id``): people are compared by
id, the login is only what is shown (see ``people.py``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# GitHub's own rules: logins are 1-39 alphanumerics or single hyphens (bots add "[bot]"),
# repository names 1-100 of letters, digits, '.', '-' and '_', commits 40 (or SHA-256's 64)
# hex digits. Ids fit PostgreSQL's BIGINT; numbers its INTEGER.
LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}(?:\[bot\])?")
REPOSITORY = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")
SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
BIGINT = 2**63 - 1
INTEGER = 2**31 - 1
TEXT_LIMIT = 65_536  # characters of a title, a body or a URL that Gatekeeper keeps


class PayloadError(ValueError):
    """A payload lacks a field Gatekeeper needs, or holds one of the wrong type or shape."""


# ---------------------------------------------------------------- readers


def _field(data: Any, key: str, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise PayloadError(f"{where} is not an object")
    if key not in data:
        raise PayloadError(f"{where}.{key} is missing")
    return data[key]


def _object(data: Any, key: str, where: str, *, optional: bool = False) -> Mapping[str, Any]:
    value = data.get(key) if optional and isinstance(data, Mapping) else _field(data, key, where)
    if value is None and optional:
        return {}
    if not isinstance(value, Mapping):
        raise PayloadError(f"{where}.{key} is not an object")
    return value


def _text(
    data: Any,
    key: str,
    where: str,
    *,
    optional: bool = False,
    pattern: re.Pattern[str] | None = None,
    limit: int = TEXT_LIMIT,
) -> str | None:
    value = data.get(key) if optional and isinstance(data, Mapping) else _field(data, key, where)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{where}.{key} is not a string")
    if len(value) > limit:
        raise PayloadError(f"{where}.{key} is longer than {limit} characters")
    if "\x00" in value or not _encodable(value):
        raise PayloadError(f"{where}.{key} holds a character that is not text")
    if pattern is not None and not pattern.fullmatch(value):
        raise PayloadError(f"{where}.{key} is not a valid value: {value[:60]!r}")
    return value


def _required_text(data: Any, key: str, where: str, **options: Any) -> str:
    value = _text(data, key, where, **options)
    assert value is not None
    return value


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape
        return False
    return True


def _integer(
    data: Any, key: str, where: str, *, high: int = BIGINT, optional: bool = False
) -> int | None:
    value = data.get(key) if optional and isinstance(data, Mapping) else _field(data, key, where)
    if value is None and optional:
        return None
    # bool is an int in Python, not in JSON.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= high:
        raise PayloadError(f"{where}.{key} is not a positive integer up to {high}")
    return value


def _required_integer(data: Any, key: str, where: str, **options: Any) -> int:
    value = _integer(data, key, where, **options)
    assert value is not None
    return value


def _boolean(data: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise PayloadError(f"{where}.{key} is not true or false")
    return value


def _time(data: Any, key: str, where: str) -> datetime | None:
    value = data.get(key) if isinstance(data, Mapping) else None
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not isinstance(value, str) or len(value) > 40:
        raise PayloadError(f"{where}.{key} is not a time")
    try:
        return timestamp(value)
    except (ValueError, OverflowError):
        raise PayloadError(f"{where}.{key} is not an ISO 8601 time") from None


def _list(data: Any, key: str, where: str) -> list[Any]:
    value = data.get(key) if isinstance(data, Mapping) else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{where}.{key} is not a list")
    return value


def timestamp(value: Any) -> datetime | None:
    """GitHub's ISO 8601 times (with Z) as aware UTC datetimes."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


# ---------------------------------------------------------------- views


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
    repo_private: bool | None = None
    sender_id: int | None = None
    sender_display: str | None = None
    repo_id: int | None = None  # GitHub's ``repository.id``: the same through renames

    @property
    def sender_account(self) -> Person | None:
        """Whoever caused the event, as an account (None when the payload does not say)."""
        if self.sender is None or self.sender_id is None:
            return None
        return Person(self.sender_id, self.sender, self.sender_display or self.sender)


def pull_number_of(payload: Mapping[str, Any]) -> int | None:
    """The pull request (or issue) number a webhook payload is about, if it names one a
    number can be (positive, within PostgreSQL's INTEGER)."""
    for holder in (payload, payload.get("pull_request"), payload.get("issue")):
        number = holder.get("number") if isinstance(holder, Mapping) else None
        if isinstance(number, int) and not isinstance(number, bool) and 0 < number <= INTEGER:
            return number
    return None


def envelope(event: str, payload: Mapping[str, Any]) -> Envelope:
    """The common parts of any event."""
    action = _text(payload, "action", "payload", optional=True, limit=64)
    sender = _object(payload, "sender", "payload", optional=True)
    repository = _object(payload, "repository", "payload", optional=True)
    installation = _object(payload, "installation", "payload", optional=True)
    login = _text(sender, "login", "sender", optional=True, pattern=LOGIN) if sender else None
    full_name = (
        _text(repository, "full_name", "repository", optional=True, pattern=REPOSITORY)
        if repository
        else None
    )
    return Envelope(
        event=event,
        action=action,
        sender=login.lower() if login else None,
        sender_type=_text(sender, "type", "sender", optional=True, limit=32) if sender else None,
        repo=full_name.lower() if full_name else None,
        repo_display=full_name,
        installation_id=(
            _integer(installation, "id", "installation", optional=True) if installation else None
        ),
        repo_private=_boolean(repository, "private", "repository") if repository else None,
        sender_id=_integer(sender, "id", "sender", optional=True) if sender else None,
        sender_display=login,
        repo_id=_integer(repository, "id", "repository", optional=True) if repository else None,
    )


def sender_login(payload: Mapping[str, Any]) -> str:
    """The display login of whoever caused the event (needed for an approval)."""
    return sender_of(payload).display


@dataclasses.dataclass(frozen=True)
class Person:
    """A GitHub account as a payload names it: its user id, its login now and its display."""

    id: int
    login: str
    display: str


def person(data: Any, key: str, where: str) -> Person:
    """The account in ``data[key]`` (a ``user``, ``sender`` or ``merged_by`` object)."""
    user = _object(data, key, where)
    login = _required_text(user, "login", f"{where}.{key}", pattern=LOGIN)
    user_id = _required_integer(user, "id", f"{where}.{key}")
    return Person(id=user_id, login=login.lower(), display=login)


def sender_of(payload: Mapping[str, Any]) -> Person:
    """Whoever caused the event (an approval needs to know who, by id)."""
    return person(payload, "sender", "payload")


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
    author_id: int | None = None  # None only where a caller built it without one
    merged_by_id: int | None = None
    merged_by_display: str | None = None
    repo_id: int | None = None  # ``base.repo.id``: the repository whatever its name now

    @property
    def people(self) -> tuple[Person, ...]:
        """The accounts this snapshot names: the author, and who merged it if known."""
        found = []
        if self.author_id is not None:
            found.append(Person(self.author_id, self.author, self.author_display))
        if self.merged_by and self.merged_by_id is not None:
            found.append(Person(self.merged_by_id, self.merged_by, self.merged_by_display or ""))
        return tuple(found)


def pull_info(data: Any) -> PullInfo:
    """Parse a pull request object (webhook ``pull_request`` or REST answer)."""
    where = "pull_request"
    base = _object(data, "base", where)
    base_repo = _object(base, "repo", "pull_request.base")
    full_name = _required_text(base_repo, "full_name", "base.repo", pattern=REPOSITORY)
    author = person(data, "user", where)
    merger = person(data, "merged_by", where) if data.get("merged_by") is not None else None
    state = _text(data, "state", where, optional=True, limit=16) or "open"
    if state not in ("open", "closed"):
        raise PayloadError(f"pull_request.state is {state[:20]!r}, not open or closed")
    merged_at = _time(data, "merged_at", where)
    return PullInfo(
        repo=full_name.lower(),
        repo_display=full_name,
        number=_required_integer(data, "number", where, high=INTEGER),
        author=author.login,
        author_display=author.display,
        author_id=author.id,
        title=_text(data, "title", where, optional=True) or "",
        url=_text(data, "html_url", where, optional=True) or "",
        head_sha=_required_text(_object(data, "head", where), "sha", "head", pattern=SHA),
        base_ref=_text(base, "ref", "base", optional=True, limit=255) or "",
        draft=_boolean(data, "draft", where),
        state=state,
        merged=bool(_boolean(data, "merged", where) or merged_at),
        merged_by=merger.login if merger else None,
        merged_at=merged_at,
        updated_at=_time(data, "updated_at", where),
        merged_by_id=merger.id if merger else None,
        merged_by_display=merger.display if merger else None,
        repo_id=_integer(base_repo, "id", "base.repo", optional=True),
    )


def pull_of(payload: Mapping[str, Any]) -> PullInfo:
    """The pull request an event is about (``pull_request`` and ``pull_request_review``)."""
    return pull_info(_object(payload, "pull_request", "payload"))


def base_changed(payload: Mapping[str, Any]) -> bool:
    """Whether an ``edited`` pull request event moved it to another base branch."""
    changes = _object(payload, "changes", "payload", optional=True)
    return bool(_object(changes, "base", "changes", optional=True))


@dataclasses.dataclass(frozen=True)
class ReviewInfo:
    """A pull request review; states are uppercase as the REST API gives them."""

    id: int
    reviewer: str
    reviewer_display: str
    state: str
    commit_id: str | None
    submitted_at: datetime | None
    reviewer_id: int | None = None  # None: built without one; such a review approves nothing

    @property
    def person(self) -> Person | None:
        """The reviewer's account, if known."""
        if self.reviewer_id is None:
            return None
        return Person(self.reviewer_id, self.reviewer, self.reviewer_display)


REVIEW_STATES = frozenset({"APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"})


def review_info(data: Any) -> ReviewInfo:
    """Parse a review (webhook states are lowercase, REST's uppercase: normalise)."""
    reviewer = person(data, "user", "review")
    state = _required_text(data, "state", "review", limit=32).upper()
    if state not in REVIEW_STATES:
        raise PayloadError(f"review.state is {state[:20]!r}, not a review state")
    return ReviewInfo(
        id=_required_integer(data, "id", "review"),
        reviewer=reviewer.login,
        reviewer_display=reviewer.display,
        reviewer_id=reviewer.id,
        state=state,
        commit_id=_text(data, "commit_id", "review", optional=True, pattern=SHA),
        submitted_at=_time(data, "submitted_at", "review"),
    )


def review_of(payload: Mapping[str, Any]) -> ReviewInfo:
    """The review a ``pull_request_review`` event is about."""
    return review_info(_object(payload, "review", "payload"))


EXTERNAL_ID = re.compile(
    r"(?P<repo>[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100})#(?P<number>[0-9]{1,9})"
)


@dataclasses.dataclass(frozen=True)
class CheckRunInfo:
    """A check run event: which run, on which commit, and which button was pressed."""

    name: str
    head_sha: str
    external_id: str
    named_pull: tuple[str, int] | None  # the pull request our external_id names, if any
    app_id: int | None
    pull_numbers: tuple[int, ...]
    requested_action: str | None
    completed_at: datetime | None


def check_run_info(payload: Mapping[str, Any]) -> CheckRunInfo:
    """Parse a ``check_run`` event."""
    run = _object(payload, "check_run", "payload")
    requested = _object(payload, "requested_action", "payload", optional=True)
    external_id = _text(run, "external_id", "check_run", optional=True, limit=255) or ""
    named = EXTERNAL_ID.fullmatch(external_id)
    return CheckRunInfo(
        name=_required_text(run, "name", "check_run", limit=255),
        head_sha=_required_text(run, "head_sha", "check_run", pattern=SHA),
        external_id=external_id,
        named_pull=(named["repo"].lower(), int(named["number"])) if named else None,
        app_id=_integer(
            _object(run, "app", "check_run", optional=True), "id", "app", optional=True
        ),
        pull_numbers=_numbers(run, "check_run"),
        requested_action=(
            _text(requested, "identifier", "requested_action", optional=True, limit=64)
            if requested
            else None
        ),
        completed_at=_time(run, "completed_at", "check_run")
        or _time(run, "started_at", "check_run"),
    )


@dataclasses.dataclass(frozen=True)
class CheckSuiteInfo:
    """A check suite event: the pushed commit and the pull requests GitHub says it heads."""

    head_sha: str
    pull_numbers: tuple[int, ...]
    head_tree: str | None  # the pushed commit's tree, when the payload says


def check_suite_info(payload: Mapping[str, Any]) -> CheckSuiteInfo:
    """Parse a ``check_suite`` event."""
    suite = _object(payload, "check_suite", "payload")
    head_sha = _required_text(suite, "head_sha", "check_suite", pattern=SHA)
    commit = _object(suite, "head_commit", "check_suite", optional=True)
    # The tree is the head commit's only if the payload's commit is that head.
    same = bool(commit) and _text(commit, "id", "head_commit", optional=True) == head_sha
    return CheckSuiteInfo(
        head_sha=head_sha,
        pull_numbers=_numbers(suite, "check_suite"),
        head_tree=_text(commit, "tree_id", "head_commit", optional=True, pattern=SHA)
        if same
        else None,
    )


def _numbers(data: Mapping[str, Any], where: str) -> tuple[int, ...]:
    found = []
    for item in _list(data, "pull_requests", where):
        found.append(_required_integer(item, "number", f"{where}.pull_requests[]", high=INTEGER))
    return tuple(found)


@dataclasses.dataclass(frozen=True)
class CommentInfo:
    """A comment on an issue or a pull request."""

    number: int
    on_pull_request: bool
    id: int
    body: str
    created_at: datetime | None
    author: Person | None = None


def comment_info(payload: Mapping[str, Any]) -> CommentInfo:
    """Parse an ``issue_comment`` event."""
    issue = _object(payload, "issue", "payload")
    comment = _object(payload, "comment", "payload")
    return CommentInfo(
        number=_required_integer(issue, "number", "issue", high=INTEGER),
        on_pull_request=bool(issue.get("pull_request")),
        id=_required_integer(comment, "id", "comment"),
        body=_text(comment, "body", "comment", optional=True) or "",
        created_at=_time(comment, "created_at", "comment"),
        author=person(comment, "user", "comment"),
    )


# GitHub names a group's branch after the pull request it adds to the queue and the commit
# the group is built on (its ``base_sha``: the base branch's tip, or the group ahead of it).
QUEUE_REF = re.compile(
    r"refs/heads/gh-readonly-queue/(?P<base>.+)/pr-(?P<number>[1-9][0-9]{0,8})-(?P<parent>"
    + SHA.pattern
    + ")"
)
BRANCH_REF = "refs/heads/"


@dataclasses.dataclass(frozen=True)
class MergeGroupInfo:
    """A merge queue's group: its commit, its branch, and the pull request it adds."""

    head_sha: str
    head_ref: str
    base_ref: str  # the branch it merges into, without ``refs/heads/``
    number: int | None  # None when its ref does not name a pull request for that branch
    reason: str | None  # why it was destroyed: merged, invalidated or dequeued


def merge_group_info(payload: Mapping[str, Any]) -> MergeGroupInfo:
    """Parse a ``merge_group`` event."""
    group = _object(payload, "merge_group", "payload")
    head_ref = _required_text(group, "head_ref", "merge_group", limit=255)
    base_ref = _required_text(group, "base_ref", "merge_group", limit=255).removeprefix(BRANCH_REF)
    queued = QUEUE_REF.fullmatch(head_ref)
    return MergeGroupInfo(
        head_sha=_required_text(group, "head_sha", "merge_group", pattern=SHA),
        head_ref=head_ref,
        base_ref=base_ref,
        # A ref whose branch is not the group's base is not one GitHub made: no pull request.
        number=int(queued["number"]) if queued and queued["base"] == base_ref else None,
        reason=_text(payload, "reason", "payload", optional=True, limit=32),
    )


def installation_id(payload: Mapping[str, Any]) -> int:
    """The installation an ``installation*`` event is about."""
    return _required_integer(_object(payload, "installation", "payload"), "id", "installation")


@dataclasses.dataclass(frozen=True)
class RepositoryRef:
    """A repository as an ``installation*`` event lists it (name as GitHub shows it)."""

    full_name: str
    github_id: int | None
    private: bool | None


def installation_repositories(
    payload: Mapping[str, Any],
) -> tuple[list[RepositoryRef], list[RepositoryRef]]:
    """Repositories added and removed by an ``installation``/``installation_repositories`` event."""
    added = _list(payload, "repositories_added", "payload") or _list(
        payload, "repositories", "payload"
    )
    removed = _list(payload, "repositories_removed", "payload")

    def refs(items: list[Any], where: str) -> list[RepositoryRef]:
        return [
            RepositoryRef(
                full_name=_required_text(r, "full_name", where, pattern=REPOSITORY),
                github_id=_integer(r, "id", where, optional=True),
                private=_boolean(r, "private", where),
            )
            for r in items
        ]

    return refs(added, "repositories[]"), refs(removed, "repositories_removed[]")
