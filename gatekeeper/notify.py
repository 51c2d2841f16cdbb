"""Notices to the team's chat: what needs people, said where they already talk.

A notice is one ``Notice`` row, unique per (mentorship, kind, subject): finding it due again
(the next sweep, a redelivered event, a second worker) queues nothing new. ``queue`` stores
the row and asks for a ``send_notice`` job; the worker's ``send`` posts ``{"text": ...}`` to
the mentorship's incoming-webhook URL (its own, else GATEKEEPER_NOTIFY_URL), retried with
backoff while the receiver fails, and records the send in the audit log.

Where notices are found: the sweep calls ``queue_due`` for the ones time brings (a pull
request waiting a day, then three; the month ending in three days, or ended; the weekly
digest); the bypass and the override are queued where they are recorded (``decisions``,
``approvals``); ``mentors_away`` is for whatever records mentors' absences.

The URL is a secret (whoever holds it can post to the channel): it is never logged nor
shown, only its host, and an error names the host alone.

The text is plain: Slack reads ``<url|label>`` and not ``[label](url)``, Discord and Zulip
the other way round; all four (Mattermost too) link a bare URL, so each link stands alone
after its label, and no other markup is used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from gatekeeper import away, jobs, queries
from gatekeeper import mentorships as lifecycle
from gatekeeper.config import Settings
from gatekeeper.gate import GateState
from gatekeeper.models import (
    JobKind,
    Mentorship,
    Notice,
    NoticeKind,
    PullRequest,
)

log = logging.getLogger(__name__)

KIND = JobKind.SEND_NOTICE
AUDIT_KIND = "notified"
DAY = timedelta(days=1)
ENDING_WARNING = timedelta(days=3)
ENDED_RECENTLY = timedelta(days=3)  # an end older than this is no news any more
BYPASS_SETTLE = timedelta(minutes=2)  # as bypass_alerts waits: a late approval clears it

# What was sent, as the audit log says it: "notified the team chat: waiting a day".
WHAT = {
    NoticeKind.WAITING_DAY: "waiting a day",
    NoticeKind.WAITING_THREE_DAYS: "waiting three days",
    NoticeKind.BYPASS: "merged without approval",
    NoticeKind.OVERRIDE: "an override",
    NoticeKind.MENTORS_AWAY: "every mentor away",
    NoticeKind.ENDING_SOON: "the month ends in three days",
    NoticeKind.ENDED: "the month ended",
    NoticeKind.DIGEST: "the weekly digest",
}


class ChatUnavailable(Exception):
    """The chat did not take a notice; the message names the receiver's host, never its URL."""


@dataclasses.dataclass(frozen=True)
class Planned:
    """A notice that is due: who it is about, what it says, and its identity."""

    mentorship_id: int
    mentee: str
    kind: NoticeKind
    subject: str
    text: str
    repo: str | None = None
    pr_number: int | None = None
    delay: timedelta = timedelta(0)

    def line(self) -> str:
        """One line for ``gatekeeper notify --dry-run``."""
        return f"{self.mentee}: {WHAT[self.kind]}: {self.text.splitlines()[0]}"


# ---------------------------------------------------------------- the URL


def host_of(url: str | None) -> str | None:
    """The only part of a notify URL that is ever shown."""
    if not url:
        return None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def url_for(mentorship: Mentorship, settings: Settings) -> str | None:
    """Where ``mentorship``'s notices go: its own URL, else the deployment's."""
    return mentorship.notify_url or settings.notify_url


# ---------------------------------------------------------------- queueing


def queue(session: Session, planned: Planned, *, now: datetime) -> bool:
    """Store ``planned`` and ask for its sending, unless it was queued before; whether new."""
    inserted = session.execute(
        _insert(session)
        .values(
            mentorship_id=planned.mentorship_id,
            kind=planned.kind,
            subject=planned.subject[:200],
            text=planned.text,
            repo=planned.repo,
            pr_number=planned.pr_number,
            queued_at=now,
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["mentorship_id", "kind", "subject"])
        .returning(Notice.id)
    ).first()
    if inserted is None:
        return False
    jobs.enqueue(
        session,
        key=f"{KIND}:{inserted[0]}",
        args=jobs.SendNotice(notice_id=inserted[0]),
        now=now,
        run_after=now + planned.delay,
    )
    return True


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Notice)


