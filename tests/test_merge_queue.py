"""The merge queue re-checks the gate: a group's check is the gate of the pull request it adds.

Each scenario runs on SQLite and PostgreSQL, with the worker posting to the fake GitHub.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlmodel import select

from gate_support import BASE_URL, REPO, World
from gatekeeper import decisions, events, gate, settings_of
from gatekeeper.models import Job, MergeGroup, utcnow
from webhook_events import Events

HEAD = "a" * 40  # pull request #7's head
GROUP = "c" * 40  # the merge group's commit
LATER = "d" * 40


def queue(world: World, number: int | None = 7, *, head_sha: str = GROUP, **options) -> None:
    """GitHub's merge queue builds a group adding ``number`` and asks for its checks."""
    world.fake.add_commit(REPO, head_sha)
    payload = world.events.merge_group(head_sha=head_sha, number=number, **options)
    world.send("merge_group", payload)


def destroy(world: World, number: int = 7, *, head_sha: str = GROUP, **options) -> None:
    """The queue is done with the group (merged, invalidated or dequeued)."""
    payload = world.events.merge_group("destroyed", head_sha=head_sha, number=number, **options)
    world.send("merge_group", payload)


def conclusions(world: World, head_sha: str = GROUP) -> list[str | None]:
    """Every conclusion our check run on ``head_sha`` was written with, oldest first."""
    return [write["conclusion"] for write in world.check(head_sha)["writes"]]


def group_row(world: World, head_sha: str = GROUP) -> MergeGroup:
    with world.session() as session:
        return session.exec(select(MergeGroup).where(MergeGroup.head_sha == head_sha)).one()


# ---------------------------------------------------------------- the group's check


def test_group_of_an_approved_pull_request_passes(world):
    """A mentee's PR a mentor approved joins the queue: its group's check passes, names the
    PR, links its page, and offers no button (a group's commit is no PR's head)."""
    world.promote()
    world.open_pull(7)
    world.review(reviewer="colesbury", state="approved")
    queue(world, 7)
    run = world.check(GROUP)
    assert run["conclusion"] == "success"
    assert run["output"]["title"].startswith("Merge queue: #7 passes")
    assert run["details_url"] == f"{BASE_URL}/pulls/{REPO}/7"
    assert world.last_check_body()["actions"] == []


def test_group_of_a_waiting_pull_request_fails(world):
    """A group carrying a mentee's PR no mentor approved does not pass (the queue must not
    merge it), however it got into the queue."""
    world.promote()
    world.open_pull(7)
    queue(world, 7)
    run = world.check(GROUP)
    assert run["conclusion"] == "action_required"
    assert run["output"]["title"].startswith("Merge queue: #7 waits")
    assert "Waiting for" in run["output"]["summary"]


def test_group_of_a_pull_request_nobody_gates_passes(world):
    """Everyone else's pull requests go through the queue as before."""
    world.promote()
    world.open_pull(8, author="gvanrossum", head_sha=LATER)
    queue(world, 8)
    assert world.check(GROUP)["conclusion"] == "success"


def test_changes_requested_after_joining_the_queue_fails_the_group(world):
    """A mentor who requests changes after the PR joined the queue stops the merge: once the
    worker drains, the group's check is rewritten as action_required."""
    world.promote()
    world.open_pull(7)
    world.review(reviewer="colesbury", state="approved", review_id=100)
    queue(world, 7)
    assert conclusions(world) == ["success"]
    world.review(reviewer="colesbury", state="changes_requested", review_id=101)
    assert world.check(HEAD)["conclusion"] == "action_required"
    assert conclusions(world) == ["success", "action_required"]
    assert "#7 waits" in world.check(GROUP)["output"]["title"]


def test_an_approval_given_while_queued_lets_the_group_pass(world):
    """The other way round: a group that failed because its PR waited passes once a mentor
    approves, without a new merge_group event."""
    world.promote()
    world.open_pull(7)
    queue(world, 7)
    world.review(reviewer="vstinner", state="approved")
    assert conclusions(world) == ["action_required", "success"]


def test_a_push_while_queued_fails_the_group(world):
    """The PR moved since it joined (a push dismisses the approval): its group fails."""
    world.promote()
    world.open_pull(7)
    world.review(reviewer="colesbury", state="approved")
    queue(world, 7)
    world.push(7, head_sha=LATER)
    assert conclusions(world) == ["success", "action_required"]


