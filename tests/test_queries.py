"""The reads behind the pages, /api and the report (``gatekeeper/queries.py``), on SQLite and
PostgreSQL: each returns what its name says, in its order, and nothing it should leave out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from gatekeeper import mentorships as lifecycle
from gatekeeper import queries
from gatekeeper.models import Mentorship, PullRequest, Repository

NOW = datetime(2024, 11, 12, 15, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def promote(session: Session, mentee: str, *, start: datetime, days: int = 30) -> Mentorship:
    mentorship = lifecycle.promote(
        session, mentee=mentee, mentors=["colesbury"], actor="boss", now=start, days=days
    )
    session.commit()
    return mentorship


def add_pull(
    session: Session, number: int, *, author: str, seen: datetime, **fields
) -> PullRequest:
    """A stored pull request in python/cpython by ``author``, first seen at ``seen``."""
    pull = PullRequest(
        repo=fields.pop("repo", "python/cpython"),
        number=number,
        author=author,
        author_display=author,
        head_sha=f"{number:040x}",
        first_seen_at=seen,
        **fields,
    )
    session.add(pull)
    session.commit()
    return pull


def test_repository_privacy_says_only_what_events_said(session: Session):
    """Known repositories map to their visibility; one never heard of is absent."""
    session.add(Repository(full_name="python/secret", display_name="python/secret", private=True))
    session.add(Repository(full_name="python/cpython", display_name="python/cpython"))
    session.commit()
    found = queries.repository_privacy(
        session, repos=["python/secret", "python/cpython", "python/unseen", "python/secret"]
    )
    assert found == {"python/secret": True, "python/cpython": False}
    assert queries.repository_privacy(session, repos=[]) == {}


def test_pulls_of_period_are_the_gated_and_those_first_seen_in_it(session: Session):
    """Gated by the mentorship, or the mentee's and first seen during the period; not before,
    not after it ended, not someone else's."""
    mentorship = promote(session, "mpage", start=NOW)
    add_pull(session, 1, author="mpage", seen=NOW - DAY)  # before
    add_pull(session, 2, author="mpage", seen=NOW + DAY)  # in the period
    add_pull(session, 3, author="mpage", seen=NOW - DAY, gated_mentorship_id=mentorship.id)
    add_pull(session, 4, author="eclips4", seen=NOW + DAY)  # someone else's
    add_pull(session, 5, author="mpage", seen=NOW + 40 * DAY)  # after
    found = queries.pulls_of_period(session, mentorship=mentorship)
    assert [p.number for p in found] == [3, 2]  # oldest first


def test_gate_counts_leave_out_a_closed_waiting_pull_request(session: Session):
    """Waiting counts only open ones; approved and bypassed count whatever their state."""
    mentorship = promote(session, "mpage", start=NOW)
    assert mentorship.id is not None
    gated = {"author": "mpage", "seen": NOW, "gated_mentorship_id": mentorship.id}
    add_pull(session, 1, gate="waiting", **gated)
    add_pull(session, 2, gate="waiting", state="closed", **gated)
    add_pull(session, 3, gate="approved", state="closed", merged=True, **gated)
    add_pull(session, 4, gate="bypassed", state="closed", merged=True, **gated)
    add_pull(session, 5, gate="not_required", **gated)
    assert queries.gate_counts(session, mentorship_ids=[mentorship.id]) == {
        mentorship.id: {"waiting": 1, "approved": 1, "bypassed": 1}
    }
    assert queries.gate_counts(session, mentorship_ids=[]) == {}


def test_waiting_for_login_leaves_out_what_they_approved(session: Session):
    """Open waiting pull requests, longest waiting first, but not those ``login`` approved."""
    mentorship = promote(session, "mpage", start=NOW)
    gated = {"author": "mpage", "seen": NOW, "gated_mentorship_id": mentorship.id}
    add_pull(session, 1, gate="waiting", waiting_since=NOW + 2 * DAY, **gated)
    add_pull(session, 2, gate="waiting", waiting_since=NOW + DAY, **gated)
    add_pull(session, 3, gate="waiting", approved_by=["colesbury"], waiting_since=NOW, **gated)
    add_pull(session, 4, gate="approved", **gated)
    found = queries.waiting_for_login(
        session, mentorship_ids=[mentorship.id, None], login="colesbury"
    )
    assert [p.number for p in found] == [2, 1]
    assert queries.waiting_for_login(session, mentorship_ids=[None], login="colesbury") == []


@pytest.mark.parametrize(
    ("start", "days", "found"),
    [
        (NOW - 28 * DAY, 30, True),  # ends in two days
        (NOW - 20 * DAY, 30, False),  # ends in ten
        (NOW + DAY, 1, False),  # not started yet
    ],
)
def test_running_and_ending(session: Session, start, days, found):
    """Started, not marked ended, and ending within the window."""
    promote(session, "mpage", start=start, days=days)
    ending = queries.running_and_ending(session, now=NOW, after=NOW, until=NOW + 3 * DAY)
    assert [m.mentee for m in ending] == (["mpage"] if found else [])


def test_audit_events_filter_order_and_limit(session: Session):
    """Only the kinds asked for; oldest first, or newest first with a limit."""
    mentorship = promote(session, "mpage", start=NOW)
    assert mentorship.id is not None
    for hours, kind in ((1, "extended"), (2, "mentor_added"), (3, "extended")):
        lifecycle.record(
            session, mentorship=mentorship, actor="boss", kind=kind, at=NOW + timedelta(hours=hours)
        )
    session.commit()
    kinds = [
        e.kind
        for e in queries.audit_events(session, mentorship_id=mentorship.id, kinds=["extended"])
    ]
    assert kinds == ["extended", "extended"]
    newest = queries.audit_events(session, mentorship_id=mentorship.id, newest_first=True, limit=2)
    assert [e.at for e in newest] == [NOW + timedelta(hours=3), NOW + timedelta(hours=2)]


def test_unacknowledged_bypasses_leave_out_acknowledged_ones(session: Session):
    """A bypass with an acknowledgement naming it is no longer listed; the latest is found."""
    mentorship = promote(session, "mpage", start=NOW)
    merged = {"author": "mpage", "seen": NOW, "state": "closed", "merged": True}
    add_pull(session, 1, gate="bypassed", merged_at=NOW + DAY, **merged)
    add_pull(session, 2, gate="bypassed", merged_at=NOW + 2 * DAY, **merged)
    for note in ("first", "second"):
        lifecycle.record(
            session, mentorship=mentorship, actor="boss", kind=queries.ACKNOWLEDGED,
            detail=note, at=NOW + 3 * DAY, repo="python/cpython", pr_number=1,
        )  # fmt: skip
    session.commit()
    assert [p.number for p in queries.unacknowledged_bypasses(session)] == [2]
    latest = queries.latest_acknowledgement(session, repo="python/cpython", number=1)
    assert latest is not None and latest.detail == "second"
    assert queries.latest_acknowledgement(session, repo="python/cpython", number=2) is None
