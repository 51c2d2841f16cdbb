"""The dashboard against hostile input: headers on every answer, link schemes, text lengths,
huge numbers in URLs, and OAuth secrets kept out of gunicorn's access log."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlmodel import Session, SQLModel

from gate_support import promote
from gatekeeper import create_app
from gatekeeper import mentorships as lifecycle
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
