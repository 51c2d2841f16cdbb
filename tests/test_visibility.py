"""What a visitor may see of a mentorship's scope: ``gatekeeper/visibility.py``.

First its rules, as tables. Then the leaks of issue #15 (item 6) reproduced the real way:
``mpage``'s mentorship is scoped to a public repository, a private one (so described by a
signed delivery) and one no event ever described; each page and document that showed the
scope is read by an anonymous visitor, a signed-in stranger, the mentee, a mentor and a
maintainer, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from fakegithub import FakeGitHub
from gate_support import INSTALLATION, REPO, World, app_for
from gatekeeper import github_of
from gatekeeper import mentorships as lifecycle
from gatekeeper.cli import cli
from gatekeeper.models import AuditEvent, Repository, utcnow
from gatekeeper.visibility import (
    Scope,
    hidden_names,
    scope_change,
    sees_private,
    shown_detail,
)
from webhook_events import Events

PUBLIC = "python/devguide"  # described public by an event
SECRET = "python/secret-infra"  # described private by an event
UNSEEN = "python/unseen-infra"  # in the scope, never described by any event
AT = datetime(2024, 11, 20, tzinfo=UTC)


# ---------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    ("roles", "sees"),
    [
        (frozenset(), False),
        (frozenset({"maintainer"}), True),
        (frozenset({"mentor"}), True),
        (frozenset({"mentee"}), True),
        (frozenset({"viewer_standing"}), False),
        (frozenset({"mentor", "maintainer"}), True),
    ],
)
def test_who_sees_private_repositories(roles, sees):
    """Maintainers and the mentorship's own mentee and mentors; nobody else."""
    assert sees_private(roles) is sees


@pytest.mark.parametrize(
    ("pulls", "scope", "known", "hidden"),
    [
        # A pull request's repository: hidden only when an event said private.
        ([REPO], [], {REPO: False}, set()),
        ([SECRET], [], {SECRET: True}, {SECRET}),
        (["nobody/knows"], [], {}, set()),
        # A scope's: hidden unless an event said public (fail closed).
        ([], [PUBLIC], {PUBLIC: False}, set()),
        ([], [SECRET], {SECRET: True}, {SECRET}),
        ([], [UNSEEN], {}, {UNSEEN}),
        ([], [UNSEEN], {UNSEEN: None}, {UNSEEN}),
        ([], [PUBLIC, SECRET, UNSEEN], {PUBLIC: False, SECRET: True}, {SECRET, UNSEEN}),
        # A scope's repository that holds a stored pull request was described by its payload.
        ([REPO], [REPO], {}, set()),
        ([SECRET], [SECRET, UNSEEN], {SECRET: True}, {SECRET, UNSEEN}),
    ],
)
def test_which_repositories_are_hidden_from_an_outsider(pulls, scope, known, hidden):
    """The hidden names, from what the payloads said of each repository."""
    assert hidden_names(pulls=pulls, scope=scope, private=known) == hidden


@pytest.mark.parametrize(
    ("repositories", "hidden", "words", "named", "counted"),
    [
        ([], set(), "every repository the App is installed on", (), 0),
        ([PUBLIC], set(), PUBLIC, (PUBLIC,), 0),
        ([PUBLIC, SECRET], set(), f"{PUBLIC}, {SECRET}", (PUBLIC, SECRET), 0),
        ([SECRET], {SECRET}, "1 private repository", (), 1),
        ([SECRET, UNSEEN], {SECRET, UNSEEN}, "2 private repositories", (), 2),
        ([PUBLIC, SECRET], {SECRET}, f"{PUBLIC} and 1 private repository", (PUBLIC,), 1),
        (
            [PUBLIC, REPO, SECRET, UNSEEN],
            {SECRET, UNSEEN},
            f"{PUBLIC}, {REPO} and 2 private repositories",
            (PUBLIC, REPO),
            2,
        ),
    ],
)
def test_a_scope_as_shown(repositories, hidden, words, named, counted):
    """Named repositories first, the hidden ones counted; a scope of only hidden ones is
    never mistaken for "every repository"."""
    scope = Scope.of(repositories, hidden=frozenset(hidden))
    assert (scope.words(), scope.named, scope.hidden) == (words, named, counted)
    assert scope.everywhere is (not repositories)


def event(kind: str, detail: str, *, repo: str | None = None) -> AuditEvent:
    return AuditEvent(
        at=AT, actor="boss", kind=kind, detail=detail, repo=repo, pr_number=7 if repo else None
    )


