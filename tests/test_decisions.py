"""Deciding and storing a pull request's gate (``gatekeeper/decisions.py``) on SQLite and
PostgreSQL: the gate and its record (when it began and stopped waiting), a lifted gate's
record kept, a closed pull request settled and audited once, and lifecycle changes followed."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from database_support import statements_sent
from factories import (
    DAY,
    HOUR,
    NOW,
    audit_kinds,
    jobs_of,
    mentorship,
    merged_info,
    pull_info,
    review_info,
    settings,
)
from fakegithub import default_user_id
from gatekeeper import decisions, outbox
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.events import PullInfo
from gatekeeper.models import AuditEvent, PullRequest

QUIET = settings(request_reviews=False)


def decide(session: Session, info: PullInfo, *, at=NOW, config=QUIET) -> PullRequest:
    """Store a snapshot, decide its gate at ``at`` and commit, as a delivery would."""
    pull, left = store.record_pull(session, info=info, now=at)
    touched = decisions.reevaluate(session, pull, settings=config, now=at).touched
    outbox.commit_gates(
        session, touched | {(pull.repo, left or pull.head_sha)}, settings=config, now=at
    )
    session.commit()
    return pull


def review(session: Session, pull: PullRequest, *, at, **options) -> PullRequest:
    """Store a review given at ``at`` and decide the gate then."""
    store.upsert_review(session, pull=pull, info=review_info(at=at, **options), now=at)
    session.flush()
    touched = decisions.reevaluate(session, pull, settings=QUIET, now=at).touched
    outbox.commit_gates(session, touched, settings=QUIET, now=at)
    session.commit()
    return pull


def gate_of(session: Session, number: int) -> str:
    """The stored gate of ``python/cpython#number``."""
    pull = store.find_pull(session, repo="python/cpython", number=number)
    assert pull is not None
    return pull.gate


def bypasses(session: Session) -> list[str]:
    """Who each recorded bypass names as the merger."""
    session.expire_all()  # the merger may have been named in place
    return [e.actor for e in session.exec(select(AuditEvent).where(AuditEvent.kind == "bypass"))]


# ---------------------------------------------------------------- an open pull request


def test_a_mentees_pull_request_waits_and_its_record_begins(session: Session):
    """The gate waits from the first decision; deciding again later moves none of its moments
    and audits nothing new."""
    gated = mentorship(session)
    pull = decide(session, pull_info(), at=NOW)
    decide(session, pull_info(), at=NOW + HOUR)
    assert (pull.gate, pull.gated_mentorship_id) == ("waiting", gated.id)
    assert (pull.gated_at, pull.waiting_since, pull.settled_at) == (NOW, NOW, None)
    assert audit_kinds(session) == ["gate_waiting"]


def test_an_approval_settles_the_wait(session: Session):
    """A mentor's approval ends the wait: settled then, the start of the wait kept."""
    mentorship(session)
    pull = decide(session, pull_info(), at=NOW)
    review(session, pull, at=NOW + HOUR, reviewer="colesbury")
    assert (pull.gate, pull.approved_by) == ("approved", ["colesbury"])
    assert (pull.gated_at, pull.waiting_since, pull.settled_at) == (NOW, None, NOW + HOUR)
    assert store.waited_seconds(pull, now=NOW + DAY) == 3600.0
    assert audit_kinds(session) == ["gate_waiting", "gate_approved"]


def test_no_mentorship_needs_no_approval_and_audits_nothing(session: Session):
    """Someone never mentored: not required, no record, nothing audited."""
    mentorship(session, "other")
    pull = decide(session, pull_info(author="guido"))
    assert (pull.gate, pull.gated_at, pull.gated_mentorship_id) == ("not_required", None, None)
    assert audit_kinds(session) == []


@pytest.mark.parametrize(
    ("config", "asked"),
    [
        pytest.param(settings(request_reviews=True), True, id="on"),
        pytest.param(settings(request_reviews=False), False, id="off"),
    ],
)
def test_the_mentors_are_asked_for_a_review_once(session: Session, config, asked: bool):
    """A waiting pull request queues one review request for its mentors, never a second."""
    mentorship(session)
    pull = decide(session, pull_info(), config=config)
    key = "request_reviews:python/cpython#7"
    found = jobs_of(session)
    assert (key in found) == asked
    if asked:
        assert sorted(found[key].args["logins"]) == ["colesbury", "vstinner"]
        session.delete(found[key])  # the worker ran it
        session.commit()
        decide(session, pull_info(), at=NOW + HOUR, config=config)
        assert key not in jobs_of(session)
    assert pull.reviews_requested == asked


# ---------------------------------------------------------------- a lifted gate


