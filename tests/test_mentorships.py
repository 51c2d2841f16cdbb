"""The mentorship lifecycle on both databases: promote, extend, end, mentors, expiry, PEP 13."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from gatekeeper import mentorships as lifecycle
from gatekeeper import votes
from gatekeeper.mentorships import MentorshipError
from gatekeeper.models import AuditEvent, MentorAssignment, Mentorship
from gatekeeper.votes import Vote

NOW = datetime(2024, 11, 12, 15, 30, tzinfo=UTC)
PASSING_VOTE = Vote(30, 2, date(2024, 11, 1), date(2024, 11, 8), "https://discuss.python.org/t/1")
FAILING_VOTE = Vote(5, 5, date(2024, 11, 1), date(2024, 11, 3))


def promote(
    session: Session,
    mentee: str = "mpage",
    mentors: tuple[str, ...] = ("colesbury",),
    *,
    now: datetime = NOW,
    **options,
) -> Mentorship:
    """Promote ``mentee`` as maintainer ``ambv`` and commit."""
    mentorship = lifecycle.promote(
        session, mentee=mentee, mentors=list(mentors), actor="ambv", now=now, **options
    )
    session.commit()
    return mentorship


def audit(session: Session, kind: str | None = None) -> list[AuditEvent]:
    """Audit events in the order they were recorded, optionally of one kind."""
    query = select(AuditEvent).order_by(col(AuditEvent.id))
    if kind is not None:
        query = query.where(AuditEvent.kind == kind)
    return list(session.exec(query))


def count(session: Session, model: type) -> int:
    """How many rows ``model``'s table holds."""
    return session.exec(select(sa.func.count()).select_from(model)).one()


def mentor_logins(session: Session, mentorship: Mentorship) -> list[str]:
    """Display logins of the current mentors."""
    return [a.mentor_display for a in lifecycle.mentors_of(session, mentorship=mentorship)]


# ---------------------------------------------------------------- promote: dates


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2024, 11, 12, 15, 30, tzinfo=UTC), datetime(2024, 12, 12, 15, 30, tzinfo=UTC)),
        (datetime(2024, 12, 15, 9, 0, tzinfo=UTC), datetime(2025, 1, 15, 9, 0, tzinfo=UTC)),
        (datetime(2025, 1, 31, 23, 59, tzinfo=UTC), datetime(2025, 2, 28, 23, 59, tzinfo=UTC)),
        (datetime(2024, 1, 31, 12, 0, tzinfo=UTC), datetime(2024, 2, 29, 12, 0, tzinfo=UTC)),
        (datetime(2024, 3, 31, 0, 0, tzinfo=UTC), datetime(2024, 4, 30, 0, 0, tzinfo=UTC)),
    ],
    ids=["mid-month", "year-end", "jan31-common-year", "jan31-leap-year", "mar31"],
)
def test_promote_lasts_one_calendar_month_by_default(session, start, end):
    """Without --days or --until the mentorship ends one calendar month later, clamped."""
    mentorship = promote(session, now=start)
    assert (mentorship.started_at, mentorship.ends_at) == (start, end)
    assert lifecycle.state_of(mentorship, start) == "active"


def test_times_come_back_from_the_database_as_aware_utc(session):
    """Stored times are timezone-aware UTC on both backends, equal to what was written."""
    promote(session, start=datetime(2024, 11, 12, 17, 30, 0, 123456, tzinfo=UTC))
    session.expire_all()
    stored = session.exec(select(Mentorship)).one()
    assert stored.started_at == datetime(2024, 11, 12, 17, 30, 0, 123456, tzinfo=UTC)
    assert stored.started_at.utcoffset() == timedelta(0)
    assert stored.ends_at == datetime(2024, 12, 12, 17, 30, 0, 123456, tzinfo=UTC)
    assert stored.created_at == NOW


def test_naive_datetimes_are_refused_by_the_column_type(session):
    """A naive datetime never reaches the database; UTC must be explicit."""
    naive = datetime(2024, 11, 12, 15, 30)
    session.add(
        Mentorship(
            mentee="mpage",
            mentee_display="mpage",
            started_at=naive,
            ends_at=naive + timedelta(days=30),
            created_by="test",
            created_at=NOW,
        )
    )
    with pytest.raises(sa.exc.StatementError, match="naive datetimes"):
        session.commit()
    session.rollback()


