"""The dashboard against hostile input: headers on every answer, link schemes, text lengths,
huge numbers in URLs, and OAuth secrets kept out of gunicorn's access log."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import sqlalchemy as sa
from flask import Flask, url_for
from flask.testing import FlaskClient
from gunicorn.config import Config as GunicornConfig
from sqlmodel import Session, SQLModel

from gate_support import promote
from gatekeeper import create_app, votes
from gatekeeper import mentorships as lifecycle
from gatekeeper.cli import cli
from gatekeeper.gunicorn_conf import RedactingLogger, without_secret_query
from gatekeeper.models import PullRequest, utcnow

ROOT = Path(__file__).resolve().parent.parent
REPO, SHA = "python/cpython", "a" * 40
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
LIMIT = 2000  # the limit for notes, end notes and override reasons


# ---------------------------------------------------------------- helpers


def sign_in(client: FlaskClient, login: str) -> None:
    """Be signed in as ``login`` (what the OAuth callback leaves in the session)."""
    with client.session_transaction() as session:
        session["login"], session["display"] = login.lower(), login


def token(client: FlaskClient, path: str = "/") -> str:
    """The CSRF token of the first form on ``path``."""
    match = TOKEN.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def engine_of(app: Flask) -> sa.Engine:
    return app.extensions["gatekeeper.engine"]


def store_pull(app: Flask, number: int = 7, *, url: str | None = None) -> None:
    """A pull request row as a webhook would leave it (``url`` as GitHub sent it)."""
    with Session(engine_of(app)) as session:
        session.add(
            PullRequest(
                repo=REPO,
                number=number,
                author="mpage",
                author_display="mpage",
                title="A change",
                url=url if url is not None else f"https://github.com/{REPO}/pull/{number}",
                head_sha=SHA,
                first_seen_at=utcnow(),
                gate="waiting",
                waiting_since=utcnow(),
            )
        )
        session.commit()


def store_vote_url(app: Flask, url: str, *, mentee: str = "mpage") -> None:
    """Write a vote URL straight into the row, as one stored before URLs were checked."""
    with Session(engine_of(app)) as session:
        mentorship = lifecycle.latest_mentorship(session, mentee=mentee)
        mentorship.vote_url = url
        mentorship.votes_for, mentorship.votes_against = 30, 2
        mentorship.vote_opened = (utcnow() - timedelta(days=10)).date()
        mentorship.vote_closed = (utcnow() - timedelta(days=2)).date()
        session.add(mentorship)
        session.commit()


def row_counts(app: Flask) -> dict[str, int]:
    """Rows in every table, to prove a refusal wrote nothing."""
    with engine_of(app).connect() as connection:
        return {
            table.name: connection.execute(
                sa.select(sa.func.count()).select_from(table)
            ).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


@pytest.fixture
def month(app: Flask) -> Flask:
    """mpage mentored by colesbury and vstinner, with pull request #7 waiting."""
    promote(app, "mpage", ("colesbury", "vstinner"), actor="boss")
    store_pull(app, 7)
    return app


@pytest.fixture
def build(app: Flask, database_url: str) -> Iterator[Callable[..., Flask]]:
    """Apps with other settings (CSRF on) on the ``app`` fixture's migrated database."""
    built: list[Flask] = []

    def make(**settings: object) -> Flask:
        built.append(create_app({"database_url": database_url, "secret_key": "t", **settings}))
        return built[-1]

    yield make
    for made in built:
        engine_of(made).dispose()


@pytest.fixture
def maintainer_app(build: Callable[..., Flask]) -> Flask:
    """The app with ``boss`` as the maintainer."""
    return build(maintainers="boss")


