"""Real concurrency: gunicorn's workers and two worker processes on PostgreSQL.

Fifty pull requests of one mentee (and a few of other people, some sharing a head commit)
are played out on a fake GitHub served over HTTP, each change dated in GitHub's order:
opened, pushes with their check suites, approvals, changes requested, dismissals, the check's
button, ``/gatekeeper approve`` comments, merges and closes. Every delivery that story makes
is then sent by 16 threads, in a seeded random order and
in bursts for one pull request at a time (see ``bursts``), to gunicorn run as the Procfile runs it,
while 2 ``gatekeeper worker`` processes post the outbox to the fake (every write answered
after 50 ms, so posts overlap the deliveries and each other). Once the outbox is drained,
what GitHub shows on every open pull request's head must be what ``gate.py`` decides from
the final stored state; and a sweep after that must find nothing to write.

gunicorn runs with the project's configuration (``gatekeeper/gunicorn_conf.py``: 2 gthread
workers of 8 threads), as the Procfile's web line does. Few deliveries are in flight at once
(``LANES`` bursts): on two cores more only queue, and the answers' times then measure the
queue, not Gatekeeper.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlmodel import Session, col, select

from fakegithub import FakeGitHub
from gate_support import BASE_URL, INSTALLATION, REPO, SECRET, app_for, promote
from gatekeeper import db, decisions, gate, github_of, jobs, models, outbox, settings_of
from gatekeeper import pulls as store
from gatekeeper import sweep as sweeper
from gatekeeper.config import normalise_database_url
from gatekeeper.models import CommitCheck, PullRequest, utcnow
from gatekeeper.worker import Worker
from webhook_events import Events, signed

SEED = 20261201
MENTEE_PULLS = 50
SENDERS = 16
BURST = 2  # deliveries for one pull request sent at once
LANES = 2  # bursts in flight at once
WEB_WORKERS = 2  # as the Procfile's web line
POSTING_WORKERS = 2
WRITE_LATENCY = 0.05  # seconds before the fake answers each write
DRAIN_LIMIT = 30.0  # seconds for the workers to post everything once the last answer is in
CHECK = "mentor-approval"
MENTEE = "mpage"
MENTORS = ("colesbury", "vstinner")
FORK = "stranger/cpython"
FAMILIES = {101: 1, 102: 2, 202: 201}  # pull requests on the head commit of another
STEPS = {  # what may happen to a mentee's pull request between opening and the end, by weight
    "push": 3,
    "approve": 3,
    "changes": 2,
    "dismiss": 2,
    "outsider": 1,
    "button": 2,
    "comment": 2,
}


def commit_sha(*parts: object) -> str:
    """A commit id of the story's own."""
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()


