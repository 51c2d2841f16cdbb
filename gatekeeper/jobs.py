"""A small queue in the database for work that needs GitHub, so no request ever waits on it.

Kinds (run by ``worker.py``): ``sync_pull`` (read a pull request and its reviews from GitHub,
then apply a delivery that was waiting for it), ``reconcile`` (a mentee's pull requests after
a lifecycle change), ``request_reviews``, ``bypass_comment`` (see ``bypass_alerts.py``),
``learn_account`` (a login's GitHub user id, see ``people.py``) and ``resolve_repository``
(the id of a repository a scope names, see ``repositories.py``).
One pending job per key; see ``models.Job``. Each kind's arguments have a typed shape here
(``SyncPull``, ...): ``enqueue`` stores one as the JSON it always was, and ``claim`` reads it
back, dropping a row whose kind or arguments no shape fits (left by another version).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import types
import typing
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from gatekeeper.models import Job, JobKind

LEASE = timedelta(minutes=2)  # longer than any one job's GitHub calls may take
MAX_BACKOFF = 600.0  # seconds; what keeps failing (GitHub, the database) is tried every ten minutes
log = logging.getLogger(__name__)


def backoff(attempts: int) -> timedelta:
    """How long to wait before the next try, after ``attempts`` failures."""
    return timedelta(seconds=min(MAX_BACKOFF, 2.0 ** max(attempts, 0)))


# ---------------------------------------------------------------- each kind's arguments
# The field names are the keys stored in ``Job.args``: renaming one breaks the queued rows.


@dataclasses.dataclass(frozen=True)
class SyncPull:
    """Read a pull request and its reviews, then apply the delivery that waited for it."""

    KIND: ClassVar[JobKind] = JobKind.SYNC_PULL
    repo: str
    number: int
    installation_id: int | None = None
    delivery_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Reconcile:
    """Bring a mentee's pull requests in line after a lifecycle change."""

    KIND: ClassVar[JobKind] = JobKind.RECONCILE
    mentorship_id: int


@dataclasses.dataclass(frozen=True)
class RequestReviews:
    """Ask ``logins`` to review a pull request."""

    KIND: ClassVar[JobKind] = JobKind.REQUEST_REVIEWS
    repo: str
    number: int
    logins: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ResolveRepository:
    """Learn the id of the repository a scope names."""

    KIND: ClassVar[JobKind] = JobKind.RESOLVE_REPOSITORY
    repo: str


@dataclasses.dataclass(frozen=True)
class BypassComment:
    """Tell the mentors that a pull request merged while its gate waited."""

    KIND: ClassVar[JobKind] = JobKind.BYPASS_COMMENT
    repo: str
    number: int


@dataclasses.dataclass(frozen=True)
class LearnAccount:
    """Learn the GitHub user id of a (lowercase) login."""

    KIND: ClassVar[JobKind] = JobKind.LEARN_ACCOUNT
    login: str


@dataclasses.dataclass(frozen=True)
class ReadTree:
    """Read a commit's tree."""

    KIND: ClassVar[JobKind] = JobKind.READ_TREE
    repo: str
    sha: str


@dataclasses.dataclass(frozen=True)
class SendNotice:
    """Post one notice to the team's chat."""

    KIND: ClassVar[JobKind] = JobKind.SEND_NOTICE
    notice_id: int


JobArgs = (
    SyncPull
    | Reconcile
    | RequestReviews
    | ResolveRepository
    | BypassComment
    | LearnAccount
    | ReadTree
    | SendNotice
)
SHAPES: dict[str, type[JobArgs]] = {shape.KIND: shape for shape in typing.get_args(JobArgs)}


class BrokenArgs(ValueError):
    """A stored job whose kind or arguments no shape here fits."""


def to_args(args: JobArgs) -> dict[str, object]:
    """The JSON ``Job.args`` stores for ``args``."""
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in dataclasses.asdict(args).items()
    }


def from_args(kind: str, stored: Mapping[str, object]) -> JobArgs:
    """The typed arguments of a stored job; raises BrokenArgs when they do not fit its kind."""
    shape = SHAPES.get(kind)
    if shape is None:
        raise BrokenArgs(f"no job is of kind {kind!r}")
    fields = _fields(kind)
    extra = sorted(set(stored) - {name for name, _hint, _required in fields})
    if extra:
        raise BrokenArgs(f"{kind} takes no {', '.join(extra)}")
    values: dict[str, Any] = {}  # each checked against its field's type by ``_read``
    for name, hint, required in fields:
        if name in stored:
            values[name] = _read(stored[name], hint, name=name)
        elif required:
            raise BrokenArgs(f"{kind} lacks {name}")
    return shape(**values)


