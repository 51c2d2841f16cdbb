"""Each event against the fake GitHub: what is stored, what check run is posted, how many writes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from gate_support import INSTALLATION, REPO
from gatekeeper.models import Repository, Review, utcnow

HEAD, NEW = "a" * 40, "c" * 40


def check_writes(fake):
    return [c for c in fake.writes() if "/check-runs" in c.path]


def test_mentee_pull_gets_one_waiting_check_naming_mentors(world):
    """A signed pull_request.opened by an active mentee yields one action_required check run."""
    world.promote()
    world.open_pull()
    run = world.check()
    assert run["status"] == "completed" and run["conclusion"] == "action_required"
    assert run["output"]["title"].startswith("Waiting for")
    assert "@colesbury" in run["output"]["summary"] and "@vstinner" in run["output"]["summary"]
    assert run["details_url"] == f"https://gatekeeper.example/pulls/{REPO}/7"
    assert run["external_id"] == f"{REPO}#7"
    assert world.last_check_body()["actions"] == [
        {
            "label": "Approve merge",
            "identifier": "approve",
            "description": "Mentors only: let this PR merge",
        }
    ]
    assert len(check_writes(world.fake)) == 1
    assert world.pull().gate == "waiting"


def test_mentors_are_asked_to_review_once(world):
    """The first time a ready mentee PR waits, its mentors are requested as reviewers (one call)."""
    world.promote()
    world.open_pull()
    requests = [c for c in world.fake.writes() if c.path.endswith("/requested_reviewers")]
    assert len(requests) == 1
    assert sorted(requests[0].json["reviewers"]) == ["colesbury", "vstinner"]
    world.push(head_sha=NEW)
    assert len([c for c in world.fake.writes() if c.path.endswith("/requested_reviewers")]) == 1


def test_approval_push_and_reapproval(world):
    """Approval on the head passes; a push makes it stale and waits again; re-approval passes."""
    world.promote()
    world.open_pull()
    world.review(reviewer="colesbury", state="approved", review_id=1)
    assert world.check()["conclusion"] == "success"
    assert world.check()["output"]["title"] == "Approved by @colesbury"
    assert len(world.fake.check_runs_for(REPO, HEAD)) == 1  # updated in place, not duplicated

    world.push(head_sha=NEW)
    assert world.check(NEW)["conclusion"] == "action_required"
    assert "older commit" in world.check(NEW)["output"]["summary"]

    world.review(reviewer="colesbury", state="approved", review_id=2, head_sha=NEW)
    assert world.check(NEW)["conclusion"] == "success"
    assert world.pull().approved_by == ["colesbury"]


def test_dismissed_approval_waits_again(world):
    """Dismissing the approving review puts the gate back to waiting."""
    world.promote()
    world.open_pull()
    world.review(review_id=1)
    world.review(review_id=1, state="dismissed", action="dismissed")
    assert world.check()["conclusion"] == "action_required"


def test_changes_requested_after_approval_waits(world):
    """A later changes-requested review from the same mentor withdraws the approval."""
    world.promote()
    world.open_pull()
    world.review(review_id=1)
    world.review(review_id=2, state="changes_requested")
    assert world.check()["conclusion"] == "action_required"


def test_non_mentor_and_author_approvals_change_nothing(world):
    """Approvals by someone else or by the author leave the gate waiting and make no API call."""
    world.promote()
    world.open_pull()
    world.fake.reset_calls()
    world.review(reviewer="guido", review_id=1)
    world.review(reviewer="mpage", review_id=2)
    assert world.check()["conclusion"] == "action_required"
    assert world.fake.writes() == []


def test_two_approvals_required(world):
    """With two approvals required one mentor is not enough."""
    world.promote(approvals_required=2)
    world.open_pull()
    world.review(reviewer="colesbury", review_id=1)
    assert world.check()["conclusion"] == "action_required"
    world.review(reviewer="VStinner", review_id=2)
    assert world.check()["conclusion"] == "success"


def test_review_arriving_before_its_pull_request(world):
    """A review delivered first creates the PR from the review's payload; the late 'opened' changes nothing."""
    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    opened = world.events.pull_request(
        "opened", number=7, author="mpage", head_sha=HEAD, updated_at="2024-11-20T09:00:00Z"
    )
    world.review(review_id=1)
    assert world.check()["conclusion"] == "success"
    world.fake.reset_calls()
    world.send("pull_request", opened)
    assert world.check()["conclusion"] == "success"
    assert world.fake.writes() == []


