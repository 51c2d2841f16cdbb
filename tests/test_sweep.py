"""The sweep: expiry lifts gates, lost webhooks are healed, failed posts are retried."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from gate_support import INSTALLATION, REPO, SECRET
from gatekeeper import github_of, settings_of
from gatekeeper.models import Mentorship, Repository, utcnow
from gatekeeper.sweep import sweep

HEAD = "a" * 40


def run_sweep(world, now=None):
    """A sweep, then the worker's posts of what it changed (what ``gatekeeper sweep`` does)."""
    with world.app.app_context(), world.session() as session:
        report = sweep(
            session,
            settings=settings_of(world.app),
            github=github_of(world.app),
            now=now or utcnow(),
        )
    report.tally = world.work()
    return report


def lapse(world, mentee="mpage"):
    """Move the mentorship's end into the past, as if the month had gone by."""
    with world.session() as session:
        mentorship = session.exec(select(Mentorship).where(Mentorship.mentee == mentee)).one()
        mentorship.ends_at = utcnow() - timedelta(minutes=1)
        session.add(mentorship)
        session.commit()


def test_expiry_turns_every_open_mentee_pull_success(world):
    """After the end date, the sweep ends the mentorship and every open mentee PR turns success."""
    world.promote()
    world.open_pull(7, head_sha="a" * 40)
    world.open_pull(8, head_sha="b" * 40)
    lapse(world)
    report = run_sweep(world)
    assert report.expired == ["mpage"]
    for sha in ("a" * 40, "b" * 40):
        run = world.check(sha)
        assert (run["conclusion"], run["output"]["title"]) == ("success", "Mentorship ended")
    with world.session() as session:
        mentorship = session.exec(select(Mentorship)).one()
    assert mentorship.end_reason == "expired" and mentorship.swept_at is not None
    assert "expired" in world.audit_kinds()


def test_second_sweep_makes_no_write(world):
    """Once reconciled, a sweep with nothing changed writes nothing to GitHub."""
    world.promote()
    world.open_pull()
    lapse(world)
    run_sweep(world)
    world.fake.reset_calls()
    run_sweep(world)
    assert world.fake.writes() == []


def test_lost_opened_webhook_is_healed(world):
    """A mentee PR GitHub never told us about is found by the sweep and gated."""
    world.promote()
    world.fake.add_pull(REPO, 9, author="mpage", head_sha=HEAD)
    report = run_sweep(world)
    assert world.check()["conclusion"] == "action_required"
    assert report.pulls == 1 and report.changed == 1 and len(report.tally.posted) == 1


def test_lost_review_webhook_is_healed(world):
    """An approval whose webhook was lost is read from GitHub by the sweep."""
    world.promote()
    world.open_pull()
    world.fake.add_review(
        REPO, 7, reviewer="colesbury", state="APPROVED", commit_id=HEAD, review_id=55
    )
    run_sweep(world)
    assert world.check()["conclusion"] == "success"


def test_lost_close_webhook_is_healed(world):
    """A PR closed while its webhook was lost is stored closed after the sweep; nothing is posted."""
    world.promote()
    world.open_pull()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD, state="closed")
    world.fake.reset_calls()
    run_sweep(world)
    assert world.pull().state == "closed"
    assert [c for c in world.fake.writes() if "/check-runs" in c.path] == []


def test_sweep_retries_after_github_failure(world):
    """A sweep that meets a 500 reports it and leaves the work for the next sweep."""
    world.promote()
    world.open_pull()
    world.fake.add_review(
        REPO, 7, reviewer="colesbury", state="APPROVED", commit_id=HEAD, review_id=55
    )
    world.fake.fail_next("GET", r"/repos/.+/pulls/7/reviews", status=500, times=2)
    report = run_sweep(world)
    assert report.failures and world.check()["conclusion"] == "action_required"
    report = run_sweep(world)
    assert report.failures == []
    assert world.check()["conclusion"] == "success"


def test_a_failed_post_is_the_workers_to_retry(world):
    """The sweep stores the desire; a 500 on the post leaves it queued, not lost, and the
    worker posts it once the backoff is over."""
    world.promote()
    world.fake.add_pull(REPO, 9, author="mpage", head_sha=HEAD)
    world.fake.fail_next("POST", r"/repos/.+/check-runs", status=500)
    report = run_sweep(world)
    assert report.failures == [] and report.tally.failures
    world.retry_now()
    world.work()
    assert world.check()["conclusion"] == "action_required"


def test_ended_mentorship_reconciled_once(world):
    """An ended mentorship is reconciled by the first sweep after it ends, then left alone."""
    world.promote()
    world.open_pull()
    lapse(world)
    run_sweep(world)
    world.fake.reset_calls()
    report = run_sweep(world)
    assert report.mentees == 0
    assert not [c for c in world.fake.calls if c.path == "/search/issues"]
    assert world.fake.writes() == []


