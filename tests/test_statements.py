"""How many SQL statements one signed delivery costs, from the view to its stored outbox row,
on SQLite and PostgreSQL; and that the middle layer reads each fact once on the way.

A count is deterministic, unlike a timing: each bound is what the path costs now (SQLite
also counts its ``BEGIN IMMEDIATE``; neither counts ``COMMIT``, which is no cursor statement),
so a repeated read or a needless flush shows up as a failure. The figures before the middle
layer read each fact once, from the same scenarios (SQLite/PostgreSQL): review by a known
mentor 37/36, by a first-seen mentor 43/42, ``synchronize`` 33/32, ``check_suite`` 20/19.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlmodel import delete, select, update

from fakegithub import default_user_id
from gate_support import REPO, World
from gatekeeper import people
from gatekeeper.events import Person
from gatekeeper.models import Account, CommitCheck, MentorAssignment, utcnow

HEAD, NEW = "a" * 40, "c" * 40
FIRST_TABLE = re.compile(r"^SELECT .*? FROM (\w+)", re.DOTALL)
# Facts a delivery has no reason to read twice in its transaction.
READ_ONCE = ("delivery", "repository", "account", "mentorship", "mentorassignment", "mergegroup")


@contextmanager
def counted(world: World) -> Iterator[list[str]]:
    """The statements the app sends while inside."""
    statements: list[str] = []
    engine = world.app.extensions["gatekeeper.engine"]

    def record(_connection, _cursor, statement, *_rest) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def reads(statements: list[str]) -> collections.Counter[str]:
    """How many times each table was read (by the table a SELECT starts from)."""
    return collections.Counter(
        found.group(1) for s in statements if (found := FIRST_TABLE.match(s)) is not None
    )


def waiting_pull(world: World) -> None:
    """A mentee's pull request waiting for its mentors, everything the worker had to do done."""
    world.promote()
    world.open_pull()
    assert world.pull().gate == "waiting"


def know(world: World, login: str) -> None:
    """As if an earlier event had named ``login``'s account."""
    with world.session() as session:
        account = Person(default_user_id(login), login, login)
        people.learn(session, account, at=utcnow())
        session.commit()


def forget(world: World, login: str) -> None:
    """As if ``login`` had been named a mentor before Gatekeeper ever saw their account."""
    with world.session() as session:
        session.exec(delete(Account).where(Account.login == login))  # type: ignore[call-overload]
        session.exec(
            update(MentorAssignment)  # type: ignore[call-overload]
            .where(MentorAssignment.mentor == login)
            .values(mentor_id=None)
        )
        session.commit()


def review(world: World) -> tuple[str, dict]:
    return "pull_request_review", world.review_payload(reviewer="colesbury", review_id=1)


def push(world: World) -> tuple[str, dict]:
    world.fake.push(REPO, 7, NEW)
    payload = world.events.pull_request(
        "synchronize", number=7, author="mpage", head_sha=NEW, updated_at=world.tick()
    )
    return "pull_request", payload


def comment(world: World) -> tuple[str, dict]:
    body = "/gatekeeper approve"
    return "issue_comment", world.events.comment("created", number=7, sender="colesbury", body=body)


def check_suite(world: World) -> tuple[str, dict]:
    return "check_suite", world.events.check_suite("requested", head_sha=HEAD, numbers=[7])


Scenario = Callable[[World], tuple[str, dict]]
# (delivery, whether the mentor's account is known, what the check of the head then says,
# the bound on SQLite, the bound on PostgreSQL). A check that waits reads the mentors'
# absences too (one statement), to name who is away.
CASES = {
    "review by a known mentor": (review, True, "success", 23, 21),
    "review by a first-seen mentor": (review, False, "success", 30, 28),
    "synchronize": (push, True, "action_required", 22, 21),
    "approve comment by a known mentor": (comment, True, "success", 28, 26),
    "check_suite": (check_suite, True, "action_required", 14, 13),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_delivery_is_applied_in_few_statements_reading_each_fact_once(world, case):
    """One delivery on a waiting pull request, from the view to its commit's stored outbox
    row: at most the bound's statements, and no mentorship, mentor assignment, account,
    repository, merge group or delivery read twice."""
    scenario, known, conclusion, on_sqlite, on_postgresql = CASES[case]
    waiting_pull(world)
    (know if known else forget)(world, "colesbury")
    event, payload = scenario(world)
    with counted(world) as statements:
        world.send(event, payload, work=False)
    head = NEW if scenario is push else HEAD
    with world.session() as session:
        row = session.exec(select(CommitCheck).where(CommitCheck.head_sha == head)).one()
    assert row.body["conclusion"] == conclusion
    dialect = world.app.extensions["gatekeeper.engine"].name
    bound = on_postgresql if dialect == "postgresql" else on_sqlite
    print(f"{case} on {dialect}: {len(statements)} statements")
    assert len(statements) <= bound, "\n".join(statements)
    repeated = {table: n for table, n in reads(statements).items() if n > 1 and table in READ_ONCE}
    assert repeated == {}
