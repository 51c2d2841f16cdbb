"""``gatekeeper demo``: a sample month on its own SQLite file, built through the real code paths."""

from __future__ import annotations

import re
import stat

import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from gatekeeper import cli as gatekeeper_cli
from gatekeeper import db, demo
from gatekeeper.models import Mentorship, PullRequest


@pytest.fixture
def demo_site(tmp_path):
    """The demo app on a file in the test's directory."""
    app = demo.demo_app(tmp_path / "demo.sqlite")
    yield app
    app.extensions["gatekeeper.engine"].dispose()


def test_sample_month_has_every_gate_state(demo_site):
    """One active mentee with two mentors and PRs waiting, approved, bypassed and not gated;
    the graduated mentee's last pull request still waited when the gate lifted."""
    with Session(demo_site.extensions["gatekeeper.engine"]) as session:
        gates = {(p.author, p.number): p.gate for p in session.exec(select(PullRequest))}
        mentorships = {m.mentee: m for m in session.exec(select(Mentorship))}
    assert set(gates.values()) == {"waiting", "approved", "not_required", "bypassed", "lifted"}
    assert mentorships[demo.MENTEE].ended_at is None
    assert mentorships[demo.FORMER_MENTEE].end_reason == "graduated"
    document = demo_site.test_client().get(f"/api/mentorships/{demo.MENTEE}").get_json()
    assert document["state"] == "active" and document["mentors"] == list(demo.MENTORS)


def test_demo_pages_render_populated(demo_site):
    """The overview, both mentees and a stale approval's explanation are all there."""
    client = demo_site.test_client()
    overview = client.get("/").get_data(as_text=True)
    assert demo.MENTEE in overview and demo.FORMER_MENTEE in overview
    assert "Day 12 of 30" in overview or "Day 12 of 31" in overview or "Day 12 of 28" in overview
    assert "given on an older commit" in client.get("/pulls/python/cpython/107").get_data(
        as_text=True
    )
    assert "Merged without approval" in client.get(f"/mentorships/{demo.MENTEE}").get_data(
        as_text=True
    )


def test_demo_sign_in_lets_each_sample_person_act(demo_site):
    """The demo's people sign in without GitHub; a mentor can approve the waiting PR."""
    client = demo_site.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    assert all(login in page for login in demo.PEOPLE)
    signed = client.post(
        "/login/demo", data={"csrf_token": token, "login": "tomas-r", "next": "/me"}
    )
    assert signed.headers["Location"] == "/me"
    assert "wait for you" in client.get("/me").get_data(as_text=True)
    # Signing in starts a fresh session, so the next form needs the new token.
    token = re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', client.get("/").get_data(as_text=True)
    ).group(1)
    assert (
        client.post("/login/demo", data={"csrf_token": token, "login": "intruder"}).status_code
        == 404
    )


def test_demo_ignores_github_settings_from_the_environment(tmp_path, monkeypatch):
    """Even with a real App configured in the shell, the demo never talks to GitHub."""
    monkeypatch.setenv("GITHUB_APP_ID", "1")
    monkeypatch.setenv("GITHUB_PRIVATE_KEY", "not-a-key")
    monkeypatch.setenv("GITHUB_CLIENT_ID", "id")
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", "secret")
    app = demo.demo_app(tmp_path / "demo.sqlite")
    assert app.extensions["gatekeeper.github"] is None
    assert app.test_client().get("/login").status_code == 200  # the demo's chooser, not GitHub
    app.extensions["gatekeeper.engine"].dispose()


def test_demo_command_never_touches_the_real_database(tmp_path, monkeypatch):
    """``gatekeeper demo`` builds its own file and leaves DATABASE_URL's database alone."""
    real = tmp_path / "real.sqlite"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{real}")
    served = []
    monkeypatch.setattr("flask.Flask.run", lambda app, **kwargs: served.append((app, kwargs)))
    result = CliRunner().invoke(
        gatekeeper_cli.cli,
        ["demo", "--port", "5099", "--database", str(tmp_path / "demo.sqlite")],
    )  # no ScriptInfo given: the command builds the app from the environment, as main() does
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:5099/" in result.output
    assert not real.exists()
    app, kwargs = served[0]
    assert kwargs["port"] == 5099
    with app.app_context():
        assert db.engine().url.database == str(tmp_path / "demo.sqlite")
    app.extensions["gatekeeper.engine"].dispose()


@pytest.mark.parametrize("xdg", [True, False], ids=["xdg-cache-home", "home-cache"])
def test_the_demo_database_is_the_users_own_by_default(tmp_path, monkeypatch, xdg):
    """Without --database the demo's file is in the user's cache folder ($XDG_CACHE_HOME,
    else ~/.cache), made 0700 if new: never a fixed path in the shared temporary folder that
    every user's demo recreated."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    if xdg:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    else:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    served = []
    monkeypatch.setattr("flask.Flask.run", lambda app, **kwargs: served.append(app))
    result = CliRunner().invoke(gatekeeper_cli.cli, ["demo", "--port", "5099"])
    assert result.exit_code == 0, result.output
    expected = (tmp_path / "xdg" if xdg else home / ".cache") / "gatekeeper" / "demo.sqlite"
    assert f"(sample data in {expected})" in result.output
    assert expected.stat().st_size > 0
    assert stat.S_IMODE(expected.parent.stat().st_mode) == 0o700
    [app] = served
    app.extensions["gatekeeper.engine"].dispose()
