"""``deliveries``: the door stores a delivery as it came and answers at once; the worker applies
each stored delivery once, takes a replayed body for what it is, and keeps one that cannot be
applied as failed without holding up those behind it.

Called as the webhook view and the worker call them, with the app's own session and settings,
against the fake GitHub; payloads are GitHub's examples (``webhook_events``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from gate_support import REPO, World
from gatekeeper import deliveries, handlers, settings_of
from gatekeeper.models import Delivery

HEAD = "a" * 40


def receive(world: World, event: str, payload: dict[str, Any], delivery_id: str):
    """Store ``payload`` as the view does: its body, with the SHA-256 of it as its digest."""
    body = json.dumps(payload).encode()
    with world.app.app_context(), world.session() as session:
        return deliveries.receive(
            session,
            settings_of(world.app),
            event=event,
            delivery_id=delivery_id,
            body=body,
            payload=payload,
            digest=hashlib.sha256(body).hexdigest(),
        )


def apply_next(world: World) -> deliveries.Applied | None:
    """Have the worker apply the oldest stored delivery."""
    with world.app.app_context(), world.session() as session:
        return deliveries.apply_next(session, settings_of(world.app))


def opened(world: World, number: int = 7) -> dict[str, Any]:
    """A mentee's pull request on the fake GitHub, and its ``opened`` payload."""
    world.fake.add_pull(REPO, number, author="mpage", head_sha=HEAD)
    return world.events.pull_request(
        "opened", number=number, author="mpage", head_sha=HEAD, updated_at=world.tick()
    )


def stored(world: World) -> dict[str, Delivery]:
    with world.session() as session:
        return {d.delivery_id: d for d in session.exec(select(Delivery))}


def test_a_delivery_is_stored_as_it_came_and_applied_by_the_worker(world):
    """The door answers 202 with the body stored and nothing decided; the worker then applies
    it (the pull request is gated) and lets the body go."""
    world.promote()
    payload = opened(world)
    answer = receive(world, "pull_request", payload, "d-1")
    assert (answer.status, answer.outcome) == (202, "queued")
    assert world.pull_or_none() is None
    assert json.loads(stored(world)["d-1"].body or b"") == payload
    applied = apply_next(world)
    assert applied is not None and (applied.delivery_id, applied.outcome) == ("d-1", "processed")
    assert world.pull().gate == "waiting"
    assert stored(world)["d-1"].body is None
    assert apply_next(world) is None  # nothing else waits


def test_the_same_delivery_id_again_is_a_duplicate_or_still_queued(world):
    """GitHub's redelivery of a delivery still waiting is answered 202 with where it is, and of
    one applied 200 ``duplicate``: stored once, applied once."""
    world.promote()
    payload = opened(world)
    receive(world, "pull_request", payload, "d-1")
    waiting = receive(world, "pull_request", payload, "d-1")
    assert (waiting.status, waiting.outcome) == (202, "queued")
    apply_next(world)
    again = receive(world, "pull_request", payload, "d-1")
    assert (again.status, again.outcome) == (200, "duplicate")
    assert apply_next(world) is None
    assert [d.outcome for d in stored(world).values()] == ["processed"]


def test_the_same_body_under_another_delivery_id_is_a_replay_not_applied(world):
    """A signed body sent again under a new delivery id (the signature covers the body, not
    the id) is stored, and the worker records it as a replay without applying it."""
    world.promote()
    world.open_pull(head_sha=HEAD)
    payload = world.events.comment(
        "created", number=7, sender="colesbury", body="/gatekeeper approve",
        created_at=world.tick(),
    )  # fmt: skip
    receive(world, "issue_comment", payload, "d-1")
    assert apply_next(world).outcome == "processed"
    assert receive(world, "issue_comment", payload, "d-2").outcome == "queued"
    assert apply_next(world).outcome == "replay"
    assert world.audit_kinds().count("approval") == 1
    assert {k: d.outcome for k, d in stored(world).items()}["d-2"] == "replay"


def test_an_event_no_handler_wants_is_kept_as_ignored_at_the_door(world):
    """A kind of event Gatekeeper does not act on is answered 200 ``ignored`` and never
    queued for the worker."""
    payload = world.events.pull_request("labeled", number=7, author="mpage", head_sha=HEAD)
    answer = receive(world, "pull_request", payload, "d-1")
    assert (answer.status, answer.outcome) == (200, "ignored")
    assert stored(world)["d-1"].body is None
    assert apply_next(world) is None


def test_an_envelope_that_makes_no_sense_is_refused_at_the_door(world):
    """A repository name GitHub would never send: 422 at once, kept as failed with why."""
    payload = opened(world)
    payload["repository"]["full_name"] = "not a repository"
    answer = receive(world, "pull_request", payload, "d-1")
    assert (answer.status, answer.outcome) == (422, "failed")
    delivery = stored(world)["d-1"]
    assert delivery.outcome == "failed" and "repository" in (delivery.error or "")
    assert apply_next(world) is None


