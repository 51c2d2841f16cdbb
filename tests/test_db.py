"""The database's helpers: SQLite writers that wait their turn instead of failing, and units
of work retried whole when the database refuses them for the moment.

The reproduction first: on one SQLite file, a transaction that read and then writes while
another connection holds the write lock is refused at once ("database is locked"), which is
how main answered 500s and 503s under ordinary overlap. Through ``db.writing`` the same work
waits for the lock and then reads what the other committed. Then the retry helper, on SQLite
and PostgreSQL, and the whole app on SQLite with its background worker under load.
"""

from __future__ import annotations

import concurrent.futures
import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from dashboard_support import Site
from fakegithub import FakeGitHub
from gate_support import REPO, SECRET, World, app_for
from gatekeeper import db, github_of, worker
from gatekeeper import mentorships as lifecycle
from gatekeeper.cli import cli
from gatekeeper.models import AuditEvent, SessionGeneration, utcnow
from webhook_events import deliver

READ = sa.text("SELECT value FROM counter WHERE id = 1")
ADD_ONE = sa.text("UPDATE counter SET value = :value WHERE id = 1")


@pytest.fixture
def counter(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file with one counter row at 0, on the app's engine settings."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'counter.sqlite'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER)")
        connection.exec_driver_sql("INSERT INTO counter VALUES (1, 0)")
    yield engine
    engine.dispose()


def value_of(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(READ) or 0)


def test_a_deferred_transaction_that_read_is_refused_while_another_writes(counter: Engine):
    """The cause: a plain transaction reads, another connection takes the write lock, the
    first then writes and SQLite refuses it at once; the error counts as transient."""
    with Session(counter) as reader, db.writer(counter).connect() as other:
        value = reader.scalar(READ)
        other.execute(ADD_ONE, {"value": 1})  # holds the write lock until it commits
        with pytest.raises(sa.exc.OperationalError, match="database is locked") as refused:
            reader.execute(ADD_ONE, {"value": value + 1})
        reader.rollback()
        other.commit()
    assert db.is_transient(refused.value)
    assert value_of(counter) == 1


def test_a_unit_of_work_waits_for_the_writer_before_it_and_loses_no_update(counter: Engine):
    """Through ``db.writing`` the same read-then-write waits while the other connection holds
    the lock (it neither fails nor reads the old value), then reads what the other committed
    and adds to it: both increments are kept."""
    seen: list[int] = []

    def add_one(session: Session) -> None:
        value = int(session.scalar(READ) or 0)
        seen.append(value)
        session.execute(ADD_ONE, {"value": value + 1})

    with (
        concurrent.futures.ThreadPoolExecutor(1) as pool,
        Session(counter) as session,
        db.writer(counter).connect() as other,
    ):
        other.execute(ADD_ONE, {"value": 1})
        unit = pool.submit(db.writing, session, add_one)
        with pytest.raises(concurrent.futures.TimeoutError):
            unit.result(timeout=0.5)  # still waiting for the lock, not refused
        assert seen == []
        other.commit()
        unit.result(timeout=30)
    assert seen == [1]
    assert value_of(counter) == 2


def test_only_busy_or_locked_is_transient_on_sqlite(counter: Engine):
    """A missing table is no reason to ask again; a lock held elsewhere is."""
    with Session(counter) as session, pytest.raises(sa.exc.OperationalError) as missing:
        session.execute(sa.text("SELECT * FROM nowhere"))
    assert not db.is_transient(missing.value)
    locked = sa.exc.OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))
    assert db.is_transient(locked)


def test_reads_outside_a_unit_of_work_do_not_wait_for_a_writer(counter: Engine):
    """Pages keep deferred reads under WAL: a read answers while another connection holds
    the write lock (and sees the last committed value)."""
    with db.writer(counter).connect() as other, Session(counter) as reader:
        other.execute(ADD_ONE, {"value": 5})
        assert reader.scalar(READ) == 0
        other.commit()


# ---------------------------------------------------------------- the retry helper


