"""What the dashboard's pages show (``gatekeeper/pages.py``): the gate as people name it, a
mentorship's progress, the audit log's lines, a check's status, and the page builders'
decisions (who may approve or remind, what a stranger sees of a private pull request)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from flask import Flask
from sqlmodel import Session

from factories import DAY, HOUR, NOW, SHA, mentorship, pull_info, settings
from fakegithub import default_user_id
from gatekeeper import decisions, outbox, pages
from gatekeeper import pulls as store
from gatekeeper.auth import User
from gatekeeper.models import AuditEvent, CommitCheck, Mentorship, PullRequest
from gatekeeper.visibility import PRIVATE_PULL


def row(**fields) -> PullRequest:
    """A pull request by ``mpage`` with the given gate fields."""
    return PullRequest(
        repo="python/cpython",
        number=7,
        author="mpage",
        author_display="mpage",
        head_sha=SHA,
        first_seen_at=NOW,
        **fields,
    )


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"gate": "waiting"}, "waiting"),
        ({"gate": "approved"}, "approved"),
        ({"gate": "approved", "state": "closed", "merged": True}, "merged"),
        ({"gate": "not_required", "state": "closed", "merged": True}, "not_required"),
        ({"gate": "bypassed", "state": "closed", "merged": True}, "bypassed"),
        ({"gate": "lifted"}, "lifted"),
        ({"gate": "lifted", "state": "closed", "merged": True}, "lifted"),
        ({"gate": "waiting", "state": "closed"}, "closed"),
        ({"gate": "approved", "state": "closed"}, "closed"),
    ],
)
def test_shown_state_names_the_gate_as_people_do(fields: dict, shown: str):
    """Merged and approved reads "merged"; closed unmerged reads "closed"; a bypass or a
    lifted gate keeps its name whatever became of the pull request."""
    assert pages.shown_state(row(**fields)) == shown
    assert shown in pages.STATE_WORDS


def period(start: datetime, days: int = 30, **fields) -> Mentorship:
    return Mentorship(
        mentee="mpage",
        mentee_display="mpage",
        started_at=start,
        ends_at=start + days * DAY,
        created_by="boss",
        created_at=start,
        **fields,
    )


@pytest.mark.parametrize(
    ("mentorship", "expected"),
    [
        pytest.param(period(NOW - 4 * DAY - HOUR), ("active", 5, 30, 13), id="day-5-of-30"),
        pytest.param(period(NOW + 2 * DAY), ("scheduled", 0, 30, 0), id="not-started"),
        pytest.param(period(NOW - 40 * DAY), ("ended", 30, 30, 100), id="ran-out"),
        pytest.param(
            period(NOW - 10 * DAY, ended_at=NOW - 5 * DAY, end_reason="graduated"),
            ("ended", 6, 30, 100),
            id="ended-early-shows-full",
        ),
    ],
)
def test_progress_counts_days_from_the_start(mentorship: Mentorship, expected: tuple):
    """Day N of M counted from the start, and how far along, a finished period full."""
    progress = pages.Progress.of(mentorship, NOW)
    assert (progress.state, progress.day, progress.total_days, progress.percent) == expected


def event(kind: str = "gate_waiting", *, repo: str | None = "python/cpython", at=NOW, **fields):
    return AuditEvent(
        at=at, actor="gatekeeper", kind=kind, repo=repo, pr_number=7 if repo else None, **fields
    )


def test_identical_consecutive_log_lines_collapse_with_a_count():
    """Repeats in a row are one line counting them (newest first, so the earliest is kept as
    ``first_at``); a different line between them breaks the run."""
    lines = [
        pages.LogLine.of(e, hidden=frozenset())
        for e in (
            event(at=NOW),
            event(at=NOW - HOUR),
            event(at=NOW - 2 * HOUR),
            event("gate_approved", at=NOW - 3 * HOUR),
            event(at=NOW - 4 * HOUR),
        )
    ]
    collapsed = pages.collapse(lines)
    assert [(line.kind, line.count, line.first_at) for line in collapsed] == [
        ("gate_waiting", 3, NOW - 2 * HOUR),
        ("gate_approved", 1, None),
        ("gate_waiting", 1, None),
    ]


def test_a_line_about_a_hidden_repository_names_no_pull_request():
    """A private pull request's line is redacted (no name, no link, no detail), but two of them
    about different pull requests are never collapsed into one."""
    hidden = frozenset({"python/secret"})
    first = pages.LogLine.of(event(repo="python/secret", detail="head abc"), hidden=hidden)
    other = event(repo="python/secret", detail="head abc")
    other.pr_number = 8
    second = pages.LogLine.of(other, hidden=hidden)
    assert (first.pull, first.href, first.detail) == (PRIVATE_PULL, None, "")
    assert len(pages.collapse([first, second])) == 2
    shown = pages.LogLine.of(event(detail="x"), hidden=hidden)
    assert (shown.pull, shown.href) == ("python/cpython#7", "/pulls/python/cpython/7")


def pull_page(**fields) -> pages.PullPage:
    """A pull request page with nothing on it but ``fields`` (a waiting pull request)."""
    values = {
        "pull": row(gate="waiting"),
        "mentorship": None,
        "terms": None,
        "shown_state": "waiting",
        "verdicts": [],
        "approvers": [],
        "standing": [],
        "roles": frozenset(),
        "refusal": None,
        **fields,
    }
    return pages.PullPage(**values)


@pytest.mark.parametrize(
    ("check", "status"),
    [
        (None, "not asked for yet"),
        ({"version": 0}, "not asked for yet"),
        ({"version": 2, "posted_version": 1}, "being updated"),
        (
            {"version": 2, "posted_version": 1, "last_error": "502"},
            "being updated; the last try failed (502), retrying",
        ),
        ({"version": 2, "posted_version": 2}, "posted"),
        (
            {"version": 2, "posted_version": 2, "gave_up": True, "last_error": "422"},
            "not posted: GitHub refused it (422)",
        ),
    ],
)
def test_check_status_says_where_the_check_stands(check: dict | None, status: str):
    """The head commit's check in a few words, from its outbox row."""
    outbox_row = None if check is None else CommitCheck(repo="r", head_sha=SHA, name="n", **check)
    page = pull_page(check=outbox_row)
    assert page.check_status == status


