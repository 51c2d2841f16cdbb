"""The dashboard through Flask's test client: every page, every action for every role, every refusal.

CSRF protection stays on, as in production: each POST carries the token read from a rendered page.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from dashboard_support import NEW_SHA, REPO, SHA, TOKEN, Site
from gatekeeper import create_app, votes
from gatekeeper import mentorships as lifecycle
from gatekeeper.models import utcnow


@pytest.fixture
def web_app(tmp_path, migrated_sqlite) -> Iterator[Flask]:
    """The app on a fresh migrated SQLite file, CSRF on, with ``boss`` as the one maintainer."""
    path = tmp_path / "web.sqlite"
    shutil.copyfile(migrated_sqlite, path)
    app = create_app(
        {"database_url": f"sqlite:///{path}", "secret_key": "test", "maintainers": "boss"}
    )
    yield app
    app.extensions["gatekeeper.engine"].dispose()


@pytest.fixture
def site(web_app) -> Site:
    return Site(web_app)


@pytest.fixture
def month(site: Site) -> Site:
    """mpage mentored by colesbury and vstinner with PR #7 waiting; sobolevn mentored by picnixz."""
    site.promote()
    site.promote("sobolevn", ["picnixz"])
    site.pull(7)
    return site


# ---------------------------------------------------------------- who may do what

ACTIONS = {
    "start": (
        "/mentorships/new",
        {"mentee": "eclips4", "mentors": "ambv", "approvals_required": "1"},
    ),
    "extend": ("/mentorships/mpage/extend", {"days": "3"}),
    "end": ("/mentorships/mpage/end", {"reason": "graduated", "note": "ready early"}),
    "add_mentor": ("/mentorships/mpage/mentors", {"login": "hugovk"}),
    "remove_mentor": ("/mentorships/mpage/mentors/vstinner/remove", {}),
    "approve": (f"/pulls/{REPO}/7/approve", {"head_sha": SHA}),
}
# The audit event each action leaves when it succeeds.
AUDITED = {
    "start": ("boss", "created"),
    "extend": ("boss", "extended"),
    "end": ("boss", "ended"),
    "add_mentor": ("boss", "mentor_added"),
    "remove_mentor": ("boss", "mentor_removed"),
    "approve": ("colesbury", "approval"),
}
VISITORS = {
    "maintainer": "boss",
    "mentor": "colesbury",
    "mentee": "mpage",
    "mentor of another mentee": "picnixz",
    "stranger": "someone",
}
ALLOWED = {("maintainer", a) for a in ACTIONS if a != "approve"} | {("mentor", "approve")}


@pytest.mark.parametrize("visitor", VISITORS)
@pytest.mark.parametrize("action", ACTIONS)
def test_each_role_can_do_exactly_its_own_actions(month: Site, action: str, visitor: str):
    """Maintainers change mentorships, the mentee's own mentors approve; everyone else gets 403."""
    path, data = ACTIONS[action]
    month.sign_in(VISITORS[visitor])
    before = month.audit()
    response = month.post(path, data)
    if (visitor, action) in ALLOWED:
        assert response.status_code == 302, response.get_data(as_text=True)
        assert AUDITED[action] in month.audit()[len(before) :]
    else:
        assert response.status_code == 403
        body = response.get_data(as_text=True)
        assert "can&#39;t do that" in body or "can't do that" in body
        assert month.audit() == before


@pytest.mark.parametrize("action", ACTIONS)
def test_signed_out_visitors_are_sent_to_sign_in(month: Site, action: str):
    """A form posted after the sign-in lapsed redirects to sign-in and changes nothing."""
    path, data = ACTIONS[action]
    month.sign_in("boss")
    token = month.token()
    month.sign_out()
    before = month.audit()
    response = month.post(path, data, token=token)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert month.audit() == before


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("token", ["", "not-the-token"], ids=["missing", "wrong"])
def test_a_missing_or_wrong_csrf_token_is_refused(month: Site, action: str, token: str):
    """Without the page's CSRF token nothing changes, whoever is signed in."""
    path, data = ACTIONS[action]
    month.sign_in("colesbury" if action == "approve" else "boss")
    before = month.audit()
    response = month.post(path, data, token=token)
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert month.audit() == before


