"""The promotion vote read from the forum: against a fake Discourse over real HTTP on loopback.

``discourse.fetch_vote`` for every shape of poll and every failure; then ``gatekeeper
promote --vote-url`` and the dashboard's "Fetch from the vote thread", on SQLite and
PostgreSQL, with the record's source in ``status --json`` and ``/api``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from click.testing import Result
from fakediscourse import FakeDiscourse, Poll
from flask import Flask
from forum_support import KEY, STAFF, STAFF_KEY, USER
from sqlmodel import Session, SQLModel, col, select

from gatekeeper import discourse, votes
from gatekeeper import mentorships as lifecycle
from gatekeeper.cli import cli
from gatekeeper.config import ConfigError, Settings
from gatekeeper.models import AuditEvent, utcnow

OPEN_UNTIL = "2099-01-08T15:00:00.000Z"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# What the app reads from the environment: none of the developer's own reaches a test.
ENV_PREFIXES = ("GITHUB_", "GATEKEEPER_", "DISCOURSE_", "DATABASE_URL", "SECRET_KEY")


def settings_for(forum: FakeDiscourse, **overrides) -> Settings:
    """Settings pointing at the fake forum with the service's key, as DISCOURSE_* would."""
    values = {
        "database_url": "sqlite://",
        "discourse_url": forum.url,
        "discourse_api_key": KEY,
        "discourse_api_username": USER,
        "discourse_timeout": 5.0,
        **overrides,
    }
    return Settings(**values)


def fetch(forum: FakeDiscourse, url: str, **options) -> votes.FetchedVote:
    settings = options.pop("settings", None) or settings_for(forum)
    return discourse.fetch_vote(url, settings=settings, now=utcnow(), **options)


