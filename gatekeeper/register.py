"""``gatekeeper register``: create the GitHub App from a manifest and keep its settings.

GitHub's manifest flow has three steps, all within an hour: a page (here, a one-shot server
on loopback) posts the App's manifest to GitHub's "new App" form; GitHub creates the App
and sends the browser back with a one-time ``code`` and our ``state``; the code is traded
(``POST /app-manifests/{code}/conversions``) for the App's id, private key and secrets,
which are written to an env file the settings loader reads, and never printed.

Any process on the machine can connect to a loopback port, so the page lives under a random
path printed only on the terminal of whoever ran the command: without it, a local process
could read the form's ``state`` and come back with a manifest code of its own App, whose
key and secret would then be written to the env file. Every other path is a bare 404.
"""

from __future__ import annotations

import dataclasses
import hmac
import html
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gatekeeper.app_manifest import (
    OPTIONAL_PERMISSIONS,
    ORGANISATION_PERMISSIONS,
    REQUIRED_EVENTS,
    REQUIRED_PERMISSIONS,
)
from gatekeeper.config import (
    ConfigError,
    Settings,
    env_file_path,
    instance_path,
    read_env_file,
)

if TYPE_CHECKING:
    from gatekeeper.github import RegisteredApp

DESCRIPTION = "Mentor approval for a new core developer's first month of merges."
CALLBACK_PATH = "callback"  # under the page's secret path
# GitHub's code lasts an hour; a page nobody submitted by then cannot succeed any more.
WAIT_SECONDS = 3600
# Every variable register writes; any older line naming one of them is replaced.
APP_VARIABLES = (
    "GITHUB_APP_ID",
    "GITHUB_APP_SLUG",
    "GITHUB_PRIVATE_KEY",
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_CLIENT_ID",
    "GITHUB_CLIENT_SECRET",
    "GITHUB_URL",
    "GITHUB_API_URL",
    "GATEKEEPER_BASE_URL",
)


class RegisterError(Exception):
    """The registration cannot go on; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to register, where, and where to keep the result."""

    github_url: str
    api_url: str
    public_url: str
    name: str
    env_file: Path
    org: str | None = None
    with_protect: bool = False

    @property
    def new_app_url(self) -> str:
        """GitHub's "new App" form, for the user's account or for the organisation."""
        if self.org:
            return (
                f"{self.github_url}/organizations/{urllib.parse.quote(self.org)}/settings/apps/new"
            )
        return f"{self.github_url}/settings/apps/new"


def manifest(plan: Plan, *, redirect_url: str) -> dict[str, Any]:
    """The App manifest: everything Gatekeeper needs, so the user only confirms the name."""
    permissions = dict(REQUIRED_PERMISSIONS)
    if plan.with_protect:  # only `gatekeeper protect` writes rulesets and branch protection
        permissions.update(OPTIONAL_PERMISSIONS)
        if plan.org:  # `protect --org`: the organisation's rulesets
            permissions.update(ORGANISATION_PERMISSIONS)
    return {
        "name": plan.name,
        "url": plan.public_url,
        "description": DESCRIPTION,
        "hook_attributes": {"url": f"{plan.public_url}/webhooks/github", "active": True},
        "redirect_url": redirect_url,
        "callback_urls": [f"{plan.public_url}/login/callback"],
        "request_oauth_on_install": False,
        "public": False,
        "default_permissions": permissions,
        "default_events": list(REQUIRED_EVENTS),
    }


def env_values(app: RegisteredApp, plan: Plan) -> dict[str, str]:
    """The env file's variables for ``app``, named as in the README's configuration table."""
    values = {
        "GITHUB_APP_ID": str(app.id),
        "GITHUB_APP_SLUG": app.slug,
        # One line per variable: the PEM's newlines become \n, which the loader turns back.
        "GITHUB_PRIVATE_KEY": app.pem.strip().replace("\r\n", "\n").replace("\n", "\\n"),
        "GITHUB_CLIENT_ID": app.client_id,
        "GITHUB_CLIENT_SECRET": app.client_secret,
        "GATEKEEPER_BASE_URL": plan.public_url,
    }
    if app.webhook_secret:
        values["GITHUB_WEBHOOK_SECRET"] = app.webhook_secret
    if (plan.github_url, plan.api_url) != (Settings.github_url, Settings.github_api_url):
        values["GITHUB_URL"], values["GITHUB_API_URL"] = plan.github_url, plan.api_url
    return values


def install_url(plan: Plan, slug: str) -> str:
    """Where the App is installed on repositories."""
    return f"{plan.github_url}/apps/{slug}/installations/new"


# ---------------------------------------------------------------- the env file


