"""Logs: one JSON line per event in production, with what it is about, and never a secret."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from fakegithub import FakeGitHub
from gate_support import BASE_URL, INSTALLATION, REPO, SECRET, World, app_for
from gatekeeper import github_of, logs
from gatekeeper.cli import cli
from gatekeeper.config import ConfigError, Settings
from webhook_events import deliver

CLIENT_ID, CLIENT_SECRET = "Iv1.logs-client", "oauth-client-secret-for-logs"
SECRET_KEY = "flask-secret-key-for-logs"
METRICS_TOKEN = "metrics-token-for-logs"


class Captured:
    """The service's log lines at DEBUG, as the configured handler renders them."""

    def __init__(self, settings: Settings) -> None:
        self.buffer = io.StringIO()
        self.handler = logs.configure(settings, stream=self.buffer)

    def lines(self) -> list[str]:
        return self.buffer.getvalue().splitlines()

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.lines()]

    def close(self) -> None:
        logging.getLogger().removeHandler(self.handler)


@pytest.fixture
def logged(github_fake: FakeGitHub, database_url: str) -> Iterator[tuple[World, Captured]]:
    """The app with every secret set, logging JSON at DEBUG into a buffer."""
    github_fake.add_oauth_app(CLIENT_ID, CLIENT_SECRET)
    app = app_for(
        github_fake,
        database_url,
        secret_key=SECRET_KEY,
        github_client_id=CLIENT_ID,
        github_client_secret=CLIENT_SECRET,
        metrics_token=METRICS_TOKEN,
        maintainers="ambv",
        log_format="json",
        log_level="DEBUG",
    )
    captured = Captured(app.extensions["gatekeeper.settings"])
    yield World(app, github_fake), captured
    captured.close()
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


def sign_in(world: World, login: str) -> str:
    """The OAuth web flow through the fake GitHub; returns the code GitHub sent back."""
    world.fake.oauth_next_login = login
    start = world.client.get("/login")
    answer = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
    callback = urlsplit(answer.headers["Location"])
    assert f"{callback.scheme}://{callback.netloc}" == BASE_URL
    assert world.client.get(f"{callback.path}?{callback.query}").status_code == 302
    return parse_qs(callback.query)["code"][0]


