"""Migrated databases in a fraction of Alembic's time, for the fixtures that need the schema.

Alembic takes 45 ms to migrate a new SQLite file and 200-300 ms an empty PostgreSQL database
(more on a loaded machine), and most tests start from one. Here the migrations run once per
process: a new SQLite file is a copy of a file they migrated, an empty PostgreSQL database of
the session's server gets, in one script, the schema they made there (``pg_dump``'s copy,
``alembic_version`` included), or the previous test's copy of it, emptied (see
``PostgresServer.empty_database``). Any other database is migrated by Alembic, unless it is at
the head revision already.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gatekeeper import db
from gatekeeper.config import normalise_database_url
from postgres import server_of

SQLITE = "sqlite:///"


@functools.cache
def sqlite_template() -> Path:
    """A SQLite file the migrations made, once per process (removed when it exits)."""
    folder = Path(tempfile.mkdtemp(prefix="gatekeeper-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "migrated.sqlite"
    db.upgrade(f"{SQLITE}{path}")
    return path


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the head revision, as ``db.upgrade(url)`` does."""
    if url.startswith(SQLITE):
        path = Path(url.removeprefix(SQLITE))
        if not path.exists() or path.stat().st_size == 0:
            shutil.copyfile(sqlite_template(), path)
            return
    else:
        server = server_of(url)
        if server is not None and server.install_schema(url):
            return
    # A database migrated already (a test's second app, a story's next example) costs one
    # query rather than Alembic's start.
    engine = db.make_engine(normalise_database_url(url))
    try:
        db.upgrade_if_behind(normalise_database_url(url), engine)
    finally:
        engine.dispose()


@contextmanager
def statements_sent(engine: Any) -> Iterator[list[str]]:
    """The SQL statements ``engine`` sends while inside, as the driver gets them."""
    sent: list[str] = []

    def record(_connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
