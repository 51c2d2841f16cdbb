"""What needs a maintainer (``gatekeeper/needs.py``) on SQLite and PostgreSQL: the list's
windows, acknowledging a bypass, and what removing a mentor would do."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from factories import DAY, HOUR, NOW, mentorship, merged_info, pull_info, review_info, settings
from gatekeeper import decisions, needs, outbox
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.events import PullInfo
from gatekeeper.models import PullRequest

QUIET = settings(request_reviews=False)


def decide(session: Session, info: PullInfo, *, at=NOW) -> PullRequest:
    """Store a snapshot and decide its gate at ``at``, committed."""
    pull = store.upsert_pull(session, info=info, now=at)
    decided = decisions.reevaluate(session, pull, settings=QUIET, now=at)
    outbox.waive(session, decided.touched)  # a stored sample: no check is posted
    session.commit()
    return pull


def bypassed(session: Session, number: int = 7) -> PullRequest:
    """The mentee's pull request, merged by ``ambv`` while it waited."""
    decide(session, pull_info(number), at=NOW - HOUR)
    return decide(session, merged_info(number, by="ambv", at=NOW), at=NOW)


def test_nothing_needs_a_maintainer_at_first(session: Session):
    """No rows, an empty list."""
    assert needs.for_maintainer(session, now=NOW).empty


def test_the_list_holds_what_has_waited_or_ends_soon(session: Session):
    """A pull request waiting over two days and a month ending within three are listed;
    one waiting a day and a month ending later are not."""
    ending = mentorship(session, "mpage", start=NOW - 28 * DAY, days=30)
    mentorship(session, "eclips4", start=NOW - 10 * DAY, days=30)
    decide(session, pull_info(1), at=NOW - 3 * DAY)
    decide(session, pull_info(2, author="eclips4"), at=NOW - DAY)
    found = needs.for_maintainer(session, now=NOW)
    assert [m.id for m in found.ending] == [ending.id]
    assert [p.number for p in found.waiting] == [1]
    assert (found.bypasses, found.short, found.empty) == ([], [], False)


def test_a_mentorship_short_of_mentors_is_listed_with_its_count(session: Session):
    """Two approvals required and one mentor left (the other's assignment ended): short,
    with one."""
    short = mentorship(session, approvals_required=2)
    [leaving, _] = lifecycle.mentors_of(session, mentorship=short)
    leaving.removed_at, leaving.removed_by = NOW - HOUR, "boss"
    session.add(leaving)
    session.commit()
    [found] = needs.for_maintainer(session, now=NOW).short
    assert (found.mentorship.id, found.mentors) == (short.id, 1)


def test_a_bypass_is_listed_with_its_mentorship_until_acknowledged(session: Session):
    """A bypass needs a maintainer, until one acknowledges it."""
    gated = mentorship(session)
    pull = bypassed(session)
    [bypass] = needs.for_maintainer(session, now=NOW).bypasses
    assert (bypass.pull.number, bypass.mentorship and bypass.mentorship.id) == (7, gated.id)
    assert needs.acknowledge(session, pull=pull, actor="boss", note=None, now=NOW)
    session.commit()
    assert needs.for_maintainer(session, now=NOW).bypasses == []


def test_acknowledging_again_records_only_a_new_note(session: Session):
    """The same note again records nothing; a different one supersedes it."""
    mentorship(session)
    pull = bypassed(session)
    outcomes = []
    for note, at in (("talked to them", NOW), ("talked to them", NOW + HOUR), ("ok", NOW + DAY)):
        outcomes.append(needs.acknowledge(session, pull=pull, actor="boss", note=note, now=at))
        session.commit()
    assert outcomes == [True, False, True]
    assert needs.acknowledgement_of(session, pull=pull) == needs.Acknowledgement(
        "boss", NOW + DAY, "ok"
    )


def test_only_a_bypass_can_be_acknowledged(session: Session):
    """Acknowledging a pull request that was not bypassed is an error that says so."""
    mentorship(session)
    pull = decide(session, pull_info())
    with pytest.raises(lifecycle.MentorshipError, match="was not merged without approval"):
        needs.acknowledge(session, pull=pull, actor="boss", note=None, now=NOW)


def approved(session: Session, number: int, *, by: str) -> None:
    """The mentee's pull request ``number``, approved by ``by``."""
    pull = decide(session, pull_info(number))
    store.upsert_review(session, pull=pull, info=review_info(number, reviewer=by), now=NOW)
    session.flush()
    decided = decisions.reevaluate(session, pull, settings=QUIET, now=NOW)
    outbox.waive(session, decided.touched)  # a stored sample: no check is posted
    session.commit()


def test_removing_a_mentor_shows_what_waits_and_what_reopens(session: Session):
    """Without colesbury: the pull request they approved waits again, the waiting one still
    waits, the one vstinner approved stays approved, and vstinner remains."""
    gated = mentorship(session)
    approved(session, 1, by="colesbury")
    decide(session, pull_info(2))
    approved(session, 3, by="vstinner")
    removal = needs.removal_of(session, mentorship=gated, mentor="Colesbury", now=NOW + HOUR)
    assert (removal.mentor, removal.remaining, removal.refusal) == (
        "colesbury",
        ["vstinner"],
        None,
    )
    assert [p.number for p in removal.reopened] == [1]
    assert [p.number for p in removal.waiting] == [2]


def test_removing_the_last_mentor_would_be_refused(session: Session):
    """A mentorship needs a mentor: the removal says why it would be refused."""
    gated = mentorship(session, mentors=("colesbury",))
    removal = needs.removal_of(session, mentorship=gated, mentor="colesbury", now=NOW)
    assert removal.refusal is not None and "needs at least 1 mentor" in removal.refusal
