"""A fake GitHub for tests: a real HTTP server that PyGithub and ``requests`` talk to.

It copies the layout of GitHub Enterprise Server, so the app only needs a different base URL:
the web host (OAuth sign-in) is ``http://127.0.0.1:PORT`` and the REST API is under
``http://127.0.0.1:PORT/api/v3``. It emulates the small part of GitHub a GitHub App like
Gatekeeper uses, behaving as GitHub does where a client can tell:

* App authentication: RS256 JWTs checked against the App's key (``iss``, ``iat``, ``exp``),
  installation tokens (``ghs_...``, one hour) that see only their installation's repositories,
  OAuth user tokens from the web flow (``/login/oauth/authorize`` and ``access_token``).
* Repositories, pull requests (from forks too, and several on one head commit), reviews, review
  requests, commits, check runs, commit statuses, issue comments, issue search, branches and
  branch protection, repository and organisation rulesets with the rules they make effective on
  a branch (``add_ruleset``; ``refuse_org_rulesets`` plays an organisation whose plan has
  none), users and the rate limit. ``remove_repo`` deletes (or transfers away) a
  repository: from then on every call about it answers 404.
* Pagination with ``per_page``/``page`` and an RFC 5988 ``Link`` header; errors in GitHub's
  JSON shape (``message``, ``documentation_url``); case-insensitive owner and repository names.
* Conditional requests: every successful GET carries a weak ``ETag`` computed from its body
  (so each page of a list has its own), and a GET whose ``If-None-Match`` matches it is
  answered ``304 Not Modified`` with no body.
* Rate-limit accounting per credential (an installation, the App's JWT, a user) and resource
  (``core``, ``search``): ``X-RateLimit-Remaining`` goes down for each counted request; a 304,
  ``/rate_limit`` and an injected rate-limit answer are not counted, as on GitHub.
* The App's webhook deliveries: ``GET /app/hook/deliveries`` (cursor pagination, newest first)
  and ``POST /app/hook/deliveries/{id}/attempts``, which re-sends the payload, signed, to
  ``hook_target`` when one is set and lists the new attempt as a redelivery.
* Several Apps: the fake's own (``app_id``, ``private_key_pem``) and any created through the
  App manifest flow: ``POST /settings/apps/new`` (or ``/organizations/ORG/settings/apps/new``)
  takes the form's ``manifest`` and ``state``, checks the manifest's shape, creates the App
  with a new RSA key at once (as if its owner pressed "Create") and redirects to its
  ``redirect_url`` with ``code`` and ``state``; ``POST /app-manifests/{code}/conversions``
  trades a code, once and within an hour (else 404), for the App's id, key and secrets. Each
  App's JWTs, installations (``add_installation(..., app_id=...)``) and check runs are its own.
* Every JSON request body is validated against the operation's ``requestBody`` schema in
  GitHub's own OpenAPI description (``fixtures/openapi``) and the documented check-run limits;
  a failure is answered with 422 and recorded in ``violations``, which tests assert is empty.
  The users the fake answers ``GET /users/{username}`` with are validated against that
  operation's response schema the same way.
* Users are accounts with ids: a login's account gets ``default_user_id(login)`` (the id the
  webhook payloads of ``webhook_events`` carry) unless that id is taken. ``rename_user`` keeps
  the id and frees the old login (404 until ``add_user`` gives it to a new account, new id).

Tests set state up with the ``add_*`` methods, read what the app did from ``calls``,
``writes()``, ``counted_calls()``, ``check_runs`` (each run keeps its ``writes``, timed),
``check_run_writes``, ``redelivery_requests`` and friends, and inject faults with
``fail_next``/``hang_next`` (``after_effect=True``: the request is performed and only its answer
is lost, as when a proxy answers 502 or the client times out after GitHub created the check run).
``latency`` makes every answer take time, as GitHub's do; the server is threaded, so concurrent
requests wait side by side.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import fnmatch
import functools
import hashlib
import hmac
import html
import itertools
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any, NamedTuple

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
JWT_MESSAGE = "A JSON web token could not be decoded"
REVIEW_STATES = frozenset({"APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"})
# What the fake's own App is granted and subscribed to: everything Gatekeeper asks for and a
# little more, as an App set up from the README would be. Tests change an App's
# ``permissions`` and ``events`` to plant what `gatekeeper doctor` must find.
PERMISSIONS = {
    **dict.fromkeys(["administration", "checks", "issues", "pull_requests", "statuses"], "write"),
    "organization_administration": "write",
    **dict.fromkeys(["contents", "members", "merge_queues", "metadata"], "read"),
}
EVENTS = [
    "check_run",
    "check_suite",
    "issue_comment",
    "merge_group",
    "pull_request",
    "pull_request_review",
]
EPOCH = "2020-01-01T00:00:00Z"  # creation time of everything the tests did not date
REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
PULL = REPO + r"/pulls/(?P<number>\d+)"
ISSUE = REPO + r"/issues/(?P<number>\d+)"  # every issue here is a pull request
BRANCH = REPO + r"/branches/(?P<branch>[^/]+)"
ORG = r"/orgs/(?P<org>[^/]+)"
# What GitHub answers an organisation whose plan has no organisation rulesets.
NO_ORG_RULESETS = "Upgrade to GitHub Enterprise to enable this feature."
NO_PERMISSION = "Resource not accessible by integration"
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
RATE_LIMITS = {"core": (5000, 3600), "search": (30, 60)}  # resource -> (requests, per seconds)
HOOK_ID = 1  # the App's one webhook, as X-GitHub-Hook-ID names it


@dataclasses.dataclass
class Call:
    """One request the fake received, and what it answered."""

    method: str
    path: str  # API paths without the /api/v3 prefix; web paths as they came
    query: dict[str, str]
    json: Any | None  # the JSON body (or the form of a form-encoded POST)
    status: int
    auth: str  # "jwt", "installation:<id>", "oauth:<login>", "none" or "invalid"
    counted: bool = False  # whether it used up a request of its credential's rate limit


class CheckRunWrite(NamedTuple):
    """One create or update of a check run, in the order the fake stored them."""

    at: float  # time.monotonic() when it was stored
    repo: str
    head_sha: str
    conclusion: str | None
    run_id: int


class GitHubError(Exception):
    """Raised while handling a request to answer with GitHub's error shape."""

    def __init__(self, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.body = {"message": message, **extra, "documentation_url": DOCS_URL}
        self.headers: dict[str, str] = {}


def default_repo_id(full_name: str) -> int:
    """The id a repository gets unless a test names one: derived from its name, so that the
    payloads of ``webhook_events.Events`` and the fake's answers agree without being told."""
    return int(hashlib.sha1(full_name.lower().encode()).hexdigest()[:8], 16)


def not_found(message: str = "Not Found") -> GitHubError:
    return GitHubError(404, message, status="404")


def invalid(message: str, **error: Any) -> GitHubError:
    return GitHubError(422, "Validation Failed", errors=[{"message": message, **error}])


@dataclasses.dataclass
class FakeApp:
    """A GitHub App the fake knows: the one it starts with, or one created from a manifest.

    Tests may change ``permissions`` and ``events`` to plant what GitHub would report.
    """

    id: int
    slug: str
    name: str
    pem: str  # the private key, PKCS#1 PEM as GitHub hands it out
    public_key: rsa.RSAPublicKey
    permissions: dict[str, str]
    events: list[str]
    owner: str | None = None  # the login that owns it (None for the fake's own App)
    client_id: str = ""
    client_secret: str = ""
    webhook_secret: str | None = None
    manifest: dict[str, Any] | None = None  # what it was created from, for tests to read


@dataclasses.dataclass
class _Req:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    auth: str  # as in Call.auth
    installation_id: int | None = None
    login: str | None = None
    app_id: int | None = None  # the App a JWT or an installation token speaks for
    # Work to do once the lock is released and before answering, such as calling hook_target,
    # which may well call the fake back.
    then: list[Callable[[], None]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    times: int
    status: int = 500
    rate_limited: bool = False
    delay: float = 0.0
    after_effect: bool = False  # perform the request, then fail or delay the answer


@dataclasses.dataclass
class _Quota:
    """One credential's requests within one rate-limit window of one resource."""

    limit: int
    reset: int  # epoch seconds at which the window ends
    used: int = 0

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


@dataclasses.dataclass(frozen=True)
class _Latency:
    """Seconds to wait before answering; replaced whole, so threads read it without a lock."""

    write: float = 0.0
    read: float = 0.0
    every: float = 0.0

    def of(self, method: str, path: str) -> float:
        kind = self.write if _is_write(method, path) else self.read if method == "GET" else 0.0
        return self.every + kind


Reply = tuple[int, Any, dict[str, str]]
_ROUTES: list[tuple[str, re.Pattern[str], bool, Callable[..., Reply]]] = []


def route(method: str, pattern: str, *, app: bool = False) -> Callable[[Any], Any]:
    """Register a handler for an API path (without /api/v3); ``app`` routes take the JWT.

    Named groups are resolved before the handler runs: ``owner``/``name`` become ``repo`` (404
    unless the token may see it), ``number`` becomes ``pull``, and ``branch`` must exist.
    """

    def register(handler: Callable[..., Reply]) -> Callable[..., Reply]:
        _ROUTES.append((method, re.compile(pattern), app, handler))
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


def _is_write(method: str, path: str) -> bool:
    """Whether a request changes something; minting an installation token does not count."""
    return method in WRITE_METHODS and not path.endswith("/access_tokens")


def _resource(path: str) -> str:
    """The rate-limit resource a path draws on: search has its own, smaller, budget."""
    return "search" if path.startswith("/search/") else "core"


def _etag(text: str) -> str:
    # GitHub's are weak tags over the body, so they change exactly when the body does.
    return f'W/"{hashlib.sha256(text.encode()).hexdigest()}"'


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison: any listed tag, with or without ``W/``, or ``*``."""
    tags = {tag.strip().removeprefix("W/") for tag in (if_none_match or "").split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def _without(record: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A stored record as the API shows it, leaving out what only tests may read."""
    return {key: value for key, value in record.items() if key not in keys}


@functools.cache
def _app_key() -> rsa.RSAPrivateKey:
    # One key per process: generating one costs ~100 ms, and fakes share nothing else.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1, as GitHub hands it out
        serialization.NoEncryption(),
    ).decode()


def default_user_id(login: str) -> int:
    """The id the account of ``login`` has unless a test says otherwise (the same in the
    webhook payloads ``webhook_events`` builds), whatever the login's case."""
    return int(hashlib.sha1(login.lower().encode()).hexdigest()[:8], 16)


@functools.cache
def _response_validator(template: str) -> Any:
    """A validator of ``GET template``'s 200 answer, from GitHub's OpenAPI description."""
    spec = json.loads(SPEC_PATH.read_text())
    resource = Resource.from_contents(spec, default_specification=DRAFT4)
    registry = Registry().with_resource(SPEC_URI, resource)
    pointer = "/".join(
        part.replace("~", "~0").replace("/", "~1")
        for part in ("paths", template, "get", "responses", "200", "content", "application/json")
    )
    schema = {"$ref": f"{SPEC_URI}#/{pointer}/schema"}
    return OAS30Validator(schema, registry=registry, format_checker=OAS30Validator.FORMAT_CHECKER)


def response_errors(template: str, body: Any) -> list[str]:
    """Every way ``body`` breaks the documented shape of ``GET template``'s answer."""
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '(body)'}: {error.message[:200]}"
        for error in _response_validator(template).iter_errors(body)
    ]