def test_forbidden_page_says_why(month: Site):
    """The 403 page names the rule and who the visitor is."""
    month.sign_in("someone")
    body = month.post(*ACTIONS["extend"]).get_data(as_text=True)
    assert "Only maintainers can extend mentorships" in body
    assert "signed in as someone" in body


def test_a_mentor_of_another_mentee_is_told_who_can_approve(month: Site):
    """picnixz mentors sobolevn, not mpage: the refusal says whose mentors may approve."""
    month.sign_in("picnixz")
    response = month.post(*ACTIONS["approve"])
    assert response.status_code == 403
    assert "only mentors of mpage can approve" in response.get_data(as_text=True)
    assert month.stored_pull().gate == "waiting"


# ---------------------------------------------------------------- maintainers' actions


def test_extend_moves_the_end_and_extending_needs_days_or_a_date(month: Site):
    """Days are added to the end; a form with neither days nor a date is a 400."""
    old_end = month.mentorship().ends_at
    month.sign_in("boss")
    assert month.post("/mentorships/mpage/extend", {"days": "5"}).status_code == 302
    assert month.mentorship().ends_at == old_end + timedelta(days=5)
    response = month.post("/mentorships/mpage/extend", {})
    assert response.status_code == 400
    assert "Give either a number of days or an end date" in response.get_data(as_text=True)


def test_extend_to_an_earlier_date_is_refused_with_the_lifecycle_message(month: Site):
    """The lifecycle's refusal is shown as it is, with 400, and nothing is written."""
    month.sign_in("boss")
    before = month.audit()
    response = month.post("/mentorships/mpage/extend", {"until": "2000-01-01"})
    assert response.status_code == 400
    assert "already runs until" in response.get_data(as_text=True)
    assert month.audit() == before


def test_end_has_a_confirm_step_and_lifts_the_gate(month: Site):
    """GET shows what ending does; POST ends it and re-evaluates the open pull request at once."""
    month.sign_in("boss")
    confirm = month.page("/mentorships/mpage/end")
    assert "1 pull request waiting for a mentor will turn green" in confirm
    response = month.post(
        "/mentorships/mpage/end",
        {"reason": "revoked", "note": "asked"},
        token=TOKEN.search(confirm).group(1),
    )
    assert response.status_code == 302
    ended = month.mentorship()
    assert (ended.end_reason, ended.end_note, ended.ended_by) == ("revoked", "asked", "boss")
    # It still waited when the gate lifted: its record says so, and its check goes green.
    lifted = month.stored_pull()
    assert lifted.gate == "lifted" and lifted.lifted_at is not None
    assert lifted.gate_title == "Mentorship ended"


def test_end_without_a_reason_asks_for_one(month: Site):
    """The reason is required; the confirm page comes back with the error."""
    month.sign_in("boss")
    response = month.post("/mentorships/mpage/end", {"note": "x"})
    assert response.status_code == 400
    assert "Choose graduated or revoked" in response.get_data(as_text=True)
    assert month.mentorship().ended_at is None


def test_ending_twice_is_a_conflict(month: Site):
    """The second end finds the mentorship already ended: 409, one 'ended' event only."""
    month.sign_in("boss")
    assert month.post(*ACTIONS["end"]).status_code == 302
    second = month.post(*ACTIONS["end"])
    assert second.status_code == 409
    assert "already ended" in second.get_data(as_text=True)
    assert [kind for _, kind in month.audit()].count("ended") == 1


def test_extending_an_ended_mentorship_is_a_conflict(month: Site):
    """An ended mentorship cannot be extended; start a new one instead."""
    month.sign_in("boss")
    month.post(*ACTIONS["end"])
    response = month.post(*ACTIONS["extend"])
    assert response.status_code == 409
    assert "already ended" in response.get_data(as_text=True)


