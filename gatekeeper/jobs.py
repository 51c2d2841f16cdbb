"""A small queue in the database for work that needs GitHub, so no request ever waits on it.

Kinds (run by ``worker.py``): ``sync_pull`` (read a pull request and its reviews from GitHub,
then apply a delivery that was waiting for it), ``reconcile`` (a mentee's pull requests after
a lifecycle change), ``request_reviews``, ``bypass_comment`` (see ``bypass_alerts.py``),
``learn_account`` (a login's GitHub user id, see ``people.py``) and ``resolve_repository``
(the id of a repository a scope names, see ``repositories.py``).
One pending job per key; see ``models.Job``.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from gatekeeper.models import Job, JobKind

LEASE = timedelta(minutes=2)  # longer than any one job's GitHub calls may take
MAX_BACKOFF = 600.0  # seconds; what keeps failing (GitHub, the database) is tried every ten minutes


def backoff(attempts: int) -> timedelta:
    """How long to wait before the next try, after ``attempts`` failures."""
    return timedelta(seconds=min(MAX_BACKOFF, 2.0 ** max(attempts, 0)))


@dataclasses.dataclass(frozen=True)
class Claimed:
    """A job a worker holds until its lease ends."""

    id: int
    kind: str
    key: str
    args: dict[str, Any]
    generation: int
    attempts: int


def enqueue(
    session: Session,
    *,
    kind: JobKind,
    key: str,
    args: dict[str, Any],
    now: datetime,
    run_after: datetime | None = None,
) -> None:
    """Ask for a job; asking again for a pending one makes it run (again) as soon as it can,
    or at ``run_after`` for work that should wait a while."""
    due = run_after or now
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Job).values(
        key=key, kind=kind, args=args, generation=1, created_at=now, run_after=due, attempts=0
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["key"],
            set_={"generation": Job.generation + 1, "args": args, "run_after": due},
        )
    )


def claim(
    session: Session, *, now: datetime, kinds: tuple[str, ...] | None = None
) -> Claimed | None:
    """Take the oldest job that is due and not held by another worker; commits the claim."""
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
    job = session.exec(query).first()
    if job is None:
        session.commit()
        return None
    assert job.id is not None
    claimed = Claimed(job.id, job.kind, job.key, dict(job.args), job.generation, job.attempts)
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
