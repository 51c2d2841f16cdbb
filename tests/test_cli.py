"""The gatekeeper command: every command on both databases, and every refusal writes nothing."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import Result
from sqlmodel import Session, SQLModel, col, select

from gatekeeper import create_app
from gatekeeper import mentorships as lifecycle
from gatekeeper.cli import cli, main
from gatekeeper.models import AuditEvent, MentorAssignment, Mentorship, PullRequest, utcnow

DONE_WHEN_PROMOTE = [
    "promote",
    "mpage",
    "--mentor",
    "colesbury",
    "--votes-for",
    "30",
    "--votes-against",
    "2",
    "--vote-opened",
    "2024-11-01",
    "--vote-closed",
    "2024-11-08",
]
DOCUMENT_KEYS = {
    "mentee",
    "mentors",
    "state",
    "started_at",
    "ends_at",
    "ended_at",
    "end_reason",
    "days_left",
    "promotion",
    "approvals_required",
    "pull_requests",
}


def row_counts(engine: sa.Engine) -> dict[str, int]:
    """Rows in every table, to prove a refused command wrote nothing."""
    with engine.connect() as connection:
        return {
            table.name: connection.execute(
                sa.select(sa.func.count()).select_from(table)
            ).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


class Gatekeeper:
    """Runs ``gatekeeper`` commands against the test app, as a user at a terminal would."""

    def __init__(self, runner, app) -> None:
        self.runner, self.engine = runner, app.extensions["gatekeeper.engine"]

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(cli, list(args))

    def ok(self, *args: str) -> Result:
        """Run a command that must succeed."""
        result = self(*args)
        assert result.exit_code == 0, (result.output, result.exception)
        return result

    def json(self, *args: str):
        """Run a --json command and parse what it printed."""
        return json.loads(self.ok(*args).stdout)

    def refused(self, *args: str) -> str:
        """Run a command that must be refused: exit 1, one ``Error:`` line, nothing written."""
        before = row_counts(self.engine)
        result = self(*args)
        assert result.exit_code == 1, (result.output, result.exception)
        assert isinstance(result.exception, SystemExit)
        [line] = result.stderr.splitlines()
        assert line.startswith("Error: ")
        assert "Traceback" not in result.output
        assert result.stdout == ""
        assert row_counts(self.engine) == before
        return line


@pytest.fixture
def gatekeeper(runner, app) -> Gatekeeper:
    """The ``gatekeeper`` command bound to the test app."""
    return Gatekeeper(runner, app)


def promote_directly(
    session: Session, mentee: str = "mpage", *, now: datetime, **options
) -> Mentorship:
    """Set up a mentorship without the CLI (e.g. one that started in the past)."""
    options.setdefault("mentors", ["colesbury"])
    mentorship = lifecycle.promote(session, mentee=mentee, actor="setup", now=now, **options)
    session.commit()
    return mentorship


def stored(session: Session, mentee: str = "mpage") -> Mentorship:
    """The mentee's most relevant mentorship as the database has it now."""
    session.expire_all()
    return lifecycle.latest_mentorship(session, mentee=mentee)


def audit_kinds(session: Session) -> list[str]:
    return [e.kind for e in session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))]


# ---------------------------------------------------------------- promote


def test_promote_the_done_when_example(gatekeeper, session):
    """The issue's example: a passing vote, one mentor, a one-calendar-month mentorship."""
    before = utcnow()
    result = gatekeeper.ok(*DONE_WHEN_PROMOTE)
    mentorship = stored(session)
    assert before <= mentorship.started_at <= utcnow()
    assert mentorship.ends_at == lifecycle.add_months(mentorship.started_at, 1)
    assert result.stdout == (
        f"mpage: active mentorship with colesbury until {mentorship.ends_at:%Y-%m-%d %H:%M} UTC.\n"
    )
    assert (mentorship.votes_for, mentorship.votes_against) == (30, 2)
    assert mentorship.created_by == getpass.getuser()  # who ran it, not "cli"
    assert audit_kinds(session) == ["created", "mentor_added"]


