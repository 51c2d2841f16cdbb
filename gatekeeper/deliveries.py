"""Applying a stored delivery: once, in one transaction with the outbox's new desires.

The webhook view applies a delivery as it arrives; the worker applies one that waited for
its pull request to be read from GitHub (``replay``). Both get the same ``Answer``. Nothing
here talks to GitHub. Every database failure is an answer: a race, a busy database, a lost
connection or a deadlock is retried (``db.writing``); one that persists answers 503 (and
the sweep asks GitHub to redeliver it), a payload the database refuses is a failed
delivery (422).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gatekeeper import db, logs, outbox
from gatekeeper import pulls as store
from gatekeeper.config import Settings
from gatekeeper.events import PayloadError, envelope
from gatekeeper.handlers import Context, NeedsPull, handler_for, sync_later
from gatekeeper.models import APPLIED, Delivery, DeliveryOutcome, utcnow

log = logging.getLogger(__name__)

ATTEMPTS = 8  # a race resolves in one more try; a deadlock or busy database in a few


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a delivery got: the HTTP status and the JSON fields of the answer."""

    status: int
    fields: dict[str, Any]

    @property
    def outcome(self) -> str | None:
        return self.fields.get("outcome")


def reply(status: int, **fields: Any) -> Answer:
    """An answer with ``status`` and these JSON fields."""
    return Answer(status, fields)


def apply(
    session: Session,
    settings: Settings,
    *,
    event: str,
    delivery_id: str,
    payload: dict[str, Any],
    digest: str | None = None,
    replay: bool = False,
) -> Answer:
    """Apply a delivery once, retrying what a concurrent delivery or the database got in the way of.

    ``digest`` is the SHA-256 of the signed body: the same body under another delivery id is
    a replay (the signature covers the body, not the id), acknowledged and not applied.
    ``replay`` applies a deferred delivery (the worker, once GitHub has been asked).
    """

    def attempt(session: Session) -> Answer:
        seen, body_applied = _recorded(session, delivery_id=delivery_id, digest=digest)
        if seen is not None and seen.outcome not in ("failed", "deferred"):
            return reply(200, delivery=delivery_id, outcome="duplicate")
        if seen is not None and seen.outcome == "deferred" and not replay:
            return reply(202, delivery=delivery_id, outcome="deferred")
        if seen is None and body_applied:
            log.warning("delivery %s replays a body already applied; ignored", delivery_id)
            return reply(200, delivery=delivery_id, outcome="replay")
        return _apply_once(
            session,
            settings,
            seen,
            event=event,
            delivery_id=delivery_id,
            payload=payload,
            digest=digest,
        )

    try:
        # A race (a unique key inserted by a concurrent delivery) resolves on the next try.
        return db.writing(session, attempt, attempts=ATTEMPTS)
    except (sa.exc.DataError, sa.exc.IntegrityError) as failure:
        # A value the schema cannot hold, or a refusal that persists: the payload's doing.
        return _failed(session, event, delivery_id, payload, failure)
    except (db.Busy, sa.exc.DBAPIError) as error:
        # A deadlock, a lost connection, a busy database, a schema behind the code during
        # a deploy: none is the payload's fault, so GitHub is asked to send it again.
        log.warning(
            "delivery %s (%s) not applied, database unavailable: %s",
            delivery_id,
            event,
            type(error).__name__,
        )
        return reply(
            503, delivery=delivery_id, outcome="retry", error="database unavailable; redeliver"
        )


