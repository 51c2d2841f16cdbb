"""``deliveries.apply``: a stored delivery is applied once, a replayed body is not applied
again, and a payload that cannot be applied is kept as a failed delivery.

Called as the webhook view and the worker call it, with the app's own session and settings,
against the fake GitHub; payloads are GitHub's examples (``webhook_events``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlmodel import select

from gate_support import REPO, World
from gatekeeper import deliveries, settings_of
from gatekeeper.models import Delivery

HEAD = "a" * 40


def apply(world: World, event: str, payload: dict[str, Any], delivery_id: str, **options: Any):
    """Apply ``payload`` as the view does, with the SHA-256 of its body as its digest."""
    digest = hashlib.sha256(json.dumps(payload).encode()).hexdigest()
    with world.app.app_context(), world.session() as session:
        return deliveries.apply(
            session,
            settings_of(world.app),
            event=event,
            delivery_id=delivery_id,
            payload=payload,
            digest=options.pop("digest", digest),
            **options,
        )


def opened(world: World) -> dict[str, Any]:
    """A mentee's pull request on the fake GitHub, and its ``opened`` payload."""
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    return world.events.pull_request(
        "opened", number=7, author="mpage", head_sha=HEAD, updated_at=world.tick()
    )


def stored(world: World) -> dict[str, Delivery]:
    with world.session() as session:
        return {d.delivery_id: d for d in session.exec(select(Delivery))}


def test_a_delivery_is_applied_once_and_its_redelivery_is_a_duplicate(world):
    """The same delivery id twice (GitHub's redelivery): the first is processed and gates the
    pull request, the second is acknowledged as a duplicate and changes nothing."""
    world.promote()
    payload = opened(world)
    first = apply(world, "pull_request", payload, "d-1")
    assert (first.status, first.outcome) == (200, "processed")
    assert world.pull().gate == "waiting"
    again = apply(world, "pull_request", payload, "d-1")
    assert (again.status, again.outcome) == (200, "duplicate")
    [delivery] = stored(world).values()
    assert delivery.outcome == "processed" and delivery.payload is None


def test_the_same_body_under_another_delivery_id_is_a_replay_not_applied(world):
    """A signed body sent again under a new delivery id (the signature covers the body, not
    the id): acknowledged as a replay, no delivery stored for it, nothing applied."""
    world.promote()
    payload = opened(world)
    assert apply(world, "pull_request", payload, "d-1").outcome == "processed"
    replay = apply(world, "pull_request", payload, "d-2")
    assert (replay.status, replay.outcome) == (200, "replay")
    assert sorted(stored(world)) == ["d-1"]


def test_a_payload_that_cannot_be_applied_is_recorded_as_failed(world):
    """A repository name GitHub would never send: 422, and the delivery is kept as failed
    with why, its payload not stored."""
    world.promote()
    payload = opened(world)
    payload["repository"]["full_name"] = "not a repository"
    answer = apply(world, "pull_request", payload, "d-1")
    assert (answer.status, answer.outcome) == (422, "failed")
    delivery = stored(world)["d-1"]
    assert delivery.outcome == "failed" and delivery.payload is None
    assert "repository" in (delivery.error or "")


def test_a_deferred_delivery_waits_until_it_is_replayed(world):
    """A mentor's approving comment on a pull request Gatekeeper has not seen is deferred
    (202, payload kept); sent again it stays deferred; the worker's replay applies it."""
    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    payload = world.events.comment(
        "created", number=7, sender="colesbury", body="/gatekeeper approve"
    )
    first = apply(world, "issue_comment", payload, "d-1")
    assert (first.status, first.outcome) == (202, "deferred")
    assert stored(world)["d-1"].payload == payload
    assert apply(world, "issue_comment", payload, "d-1").outcome == "deferred"
    world.work()  # reads the pull request from GitHub, then replays the delivery
    assert stored(world)["d-1"].outcome == "processed"
    assert world.pull().gate == "approved"