def refusal(forum: FakeDiscourse, url: str, **options) -> str:
    with pytest.raises(discourse.ForumError) as caught:
        fetch(forum, url, **options)
    message = str(caught.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- settings


def test_the_forum_settings_come_from_the_environment_and_the_key_is_never_shown(tmp_path):
    """DISCOURSE_URL (trailing slash dropped), DISCOURSE_API_KEY and _USERNAME; the key is
    kept out of the settings' repr, so no log line or traceback can print it."""
    settings = Settings.from_env(
        {
            "DISCOURSE_URL": "https://forum.example.org/",
            "DISCOURSE_API_KEY": KEY,
            "DISCOURSE_API_USERNAME": USER,
        },
        instance_path=str(tmp_path),
    )
    assert settings.discourse_url == "https://forum.example.org"
    assert (settings.discourse_api_key, settings.discourse_api_username) == (KEY, USER)
    assert KEY not in repr(settings)
    default = Settings.from_env({}, instance_path=str(tmp_path))
    assert (default.discourse_url, default.discourse_api_key) == (
        "https://discuss.python.org",
        None,
    )


# ---------------------------------------------------------------- reading the poll


def test_a_closed_poll_gives_the_counts_and_the_dates(forum):
    """Opened is the post's created_at, closed the poll's close time; counts by option text."""
    url = forum.add_topic(12345, polls=[Poll()])
    vote = fetch(forum, url)
    assert (vote.votes_for, vote.votes_against) == (12, 1)
    assert vote.opened_at == datetime(2024, 11, 1, 15, 0, tzinfo=UTC)
    assert vote.closed_at == datetime(2024, 11, 8, 15, 0, tzinfo=UTC)
    assert (vote.url, vote.poll, vote.closed_unknown) == (url, "poll", None)


def test_the_fixture_is_read_as_discourse_serves_it(forum):
    """The committed real-shaped topic document itself parses: 38 for, 1 against, a week."""
    document = json.loads(Path(__file__).with_name("fixtures").joinpath(
        "discourse", "topic_promotion_vote.json"
    ).read_text())  # fmt: skip
    poll = document["post_stream"]["posts"][0]["polls"][0]
    forum.add_topic(12345, polls=[Poll(options=[(o["html"], o["votes"]) for o in poll["options"]])])
    vote = fetch(forum, f"{forum.url}/t/{document['slug']}/{document['id']}")
    assert (vote.votes_for, vote.votes_against) == (38, 1)
    assert (vote.closed_at - vote.opened_at).days == 7


def test_a_poll_closed_by_hand_closes_when_it_was_closed(forum):
    """closed_at before the close time: the vote ended when it was closed."""
    url = forum.add_topic(
        7, polls=[Poll(close="2024-11-10T00:00:00.000Z", closed_at="2024-11-09T08:30:00.000Z")]
    )
    assert fetch(forum, url).closed_at == datetime(2024, 11, 9, 8, 30, tzinfo=UTC)


def test_a_poll_closed_by_hand_on_an_older_forum_leaves_the_close_unknown(forum):
    """Closed, no closed_at and a close time still ahead: the date is asked for, not guessed."""
    url = forum.add_topic(7, polls=[Poll(status="closed", close=OPEN_UNTIL)])
    vote = fetch(forum, url)
    assert vote.closed_at is None
    assert vote.closed_unknown == "the poll was closed by hand and the forum does not say when"
    no_close = forum.add_topic(8, polls=[Poll(status="closed", close=None)])
    assert fetch(forum, no_close).closed_at is None


def test_a_poll_still_marked_open_past_its_close_time_counts_as_closed(forum):
    """Discourse's is_closed?: past close is closed, and it shows the results."""
    url = forum.add_topic(7, polls=[Poll(status="open", close="2024-11-08T15:00:00.000Z")])
    vote = fetch(forum, url)
    assert (vote.votes_for, vote.closed_at) == (12, datetime(2024, 11, 8, 15, tzinfo=UTC))


def test_hidden_results_while_open_are_refused_with_the_close_date(forum):
    """results: on_close while open: Discourse omits every option's votes; the refusal says when."""
    url = forum.add_topic(7, polls=[Poll(status="open", close=OPEN_UNTIL)])
    served = requests.get(f"{url}.json", headers={"Api-Key": KEY}, timeout=5).json()
    options = served["post_stream"]["posts"][0]["polls"][0]["options"]
    assert options and all("votes" not in option for option in options)
    assert refusal(forum, url) == (
        "the vote closes on 2099-01-08 15:00 UTC and its results are hidden until then;"
        " promote then, or give the counts (--votes-for, --votes-against) with --override-reason"
    )


def test_an_open_poll_without_a_close_time_is_refused(forum):
    """Open with results always shown is still not a finished vote."""
    url = forum.add_topic(7, polls=[Poll(status="open", close=None, results="always")])
    assert refusal(forum, url).startswith("the vote is still open, with no close time set;")


def test_staff_only_results_need_a_staff_account(forum):
    """A staff_only poll shows no counts to a member; a staff user's key reads them."""
    url = forum.add_topic(7, polls=[Poll(results="staff_only")])
    assert "shows its results to staff only" in refusal(forum, url)
    staff = settings_for(forum, discourse_api_key=STAFF_KEY, discourse_api_username=STAFF)
    assert fetch(forum, url, settings=staff).votes_for == 12


def test_several_polls_need_a_name(forum):
    """Two polls: refused naming both; --vote-poll chooses one; an unknown name is refused."""
    other = Poll(name="second", options=[("Promote Matt Page", 3), ("Do not promote", 2)])
    url = forum.add_topic(7, polls=[Poll(), other])
    assert refusal(forum, url) == (
        "post 1 of topic 7 holds 2 polls (poll, second); choose one with --vote-poll NAME"
    )
    assert fetch(forum, url, poll_name="second").votes_for == 3
    assert refusal(forum, url, poll_name="third") == (
        "post 1 of topic 7 has no poll named 'third' (its polls: poll, second)"
    )


def test_options_are_recognised_by_text_without_html_or_case(forum):
    """Cooked HTML, entities and case do not hide "Promote …" / "Don't promote …"."""
    options = [("<p>PROMOTE <strong>Matt</strong> Page</p>", 9), ("Don&#39;t promote", 2)]
    url = forum.add_topic(7, polls=[Poll(options=options)])
    vote = fetch(forum, url)
    assert (vote.votes_for, vote.votes_against) == (9, 2)


def test_unknown_options_are_listed_and_can_be_named(forum):
    """Yes/No/Abstain: refused listing what was seen; named options are then counted."""
    url = forum.add_topic(7, polls=[Poll(options=[("Yes", 20), ("No", 4), ("Abstain", 3)])])
    assert refusal(forum, url) == (
        'the poll\'s options were not recognised as for and against (seen: "Yes", "No",'
        ' "Abstain"); name them with --vote-for-option and --vote-against-option'
    )
    vote = fetch(forum, url, for_option=" yes", against_option="NO")
    assert (vote.votes_for, vote.votes_against) == (20, 4)


def test_a_post_without_a_poll_is_refused(forum):
    """The topic's first post holds no poll: refused, with a hint to link the post that does."""
    url = forum.add_topic(7, polls=[], posts=3)
    assert refusal(forum, url).startswith("post 1 of topic 7 holds no poll; link the post")
    assert refusal(forum, f"{url}/2") == "post 2 of topic 7 holds no poll"


def test_a_post_past_the_first_page_is_fetched_from_the_stream(forum):
    """Post 44 of 45: the topic's 20 posts, then /t/<id>/posts.json by id until it is found."""
    url = forum.add_topic(9, polls=[Poll()], posts=45, poll_post=44)
    vote = fetch(forum, f"{url}/44")
    assert vote.opened_at == datetime(2024, 11, 2, 9, 0, tzinfo=UTC)  # post 44's created_at
    paths = [seen.path for seen in forum.requests]
    assert paths == [
        "/t/promote-matt-page-to-core-developer/9.json",
        "/t/9/posts.json",
        "/t/9/posts.json",
    ]
    assert len(forum.requests[1].query["post_ids[]"]) == 20
    assert "/46" not in refusal(forum, f"{url}/46") and "has no post 46" in refusal(
        forum, f"{url}/46"
    )


def test_the_search_for_a_post_stops_after_a_bounded_number_of_requests(forum, monkeypatch):
    """A post far into a long stream: refused after MAX_CHUNKS more pages, not fetched forever."""
    monkeypatch.setattr(discourse, "MAX_CHUNKS", 2)
    url = forum.add_topic(9, polls=[Poll()], posts=120, poll_post=110)
    assert refusal(forum, f"{url}/110") == (
        "post 110 is more than 60 posts into topic 9; link a topic whose vote is nearer its start"
    )
    assert len(forum.requests) == 3  # the topic and two more chunks


def test_a_wrong_slug_follows_the_forums_redirect(forum):
    """Discourse answers a renamed topic's old slug with a 301 on the same forum: followed."""
    url = forum.add_topic(7, "promote-matt-page", polls=[Poll()])
    assert fetch(forum, url.replace("promote-matt-page", "old-title")).votes_for == 12


# ---------------------------------------------------------------- the forum's door


def test_the_key_and_username_are_sent_to_the_configured_forum(forum):
    """Api-Key and Api-Username reach the forum, with Accept: application/json."""
    fetch(forum, forum.add_topic(7, polls=[Poll()]))
    [seen] = forum.requests
    assert seen.headers["Api-Key"] == KEY
    assert seen.headers["Api-Username"] == USER
    assert seen.headers["Accept"] == "application/json"


def netloc(url: str) -> str:
    return url.split("//", 1)[1].split("/", 1)[0]


def test_the_key_is_never_sent_to_another_host(forum):
    """A link to another forum the operator lists (GATEKEEPER_FORUM_HOSTS) is read
    anonymously: the key stays with DISCOURSE_URL."""
    with FakeDiscourse() as elsewhere:
        url = elsewhere.add_topic(7, polls=[Poll()])
        listed = settings_for(forum, forum_hosts=frozenset({netloc(elsewhere.url)}))
        assert fetch(forum, url, settings=listed).votes_for == 12
        assert all("Api-Key" not in seen.headers for seen in elsewhere.requests)
        assert all("Api-Username" not in seen.headers for seen in elsewhere.requests)


def test_a_redirect_to_another_host_is_not_followed(forum):
    """The forum sending the request elsewhere is refused before the key could follow it."""
    with FakeDiscourse() as elsewhere:
        forum.redirect("/t/moved/7.json", f"{elsewhere.url}/t/moved/7.json")
        message = refusal(forum, f"{forum.url}/t/moved/7")
        assert message.startswith("the forum sent the request on to another site")
        assert elsewhere.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/t/latest/1",  # the cloud metadata service
        "http://10.0.0.7/t/admin/1",
        "http://[::1]:8080/t/x/1",
        "https://discuss.python.org.evil.example/t/x/1",
        "https://discuss.python.org:8443/t/x/1",
        "http://localhost/t/x/1",
    ],
)
def test_a_link_to_a_host_not_configured_is_refused_naming_the_allowed_forum(url):
    """SSRF: a pasted link naming any other host (an internal address, the metadata service,
    a look-alike name, another port) is refused before any request, naming the forum read."""
    settings = Settings(database_url="sqlite://")
    with pytest.raises(discourse.ForumError) as caught:
        discourse.fetch_vote(url, settings=settings, now=utcnow())
    assert str(caught.value) == (
        "votes are read only from discuss.python.org (DISCOURSE_URL, and"
        f" GATEKEEPER_FORUM_HOSTS for others), not from {netloc(url)}; link the vote on that forum"
    )


