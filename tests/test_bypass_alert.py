"""The bypass comment: exactly one per pull request merged while its gate waited, ever.

Whatever the deliveries do (twice, out of order, a late approval that clears the bypass),
however many workers run, and whether GitHub's answer to the post is lost, the mentors read
one comment on the pull request, or none when there was no bypass or the alerts are off.
"""

from __future__ import annotations

import re
import shutil
import threading

import pytest
from sqlmodel import Session, select

from gate_support import BASE_URL, REPO, World
from gatekeeper import bypass_alerts, create_app, jobs
from gatekeeper.cli import cli
from gatekeeper.models import BypassAlert, Job, Mentorship
from gatekeeper.worker import Worker

HEAD = "a" * 40
COMMENTS = r"/repos/.+/issues/\d+/comments"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def comments(world: World, number: int = 7) -> list[dict]:
    """The comments on the pull request, as GitHub keeps them."""
    return world.fake.comments.get((REPO, number), [])


def comment_calls(world: World) -> list[tuple[str, int]]:
    """(method, status) of every request about the pull request's comments, in order."""
    return [(c.method, c.status) for c in world.fake.calls if re.fullmatch(COMMENTS, c.path)]


def settle(world: World):
    """Let the settle delay (and any backoff) pass, and let a worker do what is due."""
    world.retry_now()
    return world.work()


def merged_payload(world: World, number: int = 7, *, merged_by: str = "admin") -> dict:
    """Merge the pull request on the fake GitHub; the ``closed`` event that says so."""
    stamp = world.tick()
    world.fake.merge(REPO, number, merged_by=merged_by, merged_at=stamp)
    return world.events.pull_request(
        "closed",
        number=number,
        author="mpage",
        head_sha=HEAD,
        merged=True,
        merged_by=merged_by,
        updated_at=stamp,
    )


def bypassed(world: World, **promote_options) -> dict:
    """A waiting pull request merged by an admin, its ``closed`` event delivered."""
    world.promote(**promote_options)
    world.open_pull()
    payload = merged_payload(world)
    world.send("pull_request", payload, delivery_id="merged-1")
    assert world.pull().gate == "bypassed"
    return payload


def test_a_bypass_gets_one_comment_naming_the_merger_the_mentors_and_the_page(world):
    """The comment waits for the settle delay, then says who merged without approval, pings
    both mentors and links the pull request's dashboard page, with the hidden marker."""
    bypassed(world)
    assert comments(world) == []  # not before the settle delay

    settle(world)

    [comment] = comments(world)
    body = comment["body"]
    assert body.startswith(bypass_alerts.MARKER)
    assert "@admin merged this pull request" in body
    assert "no mentor had approved it" in body
    assert "@colesbury, @vstinner" in body
    assert f"{BASE_URL}/pulls/{REPO}/7" in body
    assert comment["user"]["login"] == world.fake.bot_login
    with world.session() as session:
        [alert] = session.exec(select(BypassAlert)).all()
        assert alert.comment_id == comment["id"] and alert.posted_at is not None
        assert jobs.pending(session) == 0


def test_the_queue_is_drained_while_the_comment_waits_its_settle_delay(world):
    """``jobs.pending`` leaves out the comment still in its settle delay, counts it once due,
    and counts it while it is retried after a failure."""
    bypassed(world)
    with world.session() as session:
        [job] = session.exec(select(Job)).all()
        assert jobs.pending(session) == 0
        assert jobs.pending(session, now=job.run_after) == 1
    world.fake.fail_next("POST", COMMENTS, status=502)
    settle(world)
    with world.session() as session:
        assert jobs.pending(session) == 1  # retrying after its backoff


def test_a_bypass_delivered_twice_is_commented_once(world):
    """The closed event redelivered (same id) and sent again (new id), before and after the
    comment went out: one comment, and one POST."""
    payload = bypassed(world)
    world.send("pull_request", payload, delivery_id="merged-1")
    world.send("pull_request", payload, delivery_id="merged-2")
    settle(world)
    world.send("pull_request", payload, delivery_id="merged-3")
    settle(world)

    assert len(comments(world)) == 1
    assert [method for method, _ in comment_calls(world)] == ["POST"]


def test_closed_before_the_last_review_is_commented_once(world):
    """Out of order: the merge is delivered before a review given after it (which cannot
    approve the merge), and the review's event carries the merged pull request: one comment."""
    bypassed(world)
    merged_at = world.pull().merged_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    late = world.review_payload(reviewer="colesbury", review_id=1, merged_at=merged_at)
    world.send("pull_request_review", late)
    assert world.pull().gate == "bypassed"

    settle(world)
    settle(world)

    assert len(comments(world)) == 1


