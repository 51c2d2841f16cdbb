"""A delivery's cost, Gatekeeper's webhook endpoint beside a bare one, in one run: figures only.

Run with ``uv run python benchmarks/load.py [--seconds 30] [--rate 100] [--workers 4]
[--writes-per-installation 8] [--jitter SECONDS] [--explain N]``. It starts a throwaway PostgreSQL (the tests' ``postgres.py``)
and the test suite's fake GitHub in this process, every write answered after 300 ms as
GitHub's are, the App installed on 8 installations of 3 repositories each. Then:

1. Each kind of delivery once, in this process through the test client, after a warm-up:
   the SQL statements it runs (``before_cursor_execute``) and the calls of Gatekeeper's own
   functions (``sys.setprofile``, the package only) before its answer.
2. The bare endpoint (``bare_endpoint.py``: HMAC and JSON only), then Gatekeeper with
   ``--workers`` worker processes, each served as the Procfile's ``web`` line serves the app
   (gunicorn with ``gatekeeper/gunicorn_conf.py``: gthread workers), the workers started as
   its ``worker`` line. Both get the same deliveries at ``--rate`` a second, each sent on
   schedule whatever became of the earlier ones (open loop: latency counts from the
   scheduled time, so queueing counts): pull requests of a mentee and of others, opened,
   pushed to, reviewed, commented on, approved.

It prints answer p50/p99, the web tier's CPU (gunicorn's master and workers, from /proc) and
the workers' per 1,000 deliveries, the post lag (from the answer of the delivery that changed a
commit's check to the moment the fake GitHub stored that check), and the commits whose final
check is unlike the plan (``expected_final`` states the rules the plan follows), with the
story of the first ``--explain`` of them: the plan's expectation, the posted conclusion, and
the pull request's deliveries in the order they were sent, each with its place in the order
they were applied. ``--jitter`` delays each delivery by up to that many seconds, so a pull
request's deliveries arrive out of order, as GitHub's may. The answer may be 200 (applied in
the request) or 202 (stored for the worker to apply): the post lag counts from the answer
either way, and the drain waits for stored deliveries not applied yet. Everything is on
loopback; nothing is asserted, and on a shared machine only the columns of one run compare.

The goals on a 2-core machine: answer p99 < 50 ms at 100 deliveries a second; web CPU at most
twice the bare endpoint's; a mentor's review in at most 8 SQL statements; post lag p99 < 2 s
with 4 workers and 8 writes per installation; no final check unlike the plan.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import hashlib
import http.client
import json
import math
import os
import random
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
PACKAGE = str(ROOT / "gatekeeper") + os.sep
sys.path.insert(0, str(ROOT / "tests"))  # the fake GitHub, the payload builders, PostgreSQL


from fakegithub import FakeGitHub  # noqa: E402
from gatekeeper import create_app, db, gate, outbox  # noqa: E402
from gatekeeper import mentorships as lifecycle  # noqa: E402
from gatekeeper.config import normalise_database_url  # noqa: E402
from gatekeeper.extensions import github_of, settings_of  # noqa: E402
from gatekeeper.models import CommitCheck, Delivery, Job, utcnow  # noqa: E402
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
WARM_REQUESTS = 12  # before the clock starts, every web worker has imported and connected
STARTUP_LIMIT = 300.0  # seconds a server or worker may take to start (imports on a busy machine)
JITTER_SEED = 16  # --jitter delays the same deliveries by the same amounts in every run
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
    what: str = ""  # the delivery in a few words, for the story of a commit unlike the plan
    head: str = ""  # the head commit its payload names (a pull request's or a review's)


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


def plan(total: int, rate: float, *, jitter: float = 0.0) -> tuple[list[Planned], list[Story]]:
    """``total`` deliveries at ``rate`` a second; ``rate * STEP`` pull requests are in flight,
    each getting its next delivery ``STEP`` seconds after the last, a third of them a mentee's.

    ``jitter`` delays each delivery by up to that many seconds (the same for every run of one
    invocation): GitHub does not order its deliveries, and a pull request's then arrive in
    another order than they happened. Each story's GitHub times stay those of its script."""
    shuffle = random.Random(JITTER_SEED)
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
        sha = story.first_sha if step in (0, 1, 2) else story.head_sha
        planned.append(
            Planned(
                at=slot / rate + shuffle.uniform(0, jitter),
                story=index,
                step=step,
                event=event,
                delivery_id=str(uuid.uuid4()),
                body=body,
                signature=signed(SECRET, body),
                change=(story.repo, sha, conclusion) if conclusion else None,
                what=f"{_describe(event, payload)} at {stamp[11:19]} (head {sha[:7]})",
                head=payload["pull_request"]["head"]["sha"] if "pull_request" in payload else "",
            )
        )
    planned.sort(key=lambda delivery: delivery.at)
    return planned, list(stories.values())


