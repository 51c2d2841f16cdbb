"""Gatekeeper: a new core developer's merges wait for a mentor's approval for their first month."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatekeeper.config import Settings, instance_path
from gatekeeper.extensions import github_of, settings_of

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_app", "github_of", "settings_of"]

# Templates live at the top of the repository, beside the package, as the project's layout asks.
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application: settings from the environment (``config`` overrides), db, views."""
    # Imported here, not above, so that ``gatekeeper --help`` never loads Flask (see cli.py),
    # nor ``status`` the hashing modules behind ``secrets``.
    import secrets

    from flask import Flask

    app = Flask(
        __name__,
        template_folder=str(TEMPLATES),
        instance_path=instance_path(),  # Flask's default, found as the app-free commands find it
        instance_relative_config=True,
    )
    overrides = dict(config or {})
    # Upper-case keys are Flask's own (TESTING, WTF_CSRF_ENABLED); the rest are Settings fields.
    flask_config = {key: overrides.pop(key) for key in list(overrides) if key.isupper()}
    settings = Settings.from_env(instance_path=app.instance_path, overrides=overrides)
    app.extensions["gatekeeper.settings"] = settings
    app.config.update(
        SECRET_KEY=settings.secret_key or secrets.token_hex(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        MAX_CONTENT_LENGTH=25 * 1024 * 1024,
    )
    app.config.update(flask_config)

    from flask_wtf.csrf import CSRFProtect

    from gatekeeper import api, auth, dashboard, db, doctor, logs, metrics, security, webhooks

    db.init_app(app, settings.database_url)
    logs.init_app(app, settings)  # first, so every request's lines carry its id
    security.init_app(app, settings)  # before the blueprints: it bounds their <int:...> rules
    app.extensions["gatekeeper.github"] = None
    if settings.github_app_configured:
        # Building the client makes no request; it only holds the App's key and connection
        # pools. PyGithub is imported only here, so a command without GitHub starts faster.
        from gatekeeper.github import GitHubApp

        app.extensions["gatekeeper.github"] = GitHubApp(settings)
    app.register_blueprint(api.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(doctor.bp)
    auth.init_app(app, settings)
    # Every form needs a CSRF token; GitHub's webhooks are signed instead.
    CSRFProtect(app).exempt(webhooks.bp)
    for code in (400, 403, 404):
        app.register_error_handler(code, dashboard.error_page)
    return app
