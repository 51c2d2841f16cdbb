"""``gatekeeper register``: GitHub's App manifest flow against the fake GitHub, end to end.

The console script runs as a maintainer would start it. The test plays the browser with
``requests``: it opens the local page, posts its form to the fake GitHub's "new App" page
(which creates the App at once) and follows the redirect back to the local page, which
trades the code for the App's settings and writes them to the env file. A ``gatekeeper
serve`` started with only that file then authenticates as the new App and gates a pull
request.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import stat
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from test_serve import answers, free_port, wait_for

from fakegithub import FakeGitHub
from gatekeeper.app_manifest import (
    OPTIONAL_PERMISSIONS,
    ORGANISATION_PERMISSIONS,
    REQUIRED_EVENTS,
    REQUIRED_PERMISSIONS,
)
from gatekeeper.cli import cli
from gatekeeper.config import Settings, read_env_file
from gatekeeper.github import RegisteredApp
from gatekeeper.register import Plan, env_values, github_urls
from webhook_events import Events, signed

SCRIPT = str(Path(sys.executable).parent / "gatekeeper")
PUBLIC = "https://gatekeeper.example.org"
REPO, INSTALLATION, HEAD = "python/cpython", 1, "c" * 40
PAGE_URL = re.compile(r"http://127\.0\.0\.1:\d+/[A-Za-z0-9_-]{43}/")


class FormReader(HTMLParser):
    """The one form of a page: its action, method and fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action = self.method = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.action, self.method = found.get("action") or "", found.get("method") or ""
        elif tag == "input" and found.get("name"):
            self.fields[found["name"] or ""] = found.get("value") or ""


class Registration:
    """``gatekeeper register`` as a subprocess, and a browser's part in its flow."""

    def __init__(self, fake: FakeGitHub, env_file: Path, *args: str, public: bool = True):
        env = {**os.environ, "GITHUB_URL": fake.url, "GITHUB_API_URL": fake.api_url}
        env.pop("GATEKEEPER_ENV_FILE")  # --env-file names it
        command = [SCRIPT, "register", "--env-file", str(env_file), *args]
        command += ["--public-url", PUBLIC] if public else []
        self.process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.url: str | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def page_url(self) -> str:
        """The local page's URL, printed on a line of its own."""
        while self.url is None:
            line = self.lines.get(timeout=30)
            if line is None:
                raise AssertionError(f"register ended first: {self.finish()}")
            self.stdout.append(line)
            if PAGE_URL.fullmatch(line):
                self.url = line
        return self.url

    def form(self) -> FormReader:
        """The local page's form, as a browser would read it."""
        page = requests.get(self.page_url(), timeout=10)
        assert page.status_code == 200
        reader = FormReader()
        reader.feed(page.text)
        return reader

    def submit(self, form: FormReader, **changed: str) -> str:
        """Post the form to GitHub; returns where GitHub redirects the browser."""
        assert form.method == "post"
        answer = requests.post(
            form.action, data={**form.fields, **changed}, allow_redirects=False, timeout=10
        )
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]

    def finish(self) -> tuple[int, str, str]:
        """Exit status, the whole stdout and stderr once the command is done."""
        assert self.process.stderr is not None
        status = self.process.wait(timeout=30)
        while (line := self.lines.get(timeout=10)) is not None:
            self.stdout.append(line)
        stderr = self.process.stderr.read()
        self.process.stderr.close()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return status, "\n".join(self.stdout), stderr

    def through(self, form: FormReader | None = None) -> tuple[int, str, str]:
        """The whole flow: submit the form, come back, and wait for the command's end."""
        location = self.submit(form or self.form())
        requests.get(location, timeout=30)
        return self.finish()


@pytest.fixture
def fake() -> Any:
    """The fake GitHub; no request may break GitHub's documented shapes."""
    with FakeGitHub() as started:
        yield started
    assert started.violations == []