def _describe(event: str, payload: dict[str, Any]) -> str:
    """A delivery in a few words: what happened, by whom."""
    action = payload.get("action", "")
    if event == "pull_request":
        return f"pull_request {action} {payload['pull_request']['head']['sha'][:7]}"
    if event == "pull_request_review":
        review = payload["review"]
        return f"review {review['state']} by {review['user']['login']} on {review['commit_id'][:7]}"
    comment = payload["comment"]
    return f"comment {comment['body'][:20]!r} by {comment['user']['login']}"


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
        SECRET_KEY="bench-secret-key-" + "x" * 32,
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

    def wait_for(self, text: str, names: list[str], *, limit: float = STARTUP_LIMIT) -> None:
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


def procfile(process: str, *, port: int) -> tuple[list[str], dict[str, str]]:
    """The Procfile's command for ``process`` as this interpreter runs it, on ``port`` of
    loopback, and the variables the line sets before it."""
    line = next(x for x in PROCFILE.read_text().splitlines() if x.startswith(f"{process}:"))
    line = line.partition(":")[2].replace("${PORT:-8000}", str(port))
    words, env = shlex.split(line.replace("0.0.0.0:", "127.0.0.1:")), {}
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    program = (
        [sys.executable, "-m", "gunicorn"] if words[0] == "gunicorn" else [str(BIN / words[0])]
    )
    return [*program, *words[1:]], env


