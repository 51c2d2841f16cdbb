"""Open-loop webhook load on gunicorn and workers over PostgreSQL, against a fake GitHub: figures only.

Run with ``uv run python benchmarks/load.py [--rate 100] [--seconds 60] [--quick]``. It starts a
throwaway PostgreSQL (as the tests do) and the test suite's fake GitHub in this process, with
every write answered after 300 ms as GitHub's are, and the App installed on 8 installations of 3
repositories each. Then, one after the other, each on a fresh database:

* a bare Flask endpoint (``bare_endpoint.py``: HMAC and JSON only) under gunicorn;
* Gatekeeper under the same gunicorn settings, with 1 and with 4 ``gatekeeper worker``
  processes, and with 4 workers again and GATEKEEPER_WRITES_PER_INSTALLATION raised to 8;

each gets the same deliveries at a fixed rate, each sent on schedule whatever became of the
earlier ones (latency counts from the scheduled time, so queueing counts): pull requests of a
mentee and of others, opened, pushed to, reviewed, commented on, approved. It prints answer
latency, status counts, gunicorn's CPU per 1,000 deliveries against the bare endpoint's, and the
post lag (from the answer of the delivery that changed a commit's check to the moment the fake
GitHub stored that check). Then, in this process, where the time of a webhook request goes
(SQLite and PostgreSQL), and the GitHub calls: writes per gate change, reads on the webhook
path, token mints and the calls of a sweep where nothing changed. Everything is on loopback.
The figures depend on the machine and on whatever else runs on it; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import dataclasses
import functools
import hashlib
import http.client
import json
import math
import os
import pstats
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlmodel import Session, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the fake GitHub, the payload builders, PostgreSQL

import bare_endpoint  # noqa: E402  (beside this file)

from fakegithub import FakeGitHub  # noqa: E402
from gatekeeper import create_app, db, gate, handlers, outbox, webhooks  # noqa: E402
from gatekeeper import mentorships as lifecycle  # noqa: E402
from gatekeeper import pulls as store  # noqa: E402
from gatekeeper import sweep as sweeper  # noqa: E402
from gatekeeper.config import normalise_database_url  # noqa: E402
from gatekeeper.extensions import github_of, settings_of  # noqa: E402
from gatekeeper.models import CommitCheck, Delivery, Job, utcnow  # noqa: E402
from gatekeeper.worker import Worker  # noqa: E402
from postgres import PostgresServer  # noqa: E402
from webhook_events import Events, signed  # noqa: E402

SECRET = "bench-webhook-secret"
BASE_URL = "https://gatekeeper.example"
INSTALLATIONS = 8  # the worker paces writes per installation, so several share the load
REPOS_EACH = 3
REPOS = {
    f"org{i}/repo{j}": i for i in range(1, INSTALLATIONS + 1) for j in range(1, REPOS_EACH + 1)
}
MENTEE, MENTORS = "mpage", ("colesbury", "vstinner")
WRITE_LATENCY = 0.3  # seconds GitHub takes to answer a write
STEP = 1.0  # seconds between two deliveries for one pull request
SCRIPT_LENGTH = 6  # deliveries per pull request: opened, comment, review, push, approval, comment
IDLE_SECONDS = 2.0
TIMEOUT = 10.0  # GitHub gives up on a delivery after 10 s: a later answer counts as none
APP_ENV_PREFIXES = ("GITHUB_", "GATEKEEPER_")
APP_ENV_NAMES = ("DATABASE_URL", "SECRET_KEY", "WEB_CONCURRENCY")
TICK = os.sysconf("SC_CLK_TCK")
BIN = Path(sys.executable).parent
BEGAN = time.monotonic()


def progress(what: str) -> None:
    """A line on stderr saying what runs now, so that stdout holds only figures."""
    print(f"[{time.monotonic() - BEGAN:4.0f} s] {what}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- what is sent


@dataclasses.dataclass(frozen=True)
class Story:
    """One pull request the load opens, pushes to and reviews."""

    index: int
    repo: str
    number: int
    author: str
    first_sha: str
    head_sha: str  # after the push

    @property
    def mentee(self) -> bool:
        return self.author == MENTEE


@dataclasses.dataclass(frozen=True)
class Planned:
    """One delivery: when to send it (seconds after the start), and what it should change."""

    at: float
    story: int
    step: int
    event: str
    delivery_id: str
    body: bytes
    signature: str
    # (repo, head_sha, conclusion) the delivery makes the commit's check show, if it changes it.
    change: tuple[str, str, str] | None


def _sha(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()


def _step(story: Story, step: int, stamp: str) -> tuple[str, dict[str, Any], str | None]:
    """The ``step``-th delivery of a story: event, payload and the conclusion it should cause."""
    events = Events(repo=story.repo, installation_id=REPOS[story.repo])
    pull = {"number": story.number, "author": story.author}
    passer = f"dev{(story.index + step) % 40}"  # never a mentor: changes nothing
    waits = gate.ACTION_REQUIRED if story.mentee else gate.SUCCESS
    review_id = story.index * 10 + step
    if step == 0:
        payload = events.pull_request("opened", head_sha=story.first_sha, updated_at=stamp, **pull)
        return "pull_request", payload, waits
    if step in (1, 5):
        payload = events.comment(
            "created",
            number=story.number,
            sender=passer,
            body="Thanks! One question inline.",
            comment_id=review_id,
        )
        payload["comment"]["created_at"] = payload["comment"]["updated_at"] = stamp
        return "issue_comment", payload, None
    if step == 2:
        payload = events.review(
            "submitted",
            head_sha=story.first_sha,
            reviewer=passer,
            state="commented",
            review_id=review_id,
            submitted_at=stamp,
            updated_at=stamp,
            **pull,
        )
        return "pull_request_review", payload, None
    if step == 3:
        payload = events.pull_request(
            "synchronize", head_sha=story.head_sha, updated_at=stamp, **pull
        )
        return "pull_request", payload, waits
    # Step 4: a mentor approves the mentee's pull request (by review or by comment); someone
    # else approves the others', which changes nothing.
    if story.mentee and story.number % 2 == 0:
        payload = events.comment(
            "created",
            number=story.number,
            sender=MENTORS[1],
            body="/gatekeeper approve",
            comment_id=review_id,
        )
        payload["comment"]["created_at"] = payload["comment"]["updated_at"] = stamp
        return "issue_comment", payload, gate.SUCCESS
    payload = events.review(
        "submitted",
        head_sha=story.head_sha,
        reviewer=MENTORS[0] if story.mentee else passer,
        state="approved",
        review_id=review_id,
        submitted_at=stamp,
        updated_at=stamp,
        **pull,
    )
    return "pull_request_review", payload, gate.SUCCESS if story.mentee else None


def plan(total: int, rate: float) -> tuple[list[Planned], list[Story]]:
    """``total`` deliveries at ``rate`` a second; ``rate * STEP`` pull requests are in flight,
    each getting its next delivery ``STEP`` seconds after the last, a third of them a mentee's."""
    width = max(1, round(rate * STEP))
    repos = sorted(REPOS)
    epoch = utcnow().replace(microsecond=0) - timedelta(seconds=total + 3600)
    stories: dict[int, Story] = {}
    planned = []
    for slot in range(total):
        batch, offset = divmod(slot, width * SCRIPT_LENGTH)
        step, lane = divmod(offset, width)
        index = batch * width + lane
        if index not in stories:
            repo = repos[index % len(repos)]
            number = index // len(repos) + 1
            # A third are the mentee's, spread over every repository in turn.
            mentee = index % 3 == (index // len(repos)) % 3
            author = MENTEE if mentee else f"contributor{index % 50}"
            stories[index] = Story(
                index, repo, number, author, _sha(repo, number, 1), _sha(repo, number, 2)
            )
        story = stories[index]
        stamp = (epoch + timedelta(seconds=index, minutes=step)).strftime("%Y-%m-%dT%H:%M:%SZ")
        event, payload, conclusion = _step(story, step, stamp)
        body = json.dumps(payload).encode()
        sha = story.first_sha if step == 0 else story.head_sha
        planned.append(
            Planned(
                at=slot / rate,
                story=index,
                step=step,
                event=event,
                delivery_id=str(uuid.uuid4()),
                body=body,
                signature=signed(SECRET, body),
                change=(story.repo, sha, conclusion) if conclusion else None,
            )
        )
    return planned, list(stories.values())


def build_fake(stories: list[Story], *, write_latency: float = 0.0) -> FakeGitHub:
    """A fake GitHub (not started) with the App's installations, repositories and pull requests."""
    fake = FakeGitHub()
    for installation in range(1, INSTALLATIONS + 1):
        fake.add_installation(installation, account=f"org{installation}")
    for repo, installation in REPOS.items():
        fake.add_repo(repo, installation_id=installation)
    for story in stories:
        fake.add_pull(story.repo, story.number, author=story.author, head_sha=story.head_sha)
        fake.add_commit(story.repo, story.first_sha)
    fake.latency(write=write_latency)
    return fake


def promote(engine: sa.Engine, mentee: str = MENTEE, mentors: tuple[str, ...] = MENTORS) -> None:
    """A mentorship active since two days ago, as ``gatekeeper promote`` stores it."""
    now = utcnow()
    with Session(engine, expire_on_commit=False) as session:
        lifecycle.promote(
            session,
            mentee=mentee,
            mentors=list(mentors),
            actor="bench",
            now=now,
            start=now - timedelta(days=2),
        )
        session.commit()


# ---------------------------------------------------------------- processes


def cpu_seconds(root: int) -> float:
    """CPU time of a process and all its descendants, living or reaped (from /proc)."""
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            stats[int(entry)] = text[text.rindex(")") + 2 :].split()
    children = collections.defaultdict(list)
    for pid, fields in stats.items():
        children[int(fields[1])].append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            # utime, stime, and cutime, cstime of children already reaped.
            total += sum(int(value) for value in stats[pid][11:15])
            todo += children[pid]
    return total / TICK


def settled_cpu(root: int, *, limit: float = 15.0) -> float:
    """The CPU time of a server once it has stopped working: answers GitHub gave up waiting
    for are still worked on, and cost what the others did."""
    deadline, last = time.monotonic() + limit, cpu_seconds(root)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(root)
        if now - last < 0.02:
            return now
        last = now
    return last


def app_env(fake: FakeGitHub, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a server or worker process: this one's, minus Gatekeeper's own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(APP_ENV_PREFIXES) and key not in APP_ENV_NAMES
    }
    env.update(
        DATABASE_URL=database_url,
        GITHUB_APP_ID=str(fake.app_id),
        GITHUB_PRIVATE_KEY=fake.private_key_pem,
        GITHUB_API_URL=fake.api_url,
        GITHUB_URL=fake.url,
        GITHUB_WEBHOOK_SECRET=SECRET,
        GITHUB_APP_SLUG=fake.app_slug,
        GATEKEEPER_BASE_URL=BASE_URL,
        PYTHONUNBUFFERED="1",  # the worker's "running" line reaches its log at once
        **extra,
    )
    return env


class Processes:
    """The processes one run started, each logging to a file; stopped by their own ids."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self.started.append(process)
        return process

    def wait_for(self, text: str, names: list[str], *, limit: float = 60.0) -> None:
        """Wait until each named log shows ``text`` (a process has started up)."""
        deadline = time.monotonic() + limit
        while not all(text in self.log(name) for name in names):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {text!r} in the logs of {', '.join(names)}")
            time.sleep(0.1)

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def stop(self, processes: list[subprocess.Popen[bytes]] | None = None) -> None:
        """SIGTERM (gunicorn and the worker stop gracefully on it), SIGKILL after 15 s."""
        chosen = self.started if processes is None else processes
        for process in chosen:
            if process.poll() is None:
                process.terminate()
        for process in chosen:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def gunicorn_argv(app: str, *, port: int, workers: int, cores: int, chdir: Path) -> list[str]:
    """The same gunicorn settings for both endpoints, pinned to ``cores`` CPUs if there are more."""
    argv = [sys.executable, "-m", "gunicorn", "--workers", str(workers)]
    argv += ["--bind", f"127.0.0.1:{port}", "--chdir", str(chdir), app]
    available = sorted(os.sched_getaffinity(0))
    if len(available) > cores and shutil.which("taskset"):
        argv = ["taskset", "-c", ",".join(map(str, available[:cores])), *argv]
    return argv


def worker_argv(concurrency: int) -> list[str]:
    script = BIN / "gatekeeper"
    start = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from gatekeeper.cli import main; main()"]
    )
    return [*start, "worker", "--concurrency", str(concurrency)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(port: int, path: str, *, process: subprocess.Popen[bytes], warm: int) -> None:
    """Wait until the server answers ``path``, then ask ``warm`` more times (every worker
    imports, connects to the database and answers once before the clock starts)."""
    deadline = time.monotonic() + 60
    answered = 0
    while answered < warm:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server on port {port} did not start")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", path)
            connection.getresponse().read()
            answered += 1
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()


# ---------------------------------------------------------------- the load


@dataclasses.dataclass
class Sent:
    """What became of one delivery: when it was due, when its answer came, and the status."""

    due: float
    answered: float | None
    status: str


def fire(port: int, deliveries: list[Planned]) -> tuple[list[Sent], float]:
    """Send every delivery at its time, each on a connection of its own, however many are
    waiting for their answers; return the outcomes and how late the sender was at worst."""
    return asyncio.run(_fire(port, deliveries))


async def _fire(port: int, deliveries: list[Planned]) -> tuple[list[Sent], float]:
    loop = asyncio.get_running_loop()  # its clock is time.monotonic(), the fake GitHub's too
    start, worst, sending = loop.time() + 0.2, 0.0, []
    for delivery in deliveries:
        due = start + delivery.at
        pause = due - loop.time()
        if pause > 0:
            await asyncio.sleep(pause)
        worst = max(worst, -pause)
        sending.append(asyncio.create_task(_send(port, delivery, due)))
    return list(await asyncio.gather(*sending)), worst


async def _send(port: int, delivery: Planned, due: float) -> Sent:
    """One POST as GitHub makes it, timed from when it was due until its whole answer came."""
    loop = asyncio.get_running_loop()
    head = (
        "POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nUser-Agent: GitHub-Hookshot/bench\r\n"
        f"X-GitHub-Event: {delivery.event}\r\nX-GitHub-Delivery: {delivery.delivery_id}\r\n"
        f"X-Hub-Signature-256: {delivery.signature}\r\n"
        f"Content-Length: {len(delivery.body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    writer = None
    try:
        async with asyncio.timeout_at(due + TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head)
            writer.write(delivery.body)
            await writer.drain()
            status = (await reader.readline()).split()[1].decode()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            return Sent(due, loop.time(), status)
    except TimeoutError:
        return Sent(due, None, "timeout")
    except (OSError, IndexError, ValueError, asyncio.IncompleteReadError) as error:
        return Sent(due, None, type(error).__name__)
    finally:
        if writer is not None:
            writer.close()


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile; ``inf`` stands for what never happened."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else math.nan


@dataclasses.dataclass
class Run:
    """The figures of one run of the load."""

    label: str
    sent: list[Sent]
    scheduler_late: float
    server_cpu: float
    process_cpu: float  # this process: the load generator and the fake GitHub
    worker_cpu: float | None = None
    postgres_cpu: float | None = None
    lags: list[float] | None = None
    changes: int = 0  # desired-check versions stored
    writes: int = 0  # check-run writes the fake stored
    github_calls: dict[str, int] = dataclasses.field(default_factory=dict)
    unposted: int = 0
    jobs_left: int = 0
    drain_seconds: float = 0.0
    duplicate_runs: int = 0
    wrong_final: int = 0
    commits: int = 0
    max_concurrent_writes: int = 0
    webhook_path_calls: int = 0
    tokens: int = 0
    worker_processes: int = 0
    outcomes: dict[str, int] = dataclasses.field(default_factory=dict)
    worker_timeouts: int = 0
    errors_logged: int = 0
    idle_worker_cpu: float = 0.0  # CPU seconds a second, all worker processes, nothing to do
    idle_postgres_cpu: float = 0.0

    @property
    def latencies(self) -> list[float]:
        return [s.answered - s.due if s.answered is not None else math.inf for s in self.sent]

    @property
    def statuses(self) -> collections.Counter[str]:
        return collections.Counter(s.status for s in self.sent)

    @property
    def handled(self) -> int:
        """Deliveries the server worked on: every one it stored (some after GitHub's 10 s)."""
        return sum(self.outcomes.values()) if self.outcomes else len(self.sent)

    def cpu_per_1000(self, seconds: float | None) -> float | None:
        return None if seconds is None else seconds * 1000 / max(1, self.handled)


def run_bare(pg: PostgresServer, deliveries: list[Planned], options: argparse.Namespace) -> Run:
    """The same load on the bare endpoint, under the same gunicorn settings."""
    folder = Path(tempfile.mkdtemp(prefix="gatekeeper-load-"))
    processes = Processes(folder)
    port = free_port()
    with FakeGitHub() as fake:
        env = app_env(fake, pg.url())
        argv = gunicorn_argv(
            "bare_endpoint:create_app()",
            port=port,
            workers=options.web_workers,
            cores=options.cores,
            chdir=ROOT / "benchmarks",
        )
        server = processes.start("gunicorn", argv, env)
        try:
            wait_ready(port, "/", process=server, warm=options.web_workers * 3)
            cpu, own = cpu_seconds(server.pid), time.process_time()
            sent, late = fire(port, deliveries)
            own = time.process_time() - own
            cpu = settled_cpu(server.pid) - cpu
        finally:
            processes.stop()
    run = Run("bare endpoint", sent, late, cpu, own)
    run.worker_timeouts = processes.log("gunicorn").count("WORKER TIMEOUT")
    shutil.rmtree(folder, ignore_errors=True)
    return run


def run_gatekeeper(
    pg: PostgresServer,
    deliveries: list[Planned],
    stories: list[Story],
    options: argparse.Namespace,
    *,
    workers: int,
    writes_per_installation: int = 1,
) -> Run:
    """Gatekeeper under gunicorn with ``workers`` worker processes, on a fresh database."""
    url = pg.create_database()
    engine = db.make_engine(normalise_database_url(url))
    db.upgrade(normalise_database_url(url))
    promote(engine)
    folder = Path(tempfile.mkdtemp(prefix="gatekeeper-load-"))
    processes = Processes(folder)
    port = free_port()
    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
    # The web processes get a fake GitHub of their own, so every call on the webhook path is
    # counted apart from the workers' (the goal is none).
    fake = build_fake(stories, write_latency=WRITE_LATENCY)
    web_fake = build_fake(stories, write_latency=WRITE_LATENCY)
    label = f"{workers} worker{'s' if workers > 1 else ''}"
    if writes_per_installation > 1:
        label += f", {writes_per_installation} writes/inst."
    try:
        fake.start()
        web_fake.start()
        argv = gunicorn_argv(
            "gatekeeper:create_app()",
            port=port,
            workers=options.web_workers,
            cores=options.cores,
            chdir=ROOT,
        )
        server = processes.start("gunicorn", argv, app_env(web_fake, url))
        worker_env = app_env(
            fake, url, GATEKEEPER_WRITES_PER_INSTALLATION=str(writes_per_installation)
        )
        pool = [
            processes.start(f"worker{n}", worker_argv(options.concurrency), worker_env)
            for n in range(workers)
        ]
        wait_ready(port, "/healthz", process=server, warm=options.web_workers * 3)
        processes.wait_for("Worker running", [f"worker{n}" for n in range(workers)])
        progress("  servers up; idle, then the load")
        # Idle, the workers poll the outbox and the job queue: what that costs, per second.
        idle = sum(cpu_seconds(p.pid) for p in pool), cpu_seconds(postmaster)
        time.sleep(IDLE_SECONDS)
        idle = (
            (sum(cpu_seconds(p.pid) for p in pool) - idle[0]) / IDLE_SECONDS,
            (cpu_seconds(postmaster) - idle[1]) / IDLE_SECONDS,
        )
        marks = len(fake.calls), len(fake.check_run_writes), fake.tokens_issued
        before = (
            cpu_seconds(server.pid),
            sum(cpu_seconds(p.pid) for p in pool),
            cpu_seconds(postmaster),
            time.process_time(),
        )
        sent, late = fire(port, deliveries)
        own = time.process_time() - before[3]
        # Answers GitHub gave up waiting for are still worked on: the drain covers them too.
        progress("  answered; draining")
        drained_at, unposted, jobs_left = _drain(engine, options.drain)
        server_cpu = cpu_seconds(server.pid) - before[0]
        worker_cpu = sum(cpu_seconds(p.pid) for p in pool) - before[1]
        postgres_cpu = cpu_seconds(postmaster) - before[2]
        processes.stop(pool)
        processes.stop([server])
        progress("  stopped")
        run = Run(label, sent, late, server_cpu, own, worker_cpu, postgres_cpu)
        run.worker_processes, run.idle_worker_cpu, run.idle_postgres_cpu = workers, *idle
        run.drain_seconds, run.unposted, run.jobs_left = drained_at, unposted, jobs_left
        run.webhook_path_calls = len(web_fake.calls)
        run.tokens = fake.tokens_issued - marks[2]
        _github_figures(run, fake, marks, deliveries)
        _database_figures(run, engine)
        run.worker_timeouts = processes.log("gunicorn").count("WORKER TIMEOUT")
        run.errors_logged = sum(
            len(re.findall(r"Traceback|ERROR", processes.log(name)))
            for name in ["gunicorn", *(f"worker{n}" for n in range(workers))]
        )
    finally:
        processes.stop()
        fake.stop()
        web_fake.stop()
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)
    return run


def _drain(engine: sa.Engine, limit: float) -> tuple[float, int, int]:
    """Wait until nothing is left to post (or ``limit`` seconds): (seconds, checks, jobs) left."""
    started = time.monotonic()
    while True:
        with Session(engine) as session:
            checks = outbox.pending_count(session)
            left = session.exec(select(sa.func.count()).select_from(Job)).one()
        waited = time.monotonic() - started
        if (checks == 0 and left == 0) or waited > limit:
            return waited, checks, left
        time.sleep(0.25)


def _github_figures(
    run: Run, fake: FakeGitHub, marks: tuple[int, int, int], deliveries: list[Planned]
) -> None:
    """Calls by kind, post lags, duplicate runs, final checks and write concurrency."""
    calls = fake.calls[marks[0] :]
    kinds: collections.Counter[str] = collections.Counter()
    for call in calls:
        kinds[_kind(call.method, call.path)] += 1
    run.github_calls = dict(kinds)
    writes = fake.check_run_writes[marks[1] :]
    run.writes = len(writes)
    by_commit = collections.defaultdict(list)
    for write in writes:
        by_commit[(write.repo, write.head_sha)].append(write)
    # Post lag: from the answer of a delivery that changed a commit's check to the first
    # write on that commit, sent after it, showing its conclusion or a later change's.
    changes = collections.defaultdict(list)
    for delivery, sent in zip(deliveries, run.sent, strict=True):
        if delivery.change is not None:
            changes[delivery.change[:2]].append((delivery, sent))
    lags = []
    for commit, made in changes.items():
        for position, (delivery, sent) in enumerate(made):
            if sent.answered is None or not sent.status.startswith("2"):
                continue
            assert delivery.change is not None
            allowed = {delivery.change[2]} | {
                d.change[2] for d, _ in made[position + 1 :] if d.change
            }
            shown = [
                w.at
                for w in by_commit.get(commit, [])
                if w.at >= sent.due and w.conclusion in allowed
            ]
            lags.append(min(shown) - sent.answered if shown else math.inf)
    run.lags = lags
    runs = collections.Counter(
        (r["url"].split("/check-runs/")[0], r["head_sha"]) for r in fake.check_runs.values()
    )
    run.duplicate_runs = sum(1 for count in runs.values() if count > 1)
    run.commits = len(changes)
    for (repo, sha), made in changes.items():
        expected = made[-1][0].change
        shown_runs = fake.check_runs_for(repo, sha)
        final = shown_runs[-1]["conclusion"] if shown_runs else None
        run.wrong_final += expected is None or final != expected[2]
    run.max_concurrent_writes = _most_at_once(writes)


def _most_at_once(writes: list[Any]) -> int:
    """The most check-run writes one installation had in flight at once (each takes
    WRITE_LATENCY before the fake stores it)."""
    most = 0
    per_installation = collections.defaultdict(list)
    for write in writes:
        per_installation[REPOS[write.repo]].append(write.at)
    for stored in per_installation.values():
        edges = sorted([(at - WRITE_LATENCY, 1) for at in stored] + [(at, -1) for at in stored])
        running = 0
        for _, delta in edges:
            running += delta
            most = max(most, running)
    return most


def _database_figures(run: Run, engine: sa.Engine) -> None:
    with Session(engine) as session:
        run.changes = session.exec(
            select(sa.func.coalesce(sa.func.sum(CommitCheck.version), 0))
        ).one()
        rows = session.exec(select(Delivery.outcome, sa.func.count()).group_by(Delivery.outcome))
        run.outcomes = {outcome or "none": count for outcome, count in rows}


def _kind(method: str, path: str) -> str:
    """A GitHub call's kind, for counting."""
    if path.startswith("/search/"):
        return "search"
    if path.endswith("/access_tokens"):
        return "token mint"
    if re.fullmatch(r"/repos/[^/]+/[^/]+/pulls", path):
        return "list pulls"
    if path.endswith("/reviews"):
        return "list reviews"
    if re.fullmatch(r"/repos/[^/]+/[^/]+/pulls/\d+", path):
        return "get pull"
    if path.endswith("/requested_reviewers"):
        return f"{method} review request"
    if "/check-runs" in path:
        return f"{method} check run" + ("s of commit" if "/commits/" in path else "")
    if path.startswith("/app/hook/deliveries"):
        return "hook deliveries"
    return f"{method} {path}"


# ---------------------------------------------------------------- in this process


def in_process_app(fake: FakeGitHub, url: str, *, mentee: bool = True) -> Any:
    """The app against ``fake`` on ``url`` (migrated), with the mentee promoted unless not."""
    app = create_app(
        {
            "database_url": url,
            "secret_key": "bench",
            "github_app_id": fake.app_id,
            "github_private_key": fake.private_key_pem,
            "github_api_url": fake.api_url,
            "github_url": fake.url,
            "github_webhook_secret": SECRET,
            "github_app_slug": fake.app_slug,
            "base_url": BASE_URL,
        }
    )
    db.upgrade(settings_of(app).database_url)
    if mentee:
        promote(app.extensions["gatekeeper.engine"])
    return app


def whole_stories(deliveries: list[Planned], count: int) -> list[Planned]:
    """The first ``count`` deliveries in story order: each pull request's in turn, as a mix."""
    return sorted(deliveries, key=lambda d: (d.story, d.step))[:count]


def post(client: Any, delivery: Planned) -> int:
    response = client.post(
        "/webhooks/github",
        data=delivery.body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Delivery": delivery.delivery_id,
            "X-Hub-Signature-256": delivery.signature,
        },
    )
    response.close()
    return int(response.status_code)


