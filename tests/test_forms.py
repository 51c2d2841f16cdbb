"""The dashboard's forms and counts tell the truth: what was typed is what is kept, and one number
of days is shown everywhere (issue #9)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlmodel import select

from dashboard_support import REPO, Site
from gatekeeper import cli as gatekeeper_cli
from gatekeeper.models import Mentorship, utcnow

START_FORM = {"mentee": "eclips4", "approvals_required": "1"}


def marked(page: str, field: str) -> str | None:
    """The error text shown inside ``field``'s own box, if the box is marked in error."""
    box = re.search(
        rf'<div class="field has-error">\s*<label for="{field}">.*?</div>', page, flags=re.S
    )
    if box is None:
        return None
    errors = re.findall(r'<p class="error">(.*?)</p>', box.group(0), flags=re.S)
    return " ".join(errors).replace("&#39;", "'").replace("&#34;", '"')


def stored(site: Site) -> list[Mentorship]:
    with site.session() as session:
        return list(session.exec(select(Mentorship)))


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("mentors", "tomas r", "“tomas r” is not one GitHub login"),
        ("mentors", "colesbury, vstinner, Colesbury", "Colesbury is listed twice"),
        ("mentors", "colesbury, -bad-", "'-bad-' is not a valid GitHub login"),
        ("mentors", "", "Needs at least one mentor"),
        ("repositories", "python/cpython python/peps", "“python/cpython python/peps” is not one"),
        ("repositories", "python/cpython\npython/CPython", "python/CPython is listed twice"),
        ("repositories", "cpython", "'cpython' is not a repository name"),
    ],
)
def test_a_malformed_entry_is_refused_beside_its_field(site: Site, field, typed, message):
    """Mentors and repositories are one entry per comma or line; a bad one marks its field."""
    site.sign_in("boss")
    data = {**START_FORM, "mentors": "colesbury", field: typed}
    response = site.post("/mentorships/new", data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    error = marked(page, field)
    assert error is not None and message in error, error
    assert stored(site) == []  # nothing was started
    if typed:  # what was typed comes back to be corrected
        assert typed.split("\n")[0] in page


def test_mentors_on_lines_or_with_commas_are_each_one_person(site: Site):
    """Commas and new lines separate mentors; the logins are kept as typed."""
    site.sign_in("boss")
    response = site.post(
        "/mentorships/new",
        {**START_FORM, "mentors": "colesbury,\n@Vstinner\n", "repositories": "python/cpython"},
    )
    assert response.status_code == 302
    document = site.client.get("/api/mentorships/eclips4").get_json()
    assert document["mentors"] == ["colesbury", "Vstinner"]
    assert document["repositories"] == ["python/cpython"]


def test_a_lifecycle_refusal_marks_its_field_and_keeps_the_form(site: Site):
    """More approvals than mentors is told at the approvals field, the rest kept as typed."""
    site.sign_in("boss")
    response = site.post(
        "/mentorships/new",
        {**START_FORM, "mentors": "colesbury", "approvals_required": "2", "note": "kept"},
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "2 approvals required but only 1 mentors" in (marked(page, "approvals_required") or "")
    assert 'value="colesbury"' in page
    assert re.search(r'<textarea id="note"[^>]*>\s*kept</textarea>', page)


def test_an_override_reason_a_passing_vote_does_not_need_is_dropped(site: Site):
    """A vote that passes PEP 13 keeps no override reason, and the maintainer is told so."""
    site.sign_in("boss")
    response = site.post(
        "/mentorships/new",
        {
            **START_FORM,
            "mentors": "colesbury",
            "votes_for": "20",
            "votes_against": "1",
            "vote_opened": "2026-11-01",
            "vote_closed": "2026-11-08",
            "override_reason": "just in case",
        },
    )
    assert response.status_code == 302
    [mentorship] = stored(site)
    assert mentorship.override_reason is None
    assert ("boss", "pep13_override") not in site.audit()
    assert "no override reason was kept" in site.page("/mentorships/eclips4")


def test_days_left_is_one_number_on_every_page_the_api_and_the_cli(site: Site):
    """Started 2 days ago, ending in 18.5: a 21-day period on its day 3, 18 days after today
    (3 + 18 = 21), on the overview, the mentee page, /api and status alike."""
    now = utcnow()
    site.promote(start=now - timedelta(days=2), until=now + timedelta(days=18, hours=12))
    assert "Day 3 of 21 · 18 days left" in site.page("/")
    assert "Day 3 of 21 · 18 days left" in site.page("/mentorships/mpage")
    assert site.client.get("/api/mentorships/mpage").get_json()["days_left"] == 18
    result = site.app.test_cli_runner().invoke(gatekeeper_cli.cli, ["status", "mpage"])
    assert result.exit_code == 0, result.output
    assert "18 days left" in result.output
    document = site.app.test_cli_runner().invoke(gatekeeper_cli.cli, ["status", "mpage", "--json"])
    assert json.loads(document.output)["days_left"] == 18


@pytest.mark.parametrize(
    ("started", "ends", "shown"),
    [
        pytest.param(timedelta(0), timedelta(days=30), "Day 1 of 30 · 29 days left", id="new"),
        pytest.param(
            timedelta(days=11, hours=3), timedelta(days=30), "Day 12 of 30 · 18 days left", id="d12"
        ),
        pytest.param(
            timedelta(days=29, hours=1), timedelta(days=30), "Day 30 of 30 · last day", id="last"
        ),
    ],
)
def test_day_and_days_left_add_up_to_the_period(site: Site, started, ends, shown):
    """Day N of M and the days left always add up to M: a new 30-day mentorship is on day 1
    with 29 days after today, day 12 leaves 18, the last day says so."""
    now = utcnow()
    site.promote(start=now - started, until=now - started + ends)
    assert shown in site.page("/mentorships/mpage")
    assert shown in site.page("/")


def test_a_start_89_days_away_is_not_soon(site: Site):
    """A scheduled mentorship says when it starts, counted the same way, not "Starts soon"."""
    site.promote(start=utcnow() + timedelta(days=88, hours=3))
    for page in (site.page("/"), site.page("/mentorships/mpage")):
        assert "starts soon" not in page.lower() and "starting soon" not in page.lower()
        assert re.search(r"[Ss]tarts in 89 days", page)


def test_a_repository_outside_the_scope_is_named_as_such(site: Site):
    """The pull request page says the repository is outside the scope and names the scope
    (both public repositories, as their events said)."""
    site.promote(repositories=["python/devguide", "python/peps"])
    for name in ("python/devguide", "python/peps"):
        site.repository(name, private=False)
    site.pull(7, repo=REPO)
    page = site.page(f"/pulls/{REPO}/7").replace("&#39;", "'")
    assert "mentorship gates only python/devguide, python/peps" in page
    assert "not under mentorship" not in page


@pytest.mark.parametrize(
    ("mentors", "warned"),
    [("colesbury", True), ("colesbury, vstinner", False)],
    ids=["one-mentor", "two-mentors"],
)
def test_fewer_than_two_mentors_is_started_with_a_warning(site: Site, mentors, warned):
    """The form asks for two or three mentors: one is accepted (the mentorship starts) with a
    warning that says two or three are recommended; two start without it."""
    site.sign_in("boss")
    response = site.post("/mentorships/new", {**START_FORM, "mentors": mentors})
    assert response.status_code == 302
    assert [m.mentee for m in stored(site)] == ["eclips4"]
    page = site.page(response.headers["Location"])
    warning = "This mentorship has only 1 mentor; two or three are recommended"
    assert (warning in page.replace("&#39;", "'")) is warned
