"""The webhook endpoint: signatures first, then headers and body, delivery log and replays."""

from __future__ import annotations

import io
import json
import tracemalloc

import pytest
from sqlmodel import select

from gate_support import REPO, SECRET
from gatekeeper.models import Delivery, PullRequest
from webhook_events import deliver, example, signed


def post(client, body: bytes, headers: dict):
    return client.post("/webhooks/github", data=body, headers=headers)


def good_headers(body: bytes, **changes):
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "d-1",
        "X-Hub-Signature-256": signed(SECRET, body),
    }
    headers.update(changes)
    return {k: v for k, v in headers.items() if v is not None}


def deliveries(world):
    with world.session() as session:
        return list(session.exec(select(Delivery)))


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=" + "0" * 64, "sha1=abc", signed("another-secret", b"{}")],
    ids=["missing", "empty", "wrong", "sha1", "other-secret"],
)
def test_bad_signature_is_401_and_nothing_recorded(world, signature):
    """Without the right HMAC-SHA256 the body is not even parsed, and no delivery is stored."""
    body = json.dumps(example("ping", "ping")).encode()
    response = post(world.client, body, good_headers(body, **{"X-Hub-Signature-256": signature}))
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.get_json()["error"]
    assert deliveries(world) == []


def test_signature_checked_before_json(world):
    """A body that is not JSON with a wrong signature is 401, not 400: nothing is parsed first."""
    response = post(world.client, b"not json", good_headers(b"x"))
    assert response.status_code == 401


def test_signed_body_that_is_not_json_is_400(world):
    """A correctly signed body that is not JSON is refused with 400."""
    response = post(world.client, b"not json", good_headers(b"not json"))
    assert response.status_code == 400
    assert response.get_json()["error"] == "the body is not JSON"


