"""The month's report posted as a reply in the promotion vote's forum thread, exactly once.

Against the fake Discourse over real HTTP on loopback (``POST /posts.json`` with its key and
username checked), on SQLite and PostgreSQL: ``gatekeeper report MENTEE --post``, a second
post refused unless asked again, the maintainer's button on the report page, a vote that was
not read from the forum, a forum that refuses or never answers, the redactions and ``@``
mentions, and two people posting at the same moment.
"""

from __future__ import annotations

import re
import threading

import pytest
from fakediscourse import FakeDiscourse, Poll
from flask import Flask
from forum_support import KEY
from sqlmodel import select
from test_discourse import audit, run, session_of, signed_in

from factories import pull_info
from gatekeeper import forum_posts, pulls, settings_of
from gatekeeper import report as reports
from gatekeeper.mentorships import MentorshipError
from gatekeeper.models import ReportPost, utcnow

TOPIC = 12345
MENTION = re.compile(r"@\w")
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def promoted(app: Flask, forum: FakeDiscourse) -> str:
    """mpage promoted from the forum's vote; the topic's URL."""
    url = forum.add_topic(TOPIC, polls=[Poll()])
    result = run(app, "promote", "mpage", "--mentor", "colesbury", "--vote-url", url, "--no-wait")
    assert result.exit_code == 0, result.output
    return url


def claims(app: Flask) -> list[ReportPost]:
    with session_of(app) as session:
        return list(session.exec(select(ReportPost).order_by(ReportPost.ordinal)))


def test_post_replies_in_the_vote_thread_once_with_the_reports_markdown(forum_app, forum):
    """The done-when: --post puts the Markdown in the thread, prints its address, and the
    address is in the audit log and in report --json."""
    promoted(forum_app, forum)
    markdown = run(forum_app, "report", "mpage", "--markdown").stdout
    result = run(forum_app, "report", "mpage", "--post", "--by", "boss")
    assert result.exit_code == 0, result.output
    [reply] = forum.replies(TOPIC)
    address = f"{forum.url}/t/promote-matt-page-to-core-developer/{TOPIC}/2"
    assert result.stdout == f"posted mpage's report in the vote's thread: {address}\n"
    assert reply["raw"].strip() == markdown.strip()
    assert reply["username"] == "gatekeeper-bot"
    assert ("report posted", f"to the vote's thread: {address}") in audit(forum_app)
    document = run(forum_app, "report", "mpage", "--json").stdout
    assert f'"url": "{address}"' in document and '"posted_by": "boss"' in document


def test_a_second_post_is_refused_unless_asked_again(forum_app, forum):
    """Posted once: --post again is one line naming the reply; --post --again posts anew."""
    promoted(forum_app, forum)
    assert run(forum_app, "report", "mpage", "--post").exit_code == 0
    second = run(forum_app, "report", "mpage", "--post")
    assert second.exit_code == 1
    assert "posted already" in second.stderr and "/t/" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert len(forum.replies(TOPIC)) == 1
    again = run(forum_app, "report", "mpage", "--post", "--again")
    assert again.exit_code == 0, again.output
    assert [post["post_number"] for post in forum.replies(TOPIC)] == [2, 3]
    assert [claim.ordinal for claim in claims(forum_app)] == [1, 2]