@functools.cache
def _fields(kind: str) -> tuple[tuple[str, object, bool], ...]:
    """Each field's name, type and whether it has no default (resolving types is slow)."""
    shape = SHAPES[kind]
    hints = typing.get_type_hints(shape)
    return tuple(
        (field.name, hints[field.name], field.default is dataclasses.MISSING)
        for field in dataclasses.fields(shape)
    )


def _read(value: object, hint: object, *, name: str) -> object:
    """``value`` as a field typed ``hint`` holds it (JSON's list as a tuple), or BrokenArgs."""
    if isinstance(hint, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _read(value, option, name=name)
            except BrokenArgs:
                continue
    elif typing.get_origin(hint) is tuple and isinstance(value, list):
        (item, _ellipsis) = typing.get_args(hint)
        return tuple(_read(each, item, name=name) for each in value)
    elif isinstance(hint, type) and isinstance(value, hint) and not isinstance(value, bool):
        return value  # int, str, or None (whose hint is NoneType)
    wanted = hint.__name__ if isinstance(hint, type) else str(hint)
    raise BrokenArgs(f"{name} is not {wanted}: {value!r}"[:200])


@dataclasses.dataclass(frozen=True)
class Claimed:
    """A job a worker holds until its lease ends."""

    id: int
    kind: str
    key: str
    args: JobArgs
    generation: int
    attempts: int


def enqueue(
    session: Session,
    *,
    key: str,
    args: JobArgs,
    now: datetime,
    run_after: datetime | None = None,
) -> None:
    """Ask for a job; asking again for a pending one makes it run (again) as soon as it can,
    or at ``run_after`` for work that should wait a while."""
    due = run_after or now
    kind, stored = args.KIND, to_args(args)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Job).values(
        key=key, kind=kind, args=stored, generation=1, created_at=now, run_after=due, attempts=0
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["key"],
            set_={"generation": Job.generation + 1, "args": stored, "run_after": due},
        )
    )


def claim(
    session: Session, *, now: datetime, kinds: tuple[str, ...] | None = None
) -> Claimed | None:
    """Take the oldest job that is due and not held by another worker; commits the claim.

    A job whose kind or arguments no shape fits is dropped with a warning, and the next is taken.
    """
    query = (
        select(Job)
        .where(col(Job.run_after) <= now)
        .where(sa.or_(col(Job.claimed_until).is_(None), col(Job.claimed_until) < now))
        .order_by(col(Job.run_after), col(Job.id))
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if kinds is not None:
        query = query.where(col(Job.kind).in_(kinds))
    while (job := session.exec(query).first()) is not None:
        try:
            args = from_args(job.kind, job.args)
        except BrokenArgs as error:
            log.warning("job %s dropped: %s", job.key, error)
            session.delete(job)
            session.commit()
            continue
        return _hold(session, job, args, now=now)
    session.commit()
    return None


def _hold(session: Session, job: Job, args: JobArgs, *, now: datetime) -> Claimed:
    assert job.id is not None
    claimed = Claimed(job.id, job.kind, job.key, args, job.generation, job.attempts)
    job.claimed_until = now + LEASE
    session.add(job)
    session.commit()
    return claimed


def done(session: Session, job: Claimed) -> None:
    """Finish a job, unless it was asked for again meanwhile: then it runs once more."""
    deleted = session.execute(
        sa.delete(Job).where(col(Job.id) == job.id).where(col(Job.generation) == job.generation)
    )
    if deleted.rowcount == 0:  # type: ignore[attr-defined]
        session.execute(sa.update(Job).where(col(Job.id) == job.id).values(claimed_until=None))
    session.commit()


def retry_later(session: Session, job: Claimed, *, error: str, at: datetime) -> None:
    """Keep a job that failed for a reason that may pass; it runs again at ``at``."""
    session.execute(
        sa.update(Job)
        .where(col(Job.id) == job.id)
        .values(claimed_until=None, run_after=at, attempts=Job.attempts + 1, last_error=error[:500])
    )
    session.commit()


def drop(session: Session, job: Claimed) -> None:
    """Give a job up for good (the caller logs why)."""
    session.execute(sa.delete(Job).where(col(Job.id) == job.id))
    session.commit()


def pending(session: Session, *, now: datetime | None = None) -> int:
    """How many jobs wait: due by ``now`` (default: the current time), or being retried.

    A job asked for later and never tried (a bypass comment in its settle delay) is not
    counted yet, so a drained queue is one with nothing left to do before then.
    """
    due = sa.or_(col(Job.run_after) <= (now or datetime.now(UTC)), col(Job.attempts) > 0)
    return session.exec(select(sa.func.count()).select_from(Job).where(due)).one()