def close_app(app: Any) -> None:
    github = github_of(app)
    if github is not None:
        github.close()
    app.extensions["gatekeeper.engine"].dispose()


class Phases:
    """Wall time by phase of a request, each moment charged to the innermost phase."""

    def __init__(self) -> None:
        self.seconds: collections.Counter[str] = collections.Counter()
        self.statements = 0
        self._stack: list[str] = []
        self._mark = 0.0

    def push(self, name: str) -> None:
        now = time.perf_counter()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._mark
        self._stack.append(name)
        self._mark = now

    def pop(self) -> None:
        now = time.perf_counter()
        self.seconds[self._stack.pop()] += now - self._mark
        self._mark = now

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.push(name)
            try:
                return function(*args, **kwargs)
            finally:
                self.pop()

        return timed


SIGNATURE, DATABASE, HANDLER, REPOSITORY, OUTBOX, COMMIT, OTHER = (
    "signature + JSON parse",
    "database round trips (SQL statements)",
    "handler logic (decide the gate, store)",
    "repository row (remember_installation)",
    "outbox commit_gates (derive the commits' checks)",
    "commit (ORM flush + COMMIT)",
    "the rest (Flask, routing, ORM, answer)",
)


@contextmanager
def instrumented(phases: Phases, engine: sa.Engine) -> Iterator[None]:
    """Charge the webhook path's phases while inside; everything is put back after."""

    def replace(owner: Any, name: str, value: Any) -> None:
        original = getattr(owner, name)
        setattr(owner, name, value)
        stack.callback(setattr, owner, name, original)

    def before(*_args: Any) -> None:
        phases.statements += 1
        phases.push(DATABASE)

    def after(*_args: Any) -> None:
        phases.pop()

    with ExitStack() as stack:
        replace(webhooks, "signature_matches", phases.wrap(SIGNATURE, webhooks.signature_matches))
        replace(webhooks, "json", types.SimpleNamespace(loads=phases.wrap(SIGNATURE, json.loads)))
        replace(
            store, "remember_installation", phases.wrap(REPOSITORY, store.remember_installation)
        )
        replace(outbox, "commit_gates", phases.wrap(OUTBOX, outbox.commit_gates))
        replace(orm.Session, "commit", phases.wrap(COMMIT, orm.Session.commit))
        originals = dict(handlers.HANDLERS)
        handlers.HANDLERS.update({key: phases.wrap(HANDLER, h) for key, h in originals.items()})
        stack.callback(handlers.HANDLERS.update, originals)
        for event, listener in (
            ("before_cursor_execute", before),
            ("after_cursor_execute", after),
            ("handle_error", after),
        ):
            sa.event.listen(engine, event, listener)
            stack.callback(sa.event.remove, engine, event, listener)
        yield


