"""Private repositories: their pull requests are shown only to maintainers and the mentorship's people.

Visibility is stored the real way, from a signed delivery whose ``repository.private`` is true.
Everyone else sees "a pull request in a private repository" (its gate, nothing that names it) on
every page and in every JSON document; the counts still include it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import requests
import sqlalchemy as sa
from sqlmodel import select

from browser_support import WEBHOOK_SECRET, Live
from fakegithub import FakeGitHub, default_user_id
from gate_support import INSTALLATION, REPO, World, app_for, promote
from gatekeeper import github_of, people
from gatekeeper.cli import cli
from gatekeeper.events import Person
from gatekeeper.models import Repository, utcnow
from gatekeeper.visibility import PRIVATE_PULL, hidden_from
from webhook_events import Events, signed

SECRET_REPO = "python/embargo"
SECRET_TITLE = "Fix CVE-2031-0042 before disclosure"
SECRET_SHA = "5ec2e7" + "0" * 34
PUBLIC_SHA = "a" * 40

# Who looks, and whether they may see mpage's private pull request.
SEES = {"boss": True, "mpage": True, "colesbury": True, "vstinner": True}
BLIND = {None: False, "nosy": False, "ambv": False, "eclips4": False}
VIEWERS = {**SEES, **BLIND}


class Story(World):
    """mpage (mentors colesbury, vstinner) with one private and one public pull request, and
    eclips4 (mentor ambv) beside them; boss is the maintainer."""

    def __init__(self, app, fake: FakeGitHub) -> None:
        super().__init__(app, fake)
        self.secret = Events(repo=SECRET_REPO, installation_id=INSTALLATION)

    def open_private(self, number: int, *, title: str = SECRET_TITLE, private: bool = True):
        """A pull request by mpage in the private repository, as GitHub announces it."""
        head = f"{SECRET_SHA[:-4]}{number:04d}"
        self.fake.add_pull(SECRET_REPO, number, author="mpage", head_sha=head, title=title)
        payload = self.secret.pull_request(
            "opened", number=number, author="mpage", head_sha=head, updated_at=self.tick()
        )
        payload["pull_request"]["title"] = title
        payload["repository"]["private"] = private
        return self.send("pull_request", payload)

    def sign_in(self, login: str | None) -> None:
        """Be signed in as ``login`` (None: signed out), as the OAuth callback leaves it (and
        records the account: see ``people.learn``)."""
        if login is not None:
            with self.session() as db_session:
                account = Person(default_user_id(login), login.lower(), login)
                people.learn(db_session, account, at=utcnow(), maintainers=("boss",))
                db_session.commit()
        with self.client.session_transaction() as session:
            session.clear()
            if login is not None:
                session["login"], session["display"] = login, login
                session["user_id"] = default_user_id(login)

    def text(self, path: str, *, status: int = 200) -> str:
        response = self.client.get(path, follow_redirects=True)
        assert response.status_code == status, (path, response.status_code)
        return response.get_data(as_text=True)


def without_csrf_tokens(page: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', page)


@pytest.fixture
def story(database_url: str, github_fake: FakeGitHub) -> Iterator[Story]:
    """The story on SQLite and PostgreSQL, against the fake GitHub."""
    github_fake.add_repo(SECRET_REPO, installation_id=INSTALLATION, private=True)
    app = app_for(github_fake, database_url, maintainers="boss")
    told = Story(app, github_fake)
    told.promote("mpage", ["colesbury", "vstinner"])
    told.promote("eclips4", ["ambv"])
    told.open_private(7)
    told.open_pull(8, author="mpage", head_sha=PUBLIC_SHA)
    yield told
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


def assert_redacted(text: str) -> None:
    """Nothing that names the private pull request, and the redacted row in its place."""
    for secret in (SECRET_TITLE, SECRET_REPO, "embargo", SECRET_SHA[:7]):
        assert secret not in text
    assert PRIVATE_PULL in text


def assert_shown(text: str) -> None:
    assert SECRET_TITLE in text and SECRET_REPO in text
    assert PRIVATE_PULL not in text


# ---------------------------------------------------------------- stored the real way


def test_the_payload_marks_the_repository_private(story: Story):
    """repository.private from a signed delivery is stored; a later one saying public clears it."""
    with story.session() as session:
        assert session.get(Repository, SECRET_REPO).private is True
        assert session.get(Repository, REPO).private is False
    story.open_private(9, title="Now public", private=False)
    with story.session() as session:
        assert session.get(Repository, SECRET_REPO).private is False
    story.sign_in(None)
    assert SECRET_TITLE in story.text("/mentorships/mpage")


def test_an_event_that_does_not_say_keeps_the_repository_private(story: Story):
    """An installation event names the repository without its visibility: it stays private."""
    payload = story.events.installation_repositories("added", added=[SECRET_REPO])
    story.send("installation_repositories", payload)
    with story.session() as session:
        assert session.exec(
            select(Repository.private).where(Repository.full_name == SECRET_REPO)
        ).one()


# ---------------------------------------------------------------- pages, for each viewer


@pytest.mark.parametrize("login", list(VIEWERS), ids=lambda login: login or "signed-out")
def test_mentee_page_shows_the_private_pull_request_only_to_its_people(story: Story, login):
    """The table, the timeline and the audit log name it for the mentorship's people and
    maintainers; everyone else sees a redacted row with its gate, and the public one in full."""
    story.sign_in(login)
    body = story.text("/mentorships/mpage")
    public = story.pull(8)
    assert public.title in body and f"{REPO}#8" in body
    if VIEWERS[login]:
        assert_shown(body)
        assert f"/pulls/{SECRET_REPO}/7" in body
    else:
        assert_redacted(body)
        row = re.search(r'<td class="private muted">([^<]*)</td>\s*<td>(.*?)</td>', body)
        assert row and row.group(1) == PRIVATE_PULL and "Waiting for a mentor" in row.group(2)
        # The audit log keeps what happened, without the name or the detail.
        assert f"now waiting for a mentor</strong> {PRIVATE_PULL}</td>" in body
        # The timeline's row: no link to the pull request, its title redacted, its state kept.
        assert (
            f'<a class="tl-label" href="#pulls">private</a><span class="tl-title">{PRIVATE_PULL}</span>'
            in body
        )


@pytest.mark.parametrize("login", list(VIEWERS), ids=lambda login: login or "signed-out")
def test_pull_page_is_a_404_for_those_who_may_not_see_it(story: Story, login):
    """The pull request page of a private pull request answers as if it were never seen."""
    story.sign_in(login)
    if VIEWERS[login]:
        body = story.text(f"/pulls/{SECRET_REPO}/7")
        assert SECRET_TITLE in body and SECRET_SHA[:7] in body
    else:
        body = story.text(f"/pulls/{SECRET_REPO}/7", status=404)
        unknown = story.text(f"/pulls/{SECRET_REPO}/70", status=404)
        assert SECRET_TITLE not in body
        # Word for word the page of a number never seen, but for the number itself (and the
        # sign-out form's CSRF token, which is signed with the second it was made in).
        body, unknown = without_csrf_tokens(body), without_csrf_tokens(unknown)
        assert body == unknown.replace(f"{SECRET_REPO}/70", f"{SECRET_REPO}/7").replace(
            f"{SECRET_REPO}#70", f"{SECRET_REPO}#7"
        )
    assert story.pull(8).title in story.text(f"/pulls/{REPO}/8")


@pytest.mark.parametrize("login", list(VIEWERS), ids=lambda login: login or "signed-out")
def test_overview_counts_it_and_names_it_only_to_its_mentors(story: Story, login):
    """The card counts both waiting pull requests; only a mentor's "waits for you" lists it,
    and the mentee's own "your first month" list."""
    story.sign_in(login)
    body = story.text("/")
    cards = body.split('<li class="card')[1:]
    (card,) = [c for c in cards if 'href="/mentorships/mpage"' in c]
    assert "<strong>2</strong> waiting" in card
    if login in ("colesbury", "vstinner", "mpage"):
        assert SECRET_TITLE in body and f"{SECRET_REPO}#7" in body
    else:
        for secret in (SECRET_TITLE, SECRET_REPO):
            assert secret not in body