def test_register_then_serve_gates_a_pull_request_as_the_new_app(fake, tmp_path, migrated_sqlite):
    """register writes a 0600 env file; serve with only that file posts checks as the new App."""
    env_file = tmp_path / "instance" / "github-app.env"
    registration = Registration(fake, env_file, "--name", "Gatekeeper CPython")
    status, stdout, stderr = registration.through()
    assert (status, stderr) == (0, "")

    app = fake.app_by_slug("gatekeeper-cpython")
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    written = read_env_file(env_file)
    assert written == {
        "GITHUB_APP_ID": str(app.id),
        "GITHUB_APP_SLUG": "gatekeeper-cpython",
        "GITHUB_PRIVATE_KEY": app.pem.strip().replace("\n", "\\n"),
        "GITHUB_WEBHOOK_SECRET": app.webhook_secret,
        "GITHUB_CLIENT_ID": app.client_id,
        "GITHUB_CLIENT_SECRET": app.client_secret,
        "GITHUB_URL": fake.url,
        "GITHUB_API_URL": fake.api_url,
        "GATEKEEPER_BASE_URL": PUBLIC,
    }
    loaded = Settings.from_env({"GATEKEEPER_ENV_FILE": str(env_file)}, instance_path="/nowhere")
    assert loaded.github_private_key == app.pem.strip()  # the \n escapes read back
    for secret in (app.pem.splitlines()[1], app.webhook_secret, app.client_secret):
        assert secret not in stdout
    assert f"{fake.url}/apps/gatekeeper-cpython/installations/new" in stdout.splitlines()

    fake.add_installation(INSTALLATION, account="python", app_id=app.id)
    fake.add_repo(REPO, installation_id=INSTALLATION)
    database = tmp_path / "serve.sqlite"
    shutil.copyfile(migrated_sqlite, database)
    port = free_port()
    env = {
        **os.environ,
        "GATEKEEPER_ENV_FILE": str(env_file),
        "DATABASE_URL": f"sqlite:///{database}",
        "GATEKEEPER_BASE_URL": f"http://127.0.0.1:{port}",
    }
    promoted = subprocess.run(
        [SCRIPT, "promote", "mpage", "--mentor", "colesbury"],
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
        [SCRIPT, "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=30, what="serve")
        fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
        payload = Events(repo=REPO, installation_id=INSTALLATION).pull_request(
            "opened", number=7, author="mpage", head_sha=HEAD
        )
        body = json.dumps(payload).encode()
        answer = requests.post(
            f"http://127.0.0.1:{port}/webhooks/github",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "pull_request",
                "X-GitHub-Delivery": "register-1",
                "X-Hub-Signature-256": signed(app.webhook_secret or "", body),
            },
            timeout=5,
        )
        assert answer.status_code == 202, answer.text  # signed with the new App's secret

        def runs() -> list[dict[str, Any]]:
            return fake.check_runs_for(REPO, HEAD, name="mentor-approval")

        wait_for(lambda: bool(runs()), timeout=15, what="the check run")
        assert runs()[0]["conclusion"] == "action_required"
        assert runs()[0]["app"]["id"] == app.id
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
    token_calls = [c for c in fake.calls if c.path.endswith("/access_tokens")]
    assert token_calls and {c.auth for c in token_calls} == {"jwt"}


def test_the_manifest_asks_for_what_gatekeeper_needs_on_the_organisation(fake, tmp_path):
    """--org posts to the organisation's form; the manifest holds the shared permission list."""
    registration = Registration(fake, tmp_path / "app.env", "--org", "python", "--with-protect")
    form = registration.form()
    assert form.action.startswith(f"{fake.url}/organizations/python/settings/apps/new?state=")
    assert form.fields["state"] and form.fields["state"] in form.action
    sent = json.loads(form.fields["manifest"])
    local = registration.page_url()
    assert sent == {
        "name": "Gatekeeper python",
        "url": PUBLIC,
        "description": sent["description"],
        "hook_attributes": {"url": f"{PUBLIC}/webhooks/github", "active": True},
        "redirect_url": f"{local}callback",
        "callback_urls": [f"{PUBLIC}/login/callback"],
        "request_oauth_on_install": False,
        "public": False,
        # --with-protect on an organisation: its rulesets too, for `protect --org`.
        "default_permissions": {
            **REQUIRED_PERMISSIONS,
            **OPTIONAL_PERMISSIONS,
            **ORGANISATION_PERMISSIONS,
        },
        "default_events": list(REQUIRED_EVENTS),
    }
    status, _, stderr = registration.through(form)
    assert (status, stderr) == (0, "")
    app = fake.app_by_slug("gatekeeper-python")
    assert app.owner == "python"
    assert app.permissions["administration"] == "write"
    assert app.permissions["organization_administration"] == "write"


def test_without_with_protect_no_administration_is_asked_for(fake, tmp_path):
    """Only --with-protect asks for Administration: write (only `protect` needs it)."""
    registration = Registration(fake, tmp_path / "app.env")
    sent = json.loads(registration.form().fields["manifest"])
    assert sent["default_permissions"] == dict(REQUIRED_PERMISSIONS)
    assert "administration" not in sent["default_permissions"]
    registration.process.terminate()
    registration.finish()


def test_the_page_answers_only_to_loopback_names(fake, tmp_path):
    """A request naming another Host (DNS rebinding) is refused; the flow goes on."""
    registration = Registration(fake, tmp_path / "app.env")
    url = registration.page_url()
    assert requests.get(url, headers={"Host": "evil.example"}, timeout=10).status_code == 400
    assert requests.get(url + "nothing-here", timeout=10).status_code == 404
    status, _, _ = registration.through()
    assert status == 0


def test_another_local_process_cannot_read_the_page_or_come_back(fake, tmp_path):
    """Hijack: another process on the machine knows the port but not the path printed on the
    terminal. The root, the old paths and a guessed token are bare 404s holding no state;
    a return with a forged code at a guessed path writes nothing; the real flow completes."""
    env_file = tmp_path / "app.env"
    registration = Registration(fake, env_file)
    url = registration.page_url()
    root = url.rsplit("/", 2)[0] + "/"
    form = registration.form()
    guessed_token = "A" * 43
    for probe in (root, root + "callback", root + f"{guessed_token}/", url[:-2] + "/"):
        answer = requests.get(probe, timeout=10)
        assert answer.status_code == 404, probe
        assert form.fields["state"] not in answer.text
        assert "manifest" not in answer.text
    hijack = f"{root}{guessed_token}/callback?code=attacker&state={form.fields['state']}"
    assert requests.get(hijack, timeout=10).status_code == 404
    assert requests.post(url, data={"state": form.fields["state"]}, timeout=10).status_code == 404
    assert not env_file.exists()
    status, _, stderr = registration.through(form)
    assert (status, stderr) == (0, "")
    assert "GITHUB_APP_ID=" in env_file.read_text()


def test_the_page_is_never_framed_cached_or_referred(fake, tmp_path):
    """The form and the 404 alike: X-Frame-Options DENY, CSP frame-ancestors 'none' with the
    form posting only to GitHub, no-store and no Referer."""
    registration = Registration(fake, tmp_path / "app.env")
    url = registration.page_url()
    for answer in (requests.get(url, timeout=10), requests.get(url + "nothing", timeout=10)):
        assert answer.headers["X-Frame-Options"] == "DENY"
        policy = answer.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy
        assert "default-src 'none'" in policy
        assert f"form-action {fake.url} 'self'" in policy
        assert answer.headers["Cache-Control"] == "no-store"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
    registration.process.terminate()
    registration.finish()


def test_a_state_that_does_not_match_is_refused(fake, tmp_path):
    """A return with another state (GitHub's or a forged one) is refused with a 400 and writes
    nothing, and the registration goes on: the genuine return still completes it."""
    env_file = tmp_path / "app.env"
    registration = Registration(fake, env_file)
    form = registration.form()
    forged = f"{registration.page_url()}callback?code=forged&state=not-the-state"
    refused = requests.get(forged, timeout=30)
    assert refused.status_code == 400
    assert "does not match" in refused.text
    assert not env_file.exists()
    status, _, stderr = registration.through(form)
    assert status == 0
    assert stderr.strip().splitlines() == [
        "Warning: a return whose state does not match this registration's was refused;"
        " nothing was written, still waiting for GitHub."
    ]
    assert "GITHUB_APP_ID=" in env_file.read_text()


def test_an_expired_code_is_refused(fake, tmp_path):
    """A code traded more than an hour after GitHub gave it is refused; nothing is written."""
    env_file = tmp_path / "app.env"
    registration = Registration(fake, env_file)
    location = registration.submit(registration.form())
    fake.age_manifest_codes(3601)
    assert requests.get(location, timeout=30).status_code == 400
    status, _, stderr = registration.finish()
    assert status == 1
    assert stderr.startswith("Error: GitHub refused the code: it expired")
    assert len(stderr.strip().splitlines()) == 1
    assert not env_file.exists()
    assert [c.status for c in fake.calls if c.path.startswith("/app-manifests/")] == [404]


def test_a_used_code_is_refused_and_the_file_is_kept(fake, tmp_path):
    """A code already traded (here by the first registration) is refused the second time."""
    env_file = tmp_path / "app.env"
    first = Registration(fake, env_file)
    used = first.submit(first.form())
    requests.get(used, timeout=30)
    assert first.finish()[0] == 0
    before = env_file.read_text()
    again = Registration(fake, env_file, "--force")
    old_code = re.search(r"code=(\w+)", used)
    assert old_code is not None
    state = again.form().fields["state"]
    back = f"{again.page_url()}callback?code={old_code[1]}&state={state}"
    assert requests.get(back, timeout=30).status_code == 400
    status, _, stderr = again.finish()
    assert status == 1
    assert "was already used" in stderr and len(stderr.strip().splitlines()) == 1
    assert env_file.read_text() == before


def test_a_file_that_holds_an_app_is_kept_unless_forced(fake, tmp_path):
    """Without --force an env file holding an App is refused at once; with it, it is replaced,
    keeping the lines register does not write."""
    env_file = tmp_path / "app.env"
    env_file.write_text("GITHUB_APP_ID=99\nDATABASE_URL=postgresql://db/gk\n")
    refused = subprocess.run(
        [SCRIPT, "register", "--env-file", str(env_file), "--public-url", PUBLIC],
        env={**os.environ, "GITHUB_URL": fake.url, "GITHUB_API_URL": fake.api_url},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (
        f"Error: {env_file} already holds an App (GITHUB_APP_ID=99); pass --force to replace it\n"
    )
    assert env_file.read_text() == "GITHUB_APP_ID=99\nDATABASE_URL=postgresql://db/gk\n"

    status, _, _ = Registration(fake, env_file, "--force").through()
    assert status == 0
    written = read_env_file(env_file)
    assert written["GITHUB_APP_ID"] != "99"
    assert written["DATABASE_URL"] == "postgresql://db/gk"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Error: --public-url is required when there is no terminal to ask for it"),
        (["--public-url", "ftp://x"], "Error: --public-url must be an http(s) URL"),
        (["--public-url", PUBLIC, "--org", "no/such"], "Error: --org must be an organisation's"),
        (["--public-url", PUBLIC, "--name", "x" * 35], "Error: --name must hold 1 to 34"),
    ],
    ids=["no-tty-no-url", "bad-url", "bad-org", "long-name"],
)
def test_bad_invocations_are_refused_in_one_line(tmp_path, args, message):
    """Without a terminal and --public-url, or with a malformed option: one line, exit 1."""
    result = CliRunner().invoke(cli, ["register", "--env-file", str(tmp_path / "app.env"), *args])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert not (tmp_path / "app.env").exists()


