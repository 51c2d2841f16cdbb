"""What each webhook event does: store what it says and re-decide the gates it touches.

Handlers never call GitHub. What they cannot decide without it (a pull request never seen,
a head that moved) becomes a job for the worker. Each handler returns the commits whose check
may now read differently; ``deliveries`` hands them to ``outbox.commit_gates`` before the
delivery commits.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from gatekeeper import approvals, decisions, events, jobs, merge_groups, outbox, people
from gatekeeper import pulls as store
from gatekeeper.config import Settings
from gatekeeper.events import Envelope
from gatekeeper.gate import ApprovalSource
from gatekeeper.models import PullRequest, Repository
from gatekeeper.outbox import NOTHING, Touched

# The command is a line of its own and nothing else: ASCII spaces only (a no-break space
# is not one), outside quotes and code (see ``asks_to_approve``).
APPROVE_COMMAND = re.compile(r"[ \t]*/gatekeeper[ \t]+approve[ \t]*", re.IGNORECASE)
# A maintainer's override names its reason on the same line (an empty one is refused).
OVERRIDE_COMMAND = re.compile(
    r"[ \t]*/gatekeeper[ \t]+override(?:[ \t]+(.*?))?[ \t]*", re.IGNORECASE
)
FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
CLOSING_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*")


def asks_to_approve(body: str) -> bool:
    """Whether a comment holds the approve command as a line of its own (see ``_own_lines``)."""
    return any(APPROVE_COMMAND.fullmatch(line) for line in _own_lines(body))


def override_reason(body: str) -> str | None:
    """The reason of a ``/gatekeeper override REASON`` line of a comment's own ("" when the
    line gives none); None when it has no such line."""
    for line in _own_lines(body):
        if command := OVERRIDE_COMMAND.fullmatch(line):
            return command.group(1) or ""
    return None


def _own_lines(body: str) -> Iterator[str]:
    """The lines a comment's author wrote as their own: not quoted (``>``, and the lines a
    quote runs on into), not inside a fenced or indented code block, not inside an HTML
    comment. Lines end only at ``\n``, as GitHub's Markdown has it (a U+2028 is not a line
    break there)."""
    fence: str | None = None
    quoted = hidden = False
    for line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if fence is not None:
            closing = CLOSING_FENCE.fullmatch(line)
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence):
                fence = None
            continue
        if hidden:
            hidden = "-->" not in line
            continue
        if opening := FENCE.match(line):
            fence, quoted = opening.group(1), False
            continue
        if "<!--" in line and "-->" not in line.split("<!--", 1)[1]:
            hidden = True
            continue
        if not line.strip():
            quoted = False
            continue
        if line.lstrip(" ").startswith(">"):
            quoted = True
            continue
        if quoted or line.startswith(("    ", "\t")):  # a quote's lazy continuation; code
            continue
        yield line


class NeedsPull(Exception):
    """The delivery is about a pull request Gatekeeper has never seen: GitHub must be asked."""

    def __init__(self, repo: str, number: int) -> None:
        super().__init__(f"{repo}#{number} has not been seen yet")
        self.repo, self.number = repo, number


@dataclasses.dataclass
class Context:
    """One delivery being applied."""

    session: Session
    settings: Settings
    now: datetime
    envelope: Envelope
    payload: Mapping[str, Any]


Handler = Callable[[Context], Touched]
Reader = Callable[[Mapping[str, Any]], object]


@dataclasses.dataclass(frozen=True)
class Registered:
    """A handler, the parts of ``events`` it reads the payload with, and (for events that
    are mostly of no concern, such as comments) whether a payload concerns it at all."""

    handler: Handler
    reads: tuple[Reader, ...]
    concerns: Callable[[Mapping[str, Any]], bool] | None


HANDLERS: dict[tuple[str, str | None], Registered] = {}


def on(
    event: str,
    *actions: str | None,
    reads: tuple[Reader, ...],
    concerns: Callable[[Mapping[str, Any]], bool] | None = None,
) -> Callable[[Handler], Handler]:
    """Register a handler for ``event`` with any of ``actions`` (see ``Registered``)."""

    def register(handler: Handler) -> Handler:
        for action in actions:
            HANDLERS[(event, action)] = Registered(handler, reads, concerns)
        return handler

    return register


def handler_for(event: str, action: str | None) -> Handler | None:
    """The handler for an event and action, or None to ignore it."""
    registered = HANDLERS.get((event, action))
    return None if registered is None else registered.handler


def wanted(event: str, action: str | None, payload: Mapping[str, Any]) -> bool:
    """Whether a handler will act on this payload, read as the handler will read it: one it
    cannot understand raises ``PayloadError`` before it is stored, so GitHub hears why now
    rather than the worker later."""
    registered = HANDLERS.get((event, action))
    if registered is None:
        return False
    for reader in registered.reads:
        reader(payload)
    return registered.concerns is None or registered.concerns(payload)


def _repository_named(payload: Mapping[str, Any]) -> None:
    """An event about a repository names it (GitHub always does), as ``_repository`` reads
    it: a name that is there is checked by ``events.envelope``, read first."""
    repository = payload.get("repository")
    if not isinstance(repository, Mapping):
        raise events.PayloadError("payload.repository is missing")
    if not repository.get("full_name"):
        raise events.PayloadError("payload.repository.full_name is missing")


@on(
    "pull_request",
    "opened",
    "reopened",
    "synchronize",
    "ready_for_review",
    "converted_to_draft",
    "edited",
    "closed",
    reads=(_repository_named, events.pull_of, events.base_changed),
)
def pull_request_changed(ctx: Context) -> Touched:
    """Store the pull request as it now is and re-evaluate its gate."""
    info = events.pull_of(ctx.payload)
    seen_at = info.updated_at or ctx.now
    people.recall(
        ctx.session, [(ctx.envelope.sender_account, seen_at), *((p, seen_at) for p in info.people)]
    )
    _learn_sender(ctx, at=info.updated_at)
    with _one_write_of_the_pull(ctx):
        pull, left = store.record_pull(
            ctx.session,
            info=info,
            now=ctx.now,
            base_changed=ctx.envelope.action == "edited" and events.base_changed(ctx.payload),
        )
        touched = _reevaluate(ctx, pull)
    # The head it left may lose a waiter.
    return touched | {(pull.repo, left)} if left is not None else touched


@on(
    "pull_request_review",
    "submitted",
    "edited",
    "dismissed",
    reads=(_repository_named, events.review_of, events.pull_of),
)
def review_changed(ctx: Context) -> Touched:
    """Record the review by its id (a review may arrive before its pull request) and re-evaluate."""
    info = events.review_of(ctx.payload)
    snapshot = events.pull_of(ctx.payload)
    # In the order they are learned below, each at its moment.
    given_at, seen_at = info.submitted_at or ctx.now, snapshot.updated_at or ctx.now
    people.recall(
        ctx.session,
        [
            (ctx.envelope.sender_account, given_at),
            *((p, seen_at) for p in snapshot.people),
            (info.person, given_at),
        ],
    )
    _learn_sender(ctx, at=info.submitted_at)
    with _one_write_of_the_pull(ctx):
        pull, left = store.record_pull(ctx.session, info=snapshot, now=ctx.now)
        review = store.upsert_review(ctx.session, pull=pull, info=info, now=ctx.now)
        before = set(pull.approved_by)
        touched = _reevaluate(ctx, pull)
    if review.reviewer in set(pull.approved_by) - before:
        approvals.audit_approval(
            ctx.session, pull, login=review.reviewer, source=ApprovalSource.REVIEW, now=ctx.now
        )
    return touched | {(pull.repo, left)} if left is not None else touched


@on("check_run", "rerequested", reads=(_repository_named, events.check_run_info))
# A press of the button is an approval in its sender's name (``_approve``).
@on(
    "check_run",
    "requested_action",
    reads=(_repository_named, events.check_run_info, events.sender_of),
)
def check_run_action(ctx: Context) -> Touched:
    """Re-run: post afresh. The "Approve merge" button: an approval if a mentor pressed it."""
    run = events.check_run_info(ctx.payload)
    if run.name != ctx.settings.check_name or not _ours(ctx, run):
        return NOTHING
    _learn_sender(ctx, at=run.completed_at)
    repo, head_sha = _repository(ctx), run.head_sha
    pulls = _pulls_of_check_run(ctx, run)
    touched = NOTHING
    if ctx.envelope.action == "rerequested":
        for pull in pulls:
            touched |= _reevaluate(ctx, pull)
        _post_afresh(ctx, touched, repo=repo, head_sha=head_sha)
        return NOTHING
    if run.requested_action != "approve":
        return NOTHING
    # The button approves the commit whose check was pressed, not whatever was pushed since,
    # for every pull request on that commit the mentor may approve. It is dated by the run
    # the mentor saw (GitHub's time), not by when the delivery arrived: a replayed press
    # can never outweigh a later "changes requested".
    allowed = [
        p
        for p in pulls
        if approvals.approval_refusal(
            ctx.session, p, login=ctx.envelope.sender or "", user_id=ctx.envelope.sender_id
        )
        is None
    ]
    # A refusal is audited once, on the pull request the run is about, not on every other
    # pull request that shares the commit.
    for pull in allowed or pulls[:1]:
        touched |= _approve(
            ctx, pull, source=ApprovalSource.BUTTON, commit_id=head_sha, at=run.completed_at
        )
    return touched


@on("check_suite", "requested", "rerequested", reads=(_repository_named, events.check_suite_info))
def check_suite_requested(ctx: Context) -> Touched:
    """A push (or "Re-run all checks"): make sure each pull request of the commit has our check.

    This is GitHub's own way of asking every checks App for a run, so a lost ``synchronize``
    for anyone's pull request is healed here too: a pull request not seen, or whose stored
    head is another commit, is read from GitHub by the worker.
    """
    suite = events.check_suite_info(ctx.payload)
    head_sha = suite.head_sha
    repo = _repository(ctx)
    if suite.head_tree is not None:  # the content of the push, free with the event
        store.remember_tree(ctx.session, repo=repo, sha=head_sha, tree_sha=suite.head_tree)
        ctx.session.flush()
    touched = NOTHING
    for number in sorted(set(suite.pull_numbers)):  # one lock order for every path
        pull = store.find_pull(ctx.session, repo=repo, number=number, lock=True)
        if pull is not None and pull.head_sha == head_sha:
            touched |= _reevaluate(ctx, pull)
        else:
            sync_later(ctx, repo, number)
    if ctx.envelope.action == "rerequested":
        _post_afresh(ctx, touched, repo=repo, head_sha=head_sha)
        return NOTHING
    return touched


def _is_a_command(payload: Mapping[str, Any]) -> bool:
    """Whether a comment says anything to Gatekeeper: most comments do not."""
    comment = events.comment_info(payload)
    return comment.on_pull_request and (
        override_reason(comment.body) is not None or asks_to_approve(comment.body)
    )


@on(
    "issue_comment",
    "created",
    # A command is an approval or override in its sender's name (``_approve``, ``override``).
    reads=(_repository_named, events.comment_info, events.sender_of),
    concerns=_is_a_command,
)
def comment_created(ctx: Context) -> Touched:
    """A line ``/gatekeeper approve`` from a mentor, or ``/gatekeeper override REASON`` from a
    maintainer, in a new comment on a pull request."""
    comment = events.comment_info(ctx.payload)
    if not comment.on_pull_request:
        return NOTHING
    reason = override_reason(comment.body)
    if reason is None and not asks_to_approve(comment.body):
        return NOTHING
    people.learn(
        ctx.session,
        comment.author,
        at=comment.created_at or ctx.now,
        maintainers=ctx.settings.maintainers,
    )
    _learn_sender(ctx, at=comment.created_at)
    repo = _repository(ctx)
    pull = store.find_pull(ctx.session, repo=repo, number=comment.number, lock=True)
    if pull is None:
        raise NeedsPull(repo, comment.number)
    # Dated when written, so a later "changes requested" wins even if this arrives late, and
    # bound to the commit that was the head then, so a push since needs a new look.
    written = comment.created_at or ctx.now
    head = store.head_at(ctx.session, pull=pull, at=written)
    if head is None:  # Gatekeeper cannot tell which commit the comment's author saw
        kind, again = ("approval", "approve") if reason is None else ("override", "override")
        decisions.audit(
            ctx.session,
            pull,
            actor=ctx.envelope.sender or "unknown",
            kind=f"{kind}_refused",
            detail="comment: the head it was written on is unknown (a push in the same second, "
            f"or before the commits Gatekeeper knows); {again} again",
            at=ctx.now,
        )
        return NOTHING
    if reason is not None:
        _refusal, touched = approvals.override(
            ctx.session,
            pull,
            login=events.sender_login(ctx.payload),
            user_id=ctx.envelope.sender_id,
            reason=reason,
            source=ApprovalSource.COMMENT,
            commit_id=head,
            settings=ctx.settings,
            now=ctx.now,
            given_at=written,
            comment_id=comment.id,
        )
        return touched
    return _approve(
        ctx, pull, source=ApprovalSource.COMMENT, github_id=comment.id, at=written, commit_id=head
    )


@on("merge_group", "checks_requested", reads=(_repository_named, events.merge_group_info))
def merge_group_requested(ctx: Context) -> Touched:
    """A merge group's check is the gate of the pull request it adds to the queue."""
    repo = _repository(ctx)
    group = merge_groups.remember(
        ctx.session, repo=repo, info=events.merge_group_info(ctx.payload), now=ctx.now
    )
    if group.destroyed_at is not None:
        return NOTHING  # a late delivery: the queue has already moved on from this group
    pull = merge_groups.carried_pull(ctx.session, group)
    stale = pull is not None and pull.base_ref not in ("", group.base_ref)
    if group.number is not None and (pull is None or stale):
        # Fails closed until the worker has read it; its gate then re-derives this group.
        sync_later(ctx, repo, group.number)
    return frozenset({(repo, group.head_sha)})