def test_a_payload_its_handler_cannot_read_is_refused_at_the_door(world):
    """A pull request without its head: read at the door as its handler would read it,
    it is refused with 422 and why, kept as failed with its body, and never queued."""
    world.promote()
    payload = opened(world)
    del payload["pull_request"]["head"]
    answer = receive(world, "pull_request", payload, "d-1")
    assert (answer.status, answer.outcome) == (422, "failed")
    assert "head" in answer.fields["error"]
    delivery = stored(world)["d-1"]
    assert "head" in (delivery.error or "") and delivery.body is not None
    assert apply_next(world) is None and world.pull_or_none() is None


def test_a_comment_that_says_nothing_to_gatekeeper_is_ignored_at_the_door(world):
    """Most comments are conversation: answered 200 ``ignored``, never queued."""
    world.promote()
    world.open_pull(head_sha=HEAD)
    payload = world.events.comment("created", number=7, sender="colesbury", body="Looks good!")
    answer = receive(world, "issue_comment", payload, "d-1")
    assert (answer.status, answer.outcome) == (200, "ignored")
    assert apply_next(world) is None


def test_a_failed_delivery_sent_again_is_queued_again(world):
    """GitHub's "Redeliver" keeps the delivery id: a delivery that failed is queued afresh
    with the body sent now, and applied."""
    world.promote()
    payload = opened(world)
    broken = json.loads(json.dumps(payload))
    del broken["pull_request"]["head"]
    assert receive(world, "pull_request", broken, "d-1").outcome == "failed"
    answer = receive(world, "pull_request", payload, "d-1")
    assert (answer.status, answer.outcome) == (202, "queued")
    assert apply_next(world).outcome == "processed"
    assert world.pull().gate == "waiting"


def test_a_delivery_that_breaks_a_handler_does_not_hold_up_the_queue(world, monkeypatch):
    """A bug met while applying the oldest delivery keeps it as failed (with the error's
    kind) and the worker goes on to the next one."""
    world.promote()

    def broken(_ctx: handlers.Context) -> handlers.Touched:
        raise RuntimeError("a bug")

    receive(world, "pull_request", opened(world, 7), "d-1")
    receive(world, "pull_request", opened(world, 8), "d-2")
    opened_key = ("pull_request", "opened")
    with monkeypatch.context() as patch:
        registered = dataclasses.replace(handlers.HANDLERS[opened_key], handler=broken)
        patch.setitem(handlers.HANDLERS, opened_key, registered)
        first = apply_next(world)
    assert first is not None and (first.delivery_id, first.outcome) == ("d-1", "failed")
    assert stored(world)["d-1"].error == "RuntimeError"
    assert apply_next(world).outcome == "processed"
    assert world.pull(8).gate == "waiting"


def test_a_deferred_delivery_waits_until_its_pull_request_is_read(world):
    """A mentor's approving comment on a pull request Gatekeeper has not seen is deferred
    when applied (body kept); sent again it is still waiting; the worker reads the pull
    request from GitHub, then applies it."""
    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    payload = world.events.comment(
        "created", number=7, sender="colesbury", body="/gatekeeper approve"
    )
    receive(world, "issue_comment", payload, "d-1")
    assert apply_next(world).outcome == "deferred"
    assert json.loads(stored(world)["d-1"].body or b"") == payload
    again = receive(world, "issue_comment", payload, "d-1")
    assert (again.status, again.outcome) == (202, "deferred")
    world.work()  # reads the pull request from GitHub, then applies the delivery
    assert stored(world)["d-1"].outcome == "processed"
    assert world.pull().gate == "approved"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_never_take_the_same_delivery(world):
    """While one worker holds the oldest delivery in its transaction, another takes the next
    one (PostgreSQL's SKIP LOCKED), and none is applied twice."""
    world.promote()
    receive(world, "pull_request", opened(world, 7), "d-1")
    receive(world, "pull_request", opened(world, 8), "d-2")
    with world.session() as first, world.session() as second, world.session() as third:
        held, taken = deliveries.claim(first), deliveries.claim(second)
        assert held is not None and taken is not None
        assert (held.delivery.delivery_id, taken.delivery.delivery_id) == ("d-1", "d-2")
        assert deliveries.claim(third) is None
        first.rollback()
        second.rollback()
    assert [apply_next(world).delivery_id for _ in range(2)] == ["d-1", "d-2"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_door_stores_a_delivery_without_a_transaction_around_it(world):
    """On PostgreSQL the door's one statement runs alone (autocommit), so a delivery costs
    one round trip to the database, not three (BEGIN, the INSERT, COMMIT)."""
    world.promote()
    engine = world.app.extensions["gatekeeper.engine"]
    autocommit: list[bool] = []

    def record(connection, _cursor, _statement, *_rest) -> None:
        autocommit.append(connection.connection.dbapi_connection.autocommit)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert receive(world, "pull_request", opened(world), "d-1").status == 202
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert autocommit == [True]
    assert stored(world)["d-1"].outcome == "queued"