@functools.cache
def _body_validators() -> list[tuple[str, re.Pattern[str], Any]]:
    """(method, path regex, validator) for each operation with a JSON body; built once."""
    spec = json.loads(SPEC_PATH.read_text())
    resource = Resource.from_contents(spec, default_specification=DRAFT4)
    registry = Registry().with_resource(SPEC_URI, resource)
    found = []
    for template, operations in spec["paths"].items():
        regex = re.compile(re.sub(r"\{[^}]+\}", "[^/]+", template))
        for method, operation in operations.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                pointer = "/".join(
                    part.replace("~", "~0").replace("/", "~1")
                    for part in ("paths", template, method, "requestBody", "content")
                )
                schema = {"$ref": f"{SPEC_URI}#/{pointer}/application~1json/schema"}
                checker = OAS30Validator.FORMAT_CHECKER
                validator = OAS30Validator(schema, registry=registry, format_checker=checker)
                found.append((method.upper(), regex, validator))
    return found


def _body_errors(method: str, path: str, body: Any) -> list[str]:
    """Every way ``body`` breaks the operation's schema or GitHub's check-run limits."""
    errors = [
        f"{'.'.join(map(str, error.absolute_path)) or '(body)'}: {error.message[:200]}"
        for op_method, regex, validator in _body_validators()
        if op_method == method and regex.fullmatch(path)
        for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    ]
    if errors or not re.fullmatch(REPO + r"/check-runs(/\d+)?", path):
        return errors  # the limits below assume a body of the right shape
    output, actions = body.get("output") or {}, body.get("actions") or []
    for field in ("summary", "text"):  # the limit is in bytes, the schema counts characters
        if len(output.get(field, "").encode()) > 65535:
            errors.append(f"output.{field}: longer than 65535 bytes")
    if len(actions) > 3:
        errors.append(f"actions: {len(actions)} actions, at most 3 are allowed")
    for index, action in enumerate(actions):
        for field, limit in (("label", 20), ("description", 40), ("identifier", 20)):
            if len(action[field]) > limit:
                errors.append(f"actions.{index}.{field}: longer than {limit} characters")
    return errors


MANIFEST_KEYS = {
    "name": str,
    "url": str,
    "hook_attributes": dict,
    "redirect_url": str,
    "callback_urls": list,
    "setup_url": str,
    "description": str,
    "public": bool,
    "default_events": list,
    "default_permissions": dict,
    "request_oauth_on_install": bool,
    "setup_on_update": bool,
}


def _manifest_errors(manifest: Any) -> list[str]:
    """Every way ``manifest`` breaks the shape GitHub's App manifest parameters document."""
    if not isinstance(manifest, dict):
        return ["manifest: not a JSON object"]
    errors = [
        f"{key}: unknown manifest parameter" for key in sorted(set(manifest) - set(MANIFEST_KEYS))
    ]
    errors += [
        f"{key}: must be a {kind.__name__}"
        for key, kind in MANIFEST_KEYS.items()
        if key in manifest and not isinstance(manifest[key], kind)
    ]
    if errors:
        return errors
    hook = manifest.get("hook_attributes", {})
    urls = {
        "url": manifest.get("url"),
        "hook_attributes.url": hook.get("url") if "hook_attributes" in manifest else "http://x",
        **{key: manifest[key] for key in ("redirect_url", "setup_url") if key in manifest},
        **{f"callback_urls.{i}": url for i, url in enumerate(manifest.get("callback_urls", []))},
    }
    errors += [
        f"{key}: must be an http(s) URL"
        for key, url in urls.items()
        if not isinstance(url, str) or not re.fullmatch(r"https?://[^/\s]+(/\S*)?", url)
    ]
    if len(manifest.get("callback_urls", [])) > 10:
        errors.append("callback_urls: at most 10")
    if not isinstance(hook.get("active", True), bool):
        errors.append("hook_attributes.active: must be a bool")
    if not 1 <= len(manifest.get("name", "")) <= 34:
        errors.append("name: between 1 and 34 characters")
    errors += [
        f"default_permissions.{name}: {access!r} is not read, write or admin"
        for name, access in manifest.get("default_permissions", {}).items()
        if access not in {"read", "write", "admin"}
    ]
    errors += [
        f"default_events: {event!r} is not an event name"
        for event in manifest.get("default_events", [])
        if not isinstance(event, str) or not re.fullmatch(r"[a-z_]+", event)
    ]
    return errors