class InlineCode(HTMLParser):
    """Collects what a strict Content-Security-Policy refuses: inline scripts, styles, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style> element")
        self.found += [f"{tag} {name}=" for name in names if name == "style"]
        self.found += [f"{tag} {name}=" for name in names if name.startswith("on")]
        for name, value in attrs:
            if name in ("href", "src", "action") and value and not is_safe_link(value):
                self.found.append(f"{tag} {name}={value!r}")


def is_safe_link(value: str) -> bool:
    """A link to this site (a path) or to the web (http, https)."""
    return value.startswith(("/", "#", "http://", "https://")) and not value.startswith("//")


# ---------------------------------------------------------------- headers


def every_route(app: Flask) -> list[tuple[str, str]]:
    """(method, path) for every rule the app serves, with arguments that find the month's rows."""
    arguments = {
        "mentee": "mpage",
        "owner": "python",
        "repo": "cpython",
        "number": 7,
        "login": "vstinner",
        "filename": "gatekeeper.css",
    }
    routes = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            path = url_for(rule.endpoint, **{name: arguments[name] for name in rule.arguments})
            routes += [(method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return routes


def assert_hardened(response, *, production: bool = False) -> None:
    headers = response.headers
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert ("Strict-Transport-Security" in headers) == production


@pytest.mark.parametrize("visitor", [None, "boss"])
def test_every_route_answers_with_the_security_headers(maintainer_app, visitor):
    """Every rule, every method, signed out and as a maintainer: each answer has the headers."""
    promote(maintainer_app, "mpage", ("colesbury", "vstinner"), actor="boss")
    store_pull(maintainer_app, 7)
    client = maintainer_app.test_client()
    if visitor:
        sign_in(client, visitor)
    routes = every_route(maintainer_app)
    assert ("GET", "/pulls/python/cpython/7") in routes and ("POST", "/webhooks/github") in routes
    for method, path in routes:
        with client.open(path, method=method) as response:
            assert response.status_code != 500, (method, path)
            assert_hardened(response)


def test_error_pages_carry_the_headers_too(build):
    """A 404 and an unhandled 500 still answer with the headers (after_request runs for both)."""
    app = build()
    app.add_url_rule("/boom", "boom", lambda: 1 / 0)
    client = app.test_client()
    assert_hardened(client.get("/no/such/page"))
    answer = client.get("/boom")
    assert answer.status_code == 500
    assert_hardened(answer)


def test_hsts_only_in_production(build):
    """Strict-Transport-Security is sent in production only (development runs on plain HTTP)."""
    response = build(env="production").test_client().get("/")
    assert_hardened(response, production=True)
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_form_action_lets_a_signed_out_form_go_on_to_github(build):
    """With OAuth on, a form posted after sign-out is redirected to GitHub's sign-in: allow it."""
    oauth = build(
        github_url="https://github.example", github_client_id="id", github_client_secret="s"
    )
    policy = oauth.test_client().get("/").headers["Content-Security-Policy"]
    assert policy == CSP.replace("form-action 'self'", "form-action 'self' https://github.example")


@pytest.mark.parametrize("visitor", [None, "boss", "colesbury", "mpage"])
def test_no_page_holds_code_the_policy_would_refuse(maintainer_app, visitor):
    """No inline script, style attribute or handler, nor a link of another scheme, on any page."""
    promote(maintainer_app, "mpage", ("colesbury", "vstinner"), actor="boss")
    store_pull(maintainer_app, 7)
    client = maintainer_app.test_client()
    if visitor:
        sign_in(client, visitor)
    for method, path in every_route(maintainer_app):
        if method != "GET" or path.startswith(("/static/", "/api/")):
            continue
        html = client.get(path, follow_redirects=True).get_data(as_text=True)
        parser = InlineCode()
        parser.feed(html)
        assert parser.found == [], path


# ---------------------------------------------------------------- link schemes

NOT_WEB_URLS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "javascript://example.com/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "ftp://example.com/vote",
    "//example.com/vote",
    "https://",
    "https:///vote",
    "/t/promotion-vote",
    "https://exa mple.com/",
    "https://example.com/\nvote",
    "https://discuss.python.org@evil.example/vote",
]
WEB_URLS = ["https://discuss.python.org/t/vote/1", "http://example.com", "HTTPS://Example.com/x"]


@pytest.mark.parametrize("url", NOT_WEB_URLS)
def test_only_http_links_to_a_host_are_web_urls(url):
    """Another scheme, no host, a relative URL, or blanks that browsers would drop: refused."""
    assert not lifecycle.is_web_url(url)
    with pytest.raises(lifecycle.MentorshipError, match="must be an http or https link"):
        lifecycle.web_url(url, what="the vote URL")


@pytest.mark.parametrize("url", WEB_URLS)
def test_http_and_https_links_are_web_urls(url):
    """An http(s) link with a host is kept as given."""
    assert lifecycle.is_web_url(url)
    assert lifecycle.web_url(url, what="the vote URL") == url


def test_non_strings_and_overlong_urls_are_not_web_urls():
    """The template test is given whatever a row holds: None, or a URL of 10,000 characters."""
    assert not lifecycle.is_web_url(None)
    assert not lifecycle.is_web_url("")
    assert not lifecycle.is_web_url("https://example.com/" + "x" * LIMIT)
    assert not lifecycle.is_web_url("https://[::1/")  # urlsplit raises on it


def passing_vote(url: str) -> votes.Vote:
    vote = votes.make_vote(
        url=url,
        votes_for=30,
        votes_against=2,
        opened=utcnow().date() - timedelta(days=10),
        closed=utcnow().date() - timedelta(days=2),
    )
    assert vote is not None
    return vote


def test_promote_refuses_a_javascript_vote_url(session):
    """The lifecycle refuses it, whoever calls: the CLI, the dashboard, a script."""
    with pytest.raises(lifecycle.MentorshipError, match="the vote URL must be an http or https"):
        lifecycle.promote(
            session,
            mentee="mpage",
            mentors=["colesbury"],
            actor="t",
            now=utcnow(),
            vote=passing_vote("javascript:alert(1)"),
        )


def test_promote_stores_a_web_vote_url(session):
    """The ordinary vote link is stored, without surrounding blanks."""
    mentorship = lifecycle.promote(
        session,
        mentee="mpage",
        mentors=["colesbury"],
        actor="t",
        now=utcnow(),
        vote=passing_vote(" https://discuss.python.org/t/vote/1 "),
    )
    assert mentorship.vote_url == "https://discuss.python.org/t/vote/1"


def refused(app: Flask, runner, *args: str) -> str:
    """Run a command that must be refused: exit 1, one ``Error:`` line, nothing written."""
    before = row_counts(app)
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 1, (result.output, result.exception)
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: ")
    assert result.stdout == ""
    assert row_counts(app) == before
    return line


DATES = ["--vote-opened", "2024-11-01", "--vote-closed", "2024-11-08"]
VOTE = ["--votes-for", "30", "--votes-against", "2", *DATES]
FAILING_VOTE = ["--votes-for", "1", "--votes-against", "9", *DATES]


def test_cli_promote_refuses_a_javascript_vote_url(app, runner):
    """The issue's example: ``--vote-url "javascript:alert(1)"`` exits 1 with one line."""
    line = refused(
        app,
        runner,
        "promote",
        "mpage",
        "--mentor",
        "colesbury",
        "--vote-url",
        "javascript:alert(1)",
        *VOTE,
    )
    assert line == ("Error: the vote URL must be an http or https link, got 'javascript:alert(1)'")


def new_mentorship_form(client: FlaskClient, **fields: str):
    """Post the start form as the signed-in maintainer."""
    data = {"mentee": "eclips4", "mentors": "ambv", "approvals_required": "1", **fields}
    return client.post("/mentorships/new", data={"csrf_token": token(client), **data})


def test_the_start_form_refuses_a_javascript_vote_url(maintainer_app):
    """The form applies the lifecycle's rule and says why (wtforms' URL() said "Invalid URL.")."""
    client = maintainer_app.test_client()
    sign_in(client, "boss")
    before = row_counts(maintainer_app)
    response = new_mentorship_form(
        client,
        vote_url="javascript:alert(1)",
        votes_for="30",
        votes_against="2",
        vote_opened="2024-11-01",
        vote_closed="2024-11-08",
    )
    assert response.status_code == 400
    assert (
        "The vote URL must be an http or https link, got &#39;javascript:alert(1)&#39;."
        in response.get_data(as_text=True)
    )
    assert row_counts(maintainer_app) == before


def test_a_stored_javascript_vote_url_is_not_rendered_as_a_link(month):
    """Rows stored before the check: the mentee page shows the text, never an href to it."""
    store_vote_url(month, "javascript:alert(1)")
    html = month.test_client().get("/mentorships/mpage").get_data(as_text=True)
    assert 'href="javascript:' not in html
    assert "javascript:alert(1)" in html  # shown as text, so a maintainer can fix it


def test_a_stored_web_vote_url_is_a_link(month):
    """The ordinary case keeps its link."""
    store_vote_url(month, "https://discuss.python.org/t/vote/1")
    html = month.test_client().get("/mentorships/mpage").get_data(as_text=True)
    assert 'href="https://discuss.python.org/t/vote/1"' in html


def test_a_pull_request_url_of_another_scheme_is_not_a_link(app):
    """The pull request page links to GitHub only when the stored URL is http(s)."""
    promote(app, "mpage", ("colesbury",), actor="boss")
    store_pull(app, 8, url="javascript:alert(document.cookie)")
    html = app.test_client().get(f"/pulls/{REPO}/8").get_data(as_text=True)
    assert "javascript:" not in html
    assert f"{REPO}#8" in html


# ---------------------------------------------------------------- text lengths


def test_bounded_text_keeps_2000_characters_and_refuses_2001():
    """The limit counts characters of the text without its surrounding blanks."""
    assert lifecycle.bounded_text("  é" + "x" * (LIMIT - 1) + "\n", what="the note") == (
        "é" + "x" * (LIMIT - 1)
    )
    assert lifecycle.bounded_text("   ", what="the note") is None
    with pytest.raises(lifecycle.MentorshipError) as refused:
        lifecycle.bounded_text("x" * (LIMIT + 1), what="the note")
    assert str(refused.value) == "the note must be at most 2,000 characters (got 2,001)"


@pytest.mark.parametrize("field", ["note", "override_reason"])
def test_promote_limits_notes_and_override_reasons(session, field):
    """2,000 characters are kept; one more is refused with the limit in the message."""
    long = {field: "x" * (LIMIT + 1)}
    with pytest.raises(lifecycle.MentorshipError, match=r"at most 2,000 characters \(got 2,001\)"):
        lifecycle.promote(
            session, mentee="mpage", mentors=["colesbury"], actor="t", now=utcnow(), **long
        )
    kept = lifecycle.promote(
        session,
        mentee="mpage",
        mentors=["colesbury"],
        actor="t",
        now=utcnow(),
        **{field: "y" * LIMIT},
    )
    assert getattr(kept, field) == "y" * LIMIT


def test_end_limits_the_end_note(session):
    """The end note has the same limit; nothing is ended when it is refused."""
    lifecycle.promote(session, mentee="mpage", mentors=["colesbury"], actor="t", now=utcnow())
    with pytest.raises(lifecycle.MentorshipError, match="the end note must be at most 2,000"):
        lifecycle.end(
            session,
            mentee="mpage",
            reason="graduated",
            actor="t",
            now=utcnow(),
            note="x" * (LIMIT + 1),
        )
    assert lifecycle.latest_mentorship(session, mentee="mpage").ended_at is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--note", "x" * (LIMIT + 1)],
            "Error: the note must be at most 2,000 characters (got 2,001)",
        ),
        (
            [*FAILING_VOTE, "--override-reason", "x" * 10_000],
            "Error: the override reason must be at most 2,000 characters (got 10,000)",
        ),
    ],
    ids=["note", "override-reason"],
)
def test_cli_promote_refuses_long_text(app, runner, args, message):
    """The command line prints the limit on one line and exits 1, writing nothing."""
    assert refused(app, runner, "promote", "mpage", "--mentor", "colesbury", *args) == message


