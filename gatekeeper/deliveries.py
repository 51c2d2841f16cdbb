"""Deliveries: stored as they arrive, applied by the worker once each.

The webhook view stores a signed delivery as it is (``receive``: one statement) and answers
202 at once, as GitHub asks of a webhook endpoint; it never waits for the gate. The worker
takes the oldest queued delivery (``apply_next``) and applies it in one transaction with the
outbox's new desires; one that needs a pull request Gatekeeper never saw waits, deferred,
until the worker has read it from GitHub (``apply_deferred``). Nothing here talks to GitHub.

Every database failure has an outcome: a race, a busy database, a lost connection or a
deadlock is retried (``db.writing``); at the door one that persists answers 503 (the sweep
asks GitHub to redeliver it), in the worker it leaves the delivery queued for the next try. A
payload the handlers or the database refuse is a failed delivery, kept with its body and why,
so GitHub's "Redeliver" queues it again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from gatekeeper import db, handlers, jobs, logs, metrics, outbox
from gatekeeper import pulls as store
from gatekeeper.columns import UTCDateTime
from gatekeeper.config import Settings
from gatekeeper.events import Envelope, PayloadError, envelope, pull_number_of
from gatekeeper.handlers import Context, NeedsPull, handler_for, sync_later
from gatekeeper.models import APPLIED, Delivery, DeliveryOutcome, Repository, utcnow
from gatekeeper.outbox import NOTHING, Touched

log = logging.getLogger(__name__)

ATTEMPTS = 8  # a race resolves in one more try; a deadlock or busy database in a few
# The database's state, not the payload's doing: a lost connection, a deadlock that
# persists, a schema behind the code during a deploy.
DATABASE_STATE = (db.Busy, sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.ProgrammingError)
TOGETHER = 10  # deliveries of one pull request applied in one transaction, at most
# Still waiting to be applied: the same delivery sent again is answered with where it is.
WAITING = (DeliveryOutcome.QUEUED, DeliveryOutcome.DEFERRED)


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a delivery got at the door: the HTTP status and the JSON fields of the answer."""

    status: int
    fields: dict[str, Any]

    @property
    def outcome(self) -> str | None:
        return self.fields.get("outcome")


def reply(status: int, **fields: Any) -> Answer:
    """An answer with ``status`` and these JSON fields."""
    return Answer(status, fields)


@dataclasses.dataclass(frozen=True)
class Applied:
    """What the worker made of one stored delivery."""

    delivery_id: str
    event: str
    outcome: DeliveryOutcome
    received_at: datetime


# ---------------------------------------------------------------- at the door


def receive(
    session: Session,
    settings: Settings,
    *,
    event: str,
    delivery_id: str,
    body: bytes,
    payload: Mapping[str, Any],
    digest: str,
) -> Answer:
    """Store a signed delivery for the worker (202 ``queued``), or as ``ignored`` (200) when
    no handler wants it; the same delivery id again is a ``duplicate``, unless it failed."""
    try:
        info = envelope(event, payload)
        wanted = handlers.wanted(event, info.action, payload) and not _from_ourselves(
            info, settings
        )
    except PayloadError as error:
        return _refused(session, event, delivery_id, payload.get("action"), body, digest, error)
    _bind_log(delivery_id, event, info, payload)
    now = utcnow()
    row = {
        "delivery_id": delivery_id,
        "event": event,
        "action": _action(info.action),
        "installation_id": info.installation_id,
        "received_at": now,
        "outcome": DeliveryOutcome.QUEUED if wanted else DeliveryOutcome.IGNORED,
        "processed_at": None if wanted else now,
        "body": body if wanted else None,
        "body_digest": digest,
        "repository_id": info.repo_id,
        "pull_number": pull_number_of(payload),
        "error": None,
        "attempts": 0,  # a failed delivery sent again starts afresh
        "retry_at": None,
    }
    try:
        stored, outcome = db.writing(session, lambda session: _store(session, row))
    except (db.Busy, sa.exc.DBAPIError) as error:
        # A deadlock, a lost connection, a busy database, a schema behind the code during a
        # deploy: none is the payload's fault, so GitHub is asked to send it again.
        log.warning("delivery %s (%s) not stored: %s", delivery_id, event, type(error).__name__)
        return reply(
            503, delivery=delivery_id, outcome="retry", error="database unavailable; redeliver"
        )
    if not stored and outcome not in WAITING:
        return reply(200, delivery=delivery_id, outcome=DeliveryOutcome.DUPLICATE)
    return reply(202 if outcome in WAITING else 200, delivery=delivery_id, outcome=outcome)


