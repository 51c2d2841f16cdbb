"""What a maintainer finds and does (issue #9): ``/me`` lists what needs them, a bypass is
acknowledged with a note, a running mentorship's terms are edited (and the gates follow),
removing a mentor is confirmed first, and the audit log links its pull requests and drops
repetitions. Flask's test client on SQLite and PostgreSQL, CSRF on; one flow in Chromium.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from html import unescape

import pytest
import requests
import sqlalchemy as sa
from sqlmodel import Session, select

from browser_support import REPO as LIVE_REPO
from browser_support import WEBHOOK_SECRET, Live, screenshot
from dashboard_support import REPO, Site
from gatekeeper import mentorships as lifecycle
from gatekeeper import needs, report
from gatekeeper import pulls as store
from gatekeeper.models import AuditEvent, MentorAssignment, PullRequest, Repository, utcnow
from gatekeeper.pages import LogLine, collapse
from gatekeeper.visibility import PRIVATE_PULL
from webhook_events import signed

TIMES = "\N{MULTIPLICATION SIGN}"
NOTE = "Merged by the release manager for the security fix; fine."


@pytest.fixture
def bypassed(site: Site) -> Site:
    """mpage mentored by colesbury and vstinner; #8 was merged while it waited (a bypass)."""
    site.promote()
    site.pull(8)
    site.pull(8, merged=True)
    assert site.stored_pull(8).gate == "bypassed"
    return site


def events(site: Site, kind: str) -> list[AuditEvent]:
    with site.session() as session:
        return list(
            session.exec(select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id))
        )


def text(response) -> str:
    """The page as a reader sees its words (tags dropped, entities decoded, blanks squeezed)."""
    words = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", unescape(words))


def marked(page: str, field: str) -> str | None:
    """The error shown inside ``field``'s own box, if the box is marked in error."""
    box = re.search(
        rf'<div class="field has-error">\s*<label for="{field}">.*?</div>', page, flags=re.S
    )
    if box is None:
        return None
    return unescape(" ".join(re.findall(r'<p class="error">(.*?)</p>', box.group(0), flags=re.S)))


# ---------------------------------------------------------------- /me: what needs a maintainer


def test_me_lists_what_needs_a_maintainer(site: Site):
    """A bypass not acknowledged, a month ending in 2 days, a pull request waiting 3 days and a
    mentorship whose last mentor left are on the maintainer's /me; a month ending in weeks, a
    pull request waiting an hour, and an acknowledged bypass are not."""
    now = utcnow()
    site.promote("mpage", days=3)  # started yesterday: ends in 2 days
    site.promote("sobolevn", ["picnixz"])  # a month: ends in weeks
    site.promote("eclips4", ["ambv"])
    site.pull(7, title="Waited long")
    site.pull(9, title="Waited an hour")
    site.pull(8, title="Merged past the gate")
    site.pull(8, title="Merged past the gate", merged=True)
    site.pull(10, author="sobolevn", title="Also bypassed")
    site.pull(10, author="sobolevn", title="Also bypassed", merged=True)
    with site.session() as session:
        for number, waited in ((7, timedelta(days=3)), (9, timedelta(hours=1))):
            pull = session.exec(select(PullRequest).where(PullRequest.number == number)).one()
            pull.waiting_since = now - waited
            session.add(pull)
        # The lifecycle keeps a mentor; a slip elsewhere (or the database by hand) may not.
        ambv = session.exec(select(MentorAssignment).where(MentorAssignment.mentor == "ambv"))
        for assignment in ambv:
            assignment.removed_at, assignment.removed_by = now, "someone"
            session.add(assignment)
        sobolevn = lifecycle.latest_mentorship(session, mentee="sobolevn")
        lifecycle.record(
            session,
            mentorship=sobolevn,
            actor="boss",
            kind=needs.ACKNOWLEDGED,
            detail="seen",
            at=now,
            repo=REPO,
            pr_number=10,
        )
        session.commit()

    site.sign_in("boss")
    response = site.client.get("/me")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    section = page[page.index('id="needs"') :]
    bypasses = re.search(r'class="plain needs-bypasses">(.*?)</ul>', section, re.S)
    ending = re.search(r'class="plain needs-ending">(.*?)</ul>', section, re.S)
    waiting = re.search(r'class="plain needs-waiting">(.*?)</ul>', section, re.S)
    short = re.search(r'class="plain needs-short">(.*?)</ul>', section, re.S)
    assert bypasses and ending and waiting and short
    assert f"{REPO}#8" in bypasses.group(1) and f"{REPO}#10" not in bypasses.group(1)
    assert "mpage" in ending.group(1) and "sobolevn" not in ending.group(1)
    assert f"{REPO}#7" in waiting.group(1) and f"{REPO}#9" not in waiting.group(1)
    assert "eclips4" in short.group(1) and "no mentor" in short.group(1)
    assert "mpage" not in short.group(1) and "sobolevn" not in short.group(1)