def test_promote_for_a_number_of_days(session):
    """--days N ends the mentorship exactly N days after the start."""
    mentorship = promote(session, days=45)
    assert mentorship.ends_at == NOW + timedelta(days=45)


def test_promote_until_a_date(session):
    """--until ends the mentorship at that moment."""
    until = datetime(2025, 1, 6, tzinfo=UTC)
    assert promote(session, until=until).ends_at == until


def test_promote_with_a_scheduled_start(session):
    """A future start makes a scheduled mentorship that becomes active at its start."""
    start = NOW + timedelta(days=3)
    mentorship = promote(session, start=start)
    assert mentorship.started_at == start
    assert mentorship.ends_at == datetime(2024, 12, 15, 15, 30, tzinfo=UTC)
    assert lifecycle.state_of(mentorship, NOW) == "scheduled"
    assert not lifecycle.is_active(mentorship, NOW)
    assert lifecycle.state_of(mentorship, start) == "active"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"days": 0}, "at least one day"),
        ({"days": -3}, "at least one day"),
        ({"until": NOW}, "end date must come after the start"),
        ({"until": NOW - timedelta(days=1)}, "end date must come after the start"),
        ({"days": 5, "until": NOW + timedelta(days=9)}, "not both"),
        ({"start": NOW - timedelta(days=60)}, "would already have ended on Oct 13, 2024"),
    ],
    ids=["zero-days", "negative-days", "until-start", "until-before-start", "both", "already-over"],
)
def test_promote_refuses_impossible_periods(session, options, message):
    """A period that is empty, backwards, doubly given or already over is refused."""
    with pytest.raises(MentorshipError, match=message):
        promote(session, **options)
    assert count(session, Mentorship) == 0


# ---------------------------------------------------------------- promote: people


def test_logins_are_case_insensitive_and_keep_their_display_form(session):
    """MPage is stored as mpage with MPage kept for display; lookups ignore case and @."""
    mentorship = promote(session, "MPage", ("@Colesbury", "ambv"))
    assert (mentorship.mentee, mentorship.mentee_display) == ("mpage", "MPage")
    assignments = lifecycle.mentors_of(session, mentorship=mentorship)
    assert [(a.mentor, a.mentor_display) for a in assignments] == [
        ("colesbury", "Colesbury"),
        ("ambv", "ambv"),
    ]
    for spelling in ("mpage", "MPAGE", "@mPage"):
        assert lifecycle.open_mentorship(session, mentee=spelling) == mentorship
        assert lifecycle.latest_mentorship(session, mentee=spelling) == mentorship


def test_the_same_mentor_given_twice_is_assigned_once(session):
    """Mentors are deduplicated case-insensitively, keeping the first spelling."""
    mentorship = promote(session, mentors=("Colesbury", "colesbury", "COLESBURY"))
    assert mentor_logins(session, mentorship) == ["Colesbury"]


@pytest.mark.parametrize(
    ("mentee", "mentors", "message"),
    [
        ("mpage", ("MPage",), "mpage cannot be their own mentor"),
        ("MPage", ("colesbury", "mpage"), "MPage cannot be their own mentor"),
        ("mpage", (), "at least one mentor"),
        ("not a login", ("colesbury",), "'not a login' is not a valid GitHub login"),
        ("-mpage", ("colesbury",), "is not a valid GitHub login"),
        ("m" * 40, ("colesbury",), "has at most 39 characters"),
        ("mpage", ("cole--sbury",), "is not a valid GitHub login"),
    ],
    ids=[
        "own-mentor",
        "own-mentor-among-others",
        "no-mentors",
        "space",
        "leading-dash",
        "too-long",
        "double-dash",
    ],
)
def test_promote_refuses_bad_people(session, mentee, mentors, message):
    """The mentee is never their own mentor, there is a mentor, and logins are GitHub logins."""
    with pytest.raises(MentorshipError, match=message):
        promote(session, mentee, mentors)
    assert count(session, Mentorship) == 0