def test_cli_end_refuses_a_long_note(app, runner):
    """``gatekeeper end --note`` is limited too."""
    promote(app, "mpage", ("colesbury",), actor="boss")
    line = refused(
        app, runner, "end", "mpage", "--reason", "graduated", "--note", "n" * (LIMIT + 1)
    )
    assert line == "Error: the end note must be at most 2,000 characters (got 2,001)"


@pytest.mark.parametrize("field", ["note", "override_reason"])
def test_the_start_form_limits_notes_and_override_reasons(maintainer_app, field):
    """The form says so beside the field, and starts nothing."""
    client = maintainer_app.test_client()
    sign_in(client, "boss")
    before = row_counts(maintainer_app)
    response = new_mentorship_form(client, **{field: "x" * (LIMIT + 1)})
    assert response.status_code == 400
    assert "at most 2,000 characters" in response.get_data(as_text=True)
    assert row_counts(maintainer_app) == before


def test_the_end_form_limits_the_note(maintainer_app):
    """A long end note is refused on the confirm page; the mentorship goes on."""
    promote(maintainer_app, "mpage", ("colesbury",), actor="boss")
    client = maintainer_app.test_client()
    sign_in(client, "boss")
    response = client.post(
        "/mentorships/mpage/end",
        data={"csrf_token": token(client), "reason": "graduated", "note": "x" * (LIMIT + 1)},
    )
    assert response.status_code == 400
    assert "at most 2,000 characters" in response.get_data(as_text=True)
    with Session(engine_of(maintainer_app)) as session:
        assert lifecycle.latest_mentorship(session, mentee="mpage").ended_at is None


