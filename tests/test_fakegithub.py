"""The fake GitHub behaves as PyGithub expects GitHub to, over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import (
    Auth,
    BadCredentialsException,
    Github,
    GithubException,
    GithubIntegration,
    GithubRetry,
    RateLimitExceededException,
    UnknownObjectException,
)
from github.GithubException import RateLimitExceededExceedsMaxWait
from github.HookDelivery import HookDeliverySummary
from github.PaginatedList import PaginatedList

from fakegithub import FakeGitHub, default_user_id, response_errors

FIXTURES = Path(__file__).parent / "fixtures"
SHA = "a" * 40
OTHER_SHA = "b" * 40
NO_THROTTLE = {"seconds_between_requests": None, "seconds_between_writes": None}


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    """A running fake with installation 1 on python/cpython and installation 2 on tiran/fork."""
    with FakeGitHub() as server:
        server.add_installation(1, account="python")
        server.add_installation(2, account="tiran")
        server.add_repo("python/cpython", installation_id=1)
        server.add_repo("tiran/fork", installation_id=2)
        server.add_pull("python/cpython", 7, author="alice", head_sha=SHA, title="Fix a bug")
        yield server
        assert server.violations == []


def integration(fake: FakeGitHub, *, key: str | None = None, **options: Any) -> GithubIntegration:
    """A GithubIntegration pointed at the fake, without PyGithub's client-side throttling."""
    auth = Auth.AppAuth(fake.app_id, key or fake.private_key_pem)
    return GithubIntegration(auth=auth, base_url=fake.api_url, **NO_THROTTLE, **options)


@pytest.fixture
def app(fake: FakeGitHub) -> Iterator[GithubIntegration]:
    with integration(fake) as client:
        yield client


@pytest.fixture
def gh(app: GithubIntegration) -> Iterator[Github]:
    """A client authenticated as installation 1."""
    with app.get_github_for_installation(1) as client:
        yield client


def _auth(app: GithubIntegration, installation_id: int = 1) -> dict[str, str]:
    """Headers for ``requests`` with a fresh token of the installation."""
    return {"Authorization": f"token {app.get_access_token(installation_id).token}"}


# ---------------------------------------------------------------------------- App auth


def test_app_endpoints_accept_the_apps_jwt(fake: FakeGitHub, app: GithubIntegration) -> None:
    """GET /app, installations (paginated) and a repository's installation answer the JWT."""
    for number in range(3, 40):
        fake.add_installation(number, account=f"org{number}")
    assert app.get_app().slug == "gatekeeper-test"
    assert len(list(app.get_installations())) == 39
    assert app.get_app_installation(2).account.login == "tiran"
    assert app.get_repo_installation("Python", "CPython").id == 1
    assert {call.auth for call in fake.calls} == {"jwt"}


def test_installation_token_is_minted_and_scoped(fake: FakeGitHub, app: GithubIntegration) -> None:
    """An access token is a one-hour ghs_ token that lists only its installation's repos."""
    token = app.get_access_token(1)
    assert token.token.startswith("ghs_")
    assert 3500 < token.expires_at.timestamp() - time.time() <= 3600
    assert fake.tokens_issued == 1
    installation = app.get_app_installation(2)
    assert [repo.full_name for repo in installation.get_repos()] == ["tiran/fork"]
    assert fake.calls[-1].auth == "installation:2"


def _get_app_with_jwt(fake: FakeGitHub, claims: dict[str, Any]) -> requests.Response:
    # PyJWS, not jwt.encode: PyJWT refuses to encode an integer iss, which GitHub accepts.
    token = jwt.PyJWS().encode(json.dumps(claims).encode(), fake.private_key_pem, "RS256")
    return requests.get(f"{fake.api_url}/app", headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize(
    ("iss", "lifetime"),
    [("9999", 300), ("4242", 3600), ("4242", -120)],
    ids=["another App", "longer than ten minutes", "expired"],
)
def test_a_bad_jwt_is_rejected(fake: FakeGitHub, iss: str, lifetime: int) -> None:
    """A JWT for another App, too long-lived or expired gets GitHub's 401."""
    now = int(time.time())
    answer = _get_app_with_jwt(fake, {"iat": now - 60, "exp": now + lifetime, "iss": iss})
    assert answer.status_code == 401
    assert answer.json()["message"] == "A JSON web token could not be decoded"
    assert fake.calls[-1].auth == "invalid"


def test_an_integer_iss_is_accepted(fake: FakeGitHub) -> None:
    """GitHub takes the App id as a number as well as the string PyGithub sends."""
    now = int(time.time())
    answer = _get_app_with_jwt(fake, {"iat": now, "exp": now + 600, "iss": fake.app_id})
    assert answer.status_code == 200


def test_a_jwt_signed_by_another_key_is_rejected(fake: FakeGitHub) -> None:
    """PyGithub raises GithubException(401) when the App's key is wrong."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with integration(fake, key=pem) as client, pytest.raises(GithubException) as raised:
        client.get_app()
    assert raised.value.status == 401


def test_repo_endpoints_need_the_right_installation(
    fake: FakeGitHub, app: GithubIntegration
) -> None:
    """Another installation's token gets 404; a made-up token gets 401 Bad credentials."""
    with app.get_github_for_installation(2) as other, pytest.raises(UnknownObjectException):
        other.get_repo("python/cpython")
    with (
        Github(auth=Auth.Token("ghs_madeup"), base_url=fake.api_url, **NO_THROTTLE) as stranger,
        pytest.raises(BadCredentialsException),
    ):
        stranger.get_repo("python/cpython")


# ---------------------------------------------------------------------------- pulls and reviews


def test_pulls_paginate_with_link_headers(fake: FakeGitHub, app: GithubIntegration) -> None:
    """250 pull requests come back in three pages of 100, following the Link header."""
    for number in range(100, 349):
        fake.add_pull("python/cpython", number, author="bob", head_sha=SHA, state="closed")
    with integration(fake, per_page=100) as client, client.get_github_for_installation(1) as gh:
        pulls = list(gh.get_repo("python/cpython").get_pulls(state="all"))
    assert len(pulls) == 250
    assert pulls[0].number == 348 and pulls[-1].number == 7
    pages = [call.query for call in fake.calls if call.path.endswith("/pulls")]
    assert pages == [
        {"state": "all", "per_page": "100"},
        {"state": "all", "per_page": "100", "page": "2"},
        {"state": "all", "per_page": "100", "page": "3"},
    ]


def test_link_header_has_first_prev_next_last(fake: FakeGitHub, app: GithubIntegration) -> None:
    """A middle page links to all four neighbours with the fake's own URLs."""
    for number in range(100, 200):
        fake.add_pull("python/cpython", number, author="bob", head_sha=SHA)
    token = app.get_access_token(1).token
    answer = requests.get(
        f"{fake.api_url}/repos/python/cpython/pulls",
        params={"per_page": 10, "page": 3},
        headers={"Authorization": f"token {token}"},
    )
    links = dict(_parse_link(part) for part in answer.headers["Link"].split(", "))
    assert set(links) == {"first", "prev", "next", "last"}
    assert links["last"].startswith(f"{fake.api_url}/repos/python/cpython/pulls?")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(links["last"]).query)["page"] == ["11"]


