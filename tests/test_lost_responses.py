"""GitHub created the check run but its answer was lost: the next attempt must not create another.

A proxy's 502 or a client timeout after GitHub performed a POST looks, to Gatekeeper, exactly
like a failure; the commit's desire stays in the outbox. The worker's next try, or the next
event's newer desire, has to find the run GitHub already has and update it in place.
"""

from __future__ import annotations

import pytest

from gate_support import REPO, World, app_for
from gatekeeper import github_of

HEAD = "a" * 40
CHECK_RUNS = r"/repos/.+/check-runs"


def check_calls(world: World) -> list[tuple[str, int]]:
    """(method, status) of every check-run write, in order."""
    return [(c.method, c.status) for c in world.fake.writes() if "/check-runs" in c.path]


def retry(world: World):
    """The worker's next try, once the backoff is over."""
    world.retry_now()
    return world.work()


def test_retry_updates_the_run_whose_creation_answered_502(world):
    """POST /check-runs performed but answered 502: the retry PATCHes that run, never a second."""
    world.promote()
    world.fake.fail_next("POST", CHECK_RUNS, status=502, after_effect=True)
    world.open_pull()
    assert len(world.fake.check_runs_for(REPO, HEAD)) == 1  # GitHub has it
    assert world.pending_posts() == 1  # Gatekeeper cannot know

    tally = retry(world)

    assert tally.failures == []
    assert check_calls(world) == [("POST", 502), ("PATCH", 200)]
    assert world.check()["conclusion"] == "action_required"
    assert world.pending_posts() == 0


def test_next_event_updates_the_run_whose_creation_answered_502(world):
    """The approval that follows a lost create turns that same run green."""
    world.promote()
    world.fake.fail_next("POST", CHECK_RUNS, status=502, after_effect=True)
    world.open_pull()

    world.review(reviewer="colesbury", state="approved", review_id=1)

    assert check_calls(world) == [("POST", 502), ("PATCH", 200)]
    assert world.check()["conclusion"] == "success"
    assert world.pending_posts() == 0


@pytest.fixture
def impatient_world(database_url, github_fake):
    """A world whose GitHub client gives up after one second."""
    app = app_for(github_fake, database_url, github_timeout=1)
    yield World(app, github_fake)
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


def test_retry_updates_the_run_whose_creation_timed_out(impatient_world):
    """POST /check-runs performed but answered after the client's timeout: one run, updated."""
    world = impatient_world
    world.promote()
    world.fake.hang_next("POST", CHECK_RUNS, seconds=3, after_effect=True)
    world.open_pull()
    assert len(world.fake.check_runs_for(REPO, HEAD)) == 1
    assert world.pending_posts() == 1

    assert retry(world).failures == []

    assert world.check()["conclusion"] == "action_required"
    assert [method for method, _ in check_calls(world)][1:] == ["PATCH"]
    assert world.pending_posts() == 0