def test_me_without_needs_says_so_and_others_see_no_list(bypassed: Site):
    """Once the bypass is acknowledged nothing is listed; a mentor's /me has no such list."""
    bypassed.sign_in("boss")
    assert "Needs a maintainer" in bypassed.page("/me")
    bypassed.post(f"/pulls/{REPO}/8/acknowledge", {"note": NOTE})
    page = bypassed.page("/me")
    assert "Needs a maintainer" not in page and "Nothing needs a maintainer right now" in page
    bypassed.sign_in("colesbury")
    page = bypassed.page("/me")
    assert 'id="needs"' not in page and "acknowledge" not in page


def test_the_needs_lists_take_a_bounded_number_of_queries(bypassed: Site):
    """Five queries for the maintainer's list, and at most four more for mentorships whose
    every mentor is away (``away.stranded``), however many bypasses and mentorships."""
    for number in range(20, 26):
        bypassed.pull(number)
        bypassed.pull(number, merged=True)
    engine = bypassed.app.extensions["gatekeeper.engine"]
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        with bypassed.session() as session:
            found = needs.for_maintainer(session, now=utcnow())
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(found.bypasses) == 7
    assert len([s for s in statements if s.startswith("SELECT")]) <= 5 + 4


# ---------------------------------------------------------------- acknowledging a bypass


def test_a_maintainer_acknowledges_a_bypass_with_a_note(bypassed: Site):
    """The note is one audit event (kind, repository, number, mentorship, actor, note), the
    pull request page shows it, and the month's report reads it."""
    bypassed.sign_in("boss")
    page = bypassed.page(f"/pulls/{REPO}/8")
    assert "No maintainer has acknowledged this bypass yet" in page
    response = bypassed.post(f"/pulls/{REPO}/8/acknowledge", {"note": NOTE})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/pulls/{REPO}/8")

    [event] = events(bypassed, "bypass_acknowledged")
    mentorship = bypassed.mentorship()
    assert (event.repo, event.pr_number, event.mentorship_id) == (REPO, 8, mentorship.id)
    assert (event.actor, event.detail) == ("boss", NOTE)
    shown = text(bypassed.client.get(f"/pulls/{REPO}/8"))
    # The time's exact moment follows it as text (shown on a tap), in brackets.
    assert re.search(rf"Acknowledged by boss just now ?(\([^)]*\) ?)?: “{re.escape(NOTE)}”", shown)
    assert needs.ACKNOWLEDGED == report.ACKNOWLEDGED  # the report reads this very kind
    with bypassed.session() as session:
        found = report.document(
            report.build(session, mentee="mpage", now=utcnow(), base_url="http://x", viewer=None)
        )
    [line] = found["bypasses"]
    assert line["acknowledged"]["by"] == "boss" and line["acknowledged"]["note"] == NOTE


def test_acknowledging_again_updates_and_the_same_note_records_nothing(bypassed: Site):
    """The same note twice is one record; a new note is a second record that supersedes the
    first (the audit log keeps both), and the page and the report show the newer."""
    bypassed.sign_in("boss")
    bypassed.post(f"/pulls/{REPO}/8/acknowledge", {"note": NOTE})
    again = bypassed.post(f"/pulls/{REPO}/8/acknowledge", {"note": f"  {NOTE} "})
    assert again.status_code == 302
    assert "already acknowledged with this note" in text(bypassed.client.get(f"/pulls/{REPO}/8"))
    assert [e.detail for e in events(bypassed, "bypass_acknowledged")] == [NOTE]

    bypassed.post(f"/pulls/{REPO}/8/acknowledge", {"note": "Asked the mentors to look after."})
    assert [e.detail for e in events(bypassed, "bypass_acknowledged")] == [
        NOTE,
        "Asked the mentors to look after.",
    ]
    assert "“Asked the mentors to look after.”" in text(bypassed.client.get(f"/pulls/{REPO}/8"))
    with bypassed.session() as session:
        pull = session.exec(select(PullRequest).where(PullRequest.number == 8)).one()
        latest = needs.acknowledgement_of(session, pull=pull)
        assert latest is not None and latest.note == "Asked the mentors to look after."


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_maintainers_acknowledging_at_once_leave_one_record(bypassed: Site, database_url):
    """PostgreSQL, two transactions: the second waits on the pull request's row lock while the
    first records the note, then finds it and records nothing (SQLite has one writer at a
    time, so there the race cannot happen)."""
    engine = bypassed.app.extensions["gatekeeper.engine"]
    outcome: dict[str, bool] = {}

    def second() -> None:
        with Session(engine) as other:
            pull = store.find_pull(other, repo=REPO, number=8, lock=True)  # waits for the first
            assert pull is not None
            outcome["recorded"] = needs.acknowledge(
                other, pull=pull, actor="alice", note=NOTE, now=utcnow()
            )
            other.commit()

    with Session(engine) as first:
        pull = store.find_pull(first, repo=REPO, number=8, lock=True)
        assert pull is not None
        assert needs.acknowledge(first, pull=pull, actor="boss", note=NOTE, now=utcnow())
        first.flush()
        thread = threading.Thread(target=second)
        thread.start()
        waiting_on_a_lock(engine)
        first.commit()
    thread.join()
    assert outcome == {"recorded": False}
    assert [(e.actor, e.detail) for e in events(bypassed, "bypass_acknowledged")] == [
        ("boss", NOTE)
    ]