def test_stale_synchronize_never_overwrites(world):
    """A synchronize older than the stored snapshot (by updated_at) is ignored."""
    world.promote()
    world.open_pull()
    world.push(head_sha=NEW)
    late = world.events.pull_request(
        "synchronize",
        number=7,
        author="mpage",
        head_sha="d" * 40,
        updated_at="2024-11-01T00:00:00Z",
    )
    world.fake.reset_calls()
    world.send("pull_request", late)
    assert world.pull().head_sha == NEW
    assert world.pull().gate == "waiting"
    assert world.fake.calls == []


def test_fork_pull_request_check_goes_to_base_repository(world):
    """A PR from a fork gets its check in the base repository, on the fork's head sha."""
    world.promote()
    world.fake.add_pull(REPO, 8, author="mpage", head_sha=HEAD, head_repo="mpage/cpython")
    payload = world.events.pull_request(
        "opened", number=8, author="mpage", head_sha=HEAD, fork="mpage/cpython"
    )
    world.send("pull_request", payload)
    assert world.check()["conclusion"] == "action_required"
    assert all(c.path.startswith(f"/repos/{REPO}/") for c in check_writes(world.fake))


def test_everyone_elses_pull_request_gets_success(world):
    """Open PRs by people not under mentorship still get the check, as success."""
    world.open_pull(author="guido")
    run = world.check()
    assert (run["conclusion"], run["output"]["title"]) == ("success", "No mentorship applies")
    assert world.last_check_body()["actions"] == []


def test_identical_reevaluation_makes_no_call(world):
    """An event that changes nothing (an edit of the title) makes no write."""
    world.promote()
    world.open_pull()
    world.fake.reset_calls()
    payload = world.events.pull_request(
        "edited", number=7, author="mpage", head_sha=HEAD, updated_at=world.tick()
    )
    world.send("pull_request", payload)
    assert world.fake.writes() == []


def test_draft_pull_request_gated_but_no_review_request(world):
    """A draft is gated, but mentors are asked to review only when it is ready."""
    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD, draft=True)
    world.send(
        "pull_request",
        world.events.pull_request(
            "opened", number=7, author="mpage", head_sha=HEAD, draft=True, updated_at=world.tick()
        ),
    )
    assert world.check()["conclusion"] == "action_required"
    assert not [c for c in world.fake.writes() if c.path.endswith("/requested_reviewers")]
    world.send(
        "pull_request",
        world.events.pull_request(
            "ready_for_review", number=7, author="mpage", head_sha=HEAD, updated_at=world.tick()
        ),
    )
    assert len([c for c in world.fake.writes() if c.path.endswith("/requested_reviewers")]) == 1


def test_approve_button_from_mentor(world):
    """The check's "Approve merge" button pressed by a mentor approves the current head."""
    world.promote()
    world.open_pull()
    payload = world.events.check_run(
        "requested_action", number=7, head_sha=HEAD, sender="colesbury", app_id=world.fake.app_id
    )
    world.send("check_run", payload)
    assert world.check()["conclusion"] == "success"
    with world.session() as session:
        [approval] = session.exec(select(Review))
    assert (approval.source, approval.reviewer, approval.commit_id) == ("button", "colesbury", HEAD)
    assert "approval" in world.audit_kinds()


def test_approve_button_from_non_mentor_is_refused_and_audited(world):
    """Anyone else pressing the button gets nothing, and the attempt is in the audit log."""
    world.promote()
    world.open_pull()
    world.fake.reset_calls()
    for sender in ("guido", "mpage"):
        payload = world.events.check_run(
            "requested_action", number=7, head_sha=HEAD, sender=sender, app_id=world.fake.app_id
        )
        world.send("check_run", payload)
    assert world.check()["conclusion"] == "action_required"
    assert world.fake.writes() == []
    assert world.audit_kinds().count("approval_refused") == 2


