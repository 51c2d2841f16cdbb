"""Hostile deliveries: each reproduces a hole an attacker (or a strange payload) found.

Signed but malformed payloads are refused with a 4xx and a reason, never a 5xx; a captured
button press cannot be replayed; a comment approves only what its author saw, and only when
the command is theirs, not a quotation.
"""

from __future__ import annotations

import io
import json

import pytest
from sqlmodel import select

from fakegithub import default_user_id
from gate_support import REPO, SECRET
from gatekeeper.models import Delivery, Review, utcnow
from webhook_events import deliver, example, signed

HEAD, NEWER = "a" * 40, "b" * 40


def post_raw(world, event: str, body: bytes, delivery_id: str = "raw-1"):
    return world.client.post(
        "/webhooks/github",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-Hub-Signature-256": signed(SECRET, body),
        },
    )


# ---------------------------------------------------------------- malformed, but signed


def opened_with(world, **changes) -> dict:
    payload = world.events.pull_request("opened", number=7, author="mpage", head_sha=HEAD)
    for path, value in changes.items():
        target = payload
        *parents, last = path.split("__")
        for key in parents:
            target = target[key]
        target[last] = value
    return payload


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sender": "x"}, "sender is not an object"),
        ({"action": 5}, "payload.action is not a string"),
        ({"installation__id": 9223372036854775808}, "installation.id is not a positive integer"),
        ({"pull_request__title": {"a": 1}}, "pull_request.title is not a string"),
        (
            {"pull_request__title": "a\x00b"},
            "pull_request.title holds a character that is not text",
        ),
        (
            {"pull_request__title": "\ud800"},
            "pull_request.title holds a character that is not text",
        ),
        ({"pull_request__number": True}, "pull_request.number is not a positive integer"),
        ({"pull_request__head__sha": None}, "head.sha is not a string"),
        ({"pull_request__user__login": "no spaces"}, "user.login is not a valid value"),
        ({"repository__full_name": "../../etc"}, "repository.full_name is not a valid value"),
    ],
    ids=lambda value: str(value)[:40],
)
def test_a_malformed_signed_delivery_is_refused_with_why(world, changes, reason):
    """A delivery that does not fit its typed view is a 422 with the one-line reason, stored as
    failed, and nothing else is written."""
    world.promote()
    response = deliver(world.client, "pull_request", opened_with(world, **changes), secret=SECRET)
    assert response.status_code == 422, response.get_json()
    assert reason in response.get_json()["error"]
    with world.session() as session:
        [delivery] = session.exec(select(Delivery)).all()
        assert delivery.outcome == "failed" and reason in delivery.error
    assert world.pending_posts() == 0


def test_json_nested_a_thousand_levels_is_a_400(world):
    """Deep nesting is not JSON the app can use: 400, not a RecursionError."""
    body = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert post_raw(world, "pull_request", body).status_code == 400


