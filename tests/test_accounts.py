"""People are GitHub accounts (people.py): ids learned once, renames followed, a login taken
over gains nothing. Issue #15 item 3, each reproduction first, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import requests
from sqlmodel import select

from database_support import statements_sent
from fakegithub import FakeGitHub, default_user_id
from gate_support import INSTALLATION, REPO, World, app_for
from gatekeeper import db, github_of, people
from gatekeeper import mentorships as lifecycle
from gatekeeper.events import Person
from gatekeeper.models import Account, AuditEvent, Job, Maintainer, MentorAssignment, Review
from gatekeeper.people import JOB

HEAD, NEXT = "a" * 40, "b" * 40
MPAGE, COLESBURY = default_user_id("mpage"), default_user_id("colesbury")
EARLY, LATE = datetime(2024, 11, 12, 15, 30, tzinfo=UTC), datetime(2024, 11, 13, 15, 30, tzinfo=UTC)


def renamed_pull_event(world, *, action="synchronize", number=7, head_sha=NEXT):
    """The mentee, renamed to mpage-renamed on GitHub, as the pull request's author."""
    if action == "synchronize":
        world.fake.push(REPO, number, head_sha)
    return world.events.pull_request(
        action,
        number=number,
        author="mpage-renamed",
        author_id=MPAGE,
        head_sha=head_sha,
        updated_at=world.tick(),
    )


def take_over(fake: FakeGitHub, login: str) -> int:
    """``login``'s account renames itself away and someone else signs up as ``login``."""
    fake.add_user(login)
    fake.rename_user(login, f"{login}-new")
    return fake.add_user(login)["id"]


def mentor_ids(world) -> dict[str, int | None]:
    with world.session() as session:
        return {a.mentor: a.mentor_id for a in session.exec(select(MentorAssignment))}


# ---------------------------------------------------------------- a renamed mentee


def test_a_renamed_mentees_push_stays_gated_and_shows_the_new_login(world):
    """Reproduction: a synchronize whose author is ``mpage-renamed`` (the mentee, same id)
    lifted the waiting PR to green. Now the gate stays and the new login is shown."""
    world.promote()
    world.open_pull()
    assert world.check()["conclusion"] == "action_required"
    world.fake.rename_user("mpage", "mpage-renamed")
    world.send("pull_request", renamed_pull_event(world))
    assert world.check(NEXT)["conclusion"] == "action_required"
    assert "@mpage-renamed is under mentorship" in world.check(NEXT)["output"]["summary"]
    assert (world.pull().author, world.pull().author_id) == ("mpage-renamed", MPAGE)
    with world.session() as session:
        mentorship = lifecycle.latest_mentorship(session, mentee="mpage-renamed")
    assert (mentorship.mentee_display, mentorship.mentee_id) == ("mpage-renamed", MPAGE)


def test_a_new_pull_request_under_the_new_login_is_gated(world):
    """Reproduction: a new PR under the renamed mentee's new login was not gated."""
    world.promote()
    world.open_pull()  # the mentee's id is learned from their first pull request
    world.fake.rename_user("mpage", "mpage-renamed")
    world.fake.add_pull(REPO, 8, author="mpage-renamed", head_sha=NEXT)
    world.send("pull_request", renamed_pull_event(world, action="opened", number=8))
    assert world.check(NEXT)["conclusion"] == "action_required"
    assert world.pull(8).gate == "waiting"


def test_someone_who_takes_the_mentees_old_login_is_not_the_mentee(world):
    """Whoever signs up as ``mpage`` after the mentee renamed away opens a pull request: it
    is not gated (they are not the mentee), and the mentee's gate is untouched."""
    world.promote()
    world.open_pull()
    world.send("pull_request", renamed_pull_event(world))
    newcomer = take_over(world.fake, "mpage")
    world.fake.add_pull(REPO, 9, author="mpage", head_sha="c" * 40)
    payload = world.events.pull_request(
        "opened", number=9, author="mpage", author_id=newcomer, head_sha="c" * 40
    )
    world.send("pull_request", payload)
    assert world.pull(9).gate == "not_required"
    assert world.check("c" * 40)["conclusion"] == "success"
    assert world.pull(7).gate == "waiting"


# ---------------------------------------------------------------- a login taken over


@pytest.fixture
def taken_over(world):
    """mpage's #7 waits; colesbury's id is known (the worker asked GitHub when the mentorship
    began), then colesbury renamed to colesbury-new and a stranger signed up as colesbury."""
    world.fake.add_user("colesbury")
    world.promote()
    world.open_pull()  # the worker runs the learn_account jobs promoting queued
    assert mentor_ids(world)["colesbury"] == COLESBURY
    world.stranger = take_over(world.fake, "colesbury")
    return world