@pytest.mark.parametrize(
    ("approvals", "mentors", "message"),
    [
        (0, ("colesbury",), "at least one approval"),
        (2, ("colesbury",), "2 approvals required but only 1 mentors"),
        (3, ("colesbury", "ambv"), "3 approvals required but only 2 mentors"),
    ],
)
def test_promote_refuses_more_approvals_than_mentors(session, approvals, mentors, message):
    """Required approvals are at least one and at most the number of mentors."""
    with pytest.raises(MentorshipError, match=message):
        promote(session, mentors=mentors, approvals_required=approvals)


def test_promote_keeps_its_options(session):
    """Scope, approvals, stale-approval handling, approved-PR gating and note are stored."""
    mentorship = promote(
        session,
        mentors=("colesbury", "ambv"),
        repositories=["Python/CPython", "python/peps", "python/cpython"],
        approvals_required=2,
        dismiss_stale_approvals=False,
        gate_approved_prs=True,
        note="first month",
    )
    session.expire_all()
    stored = session.get(Mentorship, mentorship.id)
    assert stored.repositories == ["python/cpython", "python/peps"]
    assert stored.approvals_required == 2
    assert stored.dismiss_stale_approvals is False
    assert stored.gate_approved_prs is True
    assert stored.note == "first month"
    assert stored.created_by == "ambv"


def test_promote_defaults(session):
    """By default: every repository, one approval, approvals go stale, approved PRs not gated."""
    mentorship = promote(session)
    assert mentorship.repositories == []
    assert mentorship.approvals_required == 1
    assert mentorship.dismiss_stale_approvals is True
    assert mentorship.gate_approved_prs is False


@pytest.mark.parametrize("name", ["cpython", "python/", "/cpython", "python/cpython/extra"])
def test_promote_refuses_bad_repository_names(session, name):
    """Repository scope entries must be OWNER/REPO."""
    with pytest.raises(MentorshipError, match="OWNER/REPO"):
        promote(session, repositories=[name])


# ---------------------------------------------------------------- one open mentorship


@pytest.mark.parametrize("spelling", ["mpage", "MPage"])
def test_a_second_active_mentorship_is_refused(session, spelling):
    """A mentee with an active mentorship cannot be promoted again, in any spelling."""
    promote(session)
    with pytest.raises(MentorshipError, match=f"^{spelling} already has an active mentorship$"):
        promote(session, spelling, ("ambv",))
    session.rollback()
    assert count(session, Mentorship) == 1


def test_a_second_mentorship_while_one_is_scheduled_is_refused(session):
    """A scheduled mentorship counts as open too; the message reads as English."""
    promote(session, start=NOW + timedelta(days=3))
    with pytest.raises(MentorshipError) as refused:
        promote(session)
    assert str(refused.value) == "mpage already has a scheduled mentorship"


def test_a_lapsed_but_unmarked_mentorship_is_expired_on_repromotion(session):
    """A month that ran out unnoticed is marked expired at its own end, then the new one starts."""
    old = promote(session, now=NOW - timedelta(days=40))
    old_end = old.ends_at
    new = promote(session, "MPage", ("ambv",))
    session.expire_all()
    old, new = session.get(Mentorship, old.id), session.get(Mentorship, new.id)
    assert (old.ended_at, old.end_reason, old.ended_by) == (old_end, "expired", "gatekeeper")
    assert new.ended_at is None and lifecycle.state_of(new, NOW) == "active"
    [expired] = audit(session, "expired")
    assert (expired.mentorship_id, expired.at, expired.actor) == (old.id, old_end, "gatekeeper")
    assert lifecycle.latest_mentorship(session, mentee="mpage") == new


def test_promote_after_an_ended_mentorship(session):
    """Once a mentorship has ended by hand, the mentee can be promoted again."""
    promote(session)
    lifecycle.end(session, mentee="mpage", reason="revoked", actor="ambv", now=NOW)
    session.commit()
    promote(session, now=NOW + timedelta(hours=1))
    assert count(session, Mentorship) == 2