# ---------------------------------------------------------------------------- the story


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One webhook delivery, as GitHub would send it."""

    number: int  # the pull request's
    label: str  # "#7 push", for messages
    event: str
    payload: dict[str, Any]


class Story:
    """GitHub's side of the run: each change made on the fake GitHub, and the delivery it sends.

    Every change is dated a second after the one before (``updated_at``, ``submitted_at``,
    a comment's ``created_at``), as GitHub would date them. The fake has no API to merge a
    pull request or dismiss a review, so those edit its record directly: the sweep at the end
    reads the fake, and must find it agreeing with the deliveries.
    """

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self.events = Events(repo=REPO, installation_id=INSTALLATION)
        self.deliveries: list[Delivery] = []
        self.heads: dict[int, str] = {}
        self.authors: dict[int, str] = {}
        self._pushes: collections.Counter[int] = collections.Counter()
        self._epoch = utcnow().replace(microsecond=0) - timedelta(hours=2)
        self._clock = itertools.count(1)
        self._ids = itertools.count(1)

    def tick(self) -> str:
        """A GitHub timestamp later than every earlier one."""
        moment = self._epoch + timedelta(seconds=next(self._clock))
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _send(self, number: int, what: str, event: str, payload: dict[str, Any]) -> None:
        self.deliveries.append(Delivery(number, f"#{number} {what}", event, payload))

    @contextlib.contextmanager
    def _record(self, number: int) -> Iterator[dict[str, Any]]:
        with self.fake._lock:
            yield self.fake._pulls[(REPO, number)]

    def _pull_event(self, action: str, number: int, stamp: str, **options: Any) -> dict[str, Any]:
        return self.events.pull_request(
            action,
            number=number,
            author=self.authors[number],
            head_sha=self.heads[number],
            updated_at=stamp,
            **options,
        )

    def open(
        self,
        number: int,
        author: str,
        *,
        head_sha: str | None = None,
        fork: str | None = None,
        base: str = "main",
        head_ref: str | None = None,
    ) -> None:
        stamp = self.tick()
        self.heads[number] = head_sha or commit_sha(number, 0)
        self.authors[number] = author
        self.fake.add_pull(
            REPO,
            number,
            author=author,
            head_sha=self.heads[number],
            base=base,
            head_repo=fork,
            head_ref=head_ref,
            updated_at=stamp,
        )
        payload = self._pull_event("opened", number, stamp, fork=fork)
        payload["pull_request"]["base"]["ref"] = base
        self._send(number, "opened", "pull_request", payload)
        if head_sha is None and fork is None:  # a commit's suite is asked for once, at its push
            self._suite(number)

    def _suite(self, number: int) -> None:
        """GitHub asks every checks App for a run on a pushed commit (``check_suite``)."""
        payload = self.events.check_suite(
            "requested", head_sha=self.heads[number], numbers=[number]
        )
        self._send(number, "check suite", "check_suite", payload)

    def push(self, number: int) -> None:
        stamp = self.tick()
        self._pushes[number] += 1
        self.heads[number] = commit_sha(number, self._pushes[number])
        self.fake.push(REPO, number, self.heads[number])
        with self._record(number) as record:
            record["updated_at"] = stamp
        self._send(number, "push", "pull_request", self._pull_event("synchronize", number, stamp))
        self._suite(number)

    def review(self, number: int, reviewer: str, state: str) -> dict[str, Any]:
        """A review of the current head; returns what a dismissal needs of it."""
        stamp, review_id = self.tick(), next(self._ids)
        head = self.heads[number]
        self.fake.add_review(
            REPO,
            number,
            reviewer=reviewer,
            state=state.upper(),
            commit_id=head,
            review_id=review_id,
            submitted_at=stamp,
        )
        with self._record(number) as record:
            record["updated_at"] = stamp
        payload = self.events.review(
            "submitted",
            number=number,
            author=self.authors[number],
            head_sha=head,
            reviewer=reviewer,
            state=state,
            review_id=review_id,
            submitted_at=stamp,
            updated_at=stamp,
        )
        self._send(number, f"{state} by {reviewer}", "pull_request_review", payload)
        return {"id": review_id, "reviewer": reviewer, "commit_id": head, "submitted_at": stamp}

    def dismiss(self, number: int, review: dict[str, Any]) -> None:
        stamp = self.tick()
        with self._record(number) as record:
            record["updated_at"] = stamp
            for stored in record["reviews"]:
                if stored["id"] == review["id"]:
                    stored["state"] = "DISMISSED"
        payload = self.events.review(
            "dismissed",
            number=number,
            author=self.authors[number],
            head_sha=self.heads[number],
            reviewer=review["reviewer"],
            state="dismissed",
            review_id=review["id"],
            commit_id=review["commit_id"],
            submitted_at=review["submitted_at"],
            updated_at=stamp,
        )
        self._send(number, f"review {review['id']} dismissed", "pull_request_review", payload)

    def button(self, number: int, sender: str) -> None:
        """A mentor presses "Approve merge" on the check of the current head."""
        stamp = self.tick()
        payload = self.events.check_run(
            "requested_action",
            number=number,
            head_sha=self.heads[number],
            sender=sender,
            app_id=self.fake.app_id,
        )
        payload["check_run"]["completed_at"] = stamp  # the run as the mentor saw it
        self._send(number, f"button by {sender}", "check_run", payload)

    def comment(self, number: int, sender: str) -> None:
        stamp = self.tick()
        payload = self.events.comment(
            "created",
            number=number,
            sender=sender,
            body="Thanks!\n/gatekeeper approve\n",
            comment_id=next(self._ids),
        )
        payload["comment"]["created_at"] = payload["comment"]["updated_at"] = stamp
        self._send(number, f"comment by {sender}", "issue_comment", payload)

    def close(self, number: int, *, merged: bool) -> None:
        stamp = self.tick()
        merger = self.authors[number] if merged else None
        with self._record(number) as record:
            record.update(state="closed", updated_at=stamp, closed_at=stamp)
            if merged:
                record.update(merged_at=stamp, merged_by=merger)
        payload = self._pull_event("closed", number, stamp, merged=merged, merged_by=merger)
        self._send(number, "merged" if merged else "closed", "pull_request", payload)


def mentee_pull(story: Story, number: int, rng: random.Random) -> None:
    """A mentee's pull request: opened, then a few pushes, reviews and approvals, maybe merged."""
    story.open(number, MENTEE)
    approvals: list[dict[str, Any]] = []
    for _ in range(rng.randint(2, 6)):
        step = rng.choices(list(STEPS), weights=list(STEPS.values()))[0]
        if step == "push":
            story.push(number)
        elif step == "approve":
            approvals.append(story.review(number, rng.choice(MENTORS), "approved"))
        elif step == "changes":
            story.review(number, rng.choice(MENTORS), "changes_requested")
        elif step == "dismiss" and approvals:
            story.dismiss(number, approvals.pop(rng.randrange(len(approvals))))
        elif step == "outsider":
            story.review(number, "guido", "approved")
        elif step == "button":
            story.button(number, rng.choice(MENTORS))
        elif step == "comment":
            story.comment(number, rng.choice(MENTORS))
    ending = rng.random()
    if ending < 0.3:
        story.close(number, merged=True)
    elif ending < 0.35:
        story.close(number, merged=False)


def others_pull(story: Story, number: int, rng: random.Random) -> None:
    """Someone else's pull request: no mentorship applies to it, whatever happens."""
    story.open(number, rng.choice(["guido", "gpshead", "serhiy-storchaka"]))
    if rng.random() < 0.5:
        story.push(number)
    if rng.random() < 0.5:
        story.review(number, rng.choice(MENTORS), "approved")
    if rng.random() < 0.3:
        story.close(number, merged=True)


def play(story: Story, rng: random.Random) -> None:
    """The whole run's story; the pull requests sharing a head commit come first."""
    # A stranger's fork pull request from the mentee's waiting commit: it must not pass it.
    story.open(1, MENTEE)
    story.review(1, "vstinner", "changes_requested")
    story.open(101, "stranger", head_sha=story.heads[1], fork=FORK)
    # The mentee's backport from the same branch: approving #2 alone leaves the commit waiting.
    story.open(2, MENTEE)
    story.open(102, MENTEE, head_sha=story.heads[2], base="3.13", head_ref="mpage/change-2")
    story.review(2, "colesbury", "approved")
    # Someone else's change proposed for two branches: it passes for both.
    story.open(201, "guido")
    story.open(202, "guido", head_sha=story.heads[201], base="3.13", head_ref="guido/change-201")
    for number in range(3, MENTEE_PULLS + 1):
        mentee_pull(story, number, rng)
    for number in range(203, 208):
        others_pull(story, number, rng)


# ---------------------------------------------------------------------------- the processes


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass
class Cluster:
    """gunicorn and the worker processes, each logging to a file of its own."""

    url: str
    logs: Path
    web: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = dataclasses.field(default_factory=list)

    def stop_workers(self) -> None:
        """Stop the posting workers (gunicorn goes on answering)."""
        for process in self.workers:
            stop(process)

    def stop(self) -> None:
        """Stop every process; those already stopped are left alone."""
        self.stop_workers()
        if self.web is not None:
            stop(self.web)

    def handling(self) -> dict[str, float]:
        """Seconds each delivery spent in a web worker (not waiting to be accepted), by id."""
        lines = (self.logs / "access.txt").read_text().splitlines()
        return {
            delivery: int(micros) / 1e6
            for micros, delivery, path in (line.split() for line in lines)
            if path == "/webhooks/github"
        }

    def log_tail(self, lines: int = 30) -> str:
        """The end of every process's log, for a failure's message."""
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(parts)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a platform stops a process; SIGKILL if it does not go in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def environment(fake: FakeGitHub, database_url: str) -> dict[str, str]:
    """What an operator sets for gunicorn and the workers."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "GITHUB_APP_ID": str(fake.app_id),
        "GITHUB_PRIVATE_KEY": fake.private_key_pem,
        "GITHUB_API_URL": fake.api_url,
        "GITHUB_URL": fake.url,
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "GITHUB_APP_SLUG": fake.app_slug,
        "GATEKEEPER_BASE_URL": BASE_URL,
        "GATEKEEPER_MAINTAINERS": "ambv",
        "PYTHONUNBUFFERED": "1",
    }


def launch(argv: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a process from the repository's root, its output going to ``log``."""
    with log.open("wb") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            argv,
            env=env,
            cwd=Path(__file__).parent.parent,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_for_health(cluster: Cluster, *, timeout: float = 60.0) -> None:
    """Wait until gunicorn answers /healthz (its workers import the app first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert cluster.web is not None
        if cluster.web.poll() is not None:
            pytest.fail(f"gunicorn exited with {cluster.web.returncode}\n{cluster.log_tail()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{cluster.url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"gunicorn did not answer /healthz within {timeout}s\n{cluster.log_tail()}")


@pytest.fixture
def database(postgres_server) -> str:
    """The session's PostgreSQL test database, emptied and migrated."""
    url = postgres_server.empty_database()
    db.upgrade(normalise_database_url(url))
    return url


@pytest.fixture
def app(github_fake, database):
    """The app in this process, for promoting, inspecting the database and sweeping."""
    app = app_for(github_fake, database)
    yield app
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


@pytest.fixture
def cluster(github_fake, database, tmp_path) -> Iterator[Cluster]:
    """gunicorn as the Procfile runs it and 2 worker processes of 2 threads, on the fake GitHub."""
    env = environment(github_fake, database)
    running = Cluster(url=f"http://127.0.0.1:{free_port()}", logs=tmp_path)
    try:
        running.web = launch(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "python:gatekeeper.gunicorn_conf",  # gthread, as the Procfile's web line
                "--workers",
                str(WEB_WORKERS),
                "--timeout",
                "30",
                "--bind",
                running.url.removeprefix("http://"),
                "--graceful-timeout",
                "5",
                "--no-control-socket",  # one per user by default, shared with any other gunicorn
                "--access-logfile",
                str(tmp_path / "access.txt"),
                "--access-logformat",
                "%(D)s %({x-github-delivery}i)s %(U)s",
                "gatekeeper:create_app()",
            ],
            env=env,
            log=tmp_path / "gunicorn.log",
        )
        for index in range(POSTING_WORKERS):
            running.workers.append(
                launch(
                    [
                        sys.executable,
                        "-c",
                        "from gatekeeper.cli import main; main()",
                        "worker",
                        "--concurrency",
                        "2",
                    ],
                    env=env,
                    log=tmp_path / f"worker-{index}.log",
                )
            )
        wait_for_health(running)
        yield running
    finally:
        running.stop()