def test_no_secret_reaches_a_log_line_in_a_full_run(logged):
    """Promote, deliveries, the worker's posts, a sweep, a scrape, a sign-in and a failed one,
    everything at DEBUG: no line holds the webhook secret, a line of the private key, the
    client secret, an installation or OAuth token, the OAuth code, SECRET_KEY or the metrics
    token; and every line is one JSON object with a time, a level and a message."""
    world, captured = logged
    for chatty in ("github", "urllib3", "authlib"):  # as an operator chasing a bug might
        logging.getLogger(chatty).setLevel(logging.DEBUG)
    runner = world.app.test_cli_runner()
    assert runner.invoke(cli, ["promote", "mpage", "--mentor", "colesbury"]).exit_code == 0
    world.open_pull(7)
    world.review(7, reviewer="colesbury", state="approved")
    forged = world.client.post(
        "/webhooks/github",
        data=b"{}",
        headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "f", "X-Hub-Signature-256": "x"},
    )
    assert forged.status_code == 401
    assert runner.invoke(cli, ["sweep"]).exit_code == 0
    assert (
        world.client.get(
            "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        ).status_code
        == 200
    )
    code = sign_in(world, "ambv")
    assert world.client.get("/admin/health").status_code == 200
    assert world.client.get("/login/callback?code=stolen-code-xyz&state=no").status_code == 400

    for chatty in ("github", "urllib3", "authlib"):
        logging.getLogger(chatty).setLevel(logging.NOTSET)
    lines = captured.lines()
    loggers = {record["logger"] for record in captured.records()}
    # The run was logged, or the grep proves nothing.
    assert {"gatekeeper.webhooks", "gatekeeper.worker", "gatekeeper", "github.Requester"} <= loggers
    assert len(lines) > 50
    private_key_lines = [
        line for line in world.fake.private_key_pem.splitlines() if "PRIVATE KEY" not in line
    ]
    tokens = world.fake.issued_tokens()
    assert any(t.startswith("ghs_") for t in tokens) and len(tokens) >= 2
    secrets = {
        "webhook secret": SECRET,
        "client secret": CLIENT_SECRET,
        "SECRET_KEY": SECRET_KEY,
        "metrics token": METRICS_TOKEN,
        "OAuth code": code,
        "stolen OAuth code": "stolen-code-xyz",
        **{f"private key line {n}": line for n, line in enumerate(private_key_lines)},
        **{f"token {n}": token for n, token in enumerate(tokens)},
    }
    for line in lines:
        for what, secret in secrets.items():
            assert secret not in line, f"{what} in a log line: {line[:300]}"
    for record in captured.records():
        assert {"time", "level", "message", "logger"} <= set(record)


def test_pygithub_debug_lines_are_scrubbed_too(logged):
    """PyGithub's own DEBUG lines print whole answers (the token minted, in its body): if a
    operator turns them on, the scrubber still takes the token out."""
    world, captured = logged
    logging.getLogger("github").setLevel(logging.DEBUG)
    try:
        world.promote()
        world.open_pull(7)
    finally:
        logging.getLogger("github").setLevel(logging.INFO)
    minted = [line for line in captured.lines() if "/access_tokens" in line and "==> 201" in line]
    assert minted and all("[redacted]" in line for line in minted)
    for token in world.fake.issued_tokens():
        assert all(token not in line for line in captured.lines())


def test_a_delivery_line_names_what_it_is_about(logged):
    """Each line of a delivery carries its id, event, action, installation, repository and
    pull request number; a worker's post names the repository and the commit."""
    world, captured = logged
    world.promote()
    world.open_pull(7)
    answered = [r for r in captured.records() if r["message"].startswith("delivery answered")]
    assert len(answered) == 1
    line = answered[0]
    assert line["level"] == "INFO" and line["logger"] == "gatekeeper.webhooks"
    assert line["event"] == "pull_request" and line["action"] == "opened"
    assert line["installation"] == INSTALLATION and line["repository"] == REPO
    assert line["pull_request"] == 7 and line["delivery"].startswith("delivery-")
    posted = [r for r in captured.records() if r["message"].startswith("check on ")]
    assert posted and posted[0]["repository"] == REPO and posted[0]["commit"] == "a" * 12


def test_a_dashboard_request_has_a_request_id(logged):
    """A failed sign-in's warning carries the request id the answer's X-Request-Id names; an
    id a proxy set is kept, one that does not look like an id is replaced."""
    world, captured = logged
    answer = world.client.get("/login/callback?state=x")
    assert answer.status_code == 400
    request_id = answer.headers["X-Request-Id"]
    warned = [r for r in captured.records() if r["message"].startswith("sign-in failed")]
    assert [r["request_id"] for r in warned] == [request_id]
    given = world.client.get("/", headers={"X-Request-Id": "proxy-1234.abc"})
    assert given.headers["X-Request-Id"] == "proxy-1234.abc"
    odd = world.client.get("/", headers={"X-Request-Id": "x" * 200})
    assert odd.headers["X-Request-Id"] != "x" * 200 and len(odd.headers["X-Request-Id"]) == 32


def test_a_line_outside_any_request_has_no_context(logged):
    """After a delivery, a line logged by other code carries none of its fields."""
    world, captured = logged
    world.promote()
    world.open_pull(7)
    logging.getLogger("elsewhere").warning("unrelated")
    last = captured.records()[-1]
    assert last["message"] == "unrelated"
    assert not {"delivery", "event", "repository", "request_id"} & set(last)


def test_text_lines_for_a_terminal(github_fake, database_url):
    """The text format: time, level, logger, message, then the bound fields in brackets."""
    app = app_for(github_fake, database_url, log_format="text")
    captured = Captured(app.extensions["gatekeeper.settings"])
    try:
        deliver(app.test_client(), "ping", {"zen": "hi"}, secret=SECRET, delivery_id="d-9")
        line = next(line for line in captured.lines() if "delivery answered" in line)
        assert " INFO gatekeeper.webhooks: delivery answered 200: ignored [" in line
        assert re.search(r"\[request_id=[0-9a-f]{32} delivery=d-9 event=ping\]$", line)
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    finally:
        captured.close()
        github_of(app).close()
        app.extensions["gatekeeper.engine"].dispose()


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "text"),
        ({"GATEKEEPER_ENV": "production", "SECRET_KEY": "k"}, "json"),
        (
            {"GATEKEEPER_ENV": "production", "SECRET_KEY": "k", "GATEKEEPER_LOG_FORMAT": "text"},
            "text",
        ),
        ({"GATEKEEPER_LOG_FORMAT": "JSON"}, "json"),
    ],
)
def test_the_format_is_json_in_production_unless_told(tmp_path, environment, expected):
    """JSON by default in production, text in development; GATEKEEPER_LOG_FORMAT decides."""
    assert Settings.from_env(environment, instance_path=str(tmp_path)).log_format == expected