def test_another_apps_check_run_is_ignored(world):
    """A requested_action on a check run of another app is not ours to act on."""
    world.promote()
    world.open_pull()
    payload = world.events.check_run(
        "requested_action",
        number=7,
        head_sha=HEAD,
        sender="colesbury",
        app_id=world.fake.app_id + 1,
    )
    world.send("check_run", payload)
    assert world.check()["conclusion"] == "action_required"


def test_rerequested_posts_afresh(world):
    """Re-run creates a new check run with the current decision."""
    world.promote()
    world.open_pull()
    world.fake.reset_calls()
    payload = world.events.check_run(
        "rerequested", number=7, head_sha=HEAD, sender="mpage", app_id=world.fake.app_id
    )
    world.send("check_run", payload)
    created = [
        c for c in world.fake.writes() if c.method == "POST" and c.path.endswith("/check-runs")
    ]
    assert len(created) == 1
    assert len(world.fake.check_runs_for(REPO, HEAD)) == 2


def test_comment_command_from_mentor_approves(world):
    """A line '/gatekeeper approve' in a new PR comment by a mentor is an approval."""
    world.promote()
    world.open_pull()
    body = "Looks good to me.\n/gatekeeper approve\n"
    world.send(
        "issue_comment", world.events.comment("created", number=7, sender="vstinner", body=body)
    )
    assert world.check()["conclusion"] == "success"


@pytest.mark.parametrize(
    ("action", "sender", "body", "on_pull"),
    [
        ("created", "guido", "/gatekeeper approve", True),
        ("edited", "vstinner", "/gatekeeper approve", True),
        ("deleted", "vstinner", "/gatekeeper approve", True),
        ("created", "vstinner", "please don't /gatekeeper approve yet", True),
        ("created", "vstinner", "/gatekeeper approve", False),
    ],
    ids=["stranger", "edited", "deleted", "inside-text", "on-an-issue"],
)
def test_comment_commands_that_do_not_approve(world, action, sender, body, on_pull):
    """A stranger's command, edited or deleted comments, a command inside other text, or one
    on an issue: none approves, and none writes to GitHub."""
    world.promote()
    world.open_pull()
    world.fake.reset_calls()
    comment = world.events.comment(action, number=7, sender=sender, body=body, on_pull=on_pull)
    world.send("issue_comment", comment)
    assert world.check()["conclusion"] == "action_required"
    assert world.fake.writes() == []


def test_strangers_comment_command_is_audited(world):
    """The refused attempt is in the audit log, with who tried."""
    world.promote()
    world.open_pull()
    comment = world.events.comment("created", number=7, sender="guido", body="/gatekeeper approve")
    world.send("issue_comment", comment)
    assert world.audit_kinds()[-1] == "approval_refused"


def test_merged_while_waiting_is_a_bypass(world):
    """A PR merged although its gate had not passed is recorded as a bypass; nothing is posted."""
    world.promote()
    world.open_pull()
    world.fake.reset_calls()
    payload = world.events.pull_request(
        "closed",
        number=7,
        author="mpage",
        head_sha=HEAD,
        merged=True,
        merged_by="admin",
        updated_at=world.tick(),
    )
    world.send("pull_request", payload)
    assert world.pull().gate == "bypassed"
    assert "bypass" in world.audit_kinds()
    assert world.fake.writes() == []


def test_merged_after_approval_is_no_bypass(world):
    """Merging an approved PR is the normal path."""
    world.promote()
    world.open_pull()
    world.review(review_id=1)
    payload = world.events.pull_request(
        "closed", number=7, author="mpage", head_sha=HEAD, merged=True, updated_at=world.tick()
    )
    world.send("pull_request", payload)
    assert world.pull().gate == "approved"
    assert "bypass" not in world.audit_kinds()


def test_merge_group_gets_the_gate_of_its_pull_request(world):
    """A merge group's head sha gets the check of the PR it adds to the queue (see
    test_merge_queue.py for the rest of the story)."""
    world.promote()
    world.open_pull()
    world.review(review_id=1)
    world.fake.add_commit(REPO, "e" * 40)
    world.send("merge_group", world.events.merge_group(head_sha="e" * 40, number=7))
    run = world.check("e" * 40)
    assert run["conclusion"] == "success"


