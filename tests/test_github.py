"""The PyGithub gateway against the fake GitHub: auth, token reuse, failures as GitHubUnavailable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fakegithub import FakeGitHub
from gate_support import INSTALLATION, REPO
from gatekeeper.config import Settings
from gatekeeper.github import (
    CheckRunBody,
    GitHubApp,
    GitHubNotConfigured,
    GitHubNotFound,
    GitHubUnavailable,
)

HEAD = "a" * 40


@pytest.fixture
def fake():
    with FakeGitHub() as fake:
        fake.add_installation(INSTALLATION)
        fake.add_repo(REPO, installation_id=INSTALLATION)
        fake.add_installation(2, account="pypa")
        fake.add_repo("pypa/pip", installation_id=2)
        yield fake
        assert fake.violations == []


@pytest.fixture
def gateway(fake):
    settings = Settings(
        database_url="sqlite://",
        github_app_id=fake.app_id,
        github_private_key=fake.private_key_pem,
        github_api_url=fake.api_url,
        github_timeout=1,
        github_backoff=0.0,
        github_seconds_between_requests=0.0,
        github_seconds_between_writes=0.0,
    )
    app = GitHubApp(settings)
    yield app
    app.close()


def body(**changes) -> CheckRunBody:
    values = dict(
        name="mentor-approval",
        head_sha=HEAD,
        conclusion="action_required",
        title="Waiting for a mentor's approval",
        summary="…",
        details_url="https://gatekeeper.example/pulls/python/cpython/7",
        external_id="python/cpython#7",
        completed_at=datetime(2024, 11, 20, tzinfo=UTC),
        actions=(
            {
                "label": "Approve merge",
                "identifier": "approve",
                "description": "Mentors only: let this PR merge",
            },
        ),
    )
    values.update(changes)
    return CheckRunBody(**values)


def test_not_configured_is_refused():
    """Without an App id and key the gateway cannot be built, and says what is missing."""
    with pytest.raises(GitHubNotConfigured, match="GITHUB_APP_ID"):
        GitHubApp(Settings(database_url="sqlite://"))


def test_one_token_per_installation_is_reused(fake, gateway):
    """Each installation mints one token, reused for every later request."""
    fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    fake.add_pull("pypa/pip", 3, author="pradyunsg", head_sha="b" * 40)
    for _ in range(3):
        gateway.pull(installation_id=INSTALLATION, repo=REPO, number=7)
        gateway.pull(installation_id=2, repo="pypa/pip", number=3)
    assert fake.tokens_issued == 2


def test_create_then_update_a_check_run_in_place(fake, gateway):
    """Creating posts once; updating by id PATCHes the same run, with no extra read."""
    fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    run_id = gateway.post_check_run(
        installation_id=INSTALLATION, repo=REPO, body=body(), existing_id=None
    )
    assert (
        gateway.find_check_run(
            installation_id=INSTALLATION, repo=REPO, head_sha=HEAD, name="mentor-approval"
        )
        == run_id
    )
    fake.reset_calls()
    gateway.post_check_run(
        installation_id=INSTALLATION,
        repo=REPO,
        body=body(conclusion="success", actions=()),
        existing_id=run_id,
    )
    assert [(c.method, c.path) for c in fake.calls] == [
        ("PATCH", f"/repos/{REPO}/check-runs/{run_id}")
    ]
    [run] = fake.check_runs_for(REPO, HEAD)
    assert run["conclusion"] == "success"


def test_reviews_and_pulls_parse_from_rest(fake, gateway):
    """REST answers come back as the same typed views the webhooks use, states uppercase."""
    fake.add_pull(REPO, 7, author="MPage", head_sha=HEAD, title="Fix the thing")
    fake.add_review(REPO, 7, reviewer="ColesBury", state="APPROVED", commit_id=HEAD)
    pull = gateway.pull(installation_id=INSTALLATION, repo=REPO, number=7)
    assert (pull.author, pull.author_display, pull.title, pull.head_sha) == (
        "mpage",
        "MPage",
        "Fix the thing",
        HEAD,
    )
    [review] = gateway.reviews(installation_id=INSTALLATION, repo=REPO, number=7)
    assert (review.reviewer, review.state, review.commit_id) == ("colesbury", "APPROVED", HEAD)


def test_search_follows_pagination(fake, gateway):
    """A mentee's open pull requests are all found, across result pages."""
    for number in range(1, 36):
        fake.add_pull(REPO, number, author="mpage", head_sha=f"{number:040x}")
    fake.add_pull(REPO, 99, author="guido", head_sha="f" * 40)
    found = gateway.open_pulls_by(installation_id=INSTALLATION, author="mpage")
    assert sorted(number for _, number, _ in found) == list(range(1, 36))
    assert {repo.lower() for repo, _, _ in found} == {REPO}
    assert all(updated_at is not None for _, _, updated_at in found)


def test_installations_and_installation_for(fake, gateway):
    """The App lists its installations with their repositories and finds a repository's own."""
    assert gateway.installations() == {INSTALLATION: [REPO], 2: ["pypa/pip"]}
    assert gateway.installation_for("pypa/pip") == 2


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"status": 500, "times": 3}, "GitHub"),
        ({"rate_limited": True}, "403"),
    ],
    ids=["server-error", "rate-limited"],
)
def test_failures_become_github_unavailable(fake, gateway, fault, message):
    """5xx after retries and rate limits surface as GitHubUnavailable, never a PyGithub exception."""
    fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    fake.fail_next("GET", rf"/repos/{REPO}/pulls/7", **fault)
    with pytest.raises(GitHubUnavailable, match=message):
        gateway.pull(installation_id=INSTALLATION, repo=REPO, number=7)


def test_timeout_becomes_github_unavailable(fake, gateway):
    """A GitHub that does not answer in time is unavailable, not a hang."""
    fake.add_pull(REPO, 7, author="mpage", head_sha=HEAD)
    fake.hang_next("POST", rf"/repos/{REPO}/check-runs", seconds=3)
    with pytest.raises(GitHubUnavailable, match="could not be reached"):
        gateway.post_check_run(
            installation_id=INSTALLATION, repo=REPO, body=body(), existing_id=None
        )


def test_not_found_is_its_own_error(fake, gateway):
    """A repository the installation cannot see is GitHubNotFound."""
    with pytest.raises(GitHubNotFound):
        gateway.pull(installation_id=INSTALLATION, repo="pypa/pip", number=1)
