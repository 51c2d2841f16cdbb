"""gunicorn settings for the Procfile's web process (``--config python:gatekeeper.gunicorn_conf``).

Threaded workers (``gthread``): a sync worker is given whole to one connection, so one
client per worker that sends its request slowly (headers never finished, a body a byte at
a time) stopped the service until gunicorn killed the workers, 30 s later. A slow client
now holds one of a worker's ``threads`` (one that sends nothing is let go after 5 s), and
the other threads go on answering. A worker takes no more connections than it has
threads, so a connection it could not serve yet stays in the listen queue for a worker
that can; ``workers * threads`` slow clients at once still hold every thread, and beyond
that the proxy in front (Caddy or nginx, Heroku's router) is what holds them. Threads
share little: each request has its own database session, the GitHub clients are kept
under a lock, and prometheus_client locks its own values.

GitHub's sign-in sends the browser to /login/callback?code=...&state=...; the code is
single-use and short-lived but still a credential, so the access log never holds it. The
path is recognised however it is written (``//login/callback`` reaches the view and
``/login//callback`` is redirected to it, both with the code), not by exact match.

Every worker is a process of its own, so Prometheus' multiprocess mode is set up here,
before any worker imports the app: ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary
directory unless the operator names one) holds each process's values, files left by
processes that are gone are removed at start, and a worker that exits is marked dead.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from gunicorn.glogging import Logger

# Paths whose query string carries a secret, as they end once normalised.
SECRET_QUERIES = ("/login/callback",)


def has_secret_query(path: str) -> bool:
    """Whether ``path`` ends in a SECRET_QUERIES path once unescaped, its repeated slashes,
    dots and trailing slash removed and its case folded: every spelling a router or a
    redirect could take to the view."""
    collapsed = re.sub(r"/+", "/", "/" + unquote(path))
    normalised = posixpath.normpath(collapsed).casefold()
    return normalised.endswith(SECRET_QUERIES)


class RedactingLogger(Logger):
    """gunicorn's logger, with the query of a SECRET_QUERIES path left out of every atom."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> Any:
        """The access log's fields, built from a copy of ``environ`` without the secret parts."""
        # Not urlsplit: it reads the "login" of //login/callback as a host name.
        raw_path = str(environ.get("RAW_URI") or "").partition("?")[0].partition("#")[0]
        if has_secret_query(environ.get("PATH_INFO") or "") or has_secret_query(raw_path):
            environ = {**environ, "QUERY_STRING": "", "RAW_URI": raw_path or "-"}
        if "HTTP_REFERER" in environ:
            # A page the callback rendered (a failed sign-in) loads its styles with the
            # callback's whole URL as the Referer.
            environ = {**environ, "HTTP_REFERER": without_secret_query(environ["HTTP_REFERER"])}
        atoms = super().atoms(resp, req, environ, request_time)
        for header in ("{referer}i", "{referrer}i"):
            if header in atoms:
                atoms[header] = without_secret_query(atoms[header])
        return atoms


def without_secret_query(url: str) -> str:
    """``url`` without its query and fragment when its path is one of SECRET_QUERIES."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "-"
    if not has_secret_query(parts.path):
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


logger_class = RedactingLogger

worker_class = "gthread"
# Connections each worker serves at once; each may hold one of the database pool's
# connections (5, and 10 more on demand), so 8 stay within it.
threads = 8
# No more connections than threads: one more would wait inside a worker whose threads are
# all held, behind slow clients, instead of going to a worker with a thread free. So no
# connection is kept alive idle either (the proxy in front opens a new one; sync workers
# never kept any). A command line that changes --threads gives --worker-connections too.
worker_connections = threads
keepalive = 0


MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
_PID = re.compile(r"_(\d+)\.db$")
_created_dirs: list[str] = []


def on_starting(server: Any) -> None:
    """Name the metrics directory before any worker forks and imports prometheus_client
    (which reads it on import: so no ``--preload``), and remove the values of processes no
    longer running, so that a restart does not count twice. Files of live processes stay:
    a ``gatekeeper worker`` on this host sharing the directory may have started first."""
    if not os.environ.get(MULTIPROC_DIR):
        os.environ[MULTIPROC_DIR] = tempfile.mkdtemp(prefix="gatekeeper-metrics-")
        _created_dirs.append(os.environ[MULTIPROC_DIR])
    where = Path(os.environ[MULTIPROC_DIR])
    where.mkdir(parents=True, exist_ok=True)
    for path in where.glob("*.db"):
        match = _PID.search(path.name)
        if match is None or not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """A worker that exited no longer counts in the live gauges (its counters stay)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the directory this configuration made (one the operator named is kept)."""
    for where in _created_dirs:
        shutil.rmtree(where, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