# The door's one statement needs no transaction around it: on PostgreSQL it runs alone
# (autocommit), which spares the BEGIN and COMMIT round trips of every delivery. (SQLite's
# BEGIN IMMEDIATE is no round trip, and it is how a writer waits its turn.)
_ALONE = {"postgresql": {"isolation_level": "AUTOCOMMIT"}}


def _store(session: Session, row: dict[str, Any]) -> tuple[bool, str]:
    """Insert the delivery, or queue again one that failed (GitHub's "Redeliver" keeps the
    id): whether it was stored, and its outcome. A delivery kept otherwise is left alone."""
    # Through the session's connection, with the statement built once: this is the door's
    # whole cost, and the ORM's execution path would double it.
    dialect = session.get_bind().dialect.name
    connection = session.connection(execution_options=_ALONE.get(dialect, {}))
    outcome = connection.execute(_storing(dialect), row).scalar_one_or_none()
    if outcome is not None:
        return True, outcome
    kept = connection.execute(
        sa.select(DELIVERY.c.outcome).where(DELIVERY.c.delivery_id == row["delivery_id"])
    ).scalar_one()
    return False, kept


DELIVERY: sa.Table = Delivery.__table__  # type: ignore[attr-defined]


@functools.cache
def _storing(dialect: str) -> sa.Insert:
    """INSERT a delivery; on a known id, take the new one only where the old one failed."""
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(DELIVERY)
    return insert.on_conflict_do_update(
        index_elements=[DELIVERY.c.delivery_id],
        set_={
            column.name: insert.excluded[column.name]
            for column in DELIVERY.columns
            if column.name != "delivery_id"
        },
        where=DELIVERY.c.outcome == DeliveryOutcome.FAILED,
    ).returning(DELIVERY.c.outcome)


def _refused(
    session: Session,
    event: str,
    delivery_id: str,
    action: object,
    body: bytes,
    digest: str,
    error: PayloadError,
) -> Answer:
    """Keep a delivery whose envelope makes no sense as failed, and answer 422 (GitHub will
    not send it again as is)."""
    log.warning("delivery %s (%s) refused: %s", delivery_id, event, error)
    row = {
        "delivery_id": delivery_id,
        "event": event,
        "action": _action(action),
        "installation_id": None,
        "received_at": utcnow(),
        "processed_at": utcnow(),
        "outcome": DeliveryOutcome.FAILED,
        "error": str(error)[:500],
        "body": body,
        "body_digest": digest,
        "repository_id": None,
        "pull_number": None,
        "attempts": 0,
        "retry_at": None,
    }
    # The record of a failure is a courtesy; the answer says it all.
    with contextlib.suppress(db.Busy, sa.exc.SQLAlchemyError):
        db.writing(session, lambda session: _store(session, row))
    return reply(
        422,
        delivery=delivery_id,
        outcome=DeliveryOutcome.FAILED,
        error=f"payload not understood: {str(error)[:200]}",
    )


# ---------------------------------------------------------------- in the worker


def apply_next(session: Session, settings: Settings) -> Applied | None:
    """Apply the oldest queued delivery, if one waits; ``db.Busy`` when the database stayed
    busy (it stays queued)."""
    applied = _apply_claimed(session, settings, delivery_id=None)
    return applied[0] if applied else None