def _parse_link(text: str) -> tuple[str, str]:
    """('next', url) from '<url>; rel="next"'."""
    url, rel = text.split("; ")
    return rel.removeprefix('rel="').removesuffix('"'), url[1:-1]


def test_pull_request_fields(fake: FakeGitHub, gh: Github) -> None:
    """A pull from a fork carries head/base repos; a merged one its merger; list omits merged."""
    fork = {"head_repo": "carol/cpython", "merged": True, "merged_by": "dave"}
    fake.add_pull("python/cpython", 8, author="carol", head_sha=OTHER_SHA, **fork)
    repo = gh.get_repo("python/cpython")
    pull = repo.get_pull(8)
    assert pull.head.repo.full_name == "carol/cpython"
    assert pull.base.repo.full_name == "python/cpython"
    assert (pull.state, pull.merged, pull.merged_by.login) == ("closed", True, "dave")
    assert pull.html_url == f"{fake.url}/python/cpython/pull/8"
    before = len(fake.calls)
    listed = repo.get_pulls(state="closed")[0]
    assert listed.raw_data["merged"] is True  # the list lacks "merged": raw_data fetched the pull
    assert [call.path for call in fake.calls[before:]] == [
        "/repos/python/cpython/pulls",
        "/repos/python/cpython/pulls/8",
    ]
    fake.push("python/cpython", 7, OTHER_SHA)
    assert repo.get_pull(7).head.sha == OTHER_SHA


def test_reviews_and_review_requests(fake: FakeGitHub, gh: Github) -> None:
    """Reviews come back uppercase with their commit; a review clears its request."""
    pull = gh.get_repo("python/cpython").get_pull(7)
    pull.create_review_request(reviewers=["mentor", "other"])
    assert fake.requested_reviewers[("python/cpython", 7)] == ["mentor", "other"]
    fake.add_review("python/cpython", 7, reviewer="mentor", state="APPROVED", commit_id=SHA)
    reviews = list(pull.get_reviews())
    assert [(r.user.login, r.state, r.commit_id) for r in reviews] == [("mentor", "APPROVED", SHA)]
    users, _teams = pull.get_review_requests()
    assert [user.login for user in users] == ["other"]
    with pytest.raises(GithubException) as raised:
        pull.create_review_request(reviewers=["alice"])
    assert raised.value.status == 422


def test_a_pull_from_a_fork_has_its_checks_on_the_base_repo(fake: FakeGitHub, gh: Github) -> None:
    """head.repo is the fork and base.repo the base; the App's check run for the head commit,
    created on the base repository, is listed there."""
    fake.add_pull(
        "python/cpython", 8, author="stranger", head_sha=OTHER_SHA, head_repo="stranger/cpython"
    )
    repo = gh.get_repo("python/cpython")
    pull = repo.get_pull(8)
    head, base = pull.head, pull.base
    assert (head.repo.full_name, head.repo.fork, head.user.login) == (
        "stranger/cpython",
        True,
        "stranger",
    )
    assert (base.repo.full_name, base.repo.fork, base.ref) == ("python/cpython", False, "main")
    run = repo.create_check_run("gatekeeper", head.sha, status="in_progress")
    assert [listed.id for listed in repo.get_commit(head.sha).get_check_runs()] == [run.id]


def test_pulls_may_share_a_head(fake: FakeGitHub, gh: Github) -> None:
    """One branch proposed for two base branches: both pulls have its head commit and move
    together on a push; a third pull on the same commit from another branch stays put."""
    fake.add_pull(
        "python/cpython", 8, author="alice", head_sha=SHA, base="3.13", head_ref="alice/change-7"
    )
    fake.add_pull("python/cpython", 9, author="bob", head_sha=SHA)
    repo = gh.get_repo("python/cpython")
    pulls = {pull.number: pull for pull in repo.get_pulls()}
    assert {number: (pull.head.sha, pull.base.ref) for number, pull in pulls.items()} == {
        7: (SHA, "main"),
        8: (SHA, "3.13"),
        9: (SHA, "main"),
    }
    assert pulls[7].head.ref == pulls[8].head.ref != pulls[9].head.ref
    run = repo.create_check_run("gatekeeper", SHA, status="in_progress")
    assert [listed.id for listed in repo.get_commit(SHA).get_check_runs()] == [run.id]
    fake.push("python/cpython", 7, OTHER_SHA)
    assert [repo.get_pull(n).head.sha for n in (7, 8, 9)] == [OTHER_SHA, OTHER_SHA, SHA]


def test_a_removed_repo_answers_404_everywhere(fake: FakeGitHub, app: GithubIntegration) -> None:
    """After remove_repo every call about the repository is GitHub's 404 and no installation
    lists it; a pull request from a deleted fork keeps its head commit but loses head.repo."""
    fake.add_repo("python/peps", installation_id=1)
    fake.add_pull(
        "python/cpython", 8, author="carol", head_sha=OTHER_SHA, head_repo="carol/cpython"
    )
    fake.remove_repo("carol/cpython")
    fake.remove_repo("Python/PEPs")
    headers = _auth(app)
    for method, path, body in [
        ("GET", "/repos/python/peps", None),
        ("GET", "/repos/python/peps/pulls", None),
        ("POST", "/repos/python/peps/check-runs", {"name": "gatekeeper", "head_sha": SHA}),
    ]:
        answer = requests.request(method, f"{fake.api_url}{path}", json=body, headers=headers)
        assert answer.status_code == 404
        assert answer.json() == {
            "message": "Not Found",
            "status": "404",
            "documentation_url": "https://docs.github.com/rest",
        }
    with pytest.raises(UnknownObjectException):
        app.get_repo_installation("python", "peps")
    assert [repo.full_name for repo in app.get_app_installation(1).get_repos()] == [
        "python/cpython"
    ]
    with app.get_github_for_installation(1) as gh:
        pull = gh.get_repo("python/cpython").get_pull(8)
        assert (pull.head.sha, pull.raw_data["head"]["repo"]) == (OTHER_SHA, None)
        assert gh.search_issues("is:pr author:carol").totalCount == 1
        fake.remove_repo("python/cpython")
        assert gh.search_issues("is:pr author:carol").totalCount == 0
        with pytest.raises(UnknownObjectException):
            gh.get_repo("python/cpython").get_pull(7)


# ---------------------------------------------------------------------------- checks, statuses, comments


