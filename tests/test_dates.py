"""Properties of the date rules: calendar-month arithmetic and activity at the boundaries."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from gatekeeper.mentorships import add_months, default_end, is_active, state_of
from gatekeeper.models import Mentorship, UTCDateTime

ZONES = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=5, minutes=30)),
        timezone(timedelta(hours=-8)),
        timezone(timedelta(hours=14)),
    ]
)
MOMENTS = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31), timezones=ZONES
)
TICK = timedelta(microseconds=1)


def month_number(moment: datetime) -> int:
    return moment.year * 12 + moment.month - 1


def mentorship(start: datetime, end: datetime, ended_at: datetime | None = None) -> Mentorship:
    """A mentorship that lives only in memory; the rules need no database."""
    return Mentorship(
        mentee="mpage",
        mentee_display="mpage",
        started_at=start,
        ends_at=end,
        ended_at=ended_at,
        created_by="test",
        created_at=start,
    )


@settings(deadline=None)
@given(MOMENTS)
def test_default_end_is_one_calendar_month_later(start):
    """Same time of day and zone, next month, day clamped to that month's last day."""
    end = default_end(start)
    assert month_number(end) == month_number(start) + 1
    assert end.day == min(start.day, calendar.monthrange(end.year, end.month)[1])
    assert (end.time(), end.tzinfo) == (start.time(), start.tzinfo)
    assert end > start
    assert timedelta(days=28) <= end - start <= timedelta(days=31)


@settings(deadline=None)
@given(MOMENTS, st.integers(min_value=-24, max_value=24))
def test_add_months_moves_whole_months_and_clamps_the_day(start, months):
    """add_months lands ``months`` calendar months away, on the same or the last possible day."""
    moved = add_months(start, months)
    assert month_number(moved) == month_number(start) + months
    last_day = calendar.monthrange(moved.year, moved.month)[1]
    assert moved.day == min(start.day, last_day)
    assert (moved.time(), moved.tzinfo) == (start.time(), start.tzinfo)
    if months > 0:
        assert moved > start
    elif months < 0:
        assert moved < start
    else:
        assert moved == start


@settings(deadline=None)
@given(MOMENTS, st.integers(min_value=0, max_value=24), st.integers(min_value=0, max_value=24))
def test_add_months_composes_when_no_clamping_happens(start, first, second):
    """For days every month has (1..28), adding a then b months equals adding a + b."""
    start = start.replace(day=min(start.day, 28))
    assert add_months(add_months(start, first), second) == add_months(start, first + second)


@settings(deadline=None)
@given(MOMENTS, st.integers(min_value=1, max_value=12))
def test_add_months_is_monotonic(start, months):
    """A longer span never ends earlier."""
    assert add_months(start, months) <= add_months(start, months + 1)


@settings(deadline=None)
@given(MOMENTS)
def test_active_from_start_inclusive_to_end_exclusive(start):
    """Active at started_at and until just before ends_at; not a microsecond either side."""
    m = mentorship(start, default_end(start))
    assert not is_active(m, start - TICK)
    assert is_active(m, start)
    assert is_active(m, m.ends_at - TICK)
    assert not is_active(m, m.ends_at)
    assert state_of(m, start - TICK) == "scheduled"
    assert state_of(m, start) == "active"
    assert state_of(m, m.ends_at) == "ended"


@settings(deadline=None)
@given(
    MOMENTS,
    st.integers(min_value=1, max_value=400),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=500)),
)
def test_an_ended_mentorship_gated_only_until_it_ended(start, days, ended_after):
    """Ended by hand: active from its start until the moment it ended (or its end date, if
    earlier), never after; its label reads "ended" from then on."""
    m = mentorship(start, start + timedelta(days=days), ended_at=start + ended_after)
    stop = min(start + ended_after, m.ends_at)
    for at in (start - TICK, start, stop - TICK, stop, m.ends_at - TICK, m.ends_at):
        assert is_active(m, at) is (start <= at < stop)
        assert state_of(m, at) == "ended"


@settings(deadline=None)
@given(
    MOMENTS,
    st.integers(min_value=1, max_value=400),
    st.timedeltas(min_value=timedelta(days=-500), max_value=timedelta(days=500)),
    st.booleans(),
)
def test_state_of_agrees_with_is_active(start, days, offset, ended):
    """state_of is active exactly when is_active; scheduled only before the start."""
    m = mentorship(start, start + timedelta(days=days), ended_at=start if ended else None)
    at = start + offset
    state = state_of(m, at)
    assert (state == "active") is is_active(m, at)
    assert (state == "scheduled") is (not ended and at < start)
    assert (state == "ended") is (ended or at >= m.ends_at)


@settings(deadline=None)
@given(MOMENTS, st.sampled_from([sqlite.dialect(), postgresql.psycopg.dialect()]))
def test_stored_times_come_back_as_the_same_instant_in_utc(moment, dialect):
    """The column type stores any aware time and returns the same instant, in UTC."""
    column = UTCDateTime()
    stored = column.process_bind_param(moment, dialect)
    loaded = column.process_result_value(stored, dialect)
    assert loaded == moment
    assert loaded.tzinfo == UTC
