"""``gatekeeper protect``: make the check required, accepted only from this App.

By default through one ruleset named after the check, of a repository or of a whole
organisation (GitHub's current mechanism: it pins the check to the App's ``integration_id``,
layers with branch protection, and anyone with read access can see it); on request through
classic branch protection, for GitHub Enterprise Server versions without rulesets.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

from gatekeeper.github import (
    GitHubApp,
    GitHubNotFound,
    GitHubUnavailable,
    StatusChecks,
)

DEFAULT_BRANCH = "~DEFAULT_BRANCH"
ALL_REPOSITORIES = "~ALL"
STATUS_CHECKS_RULE = "required_status_checks"


@dataclasses.dataclass(frozen=True)
class ProtectionChange:
    """The required status checks of a branch before and after."""

    repo: str
    branch: str
    before: StatusChecks
    after: StatusChecks

    @property
    def changed(self) -> bool:
        """Whether anything needs to be sent to GitHub."""
        return self.before != self.after

    def describe(self, *, dry_run: bool) -> str:
        """A human summary of the change."""
        where = f"{self.repo}@{self.branch}"
        if not self.changed:
            return f"{where}: already requires {_names(self.after)}; nothing to change."
        verb = "would require" if dry_run else "now requires"
        return f"{where}: {verb} {_names(self.after)} (was: {_names(self.before) or 'none'})."


def with_check(current: StatusChecks, *, check_name: str, app_id: int) -> StatusChecks:
    """``current`` plus the check from ``app_id``, every other required check kept as it was."""
    others = tuple(check for check in current.checks if check[0] != check_name)
    return StatusChecks(strict=current.strict, checks=(*others, (check_name, app_id)))


def require_check(
    github: GitHubApp, *, repo: str, branch: str | None, check_name: str, dry_run: bool
) -> ProtectionChange:
    """PATCH the branch's required status checks (never the PUT that resets other settings)."""
    installation_id = github.installation_for(repo)
    branch = branch or github.default_branch(installation_id=installation_id, repo=repo)
    try:
        before = github.required_status_checks(
            installation_id=installation_id, repo=repo, branch=branch
        )
    except GitHubNotFound:
        raise GitHubUnavailable(
            f"branch {branch} has no required status checks to add to; turn on branch protection"
            " with 'Require status checks to pass' in the repository settings first"
        ) from None
    change = ProtectionChange(
        repo, branch, before, with_check(before, check_name=check_name, app_id=github.app_id)
    )
    if change.changed and not dry_run:
        github.set_required_status_checks(
            installation_id=installation_id, repo=repo, branch=branch, checks=change.after
        )
    return change


def _names(checks: StatusChecks) -> str:
    return ", ".join(
        f"{context} (app {app_id})" if app_id else context for context, app_id in checks.checks
    )


# ---------------------------------------------------------------- rulesets


@dataclasses.dataclass(frozen=True)
class RulesetChange:
    """The ruleset named after the check, as it was (None: missing) and as it must be."""

    where: str  # OWNER/REPO, or "organisation ORG"
    ruleset_id: int | None  # None until it exists (a dry run of a new one)
    before: dict[str, Any] | None
    after: dict[str, Any]

    @property
    def changed(self) -> bool:
        """Whether anything needs to be sent to GitHub."""
        return self.before != self.after

    def describe(self, *, dry_run: bool, check_name: str, app_id: int) -> str:
        """A human summary of the change; a dry run shows the body it would send."""
        name = f"ruleset {self.after['name']!r}"
        if self.ruleset_id is not None:
            name += f" (id {self.ruleset_id})"
        required = f"{check_name} from App {app_id} on {_targets(self.after)}"
        if not self.changed:
            return f"{self.where}: {name} already requires {required}; nothing to change."
        verb = "create" if self.before is None else "update"
        if dry_run:
            return f"{self.where}: would {verb} {name}:\n{json.dumps(self.after, indent=2)}"
        return f"{self.where}: {verb}d {name}: it requires {required}."