def waiting_on_a_lock(engine: sa.Engine) -> None:
    """Return once another connection of this database waits for a lock (PostgreSQL)."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(2000):
        with engine.connect() as connection:
            if connection.execute(query).scalar_one():
                return
        time.sleep(0.005)
    raise AssertionError("the second transaction never waited for the row lock")


def test_acknowledging_from_me_comes_back_to_me(bypassed: Site):
    """The /me list's form acknowledges and returns to /me, where the bypass is gone."""
    bypassed.sign_in("boss")
    token = bypassed.token("/me")
    response = bypassed.post(
        f"/pulls/{REPO}/8/acknowledge", {"note": "", "back": "me"}, token=token
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/me")
    [event] = events(bypassed, "bypass_acknowledged")
    assert event.detail == ""
    page = bypassed.page("/me")
    assert f"Bypass of {REPO}#8 acknowledged." in page and "needs-bypasses" not in page


@pytest.mark.parametrize(
    ("visitor", "token", "status"),
    [("colesbury", True, 403), ("mpage", True, 403), ("someone", True, 403), ("boss", False, 400)],
)
def test_only_maintainers_acknowledge_and_only_with_the_token(
    bypassed: Site, visitor, token, status
):
    """A mentor, the mentee or a stranger is refused (403); a maintainer without the CSRF
    token too (400); nothing is recorded."""
    bypassed.sign_in(visitor)
    response = bypassed.post(
        f"/pulls/{REPO}/8/acknowledge", {"note": NOTE}, token=None if token else ""
    )
    assert response.status_code == status
    assert events(bypassed, "bypass_acknowledged") == []


def test_a_note_too_long_is_refused_beside_its_field(bypassed: Site):
    """2,001 characters: a 400 with the note's field marked, the note kept, nothing recorded."""
    bypassed.sign_in("boss")
    response = bypassed.post(f"/pulls/{REPO}/8/acknowledge", {"note": "x" * 2001})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    error = marked(page, "note")
    assert error is not None and "at most 2,000 characters" in error
    assert "x" * 2001 in page
    assert events(bypassed, "bypass_acknowledged") == []


def test_a_pull_request_that_was_no_bypass_cannot_be_acknowledged(bypassed: Site):
    """A waiting pull request: 409, said plainly, and no record; the form is not offered."""
    bypassed.pull(7)
    bypassed.sign_in("boss")
    assert "Acknowledge the bypass" not in bypassed.page(f"/pulls/{REPO}/7")
    response = bypassed.post(f"/pulls/{REPO}/7/acknowledge", {"note": NOTE})
    assert response.status_code == 409
    assert "was not merged without approval" in text(response)
    assert events(bypassed, "bypass_acknowledged") == []


# ---------------------------------------------------------------- editing the terms


def terms(site: Site, mentee: str = "mpage", **changes: str | bool) -> dict[str, str]:
    """The terms form as the mentee page fills it, with ``changes`` typed over it."""
    m = site.mentorship(mentee)
    fields: dict[str, str | bool] = {
        "approvals_required": str(m.approvals_required),
        "repositories": "\n".join(m.repositories),
        "dismiss_stale_approvals": m.dismiss_stale_approvals,
        "same_content_approvals": m.same_content_approvals,
        "gate_approved_prs": m.gate_approved_prs,
        "bypass_alerts": m.bypass_alerts,
        "note": m.note or "",
        "seen": lifecycle.terms_digest(m),
    }
    fields.update(changes)
    # An unticked box is not sent at all, as a browser does.
    return {k: ("y" if v is True else v) for k, v in fields.items() if v is not False}


def test_the_terms_form_shows_the_terms_as_they_stand(site: Site):
    """The mentee page's form for maintainers is filled with the current terms."""
    site.promote(repositories=[REPO], approvals_required=2, note="Be kind.")
    site.sign_in("boss")
    page = site.page("/mentorships/mpage")
    form = page[page.index('id="terms"') :]
    assert 'name="approvals_required"' in form and 'value="2"' in form
    assert re.search(rf">\s*{REPO}</textarea>", form)
    assert re.search(r">\s*Be kind.</textarea>", form)
    site.sign_in("colesbury")
    assert 'id="terms"' not in site.page("/mentorships/mpage")


def test_lowering_the_approvals_approves_a_pull_request_with_one(site: Site):
    """#7 waits under 2 approvals with one from colesbury; lowered to 1, it is approved at
    once, and the change is audited old → new."""
    site.promote(approvals_required=2)
    site.pull(7)
    site.review(7, "colesbury")
    assert site.stored_pull(7).gate == "waiting"
    site.sign_in("boss")
    response = site.post("/mentorships/mpage/terms", terms(site, approvals_required="1"))
    assert response.status_code == 302
    assert site.stored_pull(7).gate == "approved"
    [event] = events(site, "terms_changed")
    assert (event.actor, event.detail) == ("boss", "approvals required: 2 → 1")
    assert events(site, "gate_approved")


def test_a_repository_leaving_the_scope_lifts_and_coming_back_waits_again(site: Site):
    """#7 waits in python/cpython; the scope becomes python/peps: #7 keeps its record and is
    lifted (green); the scope back to python/cpython: #7 waits again."""
    site.promote(repositories=[REPO])
    site.pull(7)
    waiting = site.stored_pull(7)
    assert waiting.gate == "waiting" and waiting.gated_at is not None
    site.sign_in("boss")

    site.post("/mentorships/mpage/terms", terms(site, repositories="python/peps"))
    lifted = site.stored_pull(7)
    assert lifted.gate == "lifted" and lifted.lifted_at is not None
    assert lifted.gated_at == waiting.gated_at and lifted.settled_at is not None
    assert lifted.gated_mentorship_id == site.mentorship().id
    assert [e.detail for e in events(site, "terms_changed")] == [
        f"repositories: {REPO} → python/peps"
    ]

    site.post("/mentorships/mpage/terms", terms(site, repositories=REPO))
    again = site.stored_pull(7)
    assert again.gate == "waiting" and again.lifted_at is None and again.settled_at is None
    assert again.gated_at == waiting.gated_at
    kinds = [kind for _, kind in site.audit() if kind.startswith("gate_")]
    assert kinds[-2:] == ["gate_lifted", "gate_waiting"]


def test_an_empty_scope_gates_every_repository(site: Site):
    """A pull request outside the scope needs nothing; emptying the scope gates it."""
    site.promote(repositories=["python/peps"])
    site.pull(7)
    assert site.stored_pull(7).gate == "not_required"
    site.sign_in("boss")
    site.post("/mentorships/mpage/terms", terms(site, repositories=""))
    assert site.mentorship().repositories == []
    assert site.stored_pull(7).gate == "waiting"
    [event] = events(site, "terms_changed")
    assert event.detail == "repositories: python/peps → every repository"


def test_each_changed_term_is_one_audit_event(site: Site):
    """Stale-on-push, gate-approved, bypass alerts and the note changed at once: four events,
    one per term; saving again unchanged adds none."""
    site.promote()
    site.sign_in("boss")
    form = terms(
        site,
        dismiss_stale_approvals=False,
        gate_approved_prs=True,
        bypass_alerts=False,
        note="Pairs with vstinner on Tuesdays.",
    )
    assert site.post("/mentorships/mpage/terms", form).status_code == 302
    assert sorted(e.detail for e in events(site, "terms_changed")) == [
        "a new push needs a new approval: yes → no",
        "comment on a bypass: yes → no",
        "gate pull requests the mentee approves: no → yes",
        "note: none → “Pairs with vstinner on Tuesdays.”",
    ]
    m = site.mentorship()
    assert (m.dismiss_stale_approvals, m.gate_approved_prs, m.bypass_alerts) == (False, True, False)
    assert m.note == "Pairs with vstinner on Tuesdays."
    response = site.post("/mentorships/mpage/terms", terms(site))
    assert response.status_code == 302
    assert len(events(site, "terms_changed")) == 4
    assert "Nothing changed" in text(site.client.get("/mentorships/mpage"))


def test_keeping_approvals_on_push_approves_a_pull_request_approved_before_the_push(site: Site):
    """colesbury approved the old head; after a push #7 waits; "a new push needs a new
    approval" turned off, the older approval counts again."""
    site.promote()
    site.pull(7)
    site.review(7, "colesbury")
    site.pull(7, head_sha="b" * 40)
    assert site.stored_pull(7).gate == "waiting"
    site.sign_in("boss")
    site.post("/mentorships/mpage/terms", terms(site, dismiss_stale_approvals=False))
    assert site.stored_pull(7).gate == "approved"


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("approvals_required", "3", "3 approvals required but only 2 mentors"),
        ("approvals_required", "0", "At least one approval must be required"),
        ("approvals_required", "", "Say how many mentor approvals"),
        ("repositories", "cpython", "'cpython' is not a repository name"),
        ("repositories", "python/cpython python/peps", "is not one repository"),
        ("repositories", f"{REPO}\nPython/CPython", "is listed twice"),
        ("note", "n" * 2001, "at most 2,000 characters"),
    ],
)
def test_a_bad_term_is_refused_beside_its_field(site: Site, field, typed, message):
    """A 400 with the field marked and the typing kept; nothing changed, nothing audited."""
    site.promote(approvals_required=1)
    site.pull(7)
    site.sign_in("boss")
    response = site.post(
        "/mentorships/mpage/terms", terms(site, **{field: typed, "gate_approved_prs": True})
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    error = marked(page, field)
    assert error is not None and message in error, error
    if typed:
        assert unescape(page).count(typed.split("\n")[0]) >= 1
    m = site.mentorship()
    assert (m.approvals_required, m.gate_approved_prs) == (1, False)
    assert events(site, "terms_changed") == []
    assert site.stored_pull(7).gate == "waiting"


@pytest.mark.parametrize(
    ("visitor", "token", "status"),
    [("colesbury", True, 403), ("mpage", True, 403), ("someone", True, 403), ("boss", False, 400)],
)
def test_only_maintainers_change_terms_and_only_with_the_token(site: Site, visitor, token, status):
    """Mentors, the mentee and strangers get 403; a maintainer without the token 400."""
    site.promote()
    site.sign_in(visitor)
    form = terms(site, approvals_required="2")
    response = site.post("/mentorships/mpage/terms", form, token=None if token else "")
    assert response.status_code == status
    assert site.mentorship().approvals_required == 1
    assert events(site, "terms_changed") == []


def test_an_ended_mentorships_terms_cannot_change(site: Site):
    """After the end: 409, and the record stays as it was."""
    site.promote()
    site.sign_in("boss")
    site.post("/mentorships/mpage/end", {"reason": "graduated"})
    response = site.post("/mentorships/mpage/terms", terms(site, approvals_required="2"))
    assert response.status_code == 409
    assert events(site, "terms_changed") == []


def test_change_terms_refuses_more_approvals_than_mentors_naming_the_field(site: Site):
    """The lifecycle function itself, as the CLI would call it: the field is named."""
    site.promote()
    with site.session() as session, pytest.raises(lifecycle.MentorshipError) as refused:
        lifecycle.change_terms(
            session, mentee="mpage", actor="boss", now=utcnow(), approvals_required=5
        )
    assert refused.value.field == "approvals_required"


# ---------------------------------------------------------------- removing a mentor


def test_removing_a_mentor_is_confirmed_first_and_says_what_follows(site: Site):
    """The link opens a page naming #7 (waiting, will need another mentor) and #9 (approved
    by vstinner alone, will wait again); nothing is removed until the POST, which does it."""
    site.promote()
    site.pull(7)
    site.pull(9)
    site.review(9, "vstinner", id=2)
    site.sign_in("boss")
    mentee = site.page("/mentorships/mpage")
    assert 'href="/mentorships/mpage/mentors/vstinner/remove"' in mentee

    response = site.client.get("/mentorships/mpage/mentors/vstinner/remove")
    assert response.status_code == 200
    shown = text(response)
    assert f"1 pull request waiting will need another mentor: {REPO}#7" in shown
    assert (
        f"1 approved pull request will wait again, as vstinner's approval stops counting: {REPO}#9"
        in shown
    )
    assert events(site, "mentor_removed") == []

    token = site.token("/mentorships/mpage/mentors/vstinner/remove")
    done = site.post("/mentorships/mpage/mentors/vstinner/remove", token=token)
    assert done.status_code == 302
    assert [e.detail for e in events(site, "mentor_removed")] == ["vstinner"]
    assert site.stored_pull(9).gate == "waiting"


def test_a_removal_that_would_be_refused_says_so_without_a_button(site: Site):
    """Two approvals needed from two mentors: the confirm page says why not, offers no button."""
    site.promote(approvals_required=2)
    site.sign_in("boss")
    response = site.client.get("/mentorships/mpage/mentors/vstinner/remove")
    assert response.status_code == 200
    assert "needs at least 2 mentors" in text(response)
    assert "Remove vstinner</button>" not in response.get_data(as_text=True)


def test_only_maintainers_see_the_removal_page(site: Site):
    """A mentor asking for the confirm page gets 403."""
    site.promote()
    site.sign_in("colesbury")
    assert site.client.get("/mentorships/mpage/mentors/vstinner/remove").status_code == 403


# ---------------------------------------------------------------- the audit log


def test_the_audit_log_links_its_pull_requests(site: Site):
    """Each event about a pull request links its page."""
    site.promote()
    site.pull(7)
    page = site.page("/mentorships/mpage")
    log = page[page.index("<h2>Audit log</h2>") :]
    assert f'<a href="/pulls/{REPO}/7">{REPO}#7</a>' in log


def test_the_audit_log_links_no_private_pull_request_for_strangers(site: Site):
    """In a private repository a stranger sees the redacted words and no link; a mentor the link."""
    site.promote()
    with site.session() as session:
        session.add(Repository(full_name=REPO, display_name=REPO, private=True))
        session.commit()
    site.pull(7)
    site.sign_in("someone")
    page = site.page("/mentorships/mpage")
    log = page[page.index("<h2>Audit log</h2>") :]
    assert PRIVATE_PULL in log and f"/pulls/{REPO}/7" not in log
    site.sign_in("colesbury")
    page = site.page("/mentorships/mpage")
    assert f'<a href="/pulls/{REPO}/7">' in page[page.index("<h2>Audit log</h2>") :]


def test_repeated_events_are_one_line_with_a_count(site: Site):
    """Three identical refusals in a row are one line with a count of 3; the same again after another
    event is a line of its own."""
    mentorship = site.promote()
    site.pull(7)
    with site.session() as session:
        at = utcnow()
        for kind in ("approval_refused",) * 3 + ("mentor_added", "approval_refused"):
            lifecycle.record(
                session,
                mentorship=mentorship,
                actor="picnixz",
                kind=kind,
                detail="only mentors" if kind == "approval_refused" else "x",
                at=at,
                repo=REPO if kind == "approval_refused" else None,
                pr_number=7 if kind == "approval_refused" else None,
            )
        session.commit()
    page = site.page("/mentorships/mpage")
    log = page[page.index("<h2>Audit log</h2>") :]
    assert log.count("approval refused") == 2
    assert log.count(f"{TIMES}3") == 1 and f"{TIMES}2" not in log


def test_collapse_keeps_the_newest_moment_and_the_earliest():
    """Newest first in, one line out: its moment the newest, ``first_at`` the earliest."""
    now = utcnow()
    lines = [LogLine(now - timedelta(minutes=m), "a", "k", "d", None) for m in (0, 1, 2)] + [
        LogLine(now - timedelta(minutes=3), "b", "k", "d", None)
    ]
    [three, one] = collapse(lines)
    assert (three.count, three.at, three.first_at) == (3, now, now - timedelta(minutes=2))
    assert (one.count, one.actor) == (1, "b")


def test_redacted_lines_of_two_private_pull_requests_stay_two():
    """Two private pull requests read alike once redacted; their events are not folded into one line."""
    now = utcnow()
    events = [
        AuditEvent(
            at=now, actor="gatekeeper", kind="gate_waiting", repo=f"o/secret{n}", pr_number=n
        )
        for n in (1, 2)
    ]
    hidden = frozenset({"o/secret1", "o/secret2"})
    lines = collapse(LogLine.of(event, hidden=hidden) for event in events)
    assert [(line.pull, line.count) for line in lines] == [(PRIVATE_PULL, 1), (PRIVATE_PULL, 1)]
    again = collapse(LogLine.of(event, hidden=hidden) for event in [events[0], events[0]])
    assert [line.count for line in again] == [2]


# ---------------------------------------------------------------- in a browser


def close_merged(live: Live, number: int, *, author: str, head_sha: str, by: str) -> None:
    """Merged on GitHub, and its ``pull_request`` closed event, signed, over HTTP."""
    live.fake.merge(LIVE_REPO, number, merged_by=by)
    at = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    payload = live.events.pull_request(
        "closed",
        number=number,
        author=author,
        head_sha=head_sha,
        updated_at=at,
        merged=True,
        merged_by=by,
    )
    body = requests.models.complexjson.dumps(payload).encode()
    response = requests.post(
        f"{live.url}/webhooks/github",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": f"merged-{number}",
            "X-Hub-Signature-256": signed(WEBHOOK_SECRET, body),
        },
        timeout=10,
    )
    assert response.status_code == 202, response.text
    live.wait_for(lambda: live.applied(f"merged-{number}"))