def test_installation_events_remember_repositories(world):
    """installation and installation_repositories keep the installation id per repository."""
    world.send(
        "installation",
        world.events.installation("created", repos=["python/devguide", "python/peps"]),
    )
    world.send(
        "installation_repositories",
        world.events.installation_repositories("removed", removed=["python/peps"]),
    )
    with world.session() as session:
        rows = {r.full_name: r.installation_id for r in session.exec(select(Repository))}
    assert rows["python/devguide"] == INSTALLATION and rows["python/peps"] is None
    world.send("installation", world.events.installation("deleted", repos=["python/devguide"]))
    with world.session() as session:
        assert session.get(Repository, "python/devguide").installation_id is None


def test_installation_token_is_reused(world):
    """One installation token serves many events until it expires."""
    world.promote()
    world.open_pull()
    world.review(review_id=1)
    world.push(head_sha=NEW)
    assert world.fake.tokens_issued == 1


def test_github_500_keeps_the_post_for_a_retry(world):
    """If GitHub fails, the webhook still gets 2xx and the desire stays in the outbox, with why;
    once the backoff is over the worker posts it."""
    world.promote()
    world.fake.fail_next("POST", r"/repos/.+/check-runs", status=500)
    tally = world.open_pull()
    assert world.fake.check_runs_for(REPO, HEAD) == []
    row = world.outbox(HEAD)
    assert world.pull().gate == "waiting"
    assert (row.posted_version, row.version, row.attempts) == (0, 1, 1)
    assert "500" in row.last_error and row.next_attempt_at is not None
    assert world.work().posted == []  # not due yet: the backoff holds
    world.retry_now()
    assert len(world.work().posted) == 1
    assert world.check()["conclusion"] == "action_required"
    assert world.pending_posts() == 0 and world.outbox(HEAD).last_error is None
    assert tally.status_code == 202


def test_rate_limit_waits_for_its_reset(world):
    """A rate-limit 403 is not waited out by a thread: the post is retried after the reset."""
    world.promote()
    world.fake.fail_next("POST", r"/repos/.+/check-runs", rate_limited=True)
    world.open_pull()
    row = world.outbox(HEAD)
    assert world.fake.check_runs_for(REPO, HEAD) == [] and row.attempts == 1
    # Not the first backoff's 2 s: the reset of the hour's quota.
    assert (
        utcnow() + timedelta(minutes=1)
        < row.next_attempt_at
        < utcnow() + timedelta(hours=1, seconds=5)
    )
    world.retry_now()
    world.work()
    assert world.check()["conclusion"] == "action_required"
    assert world.pending_posts() == 0


def test_rate_limit_then_recovery_through_the_next_event(world):
    """A newer desire (the next event) is posted at once, whatever the older one's backoff."""
    world.promote()
    world.fake.fail_next("POST", r"/repos/.+/check-runs", rate_limited=True)
    world.open_pull()
    world.review(review_id=1)
    assert world.check()["conclusion"] == "success"
    assert world.pending_posts() == 0


def test_button_approves_the_commit_whose_check_was_pressed(world):
    """A mentor pressing Approve on an older commit's check does not approve the newer head."""
    world.promote()
    world.open_pull()
    world.push(head_sha=NEW)
    stale_click = world.events.check_run(
        "requested_action", number=7, head_sha=HEAD, sender="colesbury", app_id=world.fake.app_id
    )
    world.send("check_run", stale_click)
    assert world.check(NEW)["conclusion"] == "action_required"
    assert "older commit" in world.check(NEW)["output"]["summary"]


def test_late_comment_approval_is_dated_when_written(world):
    """'/gatekeeper approve' written before a 'changes requested' review loses, even if delivered last."""
    world.promote()
    world.open_pull()
    written = world.tick()
    world.review(review_id=2, state="changes_requested")
    comment = world.events.comment(
        "created", number=7, sender="colesbury", body="/gatekeeper approve"
    )
    comment["comment"]["created_at"] = written
    world.send("issue_comment", comment)
    assert world.check()["conclusion"] == "action_required"