@on("merge_group", "destroyed", reads=(_repository_named, events.merge_group_info))
def merge_group_destroyed(ctx: Context) -> Touched:
    """The queue is done with a group (merged, invalidated or dequeued): its check lapses."""
    repo = _repository(ctx)
    group = merge_groups.destroy(
        ctx.session, repo=repo, info=events.merge_group_info(ctx.payload), now=ctx.now
    )
    outbox.end_merge_group(
        ctx.session, repo=repo, head_sha=group.head_sha, settings=ctx.settings, now=ctx.now
    )
    return NOTHING


@on(
    "installation",
    "created",
    "deleted",
    "suspend",
    "unsuspend",
    "new_permissions_accepted",
    reads=(events.installation_id, events.installation_repositories),
)
def installation_changed(ctx: Context) -> Touched:
    """Keep the installation id of each repository the App covers."""
    installation_id = events.installation_id(ctx.payload)
    added, _removed = events.installation_repositories(ctx.payload)
    if ctx.envelope.action in ("deleted", "suspend"):
        _forget_installation(ctx.session, installation_id)
        return NOTHING
    for ref in added:
        _remember(ctx, ref, installation_id)
    return NOTHING


@on(
    "installation_repositories",
    "added",
    "removed",
    reads=(events.installation_id, events.installation_repositories),
)
def installation_repositories_changed(ctx: Context) -> Touched:
    """Repositories added to or removed from an installation."""
    installation_id = events.installation_id(ctx.payload)
    added, removed = events.installation_repositories(ctx.payload)
    for ref in added:
        _remember(ctx, ref, installation_id)
    for ref in removed:
        _remember(ctx, ref, None)
    return NOTHING