@pytest.mark.browser
def test_the_maintainer_edits_the_scope_and_acknowledges_a_bypass(browser, live: Live):
    """In Chromium: #7 waits; the maintainer narrows the scope to python/peps on the mentee
    page and GitHub's check turns green; #8 merged past its gate is on /me, acknowledged
    there with a note, and the pull request page shows the note."""
    from test_browser import sign_in

    from gate_support import promote

    promote(live.app, "mpage", ("colesbury", "vstinner"), actor="boss", bypass_alerts=False)
    live.open_pull(7, author="mpage", head_sha="7" * 40)
    live.open_pull(8, author="mpage", head_sha="8" * 40)
    live.wait_for(lambda: (live.check("7" * 40) or {}).get("conclusion") == "action_required")
    close_merged(live, 8, author="mpage", head_sha="8" * 40, by="mpage")

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(live.url + "/")
        sign_in(page, live, "boss")
        page.goto(live.url + "/mentorships/mpage")
        page.get_by_text("Change the terms").click()
        page.get_by_label("Repositories (OWNER/REPO, one per line)").fill("python/peps")
        screenshot(page, "maintainer-01-terms")
        page.get_by_role("button", name="Save the terms").click()
        page.get_by_text("Terms changed").wait_for()
        live.wait_for(lambda: (live.check("7" * 40) or {}).get("conclusion") == "success")
        log = page.locator("table.audit").inner_text()
        assert "repositories: every repository → python/peps" in log

        page.goto(live.url + "/me")
        needs_list = page.locator("#needs")
        assert f"{LIVE_REPO}#8" in needs_list.inner_text()
        screenshot(page, "maintainer-02-needs")
        needs_list.get_by_label(f"Note on {LIVE_REPO}#8 (optional)").fill(NOTE)
        needs_list.get_by_role("button", name="Acknowledge").click()
        page.get_by_text(f"Bypass of {LIVE_REPO}#8 acknowledged.").wait_for()
        assert "Nothing needs a maintainer right now" in page.locator("#needs").inner_text()

        page.goto(live.url + f"/pulls/{LIVE_REPO}/8")
        assert NOTE in page.locator("#acknowledged").inner_text()
        screenshot(page, "maintainer-03-acknowledged")
    finally:
        context.close()


