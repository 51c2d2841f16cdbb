"""The GitHub calls of one sweep as installations and mentees grow: figures only.

Run with ``uv run python benchmarks/sweep_searches.py [--installations 8] [--mentees 20]``.
It starts the test suite's fake GitHub in this process, installs the App on N accounts with
one public repository each (told by event), gives every mentee one open pull request in each
installation's repository, and runs one sweep on a SQLite file. It prints the searches (the
scarce budget: 30 a minute per token) and every rate-limited call by path kind. Nothing is
asserted; on loopback, with the same fake as the tests.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the fake GitHub and the payload builders

from sqlmodel import Session  # noqa: E402

from fakegithub import FakeGitHub  # noqa: E402
from gate_support import SECRET, app_for, promote  # noqa: E402
from gatekeeper import github_of, settings_of  # noqa: E402
from gatekeeper.models import utcnow  # noqa: E402
from gatekeeper.sweep import sweep  # noqa: E402
from webhook_events import Events, deliver  # noqa: E402


def kind(path: str) -> str:
    """A call's path with the names taken out: ``/repos/*/pulls/*/reviews``."""
    parts = path.strip("/").split("/")
    if parts[0] == "repos":
        parts[1:3] = ["*"]
    return "/" + "/".join("*" if p.isdigit() else p for p in parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installations", type=int, default=8)
    parser.add_argument("--mentees", type=int, default=20)
    options = parser.parse_args()
    with FakeGitHub() as fake, tempfile.TemporaryDirectory() as tmp:
        app = app_for(fake, f"sqlite:///{Path(tmp) / 'sweep.sqlite'}")
        client = app.test_client()
        repos = []
        for n in range(1, options.installations + 1):
            repo = f"org{n}/project"
            fake.add_installation(n, account=f"org{n}")
            fake.add_repo(repo, installation_id=n)
            payload = Events(installation_id=n).installation_repositories("added", added=[repo])
            deliver(client, "installation_repositories", payload, secret=SECRET)
            repos.append(repo)
        now = utcnow()
        for m in range(options.mentees):
            mentee = f"mentee{m}"
            promote(app, mentee, ("mentor-a", "mentor-b"), actor="ambv", now=now)
            for n, repo in enumerate(repos, start=1):
                fake.add_pull(repo, m + 1, author=mentee, head_sha=f"{m:020x}{n:020x}")
        fake.reset_calls()
        with app.app_context(), Session(app.extensions["gatekeeper.engine"]) as session:
            report = sweep(
                session,
                settings=settings_of(app),
                github=github_of(app),
                now=now + timedelta(seconds=1),
            )
        counted = collections.Counter(kind(c.path) for c in fake.counted_calls())
        print(
            f"{options.installations} installations, {options.mentees} mentees,"
            f" {report.pulls} pull requests read, {len(report.failures)} failures"
        )
        print(f"searches: {counted['/search/issues']}")
        for path, count in counted.most_common():
            print(f"  {count:6d}  {path}")
        github_of(app).close()
        app.extensions["gatekeeper.engine"].dispose()


if __name__ == "__main__":
    main()