def registered(**fields: Any) -> RegisteredApp:
    """An App as the conversion returns it."""
    values = {
        "id": 7,
        "slug": "gk",
        "name": "GK",
        "html_url": "https://github.com/apps/gk",
        "pem": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        "webhook_secret": "hook",
        "client_id": "Iv1.x",
        "client_secret": "shh",
    }
    return RegisteredApp(**{**values, **fields})


def plan(github_url: str, api_url: str) -> Plan:
    return Plan(github_url, api_url, PUBLIC, "GK", Path("app.env"))


def test_github_com_is_not_written_to_the_env_file():
    """GITHUB_URL and GITHUB_API_URL are written only when they are not github.com's."""
    values = env_values(registered(), plan("https://github.com", "https://api.github.com"))
    assert "GITHUB_URL" not in values and "GITHUB_API_URL" not in values
    assert values["GITHUB_PRIVATE_KEY"] == (
        "-----BEGIN RSA PRIVATE KEY-----\\nAAAA\\n-----END RSA PRIVATE KEY-----"
    )
    ghes = env_values(registered(), plan("https://ghe.example", "https://ghe.example/api/v3"))
    assert (ghes["GITHUB_URL"], ghes["GITHUB_API_URL"]) == (
        "https://ghe.example",
        "https://ghe.example/api/v3",
    )


@pytest.mark.parametrize(
    ("environ", "in_file", "expected"),
    [
        ({}, {}, ("https://github.com", "https://api.github.com")),
        (
            {"GITHUB_URL": "https://ghe.example/"},
            {},
            ("https://ghe.example", "https://ghe.example/api/v3"),
        ),
        (
            {},
            {"GITHUB_URL": "https://ghe.example"},
            ("https://ghe.example", "https://ghe.example/api/v3"),
        ),
        (
            {"GITHUB_URL": "https://ghe.example", "GITHUB_API_URL": "https://api.ghe.example"},
            {"GITHUB_URL": "https://other.example"},
            ("https://ghe.example", "https://api.ghe.example"),
        ),
    ],
    ids=["github.com", "ghes-environment", "ghes-file", "environment-wins"],
)
def test_github_enterprise_urls(environ, in_file, expected):
    """A GitHub Enterprise Server host without its API URL has it at /api/v3."""
    assert github_urls(environ, in_file) == expected