def where_the_time_goes(
    pg: PostgresServer, deliveries: list[Planned], count: int
) -> dict[str, Any]:
    """Deliveries one by one through the test client, per database: wall time by phase, then
    cProfile's busiest Gatekeeper functions (a second pass, on a fresh database)."""
    found: dict[str, Any] = {}
    chosen = whole_stories(deliveries, count)
    with tempfile.TemporaryDirectory() as folder, FakeGitHub() as fake:
        for installation in range(1, INSTALLATIONS + 1):
            fake.add_installation(installation, account=f"org{installation}")
        for name in ("SQLite", "PostgreSQL"):
            urls = [
                f"sqlite:///{Path(folder) / f'profile{n}.sqlite'}"
                if name == "SQLite"
                else pg.create_database()
                for n in range(2)
            ]
            app = in_process_app(fake, urls[0])
            client, phases = app.test_client(), Phases()
            with instrumented(phases, app.extensions["gatekeeper.engine"]):
                cpu = time.process_time()
                for delivery in chosen:
                    phases.push(OTHER)
                    post(client, delivery)
                    phases.pop()
                cpu = time.process_time() - cpu
            close_app(app)
            app = in_process_app(fake, urls[1])
            client, profile = app.test_client(), cProfile.Profile()
            profile.enable()
            for delivery in chosen:
                post(client, delivery)
            profile.disable()
            close_app(app)
            found[name] = {"phases": phases, "cpu": cpu, "top": _top(profile, count)}
    os.environ["GITHUB_WEBHOOK_SECRET"] = SECRET
    try:
        client = bare_endpoint.create_app().test_client()
    finally:
        del os.environ["GITHUB_WEBHOOK_SECRET"]
    started = time.perf_counter()
    for delivery in chosen:
        post(client, delivery)
    found["bare"] = time.perf_counter() - started
    return found


