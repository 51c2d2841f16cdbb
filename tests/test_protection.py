"""gatekeeper protect: the check becomes required from this App only, nothing else changes."""

from __future__ import annotations

import pytest

from gate_support import REPO
from gatekeeper import github_of
from gatekeeper.github import GitHubUnavailable, StatusChecks
from gatekeeper.protection import require_check, with_check


def test_with_check_keeps_others_and_replaces_our_context():
    """Other required checks stay; an existing 'mentor-approval' from anywhere is pinned to our app."""
    current = StatusChecks(
        strict=True, checks=(("ci", 15368), ("mentor-approval", None), ("docs", None))
    )
    after = with_check(current, check_name="mentor-approval", app_id=42)
    assert after == StatusChecks(
        strict=True, checks=(("ci", 15368), ("docs", None), ("mentor-approval", 42))
    )


def test_protect_patches_required_checks_keeping_existing(gate_app, github_fake):
    """protect PATCHes required_status_checks with our app id, keeping 'ci' and other settings."""
    github_fake.set_protection(
        REPO, "main", checks=[{"context": "ci", "app_id": 15368}], strict=True, enforce_admins=True
    )
    runner = gate_app.test_cli_runner()
    from gatekeeper.cli import cli

    result = runner.invoke(cli, ["protect", REPO])
    assert result.exit_code == 0, result.output
    assert "now requires" in result.output
    writes = github_fake.writes()
    assert [(c.method, c.path) for c in writes] == [
        ("PATCH", f"/repos/{REPO}/branches/main/protection/required_status_checks")
    ]
    protection = github_fake.protection(REPO, "main")
    checks = {(c["context"], c["app_id"]) for c in protection["required_status_checks"]["checks"]}
    assert checks == {("ci", 15368), ("mentor-approval", github_fake.app_id)}
    assert protection["required_status_checks"]["strict"] is True
    assert protection["enforce_admins"]["enabled"] is True


def test_protect_dry_run_writes_nothing(gate_app, github_fake):
    """--dry-run prints the change and sends no write."""
    github_fake.set_protection(REPO, "main", contexts=["ci"])
    from gatekeeper.cli import cli

    result = gate_app.test_cli_runner().invoke(
        cli, ["protect", REPO, "--branch", "main", "--dry-run"]
    )
    assert result.exit_code == 0
    assert "would require" in result.output and "ci" in result.output
    assert github_fake.writes() == []


def test_protect_twice_is_a_no_op(gate_app, github_fake):
    """A branch that already requires our check is left alone."""
    github_fake.set_protection(
        REPO, "main", checks=[{"context": "mentor-approval", "app_id": github_fake.app_id}]
    )
    from gatekeeper.cli import cli

    result = gate_app.test_cli_runner().invoke(cli, ["protect", REPO])
    assert "nothing to change" in result.output
    assert github_fake.writes() == []


def test_unprotected_branch_is_a_clear_error(gate_app, github_fake):
    """Without branch protection there is nothing to PATCH; the user is told what to do, exit 1."""
    from gatekeeper.cli import cli

    result = gate_app.test_cli_runner().invoke(cli, ["protect", REPO])
    assert result.exit_code == 1
    assert "branch protection" in result.stderr
    assert github_fake.writes() == []
    with gate_app.app_context(), pytest.raises(GitHubUnavailable):
        require_check(
            github_of(gate_app),
            repo=REPO,
            branch="main",
            check_name="mentor-approval",
            dry_run=True,
        )


def test_protect_without_github_configured(tmp_path):
    """Without the App's credentials protect says GitHub is not configured."""
    from gatekeeper import create_app
    from gatekeeper.cli import cli

    app = create_app({"database_url": f"sqlite:///{tmp_path / 'p.sqlite'}", "TESTING": True})
    result = app.test_cli_runner().invoke(cli, ["protect", REPO])
    assert result.exit_code == 1
    assert "GitHub is not configured" in result.stderr
    app.extensions["gatekeeper.engine"].dispose()


def test_protect_keeps_any_source_checks_open_to_any_source(gate_app, github_fake):
    """A required check with no app pinned is sent back with app_id -1 ("any source"), not unpinned."""
    github_fake.set_protection(REPO, "main", contexts=["docs"])
    from gatekeeper.cli import cli

    result = gate_app.test_cli_runner().invoke(cli, ["protect", REPO])
    assert result.exit_code == 0, result.output
    [patch] = github_fake.writes()
    assert {"context": "docs", "app_id": -1} in patch.json["checks"]
    assert {"context": "mentor-approval", "app_id": github_fake.app_id} in patch.json["checks"]
