"""The dashboard in a real Chromium against the fake GitHub: each role does exactly its own part."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session

from browser_support import REPO, Live, screenshot
from fakegithub import default_user_id
from gate_support import promote
from gatekeeper import db, settings_of
from gatekeeper.demo import populate
from gatekeeper.models import utcnow

pytestmark = pytest.mark.browser
SHA = "c" * 40


@pytest.fixture
def page(browser, live: Live) -> Iterator:
    """A fresh browser context (no cookies) that records every request leaving it."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.requests = []  # type: ignore[attr-defined]
    tab.on("request", lambda request: tab.requests.append(request))  # type: ignore[attr-defined]
    yield tab
    context.close()


def sign_in(page, live: Live, login: str) -> None:
    """Sign in with (the fake) GitHub from the header, as ``login``."""
    live.fake.oauth_next_login = login
    page.get_by_role("link", name="Sign in with GitHub").click()
    page.get_by_role("button", name="Sign out").wait_for()
    assert page.locator(".topbar .me > span").last.inner_text() == login


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("link", name="Sign in with GitHub").wait_for()


def test_the_month_from_start_to_end_in_a_browser(page, live: Live):
    """Maintainer starts, the PR waits, the mentor approves (GitHub gets success), the mentee sees it, the maintainer ends."""
    pull_path = f"/pulls/{REPO}/7"

    # An empty dashboard says what to do next.
    page.goto(live.url + "/")
    assert page.get_by_text("No mentorships yet").is_visible()
    screenshot(page, "01-overview-empty")

    # The maintainer signs in and starts a mentorship through the form.
    sign_in(page, live, "boss")
    page.get_by_role("link", name="Start a mentorship").first.click()
    page.get_by_label("New core developer (GitHub login)").fill("mpage")
    page.get_by_label("Mentors (GitHub logins, comma-separated)").fill("colesbury, vstinner")
    page.get_by_label("Votes for").fill("30")
    page.get_by_label("Votes against").fill("2")
    page.get_by_label("Vote opened").fill("2024-11-01")
    page.get_by_label("Vote closed").fill("2024-11-08")
    assert "Meets PEP 13" in page.locator("#pep13").inner_text()  # shown before submitting
    screenshot(page, "02-new-mentorship")
    page.get_by_role("button", name="Start mentorship").click()
    page.get_by_text("Mentorship for mpage started.").wait_for()
    assert urlsplit(page.url).path == "/mentorships/mpage"

    # The mentee opens a pull request on GitHub: it waits, and GitHub shows the blocking check.
    live.open_pull(7, author="mpage", head_sha=SHA)
    live.wait_for(lambda: (live.check(SHA) or {}).get("conclusion") == "action_required")
    page.reload()
    assert page.locator("#pulls").get_by_text("Waiting for a mentor").is_visible()
    screenshot(page, "03-mentee-page-waiting")

    # A maintainer is not a mentor: the PR page has no approve button for them.
    page.goto(live.url + pull_path)
    assert page.get_by_role("button", name="Approve merge").count() == 0
    sign_out(page)

    # The mentor signs in from the PR page, comes back to it and approves.
    page.goto(live.url + pull_path)
    live.fake.oauth_next_login = "colesbury"
    page.get_by_role("link", name="sign in", exact=True).click()
    page.get_by_role("button", name="Approve merge").wait_for()
    assert urlsplit(page.url).path == pull_path
    screenshot(page, "04-pull-request-mentor")
    page.get_by_role("button", name="Approve merge").click()
    page.get_by_text("Approved. The check on GitHub is being updated.").wait_for()
    live.wait_for(lambda: live.check(SHA)["conclusion"] == "success")
    assert live.check(SHA)["output"]["title"] == "Approved by @colesbury"
    screenshot(page, "05-pull-request-approved")
    sign_out(page)

    # The mentee sees it approved, and has no maintainer actions nor approve button.
    page.goto(live.url + "/")
    sign_in(page, live, "mpage")
    page.goto(live.url + "/me")
    assert urlsplit(page.url).path == "/mentorships/mpage"
    assert page.get_by_text("This is your first month as a core developer").is_visible()
    assert page.locator("#pulls .badge-approved").inner_text() == "Approved"
    assert page.get_by_text("Change this mentorship").count() == 0
    screenshot(page, "06-mentee-sees-approved")
    page.goto(live.url + pull_path)
    assert page.get_by_role("button", name="Approve merge").count() == 0
    sign_out(page)

    # The maintainer ends the mentorship, through the confirm step.
    sign_in(page, live, "boss")
    page.goto(live.url + "/mentorships/mpage")
    page.get_by_role("link", name="End mentorship…").click()
    page.get_by_label("Graduated: they are ready to merge on their own").check()
    page.get_by_label("Note (kept in the audit log)").fill("Ready early.")
    screenshot(page, "07-end-confirm")
    page.get_by_role("button", name="End mentorship").click()
    page.get_by_text(
        "Mentorship ended (graduated); the pull requests no longer wait for a mentor."
    ).wait_for()
    assert page.locator(".mentee-head .badge").inner_text() == "Ended"
    screenshot(page, "08-mentee-ended")
    page.goto(live.url + "/")
    screenshot(page, "09-overview")

    # Nothing the pages loaded came from another host.
    for request in page.requests:
        host = urlsplit(request.url).netloc
        if request.resource_type != "document":
            assert request.url.startswith(live.url), request.url
        else:
            assert host in (urlsplit(live.url).netloc, urlsplit(live.fake.url).netloc)


