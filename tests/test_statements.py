"""How many SQL statements one signed delivery costs, at the door and as the worker applies
it up to its stored outbox row, on SQLite and PostgreSQL; and that the middle layer reads each
fact once on the way.

A count is deterministic, unlike a timing: each bound is what the path costs now (SQLite
also counts its ``BEGIN IMMEDIATE``; neither counts ``COMMIT``, which is no cursor statement),
so a repeated read or a needless flush shows up as a failure. The door stores the delivery
in one statement. The worker's application is counted twice: applying its event (from its
handler through ``outbox.commit_gates``, which writes the outbox row before it returns), and
the whole of it, which adds the delivery's own bookkeeping (claiming it, with the repository
it names, and recording its outcome: 2 statements, 3 with SQLite's ``BEGIN``).

Figures (SQLite/PostgreSQL), applying / whole:

- before the middle layer read each fact once: whole only, review by a known mentor 37/36,
  by a first-seen mentor 43/42, ``synchronize`` 33/32, ``check_suite`` 20/19;
- before the upserts that lock and return in one statement: review by a known mentor
  19/18 of 23/21, by a first-seen mentor 26/25 of 30/28, ``synchronize`` 18/18 of 22/21,
  ``/gatekeeper approve`` comment 24/23 of 28/26, ``check_suite`` 10/10 of 14/13;
- before the claim brought the repository: a known mentor's review 12/11 of 16/14;
- now: the bounds in ``CASES`` (a known mentor's review: 12/11 of 15/13).

For a known mentor's approving review on PostgreSQL the 11 are: the accounts it names (1);
the pull request inserted or locked and read (1) and its sighting (1); the review inserted
or merged and read (1); the gate's inputs: the reviews with whether any override exists (1)
and the mentorships with their mentors (1) (the trees only when something was given on
another commit, the overrides only when one exists, the absences when it waits); the audit
lines (1) and the pull request's snapshot and gate in one UPDATE (1); the outbox: its row
inserted or locked (1), the commit's open pull requests with whether the repository has a
living merge group (1, the groups only then), and the new desire (1). SQLite writes the two
audit lines with a statement each.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlmodel import delete, select, update

from fakegithub import default_user_id
from gate_support import REPO, SECRET, World
from gatekeeper import deliveries, handlers, people, settings_of
from gatekeeper.events import Person
from gatekeeper.models import Account, CommitCheck, MentorAssignment, utcnow
from gatekeeper.outbox import commit_gates
from webhook_events import deliver

HEAD, NEW = "a" * 40, "c" * 40
# The table a SELECT reads from: its first FROM's, or the one a flag's subquery is joined to
# (``SELECT flag, t.* FROM (SELECT EXISTS (...) AS flag) AS anon_1 LEFT OUTER JOIN t``).
FIRST_TABLE = re.compile(
    r"^SELECT .*?\sFROM\s+(?:\(SELECT EXISTS .*?\) AS \w+ LEFT OUTER JOIN\s+)?(\w+)", re.DOTALL
)
# Facts a delivery has no reason to read twice in its transaction.
READ_ONCE = ("delivery", "repository", "account", "mentorship", "mentorassignment", "mergegroup")


@dataclasses.dataclass
class Counted:
    """The statements the app sent, and which of them applying the delivery's event cost:
    from its handler through ``outbox.commit_gates`` (the rest is the delivery's own
    bookkeeping: claiming it with the repository it names, storing its outcome)."""

    statements: list[str] = dataclasses.field(default_factory=list)
    applying: list[str] = dataclasses.field(default_factory=list)


APPLYING = frozenset(
    {registered.handler.__code__ for registered in handlers.HANDLERS.values()}
    | {commit_gates.__code__}
)


def _applying() -> bool:
    """Whether the statement being sent comes from a handler or ``outbox.commit_gates``."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code in APPLYING:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


@contextmanager
def counted(world: World) -> Iterator[Counted]:
    """The statements the app sends while inside."""
    found = Counted()
    engine = world.app.extensions["gatekeeper.engine"]

    def record(_connection, _cursor, statement, *_rest) -> None:
        found.statements.append(statement)
        if _applying():
            found.applying.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield found
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


