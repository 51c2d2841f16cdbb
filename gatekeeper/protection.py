"""``gatekeeper protect``: require the check in branch protection, accepted only from this App."""

from __future__ import annotations

import dataclasses

from gatekeeper.github import GitHubApp, GitHubNotFound, GitHubUnavailable, StatusChecks


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