def test_check_run_create_edit_and_list(fake: FakeGitHub, gh: Github) -> None:
    """A check run is stored as GitHub returns it, edited in place and listed per commit."""
    repo = gh.get_repo("python/cpython")
    action = {"label": "Re-run", "description": "Evaluate the gate again", "identifier": "rerun"}
    waiting = {"title": "Waiting", "summary": "For a mentor"}
    run = repo.create_check_run(
        "gatekeeper", SHA, status="in_progress", output=waiting, actions=[action], external_id="7"
    )
    assert (run.status, run.conclusion, run.app.id) == ("in_progress", None, fake.app_id)
    run.edit(conclusion="success", output={"title": "Approved", "summary": "By a mentor"})
    stored = fake.check_runs[run.id]
    assert (stored["status"], stored["conclusion"]) == ("completed", "success")
    assert stored["output"]["title"] == "Approved"
    assert stored["completed_at"] and stored["url"].startswith(fake.api_url)
    repo.create_check_run(
        "gatekeeper", SHA, conclusion="failure", output={"title": "t", "summary": "s"}
    )
    repo.create_check_run("other", SHA, status="queued")
    commit = repo.get_commit(SHA)
    latest = commit.get_check_runs(check_name="gatekeeper")
    assert [(r.name, r.conclusion) for r in latest] == [("gatekeeper", "failure")]
    assert commit.get_check_runs(filter="all").totalCount == 3
    assert len(fake.check_runs_for("python/cpython", SHA, "gatekeeper")) == 2
    assert repo.get_check_run(run.id).conclusion == "success"


@pytest.mark.parametrize(
    "extra",
    [
        {"actions": [{"label": "a", "description": "b", "identifier": f"c{i}"} for i in range(4)]},
        {"actions": [{"label": "x" * 21, "description": "b", "identifier": "c"}]},
        {"output": {"title": "t", "summary": "é" * 40_000}},  # 40k characters, 80k bytes
        {"status": "done"},
    ],
)
def test_an_invalid_check_run_body_is_a_violation(
    fake: FakeGitHub, gh: Github, extra: dict[str, Any]
) -> None:
    """Bodies breaking the OpenAPI schema or GitHub's check-run limits get 422 and are recorded."""
    with pytest.raises(GithubException) as raised:
        gh.get_repo("python/cpython").create_check_run("gatekeeper", SHA, **extra)
    assert raised.value.status == 422
    assert len(fake.violations) == 1
    assert fake.violations.pop().startswith("POST /repos/python/cpython/check-runs: ")
    assert fake.check_runs == {}


def test_check_run_on_an_unknown_commit_is_refused(fake: FakeGitHub, gh: Github) -> None:
    """GitHub answers 422 when the head SHA is not a commit of the repository."""
    with pytest.raises(GithubException) as raised:
        gh.get_repo("python/cpython").create_check_run("gatekeeper", "c" * 40)
    assert raised.value.status == 422
    assert raised.value.data["message"] == f"No commit found for SHA: {'c' * 40}"


def test_statuses_and_comments(fake: FakeGitHub, gh: Github) -> None:
    """Commit statuses and issue comments are written by the App's bot."""
    repo = gh.get_repo("python/cpython")
    status = repo.get_commit(SHA).create_status("success", context="gatekeeper")
    assert status.creator.login == fake.bot_login
    assert fake.statuses[0]["context"] == "gatekeeper"
    pull = repo.get_pull(7)
    pull.create_issue_comment("Waiting for a mentor")
    comments = list(pull.get_issue_comments())
    assert [(c.user.login, c.body) for c in comments] == [(fake.bot_login, "Waiting for a mentor")]
    assert [call.path for call in fake.writes()] == [
        f"/repos/python/cpython/statuses/{SHA}",
        "/repos/python/cpython/issues/7/comments",
    ]


# ---------------------------------------------------------------------------- search


def test_search_sees_public_repos_and_the_installations_own(fake: FakeGitHub, gh: Github) -> None:
    """is:pr is:open author: finds open pulls in public repos anywhere, and in the token's
    private repos, but never in another installation's private repos."""
    fake.add_pull("python/cpython", 8, author="alice", head_sha=SHA, state="closed")
    fake.add_pull("tiran/fork", 1, author="alice", head_sha=SHA)
    fake.add_repo("tiran/secret", installation_id=2, private=True)
    fake.add_pull("tiran/secret", 1, author="alice", head_sha=SHA)
    found = gh.search_issues("is:pr is:open author:ALICE")
    assert sorted((item.repository_url.rsplit("/repos/")[1], item.number) for item in found) == [
        ("python/cpython", 7),
        ("tiran/fork", 1),
    ]
    item = next(item for item in found if item.number == 7)
    assert item.repository_url == f"{fake.api_url}/repos/python/cpython"
    assert item.pull_request.html_url == f"{fake.url}/python/cpython/pull/7"
    assert gh.search_issues("is:pr repo:python/cpython bug").totalCount == 1
    with pytest.raises(GithubException) as raised:
        list(gh.search_issues("is:pr repo:tiran/secret"))
    assert raised.value.status == 422


def test_search_by_visibility(fake: FakeGitHub, app: GithubIntegration) -> None:
    """is:private keeps the token's own private repositories, is:public the public ones."""
    fake.add_repo("tiran/secret", installation_id=2, private=True)
    fake.add_pull("tiran/secret", 1, author="alice", head_sha=SHA)
    with app.get_github_for_installation(2) as tiran:
        private = tiran.search_issues("is:pr author:alice is:private")
        public = tiran.search_issues("is:pr author:alice is:public")
        assert [item.repository_url.rsplit("/repos/")[1] for item in private] == ["tiran/secret"]
        assert [item.repository_url.rsplit("/repos/")[1] for item in public] == ["python/cpython"]


# ---------------------------------------------------------------------------- renames


def test_a_renamed_repository_keeps_its_id_and_redirects(
    fake: FakeGitHub, app: GithubIntegration, gh: Github
) -> None:
    """A rename keeps the id and the pull requests; the former name answers a GET with a 301
    to the same path under the new name (PyGithub follows it) and a write with a 307."""
    before = gh.get_repo("python/cpython").id
    fake.rename_repo("python/cpython", "python/cpython-renamed")
    pull = gh.get_repo("python/cpython").get_pull(7)  # through the redirect
    assert pull.base.repo.full_name == "python/cpython-renamed"
    assert pull.base.repo.id == before
    old = f"{fake.api_url}/repos/python/cpython/pulls/7?per_page=5"
    answer = requests.get(old, headers=_auth(app), allow_redirects=False, timeout=5)
    assert answer.status_code == 301
    assert answer.headers["Location"] == (
        f"{fake.api_url}/repos/python/cpython-renamed/pulls/7?per_page=5"
    )
    comment = requests.post(
        f"{fake.api_url}/repos/python/cpython/issues/7/comments",
        json={"body": "hello"},
        headers=_auth(app),
        allow_redirects=False,
        timeout=5,
    )
    assert comment.status_code == 307
    item = next(iter(gh.search_issues("is:pr author:alice")))
    assert item.repository_url == f"{fake.api_url}/repos/python/cpython-renamed"


