"""gatekeeper protect: the check becomes required from this App only, nothing else changes.

By default through a ruleset (a repository's, or with --org an organisation's); with
--branch-protection through classic branch protection."""

from __future__ import annotations

import json

import pytest

from gate_support import INSTALLATION, REPO
from gatekeeper import github_of
from gatekeeper.cli import cli
from gatekeeper.github import GitHubUnavailable, StatusChecks
from gatekeeper.protection import refusal, require_check, ruleset_body, with_check

CHECK = "mentor-approval"


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
    result = runner.invoke(cli, ["protect", REPO, "--branch-protection"])
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
    result = gate_app.test_cli_runner().invoke(
        cli, ["protect", REPO, "--branch", "main", "--dry-run", "--branch-protection"]
    )
    assert result.exit_code == 0
    assert "would require" in result.output and "ci" in result.output
    assert github_fake.writes() == []


def test_protect_twice_is_a_no_op(gate_app, github_fake):
    """A branch that already requires our check is left alone."""
    github_fake.set_protection(
        REPO, "main", checks=[{"context": "mentor-approval", "app_id": github_fake.app_id}]
    )
    result = gate_app.test_cli_runner().invoke(cli, ["protect", REPO, "--branch-protection"])
    assert "nothing to change" in result.output
    assert github_fake.writes() == []


def test_unprotected_branch_is_a_clear_error(gate_app, github_fake):
    """Without branch protection there is nothing to PATCH; the user is told what to do, exit 1."""
    result = gate_app.test_cli_runner().invoke(cli, ["protect", REPO, "--branch-protection"])
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

    app = create_app({"database_url": f"sqlite:///{tmp_path / 'p.sqlite'}", "TESTING": True})
    result = app.test_cli_runner().invoke(cli, ["protect", REPO])
    assert result.exit_code == 1
    assert "GitHub is not configured" in result.stderr
    app.extensions["gatekeeper.engine"].dispose()


def test_protect_keeps_any_source_checks_open_to_any_source(gate_app, github_fake):
    """A required check with no app pinned is sent back with app_id -1 ("any source"), not unpinned."""
    github_fake.set_protection(REPO, "main", contexts=["docs"])
    result = gate_app.test_cli_runner().invoke(cli, ["protect", REPO, "--branch-protection"])
    assert result.exit_code == 0, result.output
    [patch] = github_fake.writes()
    assert {"context": "docs", "app_id": -1} in patch.json["checks"]
    assert {"context": "mentor-approval", "app_id": github_fake.app_id} in patch.json["checks"]


# ---------------------------------------------------------------- rulesets


def protect(app, *args: str):
    """``gatekeeper protect ARGS``, run as the operator does."""
    return app.test_cli_runner().invoke(cli, ["protect", *args])


def status_checks_rule(*checks: dict) -> dict:
    """A ``required_status_checks`` rule requiring ``checks``, as GitHub stores it."""
    return {
        "type": "required_status_checks",
        "parameters": {
            "required_status_checks": list(checks),
            "strict_required_status_checks_policy": False,
        },
    }


def required_on(fake, repo: str, branch: str) -> set[tuple[str, int | None, str]]:
    """(context, integration_id, source type) of each check the branch's effective rules
    require, as anyone with read access would see them."""
    result = set()
    for rule in fake.effective_rules(repo, branch):
        if rule["type"] == "required_status_checks":
            for check in rule["parameters"]["required_status_checks"]:
                result.add(
                    (check["context"], check.get("integration_id"), rule["ruleset_source_type"])
                )
    return result


def test_ruleset_body_keeps_what_is_not_gatekeepers():
    """Other rules, other required checks and excluded refs stay; the check is pinned in place."""
    current = {
        "name": CHECK,
        "target": "branch",
        "enforcement": "disabled",
        "conditions": {"ref_name": {"include": ["refs/heads/old"], "exclude": ["refs/heads/x"]}},
        "rules": [
            {"type": "deletion"},
            status_checks_rule(
                {"context": "ci", "integration_id": 15368},
                {"context": CHECK},
                {"context": "docs"},
            ),
        ],
    }
    body = ruleset_body(current, check_name=CHECK, app_id=42, branches=("main", "3.13"))
    assert body == {
        "name": CHECK,
        "target": "branch",
        "enforcement": "active",
        "conditions": {
            "ref_name": {
                "include": ["refs/heads/main", "refs/heads/3.13"],
                "exclude": ["refs/heads/x"],
            }
        },
        "rules": [
            {"type": "deletion"},
            status_checks_rule(
                {"context": "ci", "integration_id": 15368},
                {"context": CHECK, "integration_id": 42},
                {"context": "docs"},
            ),
        ],
    }
    assert current["rules"][1]["parameters"]["required_status_checks"][1] == {"context": CHECK}