@pytest.mark.parametrize(
    ("kind", "detail", "repo", "hidden", "shown"),
    [
        # A change of scope: hidden names counted on each side.
        (
            "terms_changed",
            f"repositories: {PUBLIC}, {SECRET} → {PUBLIC}, {SECRET}, {UNSEEN}",
            None,
            {SECRET, UNSEEN},
            f"repositories: {PUBLIC} and 1 private repository"
            f" → {PUBLIC} and 2 private repositories",
        ),
        (
            "terms_changed",
            f"repositories: every repository → {SECRET}",
            None,
            {SECRET},
            "repositories: every repository → 1 private repository",
        ),
        (
            "terms_changed",
            f"repositories: {SECRET} → every repository",
            None,
            set(),
            f"repositories: {SECRET} → every repository",
        ),
        # Other terms, and other events, as recorded.
        ("terms_changed", "approvals required: 1 → 2", None, {SECRET}, "approvals required: 1 → 2"),
        ("extended", "from A to B", None, {SECRET}, "from A to B"),
        # A detail that names a scope but does not read as two of them says only that.
        ("terms_changed", f"repositories: {SECRET}", None, {SECRET}, "repositories changed"),
        # An event about a pull request in a hidden repository keeps no detail.
        ("waiting", f"head {'a' * 7}", SECRET, {SECRET}, ""),
        ("waiting", f"head {'a' * 7}", REPO, {SECRET}, f"head {'a' * 7}"),
    ],
)
def test_an_audit_detail_as_shown(kind, detail, repo, hidden, shown):
    """What the audit log shows of each event to a viewer with these repositories hidden."""
    assert shown_detail(event(kind, detail, repo=repo), hidden=frozenset(hidden)) == shown


def test_the_change_of_scope_reads_back_what_change_terms_wrote(session):
    """The audit detail ``change_terms`` records is the one ``scope_change`` parses."""
    now = utcnow()
    lifecycle.promote(
        session, mentee="mpage", mentors=["colesbury"], actor="boss", now=now, repositories=[SECRET]
    )
    lifecycle.change_terms(
        session, mentee="mpage", actor="boss", now=now, repositories=[UNSEEN, PUBLIC]
    )
    lifecycle.change_terms(session, mentee="mpage", actor="boss", now=now, repositories=[])
    changes = session.exec(
        select(AuditEvent).where(AuditEvent.kind == "terms_changed").order_by(AuditEvent.id)
    ).all()
    assert [scope_change(e) for e in changes] == [
        ([SECRET], [PUBLIC, UNSEEN]),
        ([PUBLIC, UNSEEN], []),
    ]


# ---------------------------------------------------------------- the leaks, reproduced


# Who looks, and whether they may read the private names of mpage's scope.
VIEWERS = {
    None: False,
    "nosy": False,
    "ambv": False,
    "mpage": True,
    "colesbury": True,
    "boss": True,
}
SECRETS = (SECRET, UNSEEN, "secret-infra", "unseen-infra")


class Scoped(World):
    """mpage (mentor colesbury) scoped to devguide, secret-infra and unseen-infra, with a
    public pull request in python/cpython, outside the scope; eclips4 (mentor ambv) beside
    them; boss is the maintainer."""

    def describe(self, repo: str, *, private: bool) -> None:
        """A signed delivery from ``repo`` (octocat's pull request there), saying its visibility."""
        self.fake.add_repo(repo, installation_id=INSTALLATION, private=private)
        self.fake.add_pull(repo, 1, author="octocat", head_sha="c" * 40)
        payload = Events(repo=repo, installation_id=INSTALLATION).pull_request(
            "opened", number=1, author="octocat", head_sha="c" * 40, updated_at=self.tick()
        )
        payload["repository"]["private"] = private
        self.send("pull_request", payload)

    def sign_in(self, login: str | None) -> None:
        """Be signed in as ``login`` (None: signed out), as the OAuth callback leaves it."""
        with self.client.session_transaction() as cookie:
            cookie.clear()
            if login is not None:
                cookie["login"], cookie["display"] = login, login

    def text(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True).replace("&#39;", "'")


