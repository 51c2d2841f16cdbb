"""A fake Discourse forum for tests: a real HTTP server on 127.0.0.1 answering topic JSON.

It serves what Gatekeeper reads of a Discourse forum with the poll plugin, in Discourse's
own shapes (see ``fixtures/discourse/README.md``):

* ``GET /t/<slug>/<id>.json``: the topic, its first 20 posts in ``post_stream.posts`` and
  every post's id in ``post_stream.stream``; a wrong slug is a 301 to the right one, as
  Discourse answers.
* ``GET /t/<id>/posts.json?post_ids[]=…``: those posts.
* Polls are serialized per request, as ``PollSerializer`` does for that reader: an option's
  ``votes`` (and ``preloaded_voters``) only when ``Poll#can_see_results?`` holds, so an open
  ``results: on_close`` poll shows no counts, a ``staff_only`` one shows them to staff only.
* Authentication with the ``Api-Key`` and ``Api-Username`` headers; a topic in a private
  category is a 403 (``invalid_access``) to anyone else, an unknown topic a 404, both in
  Discourse's error shape (``errors``, ``error_type``).

Tests add topics with ``add_topic`` and polls with ``poll(...)``, read what was asked from
``requests`` (each with its headers), and send a request elsewhere with ``redirect``.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import re
import threading
import time
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

FIXTURE = Path(__file__).parent / "fixtures" / "discourse" / "topic_promotion_vote.json"
CHUNK_SIZE = 20  # TopicView.chunk_size
NOT_FOUND = "The requested URL or resource could not be found."
INVALID_ACCESS = "You are not permitted to view the requested resource."
TOPIC = re.compile(r"^/t/(?P<slug>[^/]+)/(?P<id>\d+)\.json$")
POSTS = re.compile(r"^/t/(?P<id>\d+)/posts\.json$")
# Discourse's defaults for a reply: min_post_length and max_post_length.
MIN_POST_LENGTH, MAX_POST_LENGTH = 20, 32000


@dataclasses.dataclass(frozen=True)
class Seen:
    """One request the forum received."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclasses.dataclass
class Poll:
    """A poll as the forum stores it; ``serialize`` shows it as a given reader sees it."""

    name: str = "poll"
    status: str = "closed"
    results: str = "on_close"
    close: str | None = "2024-11-08T15:00:00.000Z"
    closed_at: str | None = None
    options: list[tuple[str, int]] = dataclasses.field(
        default_factory=lambda: [("Promote Matt Page", 12), ("Do not promote Matt Page", 1)]
    )
    type: str = "regular"
    public: bool = False

    def is_closed(self, now: datetime) -> bool:
        """``Poll#is_closed?``: closed by hand, or past its close time."""
        return self.status == "closed" or (self.close is not None and _time(self.close) <= now)

    def can_see_results(self, *, staff: bool, now: datetime) -> bool:
        """``Poll#can_see_results?`` for a reader who never votes (the API user)."""
        if self.results == "staff_only":
            return staff
        return self.results == "always" or self.is_closed(now)

    def serialize(self, *, staff: bool, now: datetime, poll_id: int) -> dict[str, Any]:
        """``PollSerializer``'s document for this reader."""
        visible = self.can_see_results(staff=staff, now=now)
        options = []
        for index, (html, votes) in enumerate(self.options):
            option: dict[str, Any] = {"id": f"{poll_id:08x}{index:024x}", "html": html}
            if visible:
                option["votes"] = votes
            options.append(option)
        document: dict[str, Any] = {
            "id": poll_id,
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "results": self.results,
            "options": options,
            "voters": sum(votes for _, votes in self.options),
            "chart_type": "bar",
            "title": None,
            "closed_at": self.closed_at,
            "closed_by": None,
        }
        if self.public:
            document["public"] = True
            if visible:
                document["preloaded_voters"] = {}
        if self.close is not None:
            document["close"] = self.close
        return document


