"""The database engine, one session per request or command, and migrations."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session

if TYPE_CHECKING:
    # Imported inside the functions that use the app, so that the commands which only read
    # (``status``, ``list``) build their engine with this module without loading Flask.
    from flask import Flask

MIGRATIONS = Path(__file__).parent / "migrations"
# The lines of a revision file naming it and its parents: down_revision: str | None = "0008"
# (a merge names a tuple of them).
_REVISION_LINE = re.compile(r"^(down_revision|revision)\b[^=]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


def make_engine(url: str) -> Engine:
    """Create the engine; SQLite gets foreign keys and transactions that include their reads."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            # Readers never block the writer, nor the writer them.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()
            # Let SQLAlchemy, not the driver, say when a transaction begins (below).
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin(connection):  # type: ignore[no-untyped-def]
            # The driver would begin only at the first write, so what a transaction read
            # before it could be stale. Begun here, a transaction that writes after another
            # one changed what it read fails ("database is locked") instead of deciding from
            # old rows, and the caller retries it: what PostgreSQL's SELECT ... FOR UPDATE
            # gives the same code there.
            connection.exec_driver_sql("BEGIN")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def insert_missing(
    session: Session, model: type[Any], values: dict[str, Any], keys: list[str]
) -> None:
    """Insert a row unless one with the same ``keys`` exists; a concurrent insert is no error."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing(index_elements=keys))


def is_transient(error: sa.exc.DBAPIError) -> bool:
    """Whether asking the database again may succeed: a deadlock, a serialisation failure,
    SQLite's busy lock, or a lost connection (a restart, a failover)."""
    if error.connection_invalidated or isinstance(error, sa.exc.OperationalError):
        return True
    code = getattr(error.orig, "sqlstate", None) or ""
    return code.startswith(("40", "08", "57P"))  # transaction rollback, connection, shutdown


def init_app(app: Flask, url: str) -> None:
    """Attach an engine to the app and close each request's session in teardown."""
    app.extensions["gatekeeper.engine"] = engine_for(url)
    app.teardown_appcontext(close_session)


def engine_for(url: str) -> Engine:
    """The engine of ``url``; a SQLite file's folder is made first, so the file can be."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return make_engine(url)


def engine() -> Engine:
    """The current app's engine."""
    from flask import current_app

    return current_app.extensions["gatekeeper.engine"]


def get_session() -> Session:
    """The session of the current request or command, opened on first use."""
    from flask import g

    if "db_session" not in g:
        g.db_session = Session(engine(), expire_on_commit=False)
    return g.db_session


def close_session(_error: BaseException | None = None) -> None:
    """Close the session, rolling back anything not committed."""
    from flask import g

    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    """An Alembic configuration for Gatekeeper's migrations against ``url``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def upgrade_if_behind(url: str, engine: Engine) -> None:
    """Apply migrations up to head unless the database is there already: one query tells,
    so Alembic (a tenth of a second to import) is loaded only when there is work."""
    if schema_revisions(engine) != head_revisions():
        upgrade(url)


def head_revisions() -> set[str]:
    """The newest migration's revision id (one, unless the history forks), read from the
    revision files without importing Alembic: those no other revision names as its parent."""
    named: dict[str, set[str]] = {"revision": set(), "down_revision": set()}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for kind, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            named[kind].update(_QUOTED.findall(value))
    return named["revision"] - named["down_revision"]


def schema_revisions(engine: Engine) -> set[str]:
    """The revisions the database says it is at (Alembic's own table); none when it was never
    migrated, or cannot be read (migrating then says why)."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            return {revision for (revision,) in rows}
    except sa.exc.DBAPIError:
        return set()


def is_reachable() -> bool:
    """Whether the database answers a trivial query (for /healthz)."""
    try:
        with engine().connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return False
    return True


@sa.event.listens_for(Session, "after_soft_rollback")
def _forget_touched_commits(session: Session, _previous_transaction: Any) -> None:
    # Commits noted for the outbox belong to the work that was just undone.
    session.info.pop("gatekeeper.touched_commits", None)
