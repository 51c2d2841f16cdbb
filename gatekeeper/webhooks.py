"""The webhook endpoint: verify the signature, record the delivery, apply it, answer.

Nothing here talks to GitHub. A delivery is applied in one transaction together with the
outbox's new desires; the worker posts them. Every database failure is an answer: a race is
retried, a lost connection or a deadlock that persists answers 503 (and the sweep asks
GitHub to redeliver it), a payload the database refuses is a failed delivery (422).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request
from sqlmodel import Session, col, select
from werkzeug.exceptions import RequestEntityTooLarge

from gatekeeper import db, logs, metrics, outbox
from gatekeeper import pulls as store
from gatekeeper.config import Settings
from gatekeeper.events import PayloadError, envelope
from gatekeeper.extensions import settings_of
from gatekeeper.handlers import Context, NeedsPull, handler_for, sync_later
from gatekeeper.models import Delivery, utcnow

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

ATTEMPTS = 8  # a race resolves in one more try; a deadlock or busy database in a few
DELIVERY_ID_LIMIT = 255  # GitHub's are 36-character GUIDs
BODY_LIMIT = 25 * 2**20  # GitHub caps payloads at 25 MB; MAX_CONTENT_LENGTH is the same
# The outcome a delivery is counted under when it was refused before it had one.
REFUSALS = {400: "malformed", 401: "unauthorized", 413: "too_large", 503: "unconfigured"}


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=`` + the HMAC-SHA256 of ``body`` (constant-time compare)."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest refuses non-ASCII text, and a header is attacker input.
    given = header.removeprefix("sha256=").encode("utf-8", "replace")
    return hmac.compare_digest(expected.encode(), given)


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a delivery got: the HTTP status and the JSON fields of the answer."""

    status: int
    fields: dict[str, Any]

    @property
    def outcome(self) -> str | None:
        return self.fields.get("outcome")


def _reply(status: int, **fields: Any) -> Answer:
    return Answer(status, fields)


@bp.post("/webhooks/github")
def receive():  # type: ignore[no-untyped-def]
    """Receive one GitHub delivery."""
    started = time.perf_counter()
    with logs.bound(  # as the sender says: a forged delivery is logged as what it claims
        delivery=request.headers.get("X-GitHub-Delivery", "")[:DELIVERY_ID_LIMIT] or None,
        event=request.headers.get("X-GitHub-Event", "")[:64] or None,
    ):
        answer = _receive()
        outcome = answer.outcome or REFUSALS.get(answer.status, "refused")
        log.info("delivery answered %d: %s", answer.status, outcome)
    metrics.delivery_answered(
        event=request.headers.get("X-GitHub-Event"),
        outcome=outcome,
        seconds=time.perf_counter() - started,
    )
    return jsonify(answer.fields), answer.status


def _receive() -> Answer:
    settings = settings_of(current_app)
    if not settings.github_webhook_secret:
        return _reply(503, error="GITHUB_WEBHOOK_SECRET is not configured")
    # A chunked body has no length to refuse it by, and reading it stops silently at the
    # limit: a prefix must never be signature-checked, so ask for one byte more.
    try:
        body = request.stream.read(BODY_LIMIT)
        if len(body) == BODY_LIMIT:
            request.stream.read(1)  # raises once the limit is reached
    except RequestEntityTooLarge:
        return _reply(413, error=f"the body is larger than {BODY_LIMIT // 2**20} MiB")
    if not signature_matches(
        settings.github_webhook_secret, body, request.headers.get("X-Hub-Signature-256")
    ):
        return _reply(401, error="missing or wrong X-Hub-Signature-256")
    event = request.headers.get("X-GitHub-Event")
    delivery_id = request.headers.get("X-GitHub-Delivery")
    if not event or not delivery_id:
        return _reply(400, error="missing X-GitHub-Event or X-GitHub-Delivery header")
    if len(delivery_id) > DELIVERY_ID_LIMIT or len(event) > 64:
        return _reply(400, error="X-GitHub-Delivery or X-GitHub-Event is too long")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return _reply(400, error="the body is not JSON")
    if not isinstance(payload, dict):
        return _reply(400, error="the body is not a JSON object")
    digest = hashlib.sha256(body).hexdigest()
    return apply(
        db.get_session(),
        settings,
        event=event,
        delivery_id=delivery_id,
        payload=payload,
        digest=digest,
    )


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
        seen = session.get(Delivery, delivery_id)
        if seen is not None and seen.outcome not in ("failed", "deferred"):
            return _reply(200, delivery=delivery_id, outcome="duplicate")
        if seen is not None and seen.outcome == "deferred" and not replay:
            return _reply(202, delivery=delivery_id, outcome="deferred")
        if seen is None and digest is not None and _applied_before(session, digest):
            log.warning("delivery %s replays a body already applied; ignored", delivery_id)
            return _reply(200, delivery=delivery_id, outcome="replay")
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
        return _reply(
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
        return _finish(session, delivery, outcome="ignored")
    if info.repo and info.installation_id:
        store.remember_installation(
            session,
            repo=info.repo,
            display=info.repo_display,
            installation_id=info.installation_id,
            private=info.repo_private,
        )
    ctx = Context(session, settings, now, info, payload)
    try:
        handler(ctx)
    except NeedsPull as missing:
        session.rollback()
        # Kept whole; the worker reads the pull request from GitHub, then applies it.
        delivery.outcome, delivery.payload, delivery.processed_at = "deferred", payload, None
        session.add(delivery)
        sync_later(ctx, missing.repo, missing.number, delivery_id=delivery_id)
        session.commit()
        return _reply(202, delivery=delivery_id, outcome="deferred")
    except PayloadError as error:
        session.rollback()
        return _failed(session, event, delivery_id, payload, error)
    outbox.flush(session, settings=settings, now=now)
    delivery.payload = None
    return _finish(session, delivery, outcome="processed")


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
        delivery.action, delivery.outcome, delivery.error = action, "failed", reason[:500]
        delivery.processed_at, delivery.payload = utcnow(), None
        session.add(delivery)

    # The record of a failure is a courtesy; the answer says it all.
    with contextlib.suppress(db.Busy, sa.exc.SQLAlchemyError):
        db.writing(session, record)
    return _reply(
        422, delivery=delivery_id, outcome="failed", error=f"payload not understood: {reason[:200]}"
    )


def _finish(session: Session, delivery: Delivery, *, outcome: str) -> Answer:
    """Commit what the event changed, with the outbox's desires, and answer."""
    delivery.outcome, delivery.processed_at, delivery.error = outcome, utcnow(), None
    session.add(delivery)
    session.commit()
    return _reply(200, delivery=delivery.delivery_id, outcome=outcome)


def _applied_before(session: Session, digest: str) -> bool:
    return (
        session.exec(
            select(Delivery.delivery_id)
            .where(Delivery.body_digest == digest)
            .where(col(Delivery.outcome).in_(("processed", "ignored", "deferred")))
            .limit(1)
        ).first()
        is not None
    )


def _from_ourselves(sender: str | None, sender_type: str | None, settings: Settings) -> bool:
    """Events our own bot caused (posting check runs, requesting reviews) need no answer.

    The bot's login is known from the App's slug without asking GitHub; without a slug
    configured such events are applied like any other, which changes nothing.
    """
    if sender_type != "Bot" or sender is None or not settings.github_app_slug:
        return False
    return sender == f"{settings.github_app_slug.lower()}[bot]"