def _remember(ctx: Context, ref: events.RepositoryRef, installation_id: int | None) -> None:
    store.remember_installation(
        ctx.session,
        repo=ref.full_name,
        display=ref.full_name,
        installation_id=installation_id,
        private=ref.private,
        github_id=ref.github_id,
    )


def sync_later(ctx: Context, repo: str, number: int, *, delivery_id: str | None = None) -> None:
    """Have the worker read ``repo#number`` from GitHub (then apply ``delivery_id``, if any)."""
    jobs.enqueue(
        ctx.session,
        key=f"sync_pull:{repo}#{number}" + (f":{delivery_id}" if delivery_id else ""),
        args=jobs.SyncPull(
            repo=repo,
            number=number,
            installation_id=ctx.envelope.installation_id,
            delivery_id=delivery_id,
        ),
        now=ctx.now,
    )


def _approve(
    ctx: Context,
    pull: PullRequest,
    *,
    source: ApprovalSource,
    commit_id: str | None = None,
    github_id: int | None = None,
    at: datetime | None = None,
) -> Touched:
    sender = events.sender_of(ctx.payload)
    _refusal, touched = approvals.approve(
        ctx.session,
        pull,
        login=sender.display,
        user_id=sender.id,
        source=source,
        now=ctx.now,
        given_at=at,
        github_id=github_id,
        commit_id=commit_id,
        settings=ctx.settings,
    )
    return touched