def test_an_unknown_format_or_level_is_refused(tmp_path):
    """A typo in GATEKEEPER_LOG_FORMAT or GATEKEEPER_LOG_LEVEL names the variable."""
    with pytest.raises(ConfigError, match="GATEKEEPER_LOG_FORMAT must be one of json, text"):
        Settings.from_env({"GATEKEEPER_LOG_FORMAT": "xml"}, instance_path=str(tmp_path))
    with pytest.raises(ConfigError, match="GATEKEEPER_LOG_LEVEL"):
        Settings.from_env({"GATEKEEPER_LOG_LEVEL": "loud"}, instance_path=str(tmp_path))


def test_the_scrubber_takes_out_each_kind_of_secret():
    """Known secrets, GitHub tokens, JWTs and the callback's code are redacted wherever they
    stand in a line; ordinary text is left alone."""
    settings = Settings(
        database_url="sqlite://",
        github_webhook_secret="hook-secret-1",
        github_private_key="-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAxyzxyzxyzxyz\n-----END RSA PRIVATE KEY-----",
        discourse_api_key="forum-api-key-1",
    )
    scrub = logs.Scrubber(settings)
    assert scrub("secret hook-secret-1 here") == "secret [redacted] here"
    assert scrub("Api-Key: forum-api-key-1") == "Api-Key: [redacted]"
    assert "MIIEowIBAAKCAQEAxyzxyzxyzxyz" not in scrub('{"pem": "MIIEowIBAAKCAQEAxyzxyzxyzxyz"}')
    assert (
        scrub("Authorization: token ghs_16charactersormore1234")
        == "Authorization: token [redacted]"
    )
    assert scrub("jwt eyJhbGciOi.eyJpc3MiOj.c2lnbmF0dXJl") == "jwt [redacted]"
    assert scrub('"GET /login/callback?code=abc123&state=s HTTP/1.1"') == (
        '"GET /login/callback?code=[redacted]&state=s HTTP/1.1"'
    )
    assert scrub("check on python/cpython@aaaaaaaaaaaa posted") == (
        "check on python/cpython@aaaaaaaaaaaa posted"
    )


@pytest.mark.parametrize(("level", "shown"), [(None, False), ("info", True)])
def test_a_one_off_command_logs_only_warnings_unless_asked(tmp_path, level, shown):
    """``gatekeeper db upgrade`` prints its one line; Alembic's INFO lines about each
    migration reach stderr only with GATEKEEPER_LOG_LEVEL=info."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GATEKEEPER_", "GITHUB_")) and name not in ("DATABASE_URL",)
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    if level:
        env["GATEKEEPER_LOG_LEVEL"] = level
    done = subprocess.run(
        [str(Path(sys.executable).parent / "gatekeeper"), "db", "upgrade"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("is at revision head.\n")
    assert ("Running upgrade  -> 0001" in done.stderr) is shown


def test_a_library_logger_set_lower_does_not_pass_below_the_level(capsys):
    """A library that set its own logger to INFO (alembic does) adds no INFO line to a
    command configured at WARNING: its output stays what the command prints."""
    settings = Settings(database_url="sqlite://", log_format="text")
    handler = logs.configure(settings, level="WARNING")
    chatty = logging.getLogger("alembic.runtime.migration")
    chatty.setLevel(logging.INFO)
    try:
        chatty.info("Context impl SQLiteImpl.")
        chatty.warning("a real warning")
    finally:
        chatty.setLevel(logging.NOTSET)
        logging.getLogger().removeHandler(handler)
    err = capsys.readouterr().err
    assert "Context impl" not in err
    assert "a real warning" in err
