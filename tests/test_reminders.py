"""Reminding mentors (``gatekeeper/reminders.py``): who may remind, when, and what a reminder
queues and audits (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlmodel import Session

from factories import DAY, HOUR, NOW, SHA, audit_kinds, jobs_of, mentorship, pull_info, settings
from gatekeeper import decisions, outbox, reminders
from gatekeeper import pulls as store
from gatekeeper.models import PullRequest


def row(**fields) -> PullRequest:
    """A pull request by ``mpage``, open and waiting for a mentor for two days."""
    values = {"gate": "waiting", "state": "open", "waiting_since": NOW - 2 * DAY, **fields}
    return PullRequest(
        repo="python/cpython",
        number=7,
        author="mpage",
        author_display="mpage",
        head_sha=SHA,
        first_seen_at=NOW - 2 * DAY,
        **values,
    )


@pytest.mark.parametrize(
    ("mentee", "login", "may"),
    [
        pytest.param("mpage", "MPage", True, id="the-mentee-author"),
        pytest.param("mpage", "colesbury", False, id="someone-else"),
        pytest.param("eclips4", "eclips4", False, id="a-mentee-not-the-author"),
        pytest.param("mpage", None, False, id="signed-out"),
        pytest.param(None, "mpage", False, id="no-mentorship"),
    ],
)
def test_only_the_mentee_who_wrote_it_may_remind(mentee, login, may: bool):
    """The author under mentorship reminds; nobody else does."""
    assert reminders.may_ask(row(), mentee=mentee, login=login) is may


@pytest.mark.parametrize(
    ("fields", "last", "enabled", "why"),
    [
        pytest.param({}, None, True, None, id="waited-two-days"),
        pytest.param({}, NOW - 2 * DAY, True, None, id="reminded-two-days-ago"),
        pytest.param({}, None, False, "review requests are turned off", id="turned-off"),
        pytest.param({"gate": "approved"}, None, True, "it does not wait", id="approved"),
        pytest.param({"state": "closed"}, None, True, "it does not wait", id="closed"),
        pytest.param(
            {"waiting_since": NOW - 23 * HOUR}, None, True, "it has waited less", id="too-soon"
        ),
        pytest.param({}, NOW - 23 * HOUR, True, "they were reminded 2024-11-11", id="again"),
    ],
)
def test_when_a_reminder_is_refused(fields, last: datetime | None, enabled: bool, why):
    """A reminder waits a day after the wait began and a day after the last one; and there
    must be something to remind of."""
    refusal = reminders.refusal(row(**fields), last=last, now=NOW, enabled=enabled)
    if why is None:
        assert refusal is None
    else:
        assert refusal is not None and refusal.startswith(why)


def waiting_pull(session: Session) -> PullRequest:
    """The mentee's pull request, waiting for two days."""
    mentorship(session, start=NOW - 3 * DAY)
    pull = store.upsert_pull(session, info=pull_info(updated_at=NOW - 2 * DAY), now=NOW - 2 * DAY)
    config = settings(request_reviews=False)
    decided = decisions.reevaluate(session, pull, settings=config, now=NOW - 2 * DAY)
    outbox.waive(session, decided.touched)  # a stored sample: no check is posted
    session.commit()
    return pull


def test_a_reminder_asks_the_mentors_again_and_is_audited(session: Session):
    """The author's reminder queues a review request naming the mentors and is audited."""
    pull = waiting_pull(session)
    assert reminders.remind(session, pull, login="mpage", settings=settings(), now=NOW) is None
    session.commit()
    job = jobs_of(session)["request_reviews:python/cpython#7"]
    assert sorted(job.args["logins"]) == ["colesbury", "vstinner"]
    assert audit_kinds(session)[-1] == reminders.KIND
    assert reminders.last_reminders(session, pulls=[pull]) == {pull.id: NOW}


def test_a_second_reminder_the_same_day_is_refused(session: Session):
    """Two presses make one reminder: the second is refused and audits nothing."""
    pull = waiting_pull(session)
    reminders.remind(session, pull, login="mpage", settings=settings(), now=NOW)
    session.commit()
    again = reminders.remind(session, pull, login="mpage", settings=settings(), now=NOW + HOUR)
    assert again is not None and again.startswith("they were reminded")
    assert audit_kinds(session).count(reminders.KIND) == 1


def test_someone_else_may_not_remind(session: Session):
    """A mentor (or anyone) other than the author is refused, and nothing is queued."""
    pull = waiting_pull(session)
    refusal = reminders.remind(session, pull, login="colesbury", settings=settings(), now=NOW)
    assert refusal == "only the author, under mentorship, reminds their mentors"
    assert "request_reviews:python/cpython#7" not in jobs_of(session)


def test_last_reminders_of_no_pull_requests_is_empty(session: Session):
    """Nothing asked, nothing read."""
    assert reminders.last_reminders(session, pulls=[]) == {}
