"""Test events built from GitHub's real webhook examples, changing only logins, shas and numbers.

Every person in a payload is an account with an id: by default ``default_user_id(login)``
(what the fake GitHub gives that login), or the id a builder is given (``author_id=``,
``reviewer_id=``, ``sender_id=``, ...) for a renamed account or a login taken over.

The payloads live in tests/fixtures/webhooks/<event>/<action>.json (see the README there).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from fakegithub import default_repo_id, default_user_id

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
_delivery_ids = itertools.count(1)


@cache
def _example(event: str, action: str) -> dict[str, Any]:
    return json.loads((FIXTURES / event / f"{action}.json").read_text())


def example(event: str, action: str) -> dict[str, Any]:
    """A fresh copy of the real example payload for ``event``/``action``."""
    return copy.deepcopy(_example(event, action))


def _user(
    user: dict[str, Any], login: str, *, user_type: str = "User", user_id: int | None = None
) -> None:
    user["login"] = login
    user["id"] = user_id or default_user_id(login)
    user["type"] = user_type


def _repository(repo: dict[str, Any], full_name: str, repo_id: int | None = None) -> None:
    owner, name = full_name.split("/")
    repo["full_name"], repo["name"] = full_name, name
    repo["id"] = repo_id or default_repo_id(full_name)
    if "owner" in repo:
        _user(repo["owner"], owner, user_type="Organization")


class Events:
    """Builds payloads for one repository and installation."""

    def __init__(
        self, *, repo: str = "python/cpython", installation_id: int = 1, repo_id: int | None = None
    ) -> None:
        """``repo_id`` is the repository's GitHub id in every payload: by default the one the
        fake GitHub gives a repository of that name (``default_repo_id``); give the old one
        to speak of a repository renamed or transferred since."""
        self.repo = repo
        self.installation_id = installation_id
        self.repo_id = repo_id or default_repo_id(repo)

    def _envelope(
        self, payload: dict[str, Any], sender: str, sender_id: int | None = None
    ) -> dict[str, Any]:
        _repository(payload["repository"], self.repo, self.repo_id)
        kind = "Bot" if sender.endswith("[bot]") else "User"
        _user(payload["sender"], sender, user_type=kind, user_id=sender_id)
        payload["installation"] = {"id": self.installation_id, "node_id": "MDIz"}
        return payload

    def _pull(
        self,
        pr: dict[str, Any],
        *,
        number: int,
        author: str,
        head_sha: str,
        updated_at: str,
        fork: str | None = None,
        author_id: int | None = None,
        base: str = "main",
    ) -> None:
        pr["number"] = number
        pr["html_url"] = f"https://github.com/{self.repo}/pull/{number}"
        pr["updated_at"] = updated_at
        _user(pr["user"], author, user_id=author_id)
        pr["head"]["sha"] = head_sha
        pr["head"]["ref"] = f"{author}/change-{number}"
        _repository(pr["base"]["repo"], self.repo, self.repo_id)
        pr["base"]["ref"] = base  # the fake GitHub's default branch, unless told
        _repository(pr["head"]["repo"], fork or self.repo, None if fork else self.repo_id)

    def pull_request(
        self,
        action: str,
        *,
        number: int,
        author: str,
        head_sha: str,
        updated_at: str = "2024-11-20T10:00:00Z",
        sender: str | None = None,
        draft: bool = False,
        merged: bool = False,
        merged_by: str | None = None,
        fork: str | None = None,
        author_id: int | None = None,
        sender_id: int | None = None,
        merged_by_id: int | None = None,
        base: str = "main",
        base_from: str | None = None,
    ) -> dict[str, Any]:
        """A ``pull_request`` event (the sender is the author unless told otherwise);
        ``base_from`` makes an ``edited`` one a change of base."""
        # The examples have no "edited" (nor every other action): those reuse "opened".
        known = (FIXTURES / "pull_request" / f"{action}.json").exists()
        payload = example("pull_request", action if known else "opened")
        payload["action"] = action
        pr = payload["pull_request"]
        self._pull(
            pr,
            number=number,
            author=author,
            head_sha=head_sha,
            updated_at=updated_at,
            fork=fork,
            author_id=author_id,
            base=base,
        )
        payload["number"] = number
        if base_from is not None:
            payload["changes"] = {"base": {"ref": {"from": base_from}, "sha": {"from": "0" * 40}}}
        pr["draft"] = draft
        if action == "closed":
            pr["state"] = "closed"
            pr["merged"] = merged
            pr["merged_at"] = updated_at if merged else None
            if merged:
                pr["merged_by"] = {}
                _user(pr["merged_by"], merged_by or author, user_id=merged_by_id)
        if sender is None:
            sender_id = sender_id or author_id
        return self._envelope(payload, sender or author, sender_id)

    def review(
        self,
        action: str,
        *,
        number: int,
        author: str,
        head_sha: str,
        reviewer: str,
        state: str,
        review_id: int,
        commit_id: str | None = None,
        submitted_at: str = "2024-11-20T11:00:00Z",
        updated_at: str = "2024-11-20T11:00:00Z",
        reviewer_id: int | None = None,
        author_id: int | None = None,
        base: str = "main",
    ) -> dict[str, Any]:
        """A ``pull_request_review`` event (states lowercase, as webhooks send them)."""
        payload = example(
            "pull_request_review", "dismissed" if action == "dismissed" else "submitted"
        )
        payload["action"] = action
        self._pull(
            payload["pull_request"],
            number=number,
            author=author,
            head_sha=head_sha,
            updated_at=updated_at,
            author_id=author_id,
            base=base,
        )
        review = payload["review"]
        review["id"], review["state"] = review_id, state.lower()
        review["commit_id"] = commit_id or head_sha
        review["submitted_at"] = submitted_at
        _user(review["user"], reviewer, user_id=reviewer_id)
        return self._envelope(payload, reviewer, reviewer_id)

    def check_run(
        self,
        action: str,
        *,
        number: int,
        head_sha: str,
        sender: str,
        app_id: int,
        name: str = "mentor-approval",
        identifier: str = "approve",
        sender_id: int | None = None,
    ) -> dict[str, Any]:
        """A ``check_run`` event on our check run for PR ``number``."""
        payload = example("check_run", action)
        run = payload["check_run"]
        run["name"], run["head_sha"] = name, head_sha
        run["external_id"] = f"{self.repo}#{number}"
        run["app"]["id"] = app_id
        for pr in run["pull_requests"]:
            pr["number"], pr["head"]["sha"] = number, head_sha
        if action == "requested_action":
            payload["requested_action"] = {"identifier": identifier}
        return self._envelope(payload, sender, sender_id)

    def comment(
        self,
        action: str,
        *,
        number: int,
        sender: str,
        body: str,
        comment_id: int = 9001,
        on_pull: bool = True,
        created_at: str | None = None,
        sender_id: int | None = None,
    ) -> dict[str, Any]:
        """An ``issue_comment`` event, by default on a pull request, written now (or then)."""
        payload = example("issue_comment", action)
        issue, comment = payload["issue"], payload["comment"]
        issue["number"] = number
        if on_pull:
            issue["pull_request"] = {
                "url": f"https://api.github.com/repos/{self.repo}/pulls/{number}",
                "html_url": f"https://github.com/{self.repo}/pull/{number}",
            }
        else:
            issue.pop("pull_request", None)
        comment["id"], comment["body"] = comment_id, body
        comment["created_at"] = created_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _user(comment["user"], sender, user_id=sender_id)
        return self._envelope(payload, sender, sender_id)

    def check_suite(self, action: str, *, head_sha: str, numbers: list[int], sender: str = "mpage"):
        """A ``check_suite`` event for ``head_sha`` and the pull requests ``numbers``."""
        payload = example("check_suite", action)
        suite = payload["check_suite"]
        suite["head_sha"] = head_sha
        template = example("check_suite", "rerequested")["check_suite"]["pull_requests"][0]
        suite["pull_requests"] = []
        for number in numbers:
            pr = copy.deepcopy(template)
            pr["number"], pr["head"]["sha"] = number, head_sha
            suite["pull_requests"].append(pr)
        return self._envelope(payload, sender)

    def merge_group(
        self,
        action: str = "checks_requested",
        *,
        head_sha: str,
        number: int | None = None,
        base: str = "main",
        parent_sha: str = "b" * 40,
        reason: str = "merged",
        sender: str = "mpage",
    ) -> dict[str, Any]:
        """A ``merge_group`` event for the group adding PR ``number`` to ``base``'s queue.

        GitHub's branch for it is ``gh-readonly-queue/<base>/pr-<number>-<parent_sha>``, the
        parent being the commit the group is built on (its ``base_sha``). Without ``number``
        the example's own ref is kept. The examples have no ``destroyed``: it is the same
        group with a ``reason`` (merged, invalidated or dequeued), as GitHub's schema has it.
        """
        payload = example("merge_group", "checks_requested")
        payload["action"] = action
        group = payload["merge_group"]
        group["head_sha"] = group["head_commit"]["id"] = head_sha
        if number is not None:
            group["head_ref"] = f"refs/heads/gh-readonly-queue/{base}/pr-{number}-{parent_sha}"
            group["base_ref"], group["base_sha"] = f"refs/heads/{base}", parent_sha
        if action == "destroyed":
            payload["reason"] = reason
        return self._envelope(payload, sender)

    def installation(
        self, action: str, *, repos: list[str], sender: str = "ambv"
    ) -> dict[str, Any]:
        """An ``installation`` event covering ``repos``."""
        payload = example("installation", action)
        payload["installation"]["id"] = self.installation_id
        payload["repositories"] = [_listed(r) for r in repos]
        _user(payload["sender"], sender)
        return payload

    def installation_repositories(
        self, action: str, *, added: list[str] = (), removed: list[str] = ()
    ) -> dict[str, Any]:
        """An ``installation_repositories`` event."""
        payload = example("installation_repositories", action)
        payload["installation"]["id"] = self.installation_id
        payload["repositories_added"] = [_listed(r) for r in added]
        payload["repositories_removed"] = [_listed(r) for r in removed]
        return payload


def _listed(full_name: str) -> dict[str, Any]:
    """A repository as ``installation*`` events list it (``private`` left out: not said)."""
    return {
        "id": default_repo_id(full_name),
        "full_name": full_name,
        "name": full_name.split("/")[1],
    }


def signed(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 header GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(
    client,
    event: str,
    payload: dict[str, Any],
    *,
    secret: str = "webhook-secret",
    delivery_id: str | None = None,
    close: bool = True,
):
    """POST a signed delivery to the app, as GitHub does, and close the response."""
    body = json.dumps(payload).encode()
    response = client.post(
        "/webhooks/github",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id or f"delivery-{next(_delivery_ids)}",
            "X-Hub-Signature-256": signed(secret, body),
        },
    )
    if close:
        response.close()
    return response