def test_confirm_page_of_an_ended_mentorship_is_a_conflict(month: Site):
    """The end page itself says the mentorship is over."""
    month.sign_in("boss")
    month.post(*ACTIONS["end"])
    assert month.client.get("/mentorships/mpage/end").status_code == 409


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("/mentorships/mpage/mentors", {"login": "colesbury"}, "colesbury already mentors mpage"),
        ("/mentorships/mpage/mentors", {"login": "mpage"}, "cannot be their own mentor"),
        ("/mentorships/mpage/mentors", {"login": "not a login!"}, "not a valid GitHub login"),
        ("/mentorships/mpage/mentors", {}, "Type the GitHub login"),
        ("/mentorships/mpage/mentors/hugovk/remove", {}, "hugovk is not a mentor of mpage"),
    ],
)
def test_mentor_changes_refused_by_the_lifecycle(month: Site, path, data, message):
    """Each refusal is a 400 with the lifecycle's own words; nothing is written."""
    month.sign_in("boss")
    before = month.audit()
    response = month.post(path, data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert month.audit() == before


def test_the_last_mentor_cannot_be_removed(site: Site):
    """A mentorship keeps at least as many mentors as approvals require."""
    site.promote("sobolevn", ["picnixz"])
    site.sign_in("boss")
    response = site.post("/mentorships/sobolevn/mentors/picnixz/remove")
    assert response.status_code == 400
    assert "add another before removing" in response.get_data(as_text=True)


def test_adding_a_mentor_takes_effect_on_the_page(month: Site):
    """After adding, the mentor is listed and their approval counts."""
    month.sign_in("boss")
    month.post("/mentorships/mpage/mentors", {"login": "HugoVK"})
    assert "HugoVK" in month.page("/mentorships/mpage")
    month.sign_in("hugovk")
    assert month.post(*ACTIONS["approve"]).status_code == 302
    assert month.stored_pull().gate == "approved"


def test_unknown_mentee_actions_are_404(site: Site):
    """Changing a mentorship that does not exist is a 404, not a crash."""
    site.sign_in("boss")
    assert site.post("/mentorships/nobody/extend", {"days": "1"}).status_code == 404
    assert site.client.get("/mentorships/nobody").status_code == 404


# ---------------------------------------------------------------- starting a mentorship

VOTE = {
    "votes_for": "30",
    "votes_against": "2",
    "vote_opened": "2024-11-01",
    "vote_closed": "2024-11-08",
}
FAILING_VOTE = {**VOTE, "votes_for": "5", "votes_against": "5"}


def start_form(**fields: str) -> dict[str, str]:
    return {
        "mentee": "MPage",
        "mentors": "colesbury, vstinner",
        "approvals_required": "1",
        "dismiss_stale_approvals": "y",
        "same_content_approvals": "y",
        "action": "start",
        **fields,
    }


def test_start_creates_the_mentorship_with_every_setting(site: Site):
    """The form's fields reach the lifecycle: scope, approvals, stale rule, vote, length."""
    site.sign_in("boss")
    form = start_form(
        repositories="python/cpython\npython/devguide",
        approvals_required="2",
        gate_approved_prs="y",
        days="40",
        vote_url="https://discuss.python.org/t/1",
        **VOTE,
    )
    del form["dismiss_stale_approvals"]
    response = site.post("/mentorships/new", form, token=site.token("/mentorships/new"))
    assert response.status_code == 302
    assert response.headers["Location"] == "/mentorships/MPage"
    m = site.mentorship()
    assert (m.mentee, m.mentee_display, m.created_by) == ("mpage", "MPage", "boss")
    assert m.repositories == ["python/cpython", "python/devguide"]
    assert (m.approvals_required, m.dismiss_stale_approvals, m.gate_approved_prs) == (
        2,
        False,
        True,
    )
    assert (m.ends_at - m.started_at).days == 40
    assert (m.votes_for, m.vote_url) == (30, "https://discuss.python.org/t/1")


def test_start_with_a_start_time_and_end_date(site: Site):
    """A future start makes a scheduled mentorship; the end date is midnight UTC."""
    site.sign_in("boss")
    site.post("/mentorships/new", start_form(start="2099-01-01T09:30", until="2099-02-15"))
    m = site.mentorship()
    assert m.started_at == datetime(2099, 1, 1, 9, 30, tzinfo=UTC)
    assert m.ends_at == datetime(2099, 2, 15, tzinfo=UTC)
    assert "Scheduled to start" in site.page("/")


def test_check_the_vote_previews_pep13_without_saving(site: Site):
    """'Check the vote' shows the PEP 13 result and writes nothing."""
    site.sign_in("boss")
    body = site.post("/mentorships/new", start_form(action="preview", **FAILING_VOTE)).get_data(
        as_text=True
    )
    assert "Fails PEP 13: 5 of 10 votes in favour is less than two-thirds" in body
    assert site.audit() == []
    passing = site.post("/mentorships/new", start_form(action="preview", **VOTE))
    assert "Meets PEP 13" in passing.get_data(as_text=True)


def test_a_failing_vote_needs_an_override_reason(site: Site):
    """Without a reason: 400 and nothing saved; with one: started, and the override is audited."""
    site.sign_in("boss")
    refused = site.post("/mentorships/new", start_form(**FAILING_VOTE))
    assert refused.status_code == 400
    assert "say why this promotion should stand anyway" in refused.get_data(as_text=True)
    assert site.audit() == []
    accepted = site.post(
        "/mentorships/new", start_form(override_reason="SC approved by email", **FAILING_VOTE)
    )
    assert accepted.status_code == 302
    assert ("boss", "pep13_override") in site.audit()
    assert "SC approved by email" in site.page("/mentorships/mpage")


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"mentors": "mpage"}, 400, "cannot be their own mentor"),
        ({"mentee": ""}, 400, "Needs the new core developer's GitHub login"),
        ({"approvals_required": "3"}, 400, "3 approvals required but only 2 mentors"),
        ({"votes_for": "3"}, 400, "the promotion vote is incomplete"),
        ({"repositories": "not-a-repo"}, 400, "not a repository name"),
        ({"days": "0"}, 400, "Number must be between"),
    ],
)
def test_start_refusals(site: Site, fields, status, message):
    """Bad input is a 400 showing why, with nothing written."""
    site.sign_in("boss")
    response = site.post("/mentorships/new", start_form(**fields))
    assert response.status_code == status
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    assert site.audit() == []


