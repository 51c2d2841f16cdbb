"""GitHub delivers webhooks in any order: what Gatekeeper stores must not depend on it.

Each scenario is one mentee pull request's story, dated as GitHub dates it (every payload's
``pull_request.updated_at`` and every review's ``submitted_at`` later than the one before).
Hypothesis shuffles the deliveries; each shuffle runs against its own fake GitHub and SQLite
file, and must end where delivering in the real order ends.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from fakegithub import FakeGitHub
from gate_support import INSTALLATION, REPO, World, app_for
from gatekeeper import github_of
from gatekeeper.models import AuditEvent

HEAD, NEW = "a" * 40, "b" * 40
NUMBER = 7
CHECK = "mentor-approval"
SHUFFLES = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

Delivery = tuple[str, dict[str, Any]]  # (X-GitHub-Event, payload)


@contextmanager
def fresh_world() -> Iterator[World]:
    """A promoted mentee on a fake GitHub and SQLite file of its own, torn down afterwards."""
    with tempfile.TemporaryDirectory() as tmp, FakeGitHub() as fake:
        fake.add_installation(INSTALLATION, account="python")
        fake.add_repo(REPO, installation_id=INSTALLATION)
        app = app_for(fake, f"sqlite:///{tmp}/gatekeeper.sqlite")
        try:
            world = World(app, fake)
            world.promote()
            yield world
        finally:
            github_of(app).close()
            app.extensions["gatekeeper.engine"].dispose()
        assert fake.violations == []


def pull_event(world: World, action: str, *, head_sha: str, **options: Any) -> Delivery:
    """A ``pull_request`` delivery dated now in the story."""
    payload = world.events.pull_request(
        action, number=NUMBER, author="mpage", head_sha=head_sha, updated_at=world.tick(), **options
    )
    return "pull_request", payload


def review_event(world: World, **options) -> Delivery:
    """A ``pull_request_review`` delivery dated now in the story (see World.review_payload)."""
    return "pull_request_review", world.review_payload(NUMBER, author="mpage", **options)


def deliver_in(world: World, story: dict[str, Delivery], order: list[str]) -> None:
    for label in order:
        event, payload = story[label]
        world.send(event, payload)


# ---------------------------------------------------------------------------- reviews and a push


def review_story(world: World) -> dict[str, Delivery]:
    """Approval on A, push to B, changes requested then another mentor's approval on B,
    the first approval dismissed, and an outsider's approval; keys in the real order."""
    world.fake.add_pull(REPO, NUMBER, author="mpage", head_sha=HEAD)
    story = {"opened on A": pull_event(world, "opened", head_sha=HEAD)}
    story["colesbury approves A (1)"] = review_event(
        world, reviewer="colesbury", state="approved", review_id=1, head_sha=HEAD
    )
    approved_at = story["colesbury approves A (1)"][1]["review"]["submitted_at"]
    world.fake.push(REPO, NUMBER, NEW)
    story["push B"] = pull_event(world, "synchronize", head_sha=NEW)
    story["colesbury requests changes on B (2)"] = review_event(
        world, reviewer="colesbury", state="changes_requested", review_id=2, head_sha=NEW
    )
    story["vstinner approves B (3)"] = review_event(
        world, reviewer="vstinner", state="approved", review_id=3, head_sha=NEW
    )
    story["review 1 dismissed"] = review_event(
        world,
        reviewer="colesbury",
        state="dismissed",
        review_id=1,
        head_sha=NEW,
        commit_id=HEAD,
        submitted_at=approved_at,
        action="dismissed",
    )
    story["guido approves B (4)"] = review_event(
        world, reviewer="guido", state="approved", review_id=4, head_sha=NEW
    )
    return story


