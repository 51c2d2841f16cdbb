"""Shared fixtures: a fresh database on SQLite and on PostgreSQL, the app, its client, runner and session."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlmodel import Session

from database_support import migrate, sqlite_template
from gatekeeper import create_app, logs
from postgres import PostgresServer, PostgresUnavailable

# Variables the app reads; a developer's shell must not leak into a test.
APP_ENV_PREFIXES = ("GITHUB_", "GATEKEEPER_", "DISCOURSE_")
APP_ENV_NAMES = ("DATABASE_URL", "SECRET_KEY")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear every variable Gatekeeper reads, so only what a test sets is seen."""
    for name in list(os.environ):
        if name in APP_ENV_NAMES or name.startswith(APP_ENV_PREFIXES):
            monkeypatch.delenv(name)
    # Nor may a developer's instance/github-app.env (`gatekeeper register`): an empty file.
    monkeypatch.setenv("GATEKEEPER_ENV_FILE", os.devnull)


@pytest.fixture(autouse=True)
def clean_log_context() -> Iterator[None]:
    """Each test starts with no log fields bound (a delivery applied outside any request, as
    some tests do, binds its fields for the rest of the thread, not of the test), and ends
    with the log levels and Gatekeeper's handler it found: a test that configured logging
    at INFO (``serve`` does) must not make the next one's command print PyGithub's lines."""
    root = logging.getLogger()
    handlers, levels = (
        list(root.handlers),
        {name: logging.getLogger(name).level for name in ("", "github", "urllib3")},
    )
    with logs.unbound():
        yield
    for added in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(added)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@sa.event.listens_for(sa.engine.Engine, "connect")
def sqlite_without_fsync(dbapi_connection: Any, _record: Any) -> None:
    """Test databases are thrown away, so SQLite need not wait for the disk at each commit
    (0.5-0.9 ms here, more on a disk other processes share), as the test PostgreSQL runs with
    fsync off. Locking, and so what the tests see, is the same either way."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA synchronous=OFF")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session; failing to start it fails the tests, never skips."""
    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailable as error:
        problem = str(error)
    else:
        problem = None
    if problem is not None:
        server.stop()
        where = "in CI" if os.environ.get("CI") else "locally"
        pytest.fail(
            f"PostgreSQL could not be started {where}; the PostgreSQL leg needs initdb and"
            f" pg_ctl (PostgreSQL 15) on the PATH.\n{problem}",
            pytrace=False,
        )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def migrated_sqlite() -> Path:
    """A SQLite file migrated once; apps copy it rather than migrate again (45 ms a test)."""
    return sqlite_template()


@pytest.fixture(
    params=[pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql")]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or the session's PostgreSQL test database emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gatekeeper.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.empty_database()


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """The app on ``database_url``, its schema made by the Alembic migrations (once a process)."""
    migrate(database_url)
    app = create_app({"database_url": database_url, "TESTING": True, "secret_key": "test"})
    yield app
    app.extensions["gatekeeper.engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A CLI runner whose commands use the app (invoke ``gatekeeper.cli.cli`` with it)."""
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session on the app's engine, closed after the test."""
    with Session(app.extensions["gatekeeper.engine"]) as session:
        yield session


# The gate's fixtures (the app wired to a fake GitHub) live beside their helpers.
# One Chromium for the session: fixtures imported into two modules would start two.
from forum_support import forum, forum_app  # noqa: E402, F401

from browser_support import browser, chromium, live  # noqa: E402, F401
from dashboard_support import site  # noqa: E402, F401  (test_dashboard has its own, on SQLite)
from gate_support import gate_app, github_fake, world  # noqa: E402, F401
from gatekeeper import outbox  # noqa: E402

# A transaction that changed a gate and never derived its commits' checks fails its test
# (in production it is logged): see ``outbox.commit_gates``.
outbox.STRICT = True

# The modules with the longest single tests (a CI run's ``--durations=0``: 30-200 s each on a
# loaded machine), longest first, started first: one of these left for the end would keep a
# worker busy while the other sits idle. Splitting a long test (as test_outbox's
# interleavings are) does more than ordering can.
SLOW_MODULES = (
    "test_fuzz",
    "test_ordering",
    "test_gate_properties",
    "test_concurrency",
    "test_tooling",
    "test_outbox",
    "test_sweep",
    "test_db",
    "test_a11y",
    "test_browser_layout",
    "test_metrics",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the slow modules' tests first, in the order above; the rest keep their order."""

    def rank(item: pytest.Item) -> int:
        module = item.path.stem
        return SLOW_MODULES.index(module) if module in SLOW_MODULES else len(SLOW_MODULES)

    items.sort(key=rank)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than the cores this process may use. About a third of a
    test's time is spent waiting (a subprocess starting, the browser, PostgreSQL), which the
    extra worker fills: on 2 cores a CI run took 7 min 22 s with 3 workers, 9 min 27 s with
    2, and 7 min 25 s with 4."""
    return len(os.sched_getaffinity(0)) + 1


@pytest.hookimpl(tryfirst=True)  # before hypothesis's own hook loads the profile asked for
def pytest_configure(config: pytest.Config) -> None:
    """The fuzz tests' long local run: ``pytest tests/test_fuzz.py --hypothesis-profile=long``;
    in CI (``CI`` set) the same examples on every run, so that a red run can be run again."""
    from hypothesis import settings

    settings.register_profile("long", max_examples=5_000, deadline=None)
    settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
    if os.environ.get("CI") and config.getoption("hypothesis_profile", None) is None:
        settings.load_profile("ci")