# ---------------------------------------------------------------- numbers in URLs

HUGE_NUMBERS = ["2147483648", "9223372036854775807", "9223372036854775808", "1" + "0" * 40]


@pytest.mark.parametrize("number", HUGE_NUMBERS)
def test_a_pull_number_too_big_for_the_database_is_not_found(month, number):
    """The issue's /pulls/a/b/9223372036854775808 (and INTEGER's limit on PostgreSQL) are 404s."""
    client = month.test_client()
    assert client.get(f"/pulls/a/b/{number}").status_code == 404
    sign_in(client, "colesbury")
    answer = client.post(f"/pulls/{REPO}/{number}/approve", data={"csrf_token": token(client)})
    assert answer.status_code == 404


def test_the_largest_integer_is_still_a_pull_number(month):
    """2,147,483,647 fits the column, so that pull request is found."""
    store_pull(month, 2_147_483_647)
    assert month.test_client().get(f"/pulls/{REPO}/2147483647").status_code == 200


# ---------------------------------------------------------------- gunicorn's access log


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def procfile_web_command(port: int) -> tuple[dict[str, str], list[str]]:
    """The Procfile's ``web`` line as (environment, argv), bound to ``port`` on loopback."""
    [line] = [
        line.removeprefix("web:")
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line.startswith("web:")
    ]
    words = shlex.split(line.replace("${PORT:-8000}", str(port)))
    env = {}
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    words = [word.replace("0.0.0.0:", "127.0.0.1:") for word in words]
    return env, [str(Path(sys.executable).parent / words[0]), *words[1:]]


