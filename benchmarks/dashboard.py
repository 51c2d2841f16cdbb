"""How fast the dashboard renders with a large history: 1,000 mentorships and 100,000 pull requests.

Run with ``uv run python benchmarks/dashboard.py [--mentorships N] [--pulls-each N]``. It fills a
fresh SQLite file (mentorships through the lifecycle, pull requests in bulk), then prints each
page's render time and query count. Benchmarks print figures; the tests assert only query counts.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from gatekeeper import create_app, db
from gatekeeper import mentorships as lifecycle
from gatekeeper.models import PullRequest, utcnow

PAGES = ("/", "/mentorships/mentee-0", "/pulls/python/cpython/1", "/me")


def fill(url: str, *, mentorships: int, pulls_each: int) -> None:
    """Mostly ended mentorships over the past years, a few active and scheduled ones."""
    now = utcnow()
    rng = random.Random(13)
    engine = db.make_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        ids = []
        for index in range(mentorships):
            # Index 0 is active (the mentee page measured); 5% active, 1% scheduled, the rest ended.
            if index == 0 or index % 20 == 1:
                start = now - timedelta(days=rng.randint(0, 25))
            elif index % 100 == 2:
                start = now + timedelta(days=rng.randint(1, 10))
            else:
                start = now - timedelta(days=40 + index * 3)
            mentorship = lifecycle.promote(
                session,
                mentee=f"mentee-{index}",
                mentors=[f"mentor-{index % 50}", f"mentor-{(index + 7) % 50}"],
                actor="bench",
                now=min(start, now),
                start=start,
            )
            if start < now - timedelta(days=35):
                lifecycle.end(
                    session,
                    mentee=mentorship.mentee,
                    reason="graduated",
                    actor="bench",
                    now=start + timedelta(days=25),
                )
            session.flush()
            ids.append((mentorship.id, mentorship.mentee, start))
        session.commit()
        rows = []
        number = 0
        for mentorship_id, mentee, start in ids:
            for _ in range(pulls_each):
                number += 1
                gate = rng.choices(
                    ["approved", "waiting", "bypassed", "not_required"], [80, 8, 2, 10]
                )[0]
                merged = gate in ("approved", "bypassed") and rng.random() < 0.9
                rows.append(
                    {
                        "repo": "python/cpython",
                        "number": number,
                        "author": mentee,
                        "author_display": mentee,
                        "title": f"Change {number}",
                        "url": "",
                        "head_sha": f"{number:040x}",
                        "base_ref": "main",
                        "draft": False,
                        "state": "closed" if merged else "open",
                        "merged": merged,
                        "first_seen_at": start + timedelta(hours=rng.randint(0, 600)),
                        "gate": gate,
                        "gate_title": "",
                        "gate_summary": "",
                        "approved_by": ["mentor-1"] if gate == "approved" else [],
                        "gated_mentorship_id": mentorship_id,
                        "reviews_requested": False,
                    }
                )
            if len(rows) >= 20_000:
                session.execute(sa.insert(PullRequest), rows)
                rows = []
        if rows:
            session.execute(sa.insert(PullRequest), rows)
        session.commit()
    engine.dispose()


def measure(app, path: str, *, signed_in: str | None, runs: int = 5) -> tuple[float, int]:
    """Median render time (ms) and the number of SQL statements of one render."""
    client = app.test_client()
    if signed_in:
        with client.session_transaction() as session:
            session["login"] = session["display"] = signed_in
    statements: list[str] = []
    engine = app.extensions["gatekeeper.engine"]
    # SQLite's explicit BEGIN is a transaction's start, not a query of the page's.
    listener = lambda *args: args[2] != "BEGIN" and statements.append(args[2])  # noqa: E731
    timings = []
    for run in range(runs):
        if run == 0:
            sa.event.listen(engine, "before_cursor_execute", listener)
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        if run == 0:
            sa.event.remove(engine, "before_cursor_execute", listener)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(timings), len(statements)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentorships", type=int, default=1000)
    parser.add_argument("--pulls-each", type=int, default=100)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'bench.sqlite'}"
        db.upgrade(url)
        started = time.perf_counter()
        fill(url, mentorships=options.mentorships, pulls_each=options.pulls_each)
        print(
            f"filled {options.mentorships} mentorships and "
            f"{options.mentorships * options.pulls_each} pull requests "
            f"in {time.perf_counter() - started:.1f} s"
        )
        app = create_app({"database_url": url, "secret_key": "bench", "maintainers": "boss"})
        for path in PAGES:
            who = "mentor-1" if path in ("/", "/me") else None
            median, queries = measure(app, path, signed_in=who)
            print(
                f"{path:28} {median:8.1f} ms  {queries:3d} queries"
                + (f"  (signed in as {who})" if who else "")
            )
        app.extensions["gatekeeper.engine"].dispose()


if __name__ == "__main__":
    main()
