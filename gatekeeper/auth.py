"""Sign-in with GitHub, the signed-in user on ``g.user``, and the roles that allow changes."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth, OAuthError
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlmodel import Session, col

from gatekeeper import db, people
from gatekeeper.config import Settings
from gatekeeper.events import LOGIN, Person
from gatekeeper.extensions import settings_of
from gatekeeper.forms import ActionForm
from gatekeeper.models import SessionGeneration, utcnow

bp = Blueprint("auth", __name__)
F = TypeVar("F", bound=Callable[..., Any])

# Only set in-process by ``gatekeeper demo`` (upper-case keys never come from the environment).
DEMO_USERS = "GATEKEEPER_DEMO_USERS"
# What a sign-in puts in the session; a void session loses these and keeps the rest.
SIGNED_IN_KEYS = ("login", "display", "generation", "user_id")


@dataclasses.dataclass(frozen=True)
class User:
    """Whoever signed in: the canonical lowercase login, the form GitHub displays, and the
    account's id (None in a session from before ids were kept: it approves nothing)."""

    login: str
    display: str
    id: int | None = None


def init_app(app: Flask, settings: Settings) -> None:
    """Register GitHub's OAuth client (when configured) and load the user before each request."""
    registry = OAuth(app)
    if settings.oauth_configured:
        registry.register(
            "github",
            client_id=settings.github_client_id,
            client_secret=settings.github_client_secret,
            authorize_url=f"{settings.github_url}/login/oauth/authorize",
            access_token_url=f"{settings.github_url}/login/oauth/access_token",
            api_base_url=settings.github_api_url + "/",
            # GitHub takes the secret in the form body; no scope: we only read the public login.
            client_kwargs={"token_endpoint_auth_method": "client_secret_post", "timeout": 10},
        )
    app.extensions["gatekeeper.oauth"] = registry
    app.before_request(load_user)
    app.context_processor(lambda: {"user": g.get("user"), "sign_in_offered": sign_in_offered()})


def sign_in_offered() -> bool:
    """Whether this server lets anyone sign in: GitHub's OAuth client, or the demo's people."""
    return bool(current_app.config.get(DEMO_USERS)) or _client() is not None


def load_user() -> None:
    """Put the signed-in user (or None) on ``g.user``; a session signed out since is void."""
    login, display = session.get("login"), session.get("display")
    # Static files need no user; skipping them spares a query for each stylesheet and script.
    if login and request.endpoint != "static" and _signed_out_since(login):
        # The CSRF secret stays, so a form posted from this page is sent to sign in again.
        for key in SIGNED_IN_KEYS:
            session.pop(key, None)
        login = None
    user_id = session.get("user_id")
    g.user = (
        User(login, display or login, user_id if isinstance(user_id, int) else None)
        if login
        else None
    )


def _signed_out_since(login: str) -> bool:
    """Whether ``login`` signed out (anywhere) after this request's session was issued."""
    # Sessions from before generations existed carry none: they are generation 0.
    issued = session.get("generation", 0)
    return bool(issued != generation_of(db.get_session(), login=login))


def generation_of(db_session: Session, *, login: str) -> int:
    """How many times ``login`` signed out (0 for someone who never did)."""
    row = db_session.get(SessionGeneration, login)
    return row.generation if row is not None else 0


def end_sessions(db_session: Session, *, login: str) -> None:
    """Void every session issued to ``login`` so far, on every device, and commit."""
    bump = (
        sa.update(SessionGeneration)
        .where(col(SessionGeneration.login) == login)
        .values(generation=SessionGeneration.generation + 1)
    )

    def void(work: Session) -> None:
        if work.exec(bump).rowcount == 0:
            # Should a sign-out elsewhere insert it first, the retry bumps theirs.
            work.add(SessionGeneration(login=login, generation=1))

    db.writing(db_session, void)


def is_maintainer(user: User | None) -> bool:
    """Maintainers (GATEKEEPER_MAINTAINERS) start, extend and end mentorships: the accounts
    that held those logins when Gatekeeper learned them (see ``people.is_maintainer``)."""
    if user is None:
        return False
    asked = g.setdefault("gatekeeper_maintainer", {})
    if (user.id, user.login) not in asked:
        asked[(user.id, user.login)] = people.is_maintainer(
            db.get_session(),
            user_id=user.id,
            login=user.login,
            maintainers=settings_of(current_app).maintainers,
        )
    return bool(asked[(user.id, user.login)])