def test_pages_are_readable_on_a_phone(browser, live: Live):
    """At a phone's width nothing overflows sideways, the timeline included (it reflows)."""
    settings = settings_of(live.app)
    # The live service's worker is running: written as the app writes, waiting its turn.
    with Session(live.app.extensions["gatekeeper.engine"], expire_on_commit=False) as session:
        db.writing(
            session,
            lambda unit: populate(
                unit, settings=settings, now=utcnow(), account_id=default_user_id
            ),
        )
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    for path, name in [
        ("/", "phone-overview"),
        ("/mentorships/mira-k", "phone-mentee"),
        (f"/pulls/{REPO}/107", "phone-pull-request"),
    ]:
        page.goto(live.url + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, overflow)
        boxes = page.evaluate(
            "[...document.querySelectorAll('.timeline-wrap')].map(e => e.scrollWidth - e.clientWidth)"
        )
        assert all(sideways <= 0 for sideways in boxes), (path, boxes)
        screenshot(page, name)
    context.close()


# ---------------------------------------------------------------- the security headers at work

HARDENING = (
    "content-security-policy",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
)


class PolicyWatch:
    """Every Content-Security-Policy violation a tab reports, from its console and its DOM."""

    SCRIPT = (
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', e =>"
        " window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )

    def __init__(self, context) -> None:
        self.console: list[str] = []
        self.errors: list[str] = []
        context.add_init_script(self.SCRIPT)
        context.on("console", lambda message: self.console.append(message.text))
        context.on("weberror", lambda error: self.errors.append(str(error.error)))

    def violations(self, page) -> list[str]:
        """What this page reported so far (its DOM list survives until it navigates)."""
        reported = page.evaluate("window.cspViolations || []")
        logged = [text for text in self.console if "Content Security Policy" in text]
        return reported + logged + self.errors


def test_pages_carry_the_headers_and_work_under_the_policy(browser, live: Live):
    """In Chromium every page has the headers and reports no CSP violation; the live PEP 13
    check still runs (its script is a static file), and no other site can frame a page."""
    settings = settings_of(live.app)
    # The live service's worker is running: written as the app writes, waiting its turn.
    with Session(live.app.extensions["gatekeeper.engine"], expire_on_commit=False) as session:
        db.writing(
            session,
            lambda unit: populate(
                unit, settings=settings, now=utcnow(), account_id=default_user_id
            ),
        )
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    watch = PolicyWatch(context)
    page = context.new_page()
    page.set_default_timeout(10_000)
    paths = [
        "/",
        "/mentorships/mira-k",
        "/mentorships/sam-o",
        f"/pulls/{REPO}/107",
        "/api/mentorships",
        "/no/such/page",
    ]
    for path in paths:
        response = page.goto(live.url + path)
        assert response is not None
        missing = [name for name in HARDENING if name not in response.headers]
        assert missing == [], (path, missing)
        assert "strict-transport-security" not in response.headers  # development: plain HTTP
        assert watch.violations(page) == [], path
    # The styles still apply: a coloured avatar, and the month's progress drawn.
    page.goto(live.url + "/")
    assert page.locator(".avatar").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert page.locator("progress.progress").first.evaluate("e => e.value") > 0

    # The maintainer's form: its script runs and shows the verdict before anything is sent.
    sign_in(page, live, "boss")
    page.goto(live.url + "/mentorships/new")
    page.get_by_label("Votes for").fill("3")
    page.get_by_label("Votes against").fill("2")
    page.get_by_label("Vote opened").fill("2024-11-01")
    page.get_by_label("Vote closed").fill("2024-11-03")
    assert "Fails PEP 13" in page.locator("#pep13").inner_text()
    screenshot(page, "security-new-mentorship-under-csp")
    assert watch.violations(page) == []

    # Another site framing the one-click approve form gets nothing.
    page.goto("about:blank")
    page.set_content(f'<iframe src="{live.url}/pulls/{REPO}/110"></iframe>')
    page.wait_for_timeout(500)
    [frame] = [f for f in page.frames if f != page.main_frame]
    assert frame.url.startswith("chrome-error://"), frame.url  # refused: Chromium's error page
    context.close()


def test_a_form_posted_after_signing_out_elsewhere_goes_through_sign_in(browser, live: Live):
    """A saved cookie signs nobody in after sign-out; a page left open sends its form to
    GitHub's sign-in and back (form-action allows GitHub), then the approval goes through."""
    promote(live.app, "mpage", ("colesbury", "vstinner"), actor="boss")
    live.open_pull(7, author="mpage", head_sha=SHA)
    live.wait_for(lambda: (live.check(SHA) or {}).get("conclusion") == "action_required")
    pull_path = f"/pulls/{REPO}/7"

    laptop = browser.new_context()
    watch = PolicyWatch(laptop)
    page = laptop.new_page()
    page.set_default_timeout(10_000)
    page.goto(live.url + pull_path)
    live.fake.oauth_next_login = "colesbury"
    page.get_by_role("link", name="sign in", exact=True).click()
    page.get_by_role("button", name="Approve merge").wait_for()
    saved = laptop.cookies()

    # The same cookie on a phone, which signs out.
    phone = browser.new_context()
    phone.add_cookies(saved)
    phone_page = phone.new_page()
    phone_page.goto(live.url + "/")
    sign_out(phone_page)
    # A copy saved before that no longer signs in.
    thief = browser.new_context()
    thief.add_cookies(saved)
    thief_page = thief.new_page()
    thief_page.goto(live.url + pull_path)
    assert thief_page.get_by_role("link", name="Sign in with GitHub").is_visible()
    assert thief_page.get_by_role("button", name="Approve merge").count() == 0
    for other in (phone, thief):
        other.close()

    # The laptop's page was left open: its button now leads through sign-in and back.
    # (Without GitHub in form-action, Chromium stops at the redirect to GitHub: no callback.)
    with page.expect_request(lambda request: "/login/callback" in request.url):
        page.get_by_role("button", name="Approve merge").click()
    page.wait_for_url(live.url + pull_path)
    assert watch.violations(page) == []
    assert live.check(SHA)["conclusion"] == "action_required"  # nothing approved unsigned
    page.get_by_role("button", name="Approve merge").click()
    page.get_by_text("Approved. The check on GitHub is being updated.").wait_for()
    live.wait_for(lambda: live.check(SHA)["conclusion"] == "success")
    assert watch.violations(page) == []
    laptop.close()