@pytest.mark.parametrize(
    ("roles", "refusal", "gate", "can"),
    [
        ({"mentor"}, None, "waiting", True),
        ({"mentor", "viewer_standing"}, None, "waiting", False),
        ({"mentor"}, "only mentors can approve", "waiting", False),
        ({"mentor"}, None, "approved", False),
        ({"mentee"}, None, "waiting", False),
    ],
)
def test_the_approve_button_is_for_a_mentor_whose_approval_is_wanted(roles, refusal, gate, can):
    """Shown to a mentor who may approve a waiting pull request they have not approved yet."""
    page = pull_page(pull=row(gate=gate), roles=frozenset(roles), refusal=refusal)
    assert page.can_approve is can


# ---------------------------------------------------------------- page builders


@pytest.fixture
def context(app: Flask) -> Iterator[None]:
    """The pages read the signed-in viewer's roles within the app."""
    with app.app_context():
        yield


def waiting_pull(session: Session, *, repo: str = "python/cpython") -> None:
    """The mentee's pull request in ``repo``, waiting for two days; the repository as its
    events described it."""
    store.remember_installation(
        session, repo=repo, installation_id=1, private=repo != "python/cpython"
    )
    pull = store.upsert_pull(
        session, info=pull_info(repo=repo, updated_at=NOW - 2 * DAY), now=NOW - 2 * DAY
    )
    decided = decisions.reevaluate(
        session, pull, settings=settings(request_reviews=False), now=NOW - 2 * DAY
    )
    outbox.waive(session, decided.touched)  # a stored sample: no check is posted
    session.commit()


def account(login: str) -> User:
    """Signed in as ``login``: the account GitHub's payloads give that login."""
    return User(login, login, default_user_id(login))


@pytest.mark.usefixtures("context")
def test_the_author_may_remind_from_the_mentee_page(session: Session):
    """The mentee sees what their waiting pull request needs and may remind; a mentor may not."""
    mentorship(session, start=NOW - 3 * DAY)
    waiting_pull(session)
    mine = pages.mentee_page(session, mentee="mpage", user=account("mpage"), now=NOW)
    theirs = pages.mentee_page(session, mentee="mpage", user=account("colesbury"), now=NOW)
    [row_mine], [row_theirs] = mine.pulls, theirs.pulls
    assert (row_mine.shown_state, row_mine.may_remind, row_theirs.may_remind) == (
        "waiting",
        True,
        False,
    )
    assert row_mine.blocker is not None
    assert row_mine.waited == 2 * 86400.0
    assert [r.pull for r in mine.waiting] == [row_mine.pull]


@pytest.mark.usefixtures("context")
def test_a_stranger_sees_a_private_pull_request_redacted(session: Session):
    """Outside the mentorship, a pull request in a private repository is a row without it,
    and its own page is not found."""
    mentorship(session, start=NOW - 3 * DAY)
    waiting_pull(session, repo="python/secret")
    stranger, mentor = account("guido"), account("colesbury")
    [hidden] = pages.mentee_page(session, mentee="mpage", user=stranger, now=NOW).pulls
    [shown] = pages.mentee_page(session, mentee="mpage", user=mentor, now=NOW).pulls
    assert (hidden.pull, hidden.shown_state) == (None, "waiting")
    assert shown.pull is not None and shown.pull.repo == "python/secret"
    found = {
        user.login: pages.pull_page(session, repo="python/secret", number=7, user=user, now=NOW)
        for user in (stranger, mentor)
    }
    assert found["guido"] is None
    assert found["colesbury"] is not None and found["colesbury"].can_approve
