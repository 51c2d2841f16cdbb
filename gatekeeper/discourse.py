"""Reading a promotion vote from the Discourse forum: a topic or post, its poll, its counts.

The shapes read here are Discourse's own: ``GET /t/<slug>/<id>.json`` answers the topic with
``post_stream.posts`` (its first 20 posts) and ``post_stream.stream`` (every post's id, in
order); ``GET /t/<id>/posts.json?post_ids[]=…`` answers more of them. A post holding a poll
carries ``polls[]``, serialized by the poll plugin's ``PollSerializer``: ``name``, ``type``,
``status``, ``results``, ``close``, ``voters``, ``closed_at`` (forums since mid-2026) and
``options[]`` of ``id``, ``html`` and ``votes``. Where the reader may not see the results
yet (``results: on_close`` while open, ``on_vote`` before voting, ``staff_only``), Discourse
leaves ``votes`` out of every option.
"""

from __future__ import annotations

import dataclasses
import html
import ipaddress
import re
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from gatekeeper.config import Settings
from gatekeeper.mentorships import MentorshipError
from gatekeeper.votes import FetchedVote, Vote, make_vote

TOPIC_PATH = re.compile(
    r"^(?P<base>(?:/[^/]+)*?)/t/(?P<slug>[^/]+)/(?P<id>\d+)(?:/(?P<post>\d+))?/?$"
)
# Discourse answers /t/<id>/posts.json for about twenty ids at a time, as its own client asks.
CHUNK = 20
# A vote is in the first posts of its thread: past this many chunks the search stops, so a
# huge (or hostile) stream cannot keep the command fetching.
MAX_CHUNKS = 50
MAX_REDIRECTS = 3
TAG = re.compile(r"<[^>]*>")
FOR_OPTION = re.compile(r"^promote\b")
AGAINST_OPTION = re.compile(r"^(?:do not|don't|don\u2019t)\s+promote\b")


class ForumError(MentorshipError):
    """The vote could not be read from the forum; the message says why in one sentence."""


class ForumUnavailable(ForumError):
    """The forum did not answer, or not usefully: nothing about the link itself is wrong."""


@dataclasses.dataclass(frozen=True)
class TopicURL:
    """A forum link taken apart: where the forum is, which topic and (maybe) which post."""

    url: str
    origin: str  # scheme://host[:port]
    base: str  # a forum installed under a path (/forum), else ""
    slug: str
    topic_id: int
    post_number: int | None

    @property
    def topic_json(self) -> str:
        """The topic's JSON document."""
        return f"{self.origin}{self.base}/t/{self.slug}/{self.topic_id}.json"

    @property
    def posts_json(self) -> str:
        """More posts of the topic, by id."""
        return f"{self.origin}{self.base}/t/{self.topic_id}/posts.json"


def parse_topic_url(url: str) -> TopicURL:
    """``https://HOST/t/<slug>/<topic-id>[/<post-number>]``, or a refusal saying what it wants."""
    cleaned = url.strip()
    parts = urlsplit(cleaned)
    match = TOPIC_PATH.match(parts.path.removesuffix(".json"))
    if parts.scheme not in ("http", "https") or not parts.hostname or match is None:
        raise ForumError(
            f"{cleaned!r} is not a link to a forum topic or post"
            " (https://HOST/t/<slug>/<topic-id>[/<post-number>])"
        )
    post = match["post"]
    return TopicURL(
        url=cleaned,
        origin=f"{parts.scheme}://{parts.netloc}",
        base=match["base"],
        slug=match["slug"],
        topic_id=int(match["id"]),
        post_number=int(post) if post else None,
    )


def fetch_vote(
    url: str,
    *,
    settings: Settings,
    now: datetime,
    poll_name: str | None = None,
    for_option: str | None = None,
    against_option: str | None = None,
) -> FetchedVote:
    """Read the promotion vote from the poll in the forum post (the topic's first by default)."""
    where = parse_topic_url(url)
    check_forum_host(where.origin, settings)
    client = _Client(where, settings)
    post = _find_post(client, where)
    poll = _choose_poll(post, poll_name=poll_name, where=where)
    closed_at, closed_unknown = _closing(poll, now=now)
    if closed_at is None and closed_unknown is None:
        raise ForumError(_still_open(poll))
    votes_for, votes_against = _count(poll, for_option=for_option, against_option=against_option)
    opened_at = _moment(post.get("created_at"), what="the post's created_at")
    return FetchedVote(
        url=where.url,
        poll=str(poll.get("name") or "poll"),
        votes_for=votes_for,
        votes_against=votes_against,
        opened_at=opened_at,
        closed_at=closed_at,
        closed_unknown=closed_unknown,
        fetched_at=now,
    )