def test_promote_with_every_option(gatekeeper, session):
    """Each promote option reaches the stored mentorship."""
    gatekeeper.ok(
        "promote", "MPage", "--mentor", "colesbury", "--mentor", "@Ambv",
        "--start", "2099-01-31T10:00:00+02:00", "--days", "40",
        "--repo", "Python/CPython", "--repo", "python/peps",
        "--approvals", "2", "--keep-approvals-on-push", "--gate-approved-prs",
        "--vote-url", "https://discuss.python.org/t/1", "--votes-for", "5", "--votes-against", "5",
        "--vote-opened", "2098-12-01", "--vote-closed", "2098-12-02",
        "--override-reason", "the SC asked for it", "--note", "welcome!", "--by", "Vstinner",
    )  # fmt: skip
    mentorship = stored(session)
    assert mentorship.mentee_display == "MPage"
    assert mentorship.started_at == datetime(2099, 1, 31, 8, 0, tzinfo=UTC)
    assert mentorship.ends_at == datetime(2099, 3, 12, 8, 0, tzinfo=UTC)
    assert mentorship.repositories == ["python/cpython", "python/peps"]
    assert mentorship.approvals_required == 2
    assert mentorship.dismiss_stale_approvals is False
    assert mentorship.gate_approved_prs is True
    assert mentorship.vote_url == "https://discuss.python.org/t/1"
    assert mentorship.override_reason == "the SC asked for it"
    assert (mentorship.note, mentorship.created_by) == ("welcome!", "Vstinner")
    assert [a.mentor_display for a in lifecycle.mentors_of(session, mentorship=mentorship)] == [
        "colesbury",
        "Ambv",
    ]
    assert audit_kinds(session) == ["created", "pep13_override", "mentor_added", "mentor_added"]


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        ("2099-03-01", datetime(2099, 3, 1, tzinfo=UTC)),
        ("2099-03-01T12:30", datetime(2099, 3, 1, 12, 30, tzinfo=UTC)),
        ("2099-03-01T12:30:00Z", datetime(2099, 3, 1, 12, 30, tzinfo=UTC)),
        ("2099-03-01T12:30:00-05:00", datetime(2099, 3, 1, 17, 30, tzinfo=UTC)),
    ],
    ids=["bare-date", "naive-time", "zulu", "offset"],
)
def test_promote_until(gatekeeper, session, until, expected):
    """--until: a bare date is 00:00 UTC, a time without offset is UTC, offsets are converted."""
    result = gatekeeper.ok("promote", "mpage", "--mentor", "colesbury", "--until", until)
    assert stored(session).ends_at == expected
    assert f"until {expected:%Y-%m-%d %H:%M} UTC." in result.stdout


def test_promote_a_scheduled_start(gatekeeper, session):
    """A future --start makes a scheduled mentorship and says so."""
    result = gatekeeper.ok("promote", "mpage", "--mentor", "colesbury", "--start", "2099-05-01")
    assert result.stdout.startswith(
        "mpage: scheduled mentorship with colesbury until 2099-06-01 00:00"
    )
    assert stored(session).started_at == datetime(2099, 5, 1, tzinfo=UTC)


def test_promote_expires_a_lapsed_mentorship_first(gatekeeper, session):
    """Re-promoting after an unmarked lapse records the old one as expired, then starts anew."""
    old = promote_directly(session, now=utcnow() - timedelta(days=40))
    gatekeeper.ok("promote", "mpage", "--mentor", "ambv")
    session.expire_all()
    old = session.get(Mentorship, old.id)
    assert (old.end_reason, old.ended_at) == ("expired", old.ends_at)
    assert lifecycle.state_of(stored(session), utcnow()) == "active"


# ---------------------------------------------------------------- end, extend, mentors


@pytest.mark.parametrize("reason", ["graduated", "revoked"])
def test_end(gatekeeper, session, reason):
    """end stops the mentorship now, with reason, note and actor."""
    gatekeeper.ok("promote", "mpage", "--mentor", "colesbury")
    result = gatekeeper.ok("end", "MPage", "--reason", reason, "--note", "ready", "--by", "ambv")
    assert result.stdout == f"mpage: mentorship ended ({reason}).\n"
    mentorship = stored(session)
    assert (mentorship.end_reason, mentorship.end_note, mentorship.ended_by) == (
        reason,
        "ready",
        "ambv",
    )
    assert mentorship.ended_at is not None


