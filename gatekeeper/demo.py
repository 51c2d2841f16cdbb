"""``gatekeeper demo``: the dashboard on a separate SQLite file holding a realistic sample month.

The sample is built through the same lifecycle, store and gate functions the service uses,
so what the demo shows is what Gatekeeper would really show. It never opens the configured
database, and it never talks to GitHub.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import click
from flask import Flask
from sqlmodel import Session

from gatekeeper import approvals, create_app, db, decisions, outbox, people, votes
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.auth import DEMO_USERS
from gatekeeper.config import Settings
from gatekeeper.events import Person, PullInfo, ReviewInfo
from gatekeeper.extensions import settings_of
from gatekeeper.gate import ApprovalSource
from gatekeeper.models import EndReason, PullRequest, utcnow

MAINTAINER = "alex-maintainer"
MENTEE, MENTORS = "mira-k", ("tomas-r", "june-h")
FORMER_MENTEE = "sam-o"
PEOPLE = {
    MAINTAINER: "maintainer: starts, extends and ends mentorships",
    "tomas-r": f"mentor of {MENTEE}",
    "june-h": f"mentor of {MENTEE}",
    MENTEE: "new core developer, in their first month",
    "casual-visitor": "anyone else: can read, cannot change",
}
DEFAULT_DATABASE_SHOWN = (
    "$XDG_CACHE_HOME/gatekeeper/demo.sqlite, else ~/.cache/gatekeeper/demo.sqlite"
)


def default_database() -> Path:
    """The demo's file, its user's own: a fixed name in the shared temporary folder was
    recreated under whoever ran the demo last, and another user could put a link there."""
    cache = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(cache) / "gatekeeper" / "demo.sqlite"


def demo_app(database: Path, *, now: datetime | None = None) -> Flask:
    """A fresh demo database at ``database``, filled, and an app serving it (GitHub switched off)."""
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    database.unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    db.upgrade(url)
    app = create_app(
        {
            "database_url": url,
            "secret_key": secrets.token_hex(16),
            # Whatever the environment says, the demo never reaches a real GitHub.
            "github_app_id": None,
            "github_private_key": None,
            "github_webhook_secret": None,
            "github_client_id": None,
            "github_client_secret": None,
            "maintainers": MAINTAINER,
            DEMO_USERS: PEOPLE,
        }
    )
    with app.app_context(), Session(db.engine(), expire_on_commit=False) as session:
        populate(session, settings=settings_of(app), now=now or utcnow())
    return app


@click.command(
    "demo",
    epilog="\b\nExamples:\n  gatekeeper demo\n  gatekeeper demo --port 8080\n"
    "  gatekeeper demo --database /tmp/my-demo.sqlite",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--database",
    type=click.Path(dir_okay=False, path_type=Path),
    default=default_database,
    show_default=DEFAULT_DATABASE_SHOWN,
    help="The demo's own SQLite file, recreated on each run.",
)
def demo_command(host: str, port: int, database: Path) -> None:
    """Serve the dashboard on a sample month (a separate database; nothing real is touched)."""
    app = demo_app(database)
    click.echo(f"Gatekeeper demo on http://{host}:{port}/ (sample data in {database})")
    click.echo("Sign in as any of: " + ", ".join(PEOPLE))
    app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)


DEMO_INSTALLATION = 1


def populate(
    session: Session,
    *,
    settings: Settings,
    now: datetime,
    account_id: Callable[[str], int] = people.offline_id,
) -> None:
    """One active mentee with two mentors and pull requests in every gate state; one ended.

    ``account_id`` gives each sample person's GitHub id: offline ones for the demo, which
    never asks GitHub; a test whose (fake) GitHub signs them in gives that GitHub's."""
    for login in [*PEOPLE, FORMER_MENTEE]:  # their accounts, as if GitHub had named them
        people.learn(
            session,
            Person(account_id(login), login, login),
            at=now - timedelta(days=90),
            maintainers=settings.maintainers,
        )
    # Public, as their events would say: a scope naming a repository never described is
    # hidden from visitors (it might be private).
    for name in ("python/cpython", "python/devguide", "python/pyperformance"):
        store.remember_installation(
            session, repo=name, installation_id=DEMO_INSTALLATION, private=False
        )
    _former_mentorship(session, settings=settings, now=now, account_id=account_id)
    start = now - timedelta(days=11, hours=3)
    lifecycle.promote(
        session,
        mentee=MENTEE,
        mentors=list(MENTORS),
        actor=MAINTAINER,
        now=start,
        repositories=["python/cpython", "python/devguide"],
        vote=votes.Vote(
            votes_for=31,
            votes_against=2,
            opened=(start - timedelta(days=16)).date(),
            closed=(start - timedelta(days=9)).date(),
            url="https://discuss.python.org/t/vote-to-promote-mira-k/1",
        ),
        note="Focus areas: asyncio and the docs.",
    )
    session.commit()
    sample = _Sample(session, settings, author=MENTEE, account_id=account_id)
    day = lambda n, hours=0: start + timedelta(days=n, hours=hours)  # noqa: E731

    merged = sample.open(101, "gh-118: Fix a reference leak in list.sort()", at=day(1))
    sample.review(merged, "tomas-r", at=day(1, 20))
    sample.merge(merged, at=day(2))

    sample.button(
        sample.open(104, "Docs: clarify TaskGroup cancellation", at=day(3)), "june-h", at=day(3, 5)
    )

    stale = sample.open(107, "Speed up str.join() for short lists", at=day(8))
    sample.review(stale, "june-h", at=day(8, 6))
    sample.push(stale, at=day(9))

    sample.merge(sample.open(109, "Fix a typo in What's New", at=day(10)), at=day(10, 1))
    sample.open(110, "gh-121: Test zipfile with empty members", at=now - timedelta(hours=5))
    sample.open(12, "Add a benchmark for asyncio.gather", at=day(6), repo="python/pyperformance")
    session.commit()


