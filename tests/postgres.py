"""A throwaway PostgreSQL server for the test session: initdb, pg_ctl, trust auth, loopback only."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

SUPERUSER = "postgres"
PORT_ATTEMPTS = 3
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
        """
        if self._reusable is None:
            self._reusable = self.create_database()
        with psycopg.connect(self._reusable, autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            connection.execute("DROP SCHEMA public CASCADE")
            connection.execute("CREATE SCHEMA public")
        return self._reusable

    def install_schema(self, url: str) -> bool:
        """Give the empty database at ``url`` the migrated schema in one script (30 ms, where
        Alembic takes ten times that); False, doing nothing, when it has tables already or
        ``pg_dump`` is not on the PATH."""
        if shutil.which("pg_dump") is None:
            return False
        with psycopg.connect(url.replace("+psycopg", "", 1), autocommit=True) as connection:
            tables = connection.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            ).fetchone()
            if tables != (0,):
                return False
            connection.execute(self._migrated_schema())
        return True

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
