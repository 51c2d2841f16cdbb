"""The worker (``gatekeeper/worker.py``) against the fake GitHub, on SQLite and PostgreSQL:
a step does one piece of due work, a post or a job that fails waits and is tried again, and
a job of an unknown kind or with broken arguments is dropped rather than retried forever."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from flask import Flask
from sqlmodel import Session, select

from gate_support import REPO, World
from gatekeeper import jobs
from gatekeeper.jobs import MAX_BACKOFF, backoff
from gatekeeper.models import Job, utcnow
from gatekeeper.worker import Worker

HEAD = "a" * 40
CHECK_RUNS = r".*/check-runs$"
REVIEWERS = r".*/pulls/7/requested_reviewers$"


def queued(world: World) -> dict[str, Job]:
    with world.session() as session:
        return {job.key: job for job in session.exec(select(Job))}


def opened(world: World) -> None:
    """The mentee's pull request, opened and stored; nothing posted to GitHub yet."""
    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    payload = world.events.pull_request(
        "opened", number=7, author="mpage", head_sha=HEAD, updated_at=world.tick()
    )
    world.send("pull_request", payload, work=False)


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(0, 1.0), (1, 2.0), (3, 8.0), (9, 512.0), (10, MAX_BACKOFF), (50, MAX_BACKOFF)],
)
def test_backoff_doubles_up_to_ten_minutes(attempts: int, seconds: float):
    """Each failure doubles the wait, which never exceeds ``MAX_BACKOFF``."""
    assert backoff(attempts) == timedelta(seconds=seconds)


def test_each_step_does_one_piece_of_work_until_none_is_left(world: World):
    """Step by step, the commit's check is posted and the mentors asked for a review, one
    piece of work a step; then a step finds nothing to do."""
    opened(world)
    worker = Worker(world.app)
    steps = 0
    while worker.step():
        steps += 1
    assert steps == len(worker.tally.posted) + worker.tally.jobs >= 2
    assert (len(worker.tally.posted), worker.tally.failures) == (1, [])
    assert world.check(HEAD)["conclusion"] == "action_required"
    assert world.fake.requested_reviewers[(REPO, 7)] == ["colesbury", "vstinner"]
    assert world.pending_posts() == 0 and queued(world) == {}
    assert worker.step() is False


def test_a_check_github_fails_to_take_is_backed_off_then_posted(world: World):
    """GitHub answers 502 to the post: the desire is kept with its error and a later try,
    and posted once the wait is over."""
    opened(world)
    world.fake.fail_next("POST", CHECK_RUNS, status=502)  # a POST is not retried within a call
    before = utcnow()
    tally = world.work()
    row = world.outbox(HEAD)
    assert (tally.posted, len(tally.failures), row.attempts) == ([], 1, 1)
    assert row.next_attempt_at is not None and row.next_attempt_at > before
    assert world.pending_posts() == 1
    world.retry_now()
    assert world.work().posted and world.check(HEAD)["conclusion"] == "action_required"


def test_a_job_github_fails_is_retried_later(world: World):
    """The review request meets a 502: the job stays, its attempt counted and its error
    kept, due again later; it runs once its time comes."""
    opened(world)
    world.fake.fail_next("POST", REVIEWERS, status=502)
    before = utcnow()
    world.work()
    job = queued(world)[f"request_reviews:{REPO}#7"]
    assert (job.attempts, job.run_after > before) == (1, True)
    assert job.last_error
    world.retry_now()
    assert world.work().jobs == 1
    assert world.fake.requested_reviewers[(REPO, 7)] == ["colesbury", "vstinner"]
    assert queued(world) == {}


@pytest.mark.parametrize(
    ("kind", "args", "reason"),
    [
        ("mystery", {}, "no job is of kind 'mystery'"),
        ("request_reviews", {"repo": REPO, "number": 7}, "request_reviews lacks logins"),
        ("request_reviews", {"repo": REPO, "number": "7", "logins": []}, "number is not"),
        (
            "bypass_comment",
            {"repo": REPO, "number": 7, "merged": True},
            "bypass_comment takes no merged",
        ),
    ],
)
def test_a_job_no_shape_fits_is_dropped_and_the_worker_goes_on(
    world: World, caplog: pytest.LogCaptureFixture, kind: str, args: dict, reason: str
):
    """A queued job of a kind no worker knows, or whose stored arguments do not fit its
    kind (left by another version, say), is dropped with a warning, neither run nor
    retried; the work queued after it is done in the same run."""
    opened(world)
    with world.session() as session:
        due = utcnow() - timedelta(minutes=1)  # before the review request: claimed first
        session.add(Job(key="old:1", kind=kind, args=args, created_at=due, run_after=due))
        session.commit()
    with caplog.at_level(logging.WARNING, logger="gatekeeper.jobs"):
        tally = world.work()
    assert tally.failures == []
    assert world.fake.requested_reviewers[(REPO, 7)] == ["colesbury", "vstinner"]
    assert queued(world) == {}
    assert f"job old:1 dropped: {reason}" in caplog.text


def test_a_worker_without_github_does_nothing(app: Flask, session: Session):
    """Unconfigured for GitHub, a step finds no work it could do and leaves the queue alone."""
    jobs.enqueue(session, key="reconcile:1", args=jobs.Reconcile(mentorship_id=1), now=utcnow())
    session.commit()
    assert Worker(app).step() is False
    assert jobs.pending(session) == 1