def test_a_comment_from_whoever_took_a_mentors_login_approves_nothing(taken_over):
    """Reproduction: a comment from the login ``colesbury`` with another user id counted as the
    mentor's approval. Now it is refused and audited; the real mentor, renamed, approves."""
    world = taken_over
    comment = world.events.comment(
        "created",
        number=7,
        sender="colesbury",
        sender_id=world.stranger,
        body="/gatekeeper approve",
    )
    world.send("issue_comment", comment)
    assert world.check()["conclusion"] == "action_required"
    assert world.audit_kinds().count("approval_refused") == 1
    real = world.events.comment(
        "created",
        number=7,
        sender="colesbury-new",
        sender_id=COLESBURY,
        body="/gatekeeper approve",
        comment_id=9002,
    )
    world.send("issue_comment", real)
    assert world.check()["conclusion"] == "success"
    assert world.check()["output"]["title"] == "Approved by @colesbury-new"
    assert mentor_ids(world) == {"colesbury-new": COLESBURY, "vstinner": None}


def test_a_review_from_whoever_took_a_mentors_login_approves_nothing(taken_over):
    """An approving review by the new holder of ``colesbury`` does not count."""
    world = taken_over
    payload = world.review_payload(reviewer="colesbury", review_id=300)
    payload["review"]["user"]["id"] = payload["sender"]["id"] = world.stranger
    world.send("pull_request_review", payload)
    assert world.check()["conclusion"] == "action_required"
    with world.session() as session:
        [review] = session.exec(select(Review))
    assert (review.reviewer, review.reviewer_id) == ("colesbury", world.stranger)
    assert world.pull().approved_by == []


def test_the_button_pressed_by_whoever_took_a_mentors_login_approves_nothing(taken_over):
    """The check's Approve button pressed by the new holder of ``colesbury`` is refused."""
    world = taken_over
    payload = world.events.check_run(
        "requested_action",
        number=7,
        head_sha=HEAD,
        sender="colesbury",
        sender_id=world.stranger,
        app_id=world.fake.app_id,
    )
    world.send("check_run", payload)
    assert world.check()["conclusion"] == "action_required"
    with world.session() as session:
        refused = session.exec(select(AuditEvent).where(AuditEvent.kind == "approval_refused"))
        assert [e.detail for e in refused] == ["button: only mentors of mpage can approve"]


def test_the_dashboard_approval_of_whoever_took_a_mentors_login_is_refused(taken_over):
    """Signed in through GitHub as ``colesbury`` with the stranger's id, the dashboard's
    approve answers 403 and nothing is recorded; the renamed mentor's approval counts."""
    world = taken_over
    client = world.client
    with client.session_transaction() as session:
        session["login"], session["display"], session["user_id"] = (
            "colesbury",
            "colesbury",
            world.stranger,
        )
    page = client.get(f"/pulls/{REPO}/7").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    fields = {"head_sha": HEAD, "csrf_token": token.group(1) if token else ""}
    answer = client.post(f"/pulls/{REPO}/7/approve", data=fields)
    assert answer.status_code == 403
    assert "only mentors" in answer.get_data(as_text=True)
    world.work()
    assert world.check()["conclusion"] == "action_required"
    with client.session_transaction() as session:
        session["login"], session["display"], session["user_id"] = (
            "colesbury-new",
            "colesbury-new",
            COLESBURY,
        )
    assert client.post(f"/pulls/{REPO}/7/approve", data=fields).status_code == 302
    world.work()
    assert world.check()["conclusion"] == "success"


def test_a_mentor_never_learned_is_learned_from_their_first_review(world):
    """With no id known (GitHub not asked yet), the mentor's own review teaches it before the
    gate decides, so it counts; a later stranger under that login does not."""
    world.promote()
    world.open_pull()
    assert mentor_ids(world)["vstinner"] is None  # the fake has no such user: GitHub said 404
    world.review(reviewer="vstinner", review_id=301)
    assert world.check()["conclusion"] == "success"
    assert mentor_ids(world)["vstinner"] == default_user_id("vstinner")


# ---------------------------------------------------------------- the worker asks GitHub


def test_the_worker_learns_a_new_mentors_id_from_github(world):
    """Adding a mentor queues ``GET /users/{login}`` for the worker (never in the request); the
    answer is the id compared from then on."""
    world.promote()
    world.open_pull()
    hugo = world.fake.add_user("HugoVK", user_id=4242_4242)["id"]
    with world.session() as session:
        lifecycle.add_mentor(
            session, mentee="mpage", mentor="HugoVK", actor="ambv", now=world.pull().first_seen_at
        )
        session.commit()
        [job] = session.exec(select(Job).where(Job.kind == JOB))
        assert job.args == {"login": "hugovk"}
    asked = len([c for c in world.fake.calls if c.path.endswith("/users/hugovk")])
    world.work()
    assert len([c for c in world.fake.calls if c.path.endswith("/users/hugovk")]) == asked + 1
    assert mentor_ids(world)["hugovk"] == hugo
    with world.session() as session:
        assert session.get(Account, hugo).display == "HugoVK"


