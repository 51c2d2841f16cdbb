"""Mentors who are away (``gatekeeper/away.py``): the dates it takes, whom review requests and
reminders go to, what the check says, who counts, and what maintainers are shown (on SQLite
and PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import Session, select

from factories import DAY, HOUR, NOW, audit_kinds, jobs_of, mentorship, pull_info, review_info
from factories import settings as make_settings
from fakegithub import default_user_id
from gatekeeper import away, decisions, outbox, reminders
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.gate import GateState
from gatekeeper.models import Absence, AuditEvent, CommitCheck, PullRequest

TODAY = NOW.date()
REQUESTS = "request_reviews:python/cpython#7"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        pytest.param("", "give the last day away", id="empty"),
        pytest.param(None, "give the last day away", id="missing"),
        pytest.param(
            "next tuesday", "'next tuesday' is not a date; write it as YYYY-MM-DD", id="words"
        ),
        pytest.param("2024-13-01", "'2024-13-01' is not a date", id="no-such-month"),
        pytest.param("x" * 300, "'" + "x" * 20 + "…' is not a date", id="long-text-cut"),
        pytest.param("2024-11-11", "Nov 11, 2024 has passed; give today or a later day", id="past"),
        pytest.param("2026-01-01", "Jan 1, 2026 is more than a year away", id="too-far"),
    ],
)
def test_a_bad_date_is_refused_with_a_clear_reason(text: str | None, why: str):
    """Unparseable, past and far-off dates are refused, naming the form field, and a long
    value is never echoed whole."""
    with pytest.raises(lifecycle.MentorshipError) as refused:
        away.parse_until(text, now=NOW)
    assert str(refused.value).startswith(why)
    assert refused.value.field == "until"
    assert len(str(refused.value)) < 120


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-11-12", TODAY),
        (" 2024-12-20 ", date(2024, 12, 20)),
        ("2025-11-12", date(2025, 11, 12)),
    ],
)
def test_today_up_to_a_year_ahead_is_taken(text: str, expected: date):
    """Away until today (the rest of the day) or a later day within a year."""
    assert away.parse_until(text, now=NOW) == expected


def waiting_pull(session: Session, *, at=NOW) -> PullRequest:
    """The mentee's ready pull request, first seen (and waiting) at ``at``."""
    pull = store.upsert_pull(session, info=pull_info(updated_at=at), now=at)
    touched = decisions.reevaluate(session, pull, settings=make_settings(), now=at).touched
    outbox.commit_gates(session, touched, settings=make_settings(), now=at)
    session.commit()
    return pull


def go_away(session: Session, login: str, *, until: date = date(2024, 11, 20), now=NOW - HOUR):
    """``login`` marks themselves away, committed."""
    done = away.set_away(session, login=login, until=until, note="on holiday", actor=login, now=now)
    session.commit()
    return done


def test_review_requests_go_to_the_present_mentors(session: Session):
    """With colesbury away, a new waiting pull request asks vstinner only."""
    mentorship(session)
    go_away(session, "colesbury")
    waiting_pull(session)
    assert jobs_of(session)[REQUESTS].args["logins"] == ["vstinner"]


def test_with_every_mentor_away_nobody_is_asked_until_one_is_back(session: Session):
    """Nobody is asked while all are away; the return re-decides and asks who came back."""
    made = mentorship(session)
    go_away(session, "colesbury")
    go_away(session, "vstinner")
    pull = waiting_pull(session)
    assert REQUESTS not in jobs_of(session)
    assert not pull.reviews_requested
    done = away.come_back(session, login="vstinner", actor="vstinner", now=NOW + HOUR)
    assert [m.id for m in done.mentorships] == [made.id]
    touched = decisions.reevaluate_open_pulls(
        session, made, settings=make_settings(), now=NOW + HOUR
    )
    outbox.commit_gates(session, touched, settings=make_settings(), now=NOW + HOUR)
    session.commit()
    assert jobs_of(session)[REQUESTS].args["logins"] == ["vstinner"]


def test_the_check_summary_says_who_is_away_until_when(session: Session):
    """The waiting check's summary names the away mentor and their last day away."""
    mentorship(session)
    go_away(session, "colesbury")
    pull = waiting_pull(session)
    assert pull.gate == GateState.WAITING
    assert "@colesbury is away until Nov 20, 2024" in pull.gate_summary
    assert "vstinner is away" not in pull.gate_summary
    check = session.exec(select(CommitCheck)).one()
    assert (
        "@colesbury is away until Nov 20, 2024. An approval from them still counts."
        in (check.body["summary"])
    )


def test_the_summary_says_nothing_once_the_date_has_passed(session: Session):
    """Away through the given day: the day after, the summary no longer mentions it."""
    mentorship(session)
    go_away(session, "colesbury", until=TODAY)
    pull = waiting_pull(session, at=NOW + DAY)
    assert "away" not in pull.gate_summary
    assert sorted(jobs_of(session)[REQUESTS].args["logins"]) == ["colesbury", "vstinner"]


def test_an_away_mentors_approval_still_counts(session: Session):
    """colesbury approves while away: the gate opens as for any mentor."""
    mentorship(session)
    go_away(session, "colesbury")
    pull = waiting_pull(session)
    store.upsert_review(session, pull=pull, info=review_info(reviewer="colesbury"), now=NOW)
    session.flush()
    decision = decisions.reevaluate(session, pull, settings=make_settings(), now=NOW).decision
    assert decision.gate == GateState.APPROVED
    assert pull.approved_by == ["colesbury"]