def test_an_unknown_pull_request_fails_closed_then_passes_once_fetched(world):
    """A group whose PR Gatekeeper never saw (its webhooks were lost) fails closed while the
    worker reads the PR from GitHub, then its check is derived again from that PR's gate."""
    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    world.fake.add_review(
        REPO, 7, reviewer="colesbury", state="APPROVED", commit_id=HEAD, review_id=100
    )
    world.fake.add_commit(REPO, GROUP)
    world.send("merge_group", world.events.merge_group(head_sha=GROUP, number=7), work=False)
    assert world.outbox(GROUP).body["conclusion"] == "action_required"
    assert world.outbox(GROUP).body["title"] == "Merge queue: #7 not read yet"
    world.work()
    assert world.pull(7).gate == "approved"
    assert world.check(GROUP)["conclusion"] == "success"


def test_a_pull_request_github_does_not_have_keeps_failing(world):
    """A ref naming a PR GitHub answers 404 for: the group stays failed (fail closed)."""
    queue(world, 99)
    assert world.check(GROUP)["conclusion"] == "action_required"
    assert world.check(GROUP)["output"]["title"] == "Merge queue: #99 not read yet"


def test_a_ref_that_names_no_pull_request_fails(world):
    """A group whose branch is not gh-readonly-queue/<base>/pr-<N>-<sha> fails closed."""
    world.fake.add_commit(REPO, GROUP)
    payload = world.events.merge_group(head_sha=GROUP, number=7)
    payload["merge_group"]["head_ref"] = "refs/heads/gh-readonly-queue/main/not-a-pull"
    world.send("merge_group", payload)
    run = world.check(GROUP)
    assert run["conclusion"] == "action_required"
    assert run["output"]["title"] == "Merge queue: which pull request is unknown"
    assert run["details_url"] == f"{BASE_URL}/"


def test_a_group_into_another_branch_than_its_pull_request_fails(world):
    """Gatekeeper knows #7 as a PR into main; a group merging it into 3.13 fails closed, and
    the worker reads #7 again (GitHub agrees with Gatekeeper here, so it stays failed)."""
    world.promote()
    world.open_pull(7)
    world.review(reviewer="colesbury", state="approved")
    queue(world, 7, base="3.13")
    run = world.check(GROUP)
    assert run["conclusion"] == "action_required"
    assert run["output"]["title"] == "Merge queue: #7 targets main"
    reads = [c for c in world.fake.calls if c.method == "GET" and c.path.endswith("/pulls/7")]
    assert reads


# ---------------------------------------------------------------- a group's life


def test_destroyed_ends_reposting(world):
    """Once the queue destroys the group, a change of its PR's gate no longer writes the
    group's check (the queue has moved on), and the group is stored as destroyed."""
    world.promote()
    world.open_pull(7)
    world.review(reviewer="colesbury", state="approved", review_id=100)
    queue(world, 7)
    destroy(world, 7, reason="dequeued")
    world.review(reviewer="colesbury", state="changes_requested", review_id=101)
    assert world.check(HEAD)["conclusion"] == "action_required"
    assert conclusions(world) == ["success"]
    row = group_row(world)
    assert row.destroyed_at is not None and row.destroyed_reason == "dequeued"


def test_destroyed_stops_retrying_a_post(world):
    """A group's check GitHub refused (5xx) is not retried after the group is destroyed."""
    world.open_pull(8, author="gvanrossum", head_sha=LATER)
    world.fake.add_commit(REPO, GROUP)
    world.fake.fail_next("POST", r"/repos/.+/check-runs", status=502)
    world.send("merge_group", world.events.merge_group(head_sha=GROUP, number=8))
    assert world.fake.check_runs_for(REPO, GROUP) == []
    destroy(world, 8, reason="merged")
    world.retry_now()
    world.work()
    assert world.fake.check_runs_for(REPO, GROUP) == []
    assert world.outbox(GROUP).gave_up
    assert world.pending_posts() == 0


def test_destroyed_before_checks_requested_posts_nothing(world):
    """Out of order: the group's destroyed arrives first; the late checks_requested does not
    bring it back, and nothing is posted on its commit."""
    world.promote()
    world.open_pull(7)
    world.review(reviewer="colesbury", state="approved")
    world.fake.add_commit(REPO, GROUP)
    destroy(world, 7, reason="invalidated")
    queue(world, 7)
    assert world.fake.check_runs_for(REPO, GROUP) == []
    assert group_row(world).destroyed_reason == "invalidated"