def test_a_second_mentorship_for_an_active_mentee_is_a_conflict(month: Site):
    """mpage already has an active mentorship: 409."""
    month.sign_in("boss")
    response = month.post("/mentorships/new", start_form())
    assert response.status_code == 409
    assert "already has an active mentorship" in response.get_data(as_text=True)


def test_starting_gates_an_already_open_pull_request_at_once(site: Site):
    """A PR opened before the promotion becomes gated when the mentorship starts."""
    site.pull(7)
    assert site.stored_pull().gate == "not_required"
    site.sign_in("boss")
    site.post("/mentorships/new", start_form())
    assert site.stored_pull().gate == "waiting"


def test_only_maintainers_see_the_start_form(month: Site):
    """The form and the overview's button are for maintainers."""
    month.sign_in("colesbury")
    assert month.client.get("/mentorships/new").status_code == 403
    assert "Start a mentorship" not in month.page("/")
    month.sign_in("boss")
    assert "Start a mentorship" in month.page("/")


# ---------------------------------------------------------------- approving


def test_a_mentor_approves_from_the_pull_request_page(month: Site):
    """The button records a dashboard approval on the head sha and the gate turns approved."""
    month.sign_in("colesbury")
    page = month.page(f"/pulls/{REPO}/7")
    assert "Approve merge" in page
    response = month.post(
        f"/pulls/{REPO}/7/approve", {"head_sha": SHA}, token=TOKEN.search(page).group(1)
    )
    assert response.status_code == 302
    pull = month.stored_pull()
    assert (pull.gate, pull.approved_by) == ("approved", ["colesbury"])
    after = month.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "GitHub is not configured here, so the check will be posted once it is." in after
    assert "Approve merge</button>" not in after


def test_approving_an_outdated_page_is_refused(month: Site):
    """New commits since the page was loaded: 409, the mentor looks again."""
    month.pull(7, head_sha=NEW_SHA)
    month.sign_in("colesbury")
    response = month.post(f"/pulls/{REPO}/7/approve", {"head_sha": SHA})
    assert response.status_code == 409
    assert "New commits arrived" in response.get_data(as_text=True)
    assert month.stored_pull().gate == "waiting"


def test_approving_a_closed_pull_request_is_refused(month: Site):
    """A closed pull request takes no approval."""
    month.pull(7, state="closed")
    month.sign_in("colesbury")
    response = month.post(*ACTIONS["approve"])
    assert response.status_code == 409
    assert "the pull request is closed" in response.get_data(as_text=True)


def test_approving_an_unknown_pull_request_is_404(month: Site):
    month.sign_in("colesbury")
    assert month.post(f"/pulls/{REPO}/999/approve", {"head_sha": SHA}).status_code == 404