def test_extend_by_days_and_until(gatekeeper, session):
    """extend --days adds days; extend --until sets a later end."""
    gatekeeper.ok("promote", "mpage", "--mentor", "colesbury", "--until", "2099-01-01")
    result = gatekeeper.ok("extend", "mpage", "--days", "10", "--by", "ambv")
    assert result.stdout == "mpage: now until 2099-01-11 00:00 UTC.\n"
    gatekeeper.ok("extend", "mpage", "--until", "2099-02-01T06:00")
    assert stored(session).ends_at == datetime(2099, 2, 1, 6, 0, tzinfo=UTC)
    assert audit_kinds(session)[-2:] == ["extended", "extended"]


def test_mentors_add_and_remove(gatekeeper, session):
    """mentors --add and --remove change the mentors and print the new list."""
    gatekeeper.ok("promote", "mpage", "--mentor", "colesbury")
    assert gatekeeper.ok("mentors", "mpage", "--add", "Ambv").stdout == (
        "mpage: mentors are now colesbury, Ambv.\n"
    )
    assert gatekeeper.ok("mentors", "mpage", "--remove", "colesbury", "--by", "x").stdout == (
        "mpage: mentors are now Ambv.\n"
    )
    assignments = session.exec(select(MentorAssignment).order_by(col(MentorAssignment.id))).all()
    assert [(a.mentor, a.removed_by) for a in assignments] == [("colesbury", "x"), ("ambv", None)]


# ---------------------------------------------------------------- list and status


def test_list_when_empty(gatekeeper):
    """An empty list says how to start."""
    assert gatekeeper.ok("list").stdout.startswith("No mentorships yet.")
    assert gatekeeper.json("list", "--json") == []


def test_list_shows_open_mentorships_and_all_with_all(gatekeeper, session):
    """list shows open ones, soonest end first; --all adds ended ones last."""
    gatekeeper.ok("promote", "mpage", "--mentor", "colesbury", "--until", "2099-03-01")
    gatekeeper.ok("promote", "Eclips4", "--mentor", "ambv", "--until", "2099-01-20")
    gatekeeper.ok("promote", "sobolevn", "--mentor", "ambv", "--start", "2099-01-01")
    gatekeeper.ok("promote", "picnixz", "--mentor", "ambv")
    gatekeeper.ok("end", "picnixz", "--reason", "graduated")
    lines = gatekeeper.ok("list").stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["Eclips4", "sobolevn", "mpage"]
    assert lines[0].startswith("Eclips4: active, ends 2099-01-20, ")
    assert lines[0].endswith(" days left; mentors ambv; 0 PRs waiting")
    assert lines[1] == (
        "sobolevn: scheduled, starts 2099-01-01, ends 2099-02-01; mentors ambv; 0 PRs waiting"
    )
    everything = gatekeeper.ok("list", "--all").stdout.splitlines()
    assert everything[:3] == lines
    [ended] = [d for d in gatekeeper.json("list", "--all", "--json") if d["state"] == "ended"]
    assert everything[3].startswith("picnixz: ended")
    assert f"ended {ended['ended_at'][:10]} (graduated); mentors ambv" in everything[3]
    assert [d["mentee"] for d in gatekeeper.json("list", "--json")] == [
        "Eclips4",
        "sobolevn",
        "mpage",
    ]
    assert [d["mentee"] for d in gatekeeper.json("list", "--all", "--json")] == [
        "Eclips4",
        "sobolevn",
        "mpage",
        "picnixz",
    ]


def test_list_json_is_an_array_of_status_documents(gatekeeper):
    """list --json prints exactly the documents status --json prints, one per mentorship."""
    gatekeeper.ok("promote", "mpage", "--mentor", "colesbury")
    gatekeeper.ok("promote", "Eclips4", "--mentor", "ambv", "--days", "3")
    listed = gatekeeper.json("list", "--json")
    assert listed == [
        gatekeeper.json("status", "eclips4", "--json"),
        gatekeeper.json("status", "mpage", "--json"),
    ]


