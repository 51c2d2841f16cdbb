"""``deliveries.apply_together`` read cold: what two workers, replays, backoffs and the
fallback to one delivery at a time can do to a batch of one pull request's deliveries.

Each test interleaves what a second worker (or the door) does with a batch at the moment
that matters, through the database: a session of its own, as another process would.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from sqlmodel import col, select, update
from test_deliveries import receive, stored
from test_deliveries_together import (
    HEAD,
    NEW,
    a_bug_in_the_second_of_three,
    apply_together,
    opened,
    outcomes,
)
from test_metrics import delta, scrape

from fakegithub import default_repo_id, default_user_id
from gate_support import REPO
from gatekeeper import deliveries, people
from gatekeeper.events import Person
from gatekeeper.models import Account, AuditEvent, CommitCheck, Delivery, utcnow
from webhook_events import Events


def push_then_approve(world) -> None:
    """PR 7 known; then queued: a push to NEW (d-2) and a mentor's approving comment written
    after it (d-3)."""
    world.promote()
    assert receive(world, "pull_request", opened(world, 7), "d-1").status == 202
    assert outcomes(apply_together(world)) == [("d-1", "processed")]
    world.fake.push(REPO, 7, NEW)
    pushed = world.events.pull_request(
        "synchronize", number=7, author="mpage", head_sha=NEW, updated_at=world.tick()
    )
    assert receive(world, "pull_request", pushed, "d-2").status == 202
    approve = world.events.comment(
        "created", number=7, sender="colesbury", body="/gatekeeper approve"
    )
    assert receive(world, "issue_comment", approve, "d-3").status == 202


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_batch_is_applied_oldest_first_when_an_older_delivery_joins_it(world, monkeypatch):
    """The door stamps a delivery when it arrives and commits it a moment later: the push
    (d-2) arrived first, but is committed only after this worker has claimed the approving
    comment (d-3), as the oldest it could see (with a later review, d-4, waiting too), and
    before it claims the pull request's others, so the push joins the batch. It is older:
    applied first, the comment approves the head it was written on, the new one. (Applied
    before it, the comment was taken for an approval of the old head.) SQLite has one
    writer at a time: the door waits for the batch."""
    push_then_approve(world)
    review = world.review_payload(7, reviewer="dev15", state="commented", head_sha=NEW)
    assert receive(world, "pull_request_review", review, "d-4").status == 202

    def push_committed(committed: bool) -> None:
        with world.session() as session:
            session.exec(
                update(Delivery)  # type: ignore[call-overload]
                .where(Delivery.delivery_id == "d-2")
                .values(outcome="queued" if committed else "received")
            )
            session.commit()

    push_committed(False)
    real = deliveries.claim_following

    def the_door_commits_the_push(session, first):
        push_committed(True)
        return real(session, first)

    monkeypatch.setattr(deliveries, "claim_following", the_door_commits_the_push)
    applied = apply_together(world)
    with world.session() as session:
        approval = session.exec(select(AuditEvent).where(AuditEvent.kind == "approval")).one()
    assert approval.detail == f"comment on {NEW[:12]}"
    assert world.pull().gate == "approved"
    assert outcomes(applied) == [(f"d-{n}", "processed") for n in (2, 3, 4)]
    with world.session() as session:
        row = session.exec(select(CommitCheck).where(CommitCheck.head_sha == NEW)).one()
    assert row.body["conclusion"] == "success"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_later_delivery_applied_while_another_worker_holds_an_earlier_one_ends_right(world):
    """Another worker holds the push (d-2) and has not applied it yet; this one takes the
    next free delivery, the approving comment written after the push (d-3), and applies it
    first (one at a time did the same; a batch holds a pull request's deliveries longer).
    The comment is bound to the only head known then; once the push is applied it is bound
    again, by its time, to the head it was written on: the new head is approved.

    What it leaves: the audit line, written when the comment was applied, names the former
    head. Passing over a pull request whose older delivery is held would spare that, but it
    cost the claim a subquery and the applier a third of a second at the load benchmark's
    median (tried, and taken back)."""
    push_then_approve(world)
    with world.session() as holder:
        held = deliveries.claim(holder)
        assert held is not None and held.delivery.delivery_id == "d-2"
        early = apply_together(world)
        holder.rollback()
    late = apply_together(world)
    assert outcomes(early + late) == [("d-3", "processed"), ("d-2", "processed")]
    pull = world.pull()
    assert (pull.head_sha, pull.gate) == (NEW, "approved")
    with world.session() as session:
        row = session.exec(select(CommitCheck).where(CommitCheck.head_sha == NEW)).one()
    assert row.body["conclusion"] == "success"


def test_a_rename_inside_a_batch_leaves_no_check_under_the_former_name(world, caplog):
    """A mentor's approval delivered under the repository's name, then a push delivered
    under its new name (same repository id: one batch). Applied one at a time, the push
    moves the head's check to the new name. Together, the approval's commit was derived at
    the end under the name it was delivered with, after the move: a check row was left
    under the former name (a later rename back would collide with it). The batch is
    applied as one, with no commit left underived."""
    world.promote()
    assert receive(world, "pull_request", opened(world, 7), "d-1").status == 202
    assert outcomes(apply_together(world)) == [("d-1", "processed")]
    review = world.review_payload(7, reviewer="colesbury", review_id=1)
    assert receive(world, "pull_request_review", review, "d-2").status == 202
    renamed = "python/cpython-renamed"
    world.fake.rename_repo(REPO, renamed)
    world.fake.push(renamed, 7, NEW)
    pushed = Events(repo=renamed, repo_id=default_repo_id(REPO)).pull_request(
        "synchronize", number=7, author="mpage", head_sha=NEW, updated_at=world.tick()
    )
    assert receive(world, "pull_request", pushed, "d-3").status == 202
    with caplog.at_level(logging.INFO, logger="gatekeeper"):
        applied = apply_together(world)
    assert outcomes(applied) == [("d-2", "processed"), ("d-3", "processed")]
    assert [r.getMessage() for r in caplog.records if "one at a time" in r.getMessage()] == []
    with world.session() as session:
        assert {row.repo for row in session.exec(select(CommitCheck))} == {renamed}


def test_a_failure_met_only_in_a_batch_is_logged_with_its_traceback(world, monkeypatch, caplog):
    """A bug that only a batch meets (an object read before another delivery of the batch,
    say: what the load benchmark caught) leaves no trace in the outcomes, since the
    deliveries applied one at a time are applied. Its traceback is logged, or it would go
    unseen."""
    world.promote()
    assert receive(world, "pull_request", opened(world, 7), "d-1").status == 202
    review = world.review_payload(7, reviewer="colesbury", review_id=1)
    assert receive(world, "pull_request_review", review, "d-2").status == 202
    real = deliveries._apply

    def a_bug_only_in_a_batch(session, settings, delivery, **options):
        if not options["alone"] and delivery.delivery_id == "d-2":
            raise RuntimeError("a bug only a batch meets")
        return real(session, settings, delivery, **options)

    monkeypatch.setattr(deliveries, "_apply", a_bug_only_in_a_batch)
    with caplog.at_level(logging.INFO, logger="gatekeeper.deliveries"):
        applied = apply_together(world)
    assert outcomes(applied) == [("d-1", "processed"), ("d-2", "processed")]
    assert world.pull().gate == "approved"
    [logged] = [record for record in caplog.records if record.exc_info]
    assert logged.levelno == logging.ERROR
    assert str(logged.exc_info[1]) == "a bug only a batch meets"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_batches_on_pull_requests_sharing_a_head_leave_its_check_from_both(world, monkeypatch):
    """Two of mpage's pull requests on the same commit, each approved by a mentor's review
    queued with a comment review: one worker's batch (PR 7) applies both, and before it
    derives the commit's check another worker applies PR 8's batch whole, deriving the
    commit from PR 7 as committed (waiting). The first batch then derives the commit after
    its lock, from PR 8 as the other committed it: the commit passes, both being approved.
    (SQLite: one writer at a time.)"""
    world.promote()
    assert receive(world, "pull_request", opened(world, 7), "d-1").status == 202
    assert receive(world, "pull_request", opened(world, 8), "d-2").status == 202
    assert outcomes(apply_together(world)) == [("d-1", "processed")]
    assert outcomes(apply_together(world)) == [("d-2", "processed")]
    know(world, "vstinner", "colesbury")  # or the other batch waits for the first's insert
    for number, first in ((7, 3), (8, 5)):
        comment = world.review_payload(
            number, reviewer="vstinner", state="commented", review_id=first
        )
        assert receive(world, "pull_request_review", comment, f"d-{first}").status == 202
        approval = world.review_payload(number, reviewer="colesbury", review_id=first + 1)
        assert receive(world, "pull_request_review", approval, f"d-{first + 1}").status == 202
    real = deliveries._apply
    others: list[list[deliveries.Applied]] = []

    def the_other_worker_applies_pr_8_meanwhile(session, settings, delivery, **options):
        done = real(session, settings, delivery, **options)
        if delivery.delivery_id == "d-4":
            monkeypatch.setattr(deliveries, "_apply", real)
            others.append(apply_together(world))
        return done

    monkeypatch.setattr(deliveries, "_apply", the_other_worker_applies_pr_8_meanwhile)
    assert outcomes(apply_together(world)) == [("d-3", "processed"), ("d-4", "processed")]
    assert [outcomes(applied) for applied in others] == [
        [("d-5", "processed"), ("d-6", "processed")]
    ]
    assert (world.pull(7).gate, world.pull(8).gate) == ("approved", "approved")
    with world.session() as session:
        row = session.exec(select(CommitCheck).where(CommitCheck.head_sha == HEAD)).one()
    assert row.body["conclusion"] == "success"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_batches_seeing_the_same_new_accounts_in_opposite_orders_both_end_applied(
    world, monkeypatch
):
    """Two newcomers comment on two pull requests, in the opposite order on each. One
    worker's batch (PR 7) records the first newcomer's account, another worker's (PR 8) the
    second's; each then needs the account the other holds until it commits. One at a time
    a delivery records its people in one order (by id) and commits: no cycle. Together,
    PostgreSQL finds the deadlock after a second and aborts one batch, which ``db.writing``
    applies again from the start: both end applied, each account recorded once. (Recording
    a batch's people in one order before the first delivery would spare that second; it is
    left for later. SQLite: one writer at a time.)"""
    world.promote()
    for delivery_id, number in (("d-1", 7), ("d-2", 8)):
        assert receive(world, "pull_request", opened(world, number), delivery_id).status == 202
        assert outcomes(apply_together(world)) == [(delivery_id, "processed")]
    for delivery_id, number, reviewer in (
        ("d-3", 7, "newbie1"),
        ("d-4", 7, "newbie2"),
        ("d-5", 8, "newbie2"),
        ("d-6", 8, "newbie1"),
    ):
        comment = world.review_payload(
            number, reviewer=reviewer, state="commented", review_id=int(delivery_id[2:])
        )
        assert receive(world, "pull_request_review", comment, delivery_id).status == 202
    real = deliveries._apply
    first_seen = {"d-3": threading.Event(), "d-5": threading.Event()}
    other = {"d-3": "d-5", "d-5": "d-3"}
    applied: list[list[deliveries.Applied]] = []
    worker = threading.Thread(target=lambda: applied.append(apply_together(world)))

    def each_holds_its_first_newcomer(session, settings, delivery, **options):
        done = real(session, settings, delivery, **options)
        if delivery.delivery_id in first_seen:
            if delivery.delivery_id == "d-3" and worker.ident is None:
                worker.start()  # it claims PR 8's deliveries, PR 7's being held
            first_seen[delivery.delivery_id].set()
            first_seen[other[delivery.delivery_id]].wait(timeout=60)
        return done

    monkeypatch.setattr(deliveries, "_apply", each_holds_its_first_newcomer)
    applied.append(apply_together(world))
    worker.join()
    assert sorted(outcomes(applied[0] + applied[1])) == [
        (f"d-{n}", "processed") for n in (3, 4, 5, 6)
    ]
    with world.session() as session:
        logins = session.exec(select(Account.login).where(col(Account.login).like("newbie%")))
        assert sorted(logins) == ["newbie1", "newbie2"]


def test_a_replay_and_a_delivery_backing_off_stay_out_of_the_batch(world):
    """Queued for PR 7: a mentor's approval, the same body again under another id (a
    replay), a comment review the database refused a moment ago (its retry is not due), and
    another comment review. The batch is the approval and the last review; the replay is
    recognised next, once its original is applied; the one backing off waits its turn."""
    world.promote()
    assert receive(world, "pull_request", opened(world, 7), "d-1").status == 202
    assert outcomes(apply_together(world)) == [("d-1", "processed")]
    approval = world.review_payload(7, reviewer="colesbury", review_id=2)
    assert receive(world, "pull_request_review", approval, "d-2").status == 202
    assert receive(world, "pull_request_review", approval, "d-3").status == 202
    for delivery_id, review_id in (("d-4", 4), ("d-5", 5)):
        comment = world.review_payload(
            7, reviewer="vstinner", state="commented", review_id=review_id
        )
        assert receive(world, "pull_request_review", comment, delivery_id).status == 202
    with world.session() as session:
        session.exec(
            update(Delivery)  # type: ignore[call-overload]
            .where(Delivery.delivery_id == "d-4")
            .values(attempts=1, retry_at=utcnow() + timedelta(hours=1))
        )
        session.commit()
    assert outcomes(apply_together(world)) == [("d-2", "processed"), ("d-5", "processed")]
    assert outcomes(apply_together(world)) == [("d-3", "replay")]
    assert apply_together(world) == []
    assert stored(world)["d-4"].outcome == "queued"
    assert world.pull().gate == "approved"
    with world.session() as session:
        audit = session.exec(select(AuditEvent).where(AuditEvent.kind == "approval")).all()
    assert len(audit) == 1


@pytest.mark.parametrize(
    "kind",
    ["comment on an issue", "check run button", "merge group", "installation"],
)
def test_deliveries_about_no_single_pull_request_are_never_batched(world, kind):
    """The door names a pull request only for the events that are about one (a pull
    request's, a review's, a comment's on a pull request): a button press on a check run
    (a commit's, its pull requests listed), a merge group and an installation name none,
    so the worker applies each alone. A command on an issue is not even queued."""
    world.promote()
    events = world.events
    event, payload = {
        "comment on an issue": (
            "issue_comment",
            events.comment(
                "created", number=5, sender="colesbury", body="/gatekeeper approve", on_pull=False
            ),
        ),
        "check run button": (
            "check_run",
            events.check_run(
                "requested_action", number=7, head_sha=HEAD, sender="colesbury", app_id=1
            ),
        ),
        "merge group": ("merge_group", events.merge_group(head_sha=NEW, number=7)),
        "installation": ("installation", events.installation("created", repos=[REPO])),
    }[kind]
    receive(world, event, payload, "d-1")
    row = stored(world)["d-1"]
    if kind == "comment on an issue":
        assert row.outcome == "ignored"
    else:
        assert (row.outcome, row.pull_number) == ("queued", None)


def test_a_batch_applied_one_at_a_time_counts_and_logs_each_delivery_once(
    world, monkeypatch, caplog
):
    """A batch of three meets a bug in its second delivery and is applied one at a time:
    the metrics count three deliveries (two processed, one failed), each waited once, and
    each delivery's outcome is logged once: the batch that was rolled back counts none."""
    a_bug_in_the_second_of_three(world, monkeypatch)
    before = scrape(world.client)
    with caplog.at_level(logging.INFO, logger="gatekeeper.deliveries"):
        applied = apply_together(world)
    after = scrape(world.client)
    assert outcomes(applied) == [("d-1", "processed"), ("d-2", "failed"), ("d-3", "processed")]
    counted = "gatekeeper_deliveries_applied_total"
    assert delta(after, before, counted, event="pull_request", outcome="processed") == 1
    assert delta(after, before, counted, event="issue_comment", outcome="failed") == 1
    assert delta(after, before, counted, event="pull_request_review", outcome="processed") == 1
    assert delta(after, before, "gatekeeper_delivery_queue_seconds_count") == 3
    logged = [r.getMessage() for r in caplog.records if " applied: " in r.getMessage()]
    assert logged == [
        "delivery d-1 (pull_request) applied: processed",
        "delivery d-2 (issue_comment) applied: failed",
        "delivery d-3 (pull_request_review) applied: processed",
    ]


def know(world, *logins: str) -> None:
    """Gatekeeper has seen these accounts already."""
    with world.session() as session:
        for login in logins:
            people.learn(session, Person(default_user_id(login), login, login), at=utcnow())
        session.commit()