def test_a_reminder_goes_to_the_present_mentors(session: Session):
    """The mentee's reminder asks vstinner only, and the audit names only vstinner."""
    mentorship(session, start=NOW - 3 * DAY)
    pull = waiting_pull(session, at=NOW - 2 * DAY)
    go_away(session, "colesbury")
    assert reminders.remind(session, pull, login="mpage", settings=make_settings(), now=NOW) is None
    session.commit()
    assert jobs_of(session)[REQUESTS].args["logins"] == ["vstinner"]
    detail = session.exec(select(AuditEvent.detail).where(AuditEvent.kind == "reminded")).one()
    assert detail == "asked @vstinner for a review again"


def test_a_reminder_with_every_mentor_away_says_so(session: Session):
    """Nobody to remind: refused, naming who is away until when."""
    mentorship(session, start=NOW - 3 * DAY)
    pull = waiting_pull(session, at=NOW - 2 * DAY)
    go_away(session, "colesbury")
    go_away(session, "vstinner", until=date(2024, 11, 18))
    why = reminders.remind(session, pull, login="mpage", settings=make_settings(), now=NOW)
    assert why == (
        "all your mentors are away (colesbury is away until Nov 20, 2024; "
        "vstinner is away until Nov 18, 2024)"
    )
    assert "reminded" not in audit_kinds(session)


def test_away_is_per_account_across_mentorships_and_audited_in_each(session: Session):
    """One absence of colesbury covers both mentees' mentorships, each of which logs it."""
    first = mentorship(session)
    second = mentorship(session, "eclips4", ("colesbury", "ambv"))
    done = go_away(session, "colesbury")
    assert {m.id for m in done.mentorships} == {first.id, second.id}
    [absence] = session.exec(select(Absence)).all()
    assert absence.account_id == default_user_id("colesbury")
    events = session.exec(select(AuditEvent).where(AuditEvent.kind == away.AWAY)).all()
    assert {e.mentorship_id for e in events} == {first.id, second.id}
    assert events[0].detail == "colesbury is away until Nov 20, 2024: on holiday"
    assert events[0].actor == "colesbury"


def test_going_away_again_moves_the_date_and_back_ends_it(session: Session):
    """A second date replaces the first; --back deletes it and is audited; back twice is refused."""
    mentorship(session)
    go_away(session, "colesbury")
    go_away(session, "colesbury", until=date(2024, 11, 30))
    absence = away.of_person(session, account_id=default_user_id("colesbury"), now=NOW)
    assert absence is not None and absence.until == date(2024, 11, 30)
    away.come_back(session, login="colesbury", actor="boss", now=NOW)
    session.commit()
    assert away.of_person(session, account_id=default_user_id("colesbury"), now=NOW) is None
    back = session.exec(select(AuditEvent).where(AuditEvent.kind == away.BACK)).one()
    assert (back.actor, back.detail) == ("boss", "colesbury is back (was away until Nov 30, 2024)")
    with pytest.raises(lifecycle.MentorshipError, match="colesbury is not marked away"):
        away.come_back(session, login="colesbury", actor="boss", now=NOW)


def test_an_account_never_seen_cannot_be_marked_away(session: Session):
    """Away belongs to an account: a login Gatekeeper knows no account for is refused."""
    with pytest.raises(
        lifecycle.MentorshipError, match="knows no GitHub account under nobody-here"
    ):
        away.set_away(session, login="nobody-here", until=TODAY, note=None, actor="boss", now=NOW)


def test_a_renamed_mentor_stays_away(session: Session):
    """The absence follows the account, not the login: the mentor renamed is still away."""
    from gatekeeper import people
    from gatekeeper.events import Person

    mentorship(session)
    go_away(session, "colesbury")
    people.learn(session, Person(default_user_id("colesbury"), "sam-g", "sam-g"), at=NOW)
    session.commit()
    pull = waiting_pull(session)
    assert jobs_of(session)[REQUESTS].args["logins"] == ["vstinner"]
    assert "@sam-g is away until Nov 20, 2024" in pull.gate_summary


def test_maintainers_see_a_mentorship_whose_mentors_are_all_away(session: Session):
    """Every mentor away: the mentorship is listed with its mentee's waiting pull requests,
    and the first day one of them is back."""
    made = mentorship(session)
    mentorship(session, "eclips4", ("colesbury", "ambv"))  # ambv is present: not listed
    pull = waiting_pull(session)
    assert away.stranded(session, now=NOW) == []
    go_away(session, "colesbury")
    go_away(session, "vstinner", until=date(2024, 11, 15))
    [alone] = away.stranded(session, now=NOW)
    assert alone.mentorship.id == made.id
    assert [a.login for a in alone.away] == ["colesbury", "vstinner"]
    assert [p.id for p in alone.waiting] == [pull.id]
    assert alone.back_on == date(2024, 11, 16)
    assert away.stranded(session, now=NOW + 4 * DAY) == []  # vstinner is back by date


def test_everyone_away_lists_the_current_absences_soonest_back_first(session: Session):
    """The maintainer's list of who is away now, without absences that ended."""
    mentorship(session, mentors=("colesbury", "vstinner", "ambv"))
    go_away(session, "colesbury")
    go_away(session, "vstinner", until=TODAY)
    session.add(
        Absence(
            account_id=default_user_id("ambv"),
            login="ambv",
            until=TODAY - timedelta(days=1),
            set_by="ambv",
            set_at=NOW - DAY,
        )
    )
    session.commit()
    assert [a.login for a in away.everyone(session, now=NOW)] == ["vstinner", "colesbury"]
