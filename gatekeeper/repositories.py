"""Repositories by GitHub id: what is stored under a name follows the repository's renames
and transfers, and mentorship scopes hold ids (their names kept for display).

Every payload and every REST answer names a repository by ``id`` and ``full_name``. The id
never changes; the name does (a rename, a transfer to another owner). When a known id shows
up under a new name, every row stored under the old name moves to the new one, so pull
requests, their checks and the scopes that name the repository stay one repository.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gatekeeper import db, jobs
from gatekeeper.models import (
    AuditEvent,
    CommitCheck,
    Job,
    JobKind,
    Mentorship,
    PullRequest,
    Repository,
)

RESOLVE = JobKind.RESOLVE_REPOSITORY  # the worker's job: a scope's name to its id
# Rows keyed by a repository's name, moved together when the repository is renamed.
NAMED_TABLES: tuple[type[PullRequest] | type[CommitCheck] | type[AuditEvent], ...] = (
    PullRequest,
    CommitCheck,
    AuditEvent,
)


def remember(
    session: Session,
    *,
    repo: str,
    display: str | None = None,
    installation_id: int | None,
    private: bool | None = None,
    github_id: int | None = None,
) -> Repository:
    """Record which installation covers ``repo`` (None: none does, or no longer).

    An event naming the repository means it exists again for the App, if it was gone.
    ``private`` is the payload's ``repository.private``; None (not said) keeps what is stored,
    and a repository first recorded without it is taken as private until an event says
    otherwise (fail closed: its name is not shown to outsiders meanwhile).
    ``github_id``, when said, moves what was stored under the repository's former name.
    """
    follow(session, github_id=github_id, repo=repo, display=display)
    row = session.get(Repository, repo.lower())
    if row is None:  # first seen (created without failing if another delivery races us)
        db.insert_missing(
            session,
            Repository,
            {
                "full_name": repo.lower(),
                "display_name": display or repo,
                "installation_id": installation_id,
                "private": True if private is None else private,
            },
            ["full_name"],
        )
        row = session.get(Repository, repo.lower(), populate_existing=True)
        assert row is not None
    if (
        (row.installation_id, row.gone_at) != (installation_id, None)
        or (display and row.display_name != display)
        or (private is not None and row.private != private)
    ):
        row.installation_id, row.gone_at = installation_id, None
        row.display_name = display or row.display_name
        row.private = row.private if private is None else private
        session.add(row)
    _learn_id(session, row, github_id)
    return row


def observe(
    session: Session, *, github_id: int | None, repo: str, display: str | None = None
) -> None:
    """What an answer or a payload says of a repository (its id under this name), without
    saying which installation covers it: renames are followed, a stored row learns its id."""
    follow(session, github_id=github_id, repo=repo, display=display)
    row = session.get(Repository, repo.lower())
    if row is not None:
        _learn_id(session, row, github_id)


def follow(
    session: Session, *, github_id: int | None, repo: str, display: str | None = None
) -> None:
    """If the repository ``github_id`` is stored under another name, move it to ``repo``;
    if another repository is stored under ``repo``, move that one out of the way."""
    if github_id is None:
        return
    name = repo.lower()
    here = session.get(Repository, name)
    if here is not None and here.github_id == github_id:
        return  # the usual case, from the identity map: ids are unique, nothing moved
    known = session.exec(select(Repository).where(Repository.github_id == github_id)).first()
    if known is not None:
        move(session, old=known.full_name, new=name, display=display or repo)
    elif here is not None and here.github_id is not None:
        _step_aside(session, here)


def move(session: Session, *, old: str, new: str, display: str) -> None:
    """Rename every row stored under ``old`` (the repository, its pull requests, their checks
    and audit lines, and the scopes naming it) to ``new``."""
    session.flush()
    holder = session.get(Repository, new)
    if holder is not None:
        _step_aside(session, holder)
    row = session.get(Repository, old)
    if row is not None:
        row.full_name, row.display_name = new, display  # the primary key, updated in place
        session.add(row)
        session.flush()
    for table in NAMED_TABLES:
        session.execute(
            sa.update(table)
            .where(col(table.repo) == old)
            .values(repo=new)
            .execution_options(synchronize_session="fetch")
        )
    for job in session.exec(select(Job)):  # pending work keeps its pull request
        if job.args.get("repo") == old:
            job.args = {**job.args, "repo": new}
            session.add(job)
    for mentorship in _scopes_naming(session, old):
        mentorship.repositories = sorted(
            {new if name == old else name for name in mentorship.repositories}
        )
        mentorship.repository_ids = {
            (new if name == old else name): github_id
            for name, github_id in mentorship.repository_ids.items()
        }
        session.add(mentorship)


def _step_aside(session: Session, holder: Repository) -> None:
    """Another repository now has ``holder``'s name (it was renamed away or deleted without
    our hearing): its rows move to a name GitHub never gives ('~' is not allowed in one),
    and follow it again once an event names it by its id."""
    aside = f"{holder.full_name[:110]}~{holder.github_id or 'unknown'}"
    move(session, old=holder.full_name, new=aside, display=aside)


def scope_ids(session: Session, *, names: Iterable[str], now: datetime) -> dict[str, int]:
    """The ids of a scope's repositories (lowercase names) from what is stored; the worker is
    asked to look up the others (never a request: it needs GitHub)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    known = {
        row.full_name: row.github_id
        for row in session.exec(
            select(Repository)
            .where(col(Repository.full_name).in_(wanted))
            .where(col(Repository.github_id).is_not(None))
        )
        if row.github_id is not None
    }
    for name in wanted:
        if name not in known:
            jobs.enqueue(
                session, key=f"{RESOLVE}:{name}", args=jobs.ResolveRepository(repo=name), now=now
            )
    return known


def resolved(
    session: Session,
    *,
    asked: str,
    github_id: int,
    repo: str,
    private: bool,
    installation_id: int,
) -> None:
    """The worker's answer for a scope's name ``asked``: the repository ``github_id``, now
    called ``repo`` (GitHub redirects a former name to the current one)."""
    remember(
        session,
        repo=repo,
        display=repo,
        installation_id=installation_id,
        private=private,
        github_id=github_id,
    )
    if asked.lower() != repo.lower():
        for mentorship in _scopes_naming(session, asked.lower()):
            mentorship.repositories = sorted(
                {repo.lower() if n == asked.lower() else n for n in mentorship.repositories}
            )
            session.add(mentorship)
    _resolve_scopes(session, repo.lower(), github_id)


def _learn_id(session: Session, row: Repository, github_id: int | None) -> None:
    """A row stored without its id (before ids were kept, or found by search) learns it, and
    so do the scope entries of its name."""
    if github_id is None or row.github_id == github_id:
        return
    row.github_id = github_id
    session.add(row)
    _resolve_scopes(session, row.full_name, github_id)


def _resolve_scopes(session: Session, name: str, github_id: int) -> None:
    for mentorship in _scopes_naming(session, name):
        if mentorship.repository_ids.get(name) != github_id:
            mentorship.repository_ids = {**mentorship.repository_ids, name: github_id}
            session.add(mentorship)


def _scopes_naming(session: Session, name: str) -> list[Mentorship]:
    """Mentorships whose scope names ``name``: few, and only read on a rename or a first id."""
    return [
        mentorship
        for mentorship in session.exec(select(Mentorship).order_by(col(Mentorship.id)))
        if name in mentorship.repositories
    ]