def test_a_transferred_repository_moves_to_the_new_owners_installation(
    fake: FakeGitHub, app: GithubIntegration
) -> None:
    """A transfer keeps the id; the former owner's installation no longer sees it."""
    fake.add_installation(3, account="psf")
    before = fake.transfer_repo("python/cpython", "psf", installation_id=3)
    assert before["full_name"] == "psf/cpython"
    assert app.get_repo_installation("psf", "cpython").id == 3
    with app.get_github_for_installation(1) as python, pytest.raises(UnknownObjectException):
        python.get_repo("psf/cpython").get_pull(7)
    with app.get_github_for_installation(3) as psf:
        assert psf.get_repo("python/cpython").get_pull(7).number == 7


# ---------------------------------------------------------------------------- branch protection


def test_required_status_checks_are_patched_in_place(fake: FakeGitHub, gh: Github) -> None:
    """PyGithub PATCHes checks only; GitHub keeps contexts in step and the other settings."""
    fake.set_protection("python/cpython", "main", contexts=["tests"], enforce_admins=True)
    branch = gh.get_repo("python/cpython").get_branch("main")
    assert branch.protected and branch.get_required_status_checks().contexts == ["tests"]
    result = branch.edit_required_status_checks(strict=True, checks=["tests", ("gatekeeper", 4242)])
    assert fake.calls[-1].json == {
        "strict": True,
        "checks": [{"context": "tests"}, {"context": "gatekeeper", "app_id": 4242}],
    }
    assert (result.strict, result.contexts) == (True, ["tests", "gatekeeper"])
    protection = fake.protection("python/cpython", "main")
    assert protection is not None and protection["enforce_admins"]["enabled"] is True
    assert protection["required_status_checks"]["checks"] == [
        {"context": "tests", "app_id": None},
        {"context": "gatekeeper", "app_id": 4242},
    ]


def test_unprotected_branch_and_put_protection(
    fake: FakeGitHub, app: GithubIntegration, gh: Github
) -> None:
    """An unprotected branch answers 404 'Branch not protected'; PUT stores the whole setting."""
    branch = gh.get_repo("python/cpython").get_branch("main")
    with pytest.raises(GithubException) as raised:  # not UnknownObjectException: no "not found"
        branch.get_protection()
    assert (raised.value.status, raised.value.data["message"]) == (404, "Branch not protected")
    body = {
        "required_status_checks": {"strict": False, "contexts": ["tests"]},
        "enforce_admins": True,
        "required_pull_request_reviews": None,
        "restrictions": None,
    }
    answer = requests.put(
        f"{fake.api_url}/repos/python/cpython/branches/main/protection",
        json=body,
        headers={"Authorization": f"token {app.get_access_token(1).token}"},
    )
    assert answer.status_code == 200
    assert answer.json() == fake.protection("python/cpython", "main")
    assert answer.json()["required_status_checks"]["contexts"] == ["tests"]
    assert fake.protection("python/cpython", "3.13") is None


def test_protection_without_status_checks(fake: FakeGitHub, gh: Github) -> None:
    """A branch protected without required checks answers 404 for its status checks."""
    fake.set_protection("python/cpython", "main", required_linear_history=True)
    branch = gh.get_repo("python/cpython").get_branch("main")
    assert branch.protected
    with pytest.raises(GithubException) as raised:
        branch.get_required_status_checks()
    assert raised.value.data["message"] == "Required status checks not enabled"
    protection = fake.protection("python/cpython", "main")
    assert protection is not None and protection["required_linear_history"]["enabled"]
    with pytest.raises(UnknownObjectException):
        gh.get_repo("python/cpython").get_branch("nope")


def test_pygithub_edit_protection_breaks_the_schema(fake: FakeGitHub, gh: Github) -> None:
    """Branch.edit_protection sends nulls the OpenAPI schema forbids: the app must PATCH instead."""
    branch = gh.get_repo("python/cpython").get_branch("main")
    with pytest.raises(GithubException) as raised:
        branch.edit_protection(strict=False, contexts=["tests"])
    assert raised.value.status == 422
    assert "'contexts' is a required property" in fake.violations.pop()


# ---------------------------------------------------------------------------- faults


def test_server_error_surfaces_as_github_exception(fake: FakeGitHub, gh: Github) -> None:
    """Without retries (GithubIntegration's default) a 500 raises GithubException(500)."""
    fake.fail_next("GET", r"/repos/python/cpython", status=500)
    with pytest.raises(GithubException) as raised:
        gh.get_repo("python/cpython")
    assert raised.value.status == 500
    assert gh.get_repo("python/cpython").full_name == "python/cpython"


def test_github_retry_retries_server_errors(fake: FakeGitHub) -> None:
    """GithubRetry retries a 500 at once with backoff_factor=0; when exhausted, requests raises."""
    retry = GithubRetry(total=2, backoff_factor=0)
    with integration(fake, retry=retry) as client:
        fake.fail_next("GET", r"/app", times=2)
        assert client.get_app().id == fake.app_id
        assert [call.status for call in fake.calls] == [500, 500, 200]
        fake.fail_next("GET", r"/app", times=3)
        with pytest.raises(requests.exceptions.RetryError):
            client.get_app()
    lenient = GithubRetry(total=1, backoff_factor=0, raise_on_status=False)
    with integration(fake, retry=lenient) as client:
        fake.fail_next("GET", r"/app", times=2, status=502)
        with pytest.raises(GithubException) as raised:
            client.get_app()
        assert raised.value.status == 502


def test_rate_limit_raises_without_sleeping(fake: FakeGitHub, gh: Github) -> None:
    """A rate-limited 403 is RateLimitExceededException; GithubRetry with max wait 0 won't sleep."""
    fake.fail_next("GET", r"/repos/[^/]+/[^/]+", rate_limited=True)
    with pytest.raises(RateLimitExceededException) as raised:
        gh.get_repo("python/cpython")
    assert raised.value.headers["x-ratelimit-remaining"] == "0"
    assert int(raised.value.headers["x-ratelimit-reset"]) > time.time()
    started = time.monotonic()
    with integration(fake, retry=GithubRetry(total=3, max_rate_limit_wait=0)) as client:
        fake.fail_next("GET", r"/app", rate_limited=True)
        with pytest.raises(RateLimitExceededExceedsMaxWait):
            client.get_app()
    assert time.monotonic() - started < 1


def test_a_hanging_response_times_out(fake: FakeGitHub) -> None:
    """hang_next delays an answer past the client's timeout (PyGithub's timeout is whole seconds)."""
    fake.hang_next("GET", r"/app", seconds=5)
    with integration(fake, timeout=1) as client, pytest.raises(requests.exceptions.ReadTimeout):
        client.get_app()


def test_a_lost_answer_still_creates_the_check_run(fake: FakeGitHub, gh: Github) -> None:
    """fail_next(after_effect=True) performs the POST, then answers 502: the run exists."""
    fake.fail_next("POST", r"/repos/.+/check-runs", status=502, after_effect=True)
    repo = gh.get_repo("python/cpython")
    with pytest.raises(GithubException) as raised:
        repo.create_check_run("mentor-approval", SHA, status="completed", conclusion="success")
    assert raised.value.status == 502
    [run] = fake.check_runs_for("python/cpython", SHA)
    assert (run["name"], run["conclusion"]) == ("mentor-approval", "success")
    assert [(c.method, c.status) for c in fake.writes()] == [("POST", 502)]
    repo.create_check_run("other", SHA, status="completed", conclusion="success")
    assert len(fake.check_runs_for("python/cpython", SHA)) == 2  # the fault was used up


