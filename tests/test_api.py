"""The JSON documents: written once, served by /api and printed by status/list --json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from gatekeeper import api
from gatekeeper import mentorships as lifecycle
from gatekeeper.cli import cli
from gatekeeper.models import Mentorship, PullRequest, utcnow
from gatekeeper.votes import Vote

NOW = datetime(2024, 11, 12, 15, 30, tzinfo=UTC)


def promote(
    session: Session, mentee: str = "mpage", *, now: datetime = NOW, **options
) -> Mentorship:
    """A committed mentorship (mentor colesbury unless given)."""
    options.setdefault("mentors", ["colesbury"])
    mentorship = lifecycle.promote(session, mentee=mentee, actor="ambv", now=now, **options)
    session.commit()
    return mentorship


def add_pull(session: Session, mentorship: Mentorship, number: int, **fields) -> PullRequest:
    """A pull request gated by ``mentorship``."""
    pull = PullRequest(
        repo="python/cpython",
        number=number,
        author=mentorship.mentee,
        author_display=mentorship.mentee_display,
        title=f"gh-{number}: fix",
        url=f"https://github.com/python/cpython/pull/{number}",
        head_sha=f"{number:040x}",
        first_seen_at=NOW + timedelta(minutes=number),
        gate="waiting",
        gated_mentorship_id=mentorship.id,
        **fields,
    )
    session.add(pull)
    session.commit()
    return pull


@contextmanager
def counting_queries(session: Session) -> Iterator[list[str]]:
    """Collect the SQL statements sent on the session's engine."""
    statements: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        if statement != "BEGIN":  # SQLite's transaction start: no query of the page's
            statements.append(statement)

    engine = session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", remember)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", remember)


# ---------------------------------------------------------------- the document


def test_document_of_an_active_mentorship(session):
    """Every documented key, with the promotion vote and the gated pull requests."""
    mentorship = promote(
        session,
        "MPage",
        mentors=["colesbury", "Ambv"],
        repositories=["python/cpython"],
        approvals_required=2,
        vote=Vote(30, 2, date(2024, 11, 1), date(2024, 11, 8), "https://discuss.python.org/t/1"),
    )
    add_pull(session, mentorship, 7, approved_by=["colesbury"])
    add_pull(session, mentorship, 5, state="closed", merged=True)
    document = api.status_document(session, mentee="mpage", now=NOW + timedelta(days=1, hours=1))
    assert document == {
        "mentee": "MPage",
        "mentors": ["colesbury", "Ambv"],
        "state": "active",
        "started_at": "2024-11-12T15:30:00+00:00",
        "ends_at": "2024-12-12T15:30:00+00:00",
        "ended_at": None,
        "end_reason": None,
        "days_left": 28,
        "promotion": {
            "vote_url": "https://discuss.python.org/t/1",
            "votes_for": 30,
            "votes_against": 2,
            "vote_opened": "2024-11-01",
            "vote_closed": "2024-11-08",
            "source": "manual",
            "fetched_at": None,
            "pep13_passed": True,
            "pep13_problems": [],
            "override_reason": None,
        },
        "approvals_required": 2,
        "repositories": ["python/cpython"],
        "repositories_hidden": 0,
        "dismiss_stale_approvals": True,
        "same_content_approvals": True,
        "gate_approved_prs": False,
        "pull_requests": [
            {
                "repo": "python/cpython",
                "number": 5,
                "title": "gh-5: fix",
                "url": "https://github.com/python/cpython/pull/5",
                "author": "MPage",
                "head_sha": f"{5:040x}",
                "state": "merged",
                "gate": "waiting",
                "approved_by": [],
            },
            {
                "repo": "python/cpython",
                "number": 7,
                "title": "gh-7: fix",
                "url": "https://github.com/python/cpython/pull/7",
                "author": "MPage",
                "head_sha": f"{7:040x}",
                "state": "open",
                "gate": "waiting",
                "approved_by": ["colesbury"],
            },
        ],
    }


def test_document_of_an_overridden_vote(session):
    """A PEP 13 failure promoted anyway shows its problems and the override reason."""
    promote(session, vote=Vote(1, 1, date(2024, 11, 1), date(2024, 11, 2)), override_reason="SC")
    promotion = api.status_document(session, mentee="mpage", now=NOW)["promotion"]
    assert promotion["pep13_passed"] is False
    assert promotion["pep13_problems"] == [
        "1 of 2 votes in favour is less than two-thirds",
        "the vote was open 1 day, PEP 13 asks for 7",
    ]
    assert promotion["override_reason"] == "SC"


def test_document_of_an_override_without_a_vote(session):
    """An override reason given without a vote record is still shown, with no verdict."""
    promote(session, override_reason="promoted before Gatekeeper existed")
    promotion = api.status_document(session, mentee="mpage", now=NOW)["promotion"]
    assert promotion["votes_for"] is None and promotion["pep13_passed"] is None
    assert promotion["override_reason"] == "promoted before Gatekeeper existed"