@pytest.mark.parametrize("login", ["colesbury", "ambv", "mpage", "nosy", "boss"])
def test_me_lists_it_only_to_its_mentors(story: Story, login):
    """/me: colesbury's queue names it, ambv's holds only eclips4's, mpage lands on their page."""
    story.sign_in(login)
    body = story.text("/me")
    if VIEWERS[login] and login != "boss":
        assert SECRET_TITLE in body
    else:
        for secret in (SECRET_TITLE, SECRET_REPO):
            assert secret not in body


def test_a_stranger_cannot_learn_it_exists_by_approving(story: Story):
    """Approving a private pull request one may not see is the 404 of an unknown one."""
    for login in ("nosy", "ambv"):
        story.sign_in(login)
        token = re.search(
            r'name="csrf_token"[^>]*value="([^"]+)"', story.text("/mentorships/mpage")
        )
        assert token
        for number in (7, 70):
            response = story.client.post(
                f"/pulls/{SECRET_REPO}/{number}/approve",
                data={"csrf_token": token.group(1), "head_sha": SECRET_SHA},
            )
            assert response.status_code == 404
            assert SECRET_TITLE not in response.get_data(as_text=True)
    assert story.pull(8).approved_by == []


def test_a_mentor_still_approves_it_from_the_dashboard(story: Story):
    """colesbury sees the button on the private pull request and approving it works."""
    story.sign_in("colesbury")
    path = f"/pulls/{SECRET_REPO}/7"
    body = story.text(path)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', body)
    head = re.search(r'name="head_sha"[^>]*value="([^"]+)"', body)
    assert token and head
    response = story.client.post(
        f"{path}/approve", data={"csrf_token": token.group(1), "head_sha": head.group(1)}
    )
    assert response.status_code == 302
    story.sign_in(None)
    assert "<strong>1</strong> approved" in story.text("/")