def web_argv(app: str, *, port: int, cores: int) -> tuple[list[str], dict[str, str]]:
    """The Procfile's web process serving ``app`` (its last word), pinned to ``cores`` CPUs
    if there are more; the bare endpoint is found beside this file."""
    argv, env = procfile("web", port=port)
    if app != argv[-1]:
        argv[-1:] = ["--pythonpath", str(ROOT / "benchmarks"), app]
    available = sorted(os.sched_getaffinity(0))
    if len(available) > cores and shutil.which("taskset"):
        argv = ["taskset", "-c", ",".join(map(str, available[:cores])), *argv]
    return argv, env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(port: int, path: str, *, process: subprocess.Popen[bytes], warm: int) -> None:
    """Wait until the server answers ``path``, then ask ``warm`` more times (every worker
    imports, connects to the database and answers once before the clock starts)."""
    deadline = time.monotonic() + STARTUP_LIMIT
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
class Unlike:
    """A commit whose final check is unlike the plan: what the plan expected, what the fake
    GitHub shows, the check-run writes on it (seconds after the first delivery was due, and
    the conclusion each wrote), and the story (pull request) it belongs to."""

    repo: str
    sha: str
    story: int
    expected: str
    final: str | None
    writes: list[tuple[float, str | None]]


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
    apply_waits: list[float] = dataclasses.field(default_factory=list)  # stored to applied
    post_waits: list[float] = dataclasses.field(default_factory=list)  # last desire to posted
    changes: int = 0  # desired-check versions stored
    writes: int = 0  # check-run writes the fake stored
    github_calls: dict[str, int] = dataclasses.field(default_factory=dict)
    unposted: int = 0
    unapplied: int = 0  # deliveries not applied (or never stored) when the drain ended
    jobs_left: int = 0
    drain_seconds: float = 0.0
    duplicate_runs: int = 0
    wrong_final: int = 0
    wrong: list[Unlike] = dataclasses.field(default_factory=list)  # one per wrong commit
    wrong_unapplied: int = 0  # of wrong_final: a delivery of its pull request never applied
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
    # Commits a push left behind, by the check they show at the end.
    left_behind: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    wall_clock: float = 0.0  # time.time() - time.monotonic() during the run
    stories: list[str] = dataclasses.field(default_factory=list)  # of the commits unlike the plan

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
        argv, procfile_env = web_argv("bare_endpoint:create_app()", port=port, cores=options.cores)
        server = processes.start("gunicorn", argv, app_env(fake, pg.url(), **procfile_env))
        try:
            wait_ready(port, "/", process=server, warm=WARM_REQUESTS)
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
    label = f"Gatekeeper, {workers} worker{'s' if workers > 1 else ''}"
    label += f", {writes_per_installation} write{'s' if writes_per_installation > 1 else ''}/inst."
    try:
        fake.start()
        web_fake.start()
        argv, procfile_env = web_argv("gatekeeper:create_app()", port=port, cores=options.cores)
        server = processes.start("gunicorn", argv, app_env(web_fake, url, **procfile_env))
        worker_env = app_env(
            fake, url, GATEKEEPER_WRITES_PER_INSTALLATION=str(writes_per_installation)
        )
        worker_command, _ = procfile("worker", port=port)
        if options.worker_nice is not None:  # the Procfile's own is the command's default
            worker_command = [*worker_command, "--nice", str(options.worker_nice)]
        pool = [processes.start(f"worker{n}", worker_command, worker_env) for n in range(workers)]
        wait_ready(port, "/healthz", process=server, warm=WARM_REQUESTS)
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
        drained_at, unposted, jobs_left, unapplied = _drain(
            engine, options.drain, sent=len(deliveries)
        )
        server_cpu = cpu_seconds(server.pid) - before[0]
        worker_cpu = sum(cpu_seconds(p.pid) for p in pool) - before[1]
        postgres_cpu = cpu_seconds(postmaster) - before[2]
        processes.stop(pool)
        processes.stop([server])
        progress("  stopped")
        run = Run(label, sent, late, server_cpu, own, worker_cpu, postgres_cpu)
        run.wall_clock = time.time() - time.monotonic()
        run.worker_processes, run.idle_worker_cpu, run.idle_postgres_cpu = workers, *idle
        run.drain_seconds, run.unposted, run.jobs_left = drained_at, unposted, jobs_left
        run.unapplied = unapplied
        run.webhook_path_calls = len(web_fake.calls)
        run.tokens = fake.tokens_issued - marks[2]
        _github_figures(run, fake, marks, deliveries, applied=_applied_at(engine))
        _database_figures(run, engine, deliveries)
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


def _drain(engine: sa.Engine, limit: float, *, sent: int) -> tuple[float, int, int, int]:
    """Wait until the ``sent`` deliveries are applied and nothing is left to post (or ``limit``
    seconds): (seconds, checks, jobs, deliveries) left.

    A delivery GitHub gave up waiting for is still worked on (gunicorn reads it from its
    backlog later), and one answered 202 is stored for the worker to apply: until each is
    applied (``processed_at``), the check it changes is not in the outbox yet."""
    started = time.monotonic()
    while True:
        with Session(engine) as session:
            checks = outbox.pending_count(session)
            jobs = session.exec(select(sa.func.count()).select_from(Job)).one()
            applied = session.exec(
                select(sa.func.count())
                .select_from(Delivery)
                .where(col(Delivery.processed_at).is_not(None))
            ).one()
        waited = time.monotonic() - started
        if (checks == 0 and jobs == 0 and applied >= sent) or waited > limit:
            return waited, checks, jobs, max(0, sent - applied)
        time.sleep(0.25)


