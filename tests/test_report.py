"""The month's report: every figure of the demo's scripted month, in JSON, Markdown and text.

The demo (``gatekeeper/demo.py``) scripts mira-k's first eleven days and sam-o's finished
month through the service's own functions; each figure here is worked out from that script.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from markdown_it import MarkdownIt
from sqlmodel import Session, select

from database_support import migrate
from gatekeeper import create_app, demo, people, report, settings_of
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.cli import cli
from gatekeeper.events import PullInfo
from gatekeeper.models import Mentorship, Repository, utcnow

HOUR, DAY = 3600, 86400
BASE_URL = "https://gatekeeper.example"


@pytest.fixture
def month(database_url: str) -> Iterator[tuple[Flask, object]]:
    """The demo's month in a fresh database (SQLite and PostgreSQL), and the moment it is at."""
    migrate(database_url)  # the migrated schema, copied rather than migrated again
    app = create_app(
        {
            "database_url": database_url,
            "secret_key": "test",
            "maintainers": demo.MAINTAINER,
            "base_url": BASE_URL,
            "TESTING": True,
        }
    )
    now = utcnow()
    with Session(app.extensions["gatekeeper.engine"], expire_on_commit=False) as session:
        demo.populate(session, settings=settings_of(app), now=now)
    yield app, now
    app.extensions["gatekeeper.engine"].dispose()


def session_of(app: Flask) -> Session:
    return Session(app.extensions["gatekeeper.engine"], expire_on_commit=False)


def build(app: Flask, now, mentee: str = demo.MENTEE, **options) -> report.Report:
    with session_of(app) as session:
        return report.build(session, mentee=mentee, now=now, base_url=BASE_URL, **options)


def sign_in(client, login: str) -> None:
    with client.session_transaction() as cookie:
        cookie["login"], cookie["display"] = login.lower(), login
        cookie["user_id"] = people.offline_id(login)  # the demo's accounts


def make_private(app: Flask, *repos: str) -> None:
    with session_of(app) as session:
        for name in repos:
            session.merge(Repository(full_name=name, display_name=name, private=True))
        session.commit()


# ---------------------------------------------------------------- the figures


def test_each_figure_of_the_active_month(month):
    """mira-k, day 12: #101 approved by tomas-r after 20 h and merged; #104 approved with
    june-h's button after 5 h; #107 approved by june-h after 6 h, then pushed (waiting again
    for 2 d 3 h); #109 merged by mira-k an hour into its wait (the bypass); #110 waiting 5 h;
    pyperformance#12 outside the mentorship's repositories."""
    app, now = month
    found = report.document(build(app, now))

    assert found["mentee"] == "mira-k" and found["state"] == "active"
    period = found["period"]
    start = now - timedelta(days=11, hours=3)
    assert period["started_at"] == start.isoformat()
    assert period["ended_at"] is None and period["end_reason"] is None
    assert period["days_active"] == 12
    assert period["extensions"] == []
    assert found["promotion"]["votes_for"] == 31 and found["promotion"]["votes_against"] == 2
    assert found["promotion"]["pep13_passed"] is True
    assert found["pull_requests"] == {
        "gated": 5,
        "approved": 2,
        "merged": 2,
        "bypassed": 1,
        "waiting": 2,
        "lifted": 0,
        "overridden": 0,
    }
    # Approvals that counted, as the table's "approved by": june-h's on #107's older commit
    # does not (#107 waits again), so she has one, #104's.
    assert found["mentors"] == [
        {
            "login": "tomas-r",
            "approvals": 1,
            "median_seconds_to_approve": 20 * HOUR,
            "removed": False,
        },
        {
            "login": "june-h",
            "approvals": 1,
            "median_seconds_to_approve": 5 * HOUR,
            "removed": False,
        },
    ]
    assert sum(m["approvals"] for m in found["mentors"]) == found["pull_requests"]["approved"]
    # Waits: 1 h (#109), 5 h (#104), 5 h (#110), 20 h (#101), 2 d 3 h (#107, since the push).
    assert found["wait"] == {"median_seconds": 5 * HOUR, "longest_seconds": 2 * DAY + 3 * HOUR}
    # The mentorship's scope, not pyperformance (outside it, where #12 was not gated).
    assert found["repositories"] == ["python/cpython", "python/devguide"]
    assert found["repositories_everywhere"] is False
    assert found["bypasses"] == [
        {
            "repo": "python/cpython",
            "number": 109,
            "url": "https://github.com/python/cpython/pull/109",
            "merged_by": "mira-k",
            "merged_at": (start + timedelta(days=10, hours=1)).isoformat(),
            "acknowledged": None,
        }
    ]
    assert [(p["number"], p["state"], p["gated"]) for p in found["pulls"]] == [
        (101, "merged", True),
        (104, "approved", True),
        (12, "not_required", False),
        (107, "waiting", True),
        (109, "bypassed", True),
        (110, "waiting", True),
    ]


