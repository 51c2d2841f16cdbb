"""The job queue (``gatekeeper/jobs.py``) on SQLite and PostgreSQL: one pending job per key,
leases that keep a job to one worker, and a job asked for again while it ran running again."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from factories import NOW
from gatekeeper import jobs
from gatekeeper.models import Job, JobKind

SECOND = timedelta(seconds=1)


REPO = "python/cpython"
# Arguments of each kind the tests ask for, by the key's prefix.
ARGS: dict[str, jobs.JobArgs] = {
    "sync_pull": jobs.SyncPull(repo=REPO, number=7),
    "reconcile": jobs.Reconcile(mentorship_id=1),
    "request_reviews": jobs.RequestReviews(repo=REPO, number=7, logins=("vstinner",)),
    "bypass_comment": jobs.BypassComment(repo=REPO, number=7),
}


def ask(session: Session, key: str = "sync_pull:python/cpython#7", **options) -> None:
    """Ask for a job and commit, as the transaction that wanted it would."""
    args = options.pop("args", None) or ARGS[key.split(":")[0]]
    jobs.enqueue(session, key=key, args=args, now=options.pop("now", NOW), **options)
    session.commit()


def rows(session: Session) -> list[Job]:
    session.expire_all()
    return list(session.exec(select(Job)))


# ---------------------------------------------------------------- enqueue


def test_asking_twice_keeps_one_job_with_the_latest_arguments(session: Session):
    """A second ask for a pending key bumps its generation and keeps one row, with the new args."""
    ask(session, args=jobs.RequestReviews(repo=REPO, number=7, logins=("colesbury",)))
    ask(session, args=jobs.RequestReviews(repo=REPO, number=7, logins=("vstinner",)))
    [job] = rows(session)
    assert job.generation == 2
    assert job.args == {"repo": REPO, "number": 7, "logins": ["vstinner"]}


def test_jobs_of_different_keys_are_separate(session: Session):
    """Two keys are two jobs, each of the first generation."""
    ask(session, "reconcile:1")
    ask(session, "reconcile:2")
    assert sorted((j.key, j.generation) for j in rows(session)) == [
        ("reconcile:1", 1),
        ("reconcile:2", 1),
    ]


# ---------------------------------------------------------------- argument shapes

# Each kind's arguments, and the JSON that was stored for them before they were typed.
STORED = [
    (
        jobs.SyncPull(repo=REPO, number=7, installation_id=3, delivery_id="d-1"),
        {"repo": REPO, "number": 7, "installation_id": 3, "delivery_id": "d-1"},
    ),
    (
        jobs.SyncPull(repo=REPO, number=7),
        {"repo": REPO, "number": 7, "installation_id": None, "delivery_id": None},
    ),
    (jobs.Reconcile(mentorship_id=4), {"mentorship_id": 4}),
    (
        jobs.RequestReviews(repo=REPO, number=7, logins=("colesbury", "vstinner")),
        {"repo": REPO, "number": 7, "logins": ["colesbury", "vstinner"]},
    ),
    (jobs.ResolveRepository(repo=REPO), {"repo": REPO}),
    (jobs.BypassComment(repo=REPO, number=7), {"repo": REPO, "number": 7}),
    (jobs.LearnAccount(login="hugovk"), {"login": "hugovk"}),
    (jobs.ReadTree(repo=REPO, sha="a" * 40), {"repo": REPO, "sha": "a" * 40}),
    (jobs.SendNotice(notice_id=9), {"notice_id": 9}),
]


def test_every_kind_has_a_shape():
    """No kind of job is left without typed arguments (the worker could not run it)."""
    assert set(jobs.SHAPES) == set(JobKind)
    assert {type(args) for args, _ in STORED} == set(jobs.SHAPES.values())


@pytest.mark.parametrize(("args", "stored"), STORED)
def test_arguments_are_stored_as_before_and_read_back(
    session: Session, args: jobs.JobArgs, stored: dict
):
    """Typed arguments are stored as the same JSON as before they were typed (queued rows of
    the previous version still run), and a claim reads them back as they were asked for."""
    ask(session, f"{args.KIND}:x", args=args)
    [row] = rows(session)
    assert (row.kind, row.args) == (args.KIND, stored)
    claimed = jobs.claim(session, now=NOW)
    assert claimed is not None and claimed.args == args


BROKEN = [
    ("mystery", {}, "no job is of kind 'mystery'"),
    ("sync_pull", {"repo": REPO}, "sync_pull lacks number"),
    ("reconcile", {"mentorship_id": 1, "mentee": "x"}, "reconcile takes no mentee"),
    ("sync_pull", {"repo": REPO, "number": "7"}, "number is not int: '7'"),
    ("bypass_comment", {"repo": REPO, "number": True}, "number is not int: True"),
    ("request_reviews", {"repo": REPO, "number": 7, "logins": [1]}, "logins is not str: 1"),
    (
        "request_reviews",
        {"repo": REPO, "number": 7, "logins": "vstinner"},
        "logins is not tuple[str, ...]: 'vstinner'",
    ),
    (
        "sync_pull",
        {"repo": REPO, "number": 7, "delivery_id": 5},
        "delivery_id is not str | None: 5",
    ),
]


@pytest.mark.parametrize(("kind", "stored", "reason"), BROKEN)
def test_a_job_whose_arguments_fit_no_shape_is_dropped_and_the_next_claimed(
    session: Session, caplog: pytest.LogCaptureFixture, kind: str, stored: dict, reason: str
):
    """A row left by another version (an unknown kind, a key missing or extra, a value of
    the wrong type) is dropped with a warning naming why; the claim goes on to the next job."""
    session.add(Job(key="broken:1", kind=kind, args=stored, created_at=NOW, run_after=NOW))
    session.commit()
    ask(session, "reconcile:1", now=NOW + SECOND)
    with caplog.at_level(logging.WARNING, logger="gatekeeper.jobs"):
        claimed = jobs.claim(session, now=NOW + SECOND)
    assert claimed is not None and claimed.key == "reconcile:1"
    assert [row.key for row in rows(session)] == ["reconcile:1"]
    assert f"job broken:1 dropped: {reason}" in caplog.text


# ---------------------------------------------------------------- claim


def test_a_claimed_job_is_not_claimed_again_until_its_lease_ends(session: Session):
    """A second worker finds nothing while the first holds the job; once the lease ends
    (the first worker died), the job is theirs."""
    ask(session)
    first = jobs.claim(session, now=NOW)
    assert first is not None and first.kind == "sync_pull"
    assert first.args == jobs.SyncPull(repo=REPO, number=7)
    assert jobs.claim(session, now=NOW + jobs.LEASE - SECOND) is None
    again = jobs.claim(session, now=NOW + jobs.LEASE + SECOND)
    assert again is not None and again.id == first.id


def test_a_job_asked_for_later_waits_for_its_time(session: Session):
    """``run_after`` holds a job back until then."""
    ask(session, now=NOW, run_after=NOW + timedelta(minutes=2))
    assert jobs.claim(session, now=NOW + timedelta(minutes=1)) is None
    assert jobs.claim(session, now=NOW + timedelta(minutes=2)) is not None


def test_the_job_due_first_is_claimed_first(session: Session):
    """Oldest due first, whatever the order they were asked in; ``kinds`` narrows the choice."""
    ask(session, "reconcile:1", now=NOW)
    ask(session, "sync_pull:python/cpython#7", now=NOW - SECOND)
    ask(session, "request_reviews:python/cpython#7", now=NOW - 2 * SECOND)
    reconcile = jobs.claim(session, now=NOW, kinds=("reconcile",))
    assert reconcile is not None and reconcile.key == "reconcile:1"
    claimed = [jobs.claim(session, now=NOW) for _ in range(3)]
    assert [c.key if c else None for c in claimed] == [
        "request_reviews:python/cpython#7",
        "sync_pull:python/cpython#7",
        None,
    ]


# ---------------------------------------------------------------- done, retry, drop


def test_done_finishes_a_job(session: Session):
    """A job done is gone."""
    ask(session)
    job = jobs.claim(session, now=NOW)
    assert job is not None
    jobs.done(session, job)
    assert rows(session) == []


def test_a_job_asked_for_again_while_it_ran_runs_again(session: Session):
    """What changed while the job ran was not seen by it: done keeps the job, released
    at once, with the newer arguments."""
    ask(session, args=jobs.SyncPull(repo=REPO, number=7))
    job = jobs.claim(session, now=NOW)
    assert job is not None
    ask(session, args=jobs.SyncPull(repo=REPO, number=8), now=NOW + SECOND)
    jobs.done(session, job)
    [row] = rows(session)
    assert row.claimed_until is None
    again = jobs.claim(session, now=NOW + SECOND)
    assert again is not None and again.generation == 2
    assert again.args == jobs.SyncPull(repo=REPO, number=8)
    jobs.done(session, again)
    assert rows(session) == []


def test_retry_later_counts_the_attempt_and_waits(session: Session):
    """A failed job keeps its (shortened) error, counts the attempt and runs again at ``at``."""
    ask(session)
    job = jobs.claim(session, now=NOW)
    assert job is not None
    jobs.retry_later(session, job, error="x" * 600, at=NOW + timedelta(minutes=5))
    [row] = rows(session)
    assert (row.attempts, len(row.last_error or "")) == (1, 500)
    assert jobs.claim(session, now=NOW + timedelta(minutes=4)) is None
    retried = jobs.claim(session, now=NOW + timedelta(minutes=5))
    assert retried is not None and retried.attempts == 1


def test_drop_gives_a_job_up_even_if_asked_for_again(session: Session):
    """A job dropped is gone, even one asked for again meanwhile."""
    ask(session)
    job = jobs.claim(session, now=NOW)
    assert job is not None
    ask(session, now=NOW + SECOND)
    jobs.drop(session, job)
    assert rows(session) == []


# ---------------------------------------------------------------- pending


def test_pending_counts_due_and_retried_jobs_not_ones_asked_for_later(session: Session):
    """Due jobs and jobs being retried wait; one asked for later and never tried does not yet."""
    ask(session, "reconcile:1")
    ask(session, "bypass_comment:python/cpython#7", run_after=NOW + timedelta(minutes=2))
    ask(session, "sync_pull:python/cpython#8")
    assert jobs.pending(session, now=NOW) == 2
    job = jobs.claim(session, now=NOW, kinds=("sync_pull",))
    assert job is not None
    jobs.retry_later(session, job, error="502", at=NOW + timedelta(hours=1))
    assert jobs.pending(session, now=NOW) == 2  # the retried one still counts
    assert jobs.pending(session, now=NOW + timedelta(minutes=2)) == 3