def _matches(name: str, condition: dict[str, Any], special: set[str]) -> bool:
    """A ruleset condition's ``include``/``exclude`` patterns (fnmatch, as GitHub's) on ``name``;
    ``special`` are the ``~`` words that take ``name`` in."""

    def hit(patterns: list[str]) -> bool:
        return any(p in special or fnmatch.fnmatchcase(name, p) for p in patterns)

    return hit(condition.get("include") or []) and not hit(condition.get("exclude") or [])


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's request handler without a log line per request."""

    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class FakeGitHub:
    """GitHub's REST API and OAuth web flow for one GitHub App, served on 127.0.0.1."""

    def __init__(self, *, app_id: int = 4242, app_slug: str = "gatekeeper-test") -> None:
        self.app_id = app_id  # the fake's own App; more come from the manifest flow
        self.app_slug = app_slug
        self.bot_login = f"{app_slug}[bot]"
        key = _app_key()
        self.private_key_pem = _pem(key)
        self.apps: dict[int, FakeApp] = {
            app_id: FakeApp(
                id=app_id,
                slug=app_slug,
                name=app_slug,
                pem=self.private_key_pem,
                public_key=key.public_key(),
                permissions=dict(PERMISSIONS),
                events=list(EVENTS),
            )
        }
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1001)
        self._thread: threading.Thread | None = None
        # Bound now so URLs are known while a test sets state up; stop() closes it.
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler
        )

        self._users: dict[str, dict[str, Any]] = {}  # by lowercase login
        self._installations: dict[int, str] = {}  # id -> account login
        self._installation_apps: dict[int, int] = {}  # id -> the App it is an installation of
        self._manifest_codes: dict[str, tuple[int, float]] = {}  # code -> (App id, expiry)
        self.manifest_owner = "octocat"  # who is signed in to GitHub's "new App" page
        self._repos: dict[str, dict[str, Any]] = {}  # by lowercase full name
        # Former names (lowercase) of renamed or transferred repositories -> their ids.
        self._former_names: dict[str, int] = {}
        self._pulls: dict[tuple[str, int], dict[str, Any]] = {}  # by (lowercase repo, number)
        self._protection: dict[tuple[str, str], dict[str, Any]] = {}
        self._rulesets: dict[int, dict[str, Any]] = {}  # by id, repositories' and organisations'
        self._orgs_without_rulesets: set[str] = set()  # lowercase logins
        self._trees: dict[tuple[str, str], str] = {}  # (repo, sha) -> tree, where set
        self._tokens: dict[str, tuple[int, float]] = {}  # token -> (installation, expiry)
        self._oauth_apps: dict[str, str] = {}
        self._oauth_codes: dict[str, tuple[str, ...]] = {}  # code -> client, redirect, login, scope
        self._oauth_tokens: dict[str, str] = {}
        self._faults: list[_Fault] = []
        self._quotas: dict[tuple[str, str], _Quota] = {}  # by (Call.auth, resource)
        self._latency = _Latency()
        self._deliveries: dict[int, dict[str, Any]] = {}  # the App's webhook deliveries, by id

        self.oauth_next_login: str | None = None
        self.calls: list[Call] = []
        self.check_runs: dict[int, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.comments: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.requested_reviewers: dict[tuple[str, int], list[str]] = {}
        self.check_run_writes: list[CheckRunWrite] = []
        self.tokens_issued = 0
        self.violations: list[str] = []
        self.redelivery_requests: list[int] = []  # delivery ids, in the order they were asked for
        # Where redeliveries go: called with the headers and the body GitHub would send, it
        # returns the status code of the answer, e.g. with Flask's test client
        # ``lambda headers, body: client.post("/webhook", data=body, headers=headers).status_code``
        # or, for a live server, ``requests.post(url, data=body, headers=headers).status_code``.
        self.hook_target: Callable[[dict[str, str], bytes], int] | None = None
        self.hook_secret = ""  # signs what is sent to hook_target
        # Called with each request's method and path before it is answered (in the server's
        # thread), to see what the app's side was doing when it asked GitHub.
        self.on_request: Callable[[str, str], None] | None = None
        self._user(self.bot_login)

    # ------------------------------------------------------------------ server

    def start(self) -> None:
        """Serve from a background thread."""
        if self._thread is not None:
            raise RuntimeError("the fake GitHub is already serving")
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

    def add_installation(
        self, installation_id: int, *, account: str = "python", app_id: int | None = None
    ) -> None:
        """An installation of the App ``app_id`` (the fake's own by default) on ``account``."""
        with self._lock:
            if app_id is not None and app_id not in self.apps:
                raise ValueError(f"no App {app_id}: create it from a manifest first")
            self._user(account, kind="Organization")
            self._installations[installation_id] = account
            self._installation_apps[installation_id] = app_id or self.app_id

    def app_by_slug(self, slug: str) -> FakeApp:
        """The App called ``slug`` (KeyError if there is none)."""
        with self._lock:
            return next(app for app in self.apps.values() if app.slug == slug)

    def age_manifest_codes(self, seconds: float) -> None:
        """Let ``seconds`` pass for the manifest flow's codes (they expire after an hour)."""
        with self._lock:
            self._manifest_codes = {
                code: (app_id, expiry - seconds)
                for code, (app_id, expiry) in self._manifest_codes.items()
            }

    def add_repo(
        self,
        full_name: str,
        *,
        installation_id: int | None,
        default_branch: str = "main",
        private: bool = False,
        fork: bool = False,
        repo_id: int | None = None,
    ) -> dict[str, Any]:
        """A repository; its id is ``default_repo_id(full_name)`` unless given (or taken)."""
        with self._lock:
            if installation_id is not None and installation_id not in self._installations:
                raise ValueError(f"call add_installation({installation_id}) first")
            self._user(full_name.split("/")[0], kind="Organization")
            taken = {r["id"] for r in self._repos.values()} | set(self._former_names.values())
            if repo_id is None:
                repo_id = default_repo_id(full_name)
                repo_id = next(self._ids) if repo_id in taken else repo_id
            # A new repository under a former name ends that name's redirect, as on GitHub.
            self._former_names.pop(full_name.lower(), None)
            repo = self._repos[full_name.lower()] = {
                "id": repo_id,
                "full_name": full_name,
                "installation_id": installation_id,
                "default_branch": default_branch,
                "private": private,
                "fork": fork,
                "branches": {default_branch},
                "shas": {_sha(full_name, default_branch)},  # commits check runs may point at
            }
            return self._repo_json(repo)

    def add_user(
        self, login: str, *, user_id: int | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """An account under ``login`` (a new one, with a new id, if ``login`` was renamed away)."""
        with self._lock:
            record = self._user(login)
            record["id"] = user_id or record["id"]
            record["name"] = name or record["name"]
            return self._user_json(login, full=True)

    def rename_user(self, old: str, new: str) -> dict[str, Any]:
        """Rename an account: it keeps its id; everything it wrote shows the new login, and
        ``old`` is nobody's (404) until ``add_user(old)`` gives it to another account."""
        with self._lock:
            record = self._users.pop(old.lower(), None)
            if record is None:
                raise ValueError(f"no user {old!r} to rename")
            if new.lower() in self._users:
                raise ValueError(f"{new!r} is taken")
            record["login"] = new
            self._users[new.lower()] = record

            def renamed(login: str | None) -> str | None:
                return new if login is not None and login.lower() == old.lower() else login

            for pull in self._pulls.values():
                pull["author"], pull["merged_by"] = (
                    renamed(pull["author"]),
                    renamed(pull["merged_by"]),
                )
                for review in pull["reviews"]:
                    review["login"] = renamed(review["login"])
            for requested in self.requested_reviewers.values():
                requested[:] = [renamed(login) or login for login in requested]
            return self._user_json(new, full=True)

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
        head_ref: str | None = None,
        updated_at: str | None = None,
        merged_by: str | None = None,
    ) -> dict[str, Any]:
        """Add a pull request; ``merged=True`` closes it, merged by ``merged_by`` or the author.

        ``head_repo`` makes it a pull request from that fork (created if need be): its head
        commit is then in both repositories, and check runs for it live on the base one. Pulls
        may share a head commit, or with ``head_ref`` a whole head branch, as when one branch is
        proposed for two base branches.
        """
        with self._lock:
            repo = self._repo(full_name)
            if head_repo is not None and head_repo.lower() not in self._repos:
                self.add_repo(head_repo, installation_id=None, fork=True)
            self._user(author)
            stamp = updated_at or _iso(_now())
            repo["branches"].add(base)
            repo["shas"] |= {head_sha, _sha(repo["full_name"], base)}
            self._repo(head_repo or full_name)["shas"].add(head_sha)
            pull = self._pulls[(repo["full_name"].lower(), number)] = {
                "number": number,
                "repo": repo["full_name"],
                "id": next(self._ids),
                "title": title,
                "author": author,
                "head_sha": head_sha,
                "head_ref": head_ref or f"{author.lower()}/change-{number}",
                "head_repo": head_repo or repo["full_name"],
                "base": base,
                "draft": draft,
                "state": "closed" if merged else state,
                "merged_at": stamp if merged else None,
                "merged_by": (merged_by or author) if merged else None,
                "created_at": stamp,
                "updated_at": stamp,
                "closed_at": stamp if merged or state == "closed" else None,
                "reviews": [],
            }
            self.requested_reviewers[(repo["full_name"], number)] = []
            return self._pull_json(pull)

    def add_commit(self, full_name: str, sha: str) -> None:
        """A commit outside any pull request (a merge queue's temporary branch, say)."""
        with self._lock:
            self._repo(full_name)["shas"].add(sha)

    def base_of(self, full_name: str, number: int) -> str:
        """The base branch of a pull request."""
        with self._lock:
            return str(self._pull(self._repo(full_name), number)["base"])

    def set_base(self, full_name: str, number: int, base: str) -> None:
        """Move a pull request to another base branch, as its Edit button does."""
        with self._lock:
            repo = self._repo(full_name)
            pull = self._pull(repo, number)
            repo["branches"].add(base)
            repo["shas"].add(_sha(repo["full_name"], base))
            pull.update(base=base, updated_at=_iso(_now()))

    def set_tree(self, full_name: str, sha: str, tree: str) -> None:
        """Give commit ``sha`` the tree ``tree`` (two commits with one tree hold the same
        content: a squash, a reworded message). Unset, each commit has a tree of its own."""
        with self._lock:
            self._repo(full_name)["shas"].add(sha)
            self._trees[(full_name.lower(), sha)] = tree

    def tree_of(self, full_name: str, sha: str) -> str:
        """The tree of commit ``sha``."""
        with self._lock:
            return self._trees.get((full_name.lower(), sha), _sha("tree", sha))

    def push(self, full_name: str, number: int, head_sha: str) -> None:
        """Push ``head_sha`` to the pull's head branch, moving every open pull made from it."""
        with self._lock:
            pull = self._pull(self._repo(full_name), number)
            branch = (pull["head_repo"].lower(), pull["head_ref"])
            for other in self._pulls.values():
                if other is pull or (
                    other["state"] == "open"
                    and (other["head_repo"].lower(), other["head_ref"]) == branch
                ):
                    other.update(head_sha=head_sha, updated_at=_iso(_now()))
                    self._repo(other["repo"])["shas"].add(head_sha)
            head_repo = self._repos.get(branch[0])
            if head_repo is not None:  # None once a fork is deleted
                head_repo["shas"].add(head_sha)

    def merge(
        self, full_name: str, number: int, *, merged_by: str, merged_at: str | None = None
    ) -> None:
        """Merge an open pull request (its reviews stay), as the merge button does."""
        with self._lock:
            pull = self._pull(self._repo(full_name), number)
            stamp = merged_at or _iso(_now())
            self._user(merged_by)
            pull.update(
                state="closed",
                merged_at=stamp,
                merged_by=merged_by,
                closed_at=stamp,
                updated_at=stamp,
            )

    def add_comment(self, full_name: str, number: int, *, author: str, body: str) -> None:
        """A comment someone wrote on a pull request (issue comments, as GitHub keeps them)."""
        with self._lock:
            repo = self._repo(full_name)
            pull = self._pull(repo, number)
            self._store_comment(repo, pull, author=author, body=body)

    def rename_repo(self, full_name: str, new_name: str) -> dict[str, Any]:
        """Rename a repository to ``new_name`` (OWNER/NAME), keeping its id, pull requests,
        checks, comments and protection, as GitHub does.

        GitHub keeps answering the former name with a redirect to the same path under the
        new one: ``301 Moved Permanently`` for a GET, ``307 Temporary Redirect`` for any other
        method. PyGithub follows a 301 itself (to the new path, without the query string),
        so a GET by the former name is answered; it does not follow a 307, so a write by the
        former name fails (GitHubUnavailable 307) until the app uses the new name.
        """
        with self._lock:
            repo = self._repo(full_name)
            old, new = repo["full_name"], new_name
            if new.lower() in self._repos and new.lower() != old.lower():
                raise ValueError(f"{new} already exists")
            self._user(new.split("/")[0], kind="Organization")
            del self._repos[old.lower()]
            repo["full_name"] = new
            repo["shas"] |= {_sha(new, branch) for branch in repo["branches"]}
            self._repos[new.lower()] = repo
            self._former_names[old.lower()] = repo["id"]
            self._former_names.pop(new.lower(), None)
            for (repo_key, number), pull in list(self._pulls.items()):
                if pull["head_repo"].lower() == old.lower():
                    pull["head_repo"] = new
                if repo_key == old.lower():
                    del self._pulls[(repo_key, number)]
                    pull["repo"] = new
                    self._pulls[(new.lower(), number)] = pull
            for store in (self.comments, self.requested_reviewers):
                for repo_name, number in [key for key in store if key[0] == old]:
                    store[(new, number)] = store.pop((repo_name, number))
            for repo_key, branch in [key for key in self._protection if key[0] == old.lower()]:
                self._protection[(new.lower(), branch)] = self._protection.pop((repo_key, branch))
            for run in self.check_runs.values():
                for key in ("url", "html_url"):
                    run[key] = (
                        run[key]
                        .replace(f"/repos/{old}/", f"/repos/{new}/")
                        .replace(f"{self.url}/{old}/", f"{self.url}/{new}/")
                    )
            return self._repo_json(repo)

    def transfer_repo(
        self, full_name: str, new_owner: str, *, installation_id: int | None = None
    ) -> dict[str, Any]:
        """Transfer a repository to ``new_owner`` (a rename of its owner, keeping its id).

        The installation on the former owner no longer covers it: ``installation_id`` is the
        new owner's installation of the App that does, if any.
        """
        with self._lock:
            if installation_id is not None and installation_id not in self._installations:
                raise ValueError(f"call add_installation({installation_id}) first")
            name = self._repo(full_name)["full_name"].split("/")[1]
            data = self.rename_repo(full_name, f"{new_owner}/{name}")
            self._repo(data["full_name"])["installation_id"] = installation_id
            return data

    def remove_repo(self, full_name: str) -> None:
        """Delete a repository, or transfer it away: every API call about it answers 404 and
        no installation lists it. Pull requests from it as a fork lose their ``head.repo``."""
        with self._lock:
            repo = self._repos.pop(self._repo(full_name)["full_name"].lower())
            self._former_names = {
                name: repo_id
                for name, repo_id in self._former_names.items()
                if repo_id != repo["id"]
            }

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
            pull = self._pull(self._repo(full_name), number)
            self._user(reviewer)
            review = {
                "id": review_id or next(self._ids),
                "login": reviewer,
                "state": state,
                "commit_id": commit_id,
                "submitted_at": submitted_at or _iso(_now()),
            }
            pull["reviews"].append(review)
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
        """Protect ``branch``; ``other_settings`` are PUT-body fields, e.g. enforce_admins=True."""
        status_checks = None
        if contexts is not None or checks is not None:
            status_checks = {"strict": strict, "contexts": contexts or [], "checks": checks}
        with self._lock:
            body = {"required_status_checks": status_checks, **other_settings}
            self._store_protection(self._repo(full_name), branch, body)

    def protection(self, full_name: str, branch: str) -> dict[str, Any] | None:
        """The branch's protection as ``GET .../protection`` returns it, or None."""
        with self._lock:
            repo = self._repo(full_name)
            if (repo["full_name"].lower(), branch) not in self._protection:
                return None
            return self._protection_json(repo, branch)

    def add_ruleset(
        self,
        source: str,
        *,
        name: str,
        rules: list[dict[str, Any]],
        enforcement: str = "active",
        ref_include: list[str] | None = None,
        repository_include: list[str] | None = None,
    ) -> dict[str, Any]:
        """A branch ruleset of the repository ``source`` (OWNER/REPO) or the organisation
        ``source``, on the default branch unless ``ref_include`` says otherwise."""
        conditions: dict[str, Any] = {
            "ref_name": {"include": ref_include or ["~DEFAULT_BRANCH"], "exclude": []}
        }
        if "/" not in source:
            include = repository_include or ["~ALL"]
            conditions["repository_name"] = {"include": include, "exclude": []}
        body = {"name": name, "enforcement": enforcement, "conditions": conditions, "rules": rules}
        with self._lock:
            if "/" in source:
                return self._ruleset_json(self._store_ruleset(self._repo(source), body))
            self._user(source, kind="Organization")
            return self._ruleset_json(self._store_ruleset(source, body))

    def refuse_org_rulesets(self, org: str) -> None:
        """Play an organisation whose plan has no organisation rulesets: 403, as GitHub says."""
        with self._lock:
            self._orgs_without_rulesets.add(org.lower())

    def rulesets(self, source: str) -> list[dict[str, Any]]:
        """The rulesets of the repository (OWNER/REPO) or organisation ``source``, in full."""
        with self._lock:
            owner = self._repo(source)["id"] if "/" in source else source.lower()
            return [
                self._ruleset_json(ruleset)
                for ruleset in self._rulesets.values()
                if ruleset["owner"] == owner
            ]

    def effective_rules(self, full_name: str, branch: str) -> list[dict[str, Any]]:
        """What ``GET /repos/{full_name}/rules/branches/{branch}`` answers."""
        with self._lock:
            return self._effective_rules(self._repo(full_name), branch)

    def add_oauth_app(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._oauth_apps[client_id] = client_secret

    def add_hook_delivery(
        self,
        *,
        guid: str,
        event: str,
        action: str | None = None,
        status_code: int = 200,
        status: str | None = None,
        delivered_at: str | None = None,
        payload: dict[str, Any] | None = None,
        installation_id: int | None = None,
        repository_id: int | None = None,
        redelivery: bool = False,
        duration: float = 0.1,
    ) -> int:
        """Record a delivery of the App's webhook as GitHub lists it, and return its id.

        ``action``, ``installation_id`` and ``repository_id`` default to the payload's; a
        delivery with a payload can be redelivered to ``hook_target``. ``status`` defaults to
        the code's reason phrase ("OK", "Internal Server Error"); pass it for other codes.
        """
        fields = payload or {}
        if status is None:
            status = HTTPStatus(status_code).phrase  # ValueError: name the status yourself
        with self._lock:
            delivery_id = next(self._ids)
            self._deliveries[delivery_id] = {
                "id": delivery_id,
                "guid": guid,
                "delivered_at": delivered_at or _iso(_now()),
                "redelivery": redelivery,
                "duration": duration,
                "status": status,
                "status_code": status_code,
                "event": event,
                "action": action if action is not None else fields.get("action"),
                "installation_id": installation_id or (fields.get("installation") or {}).get("id"),
                "repository_id": repository_id or (fields.get("repository") or {}).get("id"),
                "payload": payload,
            }
            return delivery_id

    def latency(self, *, write: float = 0.0, read: float = 0.0, all: float = 0.0) -> None:
        """From now on wait ``write`` seconds before performing and answering each write (token
        minting aside), ``read`` before each GET, and ``all`` more before every request of any
        kind; ``latency()`` makes answers immediate again. Requests wait side by side."""
        with self._lock:
            self._latency = _Latency(write, read, all)

    # ------------------------------------------------------------------ what the app did

    def writes(self) -> list[Call]:
        """Calls that change something, leaving out the minting of installation tokens."""
        with self._lock:
            return [call for call in self.calls if _is_write(call.method, call.path)]

    def counted_calls(self, auth: str | None = None) -> list[Call]:
        """Calls that used up rate limit (of the credential ``auth``, e.g. "installation:1")."""
        with self._lock:
            return [call for call in self.calls if call.counted and auth in {None, call.auth}]

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def issued_tokens(self) -> list[str]:
        """Every installation and OAuth token handed out so far (secrets a log must not hold)."""
        with self._lock:
            return [*self._tokens, *self._oauth_tokens]

    def check_runs_for(
        self, full_name: str, head_sha: str, name: str | None = None
    ) -> list[dict[str, Any]]:
        """Stored check runs on one commit, oldest first."""
        prefix = f"{self.api_url}/repos/{self._repo(full_name)['full_name']}/"
        with self._lock:
            return [
                run
                for _, run in sorted(self.check_runs.items())
                if run["url"].startswith(prefix)
                and run["head_sha"] == head_sha
                and name in {None, run["name"]}
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
        after_effect: bool = False,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` (or a rate-limit 403).

        With ``after_effect`` each request is performed first and only its answer is the
        error: a lost response, as from a proxy's 502 after GitHub created the check run.
        """
        if rate_limited and after_effect:
            raise ValueError("GitHub performs nothing it answers with a rate limit")
        fault = _Fault(
            method.upper(),
            re.compile(path_pattern),
            times,
            status,
            rate_limited,
            after_effect=after_effect,
        )
        with self._lock:
            self._faults.append(fault)

    def hang_next(
        self, method: str, path_pattern: str, seconds: float, *, after_effect: bool = False
    ) -> None:
        """Delay the answer to the next matching request by ``seconds``.

        The request is performed once the delay is over, or with ``after_effect`` before it,
        so a client that timed out finds the effect already there when it asks again.
        """
        fault = _Fault(
            method.upper(), re.compile(path_pattern), 1, delay=seconds, after_effect=after_effect
        )
        with self._lock:
            self._faults.append(fault)

    # ------------------------------------------------------------------ records

    def _user(self, login: str, *, kind: str | None = None) -> dict[str, Any]:
        if login.lower() not in self._users:
            kind = kind or ("Bot" if login.endswith("[bot]") else "User")
            taken = {user["id"] for user in self._users.values()}
            wanted = default_user_id(login)
            self._users[login.lower()] = {
                "login": login,
                # A login freed by a rename goes to a new account: the old id stays with its own.
                "id": wanted if wanted not in taken else next(self._ids),
                "name": None,
                "type": kind,
            }
        return self._users[login.lower()]

    def _repo(self, full_name: str) -> dict[str, Any]:
        if full_name.lower() not in self._repos:
            raise not_found()
        return self._repos[full_name.lower()]

    def _pull(self, repo: dict[str, Any], number: int) -> dict[str, Any]:
        if (repo["full_name"].lower(), number) not in self._pulls:
            raise not_found()
        return self._pulls[(repo["full_name"].lower(), number)]

    def _store_protection(self, repo: dict[str, Any], branch: str, body: dict[str, Any]) -> None:
        # required_status_checks keeps one list of checks; its contexts are their names.
        settings = {key: value for key, value in body.items() if key != "restrictions"}
        if body.get("required_status_checks") is not None:
            settings["required_status_checks"] = {"strict": False, "checks": []}
            self._merge_status_checks(settings, body["required_status_checks"])
        repo["branches"].add(branch)
        self._protection[(repo["full_name"].lower(), branch)] = settings

    @staticmethod
    def _merge_status_checks(settings: dict[str, Any], patch: dict[str, Any]) -> None:
        stored = settings["required_status_checks"]
        stored["strict"] = patch.get("strict", stored["strict"])
        if patch.get("checks") is not None:
            stored["checks"] = [
                {"context": check["context"], "app_id": check.get("app_id")}
                for check in patch["checks"]
            ]
        elif patch.get("contexts") is not None:
            stored["checks"] = [{"context": name, "app_id": None} for name in patch["contexts"]]

    def _store_ruleset(self, owner: dict[str, Any] | str, body: dict[str, Any]) -> dict[str, Any]:
        """A new ruleset of a repository (its record) or an organisation (its login)."""
        if isinstance(owner, dict):  # a repository is known by its id
            key, source, kind = owner["id"], owner["full_name"], "Repository"
        else:
            key, source, kind = owner.lower(), self._user(owner)["login"], "Organization"
        if any(r["owner"] == key and r["name"] == body["name"] for r in self._rulesets.values()):
            raise invalid("Name must be unique", resource="Ruleset", field="name")
        ruleset_id = next(self._ids)
        self._rulesets[ruleset_id] = ruleset = {
            "id": ruleset_id,
            "owner": key,
            "source_type": kind,
            "source": source,
            "target": "branch",
            "bypass_actors": [],
            "created_at": _iso(_now()),
        }
        self._update_ruleset(ruleset, body)
        return ruleset

    @staticmethod
    def _update_ruleset(ruleset: dict[str, Any], body: dict[str, Any]) -> None:
        """PUT's meaning: the fields given replace the stored ones, the others stay."""
        for field in ("name", "target", "enforcement", "bypass_actors", "conditions", "rules"):
            if field in body:
                ruleset[field] = copy.deepcopy(body[field])
        ruleset.setdefault("conditions", {})
        ruleset.setdefault("rules", [])
        ruleset["updated_at"] = _iso(_now())

    def _ruleset_applies(self, ruleset: dict[str, Any], repo: dict[str, Any]) -> bool:
        """Whether the ruleset is the repository's own or its organisation's and names it."""
        if ruleset["source_type"] == "Repository":
            return bool(ruleset["owner"] == repo["id"])
        owner, name = repo["full_name"].split("/")
        if ruleset["owner"] != owner.lower():
            return False
        conditions = ruleset["conditions"] or {}
        if "repository_id" in conditions:
            return repo["id"] in (conditions["repository_id"].get("repository_ids") or [])
        names = conditions.get("repository_name") or {}
        return _matches(name, names, {"~ALL"})

    def _ruleset_covers(self, ruleset: dict[str, Any], repo: dict[str, Any], branch: str) -> bool:
        """Whether the ruleset's ``ref_name`` condition takes in ``branch``."""
        refs = (ruleset["conditions"] or {}).get("ref_name") or {}
        special = {"~ALL"} | ({"~DEFAULT_BRANCH"} if branch == repo["default_branch"] else set())
        return _matches(f"refs/heads/{branch}", refs, special)

    def _org_for_rulesets(self, req: _Req, org: str, access: str) -> str:
        """The organisation's login, if the request's installation is on it, may ``access``
        its administration and its plan has organisation rulesets."""
        account = self._installations.get(req.installation_id or 0, "")
        if account.lower() != org.lower():
            raise not_found()
        if org.lower() in self._orgs_without_rulesets:
            raise GitHubError(403, NO_ORG_RULESETS)
        self._require_permission(req, "organization_administration", access)
        return account

    def _require_permission(self, req: _Req, permission: str, access: str) -> None:
        """403, as GitHub answers an installation its App was not granted ``access`` to."""
        granted = self.apps[req.app_id].permissions.get(permission) if req.app_id else None
        ranks = {None: 0, "read": 1, "write": 2, "admin": 3}
        if ranks.get(granted, 0) < ranks[access]:
            raise GitHubError(403, NO_PERMISSION)

    def _ruleset_json(self, ruleset: dict[str, Any], *, full: bool = True) -> dict[str, Any]:
        if ruleset["source_type"] == "Repository":
            base = f"repos/{ruleset['source']}"
            html = f"{self.url}/{ruleset['source']}/rules/{ruleset['id']}"
        else:
            base = f"orgs/{ruleset['source']}"
            html = f"{self.url}/organizations/{ruleset['source']}/settings/rules/{ruleset['id']}"
        data = {
            "id": ruleset["id"],
            "name": ruleset["name"],
            "target": ruleset["target"],
            "source_type": ruleset["source_type"],
            "source": ruleset["source"],
            "enforcement": ruleset["enforcement"],
            "node_id": _node_id("RepositoryRuleset", ruleset["id"]),
            "_links": {
                "self": {"href": f"{self.api_url}/{base}/rulesets/{ruleset['id']}"},
                "html": {"href": html},
            },
            "created_at": ruleset["created_at"],
            "updated_at": ruleset["updated_at"],
        }
        if full:  # a list holds summaries; rules and conditions come with the ruleset alone
            data |= {
                "bypass_actors": copy.deepcopy(ruleset["bypass_actors"]),
                "conditions": copy.deepcopy(ruleset["conditions"]),
                "rules": copy.deepcopy(ruleset["rules"]),
            }
        return data

    # ------------------------------------------------------------------ JSON shapes

    def _user_json(self, login: str, *, full: bool = False) -> dict[str, Any]:
        user = self._user(login)
        path = urllib.parse.quote(user["login"])
        data = {
            "login": user["login"],
            "id": user["id"],
            "node_id": _node_id(user["type"], user["id"]),
            "type": user["type"],
            "avatar_url": f"{self.url}/avatars/u/{user['id']}",
            "url": f"{self.api_url}/users/{path}",
            "html_url": f"{self.url}/{path}",
        }
        if not full:
            return data
        links = {
            f"{name}_url": f"{self.api_url}/users/{path}/{name}"
            for name in ("followers", "organizations", "repos", "received_events", "subscriptions")
        }
        links |= {
            "following_url": f"{self.api_url}/users/{path}/following{{/other_user}}",
            "gists_url": f"{self.api_url}/users/{path}/gists{{/gist_id}}",
            "starred_url": f"{self.api_url}/users/{path}/starred{{/owner}}{{/repo}}",
            "events_url": f"{self.api_url}/users/{path}/events{{/privacy}}",
        }
        profile = dict.fromkeys(("bio", "blog", "company", "email", "hireable", "location"))
        counts = dict.fromkeys(("followers", "following", "public_gists", "public_repos"), 0)
        return {
            **data,
            **links,
            **profile,
            **counts,
            "gravatar_id": "",
            "site_admin": False,
            "user_view_type": "public",
            "name": user["name"],
            "created_at": EPOCH,
            "updated_at": EPOCH,
        }

    def _repo_json(self, repo: dict[str, Any]) -> dict[str, Any]:
        full_name = repo["full_name"]
        return {
            "id": repo["id"],
            "node_id": _node_id("Repository", repo["id"]),
            "name": full_name.split("/")[1],
            "full_name": full_name,
            "owner": self._user_json(full_name.split("/")[0]),
            "private": repo["private"],
            "fork": repo["fork"],
            "default_branch": repo["default_branch"],
            "url": f"{self.api_url}/repos/{full_name}",
            "html_url": f"{self.url}/{full_name}",
        }

    def _installation_json(self, installation_id: int) -> dict[str, Any]:
        account = self._user(self._installations[installation_id])
        app = self.apps[self._installation_apps[installation_id]]
        return {
            "id": installation_id,
            "account": self._user_json(account["login"]),
            "target_id": account["id"],
            "target_type": account["type"],
            "app_id": app.id,
            "app_slug": app.slug,
            "repository_selection": "selected",
            "access_tokens_url": f"{self.api_url}/app/installations/{installation_id}"
            "/access_tokens",
            "repositories_url": f"{self.api_url}/installation/repositories",
            "html_url": f"{self.url}/settings/installations/{installation_id}",
            "permissions": dict(app.permissions),
            "events": list(app.events),
            "created_at": EPOCH,
            "suspended_at": None,
        }

    def _app_json(self, app: FakeApp) -> dict[str, Any]:
        return {
            "id": app.id,
            "slug": app.slug,
            "node_id": _node_id("Integration", app.id),
            "client_id": app.client_id or f"Iv1.{app.id:016x}",
            "name": app.name,
            "owner": self._user_json(app.owner) if app.owner else None,
            "description": (app.manifest or {}).get("description", ""),
            "external_url": (app.manifest or {}).get("url", self.url),
            "html_url": f"{self.url}/apps/{app.slug}",
            "created_at": EPOCH,
            "updated_at": EPOCH,
            "permissions": dict(app.permissions),
            "events": list(app.events),
            "installations_count": sum(
                1 for owner in self._installation_apps.values() if owner == app.id
            ),
        }

    def _of_app(self, req: _Req, installation_id: int) -> bool:
        """Whether the installation exists and belongs to the App the request speaks for."""
        return self._installation_apps.get(installation_id) == req.app_id

    def _pull_json(self, pull: dict[str, Any], *, full: bool = True) -> dict[str, Any]:
        repo, head_repo = self._repo(pull["repo"]), self._repos.get(pull["head_repo"].lower())
        owner, head_owner = repo["full_name"].split("/")[0], pull["head_repo"].split("/")[0]
        api = f"{self.api_url}/repos/{repo['full_name']}"
        number = pull["number"]
        requested = self.requested_reviewers[(repo["full_name"], number)]
        data = {
            "url": f"{api}/pulls/{number}",
            "id": pull["id"],
            "node_id": _node_id("PullRequest", pull["id"]),
            "html_url": f"{self.url}/{repo['full_name']}/pull/{number}",
            "issue_url": f"{api}/issues/{number}",
            "number": number,
            "state": pull["state"],
            "title": pull["title"],
            "user": self._user_json(pull["author"]),
            "created_at": pull["created_at"],
            "updated_at": pull["updated_at"],
            "closed_at": pull["closed_at"],
            "merged_at": pull["merged_at"],
            "requested_reviewers": [self._user_json(login) for login in requested],
            "requested_teams": [],
            "draft": pull["draft"],
            "head": {
                "label": f"{head_owner}:{pull['head_ref']}",
                "ref": pull["head_ref"],
                "sha": pull["head_sha"],
                "user": self._user_json(head_owner),
                "repo": head_repo and self._repo_json(head_repo),  # null once a fork is deleted
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
            is_open, merged_by = pull["state"] == "open", pull["merged_by"]
            data.update(
                merged=pull["merged_at"] is not None,
                merged_by=self._user_json(merged_by) if merged_by else None,
                mergeable=True if is_open else None,
                mergeable_state="clean" if is_open else "unknown",
                comments=len(self.comments.get((repo["full_name"], number), [])),
            )
        return data

    def _review_json(self, pull: dict[str, Any], review: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.api_url}/repos/{pull['repo']}/pulls/{pull['number']}"
        return {
            "id": review["id"],
            "node_id": _node_id("PullRequestReview", review["id"]),
            "user": self._user_json(review["login"]),
            "body": "",
            "state": review["state"],
            "html_url": f"{self.url}/{pull['repo']}/pull/{pull['number']}"
            f"#pullrequestreview-{review['id']}",
            "pull_request_url": url,
            "submitted_at": review["submitted_at"],
            "commit_id": review["commit_id"],
        }

    def _protection_json(self, repo: dict[str, Any], branch: str) -> dict[str, Any]:
        settings = self._protection[(repo["full_name"].lower(), branch)]
        url = f"{self.api_url}/repos/{repo['full_name']}/branches/{branch}/protection"
        data: dict[str, Any] = {"url": url}
        for key, value in settings.items():
            if key == "required_status_checks" and value is not None:
                data[key] = self._status_checks_json(repo, branch)
            elif isinstance(value, dict):
                data[key] = {"url": f"{url}/{key}", **value}
            elif value is not None:  # a flag such as enforce_admins
                data[key] = {"url": f"{url}/{key}", "enabled": bool(value)}
        return data

    def _status_checks_json(self, repo: dict[str, Any], branch: str) -> dict[str, Any]:
        settings = self._protection[(repo["full_name"].lower(), branch)]
        checks = settings.get("required_status_checks")
        if checks is None:
            raise not_found("Required status checks not enabled")
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
        api = request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")
        path = request.path.removeprefix(API_PREFIX) if api else request.path
        if self.on_request is not None:
            self.on_request(request.method, path)
        # Waited out before taking the lock, so concurrent requests wait side by side.
        self._stopping.wait(self._latency.of(request.method, path))
        fault = self._take_fault(request.method, path)
        late = None  # a fault applied once the request has been performed
        if fault is not None and fault.after_effect:
            fault, late = None, fault
        if fault is not None and fault.delay:
            self._stopping.wait(fault.delay)
            fault = None
        with self._lock:
            req = self._parse(request, path)
            if api or fault is not None:
                counts = fault is None or not fault.rate_limited  # that limit is already spent
                reply = self._api_reply(req, fault)
                response, counted = self._api_response(
                    req, reply, request.headers.get("If-None-Match"), counts=counts
                )
            else:
                response, counted = self._web(req, request.headers.get("Accept", "")), False
            if late is not None and not late.delay:  # performed; now lose the answer
                response, _ = self._api_response(
                    req, self._api_reply(req, late), None, counts=False
                )
            status = response.status_code
            self.calls.append(
                Call(req.method, path, req.query, req.body, status, req.auth, counted)
            )
        for work in req.then:
            work()
        if late is not None and late.delay:
            self._stopping.wait(late.delay)
        # Closing after each answer leaves no idle keep-alive socket in PyGithub's pools.
        response.headers["Connection"] = "close"
        return response(environ, start_response)

    def _api_response(
        self, req: _Req, reply: Reply, if_none_match: str | None, *, counts: bool
    ) -> tuple[Response, bool]:
        """The answer to send for ``reply``, and whether it counted against the rate limit.

        A GET's answer carries its ETag, or is a bodiless 304 when the client already has it.
        """
        status, data, headers = reply
        text = "" if status == 204 else json.dumps(data)
        if req.method == "GET" and status == 200:
            headers = {**headers, "ETag": _etag(text)}
            if _etag_matches(if_none_match, headers["ETag"]):
                status, text, counts = 304, "", False  # GitHub: a 304 costs no rate limit
        counts = counts and req.path != "/rate_limit"  # free, as on GitHub
        resource = _resource(req.path)
        quota = self._quota(req.auth, resource)
        if counts:
            quota.used += 1
        headers = {**self._rate_headers(resource, quota), **headers}
        return Response(text, status, headers, mimetype="application/json"), counts

    def _quota(self, auth: str, resource: str) -> _Quota:
        """The credential's budget for ``resource`` in the current window, started on first use."""
        quota = self._quotas.get((auth, resource))
        if quota is None or time.time() >= quota.reset:
            limit, window = RATE_LIMITS[resource]
            quota = self._quotas[(auth, resource)] = _Quota(limit, int(time.time()) + window)
        return quota

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.pattern.fullmatch(path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _parse(self, request: Request, path: str) -> _Req:
        query = {key: request.args[key] for key in request.args}
        body: Any = request.form.to_dict() or None
        if body is None and request.get_data():
            try:
                body = json.loads(request.get_data())
            except ValueError:
                body = request.get_data(as_text=True)
        req = _Req(request.method, path, query, body, "none")
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if not credential or scheme.lower() not in {"token", "bearer"}:
            return req
        installation_id, expires = self._tokens.get(credential, (None, 0.0))
        if installation_id is not None and time.time() < expires:
            req.auth, req.installation_id = f"installation:{installation_id}", installation_id
            req.app_id = self._installation_apps[installation_id]
        elif credential in self._oauth_tokens:
            req.login = self._oauth_tokens[credential]
            req.auth = f"oauth:{req.login}"
        else:
            req.app_id = self._jwt_app(credential)
            req.auth = "jwt" if req.app_id is not None else "invalid"
        return req

    def _jwt_app(self, token: str) -> int | None:
        """The App whose key signed ``token``, if it is a valid App JWT at all."""
        try:
            issuer = str(jwt.decode(token, options={"verify_signature": False}).get("iss"))
        except jwt.InvalidTokenError:
            return None
        # PyGithub sends iss as a string, GitHub takes an integer or the client id too.
        app = next(
            (a for a in self.apps.values() if issuer in {str(a.id), a.client_id or None}), None
        )
        if app is None:
            return None
        try:
            claims = jwt.decode(
                token,
                app.public_key,
                algorithms=["RS256"],
                leeway=60,
                options={"require": ["iat", "exp", "iss"], "verify_iss": False},
            )
        except jwt.InvalidTokenError:
            return None
        return app.id if claims["exp"] - claims["iat"] <= 660 else None  # at most ten minutes

    def _api_reply(self, req: _Req, fault: _Fault | None) -> Reply:
        try:
            if fault is not None:
                return self._fault_reply(fault, req)
            for method, pattern, app, handler in _ROUTES:
                match = pattern.fullmatch(req.path)
                if match is not None and method == req.method:
                    return handler(self, req, **self._resolve(req, app, match.groupdict()))
            raise not_found()
        except GitHubError as error:
            return error.code, error.body, error.headers
        except Exception as error:  # a bug in the fake must fail the test, not pass as a 500
            self.violations.append(f"{req.method} {req.path}: the fake crashed: {error!r}")
            return 500, {"message": "Server Error", "documentation_url": DOCS_URL}, {}

    def _resolve(self, req: _Req, app: bool, args: dict[str, str]) -> dict[str, Any]:
        """Check credentials and the request body, and look up the objects the path names."""
        if app and req.auth != "jwt":
            raise GitHubError(401, JWT_MESSAGE)
        if req.auth == "invalid":
            raise GitHubError(401, "Bad credentials")
        if req.method in {"POST", "PATCH", "PUT"}:
            if isinstance(req.body, str):
                raise GitHubError(400, "Problems parsing JSON")
            errors = _body_errors(req.method, req.path, req.body)
            if errors:
                self.violations.append(f"{req.method} {req.path}: " + "; ".join(errors))
                raise GitHubError(422, "Validation Failed", errors=[{"message": e} for e in errors])
        resolved: dict[str, Any] = {}
        if "owner" in args:
            full_name = f"{args.pop('owner')}/{args.pop('name')}"
            moved = self._moved(full_name)
            if moved is not None and (app or moved in self._visible_repos(req)):
                raise self._redirect(req, full_name, moved)
            repo = self._repo(full_name)
            if not app and repo not in self._visible_repos(req):
                raise not_found()
            resolved["repo"] = repo
            if "number" in args:
                resolved["pull"] = self._pull(repo, int(args.pop("number")))
            if "branch" in args and args["branch"] not in repo["branches"]:
                raise not_found("Branch not found")
        return {**args, **resolved}

    def _moved(self, full_name: str) -> dict[str, Any] | None:
        """The repository ``full_name`` was renamed or transferred to, if it was."""
        if full_name.lower() in self._repos or full_name.lower() not in self._former_names:
            return None
        repo_id = self._former_names[full_name.lower()]
        return next((r for r in self._repos.values() if r["id"] == repo_id), None)

    def _redirect(self, req: _Req, full_name: str, repo: dict[str, Any]) -> GitHubError:
        """GitHub's answer to a former name: the same path and query under the new name."""
        rest = req.path[len(f"/repos/{full_name}") :]
        query = f"?{urllib.parse.urlencode(req.query)}" if req.query else ""
        location = f"{self.api_url}/repos/{repo['full_name']}{rest}{query}"
        get = req.method == "GET"
        error = GitHubError(301 if get else 307, "Moved Permanently", url=location)
        if not get:
            error.body["message"] = "Temporary Redirect"
        error.headers = {"Location": location}
        return error

    def _fault_reply(self, fault: _Fault, req: _Req) -> Reply:
        if not fault.rate_limited:
            messages = {500: "Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
            raise GitHubError(fault.status, messages.get(fault.status, "Injected failure"))
        who = f"installation ID {req.installation_id}" if req.installation_id else "user ID 1"
        message = f"API rate limit exceeded for {who}."
        docs = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
        limit, _ = RATE_LIMITS[_resource(req.path)]
        spent = {"x-ratelimit-remaining": "0", "x-ratelimit-used": str(limit)}
        return 403, {"message": message, "documentation_url": docs}, spent

    @staticmethod
    def _rate_headers(resource: str, quota: _Quota) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(quota.limit),
            "x-ratelimit-remaining": str(quota.remaining),
            "x-ratelimit-used": str(quota.used),
            "x-ratelimit-reset": str(quota.reset),
            "x-ratelimit-resource": resource,
        }

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

        def link(number: int, rel: str) -> str:
            query = urllib.parse.urlencode({**req.query, "page": number})
            return f'<{self.api_url}{req.path}?{query}>; rel="{rel}"'

        links = [link(page - 1, "prev")] if page > 1 else []
        links += [link(page + 1, "next"), link(last, "last")] if page < last else []
        links += [link(1, "first")] if page > 1 else []
        headers = {"Link": ", ".join(links)} if links else {}
        return 200, wrap(chunk) if wrap else chunk, headers

    def _visible_repos(self, req: _Req) -> list[dict[str, Any]]:
        """Repositories a token may read: its installation's, or the public ones for a user."""
        if req.installation_id is not None:
            return [r for r in self._repos.values() if r["installation_id"] == req.installation_id]
        if req.login is not None:
            return [repo for repo in self._repos.values() if not repo["private"]]
        raise GitHubError(401, "Requires authentication")

    def _require_commit(self, repo: dict[str, Any], ref: str) -> str:
        sha = _sha(repo["full_name"], ref) if ref in repo["branches"] else ref
        if sha not in repo["shas"]:
            raise GitHubError(422, f"No commit found for SHA: {ref}")
        return sha

    # ------------------------------------------------------------------ the App

    @route("GET", r"/app", app=True)
    def _get_app(self, req: _Req) -> Reply:
        assert req.app_id is not None
        return 200, self._app_json(self.apps[req.app_id]), {}

    @route("GET", r"/app/installations", app=True)
    def _list_installations(self, req: _Req) -> Reply:
        own = [i for i in sorted(self._installations) if self._of_app(req, i)]
        return self._paginate(req, [self._installation_json(i) for i in own])

    @route("GET", r"/app/installations/(?P<installation_id>\d+)", app=True)
    def _get_installation(self, req: _Req, installation_id: str) -> Reply:
        if not self._of_app(req, int(installation_id)):
            raise not_found()
        return 200, self._installation_json(int(installation_id)), {}

    @route("GET", REPO + r"/installation", app=True)
    def _repo_installation(self, req: _Req, repo: dict[str, Any]) -> Reply:
        if repo["installation_id"] is None or not self._of_app(req, repo["installation_id"]):
            raise not_found()
        return 200, self._installation_json(repo["installation_id"]), {}

    @route("POST", r"/app/installations/(?P<installation_id>\d+)/access_tokens", app=True)
    def _create_token(self, req: _Req, installation_id: str) -> Reply:
        if not self._of_app(req, int(installation_id)):
            raise not_found()
        token, expires = "ghs_" + secrets.token_urlsafe(27), _now() + timedelta(hours=1)
        self._tokens[token] = (int(installation_id), expires.timestamp())
        self.tokens_issued += 1
        permissions = (req.body or {}).get("permissions") or self.apps[req.app_id].permissions
        data = {
            "token": token,
            "expires_at": _iso(expires),
            "permissions": permissions,
            "repository_selection": "selected",
        }
        return 201, data, {}

    @route("GET", r"/installation/repositories")
    def _installation_repos(self, req: _Req) -> Reply:
        if req.installation_id is None:
            raise GitHubError(403, "This endpoint requires an installation access token.")
        repos = [self._repo_json(repo) for repo in self._visible_repos(req)]
        return self._paginate(
            req, repos, lambda chunk: {"total_count": len(repos), "repositories": chunk}
        )

    @route("POST", r"/app-manifests/(?P<code>[^/]+)/conversions")
    def _convert_manifest(self, req: _Req, code: str) -> Reply:
        """The new App's id and secrets, once per code and within the hour, as on GitHub."""
        app_id, expiry = self._manifest_codes.pop(code, (None, 0.0))
        if app_id is None or time.time() >= expiry:
            raise not_found()
        app = self.apps[app_id]
        secrets_ = {
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "webhook_secret": app.webhook_secret,
            "pem": app.pem,
        }
        return 201, {**self._app_json(app), **secrets_}, {}

    # ------------------------------------------------------------------ the App's webhook

    @route("GET", r"/app/hook/deliveries", app=True)
    def _list_deliveries(self, req: _Req) -> Reply:
        """Newest first, a page at a time; unlike other lists, pages follow a ``cursor``."""
        try:
            per_page = min(max(int(req.query.get("per_page", 30)), 1), 100)
        except ValueError:
            per_page = 30
        after = req.query.get("cursor", "").removeprefix("v1_")  # the last id already seen
        ids = sorted(self._deliveries, reverse=True)
        if after.isdigit():
            ids = [delivery_id for delivery_id in ids if delivery_id < int(after)]
        page = [_without(self._deliveries[i], "payload") for i in ids[:per_page]]
        if len(ids) <= per_page:
            return 200, page, {}
        query = urllib.parse.urlencode({**req.query, "cursor": f"v1_{page[-1]['id']}"})
        return 200, page, {"Link": f'<{self.api_url}{req.path}?{query}>; rel="next"'}

    @route("POST", r"/app/hook/deliveries/(?P<delivery_id>\d+)/attempts", app=True)
    def _redeliver(self, req: _Req, delivery_id: str) -> Reply:
        """Accept a redelivery; it is sent to ``hook_target`` before the answer goes out."""
        delivery = self._deliveries.get(int(delivery_id))
        if delivery is None:
            raise not_found()
        self.redelivery_requests.append(delivery["id"])
        if self.hook_target is not None and delivery["payload"] is not None:
            req.then.append(functools.partial(self._deliver_again, delivery, self.hook_target))
        return 202, {}, {}

    def _deliver_again(
        self, delivery: dict[str, Any], target: Callable[[dict[str, str], bytes], int]
    ) -> None:
        """Send ``delivery``'s payload as GitHub does, and list the attempt as a redelivery."""
        body = json.dumps(delivery["payload"]).encode()
        secret = self.hook_secret.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/fake",
            "X-GitHub-Delivery": delivery["guid"],
            "X-GitHub-Event": delivery["event"],
            "X-GitHub-Hook-ID": str(HOOK_ID),
            "X-GitHub-Hook-Installation-Target-ID": str(self.app_id),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-Hub-Signature": "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest(),
        }
        started = time.monotonic()
        try:
            status_code = target(headers, body)
        except Exception as error:  # a bug in the target must fail the test, like one in the fake
            self.violations.append(f"hook_target raised {error!r}")
            status_code = 500
        self.add_hook_delivery(
            guid=delivery["guid"],
            event=delivery["event"],
            action=delivery["action"],
            status_code=status_code,
            payload=delivery["payload"],
            installation_id=delivery["installation_id"],
            repository_id=delivery["repository_id"],
            redelivery=True,
            duration=round(time.monotonic() - started, 3),
        )

    # ------------------------------------------------------------------ repositories and pulls

    @route("GET", REPO)
    def _get_repo(self, req: _Req, repo: dict[str, Any]) -> Reply:
        return 200, self._repo_json(repo), {}

    @route("GET", REPO + r"/pulls")
    def _list_pulls(self, req: _Req, repo: dict[str, Any]) -> Reply:
        state = req.query.get("state", "open")
        pulls = [
            self._pull_json(pull, full=False)
            for (repo_key, _), pull in sorted(self._pulls.items(), key=lambda item: -item[0][1])
            if repo_key == repo["full_name"].lower() and state in {"all", pull["state"]}
        ]
        return self._paginate(req, pulls)  # newest first, as GitHub sorts by default

    @route("GET", PULL)
    def _get_pull(self, req: _Req, repo: dict[str, Any], pull: dict[str, Any]) -> Reply:
        return 200, self._pull_json(pull), {}

    @route("GET", PULL + r"/reviews")
    def _list_reviews(self, req: _Req, repo: dict[str, Any], pull: dict[str, Any]) -> Reply:
        return self._paginate(req, [self._review_json(pull, r) for r in pull["reviews"]])

    @route("GET", PULL + r"/requested_reviewers")
    def _get_requested(self, req: _Req, repo: dict[str, Any], pull: dict[str, Any]) -> Reply:
        logins = self.requested_reviewers[(repo["full_name"], pull["number"])]
        return 200, {"users": [self._user_json(login) for login in logins], "teams": []}, {}

    @route("POST", PULL + r"/requested_reviewers")
    def _request_reviewers(self, req: _Req, repo: dict[str, Any], pull: dict[str, Any]) -> Reply:
        logins = req.body.get("reviewers", [])
        if pull["author"].lower() in {login.lower() for login in logins}:
            raise GitHubError(422, "Review cannot be requested from pull request author.")
        requested = self.requested_reviewers[(repo["full_name"], pull["number"])]
        for login in logins:
            if login.lower() not in {known.lower() for known in requested}:
                requested.append(self._user(login)["login"])
        return 201, self._pull_json(pull), {}

    @route("GET", REPO + r"/commits/(?P<ref>[^/]+)")
    def _get_commit(self, req: _Req, repo: dict[str, Any], ref: str) -> Reply:
        sha = self._require_commit(repo, ref)
        api = f"{self.api_url}/repos/{repo['full_name']}"
        author = {"name": "A Developer", "email": "dev@example.com", "date": EPOCH}
        data = {
            "sha": sha,
            "node_id": _node_id("Commit", int(sha[:7], 16)),
            "url": f"{api}/commits/{sha}",
            "html_url": f"{self.url}/{repo['full_name']}/commit/{sha}",
            "commit": {"message": "A change", "author": author, "committer": author},
            "parents": [],
            "files": [],
        }
        return 200, data, {}

    @route("GET", REPO + r"/git/commits/(?P<sha>[0-9a-fA-F]{40})")
    def _get_git_commit(self, req: _Req, repo: dict[str, Any], sha: str) -> Reply:
        sha = self._require_commit(repo, sha)
        api = f"{self.api_url}/repos/{repo['full_name']}"
        tree = self.tree_of(repo["full_name"], sha)
        person = {"name": "A Developer", "email": "dev@example.com", "date": EPOCH}
        data = {
            "sha": sha,
            "node_id": _node_id("Commit", int(sha[:7], 16)),
            "url": f"{api}/git/commits/{sha}",
            "html_url": f"{self.url}/{repo['full_name']}/commit/{sha}",
            "author": person,
            "committer": person,
            "message": "A change",
            "tree": {"sha": tree, "url": f"{api}/git/trees/{tree}"},
            "parents": [],
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        }
        return 200, data, {}

    # ------------------------------------------------------------------ check runs and statuses

    @route("POST", REPO + r"/check-runs")
    def _create_check_run(self, req: _Req, repo: dict[str, Any]) -> Reply:
        self._require_commit(repo, req.body["head_sha"])
        app = self.apps[req.app_id or self.app_id]  # the App whose installation posts it
        run_id = next(self._ids)
        url = f"{self.api_url}/repos/{repo['full_name']}/check-runs/{run_id}"
        empty = {"title": None, "summary": None, "text": None, "annotations_count": 0}
        run = {
            "id": run_id,
            "node_id": _node_id("CheckRun", run_id),
            "name": req.body["name"],
            "head_sha": req.body["head_sha"],
            "external_id": "",
            "url": url,
            "html_url": f"{self.url}/{repo['full_name']}/runs/{run_id}",
            "details_url": f"{self.url}/apps/{app.slug}",
            "status": "queued",
            "conclusion": None,
            "started_at": _iso(_now()),
            "completed_at": None,
            "output": {**empty, "annotations_url": f"{url}/annotations"},
            "check_suite": {"id": run_id},
            "app": {"id": app.id, "slug": app.slug, "name": app.name},
            "pull_requests": [],
            "writes": [],  # for tests only: when each create or update was stored
        }
        self._update_check_run(run, req.body)  # actions are accepted, and not shown, like GitHub
        self.check_runs[run_id] = run
        self._record_write(repo, run)
        return 201, _without(run, "writes"), {}

    @route("GET", REPO + r"/check-runs/(?P<run_id>\d+)")
    def _get_check_run(self, req: _Req, repo: dict[str, Any], run_id: str) -> Reply:
        return 200, _without(self._check_run(repo, run_id), "writes"), {}

    @route("PATCH", REPO + r"/check-runs/(?P<run_id>\d+)")
    def _edit_check_run(self, req: _Req, repo: dict[str, Any], run_id: str) -> Reply:
        run = self._check_run(repo, run_id)
        self._update_check_run(run, req.body)
        self._record_write(repo, run)
        return 200, _without(run, "writes"), {}

    def _record_write(self, repo: dict[str, Any], run: dict[str, Any]) -> None:
        # Both clocks: monotonic to measure lags against the app's, wall-clock to read.
        at = time.monotonic()
        state = {"status": run["status"], "conclusion": run["conclusion"]}
        run["writes"].append({"at": at, "wall": time.time(), **state})
        self.check_run_writes.append(
            CheckRunWrite(at, repo["full_name"], run["head_sha"], run["conclusion"], run["id"])
        )

    def _check_run(self, repo: dict[str, Any], run_id: str) -> dict[str, Any]:
        run = self.check_runs.get(int(run_id))
        if run is None or f"/repos/{repo['full_name']}/" not in run["url"]:
            raise not_found()
        return run

    @staticmethod
    def _update_check_run(run: dict[str, Any], body: dict[str, Any]) -> None:
        for key in ("name", "head_sha", "details_url", "external_id", "status", "started_at"):
            run[key] = body.get(key, run[key])
        output = body.get("output") or {}
        run["output"].update({k: v for k, v in output.items() if k in {"title", "summary", "text"}})
        run["output"]["annotations_count"] += len(output.get("annotations", []))
        if body.get("conclusion") is not None:  # a conclusion completes the run
            run.update(status="completed", conclusion=body["conclusion"])
        run["completed_at"] = body.get("completed_at", run["completed_at"])
        if run["status"] == "completed":
            if run["conclusion"] is None:
                raise GitHubError(422, "Conclusion is required when status is completed.")
            run["completed_at"] = run["completed_at"] or _iso(_now())

    @route("GET", REPO + r"/commits/(?P<ref>[^/]+)/check-runs")
    def _commit_check_runs(self, req: _Req, repo: dict[str, Any], ref: str) -> Reply:
        sha = self._require_commit(repo, ref)
        wanted = {key: req.query.get(key) for key in ("check_name", "status", "app_id")}
        runs = [
            run
            for run in reversed(self.check_runs_for(repo["full_name"], sha))  # newest first
            if wanted["check_name"] in {None, run["name"]}
            and wanted["status"] in {None, run["status"]}
            and wanted["app_id"] in {None, str(run["app"]["id"])}
        ]
        if req.query.get("filter", "latest") == "latest":  # only the newest run of each name
            newest = {run["name"]: run["id"] for run in reversed(runs)}
            runs = [run for run in runs if newest[run["name"]] == run["id"]]
        return self._paginate(
            req,
            [_without(run, "writes") for run in runs],
            lambda chunk: {"total_count": len(runs), "check_runs": chunk},
        )

    @route("POST", REPO + r"/statuses/(?P<sha>[0-9a-fA-F]+)")
    def _create_status(self, req: _Req, repo: dict[str, Any], sha: str) -> Reply:
        self._require_commit(repo, sha)
        status_id, stamp = next(self._ids), _iso(_now())
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
            "creator": self._user_json(req.login or self.bot_login),
        }
        self.statuses.append(status)
        return 201, status, {}

    # ------------------------------------------------------------------ issue comments

    @route("GET", ISSUE + r"/comments")
    def _list_comments(self, req: _Req, repo: dict[str, Any], pull: dict[str, Any]) -> Reply:
        return self._paginate(req, self.comments.get((repo["full_name"], pull["number"]), []))

    @route("POST", ISSUE + r"/comments")
    def _create_comment(self, req: _Req, repo: dict[str, Any], pull: dict[str, Any]) -> Reply:
        # An installation token comments as its App's bot, as on GitHub.
        app = self.apps.get(req.app_id or -1)
        author = req.login or (f"{app.slug}[bot]" if app is not None else self.bot_login)
        return 201, self._store_comment(repo, pull, author=author, body=req.body["body"]), {}

    def _store_comment(
        self, repo: dict[str, Any], pull: dict[str, Any], *, author: str, body: str
    ) -> dict[str, Any]:
        comment_id, stamp = next(self._ids), _iso(_now())
        api = f"{self.api_url}/repos/{repo['full_name']}/issues"
        comment = {
            "id": comment_id,
            "node_id": _node_id("IssueComment", comment_id),
            "url": f"{api}/comments/{comment_id}",
            "html_url": f"{self.url}/{repo['full_name']}/pull/{pull['number']}"
            f"#issuecomment-{comment_id}",
            "issue_url": f"{api}/{pull['number']}",
            "body": body,
            "user": self._user_json(author),
            "created_at": stamp,
            "updated_at": stamp,
            "author_association": "NONE",
        }
        self.comments.setdefault((repo["full_name"], pull["number"]), []).append(comment)
        return comment

    # ------------------------------------------------------------------ search

    @route("GET", r"/search/issues")
    def _search_issues(self, req: _Req) -> Reply:
        """Pull requests matching every term: is:pr/open/closed/merged, author:, repo:, words.

        Like GitHub's, an installation token searches every public repository, not only the
        installation's own (plus the private repositories it can see).
        """
        visible = {repo["full_name"].lower() for repo in self._visible_repos(req)}
        visible |= {key for key, repo in self._repos.items() if not repo["private"]}
        terms = req.query.get("q", "").lower().split()
        for term, private in (("is:private", True), ("is:public", False)):
            if term in terms:  # a repository qualifier, not one of the pull request's own
                terms.remove(term)
                visible = {key for key in visible if self._repos[key]["private"] == private}
        if not terms:
            raise invalid("The q parameter is required", resource="Search", field="q")
        for term in terms:
            if term.startswith("repo:") and term[5:] not in visible:
                raise invalid(
                    "The listed users and repositories cannot be searched either because the"
                    " resources do not exist or you do not have permission to view them.",
                    resource="Search",
                    field="q",
                    code="invalid",
                )
        found = [
            pull
            for (repo_key, _), pull in sorted(self._pulls.items())
            if repo_key in visible and all(self._search_match(pull, term) for term in terms)
        ]
        items = [self._search_item(pull) for pull in found]
        return self._paginate(
            req,
            items,
            lambda chunk: {"total_count": len(items), "incomplete_results": False, "items": chunk},
        )

    @staticmethod
    def _search_match(pull: dict[str, Any], term: str) -> bool:
        key, _, value = term.partition(":")
        if key in {"is", "type", "state"} and value in {"pr", "issue", "merged", "unmerged"}:
            merged = pull["merged_at"] is not None
            return {"pr": True, "issue": False, "merged": merged, "unmerged": not merged}[value]
        if key in {"is", "state"}:
            return pull["state"] == value
        if key == "author":
            return pull["author"].lower() == value
        if key == "repo":
            return pull["repo"].lower() == value
        return term in pull["title"].lower()  # a free-text word

    def _search_item(self, pull: dict[str, Any]) -> dict[str, Any]:
        data = self._pull_json(pull, full=False)
        keys = ("id", "node_id", "number", "title", "user", "state", "draft")
        return {
            **{key: data[key] for key in keys},
            **{key: data[key] for key in ("created_at", "updated_at", "closed_at")},
            "url": data["issue_url"],
            "repository_url": f"{self.api_url}/repos/{pull['repo']}",
            "html_url": data["html_url"],
            "comments": len(self.comments.get((pull["repo"], pull["number"]), [])),
            "score": 1.0,
            "pull_request": {
                "url": data["url"],
                "html_url": data["html_url"],
                "merged_at": data["merged_at"],
            },
        }

    # ------------------------------------------------------------------ branches and protection

    def _protected(self, repo: dict[str, Any], branch: str) -> tuple[dict[str, Any], str]:
        if (repo["full_name"].lower(), branch) not in self._protection:
            raise not_found("Branch not protected")
        return repo, branch

    @route("GET", BRANCH)
    def _get_branch(self, req: _Req, repo: dict[str, Any], branch: str) -> Reply:
        api = f"{self.api_url}/repos/{repo['full_name']}"
        sha = _sha(repo["full_name"], branch)
        settings = self._protection.get((repo["full_name"].lower(), branch)) or {}
        protected = bool(settings)
        checks = settings.get("required_status_checks") and self._status_checks_json(repo, branch)
        data = {
            "name": branch,
            "commit": {"sha": sha, "url": f"{api}/commits/{sha}"},
            "protected": protected,
            "protection": {
                "enabled": protected,
                "required_status_checks": {
                    "enforcement_level": "non_admins" if checks else "off",
                    "contexts": checks["contexts"] if checks else [],
                    "checks": checks["checks"] if checks else [],
                },
            },
            "protection_url": f"{api}/branches/{branch}/protection",
            "_links": {
                "self": f"{api}/branches/{branch}",
                "html": f"{self.url}/{repo['full_name']}/tree/{branch}",
            },
        }
        return 200, data, {}

    @route("GET", BRANCH + r"/protection")
    def _get_protection(self, req: _Req, repo: dict[str, Any], branch: str) -> Reply:
        return 200, self._protection_json(*self._protected(repo, branch)), {}

    @route("PUT", BRANCH + r"/protection")
    def _put_protection(self, req: _Req, repo: dict[str, Any], branch: str) -> Reply:
        self._store_protection(repo, branch, req.body)
        return 200, self._protection_json(repo, branch), {}

    @route("GET", BRANCH + r"/protection/required_status_checks")
    def _get_status_checks(self, req: _Req, repo: dict[str, Any], branch: str) -> Reply:
        return 200, self._status_checks_json(*self._protected(repo, branch)), {}

    @route("PATCH", BRANCH + r"/protection/required_status_checks")
    def _patch_status_checks(self, req: _Req, repo: dict[str, Any], branch: str) -> Reply:
        self._status_checks_json(*self._protected(repo, branch))  # 404 unless enabled
        self._merge_status_checks(self._protection[(repo["full_name"].lower(), branch)], req.body)
        return 200, self._status_checks_json(repo, branch), {}

    # ------------------------------------------------------------------ rulesets

    def _repo_ruleset(self, repo: dict[str, Any], ruleset_id: str, *, parents: bool) -> dict:
        ruleset = self._rulesets.get(int(ruleset_id))
        if ruleset is None or not self._ruleset_applies(ruleset, repo):
            raise not_found()
        if ruleset["source_type"] != "Repository" and not parents:
            raise not_found()
        return ruleset

    @route("GET", REPO + r"/rulesets")
    def _list_repo_rulesets(self, req: _Req, repo: dict[str, Any]) -> Reply:
        parents = req.query.get("includes_parents", "true") != "false"
        found = [
            self._ruleset_json(ruleset, full=False)
            for ruleset in self._rulesets.values()
            if self._ruleset_applies(ruleset, repo)
            and (parents or ruleset["source_type"] == "Repository")
        ]
        return self._paginate(req, found)

    @route("POST", REPO + r"/rulesets")
    def _create_repo_ruleset(self, req: _Req, repo: dict[str, Any]) -> Reply:
        self._require_permission(req, "administration", "write")
        return 201, self._ruleset_json(self._store_ruleset(repo, req.body)), {}

    @route("GET", REPO + r"/rulesets/(?P<ruleset_id>\d+)")
    def _get_repo_ruleset(self, req: _Req, repo: dict[str, Any], ruleset_id: str) -> Reply:
        parents = req.query.get("includes_parents", "true") != "false"
        return 200, self._ruleset_json(self._repo_ruleset(repo, ruleset_id, parents=parents)), {}

    @route("PUT", REPO + r"/rulesets/(?P<ruleset_id>\d+)")
    def _put_repo_ruleset(self, req: _Req, repo: dict[str, Any], ruleset_id: str) -> Reply:
        ruleset = self._repo_ruleset(repo, ruleset_id, parents=False)
        self._require_permission(req, "administration", "write")
        self._update_ruleset(ruleset, req.body)
        return 200, self._ruleset_json(ruleset), {}

    @route("GET", ORG + r"/rulesets")
    def _list_org_rulesets(self, req: _Req, org: str) -> Reply:
        login = self._org_for_rulesets(req, org, "read")
        found = [
            self._ruleset_json(ruleset, full=False)
            for ruleset in self._rulesets.values()
            if ruleset["owner"] == login.lower()
        ]
        return self._paginate(req, found)

    @route("POST", ORG + r"/rulesets")
    def _create_org_ruleset(self, req: _Req, org: str) -> Reply:
        login = self._org_for_rulesets(req, org, "write")
        return 201, self._ruleset_json(self._store_ruleset(login, req.body)), {}

    def _org_ruleset(self, req: _Req, org: str, ruleset_id: str, access: str) -> dict:
        login = self._org_for_rulesets(req, org, access)
        ruleset = self._rulesets.get(int(ruleset_id))
        if ruleset is None or ruleset["owner"] != login.lower():
            raise not_found()
        return ruleset

    @route("GET", ORG + r"/rulesets/(?P<ruleset_id>\d+)")
    def _get_org_ruleset(self, req: _Req, org: str, ruleset_id: str) -> Reply:
        return 200, self._ruleset_json(self._org_ruleset(req, org, ruleset_id, "read")), {}

    @route("PUT", ORG + r"/rulesets/(?P<ruleset_id>\d+)")
    def _put_org_ruleset(self, req: _Req, org: str, ruleset_id: str) -> Reply:
        ruleset = self._org_ruleset(req, org, ruleset_id, "write")
        self._update_ruleset(ruleset, req.body)
        return 200, self._ruleset_json(ruleset), {}

    @route("GET", REPO + r"/rules/branches/(?P<ref>.+)")
    def _branch_rules(self, req: _Req, repo: dict[str, Any], ref: str) -> Reply:
        return self._paginate(req, self._effective_rules(repo, urllib.parse.unquote(ref)))

    def _effective_rules(self, repo: dict[str, Any], branch: str) -> list[dict[str, Any]]:
        """The rules of every active ruleset that takes the branch in, each with its source;
        a branch that does not exist (yet) gets the rules it would have, as on GitHub."""
        return [
            {
                **copy.deepcopy(rule),
                "ruleset_source_type": ruleset["source_type"],
                "ruleset_source": ruleset["source"],
                "ruleset_id": ruleset["id"],
            }
            for ruleset in self._rulesets.values()
            if ruleset["enforcement"] == "active"
            and ruleset["target"] == "branch"
            and self._ruleset_applies(ruleset, repo)
            and self._ruleset_covers(ruleset, repo, branch)
            for rule in ruleset["rules"]
        ]

    # ------------------------------------------------------------------ users and limits

    @route("GET", r"/user")
    def _get_authenticated_user(self, req: _Req) -> Reply:
        if req.installation_id is not None:
            raise GitHubError(403, "Resource not accessible by integration")
        if req.login is None:
            raise GitHubError(401, "Requires authentication")
        return 200, self._user_json(req.login, full=True), {}

    @route("GET", r"/users/(?P<login>[^/]+)")
    def _get_user(self, req: _Req, login: str) -> Reply:
        if login.lower() not in self._users:
            raise not_found()
        body = self._user_json(login, full=True)
        errors = response_errors("/users/{username}", body)
        if errors:
            self.violations.append(f"GET {req.path} answered: " + "; ".join(errors))
        return 200, body, {}

    @route("GET", r"/rate_limit")
    def _rate_limit(self, req: _Req) -> Reply:
        resources = {}
        for resource in RATE_LIMITS:
            quota = self._quota(req.auth, resource)
            resources[resource] = {
                "limit": quota.limit,
                "remaining": quota.remaining,
                "reset": quota.reset,
                "used": quota.used,
            }
        return 200, {"resources": resources, "rate": resources["core"]}, {}

    # ------------------------------------------------------------------ OAuth web flow

    def _web(self, req: _Req, accept: str) -> Response:
        if req.method == "GET" and req.path == "/login/oauth/authorize":
            return self._authorize(req)
        new_app = re.fullmatch(r"/(?:organizations/(?P<org>[^/]+)/)?settings/apps/new", req.path)
        if req.method == "POST" and new_app is not None:
            return self._create_app_from_manifest(req, new_app["org"])
        if req.method == "POST" and req.path == "/login/oauth/access_token":
            reply = self._exchange_code(req.body if isinstance(req.body, dict) else {})
            if "application/json" in accept:
                return Response(json.dumps(reply), 200, mimetype="application/json")
            form = urllib.parse.urlencode(reply)
            return Response(form, 200, mimetype="application/x-www-form-urlencoded")
        return Response("<h1>Not Found</h1>", 404, mimetype="text/html")

    def _authorize(self, req: _Req) -> Response:
        """Sign ``oauth_next_login`` in at once and send the browser back with a code."""
        client_id, redirect_uri = req.query.get("client_id", ""), req.query.get("redirect_uri", "")
        if client_id not in self._oauth_apps or self.oauth_next_login is None:
            page = "<h1>Unknown client_id, or FakeGitHub.oauth_next_login is not set</h1>"
            return Response(page, 400, mimetype="text/html")
        code = secrets.token_hex(10)
        login = self._user(self.oauth_next_login)["login"]
        self._oauth_codes[code] = (client_id, redirect_uri, login, req.query.get("scope", ""))
        params = {"code": code, **{k: v for k, v in req.query.items() if k == "state"}}
        separator = "&" if "?" in redirect_uri else "?"
        location = f"{redirect_uri}{separator}{urllib.parse.urlencode(params)}"
        return Response("", 302, {"Location": location})

    # ------------------------------------------------------------------ the App manifest flow

    def _create_app_from_manifest(self, req: _Req, org: str | None) -> Response:
        """GitHub's "new App" page, submitted at once: create the App, redirect with a code."""
        form = req.body if isinstance(req.body, dict) else {}
        try:
            manifest = json.loads(form.get("manifest", ""))
        except ValueError:
            manifest = None
        errors = _manifest_errors(manifest)
        slug = re.sub(r"[^a-z0-9]+", "-", str((manifest or {}).get("name", "")).lower()).strip("-")
        if not errors and any(app.slug == slug for app in self.apps.values()):
            errors = [f"name: {slug!r} is already taken"]
        if errors:
            self.violations.append(f"POST {req.path}: " + "; ".join(errors))
            page = "<h1>Invalid GitHub App manifest</h1>" + "".join(
                f"<p>{html.escape(error)}</p>" for error in errors
            )
            return Response(page, 422, mimetype="text/html")
        assert isinstance(manifest, dict)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        app = FakeApp(
            id=next(self._ids),
            slug=slug,
            name=manifest["name"],
            pem=_pem(key),
            public_key=key.public_key(),
            permissions=dict(manifest.get("default_permissions", {})),
            events=list(manifest.get("default_events", [])),
            owner=self._user(org, kind="Organization")["login"] if org else self.manifest_owner,
            client_id="Iv1." + secrets.token_hex(8),
            client_secret=secrets.token_hex(20),
            webhook_secret=secrets.token_hex(20),
            manifest=manifest,
        )
        self._user(self.manifest_owner)
        self.apps[app.id] = app
        self._user(f"{slug}[bot]")
        self._oauth_apps[app.client_id] = app.client_secret
        code = secrets.token_hex(10)
        self._manifest_codes[code] = (app.id, time.time() + 3600)  # an hour, as on GitHub
        redirect = manifest.get("redirect_url")
        if not redirect:
            return Response(
                f"<h1>{html.escape(app.name)} was created</h1>", 200, mimetype="text/html"
            )
        state = form.get("state") or req.query.get("state")
        params = {"code": code, **({"state": state} if state else {})}
        separator = "&" if "?" in redirect else "?"
        return Response(
            "", 302, {"Location": redirect + separator + urllib.parse.urlencode(params)}
        )

    def _exchange_code(self, form: dict[str, Any]) -> dict[str, str]:
        """Trade a code (once) for a user token; GitHub reports errors with a 200 too."""
        client_id = form.get("client_id", "")
        grant = self._oauth_codes.pop(form.get("code", ""), None)
        if self._oauth_apps.get(client_id) != form.get("client_secret"):
            error = "incorrect_client_credentials"
        elif grant is None or grant[0] != client_id:
            error = "bad_verification_code"
        elif form.get("redirect_uri", grant[1]) != grant[1]:
            error = "redirect_uri_mismatch"
        else:
            token = "gho_" + secrets.token_urlsafe(27)
            self._oauth_tokens[token] = grant[2]
            return {"access_token": token, "token_type": "bearer", "scope": grant[3]}
        return {"error": error, "error_description": error.replace("_", " ")}