def test_another_forum_on_this_machine_is_refused_unless_listed(forum):
    """A second server on loopback, not configured, gets no request; listed, it is read."""
    with FakeDiscourse() as elsewhere:
        url = elsewhere.add_topic(7, polls=[Poll()])
        message = refusal(forum, url)
        assert message.startswith(f"votes are read only from {netloc(forum.url)} (DISCOURSE_URL")
        assert elsewhere.requests == []
        listed = settings_for(forum, forum_hosts=frozenset({netloc(elsewhere.url), "x.example"}))
        assert fetch(forum, url, settings=listed).votes_for == 12
        assert refusal(forum, "http://10.1.1.1/t/x/1", settings=listed).startswith(
            f"votes are read only from {netloc(forum.url)}, {netloc(elsewhere.url)}, x.example ("
        )


def test_a_forum_name_that_resolves_to_a_local_address_is_refused(forum):
    """A configured host *name* resolving to loopback (or any private, link-local or metadata
    address) is refused after DNS, before a request: only a forum named by its address is
    trusted to be local. localhost resolves to loopback without a network."""
    url = forum.add_topic(7, polls=[Poll()])
    by_name = url.replace("127.0.0.1", "localhost")
    settings = settings_for(forum, discourse_url=forum.url.replace("127.0.0.1", "localhost"))
    message = refusal(forum, by_name, settings=settings)
    assert message.startswith("localhost resolves to ")
    assert "which is not a public address" in message
    assert forum.requests == []


