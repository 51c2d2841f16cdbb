"""What the worker spends applying stored deliveries and posting their checks: figures only.

Run with ``uv run python benchmarks/apply.py [--deliveries 1000] [--sqlite] [--profile N]``.
The load benchmark's deliveries (``load.plan``: pull requests of a mentee and of others,
opened, commented on, pushed to, reviewed, approved) are stored through the webhook view of
an in-process app, on a throwaway PostgreSQL (or SQLite) database, against the test suite's
fake GitHub on loopback. Then one worker, in this process, applies them all, and then posts
every check they left in the outbox. It prints the CPU time (this process's) and the SQL
statements per delivery applied and per check posted, and with ``--profile N`` the N
functions that took the most time, their callees included, while applying.

This is the part of the load benchmark's worker CPU that Gatekeeper's code decides; the load
benchmark (``load.py``) shows what it makes of the post lag under load.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import load
import sqlalchemy as sa
from load import PostgresServer, build_fake, in_process_app, plan, post

from gatekeeper.worker import Worker


def measured(
    work: Callable[[], int], *, profile: cProfile.Profile | None
) -> tuple[int, float, int]:
    """Run ``work`` (which returns how many it did): how many, CPU seconds, statements."""
    statements = 0

    def count(*_args: object) -> None:
        nonlocal statements
        statements += 1

    sa.event.listen(sa.Engine, "before_cursor_execute", count)
    began = time.process_time()
    if profile is not None:
        profile.enable()
    try:
        done = work()
    finally:
        if profile is not None:
            profile.disable()
        sa.event.remove(sa.Engine, "before_cursor_execute", count)
    return done, time.process_time() - began, statements


def per(value: float, count: int, scale: float = 1.0) -> str:
    return f"{value * scale / count:.2f}" if count else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="top N functions")
    parser.add_argument("--sort", default="cumulative", help="tottime: their own time only")
    options = parser.parse_args()

    deliveries, stories = plan(options.deliveries, rate=100.0)
    with tempfile.TemporaryDirectory() as folder, build_fake(stories) as fake:
        if options.sqlite:
            server, url = None, f"sqlite:///{Path(folder) / 'apply.sqlite'}"
        else:
            server = PostgresServer()
            server.start()
            url = server.create_database()
        try:
            app = in_process_app(fake, url)
            client = app.test_client()
            answers = [post(client, delivery) for delivery in deliveries]
            load.progress(f"{answers.count(202)} of {len(answers)} deliveries stored")
            worker = Worker(app)
            # Wall time, as cProfile counts it: waiting for the database and GitHub shows too.
            profile = cProfile.Profile() if options.profile else None
            applied, apply_cpu, apply_sql = measured(
                lambda: len(worker.apply_deliveries().applied), profile=profile
            )

            def post_all() -> int:
                # As the posting threads do: every delivery is applied by now.
                while worker._do(worker._post_or_run):
                    pass
                return len(worker.tally.posted)

            posting = cProfile.Profile() if options.profile else None
            posted, post_cpu, post_sql = measured(post_all, profile=posting)
            load.close_app(app)
        finally:
            if server is not None:
                server.stop()

    where = "SQLite" if options.sqlite else "PostgreSQL"
    print(f"# The worker, in one process, on {where}: {load.machine()}")
    print("| work | done | CPU ms each | statements each |")
    print("|---|---|---|---|")
    print(
        f"| apply a delivery | {applied} | {per(apply_cpu, applied, 1000)} | {per(apply_sql, applied)} |"
    )
    print(f"| post a check | {posted} | {per(post_cpu, posted, 1000)} | {per(post_sql, posted)} |")
    for what, profiled in (("Applying", profile), ("Posting", posting)):
        if profiled is not None:
            print(
                f"\n## {what}: the {options.profile} functions with the most time, callees included"
            )
            stats = pstats.Stats(profiled, stream=sys.stdout)
            stats.sort_stats(options.sort).print_stats(options.profile)


if __name__ == "__main__":
    main()
