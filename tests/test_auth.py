"""Sign-in with GitHub against the fake GitHub, sign-out, roles and safe redirects."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session

from fakegithub import FakeGitHub
from gatekeeper import create_app, db
from gatekeeper.auth import User, end_sessions, generation_of, roles, safe_next
from gatekeeper.config import normalise_database_url

CLIENT_ID, CLIENT_SECRET = "Iv1.dashboard", "oauth-secret"
BASE_URL = "http://gatekeeper.test"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """A fake GitHub that knows the App's OAuth client."""
    fake = FakeGitHub()
    fake.start()
    fake.add_oauth_app(CLIENT_ID, CLIENT_SECRET)
    yield fake
    fake.stop()


@pytest.fixture
def auth_app(tmp_path, migrated_sqlite, github: FakeGitHub) -> Iterator[Flask]:
    """The app signing people in through the fake GitHub (CSRF protection on, as in production)."""
    path = tmp_path / "auth.sqlite"
    shutil.copyfile(migrated_sqlite, path)
    app = create_app(
        {
            "database_url": f"sqlite:///{path}",
            "secret_key": "test",
            "github_url": github.url,
            "github_api_url": github.api_url,
            "github_client_id": CLIENT_ID,
            "github_client_secret": CLIENT_SECRET,
            "base_url": BASE_URL,
            "maintainers": "boss",
        }
    )
    yield app
    app.extensions["gatekeeper.engine"].dispose()


