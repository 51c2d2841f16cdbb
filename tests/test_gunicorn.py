"""The Procfile's gunicorn, started as the Procfile starts it: slow clients do not stop it.

With sync workers one unfinished request per worker left ``/healthz`` unanswered until
gunicorn killed the workers (35-39 s); with ``gatekeeper.gunicorn_conf``'s threaded workers a
slow client holds one thread, a worker takes no more connections than it has threads, and
the threads left answer.
"""

from __future__ import annotations

import shlex
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest
import requests
from test_concurrency import free_port, launch, stop
from test_deploying import ROOT, blocks

from gate_support import SECRET
from gatekeeper import gunicorn_conf

WORKERS = 2
# How a slow client leaves its request unfinished; each holds the thread that reads it.
UNFINISHED = (
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Never-Ends: ",  # the head, cut short
    # The head whole, the body stopped after its first byte: the webhook view waits for it.
    b"POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{",
    b"",  # connected, nothing sent
)


def wait_for_health(url: str, process, log: Path) -> None:
    """Wait until gunicorn answers (its workers import the app first), at most 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    pytest.fail(f"gunicorn did not answer in 60 s\n{log.read_text()[-3000:]}")


def slow_clients(port: int, count: int) -> list[socket.socket]:
    """``count`` connections, each sending part of a request and then nothing more."""
    clients = []
    for index in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.sendall(UNFINISHED[index % len(UNFINISHED)])
        clients.append(client)
    return clients


def launchers() -> list[str]:
    """The gunicorn command lines the deployment guide gives: the Procfile's, the unit's."""
    procfile = (ROOT / "Procfile").read_text().splitlines()
    [web] = [line.removeprefix("web: ") for line in procfile if line.startswith("web:")]
    [unit] = [
        line.removeprefix("ExecStart=")
        for text in blocks("ini")
        for line in text.splitlines()
        if line.startswith("ExecStart=") and "gunicorn" in line
    ]
    return [web, unit]


@pytest.mark.parametrize("line", launchers(), ids=["procfile", "systemd"])
def test_every_launcher_runs_threaded_workers(line, monkeypatch):
    """Read as gunicorn reads it (the command line over the configuration file), each web
    command runs gthread workers with the configuration's threads, not sync workers, and
    takes no more connections than it has threads."""
    from gunicorn.app.wsgiapp import WSGIApplication
    from gunicorn.workers.gthread import ThreadWorker

    tokens = shlex.split(line.replace("${PORT:-8000}", "8000"))
    monkeypatch.setattr(sys, "argv", tokens[[Path(t).name for t in tokens].index("gunicorn") :])
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    config = WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").cfg
    assert config.worker_class is ThreadWorker
    assert config.threads == gunicorn_conf.threads > 1
    assert config.worker_connections == config.threads


def test_slow_clients_on_every_worker_leave_healthz_answering(tmp_path, migrated_sqlite):
    """gunicorn with the project's configuration and 2 workers, and one slow connection
    fewer than the two workers have threads (15 where 2 stopped sync workers): the head of
    a request cut short, a body stopped after a byte, a connection that sends nothing.
    While they hang, ``/healthz`` on new connections is answered each time within a client
    timeout of 5 s, however the slow ones were spread over the workers (sync workers left
    it unanswered for 30 s and more)."""
    database = tmp_path / "gunicorn.sqlite"
    shutil.copyfile(migrated_sqlite, database)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "PATH": str(Path(sys.executable).parent),
        "DATABASE_URL": f"sqlite:///{database}",
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "gunicorn.log"
    web = launch(
        [
            sys.executable, "-m", "gunicorn", "--config", "python:gatekeeper.gunicorn_conf",
            "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}", "--timeout", "30",
            "--graceful-timeout", "5", "--no-control-socket", "gatekeeper:create_app()",
        ],
        env=env,
        log=log,
    )  # fmt: skip
    clients: list[socket.socket] = []
    try:
        wait_for_health(url, web, log)
        clients = slow_clients(port, WORKERS * gunicorn_conf.threads - 1)
        time.sleep(1)  # not a measurement: lets the workers take the slow connections first
        for _ in range(2 * WORKERS):
            answer = requests.get(f"{url}/healthz", timeout=5)
            assert answer.status_code == 200 and answer.json() == {"status": "ok"}
        assert web.poll() is None
    finally:
        for client in clients:
            client.close()
        stop(web)
