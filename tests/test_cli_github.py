"""The command line with GitHub configured: lifecycle changes update gates at once; sweep; status."""

from __future__ import annotations

import json
from datetime import timedelta

from gate_support import REPO
from gatekeeper import github_of, settings_of
from gatekeeper.cli import cli
from gatekeeper.models import utcnow
from gatekeeper.sweep import sweep

HEAD, NEW = "a" * 40, "c" * 40


def run(world, *args):
    return world.app.test_cli_runner().invoke(cli, list(args))


def test_the_gate_from_promotion_to_expiry(world):
    """The issue's done-when, end to end: wait, approve, push, expire, and replays change nothing."""
    assert (
        run(world, "promote", "mpage", "--mentor", "colesbury", "--mentor", "vstinner").exit_code
        == 0
    )
    opened = world.events.pull_request(
        "opened", number=7, author="mpage", head_sha=HEAD, updated_at=world.tick()
    )
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    world.send("pull_request", opened, delivery_id="opened-7")
    run_ = world.check()
    assert run_["conclusion"] == "action_required"
    assert "@colesbury" in run_["output"]["summary"] and "@vstinner" in run_["output"]["summary"]

    world.review(reviewer="colesbury", review_id=1)
    assert world.check()["conclusion"] == "success"

    world.push(head_sha=NEW)
    assert world.check(NEW)["conclusion"] == "action_required"

    a_month_later = utcnow() + timedelta(days=32)
    with world.app.app_context(), world.session() as session:
        report = sweep(
            session, settings=settings_of(world.app), github=github_of(world.app), now=a_month_later
        )
    world.work()
    assert report.expired == ["mpage"] and report.failures == []
    assert world.check(NEW)["conclusion"] == "success"
    assert world.check(NEW)["output"]["title"] == "Mentorship ended"

    world.fake.reset_calls()
    world.send("pull_request", opened, delivery_id="opened-7")
    assert world.fake.calls == []
    assert world.check(NEW)["conclusion"] == "success"


def test_promotion_gates_a_pull_request_opened_before_it(world):
    """A mentee's PR opened before the promotion is gated as soon as the promotion is made."""
    world.open_pull(author="mpage")
    assert world.check()["conclusion"] == "success"
    result = run(world, "promote", "mpage", "--mentor", "colesbury")
    assert result.exit_code == 0, result.output
    assert "Checks posted: 1." in result.output
    assert world.check()["conclusion"] == "action_required"


def test_ending_lifts_the_gate_at_once(world):
    """Ending a mentorship from the CLI turns its open PRs success without waiting for a sweep."""
    run(world, "promote", "mpage", "--mentor", "colesbury")
    world.open_pull()
    result = run(world, "end", "mpage", "--reason", "graduated", "--by", "ambv")
    assert result.exit_code == 0, result.output
    assert world.check()["conclusion"] == "success"
    assert world.check()["output"]["title"] == "Mentorship ended"


def test_adding_a_mentor_updates_the_check(world):
    """A new mentor is named on the waiting check at once."""
    run(world, "promote", "mpage", "--mentor", "colesbury")
    world.open_pull()
    assert "@Yhg1s" not in world.check()["output"]["summary"]
    assert run(world, "mentors", "mpage", "--add", "Yhg1s").exit_code == 0
    assert "@Yhg1s" in world.check()["output"]["summary"]


def test_status_json_lists_tracked_pull_requests(world):
    """status --json lists each tracked PR with its gate and who approved it."""
    run(world, "promote", "mpage", "--mentor", "colesbury")
    world.open_pull(7)
    world.open_pull(8, head_sha="b" * 40)
    world.review(7, reviewer="colesbury", review_id=1)
    document = json.loads(run(world, "status", "MPage", "--json").output)
    pulls = {p["number"]: p for p in document["pull_requests"]}
    assert pulls[7] == {
        "repo": REPO,
        "number": 7,
        "title": pulls[7]["title"],
        "url": f"https://github.com/{REPO}/pull/7",
        "author": "mpage",
        "head_sha": HEAD,
        "state": "open",
        "gate": "approved",
        "approved_by": ["colesbury"],
    }
    assert (pulls[8]["gate"], pulls[8]["approved_by"]) == ("waiting", [])
    text = run(world, "status", "mpage").output
    assert f"{REPO}#7 approved by colesbury" in text and f"{REPO}#8 waiting" in text


def test_sweep_with_github_down_exits_1_and_says_so(world):
    """A single sweep that could not finish says what is left and exits 1; nothing is lost."""
    run(world, "promote", "mpage", "--mentor", "colesbury")
    world.fake.add_pull(REPO, 9, author="mpage", head_sha=HEAD)
    world.fake.fail_next("POST", r"/repos/.+/check-runs", status=500)
    result = run(world, "sweep")
    assert result.exit_code == 1
    assert "not done yet, kept for the workers" in result.stderr
    assert "Traceback" not in result.output
    world.retry_now()  # the post's backoff is over
    result = run(world, "sweep")
    assert result.exit_code == 0, result.output
    assert world.check()["conclusion"] == "action_required"


def test_promote_with_github_failing_says_the_check_is_not_posted_yet(world):
    """When GitHub refuses the post, promote says the check is not posted yet and who retries
    it, rather than a bare count; the check waits in the outbox."""
    world.open_pull(author="mpage")
    # The check run exists (success), so the worker updates it; past PyGithub's retries.
    world.fake.fail_next("PATCH", r"/repos/.+/check-runs/\d+", status=500, times=5)
    result = run(world, "promote", "mpage", "--mentor", "colesbury")
    assert result.exit_code == 0, result.output
    assert "not done yet, kept for the workers: " in result.stderr
    assert result.stdout.splitlines()[-2] == (
        "Checks posted: 0; 1 not yet, retried by `gatekeeper worker` or the next sweep."
    )
    assert world.check()["conclusion"] == "success"  # GitHub still shows the old check
    assert world.pending_posts() == 1  # and the new one is kept for the retry


def test_sweep_with_github_says_what_it_checked(world):
    """With GitHub configured, the summary counts what was checked with GitHub."""
    run(world, "promote", "mpage", "--mentor", "colesbury")
    world.open_pull(7)
    result = run(world, "sweep")
    assert result.exit_code == 0, result.output
    [summary] = [line for line in result.stdout.splitlines() if line.startswith("Sweep done")]
    assert summary.startswith(
        "Sweep done: 0 expired, 1 mentees and 1 pull requests checked with GitHub,"
    )
    assert result.stderr == ""
