"""What a mentorship's month recorded stays true after it ends, on the pages, in /api and the CLI.

Issue #9: ending a mentorship once turned approved pull requests into "No approval needed"
with an empty Approved-by column, and changed how long they had waited.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dashboard_support import REPO, SHA, TOKEN, Site
from fakegithub import default_user_id
from gatekeeper import cli as gatekeeper_cli
from gatekeeper import db, decisions, outbox
from gatekeeper import pulls as store
from gatekeeper.config import normalise_database_url
from gatekeeper.events import ReviewInfo
from gatekeeper.models import utcnow

HOUR = timedelta(hours=1)


@pytest.fixture
def month(site: Site) -> Site:
    """#7 approved by colesbury after waiting two days; #8 waiting for six hours; #9 elsewhere."""
    start = utcnow() - timedelta(days=3)
    site.promote(start=start, repositories=["python/cpython"])
    site.pull(7, at=start + HOUR)
    with site.session() as session:
        pull = store.find_pull(session, repo=REPO, number=7)
        assert pull is not None
        approved_at = start + HOUR + timedelta(days=2)
        store.upsert_review(
            session,
            pull=pull,
            info=ReviewInfo(
                1,
                "colesbury",
                "colesbury",
                "APPROVED",
                SHA,
                approved_at,
                default_user_id("colesbury"),
            ),
            now=approved_at,
        )
        session.flush()
        decided = decisions.reevaluate(session, pull, settings=site.settings, now=approved_at)
        outbox.waive(session, decided.touched)  # a stored sample: no check is posted
        session.commit()
    site.pull(8, head_sha="c" * 40, at=utcnow() - 6 * HOUR)
    return site


def rows(page: str) -> dict[str, str]:
    """The mentee page's pull request rows, as text, by their ``repo#number``."""
    start = page.index('id="pulls"')
    table = page[start : page.index("</table>", start)]
    found = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, flags=re.S):
        name = re.search(r"python/cpython#(\d+)", row)
        if name:
            found[name.group(1)] = " ".join(re.sub(r"<[^>]+>", " ", row).split())
    return found


def end(site: Site) -> None:
    """A maintainer ends the mentorship on the dashboard."""
    site.sign_in("boss")
    confirm = site.page("/mentorships/mpage/end")
    match = TOKEN.search(confirm)
    assert match
    response = site.post("/mentorships/mpage/end", {"reason": "graduated"}, token=match.group(1))
    assert response.status_code == 302


def test_ending_keeps_approvals_and_waits_on_the_mentee_page(month: Site):
    """Approved-by, the gate and the Waited column of each pull request read the same after."""
    before = rows(month.page("/mentorships/mpage"))
    assert "colesbury" in before["7"] and "2 days" in before["7"]
    assert "Waiting for a mentor" in before["8"] and "6 hours so far" in before["8"]
    end(month)
    after = rows(month.page("/mentorships/mpage"))
    # Approved by colesbury, waited 2 days: unchanged, and not said to be lifted (it passed).
    assert after["7"] == before["7"]
    assert "No approval needed" not in after["7"]
    assert "Gate lifted" in after["8"] and "6 hours" in after["8"]
    assert "The gate lifted" in after["8"] and "when the mentorship ended" in after["8"]
    assert "so far" not in after["8"]  # its wait ended when the gate lifted


def test_the_pull_request_page_says_the_gate_lifted(month: Site):
    """An approved pull request still names its approver and is not said to be lifted (its
    gate had passed); a waiting one says the gate lifted."""
    end(month)
    approved = month.page(f"/pulls/{REPO}/7")
    assert "Approved by colesbury" in approved
    assert "lifted" not in approved.lower()
    assert "stopped gating it" in approved
    lifted = month.page(f"/pulls/{REPO}/8").replace("&#39;", "'")
    assert "It waited for a mentor's approval for 6 hours" in lifted
    assert "mentorship ended" in lifted
    assert "Approve merge</button>" not in lifted


def test_api_and_status_json_keep_the_record(month: Site):
    """/api and ``status --json`` still say approved by colesbury, and which gate lifted."""
    end(month)
    document = month.client.get("/api/mentorships/mpage").get_json()
    pulls = {p["number"]: p for p in document["pull_requests"]}
    assert (pulls[7]["gate"], pulls[7]["approved_by"]) == ("approved", ["colesbury"])
    assert pulls[8]["gate"] == "lifted"
    result = month.app.test_cli_runner().invoke(gatekeeper_cli.cli, ["status", "mpage", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["pull_requests"] == document["pull_requests"]


def test_an_approval_after_the_end_is_refused(month: Site):
    """Once the gate lifted, the approved pull request takes no more approvals."""
    end(month)
    month.sign_in("vstinner")
    response = month.post(f"/pulls/{REPO}/7/approve", {"head_sha": SHA})
    assert response.status_code == 409
    assert month.stored_pull(7).approved_by == ["colesbury"]
    assert ("vstinner", "approval") not in month.audit()


def test_a_mentorship_that_lapses_by_its_date_keeps_the_record_too(site: Site):
    """No one ends it: its end date passes, and the next decision lifts the gate the same way."""
    start = utcnow() - timedelta(days=40)
    site.promote(start=start, days=30, now=start)
    site.pull(7, at=start + HOUR)
    site.pull(7)  # decided again after the end date, as the sweep or an event would
    lifted = site.stored_pull(7)
    assert lifted.gate == "lifted" and lifted.gate_title == "Mentorship ended"
    assert lifted.gated_at is not None and lifted.settled_at is not None
    assert store.waited_seconds(lifted, now=utcnow()) == pytest.approx(
        (lifted.settled_at - lifted.gated_at).total_seconds()
    )
    assert (lifted.settled_at - lifted.gated_at) > timedelta(days=39)


def test_migration_copies_the_record_from_the_audit_log(database_url: str):
    """Revision 0006 fills gated_at and settled_at of pull requests decided before it."""
    url = normalise_database_url(database_url)
    db.upgrade(url, revision="0005")
    engine = sa.create_engine(url)
    waited, approved = utcnow() - timedelta(days=2), utcnow() - timedelta(days=1)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO pullrequest (repo, number, author, author_display, title, url,"
                " head_sha, base_ref, draft, state, merged, first_seen_at, gate, gate_title,"
                " gate_summary, approved_by, reviews_requested) VALUES ('python/cpython', 7,"
                " 'mpage', 'mpage', '', '', :sha, 'main', false, 'open', false, :seen,"
                " 'approved', '', '', '[\"colesbury\"]', false)"
            ),
            {"sha": SHA, "seen": waited},
        )
        for kind, at in (("gate_waiting", waited), ("gate_approved", approved)):
            connection.execute(
                sa.text(
                    "INSERT INTO auditevent (at, actor, kind, detail, repo, pr_number)"
                    " VALUES (:at, 'gatekeeper', :kind, '', 'python/cpython', 7)"
                ),
                {"at": at, "kind": kind},
            )
    engine.dispose()
    db.upgrade(url, revision="0006")
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        gated_at, settled_at = connection.execute(
            sa.text("SELECT gated_at, settled_at FROM pullrequest")
        ).one()
    engine.dispose()
    assert as_utc(gated_at) == waited
    assert as_utc(settled_at) == approved


def as_utc(value: object) -> datetime:
    """A stored time read back raw: SQLite gives text without an offset, PostgreSQL a datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.astimezone(UTC)
