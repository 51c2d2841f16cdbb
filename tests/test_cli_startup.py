"""``gatekeeper status`` and ``list`` read without building the app: no Flask, no SQLAlchemy
(nor Alembic) once the database is at head, the same output, and the embedded SQLite default
still migrated.

Each test runs the command in a fresh interpreter, as a user's shell does, and looks at which
modules it loaded (``benchmarks/startup.py`` measures what that saves; no test times it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, SQLModel

import gatekeeper
import gatekeeper.models  # registers every table on SQLModel.metadata
from gatekeeper import create_app, db, documents
from gatekeeper.cli import cli
from gatekeeper.config import normalise_database_url

# What only the app's commands and views need: a read-only command loading one of them is slow.
APP_ONLY = ("flask", "werkzeug", "jinja2", "authlib", "flask_wtf", "github", "alembic")
# The ORM, the models and SQLAlchemy itself: status and list read with plain SQL through the
# database's driver (readings.py: sqlite3, or psycopg) instead.
ORM = (
    "sqlalchemy",
    "sqlmodel",
    "pydantic",
    "sqlalchemy.orm",
    "gatekeeper.models",
    "gatekeeper.mentorships",
)
CHECKOUT = Path(gatekeeper.__file__).resolve().parent.parent
PROBE = """
import json, sys
sys.path.insert(0, {root!r})
from gatekeeper.cli import main
sys.argv = ["gatekeeper", *{args!r}]
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code
loaded = sorted({{name.partition(".")[0] for name in sys.modules}} & set({modules!r}))
orm = sorted(set(sys.modules) & set({orm!r}))
print(json.dumps({{"exit": code, "loaded": loaded, "orm": orm}}), file=sys.stderr)
"""


@dataclasses.dataclass
class Probed:
    """What one run of the command printed, how it exited, and the app-only and ORM (or
    SQLAlchemy) modules it loaded."""

    stdout: str
    stderr: str
    exit: int
    loaded: list[str]
    orm: list[str]


def run_probe(args: list[str], *, env: dict[str, str], root: Path = CHECKOUT) -> Probed:
    """Run ``gatekeeper ARGS`` from the package in ``root`` in a new interpreter."""
    probe = PROBE.format(root=str(root), args=args, modules=APP_ONLY, orm=ORM)
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    *stderr, last = done.stderr.splitlines() or [""]
    assert last.startswith("{"), done.stderr  # the probe got to its end: nothing crashed
    report = json.loads(last)
    return Probed(done.stdout, "".join(f"{line}\n" for line in stderr), **report)


@pytest.fixture
def holding_a_mentorship(app, database_url) -> str:
    """A migrated database's URL (SQLite and PostgreSQL), holding mpage's mentorship (vote
    recorded) and an ended one."""
    runner = app.test_cli_runner()
    for args in (
        [
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
        ],
        ["promote", "eclips4", "--mentor", "ambv"],
        ["end", "eclips4", "--reason", "graduated"],
    ):
        result = runner.invoke(cli, [*args, "--no-wait"])
        assert result.exit_code == 0, result.output
    return database_url


@pytest.mark.parametrize(
    "args",
    [
        ["status", "mpage"],
        ["status", "MPage", "--json"],
        ["list"],
        ["list", "--all"],
        ["list", "--all", "--json"],
    ],
    ids=["status", "status-json", "list", "list-all", "list-all-json"],
)
def test_reading_commands_load_no_app_and_print_what_the_app_prints(holding_a_mentorship, args):
    """On a database at head, status and list import neither Flask nor Alembic (nor the rest
    of the web side), nor SQLAlchemy, and print byte for byte what they print run inside the
    app (which reads through its engine's connection)."""
    app = create_app({"database_url": holding_a_mentorship, "TESTING": True, "secret_key": "t"})
    inside_the_app = app.test_cli_runner().invoke(cli, args)
    app.extensions["gatekeeper.engine"].dispose()
    assert inside_the_app.exit_code == 0, inside_the_app.output

    probed = run_probe(args, env={"DATABASE_URL": holding_a_mentorship})
    assert (probed.exit, probed.stderr, probed.loaded, probed.orm) == (0, "", [], [])
    assert probed.stdout == inside_the_app.stdout


@pytest.mark.parametrize(
    "args",
    [["status", "mpage", "--json"], ["status", "eclips4", "--json"], ["list", "--all", "--json"]],
    ids=["status-active", "status-ended", "list-all"],
)
def test_driver_reads_give_the_documents_the_orm_gives(holding_a_mentorship, args):
    """status and list, read through the driver with no SQLAlchemy, print the very documents that
    ``documents.py`` builds from the models (what /api serves), a vote and an ended
    mentorship included."""
    app = create_app({"database_url": holding_a_mentorship, "TESTING": True, "secret_key": "t"})
    with app.app_context(), Session(app.extensions["gatekeeper.engine"]) as session:
        now = datetime.now(UTC)
        if args[0] == "status":
            expected: object = documents.status_document(session, mentee=args[1], now=now)
        else:
            expected = documents.list_documents(session, include_ended=True, now=now)
    app.extensions["gatekeeper.engine"].dispose()

    probed = run_probe(args, env={"DATABASE_URL": holding_a_mentorship})
    assert (probed.exit, probed.stderr, probed.orm) == (0, "", [])
    printed = json.loads(probed.stdout)
    for document in printed if isinstance(printed, list) else [printed]:
        assert document.pop("days_left") >= 0  # a day may turn between the two reads
    for document in expected if isinstance(expected, list) else [expected]:
        document.pop("days_left")
    assert printed == json.loads(json.dumps(expected))


def test_a_refusal_without_the_app_is_one_line(holding_a_mentorship):
    """A mentee with no mentorship: one Error: line on stderr, exit 1, still without Flask or
    SQLAlchemy."""
    probed = run_probe(["status", "nobody"], env={"DATABASE_URL": holding_a_mentorship})
    assert (probed.stdout, probed.stderr) == ("", "Error: nobody has no mentorship\n")
    assert probed.exit == 1
    assert (probed.loaded, probed.orm) == ([], [])


def test_an_unmigrated_postgresql_database_says_to_run_db_upgrade(postgres_server):
    """A PostgreSQL DATABASE_URL never migrated: one line naming ``gatekeeper db upgrade``,
    exit 1; PostgreSQL is not migrated implicitly (that is the release step)."""
    database_url = postgres_server.empty_database()
    for args in (["status", "mpage"], ["list"], ["promote", "mpage", "--mentor", "colesbury"]):
        done = subprocess.run(
            [sys.executable, "-c", "from gatekeeper.cli import main; main()", *args],
            env={**os.environ, "DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 1
        [line] = done.stderr.splitlines()
        assert line.startswith("Error: database error (")
        assert line.endswith("is it reachable and migrated (gatekeeper db upgrade)?")
    engine = db.make_engine(normalise_database_url(database_url))
    try:
        assert db.schema_revisions(engine) == set()
    finally:
        engine.dispose()


def test_a_sqlite_file_of_something_else_is_a_database_error_in_one_line(tmp_path):
    """DATABASE_URL naming a SQLite file that holds another program's table (not new, not
    Gatekeeper's): status and list say "database error" in one line naming the missing table,
    exit 1, having loaded no SQLAlchemy; the file is left as it was."""
    database = tmp_path / "other.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    connection.close()
    before = database.read_bytes()
    for args in (["status", "mpage"], ["list"]):
        probed = run_probe(args, env={"DATABASE_URL": f"sqlite:///{database}"})
        assert (probed.exit, probed.stdout, probed.orm) == (1, "", [])
        [line] = probed.stderr.splitlines()
        assert line.startswith("Error: database error (no such table: mentorship)")
        assert line.endswith("is it reachable and migrated (gatekeeper db upgrade)?")
    assert database.read_bytes() == before


def an_old_empty_file(path: Path) -> Path:
    """A SQLite file holding no table, as a failed command of an older version left behind."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE scratch (x)")
        connection.execute("DROP TABLE scratch")
    connection.close()
    assert path.stat().st_size > 0
    return path


@pytest.mark.parametrize(
    ("args", "status", "output"),
    [
        (["list"], 0, "No mentorships yet."),
        (["status", "mpage"], 1, "Error: mpage has no mentorship"),
        (["report", "mpage"], 1, "Error: mpage has no mentorship"),
        (["promote", "mpage", "--mentor", "colesbury", "--no-wait"], 0, "mpage: active"),
        (["end", "mpage", "--reason", "graduated"], 1, "Error: mpage has no mentorship"),
    ],
    ids=["list", "status", "report", "promote", "end"],
)
@pytest.mark.parametrize("fresh", ["missing", "left-empty"])
def test_every_command_sets_up_a_new_sqlite_database_named_by_database_url(
    tmp_path, args, status, output, fresh
):
    """DATABASE_URL naming a SQLite file that does not exist yet (in a folder that does not
    either), or an empty one an older version left: the first command of any kind migrates
    it to head and does its work (no "no such table" error, no empty file left)."""
    database = tmp_path / "new" / "gatekeeper.sqlite"
    if fresh == "left-empty":
        database.parent.mkdir()
        an_old_empty_file(database)
    done = subprocess.run(
        [sys.executable, "-c", "from gatekeeper.cli import main; main()", *args],
        env={**os.environ, "DATABASE_URL": f"sqlite:///{database}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == status, done.stderr
    assert output in (done.stdout if status == 0 else done.stderr)
    assert "database error" not in done.stderr
    engine = db.make_engine(f"sqlite:///{database}")
    try:
        assert db.schema_revisions(engine) == db.head_revisions()
    finally:
        engine.dispose()


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A copy of the package, whose instance folder (the embedded database's) is a new one."""
    root = tmp_path / "checkout"
    shutil.copytree(
        CHECKOUT / "gatekeeper",
        root / "gatekeeper",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return root


def test_the_embedded_database_is_migrated_on_first_status(checkout):
    """With DATABASE_URL unset, the first status creates and migrates the instance folder's
    SQLite file (Alembic loaded for it); the next command finds it at head (asking with
    sqlite3) and loads neither Alembic nor SQLAlchemy."""
    env = {"DATABASE_URL": ""}
    first = run_probe(["status", "mpage"], env=env, root=checkout)
    assert (first.exit, first.stderr) == (1, "Error: mpage has no mentorship\n")
    assert "alembic" in first.loaded

    database = checkout / "instance" / "gatekeeper.sqlite"
    with sqlite3.connect(database) as connection:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
        [(revision,)] = connection.execute("SELECT version_num FROM alembic_version")
    assert {revision} == db.head_revisions()
    assert set(SQLModel.metadata.tables) <= tables

    again = run_probe(["list"], env=env, root=checkout)
    assert (again.exit, again.stderr, again.loaded, again.orm) == (0, "", [], [])
    assert again.stdout.startswith("No mentorships yet.")