def apply_together(session: Session, settings: Settings) -> list[Applied]:
    """Apply the oldest queued delivery and, in the same transaction, up to ``TOGETHER - 1``
    others queued for its pull request, oldest first; [] when none waits.

    Under load a pull request's deliveries queue up together (a push, its reviews, the
    comments on it). Applied together they share the claim, the transaction, the record of
    their outcomes and the outbox: each commit's check is derived once, from where the last
    of them left its pull requests. Each reads afresh what it decides from (``_read_afresh``).
    A batch that meets anything but a plain application (a delivery that fails, one that
    waits for its pull request, a database that refuses) is rolled back, and its deliveries
    are applied one at a time (``apply_next``), each to its own outcome.
    """
    return _apply_claimed(session, settings, delivery_id=None, together=TOGETHER)


def apply_deferred(session: Session, settings: Settings, *, delivery_id: str) -> Applied | None:
    """Apply a delivery that waited for its pull request to be read from GitHub; None when it
    no longer waits. Its outcome is ``deferred`` again when GitHub's answer did not have it."""
    applied = _apply_claimed(session, settings, delivery_id=delivery_id)
    return applied[0] if applied else None


def _apply_claimed(
    session: Session, settings: Settings, *, delivery_id: str | None, together: int = 1
) -> list[Applied]:
    claimed: list[tuple[Applied, int]] = []  # what the last attempt took, and its tries

    def attempt(session: Session) -> list[Applied]:
        claimed.clear()
        found = claim(session, delivery_id=delivery_id)
        if found is None:
            return []
        following = (
            claim_following(session, found.delivery) if together > 1 and found.company else []
        )
        # Oldest first, the first included: one of its pull request's older deliveries that
        # another worker held (or the door had not committed) when it was claimed may be free
        # now, and is among the following.
        batch = sorted([found, *following], key=_arrival)
        # Read before applying: a rollback inside expires the rows.
        for each in batch:
            delivery = each.delivery
            taken = Applied(
                delivery.delivery_id, delivery.event, DeliveryOutcome.QUEUED, delivery.received_at
            )
            claimed.append((taken, delivery.attempts))
        results = _apply_in_order(session, settings, batch)
        return [
            dataclasses.replace(taken, outcome=done.outcome)
            for (taken, _tries), done in zip(claimed, results, strict=True)
        ]

    try:
        applied = db.writing(session, attempt, attempts=ATTEMPTS)
    except Exception as error:
        if len(claimed) > 1:
            return _one_at_a_time(session, settings, len(claimed), error)
        applied = _apply_apart(session, claimed, error, deferred=delivery_id is not None)
    for one in applied:
        if one.outcome == DeliveryOutcome.QUEUED:
            continue
        # A deferred delivery is counted as such, and timed once, when it is applied.
        waited = utcnow() - one.received_at
        seconds = None if one.outcome == DeliveryOutcome.DEFERRED else waited.total_seconds()
        metrics.delivery_applied(event=one.event, outcome=one.outcome, seconds=seconds)
        log.info("delivery %s (%s) applied: %s", one.delivery_id, one.event, one.outcome)
    return applied


def _apply_in_order(session: Session, settings: Settings, batch: list[Claim]) -> list[Done]:
    """Apply claimed deliveries in order, in the caller's transaction; then derive the checks
    of the commits they touched, once, and record their outcomes."""
    results: list[Done] = []
    for each in batch:
        if results:
            _read_afresh(session, keeping=[claimed.delivery for claimed in batch])
        # The fields bound while applying (``_bind_log``) are this delivery's only.
        with logs.bound(delivery=each.delivery.delivery_id, event=each.delivery.event):
            done = _apply(
                session, settings, each.delivery, replayed=each.replays, alone=len(batch) == 1
            )
        results.append(done)
    touched = frozenset().union(*(done.touched for done in results))
    if len(batch) > 1:
        touched = _under_current_name(
            session, touched, repository_id=batch[0].delivery.repository_id
        )
    if touched:
        outbox.commit_gates(session, touched, settings=settings, now=utcnow())
    # Their outcomes last, written together (one statement for those alike), and at one
    # time: they take effect together, when the transaction commits.
    finished = utcnow()
    for each, done in zip(batch, results, strict=True):
        if not done.recorded:
            _finish(session, each.delivery, done.outcome, error=done.error, at=finished)
    return results


