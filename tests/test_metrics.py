"""``/metrics``: the counts a run produced, the database's gauges, the bearer token, gunicorn."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session, col
from test_concurrency import free_port, launch, stop

from database_support import migrate
from fakegithub import FakeGitHub
from gate_support import INSTALLATION, REPO, SECRET, app_for, promote
from gatekeeper import create_app, github_of
from gatekeeper.config import normalise_database_url
from gatekeeper.models import CommitCheck, utcnow
from webhook_events import Events, signed

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 for a series not (yet) there, as Prometheus reads it."""
    return found.get((name, frozenset(labels.items())), 0.0)


def scrape(client, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    return samples(response.get_data(as_text=True))


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def requests_by_method_and_status(fake: FakeGitHub) -> collections.Counter[tuple[str, str]]:
    return collections.Counter((call.method, str(call.status)) for call in fake.calls)


def test_a_run_is_counted_as_it_happened(world):
    """A promotion, a waiting pull request, an approval, a duplicate and a forged delivery:
    deliveries by event and outcome, two checks posted, every GitHub request by method and
    status as the fake saw them, and the installation's rate limit as GitHub last said."""
    client, fake = world.client, world.fake
    before = scrape(client)
    world.promote()
    world.open_pull(7)  # the check waits: posted
    again = world.events.pull_request("opened", number=7, author="mpage", head_sha="a" * 40)
    world.send("pull_request", again, delivery_id="dup")  # an older snapshot: no change
    world.send("pull_request", again, delivery_id="dup")  # GitHub's redelivery of it
    world.review(7, reviewer="colesbury", state="approved")  # the check passes: posted
    forged = client.post(
        "/webhooks/github",
        data=b"{}",
        headers={
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": "forged",
            "X-Hub-Signature-256": "sha256=0",
        },
    )
    assert forged.status_code == 401
    after = scrape(client)

    deliveries = "gatekeeper_webhook_deliveries_total"
    assert delta(after, before, deliveries, event="pull_request", outcome="queued") == 2
    assert delta(after, before, deliveries, event="pull_request", outcome="duplicate") == 1
    assert delta(after, before, deliveries, event="pull_request_review", outcome="queued") == 1
    assert delta(after, before, deliveries, event="pull_request", outcome="unauthorized") == 1
    assert delta(after, before, "gatekeeper_webhook_duration_seconds_count") == 5
    applied = "gatekeeper_deliveries_applied_total"
    assert delta(after, before, applied, event="pull_request", outcome="processed") == 2
    assert delta(after, before, applied, event="pull_request_review", outcome="processed") == 1
    assert delta(after, before, "gatekeeper_delivery_queue_seconds_count") == 3
    assert delta(after, before, "gatekeeper_check_posts_total", result="posted") == 2
    for (method, status), count in requests_by_method_and_status(fake).items():
        assert (
            delta(after, before, "gatekeeper_github_requests_total", method=method, status=status)
            == count
        ), (method, status)
    spent = len(fake.counted_calls(f"installation:{INSTALLATION}"))
    assert value(after, "gatekeeper_github_rate_limit_remaining", installation="1") == 5000 - spent
    assert value(after, "gatekeeper_mentorships", state="active") == 1
    assert value(after, "gatekeeper_pull_requests_waiting") == 0
    assert value(after, "gatekeeper_outbox_pending") == 0
    assert value(after, "gatekeeper_database_up") == 1


def test_a_waiting_check_and_an_old_outbox_row_show_in_the_gauges(world):
    """A pull request left waiting, and a post that has not gone out for eleven minutes:
    one pull request waiting, one commit pending, aged at least 660 seconds."""
    world.promote()
    world.open_pull(7)
    world.fake.add_pull(REPO, 8, author="mpage", head_sha="b" * 40)
    opened = world.events.pull_request(
        "opened", number=8, author="mpage", head_sha="b" * 40, updated_at=world.tick()
    )
    world.send("pull_request", opened, work=False)  # no worker: its check stays in the outbox
    with world.session() as session:
        session.execute(
            sa.update(CommitCheck)
            .where(col(CommitCheck.head_sha) == "b" * 40)
            .values(desired_at=utcnow() - timedelta(minutes=11))
        )
        session.commit()
    found = scrape(world.client)
    assert value(found, "gatekeeper_pull_requests_waiting") == 2
    assert value(found, "gatekeeper_outbox_pending") == 1
    assert value(found, "gatekeeper_outbox_oldest_age_seconds") >= 660


def test_mentorships_are_counted_by_state(app):
    """One active, one scheduled for next week, one ended early: one of each."""
    now = utcnow()
    promote(app, "mpage", actor="ambv")
    promote(app, "newbie", actor="ambv", start=now + timedelta(days=7))
    ended = promote(app, "former", actor="ambv")
    from gatekeeper import mentorships as lifecycle

    with Session(app.extensions["gatekeeper.engine"]) as session:
        lifecycle.end(
            session, mentee=ended.mentee, reason="graduated", note=None, actor="ambv", now=now
        )
        session.commit()
    found = scrape(app.test_client())
    assert value(found, "gatekeeper_mentorships", state="active") == 1
    assert value(found, "gatekeeper_mentorships", state="scheduled") == 1
    assert value(found, "gatekeeper_mentorships", state="ended") == 1


def test_a_sweep_is_timed_and_its_end_is_the_last_success(world):
    """A sweep: one more observation of its duration; its finish is the last success."""
    before = scrape(world.client)
    assert value(before, "gatekeeper_sweep_last_success_timestamp_seconds") == 0
    started = time.time()
    from gatekeeper import settings_of
    from gatekeeper import sweep as sweeper

    with world.session() as session:
        sweeper.sweep(
            session, settings=settings_of(world.app), github=github_of(world.app), now=utcnow()
        )
    after = scrape(world.client)
    assert delta(after, before, "gatekeeper_sweep_duration_seconds_count") == 1
    assert value(after, "gatekeeper_sweep_last_success_timestamp_seconds") >= int(started)


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Bearer wrong", 401),
        ("Basic s3cret-metrics", 401),
        ("Bearer s3cret-metrics", 200),
        ("bearer s3cret-metrics", 200),
    ],
)
def test_the_token_is_required_when_set(database_url, tmp_path, header, status):
    """With GATEKEEPER_METRICS_TOKEN set, only ``Authorization: Bearer <token>`` scrapes."""
    migrate(database_url)
    app = create_app(
        {"database_url": database_url, "metrics_token": "s3cret-metrics", "TESTING": True}
    )
    response = app.test_client().get(
        "/metrics", headers={"Authorization": header} if header else {}
    )
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert b"gatekeeper_" not in response.data
    else:
        assert b"gatekeeper_outbox_pending" in response.data
    app.extensions["gatekeeper.engine"].dispose()


