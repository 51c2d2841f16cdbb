"""The layout in a real Chromium: long text never widens a page, the approval that counts looks
it, the phone header fits, times are reachable by tapping and read in the reader's zone, and
the skip link is axe-clean and the light theme stays light, at a desktop's and a phone's width
(the dark theme's axe sweep is part of tests/test_a11y.py's).

The wording behind these pages is tested through Flask's test client in tests/test_layout.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_a11y
from sqlmodel import Session, select
from test_a11y import WIDTHS, Visitor, report

from browser_support import REPO, Live, serving
from fakegithub import default_user_id
from gatekeeper import settings_of
from gatekeeper.demo import MAINTAINER, populate
from gatekeeper.models import Mentorship, PullRequest, utcnow

pytestmark = pytest.mark.browser
axe_script = test_a11y.axe_script  # the pinned axe-core, installed once for the session

# A note that is one long URL, and a title that is one long word: nothing to break them at.
LONG_URL = "https://discuss.python.org/t/" + "a" * 1_870
LONG_TITLE = "gh-1: " + "Refactor" * 40
LONG_LOGIN = "b" * 300
WIDER_THAN_VIEWPORT = "document.documentElement.scrollWidth - window.innerWidth"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[Live]:
    """The demo's month, mira-k's note a 1,900-character URL and one title a single long word."""

    def fill(app: Any) -> None:
        with Session(app.extensions["gatekeeper.engine"], expire_on_commit=False) as session:
            populate(session, settings=settings_of(app), now=utcnow(), account_id=default_user_id)
            mira = session.exec(select(Mentorship).where(Mentorship.mentee == "mira-k")).one()
            mira.note = LONG_URL
            pull = session.exec(select(PullRequest).where(PullRequest.number == 110)).one()
            pull.title = LONG_TITLE
            session.commit()

    with serving(tmp_path_factory.mktemp("layout"), migrated_sqlite, before_worker=fill) as live:
        yield live


def visitor_for(browser: Any, site: Live, axe: Path, role: str, width: str) -> Visitor:
    """A visitor at ``width``, signed in as ``role``'s person (see test_a11y.ROLES)."""
    return Visitor(browser, site, axe, role=role, width=width)


# ---------------------------------------------------------------- long text


def _submit_without_maxlength(page: Any, field: str, value: str, button: str) -> Any:
    """Type ``value`` into ``field`` past its maxlength (as a script could) and send the form."""
    box = page.locator(f"input[name={field}]")
    box.evaluate("e => { e.removeAttribute('maxlength'); e.form.noValidate = true; }")
    box.fill(value)
    with page.expect_navigation() as answer:
        page.get_by_role("button", name=button, exact=True).click()
    return answer.value


@pytest.mark.parametrize("width", list(WIDTHS))
def test_long_text_never_makes_a_page_wider_than_the_screen(
    browser: Any, site: Live, axe_script: Path, width: str
):
    """A 1,900-character URL as the note, a title that is one long word, and a 300-character
    login sent to the new-mentorship form and to "Add a mentor": at 1280 and 390 px no page is
    wider than the viewport, the long words wrap, and the error repeats at most a few words."""
    visitor = visitor_for(browser, site, axe_script, "maintainer", width)
    too_wide: dict[str, int] = {}
    try:
        page = visitor.page
        for path in ("/mentorships/mira-k", f"/pulls/{REPO}/110", "/", "/me"):
            page.goto(site.url + path)
            if (sideways := page.evaluate(WIDER_THAN_VIEWPORT)) > 0:
                too_wide[path] = sideways
        page.goto(site.url + "/mentorships/mira-k")
        assert LONG_URL in page.locator(".terms").inner_text()
        page.goto(site.url + "/mentorships/new")
        page.get_by_label("Mentors (GitHub logins, comma-separated)").fill("tomas-r")
        answer = _submit_without_maxlength(page, "mentee", LONG_LOGIN, "Start mentorship")
        assert answer.status == 400
        error = page.locator(".field.has-error .error").inner_text()
        assert "at most 39 characters" in error and "b" * 41 not in error
        if (sideways := page.evaluate(WIDER_THAN_VIEWPORT)) > 0:
            too_wide["new-mentorship-error"] = sideways
        page.goto(site.url + "/mentorships/mira-k")
        answer = _submit_without_maxlength(page, "login", LONG_LOGIN, "Add")
        assert answer.status == 400
        assert "b" * 41 not in page.locator(".flash-error").inner_text()
        if (sideways := page.evaluate(WIDER_THAN_VIEWPORT)) > 0:
            too_wide["add-mentor-error"] = sideways
        visitor.screenshot("long-text")
    finally:
        visitor.close()
    assert too_wide == {}, too_wide


# ---------------------------------------------------------------- the approval that counts

VERDICT_STYLE = """el => {
  const s = getComputedStyle(el);
  return {weight: Number(s.fontWeight), colour: s.color, background: s.backgroundColor};
}"""


def test_the_approval_that_counts_looks_stronger_than_one_that_does_not(
    browser: Any, site: Live, axe_script: Path
):
    """On #107 june-h's approval of an older commit does not count; once tomas-r approves the
    new head, his does. The one that counts is bolder and on a green ground, the other plain."""
    visitor = visitor_for(browser, site, axe_script, "mentor", "desktop")
    try:
        page = visitor.page
        page.goto(f"{site.url}/pulls/{REPO}/107")
        page.get_by_role("button", name="Approve merge").click()
        page.locator(".flash-success").wait_for()
        counts = page.locator(".verdicts li.counts").first.evaluate(VERDICT_STYLE)
        other = page.locator(".verdicts li.not-counted").first.evaluate(VERDICT_STYLE)
    finally:
        visitor.close()
    assert counts["weight"] > other["weight"], (counts, other)
    assert counts["background"] != "rgba(0, 0, 0, 0)"
    assert other["background"] == "rgba(0, 0, 0, 0)"