def roles(user: User | None, *, mentee: str, mentors: Iterable[str]) -> frozenset[str]:
    """The viewer's roles on one mentorship: maintainer, mentor, mentee (or none: read-only)."""
    if user is None:
        return frozenset()
    found = set()
    if is_maintainer(user):
        found.add("maintainer")
    if user.login in {login.lower() for login in mentors}:
        found.add("mentor")
    if user.login == mentee.lower():
        found.add("mentee")
    return frozenset(found)


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    # CR or LF cannot go in a Location header (a 500), and browsers drop tabs and newlines
    # from a URL, so "/\t/evil.example" would become "//evil.example".
    if any(char < " " or char == "\x7f" for char in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def login_required(view: F) -> F:
    """Send a signed-out visitor to sign in, then back to the page they came from."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            if request.method == "GET":
                back = request.full_path.rstrip("?")
            else:
                # A form posted while signed out: come back to the page that held it.
                referrer = urlsplit(request.referrer or "")
                same_site = referrer.netloc in ("", request.host)
                back = (referrer.path or "/") if same_site else "/"
            return redirect(url_for("auth.login", next=safe_next(back) or "/"))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _client() -> Any:
    return current_app.extensions["gatekeeper.oauth"].create_client("github")


@bp.get("/login")
def login() -> ResponseReturnValue:
    """Start signing in with GitHub (or explain why it is not possible here)."""
    target = safe_next(request.args.get("next")) or "/"
    if current_app.config.get(DEMO_USERS):
        return render_template(
            "login.html", demo_users=current_app.config[DEMO_USERS], next=target, form=ActionForm()
        )
    client = _client()
    if client is None:
        return render_template("login.html", not_configured=True), 503
    session["next"] = target
    callback = settings_of(current_app).base_url + url_for("auth.callback")
    return client.authorize_redirect(callback)


@bp.get("/login/callback")
def callback() -> ResponseReturnValue:
    """GitHub sends the browser back here: trade the code for a token and read /user."""
    client = _client()
    if client is None:
        abort(404)
    try:
        token = client.authorize_access_token()
        response = client.get("user", token=token)
        response.raise_for_status()
        account = _account(response.json())
    except (OAuthError, AuthlibBaseError, requests.RequestException, ValueError) as error:
        # A callback without its code (a user who pressed "Cancel", a crafted URL) is
        # Authlib's OAuth2Error, not the client's OAuthError: both are a failed sign-in.
        current_app.logger.warning("sign-in failed: %s", type(error).__name__)
        return render_template("login.html", failed=True), 400
    target = safe_next(session.pop("next", None)) or "/"
    _sign_in(account)
    return redirect(target)


def _account(profile: Any) -> Person:
    """The account GitHub's ``/user`` names (a ValueError if it does not say it plainly)."""
    login = profile.get("login") if isinstance(profile, dict) else None
    user_id = profile.get("id") if isinstance(profile, dict) else None
    if not isinstance(login, str) or not LOGIN.fullmatch(login):
        raise ValueError("GitHub's /user has no valid login")
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
        raise ValueError("GitHub's /user has no valid id")
    return Person(user_id, login.lower(), login)


@bp.post("/login/demo")
def demo_login() -> ResponseReturnValue:
    """In the demo only: sign in as one of the sample people, without GitHub."""
    allowed = current_app.config.get(DEMO_USERS) or ()
    form = ActionForm()
    login = request.form.get("login", "")
    if not allowed or login not in allowed or not form.validate_on_submit():
        abort(404)
    _sign_in(Person(people.offline_id(login), login.lower(), login))
    return redirect(safe_next(request.form.get("next")) or "/")


def _sign_in(account: Person) -> None:
    """Record who signed in (learning their id, following a rename: ``people.learn``)."""
    db_session, maintainers = db.get_session(), settings_of(current_app).maintainers
    db.writing(
        db_session, lambda unit: people.learn(unit, account, at=utcnow(), maintainers=maintainers)
    )
    # A fresh session on sign-in, so nothing set before (by anyone) carries over.
    session.clear()
    session["login"], session["display"] = account.login, account.display
    session["user_id"] = account.id
    session["generation"] = generation_of(db_session, login=account.login)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Sign out everywhere (a POST with the CSRF token, so no other site can sign you out)."""
    if g.user is not None:
        end_sessions(db.get_session(), login=g.user.login)
    session.clear()
    return redirect(url_for("dashboard.overview"))
