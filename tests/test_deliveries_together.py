"""``deliveries.apply_together``: the worker applies a pull request's queued deliveries in one
transaction, oldest first, to the same end as one at a time; a batch that meets a failure, or
a delivery waiting for its pull request, is applied one at a time instead.

The door records which pull request each delivery is about (GitHub's repository id and the
number); the worker's applier claims the oldest queued delivery and the others of its pull
request that no other worker holds.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlmodel import col, delete, select, update
from test_deliveries import apply_next, receive, stored

from fakegithub import default_user_id
from gate_support import REPO, World
from gatekeeper import deliveries, people, settings_of
from gatekeeper.events import Person
from gatekeeper.models import (
    Account,
    AuditEvent,
    CommitCheck,
    Delivery,
    Job,
    MentorAssignment,
    utcnow,
)

HEAD, NEW = "a" * 40, "c" * 40


def apply_together(world: World) -> list[deliveries.Applied]:
    """Have the worker's applier take the oldest delivery, with its pull request's others."""
    with world.app.app_context(), world.session() as session:
        return deliveries.apply_together(session, settings_of(world.app))


def outcomes(applied: list[deliveries.Applied]) -> list[tuple[str, str]]:
    return [(one.delivery_id, one.outcome) for one in applied]


def opened(world: World, number: int, head_sha: str = HEAD) -> dict[str, Any]:
    world.fake.add_pull(REPO, number, author="mpage", head_sha=head_sha)
    return world.events.pull_request(
        "opened", number=number, author="mpage", head_sha=head_sha, updated_at=world.tick()
    )


def story(world: World, number: int, first: str, second: str) -> list[tuple[str, dict]]:
    """A mentee's pull request opened, approved, pushed to, asked for changes by one mentor
    and approved by the other's comment."""
    base = number * 10
    happened = [
        ("pull_request", opened(world, number, first)),
        ("pull_request_review", world.review_payload(number, head_sha=first, review_id=base)),
    ]
    world.fake.push(REPO, number, second)
    pushed = world.events.pull_request(
        "synchronize", number=number, author="mpage", head_sha=second, updated_at=world.tick()
    )
    changes = world.review_payload(
        number, reviewer="vstinner", state="changes_requested", head_sha=second, review_id=base + 1
    )
    approve = world.events.comment(
        "created", number=number, sender="colesbury", body="/gatekeeper approve", comment_id=base
    )
    happened += [
        ("pull_request", pushed),
        ("pull_request_review", changes),
        ("issue_comment", approve),
    ]
    return happened


def outcome_of(world: World, number: int, head_sha: str) -> dict[str, Any]:
    """What the pull request's story left: its gate, its audit, and its head's check, with
    its commits' SHAs and its number in links written alike (the two stories' differ)."""
    pull = world.pull(number)
    with world.session() as session:
        audit = session.exec(
            select(AuditEvent).where(AuditEvent.pr_number == number).order_by(col(AuditEvent.id))
        ).all()
        check = session.exec(select(CommitCheck).where(CommitCheck.head_sha == head_sha)).one()
    shown = (pull.gate, pull.gate_title, pull.gate_summary, pull.approved_by, pull.head_sha)
    text = json.dumps(
        {"gate": shown, "audit": [(a.kind, a.actor, a.detail) for a in audit], "check": check.body}
    )
    return json.loads(
        re.sub("[0-9a-f]{7,40}", "#", text).replace(f"/{number}", "/N").replace(f"#{number}", "#N")
    )


def test_a_pull_requests_deliveries_applied_together_end_as_one_at_a_time(world):
    """The same story on two pull requests: one applied a delivery at a time, the other in one
    transaction. Gates, audit lines and the head's check are the same. The batch derived each
    commit's check once, from where its last delivery left it: the head's once (one version),
    and none for the head the push left, which one at a time had wanted posted twice; a
    check nobody will see again is never posted."""
    world.promote()
    for number, first, second, delivery_ids in (
        (7, HEAD, NEW, [f"seven-{i}" for i in range(5)]),
        (8, "b" * 40, "d" * 40, [f"eight-{i}" for i in range(5)]),
    ):
        for delivery_id, (event, payload) in zip(
            delivery_ids, story(world, number, first, second), strict=True
        ):
            assert receive(world, event, payload, delivery_id).status == 202
        if number == 7:
            applied = []
            while (one := apply_next(world)) is not None:
                applied.append(one)
        else:
            applied = apply_together(world)
        assert outcomes(applied) == [(d, "processed") for d in delivery_ids]
    together = outcome_of(world, 8, "d" * 40)
    assert together == outcome_of(world, 7, NEW)
    assert together["gate"][:2] == ["approved", "Approved by @colesbury"]
    assert together["check"]["conclusion"] == "success"
    with world.session() as session:
        versions = {
            row.head_sha[0]: row.version
            for row in session.exec(select(CommitCheck).where(CommitCheck.repo == REPO))
        }
    # One at a time: a new version after each delivery that changed a check, five in all.
    assert versions == {"a": 2, "c": 3, "b": 0, "d": 1}


