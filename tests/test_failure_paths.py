"""When things fail half-way: a worker that dies after posting, a lease that runs out, a
GitHub that refuses for a moment, a database behind the code, a payload GitHub would not
send. Each test reproduces what a cold review of the outbox found, and proves it healed.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from gate_support import REPO, SECRET
from gatekeeper import handlers, outbox
from gatekeeper.models import CommitCheck, Delivery, Job, utcnow
from gatekeeper.worker import Worker
from webhook_events import deliver

HEAD, NEWER = "a" * 40, "b" * 40


def opened(world, number=7, head=HEAD):
    world.fake.add_pull(REPO, number, author="mpage", head_sha=head)
    payload = world.events.pull_request(
        "opened", number=number, author="mpage", head_sha=head, updated_at=world.tick()
    )
    world.send("pull_request", payload, work=False)


def test_a_worker_that_died_after_posting_leaves_no_second_run(world):
    """The POST succeeded, then the process died before recording it: once the lease ends,
    the next worker finds the run GitHub has and updates it."""
    world.promote()
    opened(world)
    with world.app.app_context(), world.session() as session:
        claimed = outbox.claim(session, now=utcnow())
        Worker(world.app).send(session, claimed)  # ... and never records it
    with world.session() as session:
        session.execute(
            sa.update(CommitCheck).values(claimed_until=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    world.work()
    assert len(world.fake.check_runs_for(REPO, HEAD, name="mentor-approval")) == 1
    assert world.pending_posts() == 0


def test_a_stale_claim_can_neither_record_nor_release(world):
    """A worker whose lease ran out (a hang) may still finish its post, but it cannot record
    it over, nor free, the claim of the worker that took over."""
    world.promote()
    opened(world)
    with world.session() as first, world.session() as second:
        stale = outbox.claim(first, now=utcnow())
        fresh = outbox.claim(second, now=utcnow() + outbox.LEASE + timedelta(seconds=1))
        assert stale and fresh and stale.version == fresh.version and fresh.may_exist
        assert outbox.record_posted(first, stale, run_id=1, now=utcnow()) is False
        assert outbox.record_posted(second, fresh, run_id=2, now=utcnow()) is True
    assert world.outbox().check_run_id == 2


def test_a_401_is_retried_not_given_up(world):
    """A token refused for a moment (401) is tried again; the approval reaches GitHub."""
    world.promote()
    world.open_pull(7)
    world.fake.fail_next("PATCH", r".*/check-runs/.*", status=401)
    world.review(7, reviewer="colesbury", head_sha=HEAD, review_id=1)
    assert not world.outbox().gave_up
    world.retry_now()
    world.work()
    assert world.check()["conclusion"] == "success"


def test_a_given_up_check_is_tried_again_by_the_next_decision(world):
    """A refusal for good stops retries of that version only: the same decision stored again
    (the sweep's) tries anew instead of trusting the refusal forever."""
    world.promote()
    world.open_pull(7)
    world.fake.fail_next("PATCH", r".*/check-runs/.*", status=422)
    world.review(7, reviewer="colesbury", head_sha=HEAD, review_id=1)
    assert world.outbox().gave_up
    world.send("pull_request", world.events.pull_request(
        "edited", number=7, author="mpage", head_sha=HEAD, updated_at=world.tick()))  # fmt: skip
    assert world.check()["conclusion"] == "success" and not world.outbox().gave_up


def test_a_bug_in_a_piece_of_work_does_not_end_the_worker(world, monkeypatch):
    """Whatever one post raises, the worker thread lives on, and the post is retried."""
    world.promote()
    opened(world)
    calls = []

    def broken(self, session, claimed):
        calls.append(1)
        raise RuntimeError("a bug")

    monkeypatch.setattr(Worker, "send", broken)
    stop = threading.Event()
    thread = threading.Thread(target=Worker(world.app).run_forever, args=(stop,), daemon=True)
    thread.start()
    world.fake.reset_calls()
    called = time.monotonic() + 60  # a loaded machine (a parallel run) may take seconds
    while not calls and time.monotonic() < called:
        time.sleep(0.05)
    thread.join(0.5)  # time enough for the exception to end the thread, had it escaped
    assert thread.is_alive() and calls
    stop.set()
    thread.join(60)
    assert not thread.is_alive()  # left running, it would post into the process's next tests
    monkeypatch.undo()
    assert "RuntimeError" in world.outbox().last_error
    world.retry_now()
    world.work()
    assert world.check()["conclusion"] == "action_required"


def test_a_deferred_delivery_whose_replay_meets_a_database_failure_is_kept(world, monkeypatch):
    """The worker read the pull request, but applying the waiting delivery failed on the
    database: the job is retried, not dropped, and the approval lands."""
    from gatekeeper import deliveries

    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    payload = world.events.comment("created", number=7, sender="colesbury",
                                   body="/gatekeeper approve")  # fmt: skip
    assert deliver(world.client, "issue_comment", payload, secret=SECRET).status_code == 202
    real = deliveries._apply
    replays = []

    def database_down_for_the_deferred(session, settings, delivery, **options):
        if delivery.outcome == "deferred":
            replays.append(delivery.delivery_id)
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return real(session, settings, delivery, **options)

    monkeypatch.setattr(deliveries, "_apply", database_down_for_the_deferred)
    world.work()
    monkeypatch.setattr(deliveries, "_apply", real)
    assert replays and world.pull().gate == "waiting"
    with world.session() as session:
        [job] = session.exec(select(Job)).all()
    assert job.kind == "sync_pull" and job.attempts == 1
    world.retry_now()
    world.work()
    with world.session() as session:
        [delivery] = session.exec(select(Delivery)).all()
    assert delivery.outcome == "processed"
    assert world.pull().gate == "approved"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_schema_behind_the_code_keeps_the_delivery_queued(world):
    """During a deploy the code may run before its migration: that is the database's state,
    not the payload's fault, so the delivery stays queued with why, is tried again after a
    backoff, and is applied once the schema is there."""
    world.promote()
    engine = world.app.extensions["gatekeeper.engine"]
    with engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE headseen RENAME TO headseen_old"))
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    payload = world.events.pull_request("opened", number=7, author="mpage", head_sha=HEAD)
    response = deliver(world.client, "pull_request", payload, delivery_id="d-1", secret=SECRET)
    assert response.status_code == 202
    world.apply()
    queued = world.delivery("d-1")
    assert (queued.outcome, queued.attempts, queued.error) == ("queued", 1, "ProgrammingError")
    assert queued.retry_at is not None and world.pull_or_none() is None
    with engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE headseen_old RENAME TO headseen"))
    world.retry_now()
    world.work()
    assert world.delivery("d-1").outcome == "processed"
    assert world.check()["conclusion"] == "action_required"


def test_a_repository_less_merge_group_is_refused(world):
    """A repository-scoped event without a repository is not one GitHub sends: 422."""
    payload = world.events.merge_group(head_sha=HEAD)
    del payload["repository"]
    response = deliver(world.client, "merge_group", payload, secret=SECRET)
    assert response.status_code == 422
    assert "payload.repository is missing" in response.get_json()["error"]


def test_an_external_id_with_a_unicode_digit_is_no_500(world):
    """'²' is a digit to str.isdigit but no number: the id is parsed by events.py's pattern."""
    world.promote()
    world.open_pull(7)
    payload = world.events.check_run("requested_action", number=7, head_sha=HEAD,
                                     sender="colesbury", app_id=world.fake.app_id)  # fmt: skip
    payload["check_run"]["external_id"] = "python/cpython#\u00b2"
    response = deliver(world.client, "check_run", payload, delivery_id="d-2", secret=SECRET)
    assert response.status_code == 202
    world.work()
    assert world.delivery("d-2").outcome == "processed"


def test_a_mentor_who_asked_for_changes_can_then_press_approve(world):
    """A request for changes is named on the check, so the run is posted again and a press
    of the button afterwards dates after it: the mentor's own change of mind counts."""
    world.promote()
    world.open_pull(7)
    world.review(7, reviewer="colesbury", state="changes_requested", review_id=2)
    run = world.check()
    assert "Changes requested by @colesbury" in run["output"]["summary"]
    press = world.events.check_run("requested_action", number=7, head_sha=HEAD,
                                   sender="colesbury", app_id=world.fake.app_id)  # fmt: skip
    press["check_run"]["completed_at"] = run["completed_at"]
    world.send("check_run", press)
    assert world.pull().gate == "approved"


@pytest.mark.parametrize(
    "body",
    [
        "> do not \u2028/gatekeeper approve",
        "> quoted\n/gatekeeper approve",
        "```\n```py\n/gatekeeper approve\n```",
        "<!--\n/gatekeeper approve\n-->",
    ],
    ids=["line-separator", "lazy-quote", "info-string-is-no-closing-fence", "html-comment"],
)
def test_the_command_hidden_by_markdown_does_not_count(body):
    """Lines end at \\n only; a quote runs on; a fence closes only bare; comments hide."""
    assert not handlers.asks_to_approve(body)


def test_a_comment_older_than_every_head_seen_approves_nothing(world):
    """The opened was lost and the first head seen is a later push: a comment written before
    it cannot be bound to any commit, so it is refused (and audited), not bound to the push."""
    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    written = world.tick()
    world.push(7, head_sha=NEWER)
    payload = world.events.comment("created", number=7, sender="colesbury",
                                   body="/gatekeeper approve", created_at=written)  # fmt: skip
    world.send("issue_comment", payload)
    assert world.pull().gate == "waiting"
    assert "approval_refused" in world.audit_kinds()