def engine_of(app: Flask) -> Engine:
    return app.extensions["gatekeeper.engine"]


def transient_error(app: Flask) -> sa.exc.DBAPIError:
    """What each database says when it refuses a unit for the moment."""
    if engine_of(app).dialect.name == "sqlite":
        return sa.exc.OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))
    reason = psycopg.errors.SerializationFailure("could not serialize access")
    return sa.exc.OperationalError("UPDATE", {}, reason)


def failing(times: int, error: BaseException, login: str = "ada") -> Callable[[Session], str]:
    """Work that stores a row, then raises ``error`` on its first ``times`` runs."""
    runs: list[int] = []

    def work(session: Session) -> str:
        runs.append(1)
        session.add(SessionGeneration(login=login, generation=len(runs)))
        session.flush()
        if len(runs) <= times:
            raise error
        return f"done on run {len(runs)}"

    work.runs = runs  # type: ignore[attr-defined]
    return work


def stored(app: Flask) -> list[tuple[str, int]]:
    with Session(engine_of(app)) as session:
        rows = session.exec(select(SessionGeneration).order_by(SessionGeneration.login))
        return [(row.login, row.generation) for row in rows]


def test_a_transient_error_runs_the_whole_unit_again(app: Flask):
    """Refused twice for the moment, the unit runs a third time from the start: what the
    failed runs stored is gone, what the third stored is committed."""
    work = failing(2, transient_error(app))
    with Session(engine_of(app)) as session:
        assert db.writing(session, work) == "done on run 3"
    assert stored(app) == [("ada", 3)]


def test_a_unit_refused_every_time_gives_up_with_a_clear_error(app: Flask):
    """After ``attempts`` runs the helper stops and says the database stayed busy and that
    nothing was saved; the last refusal is kept as the cause."""
    error = transient_error(app)
    work = failing(99, error)
    with Session(engine_of(app)) as session, pytest.raises(db.Busy) as busy:
        db.writing(session, work, attempts=3)
    assert len(work.runs) == 3  # type: ignore[attr-defined]
    assert "stayed busy through 3 attempts" in str(busy.value)
    assert "nothing was saved" in str(busy.value)
    assert busy.value.__cause__ is error
    assert stored(app) == []


@pytest.mark.parametrize(
    "error",
    [lifecycle.MentorshipError("refused"), sa.exc.ProgrammingError("SELECT", {}, Exception("no"))],
    ids=["refusal", "not-transient"],
)
def test_other_errors_are_raised_at_once_with_nothing_saved(app: Flask, error: Exception):
    """A refusal, or a database error that asking again cannot change, ends the unit on its
    first run and rolls back what it stored."""
    work = failing(99, error)
    with Session(engine_of(app)) as session, pytest.raises(type(error)):
        db.writing(session, work)
    assert len(work.runs) == 1  # type: ignore[attr-defined]
    assert stored(app) == []


def test_a_unique_key_taken_meanwhile_is_tried_again_and_one_that_stays_is_raised(app: Flask):
    """A unit that inserts a key another unit inserted first is run again (it then sees that
    row); one whose key is taken on every run is no race, and its own error is raised."""
    with Session(engine_of(app)) as session:
        db.writing(session, lambda work: work.add(SessionGeneration(login="ada", generation=1)))
        runs: list[int] = []

        def insert_once_seen(work: Session) -> int:
            runs.append(1)
            if len(runs) == 1:  # as if it had not seen the row a concurrent unit committed
                work.add(SessionGeneration(login="ada", generation=7))
                work.flush()
            row = work.get(SessionGeneration, "ada")
            assert row is not None
            row.generation += 1
            return row.generation

        assert db.writing(session, insert_once_seen) == 2
        assert len(runs) == 2
        always = failing(0, AssertionError("unreachable"))
        with pytest.raises(sa.exc.IntegrityError):
            db.writing(session, always, attempts=2)
    assert len(always.runs) == 2  # type: ignore[attr-defined]
    assert stored(app) == [("ada", 2)]


# ---------------------------------------------------------------- GitHub never waited on


