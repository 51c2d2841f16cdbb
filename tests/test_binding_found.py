"""Holes in what an approval binds to that the property test (test_gate_properties.py) found,
each as the smallest story that shows it, on both databases."""

from __future__ import annotations

from gate_support import REPO

A, B = "a" * 40, "b" * 40


def test_a_comment_overtaking_the_push_before_it_approves_the_pushed_commit(world):
    """Opened on A; the mentee pushes B; the mentor comments ``/gatekeeper approve`` while B
    is the head, and that comment is delivered before the push's ``synchronize`` (GitHub does
    not order deliveries). Once both have arrived, Gatekeeper knows B was the head when the
    comment was written: B is approved, and a force-push back to A (which the mentor never
    approved) waits. Bound to A at delivery, the approval instead turned A green."""
    world.promote()
    world.open_pull(head_sha=A)
    world.fake.push(REPO, 7, B)
    synchronize = world.events.pull_request(
        "synchronize", number=7, author="mpage", head_sha=B, updated_at=world.tick()
    )
    comment = world.events.comment(
        "created", number=7, sender="colesbury", body="/gatekeeper approve",
        created_at=world.tick(),
    )  # fmt: skip
    world.send("issue_comment", comment)
    world.send("pull_request", synchronize)
    assert world.pull().gate == "approved"
    world.push(head_sha=A)
    assert world.pull().gate == "waiting"
    assert world.check(A)["conclusion"] == "action_required"
