"""A fake team chat for tests: a real HTTP server on 127.0.0.1 taking incoming-webhook posts.

It answers as Slack's incoming webhooks do (and Discord's ``/slack``, Zulip's and
Mattermost's Slack-compatible endpoints): ``POST`` of a JSON object whose ``text`` is a
non-empty string is a ``200 ok``; anything else a ``400 invalid_payload``; a path that is not
a webhook of its own a ``404 no_service``. Only the messages it took are in ``messages``;
every request, taken or not, is in ``requests``.

Tests make it fail on demand: ``fail_with(500, times=2)`` answers the next two posts with
that status, ``delay`` makes every answer wait (a client's timeout runs out first).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


@dataclasses.dataclass(frozen=True)
class Message:
    """A message the chat took: which webhook it came in on, and its text."""

    path: str
    text: str


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class FakeChat:
    """Incoming webhooks (one per path in ``hooks``), served from a background thread."""

    def __init__(self, *hooks: str) -> None:
        self.hooks = set(hooks or ("/services/T0001/B0001/s3cr3tT0k3n",))
        self.messages: list[Message] = []
        self.requests: list[tuple[str, int]] = []  # (path, status answered)
        self.delay = 0.0
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def url(self, hook: str | None = None) -> str:
        """The full webhook URL (the secret Gatekeeper is given) of ``hook``, or the first."""
        return self.origin + (hook or sorted(self.hooks)[0])

    def fail_with(self, status: int, *, times: int = 1) -> None:
        """Answer the next ``times`` posts with ``status`` (nothing is taken)."""
        with self._lock:
            self._failures.extend([status] * times)

    def texts(self, hook: str | None = None) -> list[str]:
        """The texts taken, on ``hook`` only when given."""
        return [m.text for m in self.messages if hook is None or m.path == hook]

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self._answer(request)
        with self._lock:
            self.requests.append((request.path, response.status_code))
        if self.delay:
            time.sleep(self.delay)
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response:
        if request.method != "POST" or request.path not in self.hooks:
            return Response("no_service", status=404)
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return Response("internal_error" if failure >= 500 else "no_text", status=failure)
        try:
            body = json.loads(request.get_data(as_text=True))
        except ValueError:
            return Response("invalid_payload", status=400)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
            return Response("invalid_payload", status=400)
        with self._lock:
            self.messages.append(Message(request.path, body["text"]))
        return Response("ok", status=200)