def test_the_oauth_code_and_state_stay_out_of_the_access_log(tmp_path, migrated_sqlite):
    """The Procfile's gunicorn logs /login/callback without its query, and a page it leads to
    without the callback's query in the Referer; other query strings are kept. The callback
    spelt //login/callback (served by the view) or /login//callback (redirected to it) with
    a code is logged without its query too (both leaked the code before)."""
    database = tmp_path / "web.sqlite"
    database.write_bytes(migrated_sqlite.read_bytes())
    port = free_port()
    env, argv = procfile_web_command(port)
    env = {
        **os.environ,
        **env,
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": "gunicorn-test",
        "GITHUB_CLIENT_ID": "Iv1.log",
        "GITHUB_CLIENT_SECRET": "log-secret",
        "GATEKEEPER_BASE_URL": f"http://127.0.0.1:{port}",
    }
    server = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        callback = f"{base}/login/callback?code=SECRET-CODE-123&state=SECRET-STATE-456"
        assert requests.get(callback, timeout=5).status_code == 400
        requests.get(f"{base}/static/gatekeeper.css", headers={"Referer": callback}, timeout=5)
        requests.get(f"{base}/?page=kept", timeout=5)
        for spelt in ("//login/callback", "/login//callback"):
            odd = requests.get(
                f"{base}{spelt}?code=SECRET-CODE-789&state=SECRET-STATE-0",
                allow_redirects=False,
                timeout=5,
            )
            assert odd.status_code in (308, 400)  # redirected, or answered by the view
    finally:
        server.terminate()
        log, errors = server.communicate(timeout=30)
    assert "GET /login/callback HTTP/1.1" in log, log + errors
    assert f'"{base}/login/callback"' in log
    assert "GET /?page=kept HTTP/1.1" in log
    assert "GET //login/callback HTTP/1.1" in log
    assert "GET /login//callback HTTP/1.1" in log
    assert "SECRET-" not in log + errors


