"""Accessibility in a real Chromium: axe-core finds nothing on any page, for any role, at a
desktop's and a phone's width, and the phone layout keeps the things axe cannot measure.

axe-core comes from the npm registry, pinned by tests/axe/package-lock.json and installed
with ``npm ci`` when missing. It is served to the pages from their own origin through a
Playwright route, so each page is checked under its real Content-Security-Policy.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from werkzeug.serving import make_server

from browser_support import REPO, Live, buffered, installing, screenshot, serving
from fakegithub import default_user_id
from gatekeeper import create_app, db, settings_of
from gatekeeper.demo import PEOPLE as DEMO_PEOPLE
from gatekeeper.demo import demo_app, populate
from gatekeeper.models import utcnow

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent / "axe"
AXE_SCRIPT = AXE / "node_modules" / "axe-core" / "axe.min.js"
AXE_PATH = "/_test/axe.min.js"  # where the pages load it from (a route, not the app)
# Everything axe checks by default, and WCAG 2.2's target size (off by default in axe 4).
ALL_RULES = '{rules: {"target-size": {enabled: true}}, resultTypes: ["violations"]}'
# The rules whose outcome a colour scheme can change: of axe-core 4.14's rules, only these
# read colours (color-contrast-enhanced, AAA, is off by default in the light run too).
COLOUR_RULES = (
    '{runOnly: {type: "rule", values: ["color-contrast", "link-in-text-block"]},'
    ' resultTypes: ["violations"]}'
)
AXE_RUN_WITH = """async () => {
  const result = await axe.run(document, %s);
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.join(" ")),
    why: v.nodes[0].failureSummary,
  }));
}"""
AXE_RUN = AXE_RUN_WITH % ALL_RULES
AXE_RUN_COLOURS = AXE_RUN_WITH % COLOUR_RULES
DARK_BACKGROUND = "rgb(15, 20, 26)"  # the body's background in the dark theme

WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}
# The demo's people; on the live server the maintainer is "boss" (GATEKEEPER_MAINTAINERS).
ROLES = {"signed-out": None, "mentee": "mira-k", "mentor": "tomas-r", "maintainer": "boss"}
SIGNED_IN = ("mentee", "mentor", "maintainer")
EVERYONE = ("signed-out", *SIGNED_IN)
MAINTAINER = ("maintainer",)
SHOTS = "a11y"  # their folder under browser_support.SCREENSHOTS


@dataclass(frozen=True)
class Visit:
    """One page to check: a path to open, or steps that end on it, and who sees it."""

    name: str
    path: str
    roles: tuple[str, ...] = EVERYONE
    then: Callable[[Any], Any] | None = None  # steps on the page that end on another answer
    status: int = 200  # what the page answers (a maintainer's page: 403 for anyone else)
    maintainers_only: bool = False

    def expected(self, role: str) -> int:
        """The status this role gets."""
        return 403 if self.maintainers_only and role != "maintainer" else self.status


def _post_without_token(path: str) -> Callable[[Any], None]:
    """Submit a form to ``path`` that carries no CSRF token (the 400 page)."""

    def steps(page: Any) -> Any:
        with page.expect_navigation() as answer:
            page.evaluate(
                """path => { const f = document.createElement("form");
                f.method = "post"; f.action = path; document.body.append(f); f.submit(); }""",
                path,
            )
        return answer.value

    return steps


def _click(name: str) -> Callable[[Any], None]:
    """Send a form as it is, past the browser's own checks: the server answers with its errors."""

    def steps(page: Any) -> Any:
        button = page.get_by_role("button", name=name, exact=True)
        button.evaluate("b => { b.form.noValidate = true; }")
        with page.expect_navigation() as answer:
            button.click()
        return answer.value

    return steps


def _terms_refused(page: Any) -> Any:
    """Open "Change the terms" and ask for more approvals than there are mentors."""
    page.locator("#terms summary").click()
    page.get_by_label("Mentor approvals needed per pull request").fill("9")
    with page.expect_navigation() as answer:
        page.get_by_role("button", name="Save the terms").click()
    return answer.value


def _long_note(page: Any) -> Any:
    """Acknowledge a bypass with a note past the limit (the browser's maxlength lifted)."""
    note = page.locator(".acknowledge textarea")
    note.evaluate("t => t.removeAttribute('maxlength')")
    note.fill("x" * 2001)
    with page.expect_navigation() as answer:
        page.get_by_role("button", name="Acknowledge", exact=True).click()
    return answer.value