def test_a_vote_typed_by_hand_has_no_thread_and_posts_nothing(forum_app, forum):
    """A manual vote: refused with what to do instead; the forum is never called."""
    result = run(
        forum_app, "promote", "mpage", "--mentor", "colesbury", "--votes-for", "9",
        "--votes-against", "0", "--vote-opened", "2024-11-01", "--vote-closed", "2024-11-08",
        "--no-wait",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    refused = run(forum_app, "report", "mpage", "--post")
    assert refused.exit_code == 1
    assert "not imported from the forum" in refused.stderr
    assert "--markdown" in refused.stderr
    assert [seen for seen in forum.requests if seen.path == "/posts.json"] == []
    assert claims(forum_app) == []


def test_a_forum_that_refuses_says_which_setting_and_keeps_nothing(forum_app, forum):
    """A key that may only read (403): one line naming the user; no claim is left behind,
    so posting once the key is fixed works."""
    promoted(forum_app, forum)
    forum.read_only.add(KEY)
    refused = run(forum_app, "report", "mpage", "--post")
    assert refused.exit_code == 1
    assert "refused the post (403)" in refused.stderr and "gatekeeper-bot" in refused.stderr
    assert KEY not in refused.output
    assert claims(forum_app) == []
    forum.read_only.clear()
    assert run(forum_app, "report", "mpage", "--post").exit_code == 0
    assert len(forum.replies(TOPIC)) == 1


def test_a_forum_that_never_answers_leaves_the_post_uncertain(forum_app, forum):
    """A timeout may have posted: the next --post says to look first; --again posts."""
    promoted(forum_app, forum)
    settings = settings_of(forum_app)
    forum_app.extensions["gatekeeper.settings"] = settings.__class__(
        **{**settings.__dict__, "discourse_timeout": 0.2}
    )
    forum.delay = 0.6
    slow = run(forum_app, "report", "mpage", "--post")
    forum.delay = 0.0
    assert slow.exit_code == 1 and "may still appear in the thread" in slow.stderr
    [claim] = claims(forum_app)
    assert claim.uncertain and claim.url is None
    looked = run(forum_app, "report", "mpage", "--post")
    assert looked.exit_code == 1 and "look there first" in looked.stderr
    assert run(forum_app, "report", "mpage", "--post", "--again").exit_code == 0


def test_the_post_is_redacted_and_mentions_nobody(forum_app, forum):
    """A private repository's pull request is posted as "a pull request in a private
    repository", and a title's @group cannot ping anyone."""
    promoted(forum_app, forum)
    with session_of(forum_app) as session:
        pulls.remember_installation(
            session, repo="python/security", installation_id=1, private=True
        )
        pulls.upsert_pull(
            session,
            info=pull_info(3, repo="python/security", repo_display="python/security",
                           title="Fix CVE quietly"),
            now=utcnow(),
        )  # fmt: skip
        pulls.upsert_pull(
            session, info=pull_info(4, title="Ping @python/core-devs please"), now=utcnow()
        )
        session.commit()
    assert run(forum_app, "report", "mpage", "--post").exit_code == 0
    [reply] = forum.replies(TOPIC)
    assert "Fix CVE quietly" not in reply["raw"] and "python/security" not in reply["raw"]
    assert "Ping" in reply["raw"]
    assert MENTION.search(reply["raw"]) is None


def test_md_text_breaks_every_mention():
    """Any "@word" in typed text is kept readable but is no longer a mention."""
    text = reports.md_text("cc @python/core-devs and @ambv")
    assert MENTION.search(text) is None
    assert text.replace("\u2060", "") == "cc @python/core-devs and @ambv"


def test_two_people_posting_at_once_post_one_reply(forum_app, forum):
    """Two posts started together while the forum is slow: one reply; the other is told
    someone is posting (or that it was posted)."""
    promoted(forum_app, forum)
    forum.delay = 0.5
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def post(actor: str) -> None:
        with forum_app.app_context(), session_of(forum_app) as session:
            barrier.wait()
            try:
                forum_posts.post_report(
                    session, mentee="mpage", actor=actor,
                    settings=settings_of(forum_app), now=utcnow(),
                )  # fmt: skip
                outcomes.append("posted")
            except MentorshipError as refusal:
                outcomes.append(str(refusal))

    threads = [threading.Thread(target=post, args=(who,)) for who in ("boss", "alex")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(forum.replies(TOPIC)) == 1
    assert sorted(outcomes)[-1] == "posted" and outcomes.count("posted") == 1
    [refusal] = [o for o in outcomes if o != "posted"]
    assert "posting the report right now" in refusal or "posted already" in refusal


def test_the_report_page_posts_for_a_maintainer_only(forum_app, forum):
    """The button: maintainers see it with the preview; a mentor's POST is 403; a
    maintainer's posts and the page then links the reply."""
    promoted(forum_app, forum)
    maintainer = signed_in(forum_app, "boss")
    page = maintainer.get("/mentorships/mpage/report").get_data(as_text=True)
    assert "Post to the vote thread" in page
    csrf = TOKEN.search(page)
    assert csrf
    mentor = signed_in(forum_app, "colesbury")
    assert "Post to the vote thread" not in mentor.get("/mentorships/mpage/report").get_data(
        as_text=True
    )
    refused = mentor.post("/mentorships/mpage/report/post", data={"csrf_token": csrf.group(1)})
    assert refused.status_code in (400, 403)
    assert forum.replies(TOPIC) == []
    posted = maintainer.post("/mentorships/mpage/report/post", data={"csrf_token": csrf.group(1)})
    assert posted.status_code == 302
    assert len(forum.replies(TOPIC)) == 1
    after = maintainer.get("/mentorships/mpage/report").get_data(as_text=True)
    assert f"/t/promote-matt-page-to-core-developer/{TOPIC}/2" in after
    twice = maintainer.post("/mentorships/mpage/report/post", data={"csrf_token": csrf.group(1)})
    assert twice.status_code == 409
    assert len(forum.replies(TOPIC)) == 1


@pytest.mark.parametrize("flags", [["--again"], ["--post", "--json"]])
def test_post_options_that_do_not_go_together_are_refused(forum_app, forum, flags):
    """--again needs --post; --post prints an address, so no --json or --markdown with it."""
    promoted(forum_app, forum)
    result = run(forum_app, "report", "mpage", *flags)
    assert result.exit_code != 0
    assert forum.replies(TOPIC) == []
