"""Logging: one line per event, JSON in production, with what the event is about.

Every line carries the time, the level, the logger and the message, and, where there is
one, the delivery id, event, action, installation, repository and pull request number
(bound by the webhook view and the worker) or the request id of a dashboard request (also
sent back as ``X-Request-Id``). No line may hold a secret: each one is scrubbed of the
secrets the settings hold, of GitHub tokens and JWTs, and of the sign-in callback's code,
whatever logged it (PyGithub's debug lines, say, print whole answers, tokens included).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from typing import IO, Any

from flask import Flask, Response, g, request
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from gatekeeper.config import Settings

# What the current request or piece of work is about; copied onto every record.
_context: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "gatekeeper_log_context", default=None
)
FIELDS = (
    "request_id",
    "delivery",
    "event",
    "action",
    "installation",
    "repository",
    "pull_request",
    "commit",
    "job",
)
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # one a proxy set, if it looks like one
REDACTED = "[redacted]"
# Credentials GitHub hands out, recognisable by their shape: tokens (ghs_ installation,
# gho_/ghu_ user, ghp_ personal, ghr_ refresh), JWTs, and the sign-in callback's code.
TOKEN_SHAPES = re.compile(
    r"\bgh[opsur]_[A-Za-z0-9_-]{16,}"
    r"|\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"
    r"|(?<=[?&\s]code=)[^&\s\"']+"
    r"|(?<=\"code\": \")[^\"]+"
    r"|(?<='code': ')[^']+"
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"
_HANDLER_MARK = "gatekeeper_handler"


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (None ones left out) to every line logged inside the block."""
    token = _context.set({**(_context.get() or {}), **_present(fields)})
    try:
        yield
    finally:
        _context.reset(token)


@contextlib.contextmanager
def unbound() -> Iterator[None]:
    """No fields on the lines logged inside the block, whatever was bound outside it."""
    token = _context.set(None)
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add ``fields`` to the lines of the rest of the enclosing ``bound`` block or request."""
    _context.set({**(_context.get() or {}), **_present(fields)})


def _present(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record (and a text rendering of them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get() or {}
        for name, value in fields.items():
            setattr(record, name, value)
        record.context = (
            " [" + " ".join(f"{name}={fields[name]}" for name in FIELDS if name in fields) + "]"
            if fields
            else ""
        )
        return True


class Scrubber:
    """Takes every secret out of a rendered line."""

    def __init__(self, settings: Settings) -> None:
        secrets = [
            settings.github_webhook_secret,
            settings.github_client_secret,
            settings.secret_key,
            settings.metrics_token,
            settings.discourse_api_key,
        ]
        # A key is logged, if at all, a line at a time or with its newlines escaped.
        key_lines = (settings.github_private_key or "").splitlines()
        secrets += [line.strip() for line in key_lines if len(line.strip()) >= 16]
        known = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self.known = re.compile("|".join(map(re.escape, known))) if known else None

    def __call__(self, line: str) -> str:
        if self.known is not None:
            line = self.known.sub(REDACTED, line)
        return TOKEN_SHAPES.sub(REDACTED, line)


class ScrubbingJsonFormatter(JsonFormatter):
    """A JSON object per line: time, level, logger, message and the bound fields."""

    def __init__(self, scrub: Scrubber) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            timestamp="time",  # ISO 8601, UTC
            rename_fields={"levelname": "level", "name": "logger"},
            reserved_attrs=[*RESERVED_ATTRS, "context", "taskName"],
        )
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(super().format(record))


class ScrubbingTextFormatter(logging.Formatter):
    """``time LEVEL logger: message [field=value ...]`` for a terminal."""

    def __init__(self, scrub: Scrubber) -> None:
        super().__init__(TEXT_FORMAT)
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(super().format(record))


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (a test runner swaps it), as logging's own
    last-resort handler does."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def configure(
    settings: Settings, *, stream: IO[str] | None = None, level: str | None = None
) -> logging.Handler:
    """Send every logger's lines at ``level`` (GATEKEEPER_LOG_LEVEL's), formatted and
    scrubbed, to ``stream`` (stderr); replaces the handler an earlier call installed, so
    building the app twice logs each line once."""
    scrub = Scrubber(settings)
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.setFormatter(
        ScrubbingJsonFormatter(scrub)
        if settings.log_format == "json"
        else ScrubbingTextFormatter(scrub)
    )
    handler.addFilter(ContextFilter())
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    level = logging.getLevelName(level or settings.log_level)
    root.setLevel(level)
    # A library that set its own logger's level (alembic's migrations at INFO, say) would
    # otherwise pass its lines to this handler below the level asked for.
    handler.setLevel(level)
    # PyGithub's debug lines are whole requests and answers, and urllib3's every connection:
    # scrubbed all the same, but noise at any level below INFO.
    for noisy in ("github", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))
    return handler


def init_app(app: Flask, settings: Settings) -> None:
    """A request id for every request; logging configured, except under tests (they
    configure it themselves)."""
    app.before_request(_start_request)
    app.after_request(_echo_request_id)
    app.teardown_request(_end_request)
    if not app.testing:
        configure(settings)


def _start_request() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    g.log_context = _context.set({"request_id": g.request_id})


def _echo_request_id(response: Response) -> Response:
    if "request_id" in g:
        response.headers["X-Request-Id"] = g.request_id
    return response


def _end_request(_error: BaseException | None = None) -> None:
    token = g.pop("log_context", None)
    if token is not None:
        with contextlib.suppress(ValueError):  # set in another context: nothing to undo here
            _context.reset(token)