PAGES = [
    Visit("overview", "/"),
    Visit("me", "/me", SIGNED_IN),
    Visit("mentee", "/mentorships/mira-k"),
    Visit("mentee-ended", "/mentorships/sam-o"),
    Visit("report", "/mentorships/mira-k/report"),
    Visit("report-ended", "/mentorships/sam-o/report"),
    Visit("past-mentorships", "/past-mentorships"),
    Visit("past-mentorships-searched", "/past-mentorships?q=nobody"),
    Visit("pull-waiting", f"/pulls/{REPO}/110"),
    Visit("pull-approved-older-commit", f"/pulls/{REPO}/107"),
    Visit("pull-approved", f"/pulls/{REPO}/104"),
    Visit("pull-merged", f"/pulls/{REPO}/101"),
    Visit("pull-bypassed", f"/pulls/{REPO}/109"),
    Visit("pull-out-of-scope", "/pulls/python/pyperformance/12"),
    Visit("pull-after-the-end", f"/pulls/{REPO}/90"),
    # The maintainers' pages are the 403 page for the mentee and the mentor.
    Visit("new-mentorship", "/mentorships/new", SIGNED_IN, maintainers_only=True),
    Visit("new-mentorship-errors", "/mentorships/new", MAINTAINER, _click("Start mentorship"), 400),
    Visit("end", "/mentorships/mira-k/end", SIGNED_IN, maintainers_only=True),
    Visit("end-errors", "/mentorships/mira-k/end", MAINTAINER, _click("End mentorship"), 400),
    Visit("extend-errors", "/mentorships/mira-k", MAINTAINER, _click("Extend"), 400),
    Visit(
        "remove-mentor",
        "/mentorships/mira-k/mentors/tomas-r/remove",
        SIGNED_IN,
        maintainers_only=True,
    ),
    Visit("terms-errors", "/mentorships/mira-k", MAINTAINER, _terms_refused, 400),
    Visit("acknowledge-errors", f"/pulls/{REPO}/109", MAINTAINER, _long_note, 400),
    Visit("health", "/admin/health", SIGNED_IN, maintainers_only=True),
    Visit("400", "/", EVERYONE, _post_without_token("/logout"), 400),
    Visit("404", "/no/such/page", status=404),
    Visit("404-mentorship", "/mentorships/nobody", status=404),
    Visit("login-failed", "/login/callback", status=400),
]


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """axe-core as the lock file pins it, installed with npm when missing (fails, never skips)."""
    with installing("axe"):  # npm ci empties node_modules first: one xdist worker at a time
        if not AXE_SCRIPT.exists():
            npm = shutil.which("npm")
            if npm is None:
                pytest.fail("npm is missing: the accessibility tests install axe-core with it")
            installed = subprocess.run(
                [npm, "ci", "--prefix", str(AXE), "--no-audit", "--no-fund"],
                capture_output=True,
                text=True,
                check=False,
            )
            if installed.returncode != 0 or not AXE_SCRIPT.exists():
                pytest.fail(f"npm ci in {AXE} failed:\n{installed.stdout}\n{installed.stderr}")
    return AXE_SCRIPT


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[Live]:
    """One live service for the module, holding the demo's month (nothing here changes it)."""

    def fill(app: Any) -> None:
        with Session(app.extensions["gatekeeper.engine"], expire_on_commit=False) as session:
            populate(session, settings=settings_of(app), now=utcnow(), account_id=default_user_id)

    with serving(tmp_path_factory.mktemp("a11y"), migrated_sqlite, before_worker=fill) as live:
        yield live