def test_a_timed_out_write_is_performed(fake: FakeGitHub) -> None:
    """hang_next(after_effect=True) creates the run at once, and answers after the timeout."""
    fake.hang_next("POST", r"/repos/.+/check-runs", seconds=3, after_effect=True)
    with integration(fake, timeout=1) as client:
        repo = client.get_github_for_installation(1).get_repo("python/cpython")
        with pytest.raises(requests.exceptions.ReadTimeout):
            repo.create_check_run("mentor-approval", SHA, status="in_progress")
    assert [run["status"] for run in fake.check_runs_for("python/cpython", SHA)] == ["in_progress"]


def test_a_rate_limit_cannot_follow_an_effect(fake: FakeGitHub) -> None:
    """GitHub performs nothing it answers with a rate limit, so the fake refuses to pretend."""
    with pytest.raises(ValueError, match="rate limit"):
        fake.fail_next("POST", r"/repos/.+/check-runs", rate_limited=True, after_effect=True)


def test_writes_leave_out_token_minting(fake: FakeGitHub, gh: Github) -> None:
    """writes() lists what the app changed, not the tokens it minted; reset_calls forgets."""
    gh.get_repo("python/cpython").get_pull(7).create_review_request(reviewers=["mentor"])
    assert [(c.method, c.path, c.json) for c in fake.writes()] == [
        ("POST", "/repos/python/cpython/pulls/7/requested_reviewers", {"reviewers": ["mentor"]})
    ]
    fake.reset_calls()
    assert fake.calls == []


# ---------------------------------------------------------------------------- conditional requests, rate limit


def test_a_matching_if_none_match_is_a_free_304(fake: FakeGitHub, app: GithubIntegration) -> None:
    """A GET carries a weak ETag; sent back in If-None-Match (weak or strong, in a list) it gets
    a bodiless 304 with the same ETag, which is recorded but costs no rate limit."""
    headers, url = _auth(app), f"{fake.api_url}/repos/python/cpython"
    first = requests.get(url, headers=headers)
    etag = first.headers["ETag"]
    assert re.fullmatch(r'W/"[0-9a-f]{64}"', etag)
    assert first.headers["x-ratelimit-remaining"] == "4999"
    again = requests.get(url, headers={**headers, "If-None-Match": etag})
    assert (again.status_code, again.text, again.headers["ETag"]) == (304, "", etag)
    assert again.headers["x-ratelimit-remaining"] == "4999"
    strong = f'"other", {etag.removeprefix("W/")}'
    assert requests.get(url, headers={**headers, "If-None-Match": strong}).status_code == 304
    stale = requests.get(url, headers={**headers, "If-None-Match": 'W/"stale"'})
    assert (stale.status_code, stale.headers["x-ratelimit-remaining"]) == (200, "4998")
    assert [
        (call.status, call.counted) for call in fake.calls if call.path.endswith("cpython")
    ] == [
        (200, True),
        (304, False),
        (304, False),
        (200, True),
    ]
    assert [call.status for call in fake.counted_calls("installation:1")] == [200, 200]
    assert [call.path for call in fake.counted_calls("jwt")] == [
        "/app/installations/1/access_tokens"
    ]


def test_pygithub_sees_the_304(fake: FakeGitHub, gh: Github) -> None:
    """Requester.requestJson hands back the 304; an object's update() is False until it changes."""
    pull = gh.get_repo("python/cpython").get_pull(7)
    assert pull.etag is not None
    status, headers, body = gh.requester.requestJson(
        "GET", "/repos/python/cpython/pulls/7", headers={"If-None-Match": pull.etag}
    )
    assert (status, headers["etag"], body) == (304, pull.etag, "")
    assert pull.update() is False
    fake.push("python/cpython", 7, OTHER_SHA)
    assert pull.update() is True
    assert pull.head.sha == OTHER_SHA
    assert [call.status for call in fake.calls if call.path.endswith("/pulls/7")] == [
        200,
        304,
        304,
        200,
    ]
    assert len(fake.counted_calls("installation:1")) == 3  # the repository, the pull twice


def _pulls_page(gh: Github, page: int, etag: str | None = None) -> tuple[int, str]:
    """(status, ETag) of a page of open pulls, 100 a page, asked for conditionally with ``etag``."""
    status, headers, _ = gh.requester.requestJson(
        "GET",
        "/repos/python/cpython/pulls",
        parameters={"state": "open", "per_page": 100, "page": page},
        headers={"If-None-Match": etag} if etag else None,
    )
    return status, headers["etag"]


def _revalidate(gh: Github, etags: list[str]) -> list[int]:
    """The status of each page, 1 on, asked for with the ETag it had."""
    return [_pulls_page(gh, page, etag)[0] for page, etag in enumerate(etags, start=1)]


def test_each_list_page_has_its_own_etag(fake: FakeGitHub, gh: Github) -> None:
    """A new head commit on a pull of page 2 changes only page 2's ETag; a newly opened pull
    shifts every page, so both change."""
    for number in range(100, 200):  # with #7, 101 open pulls: #199..#100 on page 1, #7 on page 2
        fake.add_pull("python/cpython", number, author="bob", head_sha=SHA)
    etags = [_pulls_page(gh, page)[1] for page in (1, 2)]
    assert etags[0] != etags[1]
    assert _revalidate(gh, etags) == [304, 304]
    fake.push("python/cpython", 7, OTHER_SHA)
    assert _revalidate(gh, etags) == [304, 200]
    etags[1] = _pulls_page(gh, 2)[1]
    fake.add_pull("python/cpython", 200, author="bob", head_sha=SHA)
    assert _revalidate(gh, etags) == [200, 200]


def test_rate_limit_is_counted_per_credential_and_resource(
    fake: FakeGitHub, app: GithubIntegration, gh: Github
) -> None:
    """Each installation and the App's JWT have their own budget and search has its own;
    /rate_limit and an injected rate-limit answer use none of it."""
    gh.get_repo("python/cpython")
    assert gh.search_issues("is:pr author:alice").totalCount == 1
    fake.fail_next("GET", r"/repos/python/cpython", rate_limited=True)
    with pytest.raises(RateLimitExceededException):
        gh.get_repo("python/cpython")
    with app.get_github_for_installation(2) as other:
        other.get_repo("tiran/fork")
        assert other.get_rate_limit().resources.core.remaining == 4999
    limits = gh.get_rate_limit().resources
    assert (limits.core.remaining, limits.search.remaining) == (4999, 29)
    assert [call.path for call in fake.counted_calls("installation:1")] == [
        "/repos/python/cpython",
        "/search/issues",
    ]
    assert len(fake.counted_calls("jwt")) == 2  # a token for each installation
    search = requests.get(
        f"{fake.api_url}/search/issues", params={"q": "is:pr"}, headers=_auth(app)
    )
    assert (search.headers["x-ratelimit-resource"], search.headers["x-ratelimit-limit"]) == (
        "search",
        "30",
    )