# ---------------------------------------------------------------------------- sending


@dataclasses.dataclass(frozen=True)
class Answer:
    """What one delivery got, and when (``time.perf_counter()`` seconds)."""

    number: int
    label: str
    delivery_id: str
    status: int
    sent: float
    answered: float
    outcome: str | None

    @property
    def seconds(self) -> float:
        return self.answered - self.sent


def bursts(deliveries: list[Delivery], rng: random.Random) -> list[list[Delivery]]:
    """The deliveries in a random order, in bursts of up to ``BURST`` for one pull request
    (with the others on its head commit) sent at once: GitHub sends a handful of events for one
    pull request close together, and in any order, while pull requests come and go independently.

    Each pull request's deliveries are shuffled before they are cut into bursts, and the
    bursts of all pull requests shuffled together, so a merge may come first and its opening last.
    """
    families: dict[int, list[Delivery]] = collections.defaultdict(list)
    for delivery in deliveries:
        families[FAMILIES.get(delivery.number, delivery.number)].append(delivery)
    cut = []
    for key in sorted(families):
        family = families[key]
        rng.shuffle(family)
        cut += [family[i : i + BURST] for i in range(0, len(family), BURST)]
    rng.shuffle(cut)
    return cut


def send_all(url: str, queued: list[list[Delivery]], *, lanes: int) -> list[Answer]:
    """POST every burst from ``SENDERS`` threads, ``lanes`` bursts at a time, all of a burst at
    once; a lane starts its next burst when every delivery of its last one is answered."""
    local, sessions = threading.local(), []

    def send(delivery: Delivery) -> Answer:
        if not hasattr(local, "http"):
            local.http = requests.Session()
            sessions.append(local.http)
        body = json.dumps(delivery.payload).encode()
        delivery_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/test",
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Delivery": delivery_id,
            "X-Hub-Signature-256": signed(SECRET, body),
        }
        sent = time.perf_counter()
        try:
            response = local.http.post(
                f"{url}/webhooks/github", data=body, headers=headers, timeout=30
            )
        except requests.RequestException as error:  # no answer at all: status 0
            status, outcome = 0, repr(error)
        else:
            status, outcome = response.status_code, None
            with contextlib.suppress(ValueError):  # an HTML error page: the status says enough
                outcome = response.json().get("outcome")
        answered = time.perf_counter()
        return Answer(delivery.number, delivery.label, delivery_id, status, sent, answered, outcome)

    queue = iter(queued)
    taking = threading.Lock()
    answers: list[Answer] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=SENDERS) as pool:

        def lane() -> None:
            while True:
                with taking:
                    burst = next(queue, None)
                if burst is None:
                    return
                answers.extend(pool.map(send, burst))

        runners = [threading.Thread(target=lane) for _ in range(lanes)]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join()
    for session in sessions:
        session.close()
    return answers