def test_approval_on_the_dashboard_posts_the_check_to_github(world):
    """Against the fake GitHub: the mentor's button turns the check run success on the
    worker's next step."""
    world.promote()
    world.open_pull(7)
    assert world.check()["conclusion"] == "action_required"
    site = Site(world.app)
    site.sign_in("colesbury")
    response = site.post(f"/pulls/{REPO}/7/approve", {"head_sha": SHA})
    assert response.status_code == 302
    assert len(world.work().posted) == 1
    run = world.check()
    assert run["conclusion"] == "success"
    assert run["output"]["title"] == "Approved by @colesbury"


def test_approving_does_not_wait_for_github(world):
    """The approval is stored with its commit's new desired check; the page does not call
    GitHub but says the check is being updated, and a worker posts it."""
    world.promote()
    world.open_pull(7)
    world.fake.reset_calls()
    site = Site(world.app)
    site.sign_in("colesbury")
    response = site.post(f"/pulls/{REPO}/7/approve", {"head_sha": SHA})
    assert [c for c in world.fake.calls if not c.path.startswith("/user")] == []
    body = site.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "being updated" in body
    assert "The check on GitHub: being updated." in body
    assert world.pull(7).gate == "approved" and world.pending_posts() == 1
    world.work()
    assert world.check()["conclusion"] == "success" and world.pending_posts() == 0
    assert "The check on GitHub: posted." in site.page(f"/pulls/{REPO}/7")


def test_the_pull_request_page_says_why_a_check_is_not_on_github(world):
    """A post that keeps failing shows its reason and that it is retried; a refusal for good
    shows that it was given up, with GitHub's reason."""
    world.promote()
    world.fake.fail_next("POST", r"/repos/.+/check-runs", status=502)
    world.open_pull(7)
    site = Site(world.app)
    assert "the last try failed (GitHub answered 502" in site.page(f"/pulls/{REPO}/7")
    world.fake.fail_next("POST", r"/repos/.+/check-runs", status=422)
    world.retry_now()
    world.work()
    assert "not posted: GitHub refused it (GitHub answered 422" in site.page(f"/pulls/{REPO}/7")


# ---------------------------------------------------------------- reading


def test_empty_database_says_what_to_do_next(site: Site):
    """No mentorships yet: the overview explains the next steps, never a blank page."""
    body = site.page("/")
    assert "No mentorships yet" in body
    assert "gatekeeper promote" in body and "gatekeeper demo" in body


def test_overview_shows_progress_counts_and_role(month: Site):
    """Day N of M, ends in N days, counts, and for a mentor what waits for them."""
    month.pull(8, merged=True)
    month.review(7, "colesbury", id=1)  # #7 approved
    month.pull(9)  # waiting
    month.sign_in("vstinner")
    body = month.page("/")
    assert "Day 2 of 30" in body or "Day 2 of 31" in body or "Day 2 of 28" in body
    assert re.search(
        r"\d+ days left, ends <time[^>]*>\w{3} \d+, \d{4}"
        r"<span class=\"exact\"> \(\w{3} \d+, \d{4}, \d\d:\d\d UTC\)</span></time>",
        body,
    )
    assert "<strong>1</strong> waiting" in body
    assert "<strong>1</strong> approved" in body
    assert "<strong>1</strong> bypassed" in body
    assert "1 PR waits for you" in body
    assert "You mentor" in body


def test_the_mentee_is_told_plainly_what_blocks_them(month: Site):
    """The mentee's own page names the mentors to ask, for each waiting pull request."""
    month.sign_in("mpage")
    body = month.page("/mentorships/mpage")
    assert "This is your first month as a core developer" in body
    assert "1 of your pull requests is waiting" in body
    assert "Waits for a mentor: ask @colesbury or @vstinner." in body


def test_mentee_page_shows_timeline_promotion_table_and_audit(site: Site):
    """Everything about the month on one page."""
    site.promote(
        vote=votes.Vote(4, 4, datetime(2024, 11, 1).date(), datetime(2024, 11, 3).date()),
        override_reason="the SC agreed",
    )
    site.pull(7, title="Fix <b>everything</b>")
    body = site.page("/mentorships/mpage")
    assert '<figure class="timeline">' in body
    assert "Does not meet PEP 13: 4 of 8 votes in favour is less than two-thirds" in body
    assert "Promoted anyway because: <em>the SC agreed</em>" in body
    assert "python/cpython#7" in body and "Fix &lt;b&gt;everything&lt;/b&gt;" in body
    assert "started the mentorship" in body and "now waiting for a mentor" in body


