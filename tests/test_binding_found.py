"""Holes in what an approval binds to that the property test (test_gate_properties.py) found,
each as the smallest story that shows it, on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakegithub import FakeGitHub
from gate_support import REPO, World, app_for
from gatekeeper import github_of

A, B = "a" * 40, "b" * 40


@pytest.fixture
def world(database_url: str, github_fake: FakeGitHub) -> Iterator[World]:
    """A world whose app has ambv as its maintainer."""
    app = app_for(github_fake, database_url, maintainers="ambv")
    yield World(app, github_fake)
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


@pytest.mark.parametrize(
    ("sender", "body", "passing"),
    [
        ("colesbury", "/gatekeeper approve", "approved"),
        ("ambv", "/gatekeeper override hotfix", "overridden"),
    ],
    ids=["approve", "override"],
)
def test_a_comment_overtaking_the_push_before_it_binds_to_the_pushed_commit(
    world, sender, body, passing
):
    """Opened on A; the mentee pushes B; a mentor comments ``/gatekeeper approve`` (or the
    maintainer overrides) while B is the head, and that comment is delivered before the push's
    ``synchronize`` (GitHub does not order deliveries). Once both have arrived, Gatekeeper
    knows B was the head when the comment was written: B passes, and a force-push back to A
    (which nobody approved) waits. Bound to A at delivery, the comment instead turned A green."""
    world.promote()
    world.open_pull(head_sha=A)
    world.fake.push(REPO, 7, B)
    synchronize = world.events.pull_request(
        "synchronize", number=7, author="mpage", head_sha=B, updated_at=world.tick()
    )
    comment = world.events.comment(
        "created", number=7, sender=sender, body=body, created_at=world.tick()
    )
    world.send("issue_comment", comment)
    world.send("pull_request", synchronize)
    assert world.pull().gate == passing
    world.push(head_sha=A)
    assert world.pull().gate == "waiting"
    assert world.check(A)["conclusion"] == "action_required"