# ---------------------------------------------------------------- the command line


def test_gatekeeper_change_edits_the_terms_and_the_gates_follow(site: Site):
    """``gatekeeper change mpage --approvals 1``: #7 (one approval of two) is approved, the
    change audited by --by; the same again says nothing changed; too many is refused."""
    from gatekeeper.cli import cli

    site.promote(approvals_required=2)
    site.pull(7)
    site.review(7, "colesbury")
    runner = site.app.test_cli_runner()

    result = runner.invoke(cli, ["change", "mpage", "--approvals", "1", "--by", "boss"])
    assert result.exit_code == 0, result.output
    assert "mpage: approvals required: 2 → 1" in result.output
    assert site.stored_pull(7).gate == "approved"
    [event] = events(site, "terms_changed")
    assert event.actor == "boss"

    again = runner.invoke(cli, ["change", "mpage", "--approvals", "1", "--by", "boss"])
    assert again.exit_code == 0 and "mpage: nothing changed." in again.output
    refused = runner.invoke(cli, ["change", "mpage", "--approvals", "3", "--by", "boss"])
    assert refused.exit_code == 1 and "3 approvals required but only 2 mentors" in refused.output
    assert len(events(site, "terms_changed")) == 1


def test_gatekeeper_change_scope_and_flags(site: Site):
    """--repo replaces the scope (#7 in python/cpython lifts), --every-repo empties it (#7
    waits again); --keep-approvals-on-push and --no-bypass-alerts turn those off."""
    from gatekeeper.cli import cli

    site.promote(repositories=[REPO])
    site.pull(7)
    runner = site.app.test_cli_runner()
    args = ["change", "mpage", "--by", "boss", "--no-wait"]
    assert runner.invoke(cli, [*args, "--repo", "python/peps"]).exit_code == 0
    assert site.stored_pull(7).gate == "lifted"
    result = runner.invoke(
        cli, [*args, "--every-repo", "--keep-approvals-on-push", "--no-bypass-alerts"]
    )
    assert result.exit_code == 0, result.output
    assert site.stored_pull(7).gate == "waiting"
    m = site.mentorship()
    assert (m.repositories, m.dismiss_stale_approvals, m.bypass_alerts) == ([], False, False)
    both = runner.invoke(cli, [*args, "--every-repo", "--repo", REPO])
    assert both.exit_code != 0 and "not both" in both.output