def test_review_payload_does_not_erase_draft_or_merger(world):
    """A review's trimmed pull request says nothing of draft or merged_by; stored values stay."""
    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD, draft=True)
    world.send(
        "pull_request",
        world.events.pull_request(
            "opened", number=7, author="mpage", head_sha=HEAD, draft=True, updated_at=world.tick()
        ),
    )
    payload = world.events.review(
        "submitted",
        number=7,
        author="mpage",
        head_sha=HEAD,
        reviewer="guido",
        state="commented",
        review_id=5,
        submitted_at=world.tick(),
        updated_at=world.tick(),
    )
    assert "draft" not in payload["pull_request"]  # as in GitHub's own example
    world.send("pull_request_review", payload)
    assert world.pull().draft is True


def test_same_second_snapshot_never_reopens_a_closed_pull(world):
    """GitHub's times have whole seconds: an 'open' snapshot tied with the close is older."""
    world.promote()
    world.open_pull()
    stamp = world.tick()
    closed = world.events.pull_request(
        "closed", number=7, author="mpage", head_sha=HEAD, updated_at=stamp
    )
    late = world.events.pull_request(
        "synchronize", number=7, author="mpage", head_sha=HEAD, updated_at=stamp
    )
    world.send("pull_request", closed)
    world.send("pull_request", late)
    assert world.pull().state == "closed"


def test_closed_without_merge_stops_waiting(world):
    """A PR closed unmerged no longer counts as waiting anywhere."""
    world.promote()
    world.open_pull()
    world.send(
        "pull_request",
        world.events.pull_request(
            "closed", number=7, author="mpage", head_sha=HEAD, updated_at=world.tick()
        ),
    )
    assert (world.pull().gate, world.pull().gate_title) == (
        "not_required",
        "Closed without merging",
    )


@pytest.mark.parametrize(
    ("approved_before_merge", "gate", "cleared"),
    [(True, "approved", True), (False, "bypassed", False)],
    ids=["approved-before-merge", "approved-after-merge"],
)
def test_approval_delivered_after_the_merge(world, approved_before_merge, gate, cleared):
    """Delivered after the merge, an approval given before it clears the recorded bypass;
    one given after it does not make the merge approved."""
    world.promote()
    world.open_pull()
    approved_at = world.tick() if approved_before_merge else None
    merged_at = world.tick()
    merged = world.events.pull_request(
        "closed", number=7, author="mpage", head_sha=HEAD, merged=True, updated_at=merged_at
    )
    world.send("pull_request", merged)
    assert world.pull().gate == "bypassed"
    stamp = approved_at or world.tick()
    review = world.events.review(
        "submitted",
        number=7,
        author="mpage",
        head_sha=HEAD,
        reviewer="colesbury",
        state="approved",
        review_id=1,
        submitted_at=stamp,
        updated_at=stamp,
    )
    if not approved_before_merge:  # GitHub sends the merged pull request with the review
        review["pull_request"].update(state="closed", merged_at=merged_at, closed_at=merged_at)
    world.send("pull_request_review", review)
    assert world.pull().gate == gate
    assert ("bypass_cleared" in world.audit_kinds()) is cleared


def test_check_suite_requested_heals_a_lost_synchronize(world):
    """A push whose synchronize was lost: the check suite request posts the check on the new head."""
    world.open_pull(author="guido")
    world.fake.push(REPO, 7, NEW)  # GitHub knows the new head; its synchronize never arrived
    suite = world.events.check_suite("requested", head_sha=NEW, numbers=[7])
    world.send("check_suite", suite)
    assert world.check(NEW)["conclusion"] == "success"
    assert world.pull().head_sha == NEW


def test_check_suite_rerequested_posts_afresh(world):
    """ "Re-run all checks" creates a new run of ours on the head."""
    world.promote()
    world.open_pull()
    world.fake.reset_calls()
    world.send("check_suite", world.events.check_suite("rerequested", head_sha=HEAD, numbers=[7]))
    assert len(world.fake.check_runs_for(REPO, HEAD)) == 2
