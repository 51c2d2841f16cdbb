"""``gatekeeper doctor`` and ``/admin/health``: what is wrong, found before a mentee finds it.

Each check is a one-line verdict and, when it fails, the fix. They read the settings, ask
GitHub as the App (its permissions and events, each installation, each repository's branch
protection and effective rules), and look at the database (reachable, migrated, the outbox, the last sweep).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click
import sqlalchemy as sa
from flask import Blueprint, Flask, abort, current_app, g, render_template
from flask.typing import ResponseReturnValue
from markupsafe import Markup, escape
from sqlmodel import Session

from gatekeeper.app_manifest import (
    OPTIONAL_PERMISSIONS,
    ORGANISATION_PERMISSIONS,
    REQUIRED_EVENTS,
    REQUIRED_PERMISSIONS,
    missing_events,
    missing_permissions,
)
from gatekeeper.auth import is_maintainer, login_required
from gatekeeper.config import Settings
from gatekeeper.extensions import github_of, settings_of
from gatekeeper.words import plural

if TYPE_CHECKING:
    from gatekeeper.github import GitHubApp, RuleCheck, StatusChecks

OUTBOX_PATIENCE = timedelta(minutes=10)  # a check not posted by then means the worker is stuck
# A delivery needs nothing from GitHub to be applied: one waiting this long has no worker.
DELIVERY_PATIENCE = timedelta(minutes=2)
# The clock sweeps every five minutes (Procfile); six missed rounds is no hiccup.
SWEEP_PATIENCE = timedelta(minutes=30)
DEFAULT_BASE_URL = Settings.base_url

bp = Blueprint("doctor", __name__)


@dataclasses.dataclass(frozen=True)
class Check:
    """One verdict: what was checked, whether it passed, what was found and how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, Any]:
        """The check as ``--json`` prints it."""
        return dataclasses.asdict(self)