def test_forum_hosts_come_from_the_environment(tmp_path):
    """GATEKEEPER_FORUM_HOSTS: comma-separated host[:port], lowercased; anything else is a
    configuration error naming the variable."""
    settings = Settings.from_env(
        {"GATEKEEPER_FORUM_HOSTS": "Discuss.Example.org, forum.test:8443,"},
        instance_path=str(tmp_path),
    )
    assert settings.forum_hosts == {"discuss.example.org", "forum.test:8443"}
    assert discourse.allowed_forums(settings) == [
        "discuss.python.org",
        "discuss.example.org",
        "forum.test:8443",
    ]
    with pytest.raises(ConfigError, match=r"^GATEKEEPER_FORUM_HOSTS must list host names"):
        Settings.from_env(
            {"GATEKEEPER_FORUM_HOSTS": "https://forum.test/t"}, instance_path=str(tmp_path)
        )


def test_a_private_category_without_the_key_names_the_settings(forum):
    """403 without a key: the refusal names DISCOURSE_API_KEY and DISCOURSE_API_USERNAME."""
    url = forum.add_topic(7, polls=[Poll()], private=True)
    anonymous = settings_for(forum, discourse_api_key=None, discourse_api_username=None)
    assert refusal(forum, url, settings=anonymous) == (
        "the forum refused to show topic 7 (403): it is in a private category;"
        " set DISCOURSE_API_KEY and DISCOURSE_API_USERNAME to a member's key"
    )
    assert "Api-Key" not in forum.requests[-1].headers
    assert fetch(forum, url).votes_for == 12  # the member's key reads it


def test_a_key_that_cannot_read_the_category_names_the_user(forum):
    """A key whose user is no member (or a wrong key): 403 naming the user, never the key."""
    forum.add_user("outsider", "outsider-key", member=False)
    url = forum.add_topic(7, polls=[Poll()], private=True)
    outsider = settings_for(
        forum, discourse_api_key="outsider-key", discourse_api_username="outsider"
    )
    message = refusal(forum, url, settings=outsider)
    assert message.startswith(
        "the forum refused to show topic 7 (403) to DISCOURSE_API_USERNAME (outsider)"
    )
    wrong = settings_for(forum, discourse_api_key="not-the-key")
    assert "not-the-key" not in refusal(forum, url, settings=wrong)
    assert KEY not in refusal(forum, url, settings=settings_for(forum, discourse_api_username="x"))


def test_an_unknown_topic_is_a_404_refusal(forum):
    """No such topic: 404, with the hint that a private one needs the key when none is set."""
    assert refusal(forum, f"{forum.url}/t/nothing/404") == (
        f"the forum has no topic 404 that DISCOURSE_API_USERNAME ({USER}) can see (404); check the link"
    )
    anonymous = settings_for(forum, discourse_api_key=None)
    assert refusal(forum, f"{forum.url}/t/nothing/404", settings=anonymous).endswith(
        "check the link, or set DISCOURSE_API_KEY for a private category"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://discuss.python.org/t/1",
        "https://discuss.python.org/c/core-dev/23",
        "ftp://discuss.python.org/t/vote/1",
        "discuss.python.org/t/vote/1",
        "https:///t/vote/1",
    ],
)
def test_a_link_that_is_not_a_topic_is_refused(forum, url):
    """Anything but https://HOST/t/<slug>/<id>[/<post>] is refused before any request."""
    assert refusal(forum, url).endswith("(https://HOST/t/<slug>/<topic-id>[/<post-number>])")
    assert forum.requests == []