def _top(profile: cProfile.Profile, count: int, limit: int = 12) -> list[tuple[str, float, float]]:
    """(function, ms per delivery cumulative, calls per delivery) of Gatekeeper's busiest."""
    stats = pstats.Stats(profile)
    rows = []
    for (filename, _line, function), entry in stats.stats.items():  # type: ignore[attr-defined]
        if f"{os.sep}gatekeeper{os.sep}" in filename and "migrations" not in filename:
            calls, cumulative = entry[1], entry[3]
            rows.append(
                (f"{Path(filename).stem}.{function}", cumulative * 1000 / count, calls / count)
            )
    return sorted(rows, key=lambda row: -row[1])[:limit]


def calls_per_change(
    pg: PostgresServer, deliveries: list[Planned], stories: list[Story], count: int
) -> dict[str, Any]:
    """One delivery at a time, each followed by a worker drain: check-run writes per gate
    change, and GitHub calls during the requests themselves."""
    url = pg.create_database()
    with build_fake(stories) as fake:
        app = in_process_app(fake, url)
        client, engine = app.test_client(), app.extensions["gatekeeper.engine"]
        changes = writes = request_calls = 0
        worker_calls: collections.Counter[str] = collections.Counter()
        for delivery in whole_stories(deliveries, count):
            versions, stored, calls = _versions(engine), len(fake.check_run_writes), len(fake.calls)
            post(client, delivery)
            request_calls += len(fake.calls) - calls
            calls = len(fake.calls)
            Worker(app).drain()
            changes += _versions(engine) - versions
            writes += len(fake.check_run_writes) - stored
            worker_calls.update(_kind(c.method, c.path) for c in fake.calls[calls:])
        close_app(app)
    return {
        "deliveries": count,
        "changes": changes,
        "writes": writes,
        "request_calls": request_calls,
        "worker_calls": dict(worker_calls),
    }