def test_a_merge_told_first_by_a_review_event_names_the_merger_once(world):
    """A review event carrying the merged pull request arrives before the closed event: the
    bypass is recorded with no merger known; the closed event names the merger; one comment
    saying who merged."""
    world.promote()
    world.open_pull()
    payload = merged_payload(world)
    merged_at = payload["pull_request"]["merged_at"]
    world.fake.add_review(
        REPO, 7, reviewer="colesbury", state="COMMENTED", commit_id=HEAD, review_id=5
    )
    review = world.events.review(
        "submitted",
        number=7,
        author="mpage",
        head_sha=HEAD,
        reviewer="colesbury",
        state="commented",
        review_id=5,
        submitted_at=world.tick(),
        updated_at=merged_at,
    )
    review["pull_request"].update(state="closed", merged_at=merged_at, closed_at=merged_at)
    world.send("pull_request_review", review)
    assert world.pull().gate == "bypassed"
    world.send("pull_request", payload)

    settle(world)

    [comment] = comments(world)
    assert "@admin merged this pull request" in comment["body"]


def test_a_bypass_cleared_by_a_late_approval_is_never_commented(world):
    """An approval given before the merge but delivered after it clears the bypass within
    the settle delay: no comment, and no job left."""
    world.promote()
    world.open_pull()
    approval = world.review_payload(reviewer="colesbury", review_id=1)  # on GitHub, before
    world.send("pull_request", merged_payload(world))
    assert world.pull().gate == "bypassed"
    world.send("pull_request_review", approval)
    assert world.pull().gate == "approved"

    settle(world)

    assert comments(world) == []
    assert "bypass_cleared" in world.audit_kinds()
    with world.session() as session:
        assert jobs.pending(session) == 0


def test_an_approval_whose_delivery_is_lost_clears_the_bypass_before_any_comment(world):
    """The pre-merge approval's webhook never arrives: the job reads the reviews from GitHub
    before posting, finds the approval, and comments nothing."""
    world.promote()
    world.open_pull()
    world.fake.add_review(
        REPO, 7, reviewer="vstinner", state="APPROVED", commit_id=HEAD, review_id=9,
        submitted_at=world.tick(),
    )  # fmt: skip
    world.send("pull_request", merged_payload(world))
    assert world.pull().gate == "bypassed"

    settle(world)

    assert comments(world) == []
    assert world.pull().gate == "approved"
    assert world.pull().approved_by == ["vstinner"]


def test_an_approval_delivered_while_the_job_is_claimed_still_stops_the_comment(world):
    """The worker has claimed the job when the clearing approval is delivered: the job decides
    from the gate as stored when it runs, so nothing is posted."""
    world.promote()
    world.open_pull()
    approval = world.review_payload(reviewer="colesbury", review_id=1)
    world.send("pull_request", merged_payload(world))
    world.retry_now()
    worker = Worker(world.app)
    with world.session() as session:
        claimed = jobs.claim(session, now=jobs_due(world), kinds=(bypass_alerts.KIND,))
        assert claimed is not None
        world.send("pull_request_review", approval, work=False)
        worker._run(session, claimed)

    assert comments(world) == []


def jobs_due(world: World):
    """A moment at which every queued job is due."""
    with world.session() as session:
        return max(job.run_after for job in session.exec(select(Job)))


def test_no_comment_when_the_mentorship_turned_alerts_off(world):
    """``bypass_alerts`` off: the bypass is recorded, no alert is queued, nothing is posted."""
    bypassed(world, bypass_alerts=False)
    settle(world)

    assert comments(world) == []
    assert "bypass" in world.audit_kinds()
    with world.session() as session:
        assert session.exec(select(BypassAlert)).all() == []


def test_alerts_turned_off_after_the_bypass_stop_a_comment_not_yet_posted(world):
    """A maintainer turns the alerts off within the settle delay: the job posts nothing."""
    bypassed(world)
    with world.session() as session:
        mentorship = session.exec(select(Mentorship)).one()
        mentorship.bypass_alerts = False
        session.add(mentorship)
        session.commit()
    settle(world)

    assert comments(world) == []


def test_no_comment_for_a_pull_request_merged_with_approval(world):
    """Approved, then merged: no bypass, no comment, no alert."""
    world.promote()
    world.open_pull()
    world.review(reviewer="colesbury", review_id=1)
    world.send("pull_request", merged_payload(world))
    settle(world)

    assert world.pull().gate == "approved"
    assert comments(world) == []


