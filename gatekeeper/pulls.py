"""Stored pull requests, reviews and repositories, and the gate's inputs read from them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gatekeeper import db, gate, people, repositories
from gatekeeper import mentorships as lifecycle
from gatekeeper.events import PullInfo, ReviewInfo
from gatekeeper.gate import ApprovalSource, GateState
from gatekeeper.models import Mentorship, PullHead, PullRequest, Repository, Review


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


TOUCHED = "gatekeeper.touched_commits"


def touch_commit(session: Session, *, repo: str, head_sha: str) -> None:
    """Note that ``repo@head_sha``'s check may read differently once this transaction ends
    (``outbox.flush`` derives it then)."""
    session.info.setdefault(TOUCHED, set()).add((repo, head_sha))


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


def upsert_pull(session: Session, *, info: PullInfo, now: datetime) -> PullRequest:
    """Store a snapshot of a pull request unless the stored one is newer (GitHub's updated_at).

    The row is locked first (created if new, without failing when another delivery creates
    it at the same moment), so the comparison and the write see the same row. A repository
    known by its id under another name is followed there first (renamed or transferred), and
    so are the people it names (``people.learn``): a renamed author is followed.
    """
    for person in info.people:
        people.learn(session, person, at=info.updated_at or now)
    repositories.observe(
        session,
        github_id=info.repo_id,
        repo=info.repo,
        display=info.repo_display,
    )
    db.insert_missing(
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
    pull = find_pull(session, repo=info.repo, number=info.number, lock=True)
    assert pull is not None
    _remember_head(session, pull, head_sha=info.head_sha, since=info.updated_at or now)
    if pull.github_updated_at is not None and _older(info, pull):
        # A late, older delivery: keep the newer state, but learn who merged if a trimmed
        # newer payload (a review's) could not say.
        if pull.merged and pull.merged_by is None and info.merged_by is not None:
            pull.merged_by = info.merged_by
            session.add(pull)
        return pull
    if pull.head_sha != info.head_sha:
        touch_commit(session, repo=pull.repo, head_sha=pull.head_sha)  # it may lose a waiter
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
    session.add(pull)
    session.flush()
    return pull


def _remember_head(session: Session, pull: PullRequest, *, head_sha: str, since: datetime) -> None:
    """Keep when a commit was first seen as the pull request's head (GitHub's time)."""
    db.insert_missing(
        session,
        PullHead,
        {"pull_request_id": pull.id, "head_sha": head_sha, "since": since},
        ["pull_request_id", "head_sha"],
    )


def head_at(session: Session, *, pull: PullRequest, at: datetime) -> str | None:
    """The commit that was ``pull``'s head at ``at``, as far as Gatekeeper saw; None before
    the first head it saw (its ``opened`` may have been lost: the commit is unknown)."""
    heads = session.exec(
        select(PullHead).where(PullHead.pull_request_id == pull.id).order_by(col(PullHead.since))
    ).all()
    earlier = [h for h in heads if h.since <= at]
    return earlier[-1].head_sha if earlier else None


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
    db.insert_missing(
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
    )
    review = session.exec(
        select(Review)
        .where(Review.source == ApprovalSource.REVIEW)
        .where(Review.github_id == info.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if review.state != gate.DISMISSED:
        review.state = info.state
        review.commit_id = info.commit_id or review.commit_id
    review.reviewer_id = review.reviewer_id or info.reviewer_id  # stored before ids were
    session.add(review)
    return review


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


def signals(reviews: Iterable[Review]) -> list[gate.Signal]:
    """Reviews as the gate sees them."""
    return [
        gate.Signal(
            reviewer=r.reviewer,
            state=r.state,
            commit_id=r.commit_id,
            submitted_at=r.submitted_at,
            source=r.source,
            key=r.id or 0,
            reviewer_id=r.reviewer_id,
        )
        for r in reviews
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


def gate_pull(pull: PullRequest) -> gate.Pull:
    """A stored pull request as the gate sees it."""
    return gate.Pull(
        repo=pull.repo,
        number=pull.number,
        author=pull.author,
        head_sha=pull.head_sha,
        state=pull.state,
        merged=pull.merged,
        author_id=pull.author_id,
        repo_id=pull.repo_id,
    )


def terms_of(session: Session, mentorship: Mentorship) -> gate.Terms:
    """A mentorship and its current mentors as the gate sees them."""
    assignments = lifecycle.mentors_of(session, mentorship=mentorship)
    return gate.Terms(
        mentee=mentorship.mentee,
        mentors=frozenset(a.mentor for a in assignments),
        started_at=mentorship.started_at,
        ends_at=mentorship.ends_at,
        ended_at=mentorship.ended_at,
        repositories=frozenset(mentorship.repositories),
        repository_ids=frozenset(mentorship.repository_ids.items()),
        approvals_required=mentorship.approvals_required,
        dismiss_stale_approvals=mentorship.dismiss_stale_approvals,
        gate_approved_prs=mentorship.gate_approved_prs,
        id=mentorship.id,
        mentor_display=tuple(a.mentor_display for a in assignments),
        mentee_display=mentorship.mentee_display,
        mentee_id=mentorship.mentee_id,
        mentor_ids={a.mentor_id: a.mentor for a in assignments if a.mentor_id is not None},
    )


def latest_terms(session: Session, *, login: str, account_id: int | None) -> gate.Terms | None:
    """The terms of the account's open (else most recent) mentorship, if it ever had one."""
    mentorship = lifecycle.latest_mentorship_of(session, account_id=account_id, login=login)
    return terms_of(session, mentorship) if mentorship is not None else None


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