def _one_write_of_the_pull(ctx: Context) -> AbstractContextManager[Any]:
    """Store a snapshot of a pull request and the gate decided from it in one UPDATE of its
    row (``outbox.commit_gates`` flushes it). Nothing read meanwhile depends on the row
    waiting: it is locked, and the reviews, sightings, trees and terms the decision reads are
    written by statements of their own, never left pending in the session."""
    return ctx.session.no_autoflush


def _reevaluate(ctx: Context, pull: PullRequest) -> Touched:
    return decisions.reevaluate(ctx.session, pull, settings=ctx.settings, now=ctx.now).touched


def _post_afresh(ctx: Context, touched: Touched, *, repo: str, head_sha: str) -> None:
    """ "Re-run": the commit's check derived now, then posted again as a new check run."""
    outbox.commit_gates(ctx.session, touched, settings=ctx.settings, now=ctx.now)
    outbox.request_fresh(
        ctx.session, repo=repo, head_sha=head_sha, settings=ctx.settings, now=ctx.now
    )


def _learn_sender(ctx: Context, *, at: datetime | None) -> None:
    """Learn (or follow the rename of) whoever caused the event, before the gate decides;
    ``at`` is the event's own time on GitHub, if it has one."""
    people.learn(
        ctx.session,
        ctx.envelope.sender_account,
        at=at or ctx.now,
        maintainers=ctx.settings.maintainers,
    )