def test_status_text(gatekeeper):
    """status prints a summary and the promotion vote's verdict."""
    gatekeeper.ok(*DONE_WHEN_PROMOTE)
    lines = gatekeeper.ok("status", "MPage").stdout.splitlines()
    assert lines[0].startswith("mpage: active, ends ")
    assert lines[1] == "  vote: 30 for, 2 against; passes PEP 13"


def test_status_text_of_an_overridden_vote(gatekeeper):
    """An overridden PEP 13 failure shows its reason."""
    gatekeeper.ok(
        "promote", "mpage", "--mentor", "colesbury", "--votes-for", "1", "--votes-against", "1",
        "--vote-opened", "2024-11-01", "--vote-closed", "2024-11-08", "--override-reason", "SC decision",
    )  # fmt: skip
    assert gatekeeper.ok("status", "mpage").stdout.splitlines()[1] == (
        "  vote: 1 for, 1 against; fails PEP 13 (1 of 2 votes in favour is less than two-thirds);"
        " promoted anyway: SC decision"
    )


def test_status_json_of_the_done_when_example(gatekeeper):
    """status --json: the documented keys, active, the mentor, and an end one calendar month on."""
    gatekeeper.ok(*DONE_WHEN_PROMOTE)
    document = gatekeeper.json("status", "MPage", "--json")
    assert set(document) >= DOCUMENT_KEYS
    started = datetime.fromisoformat(document["started_at"])
    ends = datetime.fromisoformat(document["ends_at"])
    assert started.utcoffset() == timedelta(0)
    assert ends == lifecycle.add_months(started, 1)
    assert document["mentee"] == "mpage"
    assert document["mentors"] == ["colesbury"]
    assert document["state"] == "active"
    assert (document["ended_at"], document["end_reason"]) == (None, None)
    assert document["days_left"] == (ends - started).days - 1  # day 1 of the month
    assert document["approvals_required"] == 1
    assert document["pull_requests"] == []
    assert document["promotion"] == {
        "vote_url": None,
        "votes_for": 30,
        "votes_against": 2,
        "vote_opened": "2024-11-01",
        "vote_closed": "2024-11-08",
        "source": "manual",
        "fetched_at": None,
        "pep13_passed": True,
        "pep13_problems": [],
        "override_reason": None,
    }


def test_status_json_of_an_ended_mentorship(gatekeeper):
    """An ended mentorship stays visible: state ended, when, why, no days left."""
    gatekeeper.ok("promote", "mpage", "--mentor", "colesbury")
    gatekeeper.ok("end", "mpage", "--reason", "revoked")
    document = gatekeeper.json("status", "mpage", "--json")
    assert (document["state"], document["end_reason"], document["days_left"]) == (
        "ended",
        "revoked",
        0,
    )
    assert datetime.fromisoformat(document["ended_at"]) <= utcnow()
    assert document["promotion"] is None
    line = gatekeeper.ok("status", "mpage").stdout
    assert line.startswith("mpage: ended")
    assert f"ended {document['ended_at'][:10]} (revoked); mentors colesbury" in line


def test_status_of_a_lapsed_but_unmarked_mentorship_is_expired(gatekeeper, session):
    """Before any sweep, a mentorship past its end already reads as ended, reason expired."""
    mentorship = promote_directly(session, now=utcnow() - timedelta(days=40))
    document = gatekeeper.json("status", "mpage", "--json")
    assert (document["state"], document["end_reason"]) == ("ended", "expired")
    assert document["ended_at"] == mentorship.ends_at.isoformat()
    assert gatekeeper.json("list", "--json") == []
    assert gatekeeper.json("list", "--all", "--json") == [document]


def test_status_text_lists_gated_pull_requests(gatekeeper, session):
    """status prints each gated pull request with its gate and approvers."""
    gatekeeper.ok("promote", "mpage", "--mentor", "colesbury", "--mentor", "ambv")
    mentorship = stored(session)
    for number, gate, approved_by in [(7, "waiting", []), (9, "approved", ["colesbury", "ambv"])]:
        session.add(
            PullRequest(
                repo="python/cpython",
                number=number,
                author="mpage",
                author_display="mpage",
                title=f"gh-{number}: fix",
                head_sha="a" * 40,
                first_seen_at=utcnow() + timedelta(seconds=number),
                gate=gate,
                approved_by=approved_by,
                gated_mentorship_id=mentorship.id,
            )
        )
    session.commit()
    lines = gatekeeper.ok("status", "mpage").stdout.splitlines()
    assert lines[0].endswith("mentors colesbury, ambv; 1 PRs waiting")
    assert lines[1:] == [
        "  python/cpython#7 waiting: gh-7: fix",
        "  python/cpython#9 approved by colesbury, ambv: gh-9: fix",
    ]


