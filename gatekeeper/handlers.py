"""What each webhook event does: store what changed, re-evaluate the gate, name what to post."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from gatekeeper import approvals, checks
from gatekeeper import pulls as store
from gatekeeper.config import Settings
from gatekeeper.events import (
    Envelope,
    installation_repositories,
    pull_info,
    review_info,
    timestamp,
)
from gatekeeper.github import GitHubApp, GitHubUnavailable
from gatekeeper.models import MergeGroup, PullRequest, Repository

APPROVE_COMMAND = re.compile(r"^\s*/gatekeeper\s+approve\s*$", re.IGNORECASE | re.MULTILINE)


@dataclasses.dataclass
class Context:
    """One delivery being applied."""

    session: Session
    settings: Settings
    github: GitHubApp | None
    now: datetime
    envelope: Envelope
    payload: Mapping[str, Any]


@dataclasses.dataclass
class Result:
    """What a handler did: pull requests whose check may need posting, and whether afresh."""

    pulls: list[PullRequest] = dataclasses.field(default_factory=list)
    fresh: bool = False
    merge_group: MergeGroup | None = None  # a merge queue commit to mark success


Handler = Callable[[Context], Result]
HANDLERS: dict[tuple[str, str | None], Handler] = {}


def on(event: str, *actions: str | None) -> Callable[[Handler], Handler]:
    """Register a handler for ``event`` with any of ``actions``."""

    def register(handler: Handler) -> Handler:
        for action in actions:
            HANDLERS[(event, action)] = handler
        return handler

    return register


def handler_for(event: str, action: str | None) -> Handler | None:
    """The handler for an event and action, or None to ignore it."""
    return HANDLERS.get((event, action))


@on(
    "pull_request",
    "opened",
    "reopened",
    "synchronize",
    "ready_for_review",
    "converted_to_draft",
    "edited",
    "closed",
)
def pull_request_changed(ctx: Context) -> Result:
    """Store the pull request as it now is and re-evaluate its gate."""
    pull = store.upsert_pull(ctx.session, info=pull_info(ctx.payload["pull_request"]), now=ctx.now)
    checks.reevaluate(ctx.session, pull, settings=ctx.settings, now=ctx.now)
    return Result([pull])


@on("pull_request_review", "submitted", "edited", "dismissed")
def review_changed(ctx: Context) -> Result:
    """Record the review by its id (a review may arrive before its pull request) and re-evaluate."""
    pull = store.upsert_pull(ctx.session, info=pull_info(ctx.payload["pull_request"]), now=ctx.now)
    review = store.upsert_review(
        ctx.session, pull=pull, info=review_info(ctx.payload["review"]), now=ctx.now
    )
    ctx.session.flush()
    before = set(pull.approved_by)
    checks.reevaluate(ctx.session, pull, settings=ctx.settings, now=ctx.now)
    if review.reviewer in set(pull.approved_by) - before:
        approvals.audit_approval(
            ctx.session, pull, login=review.reviewer, source="review", now=ctx.now
        )
    return Result([pull])


@on("check_run", "rerequested", "requested_action")
def check_run_action(ctx: Context) -> Result:
    """Re-run: post afresh. The "Approve merge" button: an approval if a mentor pressed it."""
    run = ctx.payload["check_run"]
    if run.get("name") != ctx.settings.check_name or not _ours(ctx, run):
        return Result()
    pull = _pull_of_check_run(ctx, run)
    if pull is None:
        return Result()
    if ctx.envelope.action == "rerequested":
        checks.reevaluate(ctx.session, pull, settings=ctx.settings, now=ctx.now)
        return Result([pull], fresh=True)
    if (ctx.payload.get("requested_action") or {}).get("identifier") != "approve":
        return Result()
    # The button approves the commit whose check was pressed, not whatever was pushed since.
    return _approve(ctx, pull, source="button", commit_id=run.get("head_sha"))


@on("check_suite", "requested", "rerequested")
def check_suite_requested(ctx: Context) -> Result:
    """A push (or "Re-run all checks"): make sure each pull request of the commit has our check.

    This is GitHub's own way of asking every checks App for a run, so a lost ``synchronize``
    for anyone's pull request is healed here too.
    """
    suite = ctx.payload["check_suite"]
    head_sha = suite.get("head_sha")
    pulls = []
    for candidate in suite.get("pull_requests") or []:
        pull = _pull(ctx, ctx.envelope.repo or "", int(candidate["number"]))
        if pull is not None and pull.head_sha != head_sha:
            pull = _refetch(ctx, pull)  # our copy missed the push
        if pull is not None and pull.head_sha == head_sha:
            checks.reevaluate(ctx.session, pull, settings=ctx.settings, now=ctx.now)
            pulls.append(pull)
    return Result(pulls, fresh=ctx.envelope.action == "rerequested")


@on("issue_comment", "created")
def comment_created(ctx: Context) -> Result:
    """A line ``/gatekeeper approve`` in a new comment on a pull request, from a mentor."""
    issue, comment = ctx.payload["issue"], ctx.payload["comment"]
    if not issue.get("pull_request") or not APPROVE_COMMAND.search(comment.get("body") or ""):
        return Result()
    pull = _pull(ctx, ctx.envelope.repo or "", int(issue["number"]))
    if pull is None:
        return Result()
    # Dated when written, so a later "changes requested" wins even if this arrives late.
    return _approve(
        ctx,
        pull,
        source="comment",
        github_id=comment.get("id"),
        at=timestamp(comment.get("created_at")),
    )


@on("merge_group", "checks_requested")
def merge_group_requested(ctx: Context) -> Result:
    """Pull requests enter the merge queue only after their own gate passed."""
    group = store.remember_merge_group(
        ctx.session,
        repo=ctx.envelope.repo or "",
        head_sha=ctx.payload["merge_group"]["head_sha"],
        installation_id=ctx.envelope.installation_id,
        now=ctx.now,
    )
    return Result(merge_group=group)


@on("installation", "created", "deleted", "suspend", "unsuspend", "new_permissions_accepted")
def installation_changed(ctx: Context) -> Result:
    """Keep the installation id of each repository the App covers."""
    installation_id = ctx.payload["installation"]["id"]
    added, _removed = installation_repositories(ctx.payload)
    if ctx.envelope.action in ("deleted", "suspend"):
        _forget_installation(ctx.session, installation_id)
        return Result()
    for name in added:
        store.remember_installation(
            ctx.session, repo=name, display=name, installation_id=installation_id
        )
    return Result()


@on("installation_repositories", "added", "removed")
def installation_repositories_changed(ctx: Context) -> Result:
    """Repositories added to or removed from an installation."""
    installation_id = ctx.payload["installation"]["id"]
    added, removed = installation_repositories(ctx.payload)
    for name in added:
        store.remember_installation(
            ctx.session, repo=name, display=name, installation_id=installation_id
        )
    for name in removed:
        store.remember_installation(ctx.session, repo=name, display=name, installation_id=None)
    return Result()


def _approve(
    ctx: Context,
    pull: PullRequest,
    *,
    source: str,
    commit_id: str | None = None,
    github_id: int | None = None,
    at: datetime | None = None,
) -> Result:
    sender = ctx.payload["sender"]
    approvals.approve(
        ctx.session,
        pull,
        login=sender["login"],
        source=source,
        now=ctx.now,
        given_at=at,
        github_id=github_id,
        commit_id=commit_id,
        settings=ctx.settings,
    )
    return Result([pull])


def _ours(ctx: Context, run: Mapping[str, Any]) -> bool:
    app_id = (run.get("app") or {}).get("id")
    return ctx.settings.github_app_id is None or app_id in (None, ctx.settings.github_app_id)


def _pull_of_check_run(ctx: Context, run: Mapping[str, Any]) -> PullRequest | None:
    repo, _, number = (run.get("external_id") or "").rpartition("#")
    if repo and number.isdigit():
        return _pull(ctx, repo, int(number))
    for candidate in run.get("pull_requests") or []:
        return _pull(ctx, ctx.envelope.repo or "", int(candidate["number"]))
    return None


def _pull(ctx: Context, repo: str, number: int) -> PullRequest | None:
    """The stored pull request, fetched from GitHub if a lost webhook means we never saw it."""
    pull = store.find_pull(ctx.session, repo=repo, number=number)
    if pull is not None or ctx.github is None or not repo:
        return pull
    try:
        installation_id = ctx.envelope.installation_id or ctx.github.installation_for(repo)
        info = ctx.github.pull(installation_id=installation_id, repo=repo, number=number)
    except GitHubUnavailable:
        return None
    return store.upsert_pull(ctx.session, info=info, now=ctx.now)


def _refetch(ctx: Context, pull: PullRequest) -> PullRequest:
    """The pull request as GitHub has it now (unchanged if GitHub cannot say)."""
    if ctx.github is None:
        return pull
    try:
        installation_id = ctx.envelope.installation_id or ctx.github.installation_for(pull.repo)
        info = ctx.github.pull(installation_id=installation_id, repo=pull.repo, number=pull.number)
    except GitHubUnavailable:
        return pull
    return store.upsert_pull(ctx.session, info=info, now=ctx.now)


def _forget_installation(session: Session, installation_id: int) -> None:
    for row in session.exec(
        select(Repository).where(col(Repository.installation_id) == installation_id)
    ):
        row.installation_id = None
        session.add(row)