def _versions(engine: sa.Engine) -> int:
    with Session(engine) as session:
        return int(
            session.exec(select(sa.func.coalesce(sa.func.sum(CommitCheck.version), 0))).one()
        )


def sweep_calls(
    pg: PostgresServer, *, mentees: int, pulls_each: int, others_each: int
) -> dict[str, Any]:
    """GitHub calls of sweeps once everything is known and nothing changed on GitHub.

    Sweep 1 learns the installations and pull requests, a worker posts what it asked for
    (checks, review requests), sweep 2 and 3 follow, each after the scan interval elapsed.
    """
    names = [f"mentee{n}" for n in range(1, mentees + 1)]
    repos = sorted(REPOS)
    with FakeGitHub() as fake:
        for installation in range(1, INSTALLATIONS + 1):
            fake.add_installation(installation, account=f"org{installation}")
        for repo, installation in REPOS.items():
            fake.add_repo(repo, installation_id=installation)
        number = 0
        for index, mentee in enumerate(names):
            for n in range(pulls_each):
                number += 1
                repo = repos[(index * 7 + n * 5) % len(repos)]
                fake.add_pull(repo, number, author=mentee, head_sha=_sha("sweep", number))
        for repo in repos:
            for _ in range(others_each):
                number += 1
                fake.add_pull(repo, number, author=f"dev{number}", head_sha=_sha("sweep", number))
        app = in_process_app(fake, pg.create_database(), mentee=False)
        engine, settings = app.extensions["gatekeeper.engine"], settings_of(app)
        for mentee in names:
            promote(engine, mentee, MENTORS)
        interval = timedelta(seconds=settings.scan_interval + 60)
        start, found = utcnow(), []
        for round_ in range(3):
            mark = len(fake.calls)
            with Session(engine, expire_on_commit=False) as session:
                report = sweeper.sweep(
                    session, settings=settings, github=github_of(app), now=start + round_ * interval
                )
            calls = fake.calls[mark:]
            found.append((report, calls))
            Worker(app).drain()
        close_app(app)
    return {
        "mentees": mentees,
        "pulls": mentees * pulls_each,
        "others": len(repos) * others_each,
        "repos": len(repos),
        "installations": INSTALLATIONS,
        "rounds": found,
    }