# ---------------------------------------------------------------- JSON


def private_documents(document: dict) -> list[dict]:
    return [pull for pull in document["pull_requests"] if pull["repo"] != REPO]


@pytest.mark.parametrize("login", list(VIEWERS), ids=lambda login: login or "signed-out")
def test_api_redacts_it_for_those_who_may_not_see_it(story: Story, login):
    """/api/mentorships and /api/mentorships/mpage: the full document, or a redacted one."""
    story.sign_in(login)
    one = story.client.get("/api/mentorships/mpage").get_json()
    every = story.client.get("/api/mentorships").get_json()
    listed = next(d for d in every if d["mentee"] == "mpage")
    assert listed == one
    (hidden,) = private_documents(one)
    public = next(pull for pull in one["pull_requests"] if pull["repo"] == REPO)
    assert public["title"] == story.pull(8).title and "redacted" not in public
    if VIEWERS[login]:
        assert hidden["title"] == SECRET_TITLE and hidden["repo"] == SECRET_REPO
    else:
        assert hidden == {
            "redacted": PRIVATE_PULL,
            "repo": None,
            "number": None,
            "title": None,
            "url": None,
            "author": None,
            "head_sha": None,
            "state": "open",
            "gate": "waiting",
            "approved_by": None,
        }
        text = json.dumps(every)
        for secret in (SECRET_TITLE, SECRET_REPO, "embargo", SECRET_SHA[:7]):
            assert secret not in text


def test_api_redacts_per_mentorship(story: Story):
    """ambv sees eclips4's private pull requests, not mpage's: roles are per mentorship."""
    story.fake.add_pull(SECRET_REPO, 11, author="eclips4", head_sha="e" * 40, title="Theirs")
    payload = story.secret.pull_request(
        "opened", number=11, author="eclips4", head_sha="e" * 40, updated_at=story.tick()
    )
    payload["pull_request"]["title"], payload["repository"]["private"] = "Theirs", True
    story.send("pull_request", payload)
    story.sign_in("ambv")
    every = {d["mentee"]: d for d in story.client.get("/api/mentorships").get_json()}
    assert [p["title"] for p in every["eclips4"]["pull_requests"]] == ["Theirs"]
    assert [p.get("redacted") for p in private_documents(every["mpage"])] == [PRIVATE_PULL]
    body = story.text("/mentorships/eclips4")
    assert "Theirs" in body and PRIVATE_PULL not in body