def ruleset_body(
    current: dict[str, Any] | None,
    *,
    check_name: str,
    app_id: int,
    branches: tuple[str, ...] = (),
    repositories: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The ruleset that requires the check from ``app_id`` on ``branches`` (default: the
    default branch), built on ``current`` so that what Gatekeeper does not own stays as it
    was: other rules, other required checks, the excluded refs. ``repositories`` (names, or
    none for all) makes it an organisation's ruleset."""
    body = copy.deepcopy(current) if current is not None else {}
    conditions = body.get("conditions") or {}
    refs = [f"refs/heads/{branch}" for branch in branches] or [DEFAULT_BRANCH]
    wanted: dict[str, Any] = {
        "ref_name": {"exclude": [], **(conditions.get("ref_name") or {}), "include": refs}
    }
    if repositories is not None:
        names = list(repositories) or [ALL_REPOSITORIES]
        previous = conditions.get("repository_name") or {}
        wanted["repository_name"] = {"exclude": [], **previous, "include": names}
    return {
        "name": check_name,
        "target": "branch",
        "enforcement": "active",
        "conditions": wanted,
        "rules": _with_rule_check(body.get("rules") or [], check_name=check_name, app_id=app_id),
    }


def _with_rule_check(
    rules: list[dict[str, Any]], *, check_name: str, app_id: int
) -> list[dict[str, Any]]:
    """``rules`` with the check pinned to ``app_id`` in its required status checks rule (made
    if missing); an entry for the check from elsewhere is replaced where it stands."""
    ours = {"context": check_name, "integration_id": app_id}
    rules = [dict(rule) for rule in rules]
    rule = next((r for r in rules if r.get("type") == STATUS_CHECKS_RULE), None)
    if rule is None:
        rule = {"type": STATUS_CHECKS_RULE}
        rules.append(rule)
    parameters = dict(rule.get("parameters") or {})
    checks: list[dict[str, Any]] = []
    for check in parameters.get(STATUS_CHECKS_RULE) or []:
        if check.get("context") != check_name:
            checks.append(check)
        elif ours not in checks:
            checks.append(ours)
    if ours not in checks:
        checks.append(ours)
    parameters[STATUS_CHECKS_RULE] = checks
    parameters.setdefault("strict_required_status_checks_policy", False)
    rule["parameters"] = parameters
    return rules


def require_check_by_ruleset(
    github: GitHubApp,
    *,
    repo: str,
    branches: tuple[str, ...],
    check_name: str,
    dry_run: bool,
) -> RulesetChange:
    """Create or update in place the repository's ruleset named after the check."""
    installation_id = github.installation_for(repo)
    scope = f"repos/{repo}"
    try:
        return _apply(github, installation_id, scope, repo, check_name, dry_run, branches=branches)
    except GitHubUnavailable as error:
        raise refusal(error, org=None) from None


def require_check_for_organisation(
    github: GitHubApp,
    *,
    org: str,
    repositories: tuple[str, ...],
    branches: tuple[str, ...],
    check_name: str,
    dry_run: bool,
) -> RulesetChange:
    """Create or update in place one organisation ruleset over ``repositories`` (none: all)."""
    installation_id, login = github.organisation_installation(org)
    try:
        return _apply(
            github,
            installation_id,
            f"orgs/{login}",
            f"organisation {login}",
            check_name,
            dry_run,
            branches=branches,
            repositories=repositories,
        )
    except GitHubUnavailable as error:
        raise refusal(error, org=login) from None


def _apply(
    github: GitHubApp,
    installation_id: int,
    scope: str,
    where: str,
    check_name: str,
    dry_run: bool,
    *,
    branches: tuple[str, ...],
    repositories: tuple[str, ...] | None = None,
) -> RulesetChange:
    before = github.find_ruleset(installation_id=installation_id, scope=scope, name=check_name)
    after = ruleset_body(
        before.body if before else None,
        check_name=check_name,
        app_id=github.app_id,
        branches=branches,
        repositories=repositories,
    )
    change = RulesetChange(
        where, before.id if before else None, before.body if before else None, after
    )
    if change.changed and not dry_run:
        saved = github.save_ruleset(
            installation_id=installation_id, scope=scope, ruleset_id=change.ruleset_id, body=after
        )
        change = dataclasses.replace(change, ruleset_id=saved.id)
    return change


def refusal(error: GitHubUnavailable, *, org: str | None) -> GitHubUnavailable:
    """GitHub's refusal of a ruleset in one line that says what to do instead."""
    message = str(error)
    if error.status == 403 and "not accessible by integration" in message:
        permission = "Organization administration" if org else "Administration"
        return GitHubUnavailable(
            f"{message}: grant the App {permission}: write in its settings and accept it on"
            " the installation (or make the check required by hand)",
            status=403,
        )
    if org and error.status in (403, 404):
        return GitHubUnavailable(
            f"{message}: {org}'s plan has no organisation rulesets, or the App may not manage"
            f" them; run `gatekeeper protect {org}/REPO` for each repository instead",
            status=error.status,
        )
    if error.status == 403 and "Upgrade" in message:
        return GitHubUnavailable(
            f"{message}: its owner's plan has no rulesets for this repository (GitHub's"
            " message says what would)",
            status=403,
        )
    return error


def _targets(body: dict[str, Any]) -> str:
    conditions = body.get("conditions") or {}
    refs = ", ".join(conditions.get("ref_name", {}).get("include", []))
    if "repository_name" not in conditions:
        return refs
    return f"{refs} of {', '.join(conditions['repository_name'].get('include', []))}"
