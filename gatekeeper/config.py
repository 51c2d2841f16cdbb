"""Typed settings, read once from the environment by ``create_app``."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import urlsplit


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


# Where `gatekeeper register` writes the App's settings, in the instance folder, unless
# GATEKEEPER_ENV_FILE names another file.
ENV_FILE_NAME = "github-app.env"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything Gatekeeper reads from its environment."""

    database_url: str
    database_url_is_default: bool = False
    env: str = "development"
    secret_key: str | None = None
    github_app_id: int | None = None
    github_private_key: str | None = None
    github_webhook_secret: str | None = None
    github_client_id: str | None = None
    github_client_secret: str | None = None
    github_api_url: str = "https://api.github.com"
    github_url: str = "https://github.com"
    github_app_slug: str | None = None
    github_timeout: float = 10.0
    github_retries: int = 1
    github_backoff: float = 0.5
    # PyGithub's own pacing is one write a second per process; the worker paces writes per
    # installation instead (``worker_writes_per_installation``), as GitHub's limits ask.
    github_seconds_between_requests: float = 0.0
    github_seconds_between_writes: float = 0.0
    worker_writes_per_installation: int = 1
    # The safety-net scan of every installed repository's open pull requests, in seconds.
    scan_interval: int = 3600
    base_url: str = "http://127.0.0.1:5000"
    maintainers: frozenset[str] = frozenset()
    check_name: str = "mentor-approval"
    request_reviews: bool = True
    # The forum promotion votes are read from; its API key is sent to that forum only.
    discourse_url: str = "https://discuss.python.org"
    discourse_api_key: str | None = dataclasses.field(default=None, repr=False)
    discourse_api_username: str | None = None
    discourse_timeout: float = 10.0
    # Other forums a vote link may name (host or host:port), besides DISCOURSE_URL's host.
    forum_hosts: frozenset[str] = frozenset()
    # The team chat's incoming-webhook URL (Slack, Discord's /slack, Zulip, Mattermost): a
    # secret, since whoever has it can post there, so only its host is ever shown.
    notify_url: str | None = dataclasses.field(default=None, repr=False)
    notify_timeout: float = 10.0
    # A bearer token /metrics asks for; without one it is open (keep it off the internet).
    metrics_token: str | None = dataclasses.field(default=None, repr=False)
    log_format: str = "text"  # "json" in production unless GATEKEEPER_LOG_FORMAT says
    log_level: str = "INFO"

    @property
    def is_production(self) -> bool:
        """Production turns on secure cookies and refuses a missing SECRET_KEY."""
        return self.env == "production"

    @property
    def uses_embedded_database(self) -> bool:
        """Whether DATABASE_URL was left unset, so the SQLite file in the instance folder is used."""
        return self.database_url_is_default

    @property
    def github_app_configured(self) -> bool:
        """Whether the App can authenticate to GitHub at all."""
        return self.github_app_id is not None and bool(self.github_private_key)

    @property
    def oauth_configured(self) -> bool:
        """Whether sign-in with GitHub is possible."""
        return bool(self.github_client_id and self.github_client_secret)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        instance_path: str,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Build settings from environment variables; ``overrides`` wins (tests use it)."""
        env = with_env_file(os.environ if environ is None else environ, instance_path)
        values: dict[str, Any] = {
            "database_url": normalise_database_url(
                env.get("DATABASE_URL")
                or "sqlite:///" + str(Path(instance_path) / "gatekeeper.sqlite")
            ),
            "database_url_is_default": not env.get("DATABASE_URL"),
            "env": _choice(env, "GATEKEEPER_ENV", ("development", "production"), "development"),
            "secret_key": env.get("SECRET_KEY") or None,
            "github_app_id": _int(env, "GITHUB_APP_ID"),
            "github_private_key": _private_key(env),
            "github_webhook_secret": env.get("GITHUB_WEBHOOK_SECRET") or None,
            "github_client_id": env.get("GITHUB_CLIENT_ID") or None,
            "github_client_secret": env.get("GITHUB_CLIENT_SECRET") or None,
            "github_app_slug": env.get("GITHUB_APP_SLUG") or None,
            "worker_writes_per_installation": _int(env, "GATEKEEPER_WRITES_PER_INSTALLATION") or 1,
            "scan_interval": _int(env, "GATEKEEPER_SCAN_INTERVAL") or cls.scan_interval,
            "github_api_url": (env.get("GITHUB_API_URL") or cls.github_api_url).rstrip("/"),
            "github_url": (env.get("GITHUB_URL") or cls.github_url).rstrip("/"),
            "base_url": (env.get("GATEKEEPER_BASE_URL") or cls.base_url).rstrip("/"),
            "maintainers": parse_logins(env.get("GATEKEEPER_MAINTAINERS", "")),
            "check_name": env.get("GATEKEEPER_CHECK_NAME") or cls.check_name,
            "request_reviews": _flag(env, "GATEKEEPER_REQUEST_REVIEWS", default=True),
            "discourse_url": (env.get("DISCOURSE_URL") or cls.discourse_url).rstrip("/"),
            "discourse_api_key": env.get("DISCOURSE_API_KEY") or None,
            "discourse_api_username": env.get("DISCOURSE_API_USERNAME") or None,
            "forum_hosts": parse_forum_hosts(env.get("GATEKEEPER_FORUM_HOSTS", "")),
            "metrics_token": env.get("GATEKEEPER_METRICS_TOKEN") or None,
            "notify_url": notify_url(env.get("GATEKEEPER_NOTIFY_URL", "")),
            "log_level": _choice(
                env, "GATEKEEPER_LOG_LEVEL", ("debug", "info", "warning", "error"), "info"
            ).upper(),
        }
        values["log_format"] = _choice(
            env,
            "GATEKEEPER_LOG_FORMAT",
            ("json", "text"),
            "json" if values["env"] == "production" else "text",
        )
        if overrides:
            values.update(overrides)
            if "database_url" in overrides:
                values["database_url"] = normalise_database_url(values["database_url"])
                values["database_url_is_default"] = False
            if isinstance(values["maintainers"], str | list | tuple | set):
                values["maintainers"] = _as_login_set(values["maintainers"])
        settings = cls(**values)
        if settings.is_production and not settings.secret_key:
            raise ConfigError("SECRET_KEY must be set when GATEKEEPER_ENV=production")
        return settings


def instance_path() -> str:
    """The instance folder, where the embedded database and the App's env file live: beside the
    package in a checkout, ``PREFIX/var/gatekeeper-instance`` when installed.

    Flask's own choice (``App.auto_find_instance_path``), worked out here so that a command
    which needs no app (``status``, ``list``) finds the same files without importing Flask;
    ``create_app`` hands it to Flask.
    """
    package_path = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    prefix = os.path.abspath(sys.prefix)
    if PurePath(package_path).is_relative_to(prefix):  # installed to the system
        return os.path.join(prefix, "var", "gatekeeper-instance")
    site_parent, site_folder = os.path.split(package_path)
    if site_folder.lower() != "site-packages":  # a checkout, run where it lies
        return os.path.join(package_path, "instance")
    parent, folder = os.path.split(site_parent)
    if folder.lower() == "lib":  # Windows: PREFIX/lib/site-packages
        prefix = parent
    elif os.path.basename(parent).lower() == "lib":  # PREFIX/lib/pythonX.Y/site-packages
        prefix = os.path.dirname(parent)
    else:  # PREFIX/site-packages
        prefix = site_parent
    return os.path.join(prefix, "var", "gatekeeper-instance")


def env_file_path(env: Mapping[str, str], instance_path: str) -> Path:
    """The env file settings are read from: GATEKEEPER_ENV_FILE, or the instance folder's."""
    named = env.get("GATEKEEPER_ENV_FILE", "").strip()
    return Path(named) if named else Path(instance_path) / ENV_FILE_NAME