def tell(
    session: Session,
    planned: Planned | None,
    *,
    mentorship: Mentorship | None,
    settings: Settings,
    now: datetime,
) -> bool:
    """Queue an event's notice if its mentorship has a chat to send to; whether new."""
    if planned is None or mentorship is None or not url_for(mentorship, settings):
        return False
    return queue(session, planned, now=now)


def queued(session: Session, *, mentorship_ids: list[int]) -> set[tuple[int, str, str]]:
    """The (mentorship, kind, subject) of every notice these mentorships already have."""
    rows = session.exec(
        select(Notice.mentorship_id, Notice.kind, Notice.subject).where(
            col(Notice.mentorship_id).in_(mentorship_ids)
        )
    )
    return {(mentorship_id, kind, subject) for mentorship_id, kind, subject in rows}


def queue_due(session: Session, *, settings: Settings, now: datetime) -> list[Planned]:
    """Queue every time-based notice that is due now; the ones newly queued."""
    return [p for p in due(session, settings=settings, now=now) if queue(session, p, now=now)]


def due(session: Session, *, settings: Settings, now: datetime) -> list[Planned]:
    """Every time-based notice due now and not queued yet (nothing is stored)."""
    mentorships = _with_chat(session, settings=settings, now=now)
    have = queued(session, mentorship_ids=[m.id for m in mentorships if m.id is not None])
    # One read of the long waits for every mentorship, not one per mentorship.
    waits = [
        p for p in queries.waiting_since_before(session, moment=now - DAY) if not p.approved_by
    ]
    private = queries.repository_privacy(session, repos=[p.repo for p in waits])
    found: list[Planned] = []
    for mentorship in mentorships:
        assert mentorship.id is not None
        mine = {(kind, subject) for (m, kind, subject) in have if m == mentorship.id}
        pulls = [p for p in waits if p.gated_mentorship_id == mentorship.id]
        for planned in _due_for(
            session, mentorship, have=mine, pulls=pulls, private=private, settings=settings, now=now
        ):
            if (planned.kind, planned.subject) not in mine:
                found.append(planned)
    found.extend(_stranded(session, mentorships, have=have, now=now))
    return found


def _stranded(
    session: Session,
    mentorships: list[Mentorship],
    *,
    have: set[tuple[int, str, str]],
    now: datetime,
) -> list[Planned]:
    """Every mentor away: once per stretch, named by the moment its last mentor went away."""
    chat = {m.id for m in mentorships}
    found = []
    for stranded in away.stranded(session, now=now):
        if stranded.mentorship.id not in chat:
            continue
        planned = mentors_away(
            stranded.mentorship,
            since=max(a.set_at for a in stranded.away),
            until=min(a.until for a in stranded.away),
        )
        if (planned.mentorship_id, planned.kind, planned.subject) not in have:
            found.append(planned)
    return found


def _with_chat(session: Session, *, settings: Settings, now: datetime) -> list[Mentorship]:
    """Running mentorships and those ended lately, that have somewhere to send to."""
    candidates = session.exec(
        select(Mentorship)
        .where(Mentorship.started_at <= now)
        .where(
            sa.or_(
                col(Mentorship.ended_at).is_(None),
                col(Mentorship.ended_at) > now - ENDED_RECENTLY,
            )
        )
        .order_by(col(Mentorship.id))
    )
    return [m for m in candidates if url_for(m, settings)]


def _due_for(
    session: Session,
    mentorship: Mentorship,
    *,
    have: set[tuple[str, str]],
    pulls: list[PullRequest],
    private: dict[str, bool | None],
    settings: Settings,
    now: datetime,
) -> Iterable[Planned]:
    if mentorship.ended_at is not None:
        yield ended(mentorship)
        return
    if not lifecycle.is_active(mentorship, now):
        return
    yield from waiting(mentorship, pulls, private=private, now=now)
    if mentorship.ends_at - now <= ENDING_WARNING:
        yield ending_soon(mentorship, settings=settings)
    week = f"week {(now - mentorship.started_at).days // 7}"
    if week != "week 0" and (NoticeKind.DIGEST, week) not in have:  # the report is costly
        yield digest(session, mentorship, settings=settings, now=now)