# ---------------------------------------------------------------------------- the App's webhook deliveries


def _deliveries(app: GithubIntegration, per_page: int = 30) -> list[HookDeliverySummary]:
    """The App's webhook deliveries as PyGithub reads them, following the cursor."""
    first = {"per_page": per_page}
    return list(PaginatedList(HookDeliverySummary, app.requester, "/app/hook/deliveries", first))


def test_hook_deliveries_are_listed_newest_first_by_cursor(
    fake: FakeGitHub, app: GithubIntegration
) -> None:
    """Five deliveries, two a page: three pages linked by cursor=, shaped like GitHub's items."""
    ids = [
        fake.add_hook_delivery(
            guid=f"guid-{index}",
            event="pull_request",
            action="synchronize",
            status_code=500 if index == 3 else 200,
            delivered_at=f"2024-05-0{index + 1}T12:00:00Z",
            installation_id=1,
        )
        for index in range(5)
    ]
    deliveries = _deliveries(app, per_page=2)
    assert [delivery.id for delivery in deliveries] == ids[::-1]
    assert [(d.guid, d.status, d.status_code) for d in deliveries[:2]] == [
        ("guid-4", "OK", 200),
        ("guid-3", "Internal Server Error", 500),
    ]
    assert [call.query for call in fake.calls] == [
        {"per_page": "2"},
        {"per_page": "2", "cursor": f"v1_{ids[3]}"},
        {"per_page": "2", "cursor": f"v1_{ids[1]}"},
    ]
    status, headers, body = app.requester.requestJson(
        "GET", "/app/hook/deliveries", parameters={"per_page": 1}
    )
    assert status == 200 and "cursor=" in headers["link"] and 'rel="next"' in headers["link"]
    assert json.loads(body) == [
        {
            "id": ids[4],
            "guid": "guid-4",
            "delivered_at": "2024-05-05T12:00:00Z",
            "redelivery": False,
            "duration": 0.1,
            "status": "OK",
            "status_code": 200,
            "event": "pull_request",
            "action": "synchronize",
            "installation_id": 1,
            "repository_id": None,
        }
    ]
    answer = requests.get(f"{fake.api_url}/app/hook/deliveries", headers=_auth(app))
    assert answer.status_code == 401  # an installation token may not list the App's deliveries


def _redeliver(app: GithubIntegration, delivery_id: int) -> tuple[int, Any]:
    status, _, body = app.requester.requestJson(
        "POST", f"/app/hook/deliveries/{delivery_id}/attempts"
    )
    return status, json.loads(body)


def test_redelivery_resends_the_payload_signed(fake: FakeGitHub, app: GithubIntegration) -> None:
    """A redelivery is accepted with 202 {}, sent to hook_target with the same guid and event,
    signed with the secret, and listed first as a redelivery with the status it got; the
    target may call the fake while it handles it."""
    payload = {"action": "opened", "installation": {"id": 1}, "repository": {"id": 55}}
    failed = fake.add_hook_delivery(
        guid="abc", event="pull_request", status_code=500, payload=payload
    )
    received: list[tuple[dict[str, str], bytes]] = []

    def target(headers: dict[str, str], body: bytes) -> int:
        received.append((headers, body))
        return requests.get(f"{fake.api_url}/rate_limit", timeout=5).status_code

    fake.hook_target, fake.hook_secret = target, "s3cret"
    assert _redeliver(app, failed) == (202, {})
    assert fake.redelivery_requests == [failed]
    [(headers, body)] = received
    assert json.loads(body) == payload
    signature = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == f"sha256={signature}"
    assert (headers["X-GitHub-Delivery"], headers["X-GitHub-Event"]) == ("abc", "pull_request")
    again, original = _deliveries(app)
    assert (again.guid, again.redelivery, again.status, again.status_code) == (
        "abc",
        True,
        "OK",
        200,
    )
    assert (again.event, again.action, again.installation_id, again.repository_id) == (
        "pull_request",
        "opened",
        1,
        55,
    )
    assert (original.id, original.redelivery, original.status_code) == (failed, False, 500)


def test_redelivery_without_a_target_or_payload_is_only_recorded(
    fake: FakeGitHub, app: GithubIntegration
) -> None:
    """Without a payload nothing is sent, yet the request is recorded; an unknown id is 404."""
    fake.hook_target = lambda headers, body: pytest.fail("nothing to send")
    bare = fake.add_hook_delivery(
        guid="g", event="check_run", action="rerequested", status_code=502
    )
    assert _redeliver(app, bare) == (202, {})
    assert fake.redelivery_requests == [bare]
    assert [delivery.id for delivery in _deliveries(app)] == [bare]
    status, body = _redeliver(app, 999_999)
    assert (status, body["message"]) == (404, "Not Found")
    assert fake.redelivery_requests == [bare]


def test_a_failing_hook_target_is_a_violation(fake: FakeGitHub, app: GithubIntegration) -> None:
    """A target that raises fails the test through violations, and the attempt is listed as 500."""

    def broken(headers: dict[str, str], body: bytes) -> int:
        raise RuntimeError("boom")

    fake.hook_target = broken
    delivery = fake.add_hook_delivery(guid="g", event="pull_request", status_code=500, payload={})
    assert _redeliver(app, delivery) == (202, {})
    assert fake.violations.pop() == "hook_target raised RuntimeError('boom')"
    assert [(d.redelivery, d.status_code) for d in _deliveries(app)] == [(True, 500), (False, 500)]


# ---------------------------------------------------------------------------- latency


def _timed(request: Callable[[], Any]) -> float:
    started = time.monotonic()
    request()
    return time.monotonic() - started


@pytest.mark.parametrize(
    ("setting", "slow"),
    [
        ({"write": 0.5}, {"write"}),
        ({"read": 0.5}, {"read"}),
        ({"all": 0.5}, {"read", "write", "token"}),
    ],
    ids=["write", "read", "all"],
)
def test_latency_delays_its_kind_of_request(
    fake: FakeGitHub, app: GithubIntegration, setting: dict[str, float], slow: set[str]
) -> None:
    """write= delays writes (not token minting), read= GETs, all= every request."""
    headers = _auth(app)
    fake.latency(**setting)
    check_run = {"name": "gatekeeper", "head_sha": SHA}
    timings = {
        "read": _timed(
            lambda: requests.get(f"{fake.api_url}/repos/python/cpython", headers=headers)
        ),
        "write": _timed(
            lambda: requests.post(
                f"{fake.api_url}/repos/python/cpython/check-runs", json=check_run, headers=headers
            )
        ),
        "token": _timed(lambda: app.get_access_token(1)),
    }
    assert {kind for kind, seconds in timings.items() if seconds >= 0.5} == slow
    fake.latency()
    assert _timed(lambda: app.get_access_token(1)) < 0.5


