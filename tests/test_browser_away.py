"""In a real Chromium, at a desktop's and a phone's width: a mentor marks themselves away on
/me and comes back, a maintainer marks the other mentor away and sees the mentorship with
every mentor away, the mentee reads whom to ask, and "Remind my mentors" confirms at its row,
below the sticky header. Every page on the way is axe-clean."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from test_a11y import AXE_PATH, AXE_RUN, axe_script, report  # noqa: F401  (a fixture)
from test_browser_people import review_requests, waiting  # noqa: F401  (a fixture)

from browser_support import REPO, Live, screenshot
from fakegithub import default_user_id
from gate_support import promote
from gatekeeper import away, db, people
from gatekeeper.events import Person
from gatekeeper.models import utcnow

pytestmark = pytest.mark.browser
# Heights short enough that the mentee page scrolls to a row at both widths.
WIDTHS = {"desktop": (1280, 640), "phone": (390, 700)}


class Browsing:
    """One person's browser at one width, signed in through (the fake) GitHub."""

    def __init__(self, browser: Any, live: Live, axe: Path, *, login: str, width: str) -> None:
        w, h = WIDTHS[width]
        self.live, self.width, self.login = live, width, login
        self.context = browser.new_context(
            viewport={"width": w, "height": h},
            is_mobile=width == "phone",
            has_touch=width == "phone",
        )
        self.context.route(live.url + AXE_PATH, lambda route: route.fulfill(path=str(axe)))
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        live.fake.oauth_next_login = login
        self.page.goto(f"{live.url}/login?next=/")
        self.page.get_by_role("button", name="Sign out").wait_for()
        self.found: dict[str, list[dict[str, Any]]] = {}

    def axe(self, name: str) -> None:
        """Check the page as it stands with axe-core, keeping what it finds, and a screenshot."""
        self.page.add_script_tag(url=self.live.url + AXE_PATH)
        if violations := self.page.evaluate(AXE_RUN):
            self.found[f"{self.width}-{name}"] = violations
        screenshot(self.page, f"away-{self.width}-{name}")

    def close(self) -> None:
        self.page.wait_for_load_state("networkidle")
        self.context.close()


@pytest.fixture
def people_at(browser: Any, axe_script: Path) -> Iterator[Callable[..., Browsing]]:  # noqa: F811
    """Open a browser for a person at a width; all are closed at the end."""
    opened: list[Browsing] = []

    def open_for(live: Live, login: str, width: str) -> Browsing:
        made = Browsing(browser, live, axe_script, login=login, width=width)
        opened.append(made)
        return made

    yield open_for
    for made in opened:
        made.close()


def in_a_week() -> str:
    return (utcnow().date() + timedelta(days=7)).isoformat()


@pytest.mark.parametrize("width", list(WIDTHS))
def test_a_mentor_goes_away_and_comes_back(live: Live, people_at, width: str):
    """colesbury tries a past date (refused beside the field), then a week ahead with a note;
    the mentee reads whom to ask; boss marks vstinner away and sees every mentor away; then
    colesbury is back. No page on the way has an axe-core violation."""
    promote(live.app, "mpage", ("colesbury", "vstinner"), actor="boss")
    with Session(live.app.extensions["gatekeeper.engine"]) as session:
        db.writing(
            session,
            lambda unit: [
                people.learn(unit, Person(default_user_id(login), login, login), at=utcnow())
                for login in ("mpage", "colesbury", "vstinner")
            ],
        )
    mentor = people_at(live, "colesbury", width)
    page = mentor.page
    page.goto(live.url + "/me")
    form = page.locator("#away")
    form.get_by_label("Away until (the last day away)").fill("2020-01-01")
    form.get_by_role("button", name="Mark me away").click()
    error = page.locator("#until-error")
    assert error.inner_text() == "Jan 1, 2020 has passed; give today or a later day."
    mentor.axe("refused-date")
    form = page.locator("#away")
    form.get_by_label("Away until (the last day away)").fill(in_a_week())
    form.get_by_label("Note (optional: why, or whom to ask meanwhile)").fill("at the sprint")
    form.get_by_role("button", name="Mark me away").click()
    until = away.day_words(utcnow().date() + timedelta(days=7))
    status = page.locator(".away-status")
    status.wait_for()
    assert status.inner_text().startswith(f"You are away until {until} (at the sprint).")
    assert page.url.endswith("/me#away")
    mentor.axe("away")

    mentee = people_at(live, "mpage", width)
    mentee.page.goto(live.url + "/mentorships/mpage")
    note = mentee.page.locator(".away-note")
    assert note.inner_text().startswith(f"colesbury is away until {until}.")
    assert mentee.page.locator(".mentor-list").get_by_text(f"away until {until}").is_visible()
    mentee.axe("mentee-sees-away")

    maintainer = people_at(live, "boss", width)
    maintainer.page.goto(live.url + "/me")
    form = maintainer.page.locator("#away")
    form.get_by_label("GitHub login (empty: yourself)").fill("vstinner")
    form.get_by_label("Away until (the last day away)").fill(in_a_week())
    form.get_by_role("button", name="Mark away").click()
    stranded = maintainer.page.locator("#stranded")
    stranded.wait_for()
    assert "mpage: all 2 mentors are away" in " ".join(stranded.inner_text().split())
    maintainer.axe("every-mentor-away")

    page.goto(live.url + "/me")
    page.get_by_role("button", name="I am back").click()
    page.get_by_text("Welcome back: marked present.").wait_for()
    assert page.locator(".away-status").count() == 0
    mentor.axe("back")
    for person in (mentor, mentee, maintainer):
        assert not person.found, "axe-core violations:\n" + report(person.found)


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_reminder_is_confirmed_at_its_row_below_the_header(
    waiting: Live,  # noqa: F811
    people_at,
    width: str,
):
    """The mentee presses Remind my mentors: the page comes back scrolled to that row, not
    under the sticky header, and the row says it was reminded and when the next is possible."""
    before = review_requests(waiting)
    mentee = people_at(waiting, "mpage", width)
    page = mentee.page
    page.goto(waiting.url + "/mentorships/mpage")
    row = page.locator("#pulls tr", has_text=f"{REPO}#7")
    row.get_by_role("button", name="Remind my mentors").click()
    confirmation = row.locator(".reminded")
    confirmation.wait_for()
    assert page.url.endswith("/mentorships/mpage#pr-python-cpython-7")
    # A time's exact moment may follow it as text (shown on a tap), in brackets.
    assert re.match(
        r"Reminded just now(\s*\([^)]*\)\s*)?; next reminder possible tomorrow at ",
        confirmation.inner_text(),
    )
    # The row is in the page before Chromium scrolls to the fragment, which it does once the
    # stylesheets have loaded: a loaded run caught the page still at the top, so the test
    # waits for the load, then for the scroll (a page that never scrolls fails on timeout).
    page.wait_for_load_state("load")
    page.wait_for_function("() => window.scrollY > 0")  # it scrolled to the row
    header = page.locator(".topbar").bounding_box()
    box = row.bounding_box()
    assert header is not None and box is not None
    assert box["y"] >= header["y"] + header["height"] - 1  # not under the header
    assert box["y"] < WIDTHS[width][1]  # in view
    waiting.wait_for(lambda: review_requests(waiting) == before + 1)
    mentee.axe("reminded")
    assert not mentee.found, "axe-core violations:\n" + report(mentee.found)