def access_log_atoms(environ: dict[str, str], headers: list[tuple[str, str]]) -> dict:
    """What RedactingLogger hands the access log format for one request."""
    logger = RedactingLogger(GunicornConfig())
    request = SimpleNamespace(headers=headers)
    response = SimpleNamespace(status="400 BAD REQUEST", headers=[], sent=10)
    base = {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.1"}
    return logger.atoms(response, request, {**base, **environ}, timedelta(seconds=1))


def test_the_logger_drops_every_form_of_the_callback_query():
    """The request line, %(q)s, the environ and header atoms: none holds the code or state."""
    callback = "https://gatekeeper.example/login/callback?code=c0de&state=st4te"
    atoms = access_log_atoms(
        {
            "PATH_INFO": "/login/callback",
            "RAW_URI": "/login/callback?code=c0de&state=st4te",
            "QUERY_STRING": "code=c0de&state=st4te",
            "HTTP_REFERER": callback,
        },
        [("REFERER", callback)],
    )
    assert atoms["r"] == "GET /login/callback HTTP/1.1"
    assert atoms["q"] == ""
    assert atoms["f"] == atoms["{referer}i"] == "https://gatekeeper.example/login/callback"
    assert not [name for name, value in atoms.items() if "c0de" in str(value)]


@pytest.mark.parametrize(
    "path",
    [
        "//login/callback",
        "/login//callback",
        "/login/callback/",
        "/LOGIN/Callback",
        "/login/%63allback",
        "/x/../login/./callback",
        "http://gatekeeper.example/login/callback",
    ],
)
def test_the_logger_drops_the_query_of_the_callback_however_it_is_spelt(path):
    """Each spelling of the callback's path that a router or redirect may take to the view is
    logged without its query, in the request line, %(q)s, %(U)s and the Referer."""
    callback = f"https://gatekeeper.example{path}?code=c0de&state=st4te"
    atoms = access_log_atoms(
        {
            "PATH_INFO": path,
            "RAW_URI": f"{path}?code=c0de&state=st4te",
            "QUERY_STRING": "code=c0de&state=st4te",
            "HTTP_REFERER": callback,
        },
        [("REFERER", callback)],
    )
    assert atoms["r"] == f"GET {path} HTTP/1.1"
    assert atoms["q"] == ""
    assert not [
        name for name, value in atoms.items() if "c0de" in str(value) or "st4te" in str(value)
    ]


def test_the_logger_keeps_other_queries_and_odd_referers():
    """Only the callback is redacted; a Referer that is not a URL is left alone or dropped."""
    atoms = access_log_atoms(
        {"PATH_INFO": "/", "RAW_URI": "/?page=2", "QUERY_STRING": "page=2"},
        [("REFERER", "https://example.com/?q=1")],
    )
    assert (atoms["r"], atoms["q"], atoms["{referer}i"]) == (
        "GET /?page=2 HTTP/1.1",
        "page=2",
        "https://example.com/?q=1",
    )
    assert without_secret_query("http://[::1/login/callback?code=x") == "-"