@dataclasses.dataclass(frozen=True)
class Case:
    """A delivery, whether the mentor's account is known, what the check of the head then
    says, and the bounds (SQLite, PostgreSQL): on applying its event, and on the whole
    delivery from the view. A check that waits reads the mentors' absences too (one
    statement), to name who is away."""

    scenario: Scenario
    known: bool
    conclusion: str
    applying: tuple[int, int]
    whole: tuple[int, int]


CASES = {
    "review by a known mentor": Case(review, True, "success", (12, 11), (15, 13)),
    "review by a first-seen mentor": Case(review, False, "success", (17, 16), (20, 18)),
    "synchronize": Case(push, True, "action_required", (12, 12), (15, 14)),
    "approve comment by a known mentor": Case(comment, True, "success", (15, 14), (18, 16)),
    "check_suite": Case(check_suite, True, "action_required", (6, 6), (9, 8)),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_delivery_is_applied_in_few_statements_reading_each_fact_once(world, case):
    """One delivery on a waiting pull request: one statement at the door (SQLite adds its
    ``BEGIN``); then, as the worker applies it, at most the bounds' statements in all and
    from its handler through ``outbox.commit_gates``, and no mentorship, mentor assignment,
    account, repository, merge group or delivery read twice."""
    this = CASES[case]
    waiting_pull(world)
    (know if this.known else forget)(world, "colesbury")
    event, payload = this.scenario(world)
    dialect = world.app.extensions["gatekeeper.engine"].name
    which = 1 if dialect == "postgresql" else 0
    with counted(world) as door:
        assert deliver(world.client, event, payload, secret=SECRET).status_code == 202
    assert len(door.statements) == (2, 1)[which], "\n".join(door.statements)
    with counted(world) as found, world.app.app_context(), world.session() as session:
        # As the worker's applier takes it: with whatever else of its pull request waits.
        [applied] = deliveries.apply_together(session, settings_of(world.app))
    assert applied.outcome == "processed"
    head = NEW if this.scenario is push else HEAD
    with world.session() as session:
        row = session.exec(select(CommitCheck).where(CommitCheck.head_sha == head)).one()
    assert row.body["conclusion"] == this.conclusion
    print(
        f"{case} on {dialect}: {len(door.statements)} at the door; applied by the worker in"
        f" {len(found.statements)}, {len(found.applying)} of them from its handler on"
    )
    assert len(found.applying) <= this.applying[which], "\n".join(found.applying)
    assert len(found.statements) <= this.whole[which], "\n".join(found.statements)
    counts = reads(found.statements)
    assert counts["mentorship"] == 1  # the counter sees the reads it checks
    repeated = {table: n for table, n in counts.items() if n > 1 and table in READ_ONCE}
    assert repeated == {}


# (SQLite, PostgreSQL): the three deliveries of ``TOGETHER_SCENARIOS`` applied one at a time,
# in all, and applied together. Together each still decides (it reads the repository, the
# accounts, the reviews and the mentorships afresh, as a transaction of its own would, and
# writes its audit lines and the pull request); what they share is the claim (2 statements
# for all), the outbox's statements per commit (3 each, for the two commits the push touched,
# once for all) and the record of their outcomes (one statement).
TOGETHER_BOUNDS = {"alone": (46, 42), "together": (38, 36)}
TOGETHER_SCENARIOS = (review, comment, push)


@pytest.mark.parametrize("how", TOGETHER_BOUNDS)
def test_a_pull_requests_deliveries_applied_together_share_their_statements(world, how):
    """A review, an approving comment and a push queued for one waiting pull request: applied
    together (as the worker's applier takes them) they share the claim, the record of their
    outcomes and the outbox's three statements per commit, against the same three applied
    one at a time."""
    waiting_pull(world)
    know(world, "colesbury")
    for scenario in TOGETHER_SCENARIOS:
        event, payload = scenario(world)
        assert deliver(world.client, event, payload, secret=SECRET).status_code == 202
    dialect = world.app.extensions["gatekeeper.engine"].name
    with counted(world) as found, world.app.app_context(), world.session() as session:
        if how == "together":
            applied = deliveries.apply_together(session, settings_of(world.app))
        else:
            applied = [deliveries.apply_next(session, settings_of(world.app)) for _ in range(3)]
    assert [one.outcome for one in applied if one is not None] == ["processed"] * 3
    print(f"three deliveries applied {how} on {dialect}: {len(found.statements)} statements")
    bound = TOGETHER_BOUNDS[how][1 if dialect == "postgresql" else 0]
    assert len(found.statements) <= bound, "\n".join(found.statements)
