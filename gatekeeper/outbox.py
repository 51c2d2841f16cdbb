"""The check each commit should show, and the versioned outbox that gets it onto GitHub.

A check run belongs to a commit, so what is posted is derived per commit from the stored
decisions of every open pull request on it (``gate.combine``), and of the pull request each
merge group on it carries (``gate.merge_group_verdict``). ``flush`` stores that desire,
with a new version when it changed, in the transaction of the event that caused it. The
worker then ``claim``s a commit whose posted version is behind, posts its latest desire, and
``record_posted`` moves ``posted_version`` forward only if it is still behind (a
compare-and-set), so a slow post can never hide a newer desire: that one is simply posted next.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, TypedDict, cast

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gatekeeper import db, gate, merge_groups
from gatekeeper import pulls as store
from gatekeeper.columns import UTCDateTime
from gatekeeper.config import Settings
from gatekeeper.gate import GateState
from gatekeeper.models import CommitCheck, MergeGroup, PullRequest


class CheckAction(TypedDict):
    """A button under a check run (GitHub's ``actions`` item)."""

    label: str
    identifier: str
    description: str


APPROVE_ACTION = CheckAction(
    label="Approve merge",
    identifier="approve",
    description="Mentors only: let this PR merge",
)
SUMMARY_LIMIT = 65535  # bytes, GitHub's limit for output.summary
LEASE = timedelta(minutes=2)  # longer than a post's timeouts and retries add up to
MERGE_GROUP_PATIENCE = timedelta(hours=6)  # a merge queue gives up on a commit long before
log = logging.getLogger(__name__)

INSTALLATION_LOCK = 0x6F75_7462  # "outb": advisory lock keys (this, installation) for claims


Commit = tuple[str, str]  # (repo, head_sha): a check run belongs to a commit


class CheckBody(TypedDict):
    """What a commit's check run shows, as ``CommitCheck.body`` stores it and its fingerprint
    digests: no name, commit or time, so an unchanged verdict is never posted again."""

    conclusion: str
    title: str
    summary: str
    details_url: str
    external_id: str
    actions: list[CheckAction]


Touched = frozenset[Commit]  # the commits a change may have made read differently
NOTHING: Touched = frozenset()


def commit_gates(
    session: Session, touched: Iterable[Commit], *, settings: Settings, now: datetime
) -> int:
    """Store the desired check of each commit in ``touched``; how many changed.

    Every change to a gate ends here before it commits (``decisions`` returns the commits it
    touched). Commits are locked in one order so that two transactions never wait for each
    other, and each is derived after its lock is held, from pull requests as they are now.
    """
    commits = sorted(set(touched))
    session.flush()
    changed = sum(
        desire(session, repo=repo, head_sha=sha, settings=settings, now=now)
        for repo, sha in commits
    )
    _owed(session).difference_update(commits)
    # Written before returning, not at the caller's commit: an error in them is raised by
    # this call, and what follows (the delivery's own record) is no gate's business.
    session.flush()
    return changed


def desire(
    session: Session, *, repo: str, head_sha: str, settings: Settings, now: datetime
) -> bool:
    """Derive the check of one commit, and of the merge groups carrying a pull request it
    heads; True if any changed.

    Those groups' checks are derived again so that a gate that changed while its pull
    request is in the merge queue reaches the queue (an approval withdrawn there drops it).
    Each group's commit is locked after the pull request's own, and its pull request is read
    after that lock, so of two transactions the later one's reading is what is posted.
    """
    row = _locked(session, repo=repo, head_sha=head_sha, name=settings.check_name, now=now)
    pulls, queued = merge_groups.open_pulls_and_queue(session, repo=repo, head_sha=head_sha)
    groups, carrying = (
        merge_groups.living_around(session, repo=repo, head_sha=head_sha) if queued else ([], [])
    )
    changed = _derive_locked(session, row, pulls, groups, settings=settings, now=now)
    for group in carrying:
        if group.head_sha != head_sha:  # derived just now, as a commit of its own
            changed |= _derive(
                session, repo=repo, head_sha=group.head_sha, settings=settings, now=now
            )
    return changed


def _derive(
    session: Session, *, repo: str, head_sha: str, settings: Settings, now: datetime
) -> bool:
    """The check of one commit from its open pull requests and the living merge groups whose
    commit it is; True if it changed."""
    row = _locked(session, repo=repo, head_sha=head_sha, name=settings.check_name, now=now)
    groups = merge_groups.living_on(session, repo=repo, head_sha=head_sha)
    pulls = store.open_pulls_on(session, repo=repo, head_sha=head_sha)
    return _derive_locked(session, row, pulls, groups, settings=settings, now=now)


def _derive_locked(
    session: Session,
    row: CommitCheck,
    pulls: list[PullRequest],
    groups: list[MergeGroup],
    *,
    settings: Settings,
    now: datetime,
) -> bool:
    """:func:`_derive`, the commit's row locked and what asks of it read after the lock: its
    open pull requests and living merge groups."""
    repo = row.repo
    if not pulls and not groups:
        return False  # nobody asks anything of this commit any more; leave what it shows
    verdicts = [gate.combine([_verdict(p) for p in pulls])] if pulls else []
    verdicts += [_group_verdict(session, group) for group in groups]
    # A merge group never turns a pull request's waiting head green, nor does a pull request
    # from the group's commit let the pull request the group carries through: the commit
    # passes only if everything asking of it passes.
    verdict = next((v for v in verdicts if v.waiting), verdicts[0])
    # A queue gives up on its commit long before a pull request does.
    row.expires_at = None if pulls else now + MERGE_GROUP_PATIENCE
    return _want(session, row, render(verdict, repo=repo, settings=settings), now=now)


def _group_verdict(session: Session, group: MergeGroup) -> gate.CommitVerdict:
    pull = merge_groups.carried_pull(session, group)
    return gate.merge_group_verdict(
        number=group.number,
        carried=_verdict(pull) if pull is not None else None,
        base=group.base_ref,
        carried_base=pull.base_ref if pull is not None else "",
    )


def end_merge_group(
    session: Session, *, repo: str, head_sha: str, settings: Settings, now: datetime
) -> None:
    """A destroyed group's commit: its check is derived without the group, and what is not
    posted yet is moot unless a pull request still asks for it (the queue has moved on)."""
    desire(session, repo=repo, head_sha=head_sha, settings=settings, now=now)
    row = check_of(session, repo=repo, head_sha=head_sha, name=settings.check_name)
    asked = store.open_pulls_on(session, repo=repo, head_sha=head_sha) or merge_groups.living_on(
        session, repo=repo, head_sha=head_sha
    )
    if row is not None and not asked and (row.expires_at is None or row.expires_at > now):
        row.expires_at = now
        session.add(row)


def request_fresh(
    session: Session, *, repo: str, head_sha: str, settings: Settings, now: datetime
) -> None:
    """ "Re-run" was pressed: post the commit's check again as a new check run."""
    row = _locked(session, repo=repo, head_sha=head_sha, name=settings.check_name, now=now)
    if not row.body:
        return
    row.version += 1
    row.fresh_version = row.version
    row.desired_at, row.gave_up, row.next_attempt_at = now, False, None
    session.add(row)


def _locked(session: Session, *, repo: str, head_sha: str, name: str, now: datetime) -> CommitCheck:
    return db.upsert_locked(
        session,
        CommitCheck,
        {"repo": repo, "head_sha": head_sha, "name": name, "desired_at": now, "body": {}},
        ["repo", "head_sha", "name"],
    )


def _want(session: Session, row: CommitCheck, body: CheckBody, *, now: datetime) -> bool:
    digest = fingerprint(body)
    # The installation as last seen: a reinstalled App has a new one.
    row.installation_id = store.installation_of(session, repo=row.repo) or row.installation_id
    if digest == row.fingerprint and not row.gave_up:
        session.add(row)
        return False
    row.version += 1
    row.fingerprint, row.body, row.desired_at = digest, dict(body), now
    # Tried at once; ``attempts`` stays, since a failed try may have created the run.
    row.gave_up, row.next_attempt_at = False, None
    session.add(row)
    return True


def _verdict(pull: PullRequest) -> gate.PullVerdict:
    return gate.PullVerdict(
        number=pull.number,
        author=pull.author_display,
        waiting=pull.gate == GateState.WAITING,
        title=pull.gate_title or "No mentorship applies",
        summary=pull.gate_summary or pull.gate_title or "No mentorship applies",
    )


def render(verdict: gate.CommitVerdict, *, repo: str, settings: Settings) -> CheckBody:
    """The check run's fields that show ``verdict`` (everything but when it was posted)."""
    return CheckBody(
        conclusion=verdict.conclusion,
        title=verdict.title,
        summary=truncate_bytes(verdict.summary, SUMMARY_LIMIT),
        details_url=f"{settings.base_url}/pulls/{repo}/{verdict.lead}"
        if verdict.lead
        else f"{settings.base_url}/",
        # The check run handler finds the pull requests by the commit; this names the lead.
        external_id=f"{repo}#{verdict.lead}" if verdict.lead else repo,
        # A merge group's commit is no pull request's head (``numbers``): nothing to approve
        # there; its pull request is approved on its own head.
        actions=[APPROVE_ACTION] if verdict.waiting and verdict.numbers else [],
    )


def fingerprint(body: CheckBody) -> str:
    """A digest of what a check run shows."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def truncate_bytes(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes without splitting a character."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "…"


# ---------------------------------------------------------------- the guard

OWED = "gatekeeper.checks_owed"
# What a commit's check is derived from (``_verdict``, ``open_pulls_on``, the merge group's
# base): a stored pull request whose one of these changed owes its commits a derivation.
VERDICT_INPUTS = ("gate", "gate_title", "gate_summary", "author_display", "head_sha", "state")
STRICT = False  # tests turn a forgotten ``commit_gates`` into an error (see tests/conftest.py)


class UnderivedChecks(RuntimeError):
    """A transaction changed a gate but never derived its commits' checks (``commit_gates``)."""


def _owed(session: Session) -> set[Commit]:
    owed: set[Commit] = session.info.setdefault(OWED, set())
    return owed


def _note_owed(session: Session) -> None:
    """Keep the commits of every changed pull request, before the ORM forgets what changed.

    This is only the guard's own ledger, filled from the rows themselves: which commits are
    derived is what the caller hands ``commit_gates``, never this.
    """
    for row in session.dirty:
        if not isinstance(row, PullRequest):
            continue
        state = sa.inspect(row)
        changed = [state.attrs[name].history for name in VERDICT_INPUTS]
        if not any(history.has_changes() for history in changed):
            continue
        heads = {row.head_sha, *state.attrs["head_sha"].history.deleted}
        _owed(session).update((row.repo, sha) for sha in heads if sha)


def waive(session: Session, touched: Iterable[Commit]) -> None:
    """Say that no check is wanted for ``touched``: sample commits no GitHub holds (the
    demo's). Explicit, so that a forgotten ``commit_gates`` is never mistaken for one."""
    session.flush()
    _owed(session).difference_update(touched)


@sa.event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    _note_owed(session)


@sa.event.listens_for(Session, "before_commit")
def _checks_derived(session: Session) -> None:
    """A gate changed without its commits' checks derived would be a check lost silently."""
    _note_owed(session)
    owed = session.info.pop(OWED, set())
    if not owed:
        return
    message = f"commit_gates was not called for {sorted(owed)}"
    if STRICT:
        raise UnderivedChecks(message)
    log.error("%s: their checks may show an old gate until they change again", message)


@sa.event.listens_for(Session, "after_soft_rollback")
def _forget_owed(session: Session, _previous_transaction: Any) -> None:
    # What was owed belongs to the work that was just undone.
    session.info.pop(OWED, None)


# ---------------------------------------------------------------- the worker's side


@dataclasses.dataclass(frozen=True)
class Claimed:
    """One commit's latest desired check, held by one worker until it is posted or fails."""

    id: int
    repo: str
    head_sha: str
    name: str
    installation_id: int | None
    version: int
    fingerprint: str
    body: CheckBody
    check_run_id: int | None
    fresh: bool
    attempts: int
    token: str  # this claim's own: only its holder may record or release it
    unfinished: bool = False  # an earlier claim ended without a record (a crash, a hang)

    @property
    def may_exist(self) -> bool:
        """Whether an earlier try may have created the run without our knowing its id."""
        return self.attempts > 0 or self.unfinished


def _pending() -> Any:
    return col(CommitCheck.posted_version) < col(CommitCheck.version)


@functools.cache
def _claiming() -> Any:
    """The claim's query, built once (a posting thread runs it before every post)."""
    now: sa.BindParameter[datetime] = sa.bindparam("now", type_=UTCDateTime())
    limit: sa.BindParameter[int] = sa.bindparam("limit", type_=sa.Integer())
    busy = (
        select(CommitCheck.installation_id)
        .where(col(CommitCheck.claimed_until) > now)
        .where(col(CommitCheck.installation_id).is_not(None))
        .group_by(col(CommitCheck.installation_id))
        .having(sa.func.count() >= limit)
    )
    return (
        select(CommitCheck)
        .where(_pending())
        .where(
            sa.or_(
                col(CommitCheck.next_attempt_at).is_(None),
                col(CommitCheck.next_attempt_at) <= now,
            )
        )
        .where(
            sa.or_(col(CommitCheck.claimed_until).is_(None), col(CommitCheck.claimed_until) < now)
        )
        .where(
            sa.or_(
                col(CommitCheck.installation_id).is_(None),
                col(CommitCheck.installation_id).not_in(busy.scalar_subquery()),
            )
        )
        .order_by(col(CommitCheck.desired_at), col(CommitCheck.id))
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def claim(session: Session, *, now: datetime, writes_per_installation: int = 1) -> Claimed | None:
    """Take the commit whose desire has waited longest, unless another worker holds it.

    PostgreSQL's ``SKIP LOCKED`` lets any number of workers claim at once without waiting
    for each other; the lease (``claimed_until``) keeps the row theirs while they post
    outside any transaction, and frees it if a worker dies. An installation whose every
    write slot is held by some worker (on any machine) is left for later, as GitHub asks
    for no concurrent writes per installation.
    """
    query, params = _claiming(), {"now": now, "limit": writes_per_installation}
    while True:
        row = session.exec(query, params=params).first()
        if row is None:
            session.commit()
            return None
        if row.expires_at is None or row.expires_at > now:
            break
        _give_up(session, row.id, row.version, "no longer needed (the merge queue moved on)")
        session.commit()
    assert row.id is not None
    if row.installation_id is not None and not _slot_free(
        session, row.installation_id, now=now, limit=writes_per_installation
    ):
        session.commit()  # another worker took the installation's last slot a moment ago
        return None
    token = secrets.token_hex(8)
    claimed = Claimed(
        id=row.id,
        repo=row.repo,
        head_sha=row.head_sha,
        name=row.name,
        installation_id=row.installation_id,
        version=row.version,
        fingerprint=row.fingerprint,
        # Only ``_want`` writes the column, with what ``render`` made.
        body=cast(CheckBody, dict(row.body)),
        check_run_id=row.check_run_id,
        fresh=row.fresh_version is not None and row.fresh_version > row.posted_version,
        attempts=row.attempts,
        token=token,
        unfinished=row.claim_token is not None,
    )
    row.claimed_until, row.claim_token = now + LEASE, token
    session.add(row)
    session.commit()
    return claimed


def _slot_free(session: Session, installation_id: int, *, now: datetime, limit: int) -> bool:
    """Whether the installation has a write slot left, counted under a lock of its own.

    Two workers that both saw a free slot in their query take turns here (PostgreSQL: an
    advisory lock held until this transaction ends); SQLite has one writer anyway.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:a, :b)"),
            {"a": INSTALLATION_LOCK, "b": installation_id % 2**31},
        )
    held = session.exec(
        select(sa.func.count())
        .select_from(CommitCheck)
        .where(CommitCheck.installation_id == installation_id)
        .where(col(CommitCheck.claimed_until) > now)
    ).one()
    return held < limit


def record_posted(session: Session, claimed: Claimed, *, run_id: int, now: datetime) -> bool:
    """Record that GitHub shows ``claimed``'s version; False if a newer post got there first."""
    table = CommitCheck.__table__  # type: ignore[attr-defined]
    result = session.execute(
        sa.update(table)
        .where(table.c.id == claimed.id)
        .where(table.c.posted_version < claimed.version)
        .where(table.c.claim_token == claimed.token)
        .values(
            posted_version=claimed.version,
            posted_fingerprint=claimed.fingerprint,
            check_run_id=run_id,
            posted_at=now,
            attempts=0,
            last_error=None,
            next_attempt_at=None,
            claimed_until=None,
            claim_token=None,
            gave_up=False,
            fresh_version=sa.case(
                (table.c.fresh_version <= claimed.version, None), else_=table.c.fresh_version
            ),
        )
    )
    recorded = result.rowcount == 1  # type: ignore[attr-defined]
    if not recorded:
        release(session, claimed)
    session.commit()
    return recorded


def record_failure(session: Session, claimed: Claimed, *, error: str, retry_at: datetime) -> None:
    """Keep the desire for another try at ``retry_at``; its reason shows on the dashboard.

    A newer version stored meanwhile is tried at once, not after this one's backoff.
    """
    table = CommitCheck.__table__  # type: ignore[attr-defined]
    session.execute(
        sa.update(table)
        .where(table.c.id == claimed.id)
        .where(table.c.claim_token == claimed.token)
        .values(
            attempts=table.c.attempts + 1,
            next_attempt_at=sa.case((table.c.version == claimed.version, retry_at), else_=None),
            last_error=error[:500],
            claimed_until=None,
            claim_token=None,
        )
    )
    session.commit()


def give_up(session: Session, claimed: Claimed, *, reason: str) -> None:
    """GitHub refused this version for good: stop retrying it (a newer version is tried anew)."""
    _give_up(session, claimed.id, claimed.version, reason, token=claimed.token)
    session.commit()


def _give_up(
    session: Session, row_id: int | None, version: int, reason: str, *, token: str | None = None
) -> None:
    table = CommitCheck.__table__  # type: ignore[attr-defined]
    statement = (
        sa.update(table)
        .where(table.c.id == row_id)
        .where(table.c.posted_version < version)
        # Only the version given up is marked so; a newer one waiting is still tried.
        .values(
            posted_version=version,
            gave_up=table.c.version == version,
            last_error=reason[:500],
            claimed_until=None,
            claim_token=None,
        )
    )
    if token is not None:
        statement = statement.where(table.c.claim_token == token)
    session.execute(statement)


def release(session: Session, claimed: Claimed) -> None:
    """Let another worker (or this one, later) take the commit, if the claim is still ours."""
    table = CommitCheck.__table__  # type: ignore[attr-defined]
    session.execute(
        sa.update(table)
        .where(table.c.id == claimed.id)
        .where(table.c.claim_token == claimed.token)
        .values(claimed_until=None, claim_token=None)
    )


def pending_count(session: Session) -> int:
    """How many commits wait for their check to be posted."""
    return session.exec(select(sa.func.count()).select_from(CommitCheck).where(_pending())).one()


def oldest_pending(session: Session) -> datetime | None:
    """When the longest-waiting desire was stored."""
    return session.exec(select(sa.func.min(CommitCheck.desired_at)).where(_pending())).one()


def check_of(session: Session, *, repo: str, head_sha: str, name: str) -> CommitCheck | None:
    """The stored check of one commit, for the dashboard's "posted" line."""
    return session.exec(
        select(CommitCheck)
        .where(CommitCheck.repo == repo)
        .where(CommitCheck.head_sha == head_sha)
        .where(CommitCheck.name == name)
    ).first()


def posted_shas(session: Session, *, repo: str, name: str) -> set[str]:
    """Commits of ``repo`` that have (or are getting) a check of ours."""
    return set(
        session.exec(
            select(CommitCheck.head_sha)
            .where(CommitCheck.repo == repo)
            .where(CommitCheck.name == name)
            .where(col(CommitCheck.version) > 0)
            .where(sa.not_(col(CommitCheck.gave_up)))
        )
    )
