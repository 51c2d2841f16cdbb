"""The database engine, one session per request or command, writes that wait their turn,
and migrations."""

from __future__ import annotations

import functools
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session

from gatekeeper.revisions import MIGRATIONS, head_revisions

log = logging.getLogger(__name__)

T = TypeVar("T")
if TYPE_CHECKING:
    # Alembic is imported only by the commands that migrate, and Flask inside the functions
    # that use the app, so that the commands which only read (``status``, ``list``) build
    # their engine with this module without loading either.
    from alembic.config import Config
    from flask import Flask

BUSY_TIMEOUT = 15  # seconds a SQLite writer waits for the one before it
ATTEMPTS = 5  # tries of a unit of work that meets a transient error
WRITES = "gatekeeper_writes"  # the execution option of connections that will write
SQLITE_BUSY, SQLITE_LOCKED = 5, 6  # primary result codes: another connection has the lock


class Busy(Exception):
    """The database stayed busy (or kept failing transiently) through every attempt."""


def make_engine(url: str) -> Engine:
    """Create the engine; SQLite gets foreign keys, WAL, and transactions that include their
    reads, taking the write lock at once when they will write (see ``writing``)."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT}
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            # Readers never block the writer, nor the writer them.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()
            # Let SQLAlchemy, not the driver, say when a transaction begins (below).
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: sa.Connection) -> None:
            # The driver would begin only at the first write, so what a transaction read
            # before it could be stale: begun here, it reads and writes one snapshot. A
            # deferred transaction that read cannot wait for the write lock (SQLite refuses
            # it at once, "database is locked", when another wrote in between), so one that
            # will write takes the lock as it begins, waiting its turn under the busy
            # timeout: what PostgreSQL's SELECT ... FOR UPDATE gives the same code there.
            # Reads (pages, the API) stay deferred and, under WAL, never wait.
            immediate = connection.get_execution_options().get(WRITES, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def writer(engine: Engine) -> Engine:
    """``engine`` for work that will write: on SQLite each transaction takes the write lock
    as it begins (PostgreSQL ignores the option)."""
    return engine.execution_options(**{WRITES: True})


def writing(session: Session, work: Callable[[Session], T], *, attempts: int = ATTEMPTS) -> T:
    """Run ``work(session)`` as a unit of work of its own, commit it, and return its result.

    Every write path goes through here. What the session held is rolled back first (a
    request's earlier reads), and each transaction of the work waits its turn for SQLite's
    write lock. A transient error (``is_transient``: busy, a deadlock, a serialisation
    failure, a lost connection), or a unique key that a concurrent unit inserted first, rolls
    the work back and runs it again from the start after a short pause (it then sees the
    other's rows), up to ``attempts`` times: then a transient error raises ``Busy`` and a
    unique key, no race after all, its own error. So ``work`` must be safe to run again:
    database work only, nothing shown or sent meanwhile.
    """
    bind = session.bind
    assert isinstance(bind, Engine), "a session bound to one engine"
    for attempt in range(1, attempts + 1):
        session.rollback()
        session.bind = writer(bind)
        try:
            result = work(session)
            session.commit()
            return result
        except sa.exc.DBAPIError as error:
            session.rollback()
            race = isinstance(error, sa.exc.IntegrityError)
            if not (race or is_transient(error)):
                raise
            if attempt == attempts:
                if race:
                    raise
                reason = " ".join(str(error.orig).split())
                raise Busy(
                    f"The database stayed busy through {attempts} attempts ({reason}); "
                    "nothing was saved, try again in a moment"
                ) from error
            log.debug("unit of work met %s, attempt %d of %d", error.orig, attempt, attempts)
        except BaseException:
            session.rollback()
            raise
        finally:
            session.bind = bind
        # Jittered, so two units that met do not meet again.
        time.sleep(min(0.02 * 2**attempt, 0.5) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def insert_missing(
    session: Session, model: type[Any], values: dict[str, Any], keys: list[str]
) -> None:
    """Insert a row unless one with the same ``keys`` exists; a concurrent insert is no error."""
    statement = _inserting(_dialect(session), cast(Hashable, model), tuple(values), tuple(keys))
    session.execute(statement, values)


def upsert_locked(
    session: Session,
    model: type[T],
    values: dict[str, Any],
    keys: list[str],
    *,
    merge: Callable[[Any], dict[str, Any]] | None = None,
) -> T:
    """The row with ``values``' ``keys``, inserted if missing, locked until the transaction
    ends and read afresh: one statement (an insert that, on conflict, touches the row it
    met, which locks it as ``SELECT ... FOR UPDATE`` would, and returns it as it is now).

    ``merge(excluded)`` says what a conflict also updates, column by column, from the row met
    (the model's columns) and the values proposed (``excluded``); by default nothing. It is
    called once, when the statement is built: a function of the module, not a closure.
    """
    # (A class is hashable; typeshed's ``type[T]`` does not say so.)
    shape = (_dialect(session), cast(Hashable, model), tuple(values), tuple(keys), merge)
    statement = _upserting(*shape)
    found: T = session.scalars(
        statement, values, execution_options={"populate_existing": True}
    ).one()
    return found


# The hot path's inserts are built once per shape and reused: building one (its ``excluded``
# alias copies every column of the table) cost more than running it.


@functools.cache
def _inserting(
    dialect: str, model: type[Any], columns: tuple[str, ...], keys: tuple[str, ...]
) -> Any:
    insert = _insert_for(dialect)(model).values({name: sa.bindparam(name) for name in columns})
    return insert.on_conflict_do_nothing(index_elements=list(keys))


@functools.cache
def _upserting(
    dialect: str,
    model: type[Any],
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    merge: Callable[[Any], dict[str, Any]] | None,
) -> Any:
    insert = _insert_for(dialect)(model).values({name: sa.bindparam(name) for name in columns})
    updates = merge(insert.excluded) if merge is not None else {}
    return insert.on_conflict_do_update(
        index_elements=list(keys), set_=updates or {keys[0]: getattr(insert.excluded, keys[0])}
    ).returning(model)


def _insert_for(dialect: str) -> Callable[[Any], Any]:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def is_transient(error: sa.exc.DBAPIError) -> bool:
    """Whether asking the database again may succeed: a deadlock, a serialisation failure,
    SQLite's busy lock, or a lost connection (a restart, a failover)."""
    if error.connection_invalidated:
        return True
    if isinstance(error.orig, sqlite3.Error):
        # Only a lock held elsewhere passes; a missing table or a full disk stays.
        code = getattr(error.orig, "sqlite_errorcode", SQLITE_BUSY) & 0xFF
        return code in (SQLITE_BUSY, SQLITE_LOCKED)
    if isinstance(error, sa.exc.OperationalError):
        return True
    code = getattr(error.orig, "sqlstate", None) or ""
    return code.startswith(("40", "08", "57P"))  # transaction rollback, connection, shutdown


def init_app(app: Flask, url: str) -> None:
    """Attach an engine to the app, close each request's session in teardown, and answer a
    write the database kept refusing with a 503."""
    app.extensions["gatekeeper.engine"] = engine_for(url)
    app.teardown_appcontext(close_session)
    app.register_error_handler(Busy, busy_answer)


def engine_for(url: str) -> Engine:
    """The engine of ``url``; a SQLite file's folder is made first, so the file can be."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return make_engine(url)


def busy_answer(error: Busy) -> Any:
    """A write still refused after every attempt: a 503 saying nothing was saved."""
    from flask import jsonify, render_template, request

    headers = {"Retry-After": "1"}
    if request.path.startswith(("/api/", "/webhooks/")):
        return jsonify(error=str(error)), 503, headers
    return render_template("400.html", reason=f"{error}."), 503, headers


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


def alembic_config(url: str) -> Config:
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


# ---------------------------------------------------------------- each fact read once
# SQLAlchemy's identity map holds its objects weakly: a row read and let go (a repository,
# an account, a mentorship looked up by a helper that returns nothing) is forgotten at once,
# so the next ``session.get`` of it queries again. A transaction keeps what it read until it
# ends, so a fact read once is read once; what the next transaction reads is fresh.
HELD = "gatekeeper.held"


@sa.event.listens_for(Session, "loaded_as_persistent")
@sa.event.listens_for(Session, "pending_to_persistent")
def _hold(session: Session, instance: object) -> None:
    session.info.setdefault(HELD, []).append(instance)


@sa.event.listens_for(Session, "after_commit")
@sa.event.listens_for(Session, "after_rollback")
def _let_go(session: Session, *_transaction: Any) -> None:
    session.info.pop(HELD, None)
