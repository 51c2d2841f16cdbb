"""How fast a webhook is answered, and how long the check run takes to follow.

Run with ``uv run python benchmarks/webhooks.py [--pulls N] [--github-delay SECONDS]``. The app
runs in-process on a fresh SQLite file against the test suite's fake GitHub on loopback (no
other network). For each of N mentee pull requests it delivers a signed ``opened`` and an
approving review, and prints the time to the answer (what GitHub's 10-second limit measures)
and the time until a worker (in-process, right after the answer) had applied the delivery
and posted the check run.
``--github-delay`` makes every write to GitHub answer that much later, to show the answer does
not wait for GitHub. ``benchmarks/load.py`` measures the same under open-loop load and gunicorn.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the fake GitHub and the payload builders

from fakegithub import FakeGitHub  # noqa: E402
from gate_support import INSTALLATION, REPO, app_for, promote  # noqa: E402
from gatekeeper.worker import Worker  # noqa: E402
from webhook_events import Events, deliver  # noqa: E402


def measure(pulls: int, github_delay: float) -> tuple[list[float], list[float]]:
    """Answer times and answer-plus-post times, in milliseconds."""
    answered, posted = [], []
    with FakeGitHub() as fake, tempfile.TemporaryDirectory() as folder:
        fake.add_installation(INSTALLATION)
        fake.add_repo(REPO, installation_id=INSTALLATION)
        app = app_for(
            fake,
            f"sqlite:///{Path(folder) / 'bench.sqlite'}",
            github_seconds_between_requests=0.0,
            github_seconds_between_writes=0.0,
        )
        promote(app, "mpage", ("colesbury", "vstinner"), actor="bench")
        events, client = Events(repo=REPO, installation_id=INSTALLATION), app.test_client()
        worker = Worker(app)
        fake.latency(write=github_delay)
        for number in range(1, pulls + 1):
            sha = f"{number:040x}"
            fake.add_pull(REPO, number, author="mpage", head_sha=sha)
            for event, payload in (
                ("pull_request", events.pull_request("opened", number=number, author="mpage", head_sha=sha)),
                ("pull_request_review", events.review(
                    "submitted", number=number, author="mpage", head_sha=sha, reviewer="colesbury",
                    state="approved", review_id=number,
                )),
            ):  # fmt: skip
                start = time.perf_counter()
                response = deliver(client, event, payload)
                answered.append((time.perf_counter() - start) * 1000)
                worker.drain()  # the worker's turn: the check run is posted now
                posted.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 202, response.get_json()
        app.extensions["gatekeeper.github"].close()
        app.extensions["gatekeeper.engine"].dispose()
    return answered, posted


def summary(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return (
        f"{label:<22} median {statistics.median(ordered):8.1f} ms   p95 {p95:8.1f} ms"
        f"   max {ordered[-1]:8.1f} ms   ({len(ordered)} deliveries)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulls", type=int, default=50)
    parser.add_argument("--github-delay", type=float, default=0.0)
    args = parser.parse_args()
    answered, posted = measure(args.pulls, args.github_delay)
    print(f"GitHub answering writes after {args.github_delay:.1f} s")
    print(summary("answer sent", answered))
    print(summary("check run posted", posted))


if __name__ == "__main__":
    main()