# ---------------------------------------------------------------- sweep and db upgrade


def test_sweep_expires_lapsed_mentorships(gatekeeper, session):
    """sweep marks lapsed mentorships expired; without GitHub it says that is all it did."""
    promote_directly(session, now=utcnow() - timedelta(days=40))
    promote_directly(session, "eclips4", now=utcnow())
    result = gatekeeper.ok("sweep")
    assert result.stderr.startswith("GitHub is not configured (set GITHUB_APP_ID and")
    assert "Sweep done without GitHub: 1 expired (mpage)," in result.stdout
    assert "reconciled" not in result.output
    assert stored(session).end_reason == "expired"
    assert stored(session, "eclips4").ended_at is None
    assert "Sweep done without GitHub: 0 expired," in gatekeeper.ok("sweep").stdout


def test_sweep_loop_repeats_with_a_fresh_session(gatekeeper, session, monkeypatch):
    """sweep --loop N sweeps, sleeps N seconds, and sweeps again with a new session."""
    naps: list[int] = []

    class Stop(Exception):
        pass

    def nap(seconds: int) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            raise Stop
        promote_directly(session, now=utcnow() - timedelta(days=40))

    monkeypatch.setattr("gatekeeper.cli.time.sleep", nap)
    result = gatekeeper("sweep", "--loop", "300")
    assert isinstance(result.exception, Stop)
    assert naps == [300, 300]
    done = [line.split(",")[0] for line in result.stdout.splitlines() if line.startswith("Sweep")]
    assert done == [
        "Sweep done without GitHub: 0 expired",
        "Sweep done without GitHub: 1 expired (mpage)",
    ]


def test_a_concurrent_promotion_is_refused_by_the_database(gatekeeper, session, monkeypatch):
    """If another promotion slips in between the check and the insert, the index refuses it."""
    gatekeeper.ok("promote", "mpage", "--mentor", "colesbury")
    monkeypatch.setattr(lifecycle, "open_mentorship", lambda session, *, mentee: None)
    assert gatekeeper.refused("promote", "mpage", "--mentor", "ambv") == (
        "Error: the change conflicts with one made at the same time; nothing was saved, try again"
    )


def test_db_upgrade_creates_the_schema(database_url):
    """db upgrade migrates an empty database to the models' tables, and is idempotent."""
    app = create_app({"database_url": database_url, "TESTING": True, "secret_key": "test"})
    engine = app.extensions["gatekeeper.engine"]
    try:
        runner = app.test_cli_runner()
        for _ in range(2):
            result = runner.invoke(cli, ["db", "upgrade"])
            assert result.exit_code == 0, result.output
            assert result.stdout.endswith("is at revision head.\n")
        tables = set(sa.inspect(engine).get_table_names())
        assert tables == {t.name for t in SQLModel.metadata.sorted_tables} | {"alembic_version"}
    finally:
        engine.dispose()


