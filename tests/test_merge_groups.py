"""Stored merge groups (``gatekeeper/merge_groups.py``) on SQLite and PostgreSQL: a group is
kept once whatever event comes first, the first ``destroyed`` counts, and a group is found by
its own commit or by the head of the pull request it carries."""

from __future__ import annotations

from sqlmodel import Session

from factories import HOUR, NEW_SHA, NOW, REPO, SHA, pull_info
from gatekeeper import merge_groups
from gatekeeper import pulls as store
from gatekeeper.events import MergeGroupInfo

GROUP_SHA = "c" * 40


def group_info(
    head_sha: str = GROUP_SHA, *, number: int | None = 7, reason: str | None = None
) -> MergeGroupInfo:
    """A merge queue's group adding ``#number`` to main."""
    ref = f"refs/heads/gh-readonly-queue/main/pr-{number}-{'d' * 40}"
    return MergeGroupInfo(head_sha, ref, "main", number, reason)


def test_a_group_is_stored_once_whatever_comes_first(session: Session):
    """``checks_requested`` twice (or ``destroyed`` first) keeps one row, first seen first."""
    first = merge_groups.remember(session, repo=REPO, info=group_info(), now=NOW)
    again = merge_groups.remember(session, repo=REPO, info=group_info(), now=NOW + HOUR)
    session.commit()
    assert again.id == first.id
    assert again.created_at == NOW


def test_the_first_destroyed_counts(session: Session):
    """A redelivered or later ``destroyed`` changes neither when nor why."""
    merge_groups.destroy(session, repo=REPO, info=group_info(reason="merged"), now=NOW)
    later = group_info(reason="dequeued")
    group = merge_groups.destroy(session, repo=REPO, info=later, now=NOW + HOUR)
    session.commit()
    assert (group.destroyed_at, group.destroyed_reason) == (NOW, "merged")


def test_a_destroyed_group_is_no_longer_living(session: Session):
    """Living groups on a commit leave out the ones the queue destroyed."""
    merge_groups.remember(session, repo=REPO, info=group_info(GROUP_SHA), now=NOW)
    merge_groups.destroy(session, repo=REPO, info=group_info(NEW_SHA, reason="merged"), now=NOW)
    session.commit()
    living = [g.head_sha for g in merge_groups.living_on(session, repo=REPO, head_sha=GROUP_SHA)]
    assert living == [GROUP_SHA]
    assert merge_groups.living_on(session, repo=REPO, head_sha=NEW_SHA) == []


def test_groups_are_found_by_the_head_of_the_pull_request_they_carry(session: Session):
    """A change to #7's gate (on its head) concerns the living groups carrying #7, and no
    group carrying another pull request."""
    store.upsert_pull(session, info=pull_info(7, head_sha=SHA), now=NOW)
    store.upsert_pull(session, info=pull_info(8, head_sha=NEW_SHA), now=NOW)
    merge_groups.remember(session, repo=REPO, info=group_info("c" * 40, number=7), now=NOW)
    merge_groups.remember(session, repo=REPO, info=group_info("e" * 40, number=8), now=NOW)
    merge_groups.destroy(
        session, repo=REPO, info=group_info("f" * 40, number=7, reason="dequeued"), now=NOW
    )
    session.commit()
    carrying = merge_groups.living_carrying(session, repo=REPO, head_sha=SHA)
    assert [(g.head_sha, g.number) for g in carrying] == [("c" * 40, 7)]


def test_groups_on_a_commit_and_carrying_its_pull_request_are_read_together(session: Session):
    """``living_around`` gives in one query what ``living_on`` and ``living_carrying`` give:
    the living groups whose commit it is, and those carrying a pull request it heads."""
    store.upsert_pull(session, info=pull_info(7, head_sha=SHA), now=NOW)
    store.upsert_pull(session, info=pull_info(8, head_sha=NEW_SHA), now=NOW)
    merge_groups.remember(session, repo=REPO, info=group_info("c" * 40, number=7), now=NOW)
    merge_groups.remember(session, repo=REPO, info=group_info(SHA, number=8), now=NOW)
    merge_groups.remember(session, repo=REPO, info=group_info("e" * 40, number=8), now=NOW)
    merge_groups.destroy(
        session, repo=REPO, info=group_info("f" * 40, number=7, reason="dequeued"), now=NOW
    )
    session.commit()
    on, carrying = merge_groups.living_around(session, repo=REPO, head_sha=SHA)
    assert [(g.head_sha, g.number) for g in on] == [(SHA, 8)]
    assert [(g.head_sha, g.number) for g in carrying] == [("c" * 40, 7)]
    assert on == merge_groups.living_on(session, repo=REPO, head_sha=SHA)
    assert carrying == merge_groups.living_carrying(session, repo=REPO, head_sha=SHA)


def test_open_pulls_come_with_whether_the_repository_has_a_living_group(session: Session):
    """``open_pulls_and_queue`` gives a commit's open pull requests and whether any group of
    the repository lives (on any commit, and also when no pull request is open on this one):
    a destroyed group, or one of another repository, does not count."""
    store.upsert_pull(session, info=pull_info(7, head_sha=SHA), now=NOW)
    session.commit()
    pulls, queued = merge_groups.open_pulls_and_queue(session, repo=REPO, head_sha=SHA)
    assert ([p.number for p in pulls], queued) == ([7], False)
    merge_groups.destroy(session, repo=REPO, info=group_info(reason="merged"), now=NOW)
    merge_groups.remember(session, repo="python/mypy", info=group_info("e" * 40), now=NOW)
    session.commit()
    assert merge_groups.open_pulls_and_queue(session, repo=REPO, head_sha=SHA)[1] is False
    merge_groups.remember(session, repo=REPO, info=group_info("f" * 40, number=8), now=NOW)
    session.commit()
    pulls, queued = merge_groups.open_pulls_and_queue(session, repo=REPO, head_sha=SHA)
    assert ([p.number for p in pulls], queued) == ([7], True)
    assert merge_groups.open_pulls_and_queue(session, repo=REPO, head_sha=NEW_SHA) == ([], True)


def test_the_carried_pull_request_is_none_until_seen(session: Session):
    """A group names its pull request by number; it is None until that pull request is
    stored, and for a group whose ref names none."""
    group = merge_groups.remember(session, repo=REPO, info=group_info(number=7), now=NOW)
    nameless = merge_groups.remember(
        session, repo=REPO, info=group_info("e" * 40, number=None), now=NOW
    )
    assert merge_groups.carried_pull(session, group) is None
    store.upsert_pull(session, info=pull_info(7), now=NOW)
    carried = merge_groups.carried_pull(session, group)
    assert carried is not None and carried.number == 7
    assert merge_groups.carried_pull(session, nameless) is None
