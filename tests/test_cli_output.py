"""What the command says and records: who made a change (--by), refusals, sweep's progress
on a terminal and its quiet lines elsewhere, and plain words about what GitHub did not get."""

from __future__ import annotations

import getpass
import json
import os
import pty
import select
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import Result
from sqlmodel import Session, SQLModel, col
from sqlmodel import select as query

from gate_support import REPO
from gatekeeper import db
from gatekeeper import mentorships as lifecycle
from gatekeeper.cli import cli
from gatekeeper.models import AuditEvent, Mentorship, PullRequest, utcnow

NOT_CONFIGURED = "GitHub is not configured (set GITHUB_APP_ID and GITHUB_PRIVATE_KEY): "


def invoke(runner, *args: str) -> Result:
    """Run a command against the test app."""
    return runner.invoke(cli, list(args))


def ok(runner, *args: str) -> Result:
    """Run a command that must succeed."""
    result = invoke(runner, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def row_counts(engine: sa.Engine) -> dict[str, int]:
    """Rows in every table, to prove a refused command wrote nothing."""
    with engine.connect() as connection:
        return {
            table.name: connection.execute(
                sa.select(sa.func.count()).select_from(table)
            ).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


def refused(runner, app, *args: str) -> str:
    """Run a command that must be refused: exit 1, one Error: line, nothing written."""
    engine = app.extensions["gatekeeper.engine"]
    before = row_counts(engine)
    result = invoke(runner, *args)
    assert result.exit_code == 1, (result.output, result.exception)
    [line] = result.stderr.splitlines()
    assert "Traceback" not in result.output and result.stdout == ""
    assert row_counts(engine) == before
    return line


def actors(session: Session) -> set[str]:
    """Everyone the audit log names."""
    session.expire_all()
    return {event.actor for event in session.exec(query(AuditEvent))}


# ---------------------------------------------------------------- --by


def test_by_defaults_to_gatekeeper_actor(runner, session, monkeypatch):
    """With GATEKEEPER_ACTOR set, every change is recorded as made by that person."""
    monkeypatch.setenv("GATEKEEPER_ACTOR", "  ambv ")
    ok(runner, "promote", "mpage", "--mentor", "colesbury")
    ok(runner, "extend", "mpage", "--days", "3")
    ok(runner, "mentors", "mpage", "--add", "vstinner")
    ok(runner, "end", "mpage", "--reason", "graduated")
    mentorship = lifecycle.latest_mentorship(session, mentee="mpage")
    assert (mentorship.created_by, mentorship.ended_by) == ("ambv", "ambv")
    assert actors(session) == {"ambv"}


def test_by_defaults_to_the_os_user(runner, session):
    """Without GATEKEEPER_ACTOR, the operating system's user name is recorded, not 'cli'."""
    assert "GATEKEEPER_ACTOR" not in os.environ
    ok(runner, "promote", "mpage", "--mentor", "colesbury")
    assert actors(session) == {getpass.getuser()}


def test_an_explicit_by_wins(runner, session, monkeypatch):
    """--by names the person whatever the environment says."""
    monkeypatch.setenv("GATEKEEPER_ACTOR", "ambv")
    ok(runner, "promote", "mpage", "--mentor", "colesbury", "--by", "Yhg1s")
    assert actors(session) == {"Yhg1s"}


def test_without_any_user_name_the_uid_is_recorded(runner, session, monkeypatch):
    """Where the system knows no name for the user (a container's bare uid), the uid stands in,
    plainly marked, rather than a made-up name."""

    def no_name() -> str:
        raise OSError("no user name")  # what getpass.getuser() raises in such a container

    monkeypatch.setattr(getpass, "getuser", no_name)
    ok(runner, "promote", "mpage", "--mentor", "colesbury")
    assert actors(session) == {f"uid-{os.getuid()}"}


@pytest.mark.parametrize("actor", ["   ", "x" * 65], ids=["blank", "too-long"])
def test_a_by_that_names_nobody_is_refused(runner, app, actor):
    """A blank --by, or one longer than the audit log holds, is one line and writes nothing."""
    line = refused(runner, app, "promote", "mpage", "--mentor", "colesbury", "--by", actor)
    assert line == (
        "Error: --by (or $GATEKEEPER_ACTOR) must name who makes the change in 1 to 64 characters"
    )


# ---------------------------------------------------------------- refusals


def test_extend_refuses_days_and_until_together(runner, app, session):
    """extend --days 5 --until DATE says 'not both' in one line, exit 1, and changes nothing."""
    ok(runner, "promote", "mpage", "--mentor", "colesbury")
    ends_at = lifecycle.latest_mentorship(session, mentee="mpage").ends_at
    line = refused(runner, app, "extend", "mpage", "--days", "5", "--until", "2099-01-01")
    assert line == "Error: give --days or --until, not both"
    session.expire_all()
    assert lifecycle.latest_mentorship(session, mentee="mpage").ends_at == ends_at


# ---------------------------------------------------------------- plain words without GitHub


def add_open_pull(session: Session, mentee: str = "mpage", number: int = 7) -> None:
    """A stored open pull request of ``mentee``'s, as a webhook would have left it."""
    session.add(
        PullRequest(
            repo=REPO,
            number=number,
            author=mentee,
            author_display=mentee,
            title=f"gh-{number}: fix",
            head_sha="a" * 40,
            first_seen_at=utcnow(),
        )
    )
    session.commit()


def test_promote_without_github_says_nothing_was_posted(runner, session):
    """A promotion that changes a stored gate, with GitHub not configured, says no check was
    posted and who will post it, and claims no 'Checks posted'."""
    add_open_pull(session)
    # Two mentors: one would add the warning that two or three are recommended.
    result = ok(runner, "promote", "mpage", "--mentor", "colesbury", "--mentor", "ambv")
    assert result.stderr == (
        NOT_CONFIGURED + "nothing was read from or posted to GitHub; 1 check waits to be"
        " posted, and a worker posts them once GitHub is configured.\n"
    )
    assert "posted:" not in result.stdout.lower()
    ended = ok(runner, "end", "mpage", "--reason", "graduated")
    assert ended.stderr.startswith(NOT_CONFIGURED)
    assert "Checks posted" not in ended.stdout


def test_sweep_without_github_says_what_it_did_and_did_not(runner, session):
    """sweep without GitHub: it expired and re-decided, read and posted nothing, and says who
    posts the waiting checks; it never says 'reconciled'."""
    lifecycle.promote(
        session,
        mentee="mpage",
        mentors=["colesbury"],
        actor="setup",
        now=utcnow() - timedelta(days=40),
    )
    session.commit()
    add_open_pull(session)
    result = ok(runner, "sweep")
    assert result.stderr == (
        NOT_CONFIGURED + "nothing was read from or posted to GitHub; mentorships were expired"
        " and stored gates re-decided here; 1 check waits to be posted, and a worker posts"
        " them once GitHub is configured.\n"
    )
    assert result.stdout == (
        "Sweep done without GitHub: 1 expired (mpage), 1 stored gates changed; no pull request"
        " was read from GitHub and no check was posted.\n"
    )
    assert "reconciled" not in result.output


def test_sweep_json_is_one_summary_line(runner, session):
    """sweep --json prints one JSON object on one line and nothing else, even without GitHub."""
    lifecycle.promote(
        session,
        mentee="mpage",
        mentors=["colesbury"],
        actor="setup",
        now=utcnow() - timedelta(days=40),
    )
    session.commit()
    result = ok(runner, "sweep", "--json")
    assert result.stderr == ""
    [line] = result.stdout.splitlines()
    document = json.loads(line)
    assert document["github_configured"] is False
    assert document["expired"] == ["mpage"]
    assert (document["checks_posted"], document["checks_waiting"], document["failures"]) == (
        0,
        0,
        [],
    )
    assert set(document) == {
        "github_configured", "expired", "mentees_checked", "pull_requests_checked",
        "repositories_scanned", "checks_changed", "checks_posted", "checks_waiting",
        "deliveries_redelivered", "gone", "skipped_installations", "failures",
        "notices_queued",
    }  # fmt: skip


# ---------------------------------------------------------------- sweep on a terminal or not


@pytest.fixture
def lapsed_database(tmp_path, migrated_sqlite) -> dict[str, str]:
    """An environment for the console script whose SQLite file holds one lapsed mentorship."""
    database = tmp_path / "sweep.sqlite"
    shutil.copyfile(migrated_sqlite, database)
    url = f"sqlite:///{database}"
    engine = db.make_engine(url)
    with Session(engine) as session:
        lifecycle.promote(
            session,
            mentee="mpage",
            mentors=["colesbury"],
            actor="setup",
            now=utcnow() - timedelta(days=40),
        )
        session.commit()
    engine.dispose()
    return {**os.environ, "DATABASE_URL": url}


SCRIPT = str(Path(sys.executable).parent / "gatekeeper")


def on_a_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run the console script with stdout and stderr on a real pseudo-terminal."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [SCRIPT, *args], stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    output = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        assert ready, "the command printed nothing for a minute"
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return process.wait(timeout=60), output.decode().replace("\r\n", "\n")


def test_sweep_shows_its_steps_on_a_terminal(lapsed_database):
    """On a terminal, sweep shows each step as it goes, then its results."""
    code, output = on_a_terminal("sweep", env=lapsed_database)
    assert code == 0, output
    lines = output.splitlines()
    assert "  sweeping: expired mentorships first, then each mentee's pull requests" in lines
    assert "  mpage: mentorship expired" in lines
    assert lines[-1].startswith("Sweep done without GitHub: 1 expired (mpage),")


def test_sweep_is_quiet_and_line_oriented_when_piped(lapsed_database):
    """Piped (cron, the clock process), sweep prints no steps: its results, a line each."""
    result = subprocess.run(
        [SCRIPT, "sweep"],
        env=lapsed_database,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Sweep done without GitHub: 1 expired (mpage), 0 stored gates changed; no pull request"
        " was read from GitHub and no check was posted.\n"
    )
    [line] = result.stderr.splitlines()
    assert line.startswith(NOT_CONFIGURED)


def test_sweep_json_on_a_terminal_prints_only_the_document(lapsed_database):
    """With --json, even on a terminal, the output is the JSON document alone."""
    code, output = on_a_terminal("sweep", "--json", env=lapsed_database)
    assert code == 0, output
    [line] = output.splitlines()
    assert json.loads(line)["expired"] == ["mpage"]


def test_sweep_marks_the_mentorship_expired(lapsed_database):
    """The terminal run's sweep really ended the mentorship (the output is not all it did)."""
    on_a_terminal("sweep", env=lapsed_database)
    engine = db.make_engine(lapsed_database["DATABASE_URL"])
    with Session(engine) as session:
        [mentorship] = session.exec(query(Mentorship).where(col(Mentorship.mentee) == "mpage"))
        assert mentorship.end_reason == "expired"
    engine.dispose()