def test_a_database_error_is_one_line(database_url):
    """A command against an unmigrated database says to migrate, in one line."""
    app = create_app({"database_url": database_url, "TESTING": True, "secret_key": "test"})
    try:
        result = app.test_cli_runner().invoke(cli, ["list"])
        assert not isinstance(result.exception, sa.exc.SQLAlchemyError), result.exception
        assert result.exit_code == 1
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        [line] = lines
        assert line.startswith("Error: database error (")
        assert line.endswith("is it reachable and migrated (gatekeeper db upgrade)?")
    finally:
        app.extensions["gatekeeper.engine"].dispose()


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["status", "Nobody"], "Nobody has no mentorship"),
        (["status", "nobody", "--json"], "nobody has no mentorship"),
        (["end", "nobody", "--reason", "graduated"], "nobody has no mentorship"),
        (["extend", "nobody", "--days", "3"], "nobody has no mentorship"),
        (["mentors", "nobody", "--add", "ambv"], "nobody has no mentorship"),
        (["status", "not a login"], "'not a login' is not a valid GitHub login"),
    ],
    ids=["status", "status-json", "end", "extend", "mentors", "invalid-login"],
)
def test_unknown_mentee_is_refused(gatekeeper, command, message):
    """Commands about someone never mentored say so in one line."""
    gatekeeper.ok("promote", "mpage", "--mentor", "colesbury")
    assert gatekeeper.refused(*command) == f"Error: {message}"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--mentor", "MPage"], "mpage cannot be their own mentor"),
        (["--mentor", "ambv", "--start", "next tuesday"], "--start: 'next tuesday' is not a date (YYYY-MM-DD) or ISO 8601 time"),
        (["--mentor", "ambv", "--until", "2099-02-30"], "--until: '2099-02-30' is not a date (YYYY-MM-DD) or ISO 8601 time"),
        (["--mentor", "ambv", "--vote-opened", "01/11/2024"], "--vote-opened: '01/11/2024' is not a date (YYYY-MM-DD)"),
        (["--mentor", "ambv", "--days", "5", "--until", "2099-01-01"], "give --days or --until, not both"),
        (["--mentor", "ambv", "--until", "2001-01-01"], "the end date must come after the start"),
        (
            ["--mentor", "ambv", "--votes-for", "5", "--votes-against", "5", "--vote-opened", "2024-11-01", "--vote-closed", "2024-11-08"],
            "the promotion vote fails PEP 13 (5 of 10 votes in favour is less than two-thirds); give an override reason to promote anyway",
        ),
        (
            ["--mentor", "ambv", "--votes-for", "30", "--votes-against", "2", "--vote-opened", "2024-11-01", "--vote-closed", "2024-11-03"],
            "the promotion vote fails PEP 13 (the vote was open 2 days, PEP 13 asks for 7); give an override reason to promote anyway",
        ),
        (["--mentor", "ambv", "--votes-for", "30"], "the promotion vote is incomplete: missing votes against, vote opened, vote closed"),
        (["--mentor", "ambv", "--approvals", "2"], "2 approvals required but only 1 mentors"),
        (["--mentor", "ambv", "--repo", "cpython"], "'cpython' is not a repository name of the form OWNER/REPO"),
    ],
    ids=["own-mentor", "bad-start", "bad-until", "bad-vote-date", "days-and-until", "until-past", "pep13-votes", "pep13-days", "partial-vote", "approvals", "bad-repo"],
)  # fmt: skip
def test_promote_refusals(gatekeeper, options, message):
    """Each refused promote prints one line, exits 1 and writes nothing."""
    gatekeeper.ok("promote", "Eclips4", "--mentor", "colesbury")
    assert gatekeeper.refused("promote", "mpage", *options) == f"Error: {message}"


@pytest.mark.parametrize("spelling", ["mpage", "MPage"])
def test_a_duplicate_active_mentorship_is_refused(gatekeeper, spelling):
    """Promoting someone already under mentorship is refused, whatever the login's case."""
    gatekeeper.ok("promote", "mpage", "--mentor", "colesbury")
    assert gatekeeper.refused("promote", spelling, "--mentor", "ambv") == (
        f"Error: {spelling} already has an active mentorship"
    )


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["end", "mpage", "--reason", "graduated"], "mpage's mentorship has already ended"),
        (["extend", "mpage", "--days", "3"], "mpage's mentorship has already ended"),
        (["mentors", "mpage", "--add", "ambv"], "mpage's mentorship has already ended"),
    ],
    ids=["end-twice", "extend", "mentors"],
)
def test_changes_to_an_ended_mentorship_are_refused(gatekeeper, command, message):
    """Once ended by hand, a mentorship cannot be ended again, extended or re-staffed."""
    gatekeeper.ok("promote", "mpage", "--mentor", "colesbury")
    gatekeeper.ok("end", "mpage", "--reason", "revoked")
    assert gatekeeper.refused(*command) == f"Error: {message}"