# ---------------------------------------------------------------- printing


def ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f">{TIMEOUT * 1000:.0f}" if math.isinf(value) else f"{value * 1000:.1f}"


def secs(value: float) -> str:
    if math.isnan(value):
        return "-"
    return "never" if math.isinf(value) else f"{value:.2f}"


def ratio(value: float, base: float) -> str:
    if math.isnan(value) or not base:
        return "-"
    return f">{TIMEOUT / base:.0f}x" if math.isinf(value) else f"{value / base:.1f}x"


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {model};"
        f" load average {load}; code at {revision()}"
    )


def revision() -> str:
    """The commit measured, and whether the package had uncommitted changes."""
    git = ["git", "-C", str(ROOT)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "gatekeeper"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit"
    return commit + (" with uncommitted changes to gatekeeper/" if dirty else "")


def print_run(run: Run) -> None:
    """The details of one run, as it ends."""
    latencies = run.latencies
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(run.statuses.items()))
    quantiles = " / ".join(ms(percentile(latencies, q)) for q in (0.5, 0.99, 1.0))
    print(f"\n== {run.label} ==")
    print(
        f"  answers p50 / p99 / max {quantiles} ms ({len(run.sent)} sent: {statuses};"
        f" the sender was {run.scheduler_late * 1000:.0f} ms late at worst)"
    )
    line = f"  CPU s per 1,000 deliveries: gunicorn {run.cpu_per_1000(run.server_cpu):.2f}"
    if run.worker_cpu is not None:
        line += f", workers {run.cpu_per_1000(run.worker_cpu):.2f}"
        line += f", PostgreSQL {run.cpu_per_1000(run.postgres_cpu):.2f}"
    line += f", this process (sender + fake GitHub) {run.cpu_per_1000(run.process_cpu):.2f}"
    print(line)
    if run.lags is None:
        return
    lags = run.lags
    print(
        f"  idle, before the load: workers {run.idle_worker_cpu:.0%} of a core,"
        f" PostgreSQL {run.idle_postgres_cpu:.0%}"
    )
    print(
        f"  post lag p50 / p99 / max {secs(percentile(lags, 0.5))} / {secs(percentile(lags, 0.99))}"
        f" / {secs(max(lags, default=math.nan))} s over {len(lags)} changes"
        f" (never posted: {sum(map(math.isinf, lags))}; a write itself takes {WRITE_LATENCY} s)"
    )
    if run.unposted or run.jobs_left:
        drained = f"{run.drain_seconds:.0f} s later {run.unposted} checks and {run.jobs_left} jobs were still queued"
    else:
        drained = f"all posted {run.drain_seconds:.1f} s after the last answer"
    print(
        f"  outbox: {run.changes} desired-check versions, {run.writes} check-run writes; {drained}"
    )
    calls = ", ".join(f"{k} {v}" for k, v in sorted(run.github_calls.items()))
    print(f"  the workers' GitHub calls: {calls}")
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(run.outcomes.items()))
    print(
        f"  deliveries stored: {outcomes}; GitHub calls from webhook requests:"
        f" {run.webhook_path_calls}; commits with 2+ check runs: {run.duplicate_runs};"
        f" final check unlike the plan: {run.wrong_final} of {run.commits}"
    )
    print(
        f"  most check-run writes in flight for one installation: {run.max_concurrent_writes};"
        f" gunicorn WORKER TIMEOUTs: {run.worker_timeouts}; tracebacks in the logs:"
        f" {run.errors_logged}"
    )