REVIEW_ORDER = [
    "opened on A",
    "colesbury approves A (1)",
    "push B",
    "colesbury requests changes on B (2)",
    "vstinner approves B (3)",
    "review 1 dismissed",
    "guido approves B (4)",
]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The stored pull request and the check runs of ours on its stored head."""

    head_sha: str
    gate: str | None
    gate_title: str | None
    approved_by: tuple[str, ...]
    checks: tuple[tuple[str, str], ...]  # (conclusion, title), oldest first


def outcome_of(world: World) -> Outcome:
    pull = world.pull(NUMBER)
    runs = world.fake.check_runs_for(REPO, pull.head_sha, name=CHECK)
    return Outcome(
        head_sha=pull.head_sha,
        gate=pull.gate,
        gate_title=pull.gate_title,
        approved_by=tuple(pull.approved_by),
        checks=tuple((run["conclusion"], run["output"]["title"]) for run in runs),
    )


@functools.cache
def reviews_in_real_order() -> Outcome:
    with fresh_world() as world:
        deliver_in(world, review_story(world), REVIEW_ORDER)
        return outcome_of(world)


def test_reviews_in_real_order_approve_by_the_standing_mentor() -> None:
    """In GitHub's own order only vstinner's approval on B stands: one green check on B."""
    assert reviews_in_real_order() == Outcome(
        head_sha=NEW,
        gate="approved",
        gate_title="Approved by @vstinner",
        approved_by=("vstinner",),
        checks=(("success", "Approved by @vstinner"),),
    )


@SHUFFLES
@given(order=st.permutations(REVIEW_ORDER))
def test_review_deliveries_in_any_order_store_the_same_gate(order: list[str]) -> None:
    """Any delivery order of the review story stores what the real order stores."""
    with fresh_world() as world:
        story = review_story(world)
        assert list(story) == REVIEW_ORDER
        deliver_in(world, story, order)
        assert outcome_of(world) == reviews_in_real_order()


# ---------------------------------------------------------------------------- a merge and a late review


MERGE_ORDER = [
    "opened on A",
    "colesbury approves A (1)",
    "push B",
    "merged at B",
    "vstinner approves B (2)",
]


def merge_story(world: World, *, approved_before_merge: bool) -> dict[str, Delivery]:
    """A stale approval on A, a push to B, then vstinner's approval on B and the merge of B.

    The keys are always MERGE_ORDER; ``approved_before_merge`` says which of the last two
    GitHub dated first.
    """
    world.fake.add_pull(REPO, NUMBER, author="mpage", head_sha=HEAD)
    story = {"opened on A": pull_event(world, "opened", head_sha=HEAD)}
    story["colesbury approves A (1)"] = review_event(
        world, reviewer="colesbury", state="approved", review_id=1, head_sha=HEAD
    )
    world.fake.push(REPO, NUMBER, NEW)
    story["push B"] = pull_event(world, "synchronize", head_sha=NEW)

    def approve() -> None:
        merged = story.get("merged at B")
        merged_at = merged[1]["pull_request"]["merged_at"] if merged else None
        story["vstinner approves B (2)"] = review_event(
            world,
            reviewer="vstinner",
            state="approved",
            review_id=2,
            head_sha=NEW,
            merged_at=merged_at,
        )

    if approved_before_merge:
        approve()
    story["merged at B"] = pull_event(world, "closed", head_sha=NEW, merged=True, merged_by="mpage")
    if not approved_before_merge:
        approve()
    return {label: story[label] for label in MERGE_ORDER}


@dataclasses.dataclass(frozen=True)
class MergedOutcome:
    """The stored merged pull request and the bypass it left on record."""

    head_sha: str
    state: str
    merged: bool
    merged_by: str | None
    gate: str | None
    approved_by: tuple[str, ...]
    bypassed_by: tuple[str, ...]  # actors of bypasses not cleared by a late pre-merge approval
    green: bool  # whether a check run of ours on the merged head says success


def merged_outcome_of(world: World) -> MergedOutcome:
    pull = world.pull(NUMBER)
    with world.session() as session:
        audit = session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.kind).in_(["bypass", "bypass_cleared"]))
            .order_by(col(AuditEvent.id))
        ).all()
    bypasses = [event.actor for event in audit if event.kind == "bypass"]
    cleared = sum(event.kind == "bypass_cleared" for event in audit)
    runs = world.fake.check_runs_for(REPO, pull.head_sha, name=CHECK)
    return MergedOutcome(
        head_sha=pull.head_sha,
        state=pull.state,
        merged=pull.merged,
        merged_by=pull.merged_by,
        gate=pull.gate,
        approved_by=tuple(pull.approved_by),
        bypassed_by=tuple(bypasses[cleared:]),
        green=any(run["conclusion"] == "success" for run in runs),
    )


@functools.cache
def merge_in_real_order(approved_before_merge: bool) -> MergedOutcome:
    with fresh_world() as world:
        story = merge_story(world, approved_before_merge=approved_before_merge)
        order = list(MERGE_ORDER)
        if approved_before_merge:  # GitHub sent the approval before the merge
            order[-2:] = order[-1:-3:-1]
        deliver_in(world, story, order)
        return merged_outcome_of(world)


def test_merge_before_the_approval_is_a_bypass() -> None:
    """Merged while only a stale approval stood: a bypass by the merger; a later approval
    does not approve retroactively, and B's check never turned green."""
    assert merge_in_real_order(False) == MergedOutcome(
        head_sha=NEW,
        state="closed",
        merged=True,
        merged_by="mpage",
        gate="bypassed",
        approved_by=(),
        bypassed_by=("mpage",),
        green=False,
    )


def test_merge_after_the_approval_is_approved() -> None:
    """Merged after vstinner approved B: approved, no bypass on record."""
    assert merge_in_real_order(True) == MergedOutcome(
        head_sha=NEW,
        state="closed",
        merged=True,
        merged_by="mpage",
        gate="approved",
        approved_by=("vstinner",),
        bypassed_by=(),
        green=True,
    )


@SHUFFLES
@given(order=st.permutations(MERGE_ORDER))
@pytest.mark.parametrize(
    "approved_before_merge", [False, True], ids=["review after merge", "review before merge"]
)
def test_merge_deliveries_in_any_order_store_the_same_outcome(
    approved_before_merge: bool, order: list[str]
) -> None:
    """Whatever order the merge and the reviews arrive in, the gate, approvers and bypass
    record are those of the real order (a check run may stay unposted: closed PRs get none)."""
    with fresh_world() as world:
        deliver_in(world, merge_story(world, approved_before_merge=approved_before_merge), order)
        got = merged_outcome_of(world)
    expected = merge_in_real_order(approved_before_merge)
    assert dataclasses.replace(got, green=expected.green) == expected
    if not expected.green:
        assert not got.green, "a merge without approval was shown as approved"