def test_the_document_has_the_keys_the_readme_promises(month):
    """The JSON document's keys, as the issue and the README list them."""
    app, now = month
    found = report.document(build(app, now))
    assert {
        "mentee",
        "state",
        "period",
        "promotion",
        "pull_requests",
        "mentors",
        "wait",
        "repositories",
        "bypasses",
    } <= set(found)
    assert {
        "started_at",
        "ends_at",
        "ended_at",
        "end_reason",
        "days_active",
        "extensions",
    } <= set(found["period"])
    assert set(found["bypasses"][0]) >= {"repo", "number", "merged_by", "acknowledged"}


def test_an_ended_month_says_how_it_ended(month):
    """sam-o graduated on day 21 with a note; #88 approved by june-h after 4 h and merged;
    #90 still waiting at the end is "lifted", its wait ending then (2 days)."""
    app, now = month
    found = report.document(build(app, now, mentee=demo.FORMER_MENTEE))

    assert found["state"] == "ended"
    assert found["period"]["end_reason"] == "graduated"
    assert found["period"]["ended_by"] == demo.MAINTAINER
    assert found["period"]["end_note"] == "Ready early: careful reviews throughout."
    assert found["period"]["days_active"] == 21
    assert found["pull_requests"] == {
        "gated": 2,
        "approved": 1,
        "merged": 1,
        "bypassed": 0,
        "waiting": 0,
        "lifted": 1,
        "overridden": 0,
    }
    assert found["mentors"] == [
        {"login": "june-h", "approvals": 1, "median_seconds_to_approve": 4 * HOUR, "removed": False}
    ]
    assert found["wait"] == {"median_seconds": 26 * HOUR, "longest_seconds": 2 * DAY}


def test_extensions_and_an_acknowledged_bypass(month):
    """An extension of 5 days by a maintainer and an acknowledgement of #109's bypass (the
    audit event issue #9 records) are in the period and the bypass."""
    app, now = month
    with session_of(app) as session:
        mentorship = lifecycle.extend(
            session, mentee=demo.MENTEE, days=5, actor=demo.MAINTAINER, now=now
        )
        lifecycle.record(
            session,
            mentorship=mentorship,
            actor="tomas-r",
            kind=report.ACKNOWLEDGED,
            detail="A typo fix; fine to merge.",
            at=now,
            repo="python/cpython",
            pr_number=109,
        )
        session.commit()

    found = report.document(build(app, now))

    [extension] = found["period"]["extensions"]
    assert extension["by"] == demo.MAINTAINER and extension["detail"].startswith("from ")
    assert found["bypasses"][0]["acknowledged"] == {
        "by": "tomas-r",
        "at": now.isoformat(),
        "note": "A typo fix; fine to merge.",
    }
    text = report.plain(build(app, now))
    assert "extended 1 time\n" in text and "acknowledged by tomas-r: A typo fix" in text


# ---------------------------------------------------------------- Markdown