def print_profile(found: dict[str, Any], count: int) -> None:
    """Where the time of a request goes, by phase and by function."""
    names = [name for name in found if name != "bare"]
    print(
        f"\n== where the time of a webhook request goes: {count} deliveries one by one through"
        " the test client =="
    )
    print(f"  {'ms per delivery (exclusive wall time)':<44}" + "".join(f"{n:>16}" for n in names))
    for phase in (SIGNATURE, DATABASE, COMMIT, HANDLER, OUTBOX, REPOSITORY, OTHER):
        cells = []
        for name in names:
            phases: Phases = found[name]["phases"]
            value = phases.seconds[phase]
            cells.append(f"{value * 1000 / count:.2f} ({value / sum(phases.seconds.values()):.0%})")
        print(f"  {phase:<44}" + "".join(f"{cell:>16}" for cell in cells))

    def line(label: str, values: list[float], digits: int = 2) -> None:
        print(f"  {label:<44}" + "".join(f"{value:16.{digits}f}" for value in values))

    line("total", [sum(found[n]["phases"].seconds.values()) * 1000 / count for n in names])
    line("  of which CPU (this process)", [found[n]["cpu"] * 1000 / count for n in names])
    line("SQL statements per delivery", [found[n]["phases"].statements / count for n in names], 1)
    print(f"  the bare endpoint, the same way: {found['bare'] * 1000 / count:.2f} ms per delivery")
    for name in names:
        print(f"  cProfile on {name}, Gatekeeper's functions by cumulative time:")
        print("    ms/delivery  calls/delivery")
        for function, cumulative, calls in found[name]["top"]:
            print(f"    {cumulative:11.2f}  {calls:14.1f}  {function}")


def _sweep_line(calls: list[Any]) -> str:
    kinds: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for call in calls:
        counts = kinds[_kind(call.method, call.path)]
        counts[0] += 1
        counts[1] += call.status == 304
    detail = ", ".join(
        f"{kind} {n}" + (f" ({not_modified} x 304)" if not_modified else "")
        for kind, (n, not_modified) in sorted(kinds.items())
    )
    return f"{len(calls)} calls, {sum(c.counted for c in calls)} counted: {detail}"


def print_sweeps(found: dict[str, Any]) -> None:
    print(
        f"\n== sweeps: {found['mentees']} mentees with {found['pulls']} open pull requests,"
        f" {found['others']} other open pull requests, {found['repos']} repositories in"
        f" {found['installations']} installations; each sweep a scan interval after the last =="
    )
    for number, (report, calls) in enumerate(found["rounds"], start=1):
        print(f"  sweep {number}: {_sweep_line(calls)}; failures {len(report.failures)}")
    print(
        "  (sweep 2 finds the pull-request pages that sweep 1's review requests changed;"
        " sweep 3 is the steady state)"
    )