def _one_at_a_time(
    session: Session, settings: Settings, count: int, error: Exception
) -> list[Applied]:
    """A batch that raised ``error``, rolled back: apply ``count`` deliveries alone, each to
    its own outcome (the oldest queued, as ``apply_next``: those of the batch, unless other
    workers took some meanwhile)."""
    # A delivery waiting for its pull request, a payload refused or a busy database is met
    # again alone; anything else may be met only in a batch, where its deliveries applied
    # alone would leave no trace of it.
    expected = isinstance(error, (NeedsPull, PayloadError, *DATABASE_STATE))
    log.log(
        logging.INFO if expected else logging.ERROR,
        "%d deliveries of one pull request are applied one at a time: %s",
        count,
        type(error).__name__,
        exc_info=None if expected else error,
    )
    return [
        one for _ in range(count) for one in _apply_claimed(session, settings, delivery_id=None)
    ]


def _read_afresh(session: Session, *, keeping: list[Delivery]) -> None:
    """Between two deliveries of a batch: store what the first wrote, and forget what the
    session read, so that the next reads what other transactions committed meanwhile (a
    mentor's id bound, a mentorship ended), as it would in a transaction of its own. The
    batch's deliveries, which it holds locked, are kept."""
    session.flush()
    kept = {id(delivery) for delivery in keeping}
    for instance in list(session.identity_map.values()):
        if id(instance) not in kept:
            session.expire(instance)


def _under_current_name(
    session: Session, touched: Touched, *, repository_id: int | None
) -> Touched:
    """A batch's commits under the name its repository has now.

    A batch is one repository's (by id); one of its deliveries that names the repository by
    a new name moves what was stored under the former name (``repositories.follow``), so
    the commits an earlier delivery touched under the former name are derived under the
    new one, where one at a time would have moved their checks. One read at most: the
    repository is in the session when it was not renamed."""
    former = {
        repo
        for repo, _sha in touched
        if (row := session.get(Repository, repo)) is None or row.github_id != repository_id
    }
    if not former:
        return touched
    now_named = session.exec(
        select(Repository.full_name).where(col(Repository.github_id) == repository_id)
    ).first()
    if now_named is None:
        return touched
    # Nothing is asked of the former name's commits any more: their checks moved.
    outbox.waive(session, {(repo, sha) for repo, sha in touched if repo in former})
    return frozenset((now_named if repo in former else repo, sha) for repo, sha in touched)


def _apply_apart(
    session: Session, claimed: list[tuple[Applied, int]], error: Exception, *, deferred: bool
) -> list[Applied]:
    """What becomes of a delivery applied alone that raised ``error`` (re-raised when none
    was claimed)."""
    if not claimed:
        raise error
    taken, tries = claimed[0]
    if isinstance(error, DATABASE_STATE):
        # Tried again after a while, and the deliveries behind it go first meanwhile. (A
        # deferred one is retried with the job that read its pull request.)
        if deferred:
            raise error
        return [_retry_later(session, taken, attempts=tries + 1, error=error)]
    # A value the schema cannot hold, a refusal that persists, or a bug: kept as failed with
    # its body, so that one delivery never holds up the queue behind it.
    log.error("delivery %s (%s) not applied", taken.delivery_id, taken.event, exc_info=error)
    return [_fail(session, taken, reason=type(error).__name__)]