def parsed(text: str):
    """markdown-it's tokens, with HTML recognised (so that any would show as html tokens)."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").parse(text)


def test_the_markdown_has_tables_links_and_no_html(month):
    """Parsed as Markdown: a mentors table and a pull request table with a row per pull
    request, a link to each pull request and to the dashboard, and no HTML at all."""
    app, now = month
    tokens = parsed(report.markdown(build(app, now)))

    assert not [t for t in tokens if t.type.startswith("html")]
    inline = [child for t in tokens if t.children for child in t.children]
    assert not [c for c in inline if c.type.startswith("html")]
    assert sum(t.type == "table_open" for t in tokens) == 2
    rows = sum(t.type == "tr_open" for t in tokens)
    assert rows == (1 + 2) + (1 + 6)  # header and two mentors; header and six pull requests
    links = {c.attrGet("href") for c in inline if c.type == "link_open"}
    assert {
        f"https://github.com/python/cpython/pull/{n}" for n in (101, 104, 107, 109, 110)
    } < links
    assert f"{BASE_URL}/mentorships/mira-k" in links


def test_a_hostile_title_stays_text_in_its_cell(month):
    """A title with HTML, pipes, emphasis and a javascript: link is one cell of plain text."""
    app, now = month
    title = "<script>alert(1)</script> | *bold* [x](javascript:alert(1)) `code` & <b>"
    with session_of(app) as session:
        info = PullInfo(
            repo="python/cpython", repo_display="python/cpython", number=120,
            author=demo.MENTEE, author_display=demo.MENTEE, title=title,
            url="javascript:alert(2)", head_sha="f" * 40, base_ref="main", draft=False,
            state="open", merged=False, merged_by=None, merged_at=None, updated_at=now,
        )  # fmt: skip
        store.upsert_pull(session, info=info, now=now)
        session.commit()

    tokens = parsed(report.markdown(build(app, now)))

    inline = [child for t in tokens if t.children for child in t.children]
    assert not [t for t in tokens + inline if t.type.startswith("html")]
    [cell] = [t for t in tokens if t.type == "inline" and "script" in t.content]
    assert [c.type for c in cell.children] == ["text"]  # no emphasis, code, link or HTML
    assert cell.children[0].content == title
    hrefs = [c.attrGet("href") for c in inline if c.type == "link_open"]
    assert not [h for h in hrefs if "javascript" in str(h)]


# ---------------------------------------------------------------- the command and the pages


def test_the_command_prints_all_three_forms(month):
    """``gatekeeper report``: plain text by default, ``--markdown``, ``--json``; both flags
    at once is a usage error, and an unknown mentee one line on stderr."""
    app, _ = month
    runner = app.test_cli_runner()

    text = runner.invoke(cli, ["report", demo.MENTEE])
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith("mira-k: active, ends ")
    assert (
        "5 gated, 2 approved, 2 merged, 1 merged without approval, 2 still waiting" in text.stdout
    )
    markdown = runner.invoke(cli, ["report", demo.MENTEE, "--markdown"])
    assert markdown.stdout.startswith("## mira-k's first month")
    document = json.loads(runner.invoke(cli, ["report", demo.MENTEE, "--json"]).stdout)
    assert document["pull_requests"]["gated"] == 5

    both = runner.invoke(cli, ["report", demo.MENTEE, "--json", "--markdown"])
    assert both.exit_code == 1 and "not both" in both.stderr
    unknown = runner.invoke(cli, ["report", "nobody"])
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("Error: ") and "Traceback" not in unknown.output


def test_the_json_is_the_same_from_the_command_and_the_web(month, monkeypatch):
    """At one moment, ``report --json`` and ``/api/mentorships/<mentee>/report`` agree, for
    a visitor and for a maintainer (no private repository here)."""
    app, now = month
    monkeypatch.setattr(report, "utcnow", lambda: now)
    printed = json.loads(app.test_cli_runner().invoke(cli, ["report", "mira-k", "--json"]).stdout)
    client = app.test_client()

    assert client.get("/api/mentorships/mira-k/report").get_json() == printed
    sign_in(client, demo.MAINTAINER)
    assert client.get("/api/mentorships/MIRA-K/report").get_json() == printed


def test_the_page_shows_the_report_and_its_markdown(month):
    """The HTML page: the counts, each mentor, the bypass and the Markdown to copy."""
    app, _ = month
    page = app.test_client().get("/mentorships/mira-k/report")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "<strong>5</strong> gated" in body
    assert "tomas-r" in body and "june-h" in body
    assert "python/cpython#109, merged by mira-k" in body
    assert 'id="report-markdown"' in body and "## mira-k&#39;s first month" in body


def test_an_unknown_mentee_is_a_404(month):
    """The page and the JSON of a login never mentored are 404s."""
    app, _ = month
    client = app.test_client()
    assert client.get("/mentorships/nobody/report").status_code == 404
    assert client.get("/api/mentorships/nobody/report").status_code == 404


def test_private_repositories_are_redacted_for_outsiders(month):
    """pyperformance and cpython private: a visitor's report names neither, nor the bypass's
    note, while counts stay; a mentor and the command line see everything."""
    app, now = month
    with session_of(app) as session:
        mentorship = lifecycle.latest_mentorship(session, mentee=demo.MENTEE)
        lifecycle.record(
            session, mentorship=mentorship, actor="tomas-r", kind=report.ACKNOWLEDGED,
            detail="secret-project detail", at=now, repo="python/cpython", pr_number=109,
        )  # fmt: skip
        session.commit()
    make_private(app, "python/pyperformance", "python/cpython")
    client = app.test_client()

    outsider = client.get("/api/mentorships/mira-k/report").get_json()
    # The scope: python/devguide (public) named, python/cpython counted.
    assert outsider["repositories"] == ["python/devguide"] and outsider["repositories_hidden"] == 1
    assert outsider["pull_requests"]["gated"] == 5
    assert all(
        p["redacted"] and p["repo"] is None and p["title"] is None for p in outsider["pulls"]
    )
    [bypass] = outsider["bypasses"]
    assert (bypass["repo"], bypass["number"], bypass["merged_by"]) == (None, None, None)
    assert bypass["acknowledged"]["note"] == ""
    html = client.get("/mentorships/mira-k/report").get_data(as_text=True)
    for secret in ("pyperformance", "asyncio.gather", "secret-project", "/pull/109"):
        assert secret not in html and secret not in json.dumps(outsider)

    sign_in(client, "tomas-r")
    mentor = client.get("/api/mentorships/mira-k/report").get_json()
    assert mentor["repositories"] == ["python/cpython", "python/devguide"]
    assert mentor["bypasses"][0]["acknowledged"]["note"] == "secret-project detail"
    assert "asyncio.gather" in client.get("/mentorships/mira-k/report").get_data(as_text=True)
    printed = app.test_cli_runner().invoke(cli, ["report", "mira-k", "--json"]).stdout
    assert "pyperformance" in printed


def test_the_mentee_page_links_the_report_all_month(month):
    """The report is linked all month: "so far" on day 12 of 30; "for the graduation
    decision" within a week of the end, and once ended."""
    app, _ = month
    client = app.test_client()
    assert "The month's report</a> so far." in client.get("/mentorships/mira-k").get_data(
        as_text=True
    )
    ended = client.get("/mentorships/sam-o").get_data(as_text=True)
    assert "The month's report</a>, for the graduation decision." in ended
    with session_of(app) as session:
        mentorship = session.exec(select(Mentorship).where(Mentorship.mentee == "mira-k")).one()
        mentorship.ends_at = utcnow() + timedelta(days=6)
        session.add(mentorship)
        session.commit()
    assert "report</a>, for the graduation decision." in client.get("/mentorships/mira-k").get_data(
        as_text=True
    )