def test_a_stale_terms_form_does_not_undo_a_change_made_since(site: Site):
    """Two maintainers open the form; the second one's save, made on what they were shown,
    is refused (409) instead of quietly reverting the first one's repository."""
    site.promote(repositories=[REPO])
    site.sign_in("boss")
    page = site.page("/mentorships/mpage")
    shown = re.search(r'<input[^>]*name="seen"[^>]*value="([0-9a-f]+)"', page)
    assert shown is not None, "the form carries which terms it showed"
    first = site.post("/mentorships/mpage/terms", terms(site, repositories=f"{REPO}\npython/peps"))
    assert first.status_code == 302
    stale = terms(site, note="Only a note.", repositories=REPO, seen=shown.group(1))
    response = site.post("/mentorships/mpage/terms", stale)
    assert response.status_code == 409
    assert "changed since you opened this page" in response.get_data(as_text=True)
    mentorship = site.mentorship()
    assert mentorship.repositories == ["python/cpython", "python/peps"]
    assert mentorship.note is None
    [change] = events(site, "terms_changed")
    assert change.actor == "boss" and "python/peps" in change.detail


def test_the_terms_form_can_ask_for_a_new_approval_on_every_push(site: Site):
    """Unticking 'an approval holds for a push with the same content' is one audited change."""
    site.promote()
    site.sign_in("boss")
    response = site.post("/mentorships/mpage/terms", terms(site, same_content_approvals=False))
    assert response.status_code == 302
    assert site.mentorship("mpage").same_content_approvals is False
    [event] = events(site, "terms_changed")
    assert event.detail == "an approval holds for a push with the same content: yes → no"