def test_the_database_refuses_a_second_open_mentorship(session):
    """The partial unique index rejects two unended rows for one mentee, even bypassing the code."""

    def row(**fields) -> Mentorship:
        return Mentorship(
            mentee="mpage",
            mentee_display="mpage",
            started_at=NOW,
            ends_at=NOW + timedelta(days=30),
            created_by="test",
            created_at=NOW,
            **fields,
        )

    session.add(row(ended_at=NOW, end_reason="revoked"))
    session.add(row(ended_at=NOW, end_reason="graduated"))
    session.add(row())
    session.commit()  # ended rows do not count
    session.add(row())
    with pytest.raises(sa.exc.IntegrityError):
        session.commit()
    session.rollback()
    assert count(session, Mentorship) == 3


# ---------------------------------------------------------------- PEP 13


@pytest.mark.parametrize(
    ("votes_for", "votes_against", "days_open", "problems"),
    [
        (30, 2, 7, []),
        (2, 1, 7, []),
        (10, 0, 14, []),
        (1, 1, 7, ["1 of 2 votes in favour is less than two-thirds"]),
        (65, 34, 7, ["65 of 99 votes in favour is less than two-thirds"]),
        (0, 0, 7, ["no votes were cast"]),
        (30, 2, 6, ["the vote was open 6 days, PEP 13 asks for 7"]),
        (
            1,
            2,
            0,
            [
                "1 of 3 votes in favour is less than two-thirds",
                "the vote was open 0 days, PEP 13 asks for 7",
            ],
        ),
    ],
    ids=[
        "landslide",
        "exactly-two-thirds",
        "unanimous",
        "tie",
        "just-under",
        "no-votes",
        "six-days",
        "both",
    ],
)
def test_pep13_rule(votes_for, votes_against, days_open, problems):
    """At least two-thirds of cast votes in favour and at least seven days open."""
    opened = date(2024, 11, 1)
    vote = Vote(votes_for, votes_against, opened, opened + timedelta(days=days_open))
    assert vote.problems() == problems
    assert vote.passes is (problems == [])


def test_a_passing_vote_is_recorded(session):
    """The promotion vote is kept with the mentorship and needs no override."""
    mentorship = promote(session, vote=PASSING_VOTE)
    session.expire_all()
    stored = session.get(Mentorship, mentorship.id)
    assert votes.vote_of(stored) == PASSING_VOTE
    assert stored.override_reason is None
    assert audit(session, "pep13_override") == []


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_failing_vote_without_override_is_refused(session, reason):
    """A vote that fails PEP 13 is refused unless an override reason is given."""
    with pytest.raises(MentorshipError, match=r"fails PEP 13 \(5 of 10 votes in favour"):
        promote(session, vote=FAILING_VOTE, override_reason=reason)
    assert count(session, Mentorship) == 0


def test_a_failing_vote_with_override_is_kept_and_audited(session):
    """An override promotes anyway; its reason is stored and a pep13_override event recorded."""
    mentorship = promote(session, vote=FAILING_VOTE, override_reason="  SC approved early  ")
    assert mentorship.override_reason == "SC approved early"
    [event] = audit(session, "pep13_override")
    assert event.mentorship_id == mentorship.id and event.actor == "ambv"
    assert "5 of 10 votes in favour" in event.detail
    assert event.detail.endswith("Reason: SC approved early")


def test_no_vote_is_no_promotion_record(session):
    """Without any vote detail no vote is stored and no PEP 13 check runs."""
    assert (
        votes.make_vote(url=None, votes_for=None, votes_against=None, opened=None, closed=None)
        is None
    )
    assert votes.vote_of(promote(session)) is None


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ({"votes_for": 30}, "missing votes against, vote opened, vote closed"),
        ({"url": "https://x"}, "missing votes for, votes against, vote opened, vote closed"),
        (
            {"votes_for": 30, "votes_against": 2, "opened": date(2024, 11, 1)},
            "missing vote closed",
        ),
        (
            {
                "votes_for": -1,
                "votes_against": 2,
                "opened": date(2024, 11, 1),
                "closed": date(2024, 11, 8),
            },
            "cannot be negative",
        ),
        (
            {
                "votes_for": 3,
                "votes_against": 0,
                "opened": date(2024, 11, 8),
                "closed": date(2024, 11, 1),
            },
            "cannot close before it opened",
        ),
    ],
    ids=["only-for", "only-url", "no-close", "negative", "backwards"],
)
def test_a_partial_or_impossible_vote_record_is_refused(parts, message):
    """A vote is given whole or not at all, with sensible numbers and dates."""
    given = {"url": None, "votes_for": None, "votes_against": None, "opened": None, "closed": None}
    with pytest.raises(MentorshipError, match=message):
        votes.make_vote(**{**given, **parts})


