"""Fixtures for the browser tests: Debian's Chromium through Playwright, and the real service.

The service runs on loopback with werkzeug, configured against a started fake GitHub that
signs people in (OAuth) and receives check runs (the App).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
import requests
from sqlmodel import Session
from werkzeug.serving import make_server

from fakegithub import FakeGitHub
from gatekeeper import create_app, github_of, worker
from gatekeeper.models import Delivery
from webhook_events import Events, signed

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"
# Read once at import: the clean_environment fixture clears GATEKEEPER_* before each test.
SCREENSHOTS_WANTED = os.environ.get("GATEKEEPER_SCREENSHOTS") == "1"
REPO, INSTALLATION = "python/cpython", 1
CLIENT_ID, CLIENT_SECRET = "Iv1.browser", "browser-oauth-secret"
WEBHOOK_SECRET = "browser-webhook-secret"


@contextmanager
def installing(what: str) -> Iterator[None]:
    """One process at a time installs ``what``: pytest-xdist's workers would race apt and npm."""
    with (Path(tempfile.gettempdir()) / f"gatekeeper-tests-{what}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed when missing and we are root; a missing browser fails, never skips."""
    with installing("chromium"):
        if not Path(CHROMIUM).exists() and os.geteuid() == 0:
            subprocess.run(
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
                shell=True,
                check=False,
                capture_output=True,
            )
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` "
            "(Playwright's own browser download does not work here)",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    """One Chromium for the session, per xdist worker (Playwright's sync API runs its own loop)."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
    yield launched
    launched.close()
    playwright.stop()


class Live:
    """The service on a loopback port, its fake GitHub, and helpers for what GitHub would send."""

    def __init__(self, app: Any, url: str, fake: FakeGitHub) -> None:
        self.app, self.url, self.fake = app, url, fake
        self.events = Events(repo=REPO, installation_id=INSTALLATION)

    def open_pull(self, number: int, *, author: str, head_sha: str) -> None:
        """A pull request opened on GitHub, announced by a signed webhook over HTTP."""
        self.fake.add_pull(REPO, number, author=author, head_sha=head_sha)
        payload = self.events.pull_request(
            "opened", number=number, author=author, head_sha=head_sha
        )
        body = requests.models.complexjson.dumps(payload).encode()
        delivery_id = f"browser-{number}-{head_sha[:8]}"
        response = requests.post(
            f"{self.url}/webhooks/github",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "pull_request",
                "X-GitHub-Delivery": delivery_id,
                "X-Hub-Signature-256": signed(WEBHOOK_SECRET, body),
            },
            timeout=10,
        )
        assert response.status_code == 202, response.text
        self.wait_for(lambda: self.applied(delivery_id))

    def applied(self, delivery_id: str) -> bool:
        """Whether the service's worker has applied the delivery (it is queued until then)."""
        with Session(self.app.extensions["gatekeeper.engine"]) as session:
            delivery = session.get(Delivery, delivery_id)
            return delivery is not None and delivery.outcome == "processed"

    def check(self, head_sha: str) -> dict[str, Any] | None:
        """The latest mentor-approval check run GitHub holds for ``head_sha``."""
        runs = self.fake.check_runs_for(REPO, head_sha, name="mentor-approval")
        return runs[-1] if runs else None

    def wait_for(self, condition: Callable[[], bool], *, timeout: float = 10) -> None:
        """Check runs are posted by the worker after the webhook's answer: give it a moment."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.05)


@pytest.fixture
def live(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Live]:
    """The real app served on 127.0.0.1 against a started fake GitHub (OAuth and App)."""
    with serving(tmp_path, migrated_sqlite) as running:
        yield running


def buffered(app: Callable[[Any, Any], Any]) -> Callable[[Any, Any], list[bytes]]:
    """``app`` with each answer read whole and closed before a byte is sent.

    Werkzeug's development server leaves a static file open when the browser drops the
    connection half-way (Chromium cancels requests as it navigates), and the ResourceWarning
    lands in whichever test runs next. Gunicorn closes it; here the test server does. Every
    test that serves the app to Chromium wraps it in this.
    """

    def whole(environ: Any, start_response: Any) -> list[bytes]:
        answer = app(environ, start_response)
        try:
            return [b"".join(answer)]
        finally:
            if hasattr(answer, "close"):
                answer.close()

    return whole


@contextmanager
def serving(
    folder: Path, migrated_sqlite: Path, *, before_worker: Callable[[Any], None] | None = None
) -> Iterator[Live]:
    """The live service with its database in ``folder``, for a fixture of any scope.

    ``before_worker(app)`` fills the database before the background worker starts: SQLite
    refuses ("database is locked") a write that races the worker's, as the app's callers retry.
    """
    fake = FakeGitHub()
    fake.start()
    fake.add_installation(INSTALLATION, account="python")
    fake.add_repo(REPO, installation_id=INSTALLATION)
    fake.add_oauth_app(CLIENT_ID, CLIENT_SECRET)
    holder: dict[str, Any] = {}
    # The port must be known before the app (its base URL) exists, so bind first.
    server = make_server(
        "127.0.0.1",
        0,
        buffered(lambda environ, start: holder["app"](environ, start)),
        threaded=True,
    )
    url = f"http://127.0.0.1:{server.server_port}"
    database = folder / "browser.sqlite"
    shutil.copyfile(migrated_sqlite, database)
    app = create_app(
        {
            "database_url": f"sqlite:///{database}",
            "secret_key": "x",
            "github_app_id": fake.app_id,
            "github_private_key": fake.private_key_pem,
            "github_api_url": fake.api_url,
            "github_url": fake.url,
            "github_client_id": CLIENT_ID,
            "github_client_secret": CLIENT_SECRET,
            "github_webhook_secret": WEBHOOK_SECRET,
            "base_url": url,
            "maintainers": "boss",
            "github_backoff": 0.0,
            "github_seconds_between_requests": 0.0,
            "github_seconds_between_writes": 0.0,
        }
    )
    holder["app"] = app
    # Shutting down waits out one poll: 0.05 s rather than werkzeug's 0.5 s.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    if before_worker is not None:
        before_worker(app)
    running = set(threading.enumerate())
    # As ``gatekeeper serve`` does, but an idle worker looks again within 0.2 s rather than
    # 2 s: a test waiting for a check run would otherwise wait out the idle pause.
    brisk = patch.object(worker, "IDLE_POLL_MAX", 0.2)
    brisk.start()
    stop_worker = worker.start_background(app)
    [background] = [
        t for t in threading.enumerate() if t not in running and t.name == "gatekeeper-worker"
    ]
    yield Live(app, url, fake)
    stop_worker.set()
    # Wait for its last job: left running, it would call the stopped fake and log that GitHub
    # could not be reached into whichever test this process runs next.
    background.join(timeout=60)
    brisk.stop()
    server.shutdown()
    server.server_close()
    thread.join()
    github = github_of(app)
    if github is not None:
        github.close()
    app.extensions["gatekeeper.engine"].dispose()
    fake.stop()
    assert fake.violations == []


def screenshot(page: Any, name: str) -> None:
    """Keep a full-page screenshot under test-output/ (not committed) when GATEKEEPER_SCREENSHOTS=1.

    They are for a person to look at and assert nothing, yet cost about a quarter of an axe
    sweep: CI does not ask for them. ``name`` may hold folders (``a11y/phone/mentee-overview``).
    """
    if not SCREENSHOTS_WANTED:
        return
    path = SCREENSHOTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