def summary_table(runs: list[Run], extra: dict[str, Any], options: argparse.Namespace) -> None:
    """Everything in one table, to paste into an issue note."""
    bare = runs[0]
    bare_p99 = percentile(bare.latencies, 0.99)
    bare_cpu = bare.cpu_per_1000(bare.server_cpu) or math.nan
    rows: list[tuple[str, list[str], str]] = []

    def row(name: str, cell: Callable[[Run], str], goal: str = "", *, bare: bool = True) -> None:
        cells = [cell(run) if bare or run.lags is not None else "" for run in runs]
        rows.append((name, cells, goal))

    def lag(run: Run, share: float) -> str:
        return secs(percentile(run.lags or [], share))

    row(
        "answered 2xx / sent",
        lambda r: f"{sum(s.status[0] == '2' for s in r.sent)} / {len(r.sent)}",
    )
    row("no answer within 10 s", lambda r: str(sum(math.isinf(x) for x in r.latencies)), "0")
    row(
        "answer p50 / p99 / max (ms)",
        lambda r: " / ".join(ms(percentile(r.latencies, q)) for q in (0.5, 0.99, 1.0)),
        "p99 < 50",
    )
    row("answer p99 ÷ bare endpoint's", lambda r: ratio(percentile(r.latencies, 0.99), bare_p99))
    row("gunicorn CPU s / 1,000 deliveries", lambda r: f"{r.cpu_per_1000(r.server_cpu):.2f}")
    row(
        "gunicorn CPU ÷ bare endpoint's",
        lambda r: ratio(r.cpu_per_1000(r.server_cpu) or 0, bare_cpu),
        "≤ 2x",
    )
    row(
        "post lag p50 / p99 (s)",
        lambda r: f"{lag(r, 0.5)} / {lag(r, 0.99)}",
        "p99 < 2 (4 workers)",
        bare=False,
    )
    row(
        "checks / jobs still queued at the end",
        lambda r: f"{r.unposted} / {r.jobs_left}",
        "0",
        bare=False,
    )
    row(
        "check-run writes / gate changes",
        lambda r: f"{r.writes} / {r.changes}",
        "≤ 1 each",
        bare=False,
    )
    row("commits with 2+ check runs", lambda r: str(r.duplicate_runs), "0", bare=False)
    row("final check unlike the plan", lambda r: f"{r.wrong_final} / {r.commits}", "0", bare=False)
    row(
        "most writes in flight, one installation",
        lambda r: str(r.max_concurrent_writes),
        "1",
        bare=False,
    )
    row("GitHub calls from webhook requests", lambda r: str(r.webhook_path_calls), "0", bare=False)
    row(
        "token mints per installation (run)",
        lambda r: f"{r.tokens / INSTALLATIONS:.1f}",
        "≤ 1 an hour",
        bare=False,
    )
    row(
        "worker CPU s / 1,000 deliveries",
        lambda r: f"{r.cpu_per_1000(r.worker_cpu):.2f}",
        bare=False,
    )
    row("workers idle, CPU (share of a core)", lambda r: f"{r.idle_worker_cpu:.0%}", bare=False)
    row(
        "PostgreSQL CPU s / 1,000 deliveries",
        lambda r: f"{r.cpu_per_1000(r.postgres_cpu):.2f}",
        bare=False,
    )
    row("sender + fake GitHub CPU s / 1,000", lambda r: f"{r.cpu_per_1000(r.process_cpu):.2f}")

    print(
        f"\n== summary: {len(bare.sent)} deliveries at {options.rate:g}/s for"
        f" {options.seconds:g} s, open loop =="
    )
    print(f"machine: {machine()}")
    print(
        f"gunicorn --workers {options.web_workers} (sync) on {options.cores} cores;"
        f" gatekeeper worker --concurrency {options.concurrency} per worker process;"
        f" PostgreSQL with fsync off; fake GitHub answers writes after"
        f" {WRITE_LATENCY * 1000:.0f} ms; {INSTALLATIONS} installations x {REPOS_EACH}"
        " repositories; a third of the pull requests a mentee's"
    )
    header = ["figure", *(run.label for run in runs), "goal"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, cells, goal in rows:
        print(f"| {name} | " + " | ".join(cells) + f" | {goal} |")
    per_change, sweeps = extra["per_change"], extra["sweeps"]
    print("\n| GitHub calls | measured | goal |")
    print("|---|---|---|")
    print(
        f"| check-run writes per gate change, each delivery drained"
        f" ({per_change['deliveries']} deliveries) | {per_change['writes']} /"
        f" {per_change['changes']} = {per_change['writes'] / max(1, per_change['changes']):.2f}"
        " | exactly 1 |"
    )
    worker_reads = per_change["worker_calls"].get("GET check runs of commit", 0)
    print(
        f"| worker reads per check-run write (same deliveries) |"
        f" {worker_reads / max(1, per_change['writes']):.2f} (GET check runs of the commit) | |"
    )
    print(
        f"| GitHub calls during webhook requests, in process | {per_change['request_calls']}"
        " (under load: see the table above) | 0 |"
    )
    print(
        "| token mints per installation per hour | one per worker process and installation"
        f" (the 4-worker runs: {runs[2].tokens / INSTALLATIONS:.1f} each); a token lives an"
        " hour | ≤ 1 |"
    )
    goal = (
        f"{sweeps['mentees']} searches + {sweeps['pulls']} review lists + {sweeps['repos']} x 304"
    )
    for number in (2, 3):
        _report, calls = sweeps["rounds"][number - 1]
        print(
            f"| sweep {number}, nothing changed (M={sweeps['mentees']}, P={sweeps['pulls']},"
            f" R={sweeps['repos']}, {sweeps['installations']} installations) |"
            f" {_sweep_line(calls)} | {goal} |"
        )
    print(
        "(the machine is shared with another engineer's work running at the same time: expect"
        " noise, and compare columns of one run rather than runs of different days)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="deliveries a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each load run")
    parser.add_argument("--quick", action="store_true", help="10-second runs, a smaller profile")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--cores", type=int, default=2, help="CPUs gunicorn may use")
    parser.add_argument("--concurrency", type=int, default=4, help="threads per worker process")
    parser.add_argument("--drain", type=float, default=None, help="seconds to wait for posts")
    options = parser.parse_args()
    if options.quick:
        options.seconds = min(options.seconds, 10.0)
    if options.drain is None:
        options.drain = 10.0 if options.quick else 15.0
    for name in list(os.environ):  # this process's own apps read only what they are given
        if name in APP_ENV_NAMES or name.startswith(APP_ENV_PREFIXES):
            del os.environ[name]
    profile_count = 120 if options.quick else 240
    deliveries, stories = plan(int(options.rate * options.seconds), options.rate)
    print(f"machine: {machine()}", flush=True)
    pg = PostgresServer()
    pg.start()
    try:
        progress("the bare endpoint")
        runs = [run_bare(pg, deliveries, options)]
        print_run(runs[-1])
        for workers, writes in ((1, 1), (4, 1), (4, 8)):
            progress(
                f"Gatekeeper, {workers} worker process(es), {writes} write(s) per installation"
            )
            runs.append(
                run_gatekeeper(
                    pg,
                    deliveries,
                    stories,
                    options,
                    workers=workers,
                    writes_per_installation=writes,
                )
            )
            print_run(runs[-1])
        progress("where the time goes")
        found = where_the_time_goes(pg, deliveries, profile_count)
        print_profile(found, profile_count)
        progress("GitHub calls per change, sweeps")
        extra = {
            "per_change": calls_per_change(pg, deliveries, stories, 60 if options.quick else 120),
            "sweeps": sweep_calls(pg, mentees=3, pulls_each=4, others_each=2),
        }
        print_sweeps(extra["sweeps"])
        summary_table(runs, extra, options)
        progress("done")
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
