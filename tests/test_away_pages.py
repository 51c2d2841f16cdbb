"""Mentors who are away on the dashboard, and the mentee's own page: marking oneself away on
/me (role checks, CSRF, clear errors), what mentees and maintainers are shown, the remind
confirmation at its row and the mentee's bypasses (Flask's test client, SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from sqlmodel import select

from dashboard_support import REPO, Site
from fakegithub import default_user_id
from gatekeeper import away, needs
from gatekeeper import pulls as store
from gatekeeper.models import Absence, AuditEvent, utcnow


def text(html: str) -> str:
    """A page's words, tags and repeated spaces gone (and the space a tag leaves before a
    full stop or a semicolon)."""
    words = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    return re.sub(r" ([.,;:])", r"\1", words)


def later(days: int) -> str:
    return (utcnow().date() + timedelta(days=days)).isoformat()


def words_of(days: int) -> str:
    return away.day_words(utcnow().date() + timedelta(days=days))


def absence_of(site: Site, login: str) -> Absence | None:
    with site.session() as session:
        return session.get(Absence, default_user_id(login))


def waited_two_days(site: Site) -> None:
    """mpage's #7 waits, as if for two days already (a reminder is possible)."""
    site.pull(7)
    with site.session() as session:
        pull = store.find_pull(session, repo=REPO, number=7)
        pull.waiting_since = utcnow() - timedelta(days=2)
        session.add(pull)
        session.commit()


@pytest.fixture
def mentored(site: Site) -> Site:
    """mpage mentored by colesbury and vstinner; both have signed in before."""
    site.promote()
    for login in ("colesbury", "vstinner"):
        site.sign_in(login)
    return site