@pytest.mark.parametrize("missing", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_missing_event_headers_are_400(world, missing):
    """Deliveries without event name or delivery id are refused."""
    body = b"{}"
    response = post(world.client, body, good_headers(body, **{missing: None}))
    assert response.status_code == 400
    assert missing in response.get_json()["error"]


def test_body_over_25_mib_is_413(world):
    """GitHub caps payloads at 25 MiB; anything larger is refused before reading it all."""
    body = b" " * (25 * 1024 * 1024 + 1)
    response = post(world.client, body, good_headers(b"{}"))
    assert response.status_code == 413


class Zeros(io.RawIOBase):
    """A body of ``size`` zero bytes made as it is read, so that the test holds none of it."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # refused before the database
def test_an_unsigned_body_costs_a_chunk_of_memory_not_its_size(world):
    """24 MiB with a wrong signature: 401, and while it was read and refused the process's
    allocations never rose by more than a small fraction of the body (it went to disk)."""
    size = 24 * 2**20
    body = {"wsgi.input": Zeros(size), "CONTENT_LENGTH": str(size)}
    tracemalloc.start()
    try:
        response = world.client.post(
            "/webhooks/github", headers=good_headers(b"{}"), environ_overrides=body
        )
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 401
    assert peak < size // 8, f"{peak / 2**20:.1f} MiB held for a {size // 2**20} MiB body"


def test_a_signed_body_larger_than_the_spool_is_applied(world):
    """A signed delivery of 3 MiB (padded with whitespace, as JSON allows), spooled to disk
    while it was checked, is read back whole and processed."""
    body = json.dumps(example("ping", "ping")).encode() + b" " * 3 * 2**20
    response = post(world.client, body, good_headers(body))
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "ignored"
    [delivery] = deliveries(world)
    assert delivery.event == "ping"


@pytest.mark.parametrize("size", [10, 3 * 2**20], ids=["small", "spooled"])
def test_a_signed_body_that_is_malformed_json_is_400(world, size):
    """A correctly signed body that stops half-way through its JSON is a 400 saying so, in
    memory or spooled, never a 5xx; nothing is recorded."""
    body = b'{"zen": "' + b"x" * size
    response = post(world.client, body, good_headers(body))
    assert response.status_code == 400
    assert response.get_json()["error"] == "the body is not JSON"
    assert deliveries(world) == []


def test_unknown_event_is_acknowledged_and_logged(world):
    """Events Gatekeeper does not use get a 2xx and are recorded as ignored."""
    response = deliver(world.client, "ping", example("ping", "ping"), delivery_id="ping-1")
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "ignored"
    [delivery] = deliveries(world)
    assert (delivery.delivery_id, delivery.event, delivery.outcome) == ("ping-1", "ping", "ignored")
    assert delivery.processed_at is not None


def test_unknown_action_is_ignored(world):
    """A known event with an action we do not handle (labeled) is ignored with 2xx."""
    payload = world.events.pull_request("labeled", number=7, author="mpage", head_sha="a" * 40)
    response = deliver(world.client, "pull_request", payload)
    assert response.get_json()["outcome"] == "ignored"
    with world.session() as session:
        assert session.exec(select(PullRequest)).all() == []


def test_delivery_is_recorded_with_installation(world):
    """A processed delivery keeps its event, action, installation and outcome."""
    world.promote()
    world.open_pull()
    [delivery] = deliveries(world)
    assert (delivery.event, delivery.action, delivery.installation_id) == (
        "pull_request",
        "opened",
        1,
    )
    assert delivery.outcome == "processed" and delivery.error is None


def test_replayed_delivery_is_not_applied_twice(world):
    """GitHub's redelivery reuses the id: it is acknowledged and changes nothing, no API call."""
    world.promote()
    payload = world.events.pull_request("opened", number=7, author="mpage", head_sha="a" * 40)
    world.fake.add_pull(REPO, 7, author="mpage", head_sha="a" * 40)
    world.send("pull_request", payload, delivery_id="same")
    calls = len(world.fake.calls)
    response = world.send("pull_request", payload, delivery_id="same")
    assert response.get_json()["outcome"] == "duplicate"
    assert len(world.fake.calls) == calls
    assert len(deliveries(world)) == 1


def test_events_from_our_own_bot_are_ignored(world):
    """Our bot's own actions (e.g. requesting reviews) come back as events; they need no answer."""
    world.promote()
    payload = world.events.pull_request(
        "edited", number=7, author="mpage", head_sha="a" * 40, sender=world.fake.bot_login
    )
    response = world.send("pull_request", payload)
    assert response.get_json()["outcome"] == "ignored"


def test_payload_missing_fields_is_recorded_as_failed(world):
    """A signed payload we cannot understand is a 4xx with the delivery marked failed, no traceback."""
    payload = world.events.pull_request("opened", number=7, author="mpage", head_sha="a" * 40)
    del payload["pull_request"]["head"]
    response = deliver(world.client, "pull_request", payload, delivery_id="broken")
    assert response.status_code == 422
    assert "Traceback" not in response.get_data(as_text=True)
    [delivery] = deliveries(world)
    assert delivery.outcome == "failed" and "head" in delivery.error


def test_webhook_secret_missing_is_503(tmp_path, github_fake):
    """Without GITHUB_WEBHOOK_SECRET no delivery can be trusted: 503, saying what is missing."""
    from gate_support import app_for

    app = app_for(github_fake, f"sqlite:///{tmp_path / 'x.sqlite'}", github_webhook_secret=None)
    response = deliver(app.test_client(), "ping", example("ping", "ping"))
    assert response.status_code == 503
    assert "GITHUB_WEBHOOK_SECRET" in response.get_json()["error"]
    app.extensions["gatekeeper.github"].close()
    app.extensions["gatekeeper.engine"].dispose()


def test_a_delivery_never_calls_github(world):
    """The 202 goes out with the delivery stored and nothing decided; applying it asks
    nothing of GitHub either, and commits the gate with its commit's desired check. The
    worker then posts it."""
    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha="a" * 40)
    payload = world.events.pull_request("opened", number=7, author="mpage", head_sha="a" * 40)
    world.fake.reset_calls()
    response = deliver(world.client, "pull_request", payload)
    assert (response.status_code, response.get_json()["outcome"]) == (202, "queued")
    assert world.pull_or_none() is None and world.pending_posts() == 0
    world.apply()
    assert world.fake.calls == []
    assert world.pull().gate == "waiting" and world.pending_posts() == 1
    world.work()
    assert world.check()["conclusion"] == "action_required"
    assert world.pending_posts() == 0


def test_non_ascii_signature_is_401(world):
    """A signature header that is not ASCII is simply wrong, not a server error."""
    body = b"{}"
    response = post(world.client, body, good_headers(body, **{"X-Hub-Signature-256": "sha256=é"}))
    assert response.status_code == 401


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_race_for_the_same_new_pull_request_is_retried(world):
    """Two deliveries creating the same PR at once: the loser retries and is applied, not lost."""
    import sqlalchemy as sa

    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha="a" * 40)
    engine = world.app.extensions["gatekeeper.engine"]
    raced = []

    def insert_first(conn, cursor, statement, parameters, context, executemany):
        # Just before our INSERT of the pull request, a "concurrent request" commits the same row.
        if statement.startswith("INSERT INTO pullrequest") and not raced:
            raced.append(True)
            with engine.connect() as other:
                other.execute(
                    sa.text(
                        "INSERT INTO pullrequest (repo, number, author, author_display, title, url,"
                        " head_sha, base_ref, draft, state, merged, first_seen_at, gate, gate_title,"
                        " gate_summary, approved_by, reviews_requested)"
                        " VALUES (:repo, 7, 'mpage', 'mpage', '', '', :sha, 'main', false, 'open',"
                        " false, now(), 'not_required', '', '', '[]', false)"
                    ),
                    {"repo": REPO, "sha": "a" * 40},
                )
                other.commit()

    sa.event.listen(engine, "before_cursor_execute", insert_first)
    try:
        response = world.open_pull()
    finally:
        sa.event.remove(engine, "before_cursor_execute", insert_first)
    assert raced and response.get_json()["outcome"] == "queued"
    assert [d.outcome for d in deliveries(world)] == ["processed"]
    assert world.pull().gate == "waiting"
    assert world.check()["conclusion"] == "action_required"