def passed(name: str, detail: str) -> Check:
    """A check that passed; it needs no fix."""
    return Check(name, True, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    """A check that failed, with what to do about it."""
    return Check(name, False, detail, fix)


# ---------------------------------------------------------------- settings


# What the checks say in ``gatekeeper demo``, which never talks to GitHub and signs its
# sample people in without it: nothing there is missing.
DEMO_GITHUB = "the demo never talks to GitHub: no App, webhook or posted check is needed"
DEMO_SIGN_IN = "the demo signs its sample people in without GitHub"


def demo_checks(settings: Settings) -> list[Check]:
    """The settings and GitHub checks as they stand in the demo."""
    return [
        passed("settings: GitHub App", DEMO_GITHUB),
        passed("settings: webhook secret", DEMO_GITHUB),
        passed("settings: OAuth client", DEMO_SIGN_IN),
        passed("settings: SECRET_KEY", "the demo: a random key per run"),
        passed("settings: base URL", settings.base_url),
    ]


def settings_checks(settings: Settings) -> list[Check]:
    """The App's id and key, the webhook secret, the OAuth client, SECRET_KEY, the base URL."""
    checks = [
        passed("settings: GitHub App", f"App {settings.github_app_id} with a private key")
        if settings.github_app_configured
        else failed(
            "settings: GitHub App",
            "GITHUB_APP_ID or the private key is not set",
            "set GITHUB_APP_ID and GITHUB_PRIVATE_KEY (or GITHUB_PRIVATE_KEY_PATH) from the"
            " App's settings page, or run `gatekeeper register`",
        ),
        passed("settings: webhook secret", "set")
        if settings.github_webhook_secret
        else failed(
            "settings: webhook secret",
            "GITHUB_WEBHOOK_SECRET is not set: /webhooks/github answers 503",
            "set GITHUB_WEBHOOK_SECRET to the App's webhook secret",
        ),
        passed("settings: OAuth client", f"client {settings.github_client_id}")
        if settings.oauth_configured
        else failed(
            "settings: OAuth client",
            "GITHUB_CLIENT_ID or GITHUB_CLIENT_SECRET is not set: nobody can sign in",
            "set GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET from the App's settings page",
        ),
    ]
    if not settings.is_production:
        checks.append(passed("settings: SECRET_KEY", "development: a random key per process"))
    elif settings.secret_key:
        checks.append(passed("settings: SECRET_KEY", "set"))
    # In production a missing SECRET_KEY stops the app from starting, so it cannot reach here.
    if settings.is_production and settings.base_url == DEFAULT_BASE_URL:
        checks.append(
            failed(
                "settings: base URL",
                f"GATEKEEPER_BASE_URL is the development default {DEFAULT_BASE_URL}: check runs"
                " link to nowhere",
                "set GATEKEEPER_BASE_URL to this service's public https URL",
            )
        )
    else:
        checks.append(passed("settings: base URL", settings.base_url))
    return checks


# ---------------------------------------------------------------- GitHub


def github_checks(settings: Settings, github: GitHubApp | None) -> list[Check]:
    """The App's JWT, its permissions and events, each installation and repository."""
    from gatekeeper.github import GitHubUnavailable

    if github is None:
        return [
            failed(
                "GitHub: App authentication",
                "not checked: the App is not configured",
                "set GITHUB_APP_ID and GITHUB_PRIVATE_KEY",
            )
        ]
    try:
        app = github.app_info()
    except GitHubUnavailable as error:
        return [
            failed(
                "GitHub: App authentication",
                f"GET /app refused the App's JWT: {error}",
                "check GITHUB_APP_ID, GITHUB_PRIVATE_KEY (the App's current key) and"
                " GITHUB_API_URL; the host's clock must be right to the minute",
            )
        ]
    settings_url = f"{settings.github_url}/settings/apps/{app.slug}/permissions"
    checks = [passed("GitHub: App authentication", f"the JWT is accepted as {app.slug}")]
    missing = missing_permissions(app.permissions)
    if missing:
        wanted = ", ".join(f"{name}: {access}" for name, access in missing.items())
        checks.append(
            failed(
                "GitHub: permissions",
                f"missing {wanted}",
                f"grant {wanted} at {settings_url}, then accept the new permissions on each"
                " installation",
            )
        )
    else:
        needed = ", ".join(f"{n}: {a}" for n, a in REQUIRED_PERMISSIONS.items())
        checks.append(passed("GitHub: permissions", needed))
    checks.append(optional_permissions_check(app.permissions))
    events = missing_events(app.events)
    if events:
        checks.append(
            failed(
                "GitHub: events",
                f"not subscribed to {', '.join(events)}",
                f"subscribe the App to {', '.join(events)} at {settings_url}",
            )
        )
    else:
        checks.append(passed("GitHub: events", ", ".join(REQUIRED_EVENTS)))
    return checks + installation_checks(settings, github, slug=app.slug)


def optional_permissions_check(granted: dict[str, str]) -> Check:
    """Administration: write lets `protect` write rulesets; it stays optional."""
    if missing_permissions(granted, OPTIONAL_PERMISSIONS):
        detail = (
            "not granted: `gatekeeper protect` cannot edit rulesets or branch protection (make"
            " the check required by hand)"
        )
    else:
        detail = "granted: `gatekeeper protect` can edit repository rulesets and branch protection"
    if not missing_permissions(granted, ORGANISATION_PERMISSIONS):
        detail += "; organization administration granted: `protect --org` can too"
    return passed("GitHub: administration permission (optional)", detail)


def installation_checks(settings: Settings, github: GitHubApp, *, slug: str) -> list[Check]:
    """Each installation answers with its repositories; each repository requires the check."""
    from gatekeeper.github import GitHubUnavailable

    try:
        accounts = github.installation_accounts()
    except GitHubUnavailable as error:
        return [
            failed(
                "GitHub: installations",
                f"could not list them: {error}",
                "try again; if it persists, see githubstatus.com",
            )
        ]
    if not accounts:
        return [
            failed(
                "GitHub: installations",
                "the App is installed nowhere",
                f"install it: {settings.github_url}/apps/{slug}/installations/new",
            )
        ]
    checks = []
    for installation_id, account in sorted(accounts.items()):
        name = f"installation {installation_id} ({account})"
        try:
            repos = github.installation_repos(installation_id)
        except GitHubUnavailable as error:
            checks.append(
                failed(
                    name,
                    f"unreachable: {error}",
                    f"reinstall the App on {account} (or remove the stale installation at"
                    f" {settings.github_url}/settings/installations/{installation_id})",
                )
            )
            continue
        checks.append(passed(name, f"{len(repos)} repositories"))
        for repo, branch in sorted(repos.items()):
            checks.append(protection_check(settings, github, installation_id, repo, branch))
    return checks


def protection_check(
    settings: Settings, github: GitHubApp, installation_id: int, repo: str, branch: str
) -> Check:
    """The default branch requires the check from this App, by branch protection or by an
    effective rule (the repository's ruleset or its organisation's): either is enough, as
    GitHub enforces both."""
    from gatekeeper.github import GitHubUnavailable

    name = f"protection: {repo}"
    try:
        protected = github.branch_required_checks(
            installation_id=installation_id, repo=repo, branch=branch
        )
        ruled = github.branch_rule_checks(installation_id=installation_id, repo=repo, branch=branch)
    except GitHubUnavailable as error:
        return failed(name, f"could not read {branch}: {error}", "try again")
    sources = _check_sources(settings.check_name, protected, ruled)
    protect = f"run `gatekeeper protect {repo}`"
    pinned = [where for app_id, where in sources if app_id == github.app_id]
    if pinned:
        return passed(name, f"{branch} requires {settings.check_name} from this App ({pinned[0]})")
    if not sources:
        if protected is None and not ruled:
            detail = f"{branch} requires no status checks: a waiting check does not stop a merge"
            return failed(name, detail, protect)
        return failed(name, f"{branch} does not require {settings.check_name}", protect)
    app_id, where = sources[0]
    source = "any source" if app_id is None or app_id < 0 else f"App {app_id}"
    return failed(
        name,
        f"{branch} requires {settings.check_name} from {source}, not only this App ({where}):"
        " anyone who can post a status can pass it",
        f"{protect} (it pins the check to App {github.app_id})",
    )


def _check_sources(
    check_name: str, protected: StatusChecks | None, ruled: list[RuleCheck]
) -> list[tuple[int | None, str]]:
    """Each requirement of ``check_name``: the App it must come from, and where it is set."""
    found: list[tuple[int | None, str]] = [
        (app_id, "branch protection")
        for context, app_id in (protected.checks if protected else ())
        if context == check_name
    ]
    found += [
        (
            rule.integration_id,
            f"{'organisation' if rule.organisation else 'repository'} ruleset {rule.ruleset_id}"
            f" of {rule.source}",
        )
        for rule in ruled
        if rule.context == check_name
    ]
    return found


# ---------------------------------------------------------------- database


def database_checks(app: Flask, *, now: datetime) -> list[Check]:
    """Reachable and migrated to head; nothing old in the outbox; a recent sweep."""
    engine = app.extensions["gatekeeper.engine"]
    try:
        current, heads = _revisions(engine, settings_of(app).database_url)
    except sa.exc.SQLAlchemyError as error:
        reason = " ".join(str(getattr(error, "orig", None) or error).split())[:200]
        detail = f"not checked: the database does not answer ({reason})"
        return [
            failed("database", f"unreachable ({reason})", "check DATABASE_URL and the server"),
            failed("outbox", detail, "fix the database first"),
            failed("sweep", detail, "fix the database first"),
        ]
    if current != heads:
        at = ", ".join(sorted(current)) or "no revision (empty)"
        detail = "not checked: the database is not migrated"
        return [
            failed(
                "database",
                f"its tables are out of date: at migration {at}, the code needs"
                f" {', '.join(sorted(heads))}",
                "run `gatekeeper db upgrade` (the Procfile's release step)",
            ),
            failed("deliveries", detail, "run `gatekeeper db upgrade`"),
            failed("outbox", detail, "run `gatekeeper db upgrade`"),
            failed("sweep", detail, "run `gatekeeper db upgrade`"),
        ]
    with Session(engine) as session:
        return [
            passed(
                "database",
                "answers, and its tables are up to date (migration"
                f" {', '.join(sorted(heads))}, the latest)",
            ),
            deliveries_check(session, now=now),
            outbox_check(session, now=now),
            sweep_check(session, now=now),
            chat_check(session, settings=settings_of(app)),
        ]


def _revisions(engine: sa.Engine, url: str) -> tuple[set[str], set[str]]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from gatekeeper import db

    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    return current, set(ScriptDirectory.from_config(db.alembic_config(url)).get_heads())


def deliveries_check(session: Any, *, now: datetime) -> Check:
    """No stored delivery has waited longer than DELIVERY_PATIENCE to be applied."""
    from gatekeeper import deliveries

    count, oldest = deliveries.queued(session)
    if oldest is None:
        return passed("deliveries", "none waits to be applied")
    wait = "waits" if count == 1 else "wait"
    said = f"{plural(count, 'delivery', 'deliveries')} {wait} to be applied, the oldest for"
    waited = now - oldest
    if waited > DELIVERY_PATIENCE:
        return failed(
            "deliveries",
            f"{said} {_minutes(waited)}",
            "start a worker (`gatekeeper worker`, the Procfile's worker): it applies them",
        )
    return passed("deliveries", f"{said} {_minutes(waited)}")


def outbox_check(session: Any, *, now: datetime) -> Check:
    """No check has waited longer than OUTBOX_PATIENCE to be posted."""
    from gatekeeper import outbox

    oldest, pending = outbox.oldest_pending(session), outbox.pending_count(session)
    if oldest is None:
        return passed("outbox", "nothing waits to be posted")
    waited = now - oldest
    if waited > OUTBOX_PATIENCE:
        return failed(
            "outbox",
            f"{pending} checks wait, the oldest for {_minutes(waited)}",
            "start a worker (`gatekeeper worker`, the Procfile's worker) and read its log: it"
            " says why GitHub refuses the posts",
        )
    return passed("outbox", f"{pending} checks wait, the oldest for {_minutes(waited)}")


def sweep_check(session: Any, *, now: datetime) -> Check:
    """A whole sweep finished within SWEEP_PATIENCE."""
    from gatekeeper.models import SweepRun

    run = session.get(SweepRun, "sweep")
    fix = "run the clock process (`gatekeeper sweep --loop 300`, the Procfile's clock)"
    if run is None:
        return failed("sweep", "no sweep has ever finished", fix)
    since = now - run.finished_at
    if since > SWEEP_PATIENCE:
        return failed("sweep", f"the last sweep finished {_minutes(since)} ago", fix)
    return passed("sweep", f"the last sweep finished {_minutes(since)} ago")


def chat_check(session: Any, *, settings: Settings) -> Check:
    """The team chat takes the notices sent to it (only its host is shown: the URL is a secret)."""
    from gatekeeper import notify

    state = notify.health(session, settings=settings)
    if not state.hosts:
        return passed("team chat", "no GATEKEEPER_NOTIFY_URL: no notices are sent")
    where = ", ".join(state.hosts)
    if state.failing:
        return failed(
            "team chat",
            f"{state.failing} notices to {where} not sent; the last error: {state.last_error}",
            "check that the incoming webhook still exists and that this host may reach it;"
            " set GATEKEEPER_NOTIFY_URL (or `gatekeeper change MENTEE --notify-url`) to a working"
            " one: the worker retries them",
        )
    return passed("team chat", f"sends to {where}; {state.sent} notices sent")


def _minutes(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes} min" if minutes else f"{int(span.total_seconds())} s"


# ---------------------------------------------------------------- running them


def is_demo(app: Flask) -> bool:
    """Whether ``app`` is ``gatekeeper demo``'s (sample people, GitHub switched off)."""
    from gatekeeper.auth import DEMO_USERS

    return bool(app.config.get(DEMO_USERS))


def run_checks(app: Flask, *, now: datetime) -> list[Check]:
    """Every check, in the order a reader fixes them."""
    settings = settings_of(app)
    if is_demo(app):
        database = [c for c in database_checks(app, now=now) if c.name == "database"]
        return [
            *demo_checks(settings),
            *database,
            passed("outbox", "the demo posts nothing to GitHub, so nothing waits to be posted"),
            passed("sweep", "the demo's sample month stands still: no sweep is needed"),
        ]
    return [
        *settings_checks(settings),
        *github_checks(settings, github_of(app)),
        *database_checks(app, now=now),
    ]


def report(checks: list[Check]) -> dict[str, Any]:
    """The JSON document ``--json`` prints."""
    return {"ok": all(check.ok for check in checks), "checks": [c.as_json() for c in checks]}


def command(*, as_json: bool, echo: Callable[[str], None] = click.echo) -> None:
    """The body of ``gatekeeper doctor``: print the verdicts, exit 1 if any failed."""
    from gatekeeper.models import utcnow

    checks = run_checks(current_app._get_current_object(), now=utcnow())  # type: ignore[attr-defined]
    if as_json:
        echo(json.dumps(report(checks), indent=2))
    else:
        for check in checks:
            echo(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
            if not check.ok:
                echo(f"     fix: {check.fix}")
        failures = sum(not check.ok for check in checks)
        echo("All checks passed." if not failures else f"{failures} checks failed.")
    if not all(check.ok for check in checks):
        raise SystemExit(1)


@bp.get("/admin/health")
@login_required
def health() -> ResponseReturnValue:
    """The doctor's checks, for maintainers (they ask GitHub, so they take a moment)."""
    from gatekeeper.models import utcnow

    if not is_maintainer(g.user):
        abort(403, description="Only maintainers can see the service's health.")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    checks = run_checks(app, now=utcnow())
    return render_template(
        "health.html", checks=checks, ok=all(c.ok for c in checks), demo=is_demo(app)
    )


@bp.app_template_filter("code_spans")
def code_spans(text: str) -> Markup:
    """Text whose `backticked` parts (commands, as the terminal prints them) become code."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: not markup, shown as typed
        return Markup(escape(text))
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if index % 2 else escape(part)
        for index, part in enumerate(parts)
    )