def test_an_unanswering_database_is_database_up_0(tmp_path):
    """A database without Gatekeeper's tables: the scrape still answers, database_up 0."""
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'empty.sqlite'}", "TESTING": True})
    found = scrape(app.test_client())
    assert value(found, "gatekeeper_database_up") == 0
    assert ("gatekeeper_outbox_pending", frozenset()) not in found
    app.extensions["gatekeeper.engine"].dispose()


# ---------------------------------------------------------------- under gunicorn


def _environment(fake: FakeGitHub, database_url: str, metrics_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "GITHUB_APP_ID": str(fake.app_id),
        "GITHUB_PRIVATE_KEY": fake.private_key_pem,
        "GITHUB_API_URL": fake.api_url,
        "GITHUB_URL": fake.url,
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "GITHUB_APP_SLUG": fake.app_slug,
        "GATEKEEPER_METRICS_TOKEN": "scrape-token",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "PYTHONUNBUFFERED": "1",
    }


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    pytest.fail(f"gunicorn did not answer in 60 s\n{log.read_text()[-3000:]}")


def _workers_of(master: int) -> set[int]:
    """The pids of gunicorn's workers: the master's children."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                found.add(int(entry.name))
    return found


def test_gunicorn_workers_and_a_worker_process_are_counted_together(
    github_fake, database_url, tmp_path
):
    """gunicorn with 2 workers (all replaced half-way by a HUP, so deliveries are answered by
    four processes, two of them gone by the end) and a ``gatekeeper worker --once`` process
    beside it, sharing PROMETHEUS_MULTIPROC_DIR: every scrape shows exactly the deliveries
    sent, the checks the worker posted and the GitHub requests the fake received."""
    app = app_for(github_fake, database_url)
    promote(app, "mpage", actor="ambv")
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()
    env = _environment(github_fake, normalise_database_url(database_url), tmp_path / "metrics")
    url = f"http://127.0.0.1:{free_port()}"
    log = tmp_path / "gunicorn.log"
    web = launch(
        [
            sys.executable, "-m", "gunicorn", "--config", "python:gatekeeper.gunicorn_conf",
            "--workers", "2", "--bind", url.removeprefix("http://"), "--graceful-timeout", "5",
            "--no-control-socket", "gatekeeper:create_app()",
        ],
        env=env,
        log=log,
    )  # fmt: skip
    events = Events(repo=REPO, installation_id=INSTALLATION)
    sent: collections.Counter[tuple[str, str]] = collections.Counter()

    def send(event: str, payload: dict, delivery: str, *, secret: str = SECRET) -> None:
        body = json.dumps(payload).encode()
        answer = requests.post(
            f"{url}/webhooks/github",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": signed(secret, body),
            },
            timeout=60,  # on a loaded machine a worker's first answer waits for its import
        )
        sent[(event, answer.json().get("outcome") or "unauthorized")] += 1

    try:
        _wait_for(url, web, log)
        first = _workers_of(web.pid)
        for number in range(1, 7):
            github_fake.add_pull(REPO, number, author="mpage", head_sha=f"{number:040x}")
            send("pull_request", events.pull_request("opened", number=number, author="mpage",
                 head_sha=f"{number:040x}"), f"open-{number}")  # fmt: skip
        send("pull_request", events.pull_request("opened", number=1, author="mpage",
             head_sha=f"{1:040x}"), "open-1")  # fmt: skip
        web.send_signal(signal.SIGHUP)  # new workers; the first two exit
        deadline = time.monotonic() + 60
        while _workers_of(web.pid) & first or len(_workers_of(web.pid)) != 2:
            assert time.monotonic() < deadline, "gunicorn did not replace its workers"
            time.sleep(0.1)
        _wait_for(url, web, log)  # the new workers have imported the app
        for number in range(7, 10):
            github_fake.add_pull(REPO, number, author="someone", head_sha=f"{number:040x}")
            send("pull_request", events.pull_request("opened", number=number, author="someone",
                 head_sha=f"{number:040x}"), f"open-{number}")  # fmt: skip
        forged = events.pull_request("opened", number=9, author="someone", head_sha="f" * 40)
        send("pull_request", forged, "forged", secret="wrong")
        posted = subprocess.run(
            [sys.executable, "-c", "from gatekeeper.cli import main; main()", "worker", "--once"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert posted.returncode == 0, posted.stderr
        assert "Deliveries applied: 9; checks posted: 9" in posted.stdout
        assert requests.get(f"{url}/metrics", timeout=60).status_code == 401
        scrapes = [
            samples(
                requests.get(
                    f"{url}/metrics", headers={"Authorization": "Bearer scrape-token"}, timeout=60
                ).text
            )
            for _ in range(4)
        ]
    finally:
        stop(web)
    # open-1 sent again while still queued is answered with where it is: queued.
    assert sent == {("pull_request", "queued"): 10, ("pull_request", "unauthorized"): 1}
    for found in scrapes:  # whichever worker answered
        for (event, outcome), count in sent.items():
            assert (
                value(found, "gatekeeper_webhook_deliveries_total", event=event, outcome=outcome)
                == count
            )
        assert value(found, "gatekeeper_webhook_duration_seconds_count") == 11
        applied = "gatekeeper_deliveries_applied_total"  # by the worker process
        assert value(found, applied, event="pull_request", outcome="processed") == 9
        assert value(found, "gatekeeper_check_posts_total", result="posted") == 9
        for (method, status), count in requests_by_method_and_status(github_fake).items():
            assert (
                value(found, "gatekeeper_github_requests_total", method=method, status=status)
                == count
            ), (method, status)
        spent = len(github_fake.counted_calls(f"installation:{INSTALLATION}"))
        assert value(found, "gatekeeper_github_rate_limit_remaining", installation="1") == (
            5000 - spent
        )
        assert value(found, "gatekeeper_pull_requests_waiting") == 6
        assert value(found, "gatekeeper_outbox_pending") == 0