def overlapping(answers: list[Answer]) -> int:
    """How many pairs of deliveries for one pull request were in flight at the same time."""
    pairs = 0
    for _, same in itertools.groupby(sorted(answers, key=lambda a: a.number), lambda a: a.number):
        found = list(same)
        pairs += sum(
            a.sent < b.answered and b.sent < a.answered for a, b in itertools.combinations(found, 2)
        )
    return pairs


def wait_until_drained(app, cluster: Cluster) -> float:
    """Seconds until no job waits and every commit's latest desire is posted."""
    started = time.monotonic()
    engine = app.extensions["gatekeeper.engine"]
    while time.monotonic() - started < DRAIN_LIMIT:
        with Session(engine) as session:
            # Jobs first: a job may store new desires before it goes, never after.
            if jobs.pending(session) == 0 and outbox.pending_count(session) == 0:
                return time.monotonic() - started
        time.sleep(0.2)
    with Session(engine) as session:
        left = session.exec(
            select(CommitCheck).where(col(CommitCheck.posted_version) < col(CommitCheck.version))
        ).all()
        errors = [(row.head_sha[:12], row.attempts, row.last_error) for row in left]
        waiting = jobs.pending(session)
    pytest.fail(
        f"not drained in {DRAIN_LIMIT}s: {waiting} jobs, {len(left)} posts left {errors[:5]}\n"
        f"{cluster.log_tail()}"
    )