@dataclasses.dataclass
class Topic:
    """A topic: its posts (dicts in Discourse's shape) and their polls by post number."""

    id: int
    slug: str
    title: str
    private: bool
    posts: list[dict[str, Any]]
    polls: dict[int, list[Poll]]


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class FakeDiscourse:
    """A Discourse forum's read API, served on 127.0.0.1 from a background thread."""

    def __init__(self) -> None:
        self.template = json.loads(FIXTURE.read_text())
        self.topics: dict[int, Topic] = {}
        self.api_keys: dict[str, str] = {}  # key -> the username it may act as
        self.members: set[str] = set()  # usernames who may read private categories
        self.staff: set[str] = set()
        self.read_only: set[str] = set()  # keys scoped to reading: a reply is refused (403)
        self.requests: list[Seen] = []
        self.redirects: dict[str, str] = {}  # path -> Location
        self.delay = 0.0  # seconds every answer waits, to make a client time out
        self.fail_with: int | None = None  # answer every request with this status
        self._ids = itertools.count(98765)
        self._lock = threading.Lock()
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ server

    @property
    def url(self) -> str:
        """The forum's origin, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._server.server_port}"

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

    def __enter__(self) -> FakeDiscourse:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ state

    def add_user(
        self,
        username: str,
        key: str,
        *,
        member: bool = True,
        staff: bool = False,
        may_post: bool = True,
    ):
        """An API key acting as ``username``, a member of the private categories or not."""
        self.api_keys[key] = username
        if not may_post:
            self.read_only.add(key)
        if member:
            self.members.add(username)
        if staff:
            self.staff.add(username)

    def add_topic(
        self,
        topic_id: int,
        slug: str = "promote-matt-page-to-core-developer",
        *,
        polls: list[Poll] | None = None,
        posts: int = 1,
        poll_post: int = 1,
        created_at: str = "2024-11-01T15:00:00.000Z",
        private: bool = False,
        title: str = "Promote Matt Page to core developer",
    ) -> str:
        """A topic of ``posts`` posts, ``polls`` in post ``poll_post``; returns its URL."""
        first = self.template["post_stream"]["posts"][0]
        made = []
        for number in range(1, posts + 1):
            post = copy.deepcopy(first)
            post.pop("polls", None)
            post.update(
                id=next(self._ids),
                post_number=number,
                topic_id=topic_id,
                topic_slug=slug,
                created_at=created_at if number == 1 else "2024-11-02T09:00:00.000Z",
                cooked="<p>+1</p>" if number > 1 else first["cooked"],
            )
            made.append(post)
        self.topics[topic_id] = Topic(
            topic_id, slug, title, private, made, {poll_post: list(polls or [])}
        )
        return f"{self.url}/t/{slug}/{topic_id}"

    def redirect(self, path: str, location: str) -> None:
        """Answer ``path`` with a 301 to ``location``."""
        self.redirects[path] = location

    # ------------------------------------------------------------------ answers

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            self.requests.append(
                Seen(request.path, request.args.to_dict(flat=False), dict(request.headers))
            )
            response = self._answer(request)
        if self.delay:
            time.sleep(self.delay)
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response:
        if self.fail_with is not None:
            return Response("<html>Oops</html>", status=self.fail_with, mimetype="text/html")
        if request.path in self.redirects:
            return Response(status=301, headers={"Location": self.redirects[request.path]})
        reader = self._reader(request)
        if reader is False:
            return _error(403, INVALID_ACCESS, "invalid_access")
        if request.method == "POST":
            if request.path != "/posts.json":
                return _error(404, NOT_FOUND, "not_found")
            return self._reply(request, reader)
        if match := TOPIC.match(request.path):
            topic = self.topics.get(int(match["id"]))
            if topic is None:
                return _error(404, NOT_FOUND, "not_found")
            if topic.private and reader not in self.members:
                return _error(403, INVALID_ACCESS, "invalid_access")
            if match["slug"] != topic.slug:
                return Response(
                    status=301, headers={"Location": f"/t/{topic.slug}/{topic.id}.json"}
                )
            return _json(self._topic_document(topic, reader))
        if match := POSTS.match(request.path):
            topic = self.topics.get(int(match["id"]))
            if topic is None:
                return _error(404, NOT_FOUND, "not_found")
            if topic.private and reader not in self.members:
                return _error(403, INVALID_ACCESS, "invalid_access")
            wanted = {int(value) for value in request.args.getlist("post_ids[]")}
            posts = [self._post(topic, p, reader) for p in topic.posts if p["id"] in wanted]
            return _json({"post_stream": {"posts": posts}, "id": topic.id})
        return _error(404, NOT_FOUND, "not_found")

    def _reply(self, request: Request, writer: str | None) -> Response:
        """``POST /posts.json``: a reply in a topic, as Discourse's PostsController#create."""
        if writer is None or request.headers.get("Api-Key") in self.read_only:
            return _error(403, INVALID_ACCESS, "invalid_access")
        form = request.get_json(silent=True) if request.is_json else request.form.to_dict()
        form = form if isinstance(form, dict) else {}
        topic = self.topics.get(_int(form.get("topic_id")))
        if topic is None:
            return _error(404, NOT_FOUND, "not_found")
        if topic.private and writer not in self.members:
            return _error(403, INVALID_ACCESS, "invalid_access")
        raw = form.get("raw")
        if not isinstance(raw, str) or len(raw.strip()) < MIN_POST_LENGTH:
            return _json(
                {
                    "action": "create_post",
                    "errors": [f"Body is too short (minimum is {MIN_POST_LENGTH} characters)"],
                },
                422,
            )
        if len(raw) > MAX_POST_LENGTH:
            return _json(
                {
                    "action": "create_post",
                    "errors": [f"Body is too long (maximum is {MAX_POST_LENGTH} characters)"],
                },
                422,
            )
        post = copy.deepcopy(self.template["post_stream"]["posts"][0])
        post.pop("polls", None)
        post.update(
            id=next(self._ids),
            post_number=len(topic.posts) + 1,
            topic_id=topic.id,
            topic_slug=topic.slug,
            username=writer,
            created_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            raw=raw,
            cooked=f"<p>{escape(raw)}</p>",
        )
        topic.posts.append(post)
        return _json(post)

    def replies(self, topic_id: int) -> list[dict[str, Any]]:
        """The posts made through ``POST /posts.json`` in a topic, oldest first."""
        return [post for post in self.topics[topic_id].posts if "raw" in post]

    def _reader(self, request: Request) -> str | bool | None:
        """The username the request acts as, None when anonymous, False for a bad key."""
        key = request.headers.get("Api-Key")
        if key is None:
            return None
        username = self.api_keys.get(key)
        if username is None or request.headers.get("Api-Username", username) != username:
            return False
        return username

    def _topic_document(self, topic: Topic, reader: str | None) -> dict[str, Any]:
        document = copy.deepcopy(self.template)
        document.update(
            id=topic.id,
            slug=topic.slug,
            title=topic.title,
            fancy_title=topic.title,
            posts_count=len(topic.posts),
            highest_post_number=len(topic.posts),
        )
        document["post_stream"] = {
            "posts": [self._post(topic, post, reader) for post in topic.posts[:CHUNK_SIZE]],
            "stream": [post["id"] for post in topic.posts],
        }
        return document

    def _post(self, topic: Topic, post: dict[str, Any], reader: str | None) -> dict[str, Any]:
        shown = copy.deepcopy(post)
        polls = topic.polls.get(post["post_number"])
        if polls:
            staff = reader in self.staff
            shown["polls"] = [
                poll.serialize(staff=staff, now=datetime.now(UTC), poll_id=3117 + index)
                for index, poll in enumerate(polls)
            ]
        return shown


def _json(document: Any, status: int = 200) -> Response:
    return Response(json.dumps(document), status=status, mimetype="application/json")


def _error(status: int, message: str, kind: str) -> Response:
    return _json({"errors": [message], "error_type": kind}, status)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
