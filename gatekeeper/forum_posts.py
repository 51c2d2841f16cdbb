"""The month's report goes back to where the vote was: a reply in the promotion's forum topic.

The reply is Discourse's ``POST /posts.json`` with ``topic_id`` and ``raw``, sent with the forum
key Gatekeeper already has (``DISCOURSE_API_KEY`` and ``DISCOURSE_API_USERNAME``) and only to
``DISCOURSE_URL``: a vote typed by hand, or read from another forum, has no thread to reply to.
What is posted is the report as someone signed out reads it, so a private repository's pull
requests stay redacted.

Once per mentorship: a ``ReportPost`` row is claimed in a unit of work of its own before the
forum is called, so two maintainers pressing the button at once post one reply, and a second
post is refused unless asked for again. When the forum's answer never comes (a timeout, a 5xx),
the reply may still be in the thread: the claim is kept as *uncertain*, and posting again waits
for someone to look and ask again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import requests
from sqlmodel import Session

from gatekeeper import db, queries
from gatekeeper import report as reports
from gatekeeper.config import Settings
from gatekeeper.discourse import ForumError, ForumUnavailable, TopicURL, parse_topic_url
from gatekeeper.mentorships import MentorshipError, latest_mentorship, record
from gatekeeper.models import Mentorship, ReportPost

# A claim older than this whose post never finished belongs to a process that died mid-way.
UNDER_WAY = timedelta(minutes=2)


def public_markdown(session: Session, *, mentee: str, base_url: str, now: datetime) -> str:
    """The report's Markdown as someone signed out reads it: what a post puts in the thread."""
    found = reports.build(session, mentee=mentee, now=now, base_url=base_url, viewer=None)
    return reports.markdown(found)


def thread_of(mentorship: Mentorship, settings: Settings) -> TopicURL:
    """The forum topic the vote was read from, or a refusal saying why there is none."""
    mentee = mentorship.mentee_display
    if not mentorship.vote_url or mentorship.vote_source != "discourse":
        raise MentorshipError(
            f"{mentee}'s vote was not imported from the forum, so there is no thread to reply"
            f" to; paste the report by hand (gatekeeper report {mentee} --markdown)."
        )
    topic = parse_topic_url(mentorship.vote_url)
    forum = settings.discourse_url.rstrip("/")
    if f"{topic.origin}{topic.base}".lower() != forum.lower():
        raise MentorshipError(
            f"{mentee}'s vote thread is on {topic.origin}, not on the configured forum"
            f" ({forum}); Gatekeeper posts only to DISCOURSE_URL."
        )
    if not (settings.discourse_api_key and settings.discourse_api_username):
        raise MentorshipError(
            "posting needs DISCOURSE_API_KEY and DISCOURSE_API_USERNAME: a key that may reply"
            " in the vote's topic, and the forum user it posts as."
        )
    return topic


def post_report(
    session: Session,
    *,
    mentee: str,
    actor: str,
    settings: Settings,
    now: datetime,
    again: bool = False,
) -> reports.ForumPost:
    """Post ``mentee``'s report in the vote's topic, once (``again`` posts a second time)."""
    mentorship = latest_mentorship(session, mentee=mentee)
    if mentorship is None:
        raise MentorshipError(f"{mentee} has no mentorship.")
    topic = thread_of(mentorship, settings)
    raw = public_markdown(session, mentee=mentee, base_url=settings.base_url, now=now)
    assert mentorship.id is not None
    mentorship_id = mentorship.id
    claim_id = db.writing(
        session,
        lambda s: _claim(s, mentorship_id=mentorship_id, actor=actor, again=again, now=now),
    )
    try:
        url = _send(topic, raw, settings)
    except _Uncertain as error:
        db.writing(session, lambda s: _mark_uncertain(s, claim_id))
        raise ForumUnavailable(str(error)) from None
    except ForumError:
        db.writing(session, lambda s: _release(s, claim_id))
        raise
    return db.writing(session, lambda s: _record(s, claim_id, url=url, now=now))


# ---------------------------------------------------------------- the claim


def _claim(session: Session, *, mentorship_id: int, actor: str, again: bool, now: datetime) -> int:
    latest = queries.latest_report_post(session, mentorship_id=mentorship_id)
    if latest is not None:
        _refuse_if_done(latest, again=again, now=now)
    claim = ReportPost(
        mentorship_id=mentorship_id,
        ordinal=latest.ordinal + 1 if latest else 1,
        claimed_by=actor,
        claimed_at=now,
    )
    session.add(claim)
    # A concurrent claim of the same ordinal fails here; ``db.writing`` runs this again and
    # the second look sees the first claim.
    session.flush()
    assert claim.id is not None
    return claim.id