def test_a_chunked_body_over_25_mib_is_413(world):
    """A body without a length (chunked) is read up to the limit, then refused whole: its
    prefix is never signature-checked or parsed."""
    body = b" " * (25 * 2**20 + 1)
    response = world.client.post(
        "/webhooks/github",
        input_stream=io.BytesIO(body),
        headers={
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": "big",
            "X-Hub-Signature-256": signed(SECRET, body[: 25 * 2**20]),
            "Transfer-Encoding": "chunked",
        },
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413


def test_delivery_ids_are_kept_whole(world):
    """Two ids sharing a long prefix are two deliveries; an absurdly long id is a 400."""
    world.promote()
    prefix = "x" * 64
    world.open_pull(7)
    payload = world.events.pull_request(
        "synchronize", number=7, author="mpage", head_sha=NEWER, updated_at=world.tick()
    )
    world.fake.push(REPO, 7, NEWER)
    world.send("pull_request", opened_with(world), delivery_id=prefix + "-1")
    world.send("pull_request", payload, delivery_id=prefix + "-2")
    assert {world.delivery(prefix + end).outcome for end in ("-1", "-2")} == {"processed"}
    assert world.pull().head_sha == NEWER
    long_id = deliver(world.client, "ping", example("ping", "ping"), delivery_id="y" * 300)
    assert long_id.status_code == 400


# ---------------------------------------------------------------- comments


def comment(world, body: str, *, comment_id: int = 9001, created_at: str | None = None):
    payload = world.events.comment("created", number=7, sender="colesbury", body=body,
                                   comment_id=comment_id)  # fmt: skip
    if created_at is not None:
        payload["comment"]["created_at"] = created_at
    return world.send("issue_comment", payload)


@pytest.mark.parametrize(
    "body",
    [
        "Not yet!\n```\n/gatekeeper approve\n```",
        "~~~\n/gatekeeper approve\n~~~",
        "> /gatekeeper approve\n\nSomeone said that; I don't.",
        "    /gatekeeper approve",
        "/gatekeeper\u00a0approve",
        "/gatekeeper approve please",
        "Please `/gatekeeper approve`",
    ],
    ids=["fenced", "tilde-fenced", "quoted", "indented", "no-break-space", "trailing", "inline"],
)
def test_a_quoted_or_fenced_command_does_not_approve(world, body):
    """Only a line that is exactly the command, outside code and quotes, counts."""
    world.promote()
    world.open_pull(7)
    comment(world, body)
    assert world.pull().gate == "waiting"
    assert world.check()["conclusion"] == "action_required"


def test_the_command_on_a_line_of_its_own_approves(world):
    """After a fenced block closes, the command on its own line is the mentor's own."""
    world.promote()
    world.open_pull(7)
    comment(world, "Looks good.\n```\ncode\n```\n  /Gatekeeper Approve  ")
    assert world.check()["conclusion"] == "success"


def test_a_comment_approves_the_head_it_was_written_on(world):
    """Written on commit A, delivered after a push to B: it approves A, and B still waits."""
    world.promote()
    world.open_pull(7)
    written = world.tick()
    world.push(7, head_sha=NEWER)
    comment(world, "/gatekeeper approve", created_at=written)
    assert world.pull().head_sha == NEWER and world.pull().gate == "waiting"
    assert world.check(NEWER)["conclusion"] == "action_required"
    with world.session() as session:
        [approval] = session.exec(select(Review).where(Review.source == "comment")).all()
    assert approval.commit_id == HEAD


# ---------------------------------------------------------------- the button


def press(world, *, head_sha: str = HEAD, completed_at: str | None = None) -> dict:
    payload = world.events.check_run(
        "requested_action", number=7, head_sha=head_sha, sender="colesbury",
        app_id=world.fake.app_id,
    )  # fmt: skip
    payload["check_run"]["completed_at"] = completed_at or world.tick()
    return payload


def test_a_replayed_button_press_changes_nothing(world):
    """A captured, correctly signed press sent again under a new delivery id, after the mentor
    asked for changes, is acknowledged as a replay and approves nothing."""
    world.promote()
    world.open_pull(7)
    body = json.dumps(press(world)).encode()
    assert post_raw(world, "check_run", body, "press-1").status_code == 202
    world.work()
    assert world.check()["conclusion"] == "success"
    world.review(7, state="changes_requested", review_id=2)
    assert world.check()["conclusion"] == "action_required"
    assert post_raw(world, "check_run", body, "press-2").status_code == 202
    world.work()
    assert world.delivery("press-2").outcome == "replay"
    assert world.pull().gate == "waiting"
    with world.session() as session:
        assert len(session.exec(select(Review).where(Review.source == "button")).all()) == 1


def test_a_press_is_dated_by_the_run_not_by_the_server_clock(world):
    """A press of a run GitHub completed before a later "changes requested" is older than it,
    however late the delivery arrives."""
    world.promote()
    world.open_pull(7)
    stale = press(world, completed_at=world.tick())
    world.review(7, state="changes_requested", review_id=2)
    world.send("check_run", stale)
    assert world.pull().gate == "waiting"


def test_a_changes_request_in_the_same_second_as_an_approval_wins(world):
    """GitHub stamps whole seconds while an approval given here carries microseconds; they are
    compared at GitHub's precision, and within one second a request for changes is the
    reviewer's last word."""
    from gatekeeper import approvals, outbox, settings_of
    from gatekeeper import pulls as store

    world.promote()
    world.open_pull(7)
    moment = utcnow().replace(microsecond=700_000)
    with world.app.app_context(), world.session() as session:
        pull = store.find_pull(session, repo=REPO, number=7, lock=True)
        settings = settings_of(world.app)
        _refusal, touched = approvals.approve(
            session,
            pull,
            login="colesbury",
            user_id=default_user_id("colesbury"),
            source="dashboard",
            settings=settings,
            now=moment,
        )
        outbox.commit_gates(session, touched, settings=settings, now=moment)
        session.commit()
    assert world.pull().gate == "approved"
    world.review(
        7, reviewer="colesbury", state="changes_requested", review_id=2,
        submitted_at=f"{moment:%Y-%m-%dT%H:%M:%SZ}",
    )  # fmt: skip
    assert world.pull().gate == "waiting"


@pytest.mark.parametrize(
    ("event", "dropped"),
    [("pull_request", "pull_request"), ("pull_request_review", "pull_request"),
     ("pull_request_review", "review")],
)  # fmt: skip
def test_a_delivery_missing_its_object_is_a_422(world, event, dropped):
    """The fuzzer's find: a pull_request or review event without its pull request or review
    object is refused with why, not a KeyError's 500."""
    if event == "pull_request":
        payload = world.events.pull_request("opened", number=7, author="mpage", head_sha=HEAD)
    else:
        payload = world.events.review("submitted", number=7, author="mpage", head_sha=HEAD,
                                      reviewer="colesbury", state="approved", review_id=1)  # fmt: skip
    del payload[dropped]
    response = deliver(world.client, event, payload, secret=SECRET)
    assert response.status_code == 422
    assert f"payload.{dropped} is missing" in response.get_json()["error"]