class Visitor:
    """A browser context at one width, signed in as one role, that checks pages with axe."""

    def __init__(self, browser: Any, site: Live, axe: Path, *, role: str, width: str) -> None:
        self.site, self.role, self.width = site, role, width
        w, h = WIDTHS[width]
        self.context = browser.new_context(
            viewport={"width": w, "height": h},
            is_mobile=width == "phone",
            has_touch=width == "phone",
        )
        self.context.route(site.url + AXE_PATH, lambda route: route.fulfill(path=str(axe)))
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        login = ROLES[role]
        if login is not None:
            self.sign_in(login)

    def sign_in(self, login: str) -> None:
        """Sign in through (the fake) GitHub as ``login``."""
        self.site.fake.oauth_next_login = login
        self.page.goto(f"{self.site.url}/login?next=/")
        self.page.get_by_role("button", name="Sign out").wait_for()

    def open(self, visit: Visit) -> None:
        """Go to the page the visit names, and check it answered as it should for this role."""
        answer = self.page.goto(self.site.url + visit.path)
        if visit.then is not None:
            answer = visit.then(self.page)
        assert answer is not None and answer.status == visit.expected(self.role), (
            visit.name,
            answer and answer.status,
        )

    def violations(self) -> list[dict[str, Any]]:
        """What axe reports on the page as it stands."""
        self.page.add_script_tag(url=self.site.url + AXE_PATH)
        return self.page.evaluate(AXE_RUN)

    def dark_violations(self, name: str) -> list[dict[str, Any]]:
        """The loaded page ``name``, its system turned dark: checks it turned dark, then what
        axe's colour rules report (axe is already on the page); the system is light after."""
        self.page.emulate_media(color_scheme="dark")
        try:
            background = self.page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background == DARK_BACKGROUND, (name, background)
            self.screenshot(f"dark-{name}")
            return self.page.evaluate(AXE_RUN_COLOURS)
        finally:
            self.page.emulate_media(color_scheme="light")

    def screenshot(self, name: str) -> None:
        """Keep the whole page as it looked when checked (when screenshots are asked for)."""
        screenshot(self.page, f"{SHOTS}/{self.width}/{self.role}-{name}")

    def close(self) -> None:
        # Let the favicon's fetch (sent after the load event) finish first: closing the
        # browser mid-answer leaves the development server's open file to the garbage
        # collector, a ResourceWarning in whichever test runs next.
        self.page.wait_for_load_state("networkidle")
        self.context.close()


@pytest.fixture
def visitor(request: pytest.FixtureRequest, browser: Any, site: Live, axe_script: Path):
    """A visitor for the test's ``role`` and ``width`` parameters."""
    role, width = request.getfixturevalue("role"), request.getfixturevalue("width")
    made = Visitor(browser, site, axe_script, role=role, width=width)
    yield made
    made.close()


def report(found: dict[str, list[dict[str, Any]]]) -> str:
    """Each violation on its own line: page, rule, impact and the elements it names."""
    lines = []
    for page, violations in found.items():
        for v in violations:
            lines.append(f"{page}: {v['id']} ({v['impact']}) at {v['targets']}: {v['why']}")
    return "\n".join(lines)


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("role", list(ROLES))
def test_axe_finds_nothing_on_any_page_in_the_light_or_the_dark_theme(
    visitor: Visitor, role: str, width: str
):
    """Every page this role can open, at this width, has zero axe-core violations; with the
    system set to dark, the same page turns dark (a dark background) and axe's colour rules
    (contrast, links told apart from text) find nothing either. Only colours change with the
    scheme, so the dark theme is checked on the page already loaded, not opened again."""
    found: dict[str, list[dict[str, Any]]] = {}
    checked = 0
    for visit in PAGES:
        if role not in visit.roles:
            continue
        visitor.open(visit)
        visitor.screenshot(visit.name)
        checked += 1
        if violations := visitor.violations():
            found[visit.name] = violations
        if dark := visitor.dark_violations(visit.name):
            found[f"{visit.name} (dark)"] = dark
    assert checked >= 10
    assert not found, "axe-core violations:\n" + report(found)


# ---------------------------------------------------------------- what axe does not measure

SMALL_TEXT = """() => {
  // Every piece of visible text, at the size it is drawn (an SVG's scale included).
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el || !el.checkVisibility() || !el.getClientRects().length) continue;
    let size = parseFloat(getComputedStyle(el).fontSize);
    if (el instanceof SVGElement && el.getScreenCTM()) size *= el.getScreenCTM().a;
    if (size < 12) found.push(`${size.toFixed(1)}px: ${node.textContent.trim().slice(0, 40)}`);
  }
  return found;
}"""