# ---------------------------------------------------------------- extend


def test_extend_by_days(session):
    """--days moves the end that many days later and records it."""
    mentorship = promote(session)
    lifecycle.extend(session, mentee="MPage", days=10, actor="ambv", now=NOW + timedelta(days=1))
    session.commit()
    assert mentorship.ends_at == datetime(2024, 12, 22, 15, 30, tzinfo=UTC)
    [event] = audit(session, "extended")
    assert event.detail == "from Dec 12, 2024, 15:30 UTC to Dec 22, 2024, 15:30 UTC"
    assert event.actor == "ambv"


def test_extend_until_a_later_date(session):
    """--until sets a new, later end."""
    mentorship = promote(session)
    until = datetime(2025, 1, 1, tzinfo=UTC)
    lifecycle.extend(session, mentee="mpage", until=until, actor="ambv", now=NOW)
    session.commit()
    assert mentorship.ends_at == until


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"until": datetime(2024, 12, 1, tzinfo=UTC)},
            "already runs until Dec 12, 2024, 15:30 UTC",
        ),
        ({"until": datetime(2024, 12, 12, 15, 30, tzinfo=UTC)}, "already runs until"),
        ({"days": 0}, "at least one day"),
        ({}, "either a number of days or an end date"),
        (
            {"days": 3, "until": datetime(2025, 1, 1, tzinfo=UTC)},
            "either a number of days or an end date",
        ),
    ],
    ids=["earlier", "same", "zero-days", "neither", "both"],
)
def test_extend_refuses_anything_but_a_later_end(session, options, message):
    """Extending never shortens (that is what end is for) and needs exactly one of days/until."""
    mentorship = promote(session)
    with pytest.raises(MentorshipError, match=message):
        lifecycle.extend(session, mentee="mpage", actor="ambv", now=NOW, **options)
    assert mentorship.ends_at == datetime(2024, 12, 12, 15, 30, tzinfo=UTC)


def test_extend_an_ended_mentorship_is_refused(session):
    """An ended mentorship cannot be extended."""
    promote(session)
    lifecycle.end(session, mentee="mpage", reason="graduated", actor="ambv", now=NOW)
    session.commit()
    with pytest.raises(MentorshipError, match="mpage's mentorship has already ended"):
        lifecycle.extend(session, mentee="mpage", days=5, actor="ambv", now=NOW)


def test_extend_a_lapsed_mentorship_is_refused(session):
    """A mentorship past its end is over even before the sweep marks it; it is not revived."""
    promote(session)
    with pytest.raises(MentorshipError, match="already ended"):
        lifecycle.extend(
            session, mentee="mpage", days=5, actor="ambv", now=NOW + timedelta(days=31)
        )


def test_changing_a_never_mentored_login_says_so(session):
    """Extending, ending or changing mentors of someone never mentored is an error naming them."""
    for change in (
        lambda: lifecycle.extend(session, mentee="Nobody", days=1, actor="a", now=NOW),
        lambda: lifecycle.end(session, mentee="Nobody", reason="revoked", actor="a", now=NOW),
        lambda: lifecycle.add_mentor(session, mentee="Nobody", mentor="x", actor="a", now=NOW),
        lambda: lifecycle.remove_mentor(session, mentee="Nobody", mentor="x", actor="a", now=NOW),
    ):
        with pytest.raises(MentorshipError, match=r"^Nobody has no mentorship$"):
            change()


# ---------------------------------------------------------------- end