def check_writable(path: Path) -> None:
    """Refuse before GitHub creates anything if the env file could not be written after."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise RegisterError(f"cannot create {path.parent}: {error.strerror}") from None
    if not os.access(path.parent, os.W_OK):
        raise RegisterError(f"cannot write to {path.parent}")


def write_env_file(path: Path, values: Mapping[str, str], *, header: str) -> None:
    """Write ``values`` to ``path``, readable by its owner alone from the first byte.

    Lines of the old file that name none of register's variables (DATABASE_URL, say) are
    kept. The new file is written beside the old one and renamed over it, so a failure
    leaves the old file whole.
    """
    kept = [
        line
        for line in (path.read_text(encoding="utf-8").splitlines() if path.exists() else [])
        if line.partition("=")[0].strip() not in APP_VARIABLES and not line.startswith("# ~")
    ]
    lines = [f"# ~ {header}", *(f"{name}={value}" for name, value in values.items()), *kept]
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # O_EXCL: never write through a file (or symlink) someone else put there first.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- the local page


class ManifestPage:
    """The one-shot WSGI app on loopback: the manifest form, and the way back from GitHub."""

    def __init__(self, plan: Plan, *, convert: Callable[[str], RegisteredApp]):
        self.plan, self.convert = plan, convert
        self.port = 0  # known once the server is bound (``--port 0``: any free one)
        self.state = secrets.token_urlsafe(32)
        self.token = secrets.token_urlsafe(32)  # the page's path: whoever knows it ran us
        self.outcome: RegisteredApp | RegisterError | None = None
        self.refused: list[str] = []  # returns refused without ending the registration

    @property
    def url(self) -> str:
        """The page's address, printed for the user to open."""
        return f"http://127.0.0.1:{self.port}/{self.token}/"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        from werkzeug.wrappers import Request, Response

        request = Request(environ)
        where = self.route(request.path) if request.method == "GET" else None
        # Only this machine's names: a page elsewhere cannot reach us by DNS rebinding.
        if request.host not in {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}:
            status, body = 400, "<h1>Unexpected Host</h1>"
        elif where == "form":
            status, body = 200, self.form_page()
        elif where == CALLBACK_PATH:
            status, body = self.come_back(request.args.get("code"), request.args.get("state"))
        else:
            status, body = 404, "<h1>Not Found</h1>"
        page = f'<!doctype html><html lang="en"><meta charset="utf-8"><title>gatekeeper register</title>{body}'
        response = Response(page, status, mimetype="text/html")
        response.headers.update(self.security_headers())
        return response(environ, start_response)

    def route(self, path: str) -> str | None:
        """Which page ``path`` asks for under the secret path (compared in constant time)."""
        token, _, rest = path.removeprefix("/").partition("/")
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return None
        return {"": "form", CALLBACK_PATH: CALLBACK_PATH}.get(rest)

    def security_headers(self) -> dict[str, str]:
        """Never cached, framed or referred; the form may post to GitHub alone."""
        github = urllib.parse.urlsplit(self.plan.github_url)
        return {
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": (
                "default-src 'none'; base-uri 'none'; frame-ancestors 'none';"
                f" form-action {github.scheme}://{github.netloc} 'self'"
            ),
        }

    def form_page(self) -> str:
        """The page holding GitHub's manifest form, pre-filled."""
        document = manifest(self.plan, redirect_url=self.url + CALLBACK_PATH)
        # GitHub's own example passes state in the form's URL; it is a form field too.
        action = f"{self.plan.new_app_url}?{urllib.parse.urlencode({'state': self.state})}"
        where = f"the organisation {self.plan.org}" if self.plan.org else "your account"
        text = json.dumps(document, indent=2)
        return (
            f"<h1>Register {html.escape(self.plan.name)} on GitHub</h1>"
            f"<p>This creates a private GitHub App owned by {html.escape(where)} on"
            f" {html.escape(self.plan.github_url)}, with the permissions and events Gatekeeper"
            " needs. GitHub asks you to confirm its name, then sends you back here.</p>"
            f'<form action="{html.escape(action)}" method="post">'
            f'<input type="hidden" name="manifest" value="{html.escape(json.dumps(document))}">'
            f'<input type="hidden" name="state" value="{html.escape(self.state)}">'
            '<button type="submit">Create the GitHub App</button></form>'
            f"<details><summary>The manifest</summary><pre>{html.escape(text)}</pre></details>"
        )

    def come_back(self, code: str | None, state: str | None) -> tuple[int, str]:
        """GitHub's redirect: check the state, trade the code, keep the outcome."""
        if self.outcome is not None:
            return 409, "<h1>This registration is already over</h1>"
        if not state or not hmac.compare_digest(state, self.state):
            # Not GitHub's redirect for this page (any site can send the browser here): it
            # is refused, and the registration goes on waiting for the real one.
            why = (
                "a return whose state does not match this registration's was refused;"
                " nothing was written, still waiting for GitHub"
            )
            self.refused.append(why)
            return 400, f"<h1>Not registered</h1><p>{html.escape(why)}.</p>"
        if not code:
            self.outcome = RegisterError("GitHub sent no code back; nothing was written")
        else:
            try:
                self.outcome = self.convert(code)
            except RegisterError as error:
                self.outcome = error
        if isinstance(self.outcome, RegisterError):
            return 400, f"<h1>Not registered</h1><p>{html.escape(str(self.outcome))}</p>"
        link = install_url(self.plan, self.outcome.slug)
        return 200, (
            f"<h1>{html.escape(self.outcome.name)} is registered</h1>"
            f"<p>Its settings are in the env file beside Gatekeeper. Next,"
            f' <a href="{html.escape(link)}">install it</a> on the repositories to gate.'
            " You may close this page.</p>"
        )


