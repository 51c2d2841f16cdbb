"""Approvals without a review (``gatekeeper/approvals.py``) on SQLite and PostgreSQL: who may
approve, what one approval records, and the audit trail of each approval and refusal."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlmodel import Session

from factories import HOUR, NEW_SHA, NOW, SHA, audit_kinds, mentorship, pull_info, settings
from fakegithub import default_user_id
from gatekeeper import approvals, decisions, outbox
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.models import PullRequest

QUIET = settings(request_reviews=False)


def waiting_pull(session: Session, *, head_sha: str = SHA, at: datetime = NOW) -> PullRequest:
    """The mentee's pull request, waiting for a mentor since ``at``."""
    pull, left = store.record_pull(
        session, info=pull_info(head_sha=head_sha, updated_at=at), now=at
    )
    touched = decisions.reevaluate(session, pull, settings=QUIET, now=at).touched
    moved = {(pull.repo, left)} if left is not None else set()
    outbox.commit_gates(session, touched | moved, settings=QUIET, now=at)
    session.commit()
    return pull


def approve(session: Session, pull: PullRequest, login: str, **options) -> str | None:
    """The account of ``login`` presses the button at ``NOW + HOUR`` (unless ``now`` says
    otherwise); committed. The refusal's message, if refused."""
    now = options.pop("now", NOW + HOUR)
    refusal, touched = approvals.approve(
        session, pull, login=login, user_id=default_user_id(login), source="button",
        settings=QUIET, now=now, **options,
    )  # fmt: skip
    outbox.commit_gates(session, touched, settings=QUIET, now=now)
    session.commit()
    return None if refusal is None else str(refusal)


def refusal_for(session: Session, pull: PullRequest, login: str) -> str | None:
    """Why the account of ``login`` may not approve ``pull`` now (its message), if it may not."""
    refusal = approvals.approval_refusal(session, pull, login=login, user_id=default_user_id(login))
    return None if refusal is None else str(refusal)


def test_a_mentors_approval_approves_and_is_audited(session: Session):
    """The mentor's press is recorded on the head, the gate approves, and it is audited."""
    mentorship(session)
    pull = waiting_pull(session)
    assert approve(session, pull, "Colesbury") is None
    assert (pull.gate, pull.approved_by) == ("approved", ["colesbury"])
    [approval] = store.reviews_of(session, pull=pull)
    assert (approval.source, approval.reviewer, approval.commit_id) == ("button", "colesbury", SHA)
    assert audit_kinds(session) == ["gate_waiting", "gate_approved", "approval"]


@pytest.mark.parametrize(
    ("login", "refusal"),
    [
        pytest.param("guido", "only mentors of mpage can approve", id="a-stranger"),
        pytest.param("mpage", "authors cannot approve their own pull request", id="the-author"),
    ],
)
def test_a_refusal_records_nothing_but_its_audit(session: Session, login: str, refusal: str):
    """Someone who may not approve is told why; nothing is stored and the gate still waits."""
    mentorship(session)
    pull = waiting_pull(session)
    assert approve(session, pull, login) == refusal
    assert (pull.gate, store.reviews_of(session, pull=pull)) == ("waiting", [])
    assert audit_kinds(session) == ["gate_waiting", "approval_refused"]


def test_a_second_press_does_not_record_a_second_approval(session: Session):
    """Pressing again (a second tab) is refused: the approval already counts."""
    mentorship(session)
    pull = waiting_pull(session)
    approve(session, pull, "colesbury")
    again = approve(session, pull, "colesbury", now=NOW + 2 * HOUR)
    assert again == "your approval already counts for this pull request"
    assert len(store.reviews_of(session, pull=pull)) == 1


def test_an_approval_of_an_older_commit_is_recorded_but_not_counted(session: Session):
    """A press on the check of a commit the pull request has left: kept, audited as not
    counted, and the gate still waits for the new head."""
    mentorship(session)
    pull = waiting_pull(session, head_sha=SHA)
    pull = waiting_pull(session, head_sha=NEW_SHA, at=NOW + HOUR)
    assert approve(session, pull, "colesbury", commit_id=SHA, now=NOW + 2 * HOUR) is None
    assert pull.gate == "waiting"
    assert [r.commit_id for r in store.reviews_of(session, pull=pull)] == [SHA]
    assert audit_kinds(session)[-1] == "approval_not_counted"


def test_an_approval_given_in_the_future_is_dated_now(session: Session):
    """``given_at`` (a comment's creation) is never later than the moment it is recorded."""
    mentorship(session)
    pull = waiting_pull(session)
    approve(session, pull, "colesbury", now=NOW + HOUR, given_at=NOW + 5 * HOUR)
    [approval] = store.reviews_of(session, pull=pull)
    assert approval.submitted_at == NOW + HOUR


@pytest.mark.parametrize(
    "approved_first",
    [
        pytest.param(False, id="lifted-while-waiting"),
        pytest.param(True, id="lifted-after-approval"),
    ],
)
def test_a_lifted_gate_takes_no_more_approvals(session: Session, approved_first: bool):
    """Until the mentorship ends another mentor may still approve; once it ends, its pull
    requests keep their record but take no approvals."""
    mentorship(session)
    pull = waiting_pull(session)
    if approved_first:
        approve(session, pull, "colesbury")
    assert refusal_for(session, pull, "vstinner") is None
    lifecycle.end(session, mentee="mpage", reason="graduated", actor="boss", now=NOW + 2 * HOUR)
    session.commit()
    touched = decisions.reevaluate(session, pull, settings=QUIET, now=NOW + 3 * HOUR).touched
    outbox.commit_gates(session, touched, settings=QUIET, now=NOW + 3 * HOUR)
    session.commit()
    assert refusal_for(session, pull, "vstinner") == "no mentorship gates this pull request"