def test_maintainers_see_whose_month_is_ready_for_a_decision(month):
    """/me: a maintainer sees mira-k once her month ends within a week (sam-o graduated, so
    is decided); a mentor does not see the list."""
    app, _ = month
    client = app.test_client()
    sign_in(client, demo.MAINTAINER)
    assert "ready for a graduation decision" not in client.get("/me").get_data(as_text=True).lower()
    with session_of(app) as session:
        mentorship = session.exec(select(Mentorship).where(Mentorship.mentee == "mira-k")).one()
        mentorship.ends_at = utcnow() + timedelta(days=2)
        session.add(mentorship)
        session.commit()

    body = client.get("/me").get_data(as_text=True)
    assert "Ready for a graduation decision" in body
    assert "/mentorships/mira-k/report" in body and "sam-o" not in body
    sign_in(client, "tomas-r")
    assert "graduation decision" not in client.get("/me").get_data(as_text=True)


def test_an_expired_month_still_awaits_its_decision(month):
    """A month that ran out (nobody ended it) is listed for two weeks after its end."""
    app, now = month
    with session_of(app) as session:
        mentorship = session.exec(select(Mentorship).where(Mentorship.mentee == "mira-k")).one()
        mentorship.ends_at = now - timedelta(days=1)
        session.add(mentorship)
        session.commit()
        assert [m.mentee for m in report.awaiting_decision(session, now=now)] == ["mira-k"]
        lifecycle.expire_lapsed(session, now=now)
        session.commit()
        assert [m.mentee for m in report.awaiting_decision(session, now=now)] == ["mira-k"]
        assert report.awaiting_decision(session, now=now + timedelta(days=15)) == []