@pytest.mark.parametrize(
    ("approved", "gate", "settled"),
    [
        pytest.param(False, "lifted", NOW + 2 * HOUR, id="a-waiting-one-is-lifted"),
        pytest.param(True, "approved", NOW + HOUR, id="an-approved-one-keeps-its-record"),
    ],
)
def test_a_gate_lifted_by_the_mentorships_end_keeps_its_record(
    session: Session, approved: bool, gate: str, settled
):
    """The mentorship ends: a pull request still waiting becomes "lifted", its wait ending
    then, audited once as "gate_lifted"; one approved during the month still reads approved,
    and was not lifted (no "gate_lifted" in the audit log)."""
    gated = mentorship(session)
    pull = decide(session, pull_info(), at=NOW)
    if approved:
        review(session, pull, at=NOW + HOUR)
    lifecycle.end(session, mentee="mpage", reason="graduated", actor="boss", now=NOW + HOUR)
    session.commit()
    for moment in (NOW + 2 * HOUR, NOW + 3 * HOUR):
        decide(session, pull_info(), at=moment)
    assert (pull.gate, pull.settled_at, pull.lifted_at) == (gate, settled, NOW + 2 * HOUR)
    assert (pull.gated_at, pull.gated_mentorship_id, pull.waiting_since) == (NOW, gated.id, None)
    assert pull.approved_by == (["colesbury"] if approved else [])
    assert audit_kinds(session).count("gate_lifted") == (0 if approved else 1)


# ---------------------------------------------------------------- a closed pull request


def test_merging_past_a_waiting_gate_is_one_bypass(session: Session):
    """Merged while waiting: bypassed, audited with the merger once however often it is
    decided again, and the mentors' comment queued."""
    gated = mentorship(session)
    decide(session, pull_info(), at=NOW)
    for _ in range(2):
        pull = decide(session, merged_info(by="ambv", at=NOW + HOUR), at=NOW + 2 * HOUR)
    assert (pull.gate, pull.settled_at, pull.gated_mentorship_id) == (
        "bypassed",
        NOW + HOUR,
        gated.id,
    )
    assert bypasses(session) == ["ambv"]
    assert "bypass_comment:python/cpython#7" in jobs_of(session)


def test_a_bypass_told_before_its_merger_is_completed_once_known(session: Session):
    """A trimmed payload told of the merge without the merger: the bypass names "unknown"
    until a later snapshot names them (merger_known), and stays one record."""
    mentorship(session)
    decide(session, pull_info(), at=NOW)
    decide(session, merged_info(by=None, at=NOW + HOUR), at=NOW + HOUR)
    assert bypasses(session) == ["unknown"]
    decide(session, merged_info(by="ambv", at=NOW + HOUR, updated_at=NOW + 2 * HOUR))
    assert bypasses(session) == ["ambv"]


def test_an_approval_given_before_the_merge_clears_the_bypass_once(session: Session):
    """The approval's delivery came after the merge's: the gate reads approved, and the
    clearing is audited once."""
    mentorship(session)
    decide(session, pull_info(), at=NOW)
    pull = decide(session, merged_info(by="ambv", at=NOW + 2 * HOUR), at=NOW + 2 * HOUR)
    assert pull.gate == "bypassed"
    review(session, pull, at=NOW + HOUR)  # given before the merge, delivered after it
    decide(session, merged_info(by="ambv", at=NOW + 2 * HOUR), at=NOW + 3 * HOUR)
    assert (pull.gate, pull.approved_by) == ("approved", ["colesbury"])
    assert audit_kinds(session, kind_prefix="bypass") == ["bypass", "bypass_cleared"]


def test_closed_without_merging_needs_nothing(session: Session):
    """A waiting pull request closed unmerged is no bypass."""
    mentorship(session)
    decide(session, pull_info(), at=NOW)
    pull = decide(session, pull_info(state="closed", updated_at=NOW + HOUR), at=NOW + HOUR)
    assert pull.gate == "not_required"
    assert bypasses(session) == []


# ---------------------------------------------------------------- lifecycle changes


def test_reevaluate_open_pulls_re_decides_the_mentees_open_pull_requests(session: Session):
    """Pull requests stored before the mentorship began are re-decided when it starts: the
    mentee's open ones, not their closed one nor someone else's."""
    for info in (
        pull_info(1),
        pull_info(2),
        pull_info(3, state="closed"),
        pull_info(4, author="guido"),
    ):
        decide(session, info)
    gated = mentorship(session)
    touched = decisions.reevaluate_open_pulls(session, gated, settings=QUIET, now=NOW + HOUR)
    outbox.commit_gates(session, touched, settings=QUIET, now=NOW + HOUR)
    session.commit()
    gates = {n: gate_of(session, n) for n in (1, 2, 3, 4)}
    assert touched == {("python/cpython", pull_info(1).head_sha)}  # 1 and 2 share their head
    assert gates == {1: "waiting", 2: "waiting", 3: "not_required", 4: "not_required"}


def test_follow_lifecycle_change_decides_now_and_asks_the_worker_to_reconcile(session: Session):
    """The change is reflected in the same transaction and a reconcile job is queued for the
    worker to read what GitHub has."""
    decide(session, pull_info())
    gated = mentorship(session)
    touched = decisions.follow_lifecycle_change(session, gated, settings=QUIET, now=NOW + HOUR)
    outbox.commit_gates(session, touched, settings=QUIET, now=NOW + HOUR)
    session.commit()
    job = jobs_of(session)[f"reconcile:{gated.id}"]
    assert (job.kind, job.args) == ("reconcile", {"mentorship_id": gated.id})
    assert gate_of(session, 7) == "waiting"