def promotion_vote(
    *,
    url: str | None,
    votes_for: int | None,
    votes_against: int | None,
    opened: date | None,
    closed: date | None,
    settings: Settings,
    now: datetime,
    poll_name: str | None = None,
    for_option: str | None = None,
    against_option: str | None = None,
    refetch: bool = False,
) -> tuple[Vote | None, FetchedVote | None]:
    """The promotion vote from the forum and what was typed over it, and what the forum said.

    The forum is read when a link is given and part of the record is not (or ``refetch``
    asks, as the dashboard does after its fetch); a record typed in full needs no forum.
    """
    typed = (votes_for, votes_against, opened, closed)
    choosing = any(value is not None for value in (poll_name, for_option, against_option))
    if choosing and not url:
        raise MentorshipError("choosing the poll or its options needs the vote's URL")
    fetched = None
    if url and (refetch or choosing or any(value is None for value in typed)):
        fetched = fetch_vote(
            url,
            settings=settings,
            now=now,
            poll_name=poll_name,
            for_option=for_option,
            against_option=against_option,
        )
    vote = make_vote(
        url=url,
        votes_for=votes_for,
        votes_against=votes_against,
        opened=opened,
        closed=closed,
        fetched=fetched,
    )
    return vote, fetched


# ---------------------------------------------------------------- which hosts


def allowed_forums(settings: Settings) -> list[str]:
    """The forums a vote link may name: DISCOURSE_URL's host, then GATEKEEPER_FORUM_HOSTS."""
    configured = urlsplit(settings.discourse_url).netloc.lower()
    return [configured, *sorted(settings.forum_hosts - {configured})]


def _host_and_port(netloc: str, scheme: str) -> tuple[str, int | None]:
    parts = urlsplit(f"{scheme}://{netloc}")
    try:
        port = parts.port
    except ValueError:
        return netloc, -1  # an impossible port: names nothing allowed
    return (parts.hostname or "").lower(), port


def check_forum_host(origin: str, settings: Settings) -> None:
    """Refuse a link to any host but the configured forums, before a request is made: a
    maintainer's pasted link must not make the server GET an address of its choosing.
    A configured entry without a port allows the scheme's default port only."""
    parts = urlsplit(origin)
    host, port = _host_and_port(parts.netloc, parts.scheme)
    port = port or (443 if parts.scheme == "https" else 80)
    for entry in allowed_forums(settings):
        allowed_host, allowed_port = _host_and_port(entry, parts.scheme)
        if host == allowed_host and port in ((allowed_port,) if allowed_port else (80, 443)):
            return
    allowed = ", ".join(allowed_forums(settings))
    raise ForumError(
        f"votes are read only from {allowed} (DISCOURSE_URL, and GATEKEEPER_FORUM_HOSTS for"
        f" others), not from {parts.netloc}; link the vote on that forum"
    )


def check_public_address(origin: str) -> None:
    """Refuse a host name that resolves to a loopback, private, link-local (the cloud
    metadata service's 169.254.169.254) or otherwise non-public address. A forum named by
    an address (DISCOURSE_URL=http://10.0.0.5) is the operator's explicit choice and kept."""
    parts = urlsplit(origin)
    host = parts.hostname or ""
    if _address(host) is not None:
        return
    try:
        found = socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise ForumUnavailable(f"the forum at {origin} cannot be reached") from None
    for *_, sockaddr in found:
        address = _address(str(sockaddr[0]))
        if address is None or not address.is_global or address.is_multicast:
            raise ForumError(
                f"{host} resolves to {sockaddr[0]}, which is not a public address; votes are"
                " not read from this machine or its network (give such a forum by its address"
                " in DISCOURSE_URL)"
            )


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%")[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# ---------------------------------------------------------------- HTTP


