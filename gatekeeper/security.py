"""Hardening every answer: security headers, and safe links in templates."""

from __future__ import annotations

from flask import Flask, Response

from gatekeeper import mentorships as lifecycle
from gatekeeper.config import Settings

HSTS = "max-age=31536000; includeSubDomains"


def init_app(app: Flask, settings: Settings) -> None:
    """Add the ``web_url`` template test, and harden every response."""
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