def test_two_workers_at_once_post_one_comment(world):
    """Two workers drain at the same moment while GitHub takes its time over each write:
    the job is held by one of them, and one comment is posted."""
    bypassed(world)
    world.retry_now()
    world.fake.latency(write=0.3)
    first, second = Worker(world.app, concurrency=2), Worker(world.app, concurrency=2)
    threads = [threading.Thread(target=w.drain) for w in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    world.fake.latency()

    assert len(comments(world)) == 1
    assert first.tally.failures == second.tally.failures == []


def test_a_lost_answer_is_found_again_not_posted_twice(world):
    """GitHub creates the comment but answers 502: the retry lists the comments, finds the
    marker and records that comment instead of posting a second one."""
    bypassed(world)
    world.fake.fail_next("POST", COMMENTS, status=502, after_effect=True)
    tally = settle(world)
    assert tally.failures and len(comments(world)) == 1

    assert settle(world).failures == []

    assert len(comments(world)) == 1
    assert comment_calls(world) == [("POST", 502), ("GET", 200)]
    with world.session() as session:
        [alert] = session.exec(select(BypassAlert)).all()
        assert alert.comment_id == comments(world)[0]["id"]


def test_a_worker_that_died_after_posting_leaves_no_second_comment(world):
    """An earlier worker posted and died before recording it (its attempt is on record):
    the next run finds the App's comment by its marker and posts nothing."""
    bypassed(world)
    body = f"{bypass_alerts.MARKER}\nposted by a worker that then died"
    world.fake.add_comment(REPO, 7, author=world.fake.bot_login, body=body)
    with world.session() as session:
        alert = session.exec(select(BypassAlert)).one()
        alert.attempted_at = alert.queued_at
        session.add(alert)
        session.commit()

    settle(world)

    assert [c["body"] for c in comments(world)] == [body]
    assert [method for method, _ in comment_calls(world)] == ["GET"]


def test_a_pasted_marker_in_someone_elses_comment_does_not_count(world):
    """A failed first post (nothing created), then someone pastes the marker into their own
    comment: the retry ignores a person's comment and posts the App's."""
    bypassed(world)
    world.fake.fail_next("POST", COMMENTS, status=502)
    settle(world)
    world.fake.add_comment(REPO, 7, author="mallory", body=bypass_alerts.MARKER)

    settle(world)

    authors = [c["user"]["login"] for c in comments(world)]
    assert authors == ["mallory", world.fake.bot_login]


def test_a_longer_history_is_searched_page_by_page(world):
    """The App's comment is past the first page of a busy pull request's comments."""
    bypassed(world)
    world.fake.fail_next("POST", COMMENTS, status=502, after_effect=True)
    settle(world)
    for index in range(35):
        world.fake.add_comment(REPO, 7, author="chatty", body=f"comment {index}")
    world.fake.comments[(REPO, 7)].append(world.fake.comments[(REPO, 7)].pop(0))

    settle(world)

    assert len([c for c in comments(world) if bypass_alerts.MARKER in c["body"]]) == 1
    assert [m for m, _ in comment_calls(world)].count("GET") == 2  # two pages of 30


# ---------------------------------------------------------------- the setting


@pytest.mark.parametrize(("flag", "expected"), [((), True), (("--no-bypass-alerts",), False)])
def test_promote_turns_alerts_on_unless_told_not_to(runner, session, flag, expected):
    """``gatekeeper promote`` keeps bypass alerts on by default; ``--no-bypass-alerts`` turns
    them off for that mentorship."""
    result = runner.invoke(cli, ["promote", "mpage", "--mentor", "colesbury", "--no-wait", *flag])
    assert result.exit_code == 0, result.output
    assert session.exec(select(Mentorship)).one().bypass_alerts is expected


@pytest.mark.parametrize(("checked", "expected"), [(True, True), (False, False)])
def test_the_new_mentorship_form_has_the_alerts_checkbox(
    tmp_path, migrated_sqlite, checked, expected
):
    """The form shows the checkbox ticked by default, and stores what was submitted."""
    path = tmp_path / "web.sqlite"
    shutil.copyfile(migrated_sqlite, path)
    app = create_app(
        {"database_url": f"sqlite:///{path}", "secret_key": "t", "maintainers": "boss"}
    )
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["login"], cookie["display"] = "boss", "boss"
    page = client.get("/mentorships/new").get_data(as_text=True)
    assert re.search(r'<input checked id="bypass_alerts"|id="bypass_alerts"[^>]*checked', page)
    token = TOKEN.search(page).group(1)
    form = {"csrf_token": token, "mentee": "mpage", "mentors": "colesbury",
            "approvals_required": "1", "action": "start"}  # fmt: skip
    if checked:
        form["bypass_alerts"] = "y"
    assert client.post("/mentorships/new", data=form).status_code == 302
    with Session(app.extensions["gatekeeper.engine"]) as session:
        assert session.exec(select(Mentorship)).one().bypass_alerts is expected
    app.extensions["gatekeeper.engine"].dispose()
