"""The one module that imports PyGithub: App authentication, check runs, pulls, reviews,
branch protection and rulesets.

Everything else calls :class:`GitHubApp` and gets plain data back (``events.PullInfo``, ...).
Any failure talking to GitHub surfaces as :class:`GitHubUnavailable`, so callers can record
the work as pending instead of losing it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import requests
import urllib3
from github import Auth, Github, GithubException, GithubIntegration, GithubRetry

from gatekeeper import metrics
from gatekeeper.config import Settings

if TYPE_CHECKING:  # the outbox, which builds check bodies, imports this module's peers
    from gatekeeper.outbox import CheckAction
from gatekeeper.events import (
    PayloadError,
    Person,
    PullInfo,
    ReviewInfo,
    person,
    pull_info,
    review_info,
    timestamp,
)

T = TypeVar("T")


class GitHubNotConfigured(Exception):
    """The App's id or private key is missing, so nothing can be sent to GitHub."""


class GitHubUnavailable(Exception):
    """GitHub refused or failed a request (5xx, timeout, rate limit, ...)."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_at: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_at = retry_at  # a rate limit's reset, as a Unix time, when GitHub said

    @property
    def permanent(self) -> bool:
        """A refusal that asking again will not change (422, 404, ...); rate limits are not."""
        # 401: a token revoked or the clock skewed a moment; 403 and 429: rate limits.
        return (
            self.status is not None
            and 400 <= self.status < 500
            and self.status
            not in (
                401,
                403,
                429,
            )
        )


class GitHubNotFound(GitHubUnavailable):
    """GitHub answered 404: the repository, branch or object is not visible to the App."""


class CountingRetry(GithubRetry):
    """PyGithub's retry policy, which also counts every answer (and every failure to get
    one) for ``gatekeeper_github_requests_total``: urllib3 asks it about each response."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        metrics.github_request(method, status_code)
        return super().is_retry(method, status_code, has_retry_after)

    def increment(
        self, method: str | None = None, url: str | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        response = kwargs.get("response", args[0] if args else None)
        if response is None:  # no answer at all: a refused connection, a timeout
            metrics.github_request(method or "unknown", None)
        return super().increment(method, url, *args, **kwargs)


@dataclasses.dataclass(frozen=True)
class CheckRunBody:
    """A completed check run as Gatekeeper posts it: what ``outbox.CheckBody`` stores, plus
    the run's name, its commit and when it completed, which the outbox keeps outside it."""

    name: str
    head_sha: str
    conclusion: str
    title: str
    summary: str
    details_url: str
    external_id: str
    completed_at: datetime
    actions: tuple[CheckAction, ...] = ()


@dataclasses.dataclass(frozen=True)
class StatusChecks:
    """A branch's required status checks: (context, app_id or None) pairs and ``strict``."""

    strict: bool
    checks: tuple[tuple[str, int | None], ...]


@dataclasses.dataclass(frozen=True)
class Ruleset:
    """A repository's or organisation's ruleset as GitHub answers it: its id and the fields
    Gatekeeper writes (``name``, ``target``, ``enforcement``, ``conditions``, ``rules``)."""

    id: int
    body: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class RuleCheck:
    """A check one ruleset requires on a branch, with the App it must come from (None: any)."""

    context: str
    integration_id: int | None
    ruleset_id: int
    source: str  # the repository (OWNER/REPO) or organisation the ruleset belongs to
    organisation: bool


RULESET_FIELDS = ("name", "target", "enforcement", "conditions", "rules")


class GitHubApp:
    """Talks to GitHub as the App and as its installations, one cached client per installation."""

    def __init__(self, settings: Settings) -> None:
        if not settings.github_app_configured:
            raise GitHubNotConfigured(
                "GitHub is not configured: set GITHUB_APP_ID and GITHUB_PRIVATE_KEY"
            )
        assert settings.github_app_id is not None and settings.github_private_key is not None
        self.app_id = settings.github_app_id
        self._integration = GithubIntegration(
            auth=Auth.AppAuth(settings.github_app_id, settings.github_private_key),
            base_url=settings.github_api_url,
            timeout=int(settings.github_timeout),
            seconds_between_requests=settings.github_seconds_between_requests,
            seconds_between_writes=settings.github_seconds_between_writes,
            retry=CountingRetry(
                total=settings.github_retries,
                backoff_factor=settings.github_backoff,
                # Never sleep for a rate limit inside a call: the worker keeps the work and
                # retries it after the reset, doing other installations' work meanwhile.
                max_rate_limit_wait=0,
                # Only idempotent requests are retried: a POST that failed with a 5xx may
                # still have created its check run, which the next attempt finds and updates.
                allowed_methods=frozenset({"GET", "PATCH", "PUT", "DELETE"}),
            ),
        )
        self._clients: dict[int, Github] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close every HTTP connection pool."""
        for client in self._clients.values():
            client.close()
        self._integration.close()

    def _client(self, installation_id: int) -> Github:
        # PyGithub's installation auth renews its token only when it expires, so keeping one
        # client per installation keeps one token per hour instead of one per request.
        with self._lock:
            client = self._clients.get(installation_id)
            if client is None:
                eager = self._integration.get_github_for_installation(installation_id)
                # Lazy objects cost no GET until a field is read: posting a check run to a
                # repository is then one request, not two.
                client = eager.withLazy(True)
                eager.close()
                # Mint the token now, under the lock: PyGithub mints on first use without
                # one, so threads meeting a new client at once would each mint their own.
                auth = client.requester.auth
                if auth is not None:
                    _call(lambda: auth.token)
                self._clients[installation_id] = client
            return client

    def _repo(self, installation_id: int, repo: str) -> Any:
        return self._client(installation_id).get_repo(repo)

    def _call_as(self, installation_id: int | None, operation: Callable[[], T]) -> T:
        """``_call`` with one credential (None: the App's JWT), then record what GitHub's
        ``X-RateLimit-Remaining`` said is left of its budget (PyGithub keeps the last one)."""
        try:
            return _call(operation)
        finally:
            client = self._clients.get(installation_id) if installation_id is not None else None
            requester = client.requester if client is not None else self._integration.requester
            remaining, _limit = requester.rate_limiting
            if remaining >= 0:
                metrics.rate_limit_remaining(installation_id, remaining)

    # ------------------------------------------------------------------ installations

    def installation_for(self, repo: str) -> int:
        """The installation id that covers ``repo``."""
        owner, name = repo.split("/", 1)
        return self._call_as(None, lambda: self._integration.get_repo_installation(owner, name).id)

    def repository(self, *, installation_id: int, repo: str) -> RepositoryInfo:
        """A repository's id, current name and visibility (a former name is redirected)."""

        def fetch() -> RepositoryInfo:
            data = self._repo(installation_id, repo).raw_data  # lazy: this is the GET
            try:
                return RepositoryInfo(
                    github_id=int(data["id"]),
                    full_name=str(data["full_name"]),
                    private=bool(data.get("private")),
                )
            except (KeyError, TypeError, ValueError) as error:
                raise PayloadError(f"the repository lacks {error}") from None

        return self._call_as(installation_id, fetch)

    def installations(self) -> dict[int, list[str]]:
        """Every installation of the App and the repositories it covers."""

        def fetch() -> dict[int, list[str]]:
            found = {}
            for installation in self._integration.get_installations():
                repos = installation.get_repos()
                found[installation.id] = [repo.full_name for repo in repos]
            return found

        return _call(fetch)

    # ------------------------------------------------------------------ health (doctor)

    def app_info(self) -> AppInfo:
        """The App as GitHub knows it (``GET /app``): proves the JWT is accepted."""

        def fetch() -> AppInfo:
            data = self._integration.get_app().raw_data
            return AppInfo(
                slug=data.get("slug") or "",
                permissions=dict(data.get("permissions") or {}),
                events=list(data.get("events") or []),
            )

        return self._call_as(None, fetch)

    def installation_accounts(self) -> dict[int, str]:
        """Every installation of the App, by id, with the account it is installed on."""

        def fetch() -> dict[int, str]:
            return {
                installation.id: (installation.raw_data.get("account") or {}).get("login", "")
                for installation in self._integration.get_installations()
            }

        return self._call_as(None, fetch)

    def installation_repos(self, installation_id: int) -> dict[str, str]:
        """The repositories one installation covers, with their default branches; asking
        mints the installation's token, so an answer also proves it is reachable."""

        def fetch() -> dict[str, str]:
            installation = self._integration.get_app_installation(installation_id)
            return {
                repo.raw_data["full_name"]: repo.raw_data.get("default_branch") or "main"
                for repo in installation.get_repos()
            }

        return self._call_as(None, fetch)

    def branch_required_checks(
        self, *, installation_id: int, repo: str, branch: str
    ) -> StatusChecks | None:
        """A branch's required checks as its summary shows them (no administration
        permission needed); None when the branch requires none."""

        def fetch() -> StatusChecks | None:
            data = self._repo(installation_id, repo).get_branch(branch).raw_data
            required = (data.get("protection") or {}).get("required_status_checks") or {}
            if not data.get("protected") or not (
                required.get("checks") or required.get("contexts")
            ):
                return None
            return _status_checks(required)

        return self._call_as(installation_id, fetch)

    # ------------------------------------------------------------------ check runs

    def find_check_run(
        self, *, installation_id: int, repo: str, head_sha: str, name: str
    ) -> int | None:
        """The id of this App's newest check run called ``name`` on ``head_sha``, if any."""

        def fetch() -> int | None:
            runs = (
                self._repo(installation_id, repo)
                .get_commit(head_sha)
                .get_check_runs(check_name=name)
            )
            own = [run for run in runs if run.app is None or run.app.id == self.app_id]
            return max((run.id for run in own), default=None)

        return self._call_as(installation_id, fetch)

    def post_check_run(
        self, *, installation_id: int, repo: str, body: CheckRunBody, existing_id: int | None
    ) -> int:
        """Create the check run, or update ``existing_id`` in place; returns its id."""
        fields: dict[str, Any] = {
            "details_url": body.details_url,
            "external_id": body.external_id,
            "status": "completed",
            "conclusion": body.conclusion,
            "completed_at": body.completed_at,
            "output": {"title": body.title, "summary": body.summary},
            "actions": [dict(action) for action in body.actions],
        }

        def create() -> int:
            target = self._repo(installation_id, repo)
            if existing_id is None:
                return target.create_check_run(body.name, body.head_sha, **fields).id
            target.get_check_run(existing_id).edit(name=body.name, **fields)
            return existing_id

        return self._call_as(installation_id, create)

    # ------------------------------------------------------------------ pull requests

    def pull(self, *, installation_id: int, repo: str, number: int) -> PullInfo:
        """One pull request as it is now."""
        return self._call_as(
            installation_id,
            lambda: pull_info(self._repo(installation_id, repo).get_pull(number).raw_data),
        )

    def commit_tree(self, *, installation_id: int, repo: str, sha: str) -> str:
        """The tree (the content) of one commit: ``GET /repos/{o}/{r}/git/commits/{sha}``."""
        return self._call_as(
            installation_id,
            lambda: self._repo(installation_id, repo).get_git_commit(sha).tree.sha,
        )

    def open_pulls_if_changed(
        self, *, installation_id: int, repo: str, etags: list[str]
    ) -> tuple[list[PullInfo], list[str]]:
        """The open pull requests on list pages that changed since ``etags``, and the new ETags.

        Each page is asked for with ``If-None-Match``; GitHub answers an unchanged page with
        a 304, which does not count against the rate limit, so an unchanged repository costs
        nothing. Pull requests on unchanged pages are not returned (they were seen before).
        """

        def fetch() -> tuple[list[PullInfo], list[str]]:
            requester = self._client(installation_id).requester
            url = f"/repos/{repo}/pulls"
            changed: list[PullInfo] = []
            new_etags: list[str] = []
            page = 1
            while True:
                headers = {"If-None-Match": etags[page - 1]} if page <= len(etags) else {}
                status, answer_headers, body = requester.requestJson(
                    "GET",
                    url,
                    parameters={"state": "open", "per_page": 100, "page": page},
                    headers=headers,
                )
                lowered = {k.lower(): v for k, v in answer_headers.items()}
                if status == 304:
                    new_etags.append(etags[page - 1])
                    more = page < len(etags)
                elif 200 <= status < 300:
                    new_etags.append(lowered.get("etag", ""))
                    changed += [
                        info
                        for item in json.loads(body)
                        if (info := _parsed(pull_info, item)) is not None
                    ]
                    more = 'rel="next"' in lowered.get("link", "")
                    if more and _next_page(lowered.get("link", "")) != page + 1:
                        # A renamed repository's list is redirected, and PyGithub follows
                        # the redirect without the query: every page would be the first.
                        raise GitHubUnavailable(
                            f"{repo}'s pull requests are redirected (renamed or transferred?)"
                        )
                else:
                    raise _status_error(status, lowered, body)
                if not more:
                    return changed, new_etags
                page += 1

        return self._call_as(installation_id, fetch)

    def open_pulls_by(
        self, *, installation_id: int, author: str, private_only: bool = False
    ) -> list[tuple[str, int, datetime | None]]:
        """(repo, number, updated_at) of open pull requests by ``author`` the installation sees:
        those of every public repository and of its own private ones (``private_only``: those)."""
        query = f"is:pr is:open author:{author}" + (" is:private" if private_only else "")

        def search() -> list[tuple[str, int, datetime | None]]:
            found = self._client(installation_id).search_issues(query)
            return [
                (
                    item.repository_url.rsplit("/repos/", 1)[1],
                    item.number,
                    timestamp(item.updated_at),  # in the search answer: no request more
                )
                for item in found
            ]

        return _call(search)

    def account(self, *, installation_id: int, login: str) -> Person | None:
        """The account now under ``login`` (``GET /users/{login}``); None if there is none."""

        def fetch() -> Person:
            data = self._client(installation_id).get_user(login).raw_data
            return person({"user": data}, "user", "users")

        try:
            return self._call_as(installation_id, fetch)
        except GitHubNotFound:  # no such account (now): nothing to learn
            return None

    def reviews(self, *, installation_id: int, repo: str, number: int) -> list[ReviewInfo]:
        """Every submitted review of a pull request, oldest first."""

        def fetch() -> list[ReviewInfo]:
            pull = self._repo(installation_id, repo).get_pull(number)
            return [
                info
                for review in pull.get_reviews()
                if review.raw_data.get("state") != "PENDING"
                and (info := _parsed(review_info, review.raw_data)) is not None
            ]

        return self._call_as(installation_id, fetch)

    def request_reviewers(
        self, *, installation_id: int, repo: str, number: int, logins: list[str]
    ) -> None:
        """Ask ``logins`` to review the pull request."""
        self._call_as(
            installation_id,
            lambda: (
                self._repo(installation_id, repo)
                .get_pull(number)
                .create_review_request(reviewers=logins)
            ),
        )

    # ------------------------------------------------------------------ comments

    def create_comment(self, *, installation_id: int, repo: str, number: int, body: str) -> int:
        """Comment on a pull request (through the issues API, as GitHub has it); its id."""
        return self._call_as(
            installation_id,
            lambda: self._repo(installation_id, repo).get_issue(number).create_comment(body).id,
        )

    def find_comment(
        self, *, installation_id: int, repo: str, number: int, marker: str
    ) -> int | None:
        """The id of the first comment by a bot (this App) on a pull request holding ``marker``."""

        def fetch() -> int | None:
            comments = self._repo(installation_id, repo).get_issue(number).get_comments()
            for comment in comments:
                # Attributes, not raw_data: on a lazy client raw_data GETs each comment again.
                # Only an App's own comment counts: anyone can paste the marker into theirs.
                author = comment.user.type if comment.user is not None else None
                if author == "Bot" and marker in (comment.body or ""):
                    return int(comment.id)
            return None

        return self._call_as(installation_id, fetch)

    # ------------------------------------------------------------------ the App's deliveries

    def failed_deliveries(self, *, since: datetime) -> list[FailedDelivery]:
        """Webhook deliveries since ``since`` that never got a 2xx from us, newest first.

        A guid with any successful attempt (GitHub's own redelivery, say) is not failed.
        """

        def fetch() -> list[FailedDelivery]:
            requester = self._integration.requester
            attempts: dict[str, list[dict[str, Any]]] = {}
            url: str | None = "/app/hook/deliveries"
            parameters: dict[str, Any] | None = {"per_page": 100}
            while url:
                headers, items = requester.requestJsonAndCheck("GET", url, parameters=parameters)
                older = False
                for item in items:
                    delivered = timestamp(item.get("delivered_at"))
                    if delivered is not None and delivered < since:
                        older = True
                        continue
                    attempts.setdefault(item["guid"], []).append(item)
                url = None if older else _next_link(headers)
                parameters = None  # the next link carries its own cursor
            return [
                FailedDelivery(id=tries[0]["id"], guid=guid, event=tries[0].get("event") or "")
                for guid, tries in attempts.items()
                # Only our failures (5xx, no answer); a 4xx would fail the same way again.
                if not any(
                    int(t.get("status_code") or 0) < 500 and t.get("status_code") for t in tries
                )
            ]

        return self._call_as(None, fetch)

    def redeliver(self, *, delivery_id: int) -> None:
        """Ask GitHub to send a delivery again."""
        self._call_as(
            None,
            lambda: self._integration.requester.requestJsonAndCheck(
                "POST", f"/app/hook/deliveries/{delivery_id}/attempts"
            ),
        )

    # ------------------------------------------------------------------ rulesets

    def organisation_installation(self, org: str) -> tuple[int, str]:
        """The installation on organisation ``org`` and the organisation's login as GitHub
        spells it; GitHubNotFound when the App is not installed there."""
        for installation_id, account in self.installation_accounts().items():
            if account.lower() == org.lower():
                return installation_id, account
        raise GitHubNotFound(f"the App is not installed on {org}", status=404)

    def find_ruleset(self, *, installation_id: int, scope: str, name: str) -> Ruleset | None:
        """The ruleset called ``name`` that ``scope`` (``repos/OWNER/REPO`` or ``orgs/ORG``)
        owns itself, in full; None if there is none. An organisation's rulesets that a
        repository inherits are not the repository's to change, so they are left out."""

        def fetch() -> Ruleset | None:
            requester = self._client(installation_id).requester
            parameters = {"includes_parents": "false"} if scope.startswith("repos/") else {}
            for summary in _every_page(requester, f"/{scope}/rulesets", parameters):
                if summary.get("name") == name and summary.get("target", "branch") == "branch":
                    _, data = requester.requestJsonAndCheck(
                        "GET", f"/{scope}/rulesets/{int(summary['id'])}"
                    )
                    return _ruleset(data)
            return None

        return self._call_as(installation_id, fetch)

    def save_ruleset(
        self, *, installation_id: int, scope: str, ruleset_id: int | None, body: dict[str, Any]
    ) -> Ruleset:
        """Create the ruleset (``ruleset_id`` None) or replace its fields in place (PUT keeps
        the fields left out, such as who may bypass it)."""

        def send() -> Ruleset:
            requester = self._client(installation_id).requester
            if ruleset_id is None:
                _, data = requester.requestJsonAndCheck("POST", f"/{scope}/rulesets", input=body)
            else:
                _, data = requester.requestJsonAndCheck(
                    "PUT", f"/{scope}/rulesets/{ruleset_id}", input=body
                )
            return _ruleset(data)

        return self._call_as(installation_id, send)

    def branch_rule_checks(
        self, *, installation_id: int, repo: str, branch: str
    ) -> list[RuleCheck]:
        """The status checks the branch's effective rules require, from every active ruleset
        of the repository and of its organisation (read access is enough to see them).

        A GitHub without rulesets (an older Enterprise Server) answers 404: no rules.
        """

        def fetch() -> list[RuleCheck]:
            requester = self._client(installation_id).requester
            path = f"/repos/{repo}/rules/branches/{urllib.parse.quote(branch, safe='')}"
            return [
                check
                for rule in _every_page(requester, path, {})
                if rule.get("type") == "required_status_checks"
                for check in _rule_checks(rule)
            ]

        try:
            return self._call_as(installation_id, fetch)
        except GitHubNotFound:
            return []

    # ------------------------------------------------------------------ branch protection

    def default_branch(self, *, installation_id: int, repo: str) -> str:
        """The repository's default branch."""
        return self._call_as(
            installation_id, lambda: self._client(installation_id).get_repo(repo).default_branch
        )

    def required_status_checks(
        self, *, installation_id: int, repo: str, branch: str
    ) -> StatusChecks:
        """The branch's required status checks (404 if the branch is not protected)."""

        def fetch() -> StatusChecks:
            target = self._repo(installation_id, repo).get_branch(branch)
            data = target.get_required_status_checks().raw_data
            return _status_checks(data)

        return self._call_as(installation_id, fetch)

    def set_required_status_checks(
        self, *, installation_id: int, repo: str, branch: str, checks: StatusChecks
    ) -> StatusChecks:
        """PATCH the required checks only, leaving every other protection setting alone."""

        def patch() -> StatusChecks:
            target = self._repo(installation_id, repo).get_branch(branch)
            # -1 keeps "any source" as it was; leaving app_id out would let GitHub pin the
            # check to whichever app posted it last.
            pairs = [(context, app_id or -1) for context, app_id in checks.checks]
            result = target.edit_required_status_checks(strict=checks.strict, checks=pairs)
            return _status_checks(result.raw_data)

        return self._call_as(installation_id, patch)


@dataclasses.dataclass(frozen=True)
class AppInfo:
    """What ``GET /app`` says of the App: its slug, granted permissions, subscribed events."""

    slug: str
    permissions: dict[str, str]
    events: list[str]


@dataclasses.dataclass(frozen=True)
class RepositoryInfo:
    """What ``GET /repos/{owner}/{repo}`` says of a repository that Gatekeeper keeps."""

    github_id: int
    full_name: str
    private: bool


@dataclasses.dataclass(frozen=True)
class FailedDelivery:
    """A webhook delivery GitHub could not hand to us."""

    id: int
    guid: str
    event: str


@dataclasses.dataclass(frozen=True)
class RegisteredApp:
    """A GitHub App just created from a manifest, with the secrets GitHub hands out once."""

    id: int
    slug: str
    name: str
    html_url: str
    pem: str = dataclasses.field(repr=False)
    webhook_secret: str | None = dataclasses.field(repr=False)
    client_id: str
    client_secret: str = dataclasses.field(repr=False)


def app_from_manifest(*, api_url: str, code: str, timeout: float = 10.0) -> RegisteredApp:
    """Trade the manifest flow's one-time ``code`` for the new App (no credential: the code is one).

    GitHub answers 404 for a code that expired (after an hour) or was already used.
    """
    client = Github(base_url=api_url, timeout=int(timeout))
    path = f"/app-manifests/{urllib.parse.quote(code, safe='')}/conversions"

    def convert() -> RegisteredApp:
        _, data = client.requester.requestJsonAndCheck("POST", path)
        try:
            return RegisteredApp(
                id=int(data["id"]),
                slug=str(data["slug"]),
                name=str(data.get("name") or data["slug"]),
                html_url=str(data.get("html_url") or ""),
                pem=str(data["pem"]),
                webhook_secret=data.get("webhook_secret"),
                client_id=str(data["client_id"]),
                client_secret=str(data["client_secret"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise PayloadError(f"the new App lacks {error}") from None

    try:
        return _call(convert)
    finally:
        client.close()


def _every_page(requester: Any, url: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of a list GitHub answers in pages, following ``Link: rel="next"``."""
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    query: dict[str, Any] | None = {**parameters, "per_page": 100}
    while next_url:
        headers, page = requester.requestJsonAndCheck("GET", next_url, parameters=query)
        items += page
        next_url, query = _next_link(headers), None  # the next link carries its own query
    return items


def _ruleset(data: dict[str, Any]) -> Ruleset:
    try:
        return Ruleset(
            id=int(data["id"]),
            body={field: data[field] for field in RULESET_FIELDS if field in data},
        )
    except (KeyError, TypeError, ValueError) as error:
        raise PayloadError(f"the ruleset lacks {error}") from None


def _rule_checks(rule: dict[str, Any]) -> list[RuleCheck]:
    """The checks of one ``required_status_checks`` rule of a branch's effective rules."""
    checks = (rule.get("parameters") or {}).get("required_status_checks") or []
    try:
        return [
            RuleCheck(
                context=str(check["context"]),
                integration_id=check.get("integration_id"),
                ruleset_id=int(rule["ruleset_id"]),
                source=str(rule.get("ruleset_source") or ""),
                organisation=rule.get("ruleset_source_type") == "Organization",
            )
            for check in checks
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise PayloadError(f"a branch rule lacks {error}") from None


def _next_link(headers: dict[str, Any]) -> str | None:
    link = {k.lower(): v for k, v in headers.items()}.get("link", "")
    for part in link.split(","):
        if 'rel="next"' in part:
            return part.split(";")[0].strip().strip("<>")
    return None


def _next_page(link: str) -> int | None:
    """The page number a ``Link`` header's ``rel="next"`` asks for."""
    found = re.search(r"[?&]page=(\d+)[^>]*>;\s*rel=\"next\"", link)
    return int(found.group(1)) if found else None


def _status_error(status: int, headers: dict[str, str], body: str) -> GitHubUnavailable:
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        message = None
    kind = GitHubNotFound if status == 404 else GitHubUnavailable
    return kind(f"GitHub answered {status}: {message}", status=status, retry_at=_reset(headers))


def _reset(headers: dict[str, str] | None) -> float | None:
    """When a rate limit lifts, from GitHub's headers (``Retry-After`` or the reset time)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after" in lowered:
            return time.time() + float(lowered["retry-after"])
        if lowered.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in lowered:
            return float(lowered["x-ratelimit-reset"])
    except ValueError:
        return None
    return None


def _status_checks(data: dict[str, Any]) -> StatusChecks:
    checks = data.get("checks")
    if checks is None:
        checks = [{"context": context, "app_id": None} for context in data.get("contexts", [])]
    return StatusChecks(
        strict=bool(data.get("strict")),
        checks=tuple((check["context"], check.get("app_id")) for check in checks),
    )


def _parsed(parse: Callable[[Any], T], data: Any) -> T | None:
    """One item of a list GitHub answered, or None if it does not parse (a review by a deleted
    account has no ``user``): one odd item must not hide the rest."""
    try:
        return parse(data)
    except PayloadError:
        return None


def _call(operation: Callable[[], T]) -> T:
    """Run a PyGithub call, translating its failures into GitHubUnavailable."""
    try:
        return operation()
    except PayloadError as error:  # GitHub answered something Gatekeeper cannot use
        raise GitHubUnavailable(f"GitHub's answer is not usable: {error}", status=422) from error
    except GithubException as error:
        message = error.data.get("message") if isinstance(error.data, dict) else error.data
        if error.status == 404:
            raise GitHubNotFound(
                f"GitHub answered 404: {message or 'Not Found'}", status=404
            ) from error
        raise GitHubUnavailable(
            f"GitHub answered {error.status}: {message}",
            status=error.status,
            retry_at=_reset(error.headers),
        ) from error
    except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
        raise GitHubUnavailable(f"GitHub could not be reached: {type(error).__name__}") from error