def _former_mentorship(
    session: Session, *, settings: Settings, now: datetime, account_id: Callable[[str], int]
) -> None:
    """A mentee who graduated early, whose last open pull request was released by the end."""
    start = now - timedelta(days=75)
    lifecycle.promote(
        session,
        mentee=FORMER_MENTEE,
        mentors=["june-h"],
        actor=MAINTAINER,
        now=start,
        vote=votes.Vote(
            24, 1, (start - timedelta(days=10)).date(), (start - timedelta(days=3)).date()
        ),
    )
    session.commit()
    sample = _Sample(session, settings, author=FORMER_MENTEE, account_id=account_id)
    first = sample.open(
        88, "Fix the grammar of the tutorial's first page", at=start + timedelta(days=2)
    )
    sample.review(first, "june-h", at=start + timedelta(days=2, hours=4))
    sample.merge(first, at=start + timedelta(days=2, hours=5))
    sample.open(90, "Document the -X importtime option better", at=start + timedelta(days=19))
    ended = start + timedelta(days=21)
    lifecycle.end(
        session,
        mentee=FORMER_MENTEE,
        reason=EndReason.GRADUATED,
        note="Ready early: careful reviews throughout.",
        actor=MAINTAINER,
        now=ended,
    )
    for pull in store.open_pulls_of(
        session, author=FORMER_MENTEE, author_id=account_id(FORMER_MENTEE)
    ):
        touched = decisions.reevaluate(session, pull, settings=settings, now=ended).touched
        outbox.waive(session, touched)  # samples: no GitHub holds their commits
    session.commit()


class _Sample:
    """Pull requests and reviews for one author, stored as if GitHub had reported them."""

    _review_ids = itertools.count(900001)

    def __init__(
        self,
        session: Session,
        settings: Settings,
        *,
        author: str,
        account_id: Callable[[str], int],
    ) -> None:
        self.session, self.settings, self.author = session, settings, author
        self.account_id = account_id

    def open(
        self, number: int, title: str, *, at: datetime, repo: str = "python/cpython"
    ) -> PullRequest:
        """A pull request opened at ``at`` and gated then."""
        pull = store.upsert_pull(self.session, info=self._info(repo, number, title, at=at), now=at)
        return self._evaluate(pull, at)

    def push(self, pull: PullRequest, *, at: datetime) -> None:
        """New commits: a new head sha."""
        info = self._info(pull.repo, pull.number, pull.title, at=at, sha_salt=at.isoformat())
        pushed, left = store.record_pull(self.session, info=info, now=at)
        self._evaluate(pushed, at)
        outbox.waive(self.session, {(pushed.repo, left)} if left is not None else set())

    def merge(self, pull: PullRequest, *, at: datetime) -> None:
        """Merged by its author at ``at`` (a bypass if it was still waiting)."""
        info = self._info(pull.repo, pull.number, pull.title, at=at, sha=pull.head_sha, merged=True)
        self._evaluate(store.upsert_pull(self.session, info=info, now=at), at)

    def review(self, pull: PullRequest, reviewer: str, *, at: datetime) -> None:
        """An approving review on the current head."""
        info = ReviewInfo(
            next(self._review_ids),
            reviewer,
            reviewer,
            "APPROVED",
            pull.head_sha,
            at,
            reviewer_id=self.account_id(reviewer),
        )
        store.upsert_review(self.session, pull=pull, info=info, now=at)
        self.session.flush()
        self._evaluate(pull, at)
        approvals.audit_approval(
            self.session, pull, login=reviewer, source=ApprovalSource.REVIEW, now=at
        )

    def button(self, pull: PullRequest, mentor: str, *, at: datetime) -> None:
        """An approval with the check run's button."""
        _refusal, touched = approvals.approve(
            self.session,
            pull,
            login=mentor,
            user_id=self.account_id(mentor),
            source=ApprovalSource.BUTTON,
            settings=self.settings,
            now=at,
        )
        outbox.waive(self.session, touched)  # samples: no GitHub holds their commits

    def _evaluate(self, pull: PullRequest, at: datetime) -> PullRequest:
        touched = decisions.reevaluate(self.session, pull, settings=self.settings, now=at).touched
        outbox.waive(self.session, touched)  # samples: no GitHub holds their commits
        return pull

    def _info(
        self,
        repo: str,
        number: int,
        title: str,
        *,
        at: datetime,
        sha: str | None = None,
        sha_salt: str = "",
        merged: bool = False,
    ) -> PullInfo:
        head = sha or hashlib.sha1(f"{repo}#{number}{sha_salt}".encode()).hexdigest()
        return PullInfo(
            repo=repo,
            repo_display=repo,
            number=number,
            author=self.author,
            author_display=self.author,
            title=title,
            url=f"https://github.com/{repo}/pull/{number}",
            head_sha=head,
            base_ref="main",
            draft=False,
            state="closed" if merged else "open",
            merged=merged,
            merged_by=self.author if merged else None,
            merged_at=at if merged else None,
            updated_at=at,
            author_id=self.account_id(self.author),
            merged_by_id=self.account_id(self.author) if merged else None,
            merged_by_display=self.author if merged else None,
        )