def test_no_github_call_is_made_while_a_write_lock_is_held(tmp_path: Path, github_fake):
    """Writers take SQLite's lock as their transaction begins, so one left open while GitHub
    answers would stall every other writer: at each request the fake receives, the lock is
    free. Walked: a promotion and an end from the CLI (each posting at once), deliveries and
    the worker's posts and jobs, a sweep from the CLI (reconciling, scanning, redelivering)."""
    path = tmp_path / "gatekeeper.sqlite"
    app = app_for(github_fake, f"sqlite:///{path}")
    held: list[str] = []

    def lock_is_free(method: str, request_path: str) -> None:
        probe = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError:
            held.append(f"{method} {request_path}")
        finally:
            probe.close()

    github_fake.on_request = lock_is_free
    world, cli_runner = World(app, github_fake), app.test_cli_runner()
    try:
        promoted = cli_runner.invoke(cli, ["promote", MENTEE, "--mentor", MENTOR])
        assert promoted.exit_code == 0, promoted.output
        world.open_pull(7, author=MENTEE, head_sha=sha(7))
        world.review(7, reviewer=MENTOR, head_sha=sha(7))
        github_fake.add_pull(REPO, 8, author=MENTEE, head_sha=sha(8))  # its webhook was lost
        swept = cli_runner.invoke(cli, ["sweep"])
        ended = cli_runner.invoke(cli, ["end", MENTEE, "--reason", "graduated"])
        assert (swept.exit_code, ended.exit_code) == (0, 0), swept.output + ended.output
    finally:
        github_fake.on_request = None
        github_of(app).close()
        app.extensions["gatekeeper.engine"].dispose()
    assert world.check(sha(7))["conclusion"] == "success"
    assert world.check(sha(8))["conclusion"] == "success"  # found by the sweep, then lifted
    assert len(github_fake.calls) > 10
    assert held == []


# ---------------------------------------------------------------- the app under load

SENDERS = 8
DELIVERIES_PER_SENDER = 12
PULLS = 6
MENTEE, MENTOR, MAINTAINER = "mpage", "colesbury", "boss"


@pytest.fixture
def busy_world(tmp_path: Path, github_fake: FakeGitHub) -> Iterator[World]:
    """The app on SQLite (CSRF on, ``boss`` the maintainer) with mpage mentored and six of
    their pull requests waiting, each with its check on the fake GitHub."""
    app = app_for(
        github_fake,
        f"sqlite:///{tmp_path / 'gatekeeper.sqlite'}",
        maintainers=MAINTAINER,
        WTF_CSRF_ENABLED=True,
    )
    world = World(app, github_fake)
    world.promote(MENTEE, (MENTOR, "vstinner"))
    for number in range(1, PULLS + 1):
        world.open_pull(number, author=MENTEE, head_sha=sha(number))
    yield world
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


def sha(number: int) -> str:
    return f"{number:x}" * 40


def send_deliveries(world: World, sender: int) -> list[int]:
    """One GitHub sender: edits and others' comments on the pull requests, each one new
    (a later time, another review), all signed."""
    client = world.app.test_client()
    statuses = []
    for turn in range(DELIVERIES_PER_SENDER):
        number = (sender + turn) % PULLS + 1
        stamp = f"{utcnow() + timedelta(seconds=100 * sender + turn):%Y-%m-%dT%H:%M:%SZ}"
        if turn % 2:
            event, payload = (
                "pull_request",
                world.events.pull_request(
                    "edited", number=number, author=MENTEE, head_sha=sha(number), updated_at=stamp
                ),
            )
        else:
            event, payload = (
                "pull_request_review",
                world.events.review(
                    "submitted",
                    number=number,
                    author=MENTEE,
                    head_sha=sha(number),
                    reviewer="stranger",
                    state="commented",
                    review_id=1000 * (sender + 1) + turn,
                    submitted_at=stamp,
                    updated_at=stamp,
                ),
            )
        statuses.append(deliver(client, event, payload, secret=SECRET).status_code)
    return statuses