@pytest.fixture
def scoped(database_url: str, github_fake: FakeGitHub) -> Iterator[Scoped]:
    """The story on SQLite and PostgreSQL, against the fake GitHub."""
    app = app_for(github_fake, database_url, maintainers="boss")
    told = Scoped(app, github_fake)
    told.describe(PUBLIC, private=False)
    told.describe(SECRET, private=True)
    told.promote("mpage", ["colesbury"], repositories=[PUBLIC, SECRET])
    told.promote("eclips4", ["ambv"])
    with told.session() as session:
        lifecycle.change_terms(
            session,
            mentee="mpage",
            actor="boss",
            now=utcnow(),
            repositories=[PUBLIC, SECRET, UNSEEN],
        )
        session.commit()
    told.open_pull(8, author="mpage", head_sha="a" * 40)
    yield told
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


def assert_hidden(text: str, *, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, (where, secret)


@pytest.mark.parametrize("login", list(VIEWERS), ids=lambda login: login or "signed-out")
def test_the_mentee_page_names_a_private_scope_only_to_its_people(scoped: Scoped, login):
    """The terms' "Repositories" and the audit log's change of them: the public repository
    named, the private one and the one never described counted, for outsiders."""
    scoped.sign_in(login)
    body = scoped.text("/mentorships/mpage")
    if VIEWERS[login]:
        assert f"<dd>{PUBLIC}, {SECRET}, {UNSEEN}</dd>" in body
        assert f"repositories: {PUBLIC}, {SECRET} → {PUBLIC}, {SECRET}, {UNSEEN}" in body
    else:
        assert_hidden(body, where="/mentorships/mpage")
        assert f"<dd>{PUBLIC} and 2 private repositories</dd>" in body
        assert (
            f"repositories: {PUBLIC} and 1 private repository → {PUBLIC} and 2 private repositories"
        ) in body


@pytest.mark.parametrize("login", list(VIEWERS), ids=lambda login: login or "signed-out")
def test_the_public_pull_requests_page_names_a_private_scope_only_to_its_people(
    scoped: Scoped, login
):
    """python/cpython#8 is public and outside the scope: its page says what the scope is,
    counting what the viewer may not see named."""
    scoped.sign_in(login)
    body = scoped.text(f"/pulls/{REPO}/8")
    if VIEWERS[login]:
        assert f"mentorship gates only {PUBLIC}, {SECRET}, {UNSEEN};" in body
    else:
        assert_hidden(body, where=f"/pulls/{REPO}/8")
        assert f"mentorship gates only {PUBLIC} and 2 private repositories;" in body


@pytest.mark.parametrize("login", list(VIEWERS), ids=lambda login: login or "signed-out")
def test_api_names_a_private_scope_only_to_its_people(scoped: Scoped, login):
    """/api/mentorships and /api/mentorships/mpage: ``repositories`` holds what the viewer may
    see named, ``repositories_hidden`` counts the rest; the report's documents name none."""
    scoped.sign_in(login)
    one = scoped.client.get("/api/mentorships/mpage").get_json()
    every = scoped.client.get("/api/mentorships").get_json()
    assert next(d for d in every if d["mentee"] == "mpage") == one
    if VIEWERS[login]:
        assert (one["repositories"], one["repositories_hidden"]) == ([PUBLIC, SECRET, UNSEEN], 0)
    else:
        assert (one["repositories"], one["repositories_hidden"]) == ([PUBLIC], 2)
        assert_hidden(json.dumps(every), where="/api/mentorships")
        for path in ("/api/mentorships/mpage/report", "/mentorships/mpage/report"):
            assert_hidden(scoped.text(path), where=path)


def test_a_scope_follows_the_events(scoped: Scoped):
    """Once a signed delivery says unseen-infra is public, everyone reads its name; once one
    says devguide turned private, outsiders stop reading it."""
    scoped.describe(UNSEEN, private=False)
    scoped.describe(PUBLIC, private=True)
    with scoped.session() as session:
        assert session.get(Repository, UNSEEN).private is False
    scoped.sign_in(None)
    assert f"<dd>{UNSEEN} and 2 private repositories</dd>" in scoped.text("/mentorships/mpage")
    document = scoped.client.get("/api/mentorships/mpage").get_json()
    assert (document["repositories"], document["repositories_hidden"]) == ([UNSEEN], 2)


def test_the_cli_reads_every_name(scoped: Scoped):
    """status --json runs beside the database: the whole scope, nothing counted."""
    printed = scoped.app.test_cli_runner().invoke(cli, ["status", "mpage", "--json"]).output
    document = json.loads(printed)
    assert (document["repositories"], document["repositories_hidden"]) == (
        [PUBLIC, SECRET, UNSEEN],
        0,
    )
