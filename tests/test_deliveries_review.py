"""``deliveries``, reviewed: two workers never apply one signed body twice; a deferred
delivery whose row is held for a moment is still applied once its pull request is read; the
door refuses what the handler could not act on; a deferred delivery is timed once; migration
0016 keeps a delivery in every state, both ways.

The concurrency tests run on PostgreSQL only: there workers apply deliveries side by side
(SQLite has one writer at a time, so its workers take turns). A worker's transaction is held open by locking a row it
needs from a third session; the test waits until PostgreSQL shows the worker waiting on it
(never a timed wait), then lets it go.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlmodel import select
from test_deliveries import HEAD, apply_next, receive, stored

from gate_support import REPO, World
from gatekeeper import deliveries
from gatekeeper.models import PullRequest, utcnow

ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

HANG_GUARD = 120.0  # seconds: only a broken test waits this long


def waiting_backends(world: World) -> int:
    """How many connections wait for a lock another transaction holds."""
    with world.session() as session:
        return session.execute(
            sa.text("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted")
        ).scalar_one()


def until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition`` holds (a guard against a hang, not a measured time)."""
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, "the workers never reached the expected state"
        time.sleep(0.05)


def in_thread(work: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


@ON_POSTGRESQL
def test_the_same_body_under_two_ids_is_applied_once_by_two_workers(world):
    """A mentor's approving comment arrives under two delivery ids (a replayed body). Two
    workers take the queue at the same moment: one applies it, the other records a replay,
    even while the first has not committed yet."""
    world.promote()
    world.open_pull(head_sha=HEAD)
    payload = world.events.comment(
        "created", number=7, sender="colesbury", body="/gatekeeper approve",
        created_at=world.tick(),
    )  # fmt: skip
    receive(world, "issue_comment", payload, "d-1")
    receive(world, "issue_comment", payload, "d-2")
    with world.session() as holder:
        # The pull request's row, held by a dashboard action say: the first worker's
        # application waits for it with its claim of d-1 held.
        holder.exec(select(PullRequest).where(PullRequest.repo == REPO).with_for_update()).all()
        first = in_thread(lambda: apply_next(world))
        until(lambda: waiting_backends(world) == 1)
        second = in_thread(lambda: apply_next(world))
        until(lambda: waiting_backends(world) == 2 or not second.is_alive())
        holder.commit()
    first.join(HANG_GUARD)
    second.join(HANG_GUARD)
    while apply_next(world) is not None:
        pass
    outcomes = sorted(d.outcome for d in stored(world).values() if d.event == "issue_comment")
    assert outcomes == ["processed", "replay"]
    assert world.audit_kinds().count("approval") == 1


@ON_POSTGRESQL
def test_a_deferred_delivery_held_for_a_moment_is_still_applied(world):
    """GitHub redelivers a deferred delivery's id at the moment the worker, having read its
    pull request, applies it: the door's upsert locks the row for its transaction. The worker
    waits for it rather than taking the delivery for one no longer waiting, which would
    leave it deferred with no job to apply it ever."""
    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    payload = world.events.comment(
        "created", number=7, sender="colesbury", body="/gatekeeper approve"
    )
    receive(world, "issue_comment", payload, "d-1")
    assert apply_next(world).outcome == "deferred"
    kept = stored(world)["d-1"]
    with world.app.app_context(), world.session() as door:
        # The door's statement for the same id again, its transaction not ended yet.
        row = {
            "delivery_id": "d-1", "event": "issue_comment", "action": "created",
            "installation_id": kept.installation_id, "received_at": utcnow(),
            "outcome": "queued", "processed_at": None, "body": kept.body,
            "body_digest": kept.body_digest, "error": None, "attempts": 0, "retry_at": None,
        }  # fmt: skip
        assert deliveries._store(door, row) == (False, "deferred")
        worker = in_thread(world.work)
        until(lambda: waiting_backends(world) == 1 or not worker.is_alive())
        door.commit()
    worker.join(HANG_GUARD)
    world.work()
    assert stored(world)["d-1"].outcome == "processed"
    assert world.pull().gate == "approved"


DEFERRED_PAYLOAD = {"action": "created", "comment": {"body": "/gatekeeper approve — ok"}}


def test_migration_0016_keeps_every_delivery_down_and_up(database_url):
    """Upgraded with a delivery in each state 0015 knew, a deferred one keeps its payload as
    its body; downgraded with one in each state 0016 knows, a queued one becomes failed with
    its payload, and every row survives both ways."""
    from alembic import command

    from gatekeeper import db
    from gatekeeper.config import normalise_database_url

    url = normalise_database_url(database_url)
    config = db.alembic_config(url)
    command.upgrade(config, "0015")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    insert = sa.text(
        "INSERT INTO delivery (delivery_id, event, received_at, outcome, payload)"
        " VALUES (:id, 'issue_comment', CURRENT_TIMESTAMP, :outcome, :payload)"
    )
    old = ["processed", "ignored", "failed", "deferred"]
    with engine.begin() as connection:
        for outcome in old:
            payload = json.dumps(DEFERRED_PAYLOAD) if outcome == "deferred" else None
            connection.execute(
                insert, {"id": f"old-{outcome}", "outcome": outcome, "payload": payload}
            )
    command.upgrade(config, "0016")
    with engine.begin() as connection:
        rows = dict(connection.execute(sa.text("SELECT delivery_id, body FROM delivery")).all())
        assert json.loads(rows.pop("old-deferred")) == DEFERRED_PAYLOAD
        assert set(rows.values()) == {None}
        connection.execute(
            sa.text(
                "INSERT INTO delivery (delivery_id, event, received_at, outcome, body, attempts)"
                " VALUES (:id, 'issue_comment', CURRENT_TIMESTAMP, :outcome, :body, 0)"
            ),
            [
                {
                    "id": f"new-{outcome}",
                    "outcome": outcome,
                    "body": json.dumps(DEFERRED_PAYLOAD).encode(),
                }
                for outcome in ("queued", "replay", "failed")
            ],
        )
    command.downgrade(config, "0015")
    with engine.begin() as connection:
        rows = {
            delivery_id: (outcome, payload)
            for delivery_id, outcome, payload in connection.execute(
                sa.text("SELECT delivery_id, outcome, payload FROM delivery")
            )
        }
    assert len(rows) == 7
    outcome, payload = rows["new-queued"]
    assert outcome == "failed"
    assert (json.loads(payload) if isinstance(payload, str) else payload) == DEFERRED_PAYLOAD
    command.upgrade(config, "head")
    engine.dispose()


@pytest.mark.parametrize("repository", [{}, {"id": 1296269}, {"full_name": ""}])
def test_a_repository_that_names_none_is_refused_at_the_door(world, repository):
    """A mentor's approving comment whose repository object names no repository: its handler
    cannot act on it, so the door answers 422 with why rather than 202 and a failure in the
    worker that GitHub never hears of."""
    world.promote()
    world.open_pull(head_sha=HEAD)
    payload = world.events.comment(
        "created", number=7, sender="colesbury", body="/gatekeeper approve"
    )
    payload["repository"] = repository
    answer = receive(world, "issue_comment", payload, "d-1")
    assert (answer.status, answer.outcome) == (422, "failed")
    assert "repository" in answer.fields["error"]
    assert apply_next(world) is None


@pytest.mark.parametrize("dropped", ["sender", "sender.login", "sender.id"])
def test_a_command_without_its_sender_is_refused_at_the_door(world, dropped):
    """``/gatekeeper approve`` is an approval in its sender's name: a comment that does not
    say who sent it is answered 422 with why, not queued to fail in the worker."""
    world.promote()
    world.open_pull(head_sha=HEAD)
    payload = world.events.comment(
        "created", number=7, sender="colesbury", body="/gatekeeper approve"
    )
    holder, _, key = ("payload." + dropped).rpartition(".")
    del (payload["sender"] if holder == "payload.sender" else payload)[key]
    answer = receive(world, "issue_comment", payload, "d-1")
    assert (answer.status, answer.outcome) == (422, "failed")
    assert "sender" in answer.fields["error"]
    assert apply_next(world) is None


def test_a_button_press_without_its_sender_is_refused_at_the_door(world):
    """The "Approve merge" button is pressed by someone: a ``requested_action`` that does not
    say who is answered 422, not queued to fail in the worker."""
    world.promote()
    world.open_pull(head_sha=HEAD)
    payload = world.events.check_run(
        "requested_action", number=7, head_sha=HEAD, sender="colesbury", app_id=world.fake.app_id
    )
    del payload["sender"]
    answer = receive(world, "check_run", payload, "d-1")
    assert (answer.status, answer.outcome) == (422, "failed")
    assert apply_next(world) is None


def test_a_deferred_delivery_is_timed_once_when_applied(world):
    """The queue-time histogram says how long deliveries waited to be applied: a delivery
    deferred for its pull request is observed once, when the worker applies it, not also
    when it was put aside (which would count one delivery twice, with a wait it never had)."""
    from test_metrics import delta, scrape

    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    payload = world.events.comment(
        "created", number=7, sender="colesbury", body="/gatekeeper approve"
    )
    before = scrape(world.client)
    receive(world, "issue_comment", payload, "d-1")
    assert apply_next(world).outcome == "deferred"
    world.work()
    after = scrape(world.client)
    assert world.delivery("d-1").outcome == "processed"
    assert delta(after, before, "gatekeeper_delivery_queue_seconds_count") == 1
    applied = "gatekeeper_deliveries_applied_total"
    assert delta(after, before, applied, event="issue_comment", outcome="processed") == 1