def test_actions_shown_follow_the_role(month: Site):
    """Maintainers see the change forms; mentors, mentees and strangers do not."""
    for login in ("colesbury", "mpage", "someone"):
        month.sign_in(login)
        assert "Change this mentorship" not in month.page("/mentorships/mpage")
    month.sign_in("boss")
    assert "Change this mentorship" in month.page("/mentorships/mpage")


def test_pull_request_page_explains_which_approvals_count(month: Site):
    """A stale approval, a non-mentor's, a dismissed one and changes requested, each explained."""
    month.review(7, "vstinner", id=1)
    month.pull(7, head_sha=NEW_SHA)  # vstinner's approval is now on an older commit
    month.review(7, "picnixz", commit_id=NEW_SHA, id=2)
    month.review(7, "colesbury", commit_id=NEW_SHA, state="CHANGES_REQUESTED", id=3)
    body = month.page(f"/pulls/{REPO}/7").replace("&#39;", "'")
    assert "mpage is in their first month as a core developer" in body
    assert (
        "Who can approve:</strong> <strong>@colesbury</strong> or <strong>@vstinner</strong>"
        in body
    )
    assert "doesn't count: given on an older commit (aaaaaaa)" in body
    assert "doesn't count: not a mentor of mpage" in body
    assert "doesn't count: asked for changes; a new approval is needed" in body


def test_pull_request_page_for_other_roles(month: Site):
    """Non-mentors are told who can approve; the mentee sees no button."""
    month.sign_in("boss")
    assert (
        "Only <strong>@colesbury</strong> or <strong>@vstinner</strong> can approve"
        in month.page(f"/pulls/{REPO}/7")
    )
    month.sign_in("mpage")
    assert "Approve merge</button>" not in month.page(f"/pulls/{REPO}/7")


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("bypassed", "Gatekeeper recorded this as a bypass"),
        ("stranger", "The author is not under mentorship here"),
        ("ended", "It waited for a mentor's approval"),
    ],
)
def test_pull_request_page_in_each_other_state(site: Site, setup, expected):
    """Bypassed, not gated and lifted pull requests each say why."""
    if setup == "bypassed":
        site.promote()
        site.pull(7)
        site.pull(7, merged=True)
    elif setup == "stranger":
        site.pull(7, author="someone")
    else:
        site.promote()
        site.pull(7)
        with site.session() as session:
            lifecycle.end(session, mentee="mpage", reason="graduated", actor="boss", now=utcnow())
            session.commit()
        site.pull(7)
    assert expected in site.page(f"/pulls/{REPO}/7").replace("&#39;", "'")


def test_unknown_pull_request_is_a_404_in_the_layout(site: Site):
    response = site.client.get(f"/pulls/{REPO}/404")
    assert response.status_code == 404
    assert "has not seen python/cpython#404" in response.get_data(as_text=True)
    assert "<header" in response.get_data(as_text=True)


def test_unknown_page_and_api_errors_keep_their_formats(site: Site):
    """HTML 404 for pages; JSON for /api and /webhooks."""
    page = site.client.get("/no/such/page")
    assert page.status_code == 404 and "Nothing here" in page.get_data(as_text=True)
    api = site.client.get("/api/mentorships/nobody")
    assert api.status_code == 404 and api.get_json() == {"error": "nobody has no mentorship"}
    assert site.client.get("/api/nothing").get_json() is not None


def test_me_sends_each_person_to_what_concerns_them(month: Site):
    """The mentee to their page; a mentor to their queue; anyone else to a plain note."""
    assert month.client.get("/me").headers["Location"] == "/login?next=/me"
    month.sign_in("mpage")
    assert month.client.get("/me").headers["Location"] == "/mentorships/mpage"
    month.sign_in("colesbury")
    body = month.page("/me")
    assert "1 pull request waits for you" in body and "python/cpython#7" in body
    month.sign_in("someone")
    assert "Nothing here concerns you right now" in month.page("/me")


def test_times_are_relative_with_the_exact_utc_as_text(month: Site):
    """A relative time ("2 days ago") holds its exact moment as text, in UTC and saying so, so a
    touch screen (tap) and a screen reader reach it; the tooltip says it too for a mouse."""
    body = month.page("/mentorships/mpage")
    assert re.search(
        r'<time datetime="[^"]+\+00:00" class="relative" tabindex="0"'
        r' title="\w{3} \d+, \d{4}, \d\d:\d\d UTC">[^<]+'
        r'<span class="exact"> \(\w{3} \d+, \d{4}, \d\d:\d\d UTC\)</span></time>',
        body,
    )