def test_protect_creates_a_repository_ruleset_pinned_to_the_app(gate_app, github_fake):
    """No ruleset yet: one POST creates 'mentor-approval' on the default branch, the check
    pinned to this App; the branch's effective rules then require it from the App."""
    result = protect(gate_app, REPO)
    assert result.exit_code == 0, result.output
    assert "created ruleset 'mentor-approval'" in result.output
    assert [(c.method, c.path) for c in github_fake.writes()] == [
        ("POST", f"/repos/{REPO}/rulesets")
    ]
    [ruleset] = github_fake.rulesets(REPO)
    assert ruleset["name"] == CHECK and ruleset["enforcement"] == "active"
    assert ruleset["target"] == "branch"
    assert ruleset["conditions"] == {"ref_name": {"include": ["~DEFAULT_BRANCH"], "exclude": []}}
    assert ruleset["rules"] == [
        status_checks_rule({"context": CHECK, "integration_id": github_fake.app_id})
    ]
    assert required_on(github_fake, REPO, "main") == {(CHECK, github_fake.app_id, "Repository")}
    assert github_fake.protection(REPO, "main") is None  # branch protection untouched


def test_protect_covers_the_branches_given(gate_app, github_fake):
    """--branch, repeated: the ruleset names those branches instead of the default one."""
    result = protect(gate_app, REPO, "--branch", "main", "--branch", "3.13")
    assert result.exit_code == 0, result.output
    [ruleset] = github_fake.rulesets(REPO)
    assert ruleset["conditions"]["ref_name"]["include"] == ["refs/heads/main", "refs/heads/3.13"]
    assert required_on(github_fake, REPO, "3.13") == {(CHECK, github_fake.app_id, "Repository")}
    assert required_on(github_fake, REPO, "3.12") == set()


def test_protect_updates_its_ruleset_in_place_and_leaves_others_alone(gate_app, github_fake):
    """A 'mentor-approval' ruleset that accepts the check from anyone is PUT back under the same
    id with the App pinned, keeping its other rule and check; the repository's other ruleset
    and the organisation's are not touched."""
    ours = github_fake.add_ruleset(
        REPO,
        name=CHECK,
        enforcement="disabled",
        rules=[{"type": "deletion"}, status_checks_rule({"context": "ci"}, {"context": CHECK})],
    )
    release = github_fake.add_ruleset(
        REPO, name="release", rules=[{"type": "non_fast_forward"}], ref_include=["refs/heads/3.*"]
    )
    github_fake.add_ruleset("python", name=CHECK, rules=[status_checks_rule({"context": "lint"})])
    untouched = github_fake.rulesets("python")

    result = protect(gate_app, REPO)

    assert result.exit_code == 0, result.output
    assert f"updated ruleset 'mentor-approval' (id {ours['id']})" in result.output
    assert [(c.method, c.path) for c in github_fake.writes()] == [
        ("PUT", f"/repos/{REPO}/rulesets/{ours['id']}")
    ]
    after = {ruleset["id"]: ruleset for ruleset in github_fake.rulesets(REPO)}
    assert set(after) == {ours["id"], release["id"]}
    assert after[ours["id"]]["enforcement"] == "active"
    assert after[ours["id"]]["rules"] == [
        {"type": "deletion"},
        status_checks_rule(
            {"context": "ci"}, {"context": CHECK, "integration_id": github_fake.app_id}
        ),
    ]
    assert after[release["id"]] == release
    assert github_fake.rulesets("python") == untouched


def test_a_second_run_writes_nothing(gate_app, github_fake):
    """protect, then protect again: the second run finds its ruleset as wanted and sends nothing."""
    assert protect(gate_app, REPO).exit_code == 0
    github_fake.reset_calls()
    result = protect(gate_app, REPO)
    assert result.exit_code == 0, result.output
    assert "nothing to change" in result.output
    assert github_fake.writes() == []


def test_dry_run_prints_the_body_and_writes_nothing(gate_app, github_fake):
    """--dry-run prints the ruleset it would create; the real run then sends exactly that."""
    result = protect(gate_app, REPO, "--dry-run")
    assert result.exit_code == 0, result.output
    assert github_fake.writes() == []
    first, _, body = result.output.partition("\n")
    assert first == f"{REPO}: would create ruleset 'mentor-approval':"
    printed = json.loads(body)
    assert protect(gate_app, REPO).exit_code == 0
    [post] = github_fake.writes()
    assert post.json == printed