def serve_page(page: ManifestPage, server: Any, *, deadline: float) -> RegisteredApp:
    """Answer requests until GitHub's redirect came back (or the hour is over)."""
    while page.outcome is None:
        if time.monotonic() > deadline:
            raise RegisterError(
                "no answer from GitHub within an hour (the manifest's code would have expired);"
                " run gatekeeper register again"
            )
        server.handle_request()  # returns after server.timeout with no request
        while page.refused:
            click.echo(f"Warning: {page.refused.pop(0)}.", err=True)
    if isinstance(page.outcome, RegisterError):
        raise page.outcome
    return page.outcome


def converter(plan: Plan, *, header: str) -> Callable[[str], RegisteredApp]:
    """Trade a code for the new App and write its env file (what the redirect does)."""
    from gatekeeper.github import GitHubUnavailable, app_from_manifest

    def convert(code: str) -> RegisteredApp:
        try:
            app = app_from_manifest(api_url=plan.api_url, code=code)
        except GitHubUnavailable as error:
            if error.status in (404, 422):
                raise RegisterError(
                    "GitHub refused the code: it expired (a code lasts an hour) or was already"
                    " used; nothing was written, run gatekeeper register again"
                ) from None
            raise RegisterError(f"the App's settings could not be fetched: {error}") from None
        try:
            write_env_file(plan.env_file, env_values(app, plan), header=header)
        except OSError as error:
            raise RegisterError(
                f"cannot write {plan.env_file} ({error.strerror}); the App {app.slug} was"
                f" created: delete it on GitHub ({app.html_url}) and register again"
            ) from None
        return app

    return convert


def quiet_handler() -> type:
    """werkzeug's request handler without its log line: the redirect's URL holds the code."""
    from werkzeug.serving import WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log(self, type: str, message: str, *args: Any) -> None:
            pass

    return Quiet


def register(plan: Plan, *, port: int, open_browser: bool) -> RegisteredApp:
    """Run the whole flow: serve the page, wait for GitHub, write the env file."""
    from werkzeug.serving import make_server

    check_writable(plan.env_file)
    header = (
        f"GitHub App {plan.name!r}, from gatekeeper register on"
        f" {datetime.now(UTC):%Y-%m-%d}. Secrets: keep this file 0600, out of version control."
    )
    page = ManifestPage(plan, convert=converter(plan, header=header))
    try:
        server = make_server("127.0.0.1", port, page, request_handler=quiet_handler())
    except OSError as error:
        raise RegisterError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}") from None
    page.port = server.server_port
    server.timeout = 0.5
    click.echo(
        "Open this page to create the GitHub App (it posts Gatekeeper's manifest to GitHub;"
        " keep its address to yourself, it is the registration's key):"
    )
    click.echo(page.url)
    if open_browser:
        import webbrowser

        # A thread: a console browser's open() would wait for it to exit, and us with it.
        threading.Thread(target=webbrowser.open, args=(page.url,), daemon=True).start()
    try:
        return serve_page(page, server, deadline=time.monotonic() + WAIT_SECONDS)
    finally:
        server.server_close()


# ---------------------------------------------------------------- the command