@dataclasses.dataclass(frozen=True)
class Claim:
    """A stored delivery a worker holds until its transaction ends; ``replays``: another
    delivery applied the same body (the signature covers the body, not the id)."""

    delivery: Delivery
    replays: bool
    company: bool = False  # other deliveries of its pull request wait too (the oldest's claim)


def claim(session: Session, *, delivery_id: str | None = None) -> Claim | None:
    """The oldest queued delivery (or the deferred ``delivery_id``), locked until the
    transaction ends, and whether it replays another: one statement answers both."""
    if delivery_id is None:
        row = session.execute(_claiming(Claiming.OLDEST), {"now": utcnow()}).first()
    else:
        row = session.execute(_claiming(Claiming.DEFERRED), {"delivery_id": delivery_id}).first()
    return None if row is None else Claim(row[0], bool(row[1]), bool(row[3]))


def _arrival(claimed: Claim) -> tuple[datetime, str]:
    """The order deliveries are applied in: as they arrived (ties by id, as claims break them)."""
    return claimed.delivery.received_at, claimed.delivery.delivery_id


def claim_following(session: Session, first: Delivery) -> list[Claim]:
    """The other queued deliveries of ``first``'s pull request that no other worker holds,
    oldest first (``TOGETHER - 1`` at most), locked until the transaction ends."""
    if first.repository_id is None or first.pull_number is None:
        return []
    rows = session.execute(
        _claiming(Claiming.FOLLOWING),
        {
            "now": utcnow(),
            "repository_id": first.repository_id,
            "pull_number": first.pull_number,
            "delivery_id": first.delivery_id,
        },
    )
    return [Claim(row[0], bool(row[1])) for row in rows]


class Claiming(enum.Enum):
    OLDEST = "the oldest queued delivery"
    DEFERRED = "a deferred delivery, by id"
    FOLLOWING = "the queued deliveries of the same pull request after the oldest"


@functools.cache
def _claiming(which: Claiming) -> sa.Select[Delivery, bool, Repository, bool]:
    """A claim's statement, built once (they are the worker's most frequent)."""
    other = aliased(Delivery)
    replayed = (
        sa.exists()
        .where(col(other.body_digest) == col(Delivery.body_digest))
        .where(col(other.outcome).in_(APPLIED))
        .where(col(other.delivery_id) != col(Delivery.delivery_id))
    )
    # The same body queued under an older id goes first: while another worker holds it, its
    # outcome is not known yet, and this one would not be recognised as its replay.
    earlier = (
        sa.exists()
        .where(col(other.body_digest) == col(Delivery.body_digest))
        .where(col(other.outcome) == DeliveryOutcome.QUEUED)
        .where(
            sa.tuple_(col(other.received_at), col(other.delivery_id))
            < sa.tuple_(col(Delivery.received_at), col(Delivery.delivery_id))
        )
    )
    # For the oldest: whether other deliveries of its pull request wait too (only then are
    # they claimed). The other claims have no use for it.
    company: sa.ColumnElement[bool] = (
        sa.exists()
        .where(col(other.repository_id) == col(Delivery.repository_id))
        .where(col(other.pull_number) == col(Delivery.pull_number))
        .where(col(other.outcome) == DeliveryOutcome.QUEUED)
        .where(col(other.delivery_id) != col(Delivery.delivery_id))
        if which is Claiming.OLDEST
        else sa.false()
    )
    # The repository it names comes with it (the applier's first read, held by the
    # transaction: see ``db``), when stored under its id.
    query = sa.select(
        Delivery, replayed.label("replayed"), Repository, company.label("company")
    ).outerjoin(Repository, col(Repository.github_id) == col(Delivery.repository_id))
    if which is Claiming.DEFERRED:
        query = query.where(col(Delivery.delivery_id) == sa.bindparam("delivery_id")).where(
            col(Delivery.outcome) == DeliveryOutcome.DEFERRED
        )
    else:
        due: sa.BindParameter[datetime] = sa.bindparam("now", type_=UTCDateTime())
        query = (
            query.where(col(Delivery.outcome) == DeliveryOutcome.QUEUED)
            .where(sa.or_(col(Delivery.retry_at).is_(None), col(Delivery.retry_at) <= due))
            .where(~earlier)
        )
    if which is Claiming.FOLLOWING:
        query = (
            query.where(col(Delivery.repository_id) == sa.bindparam("repository_id"))
            .where(col(Delivery.pull_number) == sa.bindparam("pull_number"))
            .where(col(Delivery.delivery_id) != sa.bindparam("delivery_id"))
        )
    query = query.order_by(col(Delivery.received_at)).limit(
        TOGETHER - 1 if which is Claiming.FOLLOWING else 1
    )
    # SKIP LOCKED: another worker's queued delivery is theirs; SQLite has one writer at a
    # time. A deferred one is asked for by id: held (GitHub redelivering it at the door), it
    # is waited for, or it would be taken for one no longer waiting and never applied.
    return query.with_for_update(skip_locked=which is not Claiming.DEFERRED, of=Delivery)