SMALL_TARGETS = """() => {
  // Every control smaller than 24 by 24 px, but for WCAG 2.5.8's exception of a link inside
  // a sentence; a checkbox or radio inside its label is as large as the label.
  const blockOf = el => {
    let block = el.parentElement;
    while (block && getComputedStyle(block).display.startsWith("inline")) block = block.parentElement;
    return block;
  };
  const found = [];
  for (const el of document.querySelectorAll(
      "a[href], button, input:not([type=hidden]), select, textarea, summary")) {
    if (!el.checkVisibility()) continue;
    const target = el.matches("input[type=checkbox], input[type=radio]") && el.closest("label") || el;
    const r = target.getBoundingClientRect();
    if (r.width >= 24 && r.height >= 24) continue;
    if (el.matches("a") && getComputedStyle(el).display === "inline") {
      const block = blockOf(el);
      if (block && block.textContent.trim().length > el.textContent.trim().length) continue;
    }
    found.push(`${Math.round(r.width)}x${Math.round(r.height)}: ${el.outerHTML.slice(0, 90)}`);
  }
  return found;
}"""


@pytest.mark.parametrize("role", list(ROLES))
def test_on_a_phone_no_text_is_under_12px_no_target_under_24px_and_nothing_scrolls_sideways(
    browser: Any, site: Live, axe_script: Path, role: str
):
    """At 390 px, every page this role can open draws its text at 12 px or more, gives each
    control (button, field, link standing on its own) at least 24 by 24 px, and fits the
    screen's width (wide tables scroll in their own box or stack their rows)."""
    visitor = Visitor(browser, site, axe_script, role=role, width="phone")
    small_text: dict[str, list[str]] = {}
    small_targets: dict[str, list[str]] = {}
    too_wide: dict[str, int] = {}
    try:
        for visit in PAGES:
            if role not in visit.roles:
                continue
            visitor.open(visit)
            if text := visitor.page.evaluate(SMALL_TEXT):
                small_text[visit.name] = text
            if targets := visitor.page.evaluate(SMALL_TARGETS):
                small_targets[visit.name] = targets
            sideways = visitor.page.evaluate(
                "document.documentElement.scrollWidth - window.innerWidth"
            )
            if sideways > 0:
                too_wide[visit.name] = sideways
    finally:
        visitor.close()
    assert small_text == {}, small_text
    assert small_targets == {}, small_targets
    assert too_wide == {}, too_wide


FOCUS_RING = """() => {
  // The focused element's ring and its contrast with the colour it is drawn on: with the
  // ring outside the element, that is the nearest opaque background around it.
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const rgb = text => (text.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = c => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  let around = el.parentElement, background = [255, 255, 255];
  for (; around; around = around.parentElement) {
    const colour = rgb(getComputedStyle(around).backgroundColor);
    if (colour.length === 3 || colour[3] > 0) { background = colour.slice(0, 3); break; }
  }
  const style = getComputedStyle(el);
  const [a, b] = [luminance(rgb(style.outlineColor)), luminance(background)];
  return {
    what: el.outerHTML.slice(0, 80),
    style: style.outlineStyle,
    width: parseFloat(style.outlineWidth),
    contrast: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05),
  };
}"""
FOCUS_PAGES = [
    ("signed-out", "overview"),
    ("mentor", "pull-waiting"),
    ("maintainer", "mentee"),
    ("maintainer", "new-mentorship"),
    ("maintainer", "end"),
]


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize(("role", "name"), FOCUS_PAGES)
def test_the_focus_ring_shows_with_3_to_1_contrast(
    browser: Any, site: Live, axe_script: Path, role: str, name: str, width: str
):
    """Tabbing through the page, every control it reaches shows a solid ring at least 2 px
    wide with at least 3:1 contrast against what surrounds it."""
    visitor = Visitor(browser, site, axe_script, role=role, width=width)
    try:
        [visit] = [v for v in PAGES if v.name == name]
        visitor.open(visit)
        rings, seen = [], set()
        for _ in range(120):
            visitor.page.keyboard.press("Tab")
            ring = visitor.page.evaluate(FOCUS_RING)
            if ring is None or ring["what"] in seen:
                break
            seen.add(ring["what"])
            rings.append(ring)
    finally:
        visitor.close()
    assert len(rings) >= 3, rings  # the header's controls and the page's own
    weak = [r for r in rings if r["style"] != "solid" or r["width"] < 2 or r["contrast"] < 3]
    assert weak == [], weak