def follow_github(location: str) -> str:
    """Let the fake GitHub's authorize page answer the browser; return the callback path."""
    answer = requests.get(location, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    callback = urlsplit(answer.headers["Location"])
    assert f"{callback.scheme}://{callback.netloc}" == BASE_URL
    return f"{callback.path}?{callback.query}"


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no form with a CSRF token on the page"
    return match.group(1)


def test_login_redirects_to_github_authorize_with_our_callback(auth_app, github):
    """/login sends the browser to GitHub's authorize URL with the client id, callback and a state."""
    response = auth_app.test_client().get("/login")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{github.url}/login/oauth/authorize"
    )
    query = parse_qs(location.query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [f"{BASE_URL}/login/callback"]
    assert query["state"][0]


def test_full_sign_in_exchanges_the_code_reads_user_and_returns_to_next(auth_app, github):
    """Authorize, code exchange with the client secret, GET /user with the token, back to ``next``."""
    github.oauth_next_login = "Boss"
    client = auth_app.test_client()
    start = client.get("/login?next=/mentorships/new")
    done = client.get(follow_github(start.headers["Location"]))
    assert done.status_code == 302
    assert done.headers["Location"] == "/mentorships/new"
    with client.session_transaction() as session:
        assert session["login"] == "boss" and session["display"] == "Boss"
    exchanged = [c for c in github.calls if c.path == "/login/oauth/access_token"]
    assert exchanged and exchanged[0].json["client_secret"] == CLIENT_SECRET
    assert [c.auth for c in github.calls if c.path == "/user"] == ["oauth:Boss"]
    assert "Boss" in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_sign_in_never_redirects_off_site(auth_app, github, target):
    """A ``next`` pointing at another site is replaced by the overview."""
    github.oauth_next_login = "boss"
    client = auth_app.test_client()
    start = client.get("/login", query_string={"next": target})
    done = client.get(follow_github(start.headers["Location"]))
    assert done.headers["Location"] == "/"


@pytest.mark.parametrize(
    "target", ["/\r\nSet-Cookie: login=boss", "/me\n", "/\t/evil.example", "/mentorships/\x00"]
)
def test_a_next_with_control_characters_is_replaced_not_a_500(auth_app, github, target):
    """CR/LF cannot go in a Location header (it gave 500): the visitor lands on the overview."""
    github.oauth_next_login = "boss"
    client = auth_app.test_client()
    start = client.get("/login", query_string={"next": target})
    done = client.get(follow_github(start.headers["Location"]))
    assert done.status_code == 302
    assert done.headers["Location"] == "/"


def test_callback_with_a_forged_state_signs_nobody_in(auth_app, github):
    """A callback whose state this browser never received is refused."""
    github.oauth_next_login = "boss"
    client = auth_app.test_client()
    callback = follow_github(auth_app.test_client().get("/login").headers["Location"])
    response = client.get(callback)
    assert response.status_code == 400
    assert "did not confirm who you are" in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "login" not in session


def test_callback_with_a_used_code_signs_nobody_in(auth_app, github):
    """GitHub answers a reused code with an error: no sign-in, a page that says so."""
    github.oauth_next_login = "boss"
    client = auth_app.test_client()
    callback = follow_github(client.get("/login").headers["Location"])
    code = parse_qs(urlsplit(callback).query)["code"][0]
    state_two = parse_qs(urlsplit(client.get("/login").headers["Location"]).query)["state"][0]
    client.get(callback)  # the first use signs in
    client.get("/login")  # keep a state in this browser's session for the replay
    with client.session_transaction() as session:
        session.pop("login")
    replay = client.get(f"/login/callback?code={code}&state={state_two}")
    assert replay.status_code == 400


def test_github_refusing_the_user_shows_an_error(auth_app, github):
    """GitHub redirecting back with ``error`` (the user clicked Cancel) signs nobody in."""
    client = auth_app.test_client()
    state = parse_qs(urlsplit(client.get("/login").headers["Location"]).query)["state"][0]
    response = client.get(f"/login/callback?error=access_denied&state={state}")
    assert response.status_code == 400


def test_without_oauth_settings_the_login_page_explains(migrated_sqlite, tmp_path):
    """Where OAuth is not configured, /login says so and the site stays readable."""
    path = tmp_path / "plain.sqlite"
    shutil.copyfile(migrated_sqlite, path)
    app = create_app({"database_url": f"sqlite:///{path}", "secret_key": "x"})
    client = app.test_client()
    response = client.get("/login")
    assert response.status_code == 503
    assert "GITHUB_CLIENT_ID" in response.get_data(as_text=True)
    assert client.get("/login/callback?code=x&state=y").status_code == 404
    assert client.get("/").status_code == 200
    app.extensions["gatekeeper.engine"].dispose()


def test_logout_needs_the_csrf_token(auth_app):
    """Signing out is a POST with the token, so another site cannot sign you out."""
    client = auth_app.test_client()
    with client.session_transaction() as session:
        session["login"], session["display"] = "boss", "boss"
    assert client.post("/logout").status_code == 400
    token = csrf_token(client.get("/").get_data(as_text=True))
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    with client.session_transaction() as session:
        assert "login" not in session


def test_protected_page_sends_signed_out_visitors_to_sign_in_and_back(auth_app):
    """A signed-out GET of a protected page redirects to /login with the page as ``next``."""
    response = auth_app.test_client().get("/mentorships/new")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/mentorships/new"


def test_demo_sign_in_is_off_outside_the_demo(auth_app):
    """/login/demo exists only inside ``gatekeeper demo``."""
    client = auth_app.test_client()
    with client.session_transaction() as session:
        session["login"], session["display"] = "boss", "boss"
    token = csrf_token(client.get("/").get_data(as_text=True))
    response = client.post("/login/demo", data={"csrf_token": token, "login": "boss"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/mentorships/mpage", "/mentorships/mpage"),
        ("/pulls/python/cpython/7?x=1", "/pulls/python/cpython/7?x=1"),
        ("", None),
        (None, None),
        ("https://evil.example/", None),
        ("//evil.example", None),
        ("/\\evil.example", None),
        ("javascript:alert(1)", None),
        ("relative/path", None),
        ("/\r\nSet-Cookie: x=1", None),
        ("/\t/evil.example", None),
        ("/\x7f", None),
        ("/mentorships/Łukasz", "/mentorships/Łukasz"),
    ],
)
def test_safe_next(target, expected):
    """Only paths on this site are followed after sign-in."""
    assert safe_next(target) == expected


def test_roles_are_per_mentorship(auth_app):
    """Maintainer comes from settings; mentor and mentee from the mentorship; logins ignore case."""
    with auth_app.app_context():
        boss, mentor, mentee = (
            User("boss", "Boss"),
            User("colesbury", "colesbury"),
            User("mpage", "MPage"),
        )
        assert roles(boss, mentee="mpage", mentors=["colesbury"]) == {"maintainer"}
        assert roles(mentor, mentee="MPage", mentors=["Colesbury"]) == {"mentor"}
        assert roles(mentee, mentee="MPage", mentors=["colesbury"]) == {"mentee"}
        assert roles(User("x", "x"), mentee="mpage", mentors=["colesbury"]) == frozenset()
        assert roles(None, mentee="mpage", mentors=["colesbury"]) == frozenset()


# ---------------------------------------------------------------- signing out ends the session


class Browser:
    """One browser on the auth app: signs in through the fake GitHub, keeps its cookie jar."""

    def __init__(self, app: Flask, github: FakeGitHub) -> None:
        self.app, self.github = app, github
        self.client = app.test_client()

    def sign_in(self, login: str) -> None:
        self.github.oauth_next_login = login
        start = self.client.get("/login")
        assert self.client.get(follow_github(start.headers["Location"])).status_code == 302
        assert self.signed_in_as() == login

    def sign_out(self) -> None:
        token = csrf_token(self.client.get("/").get_data(as_text=True))
        assert self.client.post("/logout", data={"csrf_token": token}).status_code == 302

    def signed_in_as(self) -> str | None:
        """Who the header names: the site's own view of this cookie."""
        html = self.client.get("/").get_data(as_text=True)
        match = re.search(r'class="me">.*?<span class="name">([^<]+)</span>', html)
        return match.group(1) if match else None

    def saved_cookie(self) -> str:
        cookie = self.client.get_cookie("session")
        assert cookie is not None
        return cookie.value

    def restore(self, value: str) -> None:
        """Put back a session cookie saved earlier (or copied from another device)."""
        self.client.set_cookie("session", value)


@pytest.fixture
def browsers(auth_app, github) -> Callable[[], Browser]:
    """New browsers (each its own cookie jar) on the same site."""
    return lambda: Browser(auth_app, github)


def test_a_cookie_saved_before_signing_out_does_not_sign_in_afterwards(browsers):
    """The issue's case: copy the session cookie, sign out, put the copy back: signed out."""
    browser = browsers()
    browser.sign_in("boss")
    saved = browser.saved_cookie()
    browser.sign_out()
    assert browser.signed_in_as() is None
    browser.restore(saved)
    assert browser.signed_in_as() is None
    assert browser.client.get("/mentorships/new").status_code == 302  # sent to sign in


def test_signing_out_ends_the_session_on_every_device(browsers):
    """Two devices signed in as one person: signing out on one signs out the other too."""
    laptop, phone = browsers(), browsers()
    laptop.sign_in("boss")
    phone.sign_in("boss")
    laptop.sign_out()
    assert phone.signed_in_as() is None


def test_signing_out_touches_nobody_else(browsers):
    """Another person's session is not affected."""
    mine, theirs = browsers(), browsers()
    mine.sign_in("boss")
    theirs.sign_in("colesbury")
    mine.sign_out()
    assert theirs.signed_in_as() == "colesbury"


def test_signing_in_again_after_signing_out_works_and_ends_again(browsers):
    """A new sign-in carries the new generation; signing out again voids that one as well."""
    browser = browsers()
    browser.sign_in("boss")
    browser.sign_out()
    browser.sign_in("boss")
    second = browser.saved_cookie()
    assert browser.signed_in_as() == "boss"
    browser.sign_out()
    browser.restore(second)
    assert browser.signed_in_as() is None


def test_a_void_session_keeps_its_csrf_secret_so_a_form_goes_to_sign_in(browsers):
    """A form posted from a page whose session ended elsewhere is sent to sign in, not a 400."""
    page, elsewhere = browsers(), browsers()
    page.sign_in("boss")
    token = csrf_token(page.client.get("/mentorships/new").get_data(as_text=True))
    elsewhere.sign_in("boss")
    elsewhere.sign_out()
    response = page.client.post(
        "/mentorships/new",
        data={"csrf_token": token, "mentee": "mpage", "mentors": "colesbury"},
        headers={"Referer": "http://localhost/mentorships/new"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/mentorships/new"


def test_a_session_from_before_generations_signs_in_until_sign_out(auth_app):
    """Cookies issued before this change carry no generation: valid until that person signs out."""
    client = auth_app.test_client()
    with client.session_transaction() as session:
        session["login"], session["display"] = "boss", "boss"
    assert "Sign out" in client.get("/").get_data(as_text=True)
    token = csrf_token(client.get("/").get_data(as_text=True))
    saved = client.get_cookie("session")
    assert saved is not None
    client.post("/logout", data={"csrf_token": token})
    client.set_cookie("session", saved.value)
    assert "Sign out" not in client.get("/").get_data(as_text=True)


def test_concurrent_sign_outs_of_one_login_both_count(postgres_server):
    """Two first sign-outs of one login race to insert its row: the loser bumps the winner's.

    PostgreSQL only: SQLite lets one writer at a time, so there the race cannot happen.
    """
    url = normalise_database_url(postgres_server.empty_database())
    db.upgrade(url)
    engine = sa.create_engine(url)
    try:
        with Session(engine) as racing:

            def other_device_signs_out(*_: object) -> None:
                # After this sign-out found no row to bump and before its insert is flushed.
                with Session(engine) as other:
                    end_sessions(other, login="boss")

            sa.event.listen(racing, "before_flush", other_device_signs_out, once=True)
            end_sessions(racing, login="boss")
        with Session(engine) as session:
            assert generation_of(session, login="boss") == 2
    finally:
        engine.dispose()


def test_signing_out_of_a_session_ended_elsewhere_only_clears_it(browsers, auth_app):
    """The sign-out button on a page whose session already ended bumps the generation no more."""
    page, elsewhere = browsers(), browsers()
    page.sign_in("boss")
    token = csrf_token(page.client.get("/").get_data(as_text=True))
    elsewhere.sign_in("boss")
    elsewhere.sign_out()
    assert page.client.post("/logout", data={"csrf_token": token}).status_code == 302
    with Session(auth_app.extensions["gatekeeper.engine"]) as session:
        assert generation_of(session, login="boss") == 1
