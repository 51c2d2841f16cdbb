"""Stored pull requests and reviews (``gatekeeper/pulls.py``) on SQLite and PostgreSQL: the
newer snapshot wins whatever the order of delivery, what a trimmed payload lacks is kept, a
dismissal is final, and reads come grouped."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from database_support import statements_sent
from factories import HOUR, NEW_SHA, NOW, SHA, merged_info, pull_info, review_info
from fakegithub import default_user_id
from gatekeeper import gate, outbox
from gatekeeper import pulls as store
from gatekeeper.events import ReviewInfo
from gatekeeper.models import PullRequest, Review

SECOND = timedelta(seconds=1)


@pytest.fixture(autouse=True)
def storage_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests store snapshots and commit without deciding any gate, which no delivery
    does: the outbox's guard (see ``outbox.commit_gates``) is not what they are about."""
    monkeypatch.setattr(outbox, "STRICT", False)


def stored(session: Session, number: int = 7) -> PullRequest:
    session.expire_all()
    found = store.find_pull(session, repo="python/cpython", number=number)
    assert found is not None
    return found


# ---------------------------------------------------------------- upsert_pull


@pytest.mark.parametrize(
    ("second_at", "kept"),
    [
        pytest.param(NOW + SECOND, NEW_SHA, id="newer-wins"),
        pytest.param(NOW - SECOND, SHA, id="older-ignored"),
    ],
)
def test_the_newer_snapshot_is_kept(session: Session, second_at: datetime, kept: str):
    """A snapshot replaces the stored one only if GitHub updated it later."""
    store.upsert_pull(session, info=pull_info(head_sha=SHA, updated_at=NOW), now=NOW)
    store.upsert_pull(session, info=pull_info(head_sha=NEW_SHA, updated_at=second_at), now=NOW)
    session.commit()
    assert stored(session).head_sha == kept


@pytest.mark.parametrize(
    ("first", "second", "state"),
    [
        pytest.param("closed", "open", "closed", id="a-closed-one-is-not-reopened-on-a-tie"),
        pytest.param("open", "closed", "closed", id="an-open-one-closes-on-a-tie"),
    ],
)
def test_on_a_tie_a_closed_pull_request_stays_closed(
    session: Session, first: str, second: str, state: str
):
    """GitHub's times have whole seconds: two snapshots of one second are told apart by the
    rule that a reopen always moves updated_at."""
    store.upsert_pull(session, info=pull_info(state=first), now=NOW)
    store.upsert_pull(session, info=pull_info(state=second), now=NOW)
    session.commit()
    assert stored(session).state == state


def test_a_trimmed_review_payload_keeps_draft_and_merged_by(session: Session):
    """A review's pull request says neither draft nor merged_by: unknown, not false."""
    store.upsert_pull(
        session, info=merged_info(by="ambv", at=NOW, draft=True, updated_at=NOW), now=NOW
    )
    trimmed = merged_info(by=None, at=NOW, draft=None, updated_at=NOW + SECOND)
    store.upsert_pull(session, info=trimmed, now=NOW)
    session.commit()
    pull = stored(session)
    assert (pull.draft, pull.merged_by, pull.github_updated_at) == (True, "ambv", NOW + SECOND)


def test_a_late_older_snapshot_still_names_the_merger(session: Session):
    """The merge was first told by a trimmed (newer) payload; the older ``closed`` event that
    arrives after it is kept out, except for who merged."""
    store.upsert_pull(session, info=merged_info(by=None, updated_at=NOW + SECOND), now=NOW)
    store.upsert_pull(session, info=merged_info(by="ambv", updated_at=NOW, title="Old"), now=NOW)
    session.commit()
    pull = stored(session)
    assert (pull.merged_by, pull.title, pull.github_updated_at) == (
        "ambv",
        "A change",
        NOW + SECOND,
    )


def test_a_new_head_names_the_commit_it_left(session: Session):
    """The commit a pull request leaves may lose its waiter: ``record_pull`` names it, so its
    check is derived again; a snapshot on the same head (or an older one) names none."""
    assert store.record_pull(session, info=pull_info(head_sha=SHA), now=NOW)[1] is None
    moved = pull_info(head_sha=NEW_SHA, updated_at=NOW + HOUR)
    assert store.record_pull(session, info=moved, now=NOW)[1] == SHA
    again = pull_info(head_sha=NEW_SHA, updated_at=NOW + 2 * HOUR)
    assert store.record_pull(session, info=again, now=NOW)[1] is None
    older = pull_info(head_sha=SHA, updated_at=NOW)
    assert store.record_pull(session, info=older, now=NOW)[1] is None
    session.rollback()