@dataclasses.dataclass(frozen=True)
class Done:
    """What applying one claimed delivery came to: its outcome, the commits whose check it
    may have changed, why it failed; ``recorded``: its outcome is stored already (after a
    rollback), else the caller records it (``_finish``)."""

    outcome: DeliveryOutcome
    touched: Touched = NOTHING
    error: str | None = None
    recorded: bool = False


def _apply(
    session: Session, settings: Settings, delivery: Delivery, *, replayed: bool, alone: bool
) -> Done:
    """Apply one claimed delivery.

    ``alone``: the only delivery of its transaction. One applied with others that fails or
    waits for its pull request raises instead, for the batch to be applied one at a time.
    """
    if replayed:
        log.warning("delivery %s replays a body already applied; ignored", delivery.delivery_id)
        return Done(DeliveryOutcome.REPLAY)
    try:
        payload = json.loads(delivery.body or b"")
        info = envelope(delivery.event, payload)
    except (ValueError, RecursionError, PayloadError) as error:
        return Done(DeliveryOutcome.FAILED, error=str(error))
    _bind_log(delivery.delivery_id, delivery.event, info, payload)
    handler = handler_for(delivery.event, info.action)
    if handler is None:  # a kind of event no longer handled since it was stored
        return Done(DeliveryOutcome.IGNORED)
    now = utcnow()
    if info.repo and info.installation_id:
        store.remember_installation(
            session,
            repo=info.repo,
            display=info.repo_display,
            installation_id=info.installation_id,
            private=info.repo_private,
            github_id=info.repo_id,
        )
    ctx = Context(session, settings, now, info, payload)
    delivery_id, event = delivery.delivery_id, delivery.event  # a rollback expires the row
    try:
        touched = handler(ctx)
    except NeedsPull as missing:
        if not alone:
            raise
        session.rollback()  # what the handler wrote; the delivery waits for GitHub's answer
        if _mark(session, delivery_id, event, DeliveryOutcome.DEFERRED):
            sync_later(ctx, missing.repo, missing.number, delivery_id=delivery_id)
        return Done(DeliveryOutcome.DEFERRED, recorded=True)
    except PayloadError as error:
        if not alone:
            raise
        session.rollback()
        _mark(session, delivery_id, event, DeliveryOutcome.FAILED, error=str(error))
        return Done(DeliveryOutcome.FAILED, recorded=True)
    return Done(DeliveryOutcome.PROCESSED, touched)