def test_a_forum_under_a_path_and_a_json_link_are_understood(forum):
    """https://HOST/forum/t/slug/7/1.json: the base path is kept, .json and the post read."""
    where = discourse.parse_topic_url("https://example.org/forum/t/vote/7/3.json?u=gps")
    assert (where.base, where.slug, where.topic_id, where.post_number) == ("/forum", "vote", 7, 3)
    assert where.topic_json == "https://example.org/forum/t/vote/7.json"


def test_an_unreachable_forum_is_one_sentence():
    """Nothing listening on the port: 'cannot be reached'."""
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    settings = Settings(database_url="sqlite://", discourse_url=f"http://127.0.0.1:{port}")
    with pytest.raises(discourse.ForumUnavailable) as caught:
        discourse.fetch_vote(f"http://127.0.0.1:{port}/t/v/1", settings=settings, now=utcnow())
    assert str(caught.value) == f"the forum at http://127.0.0.1:{port} cannot be reached"


def test_a_slow_forum_times_out(forum):
    """An answer slower than the timeout: 'did not answer within 0.2 seconds'."""
    forum.delay = 0.6
    url = forum.add_topic(7, polls=[Poll()])
    message = refusal(forum, url, settings=settings_for(forum, discourse_timeout=0.2))
    assert message == f"the forum at {forum.url} did not answer within 0.2 seconds"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, "the forum answered 500 for topic 7"),
        (429, "the forum is rate-limiting requests (429); try again in a minute"),
        (200, "did not answer with a topic's JSON; is it a Discourse forum?"),
    ],
)
def test_a_forum_failing_is_one_sentence(forum, status, expected):
    """A 5xx, a 429 or a page that is not JSON: one sentence each."""
    url = forum.add_topic(7, polls=[Poll()])
    forum.fail_with = status
    assert refusal(forum, url).endswith(expected)


# ---------------------------------------------------------------- the command line


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(cli, list(args))


def session_of(app: Flask) -> Session:
    return Session(app.extensions["gatekeeper.engine"], expire_on_commit=False)


def row_counts(app: Flask) -> dict[str, int]:
    with app.extensions["gatekeeper.engine"].connect() as connection:
        return {
            table.name: connection.execute(
                sa.select(sa.func.count()).select_from(table)
            ).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


def audit(app: Flask) -> list[tuple[str, str]]:
    with session_of(app) as session:
        events = session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))
        return [(event.kind, event.detail) for event in events]


