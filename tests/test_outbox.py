"""One check per commit, and a versioned outbox that no interleaving can make lie.

A check run belongs to a commit, so every open pull request on a commit decides it together;
and a post in flight must never hide a newer decision, whatever order deliveries, posts and
sweeps take.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from sqlmodel import Session

from gate_support import REPO, World
from gatekeeper import gate, outbox, terms
from gatekeeper import pulls as store
from gatekeeper.extensions import github_of, settings_of
from gatekeeper.models import utcnow
from gatekeeper.sweep import sweep
from gatekeeper.worker import Worker

HEAD = "a" * 40


# ---------------------------------------------------------------- one check per commit


def test_a_strangers_fork_pull_request_cannot_turn_the_mentees_commit_green(world):
    """Someone opens a pull request from the mentee's waiting commit (from a fork): the
    commit keeps waiting, and its check names both pull requests."""
    world.promote()
    world.open_pull(1, author="mpage", head_sha=HEAD)
    assert world.check(HEAD)["conclusion"] == "action_required"
    world.open_pull(2, author="stranger", head_sha=HEAD, head_repo="stranger/cpython")

    run = world.check(HEAD)
    assert run["conclusion"] == "action_required"
    assert "#1 by @mpage waits" in run["output"]["summary"]
    assert "#2 by @stranger passes" in run["output"]["summary"]
    assert world.pull(2).gate == "not_required"  # its own decision is stored as it is

    world.review(1, reviewer="colesbury", head_sha=HEAD, review_id=1)
    run = world.check(HEAD)
    assert run["conclusion"] == "success"
    assert run["output"]["title"] == "Passes for all 2 pull requests on this commit"


def test_the_mentees_second_pull_request_from_the_same_commit_waits_too(world):
    """The mentee's second pull request from one commit (into another branch) cannot pass the
    commit on its own approval: each of them must pass."""
    world.promote()
    world.open_pull(1, author="mpage", head_sha=HEAD)
    world.open_pull(2, author="mpage", head_sha=HEAD, base="3.13")
    assert world.check(HEAD)["output"]["title"] == "2 pull requests wait"

    world.review(2, reviewer="colesbury", head_sha=HEAD, review_id=1)
    run = world.check(HEAD)
    assert run["conclusion"] == "action_required"
    assert run["output"]["title"] == "Waiting for a mentor's approval (#1)"
    assert "#2 by @mpage passes: Approved by @colesbury" in run["output"]["summary"]

    world.review(1, reviewer="vstinner", head_sha=HEAD, review_id=2)
    assert world.check(HEAD)["conclusion"] == "success"
    assert len(world.fake.check_runs_for(REPO, HEAD, name="mentor-approval")) == 1


def test_a_pull_request_leaving_the_commit_no_longer_holds_it(world):
    """When the waiting pull request moves on (a push), the commit it left is decided by the
    ones still on it."""
    world.promote()
    world.open_pull(1, author="mpage", head_sha=HEAD)
    world.open_pull(2, author="stranger", head_sha=HEAD)
    world.push(1, head_sha="b" * 40)
    assert world.check(HEAD)["conclusion"] == "success"
    assert world.check("b" * 40)["conclusion"] == "action_required"


def test_combine_fails_closed():
    """gate.combine: any waiting pull request makes the commit wait; all passing pass."""
    waiting = gate.PullVerdict(1, "mpage", True, "Waiting", "why")
    passing = gate.PullVerdict(2, "guido", False, "No mentorship applies", "none")
    assert gate.combine([passing, waiting]).conclusion == gate.ACTION_REQUIRED
    assert gate.combine([passing, waiting]).lead == 1
    assert gate.combine([passing]).conclusion == gate.SUCCESS
    assert gate.combine([passing, waiting]).numbers == (1, 2)
    with pytest.raises(ValueError):
        gate.combine([])


# ---------------------------------------------------------------- every interleaving


class Steps:
    """The store and post steps of one scenario, to be run in any order.

    Deliveries are whole transactions (as a request is). The worker's post is cut where a
    concurrent change can slip in: claiming the commit, the HTTP call to GitHub, and
    recording what was posted.
    """

    def __init__(self, world: World, number: int, head: str) -> None:
        self.world, self.number, self.head = world, number, head
        self.worker = Worker(world.app)
        self.claimed: outbox.Claimed | None = None
        self.run_id: int | None = None

    def session(self) -> Session:
        return Session(self.world.app.extensions["gatekeeper.engine"], expire_on_commit=False)

    def claim(self) -> None:
        with self.world.app.app_context(), self.session() as session:
            self.claimed = outbox.claim(session, now=utcnow())

    def send(self) -> None:
        if self.claimed is None:
            return
        with self.world.app.app_context(), self.session() as session:
            self.run_id = self.worker.send(session, self.claimed)

    def record(self) -> None:
        if self.claimed is None or self.run_id is None:
            return
        with self.session() as session:
            outbox.record_posted(session, self.claimed, run_id=self.run_id, now=utcnow())

    def sweep(self) -> None:
        app = self.world.app
        with app.app_context(), self.session() as session:
            sweep(session, settings=settings_of(app), github=github_of(app), now=utcnow())

    def play(self, order: tuple[str, ...], first: Callable[[], None], second: Callable[[], None]):
        """Run the named steps in ``order``, then let a worker finish what is left."""
        actions = {"first": first, "second": second, "claim": self.claim, "send": self.send,
                   "record": self.record, "sweep": self.sweep}  # fmt: skip
        for name in order:
            actions[name]()
        self.world.work()


def decided_check(world: World, head: str) -> dict[str, str]:
    """What gate.py decides for the commit from the final stored state."""
    settings = settings_of(world.app)
    with world.session() as session:
        pulls = store.open_pulls_on(session, repo=REPO, head_sha=head)
        verdicts = []
        for pull in pulls:
            decision = gate.evaluate(
                store.gate_pull(pull),
                terms.latest_terms(session, login=pull.author, account_id=pull.author_id),
                store.signals(store.reviews_of(session, pull=pull)),
                utcnow(),
            )
            verdicts.append(
                gate.PullVerdict(
                    pull.number, pull.author_display, decision.waiting, decision.title, ""
                )
            )
    body = outbox.render(gate.combine(verdicts), repo=REPO, settings=settings)
    return {"conclusion": body["conclusion"], "title": body["title"]}


def shown(world: World, head: str) -> dict[str, str]:
    runs = world.fake.check_runs_for(REPO, head, name="mentor-approval")
    assert len(runs) == 1, f"{len(runs)} check runs of ours on {head[:7]}"
    return {"conclusion": runs[0]["conclusion"], "title": runs[0]["output"]["title"]}


Scenario = Callable[[World, int, str], tuple[Callable[[], None], Callable[[], None]]]


def opened_then_approved(world: World, number: int, head: str):
    """A review 0.3 s after ``opened``: the approval must win wherever the post is."""
    world.fake.add_pull(REPO, number, author="mpage", head_sha=head)
    opened = world.events.pull_request(
        "opened", number=number, author="mpage", head_sha=head, updated_at=world.tick()
    )
    review = world.review_payload(number, head_sha=head, review_id=number * 10)
    return (
        lambda: world.send("pull_request", opened, work=False),
        lambda: world.send("pull_request_review", review, work=False),
    )


def approved_then_changes_requested(world: World, number: int, head: str):
    """A changes-requested while the approval's success is being posted."""
    world.fake.add_pull(REPO, number, author="mpage", head_sha=head)
    world.send(
        "pull_request",
        world.events.pull_request(
            "opened", number=number, author="mpage", head_sha=head, updated_at=world.tick()
        ),
    )
    approve = world.review_payload(number, head_sha=head, review_id=number * 10)
    object_ = world.review_payload(
        number, head_sha=head, review_id=number * 10 + 1, state="changes_requested"
    )
    return (
        lambda: world.send("pull_request_review", approve, work=False),
        lambda: world.send("pull_request_review", object_, work=False),
    )


