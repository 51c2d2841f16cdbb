"""The webhook endpoint: verify the signature and the headers, have the delivery applied, answer.

Nothing here talks to GitHub; ``deliveries`` applies what arrives, in one transaction with
the outbox's new desires, and the worker posts them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from gatekeeper import db, deliveries, logs, metrics
from gatekeeper.deliveries import Answer, reply
from gatekeeper.extensions import settings_of

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

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
        return reply(503, error="GITHUB_WEBHOOK_SECRET is not configured")
    # A chunked body has no length to refuse it by, and reading it stops silently at the
    # limit: a prefix must never be signature-checked, so ask for one byte more.
    try:
        body = request.stream.read(BODY_LIMIT)
        if len(body) == BODY_LIMIT:
            request.stream.read(1)  # raises once the limit is reached
    except RequestEntityTooLarge:
        return reply(413, error=f"the body is larger than {BODY_LIMIT // 2**20} MiB")
    if not signature_matches(
        settings.github_webhook_secret, body, request.headers.get("X-Hub-Signature-256")
    ):
        return reply(401, error="missing or wrong X-Hub-Signature-256")
    event = request.headers.get("X-GitHub-Event")
    delivery_id = request.headers.get("X-GitHub-Delivery")
    if not event or not delivery_id:
        return reply(400, error="missing X-GitHub-Event or X-GitHub-Delivery header")
    if len(delivery_id) > DELIVERY_ID_LIMIT or len(event) > 64:
        return reply(400, error="X-GitHub-Delivery or X-GitHub-Event is too long")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return reply(400, error="the body is not JSON")
    if not isinstance(payload, dict):
        return reply(400, error="the body is not a JSON object")
    digest = hashlib.sha256(body).hexdigest()
    return deliveries.apply(
        db.get_session(),
        settings,
        event=event,
        delivery_id=delivery_id,
        payload=payload,
        digest=digest,
    )