# ---------------------------------------------------------------- the maintainer's landing page


def test_the_landing_page_shows_a_maintainer_what_waits(site: Site):
    """A bypass not acknowledged and a pull request waiting 3 days are on a maintainer's `/`,
    with a link to /me that counts the whole list; a pull request waiting an hour is not."""
    site.promote("mpage", days=3)  # ends in 2 days: on /me's list, not in the urgent part
    site.pull(7, title="Waited long")
    site.pull(9, title="Waited an hour")
    site.pull(8, title="Merged past the gate")
    site.pull(8, title="Merged past the gate", merged=True)
    with site.session() as session:
        for number, waited in ((7, timedelta(days=3)), (9, timedelta(hours=1))):
            pull = session.exec(select(PullRequest).where(PullRequest.number == number)).one()
            pull.waiting_since = utcnow() - waited
            session.add(pull)
        session.commit()

    site.sign_in("boss")
    page = site.page("/")
    panel = page[
        page.index('id="for-maintainer"') : page.index(
            "</section>", page.index('id="for-maintainer"')
        )
    ]
    assert "What waits for you: 2" in panel
    assert f'href="/pulls/{REPO}/8"' in panel and f'href="/pulls/{REPO}/7"' in panel
    assert f'href="/pulls/{REPO}/9"' not in panel
    # The bypass, the long wait and the month ending within 3 days.
    assert '<a class="button" href="/me#needs">Your list: 3 things to look at</a>' in panel
    assert 'href="/admin/health"' in panel and 'href="/past-mentorships"' in panel