def _apply_once(
    session: Session,
    settings: Settings,
    seen: Delivery | None,
    *,
    event: str,
    delivery_id: str,
    payload: dict[str, Any],
    digest: str | None,
) -> Answer:
    try:
        info = envelope(event, payload)
    except PayloadError as error:
        return _failed(session, event, delivery_id, payload, error)
    logs.bind(  # for the rest of the request or the worker's job
        delivery=delivery_id,
        event=event,
        action=info.action,
        installation=info.installation_id,
        repository=info.repo,
        pull_request=logs.pull_number_of(payload),
    )
    now = utcnow()
    delivery = seen or Delivery(delivery_id=delivery_id, event=event, received_at=now)
    delivery.body_digest = digest or delivery.body_digest
    delivery.action = (info.action or "")[:64] or None
    delivery.installation_id = info.installation_id
    handler = handler_for(event, info.action)
    if handler is None or _from_ourselves(info.sender, info.sender_type, settings):
        log.info("delivery %s ignored: %s.%s", delivery_id, event, info.action)
        return _finish(session, delivery, outcome=DeliveryOutcome.IGNORED)
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
    try:
        touched = handler(ctx)
    except NeedsPull as missing:
        session.rollback()
        # Kept whole; the worker reads the pull request from GitHub, then applies it.
        delivery.outcome = DeliveryOutcome.DEFERRED
        delivery.payload, delivery.processed_at = payload, None
        session.add(delivery)
        sync_later(ctx, missing.repo, missing.number, delivery_id=delivery_id)
        session.commit()
        return reply(202, delivery=delivery_id, outcome=DeliveryOutcome.DEFERRED)
    except PayloadError as error:
        session.rollback()
        return _failed(session, event, delivery_id, payload, error)
    outbox.commit_gates(session, touched, settings=settings, now=now)
    delivery.payload = None
    return _finish(session, delivery, outcome=DeliveryOutcome.PROCESSED)


def _failed(
    session: Session, event: str, delivery_id: str, payload: dict[str, Any], error: Exception
) -> Answer:
    """Keep the delivery as failed, with why (a 4xx: GitHub will not send it again as is)."""
    action = payload.get("action")
    action = action[:64] if isinstance(action, str) and action.isprintable() else None
    reason = str(error) if isinstance(error, PayloadError) else type(error).__name__
    log.warning("delivery %s (%s.%s) not applied: %s", delivery_id, event, action, reason)

    def record(session: Session) -> None:
        delivery = session.get(Delivery, delivery_id) or Delivery(
            delivery_id=delivery_id, event=event, received_at=utcnow()
        )
        delivery.outcome = DeliveryOutcome.FAILED
        delivery.action, delivery.error = action, reason[:500]
        delivery.processed_at, delivery.payload = utcnow(), None
        session.add(delivery)

    # The record of a failure is a courtesy; the answer says it all.
    with contextlib.suppress(db.Busy, sa.exc.SQLAlchemyError):
        db.writing(session, record)
    return reply(
        422,
        delivery=delivery_id,
        outcome=DeliveryOutcome.FAILED,
        error=f"payload not understood: {reason[:200]}",
    )


def _finish(session: Session, delivery: Delivery, *, outcome: DeliveryOutcome) -> Answer:
    """Commit what the event changed, with the outbox's desires, and answer."""
    delivery.outcome, delivery.processed_at, delivery.error = outcome, utcnow(), None
    session.add(delivery)
    session.commit()
    return reply(200, delivery=delivery.delivery_id, outcome=outcome)


def _recorded(
    session: Session, *, delivery_id: str, digest: str | None
) -> tuple[Delivery | None, bool]:
    """This delivery's record, if it has one, and whether another delivery applied the same
    body (``digest``): every delivery asks both, so one query answers them."""
    this_one = col(Delivery.delivery_id) == delivery_id
    same_body = (
        (col(Delivery.body_digest) == digest) & col(Delivery.outcome).in_(APPLIED)
        if digest is not None
        else sa.false()
    )
    found = session.exec(
        select(Delivery).where(this_one | same_body).order_by(this_one.desc()).limit(2)
    ).all()
    seen = next((row for row in found if row.delivery_id == delivery_id), None)
    return seen, any(row.delivery_id != delivery_id for row in found)


def _from_ourselves(sender: str | None, sender_type: str | None, settings: Settings) -> bool:
    """Events our own bot caused (posting check runs, requesting reviews) need no answer.

    The bot's login is known from the App's slug without asking GitHub; without a slug
    configured such events are applied like any other, which changes nothing.
    """
    if sender_type != "Bot" or sender is None or not settings.github_app_slug:
        return False
    return sender == f"{settings.github_app_slug.lower()}[bot]"
