"""Stored pull requests, reviews, overrides, sightings and trees, and how the gate sees them."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gatekeeper import db, gate, people, repositories
from gatekeeper.events import PullInfo, ReviewInfo
from gatekeeper.gate import ApprovalSource, GateState
from gatekeeper.models import (
    CommitTree,
    HeadSeen,
    Override,
    PullRequest,
    Repository,
    Review,
)


def remember_installation(
    session: Session,
    *,
    repo: str,
    display: str | None = None,
    installation_id: int | None,
    private: bool | None = None,
    github_id: int | None = None,
) -> Repository:
    """Record which installation covers ``repo`` (see :func:`repositories.remember`)."""
    return repositories.remember(
        session,
        repo=repo,
        display=display,
        installation_id=installation_id,
        private=private,
        github_id=github_id,
    )


def any_installation(session: Session) -> int | None:
    """An installation of the App Gatekeeper knows of (any will do for a public read)."""
    return session.exec(
        select(Repository.installation_id)
        .where(col(Repository.installation_id).is_not(None))
        .order_by(col(Repository.full_name))
    ).first()


def installation_of(session: Session, *, repo: str) -> int | None:
    """The installation id last seen for ``repo``."""
    row = session.get(Repository, repo.lower())
    return row.installation_id if row else None


def find_pull(
    session: Session, *, repo: str, number: int, lock: bool = False
) -> PullRequest | None:
    """The stored pull request ``repo#number``; with ``lock``, held until the transaction ends.

    A locked read is always fresh from the database, so what is decided from it is stored
    on the same row state: two deliveries for one pull request take turns.
    """
    query = (
        select(PullRequest)
        .where(PullRequest.repo == repo.lower())
        .where(PullRequest.number == number)
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.exec(query).first()


def lock_pull(session: Session, *, pull_id: int) -> PullRequest | None:
    """A stored pull request by id, locked and read afresh."""
    return session.exec(
        select(PullRequest)
        .where(PullRequest.id == pull_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def upsert_pull(
    session: Session, *, info: PullInfo, now: datetime, base_changed: bool = False
) -> PullRequest:
    """Store a snapshot of a pull request (see :func:`record_pull`)."""
    pull, _left = record_pull(session, info=info, now=now, base_changed=base_changed)
    return pull


def record_pull(
    session: Session, *, info: PullInfo, now: datetime, base_changed: bool = False
) -> tuple[PullRequest, str | None]:
    """Store a snapshot of a pull request unless the stored one is newer (GitHub's updated_at).

    The row is locked first (created if new, without failing when another delivery creates
    it at the same moment), so the comparison and the write see the same row. A repository
    known by its id under another name is followed there first (renamed or transferred), and
    so are the people it names (``people.learn``): a renamed author is followed.
    Every snapshot is also a sighting of its head and base at its time; ``base_changed`` says
    the event itself is a change of base (``edited`` with ``changes.base``).
    Returns the pull request and the head it left, if this snapshot moved it (that commit's
    check may lose a waiter).
    """
    for person in info.people:
        people.learn(session, person, at=info.updated_at or now)
    repositories.observe(
        session,
        github_id=info.repo_id,
        repo=info.repo,
        display=info.repo_display,
    )
    # Created if new and locked in one statement (see ``db.upsert_locked``).
    pull = db.upsert_locked(
        session,
        PullRequest,
        {
            "repo": info.repo,
            "number": info.number,
            "head_sha": info.head_sha,
            "first_seen_at": now,
            "author": info.author,
            "author_display": info.author_display,
            "author_id": info.author_id,
            "repo_id": info.repo_id,
        },
        ["repo", "number"],
    )
    seen_at = info.updated_at or now
    _record_sighting(session, pull, head_sha=info.head_sha, base_ref=info.base_ref, at=seen_at)
    if info.base_ref != pull.base_ref or base_changed:
        _date_base_change(session, pull, current=info, at=seen_at, explicit=base_changed)
    if pull.github_updated_at is not None and _older(info, pull):
        # A late, older delivery: keep the newer state, but learn who merged if a trimmed
        # newer payload (a review's) could not say.
        if pull.merged and pull.merged_by is None and info.merged_by is not None:
            pull.merged_by = info.merged_by
            session.add(pull)
        return pull, None
    left = pull.head_sha if pull.head_sha != info.head_sha else None
    pull.author, pull.author_display = info.author, info.author_display
    pull.author_id = info.author_id or pull.author_id
    pull.title, pull.url, pull.base_ref = info.title, info.url, info.base_ref
    pull.head_sha, pull.state = info.head_sha, info.state
    pull.repo_id = info.repo_id or pull.repo_id
    pull.merged, pull.merged_at = info.merged, info.merged_at
    # Review payloads carry a trimmed pull request: what they lack is unknown, not false.
    if info.draft is not None:
        pull.draft = info.draft
    if info.merged_by is not None:
        pull.merged_by = info.merged_by
    pull.github_updated_at = info.updated_at or pull.github_updated_at
    # Written at the next flush: the row is locked, so a caller may let it wait for the gate
    # decided from it and store both in one UPDATE.
    session.add(pull)
    return pull, left


def _record_sighting(
    session: Session, pull: PullRequest, *, head_sha: str, base_ref: str, at: datetime
) -> None:
    """Keep that a snapshot showed ``head_sha`` on ``base_ref`` at ``at`` (GitHub's time)."""
    db.insert_missing(
        session,
        HeadSeen,
        {"pull_request_id": pull.id, "head_sha": head_sha, "base_ref": base_ref, "seen_at": at},
        ["pull_request_id", "seen_at", "head_sha", "base_ref"],
    )


def _sightings(session: Session, pull: PullRequest) -> list[HeadSeen]:
    return list(
        session.exec(
            select(HeadSeen)
            .where(HeadSeen.pull_request_id == pull.id)
            .order_by(col(HeadSeen.seen_at), col(HeadSeen.id))
        )
    )


def _date_base_change(
    session: Session, pull: PullRequest, *, current: PullInfo, at: datetime, explicit: bool
) -> None:
    """Date the latest change of ``pull``'s base from what was seen, whatever the order of
    delivery: the first sighting of the newest base after the last sighting of another one
    (it changed somewhere in between, so what was given then fails closed), or the moment of
    an ``edited`` event that says it changed the base. The date only ever moves later."""
    sightings = _sightings(session, pull)
    newest = sightings[-1]
    others = [s.seen_at for s in sightings if s.base_ref != newest.base_ref]
    # At or after: two bases seen in one second (GitHub's times have whole seconds) date the
    # change to that second.
    candidates = (
        [
            min(
                s.seen_at
                for s in sightings
                if s.base_ref == newest.base_ref and s.seen_at >= max(others)
            )
        ]
        if others
        else []
    )
    if explicit and newest.seen_at <= at and current.base_ref == newest.base_ref:
        candidates.append(at)
    if pull.base_changed_at is not None:
        candidates.append(pull.base_changed_at)
    if candidates and max(candidates) != pull.base_changed_at:
        pull.base_changed_at = max(candidates)
        session.add(pull)


def head_at(session: Session, *, pull: PullRequest, at: datetime) -> str | None:
    """The commit that was ``pull``'s head at ``at``, by the latest sighting at or before it
    (see :func:`head_among`)."""
    return head_among(_sightings(session, pull), at=at)


def head_among(sightings: list[HeadSeen], *, at: datetime) -> str | None:
    """The head at ``at`` by the latest of ``sightings`` (oldest first) at or before it.

    None where Gatekeeper cannot tell (GitHub's times have whole seconds): before the first
    head it saw (its ``opened`` may have been lost), when two heads were seen in one second,
    or when the head it would name replaced another in ``at``'s own second (``at`` may be
    just before the push).
    """
    second = _second(at)
    earlier = [s for s in sightings if _second(s.seen_at) <= second]
    if not earlier:
        return None
    last_second = _second(earlier[-1].seen_at)
    if len({s.head_sha for s in earlier if _second(s.seen_at) == last_second}) > 1:
        return None
    if last_second == second:
        before = [s for s in earlier if _second(s.seen_at) < second]
        if before and before[-1].head_sha != earlier[-1].head_sha:
            return None
    return earlier[-1].head_sha


def rebind_comments(session: Session, pull: PullRequest, bound: list[Review | Override]) -> None:
    """Bind each approval or override given by a comment to the head of its moment, by every
    sighting known now: a push delivered after the comment (GitHub does not order deliveries)
    may show that another commit was the head when it was written. One Gatekeeper cannot name
    any more counts for nothing (an empty commit)."""
    by_comment = [
        row
        for row in bound
        if (row.source == "comment" if isinstance(row, Review) else row.comment_id is not None)
    ]
    if not by_comment:
        return
    sightings = _sightings(session, pull)
    for row in by_comment:
        moment = row.submitted_at if isinstance(row, Review) else row.given_at
        head = head_among(sightings, at=moment) or ""
        if row.commit_id != head:
            row.commit_id = head
            session.add(row)


def _second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


# ---------------------------------------------------------------- trees


def trees_of(session: Session, *, repo: str, shas: Iterable[str]) -> dict[str, str]:
    """The known trees of some commits of ``repo``, by commit."""
    wanted = sorted({sha for sha in shas if sha})
    if not wanted:
        return {}
    rows = session.exec(
        select(CommitTree).where(CommitTree.repo == repo).where(col(CommitTree.sha).in_(wanted))
    )
    return {row.sha: row.tree_sha for row in rows}


def remember_tree(session: Session, *, repo: str, sha: str, tree_sha: str) -> None:
    """Keep a commit's tree (a commit's tree never changes, so a second answer is the same)."""
    db.insert_missing(
        session, CommitTree, {"repo": repo, "sha": sha, "tree_sha": tree_sha}, ["repo", "sha"]
    )


# ---------------------------------------------------------------- overrides


def add_override(
    session: Session,
    *,
    pull: PullRequest,
    maintainer: str,
    maintainer_display: str,
    reason: str,
    commit_id: str,
    given_at: datetime,
    comment_id: int | None = None,
) -> None:
    """A maintainer's override of ``pull``'s gate for ``commit_id``'s content."""
    assert pull.id is not None, "store the pull request before its overrides"
    values: dict[str, Any] = {
        "pull_request_id": pull.id,
        "maintainer": maintainer,
        "maintainer_display": maintainer_display,
        "reason": reason,
        "commit_id": commit_id,
        "given_at": given_at,
        "comment_id": comment_id,
    }
    if comment_id is None:
        session.add(Override(**values))
    else:  # a comment delivered twice overrides once
        db.insert_missing(session, Override, values, ["comment_id"])


def overrides_of(session: Session, *, pull: PullRequest) -> list[Override]:
    """Every override of ``pull``'s gate, oldest first."""
    return list(
        session.exec(
            select(Override)
            .where(Override.pull_request_id == pull.id)
            .order_by(col(Override.given_at), col(Override.id))
        )
    )


def _older(info: PullInfo, pull: PullRequest) -> bool:
    """Whether a snapshot is older than the stored one. GitHub's times have whole seconds, so
    on a tie a closed pull request is never reopened (a reopen always moves updated_at)."""
    if pull.github_updated_at is None or info.updated_at is None:
        return False
    if info.updated_at == pull.github_updated_at:
        return pull.state == "closed" and info.state == "open"
    return info.updated_at < pull.github_updated_at


def upsert_review(
    session: Session, *, pull: PullRequest, info: ReviewInfo, now: datetime
) -> Review:
    """Store or update a review by its GitHub id. A dismissal is final, whatever arrives later."""
    assert pull.id is not None, "store the pull request before its reviews"
    people.learn(session, info.person, at=info.submitted_at or now)
    # Inserted or merged, locked and read back in one statement.
    return db.upsert_locked(
        session,
        Review,
        {
            "pull_request_id": pull.id,
            "github_id": info.id,
            "source": ApprovalSource.REVIEW,
            "reviewer": info.reviewer,
            "reviewer_display": info.reviewer_display,
            "reviewer_id": info.reviewer_id,
            "state": info.state,
            "commit_id": info.commit_id,
            "submitted_at": info.submitted_at or now,
        },
        ["source", "github_id"],
        merge=_merge_review,
    )


def _merge_review(excluded: Any) -> dict[str, Any]:
    """What a later delivery of the same review may change: a dismissal is final (and keeps
    its commit); an id learned stays."""
    table = Review.__table__  # type: ignore[attr-defined]
    dismissed = table.c.state == gate.DISMISSED
    return {
        "state": sa.case((dismissed, table.c.state), else_=excluded.state),
        "commit_id": sa.case(
            (dismissed, table.c.commit_id),
            else_=sa.func.coalesce(excluded.commit_id, table.c.commit_id),
        ),
        "reviewer_id": sa.func.coalesce(table.c.reviewer_id, excluded.reviewer_id),
    }


def add_approval(
    session: Session,
    *,
    pull: PullRequest,
    mentor: str,
    mentor_display: str,
    mentor_id: int,
    source: ApprovalSource,
    now: datetime,
    github_id: int | None = None,
    commit_id: str | None = None,
) -> None:
    """An approval given with the check's button, a comment or the dashboard.

    It holds for ``commit_id`` (the commit whose check was pressed), else the current head.
    """
    assert pull.id is not None, "store the pull request before its approvals"
    values: dict[str, Any] = {
        "pull_request_id": pull.id,
        "github_id": github_id,
        "source": source,
        "reviewer": mentor,
        "reviewer_display": mentor_display,
        "reviewer_id": mentor_id,
        "state": gate.APPROVED,
        "commit_id": commit_id or pull.head_sha,
        "submitted_at": now,
    }
    if github_id is None:
        session.add(Review(**values))
    else:  # a comment's id: the same comment delivered twice approves once
        db.insert_missing(session, Review, values, ["source", "github_id"])


def reviews_of(session: Session, *, pull: PullRequest) -> list[Review]:
    """Every review and approval recorded for ``pull``, oldest first."""
    return list(
        session.exec(
            select(Review)
            .where(Review.pull_request_id == pull.id)
            .order_by(col(Review.submitted_at), col(Review.id))
        )
    )


def reviews_and_overrides(
    session: Session, *, pull: PullRequest
) -> tuple[list[Review], list[Override]]:
    """:func:`reviews_of` and :func:`overrides_of`; the reviews' query also says whether any
    override exists, so a pull request never overridden (the usual case) costs one query."""
    rows = session.exec(_reviews_and_overrides(), params={"pull_request_id": pull.id}).all()
    reviews = [review for _overridden, review in rows if review is not None]
    return reviews, overrides_of(session, pull=pull) if any(o for o, _ in rows) else []


@functools.cache
def _reviews_and_overrides() -> Any:
    """The query, built once: every decision runs it."""
    pull_id: sa.BindParameter[int] = sa.bindparam("pull_request_id")
    overridden = (
        select(sa.exists().where(col(Override.pull_request_id) == pull_id).label("overridden"))
    ).subquery()
    return (
        select(overridden.c.overridden, Review)
        .select_from(overridden.outerjoin(Review, col(Review.pull_request_id) == pull_id))
        .order_by(col(Review.submitted_at), col(Review.id))
    )


def reviews_by_pull(session: Session, *, pull_ids: Iterable[int]) -> dict[int, list[Review]]:
    """The reviews of several pull requests in one query, each list oldest first."""
    wanted = sorted(set(pull_ids))
    grouped: dict[int, list[Review]] = {pull_id: [] for pull_id in wanted}
    if wanted:
        for review in session.exec(
            select(Review)
            .where(col(Review.pull_request_id).in_(wanted))
            .order_by(col(Review.submitted_at), col(Review.id))
        ):
            grouped[review.pull_request_id].append(review)
    return grouped


def signals(reviews: Iterable[Review], trees: dict[str, str] | None = None) -> list[gate.Signal]:
    """Reviews as the gate sees them, with their commits' trees where known."""
    trees = trees or {}
    return [
        gate.Signal(
            reviewer=r.reviewer,
            state=r.state,
            commit_id=r.commit_id,
            submitted_at=r.submitted_at,
            source=r.source,
            key=r.id or 0,
            reviewer_id=r.reviewer_id,
            tree=trees.get(r.commit_id or ""),
        )
        for r in reviews
    ]


def overrides_by_pull(session: Session, *, pull_ids: Iterable[int]) -> dict[int, list[Override]]:
    """The overrides of several pull requests in one query, each list oldest first."""
    wanted = sorted(set(pull_ids))
    grouped: dict[int, list[Override]] = {pull_id: [] for pull_id in wanted}
    if wanted:
        for override in session.exec(
            select(Override)
            .where(col(Override.pull_request_id).in_(wanted))
            .order_by(col(Override.given_at), col(Override.id))
        ):
            grouped[override.pull_request_id].append(override)
    return grouped


def overridings(overrides: Iterable[Override], trees: dict[str, str]) -> list[gate.Overriding]:
    """Overrides as the gate sees them."""
    return [
        gate.Overriding(
            maintainer=o.maintainer_display,
            reason=o.reason,
            commit_id=o.commit_id,
            given_at=o.given_at,
            tree=trees.get(o.commit_id),
        )
        for o in overrides
    ]


def waited_seconds(pull: PullRequest, *, now: datetime) -> float | None:
    """How long ``pull`` waited for a mentor: so far while it waits, else first wait to settling.

    None when it never waited. The moments are stored on the pull request, so the figure stays
    the same after its mentorship ends.
    """
    if pull.gate == GateState.WAITING and pull.state == "open":
        return (now - (pull.waiting_since or pull.gated_at or pull.first_seen_at)).total_seconds()
    if pull.gated_at is None or pull.settled_at is None:
        return None
    return max((pull.settled_at - pull.gated_at).total_seconds(), 0.0)


def gate_pull(pull: PullRequest, trees: dict[str, str] | None = None) -> gate.Pull:
    """A stored pull request as the gate sees it (with its head's tree, if known)."""
    return gate.Pull(
        repo=pull.repo,
        number=pull.number,
        author=pull.author,
        head_sha=pull.head_sha,
        state=pull.state,
        merged=pull.merged,
        author_id=pull.author_id,
        head_tree=(trees or {}).get(pull.head_sha),
        base_changed_at=pull.base_changed_at,
        repo_id=pull.repo_id,
    )


def open_pulls_of(
    session: Session, *, author: str, author_id: int | None = None
) -> list[PullRequest]:
    """Stored open pull requests by the account ``author_id`` or under the login ``author``."""
    by_author = col(PullRequest.author) == author.lower()
    if author_id is not None:
        by_author = sa.or_(by_author, col(PullRequest.author_id) == author_id)
    return list(
        session.exec(
            select(PullRequest)
            .where(by_author)
            .where(PullRequest.state == "open")
            .order_by(col(PullRequest.id))
        )
    )


def open_pulls_gated_by(session: Session, *, mentorship_id: int) -> list[PullRequest]:
    """Stored open pull requests whose gate a mentorship decided."""
    return list(
        session.exec(
            select(PullRequest)
            .where(PullRequest.gated_mentorship_id == mentorship_id)
            .where(PullRequest.state == "open")
            .order_by(col(PullRequest.id))
        )
    )


def open_pulls_on(session: Session, *, repo: str, head_sha: str) -> list[PullRequest]:
    """Stored open pull requests of ``repo`` whose head is ``head_sha`` (they share its check)."""
    return list(
        session.exec(
            select(PullRequest)
            .where(PullRequest.repo == repo)
            .where(PullRequest.head_sha == head_sha)
            .where(PullRequest.state == "open")
            .order_by(col(PullRequest.number))
            .execution_options(populate_existing=True)
        )
    )


def open_pulls_concerning(session: Session, *, repo: str, sha: str) -> list[int]:
    """Ids of ``repo``'s open pull requests whose head is ``sha`` or that were approved or
    overridden on it, in id order (the one lock order)."""
    ids = set(
        session.exec(
            select(PullRequest.id)
            .where(PullRequest.repo == repo)
            .where(PullRequest.state == "open")
            .where(PullRequest.head_sha == sha)
        )
    )
    for table in (Review, Override):
        ids |= set(
            session.exec(
                select(PullRequest.id)
                .join(table, table.pull_request_id == PullRequest.id)  # type: ignore[arg-type]
                .where(PullRequest.repo == repo)
                .where(PullRequest.state == "open")
                .where(table.commit_id == sha)
            )
        )
    return sorted(i for i in ids if i is not None)