# ---------------------------------------------------------------- the phone header


def test_on_a_phone_the_header_shows_the_whole_name_and_sign_out_on_one_line(
    browser: Any, site: Live, axe_script: Path
):
    """At 390 px, signed in as the demo's alex-maintainer, the header shows the whole login
    (not cut with an ellipsis) and "Sign out" on one line, all inside the screen."""
    visitor = visitor_for(browser, site, axe_script, "signed-out", "phone")
    try:
        visitor.sign_in(MAINTAINER)
        page = visitor.page
        name = page.locator("header .me .name")
        assert name.inner_text() == MAINTAINER
        assert name.evaluate("e => e.scrollWidth <= e.clientWidth")  # nothing cut off
        sign_out = page.get_by_role("button", name="Sign out")
        # One line box for its words: wrapped, "Sign out" would give two.
        lines = sign_out.evaluate(
            "e => { const r = document.createRange(); r.selectNodeContents(e);"
            " return r.getClientRects().length; }"
        )
        assert lines == 1
        box = sign_out.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390
        # The brand's word is hidden to make room, still named for a screen reader.
        assert page.get_by_role("link", name="Gatekeeper").count() == 1
        assert page.evaluate(WIDER_THAN_VIEWPORT) <= 0
    finally:
        visitor.close()


# ---------------------------------------------------------------- times


def test_a_tap_on_a_time_shows_the_exact_moment_in_the_readers_zone(
    browser: Any, site: Live, axe_script: Path
):
    """On a touch phone in New York, tapping "… ago" shows its exact moment in New York's time
    (EST/EDT); where the zone is UTC the same text says UTC."""
    shown = {}
    for zone in ("America/New_York", "UTC"):
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, timezone_id=zone
        )
        try:
            page = context.new_page()
            page.goto(f"{site.url}/pulls/{REPO}/107")
            moment = page.locator(".verdicts time.relative").first
            exact = moment.locator(".exact")
            assert exact.bounding_box() is None or exact.bounding_box()["width"] <= 1
            moment.tap()
            box = exact.bounding_box()
            assert box is not None and box["width"] > 20
            shown[zone] = exact.inner_text()
            page.wait_for_load_state("networkidle")
        finally:
            context.close()
    assert shown["America/New_York"].endswith(("EST)", "EDT)")), shown
    assert shown["UTC"].endswith("UTC)"), shown


# ---------------------------------------------------------------- the PEP 13 live check


def test_the_live_pep13_check_never_counts_negative_days(
    browser: Any, site: Live, axe_script: Path
):
    """Dates typed the wrong way round say the vote cannot close before it opened, never
    "open -9 days"; a one-day vote says "1 day"."""
    visitor = visitor_for(browser, site, axe_script, "maintainer", "desktop")
    try:
        page = visitor.page
        page.goto(site.url + "/mentorships/new")
        page.get_by_label("Votes for").fill("9")
        page.get_by_label("Votes against").fill("0")
        page.get_by_label("Vote opened").fill("2026-11-10")
        page.get_by_label("Vote closed").fill("2026-11-01")
        verdict = page.locator("#pep13")
        assert "the vote cannot close before it opened" in verdict.inner_text()
        assert "-9" not in verdict.inner_text()
        page.get_by_label("Vote closed").fill("2026-11-11")
        assert "the vote was open 1 day, PEP 13 asks for 7" in verdict.inner_text()
    finally:
        visitor.close()


# ---------------------------------------------------------------- skip link and dark theme


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_skip_link_is_the_first_stop_and_moves_focus_to_the_content(
    browser: Any, site: Live, axe_script: Path, width: str
):
    """The first Tab reaches "Skip to the content", shown on screen; Enter moves the focus to
    the page's main content, past the header; the page with it shown is axe-clean."""
    visitor = visitor_for(browser, site, axe_script, "mentee", width)
    try:
        page = visitor.page
        page.goto(site.url + "/mentorships/mira-k")
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent.trim()")
        assert focused == "Skip to the content"
        box = page.locator(".skip-link").bounding_box()
        assert box is not None and box["y"] >= 0 and box["width"] > 24
        violations = visitor.violations()
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        page.keyboard.press("Tab")
        assert page.evaluate("!document.querySelector('header').contains(document.activeElement)")
    finally:
        visitor.close()
    assert violations == [], report({"skip-link": violations})


# The dark theme's sweep (every page turns dark, axe's colour rules find nothing) is part of
# test_a11y's: it checks each page in dark right after light, on the page already loaded.


def test_the_light_theme_stays_light(browser: Any, site: Live, axe_script: Path):
    """With the system set to light, the page keeps its light background."""
    visitor = visitor_for(browser, site, axe_script, "signed-out", "desktop")
    try:
        visitor.page.emulate_media(color_scheme="light")
        visitor.page.goto(site.url + "/")
        background = visitor.page.evaluate("getComputedStyle(document.body).backgroundColor")
    finally:
        visitor.close()
    assert background == "rgb(246, 247, 249)"