@pytest.mark.parametrize(
    ("at", "state", "days_left"),
    [
        (NOW - timedelta(days=2), "scheduled", 30),
        (NOW, "active", 29),
        (NOW + timedelta(seconds=1), "active", 29),
        (NOW + timedelta(days=28, hours=23), "active", 1),
        (NOW + timedelta(days=29, hours=23), "active", 0),
        (datetime(2024, 12, 12, 15, 29, 59, tzinfo=UTC), "active", 0),
        (datetime(2024, 12, 12, 15, 30, tzinfo=UTC), "ended", 0),
    ],
    ids=["scheduled", "start", "just-after-start", "day-29", "last-day", "last-second", "end"],
)
def test_state_and_days_left(session, at, state, days_left):
    """The one day rule: on day N of a 30-day period, 30 - N days are left (day 1: 29, the
    last day: 0); a scheduled one has all 30 ahead; an ended one none."""
    promote(session, now=NOW - timedelta(days=3), start=NOW)
    document = api.status_document(session, mentee="mpage", now=at)
    assert (document["state"], document["days_left"]) == (state, days_left)


def test_document_of_a_lapsed_unmarked_mentorship(session):
    """Past its end and not yet swept, the document already says ended, expired, at ends_at."""
    promote(session)
    document = api.status_document(session, mentee="mpage", now=NOW + timedelta(days=40))
    assert (document["state"], document["end_reason"]) == ("ended", "expired")
    assert document["ended_at"] == document["ends_at"] == "2024-12-12T15:30:00+00:00"


def test_document_of_a_mentorship_ended_early(session):
    """Ended by hand, the document gives the real end and reason."""
    promote(session)
    lifecycle.end(
        session, mentee="mpage", reason="graduated", actor="ambv", now=NOW + timedelta(days=3)
    )
    session.commit()
    document = api.status_document(session, mentee="mpage", now=NOW + timedelta(days=4))
    assert (
        document["state"],
        document["ended_at"],
        document["end_reason"],
        document["days_left"],
    ) == (
        "ended",
        "2024-11-15T15:30:00+00:00",
        "graduated",
        0,
    )


def test_removed_mentors_are_not_listed(session):
    """The document lists current mentors only."""
    promote(session, mentors=["colesbury", "ambv"])
    lifecycle.remove_mentor(session, mentee="mpage", mentor="colesbury", actor="x", now=NOW)
    session.commit()
    assert api.status_document(session, mentee="mpage", now=NOW)["mentors"] == ["ambv"]


def test_list_documents_open_or_all(session):
    """Open mentorships by default, ended ones too with include_ended."""
    promote(session, "mpage")
    promote(session, "eclips4")
    lifecycle.end(session, mentee="eclips4", reason="revoked", actor="x", now=NOW)
    session.commit()
    assert [d["mentee"] for d in api.list_documents(session, include_ended=False, now=NOW)] == [
        "mpage"
    ]
    assert [d["mentee"] for d in api.list_documents(session, include_ended=True, now=NOW)] == [
        "mpage",
        "eclips4",
    ]


def test_list_documents_uses_a_fixed_number_of_queries(session):
    """Listing 30 mentorships costs as many queries as listing 3: no query per row."""

    def populate(first: int, last: int) -> None:
        for n in range(first, last):
            mentorship = promote(session, f"mentee{n}", mentors=["colesbury", "ambv"])
            add_pull(session, mentorship, n)
        session.expire_all()

    def queries() -> int:
        with counting_queries(session) as statements:
            found = api.list_documents(session, include_ended=True, now=NOW)
        assert all(len(d["mentors"]) == 2 and len(d["pull_requests"]) == 1 for d in found)
        return len(statements)

    populate(0, 3)
    few = queries()
    populate(3, 30)
    assert queries() == few == 3


def test_documents_of_nothing_need_one_query(session):
    """An empty list is one query, not three."""
    with counting_queries(session) as statements:
        assert api.list_documents(session, include_ended=True, now=NOW) == []
    assert len(statements) == 1


# ---------------------------------------------------------------- /api


def test_api_mentorships_is_list_all_json(client, runner, session):
    """GET /api/mentorships serves exactly what gatekeeper list --all --json prints."""
    now = utcnow()
    promote(session, "mpage", now=now, until=datetime(2099, 1, 1, tzinfo=UTC))
    promote(session, "eclips4", now=now, start=datetime(2099, 1, 1, tzinfo=UTC))
    promote(session, "picnixz", now=now)
    lifecycle.end(session, mentee="picnixz", reason="graduated", actor="x", now=now)
    session.commit()
    response = client.get("/api/mentorships")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    printed = runner.invoke(cli, ["list", "--all", "--json"]).stdout
    assert response.get_json() == json.loads(printed)
    assert [d["mentee"] for d in response.get_json()] == ["mpage", "eclips4", "picnixz"]


def test_api_mentorships_when_empty(client):
    """With no mentorships the API answers an empty array."""
    assert client.get("/api/mentorships").get_json() == []


@pytest.mark.parametrize("spelling", ["mpage", "MPage"])
def test_api_mentorship_is_status_json(client, runner, session, spelling):
    """GET /api/mentorships/<mentee> serves exactly what gatekeeper status --json prints."""
    mentorship = promote(session, "MPage", now=utcnow(), until=datetime(2099, 1, 1, tzinfo=UTC))
    add_pull(session, mentorship, 12)
    response = client.get(f"/api/mentorships/{spelling}")
    assert response.status_code == 200
    printed = runner.invoke(cli, ["status", spelling, "--json"]).stdout
    assert response.get_json() == json.loads(printed)
    assert response.get_json()["mentee"] == "MPage"


@pytest.mark.parametrize("mentee", ["nobody", "not-a-login-"])
def test_api_unknown_mentee_is_404(client, session, mentee):
    """An unknown (or impossible) mentee is a 404."""
    promote(session, now=utcnow())
    assert client.get(f"/api/mentorships/{mentee}").status_code == 404