def _refuse_if_done(latest: ReportPost, *, again: bool, now: datetime) -> None:
    if latest.url is not None:
        if not again:
            raise MentorshipError(
                f"the report was posted already, by {latest.claimed_by}: {latest.url}; to post"
                " it a second time, ask again (--again, or the form's 'post again' box)."
            )
        return
    if latest.uncertain or latest.claimed_at < now - UNDER_WAY:
        if not again:
            raise MentorshipError(
                f"a post started by {latest.claimed_by} at {latest.claimed_at:%Y-%m-%d %H:%M} UTC"
                " got no answer from the forum and may be in the thread; look there first,"
                " then ask again (--again) if it is not."
            )
        return
    raise MentorshipError(
        f"{latest.claimed_by} is posting the report right now; it will be shown here when the"
        " forum answers."
    )


def _release(session: Session, claim_id: int) -> None:
    claim = session.get(ReportPost, claim_id)
    if claim is not None:
        session.delete(claim)


def _mark_uncertain(session: Session, claim_id: int) -> None:
    claim = session.get(ReportPost, claim_id)
    if claim is not None:
        claim.uncertain = True


def _record(session: Session, claim_id: int, *, url: str, now: datetime) -> reports.ForumPost:
    claim = session.get(ReportPost, claim_id)
    assert claim is not None, "a claim is only released when its post failed"
    claim.url, claim.posted_at, claim.uncertain = url, now, False
    mentorship = session.get(Mentorship, claim.mentorship_id)
    record(
        session,
        mentorship=mentorship,
        actor=claim.claimed_by,
        kind="report posted",
        detail=f"to the vote's thread: {url}",
        at=now,
    )
    return reports.ForumPost(url=url, by=claim.claimed_by, at=now)


# ---------------------------------------------------------------- the forum


class _Uncertain(Exception):
    """The forum may or may not have posted the reply: its answer never came."""


def _send(topic: TopicURL, raw: str, settings: Settings) -> str:
    """POST the reply; the new post's address, or a ForumError of one sentence."""
    forum = settings.discourse_url.rstrip("/")
    assert settings.discourse_api_key and settings.discourse_api_username
    try:
        response = requests.post(
            f"{forum}/posts.json",
            json={"topic_id": topic.topic_id, "raw": raw},
            headers={
                "Accept": "application/json",
                "User-Agent": "Gatekeeper",
                "Api-Key": settings.discourse_api_key,
                "Api-Username": settings.discourse_api_username,
            },
            timeout=settings.discourse_timeout,
            allow_redirects=False,  # the key goes to DISCOURSE_URL and nowhere else
        )
    except requests.Timeout:
        raise _Uncertain(
            f"the forum at {forum} did not answer within {settings.discourse_timeout:g} seconds;"
            " the reply may still appear in the thread"
        ) from None
    except requests.RequestException:
        raise ForumUnavailable(f"the forum at {forum} cannot be reached") from None
    if response.status_code >= 500:
        raise _Uncertain(
            f"the forum at {forum} failed ({response.status_code}) while posting;"
            " the reply may still appear in the thread"
        )
    if response.status_code != 200:
        raise ForumError(_refusal(response, settings))
    return _address(forum, topic, _json(response))


def _refusal(response: requests.Response, settings: Settings) -> str:
    status = response.status_code
    said = "; ".join(str(e) for e in (_json(response).get("errors") or []))[:300]
    if status in (401, 403):
        return (
            f"the forum refused the post ({status}): the key for"
            f" {settings.discourse_api_username} must be allowed to reply in the vote's topic"
            " (a user key, or an admin key with Api-Username, with the posts 'write' scope)"
        )
    if status == 429:
        return "the forum is limiting requests (429); try again in a minute"
    if status in (301, 302, 303, 307, 308):
        return f"the forum redirected the post ({status}); DISCOURSE_URL must be its address"
    return f"the forum refused the post ({status}){': ' + said if said else ''}"


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _address(forum: str, topic: TopicURL, post: dict[str, Any]) -> str:
    number, slug = post.get("post_number"), post.get("topic_slug") or topic.slug
    if not isinstance(number, int):
        # It answered 200: the reply is probably there, under an address it did not give.
        raise _Uncertain("the forum's answer to the post named no post_number")
    return f"{forum}/t/{slug}/{topic.topic_id}/{number}"