# ---------------------------------------------------------------------------- what should show


def redecide(app) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The check each open pull request's head should show, decided afresh from what is stored.

    Every open pull request is re-decided by ``decisions.reevaluate`` (so ``gate.evaluate``)
    in a transaction that is rolled back, and each commit's decisions are combined by
    ``gate.combine``. Also returns the pull requests whose stored gate is not what deciding
    afresh gives.
    """
    settings, now = settings_of(app), utcnow()
    verdicts: dict[str, list[gate.PullVerdict]] = collections.defaultdict(list)
    stale = []
    with Session(app.extensions["gatekeeper.engine"], expire_on_commit=False) as session:
        ids = session.exec(
            select(PullRequest.id).where(PullRequest.state == "open").order_by(col(PullRequest.id))
        ).all()
        for pull_id in ids:
            pull = store.lock_pull(session, pull_id=pull_id)
            assert pull is not None
            stored = (pull.gate, pull.gate_title, pull.gate_summary, tuple(pull.approved_by))
            decision = decisions.reevaluate(session, pull, settings=settings, now=now).decision
            fresh = (decision.gate, decision.title, decision.summary, decision.approved_by)
            if stored != fresh:
                stale.append(f"#{pull.number}: stored {stored[:2]}, decided {fresh[:2]}")
            verdicts[pull.head_sha].append(
                gate.PullVerdict(
                    number=pull.number,
                    author=pull.author_display,
                    waiting=decision.waiting,
                    title=decision.title,
                    summary=decision.summary,
                )
            )
        session.rollback()
    wanted = {
        sha: outbox.render(gate.combine(found), repo=REPO, settings=settings)
        for sha, found in verdicts.items()
    }
    return wanted, stale


def review_and_check_writes(fake: FakeGitHub) -> list[tuple[str, str, Any]]:
    """Every check-run write and review request the fake took, in order."""
    return [
        (call.method, call.path, call.json)
        for call in fake.writes()
        if "/check-runs" in call.path or call.path.endswith("/requested_reviewers")
    ]


def summary(seconds: list[float]) -> str:
    """p50, p99 and max, in milliseconds."""
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1000:.0f} / p99 {p99 * 1000:.0f} / max {ordered[-1] * 1000:.0f} ms"


# ---------------------------------------------------------------------------- the test


def shown_and_stored(app, fake: FakeGitHub, wanted: dict[str, dict[str, Any]]) -> list[str]:
    """What is wrong with each commit's outbox row and check runs on the fake, if anything."""
    with Session(app.extensions["gatekeeper.engine"]) as session:
        stored = {row.head_sha: row for row in session.exec(select(CommitCheck))}
    runs: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for _, run in sorted(fake.check_runs.items()):
        if run["name"] == CHECK:
            runs[run["head_sha"]].append(run)
    writes = collections.Counter(write.head_sha for write in fake.check_run_writes)
    wrong = []
    for sha, body in sorted(wanted.items()):
        row, shown = stored.get(sha), runs.get(sha, [{}])[-1]
        if row is None or row.body != body:
            wrong.append(f"{sha[:12]} stored {row and row.body}, gate.py says {body}")
        elif (row.posted_version, row.posted_fingerprint) != (row.version, row.fingerprint):
            wrong.append(f"{sha[:12]} posted version {row.posted_version} of {row.version}")
        elif (shown.get("conclusion"), shown.get("output", {}).get("title")) != (
            body["conclusion"],
            body["title"],
        ) or shown["output"]["summary"] != body["summary"]:
            wrong.append(f"{sha[:12]} GitHub shows {shown.get('output')}, gate.py says {body}")
    for sha, found in sorted(runs.items()):
        if len(found) > 1:
            wrong.append(f"{sha[:12]} has {len(found)} check runs of ours")
        if sha not in stored:
            wrong.append(f"{sha[:12]} has a check run the outbox never wanted")
        elif writes[sha] > stored[sha].version:
            wrong.append(
                f"{sha[:12]} written {writes[sha]} times for {stored[sha].version} versions"
            )
    return wrong


