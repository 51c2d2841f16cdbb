"""Notices to the team's chat: each sent once, by the worker, to the right webhook.

A fake chat on loopback (``fakechat.py``) takes the posts. The sweep finds the notices time
brings, the bypass and the override are found where they are recorded; redeliveries, a
second sweep and two workers send nothing twice; a failing chat is retried with backoff and
shown by the doctor; the URL (a secret) is never in a log, a page or an error.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from fakechat import FakeChat
from sqlmodel import Session, select
from test_maintainer import terms

from dashboard_support import Site
from fakegithub import default_user_id
from gate_support import REPO, World, app_for, promote
from gatekeeper import away, config, create_app, db, doctor, github_of, notify, people, report
from gatekeeper import mentorships as lifecycle
from gatekeeper import sweep as sweeper
from gatekeeper.cli import cli
from gatekeeper.events import Person
from gatekeeper.extensions import settings_of
from gatekeeper.models import AuditEvent, Job, Mentorship, Notice, PullRequest, utcnow
from gatekeeper.worker import Worker

HEAD = "a" * 40
TOKEN = "s3cr3tT0k3n"  # the secret part of the webhook URL
HOOK = f"/services/T0001/B0001/{TOKEN}"
OWN_HOOK = "/services/T0002/B0002/0wnT0k3n"


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    """A chat with two incoming webhooks: the deployment's and one a mentorship may use."""
    fake = FakeChat(HOOK, OWN_HOOK)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def world(database_url, github_fake, chat) -> Iterator[World]:
    """The app on the fake GitHub, with GATEKEEPER_NOTIFY_URL the chat's webhook."""
    app = app_for(
        github_fake,
        database_url,
        maintainers="ambv",
        notify_url=chat.url(HOOK),
        notify_timeout=0.5,
    )
    yield World(app, github_fake)
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


def sweep(world: World, *, now: datetime | None = None) -> sweeper.Report:
    """A sweep of what is stored (no GitHub needed for the notices), then the worker."""
    with world.session() as session:
        done = sweeper.sweep(
            session, settings=settings_of(world.app), github=None, now=now or utcnow()
        )
    world.work()
    return done


def waited(world: World, *, hours: float, number: int = 7) -> None:
    """Make the pull request have waited ``hours`` already."""
    with world.session() as session:
        session.execute(
            sa.update(PullRequest)
            .where(PullRequest.number == number)
            .values(waiting_since=utcnow() - timedelta(hours=hours))
        )
        session.commit()


def notified(world: World) -> list[str]:
    """The audit log's lines about notices sent."""
    with world.session() as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.kind == notify.AUDIT_KIND))
        return [e.detail for e in events]


def notices(world: World) -> list[Notice]:
    with world.session() as session:
        return list(session.exec(select(Notice).order_by(Notice.id)))


def merged(world: World, *, delivery_id: str) -> dict:
    """The pull request merged by ``admin`` while it waited, its ``closed`` event delivered."""
    stamp = world.tick()
    world.fake.merge(REPO, 7, merged_by="admin", merged_at=stamp)
    payload = world.events.pull_request(
        "closed", number=7, author="mpage", head_sha=HEAD, merged=True, merged_by="admin",
        updated_at=stamp,
    )  # fmt: skip
    world.send("pull_request", payload, delivery_id=delivery_id, work=False)
    return payload


# ---------------------------------------------------------------- waiting


def test_a_pull_request_waiting_a_day_then_three_is_told_once_each(world, chat):
    """Waiting 25 hours: one notice "waited a day" (a second sweep adds none); at 73 hours
    one "waited three days"; each is in the mentee's audit log."""
    world.promote()
    world.open_pull()
    sweep(world)
    assert chat.messages == []  # not a day yet

    waited(world, hours=25)
    sweep(world)
    sweep(world)
    [day] = chat.texts(HOOK)
    assert f"{REPO}#7" in day and "by mpage has waited a day" in day

    waited(world, hours=73)
    sweep(world)
    sweep(world)
    assert len(chat.messages) == 2
    assert "has waited three days" in chat.texts()[1]
    assert notified(world) == ["waiting a day", "waiting three days"]


def test_an_approved_pull_request_is_not_told_as_waiting(world, chat):
    """A pull request a mentor approved waits for nobody: no notice, however old."""
    world.promote()
    world.open_pull()
    world.review()
    waited(world, hours=80)
    sweep(world)
    assert chat.messages == []


# ---------------------------------------------------------------- events


