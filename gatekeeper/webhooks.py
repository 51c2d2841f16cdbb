"""The webhook endpoint: verify the signature, record the delivery, dispatch, answer fast."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, current_app, jsonify, request
from sqlmodel import Session

from gatekeeper import checks, db, github_of, settings_of
from gatekeeper import pulls as store
from gatekeeper.events import PayloadError, envelope
from gatekeeper.handlers import Context, Result, handler_for
from gatekeeper.models import Delivery, MergeGroup, PullRequest, utcnow

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=`` + the HMAC-SHA256 of ``body`` (constant-time compare)."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest refuses non-ASCII text, and a header is attacker input.
    given = header.removeprefix("sha256=").encode("utf-8", "replace")
    return hmac.compare_digest(expected.encode(), given)


def _reply(status: int, **fields: Any):  # type: ignore[no-untyped-def]
    return jsonify(fields), status


@bp.post("/webhooks/github")
def receive():  # type: ignore[no-untyped-def]
    """Receive one GitHub delivery."""
    settings = settings_of(current_app)
    if not settings.github_webhook_secret:
        return _reply(503, error="GITHUB_WEBHOOK_SECRET is not configured")
    body = request.get_data(cache=False)
    if not signature_matches(
        settings.github_webhook_secret, body, request.headers.get("X-Hub-Signature-256")
    ):
        return _reply(401, error="missing or wrong X-Hub-Signature-256")
    event = request.headers.get("X-GitHub-Event")
    delivery_id = request.headers.get("X-GitHub-Delivery")
    if not event or not delivery_id:
        return _reply(400, error="missing X-GitHub-Event or X-GitHub-Delivery header")
    try:
        payload = json.loads(body)
    except ValueError:
        return _reply(400, error="the body is not JSON")
    if not isinstance(payload, dict):
        return _reply(400, error="the body is not a JSON object")
    return _apply(db.get_session(), event=event, delivery_id=delivery_id[:64], payload=payload)


def _apply(session: Session, *, event: str, delivery_id: str, payload: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Apply a delivery once; a race with a concurrent delivery is retried, never lost."""
    for _attempt in range(2):
        seen = session.get(Delivery, delivery_id)
        if seen is not None and seen.outcome != "failed":
            return _reply(200, delivery=delivery_id, outcome="duplicate")
        try:
            return _apply_once(session, seen, event=event, delivery_id=delivery_id, payload=payload)
        except sa.exc.IntegrityError as error:
            # Another request created the same pull request, review or delivery row first;
            # the next attempt sees it (or sees this delivery already applied).
            session.rollback()
            conflict = error
    return _failed(session, event, delivery_id, payload, conflict, status=500)


def _apply_once(
    session: Session,
    seen: Delivery | None,
    *,
    event: str,
    delivery_id: str,
    payload: dict[str, Any],
):  # type: ignore[no-untyped-def]
    settings, github = settings_of(current_app), github_of(current_app)
    info = envelope(event, payload)
    delivery = seen or Delivery(delivery_id=delivery_id, event=event[:64], received_at=utcnow())
    delivery.action = (info.action or "")[:64] or None
    delivery.installation_id = info.installation_id
    handler = handler_for(event, info.action)
    if handler is None or _from_ourselves(info.sender, info.sender_type, github):
        log.info("delivery %s ignored: %s.%s", delivery_id, event, info.action)
        return _finish(session, delivery, Result(), outcome="ignored")
    try:
        if info.repo and info.installation_id:
            store.remember_installation(
                session,
                repo=info.repo,
                display=info.repo_display,
                installation_id=info.installation_id,
            )
        result = handler(Context(session, settings, github, utcnow(), info, payload))
    except (PayloadError, KeyError, TypeError, ValueError) as error:
        session.rollback()
        return _failed(session, event, delivery_id, payload, error, status=422)
    return _finish(session, delivery, result, outcome="processed")


def _failed(
    session: Session,
    event: str,
    delivery_id: str,
    payload: dict[str, Any],
    error: Exception,
    *,
    status: int,
):  # type: ignore[no-untyped-def]
    """Keep the delivery as failed, with why, so it can be redelivered and applied later."""
    info = envelope(event, payload)
    log.warning("delivery %s (%s.%s) not applied: %r", delivery_id, event, info.action, error)
    delivery = session.get(Delivery, delivery_id) or Delivery(
        delivery_id=delivery_id, event=event[:64], received_at=utcnow()
    )
    delivery.action, delivery.installation_id = (
        (info.action or "")[:64] or None,
        info.installation_id,
    )
    delivery.outcome, delivery.error, delivery.processed_at = "failed", repr(error)[:500], utcnow()
    session.add(delivery)
    session.commit()
    message = "payload not understood" if status == 422 else "conflicting concurrent change"
    return _reply(status, delivery=delivery_id, outcome="failed", error=message)


def _finish(session: Session, delivery: Delivery, result: Result, *, outcome: str):  # type: ignore[no-untyped-def]
    """Commit what the event changed and answer; GitHub is written to after the answer is sent.

    What must be posted is committed first (``needs_post``), so a slow or failing GitHub can
    neither push the answer past GitHub's 10-second limit nor lose anything: the sweep
    retries whatever the post-answer step did not finish.
    """
    delivery.outcome, delivery.processed_at, delivery.error = outcome, utcnow(), None
    session.add(delivery)
    session.commit()
    response, status = _reply(200, delivery=delivery.delivery_id, outcome=outcome)
    if result.pulls or result.merge_group:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        work = _PostWork(
            pull_ids=[pull.id for pull in result.pulls if pull.id is not None],
            fresh=result.fresh,
            merge_group_id=result.merge_group.id if result.merge_group else None,
        )
        response.call_on_close(lambda: _post_after_answer(app, work))
    return response, status


@dataclasses.dataclass(frozen=True)
class _PostWork:
    pull_ids: list[int]
    fresh: bool
    merge_group_id: int | None


def _post_after_answer(app: Flask, work: _PostWork) -> None:
    """Post the check runs an event changed; failures stay marked for the sweep."""
    with app.app_context():
        try:
            session = db.get_session()
            settings, github, now = settings_of(app), github_of(app), utcnow()
            for pull_id in work.pull_ids:
                pull = session.get(PullRequest, pull_id)
                if pull is not None:
                    checks.deliver(
                        session, pull, github=github, settings=settings, now=now, fresh=work.fresh
                    )
                    session.commit()
            group = session.get(MergeGroup, work.merge_group_id) if work.merge_group_id else None
            if group is not None:
                checks.post_merge_group(session, group, github=github, settings=settings, now=now)
                session.commit()
        except Exception:  # nobody is waiting for this answer; the sweep heals what is left
            log.exception("posting after delivery failed; the sweep will retry")


def _from_ourselves(sender: str | None, sender_type: str | None, github: Any) -> bool:
    """Events our own bot caused (posting check runs, requesting reviews) need no answer."""
    if sender_type != "Bot" or github is None or sender is None:
        return False
    return sender == github.bot_login()