# ---------------------------------------------------------------- what each says


def waiting(
    mentorship: Mentorship,
    pulls: list[PullRequest],
    *,
    private: dict[str, bool | None],
    now: datetime,
) -> Iterable[Planned]:
    """Each of ``pulls`` (waiting a day or more, no mentor's approval yet): a day, or three."""
    assert mentorship.id is not None
    for pull in pulls:
        assert pull.waiting_since is not None
        three = now - pull.waiting_since >= 3 * DAY
        hidden = bool(private.get(pull.repo))
        yield Planned(
            mentorship.id,
            mentorship.mentee_display,
            NoticeKind.WAITING_THREE_DAYS if three else NoticeKind.WAITING_DAY,
            f"{pull.repo}#{pull.number}",
            f"{_pull_words(pull, private=hidden)} by {mentorship.mentee_display} has waited"
            f" {'three days' if three else 'a day'} for a mentor's first review."
            + _link(pull.url, private=hidden),
            repo=pull.repo,
            pr_number=pull.number,
        )


def bypass(session: Session, pull: PullRequest, *, mentorship: Mentorship | None) -> Planned | None:
    """A merge while the gate waited: who merged (the sweep's notice, if the chat is set)."""
    if mentorship is None or mentorship.id is None:
        return None
    private = bool(queries.repository_privacy(session, repos=[pull.repo]).get(pull.repo))
    return Planned(
        mentorship.id,
        mentorship.mentee_display,
        NoticeKind.BYPASS,
        f"{pull.repo}#{pull.number}",
        f"{_pull_words(pull, private=private)} by {mentorship.mentee_display} was merged by"
        f" {pull.merged_by or 'someone'} without a mentor's approval."
        + _link(pull.url, private=private),
        repo=pull.repo,
        pr_number=pull.number,
        delay=BYPASS_SETTLE,
    )


def override(
    session: Session,
    pull: PullRequest,
    *,
    maintainer: str,
    reason: str,
    commit_id: str,
    mentorship: Mentorship | None,
) -> Planned | None:
    """A maintainer let a pull request through without a mentor: who, and why."""
    if mentorship is None or mentorship.id is None:
        return None
    private = bool(queries.repository_privacy(session, repos=[pull.repo]).get(pull.repo))
    why = "" if private else f" Reason: {reason}"
    return Planned(
        mentorship.id,
        mentorship.mentee_display,
        NoticeKind.OVERRIDE,
        f"{pull.repo}#{pull.number}@{commit_id}",
        f"{maintainer} let {_pull_words(pull, private=private)} by"
        f" {mentorship.mentee_display} merge without a mentor's approval.{why}"
        + _link(pull.url, private=private),
        repo=pull.repo,
        pr_number=pull.number,
    )


def mentors_away(mentorship: Mentorship, *, since: datetime, until: date | None) -> Planned:
    """Every mentor of ``mentorship`` is away from ``since`` through ``until``: nobody can
    approve meanwhile. Found by the sweep (``due``), once per stretch: ``since`` names it."""
    assert mentorship.id is not None
    back = f" until {until:%Y-%m-%d}" if until else ""
    return Planned(
        mentorship.id,
        mentorship.mentee_display,
        NoticeKind.MENTORS_AWAY,
        f"{since:%Y-%m-%d}",
        f"Every mentor of {mentorship.mentee_display} is away from {since:%Y-%m-%d}{back}:"
        " their pull requests wait with nobody to approve them.",
    )


def ending_soon(mentorship: Mentorship, *, settings: Settings) -> Planned:
    """The month ends in three days: time to read the report and decide."""
    assert mentorship.id is not None
    return Planned(
        mentorship.id,
        mentorship.mentee_display,
        NoticeKind.ENDING_SOON,
        f"{mentorship.ends_at:%Y-%m-%d}",
        f"{mentorship.mentee_display}'s mentorship ends on {mentorship.ends_at:%Y-%m-%d}."
        f" The month's report: {_report_url(mentorship, settings)}",
    )