@pytest.mark.parametrize(
    "command",
    [
        ["extend", "mpage", "--days", "3"],
        ["end", "mpage", "--reason", "graduated"],
        ["mentors", "mpage", "--add", "ambv"],
    ],
    ids=["extend", "end", "mentors"],
)
def test_changes_to_a_lapsed_mentorship_are_refused_without_writing(gatekeeper, session, command):
    """A lapsed mentorship is not revived; the refusal does not even record the expiry."""
    promote_directly(session, now=utcnow() - timedelta(days=40))
    assert gatekeeper.refused(*command) == "Error: mpage's mentorship has already ended"
    assert stored(session).ended_at is None


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["extend", "mpage", "--until", "2000-01-01"], "the mentorship already runs until"),
        (["extend", "mpage", "--until", "soon"], "--until: 'soon' is not a date (YYYY-MM-DD) or ISO 8601 time"),
        (["extend", "mpage"], "give either a number of days or an end date"),
        (["mentors", "mpage"], "give exactly one of --add or --remove"),
        (["mentors", "mpage", "--add", "a", "--remove", "colesbury"], "give exactly one of --add or --remove"),
        (["mentors", "mpage", "--add", "Colesbury"], "Colesbury already mentors mpage"),
        (["mentors", "mpage", "--add", "MPAGE"], "MPAGE cannot be their own mentor"),
        (["mentors", "mpage", "--remove", "ambv"], "ambv is not a mentor of mpage"),
        (["mentors", "mpage", "--remove", "colesbury"], "mpage needs at least 1 mentor; add another before removing this one"),
    ],
    ids=["extend-earlier", "extend-bad-date", "extend-neither", "mentors-neither", "mentors-both", "mentor-twice", "mentor-self", "remove-unknown", "remove-last"],
)  # fmt: skip
def test_change_refusals(gatekeeper, command, message):
    """Refused extend and mentors changes print one line, exit 1 and write nothing."""
    gatekeeper.ok("promote", "mpage", "--mentor", "colesbury")
    line = gatekeeper.refused(*command)
    assert line.startswith(f"Error: {message}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["end", "mpage"], "Missing option '--reason'. Choose from: graduated, revoked; see gatekeeper end -h"),
        (["end", "mpage", "--reason", "retired"], "Invalid value for '--reason': 'retired' is not one of 'graduated', 'revoked'; see gatekeeper end -h"),
        (["extend", "mpage", "--days", "0"], "Invalid value for '--days': 0 is not in the range x>=1; see gatekeeper extend -h"),
        (["promote", "mpage"], "Missing option '--mentor'; see gatekeeper promote -h"),
        (["report", "mpage", "--json", "--markdown"], "give --json or --markdown, not both; see gatekeeper report -h"),
        (["no-such-command"], "No such command 'no-such-command'; see gatekeeper -h"),
        (["db", "upgrade", "--nope"], "No such option '--nope'; see gatekeeper db upgrade -h"),
    ],
    ids=["end-no-reason", "end-retired", "extend-zero", "promote-no-mentor", "report-both", "unknown-command", "unknown-option"],
)  # fmt: skip
def test_a_usage_error_is_one_line_and_exit_1(gatekeeper, args, message):
    """Usage errors keep the README's promise for every refusal: one Error: line on stderr
    naming the problem and where help is, exit status 1, no usage block, nothing written."""
    gatekeeper.ok("promote", "mpage", "--mentor", "colesbury")
    line = gatekeeper.refused(*args)
    assert line == f"Error: {message}"


def test_a_bare_gatekeeper_still_shows_its_help(gatekeeper):
    """No command at all is not an error to say in one line: the command list is shown."""
    result = gatekeeper()
    assert "Commands:" in result.output
    assert "Error" not in result.output


@pytest.mark.parametrize(
    "mentor_options",
    [
        ["--mentor", "colesbury,vstinner"],
        ["--mentor", " colesbury , vstinner ,"],
        ["--mentor", "colesbury", "--mentor", "vstinner"],
    ],
    ids=["comma-list", "spaces-and-trailing-comma", "repeated"],
)
def test_mentors_may_be_a_comma_list_or_repeated(gatekeeper, mentor_options):
    """--mentor a,b is two mentors, as the web form's comma-separated field; repeating
    --mentor still works."""
    gatekeeper.ok("promote", "mpage", *mentor_options, "--no-wait")
    shown = gatekeeper.json("status", "mpage", "--json")
    assert sorted(shown["mentors"]) == ["colesbury", "vstinner"]