def opened_then_pushed(world: World, number: int, head: str):
    """A push right after opening: the new head must get its check."""
    world.fake.add_pull(REPO, number, author="mpage", head_sha=head)
    opened = world.events.pull_request(
        "opened", number=number, author="mpage", head_sha=head, updated_at=world.tick()
    )
    newer = head[::-1]
    world.fake.push(REPO, number, newer)
    pushed = world.events.pull_request(
        "synchronize", number=number, author="mpage", head_sha=newer, updated_at=world.tick()
    )
    return (
        lambda: world.send("pull_request", opened, work=False),
        lambda: world.send("pull_request", pushed, work=False),
    )


def interleavings(actors: dict[str, list[str]]) -> list[tuple[str, ...]]:
    """Every order of the actors' steps that keeps each actor's own steps in order."""
    tokens = [name for name, steps in actors.items() for _ in steps]
    orders = set(itertools.permutations(tokens))
    result = []
    for order in sorted(orders):
        taken = dict.fromkeys(actors, 0)
        steps = []
        for name in order:
            steps.append(actors[name][taken[name]])
            taken[name] += 1
        result.append(tuple(steps))
    return result


def chunks(orders: list[tuple[str, ...]], size: int) -> list[pytest.ParameterSet]:
    """The orders in runs of ``size``, one test each, so that parallel workers share them
    (one test playing them all would keep one worker busy for minutes on a loaded machine)."""
    runs = [orders[start : start + size] for start in range(0, len(orders), size)]
    return [
        pytest.param(run, id=f"orders-{index * size + 1}-{index * size + len(run)}")
        for index, run in enumerate(runs)
    ]