def test_promote_from_the_forum_fills_the_record_and_applies_pep13(forum_app, forum):
    """The done-when: promote mpage --mentor colesbury --vote-url <topic> reads the poll."""
    url = forum.add_topic(12345, polls=[Poll()])
    before = utcnow()
    result = run(
        forum_app, "promote", "mpage", "--mentor", "colesbury", "--vote-url", url, "--no-wait"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("From the forum:") == 1
    assert result.stdout.splitlines()[0] == (
        "From the forum: 12 for, 1 against in poll 'poll', open Nov 1, 2024, 15:00 UTC"
        " to Nov 8, 2024, 15:00 UTC."
    )
    with session_of(forum_app) as session:
        m = lifecycle.latest_mentorship(session, mentee="mpage")
    assert (m.votes_for, m.votes_against) == (12, 1)
    assert (m.vote_opened, m.vote_closed) == (date(2024, 11, 1), date(2024, 11, 8))
    assert (m.vote_url, m.vote_source) == (url, "discourse")
    assert m.vote_fetched_at is not None and before <= m.vote_fetched_at <= utcnow()
    assert votes.vote_of(m).passes  # type: ignore[union-attr]
    kinds = [kind for kind, _ in audit(forum_app)]
    assert kinds[:2] == ["created", "vote_fetched"]


def test_a_forum_vote_failing_pep13_needs_an_override_reason(forum_app, forum):
    """5 for, 5 against from the forum: refused (nothing written) until a reason is given."""
    url = forum.add_topic(
        7, polls=[Poll(options=[("Promote Matt Page", 5), ("Do not promote", 5)])]
    )
    before = row_counts(forum_app)
    refused = run(forum_app, "promote", "mpage", "--mentor", "colesbury", "--vote-url", url)
    assert refused.exit_code == 1
    assert "5 of 10 votes in favour is less than two-thirds" in refused.stderr
    assert row_counts(forum_app) == before
    ok = run(
        forum_app, "promote", "mpage", "--mentor", "colesbury", "--vote-url", url,
        "--override-reason", "the SC decided", "--no-wait",
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "pep13_override" in [kind for kind, _ in audit(forum_app)]


def test_given_numbers_override_the_forum_and_the_difference_is_shown(forum_app, forum):
    """--votes-for 13 over the forum's 12: printed, stored, and kept in the audit log."""
    url = forum.add_topic(7, polls=[Poll()])
    result = run(
        forum_app, "promote", "mpage", "--mentor", "colesbury", "--vote-url", url,
        "--votes-for", "13", "--vote-opened", "2024-11-01", "--no-wait",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "  votes for: 12 from the forum, 13 given" in result.stdout.splitlines()
    assert "vote opened" not in result.stdout  # the same as the forum's: no difference
    with session_of(forum_app) as session:
        m = lifecycle.latest_mentorship(session, mentee="mpage")
    assert (m.votes_for, m.votes_against, m.vote_source) == (13, 1, "discourse")
    [detail] = [detail for kind, detail in audit(forum_app) if kind == "vote_fetched"]
    assert detail.endswith("; given over the forum's: votes for: 12 from the forum, 13 given")


def test_a_poll_closed_by_hand_without_a_date_needs_vote_closed(forum_app, forum):
    """The forum does not say when: refused asking for --vote-closed; with it, promoted."""
    url = forum.add_topic(7, polls=[Poll(status="closed", close=None)])
    refused = run(forum_app, "promote", "mpage", "--mentor", "colesbury", "--vote-url", url)
    assert refused.stderr == (
        "Error: the poll was closed by hand and the forum does not say when;"
        " give the date it closed (--vote-closed)\n"
    )
    ok = run(
        forum_app, "promote", "mpage", "--mentor", "colesbury", "--vote-url", url,
        "--vote-closed", "2024-11-09", "--no-wait",
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "  vote closed: not said by the forum, 2024-11-09 given" in ok.stdout.splitlines()


def test_a_vote_typed_in_full_needs_no_forum(forum_app, forum):
    """Every number given: the link is only kept, nothing is asked of any forum; source manual."""
    run(
        forum_app, "promote", "mpage", "--mentor", "colesbury",
        "--vote-url", "https://discuss.python.org/t/1", "--votes-for", "30", "--votes-against", "2",
        "--vote-opened", "2024-11-01", "--vote-closed", "2024-11-08", "--no-wait",
    )  # fmt: skip
    assert forum.requests == []
    with session_of(forum_app) as session:
        m = lifecycle.latest_mentorship(session, mentee="mpage")
    assert (m.vote_source, m.vote_fetched_at) == ("manual", None)


@pytest.mark.parametrize(
    ("setup", "extra", "expected"),
    [
        ({"private": True, "key": None}, (), "it is in a private category; set DISCOURSE_API_KEY"),
        ({"polls": [Poll(status="open", close=OPEN_UNTIL)]}, (), "the vote closes on 2099-01-08"),
        ({"polls": [Poll(), Poll(name="b")]}, (), "choose one with --vote-poll NAME"),
        ({"polls": [Poll(options=[("Yes", 1), ("No", 0)])]}, (), 'seen: "Yes", "No"'),
        ({"polls": []}, (), "post 1 of topic 7 holds no poll"),
        ({"polls": [Poll()]}, ("--vote-poll", "nope"), "has no poll named 'nope'"),
    ],
)
def test_every_forum_refusal_is_one_line_and_writes_nothing(
    forum_app, forum, setup, extra, expected
):
    """Each failure: exit 1, one Error line naming the problem, no traceback, no row."""
    url = forum.add_topic(
        7, polls=setup.get("polls", [Poll()]), private=setup.get("private", False)
    )
    if "key" in setup:  # the service run without DISCOURSE_API_KEY
        settings = forum_app.extensions["gatekeeper.settings"]
        forum_app.extensions["gatekeeper.settings"] = dataclasses.replace(
            settings, discourse_api_key=None, discourse_api_username=None
        )
    before = row_counts(forum_app)
    result = run(forum_app, "promote", "mpage", "--mentor", "colesbury", "--vote-url", url, *extra)
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: ") and expected in line
    assert "Traceback" not in result.output and result.stdout == ""
    assert row_counts(forum_app) == before


def test_choosing_a_poll_without_a_link_is_refused(forum_app):
    """--vote-poll alone has nothing to choose from."""
    result = run(forum_app, "promote", "mpage", "--mentor", "colesbury", "--vote-poll", "poll")
    assert result.stderr == "Error: choosing the poll or its options needs the vote's URL\n"


def test_status_json_and_api_say_where_the_numbers_came_from(forum_app, forum):
    """promotion.source and promotion.fetched_at: discourse with a time, or manual with none."""
    url = forum.add_topic(7, polls=[Poll()])
    run(forum_app, "promote", "mpage", "--mentor", "colesbury", "--vote-url", url, "--no-wait")
    run(
        forum_app, "promote", "ambv", "--mentor", "colesbury", "--votes-for", "9",
        "--votes-against", "0", "--vote-opened", "2024-11-01", "--vote-closed", "2024-11-08",
        "--no-wait",
    )  # fmt: skip
    fetched = json.loads(run(forum_app, "status", "mpage", "--json").stdout)["promotion"]
    typed = json.loads(run(forum_app, "status", "ambv", "--json").stdout)["promotion"]
    assert fetched["source"] == "discourse"
    assert datetime.fromisoformat(fetched["fetched_at"]) <= utcnow()
    assert (typed["source"], typed["fetched_at"]) == ("manual", None)
    web = forum_app.test_client().get("/api/mentorships/mpage").get_json()["promotion"]
    assert web == fetched


# ---------------------------------------------------------------- the dashboard


def signed_in(app: Flask, login: str):
    client = app.test_client()
    with client.session_transaction() as session:
        session["login"], session["display"] = login.lower(), login
    return client


def token(client) -> str:
    match = TOKEN.search(client.get("/mentorships/new").get_data(as_text=True))
    assert match
    return match.group(1)


def start_form(csrf: str, **fields: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "mentee": "mpage",
        "mentors": "colesbury",
        "approvals_required": "1",
        "dismiss_stale_approvals": "y",
        "same_content_approvals": "y",
        **fields,
    }


def field_value(body: str, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', body) or re.search(
        rf'<input[^>]*value="([^"]*)"[^>]*name="{name}"', body
    )
    return match.group(1) if match else None


def test_fetch_fills_the_vote_and_shows_pep13_without_saving(forum_app, forum):
    """The button re-renders the form with the forum's numbers and the PEP 13 verdict."""
    url = forum.add_topic(7, polls=[Poll()])
    client = signed_in(forum_app, "boss")
    before = row_counts(forum_app)
    response = client.post(
        "/mentorships/new",
        data=start_form(token(client), vote_url=url, votes_for="99", fetch_vote="1"),
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert field_value(body, "votes_for") == "12"  # what was typed is replaced by the forum's
    assert field_value(body, "votes_against") == "1"
    assert field_value(body, "vote_opened") == "2024-11-01"
    assert field_value(body, "vote_closed") == "2024-11-08"
    assert field_value(body, "mentee") == "mpage"  # the rest of the form is kept
    assert "Meets PEP 13" in body
    assert "12 for, 1 against in poll &#39;poll&#39;" in body
    assert row_counts(forum_app) == before


def test_starting_after_a_fetch_records_the_forum_as_the_source(forum_app, forum):
    """Fetch, change one number, start: source discourse, the override in the audit log."""
    url = forum.add_topic(7, polls=[Poll()])
    client = signed_in(forum_app, "boss")
    csrf = token(client)
    filled = client.post(
        "/mentorships/new", data=start_form(csrf, vote_url=url, fetch_vote="1")
    ).get_data(as_text=True)
    fetched_at = field_value(filled, "vote_fetched")
    assert fetched_at
    started = client.post(
        "/mentorships/new",
        data=start_form(
            csrf, vote_url=url, votes_for="13", votes_against="1", vote_opened="2024-11-01",
            vote_closed="2024-11-08", vote_fetched=fetched_at, action="start",
        ),
    )  # fmt: skip
    assert started.status_code == 302
    with session_of(forum_app) as session:
        m = lifecycle.latest_mentorship(session, mentee="mpage")
    assert (m.votes_for, m.vote_source) == (13, "discourse")
    [detail] = [detail for kind, detail in audit(forum_app) if kind == "vote_fetched"]
    assert "votes for: 12 from the forum, 13 given" in detail
    page = client.get("/mentorships/mpage").get_data(as_text=True)
    assert "Read from the forum's poll on" in page
    assert "Typed over the forum&#39;s numbers: votes for: 12 from the forum, 13 given." in page


def test_a_vote_typed_on_the_form_is_manual(forum_app, forum):
    """No fetch: the numbers are the maintainer's, the page says so, the forum is not asked."""
    client = signed_in(forum_app, "boss")
    response = client.post(
        "/mentorships/new",
        data=start_form(
            token(client), votes_for="9", votes_against="0", vote_opened="2024-11-01",
            vote_closed="2024-11-08", action="start",
        ),
    )  # fmt: skip
    assert response.status_code == 302
    assert forum.requests == []
    assert "Typed in by hand." in client.get("/mentorships/mpage").get_data(as_text=True)


@pytest.mark.parametrize(
    ("setup", "status", "expected"),
    [
        ({"polls": [Poll(status="open", close=OPEN_UNTIL)]}, 400, "the vote closes on 2099-01-08"),
        ({"polls": [Poll(options=[("Yes", 1), ("No", 0)])]}, 400, "seen: &#34;Yes&#34;"),
        ({"polls": [Poll()], "fail_with": 503}, 502, "the forum answered 503 for topic 7"),
        (
            {"polls": [Poll()], "url": "http://169.254.169.254/t/latest/7"},
            400,
            "votes are read only from 127.0.0.1:",
        ),
    ],
)
def test_a_fetch_that_fails_says_why_on_the_form(forum_app, forum, setup, status, expected):
    """The forum's refusal is shown by the URL field; nothing is saved. A link to another
    host (the metadata service) is refused naming the forum that is read."""
    url = setup.get("url") or forum.add_topic(7, polls=setup["polls"])
    forum.fail_with = setup.get("fail_with")
    client = signed_in(forum_app, "boss")
    before = row_counts(forum_app)
    response = client.post(
        "/mentorships/new", data=start_form(token(client), vote_url=url, fetch_vote="1")
    )
    assert response.status_code == status
    assert expected in response.get_data(as_text=True)
    assert row_counts(forum_app) == before


def test_a_fetch_of_a_poll_closed_without_a_date_asks_for_it(forum_app, forum):
    """Counts and opening filled, the closing date left to the maintainer, with the reason."""
    url = forum.add_topic(7, polls=[Poll(status="closed", close=None)])
    client = signed_in(forum_app, "boss")
    body = client.post(
        "/mentorships/new", data=start_form(token(client), vote_url=url, fetch_vote="1")
    ).get_data(as_text=True)
    assert field_value(body, "votes_for") == "12"
    assert field_value(body, "vote_closed") in (None, "")
    assert "the forum does not say when; give the date it closed." in body


def test_fetch_needs_a_maintainer_and_the_csrf_token(forum_app, forum):
    """Without the token 400, a mentor 403, signed out to sign-in: the forum is never asked."""
    url = forum.add_topic(7, polls=[Poll()])
    fields = start_form("", vote_url=url, fetch_vote="1")
    maintainer = signed_in(forum_app, "boss")
    token(maintainer)
    assert maintainer.post("/mentorships/new", data=fields).status_code == 400
    mentor = signed_in(forum_app, "colesbury")
    fields["csrf_token"] = page_token(mentor)
    assert mentor.post("/mentorships/new", data=fields).status_code == 403
    anonymous = signed_in(forum_app, "boss")  # then signed out, keeping the CSRF secret
    fields["csrf_token"] = token(anonymous)
    with anonymous.session_transaction() as session:
        session.pop("login")
    response = anonymous.post("/mentorships/new", data=fields)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert forum.requests == []


def page_token(client) -> str:
    """The CSRF token of the overview's forms, for a visitor who may not open the start form."""
    match = TOKEN.search(client.get("/").get_data(as_text=True))
    assert match
    return match.group(1)


def test_the_fetch_button_without_a_link_starts_as_before(forum_app, forum):
    """Enter in a field presses the first button, Fetch: with no URL it starts the mentorship."""
    client = signed_in(forum_app, "boss")
    response = client.post("/mentorships/new", data=start_form(token(client), fetch_vote="1"))
    assert response.status_code == 302
    assert forum.requests == []


# ---------------------------------------------------------------- from the shell


def test_console_script_reads_the_vote_with_the_environments_key(tmp_path, migrated_sqlite, forum):
    """The done-when from a shell: DISCOURSE_* in the environment, a private topic's poll
    fills the record, and status --json says it came from the forum."""
    database = tmp_path / "shell.sqlite"
    shutil.copyfile(migrated_sqlite, database)
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIXES)},
        "DATABASE_URL": f"sqlite:///{database}",
        "DISCOURSE_URL": forum.url,
        "DISCOURSE_API_KEY": KEY,
        "DISCOURSE_API_USERNAME": USER,
    }
    url = forum.add_topic(12345, polls=[Poll()], private=True)
    script = str(Path(sys.executable).parent / "gatekeeper")
    promote = subprocess.run(
        [script, "promote", "mpage", "--mentor", "colesbury", "--vote-url", url],
        env=env, capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert promote.returncode == 0, promote.stderr
    assert promote.stdout.startswith("From the forum: 12 for, 1 against in poll 'poll'")
    assert KEY not in promote.stdout + promote.stderr
    assert forum.requests[0].headers["Api-Key"] == KEY
    status = subprocess.run(
        [script, "status", "mpage", "--json"],
        env=env, capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    promotion = json.loads(status.stdout)["promotion"]
    assert (promotion["votes_for"], promotion["source"]) == (12, "discourse")