def test_concurrent_deliveries_end_with_the_gate_on_every_commit(github_fake, app, cluster):
    """Hundreds of overlapping deliveries, 4 web and 2 posting processes: every open pull
    request's head shows what gate.py decides from the final state, in one check run of ours
    written at most once per version, every answer is fast and no 5xx; a sweep then writes nothing."""
    fake = github_fake
    rng = random.Random(SEED)
    story = Story(fake)
    play(story, rng)
    kinds = {d.label.split(" ", 1)[1].split(" by ")[0] for d in story.deliveries}
    assert {"opened", "push", "check suite", "approved", "changes_requested"} <= kinds
    assert {"button", "comment"} <= kinds
    assert {"merged", "closed"} <= kinds and any("dismissed" in kind for kind in kinds), kinds
    promote(app, MENTEE, MENTORS, actor="ambv")
    fake.latency(write=WRITE_LATENCY)
    queued = bursts(story.deliveries, rng)

    started = time.monotonic()
    answers = send_all(cluster.url, queued, lanes=LANES)
    sending = time.monotonic() - started
    drained = wait_until_drained(app, cluster)
    handling, pairs = cluster.handling(), overlapping(answers)
    print(
        f"\n{len(answers)} deliveries in {len(queued)} bursts from {SENDERS} threads,"
        f" {LANES} bursts at a time, in {sending:.1f}s ({pairs} pairs for one pull request"
        f" at once), drained {drained:.1f}s later; answers {summary([a.seconds for a in answers])}, of which in"
        f" the web worker {summary(list(handling.values()))};"
        f" {dict(collections.Counter(a.outcome for a in answers))};"
        f" {len(fake.check_run_writes)} check-run writes"
    )
    failed = [f"{a.label}: {a.status} {a.outcome}" for a in answers if a.status not in (200, 202)]
    assert failed == [], cluster.log_tail()
    assert len(answers) == len(story.deliveries) and pairs >= 20
    with Session(app.extensions["gatekeeper.engine"]) as session:
        outcomes = collections.Counter(session.exec(select(models.Delivery.outcome)))
    assert set(outcomes) <= {"processed", "ignored"}, f"deliveries not applied: {outcomes}"

    wanted, stale = redecide(app)
    assert stale == [], "stored gates that deciding afresh contradicts"
    assert shown_and_stored(app, fake, wanted) == []
    asked = collections.Counter(
        path for _, path, _ in review_and_check_writes(fake) if "/requested_reviewers" in path
    )
    assert [path for path, n in asked.items() if n > 1] == [], "mentors asked twice"
    # The shared commits: a stranger's fork and the mentee's own backport do not pass them.
    assert wanted[story.heads[1]]["conclusion"] == gate.ACTION_REQUIRED
    assert "#101 by @stranger passes" in wanted[story.heads[1]]["summary"]
    assert wanted[story.heads[2]]["conclusion"] == gate.ACTION_REQUIRED
    assert wanted[story.heads[2]]["title"].endswith("(#102)")
    assert wanted[story.heads[201]]["title"] == "Passes for all 2 pull requests on this commit"

    cluster.stop_workers()  # what the sweep leaves is this process's to post, and to see
    before = review_and_check_writes(fake)
    with Session(app.extensions["gatekeeper.engine"], expire_on_commit=False) as session:
        report = sweeper.sweep(
            session, settings=settings_of(app), github=github_of(app), now=utcnow()
        )
    tally = Worker(app).drain()
    assert (report.failures, tally.failures) == ([], [])
    assert review_and_check_writes(fake)[len(before) :] == [], f"the sweep changed {report}"
    # How fast the answers came is printed above and measured by benchmarks/load.py, not
    # asserted: a timing bound in a test fails on a busy machine, not on a slow service.


def niceness(process: subprocess.Popen[bytes]) -> int:
    """A running process's nice value, as the kernel has it (field 19 of /proc/PID/stat)."""
    stat = Path(f"/proc/{process.pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[16])


def test_the_worker_processes_yield_the_cpu_to_the_web_tier(cluster):
    """Started as the Procfile starts them, the workers lower their own CPU priority by 10,
    so that on a shared host a burst of deliveries to apply never slows the answers."""
    assert cluster.web is not None
    deadline = time.monotonic() + 60
    logs = [cluster.logs / f"worker-{index}.log" for index in range(len(cluster.workers))]
    while not all("Worker running" in log.read_text() for log in logs):
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.1)
    web = niceness(cluster.web)
    assert [niceness(worker) for worker in cluster.workers] == [min(web + 10, 19)] * len(logs)