def _repository(ctx: Context) -> str:
    """The repository of an event about one (GitHub always says; a payload that does not is
    not one of its)."""
    if not ctx.envelope.repo:
        raise events.PayloadError(f"payload.repository is missing for {ctx.envelope.event}")
    return ctx.envelope.repo


def _ours(ctx: Context, run: events.CheckRunInfo) -> bool:
    return ctx.settings.github_app_id is None or run.app_id in (None, ctx.settings.github_app_id)


def _pulls_of_check_run(ctx: Context, run: events.CheckRunInfo) -> list[PullRequest]:
    """The open pull requests whose head carries the check run (it belongs to the commit).

    A run whose pull request was never seen (its ``opened`` was lost) waits for the worker.
    """
    repo, head_sha = ctx.envelope.repo or "", run.head_sha
    found = [
        locked
        for pull in store.open_pulls_on(ctx.session, repo=repo, head_sha=head_sha)
        if (locked := store.find_pull(ctx.session, repo=repo, number=pull.number, lock=True))
    ]
    if found:
        return found
    numbers = [run.named_pull[1]] if run.named_pull and run.named_pull[0] == repo else []
    numbers += list(run.pull_numbers)
    for candidate in numbers:
        pull = store.find_pull(ctx.session, repo=repo, number=candidate, lock=True)
        if pull is None:
            raise NeedsPull(repo, candidate)
        if pull.state == "open":
            return [pull]
    return []


def _forget_installation(session: Session, installation_id: int) -> None:
    for row in session.exec(
        select(Repository).where(col(Repository.installation_id) == installation_id)
    ):
        row.installation_id = None
        session.add(row)