def ended(mentorship: Mentorship) -> Planned:
    """The mentorship ended, and how (graduated, revoked, expired)."""
    assert mentorship.id is not None and mentorship.ended_at is not None
    how = mentorship.end_reason or "ended"
    by = f" by {mentorship.ended_by}" if mentorship.ended_by and how != "expired" else ""
    return Planned(
        mentorship.id,
        mentorship.mentee_display,
        NoticeKind.ENDED,
        f"{mentorship.ended_at:%Y-%m-%dT%H:%M}",
        f"{mentorship.mentee_display}'s mentorship ended on {mentorship.ended_at:%Y-%m-%d}:"
        f" {how}{by}.",
    )


def digest(
    session: Session, mentorship: Mentorship, *, settings: Settings, now: datetime
) -> Planned:
    """The week's digest, with the figures the month's report shows."""
    from gatekeeper import report  # the report reads much; only the digest needs it

    assert mentorship.id is not None
    built = report.build(session, mentee=mentorship.mentee, now=now, base_url=settings.base_url)
    week = (now - mentorship.started_at).days // 7
    day = (now - mentorship.started_at).days + 1
    length = (mentorship.ends_at - mentorship.started_at).days
    counts = built.counts
    return Planned(
        mentorship.id,
        mentorship.mentee_display,
        NoticeKind.DIGEST,
        f"week {week}",
        f"{mentorship.mentee_display}, day {day} of {length}: pull requests {counts.approved}"
        f" approved, {counts.waiting} waiting, {counts.merged} merged; median wait"
        f" {report.duration(built.wait_median_seconds)}."
        f" The month's report: {_report_url(mentorship, settings)}",
    )


def _pull_words(pull: PullRequest, *, private: bool) -> str:
    if private:
        return "A pull request in a private repository"
    title = " ".join(pull.title.split())[:120]
    return f"{pull.repo}#{pull.number} ({title})" if title else f"{pull.repo}#{pull.number}"


def _link(url: str, *, private: bool) -> str:
    return "" if private or not url else f"\n{url}"


def _report_url(mentorship: Mentorship, settings: Settings) -> str:
    return f"{settings.base_url}/mentorships/{mentorship.mentee_display}/report"


# ---------------------------------------------------------------- sending (the worker)


def send(session: Session, *, notice_id: int, settings: Settings, now: datetime) -> str | None:
    """Post the notice to its chat once; what happened, for the log (None: nothing to do).

    Raises ChatUnavailable when the receiver fails (the caller retries later), after noting
    the error on the notice.
    """
    notice = session.get(Notice, notice_id)
    if notice is None or notice.sent_at is not None:
        return None
    mentorship = session.get(Mentorship, notice.mentorship_id)
    url = url_for(mentorship, settings) if mentorship is not None else None
    if url is None:
        return "no chat URL is set any more: not sent"
    if notice.kind == NoticeKind.BYPASS and not _still_bypassed(session, notice):
        session.delete(notice)  # approved before the merge after all: nothing to tell
        session.commit()
        return "the bypass was cleared: not sent"
    text, host = notice.text, host_of(url)
    session.commit()  # no transaction stays open while the chat answers
    try:
        _post(url, text, timeout=settings.notify_timeout)
    except ChatUnavailable as error:
        _failed(session, notice_id, error=str(error), now=now)
        raise
    _sent(session, notice, now=now)
    return f"sent to {host}"


class _Unlogged(logging.Filter):
    """Drops urllib3's lines (they name the path, the webhook's secret) while this thread
    posts a notice; its other requests (GitHub's, the forum's) are logged as ever."""

    posting = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.posting, "active", False)


_UNLOGGED = _Unlogged()


@contextlib.contextmanager
def _unlogged() -> Iterator[None]:
    urllib3_log = logging.getLogger("urllib3.connectionpool")
    if _UNLOGGED not in urllib3_log.filters:
        urllib3_log.addFilter(_UNLOGGED)
    _Unlogged.posting.active = True
    try:
        yield
    finally:
        _Unlogged.posting.active = False


