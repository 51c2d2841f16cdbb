"""Refusals by kind: the gate gives each refusal a kind, one table maps kinds to HTTP statuses,
and the dashboard answers an approval it refuses with the table's status and the gate's words."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest
from flask import Flask

from dashboard_support import REPO, SHA, Site
from fakegithub import default_user_id
from gatekeeper import create_app, gate
from gatekeeper.refusals import STATUS, Refusal, RefusalKind, status_of

START = datetime(2026, 12, 1, tzinfo=UTC)
TERMS = gate.Terms(
    mentee="mpage",
    mentors=frozenset({"colesbury", "vstinner"}),
    started_at=START,
    ends_at=START + timedelta(days=30),
    mentee_display="mpage",
    mentee_id=default_user_id("mpage"),
    mentor_ids={default_user_id(m): m for m in ("colesbury", "vstinner")},
)
PULL = gate.Pull(
    repo=REPO, number=7, author="mpage", head_sha=SHA, author_id=default_user_id("mpage")
)


@pytest.mark.parametrize(
    ("kind", "status"),
    [(RefusalKind.NOT_ALLOWED, HTTPStatus.FORBIDDEN), (RefusalKind.CONFLICT, HTTPStatus.CONFLICT)],
)
def test_each_kind_has_its_status(kind: RefusalKind, status: HTTPStatus):
    """Not allowed is 403, a conflict with the pull request's state is 409."""
    assert status_of(Refusal(kind, "why")) == status


def test_the_table_covers_every_kind():
    """A kind added without a status would be a KeyError in a view, so the table names them all."""
    assert set(STATUS) == set(RefusalKind)


def test_a_refusal_reads_as_its_message():
    """Interpolated into a flash or an audit detail, a refusal is the gate's words, unchanged."""
    refusal = Refusal(RefusalKind.CONFLICT, "the pull request is closed")
    assert f"Not approved: {refusal}." == "Not approved: the pull request is closed."


@pytest.mark.parametrize(
    ("pull", "terms", "gated", "login", "expected"),
    [
        (PULL, TERMS, True, "colesbury", None),
        (PULL, TERMS, True, "ColesBury", None),
        (
            gate.Pull(repo=REPO, number=7, author="mpage", head_sha=SHA, state="closed"),
            TERMS,
            True,
            "colesbury",
            Refusal(RefusalKind.CONFLICT, "the pull request is closed"),
        ),
        (
            PULL,
            None,
            True,
            "colesbury",
            Refusal(RefusalKind.CONFLICT, "no mentorship gates this pull request"),
        ),
        (
            PULL,
            TERMS,
            False,
            "colesbury",
            Refusal(RefusalKind.CONFLICT, "no mentorship gates this pull request"),
        ),
        (
            PULL,
            TERMS,
            True,
            "mpage",
            Refusal(RefusalKind.NOT_ALLOWED, "authors cannot approve their own pull request"),
        ),
        (
            PULL,
            TERMS,
            True,
            "picnixz",
            Refusal(RefusalKind.NOT_ALLOWED, "only mentors of mpage can approve"),
        ),
    ],
    ids=["mentor", "mentor-any-case", "closed", "no-terms", "not-gated", "author", "outsider"],
)
def test_the_gate_gives_each_refusal_its_kind(pull, terms, gated, login, expected):
    """Who may never approve is not_allowed; what the pull request's state refuses is a conflict."""
    refusal = gate.approval_refusal(
        pull, terms, gated=gated, login=login, user_id=default_user_id(login)
    )
    assert refusal == expected


# ---------------------------------------------------------------- the dashboard


@pytest.fixture
def month(tmp_path, migrated_sqlite) -> Iterator[Site]:
    """mpage mentored by colesbury and vstinner with PR #7 waiting; sobolevn mentored by picnixz."""
    path = tmp_path / "web.sqlite"
    shutil.copyfile(migrated_sqlite, path)
    app: Flask = create_app(
        {"database_url": f"sqlite:///{path}", "secret_key": "test", "maintainers": "boss"}
    )
    site = Site(app)
    site.promote()
    site.promote("sobolevn", ["picnixz"])
    site.pull(7)
    yield site
    app.extensions["gatekeeper.engine"].dispose()


def approve_as(site: Site, login: str):
    site.sign_in(login)
    return site.post(f"/pulls/{REPO}/7/approve", {"head_sha": SHA})


@pytest.mark.parametrize(
    ("login", "message"),
    [
        ("picnixz", "only mentors of mpage can approve"),
        ("mpage", "authors cannot approve their own pull request"),
    ],
)
def test_the_dashboard_answers_not_allowed_with_its_status(month: Site, login: str, message: str):
    """A mentor of another mentee, or the author: 403 with the gate's words, nothing recorded."""
    before = month.audit()
    response = approve_as(month, login)
    assert response.status_code == STATUS[RefusalKind.NOT_ALLOWED] == 403
    assert message in response.get_data(as_text=True)
    assert month.audit() == before


def test_the_dashboard_answers_a_conflict_with_its_status(month: Site):
    """A second approval from the same mentor: 409 with the gate's words, one approval stored."""
    assert approve_as(month, "colesbury").status_code == 302
    response = approve_as(month, "colesbury")
    assert response.status_code == STATUS[RefusalKind.CONFLICT] == 409
    assert "your approval already counts for this pull request" in response.get_data(as_text=True)
    assert month.stored_pull().approved_by == ["colesbury"]