def test_the_cli_is_trusted_with_everything(story: Story):
    """status --json and list --all --json run on the server: nothing is redacted."""
    runner = story.app.test_cli_runner()
    status = json.loads(runner.invoke(cli, ["status", "mpage", "--json"]).output)
    listed = json.loads(runner.invoke(cli, ["list", "--all", "--json"]).output)
    assert [p["title"] for p in private_documents(status)] == [SECRET_TITLE]
    assert next(d for d in listed if d["mentee"] == "mpage") == status


# ---------------------------------------------------------------- bounded queries


def count_queries(story: Story, path: str) -> int:
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement != "BEGIN":
            statements.append(statement)

    engine = story.app.extensions["gatekeeper.engine"]
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert story.client.get(path).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return len(statements)


def test_redaction_costs_one_query_whatever_the_number_of_private_pulls(story: Story):
    """A signed-out visitor's mentee page and API cost the same with 1 or 5 private pulls."""
    story.sign_in(None)
    paths = ["/mentorships/mpage", "/api/mentorships", "/api/mentorships/mpage", "/"]
    few = [count_queries(story, path) for path in paths]
    for number in range(20, 24):
        story.open_private(number)
    assert [count_queries(story, path) for path in paths] == few
    assert story.text("/mentorships/mpage").count(f'<td class="private muted">{PRIVATE_PULL}') == 5


def test_a_repository_no_payload_described_is_public(story: Story):
    """A pull request's repository with no stored row counts as public (the payload that
    brought it would have said otherwise); one who sees everything costs no lookup."""
    with story.session() as session:
        assert hidden_from(session, sees=False, pulls=["nobody/knows", REPO]) == frozenset()
        assert hidden_from(session, sees=False, pulls=[SECRET_REPO, REPO]) == {SECRET_REPO}
        assert hidden_from(session, sees=False, pulls=[]) == frozenset()
        assert hidden_from(session, sees=True, pulls=[SECRET_REPO]) == frozenset()


# ---------------------------------------------------------------- in a real browser


@pytest.mark.browser
def test_a_signed_out_browser_sees_no_private_title_anywhere(browser, live: Live):
    """Chromium, signed out, reads /, the mentee page, the PR page and the API: no private title
    in the HTML (attributes and the timeline's SVG included); the mentor, signed in, sees it."""
    live.fake.add_repo(SECRET_REPO, installation_id=INSTALLATION, private=True)
    promote(live.app, "mpage", ["colesbury"], actor="boss")
    live.fake.add_pull(SECRET_REPO, 7, author="mpage", head_sha=SECRET_SHA, title=SECRET_TITLE)
    payload = Events(repo=SECRET_REPO, installation_id=INSTALLATION).pull_request(
        "opened", number=7, author="mpage", head_sha=SECRET_SHA
    )
    payload["pull_request"]["title"], payload["repository"]["private"] = SECRET_TITLE, True
    body = json.dumps(payload).encode()
    answer = requests.post(
        f"{live.url}/webhooks/github",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": "private-7",
            "X-Hub-Signature-256": signed(WEBHOOK_SECRET, body),
        },
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    live.wait_for(lambda: live.applied("private-7"))
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        for path in ["/", "/mentorships/mpage", "/api/mentorships", "/api/mentorships/mpage"]:
            page.goto(live.url + path)
            for secret in (SECRET_TITLE, SECRET_REPO):
                assert secret not in page.content(), path
        page.goto(live.url + "/mentorships/mpage")
        assert page.locator("#pulls td.private").inner_text() == PRIVATE_PULL
        assert page.goto(f"{live.url}/pulls/{SECRET_REPO}/7").status == 404
        assert SECRET_TITLE not in page.content()

        live.fake.oauth_next_login = "colesbury"
        page.get_by_role("link", name="Sign in with GitHub").click()
        page.get_by_role("button", name="Sign out").wait_for()
        page.goto(live.url + "/mentorships/mpage")
        assert page.locator("#pulls .pr-title").inner_text() == SECRET_TITLE
    finally:
        context.close()