HEADER = """() => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; };
  return {
    header: box(document.querySelector("header.topbar")),
    brand: box(document.querySelector(".topbar .brand")),
    main: box(document.querySelector("main")).slice(0, 2),
  };
}"""


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_header_does_not_move_when_someone_signs_in(
    browser: Any, site: Live, axe_script: Path, width: str
):
    """Signed out or signed in (a short login and a long one), the header keeps its height and
    the brand and the page below it stay where they were."""
    layouts = {}
    for role, login in [("signed-out", None), ("mentee", "mira-k"), ("long", "a" * 39)]:
        visitor = Visitor(browser, site, axe_script, role="signed-out", width=width)
        try:
            if login is not None:
                visitor.sign_in(login)
            visitor.page.goto(site.url + "/")
            layouts[role] = visitor.page.evaluate(HEADER)
        finally:
            visitor.close()
    assert layouts["mentee"] == layouts["signed-out"], layouts
    assert layouts["long"] == layouts["signed-out"], layouts


@pytest.mark.parametrize("login", ["mira-k", "a" * 39])
def test_on_a_phone_the_signed_in_person_is_in_the_header(
    browser: Any, site: Live, axe_script: Path, login: str
):
    """At 390 px the header shows who is signed in (avatar and login, a long login cut short
    on one line) as a link to their page of at least 24 px, and Sign out beside it."""
    visitor = Visitor(browser, site, axe_script, role="signed-out", width="phone")
    try:
        visitor.sign_in(login)
        page = visitor.page
        me = page.locator("header").get_by_role("link", name=login, exact=True)
        assert me.get_attribute("href") == "/me"
        box = me.bounding_box()
        assert box is not None and box["width"] >= 24 and box["height"] >= 24, box
        avatar = me.locator(".avatar").bounding_box()
        name = me.locator(".name")
        name_box = name.bounding_box()
        assert avatar is not None and avatar["width"] >= 20, avatar
        assert name_box is not None and name_box["width"] >= 40, name_box
        assert name.inner_text() == login
        assert name_box["height"] < 30  # one line, not wrapped
        sign_out = page.get_by_role("button", name="Sign out").bounding_box()
        assert sign_out is not None and sign_out["x"] + sign_out["width"] <= 390
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        visitor.close()