def test_no_page_loads_anything_from_another_host(month: Site):
    """Stylesheets, scripts, images and icons all come from this site."""
    month.sign_in("boss")
    for path in ("/", "/mentorships/mpage", f"/pulls/{REPO}/7", "/mentorships/new", "/login"):
        body = month.client.get(path).get_data(as_text=True)
        assert not re.search(r'<(script|img|link|iframe)[^>]+(src|href)="(https?:)?//', body), path
        assert "<img" not in body


def test_healthz(site: Site):
    """200 with the database reachable."""
    assert site.client.get("/healthz").get_json() == {"status": "ok"}


def test_healthz_without_a_database(tmp_path):
    """503 when the database does not answer."""
    app = create_app({"database_url": "postgresql://nobody@127.0.0.1:1/none", "secret_key": "x"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    app.extensions["gatekeeper.engine"].dispose()


def test_the_api_serves_the_cli_documents(month: Site):
    """/api/mentorships/<mentee> is the same document as status --json."""
    document = month.client.get("/api/mentorships/mpage").get_json()
    assert document["mentors"] == ["colesbury", "vstinner"]
    assert document["pull_requests"][0]["gate"] == "waiting"


# ---------------------------------------------------------------- bounded queries


def count_queries(app: Flask, client, path: str) -> int:
    """How many SQL statements rendering ``path`` runs."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement != "BEGIN":  # SQLite's transaction start, not a query of the page's
            statements.append(statement)

    engine = app.extensions["gatekeeper.engine"]
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(path).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return len(statements)


def seed(site: Site, mentorships: int, pulls_each: int) -> None:
    """Mentees with two mentors each and some pull requests in various states."""
    for index in range(mentorships):
        mentee = f"mentee-{index}"
        site.promote(mentee, [f"mentor-{index}", "shared-mentor"])
        for number in range(pulls_each):
            site.pull(index * 100 + number, author=mentee, merged=number % 3 == 2)


def test_overview_queries_do_not_grow_with_mentorships(site: Site):
    """3 or 30 mentorships (and their pull requests) render from the same number of queries."""
    seed(site, 3, 3)
    site.sign_in("shared-mentor")
    few = count_queries(site.app, site.client, "/")
    seed_more = Site(site.app)
    for index in range(3, 30):
        seed_more.promote(f"mentee-{index}", [f"mentor-{index}", "shared-mentor"])
        for number in range(3):
            seed_more.pull(index * 100 + number, author=f"mentee-{index}")
    many = count_queries(site.app, site.client, "/")
    assert few == many <= 8


def test_mentee_and_pull_pages_queries_do_not_grow_with_pull_requests(site: Site):
    """The mentee page with 2 or 20 pull requests runs the same number of queries."""
    seed(site, 1, 2)
    few = count_queries(site.app, site.client, "/mentorships/mentee-0")
    for number in range(2, 20):
        site.pull(number, author="mentee-0")
    many = count_queries(site.app, site.client, "/mentorships/mentee-0")
    assert few == many
    assert count_queries(site.app, site.client, f"/pulls/{REPO}/1") <= 10


def test_waiting_counts_ignore_pull_requests_closed_unmerged(site: Site):
    """A waiting PR closed without merging waits for nobody any more."""
    site.promote()
    site.pull(7)
    site.pull(7, state="closed")
    assert "<strong>0</strong> waiting" in site.page("/")


def test_recently_ended_and_scheduled_are_listed_after_active(site: Site):
    """Active first, then scheduled, then recently ended."""
    site.promote("active-one", ["m1"])
    site.promote("later-one", ["m1"], start=utcnow() + timedelta(days=3))
    site.promote("over-one", ["m1"])
    with site.session() as session:
        lifecycle.end(session, mentee="over-one", reason="graduated", actor="boss", now=utcnow())
        session.commit()
    body = site.page("/")
    assert body.index("active-one") < body.index("later-one") < body.index("over-one")
    assert re.search(r"Starts in 3 days \(<time[^>]*>\w{3} \d+, \d{4}<span", body)