def _applied_at(engine: sa.Engine) -> dict[str, datetime]:
    """When each delivery was applied (``processed_at``), by its id."""
    with Session(engine) as session:
        rows = session.exec(select(Delivery.delivery_id, Delivery.processed_at))
        return {delivery_id: at for delivery_id, at in rows if at is not None}


Expected = tuple[frozenset[str | None], str]  # the conclusions a final check may show, and why


def expected_final(
    sha: str, script: list[Planned], applied: dict[str, datetime]
) -> Expected | None:
    """What a commit's check may end showing, and why; None if nothing in the script changes it.

    A pull request's head shows the last change of its script that touched it, in whatever
    order the deliveries came: an approval binds to the head of its moment by GitHub's times
    (a review to its commit_id, a ``/gatekeeper approve`` comment by its created_at against
    the heads seen, ``pulls.head_among``), so the order of application does not matter.

    A commit a push left behind is different: once no open pull request has it as its head,
    its check is no longer derived ("nobody asks anything of this commit any more; leave what
    it shows", ``outbox._derive_locked``). So it shows the gate as Gatekeeper knew it when it
    applied the first delivery naming the new head (the push, or a review of the new head):
    the last change of the script among the deliveries applied before that one, in an
    earlier transaction (the worker applies a pull request's waiting deliveries together, and
    derives each commit's check once, at the end: a batch's deliveries share one
    ``processed_at``), whichever commit the plan gives it, since a comment applied then bound
    to the only head known (a review of the old head, which changes nothing, counts as its
    opening's waiting). Or no check at all: Gatekeeper may never have known it as a head,
    when no delivery naming it was applied before the push, or when the worker read the pull
    request from GitHub (which shows the newest head) for a delivery it deferred, before the
    opening was applied.
    """
    on_it = [d.change[2] for d in script if d.change is not None and d.change[1] == sha]
    if not on_it:
        return None
    heads = [d.head for d in script if d.head]
    moves = [
        applied[d.delivery_id]
        for d in script
        if d.head not in ("", sha) and d.delivery_id in applied
    ]
    if heads[-1] == sha or not moves:
        return frozenset({on_it[-1]}), "its last change"
    moved = min(moves)
    known = [
        d
        for d in script
        if (d.change is not None or d.head == sha) and applied.get(d.delivery_id, moved) < moved
    ]
    if not any(d.head == sha for d in known):
        return frozenset({None}), "left behind by a push applied before any delivery naming it"
    # A delivery that names it and changes nothing (a review of it) shows its gate waiting.
    last = known[-1].change[2] if known[-1].change is not None else on_it[0]
    return frozenset({last, None}), "left behind by a push: its gate when the head moved on"


