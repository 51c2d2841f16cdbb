"""What the GitHub App must be granted and subscribed to: one list for `register` and `doctor`.

Plain data with no imports beyond the standard library, so the manifest page and the
health checks can read it without loading PyGithub.
"""

from __future__ import annotations

from collections.abc import Mapping

# Repository permissions Gatekeeper cannot work without, at the least access it needs.
# Pull requests: write also covers the bypass comment, which is posted through the issues
# API (`POST /repos/{owner}/{repo}/issues/{number}/comments`): on a pull request GitHub
# accepts either "Issues" or "Pull requests" write for it, so Issues is not asked for.
REQUIRED_PERMISSIONS: Mapping[str, str] = {
    "checks": "write",
    "pull_requests": "write",
    "contents": "read",
    "metadata": "read",
    # GitHub sends ``merge_group`` only to an App that may read merge queues.
    "merge_queues": "read",
}

# Only `gatekeeper protect` writes a repository's rulesets and branch protection; without it
# doctor reports, not fails (reading a branch's effective rules needs only metadata: read).
OPTIONAL_PERMISSIONS: Mapping[str, str] = {
    "administration": "write",
}

# Only `gatekeeper protect --org` writes an organisation's rulesets: asked for, optionally,
# only by an App that belongs to an organisation.
ORGANISATION_PERMISSIONS: Mapping[str, str] = {
    "organization_administration": "write",
}

# Webhook events the App must be subscribed to (installation events are always sent).
REQUIRED_EVENTS: tuple[str, ...] = (
    "pull_request",
    "pull_request_review",
    "check_run",
    "check_suite",
    "issue_comment",
    "merge_group",
)

_ACCESS_RANK = {"none": 0, "read": 1, "write": 2, "admin": 3}


def covers(granted: str | None, needed: str) -> bool:
    """Whether a granted access level ("read", "write", ...) is at least the needed one."""
    return _ACCESS_RANK.get(granted or "none", 0) >= _ACCESS_RANK[needed]


def missing_permissions(
    granted: Mapping[str, str], required: Mapping[str, str] = REQUIRED_PERMISSIONS
) -> dict[str, str]:
    """The required permissions (name -> access) that ``granted`` does not cover."""
    return {
        name: access for name, access in required.items() if not covers(granted.get(name), access)
    }


def missing_events(subscribed: list[str] | tuple[str, ...]) -> list[str]:
    """The required events the App is not subscribed to, in the order they are listed."""
    have = set(subscribed)
    return [event for event in REQUIRED_EVENTS if event not in have]