def test_on_a_phone_the_timeline_fits_and_each_row_reads_in_words(
    browser: Any, site: Live, axe_script: Path
):
    """At 390 px the month needs no sideways scrolling, and each pull request's row shows its
    number, title, state word and dates side by side without overlapping."""
    visitor = Visitor(browser, site, axe_script, role="signed-out", width="phone")
    try:
        page = visitor.page
        page.goto(site.url + "/mentorships/mira-k")
        wrap = page.locator(".timeline-wrap")
        assert wrap.evaluate("e => e.scrollWidth <= e.clientWidth")
        box = wrap.bounding_box()
        assert box is not None and box["width"] <= 390
        rows = page.locator(".tl-lane")
        assert rows.count() == 6
        for index in range(rows.count()):
            row = rows.nth(index)
            parts = {
                part: row.locator(f".tl-{part}").bounding_box()
                for part in ("label", "title", "state", "when", "bar")
            }
            for part, where in parts.items():
                assert where is not None and where["width"] > 0, (index, part)
                assert (
                    box["x"] <= where["x"]
                    and where["x"] + where["width"] <= box["x"] + box["width"]
                )
            state, when = parts["state"], parts["when"]
            assert state is not None and when is not None
            assert state["x"] + state["width"] <= when["x"]  # one line, one at each end
            assert row.locator(".tl-state").inner_text().strip() in {
                "waiting",
                "approved",
                "merged",
                "merged without approval",
                "no approval needed",
            }
        visitor.screenshot("timeline")
    finally:
        visitor.close()


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """``app`` on a loopback port for as long as the block runs."""
    server = make_server("127.0.0.1", 0, buffered(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        app.extensions["gatekeeper.engine"].dispose()


@pytest.mark.parametrize("width", list(WIDTHS))
def test_axe_finds_nothing_in_the_demo_nor_where_sign_in_is_not_configured(
    browser: Any, axe_script: Path, tmp_path: Path, migrated_sqlite: Path, width: str
):
    """``gatekeeper demo``'s sign-in page and its overview as each sample person, and the
    sign-in page of a server without GitHub sign-in, have zero axe-core violations."""
    found: dict[str, list[dict[str, Any]]] = {}
    w, h = WIDTHS[width]
    database = tmp_path / "unconfigured.sqlite"
    shutil.copyfile(migrated_sqlite, database)
    unconfigured = create_app({"database_url": f"sqlite:///{database}", "secret_key": "x"})
    with serve(demo_app(tmp_path / "demo.sqlite")) as demo, serve(unconfigured) as bare:
        context = browser.new_context(
            viewport={"width": w, "height": h}, is_mobile=width == "phone"
        )
        for url in (demo, bare):
            context.route(url + AXE_PATH, lambda route: route.fulfill(path=str(axe_script)))
        page = context.new_page()
        page.set_default_timeout(15_000)

        def check(name: str, url: str) -> None:
            page.add_script_tag(url=url + AXE_PATH)
            if violations := page.evaluate(AXE_RUN):
                found[name] = violations
            screenshot(page, f"{SHOTS}/{width}/{name}")

        assert page.goto(bare + "/login").status == 503
        check("login-not-configured", bare)
        for person in DEMO_PEOPLE:
            page.goto(demo + "/login")
            check("demo-login", demo)
            page.get_by_role("button", name=person).click()
            page.get_by_role("button", name="Sign out").wait_for()
            check(f"demo-overview-{person}", demo)
            page.get_by_role("button", name="Sign out").click()
            page.get_by_role("link", name="Sign in with GitHub").wait_for()
        context.close()
    assert not found, "axe-core violations:\n" + report(found)


@pytest.mark.parametrize(("width", "number"), [("desktop", 110), ("phone", 107)])
def test_axe_finds_nothing_in_the_messages_an_action_leaves(
    browser: Any, live: Live, axe_script: Path, width: str, number: int
):
    """A mentor's approval refused (new commits since the page opened: an error message) and
    then accepted (a success message): both pages have zero axe-core violations."""
    settings = settings_of(live.app)
    # The live service's worker is running: the month is written as the app writes, waiting
    # its turn for SQLite's lock.
    with Session(live.app.extensions["gatekeeper.engine"], expire_on_commit=False) as session:
        db.writing(
            session,
            lambda unit: populate(
                unit, settings=settings, now=utcnow(), account_id=default_user_id
            ),
        )
    visitor = Visitor(browser, live, axe_script, role="mentor", width=width)
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        page = visitor.page
        page.goto(f"{live.url}/pulls/{REPO}/{number}")
        page.locator("input[name=head_sha]").evaluate("e => { e.value = 'f'.repeat(40); }")
        page.get_by_role("button", name="Approve merge").click()
        page.locator(".flash-error").wait_for()
        if violations := visitor.violations():
            found["approval-refused"] = violations
        visitor.screenshot(f"message-error-{number}")
        page.get_by_role("button", name="Approve merge").click()
        page.locator(".flash-success").wait_for()
        if violations := visitor.violations():
            found["approved"] = violations
        visitor.screenshot(f"message-success-{number}")
    finally:
        visitor.close()
    assert not found, "axe-core violations:\n" + report(found)


# ---------------------------------------------------------------- the maintainer's landing page

WIDER_THAN_THE_SCREEN = "() => document.documentElement.scrollWidth > window.innerWidth"


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_maintainer_sees_what_waits_on_the_landing_page(
    browser: Any, site: Live, axe_script: Path, width: str
):
    """At a desktop's and a phone's width, a maintainer's `/` shows first what waits for them
    in the demo's month: #109's unacknowledged bypass and #107 waiting over two days, and a
    visible, counted link to their list on /me, which it opens; the page fits the screen and
    axe finds nothing on it."""
    visitor = Visitor(browser, site, axe_script, role="maintainer", width=width)
    try:
        visitor.page.goto(site.url + "/")
        panel = visitor.page.locator("#for-maintainer")
        panel.wait_for()
        assert panel.get_by_role("heading", name="What waits for you: 2").is_visible()
        assert panel.get_by_role("link", name=f"{REPO}#109").is_visible()
        assert panel.get_by_role("link", name=f"{REPO}#107").is_visible()
        link = panel.get_by_role("link", name=re.compile(r"^Your list: \d+ things? to look at$"))
        assert link.is_visible()
        box = link.bounding_box()
        assert box is not None and box["width"] >= 24 and box["height"] >= 24
        # The panel comes before the list of mentorships, where a reader starts.
        first = visitor.page.locator("main section").nth(1)
        assert first.get_attribute("id") == "for-maintainer"
        assert not visitor.page.evaluate(WIDER_THAN_THE_SCREEN)
        visitor.screenshot("landing")
        assert not visitor.violations(), report({"landing": visitor.violations()})
        link.click()
        visitor.page.wait_for_url(re.compile(r"/me#needs$"))
        assert visitor.page.get_by_role("heading", name="Needs a maintainer").is_visible()
    finally:
        visitor.close()