def has_terminal() -> bool:
    """Whether someone is at a terminal to answer a question."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def has_browser() -> bool:
    """Whether a graphical browser can be opened (never a console one: it would take the
    terminal over)."""
    return has_terminal() and (
        sys.platform in ("darwin", "win32")
        or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    )


def checked_public_url(text: str) -> str:
    """An http(s) URL with a host and nothing after its path, without a trailing slash."""
    parts = urllib.parse.urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise RegisterError(
            f"--public-url must be an http(s) URL such as https://gatekeeper.example.org, got {text!r}"
        )
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def github_urls(environ: Mapping[str, str], file_values: Mapping[str, str]) -> tuple[str, str]:
    """GITHUB_URL and GITHUB_API_URL: the environment's, else the env file's, else github.com.

    A GitHub Enterprise Server host given without its API URL has it at ``/api/v3``.
    """

    def named(name: str) -> str:
        return (environ.get(name) or file_values.get(name) or "").strip().rstrip("/")

    web = named("GITHUB_URL") or Settings.github_url
    api = named("GITHUB_API_URL")
    if not api:
        api = Settings.github_api_url if web == Settings.github_url else f"{web}/api/v3"
    return web, api


def default_name(org: str | None, public_url: str) -> str:
    """A name GitHub is likely to accept (names are unique on the whole host, 34 characters)."""
    where = org or urllib.parse.urlsplit(public_url).hostname or ""
    return f"Gatekeeper {where}".strip()[:34]


def next_steps(app: RegisteredApp, plan: Plan, environ: Mapping[str, str]) -> Iterable[str]:
    """What to do now: install the App; what to copy for production (names, never values)."""
    names = list(env_values(app, plan))
    yield f'Created the GitHub App "{app.name}" (id {app.id}, slug {app.slug}).'
    yield f"Its settings are in {plan.env_file} (mode 0600); gatekeeper reads them from there."
    shadowed = [name for name in names if environ.get(name)]
    if shadowed:
        yield (
            f"Note: {', '.join(shadowed)} set in this environment win over the file;"
            " unset them to use the new App."
        )
    yield "Install it on the repositories to gate:"
    yield install_url(plan, app.slug)
    yield (
        "For production, copy these variables from that file into the host's configuration"
        " (or point GATEKEEPER_ENV_FILE at a copy of it, mode 0600):"
    )
    yield "  " + " ".join(names)
    yield "  and set SECRET_KEY, DATABASE_URL, GATEKEEPER_ENV=production and GATEKEEPER_MAINTAINERS."
    yield "Then check everything with: gatekeeper doctor"


@click.command(
    "register",
    epilog="\b\nExamples:\n  gatekeeper register --org python --public-url https://gatekeeper.example.org"
    "\n  gatekeeper register --public-url https://gk.example.org --port 8765   (over ssh -L 8765:127.0.0.1:8765)",
)
@click.option(
    "--org", metavar="ORG", help="Register the App for this organisation (default: your account)."
)
@click.option("--public-url", metavar="URL", help="This Gatekeeper's public https:// address.")
@click.option(
    "--name", metavar="NAME", help="The App's name on GitHub (unique there; at most 34 characters)."
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the App's settings (default: $GATEKEEPER_ENV_FILE, else instance/github-app.env).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Port of the local page (default: any free one).",
)
@click.option("--force", is_flag=True, help="Replace the App an env file already holds.")
@click.option(
    "--with-protect",
    is_flag=True,
    help="Also ask for Administration: write (and with --org, Organization administration:"
    " write), for gatekeeper protect.",
)
def register_command(
    org: str | None,
    public_url: str | None,
    name: str | None,
    env_file: Path | None,
    port: int,
    force: bool,
    with_protect: bool,
) -> None:
    """Create the GitHub App from a manifest.

    Serves a page on loopback that posts Gatekeeper's manifest to GitHub, and writes the new
    App's id, key and secrets to an env file (mode 0600) that Gatekeeper reads; nothing
    secret is printed.
    """
    try:
        environ = os.environ
        path = env_file or env_file_path(environ, instance_path())
        try:
            file_values = read_env_file(path) if path.exists() else {}
        except ConfigError:
            if not force:
                raise
            file_values = {}  # replaced whole but for the lines register does not write
        existing = file_values.get("GITHUB_APP_ID")
        if existing and not force:
            raise RegisterError(
                f"{path} already holds an App (GITHUB_APP_ID={existing}); pass --force to replace it"
            )
        if org is not None and not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", org):
            raise RegisterError(f"--org must be an organisation's login, got {org!r}")
        if public_url is None:
            if not has_terminal():
                raise RegisterError(
                    "--public-url is required when there is no terminal to ask for it"
                    " (e.g. --public-url https://gatekeeper.example.org)"
                )
            public_url = click.prompt("This Gatekeeper's public URL (https://...)")
        public_url = checked_public_url(public_url)
        github_url, api_url = github_urls(environ, file_values)
        plan = Plan(
            github_url=github_url,
            api_url=api_url,
            public_url=public_url,
            name=(name or default_name(org, public_url)).strip(),
            env_file=path,
            org=org,
            with_protect=with_protect,
        )
        if not 1 <= len(plan.name) <= 34:
            raise RegisterError("--name must hold 1 to 34 characters")
        app = register(plan, port=port, open_browser=has_browser())
    except (RegisterError, ConfigError) as error:
        raise click.ClickException(str(error)) from None
    for line in next_steps(app, plan, environ):
        click.echo(line)
