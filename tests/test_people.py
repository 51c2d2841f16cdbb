"""What the mentee and the mentor find on the dashboard, and can do from there (issue #9)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from dashboard_support import NEW_SHA, REPO, SHA, TOKEN, Site
from gatekeeper import create_app
from gatekeeper.models import AuditEvent, Job, Review, utcnow

DAY = timedelta(days=1)


@pytest.fixture
def waited(site: Site) -> Site:
    """mpage's #7 has waited two days for colesbury or vstinner."""
    site.promote(start=utcnow() - 3 * DAY)
    site.pull(7, at=utcnow() - 2 * DAY)
    return site


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'").split())


def jobs_of(site: Site) -> list[Job]:
    with site.session() as session:
        return list(session.exec(select(Job).where(Job.kind == "request_reviews")))


def audit_kinds(site: Site, kind: str) -> list[AuditEvent]:
    with site.session() as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.kind == kind)))


# ---------------------------------------------------------------- the mentee


def test_the_mentee_sees_what_blocks_each_pull_request(site: Site):
    """One line per waiting pull request: "1 of 2 approvals", or an approval on an older commit."""
    site.promote(approvals_required=2)
    site.pull(7)
    site.review(7, "colesbury")
    site.pull(8, head_sha=NEW_SHA)
    site.review(8, "vstinner", commit_id=SHA, id=2)  # on a commit #8 no longer has
    site.sign_in("mpage")
    page = text(site.page("/mentorships/mpage"))
    assert "1 of 2 approvals. Needs 1 more: ask @vstinner." in page
    assert "Approved by @vstinner on an older commit — ask for a new look." in page


def test_the_pull_request_page_does_not_read_like_a_refusal_to_its_author(waited: Site):
    """The author is told what happens next, not "only X can approve" or about buttons they lack."""
    waited.sign_in("mpage")
    page = text(waited.page(f"/pulls/{REPO}/7"))
    assert "Waits for a mentor: ask @colesbury or @vstinner." in page
    assert "Nothing is wrong" in page
    assert "Only" not in page and "you are signed in as" not in page
    assert "the button below" not in page
    assert "Remind my mentors" in page