def test_the_landing_page_says_when_nothing_waits_and_only_maintainers_see_it(bypassed: Site):
    """Once the bypass is acknowledged the panel says nothing waits; a mentor and a visitor
    see no maintainer's panel."""
    bypassed.sign_in("boss")
    bypassed.post(f"/pulls/{REPO}/8/acknowledge", {"note": NOTE})
    page = bypassed.page("/")
    assert "What waits for you</h2>" in page
    assert "No unacknowledged bypass and no pull request waiting more than 2 days." in page
    bypassed.sign_in("colesbury")
    assert 'id="for-maintainer"' not in bypassed.page("/")
    bypassed.client.post("/logout", data={"csrf_token": bypassed.token()})
    assert 'id="for-maintainer"' not in bypassed.page("/")


def test_every_mentor_away_is_a_hook_that_lists_nothing_yet(bypassed: Site):
    """The list of mentorships whose every mentor is away is empty until mentors can be away;
    the panel counts it with the bypasses and long waits."""
    with bypassed.session() as session:
        found = needs.for_maintainer(session, now=utcnow())
        assert needs.every_mentor_away(session, now=utcnow()) == []
    assert found.unattended == [] and found.urgent == 1 and found.count == 1


def test_me_links_the_health_page_and_the_past_mentorships(site: Site):
    """A maintainer's /me links /admin/health and the past mentorships; a mentor's does not."""
    site.promote()
    site.sign_in("boss")
    page = site.page("/me")
    assert 'href="/admin/health"' in page and 'href="/past-mentorships"' in page
    site.sign_in("colesbury")
    assert 'href="/admin/health"' not in site.page("/me")


# ---------------------------------------------------------------- all past mentorships


def ended_mentorships(site: Site, count: int) -> None:
    """``count`` mentorships (mentee-00, mentee-01, ...) started and ended in turn, the
    latest ending last."""
    start = utcnow() - timedelta(days=400)
    with site.session() as session:
        for index in range(count):
            at = start + timedelta(days=10 * index)
            lifecycle.promote(
                session, mentee=f"mentee-{index:02}", mentors=["colesbury"], actor="boss",
                now=at, start=at,
            )  # fmt: skip
            lifecycle.end(
                session, mentee=f"mentee-{index:02}", reason="graduated", actor="boss",
                now=at + timedelta(days=5),
            )  # fmt: skip
        session.commit()


def mentees_listed(page: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/mentorships/([\w-]+)">', page)


def test_every_past_mentorship_is_listed_a_page_at_a_time(site: Site):
    """30 ended mentorships: the overview shows the 10 latest and links the list, whose first
    page holds the 25 latest, newest first, and whose second the 5 oldest."""
    ended_mentorships(site, 30)
    overview = site.page("/")
    assert '<a href="/past-mentorships">All past mentorships</a>' in overview
    first = site.page("/past-mentorships")
    assert mentees_listed(first) == [f"mentee-{i:02}" for i in range(29, 4, -1)]
    assert "30 past mentorships, page 1 of 2." in first
    assert 'rel="next" href="/past-mentorships?page=2"' in first and 'rel="prev"' not in first
    second = site.page("/past-mentorships?page=2")
    assert mentees_listed(second) == [f"mentee-{i:02}" for i in range(4, -1, -1)]
    assert 'rel="prev" href="/past-mentorships?page=1"' in second
    assert "ended early; was due" in second
    assert "There is no page 3" in site.page("/past-mentorships?page=3")


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("mentee-2", [f"mentee-{i:02}" for i in range(29, 19, -1)]),
        ("@MENTEE-07", ["mentee-07"]),
        ("%", []),
        ("_", []),
    ],
    ids=["part-of-a-login", "at-and-any-case", "percent-is-no-wildcard", "underscore-too"],
)
def test_past_mentorships_are_searched_by_login(site: Site, typed: str, found: list[str]):
    """The search matches part of the mentee's login, whatever its case, with or without @;
    SQL's wildcards typed in it match only themselves."""
    ended_mentorships(site, 30)
    page = site.client.get("/past-mentorships", query_string={"q": typed})
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert mentees_listed(body) == found
    if not found:
        assert "No past mentorship of a mentee whose login contains" in body


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"page": "0"}, "The page number must be a whole number from 1."),
        ({"page": "two"}, "The page number must be a whole number from 1."),
        ({"q": "x" * 40}, "A GitHub login has at most 39 characters."),
    ],
    ids=["page-zero", "page-words", "search-too-long"],
)
def test_a_bad_page_or_search_is_a_clear_400(site: Site, query, message):
    """A page that is no number from 1, or a search longer than any login: 400, said why."""
    page = site.client.get("/past-mentorships", query_string=query)
    assert page.status_code == 400
    main = page.get_data(as_text=True).split("<main", 1)[1]
    assert message in main and "x" * 40 not in main  # the value is not echoed


def test_no_past_mentorship_yet_says_so(site: Site):
    """Before any mentorship ended the list says so."""
    site.promote()
    assert "No mentorship has ended yet." in site.page("/past-mentorships")