def test_protect_org_makes_one_organisation_ruleset(gate_app, github_fake):
    """--org python: one organisation ruleset over every repository; a repository without a
    ruleset of its own then requires the check from the App; a second run writes nothing."""
    github_fake.add_repo("python/peps", installation_id=INSTALLATION, default_branch="trunk")

    result = protect(gate_app, "--org", "python")

    assert result.exit_code == 0, result.output
    assert "organisation python: created ruleset 'mentor-approval'" in result.output
    [post] = github_fake.writes()
    assert (post.method, post.path) == ("POST", "/orgs/python/rulesets")
    assert post.json["conditions"] == {
        "ref_name": {"include": ["~DEFAULT_BRANCH"], "exclude": []},
        "repository_name": {"include": ["~ALL"], "exclude": []},
    }
    assert github_fake.rulesets(REPO) == []
    for repo, branch in ((REPO, "main"), ("python/peps", "trunk")):
        assert required_on(github_fake, repo, branch) == {
            (CHECK, github_fake.app_id, "Organization")
        }
    github_fake.reset_calls()
    assert "nothing to change" in protect(gate_app, "--org", "python").output
    assert github_fake.writes() == []


def test_protect_org_over_the_repositories_given(gate_app, github_fake):
    """--org python cpython python/peps: the ruleset names those repositories only."""
    github_fake.add_repo("python/peps", installation_id=INSTALLATION)
    github_fake.add_repo("python/devguide", installation_id=INSTALLATION)
    result = protect(gate_app, "--org", "python", "cpython", "python/peps")
    assert result.exit_code == 0, result.output
    [ruleset] = github_fake.rulesets("python")
    assert ruleset["conditions"]["repository_name"]["include"] == ["cpython", "peps"]
    assert required_on(github_fake, "python/devguide", "main") == set()
    assert required_on(github_fake, "python/peps", "main") == {
        (CHECK, github_fake.app_id, "Organization")
    }


def test_a_plan_without_organisation_rulesets_is_one_clear_line(gate_app, github_fake):
    """GitHub answers 403 "Upgrade ..." for a plan without organisation rulesets: exit 1, one
    line that says to protect each repository instead, nothing written."""
    github_fake.refuse_org_rulesets("python")
    result = protect(gate_app, "--org", "python")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "Upgrade to GitHub Enterprise" in line
    assert "run `gatekeeper protect python/REPO` for each repository instead" in line
    assert "Traceback" not in result.output
    assert github_fake.writes() == []


@pytest.mark.parametrize(
    ("args", "permission", "named", "source"),
    [
        ((REPO,), "administration", "Administration: write", REPO),
        (
            ("--org", "python"),
            "organization_administration",
            "Organization administration: write",
            "python",
        ),
    ],
)
def test_a_missing_permission_is_one_clear_line(
    gate_app, github_fake, args, permission, named, source
):
    """Without the administration permission GitHub answers 403: the line names the permission
    and nothing is stored."""
    del github_fake.apps[github_fake.app_id].permissions[permission]
    result = protect(gate_app, *args)
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "Resource not accessible by integration" in line
    assert f"grant the App {named}" in line
    assert github_fake.rulesets(source) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give one OWNER/REPO, or --org ORG"),
        ((REPO, "python/peps"), "give one OWNER/REPO, or --org ORG"),
        (("--org", "python", "--branch-protection"), "--branch-protection works on one repository"),
        (("--org", "python", "pypa/pip"), "pypa/pip is not a repository of python"),
        (("--org", "nowhere"), "the App is not installed on nowhere"),
    ],
)
def test_usage_mistakes_are_one_clear_line(gate_app, github_fake, args, message):
    """A missing or extra repository, a flag that does not fit, a stranger's repository or an
    organisation without the App: exit 1, one line, nothing sent."""
    result = protect(gate_app, *args)
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert message in line
    assert github_fake.writes() == []


@pytest.mark.parametrize(
    ("status", "message", "org", "advice"),
    [
        (
            403,
            "Resource not accessible by integration",
            None,
            "grant the App Administration: write",
        ),
        (
            403,
            "Resource not accessible by integration",
            "python",
            "grant the App Organization administration: write",
        ),
        (403, "Upgrade to GitHub Enterprise", "python", "run `gatekeeper protect python/REPO`"),
        (404, "Not Found", "python", "run `gatekeeper protect python/REPO`"),
        (
            403,
            "Upgrade to GitHub Pro or make this repository public",
            None,
            "its owner's plan has no rulesets for this repository",
        ),
    ],
)
def test_refusals_say_what_to_do(status, message, org, advice):
    """Each way GitHub refuses a ruleset gets its advice after GitHub's own message."""
    error = GitHubUnavailable(f"GitHub answered {status}: {message}", status=status)
    said = str(refusal(error, org=org))
    assert said.startswith(f"GitHub answered {status}: {message}: ")
    assert advice in said


def test_other_failures_pass_through_unchanged():
    """A 5xx or a 422 is not a refusal of rulesets: it is reported as GitHub said it."""
    error = GitHubUnavailable("GitHub answered 422: Validation Failed", status=422)
    assert refusal(error, org=None) is error
