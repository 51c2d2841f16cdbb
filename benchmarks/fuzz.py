"""Signed, mutated deliveries against the app in-process: how many answers of each status.

Run with ``uv run python benchmarks/fuzz.py [--count 5000] [--seed 1] [--databases sqlite,postgresql]``.
On each database (a fresh SQLite file; a throwaway PostgreSQL, as the tests start one) the app
runs in this process against the test suite's fake GitHub, seeded with a mentee's mentorship and
pull request #7 waiting. It then receives ``--count`` real webhook fixtures mutated as
``tests/test_fuzz.py`` mutates them (keys dropped, nulls, wrong types, huge numbers, long or
broken text, deep nesting), each correctly signed under a fresh delivery id, and prints the
answers by status. Every answer of 500 or more is listed by cause (the exception and the last
frame in gatekeeper/), with the mutation that caused it first. It also counts refused
deliveries that changed a table other than by their own delivery row, and normal deliveries
that were not answered 200 afterwards; neither should ever happen. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import logging
import os
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the fake GitHub, the world, the mutations, PostgreSQL

from test_fuzz import Fuzzer, Mutation, mutations, snapshot  # noqa: E402

from fakegithub import FakeGitHub  # noqa: E402
from gate_support import INSTALLATION, REPO, World, app_for  # noqa: E402
from gatekeeper import github_of  # noqa: E402
from postgres import PostgresServer  # noqa: E402

APP_ENV_PREFIXES = ("GITHUB_", "GATEKEEPER_")
APP_ENV_NAMES = ("DATABASE_URL", "SECRET_KEY")
PACKAGE = str(ROOT / "gatekeeper")
TIMES = "\N{MULTIPLICATION SIGN}"


@dataclasses.dataclass
class Cause:
    """One distinct reason for a 5xx: how often, and the first time in full."""

    count: int
    message: str
    mutation: Mutation
    frames: list[str]


@dataclasses.dataclass
class Tally:
    """What one database's run gave."""

    database: str
    statuses: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    outcomes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    causes: dict[tuple[str, str], Cause] = dataclasses.field(default_factory=dict)
    half_written: list[tuple[Mutation, list[str]]] = dataclasses.field(default_factory=list)
    unanswered: int = 0
    repeats: int = 0  # bodies drawn again (answered as a replay), drawn anew instead
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    def record(self, status: int, key: tuple[str, str], message: str, mutation, frames) -> None:
        self.statuses[status] += 1
        if key in self.causes:
            self.causes[key].count += 1
        else:
            self.causes[key] = Cause(1, message, mutation, frames)


def app_frames(error: BaseException) -> list[str]:
    """The traceback's frames inside gatekeeper/, outermost first."""
    return [
        f"{Path(frame.filename).relative_to(ROOT)}:{frame.lineno} in {frame.name}"
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename.startswith(PACKAGE)
    ]


def run(database: str, url: str, count: int, seed_value: int) -> Tally:
    """``count`` mutated deliveries to a freshly seeded app on ``url``."""
    tally = Tally(database)
    with FakeGitHub() as fake:
        fake.add_installation(INSTALLATION, account="python")
        fake.add_repo(REPO, installation_id=INSTALLATION)
        app = app_for(fake, url)
        fuzzer = Fuzzer(World(app, fake))
        fuzzer.seed()
        sent: set[str] = set()

        # Hypothesis draws a body again now and then; a repeat would only count as a replay,
        # so draw more than needed and send each body once, ``count`` in all.
        @seed(seed_value)
        @settings(
            max_examples=count * 3,
            phases=[Phase.generate],
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def deliver(data: st.DataObject) -> None:
            mutation = data.draw(mutations(app_id=fake.app_id))
            digest = hashlib.sha256(mutation.body).hexdigest()
            if tally.sent >= count or digest in sent:
                tally.repeats += digest in sent and tally.sent < count
                return
            sent.add(digest)
            before = snapshot(fuzzer.world)
            delivery_id = str(uuid.uuid4())
            try:
                response = fuzzer.post(mutation.event, mutation.body, delivery_id)
            except Exception as error:  # the test client re-raises what the app did not catch
                frames = app_frames(error) or ["(no frame in gatekeeper/)"]
                message = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
                key = (type(error).__name__, frames[-1])
                tally.record(500, key, message, mutation, frames)
            else:
                status = response.status_code
                if status >= 500:
                    answer = str(response.get_json())[:300]
                    tally.record(status, (f"answer {status}", answer), answer, mutation, [])
                else:
                    tally.statuses[status] += 1
                    tally.outcomes[f"{status} {(response.get_json() or {}).get('outcome')}"] += 1
                if 400 <= status < 500:
                    changed = fuzzer.half_written(before, delivery_id)
                    if changed:
                        tally.half_written.append((mutation, changed))
            if fuzzer.still_answers() != 200:
                tally.unanswered += 1

        began = time.perf_counter()
        deliver()
        tally.seconds = time.perf_counter() - began
        github_of(app).close()
        app.extensions["gatekeeper.engine"].dispose()
    return tally


def report(tally: Tally) -> None:
    """The figures of one run, then each cause of a 5xx."""
    statuses = sorted(tally.statuses.items())
    fivexx = sum(n for status, n in statuses if status >= 500)
    figures = ", ".join(f"{n:,}{TIMES}{status}" for status, n in statuses if status < 500)
    print(f"\n{tally.database}: {tally.sent:,} signed mutated deliveries in {tally.seconds:.0f} s")
    print(f"  {tally.sent:,} signed mutated deliveries: {figures}, {fivexx:,}{TIMES}5xx")
    outcomes = ", ".join(f"{n:,}{TIMES}{outcome}" for outcome, n in sorted(tally.outcomes.items()))
    print(f"  by outcome: {outcomes}")
    print(f"  bodies drawn twice and not sent again: {tally.repeats:,}")
    print(f"  refused yet changed a table: {len(tally.half_written)}")
    print(f"  normal deliveries afterwards not answered 200: {tally.unanswered}")
    for mutation, changed in tally.half_written[:10]:
        print(f"    {', '.join(changed)} <- {mutation}")
    ordered = sorted(tally.causes.values(), key=lambda cause: -cause.count)
    for number, cause in enumerate(ordered, 1):
        print(f"  5xx cause {number}: {cause.count}{TIMES} {cause.message}")
        for frame in cause.frames[-3:]:
            print(f"      at {frame}")
        print(f"      first from {cause.mutation}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5_000, help="deliveries per database")
    parser.add_argument("--seed", type=int, default=1, help="hypothesis's seed (same run again)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    options = parser.parse_args()
    # Each refusal logs a warning with its reason; the figures below are what matters here.
    logging.disable(logging.WARNING)
    for name in list(os.environ):  # the app reads only what it is given here
        if name in APP_ENV_NAMES or name.startswith(APP_ENV_PREFIXES):
            del os.environ[name]
    tallies = []
    for database in options.databases.split(","):
        print(f"[{database}] {options.count:,} deliveries...", file=sys.stderr, flush=True)
        if database == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                url = f"sqlite:///{Path(folder) / 'fuzz.sqlite'}"
                tallies.append(run(database, url, options.count, options.seed))
        elif database == "postgresql":
            server = PostgresServer()
            server.start()
            try:
                tallies.append(run(database, server.create_database(), options.count, options.seed))
            finally:
                server.stop()
        else:
            parser.error(f"unknown database {database!r}: sqlite or postgresql")
        report(tallies[-1])


if __name__ == "__main__":
    main()