def test_idempotent_reads_are_retried(world):
    """A 500 on a GET is retried at once (GithubRetry), so the sweep still succeeds."""
    world.promote()
    world.fake.add_pull(REPO, 9, author="mpage", head_sha=HEAD)
    world.fake.fail_next("GET", r"/search/issues", status=502)
    report = run_sweep(world)
    assert report.failures == []
    assert world.check()["conclusion"] == "action_required"
    searches = [c for c in world.fake.calls if c.path == "/search/issues"]
    assert [c.status for c in searches] == [502, 200]


def test_failed_create_is_not_duplicated(world):
    """A POST is never blindly retried; the next attempt looks for the run before creating one."""
    world.promote()
    world.fake.add_pull(REPO, 9, author="mpage", head_sha=HEAD)
    world.fake.fail_next("POST", r"/repos/.+/check-runs", status=500)
    run_sweep(world)
    world.retry_now()
    run_sweep(world)
    posts = [c for c in world.fake.calls if c.method == "POST" and c.path.endswith("/check-runs")]
    assert [c.status for c in posts] == [500, 201]
    assert len(world.fake.check_runs_for(REPO, HEAD)) == 1


def test_sweep_leaves_repositories_the_app_is_not_installed_on(world):
    """Search also finds the mentee's public PRs elsewhere; the sweep neither stores nor posts them."""
    world.fake.add_repo("psf/black", installation_id=None)
    world.fake.add_pull("psf/black", 3, author="mpage", head_sha="b" * 40)
    world.promote()
    world.fake.add_pull(REPO, 9, author="mpage", head_sha=HEAD)
    report = run_sweep(world)
    assert report.failures == [] and report.pulls == 1
    assert world.fake.check_runs_for("psf/black", "b" * 40) == []
    assert world.check()["conclusion"] == "action_required"
    world.fake.reset_calls()
    run_sweep(world)  # the answer about psf/black is remembered, not asked again
    assert not [c for c in world.fake.calls if c.path == "/repos/psf/black/installation"]


def test_lost_opened_webhook_of_anyone_is_healed(world):
    """Anyone's open PR without our check (its webhook lost) gets one from the sweep, from the
    list pages alone, and is left alone on the next sweep."""
    world.open_pull(1, author="guido", head_sha="1" * 40)  # announced: already checked
    for number in range(2, 5):
        world.fake.add_pull(REPO, number, author="guido", head_sha=f"{number}" * 40)
    world.fake.reset_calls()
    run_sweep(world)
    for number in range(2, 5):
        assert world.check(f"{number}" * 40)["conclusion"] == "success"
    assert not [c for c in world.fake.calls if c.method == "GET" and "/pulls/" in c.path]
    assert len([c for c in world.fake.writes() if c.path.endswith("/check-runs")]) == 3
    world.fake.reset_calls()
    run_sweep(world)
    assert world.fake.writes() == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_installation_another_sweep_holds_is_left_to_it(world):
    """While one sweep holds an installation's lock, another sweep asks GitHub nothing about
    it and says so; once released, the next sweep does the work."""
    import sqlalchemy as sa

    from gatekeeper.sweep import SWEEP_LOCK

    world.promote()
    world.send(
        "installation_repositories", world.events.installation_repositories("added", added=[REPO])
    )
    world.fake.add_pull(REPO, 9, author="mpage", head_sha=HEAD)
    engine = world.app.extensions["gatekeeper.engine"]
    key = {"a": SWEEP_LOCK, "b": INSTALLATION}
    with engine.connect() as running:
        running.execute(sa.text("SELECT pg_advisory_lock(:a, :b)"), key)
        world.fake.reset_calls()
        report = run_sweep(world)
        assert report.skipped == [INSTALLATION]
        assert not [c for c in world.fake.calls if c.path.startswith(("/search", "/repos"))]
        running.execute(sa.text("SELECT pg_advisory_unlock(:a, :b)"), key)
        running.commit()
    report = run_sweep(world)
    assert report.skipped == []
    assert world.check()["conclusion"] == "action_required"


def test_merge_group_check_that_failed_is_posted_by_the_sweep(world):
    """A merge queue commit whose success check GitHub refused (5xx) is retried by the worker."""
    world.open_pull(8, author="gvanrossum")  # nobody gates it: its group passes
    world.fake.add_commit(REPO, "e" * 40)
    world.fake.fail_next("POST", r"/repos/.+/check-runs", status=502)
    world.send("merge_group", world.events.merge_group(head_sha="e" * 40, number=8))
    assert world.fake.check_runs_for(REPO, "e" * 40) == []
    world.retry_now()
    report = run_sweep(world)
    assert report.failures == []
    assert world.check("e" * 40)["conclusion"] == "success"
    world.fake.reset_calls()
    run_sweep(world)
    assert world.fake.writes() == []