@pytest.mark.parametrize("reason", ["graduated", "revoked"])
def test_end_early(session, reason):
    """Ending records when, why, who and a note, and the mentorship stays visible."""
    mentorship = promote(session)
    later = NOW + timedelta(days=9)
    lifecycle.end(session, mentee="MPage", reason=reason, actor="ambv", now=later, note=" done ")
    session.commit()
    session.expire_all()
    stored = session.get(Mentorship, mentorship.id)
    assert (stored.ended_at, stored.end_reason, stored.ended_by, stored.end_note) == (
        later,
        reason,
        "ambv",
        "done",
    )
    assert lifecycle.state_of(stored, later) == "ended"
    assert not lifecycle.is_active(stored, later)
    assert lifecycle.effective_end(stored) == later
    assert [e.detail for e in audit(session, "ended")] == [reason]
    assert lifecycle.latest_mentorship(session, mentee="mpage") == stored


def test_ending_twice_is_refused(session):
    """A mentorship ends once."""
    promote(session)
    lifecycle.end(session, mentee="mpage", reason="graduated", actor="ambv", now=NOW)
    session.commit()
    with pytest.raises(MentorshipError, match="already ended"):
        lifecycle.end(session, mentee="mpage", reason="revoked", actor="ambv", now=NOW)


def test_end_reason_must_be_graduated_or_revoked(session):
    """Expired is for the sweep; people end a mentorship as graduated or revoked."""
    promote(session)
    with pytest.raises(MentorshipError, match="graduated or revoked"):
        lifecycle.end(session, mentee="mpage", reason="expired", actor="ambv", now=NOW)


def test_ending_a_scheduled_mentorship(session):
    """A scheduled mentorship can be called off before it starts; it never becomes active."""
    mentorship = promote(session, start=NOW + timedelta(days=5))
    lifecycle.end(session, mentee="mpage", reason="revoked", actor="ambv", now=NOW)
    session.commit()
    assert lifecycle.state_of(mentorship, NOW + timedelta(days=6)) == "ended"
    assert lifecycle.effective_end(mentorship) == NOW


# ---------------------------------------------------------------- mentors


def test_add_a_mentor(session):
    """A mentor can join an open mentorship; the addition is audited."""
    mentorship = promote(session)
    lifecycle.add_mentor(session, mentee="mpage", mentor="@AMBV", actor="vstinner", now=NOW)
    session.commit()
    assert mentor_logins(session, mentorship) == ["colesbury", "AMBV"]
    assert [(e.detail, e.actor) for e in audit(session, "mentor_added")] == [
        ("colesbury", "ambv"),
        ("AMBV", "vstinner"),
    ]


@pytest.mark.parametrize(
    ("mentor", "message"),
    [
        ("Colesbury", "Colesbury already mentors mpage"),
        ("MPAGE", "MPAGE cannot be their own mentor"),
    ],
    ids=["duplicate", "mentee"],
)
def test_add_mentor_refusals(session, mentor, message):
    """A mentor is not added twice, and the mentee cannot mentor themselves."""
    promote(session)
    with pytest.raises(MentorshipError, match=message):
        lifecycle.add_mentor(session, mentee="mpage", mentor=mentor, actor="ambv", now=NOW)


def test_remove_a_mentor_is_recorded_not_deleted(session):
    """Removing a mentor keeps the assignment row with when and by whom it was removed."""
    mentorship = promote(session, mentors=("colesbury", "ambv"))
    lifecycle.remove_mentor(session, mentee="mpage", mentor="AMBV", actor="vstinner", now=NOW)
    session.commit()
    assert mentor_logins(session, mentorship) == ["colesbury"]
    removed = session.exec(select(MentorAssignment).where(MentorAssignment.mentor == "ambv")).one()
    assert (removed.removed_at, removed.removed_by) == (NOW, "vstinner")
    assert count(session, MentorAssignment) == 2
    assert [e.detail for e in audit(session, "mentor_removed")] == ["ambv"]


def test_a_removed_mentor_can_be_added_again(session):
    """Re-adding makes a new assignment; the history of the old one stays."""
    mentorship = promote(session, mentors=("colesbury", "ambv"))
    lifecycle.remove_mentor(session, mentee="mpage", mentor="ambv", actor="x", now=NOW)
    lifecycle.add_mentor(session, mentee="mpage", mentor="ambv", actor="x", now=NOW)
    session.commit()
    assert mentor_logins(session, mentorship) == ["colesbury", "ambv"]
    assert count(session, MentorAssignment) == 3


