"""Layout and wording through Flask's test client: long input, messages in one voice, plurals,
dates shown one way, the audit log's order, and sign-in where it is not set up.

The browser's side (widths, the dark theme, the skip link, local times) is tests/test_browser_layout.py.
"""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest

from dashboard_support import REPO, Site
from gatekeeper import create_app, votes
from gatekeeper import mentorships as lifecycle
from gatekeeper.models import utcnow

LONG_LOGIN = "a" * 300
ISO_DATE = re.compile(r"\b\d{4}-\d\d-\d\d\b")


@pytest.fixture
def month(site: Site) -> Site:
    """mpage mentored by colesbury and vstinner, with PR #7 waiting (SQLite and PostgreSQL)."""
    site.promote()
    site.pull(7)
    return site


def start_form(**fields: str) -> dict[str, str]:
    return {
        "mentee": "eclips4",
        "mentors": "colesbury, vstinner",
        "approvals_required": "1",
        "action": "start",
        **fields,
    }


def shown_text(page: str) -> str:
    """What a reader sees: the body's text, without tags, attributes, scripts or hidden parts."""
    body = page.split("<body>", 1)[1]
    body = re.sub(r"<script.*?</script>", "", body, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def errors(page: str) -> list[str]:
    """The messages shown beside form fields."""
    return [html.unescape(e) for e in re.findall(r'<p class="error">(.*?)</p>', page)]


def flashes(page: str) -> list[str]:
    """The messages at the top of the page."""
    return [html.unescape(f) for f in re.findall(r'<p class="flash[^"]*"[^>]*>(.*?)</p>', page)]


# ---------------------------------------------------------------- long input


def test_login_fields_stop_at_githubs_39_characters(month: Site):
    """The mentee's field and the add-a-mentor field take at most 39 characters, GitHub's limit."""
    month.sign_in("boss")
    new = month.page("/mentorships/new")
    assert re.search(r'<input[^>]*id="mentee"[^>]*maxlength="39"', new)
    mentee = month.page("/mentorships/mpage")
    assert re.search(r'<input[^>]*id="login"[^>]*maxlength="39"', mentee)


def test_a_300_character_login_is_refused_without_being_repeated_whole(month: Site):
    """A login past 39 characters is refused beside its field (the mentee, a mentor) or at the
    top (adding a mentor), saying the limit; no message repeats more than a few words of it."""
    month.sign_in("boss")
    for fields in ({"mentee": LONG_LOGIN}, {"mentors": f"colesbury, {LONG_LOGIN}"}):
        response = month.post("/mentorships/new", start_form(**fields))
        assert response.status_code == 400
        page = response.get_data(as_text=True)
        [error] = errors(page)
        assert "has at most 39 characters" in error and error.endswith(".")
        assert "a" * 41 not in error
    response = month.post("/mentorships/mpage/mentors", {"login": LONG_LOGIN})
    assert response.status_code == 400
    [flash] = flashes(response.get_data(as_text=True))
    assert flash.startswith("A GitHub login has at most 39 characters") and "a" * 41 not in flash


def test_a_long_malformed_entry_is_quoted_cut_short(month: Site):
    """A long entry that is not a repository is named by its first characters and an ellipsis."""
    month.sign_in("boss")
    response = month.post("/mentorships/new", start_form(repositories="x" * 500))
    [error] = errors(response.get_data(as_text=True))
    assert "x" * 41 not in error and "…" in error and "not a repository name" in error


# ---------------------------------------------------------------- one voice


def test_a_login_opening_a_message_keeps_its_case(month: Site):
    """Refusals that start with a login say it as typed ("colesbury already mentors mpage."),
    never capitalised, and end with a full stop."""
    month.sign_in("boss")
    added = month.post("/mentorships/mpage/mentors", {"login": "colesbury"})
    assert flashes(added.get_data(as_text=True)) == ["colesbury already mentors mpage."]
    again = month.post("/mentorships/new", start_form(mentee="mpage", mentors="ambv"))
    assert again.status_code == 409
    assert errors(again.get_data(as_text=True)) == ["mpage already has an active mentorship."]
    own = month.post("/mentorships/new", start_form(mentee="ambv", mentors="ambv"))
    assert errors(own.get_data(as_text=True)) == ["ambv cannot be their own mentor."]


def test_a_404_is_a_sentence_that_keeps_the_login_and_cuts_a_long_name(month: Site):
    """An unknown mentee's page says "nobody has no mentorship." (the login as typed, a full
    stop); an unknown pull request in a 1,000-character repository name is named cut short."""
    response = month.client.get("/mentorships/nobody")
    assert response.status_code == 404
    assert "nobody has no mentorship." in response.get_data(as_text=True)
    long_repo = "r" * 1_000
    response = month.client.get(f"/pulls/python/{long_repo}/7")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "Gatekeeper has not seen python/rrr" in page and "r" * 100 not in page


def test_every_field_shows_one_error(month: Site):
    """A field wrong in two ways ("12x" days: not a number, so not in range either) shows only
    the first error, a sentence with a full stop."""
    month.sign_in("boss")
    response = month.post("/mentorships/new", start_form(days="12x"))
    assert response.status_code == 400
    [error] = errors(response.get_data(as_text=True))
    assert error.endswith(".")


def test_plurals_agree_on_pages_and_in_messages(month: Site):
    """A mentorship needing one mentor says "1 mentor"; a scheduled one a day away says
    "1 day"; no page or message says "(s)"."""
    month.sign_in("boss")
    with month.session() as session:
        lifecycle.remove_mentor(
            session, mentee="mpage", mentor="vstinner", actor="boss", now=utcnow()
        )
        session.commit()
    refused = month.post("/mentorships/mpage/mentors/colesbury/remove", {})
    page = refused.get_data(as_text=True)
    assert "needs at least 1 mentor;" in page and "(s)" not in page
    month.promote("later-one", ["ambv"], start=utcnow() + timedelta(hours=20), days=1)
    overview = shown_text(month.page("/"))
    assert re.search(r"Starts in 1 day \( \w{3} \d+, \d{4} .*\) · 1 day ", overview)
    assert "(s)" not in overview


def test_a_vote_open_for_one_day_says_one_day(month: Site):
    """PEP 13's refusal counts days right: "open 1 day", never "1 days"."""
    month.sign_in("boss")
    response = month.post(
        "/mentorships/new",
        start_form(
            votes_for="5", votes_against="0", vote_opened="2026-11-01", vote_closed="2026-11-02"
        ),
    )
    text = shown_text(response.get_data(as_text=True))
    assert "the vote was open 1 day, PEP 13 asks for 7" in text


# ---------------------------------------------------------------- times


def test_dates_read_one_way_and_never_as_iso(month: Site):
    """The mentee page shows every date as "Nov 8, 2026" (the vote's days, the audit log, an
    earlier mentorship), never "2026-11-08", which breaks at its hyphens."""
    month.promote("sam-o", ["ambv"])
    with month.session() as session:
        lifecycle.end(session, mentee="sam-o", reason="graduated", actor="boss", now=utcnow())
        session.commit()
    vote = votes.make_vote(
        url=None, votes_for=9, votes_against=1, opened=date(2026, 11, 1), closed=date(2026, 11, 8)
    )
    month.promote("sam-o", ["ambv"], vote=vote)
    text = shown_text(month.page("/mentorships/sam-o"))
    assert "open Nov 1, 2026 to Nov 8, 2026" in text
    assert "Earlier mentorships" in text
    assert ISO_DATE.findall(text) == []


def test_the_audit_log_reads_in_the_order_things_happened(month: Site):
    """A new mentorship's log starts with "started the mentorship", then its mentors added."""
    text = shown_text(month.page("/mentorships/mpage"))
    log = text[text.index("Audit log") :]
    assert log.index("started the mentorship") < log.index("mentor added")


# ---------------------------------------------------------------- sign-in not set up


def test_without_sign_in_the_header_offers_none_and_the_page_says_how_to_set_it_up(month: Site):
    """A server without GitHub's OAuth client offers no "Sign in with GitHub"; the header says
    sign-in is not set up and links the page saying how a maintainer sets it up, which answers
    503 and links nowhere with a nested ``next=``."""
    overview = month.page("/")
    assert "Sign in with GitHub" not in overview
    assert '<a class="sign-in-off" href="/login">Sign-in is not set up</a>' in overview
    pull = month.page(f"/pulls/{REPO}/7")
    assert "sign in</a> to approve" not in pull
    response = month.client.get("/login?next=/login?next%3D/")
    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert "next=" not in page
    text = shown_text(page)
    assert "Sign-in is not set up on this server" in text
    assert "GITHUB_CLIENT_ID" in text and "GITHUB_CLIENT_SECRET" in text and "restart" in text


def test_with_sign_in_set_up_the_header_and_a_waiting_pull_request_offer_it(
    month: Site, database_url: str
):
    """Where GitHub's OAuth client is configured, a signed-out visitor is offered "Sign in with
    GitHub", and a waiting pull request's page asks mentors to sign in to approve."""
    configured = create_app(
        {
            "database_url": database_url,
            "secret_key": "test",
            "github_client_id": "Iv1.layout",
            "github_client_secret": "layout-secret",
        }
    )
    try:
        visitor = Site(configured)
        overview = visitor.page("/")
        assert "Sign in with GitHub" in overview and "Sign-in is not set up" not in overview
        assert "sign in</a> to approve" in visitor.page(f"/pulls/{REPO}/7")
    finally:
        configured.extensions["gatekeeper.engine"].dispose()
