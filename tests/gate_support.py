"""Fixtures and helpers for the gate's tests: the app wired to a fake GitHub on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from database_support import migrate
from fakegithub import FakeGitHub
from gatekeeper import create_app, db, github_of, outbox
from gatekeeper import mentorships as lifecycle
from gatekeeper.models import AuditEvent, CommitCheck, Delivery, Job, PullRequest, utcnow
from gatekeeper.worker import Tally, Worker
from webhook_events import Events, deliver

SECRET = "webhook-secret"
REPO = "python/cpython"
INSTALLATION = 1
BASE_URL = "https://gatekeeper.example"


@pytest.fixture
def github_fake() -> Iterator[FakeGitHub]:
    """A fake GitHub with the App installed on python/cpython; no invalid request may reach it."""
    fake = FakeGitHub()
    fake.start()
    fake.add_installation(INSTALLATION, account="python")
    fake.add_repo(REPO, installation_id=INSTALLATION)
    yield fake
    fake.stop()
    assert fake.violations == []


def app_for(fake: FakeGitHub, database_url: str, **overrides):
    """The app configured against ``fake``, its schema migrated (see ``database_support``)."""
    config = {
        "database_url": database_url,
        "secret_key": "test",
        "github_app_id": fake.app_id,
        "github_private_key": fake.private_key_pem,
        "github_api_url": fake.api_url,
        "github_url": fake.url,
        "github_webhook_secret": SECRET,
        "github_app_slug": fake.app_slug,
        "base_url": BASE_URL,
        "github_backoff": 0.0,
        # PyGithub spaces writes a second apart for github.com; the fake needs no pacing.
        "github_seconds_between_requests": 0.0,
        "github_seconds_between_writes": 0.0,
        "TESTING": True,
    }
    config.update(overrides)
    app = create_app(config)
    migrate(app.extensions["gatekeeper.settings"].database_url)
    return app


@pytest.fixture
def gate_app(database_url, github_fake):
    """The app on an empty database (SQLite and PostgreSQL), talking to the fake GitHub."""
    app = app_for(github_fake, database_url)
    yield app
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


def promote(app, mentee="mpage", mentors=("colesbury", "vstinner"), *, actor, **options):
    """A mentorship started by ``actor``, active since yesterday unless ``start`` says otherwise."""
    now = options.pop("now", None) or utcnow()
    start = options.pop("start", now - timedelta(days=1))
    # As the app writes: a unit of work that waits its turn (a live worker may be writing).
    with Session(app.extensions["gatekeeper.engine"], expire_on_commit=False) as session:
        return db.writing(
            session,
            lambda unit: lifecycle.promote(
                unit,
                mentee=mentee,
                mentors=list(mentors),
                actor=actor,
                now=now,
                start=start,
                **options,
            ),
        )


class World:
    """A mentee, their mentors and their pull requests, on the fake GitHub and in the app."""

    def __init__(self, app, fake: FakeGitHub) -> None:
        self.app, self.fake = app, fake
        self.client = app.test_client()
        self.events = Events(repo=REPO, installation_id=INSTALLATION)
        self._clock = 0
        self._epoch = utcnow().replace(microsecond=0) - timedelta(hours=3)

    def session(self) -> Session:
        return Session(self.app.extensions["gatekeeper.engine"], expire_on_commit=False)

    def tick(self) -> str:
        """A GitHub timestamp later than every earlier one."""
        self._clock += 1
        return (self._epoch + timedelta(minutes=self._clock)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def promote(self, mentee="mpage", mentors=("colesbury", "vstinner"), **options):
        """Start a mentorship that is active now (or at ``now``)."""
        return promote(self.app, mentee, mentors, actor="ambv", **options)

    def send(self, event: str, payload: dict, *, delivery_id: str | None = None, work=True):
        """Deliver a signed event and expect GitHub's 2xx; then let a worker do what it left.

        ``work=False`` stops once the worker has applied the delivery, before anything is
        posted to GitHub or asked of it.
        """
        response = deliver(self.client, event, payload, secret=SECRET, delivery_id=delivery_id)
        assert response.status_code in (200, 202), response.get_json()
        if work:
            self.work()
        else:
            self.apply()
        return response

    def apply(self) -> Tally:
        """Have a worker apply the stored deliveries, and nothing else."""
        return Worker(self.app).apply_deliveries()

    def work(self) -> Tally:
        """Run a worker until nothing is due: what ``gatekeeper worker --once`` does."""
        return Worker(self.app).drain()

    def retry_now(self) -> None:
        """Let the backoff of every failed post, job and delivery run out, as time passing
        would."""
        with self.session() as session:
            session.execute(sa.update(CommitCheck).values(next_attempt_at=None))
            session.execute(sa.update(Job).values(run_after=utcnow() - timedelta(seconds=1)))
            session.execute(sa.update(Delivery).values(retry_at=None))
            session.commit()

    def outbox(self, head_sha="a" * 40) -> CommitCheck:
        """The outbox row of one commit."""
        with self.session() as session:
            return session.exec(
                select(CommitCheck)
                .where(CommitCheck.repo == REPO)
                .where(CommitCheck.head_sha == head_sha)
            ).one()

    def pending_posts(self) -> int:
        """Commits whose latest desired check is not on GitHub yet."""
        with self.session() as session:
            return outbox.pending_count(session)

    def open_pull(self, number=7, *, author="mpage", head_sha="a" * 40, action="opened", **options):
        """A pull request opened on the fake GitHub and announced by webhook."""
        self.fake.add_pull(REPO, number, author=author, head_sha=head_sha, **options)
        payload = self.events.pull_request(
            action,
            number=number,
            author=author,
            head_sha=head_sha,
            updated_at=self.tick(),
            fork=options.get("head_repo"),
            base=options.get("base", "main"),
        )
        return self.send("pull_request", payload)

    def push(self, number=7, *, head_sha: str, author="mpage"):
        """New commits on a pull request (``synchronize``)."""
        self.fake.push(REPO, number, head_sha)
        payload = self.events.pull_request(
            "synchronize",
            number=number,
            author=author,
            head_sha=head_sha,
            updated_at=self.tick(),
            base=self.fake.base_of(REPO, number),
        )
        return self.send("pull_request", payload)

    def review_payload(
        self,
        number=7,
        *,
        reviewer="colesbury",
        state="approved",
        head_sha="a" * 40,
        commit_id=None,
        review_id=100,
        author="mpage",
        action="submitted",
        submitted_at=None,
        merged_at=None,
    ) -> dict:
        """A review made on the fake GitHub now in the story, and its webhook payload.

        A dismissal keeps the review's own ``submitted_at``; ``merged_at`` makes the trimmed
        pull request in the payload a merged one, as GitHub sends it for a review after a merge.
        """
        stamp = self.tick()
        if action == "submitted":
            self.fake.add_review(
                REPO,
                number,
                reviewer=reviewer,
                state=state.upper(),
                commit_id=commit_id or head_sha,
                review_id=review_id,
                submitted_at=stamp,
            )
        payload = self.events.review(
            action,
            number=number,
            author=author,
            head_sha=head_sha,
            reviewer=reviewer,
            state=state,
            review_id=review_id,
            commit_id=commit_id,
            submitted_at=submitted_at or stamp,
            updated_at=stamp,
            base=self.fake.base_of(REPO, number),
        )
        if merged_at is not None:
            payload["pull_request"].update(state="closed", merged_at=merged_at, closed_at=merged_at)
        return payload

    def review(self, number=7, **options):
        """A review submitted (or dismissed) on the fake GitHub and announced by webhook."""
        return self.send("pull_request_review", self.review_payload(number, **options))

    def last_check_body(self) -> dict:
        """The body of the last check-run write the app sent (GitHub does not echo ``actions``)."""
        writes = [c for c in self.fake.writes() if "/check-runs" in c.path]
        return writes[-1].json

    def check(self, head_sha="a" * 40) -> dict:
        """The one check run of ours on ``head_sha``."""
        runs = self.fake.check_runs_for(REPO, head_sha, name="mentor-approval")
        assert len(runs) == 1, runs
        return runs[0]

    def pull(self, number=7) -> PullRequest:
        pull = self.pull_or_none(number)
        assert pull is not None, f"{REPO}#{number} is not stored"
        return pull

    def pull_or_none(self, number=7) -> PullRequest | None:
        with self.session() as session:
            return session.exec(
                select(PullRequest)
                .where(PullRequest.repo == REPO)
                .where(PullRequest.number == number)
            ).one_or_none()

    def delivery(self, delivery_id: str) -> Delivery:
        """A stored delivery, with its outcome."""
        with self.session() as session:
            found = session.get(Delivery, delivery_id)
            assert found is not None, f"delivery {delivery_id} is not stored"
            return found

    def audit_kinds(self) -> list[str]:
        with self.session() as session:
            return [e.kind for e in session.exec(select(AuditEvent).order_by(AuditEvent.id))]


@pytest.fixture
def world(gate_app, github_fake) -> World:
    """A fresh world on the fake GitHub."""
    return World(gate_app, github_fake)