# ---------------------------------------------------------------- reviews


@pytest.mark.parametrize(
    ("first", "then", "kept"),
    [
        pytest.param("DISMISSED", "APPROVED", "DISMISSED", id="a-dismissal-is-final"),
        pytest.param("COMMENTED", "APPROVED", "APPROVED", id="otherwise-the-latest-word"),
        pytest.param("APPROVED", "DISMISSED", "DISMISSED", id="an-approval-can-be-dismissed"),
    ],
)
def test_a_dismissal_is_final(session: Session, first: str, then: str, kept: str):
    """Whatever arrives after a review's dismissal (a late ``submitted``) cannot revive it."""
    pull = store.upsert_pull(session, info=pull_info(), now=NOW)
    store.upsert_review(session, pull=pull, info=review_info(1, state=first), now=NOW)
    store.upsert_review(session, pull=pull, info=review_info(1, state=then), now=NOW)
    session.commit()
    assert [r.state for r in store.reviews_of(session, pull=pull)] == [kept]


def test_a_review_delivered_again_keeps_its_commit_and_learns_its_reviewers_id(session: Session):
    """A later delivery of a review takes its new state; naming no commit, it keeps the one
    stored; and a review stored without its reviewer's id learns it (one known is kept)."""
    pull = store.upsert_pull(session, info=pull_info(), now=NOW)
    mentor = default_user_id("colesbury")
    first = ReviewInfo(1, "colesbury", "colesbury", "COMMENTED", SHA, NOW, None)
    store.upsert_review(session, pull=pull, info=first, now=NOW)
    again = ReviewInfo(1, "colesbury", "colesbury", "APPROVED", None, NOW, mentor)
    review = store.upsert_review(session, pull=pull, info=again, now=NOW)
    assert (review.state, review.commit_id, review.reviewer_id) == ("APPROVED", SHA, mentor)
    session.commit()
    [stored_review] = store.reviews_of(session, pull=pull)
    assert (stored_review.state, stored_review.commit_id) == ("APPROVED", SHA)
    assert stored_review.reviewer_id == mentor


def test_overrides_are_read_only_when_the_reviews_query_says_some_exist(session: Session):
    """``reviews_and_overrides`` gives the reviews and overrides oldest first: one query for a
    pull request never overridden, a second only for one that was."""
    plain = store.upsert_pull(session, info=pull_info(1), now=NOW)
    overridden = store.upsert_pull(session, info=pull_info(2), now=NOW)
    store.upsert_review(session, pull=plain, info=review_info(1, at=NOW + HOUR), now=NOW)
    store.upsert_review(session, pull=plain, info=review_info(2, at=NOW), now=NOW)
    store.add_override(
        session, pull=overridden, maintainer="ambv", maintainer_display="ambv",
        reason="release blocker", commit_id=SHA, given_at=NOW,
    )  # fmt: skip
    session.commit()
    assert None not in (plain.id, overridden.id)  # read again after the commit, not counted
    with statements_sent(session.get_bind()) as statements:
        reviews, overrides = store.reviews_and_overrides(session, pull=plain)
        queried_for_plain = len([s for s in statements if s.startswith("SELECT")])
        none, found = store.reviews_and_overrides(session, pull=overridden)
    assert ([r.github_id for r in reviews], overrides) == ([2, 1], [])
    assert queried_for_plain == 1
    assert (none, [(o.maintainer, o.reason) for o in found]) == ([], [("ambv", "release blocker")])
    assert len([s for s in statements if s.startswith("SELECT")]) == 3