class _Client:
    """GETs of one forum's JSON, with the API key sent to that forum only."""

    def __init__(self, where: TopicURL, settings: Settings) -> None:
        self.where, self.settings = where, settings
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": "Gatekeeper"})
        # The key opens the core team's private categories: it goes to the forum it belongs
        # to, never to whatever host a pasted link names.
        self.authenticated = bool(settings.discourse_api_key) and _same_origin(
            where.origin, settings.discourse_url
        )
        if self.authenticated:
            assert settings.discourse_api_key is not None
            self.session.headers["Api-Key"] = settings.discourse_api_key
            if settings.discourse_api_username:
                self.session.headers["Api-Username"] = settings.discourse_api_username

    def get(self, url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON object at ``url``; every failure is a ForumError of one sentence."""
        for _ in range(MAX_REDIRECTS + 1):
            check_public_address(self.where.origin)  # each time: DNS may answer otherwise
            try:
                response = self.session.get(
                    url,
                    params=params,
                    timeout=self.settings.discourse_timeout,
                    allow_redirects=False,  # followed by hand, so the key stays on its forum
                )
            except requests.Timeout:
                raise ForumUnavailable(
                    f"the forum at {self.where.origin} did not answer within"
                    f" {self.settings.discourse_timeout:g} seconds"
                ) from None
            except requests.RequestException:
                raise ForumUnavailable(
                    f"the forum at {self.where.origin} cannot be reached"
                ) from None
            if response.is_redirect:
                target = urljoin(url, response.headers.get("Location", ""))
                if not _same_origin(target, self.where.origin):
                    raise ForumError(
                        f"the forum sent the request on to another site ({urlsplit(target).netloc});"
                        " link the topic on the forum itself"
                    )
                url, params = target, None
                continue
            return self._document(response)
        raise ForumError(f"the forum at {self.where.origin} redirected too many times")

    def _document(self, response: requests.Response) -> dict[str, Any]:
        status = response.status_code
        if status == 403:
            raise ForumError(self._refused())
        if status == 404:
            raise ForumError(
                f"the forum has no topic {self.where.topic_id} that"
                f" {self._reader()} can see (404); check the link"
                + (
                    ""
                    if self.authenticated
                    else ", or set DISCOURSE_API_KEY for a private category"
                )
            )
        if status == 429:
            raise ForumUnavailable(
                "the forum is rate-limiting requests (429); try again in a minute"
            )
        if status >= 500:
            raise ForumUnavailable(f"the forum answered {status} for topic {self.where.topic_id}")
        if status != 200:
            raise ForumError(f"the forum answered {status} for topic {self.where.topic_id}")
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ForumError(
                f"the forum at {self.where.origin} did not answer with a topic's JSON;"
                " is it a Discourse forum?"
            )
        return document

    def _reader(self) -> str:
        if self.authenticated and self.settings.discourse_api_username:
            return f"DISCOURSE_API_USERNAME ({self.settings.discourse_api_username})"
        return "the API key" if self.authenticated else "an anonymous reader"

    def _refused(self) -> str:
        if not self.settings.discourse_api_key:
            return (
                f"the forum refused to show topic {self.where.topic_id} (403): it is in a private"
                " category; set DISCOURSE_API_KEY and DISCOURSE_API_USERNAME to a member's key"
            )
        if not self.authenticated:
            return (
                f"the forum refused to show topic {self.where.topic_id} (403), and the API key"
                f" is only sent to DISCOURSE_URL ({self.settings.discourse_url})"
            )
        return (
            f"the forum refused to show topic {self.where.topic_id} (403) to {self._reader()}:"
            " the key may be wrong or revoked, or that user may not read the category"
        )


def _same_origin(url: str, other: str) -> bool:
    a, b = urlsplit(url), urlsplit(other)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


# ---------------------------------------------------------------- the post and its poll


def _find_post(client: _Client, where: TopicURL) -> dict[str, Any]:
    """The linked post (the first without a number), loading more of the stream if needed."""
    number = where.post_number or 1
    topic = client.get(where.topic_json)
    stream = topic.get("post_stream")
    if not isinstance(stream, dict) or not isinstance(stream.get("posts"), list):
        raise ForumError(f"the forum's answer for topic {where.topic_id} holds no posts")
    for post in _posts_until(client, where, stream, number):
        if post.get("post_number") == number:
            return post
    raise ForumError(f"topic {where.topic_id} has no post {number}; it may have been deleted")


def _posts_until(
    client: _Client, where: TopicURL, stream: dict[str, Any], number: int
) -> Iterator[dict[str, Any]]:
    """The topic's posts in order, fetched a chunk at a time until past post ``number``."""
    loaded = [post for post in stream["posts"] if isinstance(post, dict)]
    yield from loaded
    seen = {post.get("id") for post in loaded}
    rest = [pid for pid in stream.get("stream") or [] if isinstance(pid, int) and pid not in seen]
    for chunk, start in enumerate(range(0, len(rest), CHUNK)):
        if any(_number(post) >= number for post in loaded):
            return
        if chunk == MAX_CHUNKS:
            raise ForumError(
                f"post {number} is more than {CHUNK * (MAX_CHUNKS + 1)} posts into topic"
                f" {where.topic_id}; link a topic whose vote is nearer its start"
            )
        more = client.get(where.posts_json, params={"post_ids[]": rest[start : start + CHUNK]})
        posts = (more.get("post_stream") or {}).get("posts") or []
        loaded = [post for post in posts if isinstance(post, dict)]
        yield from loaded


def _number(post: dict[str, Any]) -> int:
    value = post.get("post_number")
    return value if isinstance(value, int) else 0


def _choose_poll(post: dict[str, Any], *, poll_name: str | None, where: TopicURL) -> dict[str, Any]:
    polls = [poll for poll in post.get("polls") or [] if isinstance(poll, dict)]
    which = f"post {_number(post)} of topic {where.topic_id}"
    if not polls:
        hint = "" if where.post_number else "; link the post that holds it (…/t/<slug>/<id>/<post>)"
        raise ForumError(f"{which} holds no poll{hint}")
    names = [str(poll.get("name")) for poll in polls]
    if poll_name is not None:
        for poll in polls:
            if poll.get("name") == poll_name:
                return poll
        raise ForumError(f"{which} has no poll named {poll_name!r} (its polls: {', '.join(names)})")
    if len(polls) > 1:
        raise ForumError(
            f"{which} holds {len(polls)} polls ({', '.join(names)}); choose one with --vote-poll NAME"
        )
    return polls[0]


def _closing(poll: dict[str, Any], *, now: datetime) -> tuple[datetime | None, str | None]:
    """When the vote closed, or (None, why it is unknown) for a closed poll that does not say.

    A poll closes at its ``close`` time, or earlier by hand; forums since mid-2026 record
    the hand's time as ``closed_at``. A poll closed by hand on an older forum, with no close
    time already past, says nothing of when: rather than guess (the time of the fetch would
    stretch the vote past PEP 13's week when it may have run a day), the date is asked for.
    """
    close = _moment(poll["close"], what="the poll's close") if poll.get("close") else None
    closed_at = (
        _moment(poll["closed_at"], what="the poll's closed_at") if poll.get("closed_at") else None
    )
    if poll.get("status") == "closed":
        if closed_at is not None:
            return (min(closed_at, close) if close is not None else closed_at), None
        if close is not None and close <= now:
            return close, None
        return None, "the poll was closed by hand and the forum does not say when"
    if close is not None and close <= now:
        return close, None  # Discourse counts a poll past its close time as closed
    return None, None


def _still_open(poll: dict[str, Any]) -> str:
    close = poll.get("close")
    hidden = " and its results are hidden until then" if poll.get("results") == "on_close" else ""
    if close:
        when = f"{_moment(close, what='the poll close'):%Y-%m-%d %H:%M} UTC"
        return (
            f"the vote closes on {when}{hidden}; promote then, or give the counts"
            " (--votes-for, --votes-against) with --override-reason"
        )
    return (
        "the vote is still open, with no close time set; promote once it is closed, or give the"
        " counts (--votes-for, --votes-against) with --override-reason"
    )


def option_text(option: dict[str, Any]) -> str:
    """An option as a reader sees it: its cooked HTML without tags, entities or extra blanks."""
    return " ".join(html.unescape(TAG.sub(" ", str(option.get("html") or ""))).split())


def _count(
    poll: dict[str, Any], *, for_option: str | None, against_option: str | None
) -> tuple[int, int]:
    options = [option for option in poll.get("options") or [] if isinstance(option, dict)]
    texts = [option_text(option) for option in options]
    in_favour = _pick(options, texts, for_option, FOR_OPTION)
    against = _pick(options, texts, against_option, AGAINST_OPTION)
    if in_favour is None or against is None or in_favour is against:
        seen = ", ".join(f'"{text}"' for text in texts) or "none"
        raise ForumError(
            f"the poll's options were not recognised as for and against (seen: {seen});"
            " name them with --vote-for-option and --vote-against-option"
        )
    counts = (in_favour.get("votes"), against.get("votes"))
    if not all(isinstance(count, int) for count in counts):
        if poll.get("results") == "staff_only":
            raise ForumError(
                "the poll shows its results to staff only; set DISCOURSE_API_USERNAME to a staff"
                " account, or give the counts with --votes-for and --votes-against"
            )
        raise ForumError(
            "the forum did not show the poll's results to this reader; give the counts with"
            " --votes-for and --votes-against"
        )
    return counts  # type: ignore[return-value]


def _pick(
    options: list[dict[str, Any]], texts: list[str], named: str | None, pattern: re.Pattern[str]
) -> dict[str, Any] | None:
    """The one option named (case-insensitive), or the one the pattern recognises."""
    if named is not None:
        wanted = " ".join(named.split()).casefold()
        matches = [o for o, text in zip(options, texts, strict=True) if text.casefold() == wanted]
    else:
        matches = [
            o for o, text in zip(options, texts, strict=True) if pattern.match(text.casefold())
        ]
    return matches[0] if len(matches) == 1 else None


def _moment(value: Any, *, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ForumError(f"the forum gave {what} as {value!r}, which is not a time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