# ---------------------------------------------------------------- GitHub slow, database down


def test_every_kind_of_delivery_is_answered_without_asking_a_slow_github(world):
    """With GitHub answering every call after 5 s, no delivery waits for it: not even those
    about a pull request never seen (kept and applied once the worker has asked GitHub)."""
    world.promote()
    for number in (7, 8, 9, 10):
        world.fake.add_pull(REPO, number, author="mpage", head_sha=f"{number:040x}")
    world.fake.latency(all=5.0)
    world.fake.reset_calls()
    deliveries = [
        (
            "pull_request",
            world.events.pull_request("opened", number=7, author="mpage", head_sha=f"{7:040x}"),
        ),
        (
            "check_run",
            world.events.check_run(
                "requested_action",
                number=8,
                head_sha=f"{8:040x}",
                sender="colesbury",
                app_id=world.fake.app_id,
            ),
        ),
        (
            "issue_comment",
            world.events.comment(
                "created",
                number=9,
                sender="colesbury",
                body="/gatekeeper approve",
            ),
        ),
        ("check_suite", world.events.check_suite("requested", head_sha=f"{10:040x}", numbers=[10])),
    ]
    answers = [world.send(event, payload, work=False) for event, payload in deliveries]
    assert world.fake.calls == []  # nothing was asked of GitHub, answering or applying
    assert {a.get_json()["outcome"] for a in answers} == {"queued"}
    assert [d.outcome for d in deliveries_of(world)] == [
        "processed",
        "deferred",
        "deferred",
        "processed",
    ]
    world.fake.latency()  # GitHub answers again
    world.work()
    assert world.check(f"{7:040x}")["conclusion"] == "action_required"
    assert world.check(f"{8:040x}")["conclusion"] == "success"  # the button, applied late
    assert world.check(f"{9:040x}")["conclusion"] == "success"  # the comment, applied late
    assert world.check(f"{10:040x}")["conclusion"] == "action_required"
    assert {d.outcome for d in deliveries_of(world)} == {"processed"}


def deliveries_of(world):
    from gatekeeper.models import Delivery

    with world.session() as session:
        return list(session.exec(select(Delivery)))


def deadlock_on_insert(engine, table: str) -> None:
    """Make every INSERT into ``table`` fail as a deadlock that never resolves would."""
    import sqlalchemy as sa

    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE FUNCTION deadlock() RETURNS trigger AS $$ BEGIN"
                " RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$ LANGUAGE plpgsql"
            )
        )
        connection.execute(
            sa.text(f"CREATE TRIGGER deadlock BEFORE INSERT ON {table} EXECUTE FUNCTION deadlock()")
        )


def deadlock_over(engine, table: str) -> None:
    import sqlalchemy as sa

    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TRIGGER deadlock ON {table}"))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_database_that_keeps_failing_answers_503_and_keeps_nothing(world):
    """A deadlock that does not resolve (or a lost connection) at the door is a 503 with
    JSON, so GitHub lists the delivery as failed and the sweep asks for it again; a
    redelivery then is stored and applied."""
    world.promote()
    engine = world.app.extensions["gatekeeper.engine"]
    deadlock_on_insert(engine, "delivery")
    world.fake.add_pull(REPO, 7, author="mpage", head_sha="a" * 40)
    payload = world.events.pull_request("opened", number=7, author="mpage", head_sha="a" * 40)
    response = deliver(world.client, "pull_request", payload, delivery_id="d-1", secret=SECRET)
    assert response.status_code == 503
    assert response.get_json() == {
        "delivery": "d-1",
        "outcome": "retry",
        "error": "database unavailable; redeliver",
    }
    assert deliveries_of(world) == [] and world.pending_posts() == 0
    deadlock_over(engine, "delivery")
    world.send("pull_request", payload, delivery_id="d-1")
    assert world.check()["conclusion"] == "action_required"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_database_failing_while_the_worker_applies_keeps_the_delivery_queued(world):
    """A deadlock that does not resolve while the worker applies a delivery leaves nothing
    half done and the delivery queued, tried again after a backoff; once the database
    recovers the worker applies it."""
    world.promote()
    engine = world.app.extensions["gatekeeper.engine"]
    world.fake.add_pull(REPO, 7, author="mpage", head_sha="a" * 40)
    payload = world.events.pull_request("opened", number=7, author="mpage", head_sha="a" * 40)
    deadlock_on_insert(engine, "pullrequest")
    world.send("pull_request", payload, delivery_id="d-1", work=False)
    [queued] = deliveries_of(world)
    assert (queued.outcome, queued.attempts, queued.error) == ("queued", 1, "Busy")
    assert world.pull_or_none() is None and world.pending_posts() == 0
    deadlock_over(engine, "pullrequest")
    world.retry_now()
    world.work()
    assert [d.outcome for d in deliveries_of(world)] == ["processed"]
    assert world.check()["conclusion"] == "action_required"
