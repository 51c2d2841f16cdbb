"""What ``gatekeeper status`` and ``list`` read, through the database's own driver: no ORM,
no SQLAlchemy.

Importing SQLAlchemy costs three quarters of these commands' CPU time (0.26 of 0.34 s), so they
read the three tables they show with plain SQL through a DB-API driver: the standard library's
``sqlite3`` for a SQLite file, ``psycopg`` for PostgreSQL. The same statements and the same
conversions serve both (each conversion takes a driver's text or its native value). Rows carry
the models' column names, and ``documents.mentorship_document`` shapes them, as ``/api`` does.
The queries are those of ``mentorships.latest_mentorship``, ``all_mentorships``,
``mentors_by_mentorship`` and ``queries.pulls_by_mentorship``; ``tests/test_cli_startup.py``
checks that both give the same documents. The command line sees every repository, so nothing
is redacted.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from types import ModuleType, SimpleNamespace
from typing import Any

from gatekeeper import documents, standing


class ReadError(Exception):
    """The database could not be reached or refused a read; the message is the driver's."""


def _moment(value: datetime | str | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite keeps it as naive UTC text)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _day(value: date | str | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _json(value: Any) -> Any:
    """JSON as SQLite keeps it (text), or as psycopg already decoded it."""
    return json.loads(value) if isinstance(value, str) else value


def _flag(value: bool | int | None) -> bool | None:
    return None if value is None else bool(value)


def _as_read(value: Any) -> Any:
    return value


Converters = dict[str, Callable[[Any], Any]]
# The columns each command reads, and how each is converted (unlisted ones are as read).
MENTORSHIP: Converters = {
    "id": int,
    "mentee": str,
    "mentee_display": str,
    "started_at": _moment,
    "ends_at": _moment,
    "ended_at": _moment,
    "end_reason": _as_read,
    "repositories": _json,
    "approvals_required": int,
    "dismiss_stale_approvals": _flag,
    "same_content_approvals": _flag,
    "gate_approved_prs": _flag,
    "vote_url": _as_read,
    "votes_for": _as_read,
    "votes_against": _as_read,
    "vote_opened": _day,
    "vote_closed": _day,
    "vote_source": _as_read,
    "vote_fetched_at": _moment,
    "override_reason": _as_read,
}
MENTOR_ASSIGNMENT: Converters = {
    "id": int,
    "mentorship_id": int,
    "mentor_display": str,
}
PULL_REQUEST: Converters = {
    "id": int,
    "repo": str,
    "number": int,
    "title": _as_read,
    "url": _as_read,
    "author_display": _as_read,
    "head_sha": str,
    "state": str,
    "merged": _flag,
    "gate": _as_read,
    "approved_by": _json,
    "first_seen_at": _moment,
    "gated_mentorship_id": int,
}


class Reader:
    """Plain SQL on one DB-API connection: ``?`` placeholders, rows as attribute bags."""

    def __init__(self, connection: Any, driver: ModuleType) -> None:
        self.connection = connection
        self.driver = driver  # its module: the placeholder style and the Error class

    def rows(
        self, table: str, columns: Converters, where: str = "", params: Sequence[Any] = ()
    ) -> list[SimpleNamespace]:
        """``SELECT columns FROM table where``, each row converted column by column."""
        sql = f"SELECT {', '.join(columns)} FROM {table} {where}"
        if self.driver.paramstyle != "qmark":
            sql = sql.replace("?", "%s")  # psycopg's placeholder; no statement holds a "?"
        try:
            cursor = self.connection.cursor()
            try:
                cursor.execute(sql, tuple(params))
                found = cursor.fetchall()
            finally:
                cursor.close()
        except self.driver.Error as error:
            raise ReadError(str(error)) from None
        convert = list(columns.values())
        names = list(columns)
        return [
            SimpleNamespace(**{n: c(v) for n, c, v in zip(names, convert, row, strict=True)})
            for row in found
        ]


@contextmanager
def connect(url: str) -> Iterator[Reader]:
    """A reader on the database ``url`` names (as the settings normalise it), closed after.

    A SQLite file is read with ``sqlite3`` (never created: ``mode=rw``) and PostgreSQL with
    ``psycopg``, neither through SQLAlchemy; any other URL gets SQLAlchemy's own driver for it
    (that one pays the import).
    """
    path = url.removeprefix("sqlite:///")
    if path != url and path not in ("", ":memory:") and "?" not in path:
        import sqlite3
        from urllib.parse import quote

        with _opened(sqlite3, f"file:{quote(path)}?mode=rw", uri=True) as reader:
            yield reader
    elif url.startswith("postgresql+psycopg://"):
        import psycopg

        libpq = "postgresql://" + url.removeprefix("postgresql+psycopg://")
        with _opened(psycopg, libpq) as reader:
            yield reader
    else:
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        try:
            with engine_reader(engine) as reader:
                yield reader
        finally:
            engine.dispose()


@contextmanager
def _opened(driver: ModuleType, *args: Any, **kwargs: Any) -> Iterator[Reader]:
    try:
        connection = driver.connect(*args, **kwargs)
    except driver.Error as error:
        raise ReadError(str(error)) from None
    try:
        yield Reader(connection, driver)
    finally:
        connection.close()


@contextmanager
def engine_reader(engine: Any) -> Iterator[Reader]:
    """A reader on a connection of a SQLAlchemy engine the caller built (the app's)."""
    driver = engine.dialect.loaded_dbapi
    try:
        connection = engine.raw_connection()
    except driver.Error as error:
        raise ReadError(str(error)) from None
    try:
        yield Reader(connection, driver)
    finally:
        connection.close()


def revisions(reader: Reader) -> set[str]:
    """The migrations the database says it is at; none when it was never migrated."""
    try:
        return {row.version_num for row in reader.rows("alembic_version", {"version_num": str})}
    except ReadError:
        return set()


def status_document(reader: Reader, *, mentee: str, now: datetime) -> dict[str, Any]:
    """``status --json``: the mentee's open mentorship, else their latest; refused (one line)
    for someone never mentored."""
    found = _latest(reader, mentee=mentee)
    if found is None:
        raise standing.MentorshipError(standing.no_mentorship(mentee))
    return _documents(reader, [found], now=now)[0]


def list_documents(reader: Reader, *, include_ended: bool, now: datetime) -> list[dict[str, Any]]:
    """``list --json``: open mentorships, or all, soonest end first, ended last.

    Filtered and sorted here rather than in SQL, so that no time is bound as a parameter
    (SQLite compares its text, PostgreSQL its timestamps); a team has a handful of rows."""
    rows = reader.rows("mentorship", MENTORSHIP, "ORDER BY id")

    def open_now(row: SimpleNamespace) -> bool:
        return row.ended_at is None and row.ends_at > now

    chosen = [row for row in rows if include_ended or open_now(row)]
    chosen.sort(key=lambda row: (not open_now(row), row.ends_at))
    return _documents(reader, chosen, now=now)


def _latest(reader: Reader, *, mentee: str) -> SimpleNamespace | None:
    try:
        login = standing.canonical_login(mentee)
    except standing.MentorshipError:
        return None  # a name that is no login was never mentored
    found = reader.rows(
        "mentorship",
        MENTORSHIP,
        "WHERE mentee = ? ORDER BY ended_at IS NOT NULL, started_at DESC LIMIT 1",
        [login],
    )
    return found[0] if found else None


def _documents(
    reader: Reader, found: list[SimpleNamespace], *, now: datetime
) -> list[dict[str, Any]]:
    """The documents of ``found``, their mentors and pull requests read in one query each."""
    ids = [row.id for row in found]
    # Rows carry the models' column names, which is all the documents read of them.
    mentors: defaultdict[int, list[Any]] = defaultdict(list)
    pulls: defaultdict[int, list[Any]] = defaultdict(list)
    if ids:
        among = f"IN ({', '.join('?' for _ in ids)})"
        for row in reader.rows(
            "mentorassignment",
            MENTOR_ASSIGNMENT,
            f"WHERE mentorship_id {among} AND removed_at IS NULL ORDER BY id",
            ids,
        ):
            mentors[row.mentorship_id].append(row)
        for row in reader.rows(
            "pullrequest",
            PULL_REQUEST,
            f"WHERE gated_mentorship_id {among} ORDER BY first_seen_at, id",
            ids,
        ):
            pulls[row.gated_mentorship_id].append(row)
    return [
        documents.mentorship_document(
            row,  # type: ignore[arg-type]
            mentors=mentors[row.id],
            pulls=pulls[row.id],
            now=now,
        )
        for row in found
    ]