def test_a_login_github_does_not_know_stays_unknown(world):
    """``GET /users/{login}`` answering 404 (a typo, a login renamed away) learns nothing and
    ends the job; the mentor stays unknown and so approves nothing until seen."""
    world.open_pull(number=1, author="someone", head_sha="d" * 40)  # the App's installation
    world.promote(mentors=("colesbury", "nobody-here"))
    tally = world.work()
    assert tally.failures == []
    assert mentor_ids(world)["nobody-here"] is None
    with world.session() as session:
        assert session.exec(select(Job).where(Job.kind == JOB)).all() == []


# ---------------------------------------------------------------- maintainers sign in

CLIENT_ID, CLIENT_SECRET = "Iv1.people", "oauth-secret"


@pytest.fixture
def signing_in(database_url, github_fake) -> Iterator:
    """The app on both databases, signing people in through the fake GitHub's OAuth."""
    github_fake.add_oauth_app(CLIENT_ID, CLIENT_SECRET)
    app = app_for(
        github_fake,
        database_url,
        github_client_id=CLIENT_ID,
        github_client_secret=CLIENT_SECRET,
        maintainers="boss",
    )
    yield app
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


def sign_in(app, fake: FakeGitHub, login: str):
    """A fresh browser signs in as ``login`` through GitHub; the test client it used."""
    client = app.test_client()
    fake.oauth_next_login = login
    start = client.get("/login")
    answer = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
    callback = urlsplit(answer.headers["Location"])
    assert client.get(f"{callback.path}?{callback.query}").status_code == 302
    return client


def test_a_maintainers_login_taken_over_is_not_a_maintainer(signing_in, github_fake):
    """Reproduction: GATEKEEPER_MAINTAINERS compared logins. The first sign-in as ``boss``
    records that account; after boss renames away, whoever signs in as ``boss`` cannot start
    a mentorship, and boss under the new login still can."""
    github_fake.add_user("boss")
    assert sign_in(signing_in, github_fake, "boss").get("/mentorships/new").status_code == 200
    with signing_in.app_context():
        assert db.get_session().get(Maintainer, "boss").github_id == default_user_id("boss")
    take_over(github_fake, "boss")
    impostor = sign_in(signing_in, github_fake, "boss")
    assert impostor.get("/mentorships/new").status_code == 403
    assert sign_in(signing_in, github_fake, "boss-new").get("/mentorships/new").status_code == 200


def test_a_maintainer_first_seen_in_an_event_is_that_account(database_url, github_fake):
    """A configured maintainer's id is learned from the first event that names them, too: a
    later sign-in under that login by another account is not a maintainer."""
    app = app_for(github_fake, database_url, maintainers="ambv")
    World(app, github_fake).open_pull(number=3, author="ambv", head_sha="e" * 40)
    client = app.test_client()
    with client.session_transaction() as session:
        session["login"], session["display"], session["user_id"] = "ambv", "ambv", 77
    assert client.get("/mentorships/new").status_code == 403
    with client.session_transaction() as session:
        session["user_id"] = default_user_id("ambv")
    assert client.get("/mentorships/new").status_code == 200
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


def test_the_worker_asks_github_with_a_known_installation(world):
    """The worker asks ``GET /users`` with the token of an installation Gatekeeper knows."""
    world.open_pull()
    world.promote(mentors=("colesbury", "HugoVK"))
    world.fake.add_user("HugoVK")
    world.fake.reset_calls()
    world.work()
    [call] = [c for c in world.fake.calls if c.path.endswith("/users/hugovk")]
    assert call.auth == f"installation:{INSTALLATION}"


def test_recall_reads_the_accounts_once_and_records_the_never_seen(session):
    """``people.recall`` reads the accounts an event names in one query and records one never
    seen at the first moment given for it; learning each of them afterwards, as the handlers
    do, reads and writes nothing."""
    known = Person(COLESBURY, "colesbury", "colesbury")
    people.learn(session, known, at=EARLY)
    session.commit()
    new = Person(MPAGE, "mpage", "mpage")
    with statements_sent(session.get_bind()) as statements:
        people.recall(session, [(known, LATE), (new, EARLY), (None, LATE), (new, LATE)])
        recalled = len(statements)
        for person in (known, new):
            people.learn(session, person, at=LATE)
    session.commit()
    assert len([s for s in statements if "FROM account" in s]) == 1
    assert len(statements) == recalled
    found = {a.github_id: a.seen_at for a in session.exec(select(Account))}
    assert found == {COLESBURY: EARLY, MPAGE: EARLY}
