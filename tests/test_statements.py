"""How many SQL statements one delivery costs, from the view to its stored outbox row, on
SQLite and PostgreSQL. A count is deterministic (unlike a timing): each bound below is what
the middle layer reads and writes once per fact, so a repeated read shows up as a failure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlmodel import delete, update

from gate_support import World
from gatekeeper.models import Account, MentorAssignment

HEAD, NEW = "a" * 40, "c" * 40


@contextmanager
def counted(world: World) -> Iterator[list[str]]:
    """The statements the app sends while inside (BEGIN and COMMIT included)."""
    statements: list[str] = []
    engine = world.app.extensions["gatekeeper.engine"]

    def record(_conn, _cursor, statement, *_args) -> None:
        import traceback
        frames = [f"{f.filename.split('/')[-1]}:{f.lineno}:{f.name}" for f in traceback.extract_stack() if "/gatekeeper/" in f.filename][-4:]
        statements.append(statement[:60] + str(_args[0])[:80] + "  <- " + " > ".join(frames))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def waiting_pull(world: World) -> None:
    """A mentee's pull request waiting for its mentors, everything the worker had to do done."""
    world.promote()
    world.open_pull()
    assert world.pull().gate == "waiting"


def know(world: World, login: str) -> None:
    """As if an earlier event had named ``login``'s account."""
    from fakegithub import default_user_id
    from gatekeeper import people
    from gatekeeper.events import Person
    from gatekeeper.models import utcnow

    with world.session() as session:
        people.learn(session, Person(default_user_id(login), login, login), at=utcnow())
        session.commit()


def forget_mentor(world: World, login: str) -> None:
    """As if ``login`` had been named a mentor before Gatekeeper ever saw their account."""
    with world.session() as session:
        session.exec(delete(Account).where(Account.login == login))  # type: ignore[call-overload]
        session.exec(
            update(MentorAssignment)  # type: ignore[call-overload]
            .where(MentorAssignment.mentor == login)
            .values(mentor_id=None)
        )
        session.commit()


def review_statements(world: World) -> list[str]:
    with counted(world) as statements:
        world.review(reviewer="colesbury", state="approved", review_id=1)
    return statements


def report(name: str, statements: list[str]) -> None:
    print(f"\n{name}: {len(statements)}")
    for s in statements:
        print("   ", " ".join(s.split())[:160])


def test_count_review_known(world):
    """debug"""
    waiting_pull(world)
    know(world, "colesbury")
    with counted(world) as statements:
        world.send(
            "pull_request_review",
            world.review_payload(reviewer="colesbury", review_id=1),
            work=False,
        )
    report("review known", statements)
    assert world.pull().gate == "approved"


def test_count_review_first_seen(world):
    """debug"""
    waiting_pull(world)
    forget_mentor(world, "colesbury")
    with counted(world) as statements:
        world.send(
            "pull_request_review",
            world.review_payload(reviewer="colesbury", review_id=1),
            work=False,
        )
    report("review first seen", statements)
    assert world.pull().gate == "approved"


def test_count_synchronize(world):
    """debug"""
    waiting_pull(world)
    world.fake.push("python/cpython", 7, NEW)
    payload = world.events.pull_request(
        "synchronize", number=7, author="mpage", head_sha=NEW, updated_at=world.tick()
    )
    with counted(world) as statements:
        world.send("pull_request", payload, work=False)
    report("synchronize", statements)


def test_count_comment(world):
    """debug"""
    waiting_pull(world)
    payload = world.events.comment(
        "created", number=7, sender="colesbury", body="/gatekeeper approve"
    )
    with counted(world) as statements:
        world.send("issue_comment", payload, work=False)
    report("comment", statements)
    assert world.pull().gate == "approved"


def test_count_check_suite(world):
    """debug"""
    waiting_pull(world)
    payload = world.events.check_suite("requested", head_sha=HEAD, numbers=[7])
    with counted(world) as statements:
        world.send("check_suite", payload, work=False)
    report("check_suite", statements)
