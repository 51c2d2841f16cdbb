"""Prometheus metrics: what each process counts, what ``/metrics`` reads from the database.

Counters and histograms are counted where things happen (the webhook view, the worker, the
GitHub gateway, the sweep). Under gunicorn each worker is its own process, so with
``PROMETHEUS_MULTIPROC_DIR`` set (``gatekeeper.gunicorn_conf`` sets it) every process writes
its values to files there and a scrape adds them up; ``gatekeeper worker`` and the clock
count into the same directory when they share the host and the variable. Without it (``gatekeeper
serve``) the one process's own registry is served. The state of the work (the outbox, the
mentorships, the waiting pull requests, the last sweep) is read from the database at scrape
time, so every process that answers ``/metrics`` tells the same.
"""

from __future__ import annotations

import hmac
import os
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlmodel import Session, col, select

from gatekeeper import db, outbox
from gatekeeper.app_manifest import REQUIRED_EVENTS
from gatekeeper.extensions import settings_of
from gatekeeper.gate import GateState
from gatekeeper.models import Mentorship, PullRequest, SweepRun, utcnow

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Events a delivery is counted under by name; anything else (the header is the sender's to
# choose) is "other", so no one can grow the number of series.
KNOWN_EVENTS = frozenset(
    {
        *REQUIRED_EVENTS,
        "installation",
        "installation_repositories",
        "ping",
        "github_app_authorization",
    }
)

# Histograms without labels open their file in this directory as they are defined: a
# process started before gunicorn made it (a CLI command, a worker) makes it itself.
if os.environ.get(MULTIPROC_DIR):
    Path(os.environ[MULTIPROC_DIR]).mkdir(parents=True, exist_ok=True)

WEBHOOK_DELIVERIES = Counter(
    "gatekeeper_webhook_deliveries",
    "Webhook deliveries answered, by event and outcome.",
    ["event", "outcome"],
)
WEBHOOK_DURATION = Histogram(
    "gatekeeper_webhook_duration_seconds",
    "Time from a delivery's arrival to its answer.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DELIVERIES_APPLIED = Counter(
    "gatekeeper_deliveries_applied",
    "Stored deliveries the worker applied, by event and outcome.",
    ["event", "outcome"],
)
DELIVERY_QUEUE = Histogram(
    "gatekeeper_delivery_queue_seconds",
    "Time from a delivery's arrival to the worker having applied it.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
CHECK_POSTS = Counter(
    "gatekeeper_check_posts",
    "Check runs the worker tried to put on GitHub, by result.",
    ["result"],
)
GITHUB_REQUESTS = Counter(
    "gatekeeper_github_requests",
    "HTTP requests to GitHub's API, by method and status ('error': no answer).",
    ["method", "status"],
)
RATE_LIMIT_REMAINING = Gauge(
    "gatekeeper_github_rate_limit_remaining",
    "GitHub's X-RateLimit-Remaining on the last answer, by installation ('app': the App's JWT).",
    ["installation"],
    multiprocess_mode="mostrecent",
)
SWEEP_DURATION = Histogram(
    "gatekeeper_sweep_duration_seconds",
    "How long a whole sweep took.",
    buckets=(0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0),
)

bp = Blueprint("metrics", __name__)


# ---------------------------------------------------------------- counting


def delivery_answered(*, event: str | None, outcome: str, seconds: float) -> None:
    """Count one webhook delivery and how long its answer took."""
    label = event if event in KNOWN_EVENTS else "other"
    WEBHOOK_DELIVERIES.labels(event=label, outcome=outcome).inc()
    WEBHOOK_DURATION.observe(seconds)


def delivery_applied(*, event: str, outcome: str, seconds: float | None) -> None:
    """Count one delivery the worker applied, and how long it waited since it arrived (None:
    it waits on, deferred)."""
    label = event if event in KNOWN_EVENTS else "other"
    DELIVERIES_APPLIED.labels(event=label, outcome=outcome).inc()
    if seconds is not None:
        DELIVERY_QUEUE.observe(seconds)


def check_post(result: str) -> None:
    """Count one attempt to post a check run: posted, superseded, retrying, given_up, error."""
    CHECK_POSTS.labels(result=result).inc()


def github_request(method: str, status: int | None) -> None:
    """Count one request to GitHub; ``status`` None when no answer came."""
    GITHUB_REQUESTS.labels(method=method.upper(), status=str(status or "error")).inc()


def rate_limit_remaining(installation: int | None, remaining: int) -> None:
    """Record what GitHub said is left of a credential's hourly budget."""
    RATE_LIMIT_REMAINING.labels(installation=str(installation or "app")).set(remaining)


# ---------------------------------------------------------------- scraping


class Gauges:
    """Metric families already computed, in the shape ``generate_latest`` reads."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        """The families, as a registry's ``collect`` gives them."""
        return self.families


def database_gauges(session: Session, *, now: datetime) -> list[Metric]:
    """The outbox, the mentorships by state, the waiting pull requests and the last sweep,
    with ``gatekeeper_database_up`` 1; only that, at 0, when the database does not answer."""
    up = GaugeMetricFamily("gatekeeper_database_up", "Whether the database answered the scrape.")
    try:
        families = _read_gauges(session, now=now)
    except sa.exc.SQLAlchemyError:
        session.rollback()
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    return [up, *families]


def _read_gauges(session: Session, *, now: datetime) -> list[Metric]:
    from gatekeeper import deliveries  # which counts into this module as it applies

    pending = GaugeMetricFamily(
        "gatekeeper_outbox_pending", "Commits whose latest check is not on GitHub yet."
    )
    pending.add_metric([], outbox.pending_count(session))
    oldest = outbox.oldest_pending(session)
    age = GaugeMetricFamily(
        "gatekeeper_outbox_oldest_age_seconds",
        "Seconds the longest-waiting check has waited to be posted (0: none waits).",
    )
    age.add_metric([], max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
    queued, received = deliveries.queued(session)
    waiting_deliveries = GaugeMetricFamily(
        "gatekeeper_deliveries_queued", "Deliveries stored and not applied by a worker yet."
    )
    waiting_deliveries.add_metric([], queued)
    delivery_age = GaugeMetricFamily(
        "gatekeeper_deliveries_oldest_age_seconds",
        "Seconds the oldest queued delivery has waited to be applied (0: none waits).",
    )
    delivery_age.add_metric([], max((now - received).total_seconds(), 0.0) if received else 0.0)
    states = GaugeMetricFamily("gatekeeper_mentorships", "Mentorships by state.", labels=["state"])
    for state, count in mentorships_by_state(session, now=now).items():
        states.add_metric([state], count)
    waiting = GaugeMetricFamily(
        "gatekeeper_pull_requests_waiting", "Open pull requests waiting for a mentor."
    )
    waiting.add_metric([], pulls_waiting(session))
    swept = session.get(SweepRun, "sweep")
    last = GaugeMetricFamily(
        "gatekeeper_sweep_last_success_timestamp_seconds",
        "When the last whole sweep finished, as a Unix time (0: never).",
    )
    last.add_metric([], swept.finished_at.timestamp() if swept else 0.0)
    session.rollback()  # only reads: end the transaction before the answer goes
    return [pending, age, waiting_deliveries, delivery_age, states, waiting, last]


def mentorships_by_state(session: Session, *, now: datetime) -> dict[str, int]:
    """How many mentorships are active, scheduled and ended (``mentorships.state_of``'s rule)."""
    ended = col(Mentorship.ended_at).is_not(None) | (col(Mentorship.ends_at) <= now)
    state = sa.case(
        (ended, "ended"), (col(Mentorship.started_at) > now, "scheduled"), else_="active"
    ).label("state")
    counts = {"active": 0, "scheduled": 0, "ended": 0}
    for name, count in session.exec(select(state, sa.func.count()).group_by(state)):
        counts[name] = count
    return counts


def pulls_waiting(session: Session) -> int:
    """Open pull requests whose gate waits for a mentor's approval."""
    return session.exec(
        select(sa.func.count())
        .select_from(PullRequest)
        .where(PullRequest.state == "open")
        .where(PullRequest.gate == GateState.WAITING)
    ).one()


def process_metrics() -> bytes:
    """Every process's counters under gunicorn (the multiprocess files), else this one's."""
    if not os.environ.get(MULTIPROC_DIR):
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def authorised(expected: str | None, header: str | None) -> bool:
    """Whether ``header`` is ``Bearer <expected>`` (constant-time); no token set: anyone."""
    if not expected:
        return True
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    """Prometheus exposition: the processes' counters and the database's gauges."""
    if not authorised(settings_of(current_app).metrics_token, request.headers.get("Authorization")):
        return Response(
            "a bearer token is required (GATEKEEPER_METRICS_TOKEN)\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
            mimetype="text/plain",
        )
    gauges = Gauges(database_gauges(db.get_session(), now=utcnow()))
    body = process_metrics() + generate_latest(gauges)
    return Response(body, 200, {"Content-Type": CONTENT_TYPE_LATEST})