def test_concurrent_writes_wait_side_by_side(fake: FakeGitHub, app: GithubIntegration) -> None:
    """Ten check-run POSTs at once with 0.3 s of write latency each take 0.3 s, not 3 s in all."""
    headers = _auth(app)
    fake.latency(write=0.3)

    def post(index: int) -> tuple[int, float]:
        started = time.monotonic()
        answer = requests.post(
            f"{fake.api_url}/repos/python/cpython/check-runs",
            json={"name": f"check-{index}", "head_sha": SHA},
            headers=headers,
            timeout=10,
        )
        return answer.status_code, time.monotonic() - started

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(post, range(10)))
    assert time.monotonic() - started < 2
    assert [status for status, _ in answers] == [201] * 10
    assert min(seconds for _, seconds in answers) >= 0.3
    assert len(fake.check_runs_for("python/cpython", SHA)) == 10


def test_latency_all_can_outlast_the_clients_timeout(fake: FakeGitHub) -> None:
    """latency(all=5.0) delays even token minting past a one-second client timeout."""
    fake.latency(all=5.0)
    with integration(fake, timeout=1) as client, pytest.raises(requests.exceptions.ReadTimeout):
        client.get_access_token(1)


# ---------------------------------------------------------------------------- check-run write times


def test_check_run_writes_are_timed(fake: FakeGitHub, gh: Github) -> None:
    """Each create and update is stored with both clocks on the run and in check_run_writes,
    when it is performed: after the write latency, not when the request arrived."""
    repo = gh.get_repo("python/cpython")
    before = time.monotonic()
    run = repo.create_check_run("gatekeeper", SHA, status="in_progress")
    fake.latency(write=0.2)
    sent = time.monotonic()
    run.edit(conclusion="success")
    writes = fake.check_runs[run.id]["writes"]
    assert [(write["status"], write["conclusion"]) for write in writes] == [
        ("in_progress", None),
        ("completed", "success"),
    ]
    assert before <= writes[0]["at"] <= sent
    assert writes[1]["at"] - sent >= 0.2
    assert abs(writes[1]["wall"] - time.time()) < 5
    assert fake.check_run_writes == [
        (writes[0]["at"], "python/cpython", SHA, None, run.id),
        (writes[1]["at"], "python/cpython", SHA, "success", run.id),
    ]
    assert fake.check_run_writes[1].conclusion == "success"
    assert "writes" not in repo.get_check_run(run.id).raw_data
    assert "writes" not in repo.get_commit(SHA).get_check_runs()[0].raw_data


# ---------------------------------------------------------------------------- OAuth and users


def test_oauth_web_flow(fake: FakeGitHub) -> None:
    """authorize redirects with a code and state; the code buys one user token, once."""
    fake.add_oauth_app("client", "secret")
    fake.oauth_next_login = "Mentor"
    callback = "http://app.test/auth/callback"
    answer = requests.get(
        f"{fake.url}/login/oauth/authorize",
        params={"client_id": "client", "redirect_uri": callback, "state": "xyz", "scope": ""},
        allow_redirects=False,
    )
    assert answer.status_code == 302
    location = urllib.parse.urlsplit(answer.headers["Location"])
    params = dict(urllib.parse.parse_qsl(location.query))
    assert (location.netloc, params["state"]) == ("app.test", "xyz")
    form = {"client_id": "client", "client_secret": "secret", "code": params["code"]}
    exchange = f"{fake.url}/login/oauth/access_token"
    accept_json = {"Accept": "application/json"}
    token = requests.post(exchange, data=form, headers=accept_json).json()
    assert token["token_type"] == "bearer"
    again = requests.post(exchange, data=form, headers=accept_json).json()
    assert again["error"] == "bad_verification_code"
    with Github(
        auth=Auth.Token(token["access_token"]), base_url=fake.api_url, **NO_THROTTLE
    ) as user:
        assert user.get_user().login == "Mentor"
    assert fake.calls[-1].auth == "oauth:Mentor"
    unknown = requests.get(f"{fake.url}/login/oauth/authorize", params={"client_id": "nope"})
    assert unknown.status_code == 400


def test_oauth_exchange_checks_the_client_secret(fake: FakeGitHub) -> None:
    """A wrong secret is reported the GitHub way: 200 with an error, form-encoded by default."""
    fake.add_oauth_app("client", "secret")
    answer = requests.post(
        f"{fake.url}/login/oauth/access_token",
        json={"client_id": "client", "client_secret": "wrong", "code": "x"},
    )
    assert answer.status_code == 200
    assert urllib.parse.parse_qs(answer.text)["error"] == ["incorrect_client_credentials"]


def test_users_and_rate_limit(fake: FakeGitHub, gh: Github) -> None:
    """Users are found case-insensitively; the bot is a Bot; /rate_limit counts the three."""
    fake.add_user("Mentor", user_id=77, name="A Mentor")
    mentor = gh.get_user("mentor")
    assert (mentor.login, mentor.id, mentor.name, mentor.type) == ("Mentor", 77, "A Mentor", "User")
    assert gh.get_user(fake.bot_login).type == "Bot"
    with pytest.raises(UnknownObjectException):
        gh.get_user("nobody")
    assert gh.get_rate_limit().resources.core.remaining == 4997


def test_a_renamed_user_keeps_its_id_and_frees_the_old_login(fake: FakeGitHub, gh: Github) -> None:
    """rename_user keeps the account's id (the one webhook payloads give the login); the old
    login answers 404 until add_user gives it to a new account with another id."""
    fake.add_user("colesbury")
    fake.add_pull("python/cpython", 8, author="colesbury", head_sha="a" * 40)
    fake.rename_user("colesbury", "colesbury-new")
    renamed = gh.get_user("colesbury-new")
    assert (renamed.login, renamed.id) == ("colesbury-new", default_user_id("colesbury"))
    with pytest.raises(UnknownObjectException):
        gh.get_user("colesbury")
    assert gh.get_repo("python/cpython").get_pull(8).user.login == "colesbury-new"
    stranger = fake.add_user("colesbury")
    assert stranger["id"] != default_user_id("colesbury")
    assert gh.get_user("colesbury").id == stranger["id"]


def test_get_user_answers_in_githubs_documented_shape(fake: FakeGitHub) -> None:
    """GET /users/{username} matches the operation's response schema in GitHub's OpenAPI
    description (the fake checks each answer it gives; a wrong one would be a violation)."""
    fake.add_user("Mentor", user_id=77, name="A Mentor")
    answer = requests.get(f"{fake.api_url}/users/mentor", timeout=5)
    assert answer.status_code == 200
    assert response_errors("/users/{username}", answer.json()) == []
    assert response_errors("/users/{username}", {"login": "mentor"}) != []


# ---------------------------------------------------------------------------- rulesets