def test_only_the_oldest_deliverys_pull_request_is_taken(world):
    """The batch is the oldest delivery's pull request only, oldest first; another pull
    request's delivery waits for the next turn."""
    world.promote()
    assert receive(world, "pull_request", opened(world, 7), "d-1").status == 202
    assert receive(world, "pull_request", opened(world, 8, "b" * 40), "d-2").status == 202
    review = world.review_payload(7, reviewer="colesbury", review_id=1)
    assert receive(world, "pull_request_review", review, "d-3").status == 202
    assert outcomes(apply_together(world)) == [("d-1", "processed"), ("d-3", "processed")]
    assert stored(world)["d-2"].outcome == "queued"
    assert world.pull(7).gate == "approved"
    assert outcomes(apply_together(world)) == [("d-2", "processed")]
    assert apply_together(world) == []


def test_the_door_records_the_pull_request_a_delivery_is_about(world):
    """By repository id and number, from a pull request's, a review's and a comment's payload;
    an event about no single pull request (a check suite) names none."""
    world.promote()
    payload = opened(world, 7)
    receive(world, "pull_request", payload, "opened")
    comment = world.events.comment(
        "created", number=7, sender="colesbury", body="/gatekeeper approve"
    )
    receive(world, "issue_comment", comment, "comment")
    suite = world.events.check_suite("requested", head_sha=HEAD, numbers=[7])
    receive(world, "check_suite", suite, "suite")
    rows = stored(world)
    repository_id = payload["repository"]["id"]
    assert (rows["opened"].repository_id, rows["opened"].pull_number) == (repository_id, 7)
    assert (rows["comment"].repository_id, rows["comment"].pull_number) == (repository_id, 7)
    assert rows["suite"].pull_number is None


def test_a_number_no_pull_request_can_have_is_not_recorded(world):
    """A signed payload whose number no column can hold is stored with none, not refused by
    the database (a 5xx would have GitHub send it again and again)."""
    world.promote()
    payload = opened(world, 7)
    payload["number"] = 2**40
    payload["pull_request"]["number"] = 2**40
    answer = receive(world, "pull_request", payload, "huge")
    assert answer.status in (202, 422)
    assert stored(world)["huge"].pull_number is None


def a_bug_in_the_second_of_three(world: World, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Queued for PR 7: its opening, an approving comment whose application meets a bug,
    a mentor's approval. The comment's payload."""
    world.promote()
    assert receive(world, "pull_request", opened(world, 7), "d-1").status == 202
    broken = world.events.comment(
        "created", number=7, sender="colesbury", body="/gatekeeper approve"
    )
    assert receive(world, "issue_comment", broken, "d-2").status == 202
    review = world.review_payload(7, reviewer="colesbury", review_id=1)
    assert receive(world, "pull_request_review", review, "d-3").status == 202
    real = deliveries._apply

    def a_bug_in_the_comment(session, settings, delivery, **options):
        if delivery.delivery_id == "d-2":
            raise RuntimeError("a bug")
        return real(session, settings, delivery, **options)

    monkeypatch.setattr(deliveries, "_apply", a_bug_in_the_comment)
    return broken


def test_a_batch_with_a_delivery_that_raises_is_applied_one_at_a_time(world, monkeypatch):
    """A bug met by one delivery of the batch rolls the batch back; applied one at a time,
    that one is kept as failed and the others are applied."""
    broken = a_bug_in_the_second_of_three(world, monkeypatch)
    applied = apply_together(world)
    assert outcomes(applied) == [("d-1", "processed"), ("d-2", "failed"), ("d-3", "processed")]
    rows = stored(world)
    assert rows["d-2"].error == "RuntimeError" and json.loads(rows["d-2"].body or b"") == broken
    assert world.pull().gate == "approved"


def test_a_batch_with_a_delivery_waiting_for_its_pull_request_is_applied_one_at_a_time(world):
    """A comment on a pull request never seen waits for GitHub's answer (deferred, with the
    job that reads it); the review queued after it, which brings the pull request itself,
    is applied in its own transaction. The job then applies the comment."""
    world.promote()
    world.fake.add_pull(REPO, 9, author="mpage", head_sha=HEAD)
    comment = world.events.comment(
        "created", number=9, sender="colesbury", body="/gatekeeper approve"
    )
    assert receive(world, "issue_comment", comment, "d-1").status == 202
    review = world.review_payload(9, reviewer="vstinner", review_id=1)
    assert receive(world, "pull_request_review", review, "d-2").status == 202
    assert outcomes(apply_together(world)) == [("d-1", "deferred"), ("d-2", "processed")]
    with world.session() as session:
        jobs = session.exec(select(Job).where(Job.kind == "sync_pull")).all()
    assert [json.loads(json.dumps(job.args))["number"] for job in jobs] == [9]
    world.work()
    assert stored(world)["d-1"].outcome == "processed"
    assert world.pull(9).gate == "approved"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_batch_another_worker_holds_is_skipped_for_the_next_pull_request(world):
    """While one worker holds a pull request's deliveries, another takes the next pull
    request's, none of the held ones. (SQLite has one writer at a time: the other waits.)"""
    world.promote()
    assert receive(world, "pull_request", opened(world, 7), "d-1").status == 202
    assert receive(world, "pull_request", opened(world, 8, "b" * 40), "d-2").status == 202
    review = world.review_payload(7, reviewer="colesbury", review_id=1)
    assert receive(world, "pull_request_review", review, "d-3").status == 202
    with world.session() as holder:
        first = deliveries.claim(holder)
        assert first is not None and first.delivery.delivery_id == "d-1"
        held = deliveries.claim_following(holder, first.delivery)
        assert [each.delivery.delivery_id for each in held] == ["d-3"]
        assert outcomes(apply_together(world)) == [("d-2", "processed")]
        holder.rollback()
    assert outcomes(apply_together(world)) == [("d-1", "processed"), ("d-3", "processed")]
    with world.session() as session:
        left = session.exec(select(Delivery).where(Delivery.outcome == "queued")).all()
    assert left == []