def test_remind_asks_the_mentors_again_and_is_audited(waited: Site):
    """After a day of waiting, the author reminds: a review request is queued and recorded."""
    waited.sign_in("mpage")
    before = len(jobs_of(waited))
    response = waited.post(f"/pulls/{REPO}/7/remind", {"next": "/mentorships/mpage#pulls"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/mentorships/mpage#pulls")
    [job] = jobs_of(waited)[before - 1 if before else 0 :][-1:]
    assert job.args == {"repo": REPO, "number": 7, "logins": ["colesbury", "vstinner"]}
    [event] = audit_kinds(waited, "reminded")
    assert event.actor == "mpage" and event.pr_number == 7
    assert "@colesbury, @vstinner" in event.detail


def test_a_second_reminder_within_a_day_is_refused(waited: Site):
    """Once a day per pull request: the second press is a 409 and records nothing."""
    waited.sign_in("mpage")
    assert waited.post(f"/pulls/{REPO}/7/remind").status_code == 302
    again = waited.post(f"/pulls/{REPO}/7/remind")
    assert again.status_code == 409
    assert "once a day is enough" in again.get_data(as_text=True)
    assert len(audit_kinds(waited, "reminded")) == 1
    assert "Remind my mentors</button>" not in waited.page("/mentorships/mpage")


def test_a_pull_request_waiting_less_than_a_day_cannot_be_reminded_of(site: Site):
    """The mentors were asked when it began to wait: no button, and a POST is refused."""
    site.promote()
    site.pull(7)
    site.sign_in("mpage")
    assert "Remind my mentors</button>" not in site.page("/mentorships/mpage")
    refused = site.post(f"/pulls/{REPO}/7/remind")
    assert refused.status_code == 409
    assert "waited less than a day" in refused.get_data(as_text=True)
    assert audit_kinds(site, "reminded") == []


@pytest.mark.parametrize(("who", "status"), [("vstinner", 403), ("boss", 403)])
def test_only_the_author_reminds(waited: Site, who, status):
    """A mentor or a maintainer cannot press the mentee's reminder."""
    waited.sign_in(who)
    assert waited.post(f"/pulls/{REPO}/7/remind").status_code == status
    assert audit_kinds(waited, "reminded") == []


def test_a_reminder_needs_the_csrf_token(waited: Site):
    """Without its token the POST is refused, and nothing is recorded."""
    waited.sign_in("mpage")
    response = waited.client.post(f"/pulls/{REPO}/7/remind", data={})
    assert response.status_code == 400
    assert audit_kinds(waited, "reminded") == []


# ---------------------------------------------------------------- the mentor


def test_the_mentor_approves_from_the_list_and_comes_back_to_it(waited: Site):
    """/me lists the waiting pull request with its age and an Approve button pinned to its commit."""
    waited.sign_in("colesbury")
    me = waited.page("/me")
    assert "waiting 2 days" in text(me)
    form = re.search(
        r'<form[^>]*action="/pulls/python/cpython/7/approve"[^>]*>(.*?)</form>', me, re.S
    )
    assert form is not None
    assert f'name="head_sha" value="{SHA}"' in form.group(1)
    token = TOKEN.search(form.group(1))
    assert token is not None
    response = waited.post(
        f"/pulls/{REPO}/7/approve", {"head_sha": SHA, "next": "/me"}, token=token.group(1)
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/me")
    assert waited.stored_pull(7).gate == "approved"
    assert "Nothing waits for your approval" in waited.page("/me")


def test_the_overview_lists_the_same_approve_button(waited: Site):
    """The overview's "wait for you" list approves the same way, with a confirm question."""
    waited.sign_in("vstinner")
    page = waited.page("/")
    assert 'data-confirm="Approve python/cpython#7 at commit aaaaaaa?' in page
    assert "waiting 2 days" in text(page)


def test_approving_twice_stores_one_record(waited: Site):
    """A second press (another tab) is refused, and only one approval is stored."""
    waited.sign_in("colesbury")
    assert waited.post(f"/pulls/{REPO}/7/approve", {"head_sha": SHA}).status_code == 302
    again = waited.post(f"/pulls/{REPO}/7/approve", {"head_sha": SHA})
    assert again.status_code == 409
    assert "your approval already counts" in again.get_data(as_text=True)
    with waited.session() as session:
        assert len(list(session.exec(select(Review)))) == 1


def test_the_overview_shows_the_mentee_what_waits_on_them(waited: Site):
    """Signed in, the mentee's front page lists their own waiting pull requests, not a badge only."""
    waited.pull(8, head_sha=NEW_SHA, title="Another change")
    waited.review(8, "colesbury", commit_id=NEW_SHA, id=3)
    waited.sign_in("mpage")
    page = text(waited.page("/"))
    assert "Your first month: 1 of your pull requests waits for a mentor" in page
    assert "python/cpython#7 A change waiting 2 days" in page
    assert "python/cpython#8" not in page.split("Where you stand")[0]  # approved: not waiting
    waited.sign_in("someone")
    assert "Your first month" not in waited.page("/")


def test_someone_elses_pull_request_the_mentee_approved_offers_no_reminder(site: Site):
    """A pull request waiting because the mentee approved it (gate approved PRs) is not its
    author's to chase: no button, and a press is refused."""
    site.promote(gate_approved_prs=True, start=utcnow() - 3 * DAY)
    site.pull(9, author="someone", head_sha=NEW_SHA, at=utcnow() - 2 * DAY)
    site.review(9, "mpage", commit_id=NEW_SHA, id=5)
    assert site.stored_pull(9).gate == "waiting"
    site.sign_in("someone")
    assert "Remind my mentors" not in site.page(f"/pulls/{REPO}/9")
    assert site.post(f"/pulls/{REPO}/9/remind").status_code == 409
    assert audit_kinds(site, "reminded") == []


def test_no_reminder_when_review_requests_are_turned_off(database_url, app):
    """With GATEKEEPER_REQUEST_REVIEWS off a reminder would send nothing: none is offered."""
    web = create_app(
        {
            "database_url": database_url,
            "secret_key": "test",
            "maintainers": "boss",
            "request_reviews": False,
        }
    )
    site = Site(web)
    site.promote(start=utcnow() - 3 * DAY)
    site.pull(7, at=utcnow() - 2 * DAY)
    site.sign_in("mpage")
    page = text(site.page(f"/pulls/{REPO}/7"))
    assert "review requests are turned off here" in page
    assert "Remind my mentors" not in site.page("/mentorships/mpage")
    assert site.post(f"/pulls/{REPO}/7/remind").status_code == 409
    assert jobs_of(site) == []
    web.extensions["gatekeeper.engine"].dispose()