def with_env_file(env: Mapping[str, str], instance_path: str) -> Mapping[str, str]:
    """``env`` with the env file's variables added beneath it: the environment always wins.

    A missing default file is no App yet; a missing GATEKEEPER_ENV_FILE is an error.
    """
    path = env_file_path(env, instance_path)
    if not env.get("GATEKEEPER_ENV_FILE", "").strip() and not path.exists():
        return env
    return {**read_env_file(path), **env}


def read_env_file(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of an env file.

    Blank lines and lines starting with ``#`` are skipped; a value is taken literally up to
    the end of its line (no quotes, no interpolation), so a multi-line value is written
    with ``\\n`` escapes, which GITHUB_PRIVATE_KEY accepts. Errors name the file and the
    line, never the line's text: it may hold a secret.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"GATEKEEPER_ENV_FILE: cannot read {path}: {reason}") from None
    values: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if not equals or not _ENV_NAME.fullmatch(name):
            raise ConfigError(f"{path}, line {number}: expected NAME=value")
        if name in values:
            raise ConfigError(
                f"{path}, line {number}: {name} is set again (first on line {first_seen[name]})"
            )
        values[name], first_seen[name] = value, number
    return values


def normalise_database_url(url: str) -> str:
    """Accept Heroku's ``postgres://`` form and route PostgreSQL through psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def notify_url(text: str, *, name: str = "GATEKEEPER_NOTIFY_URL") -> str | None:
    """A chat incoming-webhook URL checked (None when blank); the error never repeats the
    URL, which is a secret."""
    url = text.strip()
    if not url:
        return None
    refusal = ConfigError(f"{name} must be the chat's incoming-webhook http(s) URL")
    if any(char <= " " or char == "\x7f" for char in url) or len(url) > 2000:
        raise refusal
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise refusal from None
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        raise refusal
    return url


def parse_logins(text: str) -> frozenset[str]:
    """Split a comma-separated list of GitHub logins into their canonical lowercase form."""
    return frozenset(part.strip().lstrip("@").lower() for part in text.split(",") if part.strip())


_FORUM_HOST = re.compile(r"(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?")


def parse_forum_hosts(text: str) -> frozenset[str]:
    """GATEKEEPER_FORUM_HOSTS: comma-separated ``host`` or ``host:port``, lowercased."""
    hosts = frozenset(part.strip().lower() for part in text.split(",") if part.strip())
    for host in sorted(hosts):
        if not _FORUM_HOST.fullmatch(host):
            raise ConfigError(
                f"GATEKEEPER_FORUM_HOSTS must list host names (or host:port), comma-separated,"
                f" got {host!r}"
            )
    return hosts


def _as_login_set(value: str | list[str] | tuple[str, ...] | set[str]) -> frozenset[str]:
    if isinstance(value, str):
        return parse_logins(value)
    return parse_logins(",".join(value))


def _int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.get(name, "").strip().lower() or default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _private_key(env: Mapping[str, str]) -> str | None:
    """The App's PEM key, given inline (GITHUB_PRIVATE_KEY) or as a file path."""
    inline = env.get("GITHUB_PRIVATE_KEY", "").strip()
    if inline:
        # Many hosts cannot hold newlines in a variable; accept the escaped form too.
        return inline.replace("\\n", "\n")
    path = env.get("GITHUB_PRIVATE_KEY_PATH", "").strip()
    if not path:
        return None
    try:
        return Path(path).read_text()
    except OSError as error:
        raise ConfigError(
            f"GITHUB_PRIVATE_KEY_PATH: cannot read {path}: {error.strerror}"
        ) from None