def _finish(
    session: Session,
    delivery: Delivery,
    outcome: DeliveryOutcome,
    *,
    error: str | None,
    at: datetime,
) -> DeliveryOutcome:
    """Record a claimed delivery's outcome in its transaction; its body is let go once
    applied, and kept when it failed (GitHub's "Redeliver" or an operator may want it)."""
    if error is not None:
        log.warning("delivery %s (%s) failed: %s", delivery.delivery_id, delivery.event, error)
    delivery.outcome, delivery.processed_at = outcome, at
    delivery.error = error[:500] if error else None
    if outcome != DeliveryOutcome.FAILED:
        delivery.body = None
    session.add(delivery)
    return outcome


def _mark(
    session: Session,
    delivery_id: str,
    event: str,
    outcome: DeliveryOutcome,
    *,
    error: str | None = None,
) -> bool:
    """After a rollback let the claim go: record ``outcome`` unless another worker has
    meanwhile claimed the delivery and given it one (then False)."""
    if error is not None:
        log.warning("delivery %s (%s) failed: %s", delivery_id, event, error)
    done = outcome != DeliveryOutcome.DEFERRED
    changed = session.execute(
        sa.update(Delivery)
        .where(col(Delivery.delivery_id) == delivery_id)
        .where(col(Delivery.outcome).in_(WAITING))
        .values(
            outcome=outcome,
            processed_at=utcnow() if done else None,
            error=error[:500] if error else None,
        )
    )
    return bool(changed.rowcount)  # type: ignore[attr-defined]


def _fail(session: Session, delivery: Applied, *, reason: str) -> Applied:
    """Keep a delivery the database refused as failed, in a transaction of its own."""
    failed = DeliveryOutcome.FAILED

    def record(session: Session) -> None:
        _mark(session, delivery.delivery_id, delivery.event, failed, error=reason)

    db.writing(session, record)
    return dataclasses.replace(delivery, outcome=failed)


def _retry_later(
    session: Session, delivery: Applied, *, attempts: int, error: Exception
) -> Applied:
    """Leave a delivery the database got in the way of queued, to be tried after a backoff
    that grows with its attempts."""
    retry_at, reason = utcnow() + jobs.backoff(attempts), type(error).__name__

    def record(session: Session) -> None:
        session.execute(
            sa.update(Delivery)
            .where(col(Delivery.delivery_id) == delivery.delivery_id)
            .where(col(Delivery.outcome) == DeliveryOutcome.QUEUED)
            .values(attempts=attempts, retry_at=retry_at, error=reason)
        )

    db.writing(session, record)
    log.warning(
        "delivery %s (%s) not applied, the database refused (%s); trying again at %s",
        delivery.delivery_id,
        delivery.event,
        reason,
        f"{retry_at:%H:%M:%S}",
    )
    return delivery


# ---------------------------------------------------------------- shared


def queued(session: Session) -> tuple[int, datetime | None]:
    """How many deliveries wait for the worker, and when the oldest arrived."""
    count, oldest = session.execute(
        sa.select(sa.func.count(), sa.func.min(col(Delivery.received_at))).where(
            col(Delivery.outcome) == DeliveryOutcome.QUEUED
        )
    ).one()
    return count, oldest


def _action(action: object) -> str | None:
    """An action as stored: printable text, at most 64 characters."""
    return action[:64] if isinstance(action, str) and action.isprintable() and action else None


def _bind_log(delivery_id: str, event: str, info: Envelope, payload: Mapping[str, Any]) -> None:
    logs.bind(  # for the rest of the request, or of the delivery's application
        delivery=delivery_id,
        event=event,
        action=info.action,
        installation=info.installation_id,
        repository=info.repo,
        pull_request=pull_number_of(payload),
    )


def _from_ourselves(info: Envelope, settings: Settings) -> bool:
    """Events our own bot caused (posting check runs, requesting reviews) need no answer.

    The bot's login is known from the App's slug without asking GitHub; without a slug
    configured such events are applied like any other, which changes nothing.
    """
    if info.sender_type != "Bot" or info.sender is None or not settings.github_app_slug:
        return False
    return info.sender == f"{settings.github_app_slug.lower()}[bot]"