def test_a_scheduled_month_says_when_it_starts(month):
    """Before it starts, the report names the start date (not the end) in every form."""
    app, now = month
    start = now + timedelta(days=10)
    with session_of(app) as session:
        lifecycle.promote(
            session, mentee="zz", mentors=["ambv"], actor="boss", now=now, start=start
        )
        session.commit()
    found = build(app, now, mentee="zz")
    assert report.ending(found) == f"scheduled, starts {start:%Y-%m-%d}"
    assert f"starts {start:%Y-%m-%d}" in report.plain(found)
    assert f"starts {start:%Y-%m-%d}" in report.markdown(found)


# ---------------------------------------------------------------- what the report says is true


def test_an_early_end_is_the_real_end_everywhere(month):
    """sam-o graduated on day 21 of a month due to run 30 days: the page, the Markdown, the
    JSON and the command all give the real end first and the planned one as planned."""
    app, now = month
    found = build(app, now, mentee=demo.FORMER_MENTEE)
    start, ended = now - timedelta(days=75), now - timedelta(days=54)
    due = lifecycle.add_months(start, 1)
    words = f"{report.day_words(start)}{report.DASH}{report.day_words(ended)}, ended early; was due"
    assert report.span(found.period, report.day_words) == f"{words} {report.day_words(due)}"

    page = app.test_client().get("/mentorships/sam-o/report").get_data(as_text=True)
    assert f"{words} {report.day_words(due)}, 21 days active" in page
    assert f"**Period:** {words} {report.day_words(due)}, 21 days active" in report.markdown(found)
    document = report.document(found)["period"]
    assert (document["ended_at"], document["ends_at"]) == (ended.isoformat(), due.isoformat())
    text = app.test_cli_runner().invoke(cli, ["report", "sam-o"]).stdout
    assert (
        f"period: {start:%Y-%m-%d %H:%M} UTC{report.DASH}{ended:%Y-%m-%d %H:%M} UTC, ended early;"
        in text
    )
    assert f"was due {due:%Y-%m-%d %H:%M} UTC" in text
    assert f"to {due:%Y-%m-%d}" not in text


def test_a_running_month_gives_its_end_as_planned(month):
    """mira-k's month still runs: its end is the planned one, and said to be."""
    app, now = month
    found = build(app, now)
    assert report.span(found.period, report.day_words).endswith(" (planned end)")
    assert "ended early" not in report.markdown(found)


def test_the_mentors_counts_agree_with_the_table(month):
    """Each mentor's count is the pull requests whose "Approved by" cell names them, on the
    page, in the Markdown and on the command line, and the header says what it counts."""
    app, now = month
    found = build(app, now)
    for mentor in found.mentors:
        named = sum(mentor.login in (line.approved_by or ()) for line in found.pulls)
        assert mentor.approvals == named
    page = app.test_client().get("/mentorships/mira-k/report").get_data(as_text=True)
    assert "<th>Approvals that counted</th>" in page
    assert "<tr><td>june-h</td><td>1</td>" in page
    assert "| june-h | 1 |" in report.markdown(found)
    assert "mentor june-h: 1 approval that counted" in report.plain(found)


