"""The worker's most frequent queries are answered from an index, however many rows their
tables hold: a claim or a lookup that read the whole table would cost more with every commit,
pull request and delivery ever seen. Each query's plan is asked of the database itself
(PostgreSQL with sequential scans made a last resort, so that an empty test table does not
hide a query no index can answer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from gatekeeper import deliveries, merge_groups, outbox
from gatekeeper.models import CommitCheck, Delivery, DeliveryOutcome, PullRequest, utcnow


def plan_of(session: Session, run: Callable[[Session], Any]) -> str:
    """The plan the database gives the first statement ``run(session)`` sends, as text."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        sent.append((statement, parameters))

    engine = session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        run(session)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
        session.rollback()
    statement, parameters = next((s, p) for s, p in sent if s.lstrip().upper().startswith("SELECT"))
    cursor = session.connection().connection.dbapi_connection.cursor()
    try:
        if engine.dialect.name == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + statement, parameters)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        return "\n".join(" ".join(map(str, row)) for row in cursor.fetchall())
    finally:
        cursor.close()
        session.rollback()


def scans(plan: str, table: str) -> bool:
    """Whether the plan reads every row of ``table``."""
    return f"Seq Scan on {table} " in plan or f"SCAN {table}\n" in plan + "\n"


def analysed(session: Session, rows: list[Any]) -> None:
    """Store ``rows`` and have the database count them, as a service's history would: the
    plans then weigh the tables as they are, not as earlier tests left the statistics."""
    session.add_all(rows)
    session.commit()
    for table in {type(row).__tablename__ for row in rows}:  # type: ignore[attr-defined]
        session.execute(sa.text(f"ANALYZE {table}"))
    session.commit()


def test_the_outbox_claim_reads_only_the_checks_owed_and_the_leases_held(session):
    """The posting threads' claim finds the oldest check owed to GitHub, and the leases held
    per installation, from their two partial indexes, among a history of checks posted."""
    now = utcnow()
    analysed(
        session,
        [
            CommitCheck(
                repo="python/cpython",
                head_sha=f"{number:040x}",
                name="mentor-approval",
                installation_id=1 + number % 8,
                version=2,
                posted_version=1 if number % 100 == 0 else 2,
                desired_at=now,
                body={"status": "completed"},
            )
            for number in range(1, 501)
        ],
    )
    plan = plan_of(session, lambda s: outbox.claim(s, now=utcnow(), writes_per_installation=8))
    assert "ix_commitcheck_owed" in plan, plan
    assert "ix_commitcheck_leased" in plan, plan
    assert not scans(plan, "commitcheck"), plan


def test_a_commits_pull_requests_are_found_by_its_sha(session):
    """The open pull requests on a commit (asked by every delivery that touches one) are
    found by repository and head, not among every open pull request of the repository (a
    thousand and more in CPython's)."""
    now = utcnow()
    analysed(
        session,
        [
            PullRequest(
                repo="python/cpython",
                number=number,
                author="someone",
                author_display="someone",
                head_sha=f"{number:040x}",
                first_seen_at=now,
            )
            for number in range(1, 301)
        ],
    )
    plan = plan_of(
        session,
        lambda s: merge_groups.open_pulls_and_queue(s, repo="python/cpython", head_sha="a" * 40),
    )
    assert "ix_pullrequest_repo_head_sha" in plan, plan
    assert not scans(plan, "pullrequest"), plan


def test_the_delivery_claim_reads_only_the_queued_ones(session):
    """The applier's claim finds the oldest queued delivery from its partial index, among a
    history of deliveries applied."""
    now = utcnow()
    analysed(
        session,
        [
            Delivery(
                delivery_id=f"delivery-{number}",
                event="pull_request",
                received_at=now,
                outcome=DeliveryOutcome.QUEUED if number % 100 == 0 else DeliveryOutcome.PROCESSED,
                body_digest=f"{number:064x}",
            )
            for number in range(1, 501)
        ],
    )
    plan = plan_of(session, lambda s: deliveries.claim(s))
    assert "ix_delivery_queued" in plan, plan


@pytest.mark.parametrize("table", ["commitcheck", "pullrequest"])
def test_a_plan_that_reads_the_whole_table_is_seen(session, table):
    """The check above can fail: a query on a column no index starts with reads it all."""
    column = {"commitcheck": "fingerprint", "pullrequest": "title"}[table]
    plan = plan_of(
        session, lambda s: s.execute(sa.text(f"SELECT * FROM {table} WHERE {column} = 'x'"))
    )
    assert scans(plan, table), plan
