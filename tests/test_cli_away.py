"""``gatekeeper away``: a mentor away until a date and back, and each refusal in one line with
nothing written (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select
from test_cli import Gatekeeper

from factories import mentorship
from fakegithub import default_user_id
from gatekeeper import away
from gatekeeper.models import Absence, AuditEvent, utcnow


@pytest.fixture
def gatekeeper(runner, app) -> Gatekeeper:
    """The ``gatekeeper`` command bound to the test app."""
    return Gatekeeper(runner, app)


@pytest.fixture
def mentored(session: Session) -> Session:
    """mpage and eclips4 both mentored by colesbury, whose account is known, since now."""
    mentorship(session, start=utcnow())
    mentorship(session, "eclips4", ("colesbury", "ambv"), start=utcnow())
    return session


def later(days: int) -> str:
    return (utcnow().date() + timedelta(days=days)).isoformat()


def absence(session: Session, login: str) -> Absence | None:
    session.expire_all()
    return session.get(Absence, default_user_id(login))


def test_away_until_a_date_with_a_note(gatekeeper, mentored: Session):
    """away --until --note stores the absence for the account and says where it applies."""
    result = gatekeeper.ok(
        "away", "ColesBury", "--until", later(7), "--note", "at a sprint", "--by", "boss"
    )
    day = away.day_words(utcnow().date() + timedelta(days=7))
    assert result.stdout.splitlines()[0] == (
        f"colesbury is away until {day}; review requests and reminders in 2 mentorships go"
        " to the other mentors."
    )
    stored = absence(mentored, "colesbury")
    assert stored is not None
    assert (stored.note, stored.set_by) == ("at a sprint", "boss")
    events = mentored.exec(select(AuditEvent).where(AuditEvent.kind == away.AWAY)).all()
    assert len(events) == 2 and {e.actor for e in events} == {"boss"}


def test_back(gatekeeper, mentored: Session):
    """away --back ends the absence and says so."""
    gatekeeper.ok("away", "colesbury", "--until", later(3))
    result = gatekeeper.ok("away", "colesbury", "--back")
    assert result.stdout.splitlines()[0] == (
        "colesbury is back; review requests in 2 mentorships go to them again."
    )
    assert absence(mentored, "colesbury") is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([], "Error: give --until DATE or --back, one of them", id="neither"),
        pytest.param(
            ["--until", "2099-01-01", "--back"],
            "Error: give --until DATE or --back, one of them",
            id="both",
        ),
        pytest.param(
            ["--back", "--note", "x"], "Error: --note goes with --until, not with --back", id="note"
        ),
        pytest.param(
            ["--until", "tomorrow"],
            "Error: 'tomorrow' is not a date; write it as YYYY-MM-DD",
            id="unparseable",
        ),
        pytest.param(
            ["--until", "2020-02-02"],
            "Error: Feb 2, 2020 has passed; give today or a later day",
            id="past",
        ),
    ],
)
def test_a_bad_away_command_is_one_line_and_writes_nothing(
    gatekeeper, mentored: Session, args: list[str], message: str
):
    """Each refusal: exit 1, one Error line, no row changed."""
    assert gatekeeper.refused("away", "colesbury", *args).startswith(message)


def test_back_when_not_away_is_refused(gatekeeper, mentored: Session):
    """Nobody to bring back: refused in one line."""
    line = gatekeeper.refused("away", "colesbury", "--back")
    assert line == "Error: colesbury is not marked away"


def test_an_unknown_account_is_refused(gatekeeper, mentored: Session):
    """A login Gatekeeper never saw an account for: refused, saying why."""
    line = gatekeeper.refused("away", "stranger", "--until", later(1))
    assert line.startswith("Error: Gatekeeper knows no GitHub account under stranger yet")


def test_away_is_in_the_help(gatekeeper):
    """The command list names it with its summary."""
    assert "Mark a mentor away until a date, or back." in gatekeeper.ok("--help").stdout
