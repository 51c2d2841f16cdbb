"""``gatekeeper serve`` alone gates a pull request end to end: no worker process beside it.

The console script runs as a newcomer would start it, against the fake GitHub on loopback;
the webhook arrives over real HTTP and the check appears on the fake, posted by the
worker thread ``serve`` runs of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from fakegithub import FakeGitHub
from gate_support import INSTALLATION, REPO, SECRET
from webhook_events import Events, signed

HEAD = "a" * 40


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_serve_alone_gates_a_pull_request(tmp_path, migrated_sqlite):
    """promote, serve, a signed ``opened``: the check waits; a mentor's review: it passes."""
    fake = FakeGitHub()
    fake.start()
    fake.add_installation(INSTALLATION, account="python")
    fake.add_repo(REPO, installation_id=INSTALLATION)
    database = tmp_path / "serve.sqlite"
    shutil.copyfile(migrated_sqlite, database)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "GITHUB_APP_ID": str(fake.app_id),
        "GITHUB_PRIVATE_KEY": fake.private_key_pem,
        "GITHUB_API_URL": fake.api_url,
        "GITHUB_URL": fake.url,
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "GATEKEEPER_BASE_URL": f"http://127.0.0.1:{port}",
    }
    script = str(Path(sys.executable).parent / "gatekeeper")
    promoted = subprocess.run(
        [script, "promote", "mpage", "--mentor", "colesbury"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert promoted.returncode == 0, promoted.stderr
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [script, "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    events = Events(repo=REPO, installation_id=INSTALLATION)

    def send(event: str, payload: dict, delivery: str) -> None:
        body = json.dumps(payload).encode()
        response = requests.post(
            f"http://127.0.0.1:{port}/webhooks/github",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": signed(SECRET, body),
            },
            timeout=5,
        )
        assert response.status_code == 202, response.text

    def conclusion() -> str | None:
        runs = fake.check_runs_for(REPO, HEAD, name="mentor-approval")
        return runs[-1]["conclusion"] if runs else None

    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=30, what="serve")
        fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
        send("pull_request", events.pull_request("opened", number=7, author="mpage",
                                                 head_sha=HEAD), "serve-1")  # fmt: skip
        wait_for(lambda: conclusion() == "action_required", timeout=15, what="the waiting check")
        fake.add_review(REPO, 7, reviewer="colesbury", state="APPROVED", commit_id=HEAD,
                        review_id=1)  # fmt: skip
        review = events.review("submitted", number=7, author="mpage", head_sha=HEAD,
                               reviewer="colesbury", state="approved", review_id=1)  # fmt: skip
        send("pull_request_review", review, "serve-2")
        wait_for(lambda: conclusion() == "success", timeout=15, what="the passing check")
        assert len(fake.check_runs_for(REPO, HEAD, name="mentor-approval")) == 1
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
        fake.stop()
    assert fake.violations == []