# Both deliveries either way round: the orders of the two steps include both.
ONE_POST = {"first": ["first"], "second": ["second"], "worker": ["claim", "send", "record"]}
TWO_DELIVERIES_AND_A_POST = interleavings(ONE_POST)
WITH_A_SWEEP = [
    order
    for order in interleavings({**ONE_POST, "sweep": ["sweep"]})
    if order.index("first") < order.index("second")
]


def test_the_chunks_hold_every_interleaving_once():
    """Split for parallel workers, the orders played are still every interleaving, each once:
    20 of two deliveries and a post's three steps, 60 with a sweep after the first delivery."""
    for orders, size, count in ((TWO_DELIVERIES_AND_A_POST, 10, 20), (WITH_A_SWEEP, 10, 60)):
        played = [order for param in chunks(orders, size) for order in param.values[0]]
        assert played == orders and len(set(played)) == count
    assert {o.index("first") < o.index("second") for o in TWO_DELIVERIES_AND_A_POST} == {
        True,
        False,
    }


@pytest.mark.parametrize("orders", chunks(TWO_DELIVERIES_AND_A_POST, 10))
@pytest.mark.parametrize(
    "scenario",
    [opened_then_approved, approved_then_changes_requested, opened_then_pushed],
    ids=lambda s: s.__name__,
)
def test_every_interleaving_ends_with_github_showing_the_latest_decision(world, scenario, orders):
    """Two deliveries for one pull request and a post cut at its seams, in every order (and
    the deliveries either way round): once the worker is done, GitHub shows exactly what
    gate.py decides from the final state, on one check run, each version posted once."""
    world.promote()
    for index, order in enumerate(orders):
        number, head = 100 + index, f"{index:04x}" + "c" * 36
        first, second = scenario(world, number, head)
        Steps(world, number, head).play(order, first, second)
        final_head = world.pull(number).head_sha
        assert shown(world, final_head) == decided_check(world, final_head), order
        row = world.outbox(final_head)
        assert row.posted_version == row.version, order
        writes = [w for w in world.fake.check_run_writes if w.head_sha == final_head]
        assert len(writes) <= row.version, (order, "a version was posted twice")


@pytest.mark.parametrize("orders", chunks(WITH_A_SWEEP, 10))
def test_every_interleaving_with_a_sweep(world, orders):
    """A sweep may run at any point between a review, its post's seams and a later review;
    it never leaves GitHub behind the gate either."""
    world.promote()
    for index, order in enumerate(orders):
        number, head = 500 + index, f"{index:04x}" + "d" * 36
        first, second = approved_then_changes_requested(world, number, head)
        Steps(world, number, head).play(order, first, second)
        assert shown(world, head) == decided_check(world, head), order
        assert shown(world, head)["conclusion"] == "action_required", order
        close(world, number, head)  # so that the next order's sweep has only its own to do


def close(world: World, number: int, head: str) -> None:
    """The pull request is closed on GitHub and the webhook says so."""
    world.fake.add_pull(REPO, number, author="mpage", head_sha=head, state="closed")
    payload = world.events.pull_request(
        "closed", number=number, author="mpage", head_sha=head, updated_at=world.tick()
    )
    world.send("pull_request", payload)


# ---------------------------------------------------------------- one write per installation


def test_an_installations_write_slot_is_held_across_workers(world):
    """While one worker (any process) holds a claim on an installation's commit, another
    worker claims nothing of that installation; with two slots allowed, it claims the next."""
    world.promote()
    for number, head in ((1, "1" * 40), (2, "2" * 40)):
        world.fake.add_pull(REPO, number, author="mpage", head_sha=head)
        payload = world.events.pull_request(
            "opened", number=number, author="mpage", head_sha=head, updated_at=world.tick()
        )
        world.send("pull_request", payload, work=False)
    engine = world.app.extensions["gatekeeper.engine"]
    with Session(engine) as first, Session(engine) as second:
        held = outbox.claim(first, now=utcnow())
        assert held is not None
        assert outbox.claim(second, now=utcnow()) is None
        other = outbox.claim(second, now=utcnow(), writes_per_installation=2)
        assert other is not None and other.head_sha != held.head_sha