@pytest.mark.parametrize(
    ("mentors", "approvals", "remove", "message"),
    [
        (("colesbury",), 1, "vstinner", "vstinner is not a mentor of mpage"),
        (("colesbury",), 1, "colesbury", "mpage needs at least 1 mentor"),
        (("colesbury", "ambv"), 2, "ambv", "mpage needs at least 2 mentor"),
    ],
    ids=["unknown", "last", "below-approvals"],
)
def test_remove_mentor_refusals(session, mentors, approvals, remove, message):
    """Only a current mentor can be removed, and never below one or the required approvals."""
    mentorship = promote(session, mentors=mentors, approvals_required=approvals)
    with pytest.raises(MentorshipError, match=message):
        lifecycle.remove_mentor(session, mentee="mpage", mentor=remove, actor="ambv", now=NOW)
    assert len(mentor_logins(session, mentorship)) == len(mentors)


def test_mentor_changes_on_an_ended_mentorship_are_refused(session):
    """An ended mentorship's mentors are history; they cannot be changed."""
    promote(session, mentors=("colesbury", "ambv"))
    lifecycle.end(session, mentee="mpage", reason="graduated", actor="ambv", now=NOW)
    session.commit()
    with pytest.raises(MentorshipError, match="already ended"):
        lifecycle.add_mentor(session, mentee="mpage", mentor="vstinner", actor="a", now=NOW)
    with pytest.raises(MentorshipError, match="already ended"):
        lifecycle.remove_mentor(session, mentee="mpage", mentor="ambv", actor="a", now=NOW)


# ---------------------------------------------------------------- expiry and activity


def test_expire_lapsed_marks_only_lapsed_mentorships(session):
    """The sweep's expiry ends mentorships at their own end date, once, and leaves the rest."""
    lapsed = promote(session, "mpage", now=NOW - timedelta(days=45))
    at_boundary = promote(session, "Eclips4", days=10, now=NOW - timedelta(days=10))
    running = promote(session, "sobolevn")
    revoked = promote(session, "picnixz", now=NOW - timedelta(days=45))
    lifecycle.end(
        session, mentee="picnixz", reason="revoked", actor="ambv", now=NOW - timedelta(days=44)
    )
    session.commit()

    expired = lifecycle.expire_lapsed(session, now=NOW)
    session.commit()
    assert [m.mentee for m in expired] == ["mpage", "eclips4"]
    for mentorship in (lapsed, at_boundary):
        assert mentorship.ended_at == mentorship.ends_at
        assert (mentorship.end_reason, mentorship.ended_by) == ("expired", "gatekeeper")
    assert running.ended_at is None
    assert revoked.end_reason == "revoked"
    assert [(e.mentorship_id, e.at) for e in audit(session, "expired")] == [
        (lapsed.id, lapsed.ends_at),
        (at_boundary.id, at_boundary.ends_at),
    ]
    assert lifecycle.expire_lapsed(session, now=NOW) == []


def test_activity_at_the_exact_boundaries(session):
    """Active from started_at inclusive to ends_at exclusive, and never after being ended."""
    mentorship = promote(session, start=NOW + timedelta(days=1))
    session.expire_all()
    mentorship = session.get(Mentorship, mentorship.id)
    tick = timedelta(microseconds=1)
    start, end = mentorship.started_at, mentorship.ends_at
    cases = [
        (start - tick, False, "scheduled"),
        (start, True, "active"),
        (end - tick, True, "active"),
        (end, False, "ended"),
        (end + tick, False, "ended"),
    ]
    for at, active, state in cases:
        assert lifecycle.is_active(mentorship, at) is active, at
        assert lifecycle.state_of(mentorship, at) == state, at
        found = lifecycle.active_mentorship(session, mentee="mpage", at=at)
        assert (found == mentorship) is active, at


def test_a_lapsed_mentorship_is_not_active_before_any_job_marks_it(session):
    """Past ends_at the mentee is no longer under mentorship, though ended_at is still empty."""
    mentorship = promote(session)
    after = mentorship.ends_at + timedelta(seconds=1)
    assert mentorship.ended_at is None
    assert lifecycle.active_mentorship(session, mentee="mpage", at=after) is None
    assert lifecycle.state_of(mentorship, after) == "ended"
    assert lifecycle.effective_end(mentorship) == mentorship.ends_at


