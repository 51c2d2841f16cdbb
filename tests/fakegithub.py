"""A fake GitHub for tests: a real HTTP server that PyGithub and ``requests`` talk to.

It copies the layout of GitHub Enterprise Server, so the app only needs a different base URL:
the web host (OAuth sign-in) is ``http://127.0.0.1:PORT`` and the REST API is under
``http://127.0.0.1:PORT/api/v3``. It emulates the small part of GitHub a GitHub App like
Gatekeeper uses, behaving as GitHub does where it matters to a client:

* App authentication: RS256 JWTs checked against the App's key (``iss``, ``iat``, ``exp``),
  installation tokens (``ghs_...``, one hour) scoped to the installation's repositories,
  OAuth user tokens from the web flow (``/login/oauth/authorize`` and ``access_token``).
* Repositories, pull requests, reviews, review requests, check runs, commit statuses, issue
  comments, issue search, branches and branch protection, users and the rate limit.
* Pagination with ``per_page``/``page`` and an RFC 5988 ``Link`` header; errors in GitHub's
  JSON shape (``message``, ``documentation_url``); case-insensitive owner and repository names.
* Every JSON request body is validated against the operation's ``requestBody`` schema in
  GitHub's own OpenAPI description (``fixtures/openapi``); a failure is answered with 422 and
  recorded in ``violations``, which tests assert is empty.

Tests set state up with ``add_*`` methods, read what the app did from ``calls``, ``writes()``,
``check_runs`` and friends, and inject faults with ``fail_next`` and ``hang_next``.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import functools
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

API_PREFIX = "/api/v3"
DOCS_URL = "https://docs.github.com/rest"
SPEC_PATH = Path(__file__).parent / "fixtures" / "openapi" / "api.github.com.subset.json"
SPEC_URI = "urn:github-openapi"
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
REVIEW_STATES = frozenset({"APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"})
JWT_MESSAGE = "A JSON web token could not be decoded"
TOKEN_PERMISSIONS = {
    "administration": "write",
    "checks": "write",
    "issues": "write",
    "members": "read",
    "metadata": "read",
    "pull_requests": "write",
    "statuses": "write",
}
REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"


@dataclasses.dataclass
class Call:
    """One request the fake received, and what it answered."""

    method: str
    path: str  # API paths without the /api/v3 prefix; web paths as they came
    query: dict[str, str]
    json: Any | None  # the JSON body, or the form of a form-encoded POST
    status: int
    auth: str  # "jwt", "installation:<id>", "oauth:<login>", "none" or "invalid"


class GitHubError(Exception):
    """Raised by a handler to answer with GitHub's error shape."""

    def __init__(self, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = code
        self.body = {"message": message, **extra, "documentation_url": DOCS_URL}


class NotFound(GitHubError):
    def __init__(self, message: str = "Not Found") -> None:
        super().__init__(404, message, status="404")


@dataclasses.dataclass
class _Auth:
    kind: str  # jwt, installation, oauth, none, invalid
    installation_id: int | None = None
    login: str | None = None

    def __str__(self) -> str:
        if self.kind == "installation":
            return f"installation:{self.installation_id}"
        if self.kind == "oauth":
            return f"oauth:{self.login}"
        return self.kind


@dataclasses.dataclass
class _Req:
    method: str
    path: str
    query: dict[str, str]
    body: Any | None
    auth: _Auth
    headers: Any


@dataclasses.dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    times: int
    status: int = 500
    rate_limited: bool = False
    delay: float = 0.0


Reply = tuple[int, Any, dict[str, str]]
_ROUTES: list[tuple[str, re.Pattern[str], Callable[..., Reply]]] = []


def route(method: str, pattern: str) -> Callable[[Callable[..., Reply]], Callable[..., Reply]]:
    """Register a handler for API requests whose path (without /api/v3) fully matches."""

    def register(handler: Callable[..., Reply]) -> Callable[..., Reply]:
        _ROUTES.append((method, re.compile(pattern), handler))
        return handler

    return register


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0:{kind}{number}".encode()).decode()


def _sha(*parts: str) -> str:
    return hashlib.sha1(":".join(parts).encode()).hexdigest()


@functools.cache
def _app_key() -> rsa.RSAPrivateKey:
    # One key per process: RSA generation costs ~100 ms and every fake is otherwise independent.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def _spec_registry() -> tuple[dict[str, Any], Registry]:
    spec = json.loads(SPEC_PATH.read_text())
    resource = Resource.from_contents(spec, default_specification=DRAFT4)
    return spec, Registry().with_resource(SPEC_URI, resource)


@functools.cache
def _body_validators() -> list[tuple[str, re.Pattern[str], Any]]:
    """(method, path regex, compiled validator) for every operation with a JSON request body."""
    spec, registry = _spec_registry()
    found = []
    for template, operations in spec["paths"].items():
        regex = re.compile(re.sub(r"\{[^}]+\}", "[^/]+", template))
        for method, operation in operations.items():
            if "application/json" not in operation.get("requestBody", {}).get("content", {}):
                continue
            pointer = "/".join(
                part.replace("~", "~0").replace("/", "~1")
                for part in ("paths", template, method, "requestBody", "content")
            )
            schema = {"$ref": f"{SPEC_URI}#/{pointer}/application~1json/schema"}
            validator = OAS30Validator(
                schema, registry=registry, format_checker=OAS30Validator.FORMAT_CHECKER
            )
            found.append((method.upper(), regex, validator))
    return found


def _schema_errors(method: str, path: str, body: Any) -> list[str]:
    """Readable messages for every way ``body`` breaks the operation's requestBody schema."""
    for op_method, regex, validator in _body_validators():
        if op_method == method and regex.fullmatch(path):
            errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
            return [
                f"{'.'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:200]}"
                for e in errors
            ]
    return []


def _check_run_limits(body: Any) -> list[str]:
    """GitHub's documented check-run limits, which the schema alone does not fully express."""
    if not isinstance(body, dict):
        return []
    errors = []
    output = body.get("output") or {}
    for field in ("summary", "text"):
        value = output.get(field) if isinstance(output, dict) else None
        if isinstance(value, str) and len(value.encode()) > 65535:
            errors.append(f"output.{field}: longer than 65535 bytes")
    actions = body.get("actions") or []
    if len(actions) > 3:
        errors.append(f"actions: {len(actions)} actions, at most 3 are allowed")
    for index, action in enumerate(actions):
        for field, limit in (("label", 20), ("description", 40), ("identifier", 20)):
            value = action.get(field) if isinstance(action, dict) else None
            if isinstance(value, str) and len(value) > limit:
                errors.append(f"actions.{index}.{field}: longer than {limit} characters")
    return errors


class _QuietHandler(WSGIRequestHandler):
    """The werkzeug request handler without its per-request log lines."""

    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class FakeGitHub:
    """GitHub's REST API and OAuth web flow for one GitHub App, served on 127.0.0.1."""

    def __init__(self, *, app_id: int = 4242, app_slug: str = "gatekeeper-test") -> None:
        self.app_id = app_id
        self.app_slug = app_slug
        self.bot_login = f"{app_slug}[bot]"
        key = _app_key()
        self.private_key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # what GitHub hands out (PKCS#1)
            serialization.NoEncryption(),
        ).decode()
        self._public_key = key.public_key()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Bound at once so URLs are known while tests set state up; stop() closes it.
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self._ids = itertools.count(1001)

        self._users: dict[str, dict[str, Any]] = {}
        self._installations: dict[int, str] = {}  # id -> account login
        self._repos: dict[str, dict[str, Any]] = {}  # lower full name -> record
        self._pulls: dict[tuple[str, int], dict[str, Any]] = {}
        self._reviews: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._comments: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._protection: dict[tuple[str, str], dict[str, Any]] = {}
        self._check_run_repo: dict[int, str] = {}
        self._tokens: dict[str, tuple[int, float]] = {}  # token -> (installation, expiry)
        self._oauth_apps: dict[str, str] = {}
        self._oauth_codes: dict[str, tuple[str, str, str]] = {}  # code -> client, redirect, login
        self._oauth_tokens: dict[str, str] = {}
        self._faults: list[_Fault] = []

        self.oauth_next_login: str | None = None
        self.calls: list[Call] = []
        self.check_runs: dict[int, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.requested_reviewers: dict[tuple[str, int], list[str]] = {}
        self.tokens_issued = 0
        self.violations: list[str] = []
        self.add_user(self.bot_login)

    # ------------------------------------------------------------------ server

    def start(self) -> None:
        """Serve from a background thread (the port is bound already, so URLs are known)."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, wake any hanging response and close the listening socket."""
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> FakeGitHub:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    # ------------------------------------------------------------------ state setup

    def add_installation(self, installation_id: int, *, account: str = "python") -> None:
        with self._lock:
            self._user(account, kind="Organization")
            self._installations[installation_id] = account

    def add_repo(
        self,
        full_name: str,
        *,
        installation_id: int | None,
        default_branch: str = "main",
        private: bool = False,
    ) -> dict[str, Any]:
        with self._lock:
            if installation_id is not None and installation_id not in self._installations:
                raise ValueError(f"add_installation({installation_id}) first")
            owner = full_name.split("/")[0]
            self._user(owner, kind="Organization")
            self._repos[full_name.lower()] = {
                "id": next(self._ids),
                "full_name": full_name,
                "installation_id": installation_id,
                "default_branch": default_branch,
                "private": private,
                "branches": {default_branch},
                "shas": {_sha(full_name, default_branch)},
            }
            return self._repo_json(self._repos[full_name.lower()])

    def add_user(
        self, login: str, *, user_id: int | None = None, name: str | None = None
    ) -> dict[str, Any]:
        with self._lock:
            record = self._user(login)
            if user_id is not None:
                record["id"] = user_id
            if name is not None:
                record["name"] = name
            return self._user_json(login, full=True)

    def add_pull(
        self,
        full_name: str,
        number: int,
        *,
        author: str,
        head_sha: str,
        title: str = "A change",
        base: str = "main",
        draft: bool = False,
        state: str = "open",
        merged: bool = False,
        head_repo: str | None = None,
        updated_at: str | None = None,
        merged_by: str | None = None,
    ) -> dict[str, Any]:
        """Add a pull request; ``merged=True`` closes it, merged by ``merged_by`` or the author."""
        with self._lock:
            repo = self._repo_record(full_name)
            if head_repo is not None and head_repo.lower() not in self._repos:
                self.add_repo(head_repo, installation_id=None)
            self._user(author)
            stamp = updated_at or _iso(_now())
            repo["branches"].add(base)
            repo["shas"] |= {head_sha, _sha(repo["full_name"], base)}
            self._pulls[(repo["full_name"].lower(), number)] = {
                "number": number,
                "repo": repo["full_name"],
                "id": next(self._ids),
                "title": title,
                "author": author,
                "head_sha": head_sha,
                "head_ref": f"{author.lower()}/change-{number}",
                "head_repo": head_repo or repo["full_name"],
                "base": base,
                "draft": draft,
                "state": "closed" if merged else state,
                "merged_at": stamp if merged else None,
                "merged_by": (merged_by or author) if merged else None,
                "created_at": stamp,
                "updated_at": stamp,
                "closed_at": stamp if merged or state == "closed" else None,
            }
            self.requested_reviewers[(repo["full_name"], number)] = []
            return self._pull_json(self._pulls[(repo["full_name"].lower(), number)])

    def push(self, full_name: str, number: int, head_sha: str) -> None:
        with self._lock:
            pull = self._pull_record(full_name, number)
            pull["head_sha"] = head_sha
            pull["updated_at"] = _iso(_now())
            self._repo_record(full_name)["shas"].add(head_sha)

    def add_review(
        self,
        full_name: str,
        number: int,
        *,
        reviewer: str,
        state: str,
        commit_id: str,
        review_id: int | None = None,
        submitted_at: str | None = None,
    ) -> dict[str, Any]:
        if state not in REVIEW_STATES:
            raise ValueError(f"review state must be one of {sorted(REVIEW_STATES)}")
        with self._lock:
            pull = self._pull_record(full_name, number)
            self._user(reviewer)
            review = {
                "id": review_id or next(self._ids),
                "login": reviewer,
                "state": state,
                "commit_id": commit_id,
                "submitted_at": submitted_at or _iso(_now()),
            }
            self._reviews.setdefault((pull["repo"].lower(), number), []).append(review)
            # GitHub drops a review request once the requested user has reviewed.
            requested = self.requested_reviewers[(pull["repo"], number)]
            requested[:] = [login for login in requested if login.lower() != reviewer.lower()]
            return self._review_json(pull, review)

    def set_protection(
        self,
        full_name: str,
        branch: str,
        *,
        contexts: list[str] | None = None,
        checks: list[dict[str, Any]] | None = None,
        strict: bool = False,
        **other_settings: Any,
    ) -> None:
        """Protect ``branch``; ``other_settings`` are PUT-body fields (``enforce_admins=True``)."""
        status_checks = None
        if contexts is not None or checks is not None:
            status_checks = {"strict": strict, "contexts": contexts or []}
            if checks is not None:
                status_checks["checks"] = checks
        with self._lock:
            self._store_protection(
                self._repo_record(full_name),
                branch,
                {"required_status_checks": status_checks, **other_settings},
            )

    def protection(self, full_name: str, branch: str) -> dict[str, Any] | None:
        """The branch's protection as ``GET .../protection`` returns it, or None."""
        with self._lock:
            repo = self._repo_record(full_name)
            if (repo["full_name"].lower(), branch) not in self._protection:
                return None
            return self._protection_json(repo, branch)

    def add_oauth_app(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._oauth_apps[client_id] = client_secret

    # ------------------------------------------------------------------ what the app did

    def writes(self) -> list[Call]:
        """Calls that change something, leaving out the minting of installation tokens."""
        with self._lock:
            return [
                call
                for call in self.calls
                if call.method in WRITE_METHODS and not call.path.endswith("/access_tokens")
            ]

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def check_runs_for(
        self, full_name: str, head_sha: str, name: str | None = None
    ) -> list[dict[str, Any]]:
        """Stored check runs on one commit, oldest first."""
        with self._lock:
            return [
                run
                for run_id, run in sorted(self.check_runs.items())
                if self._check_run_repo[run_id] == full_name.lower()
                and run["head_sha"] == head_sha
                and (name is None or run["name"] == name)
            ]

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        *,
        status: int = 500,
        times: int = 1,
        rate_limited: bool = False,
    ) -> None:
        """Answer the next ``times`` matching requests with an error (or a rate-limit 403)."""
        with self._lock:
            self._faults.append(
                _Fault(method.upper(), re.compile(path_pattern), times, status, rate_limited)
            )

    def hang_next(self, method: str, path_pattern: str, seconds: float) -> None:
        """Delay the answer to the next matching request by ``seconds``."""
        with self._lock:
            self._faults.append(_Fault(method.upper(), re.compile(path_pattern), 1, delay=seconds))

    # ------------------------------------------------------------------ records

    def _user(self, login: str, *, kind: str | None = None) -> dict[str, Any]:
        record = self._users.get(login.lower())
        if record is None:
            kind = kind or ("Bot" if login.endswith("[bot]") else "User")
            record = {"login": login, "id": next(self._ids), "name": None, "type": kind}
            self._users[login.lower()] = record
        return record

    def _repo_record(self, full_name: str) -> dict[str, Any]:
        repo = self._repos.get(full_name.lower())
        if repo is None:
            raise NotFound()
        return repo

    def _pull_record(self, full_name: str, number: int) -> dict[str, Any]:
        pull = self._pulls.get((full_name.lower(), number))
        if pull is None:
            raise NotFound()
        return pull

    def _store_protection(self, repo: dict[str, Any], branch: str, body: dict[str, Any]) -> None:
        # Objects are kept as sent; every other setting (enforce_admins, ...) is a flag.
        objects = {"required_status_checks", "required_pull_request_reviews", "restrictions"}
        settings = {key: bool(value) for key, value in body.items() if key not in objects}
        status_checks = body.get("required_status_checks")
        if status_checks is not None:
            stored = {"strict": bool(status_checks.get("strict")), "checks": []}
            self._merge_status_checks(stored, status_checks)
            status_checks = stored
        settings["required_status_checks"] = status_checks
        settings["required_pull_request_reviews"] = body.get("required_pull_request_reviews")
        repo["branches"].add(branch)
        self._protection[(repo["full_name"].lower(), branch)] = settings

    @staticmethod
    def _merge_status_checks(stored: dict[str, Any], patch: dict[str, Any]) -> None:
        # GitHub keeps one list; ``contexts`` is the list's names, so store ``checks`` only.
        if "strict" in patch:
            stored["strict"] = patch["strict"]
        if patch.get("checks") is not None:
            stored["checks"] = [
                {"context": c["context"], "app_id": c.get("app_id")} for c in patch["checks"]
            ]
        elif patch.get("contexts") is not None:
            stored["checks"] = [{"context": name, "app_id": None} for name in patch["contexts"]]

    # ------------------------------------------------------------------ JSON shapes

    def _user_json(self, login: str, *, full: bool = False) -> dict[str, Any]:
        record = self._user(login)
        login = record["login"]
        data = {
            "login": login,
            "id": record["id"],
            "node_id": _node_id(record["type"], record["id"]),
            "avatar_url": f"{self.url}/avatars/u/{record['id']}",
            "gravatar_id": "",
            "url": f"{self.api_url}/users/{urllib.parse.quote(login)}",
            "html_url": f"{self.url}/{urllib.parse.quote(login)}",
            "type": record["type"],
            "site_admin": False,
        }
        if full:
            data.update(name=record["name"], created_at="2020-01-01T00:00:00Z")
        return data

    def _repo_json(self, repo: dict[str, Any]) -> dict[str, Any]:
        full_name = repo["full_name"]
        api = f"{self.api_url}/repos/{full_name}"
        return {
            "id": repo["id"],
            "node_id": _node_id("Repository", repo["id"]),
            "name": full_name.split("/")[1],
            "full_name": full_name,
            "owner": self._user_json(full_name.split("/")[0]),
            "private": repo["private"],
            "visibility": "private" if repo["private"] else "public",
            "fork": False,
            "archived": False,
            "disabled": False,
            "description": None,
            "default_branch": repo["default_branch"],
            "url": api,
            "html_url": f"{self.url}/{full_name}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "issues_url": f"{api}/issues{{/number}}",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2020-01-01T00:00:00Z",
            "pushed_at": "2020-01-01T00:00:00Z",
        }

    def _installation_json(self, installation_id: int) -> dict[str, Any]:
        account = self._user(self._installations[installation_id])
        api = f"{self.api_url}/app/installations/{installation_id}"
        return {
            "id": installation_id,
            "account": self._user_json(account["login"]),
            "target_id": account["id"],
            "target_type": account["type"],
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "repository_selection": "selected",
            "access_tokens_url": f"{api}/access_tokens",
            "repositories_url": f"{self.api_url}/installation/repositories",
            "html_url": f"{self.url}/organizations/{account['login']}/settings/installations/"
            f"{installation_id}",
            "permissions": TOKEN_PERMISSIONS,
            "events": ["check_run", "pull_request", "pull_request_review"],
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2020-01-01T00:00:00Z",
            "single_file_name": None,
            "suspended_at": None,
            "suspended_by": None,
        }

    def _pull_json(self, pull: dict[str, Any], *, full: bool = True) -> dict[str, Any]:
        repo = self._repo_record(pull["repo"])
        head_repo = self._repo_record(pull["head_repo"])
        number = pull["number"]
        api = f"{self.api_url}/repos/{repo['full_name']}"
        html = f"{self.url}/{repo['full_name']}/pull/{number}"
        head_owner = head_repo["full_name"].split("/")[0]
        owner = repo["full_name"].split("/")[0]
        requested = self.requested_reviewers.get((repo["full_name"], number), [])
        data = {
            "url": f"{api}/pulls/{number}",
            "id": pull["id"],
            "node_id": _node_id("PullRequest", pull["id"]),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": f"{api}/issues/{number}",
            "comments_url": f"{api}/issues/{number}/comments",
            "review_comments_url": f"{api}/pulls/{number}/comments",
            "commits_url": f"{api}/pulls/{number}/commits",
            "statuses_url": f"{api}/statuses/{pull['head_sha']}",
            "number": number,
            "state": pull["state"],
            "locked": False,
            "title": pull["title"],
            "user": self._user_json(pull["author"]),
            "body": None,
            "labels": [],
            "created_at": pull["created_at"],
            "updated_at": pull["updated_at"],
            "closed_at": pull["closed_at"],
            "merged_at": pull["merged_at"],
            "merge_commit_sha": _sha(pull["head_sha"], "merge") if pull["merged_at"] else None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [self._user_json(login) for login in requested],
            "requested_teams": [],
            "draft": pull["draft"],
            "author_association": "CONTRIBUTOR",
            "head": {
                "label": f"{head_owner}:{pull['head_ref']}",
                "ref": pull["head_ref"],
                "sha": pull["head_sha"],
                "user": self._user_json(head_owner),
                "repo": self._repo_json(head_repo),
            },
            "base": {
                "label": f"{owner}:{pull['base']}",
                "ref": pull["base"],
                "sha": _sha(repo["full_name"], pull["base"]),
                "user": self._user_json(owner),
                "repo": self._repo_json(repo),
            },
        }
        if full:  # the list endpoint, like GitHub's, leaves these out
            merged_by = pull["merged_by"]
            data.update(
                merged=pull["merged_at"] is not None,
                mergeable=True if pull["state"] == "open" else None,
                mergeable_state="clean" if pull["state"] == "open" else "unknown",
                merged_by=self._user_json(merged_by) if merged_by else None,
                comments=len(self._comments.get((repo["full_name"].lower(), number), [])),
                commits=1,
            )
        return data

    def _review_json(self, pull: dict[str, Any], review: dict[str, Any]) -> dict[str, Any]:
        api = f"{self.api_url}/repos/{pull['repo']}/pulls/{pull['number']}"
        html = f"{self.url}/{pull['repo']}/pull/{pull['number']}#pullrequestreview-{review['id']}"
        return {
            "id": review["id"],
            "node_id": _node_id("PullRequestReview", review["id"]),
            "user": self._user_json(review["login"]),
            "body": "",
            "state": review["state"],
            "html_url": html,
            "pull_request_url": api,
            "author_association": "MEMBER",
            "submitted_at": review["submitted_at"],
            "commit_id": review["commit_id"],
            "_links": {"html": {"href": html}, "pull_request": {"href": api}},
        }

    def _protection_json(self, repo: dict[str, Any], branch: str) -> dict[str, Any]:
        settings = self._protection[(repo["full_name"].lower(), branch)]
        url = f"{self.api_url}/repos/{repo['full_name']}/branches/{branch}/protection"
        data: dict[str, Any] = {"url": url}
        if settings["required_status_checks"] is not None:
            data["required_status_checks"] = self._status_checks_json(repo, branch)
        if settings["required_pull_request_reviews"] is not None:
            data["required_pull_request_reviews"] = {
                "url": f"{url}/required_pull_request_reviews",
                **settings["required_pull_request_reviews"],
            }
        for key, value in settings.items():
            if isinstance(value, bool):
                data[key] = {"enabled": value}
        if "enforce_admins" in data:
            data["enforce_admins"]["url"] = f"{url}/enforce_admins"
        return data

    def _status_checks_json(self, repo: dict[str, Any], branch: str) -> dict[str, Any]:
        settings = self._protection[(repo["full_name"].lower(), branch)]
        checks = settings["required_status_checks"]
        if checks is None:
            raise NotFound("Required status checks not enabled")
        url = f"{self.api_url}/repos/{repo['full_name']}/branches/{branch}/protection"
        return {
            "url": f"{url}/required_status_checks",
            "strict": checks["strict"],
            "contexts": [check["context"] for check in checks["checks"]],
            "contexts_url": f"{url}/required_status_checks/contexts",
            "checks": copy.deepcopy(checks["checks"]),
        }

    # ------------------------------------------------------------------ HTTP plumbing

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        path = request.path
        api = path == API_PREFIX or path.startswith(API_PREFIX + "/")
        if api:
            path = path[len(API_PREFIX) :] or "/"
        fault = self._take_fault(request.method, path)
        if fault is not None and fault.delay:
            self._stopping.wait(fault.delay)
        with self._lock:
            response, call = self._respond(request, path, api, fault)
            self.calls.append(call)
        # Closing after each answer leaves no idle keep-alive socket behind in PyGithub's pool.
        response.headers["Connection"] = "close"
        return response(environ, start_response)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.pattern.fullmatch(path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _respond(
        self, request: Request, path: str, api: bool, fault: _Fault | None
    ) -> tuple[Response, Call]:
        query = {key: request.args[key] for key in request.args}
        body: Any = None
        if request.form:
            body = request.form.to_dict()
        elif request.get_data():
            try:
                body = json.loads(request.get_data())
            except ValueError:
                body = request.get_data(as_text=True)
        auth = self._authenticate(request.headers.get("Authorization", ""))
        req = _Req(request.method, path, query, body, auth, request.headers)
        if api or (fault is not None and not fault.delay):
            status, data, headers = self._api_reply(req, fault)
            text = "" if status == 204 else json.dumps(data)
            headers = {**self._rate_headers(4999), **headers}
            response = Response(text, status, headers, mimetype="application/json")
        else:
            response = self._web(req)
        return response, Call(req.method, path, query, body, response.status_code, str(auth))

    def _api_reply(self, req: _Req, fault: _Fault | None) -> Reply:
        try:
            if fault is not None and not fault.delay:
                return self._fault_reply(fault, req.auth)
            for method, pattern, handler in _ROUTES:
                match = pattern.fullmatch(req.path)
                if match is not None and method == req.method:
                    if req.method in {"POST", "PATCH", "PUT"}:
                        self._validate_body(req)
                    return handler(self, req, **match.groupdict())
            raise NotFound()
        except GitHubError as error:
            return error.status, error.body, {}
        except Exception as error:  # a bug in the fake must fail the test, not pass as a 500
            self.violations.append(f"{req.method} {req.path}: the fake crashed: {error!r}")
            return 500, {"message": "Server Error", "documentation_url": DOCS_URL}, {}

    def _validate_body(self, req: _Req) -> None:
        if isinstance(req.body, str):
            raise GitHubError(400, "Problems parsing JSON")
        errors = _schema_errors(req.method, req.path, req.body)
        if re.fullmatch(REPO + r"/check-runs(/\d+)?", req.path):
            errors += _check_run_limits(req.body)
        if errors:
            self.violations.append(f"{req.method} {req.path}: " + "; ".join(errors))
            raise GitHubError(
                422,
                "Validation Failed",
                errors=[{"resource": "Request", "code": "invalid", "message": e} for e in errors],
            )

    def _fault_reply(self, fault: _Fault, auth: _Auth) -> Reply:
        if not fault.rate_limited:
            messages = {500: "Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
            raise GitHubError(fault.status, messages.get(fault.status, "Injected failure"))
        who = f"installation ID {auth.installation_id}" if auth.installation_id else "user ID 1"
        body = {
            "message": f"API rate limit exceeded for {who}.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        }
        return 403, body, self._rate_headers(0)

    @staticmethod
    def _rate_headers(remaining: int) -> dict[str, str]:
        return {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-used": str(5000 - remaining),
            "x-ratelimit-reset": str(int(time.time()) + 60),
            "x-ratelimit-resource": "core",
        }

    def _authenticate(self, header: str) -> _Auth:
        scheme, _, credential = header.partition(" ")
        if not credential or scheme.lower() not in {"token", "bearer"}:
            return _Auth("none")
        if credential in self._tokens:
            installation_id, expires = self._tokens[credential]
            if time.time() < expires:
                return _Auth("installation", installation_id=installation_id)
        elif credential in self._oauth_tokens:
            return _Auth("oauth", login=self._oauth_tokens[credential])
        elif credential.count(".") == 2 and self._jwt_valid(credential):
            return _Auth("jwt")
        return _Auth("invalid")

    def _jwt_valid(self, token: str) -> bool:
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                leeway=60,
                options={"require": ["iat", "exp", "iss"], "verify_iss": False},
            )
        except jwt.InvalidTokenError:
            return False
        # PyGithub sends iss as a string; GitHub also takes an integer. At most 10 minutes.
        return str(claims["iss"]) == str(self.app_id) and claims["exp"] - claims["iat"] <= 660

    def _paginate(
        self, req: _Req, items: list[Any], wrap: Callable[[list[Any]], Any] | None = None
    ) -> Reply:
        try:
            per_page = min(max(int(req.query.get("per_page", 30)), 1), 100)
            page = max(int(req.query.get("page", 1)), 1)
        except ValueError:
            per_page, page = 30, 1
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(number: int) -> str:
            query = urllib.parse.urlencode({**req.query, "page": number})
            return f"<{self.api_url}{req.path}?{query}>"

        links = []
        if page > 1:
            links += [f'{link(page - 1)}; rel="prev"']
        if page < last:
            links += [f'{link(page + 1)}; rel="next"', f'{link(last)}; rel="last"']
        if page > 1:
            links += [f'{link(1)}; rel="first"']
        headers = {"Link": ", ".join(links)} if links else {}
        return 200, wrap(chunk) if wrap else chunk, headers

    # ------------------------------------------------------------------ access checks

    def _require_jwt(self, req: _Req) -> None:
        if req.auth.kind != "jwt":
            raise GitHubError(401, JWT_MESSAGE)

    def _require_token(self, req: _Req) -> None:
        if req.auth.kind == "none":
            raise GitHubError(401, "Requires authentication")
        if req.auth.kind not in {"installation", "oauth"}:
            raise GitHubError(401, "Bad credentials")

    def _visible_repos(self, req: _Req) -> list[dict[str, Any]]:
        """Repositories this token may read: its installation's, or public ones for a user."""
        self._require_token(req)
        if req.auth.kind == "installation":
            return [
                repo
                for repo in self._repos.values()
                if repo["installation_id"] == req.auth.installation_id
            ]
        return [repo for repo in self._repos.values() if not repo["private"]]

    def _repo_for(self, req: _Req, owner: str, name: str) -> dict[str, Any]:
        repo = self._repo_record(f"{owner}/{name}")
        if repo not in self._visible_repos(req):
            raise NotFound()
        return repo

    def _actor(self, req: _Req) -> str:
        """Who a write is attributed to: the signed-in user, or the App's bot."""
        return req.auth.login or self.bot_login

    def _require_commit(self, repo: dict[str, Any], sha: str) -> None:
        if sha not in repo["shas"]:
            raise GitHubError(422, f"No commit found for SHA: {sha}")

    # ------------------------------------------------------------------ the App

    @route("GET", r"/app")
    def _get_app(self, req: _Req) -> Reply:
        self._require_jwt(req)
        return (
            200,
            {
                "id": self.app_id,
                "slug": self.app_slug,
                "node_id": _node_id("Integration", self.app_id),
                "name": self.app_slug.replace("-", " ").title(),
                "owner": None,
                "description": "",
                "external_url": self.url,
                "html_url": f"{self.url}/apps/{self.app_slug}",
                "created_at": "2020-01-01T00:00:00Z",
                "updated_at": "2020-01-01T00:00:00Z",
                "permissions": TOKEN_PERMISSIONS,
                "events": ["check_run", "pull_request", "pull_request_review"],
                "installations_count": len(self._installations),
            },
            {},
        )

    @route("GET", r"/app/installations")
    def _list_installations(self, req: _Req) -> Reply:
        self._require_jwt(req)
        return self._paginate(
            req, [self._installation_json(i) for i in sorted(self._installations)]
        )

    @route("GET", r"/app/installations/(?P<installation_id>\d+)")
    def _get_installation(self, req: _Req, installation_id: str) -> Reply:
        self._require_jwt(req)
        if int(installation_id) not in self._installations:
            raise NotFound()
        return 200, self._installation_json(int(installation_id)), {}

    @route("GET", REPO + r"/installation")
    def _repo_installation(self, req: _Req, owner: str, name: str) -> Reply:
        self._require_jwt(req)
        repo = self._repo_record(f"{owner}/{name}")
        if repo["installation_id"] is None:
            raise NotFound()
        return 200, self._installation_json(repo["installation_id"]), {}

    @route("POST", r"/app/installations/(?P<installation_id>\d+)/access_tokens")
    def _create_token(self, req: _Req, installation_id: str) -> Reply:
        self._require_jwt(req)
        if int(installation_id) not in self._installations:
            raise NotFound()
        token = "ghs_" + secrets.token_urlsafe(27)
        expires = _now() + timedelta(hours=1)
        self._tokens[token] = (int(installation_id), expires.timestamp())
        self.tokens_issued += 1
        permissions = (req.body or {}).get("permissions") or TOKEN_PERMISSIONS
        return (
            201,
            {
                "token": token,
                "expires_at": _iso(expires),
                "permissions": permissions,
                "repository_selection": "selected",
            },
            {},
        )

    @route("GET", r"/installation/repositories")
    def _installation_repos(self, req: _Req) -> Reply:
        if req.auth.kind != "installation":
            raise GitHubError(403, "This endpoint requires an installation access token.")
        repos = sorted(self._visible_repos(req), key=lambda repo: repo["id"])
        return self._paginate(
            req,
            [self._repo_json(repo) for repo in repos],
            lambda chunk: {
                "total_count": len(repos),
                "repository_selection": "selected",
                "repositories": chunk,
            },
        )

    # ------------------------------------------------------------------ repositories and pulls

    @route("GET", REPO)
    def _get_repo(self, req: _Req, owner: str, name: str) -> Reply:
        return 200, self._repo_json(self._repo_for(req, owner, name)), {}

    @route("GET", REPO + r"/pulls")
    def _list_pulls(self, req: _Req, owner: str, name: str) -> Reply:
        repo = self._repo_for(req, owner, name)
        state = req.query.get("state", "open")
        pulls = [
            pull
            for (repo_key, _), pull in sorted(self._pulls.items(), key=lambda item: -item[0][1])
            if repo_key == repo["full_name"].lower() and state in {"all", pull["state"]}
        ]
        return self._paginate(req, [self._pull_json(pull, full=False) for pull in pulls])

    @route("GET", REPO + r"/pulls/(?P<number>\d+)")
    def _get_pull(self, req: _Req, owner: str, name: str, number: str) -> Reply:
        repo = self._repo_for(req, owner, name)
        return 200, self._pull_json(self._pull_record(repo["full_name"], int(number))), {}

    @route("GET", REPO + r"/pulls/(?P<number>\d+)/reviews")
    def _list_reviews(self, req: _Req, owner: str, name: str, number: str) -> Reply:
        repo = self._repo_for(req, owner, name)
        pull = self._pull_record(repo["full_name"], int(number))
        reviews = self._reviews.get((repo["full_name"].lower(), int(number)), [])
        return self._paginate(req, [self._review_json(pull, review) for review in reviews])

    @route("GET", REPO + r"/pulls/(?P<number>\d+)/requested_reviewers")
    def _get_requested(self, req: _Req, owner: str, name: str, number: str) -> Reply:
        repo = self._repo_for(req, owner, name)
        self._pull_record(repo["full_name"], int(number))
        logins = self.requested_reviewers[(repo["full_name"], int(number))]
        return 200, {"users": [self._user_json(login) for login in logins], "teams": []}, {}

    @route("POST", REPO + r"/pulls/(?P<number>\d+)/requested_reviewers")
    def _request_reviewers(self, req: _Req, owner: str, name: str, number: str) -> Reply:
        repo = self._repo_for(req, owner, name)
        pull = self._pull_record(repo["full_name"], int(number))
        logins = req.body.get("reviewers", [])
        if any(login.lower() == pull["author"].lower() for login in logins):
            raise GitHubError(422, "Review cannot be requested from pull request author.")
        requested = self.requested_reviewers[(repo["full_name"], int(number))]
        for login in logins:
            self._user(login)
            if login.lower() not in {known.lower() for known in requested}:
                requested.append(login)
        return 201, self._pull_json(pull), {}

    @route("GET", REPO + r"/commits/(?P<ref>[^/]+)")
    def _get_commit(self, req: _Req, owner: str, name: str, ref: str) -> Reply:
        repo = self._repo_for(req, owner, name)
        sha = _sha(repo["full_name"], ref) if ref in repo["branches"] else ref
        self._require_commit(repo, sha)
        api = f"{self.api_url}/repos/{repo['full_name']}"
        author = {"name": "A Developer", "email": "dev@example.com", "date": "2020-01-01T00:00:00Z"}
        return (
            200,
            {
                "sha": sha,
                "node_id": _node_id("Commit", int(sha[:7], 16)),
                "url": f"{api}/commits/{sha}",
                "html_url": f"{self.url}/{repo['full_name']}/commit/{sha}",
                "commit": {"message": "A change", "author": author, "committer": author},
                "author": None,
                "committer": None,
                "parents": [],
                "files": [],
            },
            {},
        )

    # ------------------------------------------------------------------ check runs and statuses

    @route("POST", REPO + r"/check-runs")
    def _create_check_run(self, req: _Req, owner: str, name: str) -> Reply:
        repo = self._repo_for(req, owner, name)
        self._require_commit(repo, req.body["head_sha"])
        run_id = next(self._ids)
        api = f"{self.api_url}/repos/{repo['full_name']}/check-runs/{run_id}"
        run = {
            "id": run_id,
            "node_id": _node_id("CheckRun", run_id),
            "head_sha": req.body["head_sha"],
            "external_id": "",
            "url": api,
            "html_url": f"{self.url}/{repo['full_name']}/runs/{run_id}",
            "details_url": f"{self.url}/apps/{self.app_slug}",
            "status": "queued",
            "conclusion": None,
            "started_at": _iso(_now()),
            "completed_at": None,
            "output": {
                "title": None,
                "summary": None,
                "text": None,
                "annotations_count": 0,
                "annotations_url": f"{api}/annotations",
            },
            "name": req.body["name"],
            "check_suite": {"id": run_id + 1_000_000},
            "app": {
                "id": self.app_id,
                "slug": self.app_slug,
                "node_id": _node_id("Integration", self.app_id),
                "name": self.app_slug.replace("-", " ").title(),
                "owner": None,
            },
            "pull_requests": [],
        }
        self._update_check_run(run, req.body)
        self.check_runs[run_id] = run
        self._check_run_repo[run_id] = repo["full_name"].lower()
        return 201, run, {}

    @route("GET", REPO + r"/check-runs/(?P<run_id>\d+)")
    def _get_check_run(self, req: _Req, owner: str, name: str, run_id: str) -> Reply:
        return 200, self._check_run(req, owner, name, run_id), {}

    @route("PATCH", REPO + r"/check-runs/(?P<run_id>\d+)")
    def _edit_check_run(self, req: _Req, owner: str, name: str, run_id: str) -> Reply:
        run = self._check_run(req, owner, name, run_id)
        self._update_check_run(run, req.body)
        return 200, run, {}

    def _check_run(self, req: _Req, owner: str, name: str, run_id: str) -> dict[str, Any]:
        repo = self._repo_for(req, owner, name)
        if self._check_run_repo.get(int(run_id)) != repo["full_name"].lower():
            raise NotFound()
        return self.check_runs[int(run_id)]

    @staticmethod
    def _update_check_run(run: dict[str, Any], body: dict[str, Any]) -> None:
        for key in ("name", "head_sha", "details_url", "external_id", "status", "started_at"):
            if key in body:
                run[key] = body[key]
        output = body.get("output") or {}
        for key in ("title", "summary", "text"):
            if key in output:
                run["output"][key] = output[key]
        run["output"]["annotations_count"] += len(output.get("annotations", []))
        if body.get("conclusion") is not None:  # a conclusion completes the run
            run.update(status="completed", conclusion=body["conclusion"])
        if "completed_at" in body:
            run["completed_at"] = body["completed_at"]
        if run["status"] == "completed":
            if run["conclusion"] is None:
                raise GitHubError(422, "Conclusion is required when status is completed.")
            run["completed_at"] = run["completed_at"] or _iso(_now())

    @route("GET", REPO + r"/commits/(?P<ref>[^/]+)/check-runs")
    def _commit_check_runs(self, req: _Req, owner: str, name: str, ref: str) -> Reply:
        repo = self._repo_for(req, owner, name)
        sha = _sha(repo["full_name"], ref) if ref in repo["branches"] else ref
        runs = [
            run
            for run in self.check_runs_for(repo["full_name"], sha)
            if req.query.get("check_name") in {None, run["name"]}
            and req.query.get("status") in {None, run["status"]}
            and req.query.get("app_id") in {None, str(run["app"]["id"])}
        ]
        runs.reverse()  # newest first
        if req.query.get("filter", "latest") == "latest":
            runs = list({run["name"]: run for run in reversed(runs)}.values())[::-1]
        return self._paginate(
            req, runs, lambda chunk: {"total_count": len(runs), "check_runs": chunk}
        )

    @route("POST", REPO + r"/statuses/(?P<sha>[0-9a-fA-F]+)")
    def _create_status(self, req: _Req, owner: str, name: str, sha: str) -> Reply:
        repo = self._repo_for(req, owner, name)
        self._require_commit(repo, sha)
        status_id = next(self._ids)
        stamp = _iso(_now())
        status = {
            "url": f"{self.api_url}/repos/{repo['full_name']}/statuses/{sha}",
            "id": status_id,
            "node_id": _node_id("StatusContext", status_id),
            "state": req.body["state"],
            "description": req.body.get("description"),
            "target_url": req.body.get("target_url"),
            "context": req.body.get("context", "default"),
            "created_at": stamp,
            "updated_at": stamp,
            "creator": self._user_json(self._actor(req)),
        }
        self.statuses.append(status)
        return 201, status, {}

    # ------------------------------------------------------------------ issue comments

    @route("GET", REPO + r"/issues/(?P<number>\d+)/comments")
    def _list_comments(self, req: _Req, owner: str, name: str, number: str) -> Reply:
        repo = self._repo_for(req, owner, name)
        self._pull_record(repo["full_name"], int(number))
        return self._paginate(req, self._comments.get((repo["full_name"].lower(), int(number)), []))

    @route("POST", REPO + r"/issues/(?P<number>\d+)/comments")
    def _create_comment(self, req: _Req, owner: str, name: str, number: str) -> Reply:
        repo = self._repo_for(req, owner, name)
        self._pull_record(repo["full_name"], int(number))
        comment_id = next(self._ids)
        api = f"{self.api_url}/repos/{repo['full_name']}/issues"
        stamp = _iso(_now())
        comment = {
            "id": comment_id,
            "node_id": _node_id("IssueComment", comment_id),
            "url": f"{api}/comments/{comment_id}",
            "html_url": f"{self.url}/{repo['full_name']}/pull/{number}#issuecomment-{comment_id}",
            "issue_url": f"{api}/{number}",
            "body": req.body["body"],
            "user": self._user_json(self._actor(req)),
            "created_at": stamp,
            "updated_at": stamp,
            "author_association": "NONE",
        }
        self._comments.setdefault((repo["full_name"].lower(), int(number)), []).append(comment)
        return 201, comment, {}

    # ------------------------------------------------------------------ search

    @route("GET", r"/search/issues")
    def _search_issues(self, req: _Req) -> Reply:
        visible = {repo["full_name"].lower() for repo in self._visible_repos(req)}
        terms = req.query.get("q", "").split()
        if not terms:
            raise GitHubError(
                422, "Validation Failed", errors=[{"resource": "Search", "field": "q"}]
            )
        tests: list[Callable[[dict[str, Any]], bool]] = []
        for term in terms:
            key, _, value = term.partition(":")
            value_lower = value.lower()
            if key in {"is", "type", "state"} and value_lower in {"pr", "issue"}:
                tests.append(lambda pull, kind=value_lower: kind == "pr")
            elif key in {"is", "state"} and value_lower in {"open", "closed"}:
                tests.append(lambda pull, state=value_lower: pull["state"] == state)
            elif key == "is" and value_lower in {"merged", "unmerged"}:
                tests.append(
                    lambda pull, m=value_lower: (pull["merged_at"] is not None) == (m == "merged")
                )
            elif key == "author":
                tests.append(lambda pull, login=value_lower: pull["author"].lower() == login)
            elif key == "repo":
                if value_lower not in visible:
                    raise GitHubError(
                        422,
                        "Validation Failed",
                        errors=[
                            {
                                "message": "The listed users and repositories cannot be searched "
                                "either because the resources do not exist or you do not have "
                                "permission to view them.",
                                "resource": "Search",
                                "field": "q",
                                "code": "invalid",
                            }
                        ],
                    )
                tests.append(lambda pull, full=value_lower: pull["repo"].lower() == full)
            else:  # a free-text word matches the title
                word = term.lower()
                tests.append(lambda pull, word=word: word in pull["title"].lower())
        found = [
            pull
            for (repo_key, _), pull in sorted(self._pulls.items())
            if repo_key in visible and all(test(pull) for test in tests)
        ]
        return self._paginate(
            req,
            [self._search_item(pull) for pull in found],
            lambda chunk: {
                "total_count": len(found),
                "incomplete_results": False,
                "items": chunk,
            },
        )

    def _search_item(self, pull: dict[str, Any]) -> dict[str, Any]:
        data = self._pull_json(pull, full=False)
        repo_url = f"{self.api_url}/repos/{pull['repo']}"
        return {
            "url": data["issue_url"],
            "repository_url": repo_url,
            "html_url": data["html_url"],
            "id": data["id"],
            "node_id": data["node_id"],
            "number": data["number"],
            "title": data["title"],
            "user": data["user"],
            "labels": [],
            "state": data["state"],
            "locked": False,
            "assignee": None,
            "assignees": [],
            "comments": len(self._comments.get((pull["repo"].lower(), pull["number"]), [])),
            "created_at": data["created_at"],
            "updated_at": data["updated_at"],
            "closed_at": data["closed_at"],
            "author_association": "CONTRIBUTOR",
            "draft": data["draft"],
            "body": None,
            "score": 1.0,
            "pull_request": {
                "url": data["url"],
                "html_url": data["html_url"],
                "diff_url": data["diff_url"],
                "patch_url": data["patch_url"],
                "merged_at": data["merged_at"],
            },
        }

    # ------------------------------------------------------------------ branches and protection

    def _branch_for(self, req: _Req, owner: str, name: str, branch: str) -> dict[str, Any]:
        repo = self._repo_for(req, owner, name)
        if branch not in repo["branches"]:
            raise NotFound("Branch not found")
        return repo

    def _protected(self, req: _Req, owner: str, name: str, branch: str) -> dict[str, Any]:
        repo = self._branch_for(req, owner, name, branch)
        if (repo["full_name"].lower(), branch) not in self._protection:
            raise NotFound("Branch not protected")
        return repo

    @route("GET", REPO + r"/branches/(?P<branch>[^/]+)")
    def _get_branch(self, req: _Req, owner: str, name: str, branch: str) -> Reply:
        repo = self._branch_for(req, owner, name, branch)
        api = f"{self.api_url}/repos/{repo['full_name']}"
        sha = _sha(repo["full_name"], branch)
        settings = self._protection.get((repo["full_name"].lower(), branch))
        checks = settings and settings["required_status_checks"]
        return (
            200,
            {
                "name": branch,
                "commit": {"sha": sha, "url": f"{api}/commits/{sha}"},
                "protected": settings is not None,
                "protection": {
                    "enabled": settings is not None,
                    "required_status_checks": {
                        "enforcement_level": "non_admins" if checks else "off",
                        "contexts": [check["context"] for check in checks["checks"]]
                        if checks
                        else [],
                        "checks": copy.deepcopy(checks["checks"]) if checks else [],
                    },
                },
                "protection_url": f"{api}/branches/{branch}/protection",
                "_links": {
                    "self": f"{api}/branches/{branch}",
                    "html": f"{self.url}/{repo['full_name']}/tree/{branch}",
                },
            },
            {},
        )

    @route("GET", REPO + r"/branches/(?P<branch>[^/]+)/protection")
    def _get_protection(self, req: _Req, owner: str, name: str, branch: str) -> Reply:
        repo = self._protected(req, owner, name, branch)
        return 200, self._protection_json(repo, branch), {}

    @route("PUT", REPO + r"/branches/(?P<branch>[^/]+)/protection")
    def _put_protection(self, req: _Req, owner: str, name: str, branch: str) -> Reply:
        repo = self._branch_for(req, owner, name, branch)
        self._store_protection(repo, branch, req.body)
        return 200, self._protection_json(repo, branch), {}

    @route("GET", REPO + r"/branches/(?P<branch>[^/]+)/protection/required_status_checks")
    def _get_status_checks(self, req: _Req, owner: str, name: str, branch: str) -> Reply:
        repo = self._protected(req, owner, name, branch)
        return 200, self._status_checks_json(repo, branch), {}

    @route("PATCH", REPO + r"/branches/(?P<branch>[^/]+)/protection/required_status_checks")
    def _patch_status_checks(self, req: _Req, owner: str, name: str, branch: str) -> Reply:
        repo = self._protected(req, owner, name, branch)
        self._status_checks_json(repo, branch)  # 404 when status checks are not enabled
        stored = self._protection[(repo["full_name"].lower(), branch)]["required_status_checks"]
        self._merge_status_checks(stored, req.body or {})
        return 200, self._status_checks_json(repo, branch), {}

    # ------------------------------------------------------------------ users and limits

    @route("GET", r"/user")
    def _get_authenticated_user(self, req: _Req) -> Reply:
        if req.auth.kind == "installation":
            raise GitHubError(403, "Resource not accessible by integration")
        if req.auth.kind != "oauth":
            raise GitHubError(401, "Requires authentication")
        return 200, self._user_json(req.auth.login or "", full=True), {}

    @route("GET", r"/users/(?P<login>[^/]+)")
    def _get_user(self, req: _Req, login: str) -> Reply:
        if req.auth.kind == "invalid":
            raise GitHubError(401, "Bad credentials")
        if login.lower() not in self._users:
            raise NotFound()
        return 200, self._user_json(login, full=True), {}

    @route("GET", r"/rate_limit")
    def _rate_limit(self, req: _Req) -> Reply:
        reset = int(time.time()) + 3600
        core = {"limit": 5000, "remaining": 4999, "reset": reset, "used": 1}
        search = {"limit": 30, "remaining": 30, "reset": reset, "used": 0}
        return 200, {"resources": {"core": core, "search": search}, "rate": core}, {}

    # ------------------------------------------------------------------ OAuth web flow

    def _web(self, req: _Req) -> Response:
        if req.method == "GET" and req.path == "/login/oauth/authorize":
            return self._authorize(req)
        if req.method == "POST" and req.path == "/login/oauth/access_token":
            return self._exchange_code(req)
        return Response("Not Found", 404, mimetype="text/html")

    def _authorize(self, req: _Req) -> Response:
        """Sign ``oauth_next_login`` in at once and send the browser back with a code."""
        client_id = req.query.get("client_id", "")
        if client_id not in self._oauth_apps or self.oauth_next_login is None:
            return Response(
                "<h1>Unknown client or no user to sign in</h1>", 400, mimetype="text/html"
            )
        code = secrets.token_hex(10)
        redirect_uri = req.query.get("redirect_uri", "")
        self._oauth_codes[code] = (client_id, redirect_uri, self.oauth_next_login)
        self._user(self.oauth_next_login)
        params = {"code": code, **({"state": req.query["state"]} if "state" in req.query else {})}
        separator = "&" if "?" in redirect_uri else "?"
        location = f"{redirect_uri}{separator}{urllib.parse.urlencode(params)}"
        return Response("", 302, {"Location": location})

    def _exchange_code(self, req: _Req) -> Response:
        """Trade a code for a user token; GitHub reports errors with a 200 and an ``error``."""
        form = req.body if isinstance(req.body, dict) else {}
        client_id, code = form.get("client_id", ""), form.get("code", "")
        grant = self._oauth_codes.pop(code, None)
        if self._oauth_apps.get(client_id) != form.get("client_secret"):
            reply = {"error": "incorrect_client_credentials"}
        elif grant is None or grant[0] != client_id:
            reply = {"error": "bad_verification_code"}
        elif form.get("redirect_uri", grant[1]) != grant[1]:
            reply = {"error": "redirect_uri_mismatch"}
        else:
            token = "gho_" + secrets.token_urlsafe(27)
            self._oauth_tokens[token] = grant[2]
            reply = {"access_token": token, "token_type": "bearer", "scope": ""}
        if "error" in reply:
            reply["error_description"] = reply["error"].replace("_", " ")
        if "application/json" in req.headers.get("Accept", ""):
            return Response(json.dumps(reply), 200, mimetype="application/json")
        return Response(
            urllib.parse.urlencode(reply), 200, mimetype="application/x-www-form-urlencoded"
        )
