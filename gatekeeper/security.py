"""Hardening every answer: security headers, safe links in templates, bounded URL numbers."""

from __future__ import annotations

from flask import Flask, Response
from werkzeug.routing import IntegerConverter, Map

from gatekeeper import mentorships as lifecycle
from gatekeeper.config import Settings

# PostgreSQL's INTEGER, the type of the columns a number in a URL is looked up in.
LARGEST_INTEGER = 2**31 - 1
HSTS = "max-age=31536000; includeSubDomains"


class DatabaseInteger(IntegerConverter):
    """``<int:...>`` matching only numbers an INTEGER column can hold; a bigger one is a 404.

    Without it, /pulls/a/b/9223372036854775808 reaches the database, which raises
    (OverflowError in SQLite, "out of range" in PostgreSQL) and the page answers 500.
    """

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int = LARGEST_INTEGER,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def init_app(app: Flask, settings: Settings) -> None:
    """Bound URL integers, add the ``web_url`` template test, and harden every response.

    Call before the blueprints are registered: a rule takes its converters when it is added.
    """
    app.url_map.converters["int"] = DatabaseInteger
    # Templates link a stored URL only when it passes: ``{% if url is web_url %}``.
    app.jinja_env.tests["web_url"] = lifecycle.is_web_url
    headers = security_headers(settings)

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        """The same headers on every answer: pages, errors, JSON, static files."""
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response


def security_headers(settings: Settings) -> dict[str, str]:
    """The headers each response carries; HSTS only in production (development is plain HTTP)."""
    headers = {
        "Content-Security-Policy": content_security_policy(settings),
        # For browsers without frame-ancestors: the one-click "Approve merge" form is never framed.
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    if settings.is_production:
        headers["Strict-Transport-Security"] = HSTS
    return headers


def content_security_policy(settings: Settings) -> str:
    """Only the app's own scripts and styles (static files, no inline code), never framed."""
    form_action = "'self'"
    if settings.oauth_configured:
        # A form posted after the session ended is sent to sign in, and /login redirects to
        # GitHub; Chromium checks form-action on every redirect that follows a submission.
        form_action += f" {settings.github_url}"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "frame-ancestors 'none'",
            f"form-action {form_action}",
            "base-uri 'none'",
            "object-src 'none'",
        ]
    )