def test_redelivered_events_change_nothing(world):
    """checks_requested twice (GitHub asking again; a byte-identical redelivery is not even
    applied) posts one check once; destroyed twice keeps the first end."""
    world.promote()
    world.open_pull(7)
    world.review(reviewer="colesbury", state="approved")
    queue(world, 7)
    queue(world, 7, sender="ambv")
    assert conclusions(world) == ["success"]
    assert world.outbox(GROUP).version == 1
    destroy(world, 7, reason="merged")
    first = group_row(world).destroyed_at
    destroy(world, 7, reason="dequeued")
    row = group_row(world)
    assert (row.destroyed_at, row.destroyed_reason) == (first, "merged")


def test_two_groups_follow_their_own_pull_requests(world):
    """The group ahead carries the PR ahead: each group answers for its own PR only."""
    world.promote()
    world.open_pull(7)
    world.open_pull(8, author="gvanrossum", head_sha=LATER)
    queue(world, 8, head_sha="e" * 40)
    queue(world, 7, head_sha=GROUP, parent_sha="e" * 40)
    assert world.check("e" * 40)["conclusion"] == "success"
    assert world.check(GROUP)["conclusion"] == "action_required"


def test_rerun_on_a_groups_check_posts_its_pull_requests_gate_afresh(world):
    """A re-run of the group's check run (it names #7, and no PR has its commit as head)
    posts a new check run with #7's current gate."""
    world.promote()
    world.open_pull(7)
    queue(world, 7)
    world.review(reviewer="colesbury", state="approved")
    payload = world.events.check_run(
        "rerequested", number=7, head_sha=GROUP, sender="mpage", app_id=world.fake.app_id
    )
    payload["check_run"]["pull_requests"] = []  # GitHub lists none for a group's commit
    world.send("check_run", payload)
    runs = world.fake.check_runs_for(REPO, GROUP)
    assert [run["conclusion"] for run in runs] == ["success", "success"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_group_derived_while_its_gate_changes_ends_with_the_new_gate(world):
    """PostgreSQL, two transactions at once: a withdrawn approval (the worker's read of the
    PR, holding the group's commit) and GitHub asking again for the group's checks, which
    read the PR before that commit. The group's check ends action_required, never success."""
    world.promote()
    world.open_pull(7)
    world.review(reviewer="colesbury", state="approved", review_id=100)
    queue(world, 7)
    withdrawn = world.review_payload(reviewer="colesbury", state="changes_requested", review_id=101)
    engine = world.app.extensions["gatekeeper.engine"]
    with world.session() as changing, ThreadPoolExecutor(1) as other:
        decisions.apply_pull(
            changing,
            info=events.pull_of(withdrawn),
            reviews=[events.review_of(withdrawn)],
            settings=settings_of(world.app),
            now=utcnow(),
        )
        asking = other.submit(queue, world, 7, sender="ambv")
        _wait_for_a_lock_wait(engine)
        changing.commit()
        asking.result()  # its delivery was answered 2xx
    world.work()
    assert conclusions(world) == ["success", "action_required"]


def _wait_for_a_lock_wait(engine) -> None:
    """Until some transaction waits for a row lock (the second delivery, on the group's row)."""
    for _ in range(2000):
        with engine.connect() as watching:
            query = sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if watching.execute(query).scalar_one():
                return
        time.sleep(0.01)
    raise AssertionError("the second transaction never waited for the first")


# ---------------------------------------------------------------- a group on a PR's own head


def test_a_group_on_a_waiting_pull_requests_head_leaves_it_waiting(world):
    """A merge_group whose commit is a waiting PR's head (carrying a PR that passes) does not
    turn that commit green."""
    world.promote()
    world.open_pull(7)
    world.open_pull(8, author="gvanrossum", head_sha=LATER)
    queue(world, 8, head_sha=HEAD)
    assert conclusions(world, HEAD) == ["action_required"]
    assert world.check(HEAD)["output"]["title"].startswith("Waiting")


def test_a_pull_request_from_a_groups_commit_does_not_let_its_pull_request_through(world):
    """The other way: someone opens a PR nobody gates from the commit of a group carrying a
    waiting PR; the commit still fails, for the group's PR."""
    world.promote()
    world.open_pull(7)
    queue(world, 7)
    world.open_pull(9, author="gvanrossum", head_sha=GROUP)
    assert world.check(GROUP)["conclusion"] == "action_required"
    assert world.check(GROUP)["output"]["title"].startswith("Merge queue: #7 waits")


def test_destroying_a_group_on_a_pull_requests_head_keeps_that_check(world):
    """When a group on a PR's own head is destroyed, the commit shows what its PR says."""
    world.promote()
    world.open_pull(7)
    world.open_pull(8, author="gvanrossum", head_sha=LATER)
    world.review(7, reviewer="colesbury", state="approved")
    queue(world, 8, head_sha=HEAD)
    destroy(world, 8, head_sha=HEAD)
    world.retry_now()
    world.work()
    assert world.check(HEAD)["conclusion"] == "success"
    assert world.outbox(HEAD).expires_at is None


# ---------------------------------------------------------------- pure parts


def _verdict(waiting: bool) -> gate.PullVerdict:
    return gate.PullVerdict(7, "mpage", waiting, "The title", "The summary")


@pytest.mark.parametrize(
    ("number", "carried", "carried_base", "conclusion"),
    [
        (7, _verdict(False), "main", "success"),
        (7, _verdict(False), "", "success"),  # a base not known: the gate alone decides
        (7, _verdict(True), "main", "action_required"),
        (7, None, "", "action_required"),
        (7, _verdict(False), "3.13", "action_required"),
        (None, _verdict(False), "main", "action_required"),
    ],
)
def test_merge_group_verdict(number, carried, carried_base, conclusion):
    """The group passes only while the PR it carries is known, into the same branch, and
    passes its own gate."""
    verdict = gate.merge_group_verdict(
        number=number, carried=carried, base="main", carried_base=carried_base
    )
    assert verdict.conclusion == conclusion
    assert verdict.lead == (number or 0)
    assert verdict.numbers == ()


@pytest.mark.parametrize(
    ("head_ref", "base_ref", "number"),
    [
        ("refs/heads/gh-readonly-queue/main/pr-104-" + "9" * 40, "refs/heads/main", 104),
        (
            "refs/heads/gh-readonly-queue/release/3.13/pr-5-" + "9" * 40,
            "refs/heads/release/3.13",
            5,
        ),
        ("refs/heads/gh-readonly-queue/main/pr-5-" + "9" * 40, "refs/heads/3.13", None),
        ("refs/heads/gh-readonly-queue/main/pr-5-xyz", "refs/heads/main", None),
        ("refs/heads/gh-readonly-queue/main/pr-0-" + "9" * 40, "refs/heads/main", None),
        ("refs/heads/feature", "refs/heads/main", None),
    ],
)
def test_the_pull_request_a_group_adds(head_ref, base_ref, number):
    """``pr-<N>`` is read from the group's ref only where its branch is the group's base."""
    payload = Events().merge_group(head_sha=GROUP, number=1)
    payload["merge_group"].update(head_ref=head_ref, base_ref=base_ref)
    assert events.merge_group_info(payload).number == number


def test_the_real_example_parses():
    """GitHub's own example: PR 104 into main, no reason (it is no destroyed)."""
    info = events.merge_group_info(Events().merge_group(head_sha=GROUP))
    assert (info.number, info.base_ref, info.reason) == (104, "main", None)


def test_a_group_without_a_ref_is_refused():
    """head_ref is required by GitHub's schema: a payload without it is no group of GitHub's."""
    payload = Events().merge_group(head_sha=GROUP)
    del payload["merge_group"]["head_ref"]
    with pytest.raises(events.PayloadError, match=r"merge_group\.head_ref is missing"):
        events.merge_group_info(payload)


def test_a_sync_is_queued_for_an_unknown_pull_request(world):
    """The group's PR unknown: one sync_pull job for it, no delivery deferred."""
    world.fake.add_commit(REPO, GROUP)
    world.send("merge_group", world.events.merge_group(head_sha=GROUP, number=7), work=False)
    with world.session() as session:
        keys = [job.key for job in session.exec(select(Job))]
    assert keys == [f"sync_pull:{REPO}#7"]