# ---------------------------------------------------------------- a repository gone


def test_a_repository_that_answers_404_is_marked_gone_once(world):
    """A remembered repository deleted or transferred without the event reaching us: the sweep
    exits 0, says it is gone, and the next sweep does not ask GitHub about it again."""
    from gatekeeper.cli import cli

    runner = world.app.test_cli_runner()
    world.promote()
    world.open_pull(7)
    world.fake.remove_repo(REPO)
    result = runner.invoke(cli, ["sweep"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert f"{REPO}: GitHub answers 404; marked gone" in result.output
    world.fake.reset_calls()
    result = runner.invoke(cli, ["sweep"])
    assert result.exit_code == 0, result.output
    assert not [c for c in world.fake.calls if c.path.startswith(f"/repos/{REPO}")]


def test_an_event_from_a_gone_repository_brings_it_back(world):
    """GitHub naming the repository again (a delivery from it) means it is there after all."""
    world.promote()
    world.open_pull(7)
    world.fake.remove_repo(REPO)
    run_sweep(world)
    with world.session() as session:
        assert session.get(Repository, REPO).gone_at is not None
    payload = world.events.pull_request(
        "opened", number=8, author="guido", head_sha="b" * 40, updated_at=world.tick()
    )
    world.send("pull_request", payload, work=False)
    with world.session() as session:
        assert session.get(Repository, REPO).gone_at is None


# ---------------------------------------------------------------- the safety net's cost


def test_scanning_unchanged_repositories_costs_no_rate_limit(world):
    """The safety-net scan asks each installed repository's list with its last ETag: with
    nothing changed, every answer is a 304 and none counts against the rate limit."""
    # Each repository is asked on its own, so 100 show what 1,000 would at a tenth of the time.
    names = [f"python/repo-{n:04d}" for n in range(100)]
    for name in names:
        world.fake.add_repo(name, installation_id=INSTALLATION)
    world.send(
        "installation_repositories", world.events.installation_repositories("added", added=names)
    )
    first = utcnow()
    run_sweep(world, now=first)
    world.fake.reset_calls()
    report = run_sweep(world, now=first + timedelta(hours=1, seconds=1))  # the cadence is due
    lists = [c for c in world.fake.calls if c.path.endswith("/pulls")]
    assert report.scanned == 100 and len(lists) == 100
    assert {c.status for c in lists} == {304}
    assert not [c for c in world.fake.counted_calls() if c.path.startswith("/repos/")]


def test_the_scan_runs_on_its_own_cadence(world):
    """Within the scan interval a sweep does not list repositories at all."""
    world.open_pull(1, author="guido")
    run_sweep(world)
    world.fake.reset_calls()
    run_sweep(world)
    assert not [c for c in world.fake.calls if c.path.endswith("/pulls")]


# ---------------------------------------------------------------- deliveries we failed


def test_failed_deliveries_are_redelivered_once(world):
    """A delivery we answered with a 5xx (a database restart) is asked for again by the
    sweep, once; GitHub sends it, and it is applied. One we refused (4xx) and one that
    later succeeded are left alone."""
    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    opened = world.events.pull_request(
        "opened", number=7, author="mpage", head_sha=HEAD, updated_at=world.tick()
    )
    failed = world.fake.add_hook_delivery(
        guid="lost-1", event="pull_request", status_code=503, payload=opened
    )
    world.fake.add_hook_delivery(guid="refused-1", event="pull_request", status_code=422)
    world.fake.add_hook_delivery(guid="healed-1", event="pull_request", status_code=502)
    world.fake.add_hook_delivery(guid="healed-1", event="pull_request", status_code=200)
    world.fake.hook_secret = SECRET
    world.fake.hook_target = lambda headers, body: (
        world.client.post("/webhooks/github", data=body, headers=headers).status_code
    )

    report = run_sweep(world)
    assert report.redelivered == 1
    assert world.fake.redelivery_requests == [failed]
    assert world.check()["conclusion"] == "action_required"
    run_sweep(world)
    assert world.fake.redelivery_requests == [failed]


def test_a_sweep_without_github_leaves_the_ended_mentorship_due(world):
    """Swept while GitHub is not configured, an ended mentorship is reconciled by the next
    sweep that can reach GitHub (it read nothing there, so it is not marked swept)."""
    world.promote()
    world.open_pull()
    lapse(world)
    with world.app.app_context(), world.session() as session:
        blind = sweep(session, settings=settings_of(world.app), github=None, now=utcnow())
    assert blind.expired == ["mpage"]
    with world.session() as session:
        assert session.exec(select(Mentorship)).one().swept_at is None
    world.fake.reset_calls()
    report = run_sweep(world)
    assert report.mentees == 1
    assert [c for c in world.fake.calls if c.path == "/search/issues"]
    with world.session() as session:
        assert session.exec(select(Mentorship)).one().swept_at is not None