def _github_figures(
    run: Run,
    fake: FakeGitHub,
    marks: tuple[int, int, int],
    deliveries: list[Planned],
    *,
    applied: dict[str, datetime],
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
    # A commit's changes in the order of its story's script (the order they were sent in,
    # unless --jitter reordered them): the last one is what its check should end showing.
    changes = collections.defaultdict(list)
    in_script_order = sorted(
        zip(deliveries, run.sent, strict=True), key=lambda pair: (pair[0].story, pair[0].step)
    )
    for delivery, sent in in_script_order:
        if delivery.change is not None:
            changes[delivery.change[:2]].append((delivery, sent))
    scripts = collections.defaultdict(list)
    for delivery, _sent in in_script_order:
        scripts[delivery.story].append(delivery)
    expectations = {
        commit: expected_final(commit[1], scripts[made[-1][0].story], applied)
        or (frozenset({"-"}), "")
        for commit, made in changes.items()
    }
    lags = []
    for commit, made in changes.items():
        if None in expectations[commit][0] and commit not in by_commit:
            continue  # a head Gatekeeper never knew (the push came first): rightly no check
        for position, (delivery, sent) in enumerate(made):
            if sent.answered is None or not sent.status.startswith("2"):
                continue
            assert delivery.change is not None
            allowed = {delivery.change[2]} | {
                d.change[2] for d, _ in made[position + 1 :] if d.change
            }
            written = by_commit.get(commit, [])
            earlier = [w for w in written if w.at < sent.due]
            if earlier and earlier[-1].conclusion in allowed:
                # A later step that came first (--jitter) showed the end already.
                lags.append(0.0)
                continue
            shown = [w.at for w in written if w.at >= sent.due and w.conclusion in allowed]
            lags.append(min(shown) - sent.answered if shown else math.inf)
    run.lags = lags
    runs = collections.Counter(
        (r["url"].split("/check-runs/")[0], r["head_sha"]) for r in fake.check_runs.values()
    )
    run.duplicate_runs = sum(1 for count in runs.values() if count > 1)
    run.commits = len(changes)
    start = _start(deliveries, run)
    for (repo, sha), made in changes.items():
        story = made[-1][0].story
        expected, why = expectations[(repo, sha)]
        shown_runs = fake.check_runs_for(repo, sha)
        final = shown_runs[-1]["conclusion"] if shown_runs else None
        if why.startswith("left behind"):
            run.left_behind[str(final or "no check")] += 1
        if final not in expected:
            run.wrong_final += 1
            written = [(w.at - start, w.conclusion) for w in by_commit.get((repo, sha), [])]
            acceptable = " or ".join(sorted(str(c or "no check") for c in expected))
            run.wrong.append(Unlike(repo, sha, story, f"{acceptable} ({why})", final, written))
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


def _database_figures(run: Run, engine: sa.Engine, deliveries: list[Planned]) -> None:
    """Desired-check versions, deliveries by outcome, and the wrong final checks whose pull
    request had a delivery never applied: never stored (GitHub gave up on it: the sweep
    redelivers those), or stored and not applied yet when the workers stopped."""
    with Session(engine) as session:
        applied = set(
            session.exec(
                select(Delivery.delivery_id).where(col(Delivery.processed_at).is_not(None))
            )
        )
        run.changes = session.exec(
            select(sa.func.coalesce(sa.func.sum(CommitCheck.version), 0))
        ).one()
        rows = session.exec(select(Delivery.outcome, sa.func.count()).group_by(Delivery.outcome))
        run.outcomes = {outcome or "none": count for outcome, count in rows}
        run.apply_waits = [
            (processed - received).total_seconds()
            for received, processed in session.exec(
                select(Delivery.received_at, Delivery.processed_at).where(
                    Delivery.outcome == "processed"
                )
            )
            if processed is not None
        ]
        run.post_waits = [
            (posted - desired).total_seconds()
            for desired, posted in session.exec(
                select(CommitCheck.desired_at, CommitCheck.posted_at).where(
                    CommitCheck.posted_version == CommitCheck.version
                )
            )
            if posted is not None and desired is not None
        ]
    unapplied = {d.story for d in deliveries if d.delivery_id not in applied}
    run.wrong_unapplied = sum(unlike.story in unapplied for unlike in run.wrong)
    run.stories = [_story(run, engine, deliveries, unlike) for unlike in run.wrong]


def _start(deliveries: list[Planned], run: Run) -> float:
    """When the load began (``time.monotonic()``): each delivery was due that long after."""
    return run.sent[0].due - deliveries[0].at if run.sent else 0.0


def _story(run: Run, engine: sa.Engine, deliveries: list[Planned], unlike: Unlike) -> str:
    """A commit unlike the plan, and its pull request's deliveries in the order they were
    sent, each with its place in the order they were applied (the stored ``processed_at``:
    the request's own transaction, or the worker's for a delivery it applies later)."""
    start = _start(deliveries, run)
    clock = run.wall_clock + start  # a stored (wall-clock) time, in seconds after the start
    sent_of = {d.delivery_id: sent for d, sent in zip(deliveries, run.sent, strict=True)}
    mine = [d for d in deliveries if d.story == unlike.story]
    with Session(engine) as session:
        stored = {
            row.delivery_id: row
            for row in session.exec(
                select(Delivery).where(col(Delivery.delivery_id).in_([d.delivery_id for d in mine]))
            )
        }
    applied = sorted(
        (row.processed_at, row.delivery_id) for row in stored.values() if row.processed_at
    )
    rank = {delivery_id: place for place, (_, delivery_id) in enumerate(applied, 1)}
    writes = ", ".join(f"{at:.2f} s {conclusion}" for at, conclusion in unlike.writes)
    lines = [
        f"  {unlike.repo} {unlike.sha[:7]}: the plan {unlike.expected}, posted {unlike.final}"
        f" (check-run writes: {writes or 'none'})"
    ]
    for delivery in mine:
        sent, row = sent_of[delivery.delivery_id], stored.get(delivery.delivery_id)
        answered = f"{sent.answered - start:.2f} s" if sent.answered is not None else "never"
        if row is None:
            fate = "never stored"
        else:
            when = row.processed_at.timestamp() - clock if row.processed_at else None
            fate = f"{row.outcome}" + (
                f", applied #{rank[row.delivery_id]} at {when:.2f} s" if when else ""
            )
            fate += f" ({row.error})" if row.error else ""
        lines.append(
            f"    sent #{delivery.step + 1} at {delivery.at:.2f} s, answered {sent.status} at"
            f" {answered}; {fate}: {delivery.what}"
        )
    return "\n".join(lines)


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


@dataclasses.dataclass
class Cost:
    """What one delivery cost in this process: SQL statements, and calls of Gatekeeper's own
    functions (how many, how many distinct) from the request's start to its answer."""

    statements: int = 0
    calls: int = 0
    functions: set[str] = dataclasses.field(default_factory=set)
    status: int = 0


@contextmanager
def costing(cost: Cost) -> Iterator[None]:
    """Count SQL statements (every engine's ``before_cursor_execute``) and Gatekeeper's
    function calls (``sys.setprofile``, this thread: the test client answers in it)."""

    def statement(*_args: Any) -> None:
        cost.statements += 1

    def profile(frame: types.FrameType, event: str, _arg: Any) -> None:
        code = frame.f_code
        if event == "call" and code.co_filename.startswith(PACKAGE):
            cost.calls += 1
            cost.functions.add(f"{code.co_filename}:{code.co_firstlineno}")

    sa.event.listen(sa.Engine, "before_cursor_execute", statement)
    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(None)
        sa.event.remove(sa.Engine, "before_cursor_execute", statement)


def one_of_each(story: Story) -> list[tuple[str, Planned]]:
    """A mentee's pull request delivery by delivery, each kind once: opened, a comment,
    a push, its check suite, a mentor's approving review."""
    events = Events(repo=story.repo, installation_id=REPOS[story.repo])
    pull = {"number": story.number, "author": story.author}
    stamp = "2024-06-01T12:00:{:02d}Z"
    comment = events.comment(
        "created",
        number=story.number,
        sender="dev1",
        body="Looks good.",
        comment_id=story.index + 1,  # GitHub's ids are positive
    )
    kinds = [
        (
            "pull_request opened",
            "pull_request",
            events.pull_request(
                "opened", head_sha=story.first_sha, updated_at=stamp.format(1), **pull
            ),
        ),
        ("issue_comment", "issue_comment", comment),
        (
            "pull_request synchronize",
            "pull_request",
            events.pull_request(
                "synchronize", head_sha=story.head_sha, updated_at=stamp.format(2), **pull
            ),
        ),
        (
            "check_suite",
            "check_suite",
            events.check_suite("requested", head_sha=story.head_sha, numbers=[story.number]),
        ),
        (
            "review (a mentor approves)",
            "pull_request_review",
            events.review(
                "submitted",
                head_sha=story.head_sha,
                reviewer=MENTORS[0],
                state="approved",
                review_id=story.index * 10 + 1,
                submitted_at=stamp.format(3),
                updated_at=stamp.format(3),
                **pull,
            ),
        ),
    ]
    return [(kind, delivery(event, payload)) for kind, event, payload in kinds]


def delivery(event: str, payload: dict[str, Any]) -> Planned:
    """A delivery sent by itself, not on the load's schedule."""
    body = json.dumps(payload).encode()
    return Planned(0.0, -1, -1, event, str(uuid.uuid4()), body, signed(SECRET, body), None)


def cost_per_kind(pg: PostgresServer, stories: list[Story]) -> dict[str, Cost]:
    """Each kind of delivery once, through the test client on a fresh PostgreSQL database,
    after the same kinds for two other pull requests of the mentee (the warm-up: imports,
    caches, the repository and installation rows)."""
    mentee_pulls = [story for story in stories if story.mentee and story.number % 2][:3]
    found: dict[str, Cost] = {}
    with build_fake(stories) as fake:
        app = in_process_app(fake, pg.create_database())
        client = app.test_client()
        for story in mentee_pulls[:-1]:
            for _name, warm in one_of_each(story):
                post(client, warm)
        for kind, measured in one_of_each(mentee_pulls[-1]):
            cost = found[kind] = Cost()
            with costing(cost):
                cost.status = post(client, measured)
        close_app(app)
    return found


# ---------------------------------------------------------------- printing


def ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f">{TIMEOUT * 1000:.0f}" if math.isinf(value) else f"{value * 1000:.1f}"


def spread(values: list[float]) -> str:
    """Seconds at the median, the 99th percentile and the worst: "p50 / p99 / max"."""
    worst = max(values, default=math.nan)
    return f"{secs(percentile(values, 0.5))} / {secs(percentile(values, 0.99))} / {secs(worst)}"


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


def print_run(run: Run, *, explain: int = 0) -> None:
    """The details of one run, as it ends, and the stories of up to ``explain`` commits whose
    final check is unlike the plan."""
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
        f"  post lag p50 / p99 / max {spread(lags)} s over {len(lags)} changes"
        f" (never posted: {sum(map(math.isinf, lags))}; a write itself takes {WRITE_LATENCY} s)"
    )
    if run.unposted or run.jobs_left or run.unapplied:
        drained = (
            f"{run.drain_seconds:.0f} s later {run.unapplied} deliveries were not applied,"
            f" {run.unposted} checks and {run.jobs_left} jobs still queued"
        )
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
        f" ({run.wrong_unapplied} with a delivery never applied)"
    )
    for what, waits in (
        ("from stored to applied", run.apply_waits),
        ("from a commit's last desired check to its post", run.post_waits),
    ):
        if waits:
            print(f"  {what}, p50 / p99 / max: {spread(waits)} s")
    kept = ", ".join(f"{k} {v}" for k, v in sorted(run.left_behind.items()))
    print(f"  commits a push left behind, by the check they show: {kept}")
    print(
        f"  most check-run writes in flight for one installation: {run.max_concurrent_writes};"
        f" gunicorn WORKER TIMEOUTs: {run.worker_timeouts}; tracebacks in the logs:"
        f" {run.errors_logged}"
    )
    if run.stories and explain:
        shown = min(explain, len(run.stories))
        print(
            f"  the first {shown} of {len(run.stories)} commits unlike the plan (seconds after"
            " the first delivery was due; #n sent is the step of the pull request's script):"
        )
        for story in run.stories[:explain]:
            print(story)


