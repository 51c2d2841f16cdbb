"""In a real Chromium: the mentee reminds their mentors, the mentor approves from their list."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session
from test_browser import sign_in

from browser_support import REPO, Live, screenshot
from gate_support import promote
from gatekeeper import db
from gatekeeper import pulls as store
from gatekeeper.models import utcnow

pytestmark = pytest.mark.browser
SHA = "d" * 40
REVIEWERS = f"/repos/{REPO}/pulls/7/requested_reviewers"


@pytest.fixture
def page(browser, live: Live) -> Iterator:
    """A fresh browser context at a phone-sized width's desktop sibling."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


@pytest.fixture
def waiting(live: Live) -> Live:
    """mpage's #7, opened on GitHub and gated, has waited two days for colesbury or vstinner."""
    promote(
        live.app,
        "mpage",
        ("colesbury", "vstinner"),
        actor="boss",
        start=utcnow() - timedelta(days=3),
    )
    live.open_pull(7, author="mpage", head_sha=SHA)
    live.wait_for(lambda: (live.check(SHA) or {}).get("conclusion") == "action_required")
    live.wait_for(lambda: any(c.path == REVIEWERS for c in live.fake.calls))  # asked once

    def waited_two_days(session: Session) -> None:
        pull = store.find_pull(session, repo=REPO, number=7)
        assert pull is not None
        pull.waiting_since = utcnow() - timedelta(days=2)  # as if opened two days ago
        session.add(pull)

    # The app's worker writes too: this waits its turn, as the app's own writes do.
    with Session(live.app.extensions["gatekeeper.engine"]) as session:
        db.writing(session, waited_two_days)
    return live


def review_requests(live: Live) -> int:
    return sum(1 for c in live.fake.calls if c.method == "POST" and c.path == REVIEWERS)


def test_the_mentee_reminds_their_mentors(page, waiting: Live):
    """The mentee presses Remind my mentors: GitHub is asked again for both mentors' reviews."""
    before = review_requests(waiting)
    page.goto(waiting.url + "/")
    sign_in(page, waiting, "mpage")
    assert page.locator("#yours").get_by_text(f"{REPO}#7").is_visible()
    page.goto(waiting.url + "/mentorships/mpage")
    row = page.locator("#pulls tr", has_text=f"{REPO}#7")
    assert "Waits for a mentor: ask @colesbury or @vstinner." in row.inner_text()
    screenshot(page, "people-01-mentee-before-reminding")
    row.get_by_role("button", name="Remind my mentors").click()
    page.get_by_text("Reminder sent: your mentors' reviews are being requested again").wait_for()
    waiting.wait_for(lambda: review_requests(waiting) == before + 1)
    [asked] = [c for c in waiting.fake.calls if c.method == "POST" and c.path == REVIEWERS][-1:]
    assert sorted(asked.json["reviewers"]) == ["colesbury", "vstinner"]
    # Once a day: the button is gone until tomorrow.
    assert page.get_by_role("button", name="Remind my mentors").count() == 0
    screenshot(page, "people-02-mentee-reminded")


def test_the_mentor_approves_from_their_list(page, waiting: Live):
    """On /me the mentor presses Approve, confirms, and GitHub's check turns green."""
    page.goto(waiting.url + "/")
    sign_in(page, waiting, "colesbury")
    page.goto(waiting.url + "/me")
    item = page.locator("li", has_text=f"{REPO}#7")
    assert "waiting 2 days" in item.inner_text()
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    screenshot(page, "people-03-mentor-list")
    item.get_by_role("button", name=f"Approve {REPO}#7").click()
    page.get_by_text("Approved. The check on GitHub is being updated.").wait_for()
    assert page.url.endswith("/me")
    assert questions == [f"Approve {REPO}#7 at commit {SHA[:7]}? It can then merge."]
    waiting.wait_for(lambda: (waiting.check(SHA) or {}).get("conclusion") == "success")
    assert page.get_by_text("Nothing waits for your approval").is_visible()
    screenshot(page, "people-04-mentor-approved")