# ---------------------------------------------------------------- the commits a decision touches


def test_a_decision_returns_the_commit_it_touched_and_commit_gates_stores_its_check(
    session: Session,
):
    """``reevaluate`` hands back the head it decided; ``outbox.commit_gates`` stores that
    commit's desired check (a new version, not posted yet)."""
    mentorship(session)
    pull = store.upsert_pull(session, info=pull_info(), now=NOW)
    touched = decisions.reevaluate(session, pull, settings=QUIET, now=NOW).touched
    assert touched == {("python/cpython", pull.head_sha)}
    assert outbox.commit_gates(session, touched, settings=QUIET, now=NOW) == 1
    session.commit()
    row = outbox.check_of(
        session, repo="python/cpython", head_sha=pull.head_sha, name="mentor-approval"
    )
    assert row is not None and (row.body["conclusion"], row.version) == ("action_required", 1)


def test_a_gate_committed_without_its_check_is_an_error_in_tests(session: Session):
    """Forgetting ``outbox.commit_gates`` after a decision fails the commit (tests run the
    outbox's guard strictly), and nothing of the transaction is stored."""
    mentorship(session)
    pull = store.upsert_pull(session, info=pull_info(), now=NOW)
    decisions.reevaluate(session, pull, settings=QUIET, now=NOW)
    with pytest.raises(outbox.UnderivedChecks, match="commit_gates was not called"):
        session.commit()
    session.rollback()
    assert store.find_pull(session, repo="python/cpython", number=7) is None


def test_the_commit_a_push_left_must_be_derived_too(session: Session):
    """A new head's check alone is not enough: the commit the pull request left may lose its
    waiter, so committing without it fails; with it, both checks are stored."""
    mentorship(session)
    decide(session, pull_info(head_sha="a" * 40))
    pull, left = store.record_pull(
        session, info=pull_info(head_sha="b" * 40, updated_at=NOW + HOUR), now=NOW + HOUR
    )
    touched = decisions.reevaluate(session, pull, settings=QUIET, now=NOW + HOUR).touched
    outbox.commit_gates(session, touched, settings=QUIET, now=NOW + HOUR)
    with pytest.raises(outbox.UnderivedChecks, match="a" * 40):
        session.commit()
    session.rollback()
    pull, left = store.record_pull(
        session, info=pull_info(head_sha="b" * 40, updated_at=NOW + HOUR), now=NOW + HOUR
    )
    assert left == "a" * 40
    touched = decisions.reevaluate(session, pull, settings=QUIET, now=NOW + HOUR).touched
    moved = touched | {(pull.repo, left)}
    outbox.commit_gates(session, moved, settings=QUIET, now=NOW + HOUR)
    session.commit()
    assert gate_of(session, 7) == "waiting"


def test_outside_tests_a_forgotten_check_is_logged_not_raised(
    session: Session, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """In production the guard never fails a delivery (no signed payload gets a 5xx): the
    commit goes through and the commits whose check may be stale are logged as an error."""
    monkeypatch.setattr(outbox, "STRICT", False)
    mentorship(session)
    pull = store.upsert_pull(session, info=pull_info(), now=NOW)
    decisions.reevaluate(session, pull, settings=QUIET, now=NOW)
    session.commit()
    assert gate_of(session, 7) == "waiting"
    assert [r.levelname for r in caplog.records if "commit_gates" in r.getMessage()] == ["ERROR"]


# ---------------------------------------------------------------- each fact read once


def test_a_second_decision_in_the_transaction_reads_no_mentorship_again(session: Session):
    """Deciding again with what the first decision read (``known``), after a mentor whose
    mentorship it read too (``also``) approved, reads no mentorship and counts the approval;
    the terms read are there by mentorship id."""
    gated = mentorship(session)
    pull = decide(session, pull_info(), at=NOW)
    mentor = (default_user_id("colesbury"), "colesbury")
    first = decisions.reevaluate(session, pull, settings=QUIET, now=NOW, also=[mentor])
    assert mentor in first.mentorships and first.mentorships[mentor] is None  # not a mentee
    assert gated.id is not None and first.terms[gated.id].mentee == "mpage"
    store.upsert_review(session, pull=pull, info=review_info(at=NOW + HOUR), now=NOW + HOUR)
    with statements_sent(session.get_bind()) as statements:
        again = decisions.reevaluate(
            session, pull, settings=QUIET, now=NOW + HOUR, known=first.mentorships
        )
    outbox.commit_gates(session, again.touched, settings=QUIET, now=NOW + HOUR)
    session.commit()
    assert [s for s in statements if "FROM mentorship" in s] == []
    assert (pull.gate, pull.approved_by) == ("approved", ["colesbury"])