def test_an_approving_comment_after_a_push_in_one_batch_approves_the_new_head(world):
    """Found by the load benchmark: a review commenting, a push and a mentor's approving
    comment, queued together for a pull request applied before."""
    world.promote()
    assert receive(world, "pull_request", opened(world, 7), "d-1").status == 202
    assert outcomes(apply_together(world)) == [("d-1", "processed")]
    review = world.review_payload(7, reviewer="dev30", state="commented", review_id=1)
    assert receive(world, "pull_request_review", review, "d-2").status == 202
    world.fake.push(REPO, 7, NEW)
    pushed = world.events.pull_request(
        "synchronize", number=7, author="mpage", head_sha=NEW, updated_at=world.tick()
    )
    assert receive(world, "pull_request", pushed, "d-3").status == 202
    approve = world.events.comment(
        "created", number=7, sender="vstinner", body="/gatekeeper approve"
    )
    assert receive(world, "issue_comment", approve, "d-4").status == 202
    assert outcomes(apply_together(world)) == [(f"d-{n}", "processed") for n in (2, 3, 4)]
    assert world.pull().gate == "approved"
    with world.session() as session:
        row = session.exec(select(CommitCheck).where(CommitCheck.head_sha == NEW)).one()
    assert row.body["conclusion"] == "success"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_each_delivery_of_a_batch_reads_what_others_committed_meanwhile(world, monkeypatch):
    """Found by the load benchmark: a batch read a mentor's assignment (id not known yet)
    for its first delivery; another worker then learned the mentor's id; the mentor's
    approval, next in the batch, must count, as it would in a transaction of its own.
    (SQLite has one writer at a time: no other can commit during a batch.)"""
    world.promote()
    assert receive(world, "pull_request", opened(world, 7), "d-1").status == 202
    assert outcomes(apply_together(world)) == [("d-1", "processed")]
    with world.session() as session:  # colesbury named a mentor before Gatekeeper saw them
        session.exec(delete(Account).where(Account.login == "colesbury"))  # type: ignore[call-overload]
        session.exec(
            update(MentorAssignment)  # type: ignore[call-overload]
            .where(MentorAssignment.mentor == "colesbury")
            .values(mentor_id=None)
        )
        session.commit()
    comment = world.review_payload(7, reviewer="dev15", state="commented", review_id=1)
    assert receive(world, "pull_request_review", comment, "d-2").status == 202
    approval = world.review_payload(7, reviewer="colesbury", review_id=2)
    assert receive(world, "pull_request_review", approval, "d-3").status == 202
    real = deliveries._apply

    def another_worker_learns_colesbury_after_the_first(session, settings, delivery, **options):
        done = real(session, settings, delivery, **options)
        if delivery.delivery_id == "d-2":
            with world.session() as other:
                colesbury = Person(default_user_id("colesbury"), "colesbury", "colesbury")
                people.learn(other, colesbury, at=utcnow())
                other.commit()
        return done

    monkeypatch.setattr(deliveries, "_apply", another_worker_learns_colesbury_after_the_first)
    assert outcomes(apply_together(world)) == [("d-2", "processed"), ("d-3", "processed")]
    assert world.pull().gate == "approved"