# ---------------------------------------------------------------- the real console script


def test_main_builds_the_app_from_the_environment(tmp_path, monkeypatch, capsys):
    """The entry point reads DATABASE_URL itself."""
    url = f"sqlite:///{tmp_path / 'main.sqlite'}"
    monkeypatch.setenv("DATABASE_URL", url)
    for argv in (["db", "upgrade"], ["list"]):
        monkeypatch.setattr(sys, "argv", ["gatekeeper", *argv])
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == 0
    out = capsys.readouterr().out
    assert f"Database at {url} is at revision head." in out
    assert "No mentorships yet." in out


def test_main_reports_a_configuration_error_in_one_line(monkeypatch, capsys):
    """A malformed setting is reported by the entry point as one Error: line, exit status 1."""
    monkeypatch.setenv("GATEKEEPER_ENV", "production")
    monkeypatch.setattr(sys, "argv", ["gatekeeper", "list"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    assert (
        capsys.readouterr().err == "Error: SECRET_KEY must be set when GATEKEEPER_ENV=production\n"
    )


def run_gatekeeper(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the installed ``gatekeeper`` console script."""
    script = Path(sys.executable).parent / "gatekeeper"
    return subprocess.run(
        [str(script), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def script_env(tmp_path, migrated_sqlite) -> dict[str, str]:
    """The environment for the console script: a migrated SQLite file, nothing from the developer.

    The file is a copy of the session's migrated one: ``db upgrade`` through ``main()`` is
    tested in-process above, and each start of the script costs two seconds.
    """
    database = tmp_path / "cli.sqlite"
    shutil.copyfile(migrated_sqlite, database)
    return {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}


def test_console_script_done_when(script_env):
    """From the shell: the issue's promote, then status MPage --json shows it active."""
    promote = run_gatekeeper(*DONE_WHEN_PROMOTE, env=script_env)
    assert promote.returncode == 0, promote.stderr
    assert promote.stdout.startswith("mpage: active mentorship with colesbury until ")
    status = run_gatekeeper("status", "MPage", "--json", env=script_env)
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["state"] == "active"
    assert document["mentors"] == ["colesbury"]
    started = datetime.fromisoformat(document["started_at"])
    assert datetime.fromisoformat(document["ends_at"]) == lifecycle.add_months(started, 1)

    again = run_gatekeeper(*DONE_WHEN_PROMOTE, env=script_env)
    assert again.returncode == 1
    assert again.stderr.splitlines() == ["Error: mpage already has an active mentorship"]
    assert again.stdout == ""


def test_console_script_configuration_error_is_one_line(script_env):
    """A malformed setting stops the command before it runs: one line, exit 1, no traceback."""
    result = run_gatekeeper("list", env={**script_env, "GITHUB_APP_ID": "twelve"})
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["Error: GITHUB_APP_ID must be a number, got 'twelve'"]
    assert "Traceback" not in result.stderr + result.stdout


# ---------------------------------------------------------------- fewer mentors than asked for


def test_one_mentor_is_accepted_with_a_warning(gatekeeper, session):
    """ "Two or three mentors" is advice: promoting with one succeeds (exit 0) and says on
    stderr that two or three are recommended; with two, nothing is said."""
    result = gatekeeper.ok(*DONE_WHEN_PROMOTE)
    assert stored(session).mentee == "mpage"
    assert result.stderr == (
        "warning: This mentorship has only 1 mentor; two or three are recommended, so that a"
        " mentor who is busy or away does not hold the mentee's pull requests up.\n"
    )
    added = gatekeeper.ok("mentors", "mpage", "--add", "ambv")
    assert added.stderr == ""
    removed = gatekeeper.ok("mentors", "mpage", "--remove", "ambv")
    assert removed.stderr.startswith("warning: This mentorship has only 1 mentor;")
