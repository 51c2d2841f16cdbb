"""The dashboard as a visitor's browser sees it through Flask's test client, and helpers that
seed its database as GitHub's events would: shared by the dashboard's test modules."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import pytest
from flask import Flask
from sqlmodel import Session, select

from fakegithub import default_user_id
from gate_support import promote
from gatekeeper import create_app, db, decisions, outbox, people, settings_of
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.events import Person, PullInfo, ReviewInfo
from gatekeeper.models import AuditEvent, Mentorship, PullRequest, utcnow

SHA, NEW_SHA = "a" * 40, "b" * 40
REPO = "python/cpython"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Site:
    """The dashboard with one visitor's browser (cookies kept) and helpers to seed its database."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client()
        self.settings = settings_of(app)

    def session(self) -> Session:
        return Session(self.app.extensions["gatekeeper.engine"], expire_on_commit=False)

    # -- visitors

    def sign_in(self, login: str, *, user_id: int | None = None) -> None:
        """Be signed in as ``login``, the account ``user_id`` (by default the one GitHub's
        payloads give that login): what the OAuth callback records and leaves in the session."""
        account = Person(user_id or default_user_id(login), login.lower(), login)
        maintainers = self.settings.maintainers
        with self.session() as session:  # as the sign-in does: a write that waits its turn
            db.writing(
                session,
                lambda unit: people.learn(unit, account, at=utcnow(), maintainers=maintainers),
            )
        with self.client.session_transaction() as session:
            session["login"], session["display"] = account.login, account.display
            session["user_id"] = account.id

    def sign_out(self) -> None:
        """Lose the sign-in but keep the CSRF secret, like a session that timed out mid-form."""
        with self.client.session_transaction() as session:
            session.pop("login", None)
            session.pop("display", None)

    def token(self, path: str = "/") -> str:
        """The CSRF token from a form on ``path``."""
        match = TOKEN.search(self.client.get(path).get_data(as_text=True))
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post(self, path: str, data: dict[str, str] | None = None, *, token: str | None = None):
        """Submit a form; the token comes from the overview unless given."""
        fields = {"csrf_token": token if token is not None else self.token(), **(data or {})}
        return self.client.post(path, data=fields)

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)

    # -- rows

    def promote(self, mentee: str = "mpage", mentors=("colesbury", "vstinner"), **options):
        """A mentorship a maintainer started, active since yesterday (unless ``start`` says otherwise)."""
        return promote(self.app, mentee, mentors, actor="boss", **options)

    def pull(
        self,
        number: int = 7,
        *,
        author: str = "mpage",
        head_sha: str = SHA,
        repo: str = REPO,
        merged: bool = False,
        state: str = "open",
        title: str = "A change",
        at: datetime | None = None,
    ) -> PullRequest:
        """A pull request as GitHub reported it, gated as the service would."""
        at = at or utcnow()
        info = PullInfo(
            repo=repo,
            repo_display=repo,
            number=number,
            author=author,
            author_display=author,
            title=title,
            url=f"https://github.com/{repo}/pull/{number}",
            head_sha=head_sha,
            base_ref="main",
            draft=False,
            state="closed" if merged else state,
            merged=merged,
            merged_by=author if merged else None,
            merged_at=at if merged else None,
            updated_at=at,
            author_id=default_user_id(author),
            merged_by_id=default_user_id(author) if merged else None,
            merged_by_display=author if merged else None,
        )
        with self.session() as session:
            pull, left = store.record_pull(session, info=info, now=at)
            touched = decisions.reevaluate(session, pull, settings=self.settings, now=at).touched
            # Stored as a sample: no check is posted for it.
            outbox.waive(session, touched | {(pull.repo, left or pull.head_sha)})
            session.commit()
            return pull

    def repository(self, name: str, *, private: bool) -> None:
        """A repository as an event from it describes it, its visibility included."""
        with self.session() as session:
            store.remember_installation(session, repo=name, installation_id=1, private=private)
            session.commit()

    def review(
        self, number: int, reviewer: str, *, commit_id: str = SHA, state: str = "APPROVED", id=1
    ):
        """A review on GitHub, stored and evaluated."""
        with self.session() as session:
            pull = store.find_pull(session, repo=REPO, number=number)
            assert pull is not None
            info = ReviewInfo(
                id, reviewer, reviewer, state, commit_id, utcnow(), default_user_id(reviewer)
            )
            store.upsert_review(session, pull=pull, info=info, now=utcnow())
            session.flush()
            decided = decisions.reevaluate(session, pull, settings=self.settings, now=utcnow())
            outbox.waive(session, decided.touched)  # stored as a sample: no check is posted
            session.commit()

    def mentorship(self, mentee: str = "mpage") -> Mentorship:
        with self.session() as session:
            return lifecycle.latest_mentorship(session, mentee=mentee)

    def stored_pull(self, number: int = 7) -> PullRequest:
        with self.session() as session:
            found = store.find_pull(session, repo=REPO, number=number)
            assert found is not None
            return found

    def audit(self) -> list[tuple[str, str]]:
        with self.session() as session:
            events = session.exec(select(AuditEvent).order_by(AuditEvent.id))
            return [(e.actor, e.kind) for e in events]


@pytest.fixture
def site(app: Flask, database_url: str) -> Iterator[Site]:
    """The dashboard on SQLite and PostgreSQL, CSRF on, ``boss`` the maintainer."""
    web = create_app({"database_url": database_url, "secret_key": "test", "maintainers": "boss"})
    yield Site(web)
    web.extensions["gatekeeper.engine"].dispose()