def test_rulesets_and_branch_rules_have_githubs_shapes(
    fake: FakeGitHub, app: GithubIntegration
) -> None:
    """A repository's and its organisation's rulesets, listed (summaries), fetched (in full)
    and as effective rules of the default branch: each answer matches GitHub's documented
    shape; the list leaves the organisation's out with includes_parents=false."""
    rule = {
        "type": "required_status_checks",
        "parameters": {
            "required_status_checks": [{"context": "ci", "integration_id": 3}],
            "strict_required_status_checks_policy": False,
        },
    }
    own = fake.add_ruleset("python/cpython", name="ci", rules=[rule])
    org = fake.add_ruleset("python", name="linear", rules=[{"type": "required_linear_history"}])
    fake.add_ruleset("python/cpython", name="off", enforcement="disabled", rules=[rule])
    base, headers = f"{fake.api_url}/repos/python/cpython", _auth(app)

    listed = requests.get(f"{base}/rulesets", headers=headers, timeout=5).json()
    assert response_errors("/repos/{owner}/{repo}/rulesets", listed) == []
    assert {r["id"] for r in listed} >= {own["id"], org["id"]}
    assert all("rules" not in r for r in listed)
    own_only = requests.get(
        f"{base}/rulesets", params={"includes_parents": "false"}, headers=headers, timeout=5
    ).json()
    assert org["id"] not in {r["id"] for r in own_only}
    fetched = requests.get(f"{base}/rulesets/{own['id']}", headers=headers, timeout=5).json()
    assert response_errors("/repos/{owner}/{repo}/rulesets/{ruleset_id}", fetched) == []
    assert fetched["rules"] == [rule]

    rules = requests.get(f"{base}/rules/branches/main", headers=headers, timeout=5).json()
    assert response_errors("/repos/{owner}/{repo}/rules/branches/{branch}", rules) == []
    assert sorted((r["type"], r["ruleset_source_type"], r["ruleset_id"]) for r in rules) == [
        ("required_linear_history", "Organization", org["id"]),
        ("required_status_checks", "Repository", own["id"]),
    ]  # the disabled ruleset enforces nothing
    assert requests.get(f"{base}/rules/branches/dev", headers=headers, timeout=5).json() == []


def test_organisation_rulesets_need_the_org_the_plan_and_the_permission(
    fake: FakeGitHub, app: GithubIntegration
) -> None:
    """Another organisation's rulesets are 404; a plan without them is GitHub's 403 "Upgrade";
    without organization_administration an installation gets 403 "not accessible"."""
    url = f"{fake.api_url}/orgs/python/rulesets"
    assert (
        requests.get(
            f"{fake.api_url}/orgs/tiran/rulesets", headers=_auth(app), timeout=5
        ).status_code
        == 404
    )
    del fake.apps[fake.app_id].permissions["organization_administration"]
    refused = requests.get(url, headers=_auth(app), timeout=5)
    assert (refused.status_code, refused.json()["message"]) == (
        403,
        "Resource not accessible by integration",
    )
    fake.refuse_org_rulesets("python")
    upgrade = requests.get(url, headers=_auth(app), timeout=5)
    assert upgrade.status_code == 403 and upgrade.json()["message"].startswith("Upgrade to")


# ---------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize(
    "path",
    sorted((FIXTURES / "webhooks").glob("*/*.json")),
    ids=lambda path: f"{path.parent.name}/{path.stem}",
)
def test_webhook_fixtures_are_named_after_their_action(path: Path) -> None:
    """Each fixture is one payload whose action matches its file name."""
    payload = json.loads(path.read_text())
    assert payload.get("action", "ping") == path.stem


def created_app(fake: FakeGitHub, **manifest: Any) -> tuple[str, str]:
    """Post a manifest to the fake's "new App" page; returns the redirect's code and state."""
    document = {
        "name": "Other App",
        "url": "https://other.example",
        "hook_attributes": {"url": "https://other.example/hook"},
        "redirect_url": "https://other.example/back",
        "default_permissions": {"checks": "write", "metadata": "read"},
        "default_events": ["check_run"],
        **manifest,
    }
    answer = requests.post(
        f"{fake.url}/settings/apps/new",
        data={"manifest": json.dumps(document), "state": "s1"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    location = urllib.parse.urlsplit(answer.headers["Location"])
    assert location.netloc == "other.example" and location.path == "/back"
    query = urllib.parse.parse_qs(location.query)
    return query["code"][0], query["state"][0]


def test_an_app_from_a_manifest_is_an_app_of_its_own(fake: FakeGitHub) -> None:
    """A manifest creates a second App: its JWT, installations and check runs are its own."""
    from gatekeeper.github import GitHubNotFound, app_from_manifest

    code, state = created_app(fake)
    assert state == "s1"
    other = app_from_manifest(api_url=fake.api_url, code=code)
    assert (other.slug, other.name) == ("other-app", "Other App")
    assert other.pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert other.pem != fake.private_key_pem and other.id != fake.app_id
    with pytest.raises(GitHubNotFound):  # a code works once
        app_from_manifest(api_url=fake.api_url, code=code)

    fake.add_installation(3, account="python", app_id=other.id)
    fake.add_repo("python/devguide", installation_id=3)
    auth = Auth.AppAuth(other.id, other.pem)
    with GithubIntegration(auth=auth, base_url=fake.api_url, **NO_THROTTLE) as client:
        found = client.get_app()
        assert (found.id, found.permissions, found.events) == (
            other.id,
            {"checks": "write", "metadata": "read"},
            ["check_run"],
        )
        assert [i.id for i in client.get_installations()] == [3]
        with pytest.raises(UnknownObjectException):  # the first App's installation
            client.get_access_token(1)
        fake.add_commit("python/devguide", SHA)
        repo = client.get_github_for_installation(3).get_repo("python/devguide")
        assert repo.create_check_run("ci", SHA).app.id == other.id
    with integration(fake) as first:
        assert [i.id for i in first.get_installations()] == [1, 2]
        with pytest.raises(UnknownObjectException):
            first.get_access_token(3)


def test_a_manifest_code_expires_after_an_hour(fake: FakeGitHub) -> None:
    """An hour after the redirect the code is refused with a 404, as GitHub does."""
    code, _ = created_app(fake)
    fake.age_manifest_codes(3600)
    answer = requests.post(f"{fake.api_url}/app-manifests/{code}/conversions", timeout=10)
    assert answer.status_code == 404
    assert answer.json()["message"] == "Not Found"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"hook_attributes": {"active": True}}, "hook_attributes.url: must be an http(s) URL"),
        ({"default_permissions": {"checks": "rw"}}, "default_permissions.checks: 'rw'"),
        ({"hook_attribute": {}}, "hook_attribute: unknown manifest parameter"),
        ({"public": "no"}, "public: must be a bool"),
    ],
    ids=["hook-without-url", "bad-access", "misspelt", "wrong-type"],
)
def test_a_malformed_manifest_is_refused(fake: FakeGitHub, change: dict[str, Any], error: str):
    """A manifest off GitHub's documented shape is a 422 page and a recorded violation."""
    document = {"name": "Bad", "url": "https://bad.example", **change}
    answer = requests.post(
        f"{fake.url}/organizations/python/settings/apps/new",
        data={"manifest": json.dumps(document)},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 422
    assert len(fake.violations) == 1 and error in fake.violations[0]
    fake.violations.clear()  # expected here; the fixture asserts none are left