def test_a_removed_mentor_is_marked_removed(month):
    """tomas-r taken off mira-k's mentorship: still in the report for #101, marked removed."""
    app, now = month
    with session_of(app) as session:
        lifecycle.remove_mentor(
            session, mentee=demo.MENTEE, mentor="tomas-r", actor=demo.MAINTAINER, now=now
        )
        session.commit()
    found = build(app, now)
    assert [(m.login, m.removed, m.approvals) for m in found.mentors] == [
        ("june-h", False, 1),
        ("tomas-r", True, 1),
    ]
    assert "| tomas-r (removed) | 1 |" in report.markdown(found)
    assert "mentor tomas-r (removed):" in report.plain(found)
    page = app.test_client().get("/mentorships/mira-k/report").get_data(as_text=True)
    assert 'tomas-r <span class="muted">(removed)</span>' in page


def test_a_month_without_pull_requests_names_its_scope_and_no_empty_table(month):
    """A new mentorship in python/peps with no pull request yet: the repositories are its
    scope (never "none"), and the Markdown says there were none instead of an empty table."""
    app, now = month
    with session_of(app) as session:
        lifecycle.promote(
            session, mentee="newbie", mentors=["june-h"], actor=demo.MAINTAINER, now=now,
            repositories=["python/peps"],
        )  # fmt: skip
        session.commit()
    found = build(app, now, mentee="newbie")
    assert found.repositories == ("python/peps",) and found.pulls == ()
    text = report.markdown(found)
    assert "- **Repositories:** python/peps" in text
    assert "No pull requests in the period." in text
    assert sum(t.type == "table_open" for t in parsed(text)) == 1  # the mentors' only
    printed = app.test_cli_runner().invoke(cli, ["report", "newbie"]).stdout
    assert "repositories: python/peps" in printed and "repositories: none" not in printed
    page = app.test_client().get("/mentorships/newbie/report").get_data(as_text=True)
    assert "No pull requests in the period." in page and 'class="pulls"' not in page


def test_an_empty_scope_names_every_repository_and_where_it_gated(month):
    """sam-o's mentorship named no repository: the report says every repository, and where
    its gate applied."""
    app, now = month
    found = build(app, now, mentee=demo.FORMER_MENTEE)
    assert found.repositories_everywhere and found.repositories == ("python/cpython",)
    assert report.repository_words(found) == (
        "every repository the App is installed on (gated pull requests in python/cpython)"
    )


def test_the_csv_and_the_downloads(month):
    """The report page offers the JSON, a CSV of the pull requests (one row each, a title
    starting with "=" kept as text) and a copy button for the Markdown (shown by the script)."""
    app, now = month
    client = app.test_client()
    page = client.get("/mentorships/mira-k/report").get_data(as_text=True)
    assert 'href="/api/mentorships/mira-k/report" download="mira-k-report.json"' in page
    assert 'href="/mentorships/mira-k/report.csv"' in page
    assert 'data-copy="report-markdown" hidden>Copy the Markdown</button>' in page
    assert '<script src="/static/gatekeeper.js" defer></script>' in page
    with session_of(app) as session:
        pull = store.find_pull(session, repo="python/cpython", number=110)
        pull.title = "=HYPERLINK(1)"
        session.add(pull)
        session.commit()
    answer = client.get("/mentorships/mira-k/report.csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert 'filename="mira-k-pull-requests.csv"' in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == list(report.CSV_COLUMNS)
    assert [row[0] for row in rows[1:]] == [
        f"{line.repo}#{line.number}" for line in build(app, now).pulls
    ]
    last = rows[-1]
    assert (last[0], last[2], last[3], last[4]) == (
        "python/cpython#110",
        "'=HYPERLINK(1)",
        "waiting",
        "yes",
    )
    assert client.get("/mentorships/nobody/report.csv").status_code == 404