def test_a_bypass_is_told_once_through_redeliveries_and_two_workers(world, chat):
    """The ``closed`` event delivered twice (a redelivery under a new id), two workers
    draining at once after the settle delay: the chat gets one notice naming the merger."""
    world.promote()
    world.open_pull()
    payload = merged(world, delivery_id="merged-1")
    world.send("pull_request", payload, delivery_id="merged-2", work=False)
    assert world.pull().gate == "bypassed"
    world.retry_now()  # the settle delay passes
    workers = [threading.Thread(target=Worker(world.app).drain) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    world.retry_now()
    world.work()

    [text] = chat.texts()
    assert "was merged by admin without a mentor's approval" in text
    assert [n.kind for n in notices(world)] == ["bypass"]
    assert notified(world) == ["merged without approval"]


def test_an_override_is_told_with_who_and_why_once(world, chat):
    """A maintainer's ``/gatekeeper override REASON``, its comment delivered twice: one notice
    saying who let it through and why."""
    world.promote()
    world.open_pull()
    payload = world.events.comment(
        "created", number=7, sender="ambv", body="/gatekeeper override security fix",
        created_at=world.tick(), comment_id=9001,
    )  # fmt: skip
    world.send("issue_comment", payload, delivery_id="c-1")
    world.send("issue_comment", payload, delivery_id="c-2")
    assert world.pull().gate == "overridden"
    [text] = chat.texts()
    assert text.startswith("ambv let python/cpython#7")
    assert "Reason: security fix" in text


def test_every_mentor_away_is_told_once_per_stretch(world, chat):
    """``notify.mentors_away`` (for the absences code to call) queued twice sends one notice."""
    mentorship = world.promote()
    since = utcnow()
    with world.session() as session:
        for _ in range(2):
            planned = notify.mentors_away(mentorship, since=since, until=since + timedelta(days=5))
            notify.tell(
                session, planned, mentorship=mentorship, settings=settings_of(world.app),
                now=utcnow(),
            )  # fmt: skip
        session.commit()
    world.work()
    [text] = chat.texts()
    assert text.startswith("Every mentor of mpage is away from")


def test_every_mentor_away_is_found_by_the_sweep_and_told_once(world, chat):
    """Both mentors mark themselves away: the next sweep queues one notice saying so, and
    the sweeps after it queue nothing more for the same stretch."""
    with world.session() as session:
        for login in ("mpage", "colesbury", "vstinner"):  # accounts seen, as after an event
            people.learn(session, Person(default_user_id(login), login, login), at=utcnow())
        session.commit()
    world.promote()
    today = utcnow().date()
    with world.session() as session:
        for mentor, days in (("colesbury", 5), ("vstinner", 3)):
            away.set_away(
                session, login=mentor, until=today + timedelta(days=days), note=None,
                actor=mentor, now=utcnow(),
            )  # fmt: skip
        session.commit()
    sweep(world)
    sweep(world)
    [text] = chat.texts()
    assert text.startswith("Every mentor of mpage is away from")
    assert f"until {today + timedelta(days=3):%Y-%m-%d}" in text
    assert [n.kind for n in notices(world)] == [notify.NoticeKind.MENTORS_AWAY]


# ---------------------------------------------------------------- the month


def test_the_month_ending_in_three_days_links_the_report_then_its_end_says_how(world, chat):
    """Two days before the end: the report's link; once graduated: how, and by whom."""
    now = utcnow()
    world.promote(start=now - timedelta(days=5), until=now + timedelta(days=2))
    sweep(world)
    [ending] = chat.texts()
    assert "mpage's mentorship ends on" in ending
    assert "https://gatekeeper.example/mentorships/mpage/report" in ending

    with world.session() as session:
        lifecycle.end(session, mentee="mpage", reason="graduated", actor="ambv", now=utcnow())
        session.commit()
    sweep(world)
    sweep(world)
    assert len(chat.messages) == 2
    assert chat.texts()[1].endswith(": graduated by ambv.")


def test_the_weekly_digest_has_the_reports_figures(world, chat):
    """Eight days in, one pull request approved and one waiting: the digest says day 9 and
    the same counts and median wait as the month's report; a second sweep sends no other."""
    world.promote(start=utcnow() - timedelta(days=8))
    world.open_pull(7)
    world.review(7)
    world.open_pull(8, head_sha="b" * 40)
    moment = utcnow()
    sweep(world, now=moment)
    sweep(world)
    [digest] = [t for t in chat.texts() if ", day " in t]
    with world.session() as session:  # the report as of the sweep that sent the digest
        built = report.build(session, mentee="mpage", now=moment, base_url="")
    counts = built.counts
    assert counts.approved == 1 and counts.waiting == 1
    figures = (
        f"pull requests {counts.approved} approved, {counts.waiting} waiting,"
        f" {counts.merged} merged; median wait {report.duration(built.wait_median_seconds)}"
    )
    assert figures in digest
    assert re.search(r"mpage, day 9 of \d+:", digest)


# ---------------------------------------------------------------- failing chats


def test_a_failing_chat_is_retried_with_backoff_and_shown_by_the_doctor(world, chat):
    """The chat answers 500 then 404: the notice stays unsent, its job waits longer each time,
    the doctor's check fails naming the host and the status (not the URL); once the chat
    takes it, it is sent once and the doctor passes."""
    world.promote()
    world.open_pull()
    waited(world, hours=25)
    chat.fail_with(500)
    chat.fail_with(404)
    sweep(world)
    [notice] = notices(world)
    assert notice.sent_at is None and notice.last_error == "127.0.0.1 answered 500"
    first_wait = _job_wait(world)

    world.retry_now()
    world.work()
    assert notices(world)[0].last_error == "127.0.0.1 answered 404"
    assert _job_wait(world) > first_wait
    with world.app.app_context(), world.session() as session:
        check = doctor.chat_check(session, settings=settings_of(world.app))
    assert not check.ok
    assert "1 notices to 127.0.0.1 not sent" in check.detail and "404" in check.detail
    assert TOKEN not in check.detail + check.fix
    site = Site(world.app)
    site.sign_in("ambv")
    health = site.client.get("/admin/health").get_data(as_text=True)
    assert "127.0.0.1 answered 404" in health and TOKEN not in health

    world.retry_now()
    world.work()
    world.retry_now()
    world.work()
    assert len(chat.messages) == 1
    with world.app.app_context():
        [check] = [
            c for c in doctor.database_checks(world.app, now=utcnow()) if c.name == "team chat"
        ]
    assert check.ok and "sends to 127.0.0.1; 1 notices sent" in check.detail


def test_a_slow_chat_times_out_and_is_tried_again(world, chat):
    """A chat slower than the timeout: the try is recorded as failed and retried later."""
    world.promote()
    world.open_pull()
    waited(world, hours=25)
    chat.delay = 1.0
    sweep(world)
    [notice] = notices(world)
    assert notice.last_error == "127.0.0.1 did not answer within 0.5 s"
    assert _job_wait(world) > timedelta(0)


def _job_wait(world: World) -> timedelta:
    with world.session() as session:
        job = session.exec(select(Job).where(Job.kind == "send_notice")).one()
        return job.run_after - utcnow()


# ---------------------------------------------------------------- the URL is a secret


def test_the_url_is_never_logged_shown_nor_echoed(world, chat, caplog):
    """Failing and succeeding sends, the terms changed to a mentorship's own URL, the mentee
    page and the CLI's answers: the webhook's secret path appears in none of them."""
    caplog.set_level(logging.DEBUG)
    world.promote()
    world.open_pull()
    waited(world, hours=25)
    chat.fail_with(500)
    sweep(world)
    world.retry_now()
    world.work()
    runner = world.app.test_cli_runner()
    changed = runner.invoke(
        cli, ["change", "mpage", "--notify-url", chat.url(OWN_HOOK), "--no-wait", "--by", "ambv"]
    )
    assert changed.exit_code == 0, changed.output
    refused = runner.invoke(cli, ["change", "mpage", "--notify-url", "ftp://x/" + TOKEN])
    assert refused.exit_code == 1
    site = Site(world.app)
    site.sign_in("ambv")
    mentee_page, pull_page = site.page("/mentorships/mpage"), site.page(f"/pulls/{REPO}/7")
    page = mentee_page + pull_page

    assert "Notices now go to 127.0.0.1" in mentee_page
    told = "<strong>notified the team chat</strong>"
    assert f'{told} <a href="/pulls/{REPO}/7">{REPO}#7</a>: waiting a day' in mentee_page
    assert f"{told}: waiting a day" in pull_page
    everything = caplog.text + changed.output + refused.output + page
    assert TOKEN not in everything and "0wnT0k3n" not in everything
    assert "team chat: the deployment&#39;s → 127.0.0.1" in page  # the audit log: hosts only


def test_a_malformed_deployment_url_is_refused_without_repeating_it(tmp_path):
    """GATEKEEPER_NOTIFY_URL that is not an http(s) URL stops start-up, naming the variable."""
    with pytest.raises(config.ConfigError) as refused:
        config.Settings.from_env(
            {"GATEKEEPER_NOTIFY_URL": "hooks.slack.com/services/T/B/" + TOKEN},
            instance_path=str(tmp_path),
        )
    assert "GATEKEEPER_NOTIFY_URL" in str(refused.value) and TOKEN not in str(refused.value)
    settings = config.Settings.from_env(
        {"GATEKEEPER_NOTIFY_URL": "https://hooks.slack.com/services/T/B/" + TOKEN},
        instance_path=str(tmp_path),
    )
    assert TOKEN not in repr(settings)


# ---------------------------------------------------------------- per mentorship


def test_a_mentorships_own_url_wins_and_clearing_it_goes_back(world, chat):
    """``change --notify-url`` sends the mentee's notices to its own webhook; ``""`` clears it
    and they go to the deployment's again."""
    world.promote()
    world.open_pull(7)
    runner = world.app.test_cli_runner()
    result = runner.invoke(
        cli, ["change", "mpage", "--notify-url", chat.url(OWN_HOOK), "--no-wait", "--by", "ambv"]
    )
    assert "team chat: the deployment's → 127.0.0.1" in result.output
    waited(world, hours=25, number=7)
    sweep(world)
    assert len(chat.texts(OWN_HOOK)) == 1 and chat.texts(HOOK) == []

    result = runner.invoke(
        cli, ["change", "mpage", "--notify-url", "", "--no-wait", "--by", "ambv"]
    )
    assert "team chat: 127.0.0.1 → the deployment's" in result.output
    with world.session() as session:
        assert session.exec(select(Mentorship)).one().notify_url is None
    world.open_pull(8, head_sha="b" * 40)
    waited(world, hours=25, number=8)
    sweep(world)
    assert len(chat.texts(HOOK)) == 1 and "#8" in chat.texts(HOOK)[0]


def test_the_terms_form_sets_refuses_and_clears_a_mentorships_url(world, chat):
    """A maintainer types a mentorship's own URL in the terms form: stored, and the page shows
    only its host (the field stays empty); a malformed one is refused in its field without
    being repeated; "forget this one" goes back to the deployment's."""
    world.promote()
    site = Site(world.app)
    site.sign_in("ambv")

    saved = site.post("/mentorships/mpage/terms", terms(site, notify_url=chat.url(OWN_HOOK)))
    assert saved.status_code == 302
    assert site.mentorship().notify_url == chat.url(OWN_HOOK)
    page = site.page("/mentorships/mpage")
    assert "Notices now go to 127.0.0.1 (this mentorship's own)" in page
    assert "0wnT0k3n" not in page

    refused = site.post("/mentorships/mpage/terms", terms(site, notify_url="nope/0wnT0k3n"))
    assert refused.status_code == 400
    assert "The team chat URL must be the chat&#39;s incoming-webhook" in refused.text
    assert "0wnT0k3n" not in refused.text

    site.post("/mentorships/mpage/terms", terms(site, clear_notify_url=True))
    assert site.mentorship().notify_url is None


def test_a_worker_without_github_still_sends_notices(database_url, chat):
    """With no GitHub App configured the worker posts no checks, but the chat's notices need
    no GitHub: they are sent."""
    app = create_app(
        {"database_url": database_url, "secret_key": "test", "notify_url": chat.url(HOOK)}
    )
    db.upgrade(settings_of(app).database_url)
    mentorship = promote(app, actor="ambv")
    with Session(app.extensions["gatekeeper.engine"]) as session:
        planned = notify.mentors_away(mentorship, since=utcnow(), until=None)
        notify.tell(
            session, planned, mentorship=mentorship, settings=settings_of(app), now=utcnow()
        )
        session.commit()
    Worker(app).drain()
    assert len(chat.texts(HOOK)) == 1
    app.extensions["gatekeeper.engine"].dispose()


def test_without_any_url_nothing_is_queued(database_url, github_fake, chat):
    """No GATEKEEPER_NOTIFY_URL and no mentorship's own: a waiting pull request queues nothing."""
    app = app_for(github_fake, database_url)
    world = World(app, github_fake)
    world.promote()
    world.open_pull()
    waited(world, hours=25)
    sweep(world)
    assert notices(world) == [] and chat.requests == []
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


# ---------------------------------------------------------------- the command


def test_notify_dry_run_prints_what_is_due_and_sends_nothing(world, chat):
    """``notify --dry-run`` names the notice and the host and stores nothing; ``notify``
    then sends it, and a second ``notify`` sends nothing more."""
    world.promote()
    world.open_pull()
    waited(world, hours=25)
    runner = world.app.test_cli_runner()

    dry = runner.invoke(cli, ["notify", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would send to 127.0.0.1: mpage: waiting a day: python/cpython#7" in dry.output
    assert TOKEN not in dry.output
    assert notices(world) == [] and chat.requests == []

    sent = runner.invoke(cli, ["notify"])
    assert sent.exit_code == 0, sent.output
    assert "1 notices queued; 0 could not be sent now." in sent.output
    again = runner.invoke(cli, ["notify"])
    assert "0 notices queued" in again.output
    assert len(chat.messages) == 1
    assert runner.invoke(cli, ["notify", "--dry-run"]).output.strip() == (
        "Nothing to send to the team chat now."
    )