def test_a_mentor_marks_themselves_away_on_me(mentored: Site):
    """colesbury gives a date and a note: stored for their account, audited, said on /me."""
    mentored.sign_in("colesbury")
    response = mentored.post(
        "/away", {"until": later(7), "note": "on holiday"}, token=mentored.token("/me")
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/me#away")
    absence = absence_of(mentored, "colesbury")
    assert absence is not None and absence.until == utcnow().date() + timedelta(days=7)
    assert (absence.note, absence.set_by) == ("on holiday", "colesbury")
    page = text(mentored.page("/me"))
    assert f"You are away until {words_of(7)} (on holiday)." in page
    assert "review requests and reminders go to the other mentors meanwhile." in page
    assert ("colesbury", "mentor_away") in mentored.audit()


def test_back_ends_the_absence(mentored: Site):
    """I am back: the absence ends now and is audited."""
    mentored.sign_in("colesbury")
    mentored.post("/away", {"until": later(7)}, token=mentored.token("/me"))
    response = mentored.post("/away/back", {}, token=mentored.token("/me"))
    assert response.status_code == 302
    assert absence_of(mentored, "colesbury") is None
    assert ("colesbury", "mentor_back") in mentored.audit()
    assert "You are away" not in mentored.page("/me")


@pytest.mark.parametrize(
    ("until", "message"),
    [
        pytest.param("", "Give the last day away (YYYY-MM-DD).", id="empty"),
        pytest.param("soon", "'soon' is not a date; write it as YYYY-MM-DD", id="unparseable"),
        pytest.param("2020-01-01", "Jan 1, 2020 has passed; give today or a later day.", id="past"),
    ],
)
def test_a_bad_date_is_refused_beside_the_field(mentored: Site, until: str, message: str):
    """The form comes back with a 400 and the reason under the date; nothing is stored."""
    mentored.sign_in("colesbury")
    response = mentored.post("/away", {"until": until}, token=mentored.token("/me"))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert re.search(
        r'<p class="error" id="until-error">[^<]*' + re.escape(message.replace("'", "&#39;")), html
    )
    assert 'aria-invalid="true"' in html
    assert absence_of(mentored, "colesbury") is None


def test_a_mentor_may_not_mark_another_mentor_away(mentored: Site):
    """Only maintainers set someone else's absence: 403, nothing stored."""
    mentored.sign_in("colesbury")
    token = mentored.token("/me")
    response = mentored.post("/away", {"login": "vstinner", "until": later(3)}, token=token)
    assert response.status_code == 403
    assert "Only maintainers mark someone else away" in text(response.get_data(as_text=True))
    assert absence_of(mentored, "vstinner") is None


def test_someone_who_mentors_nobody_may_not_mark_themselves_away(mentored: Site):
    """The mentee is no mentor: 403."""
    mentored.sign_in("mpage")
    response = mentored.post("/away", {"until": later(3)}, token=mentored.token("/"))
    assert response.status_code == 403
    assert "Only mentors mark themselves away" in response.get_data(as_text=True)


def test_a_maintainer_marks_anyone_away_and_back(mentored: Site):
    """boss marks vstinner away, sees them listed as away now, and marks them back."""
    mentored.sign_in("boss")
    token = mentored.token("/me")
    response = mentored.post("/away", {"login": "VStinner", "until": later(2)}, token=token)
    assert response.status_code == 302
    assert absence_of(mentored, "vstinner").set_by == "boss"
    page = text(mentored.page("/me"))
    assert f"vstinner until {words_of(2)}" in page
    response = mentored.post("/away/back", {"login": "vstinner"}, token=token)
    assert response.status_code == 302
    assert absence_of(mentored, "vstinner") is None


def test_the_away_form_needs_its_csrf_token(mentored: Site):
    """A post without the form's token is refused with a 400 and changes nothing."""
    mentored.sign_in("colesbury")
    response = mentored.client.post("/away", data={"until": later(3)})
    assert response.status_code == 400
    assert absence_of(mentored, "colesbury") is None


def test_marking_away_while_signed_out_asks_to_sign_in(mentored: Site):
    """Signed out (a session that timed out mid-form): sent to sign in, nothing stored."""
    token = mentored.token("/me")
    mentored.sign_out()
    response = mentored.post("/away", {"until": later(3)}, token=token)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert absence_of(mentored, "colesbury") is None


def test_the_mentee_sees_who_is_away_and_whom_to_ask(mentored: Site):
    """With colesbury away, the mentee's page says until when and asks for vstinner only."""
    mentored.sign_in("colesbury")
    mentored.post("/away", {"until": later(5)}, token=mentored.token("/me"))
    mentored.pull(7)
    mentored.sign_in("mpage")
    page = text(mentored.page("/mentorships/mpage"))
    assert f"colesbury is away until {words_of(5)}." in page
    assert "Ask @vstinner for a review on GitHub" in page
    assert f"colesbury away until {words_of(5)}" in page  # in the list of mentors
    assert "Waits for a mentor: ask @vstinner." in page  # the pull request's row
    pull_page = text(mentored.page(f"/pulls/{REPO}/7"))
    assert "Waits for a mentor: ask @vstinner." in pull_page
    assert mentored.stored_pull(7).gate_summary.endswith(
        f"@colesbury is away until {words_of(5)}. An approval from them still counts."
    )


def test_maintainers_see_a_mentorship_with_every_mentor_away(mentored: Site):
    """Both mentors away: /me shows the mentorship, who is away until when, and its waiting
    pull request; the mentee is told the maintainers can see it."""
    mentored.pull(7, title="Fix the frobnicator")
    for login, days in (("colesbury", 5), ("vstinner", 3)):
        mentored.sign_in(login)
        mentored.post("/away", {"until": later(days)}, token=mentored.token("/me"))
    mentored.sign_in("boss")
    page = text(mentored.page("/me"))
    assert "Every mentor away" in page
    assert (
        f"mpage: all 2 mentors are away (colesbury until {words_of(5)}, vstinner until"
        f" {words_of(3)}). 1 pull request waits" in page
    )
    assert f"{REPO}#7 Fix the frobnicator" in page
    mentored.sign_in("mpage")
    assert "All your mentors are away: the maintainers can see it" in text(
        mentored.page("/mentorships/mpage")
    )


def test_the_reminder_is_confirmed_at_its_row(mentored: Site):
    """After Remind my mentors the page comes back at the row, which says it was reminded
    just now and when the next reminder is possible; the button is not just gone."""
    waited_two_days(mentored)
    mentored.sign_in("mpage")
    token = mentored.token("/mentorships/mpage")
    anchor = "pr-python-cpython-7"
    response = mentored.post(
        f"/pulls/{REPO}/7/remind", {"next": f"/mentorships/mpage#{anchor}"}, token=token
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/mentorships/mpage#{anchor}")
    html = mentored.page("/mentorships/mpage")
    row = re.search(rf'<tr id="{anchor}">(.*?)</tr>', html, re.S)
    assert row is not None
    words = text(row.group(1))
    assert re.search(
        # A time's exact moment follows it as text (shown on a tap), in brackets.
        r"Reminded just now( \([^)]*\))?; next reminder possible tomorrow at \d\d:\d\d UTC\.",
        words,
    )
    assert "Remind my mentors" not in words


def test_the_remind_button_brings_the_page_back_to_its_row(mentored: Site):
    """The button's form names its own row as where to come back to."""
    waited_two_days(mentored)
    mentored.sign_in("mpage")
    html = mentored.page("/mentorships/mpage")
    assert '<tr id="pr-python-cpython-7">' in html
    assert 'name="next" value="/mentorships/mpage#pr-python-cpython-7"' in html


def test_the_mentee_page_says_plainly_when_their_pull_request_bypassed_the_gate(mentored: Site):
    """A merge while waiting: the mentee reads that it merged without approval and that no
    maintainer acknowledged it; once one does, who and when."""
    mentored.pull(8)
    mentored.pull(8, merged=True)
    mentored.sign_in("mpage")
    page = text(mentored.page("/mentorships/mpage"))
    assert f"{REPO}#8 merged without a mentor's approval (merged by mpage)." in page
    assert "No maintainer has acknowledged it yet." in page
    with mentored.session() as session:
        pull = store.find_pull(session, repo=REPO, number=8)
        needs.acknowledge(session, pull=pull, actor="boss", note="tests only", now=utcnow())
        session.commit()
    page = text(mentored.page("/mentorships/mpage"))
    assert re.search(
        r"A maintainer, boss, acknowledged it just now( \([^)]*\))?: “tests only”\.", page
    )
    assert "Merged without a mentor's approval; acknowledged by boss" in page


def test_away_is_kept_per_account(mentored: Site):
    """The absence is stored under the account id, whatever login typed it."""
    mentored.sign_in("colesbury")
    mentored.post("/away", {"until": later(1)}, token=mentored.token("/me"))
    with mentored.session() as session:
        [row] = session.exec(select(Absence)).all()
        kinds = [e.kind for e in session.exec(select(AuditEvent))]
    assert row.account_id == default_user_id("colesbury")
    assert row.until == utcnow().date() + timedelta(days=1)
    assert "mentor_away" in kinds