def test_latest_mentorship_prefers_the_open_one_then_the_most_recent(session):
    """Status shows the open mentorship if any, else the one that started last."""
    first = promote(session, now=NOW - timedelta(days=100))
    lifecycle.expire_lapsed(session, now=NOW - timedelta(days=60))
    second = promote(session, now=NOW - timedelta(days=50))
    lifecycle.end(
        session, mentee="mpage", reason="graduated", actor="a", now=NOW - timedelta(days=49)
    )
    session.commit()
    assert lifecycle.latest_mentorship(session, mentee="mpage") == second
    third = promote(session, start=NOW + timedelta(days=2))
    assert lifecycle.latest_mentorship(session, mentee="mpage") == third
    assert first.end_reason == "expired"


def test_latest_mentorship_of_someone_never_mentored_is_none(session):
    """A lookup that misses answers None; the callers word it ("nobody has no mentorship")."""
    promote(session, now=NOW)
    assert lifecycle.latest_mentorship(session, mentee="Nobody") is None
    assert lifecycle.no_mentorship("Nobody") == "Nobody has no mentorship"


def test_several_accounts_latest_mentorships_are_read_at_once(session):
    """``latest_mentorships_of`` answers for each account what ``latest_mentorship_of`` does,
    in one query: by id where the mentorship knows it, by login where it does not, and None
    for an account never mentored or another account holding a mentee's login."""
    mpage = promote(session, "mpage", now=NOW)
    guido = promote(session, "guido", now=NOW)
    guido_id = guido.mentee_id
    accounts = [
        (mpage.mentee_id, "mpage"),
        (guido_id, "guido"),
        (None, "guido"),
        (424242, "nobody"),
    ]
    if guido_id is not None:
        accounts.append((guido_id + 1, "guido"))  # someone who took the login since
    found = lifecycle.latest_mentorships_of(session, accounts=accounts)
    assert found == {
        account: lifecycle.latest_mentorship_of(session, account_id=account[0], login=account[1])
        for account in accounts
    }
    assert (found[(mpage.mentee_id, "mpage")], found[(None, "guido")]) == (mpage, guido)
    assert found[(424242, "nobody")] is None


# ---------------------------------------------------------------- audit trail, nothing deleted


def test_every_change_is_audited_and_nothing_is_deleted(session):
    """A whole life (promote, mentors, extend, end, expire, promote again) leaves a full trail."""
    statements: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    engine = session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", remember)
    try:
        first = promote(
            session, "MPage", ("colesbury", "ambv"), vote=FAILING_VOTE, override_reason="SC"
        )
        lifecycle.add_mentor(session, mentee="mpage", mentor="vstinner", actor="ambv", now=NOW)
        lifecycle.remove_mentor(session, mentee="mpage", mentor="ambv", actor="ambv", now=NOW)
        lifecycle.extend(session, mentee="mpage", days=7, actor="ambv", now=NOW)
        lifecycle.end(session, mentee="mpage", reason="revoked", actor="ambv", now=NOW)
        second = promote(session, "mpage", ("colesbury",), now=NOW + timedelta(days=1))
        lifecycle.expire_lapsed(session, now=NOW + timedelta(days=60))
        session.commit()
    finally:
        sa.event.remove(engine, "before_cursor_execute", remember)

    assert [(e.mentorship_id, e.kind) for e in audit(session)] == [
        (first.id, "created"),
        (first.id, "pep13_override"),
        (first.id, "mentor_added"),
        (first.id, "mentor_added"),
        (first.id, "mentor_added"),
        (first.id, "mentor_removed"),
        (first.id, "extended"),
        (first.id, "ended"),
        (second.id, "created"),
        (second.id, "mentor_added"),
        (second.id, "expired"),
    ]
    assert all(e.at is not None and e.actor for e in audit(session))
    assert (count(session, Mentorship), count(session, MentorAssignment)) == (2, 4)
    assert not [s for s in statements if s.lstrip().upper().startswith("DELETE")]