def test_a_comment_delivered_twice_approves_once(session: Session):
    """An approval carrying a comment id is stored once; button presses have none and are
    each a record; an approval holds for the current head unless a commit is named."""
    pull = store.upsert_pull(session, info=pull_info(head_sha=SHA), now=NOW)
    for _ in range(2):
        store.add_approval(
            session, pull=pull, mentor="colesbury", mentor_display="colesbury",
            mentor_id=default_user_id("colesbury"), source="comment", now=NOW, github_id=55,
        )  # fmt: skip
    store.add_approval(
        session, pull=pull, mentor="vstinner", mentor_display="vstinner",
        mentor_id=default_user_id("vstinner"), source="button", now=NOW, commit_id=NEW_SHA,
    )  # fmt: skip
    session.commit()
    found = [(r.source, r.reviewer, r.commit_id) for r in store.reviews_of(session, pull=pull)]
    assert sorted(found) == [("button", "vstinner", NEW_SHA), ("comment", "colesbury", SHA)]
    assert {r.state for r in store.reviews_of(session, pull=pull)} == {gate.APPROVED}


def test_reviews_by_pull_groups_them_in_one_query(session: Session):
    """Each pull request asked for gets its reviews oldest first (an empty list if none),
    from one statement; asking for none costs none."""
    first = store.upsert_pull(session, info=pull_info(1), now=NOW)
    second = store.upsert_pull(session, info=pull_info(2), now=NOW)
    quiet = store.upsert_pull(session, info=pull_info(3), now=NOW)
    store.upsert_review(session, pull=first, info=review_info(1, at=NOW + HOUR), now=NOW)
    store.upsert_review(session, pull=first, info=review_info(2, at=NOW), now=NOW)
    store.upsert_review(session, pull=second, info=review_info(3), now=NOW)
    session.commit()
    ids = [p.id for p in (first, second, quiet) if p.id is not None]

    statements: list[str] = []
    engine = session.get_bind()

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        grouped = store.reviews_by_pull(session, pull_ids=ids + ids)
        nothing = store.reviews_by_pull(session, pull_ids=[])
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len([s for s in statements if "FROM review" in s]) == 1
    assert {pid: [r.github_id for r in found] for pid, found in grouped.items()} == {
        ids[0]: [2, 1],
        ids[1]: [3],
        ids[2]: [],
    }
    assert nothing == {}


def test_reviews_of_another_pull_request_are_not_its_own(session: Session):
    """reviews_of reads one pull request's reviews only."""
    first = store.upsert_pull(session, info=pull_info(1), now=NOW)
    second = store.upsert_pull(session, info=pull_info(2), now=NOW)
    store.upsert_review(session, pull=second, info=review_info(3), now=NOW)
    session.commit()
    assert store.reviews_of(session, pull=first) == []
    assert len(session.exec(select(Review)).all()) == 1


# ---------------------------------------------------------------- waited_seconds


@pytest.mark.parametrize(
    ("fields", "waited"),
    [
        pytest.param(
            {"gate": "waiting", "waiting_since": NOW - HOUR, "gated_at": NOW - 2 * HOUR},
            3600.0,
            id="waiting-counts-the-current-wait",
        ),
        pytest.param(
            {"gate": "waiting", "waiting_since": None, "gated_at": NOW - 2 * HOUR},
            7200.0,
            id="waiting-without-a-start-counts-from-gating",
        ),
        pytest.param(
            {"gate": "approved", "gated_at": NOW - 3 * HOUR, "settled_at": NOW - HOUR},
            7200.0,
            id="settled-counts-first-wait-to-settling",
        ),
        pytest.param(
            {"gate": "lifted", "gated_at": NOW - 3 * HOUR, "settled_at": NOW - HOUR},
            7200.0,
            id="lifted-keeps-its-record",
        ),
        pytest.param(
            {"gate": "approved", "gated_at": NOW, "settled_at": NOW - HOUR},
            0.0,
            id="never-negative",
        ),
        pytest.param({"gate": "not_required"}, None, id="never-waited"),
        pytest.param(
            {"gate": "waiting", "state": "closed", "gated_at": NOW - HOUR},
            None,
            id="closed-while-waiting-never-settled",
        ),
    ],
)
def test_waited_seconds(fields: dict, waited: float | None):
    """How long a pull request waited for a mentor, from the moments stored on it."""
    pull = PullRequest(
        repo="python/cpython",
        number=7,
        author="mpage",
        author_display="mpage",
        head_sha=SHA,
        first_seen_at=NOW - 10 * HOUR,
        **fields,
    )
    assert store.waited_seconds(pull, now=NOW) == waited
