"""The webhook endpoint: verify the signature and the headers, store the delivery, answer.

Nothing here talks to GitHub, nor decides a gate: ``deliveries`` stores what arrives in one
statement, and the worker applies it and posts the checks it changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import tempfile
import time
from typing import IO

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from gatekeeper import db, deliveries, logs, metrics
from gatekeeper.deliveries import Answer, reply
from gatekeeper.extensions import settings_of

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

DELIVERY_ID_LIMIT = 255  # GitHub's are 36-character GUIDs
BODY_LIMIT = 25 * 2**20  # GitHub caps payloads at 25 MB; MAX_CONTENT_LENGTH is the same
SPOOL_LIMIT = 2**20  # a body larger than this is kept on disk until it is known to be signed
CHUNK = 2**16
# The outcome a delivery is counted under when it was refused before it had one.
REFUSALS = {400: "malformed", 401: "unauthorized", 413: "too_large", 503: "unconfigured"}


def signature_matches(expected: str, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=`` + ``expected``, the body's hex HMAC-SHA256
    (constant-time compare)."""
    if not header or not header.startswith("sha256="):
        return False
    # Bytes, not str: compare_digest refuses non-ASCII text, and a header is attacker input.
    given = header.removeprefix("sha256=").encode("utf-8", "replace")
    return hmac.compare_digest(expected.encode(), given)


@dataclasses.dataclass(frozen=True)
class Hashes:
    """What reading a body computed: its HMAC-SHA256 under the secret, and its SHA-256 (the
    digest a replayed body is recognised by)."""

    signature: str
    digest: str


def read_body(stream: IO[bytes], *, secret: str, into: IO[bytes]) -> Hashes | None:
    """Copy ``stream`` into ``into`` a chunk at a time, hashing each chunk as it passes;
    None once the body is larger than BODY_LIMIT (what was copied is then of no use)."""
    signature = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    digest = hashlib.sha256()
    size = 0
    try:
        # To the end, not to the limit: a chunked body has no length to refuse it by, and a
        # prefix must never be signature-checked. Past MAX_CONTENT_LENGTH the stream raises.
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > BODY_LIMIT:
                return None
            signature.update(chunk)
            digest.update(chunk)
            into.write(chunk)
    except RequestEntityTooLarge:
        return None
    return Hashes(signature=signature.hexdigest(), digest=digest.hexdigest())


@bp.post("/webhooks/github")
def receive() -> ResponseReturnValue:
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
    # Anyone can send a body: until its signature is known it costs a chunk of memory, and
    # the rest waits on disk, so that unsigned bodies cannot fill the memory.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_LIMIT) as spool:
        try:
            hashes = read_body(request.stream, secret=settings.github_webhook_secret, into=spool)
        except RequestEntityTooLarge:  # a Content-Length above the limit: nothing was read
            hashes = None
        if hashes is None:
            return reply(413, error=f"the body is larger than {BODY_LIMIT // 2**20} MiB")
        if not signature_matches(hashes.signature, request.headers.get("X-Hub-Signature-256")):
            return reply(401, error="missing or wrong X-Hub-Signature-256")
        event = request.headers.get("X-GitHub-Event")
        delivery_id = request.headers.get("X-GitHub-Delivery")
        if not event or not delivery_id:
            return reply(400, error="missing X-GitHub-Event or X-GitHub-Delivery header")
        if len(delivery_id) > DELIVERY_ID_LIMIT or len(event) > 64:
            return reply(400, error="X-GitHub-Delivery or X-GitHub-Event is too long")
        spool.seek(0)
        body = spool.read()  # signed by GitHub: now it may take the memory it needs
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return reply(400, error="the body is not JSON")
    if not isinstance(payload, dict):
        return reply(400, error="the body is not a JSON object")
    return deliveries.receive(
        db.get_session(),
        settings,
        event=event,
        delivery_id=delivery_id,
        body=body,
        payload=payload,
        digest=hashes.digest,
    )