def dashboard_actions(world: World) -> list[tuple[str, int]]:
    """A mentor approves each pull request while a maintainer extends the month, edits its
    terms, and at last ends it: the answers, by action."""
    mentor, maintainer = Site(world.app), Site(world.app)
    mentor.sign_in(MENTOR)
    maintainer.sign_in(MAINTAINER)
    answers = []
    for number in range(1, PULLS + 1):
        approve = f"/pulls/{REPO}/{number}/approve"
        answers.append(("approve", mentor.post(approve, {"head_sha": sha(number)}).status_code))
        if number % 2:
            extend = maintainer.post(f"/mentorships/{MENTEE}/extend", {"days": "1"})
            answers.append(("extend", extend.status_code))
        else:
            terms = maintainer.post(f"/mentorships/{MENTEE}/terms", terms_form(world, number))
            answers.append(("terms", terms.status_code))
    end = maintainer.post(f"/mentorships/{MENTEE}/end", {"reason": "graduated", "note": "done"})
    answers.append(("end", end.status_code))
    return answers


def terms_form(world: World, number: int) -> dict[str, str]:
    """The terms as they stand, with a new note."""
    with world.session() as session:
        mentorship = lifecycle.latest_mentorship(session, mentee=MENTEE)
    fields = {
        "approvals_required": str(mentorship.approvals_required),
        "repositories": "\n".join(mentorship.repositories),
        "note": f"Edited while busy, {number}.",
        "seen": lifecycle.terms_digest(mentorship),
    }
    for box in (
        "dismiss_stale_approvals",
        "same_content_approvals",
        "gate_approved_prs",
        "bypass_alerts",
    ):
        if getattr(mentorship, box):  # an unticked box is not sent, as a browser does
            fields[box] = "y"
    return fields


def test_serve_on_sqlite_answers_no_5xx_while_deliveries_and_people_overlap(busy_world: World):
    """``gatekeeper serve`` on SQLite: its background worker posts checks while eight senders
    deliver signed events and, at the same time, a mentor approves every pull request and a
    maintainer extends, edits the terms and ends the month. Every answer is below 500, and
    every action landed."""
    stop = worker.start_background(busy_world.app)
    try:
        with concurrent.futures.ThreadPoolExecutor(SENDERS + 1) as pool:
            senders = [pool.submit(send_deliveries, busy_world, n) for n in range(SENDERS)]
            people = pool.submit(dashboard_actions, busy_world)
            answers = people.result(timeout=300)
            deliveries = [s for future in senders for s in future.result(timeout=300)]
    finally:
        stop.set()
    assert len(deliveries) == SENDERS * DELIVERIES_PER_SENDER
    assert [s for s in deliveries if s >= 500] == []
    assert set(deliveries) <= {200, 202}
    assert [a for a in answers if a[1] >= 500] == []
    assert [a for a in answers if a[1] != 302] == []  # each one did what it was asked
    with busy_world.session() as session:
        kinds = [e.kind for e in session.exec(select(AuditEvent))]
    assert kinds.count("approval") == PULLS
    assert kinds.count("extended") == PULLS // 2
    assert kinds.count("terms_changed") == PULLS // 2
    assert kinds.count("ended") == 1


def test_a_view_whose_unit_stays_refused_answers_503_saying_nothing_was_saved(
    site: Site, monkeypatch: pytest.MonkeyPatch
):
    """A dashboard change the database refuses on every attempt is a 503 page that says to
    try again (no traceback), and the month is not extended."""
    site.promote()
    ends_at = site.mentorship().ends_at
    refusal = transient_error(site.app)

    def refused(*args: object, **kwargs: object) -> None:
        raise refusal

    monkeypatch.setattr(lifecycle, "extend", refused)
    site.sign_in(MAINTAINER)
    response = site.post(f"/mentorships/{MENTEE}/extend", {"days": "1"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    page = response.get_data(as_text=True)
    assert "stayed busy through" in page and "nothing was saved" in page
    assert "Traceback" not in page
    assert site.mentorship().ends_at == ends_at
