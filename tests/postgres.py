"""A throwaway PostgreSQL server for the test session: initdb, pg_ctl, trust auth, loopback only."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

SUPERUSER = "postgres"
PORT_ATTEMPTS = 3
# Where empty_database keeps the migrated schema, emptied, for the next install_schema.
SPARE = "gatekeeper_spare"
# What a test could change in the migrated schema, by name and type (no oids, which a copy
# does not keep), and the revision recorded; with whether a schema is put aside already.
FINGERPRINT = f"""
SELECT md5(coalesce(string_agg(item, E'\\n' ORDER BY item), '')), to_regnamespace('{SPARE}') IS NOT NULL
FROM (
    SELECT 'class ' || relname || ' ' || relkind::text AS item FROM pg_class
    WHERE relnamespace = 'public'::regnamespace
  UNION ALL
    SELECT 'column ' || c.relname || '.' || a.attname || ' ' || a.attnum || ' '
        || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' '
        || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
    SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' '
        || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE c.relnamespace = 'public'::regnamespace
  UNION ALL
    SELECT 'type ' || typname FROM pg_type WHERE typnamespace = 'public'::regnamespace
  UNION ALL
    SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
  UNION ALL
    SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'public'::regnamespace
  UNION ALL
    -- The revision, read only when its table is there (query_to_xml runs the query then).
    SELECT 'revision ' || CASE WHEN to_regclass('public.alembic_version') IS NULL THEN ''
        ELSE query_to_xml('SELECT version_num FROM public.alembic_version', false, false, '')::text
        END
) AS schema
"""
# The servers this process started, by port: test helpers find the one behind a URL.
_SERVERS: dict[int, PostgresServer] = {}


def server_of(url: str) -> PostgresServer | None:
    """The server this process started that ``url`` names, if any."""
    parsed = urlsplit(url)
    if not parsed.scheme.startswith("postgres") or parsed.hostname != "127.0.0.1":
        return None
    return _SERVERS.get(parsed.port or 0)


class PostgresUnavailable(RuntimeError):
    """The server could not be started; the message says which step failed and why."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, started and stopped by the test session."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gatekeeper-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = _free_port()
        self._names = itertools.count(1)
        self._started = False
        self._reusable: str | None = None
        self._schema: str | None = None  # the migrated schema as SQL, made on first use
        self._fingerprint: str | None = None  # of that schema, taken after its first install
        self._reset: str | None = None  # the script that empties it: rows out, ids from 1

    def _run(self, *argv: str) -> None:
        """Run a PostgreSQL tool, as the ``postgres`` user when we are root (initdb refuses root)."""
        command = list(argv)
        if os.geteuid() == 0:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            command = [runuser, "-u", SUPERUSER, "--", *command]
        try:
            subprocess.run(
                command,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
        except FileNotFoundError as error:
            raise PostgresUnavailable(f"{error.filename} is not on the PATH") from None
        except subprocess.CalledProcessError as error:
            log = self._log_text()
            raise PostgresUnavailable(
                f"{' '.join(argv[:2])} failed with status {error.returncode}:\n"
                f"{error.stdout}{error.stderr}{log}"
            ) from None

    def start(self) -> None:
        """Create the cluster and start the server on 127.0.0.1 (no fsync: the data is thrown away)."""
        if os.geteuid() == 0:
            shutil.chown(self.root, user=SUPERUSER)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._start_on(self.port)
            except PostgresUnavailable:
                # Another process (an xdist worker, another checkout's run) may have taken the
                # port between our probe and the server's bind: try a fresh one.
                if attempt == PORT_ATTEMPTS - 1 or "already in use" not in self._log_text():
                    raise
                self.port = _free_port()
            else:
                self._started = True
                _SERVERS[self.port] = self
                return

    def _start_on(self, port: int) -> None:
        options = (
            f"-h 127.0.0.1 -p {port} -k {self.root} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "start", "-D", str(self.data), "-w", "-l", str(self.log), "-o", options)

    def _log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self) -> None:
        """Stop the server at once and remove its files."""
        _SERVERS.pop(self.port, None)
        try:
            if self._started:
                self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        """The URL as an operator would write it; Gatekeeper's settings route it through psycopg 3."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new, uniquely named, empty database; returns its URL."""
        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def empty_database(self) -> str:
        """The shared test database, emptied: ten times faster than CREATE DATABASE per test.

        Connections a previous test left open are closed first, so that none holds a lock.
        When the database still has exactly the migrated schema, its rows are deleted and its
        ids reset, and the schema is put aside for the next ``install_schema`` (3 ms where
        dropping and installing it again takes 90); anything else (a test dropped a table,
        downgraded, altered a column) is dropped with the schema. Either way ``public`` is
        left empty, as tests of the migrations expect.
        """
        if self._reusable is None:
            self._reusable = self.create_database()
        with psycopg.connect(self._reusable, autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            row = connection.execute(FINGERPRINT).fetchone()
            fingerprint, put_aside = row if row is not None else (None, True)
            if self._reset is not None and fingerprint == self._fingerprint and not put_aside:
                connection.execute(
                    f"{self._reset}; ALTER SCHEMA public RENAME TO {SPARE}; CREATE SCHEMA public"
                )
            else:
                connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        return self._reusable

    def install_schema(self, url: str) -> bool:
        """Give the empty database at ``url`` the migrated schema: the one ``empty_database``
        put aside, emptied, when there is one, else in one script (30 ms, where Alembic takes
        ten times that); False, doing nothing, when it has tables already or ``pg_dump`` is not
        on the PATH."""
        if shutil.which("pg_dump") is None:
            return False
        with psycopg.connect(url.replace("+psycopg", "", 1), autocommit=True) as connection:
            row = connection.execute(
                "SELECT count(*), to_regnamespace(%s) IS NOT NULL FROM pg_tables"
                " WHERE schemaname = 'public'",
                (SPARE,),
            ).fetchone()
            if row is None or row[0] != 0:
                return False
            if row[1]:
                connection.execute(f"DROP SCHEMA public; ALTER SCHEMA {SPARE} RENAME TO public")
                return True
            connection.execute(self._migrated_schema())
            if self._fingerprint is None:
                self._remember(connection)
        return True

    def _remember(self, connection: psycopg.Connection[Any]) -> None:
        """Take the fingerprint of the schema just installed, and the script that empties it:
        every table's rows deleted (foreign keys unchecked, as a replica does, so in any order),
        then the dump's own rows (``alembic_version``) and sequence positions restored."""
        connection.execute("SET search_path = public")
        row = connection.execute(FINGERPRINT).fetchone()
        self._fingerprint = row[0] if row is not None else None
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
        restored = [
            line
            for line in self._migrated_schema().splitlines()
            if line.startswith(("INSERT INTO ", "SELECT pg_catalog.setval("))
        ]
        self._reset = "; ".join(
            [
                "SET session_replication_role = replica",
                *(f'DELETE FROM public."{name}"' for (name,) in tables),
                *(line.rstrip(";") for line in restored),
                "SET session_replication_role = DEFAULT",
            ]
        )

    def _migrated_schema(self) -> str:
        """The schema (and ``alembic_version``) the migrations make, dumped from a database
        they migrated once; ``pg_dump``'s psql-only lines (``\\restrict``) left out."""
        if self._schema is None:
            from gatekeeper import db  # the migrations, as `gatekeeper db upgrade` runs them

            template = self.create_database()
            db.upgrade(template.replace("postgresql://", "postgresql+psycopg://", 1))
            dumped = subprocess.run(
                ["pg_dump", "--no-owner", "--no-privileges", "--inserts", "--dbname", template],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
            self._schema = "\n".join(
                line for line in dumped.splitlines() if not line.startswith("\\")
            )
        return self._schema
