"""The merge queue's groups as Gatekeeper knows them: born with ``checks_requested``, ended by
``destroyed``, each carrying the one pull request whose gate decides its check.

Deliveries come late, twice or out of order: a group is stored on whichever event comes
first, and once destroyed it stays so, whatever arrives after.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gatekeeper import db
from gatekeeper.events import MergeGroupInfo
from gatekeeper.models import MergeGroup, PullRequest


def remember(session: Session, *, repo: str, info: MergeGroupInfo, now: datetime) -> MergeGroup:
    """The stored group of ``info``'s commit, created if new, locked until the transaction ends."""
    db.insert_missing(
        session,
        MergeGroup,
        {
            "repo": repo,
            "head_sha": info.head_sha,
            "head_ref": info.head_ref,
            "base_ref": info.base_ref,
            "number": info.number,
            "created_at": now,
        },
        ["repo", "head_sha"],
    )
    return session.exec(
        select(MergeGroup)
        .where(MergeGroup.repo == repo)
        .where(MergeGroup.head_sha == info.head_sha)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def destroy(session: Session, *, repo: str, info: MergeGroupInfo, now: datetime) -> MergeGroup:
    """End a group's life (the first ``destroyed`` counts; a redelivery changes nothing)."""
    group = remember(session, repo=repo, info=info, now=now)
    if group.destroyed_at is None:
        group.destroyed_at, group.destroyed_reason = now, info.reason
        session.add(group)
        session.flush()
    return group


def living_on(session: Session, *, repo: str, head_sha: str) -> list[MergeGroup]:
    """Groups whose commit is ``head_sha`` and that the queue has not destroyed."""
    return list(
        session.exec(
            select(MergeGroup)
            .where(MergeGroup.repo == repo)
            .where(MergeGroup.head_sha == head_sha)
            .where(col(MergeGroup.destroyed_at).is_(None))
            .execution_options(populate_existing=True)
        )
    )


def living_carrying(session: Session, *, repo: str, head_sha: str) -> list[MergeGroup]:
    """Living groups that carry a pull request (open or not) whose head is ``head_sha``:
    their check follows that pull request's gate."""
    return list(
        session.exec(
            select(MergeGroup)
            .join(
                PullRequest,
                (col(PullRequest.repo) == col(MergeGroup.repo))
                & (col(PullRequest.number) == col(MergeGroup.number)),
            )
            .where(MergeGroup.repo == repo)
            .where(PullRequest.head_sha == head_sha)
            .where(col(MergeGroup.destroyed_at).is_(None))
            .order_by(col(MergeGroup.head_sha))
        )
    )


def living_around(
    session: Session, *, repo: str, head_sha: str
) -> tuple[list[MergeGroup], list[MergeGroup]]:
    """:func:`living_on` and :func:`living_carrying` of one commit, in one query."""
    rows = session.exec(
        select(MergeGroup, PullRequest.head_sha)
        .outerjoin(
            PullRequest,
            (col(PullRequest.repo) == col(MergeGroup.repo))
            & (col(PullRequest.number) == col(MergeGroup.number)),
        )
        .where(MergeGroup.repo == repo)
        .where(sa.or_(col(MergeGroup.head_sha) == head_sha, col(PullRequest.head_sha) == head_sha))
        .where(col(MergeGroup.destroyed_at).is_(None))
        .order_by(col(MergeGroup.head_sha), col(MergeGroup.id))
        .execution_options(populate_existing=True)
    ).all()
    on = [group for group, _carried_head in rows if group.head_sha == head_sha]
    carrying = [group for group, carried_head in rows if carried_head == head_sha]
    return on, carrying


def open_pulls_and_queue(
    session: Session, *, repo: str, head_sha: str
) -> tuple[list[PullRequest], bool]:
    """The open pull requests whose head is ``head_sha`` (``pulls.open_pulls_on``), and
    whether ``repo`` has a living group, in one query: a repository without a merge queue
    then never reads its groups."""
    rows = session.exec(_open_pulls_and_queue(), params={"repo": repo, "head_sha": head_sha}).all()
    return [pull for _lives, pull in rows if pull is not None], any(lives for lives, _ in rows)


@functools.cache
def _open_pulls_and_queue() -> Any:
    """The query, built once: every delivery that touches a commit runs it."""
    repo: sa.BindParameter[str] = sa.bindparam("repo")
    head_sha: sa.BindParameter[str] = sa.bindparam("head_sha")
    living = sa.select(
        sa.exists()
        .where(col(MergeGroup.repo) == repo)
        .where(col(MergeGroup.destroyed_at).is_(None))
        .label("lives")
    ).subquery()
    # The flag's one row, joined to each open pull request (a row of its own when none is).
    on_head = (
        (col(PullRequest.repo) == repo)
        & (col(PullRequest.head_sha) == head_sha)
        & (col(PullRequest.state) == "open")
    )
    return (
        select(living.c.lives, PullRequest)
        .select_from(living.outerjoin(PullRequest, on_head))
        .order_by(col(PullRequest.number))
        .execution_options(populate_existing=True)
    )


def carried_pull(session: Session, group: MergeGroup) -> PullRequest | None:
    """The stored pull request the group adds to the queue, read afresh (None: not seen yet)."""
    if group.number is None:
        return None
    return session.exec(
        select(PullRequest)
        .where(PullRequest.repo == group.repo)
        .where(PullRequest.number == group.number)
        .execution_options(populate_existing=True)
    ).first()