def summary_table(runs: list[Run], options: argparse.Namespace) -> None:
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
        "deliveries unapplied / checks / jobs queued at the end",
        lambda r: f"{r.unapplied} / {r.unposted} / {r.jobs_left}",
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
    row(
        "final check unlike the plan (a delivery never applied)",
        lambda r: f"{r.wrong_final} / {r.commits} ({r.wrong_unapplied})",
        "0",
        bare=False,
    )
    row(
        "commits a push left behind, by the check they show",
        lambda r: ", ".join(f"{k} {v}" for k, v in sorted(r.left_behind.items())),
        "their gate when the head moved on, or none",
        bare=False,
    )
    row(
        "most writes in flight, one installation",
        lambda r: str(r.max_concurrent_writes),
        f"≤ {options.writes_per_installation}",
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
        f" {options.seconds:g} s, open loop"
        + (f", each delayed by up to {options.jitter:g} s" if options.jitter else "")
        + " =="
    )
    print(f"machine: {machine()}")
    print(
        f"the Procfile's web line ({' '.join(procfile('web', port=8000)[0][3:])}) on"
        f" {options.cores} cores; {options.workers} x the Procfile's worker line"
        + (f" with --nice {options.worker_nice}" if options.worker_nice is not None else "")
        + ";"
        f" PostgreSQL with fsync off; fake GitHub answers writes after"
        f" {WRITE_LATENCY * 1000:.0f} ms; {INSTALLATIONS} installations x {REPOS_EACH}"
        " repositories; a third of the pull requests a mentee's"
    )
    header = ["figure", *(run.label for run in runs), "goal"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, cells, goal in rows:
        print(f"| {name} | " + " | ".join(cells) + f" | {goal} |")
    print(
        "(the machine is shared with another engineer's work running at the same time: expect"
        " noise, and compare columns of one run rather than runs of different days)"
    )


def print_costs(costs: dict[str, Cost]) -> None:
    """What each kind of delivery cost in the request, against the goal for a review."""
    print(
        "\n| one delivery of each kind, in process, PostgreSQL | answer | SQL statements |"
        " Gatekeeper calls (distinct) | goal |"
    )
    print("|---|---|---|---|---|")
    for kind, cost in costs.items():
        goal = "≤ 8 statements" if kind.startswith("review") else ""
        print(
            f"| {kind} | {cost.status} | {cost.statements} | {cost.calls} ({len(cost.functions)})"
            f" | {goal} |"
        )


def main() -> None:
    """Parse the options, start PostgreSQL, run the bare endpoint and Gatekeeper, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="deliveries a second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each load run")
    parser.add_argument("--workers", type=int, default=4, help="gatekeeper worker processes")
    parser.add_argument(
        "--writes-per-installation",
        type=int,
        default=8,
        help="GATEKEEPER_WRITES_PER_INSTALLATION: check-run writes in flight per installation",
    )
    parser.add_argument("--cores", type=int, default=2, help="CPUs gunicorn may use")
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=None,
        help="the workers' --nice (default: the command's own, 10); 0 on a machine shared"
        " with other work at the default priority, which would leave the workers little",
    )
    parser.add_argument("--drain", type=float, default=15.0, help="seconds to wait for posts")
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        help="delay each delivery by up to this many seconds, so that a pull request's"
        " deliveries arrive out of order, as GitHub's may (default 0)",
    )
    parser.add_argument(
        "--explain",
        type=int,
        default=10,
        help="print the story of up to this many commits unlike the plan (default 10)",
    )
    options = parser.parse_args()
    for name in list(os.environ):  # this process's own apps read only what they are given
        if name in APP_ENV_NAMES or name.startswith(APP_ENV_PREFIXES):
            del os.environ[name]
    deliveries, stories = plan(
        int(options.rate * options.seconds), options.rate, jitter=options.jitter
    )
    print(f"machine: {machine()}", flush=True)
    pg = PostgresServer()
    pg.start()
    try:
        progress("each kind of delivery once, in process")
        costs = cost_per_kind(pg, stories)
        print_costs(costs)
        progress("the bare endpoint")
        runs = [run_bare(pg, deliveries, options)]
        print_run(runs[-1])
        progress(f"Gatekeeper, {options.workers} worker processes")
        runs.append(
            run_gatekeeper(
                pg,
                deliveries,
                stories,
                options,
                workers=options.workers,
                writes_per_installation=options.writes_per_installation,
            )
        )
        print_run(runs[-1], explain=options.explain)
        summary_table(runs, options)
        print_costs(costs)
        progress("done")
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