def _post(url: str, text: str, *, timeout: float) -> None:
    host = host_of(url)
    try:
        with _unlogged():
            response = requests.post(url, json={"text": text}, timeout=timeout)
    except requests.Timeout:
        raise ChatUnavailable(f"{host} did not answer within {timeout:g} s") from None
    except requests.RequestException as error:
        # Its message holds the URL: only the kind of failure is kept.
        raise ChatUnavailable(f"{host} could not be reached ({type(error).__name__})") from None
    if not 200 <= response.status_code < 300:
        raise ChatUnavailable(f"{host} answered {response.status_code}")


def _still_bypassed(session: Session, notice: Notice) -> bool:
    pull = session.exec(
        select(PullRequest)
        .where(PullRequest.repo == notice.repo)
        .where(PullRequest.number == notice.pr_number)
    ).first()
    return pull is not None and pull.gate == GateState.BYPASSED


def _failed(session: Session, notice_id: int, *, error: str, now: datetime) -> None:
    session.rollback()
    session.execute(
        sa.update(Notice)
        .where(col(Notice.id) == notice_id)
        .values(attempts=Notice.attempts + 1, last_error=error[:300], failed_at=now)
    )
    session.commit()


def _sent(session: Session, notice: Notice, *, now: datetime) -> None:
    """Record the send once (a compare-and-set), and say so in the audit log."""
    marked = session.execute(
        sa.update(Notice)
        .where(col(Notice.id) == notice.id)
        .where(col(Notice.sent_at).is_(None))
        .values(sent_at=now, attempts=Notice.attempts + 1, last_error=None)
    )
    if marked.rowcount:  # type: ignore[attr-defined]
        mentorship = session.get(Mentorship, notice.mentorship_id)
        lifecycle.record(
            session,
            mentorship=mentorship,
            actor="gatekeeper",
            kind=AUDIT_KIND,
            detail=WHAT[NoticeKind(notice.kind)],
            at=now,
            repo=notice.repo,
            pr_number=notice.pr_number,
        )
    session.commit()


# ---------------------------------------------------------------- health


@dataclasses.dataclass(frozen=True)
class Health:
    """How the chat is doing: where it sends, and the notices it could not send."""

    hosts: tuple[str, ...]
    sent: int
    failing: int
    last_error: str | None


def health(session: Session, *, settings: Settings) -> Health:
    """Where notices go (hosts only), how many were sent, and the ones failing now."""
    hosts = {host_of(settings.notify_url)} | {
        host_of(url)
        for url in session.exec(
            select(Mentorship.notify_url).where(col(Mentorship.notify_url).is_not(None))
        )
    }
    sent = session.exec(
        select(sa.func.count()).select_from(Notice).where(col(Notice.sent_at).is_not(None))
    ).one()
    failing = session.exec(
        select(Notice)
        .where(col(Notice.sent_at).is_(None))
        .where(col(Notice.last_error).is_not(None))
        .order_by(col(Notice.failed_at).desc())
    ).all()
    return Health(
        hosts=tuple(sorted(h for h in hosts if h)),
        sent=sent,
        failing=len(failing),
        last_error=failing[0].last_error if failing else None,
    )


@dataclasses.dataclass(frozen=True)
class Sent:
    """A notice about a pull request that reached the chat, for its page."""

    at: datetime
    what: str


def sent_about(session: Session, *, repo: str, number: int) -> list[Sent]:
    """The notices sent about ``repo#number``, oldest first."""
    rows = session.exec(
        select(Notice)
        .where(Notice.repo == repo)
        .where(Notice.pr_number == number)
        .where(col(Notice.sent_at).is_not(None))
        .order_by(col(Notice.sent_at))
    )
    return [Sent(n.sent_at, WHAT[NoticeKind(n.kind)]) for n in rows if n.sent_at]


def pending(session: Session) -> list[Notice]:
    """Notices queued and not sent yet, oldest first."""
    return list(
        session.exec(
            select(Notice).where(col(Notice.sent_at).is_(None)).order_by(col(Notice.queued_at))
        )
    )
