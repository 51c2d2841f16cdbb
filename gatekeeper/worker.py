"""The worker: applies the stored deliveries, posts the outbox's checks and runs the jobs
that need GitHub.

Webhook requests and dashboard changes only store what should happen; this is where a
delivery is applied to the gates, and the one place that writes to GitHub. Any number of workers (threads here, processes anywhere) share the
work through the database's row claims. Writes are paced per installation, as GitHub's
secondary rate limits ask, and failures are kept and retried with backoff (a rate limit
until its reset); a refusal that retrying cannot change is given up with its reason.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import assert_never

import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session

from gatekeeper import (
    bypass_alerts,
    db,
    decisions,
    deliveries,
    jobs,
    logs,
    metrics,
    notify,
    outbox,
    people,
    repositories,
)
from gatekeeper import pulls as store
from gatekeeper.extensions import github_of, settings_of
from gatekeeper.github import CheckRunBody, GitHubApp, GitHubNotFound, GitHubUnavailable
from gatekeeper.jobs import backoff
from gatekeeper.models import Delivery, DeliveryOutcome, JobKind, Mentorship, utcnow

log = logging.getLogger(__name__)

IDLE_POLL = 0.1  # seconds before the first look again at an empty outbox
IDLE_POLL_MAX = 2.0  # and at most this long
APPLY_POLL_MAX = 0.25  # for deliveries: an idle worker applies a new one within a quarter second


@dataclasses.dataclass
class Tally:
    """What a worker did."""

    applied: list[str] = dataclasses.field(default_factory=list)
    posted: list[str] = dataclasses.field(default_factory=list)
    jobs: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def add(
        self,
        *,
        applied: str | None = None,
        posted: str | None = None,
        job: bool = False,
        failure: str | None = None,
    ) -> None:
        with self.lock:
            if applied:
                self.applied.append(applied)
            if posted:
                self.posted.append(posted)
            self.jobs += int(job)
            if failure:
                self.failures.append(failure)


class Worker:
    """Drains the outbox and the job queue of one app, with ``concurrency`` threads."""

    def __init__(self, app: Flask, *, concurrency: int = 1) -> None:
        self.app = app
        self.settings = settings_of(app)
        self.github: GitHubApp | None = github_of(app)
        self.engine: sa.Engine = app.extensions["gatekeeper.engine"]
        self.concurrency = max(1, concurrency)
        self.tally = Tally()
        self._turn = 0
        self._slots: dict[int, threading.BoundedSemaphore] = collections.defaultdict(
            lambda: threading.BoundedSemaphore(self.settings.worker_writes_per_installation)
        )
        self._slots_lock = threading.Lock()

    # ------------------------------------------------------------------ loops

    def step(self) -> bool:
        """Do one piece of due work, a delivery to apply first; False when there is none.

        Nothing a piece of work raises ends the worker: it is logged with its traceback and
        the work is retried later (the post or the job keeps its claim until its lease ends).
        """
        # A check posted while the delivery that changes it waits would be posted again.
        return self._do(self._apply_one) or self._do(self._post_or_run)

    def apply_deliveries(self) -> Tally:
        """Apply every stored delivery, and do nothing else (no GitHub is asked)."""
        while self._do(self._apply_one):
            pass
        return self.tally

    def _do(self, work: Callable[[Session], bool]) -> bool:
        with self.app.app_context(), Session(self.engine, expire_on_commit=False) as session:
            try:
                # Its transactions wait their turn to write; one the database refused for the
                # moment is run again from the start (the claims make that safe).
                return db.writing(session, work)
            except db.Busy:
                log.warning("worker step found the database busy; trying again shortly")
                return False
            except sa.exc.DBAPIError:
                session.rollback()
                log.exception("worker step failed on the database")
                return False
            except Exception:
                session.rollback()
                log.exception("worker step failed; its work is retried once its claim ends")
                return False

    def _post_or_run(self, session: Session) -> bool:
        if self.github is None:  # notices to the team's chat need no GitHub
            return self._notice_one(session)
        # Posts and jobs take turns, so a flood of checks never starves a delivery that waits
        # for a pull request to be read (nor the other way round).
        self._turn += 1
        first, second = (self._post_one, self._run_one)[:: 1 if self._turn % 2 else -1]
        return first(session) or second(session)

    def _post_one(self, session: Session) -> bool:
        claimed = outbox.claim(
            session,
            now=utcnow(),
            writes_per_installation=self.settings.worker_writes_per_installation,
        )
        if claimed is None:
            return False
        with logs.bound(
            repository=claimed.repo,
            installation=claimed.installation_id,
            commit=claimed.head_sha[:12],
        ):
            self._post(session, claimed)
        return True

    def _run_one(self, session: Session) -> bool:
        job = jobs.claim(session, now=utcnow())
        if job is None:
            return False
        with logs.bound(
            job=job.key,
            repository=getattr(job.args, "repo", None),
            pull_request=getattr(job.args, "number", None),
            delivery=getattr(job.args, "delivery_id", None),
        ):
            self._run(session, job)
        return True

    def _apply_one(self, session: Session) -> bool:
        """Apply the oldest queued delivery, with the others its pull request has queued."""
        applied = deliveries.apply_together(session, self.settings)
        for one in applied:
            self.tally.add(applied=f"{one.delivery_id}: {one.outcome}")
        return bool(applied)

    def _notice_one(self, session: Session) -> bool:
        job = jobs.claim(session, now=utcnow(), kinds=(JobKind.SEND_NOTICE,))
        if job is None:
            return False
        with logs.bound(job=job.key):
            self._run(session, job)
        return True

    def drain(self, *, timeout: float = 120.0) -> Tally:
        """Do all due work, then return; what fails stays queued for later workers."""
        deadline = time.monotonic() + timeout

        def loop() -> None:
            while time.monotonic() < deadline and self.step():
                pass

        self._in_threads(loop)
        return self.tally

    def run_forever(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set: one thread applies the deliveries, ``concurrency``
        threads post checks and run jobs. Apart, neither waits for the other: a post waits on
        GitHub, applying on nothing but the database. An idle applier looks again within
        ``APPLY_POLL_MAX``; an idle poster after a pause that grows from ``IDLE_POLL`` to
        ``IDLE_POLL_MAX``, or at once when this process's applier stored new checks."""
        posts_due = threading.Event()

        def apply() -> None:
            pause = IDLE_POLL
            while not stop.is_set():
                if self._do(self._apply_one):
                    posts_due.set()
                    pause = IDLE_POLL
                else:
                    stop.wait(pause)
                    pause = min(pause * 2, APPLY_POLL_MAX)
            posts_due.set()  # so that the posting threads see ``stop``

        def post() -> None:
            pause = IDLE_POLL
            while not stop.is_set():
                posts_due.clear()  # before looking: a set after it wakes the wait below
                if self._do(self._post_or_run) or posts_due.wait(pause):
                    pause = IDLE_POLL
                else:
                    pause = min(pause * 2, IDLE_POLL_MAX)

        threads = [
            threading.Thread(target=apply, daemon=True),
            *(threading.Thread(target=post, daemon=True) for _ in range(self.concurrency)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _in_threads(self, loop: Callable[[], None]) -> None:
        if self.concurrency == 1:
            loop()
            return
        threads = [threading.Thread(target=loop, daemon=True) for _ in range(self.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # ------------------------------------------------------------------ pacing

    @contextlib.contextmanager
    def _slot(self, installation_id: int) -> Iterator[None]:
        """Hold one of the installation's write slots in this process, waiting for one if
        every slot is taken (the outbox's claims count them across processes)."""
        with self._slots_lock:
            slot = self._slots[installation_id]
        with slot:
            yield

    # ------------------------------------------------------------------ posting

    def _post(self, session: Session, claimed: outbox.Claimed) -> None:
        where = f"{claimed.repo}@{claimed.head_sha[:12]}"
        try:
            run_id = self.send(session, claimed)
        except GitHubUnavailable as error:
            session.rollback()
            self._post_failed(session, claimed, error, where)
            return
        except Exception as error:  # a bug must not end the worker, nor lose the desire
            session.rollback()
            log.exception("check on %s not posted", where)
            metrics.check_post("error")
            outbox.record_failure(
                session,
                claimed,
                error=type(error).__name__,
                retry_at=utcnow() + backoff(claimed.attempts + 1),
            )
            self.tally.add(failure=f"{where}: {type(error).__name__}")
            return
        if not outbox.record_posted(session, claimed, run_id=run_id, now=utcnow()):
            log.info("check on %s posted, but a newer post or claim got there first", where)
            metrics.check_post("superseded")
            return
        metrics.check_post("posted")
        body = claimed.body
        log.info("check on %s posted: %s (version %d)", where, body["conclusion"], claimed.version)
        self.tally.add(posted=f"{where}: {body['conclusion']} ({body['title']})")

    def send(self, session: Session, claimed: outbox.Claimed) -> int:
        """Put a claimed desire on GitHub: update the commit's run in place, or create one.

        Returns the run's id; raises GitHubUnavailable when GitHub does not take it.
        """
        assert self.github is not None
        github, body = self.github, claimed.body
        installation_id = claimed.installation_id or self._installation(session, claimed.repo)
        session.commit()  # no transaction stays open while GitHub answers
        check = CheckRunBody(
            name=claimed.name,
            head_sha=claimed.head_sha,
            conclusion=body["conclusion"],
            title=body["title"],
            summary=body["summary"],
            details_url=body["details_url"],
            external_id=body["external_id"],
            completed_at=utcnow(),
            actions=tuple(body["actions"]),
        )
        with self._slot(installation_id):
            existing = None if claimed.fresh else claimed.check_run_id
            if existing is None and not claimed.fresh and claimed.may_exist:
                # An attempt whose answer was lost (or a worker that died after posting) may
                # have created the run: find it rather than create a second one. A first
                # attempt has nothing to find.
                existing = github.find_check_run(
                    installation_id=installation_id,
                    repo=claimed.repo,
                    head_sha=claimed.head_sha,
                    name=claimed.name,
                )
            return github.post_check_run(
                installation_id=installation_id,
                repo=claimed.repo,
                body=check,
                existing_id=existing,
            )

    def _post_failed(
        self, session: Session, claimed: outbox.Claimed, error: GitHubUnavailable, where: str
    ) -> None:
        if error.permanent:
            # The App no longer sees the repository, or GitHub refuses this check for good:
            # retrying would change nothing. A newer desire is tried afresh.
            log.warning("check on %s given up: %s", where, error)
            metrics.check_post("given_up")
            outbox.give_up(session, claimed, reason=str(error))
            self.tally.add(failure=f"{where}: given up: {error}")
            return
        retry_at = _retry_at(error, attempts=claimed.attempts + 1)
        log.warning(
            "check on %s not posted, retrying at %s: %s", where, f"{retry_at:%H:%M:%S}", error
        )
        outbox.record_failure(session, claimed, error=str(error), retry_at=retry_at)
        metrics.check_post("retrying")
        self.tally.add(failure=f"{where}: {error}")

    def _installation(self, session: Session, repo: str) -> int:
        assert self.github is not None
        installation_id = store.installation_of(session, repo=repo)
        if installation_id is None:
            installation_id = self.github.installation_for(repo)
            store.remember_installation(session, repo=repo, installation_id=installation_id)
            session.commit()
        return installation_id

    # ------------------------------------------------------------------ jobs

    def _dispatch(self, session: Session, job: jobs.Claimed) -> None:
        # ``jobs.claim`` dropped a job of a kind, or with arguments, that no shape fits.
        match job.args:
            case jobs.SyncPull() as args:
                self._sync_pull(session, job, args)
            case jobs.Reconcile() as args:
                self._reconcile(session, args)
            case jobs.RequestReviews() as args:
                self._request_reviews(session, args)
            case jobs.ReadTree() as args:
                self._read_tree(session, args)
            case jobs.ResolveRepository() as args:
                self._resolve_repository(session, args)
            case jobs.LearnAccount() as args:
                self._learn_account(session, args)
            case jobs.BypassComment() as args:
                self._bypass_comment(session, args)
            case jobs.SendNotice() as args:
                self._send_notice(session, args)
            case _:
                assert_never(job.args)

    def _run(self, session: Session, job: jobs.Claimed) -> None:
        try:
            self._dispatch(session, job)
        except GitHubUnavailable as error:
            session.rollback()
            if error.permanent:
                log.warning("job %s given up: %s", job.key, error)
                self._give_up_job(session, job, str(error))
                self.tally.add(failure=f"{job.key}: given up: {error}")
                return
            retry_at = _retry_at(error, attempts=job.attempts + 1)
            log.warning("job %s failed, retrying at %s: %s", job.key, f"{retry_at:%H:%M:%S}", error)
            jobs.retry_later(session, job, error=str(error), at=retry_at)
            self.tally.add(failure=f"{job.key}: {error}")
            return
        except notify.ChatUnavailable as error:  # the notice keeps its error for doctor
            retry_at = utcnow() + backoff(job.attempts + 1)
            log.warning("job %s failed, retrying at %s: %s", job.key, f"{retry_at:%H:%M:%S}", error)
            jobs.retry_later(session, job, error=str(error), at=retry_at)
            self.tally.add(failure=f"{job.key}: {error}")
            return
        except Exception as error:  # a database hiccup, or a bug: never the end of the worker
            session.rollback()
            log.exception("job %s failed, retrying later", job.key)
            jobs.retry_later(
                session, job, error=type(error).__name__, at=utcnow() + backoff(job.attempts + 1)
            )
            self.tally.add(failure=f"{job.key}: {type(error).__name__}")
            return
        jobs.done(session, job)
        self.tally.add(job=True)

    def _give_up_job(self, session: Session, job: jobs.Claimed, reason: str) -> None:
        delivery_id = job.args.delivery_id if isinstance(job.args, jobs.SyncPull) else None
        if delivery_id:
            delivery = session.get(Delivery, delivery_id)
            if delivery is not None and delivery.outcome == DeliveryOutcome.DEFERRED:
                delivery.outcome = DeliveryOutcome.FAILED
                delivery.error = f"GitHub could not say: {reason}"[:500]
                delivery.processed_at = utcnow()  # its body is kept, for GitHub's "Redeliver"
                session.add(delivery)
        jobs.drop(session, job)

    def _sync_pull(self, session: Session, job: jobs.Claimed, args: jobs.SyncPull) -> None:
        """Read a pull request and its reviews from GitHub, store them, then apply the delivery
        that was waiting for it."""
        assert self.github is not None
        repo, number = args.repo, args.number
        installation_id = args.installation_id or self._installation(session, repo)
        session.commit()  # no transaction stays open while GitHub answers
        info = self.github.pull(installation_id=installation_id, repo=repo, number=number)
        reviews = self.github.reviews(installation_id=installation_id, repo=repo, number=number)
        now = utcnow()
        decisions.apply_pull(session, info=info, reviews=reviews, settings=self.settings, now=now)
        session.commit()
        delivery_id = args.delivery_id
        if not delivery_id:
            return
        applied = deliveries.apply_deferred(session, self.settings, delivery_id=delivery_id)
        if applied is not None and applied.outcome == DeliveryOutcome.DEFERRED:
            # GitHub's answer did not give us the pull request the delivery names (it moved,
            # say): asking again would loop.
            self._give_up_job(session, job, "the pull request it names is not on GitHub")

    def _learn_account(self, session: Session, args: jobs.LearnAccount) -> None:
        """Ask GitHub which account holds a mentee's or mentor's login, and learn its id."""
        assert self.github is not None
        installation_id = store.any_installation(session)
        session.commit()
        if installation_id is None:  # nothing installed yet: the first event teaches it
            log.info("no installation to ask for %s's id with", args.login)
            return
        found = self.github.account(installation_id=installation_id, login=args.login)
        if found is None:
            log.warning("no GitHub account is called %s: its id stays unknown", args.login)
            return
        people.learn(session, found, at=utcnow(), maintainers=self.settings.maintainers)
        session.commit()

    def _read_tree(self, session: Session, args: jobs.ReadTree) -> None:
        """Read a head commit's tree, so an approval of the same content can hold for it."""
        assert self.github is not None
        repo, sha = args.repo, args.sha
        if store.trees_of(session, repo=repo, shas=[sha]):
            return  # a check_suite's payload said it meanwhile
        installation_id = self._installation(session, repo)
        session.commit()  # no transaction stays open while GitHub answers
        tree_sha = self.github.commit_tree(installation_id=installation_id, repo=repo, sha=sha)
        now = utcnow()
        touched = decisions.learn_tree(
            session, repo=repo, sha=sha, tree_sha=tree_sha, settings=self.settings, now=now
        )
        outbox.commit_gates(session, touched, settings=self.settings, now=now)
        session.commit()

    def _reconcile(self, session: Session, args: jobs.Reconcile) -> None:
        from gatekeeper import sweep  # the sweep enqueues jobs; it is only needed here

        mentorship = session.get(Mentorship, args.mentorship_id)
        if mentorship is not None:
            report = sweep.reconcile(
                session, mentorship, settings=self.settings, github=self.github, now=utcnow()
            )
            if report.failures:
                raise GitHubUnavailable("; ".join(report.failures[:3]))

    def _resolve_repository(self, session: Session, args: jobs.ResolveRepository) -> None:
        """Learn the id of a repository a scope names, so the scope follows its renames."""
        assert self.github is not None
        name = args.repo
        session.commit()  # no transaction stays open while GitHub answers
        try:
            installation_id = self.github.installation_for(name)
        except GitHubNotFound:
            # Not installed there (or no such repository): no event, check or sweep of the
            # App's ever concerns it, and its entry keeps matching by name until one does.
            log.info("scope's %s is not covered by the App: its id is left unknown", name)
            return
        found = self.github.repository(installation_id=installation_id, repo=name)
        repositories.resolved(
            session,
            asked=name,
            github_id=found.github_id,
            repo=found.full_name,
            private=found.private,
            installation_id=installation_id,
        )
        session.commit()

    def _request_reviews(self, session: Session, args: jobs.RequestReviews) -> None:
        assert self.github is not None
        repo, number = args.repo, args.number
        pull = store.find_pull(session, repo=repo, number=number)
        if pull is None or pull.state != "open":
            return
        installation_id = self._installation(session, repo)
        session.commit()
        with self._slot(installation_id):
            try:
                self.github.request_reviewers(
                    installation_id=installation_id,
                    repo=repo,
                    number=number,
                    logins=list(args.logins),
                )
            except GitHubUnavailable as error:
                if not error.permanent:
                    raise
                # Not a collaborator, say: asking again changes nothing.
                log.warning("reviews for %s#%s refused: %s", repo, number, error)

    def _send_notice(self, session: Session, args: jobs.SendNotice) -> None:
        """Post one notice to the team's chat (its job's lease keeps other workers off)."""
        said = notify.send(session, notice_id=args.notice_id, settings=self.settings, now=utcnow())
        if said is not None:
            log.info("notice %s: %s", args.notice_id, said)

    def _bypass_comment(self, session: Session, args: jobs.BypassComment) -> None:
        """Tell the mentors, once, that a pull request merged while its gate waited.

        Only the job's holder runs this (its lease keeps other workers off), and the alert's
        row says whether an earlier try may have posted: then GitHub's comments are searched
        for the marker before anything is posted again.
        """
        assert self.github is not None
        repo, number = args.repo, args.number
        if bypass_alerts.due(session, repo=repo, number=number, settings=self.settings) is None:
            session.commit()
            return
        installation_id = self._installation(session, repo)
        session.commit()
        # An approval given before the merge whose delivery is late (or lost) clears the
        # bypass: read the reviews from GitHub before saying what cannot be taken back. (The
        # merger, when only a review event had told of the merge, is named by the closed
        # event, which arrives within the settle delay.)
        reviews = self.github.reviews(installation_id=installation_id, repo=repo, number=number)
        pull = store.find_pull(session, repo=repo, number=number, lock=True)
        if pull is not None:
            decisions.apply_reviews(
                session, pull, reviews=reviews, settings=self.settings, now=utcnow()
            )
        session.commit()
        due = bypass_alerts.due(session, repo=repo, number=number, settings=self.settings)
        session.commit()
        if due is None:
            log.info(
                "bypass of %s#%s cleared or muted before its comment: none posted", repo, number
            )
            return
        with self._slot(installation_id):
            comment_id = None
            if due.attempted:
                comment_id = self.github.find_comment(
                    installation_id=installation_id,
                    repo=repo,
                    number=number,
                    marker=bypass_alerts.MARKER,
                )
            if comment_id is None:
                bypass_alerts.mark_attempted(session, due, now=utcnow())
                comment_id = self.github.create_comment(
                    installation_id=installation_id, repo=repo, number=number, body=due.body
                )
        bypass_alerts.record_posted(session, due, comment_id=comment_id, now=utcnow())
        log.info("bypass of %s#%s told to its mentors (comment %d)", repo, number, comment_id)


def _retry_at(error: GitHubUnavailable, *, attempts: int) -> datetime:
    if error.retry_at is not None:
        return datetime.fromtimestamp(error.retry_at, tz=utcnow().tzinfo) + timedelta(seconds=1)
    return utcnow() + backoff(attempts)


def start_background(app: Flask) -> threading.Event:
    """Run a worker in a daemon thread of this process (``gatekeeper serve``); set the event to stop."""
    stop = threading.Event()
    worker = Worker(app)
    threading.Thread(
        target=worker.run_forever, args=(stop,), name="gatekeeper-worker", daemon=True
    ).start()
    return stop
