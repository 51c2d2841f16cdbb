"""What metrics and logs cost: a ``/metrics`` scrape, and what one delivery pays for them.

Run with ``uv run python benchmarks/observability.py [--pulls N] [--scrapes N]``. A fresh
SQLite database gets one mentorship and N waiting pull requests through the fake GitHub;
then ``/metrics`` is scraped in this process (``gatekeeper serve``'s way) and again in a child
with ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn's way, reading the files of this process and
of as many dead workers as ``--files`` says). Also timed: counting one delivery, and one log
line through the JSON formatter with the scrubber. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def scrape_times(pulls: int, scrapes: int) -> list[float]:
    """Milliseconds per scrape of an app holding ``pulls`` waiting pull requests."""
    from fakegithub import FakeGitHub
    from gate_support import INSTALLATION, REPO, World, app_for
    from gatekeeper import github_of

    fake = FakeGitHub()
    fake.start()
    fake.add_installation(INSTALLATION, account="python")
    fake.add_repo(REPO, installation_id=INSTALLATION)
    with tempfile.TemporaryDirectory() as where:
        app = app_for(fake, f"sqlite:///{where}/bench.sqlite")
        world = World(app, fake)
        world.promote()
        for number in range(1, pulls + 1):
            world.open_pull(number, head_sha=f"{number:040x}")
        client = app.test_client()
        times = []
        for _ in range(scrapes):
            started = time.perf_counter()
            assert client.get("/metrics").status_code == 200
            times.append((time.perf_counter() - started) * 1000)
        github_of(app).close()
        app.extensions["gatekeeper.engine"].dispose()
    fake.stop()
    return times


def per_event_costs(rounds: int) -> tuple[float, float]:
    """Microseconds to count one delivery, and to log one line as JSON, scrubbed."""
    from gatekeeper import logs, metrics
    from gatekeeper.config import Settings

    started = time.perf_counter()
    for _ in range(rounds):
        metrics.delivery_answered(event="pull_request", outcome="processed", seconds=0.01)
    counting = (time.perf_counter() - started) / rounds * 1e6
    settings = Settings(database_url="sqlite://", log_format="json", github_webhook_secret="s" * 40)
    handler = logs.configure(settings, stream=io.StringIO())
    log = logging.getLogger("gatekeeper.bench")
    started = time.perf_counter()
    with logs.bound(delivery="d", event="pull_request", repository="python/cpython"):
        for _ in range(rounds):
            log.info("delivery answered %d: %s", 200, "processed")
    logging.getLogger().removeHandler(handler)
    return counting, (time.perf_counter() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulls", type=int, default=50)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--files", type=int, default=8, help="dead workers' files to add up")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:  # the multiprocess run: leave files behind as workers would
        times = scrape_times(options.pulls, options.scrapes)
        print(f"{statistics.median(times):.2f} {max(times):.2f}")
        return
    times = scrape_times(options.pulls, options.scrapes)
    print(f"/metrics, one process, {options.pulls} waiting pulls: median"
          f" {statistics.median(times):.2f} ms, max {max(times):.2f} ms")  # fmt: skip
    with tempfile.TemporaryDirectory() as directory:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory}
        for _ in range(options.files):  # processes that counted, then exited
            subprocess.run(
                [sys.executable, __file__, "--child", "--pulls", "1", "--scrapes", "1"],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
        answer = subprocess.run(
            [sys.executable, __file__, "--child", "--pulls", str(options.pulls),
             "--scrapes", str(options.scrapes)],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        median, worst = answer.stdout.split()
        files = len(list(Path(directory).glob("*.db")))
        print(f"/metrics, multiprocess, {files} value files: median {median} ms, max {worst} ms")
    counting, logging_line = per_event_costs(20_000)
    print(f"per delivery: counting {counting:.1f} µs, one JSON log line {logging_line:.1f} µs")


if __name__ == "__main__":
    main()
