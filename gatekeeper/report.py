"""The month's report, for the graduation decision: ``gatekeeper report`` and its web page.

``build`` reads one mentorship's record into a ``Report`` (plain data, a bounded number of
queries); ``document`` makes the stable JSON document of ``report --json`` and
``/api/mentorships/<mentee>/report``; ``markdown`` the text to paste into the forum thread
(a table, links, no HTML); ``plain`` the terminal's. The HTML page renders the same
``Report`` through ``templates/report.html``.

The figures come from each pull request's stored record (``gated_at``, ``settled_at``,
``approved_by``: kept when the mentorship ends), the mentors' approvals (``Review`` rows) and
the audit log (extensions, bypass acknowledgements).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import statistics
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from gatekeeper import gate, queries
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.documents import promotion_document
from gatekeeper.gate import GateState
from gatekeeper.models import (
    AuditEvent,
    EndReason,
    MentorAssignment,
    Mentorship,
    Override,
    PullRequest,
    utcnow,
)
from gatekeeper.pages import shown_state
from gatekeeper.queries import ACKNOWLEDGED
from gatekeeper.visibility import (
    CLI,
    EVERY_REPOSITORY,
    PRIVATE_PULL,
    Viewer,
    hidden_from,
    private_count,
    sees_all,
)
from gatekeeper.words import plural

READY_BEFORE_END = timedelta(days=7)  # the report is linked this long before the end
RECENTLY_EXPIRED = timedelta(days=14)  # an expired month still awaits a decision this long
GATED = (
    GateState.WAITING,
    GateState.APPROVED,
    GateState.OVERRIDDEN,
    GateState.BYPASSED,
    GateState.LIFTED,
)


# ---------------------------------------------------------------- the report as data


@dataclasses.dataclass(frozen=True)
class Extension:
    """The mentorship's end moved later."""

    at: datetime
    by: str
    detail: str


@dataclasses.dataclass(frozen=True)
class Period:
    """When the mentorship ran, how often it was extended and how it ended."""

    started_at: datetime
    ends_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    ended_by: str | None
    end_note: str | None
    days_active: int
    extensions: tuple[Extension, ...]

    @property
    def ended_early(self) -> bool:
        """Ended (graduated or revoked) before its planned end."""
        return self.ended_at is not None and self.ended_at < self.ends_at


@dataclasses.dataclass(frozen=True)
class PullLine:
    """One of the mentee's pull requests in the period; ``None`` fields when redacted."""

    repo: str | None
    number: int | None
    title: str | None
    url: str | None
    state: str  # as pages.shown_state: waiting, approved, merged, bypassed, lifted, ...
    gated: bool
    approved_by: tuple[str, ...] | None
    waited_seconds: int | None

    @property
    def redacted(self) -> bool:
        return self.repo is None


@dataclasses.dataclass(frozen=True)
class MentorLine:
    """One mentor's part: their approvals that counted (the pull requests whose "approved by"
    names them, as the pull request table does) and the median time from the pull request's
    first wait to their approval; ``removed`` when no longer a mentor."""

    login: str
    approvals: int
    median_seconds_to_approve: int | None
    removed: bool = False


@dataclasses.dataclass(frozen=True)
class Acknowledgement:
    """Someone said they saw a bypass, and why it was fine (or not)."""

    by: str
    at: datetime
    note: str


@dataclasses.dataclass(frozen=True)
class BypassLine:
    """A pull request merged while its gate waited; ``None`` fields when redacted."""

    repo: str | None
    number: int | None
    url: str | None
    merged_by: str | None
    merged_at: datetime | None
    acknowledged: Acknowledgement | None


@dataclasses.dataclass(frozen=True)
class OverrideLine:
    """A maintainer let a pull request through without a mentor; ``None`` fields (and an
    empty reason, which may name it) when the pull request is redacted."""

    repo: str | None
    number: int | None
    url: str | None
    by: str
    at: datetime
    reason: str


@dataclasses.dataclass(frozen=True)
class Counts:
    """The month's pull requests by what became of them."""

    gated: int
    approved: int
    merged: int
    bypassed: int
    waiting: int
    lifted: int
    overridden: int = 0


@dataclasses.dataclass(frozen=True)
class ForumPost:
    """The report's reply in the vote's thread: its address, who posted it and when."""

    url: str
    by: str
    at: datetime


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything the report says about one mentorship, as the viewer may see it."""

    mentee: str
    state: str
    period: Period
    promotion: dict[str, Any] | None
    counts: Counts
    mentors: tuple[MentorLine, ...]
    wait_median_seconds: int | None
    wait_longest_seconds: int | None
    repositories: tuple[str, ...]
    repositories_hidden: int
    repositories_everywhere: bool  # an empty scope: the gate applied in every repository
    bypasses: tuple[BypassLine, ...]
    overrides: tuple[OverrideLine, ...]
    pulls: tuple[PullLine, ...]
    dashboard_url: str
    generated_at: datetime
    # Where the report was posted in the vote's forum thread (``forum_posts``), if it was.
    forum_post: ForumPost | None = None


# ---------------------------------------------------------------- building it


def ready(mentorship: Mentorship, now: datetime) -> bool:
    """Whether the report is worth reading: the month ended, or ends within a week."""
    state = lifecycle.state_of(mentorship, now)
    return state == "ended" or (state == "active" and mentorship.ends_at - now <= READY_BEFORE_END)


def awaiting_decision(session: Session, *, now: datetime) -> list[Mentorship]:
    """Mentorships ready for a graduation decision: active and ending within a week, or
    expired lately (graduated and revoked ones were decided), soonest end first."""
    ending = queries.running_and_ending(
        session, now=now, after=now - RECENTLY_EXPIRED, until=now + READY_BEFORE_END
    )
    expired = queries.expired_since(session, since=now - RECENTLY_EXPIRED)
    found = {m.id: m for m in ending + expired}
    return sorted(found.values(), key=lambda m: m.ends_at)


def build(
    session: Session,
    *,
    mentee: str,
    now: datetime,
    base_url: str,
    viewer: Viewer = CLI,
) -> Report:
    """The report of the mentee's current (else latest) mentorship; raises MentorshipError
    for a login never mentored. A web ``viewer`` who is not a maintainer, the mentee or one
    of the mentors sees pull requests in private repositories redacted."""
    mentorship = lifecycle.latest_mentorship(session, mentee=mentee)
    if mentorship is None:
        raise lifecycle.MentorshipError(lifecycle.no_mentorship(mentee))
    assert mentorship.id is not None
    assignments = queries.assignments_of(session, mentorship=mentorship)
    pulls = queries.pulls_of_period(session, mentorship=mentorship)
    events = queries.audit_events(
        session, mentorship_id=mentorship.id, kinds=["extended", ACKNOWLEDGED]
    )
    current = [a.mentor for a in assignments if a.removed_at is None]
    hidden = hidden_from(
        session,
        sees=sees_all(viewer, mentee=mentorship.mentee, mentors=current),
        pulls=[pull.repo for pull in pulls],
        scope=mentorship.repositories,
    )
    overrides = store.overrides_by_pull(session, pull_ids=[p.id for p in pulls if p.id])
    gated = [pull for pull in pulls if _gated(pull, mentorship)]
    waits = [w for pull in gated if (w := store.waited_seconds(pull, now=now)) is not None]
    # The mentorship's scope; with none (every repository), those its gate applied in.
    repositories = sorted(mentorship.repositories or {pull.repo for pull in gated})
    return Report(
        mentee=mentorship.mentee_display,
        state=lifecycle.state_of(mentorship, now),
        period=_period(mentorship, events, now=now),
        promotion=promotion_document(mentorship),
        counts=Counts(
            gated=len(gated),
            approved=sum(p.gate == GateState.APPROVED for p in gated),
            merged=sum(p.merged for p in gated),
            bypassed=sum(p.gate == GateState.BYPASSED for p in gated),
            waiting=sum(p.gate == GateState.WAITING and p.state == "open" for p in gated),
            lifted=sum(p.gate == GateState.LIFTED for p in gated),
            overridden=sum(p.gate == GateState.OVERRIDDEN for p in gated),
        ),
        mentors=_mentor_lines(session, assignments, gated),
        wait_median_seconds=_seconds(statistics.median(waits)) if waits else None,
        wait_longest_seconds=_seconds(max(waits)) if waits else None,
        repositories=tuple(r for r in repositories if r not in hidden),
        repositories_hidden=sum(r in hidden for r in repositories),
        repositories_everywhere=not mentorship.repositories,
        bypasses=tuple(
            _bypass_line(pull, events, hidden=pull.repo in hidden)
            for pull in gated
            if pull.gate == GateState.BYPASSED
        ),
        overrides=tuple(
            _override_line(pull, override, hidden=pull.repo in hidden)
            for pull in gated
            for override in overrides.get(pull.id or 0, [])
        ),
        pulls=tuple(
            _pull_line(pull, gated=pull in gated, hidden=pull.repo in hidden, now=now)
            for pull in pulls
        ),
        dashboard_url=f"{base_url}/mentorships/{mentorship.mentee_display}",
        generated_at=now,
        forum_post=_forum_post(session, mentorship_id=mentorship.id),
    )


def _forum_post(session: Session, *, mentorship_id: int) -> ForumPost | None:
    row = queries.confirmed_report_post(session, mentorship_id=mentorship_id)
    if row is None or row.url is None or row.posted_at is None:
        return None
    return ForumPost(url=row.url, by=row.claimed_by, at=row.posted_at)


def _gated(pull: PullRequest, mentorship: Mentorship) -> bool:
    """Whether the mentorship's gate applied to ``pull`` (it waited, or was let through)."""
    return pull.gated_mentorship_id == mentorship.id and (
        pull.gate in GATED or pull.gated_at is not None
    )


def _period(mentorship: Mentorship, events: list[AuditEvent], *, now: datetime) -> Period:
    state = lifecycle.state_of(mentorship, now)
    end = lifecycle.effective_end(mentorship)
    active = (min(now, end) - mentorship.started_at).total_seconds()
    return Period(
        started_at=mentorship.started_at,
        ends_at=mentorship.ends_at,
        ended_at=end if state == "ended" else None,
        end_reason=(mentorship.end_reason or EndReason.EXPIRED) if state == "ended" else None,
        ended_by=mentorship.ended_by,
        end_note=mentorship.end_note,
        # A started day counts whole: 11 days and 3 hours is the 12th day.
        days_active=max(math.ceil(active / 86400), 0),
        extensions=tuple(
            Extension(event.at, event.actor, event.detail)
            for event in events
            if event.kind == "extended"
        ),
    )


def _mentor_lines(
    session: Session, assignments: list[MentorAssignment], gated: list[PullRequest]
) -> tuple[MentorLine, ...]:
    """Each mentor (current first, then removed ones), their approvals that counted (the
    gated pull requests whose "approved by" names them) and the median time from the pull
    request's first wait to their first approval of it."""
    by_id = {pull.id: pull for pull in gated if pull.id is not None}
    first: dict[tuple[str, int], datetime] = {}
    for reviews in store.reviews_by_pull(session, pull_ids=by_id).values():
        for review in reviews:
            if review.state == gate.APPROVED:
                first.setdefault((review.reviewer, review.pull_request_id), review.submitted_at)
    ordered = sorted(assignments, key=lambda a: (a.removed_at is not None, a.added_at))
    lines, seen = [], set()
    for assignment in ordered:
        if assignment.mentor in seen:
            continue
        seen.add(assignment.mentor)
        spans = []
        for pull_id, pull in by_id.items():
            if assignment.mentor not in {login.lower() for login in pull.approved_by}:
                continue  # not approved by them, or their approval no longer counts
            start = pull.gated_at or pull.first_seen_at
            at = first.get((assignment.mentor, pull_id), start)
            spans.append(max((at - start).total_seconds(), 0.0))
        lines.append(
            MentorLine(
                login=assignment.mentor_display,
                approvals=len(spans),
                median_seconds_to_approve=_seconds(statistics.median(spans)) if spans else None,
                # Current assignments come first: a mentor removed and added again is current.
                removed=assignment.removed_at is not None,
            )
        )
    return tuple(lines)


def _pull_line(pull: PullRequest, *, gated: bool, hidden: bool, now: datetime) -> PullLine:
    waited = store.waited_seconds(pull, now=now) if gated else None
    return PullLine(
        repo=None if hidden else pull.repo,
        number=None if hidden else pull.number,
        title=None if hidden else pull.title,
        url=None if hidden else pull.url,
        state=shown_state(pull),
        gated=gated,
        approved_by=None if hidden else tuple(pull.approved_by),
        waited_seconds=_seconds(waited) if waited is not None else None,
    )


def _bypass_line(pull: PullRequest, events: list[AuditEvent], *, hidden: bool) -> BypassLine:
    notes = [
        event
        for event in events
        if event.kind == ACKNOWLEDGED and (event.repo, event.pr_number) == (pull.repo, pull.number)
    ]
    last = notes[-1] if notes else None
    # A note may name the private pull request: who and when are kept, the words are not.
    note = "" if hidden or last is None else last.detail
    acknowledged = Acknowledgement(last.actor, last.at, note) if last else None
    if hidden:
        return BypassLine(None, None, None, None, pull.merged_at, acknowledged)
    return BypassLine(
        pull.repo, pull.number, pull.url, pull.merged_by, pull.merged_at, acknowledged
    )


def _override_line(pull: PullRequest, override: Override, *, hidden: bool) -> OverrideLine:
    if hidden:
        return OverrideLine(None, None, None, override.maintainer_display, override.given_at, "")
    return OverrideLine(
        pull.repo,
        pull.number,
        pull.url,
        override.maintainer_display,
        override.given_at,
        override.reason,
    )


def _seconds(value: float) -> int:
    return round(value)


# ---------------------------------------------------------------- JSON


def document(report: Report) -> dict[str, Any]:
    """The stable JSON document (README: "The report's JSON document")."""
    period = report.period
    return {
        "mentee": report.mentee,
        "state": report.state,
        "period": {
            "started_at": _iso(period.started_at),
            "ends_at": _iso(period.ends_at),
            "ended_at": _iso(period.ended_at),
            "ended_early": period.ended_early,
            "end_reason": period.end_reason,
            "ended_by": period.ended_by,
            "end_note": period.end_note,
            "days_active": period.days_active,
            "extensions": [
                {"at": _iso(e.at), "by": e.by, "detail": e.detail} for e in period.extensions
            ],
        },
        "promotion": report.promotion,
        "pull_requests": dataclasses.asdict(report.counts),
        # "approvals": the approvals that counted, as each pull request's "approved_by".
        "mentors": [dataclasses.asdict(line) for line in report.mentors],
        "wait": {
            "median_seconds": report.wait_median_seconds,
            "longest_seconds": report.wait_longest_seconds,
        },
        "repositories": list(report.repositories),
        "repositories_hidden": report.repositories_hidden,
        "repositories_everywhere": report.repositories_everywhere,
        "bypasses": [
            {
                "repo": b.repo,
                "number": b.number,
                "url": b.url,
                "merged_by": b.merged_by,
                "merged_at": _iso(b.merged_at),
                "acknowledged": None
                if b.acknowledged is None
                else {
                    "by": b.acknowledged.by,
                    "at": _iso(b.acknowledged.at),
                    "note": b.acknowledged.note,
                },
            }
            for b in report.bypasses
        ],
        "overrides": [
            {
                "repo": o.repo,
                "number": o.number,
                "url": o.url,
                "by": o.by,
                "at": _iso(o.at),
                "reason": o.reason,
            }
            for o in report.overrides
        ],
        "pulls": [
            {
                "redacted": PRIVATE_PULL if line.redacted else None,
                "repo": line.repo,
                "number": line.number,
                "title": line.title,
                "url": line.url,
                "state": line.state,
                "gated": line.gated,
                "approved_by": list(line.approved_by) if line.approved_by is not None else None,
                "waited_seconds": line.waited_seconds,
            }
            for line in report.pulls
        ],
        "forum_post": (
            {
                "url": report.forum_post.url,
                "posted_by": report.forum_post.by,
                "posted_at": _iso(report.forum_post.at),
            }
            if report.forum_post
            else None
        ),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# ---------------------------------------------------------------- words


def duration(seconds: int | None) -> str:
    """A span as people say it: 45 min, 5 h, 2 d 3 h; an em dash for none."""
    if seconds is None:
        return "—"
    minutes = seconds // 60
    if minutes < 60:
        return f"{max(minutes, 1) if seconds else 0} min"
    hours = minutes // 60
    if hours < 24:
        rest = minutes % 60
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, rest = divmod(hours, 24)
    return f"{days} d {rest} h" if rest else f"{days} d"


STATE_WORDS = {
    "waiting": "waiting",
    "approved": "approved",
    "merged": "approved, merged",
    "bypassed": "merged without approval",
    "overridden": "overridden by a maintainer",
    "lifted": "gate lifted unapproved",
    "not_required": "not gated",
    "closed": "closed",
}


DASH = " \N{EN DASH} "


def span(period: Period, day: Callable[[datetime], str]) -> str:
    """When the period ran, its real end first: "Sep 21 to Oct 12, ended early; was due
    Oct 21" (with an en dash); a period not yet over gives its planned end as planned. ``day`` writes a date."""
    start = day(period.started_at)
    if period.ended_at is None:
        return f"{start}{DASH}{day(period.ends_at)} (planned end)"
    if period.ended_early:
        return f"{start}{DASH}{day(period.ended_at)}, ended early; was due {day(period.ends_at)}"
    return f"{start}{DASH}{day(period.ended_at)}"


def repository_words(report: Report) -> str:
    """The repositories the mentorship gated: its scope, or every repository (naming those
    its gate applied in); "none" only when there is truly none to name."""
    named = ", ".join(report.repositories)
    hidden = private_count(report.repositories_hidden) if report.repositories_hidden else ""
    listed = " and ".join(part for part in (named, hidden) if part)
    if report.repositories_everywhere:
        return f"{EVERY_REPOSITORY}" + (f" (gated pull requests in {listed})" if listed else "")
    return listed or "none"


def ending(report: Report) -> str:
    """How the period ended (or when it will), in a sentence's words."""
    period = report.period
    if period.ended_at is None:
        if report.state == "scheduled":
            return f"scheduled, starts {period.started_at:%Y-%m-%d}"
        return f"{report.state}, ends {period.ends_at:%Y-%m-%d}"
    how = f"ended {period.ended_at:%Y-%m-%d}: {period.end_reason}"
    if period.ended_by and period.end_reason != EndReason.EXPIRED:
        how += f" by {period.ended_by}"
    return how


def vote_words(promotion: dict[str, Any] | None) -> str:
    """The promotion vote and its PEP 13 result in a line."""
    if promotion is None or promotion.get("votes_for") is None:
        return "no vote recorded"
    words = f"{promotion['votes_for']} for, {promotion['votes_against']} against"
    if promotion.get("vote_opened") and promotion.get("vote_closed"):
        words += f", open {promotion['vote_opened']} to {promotion['vote_closed']}"
    if promotion.get("pep13_passed"):
        words += "; passes PEP 13"
    elif promotion.get("pep13_problems"):
        words += f"; fails PEP 13 ({'; '.join(promotion['pep13_problems'])})"
    if promotion.get("override_reason"):
        words += f"; promoted anyway: {promotion['override_reason']}"
    return words


def pull_name(line: PullLine | BypassLine | OverrideLine) -> str:
    """``owner/repo#7``, or the redacted stand-in."""
    return PRIVATE_PULL if line.repo is None else f"{line.repo}#{line.number}"


# ---------------------------------------------------------------- Markdown


# Everything CommonMark could read as markup (or HTML) in text that people typed.
_MARKDOWN_SPECIAL = set("\\`*_[]<>|~&")


# Discourse turns "@name" into a mention that notifies a person or a whole group; a word joiner
# after the "@" (invisible, unbreakable) keeps a pull request's title from pinging anyone.
_NO_MENTION = "@\u2060"


def md_text(text: str | None) -> str:
    """Text safe in a Markdown table cell: markup escaped, one line, no HTML, no mentions."""
    flat = " ".join((text or "").split())
    escaped = "".join(f"\\{char}" if char in _MARKDOWN_SPECIAL else char for char in flat)
    return escaped.replace("@", _NO_MENTION)


def _md_link(label: str, url: str | None) -> str:
    if not url or not lifecycle.is_web_url(url):
        return md_text(label)
    return f"[{md_text(label)}](<{url.replace('>', '%3E').replace(' ', '%20')}>)"


def day_words(moment: datetime) -> str:
    """A date as the pages write it: "Dec 5, 2026" (UTC)."""
    return f"{moment:%b} {moment.day}, {moment.year}"


def _plain_day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def counts_words(counts: Counts) -> str:
    """The month's pull requests by what became of them, one phrase."""
    words = [
        f"{counts.gated} gated",
        f"{counts.approved} approved",
        f"{counts.merged} merged",
        f"{counts.bypassed} merged without approval",
        f"{counts.waiting} still waiting",
    ]
    if counts.lifted:
        words.append(f"{counts.lifted} lifted unapproved when the mentorship ended")
    if counts.overridden:
        words.append(f"{counts.overridden} overridden by a maintainer")
    return ", ".join(words)


def mentor_name(line: MentorLine) -> str:
    """The mentor's login, marked when they no longer mentor."""
    return f"{line.login} (removed)" if line.removed else line.login


# What the mentors' count counts, said wherever it is shown.
APPROVALS_COUNTED = "Approvals that counted"
APPROVALS_NOTE = (
    "An approval counts when the pull request's gate took it: one on an older commit that "
    "the gate no longer accepts does not."
)


def markdown(report: Report) -> str:
    """The report as Markdown to paste into the forum thread: tables and links, no HTML."""
    counts, period = report.counts, report.period
    lines = [
        f"## {md_text(report.mentee)}'s first month as a core developer",
        "",
        f"- **Period:** {md_text(span(period, day_words))}, "
        f"{plural(period.days_active, 'day')} active; {md_text(ending(report))}",
    ]
    if period.extensions:
        lines.append(
            f"- **Extended** {plural(len(period.extensions), 'time')}: "
            + "; ".join(f"{md_text(e.detail)} by {md_text(e.by)}" for e in period.extensions)
        )
    if period.end_note:
        lines.append(f"- **End note:** {md_text(period.end_note)}")
    lines += [
        f"- **Promotion vote:** {md_text(vote_words(report.promotion))}",
        f"- **Pull requests:** {counts_words(counts)}",
        f"- **Wait for approval:** median {duration(report.wait_median_seconds)}, "
        f"longest {duration(report.wait_longest_seconds)}",
        f"- **Repositories:** {md_text(repository_words(report))}",
    ]
    if report.mentors:
        lines += [
            "",
            f"| Mentor | {APPROVALS_COUNTED} | Median time to approve |",
            "| --- | ---: | ---: |",
        ]
        lines += [
            f"| {md_text(mentor_name(m))} | {m.approvals} "
            f"| {duration(m.median_seconds_to_approve)} |"
            for m in report.mentors
        ]
        lines += ["", md_text(APPROVALS_NOTE)]
    if report.pulls:
        lines += [
            "",
            "| Pull request | Title | Gate | Approved by | Waited |",
            "| --- | --- | --- | --- | ---: |",
        ]
    else:
        lines += ["", "No pull requests in the period."]
    for line in report.pulls:
        approvers = ", ".join(line.approved_by or ())
        lines.append(
            f"| {_md_link(pull_name(line), line.url)} | {md_text(line.title)} "
            f"| {STATE_WORDS.get(line.state, line.state)} | {md_text(approvers)} "
            f"| {duration(line.waited_seconds) if line.gated else ''} |"
        )
    if report.bypasses:
        lines += ["", "**Merged without approval:**", ""]
        for bypass in report.bypasses:
            note = (
                f"acknowledged by {md_text(bypass.acknowledged.by)}: "
                f"{md_text(bypass.acknowledged.note)}"
                if bypass.acknowledged
                else "not acknowledged"
            )
            merger = f" by {md_text(bypass.merged_by)}" if bypass.merged_by else ""
            lines.append(f"- {_md_link(pull_name(bypass), bypass.url)}, merged{merger}; {note}")
    if report.overrides:
        lines += ["", "**Overridden by a maintainer:**", ""]
        for o in report.overrides:
            why = f": {md_text(o.reason)}" if o.reason else ""
            lines.append(f"- {_md_link(pull_name(o), o.url)}, by {md_text(o.by)}{why}")
    lines += ["", f"Full record: {_md_link('Gatekeeper', report.dashboard_url)}", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- plain text


def plain(report: Report) -> str:
    """The report for a terminal."""
    counts, period = report.counts, report.period
    out = [
        f"{report.mentee}: {ending(report)}",
        f"  period: {span(period, _plain_day)}, {plural(period.days_active, 'day')} active,"
        f" extended {plural(len(period.extensions), 'time')}",
    ]
    out += [f"    extended {e.detail} by {e.by}" for e in period.extensions]
    if period.end_note:
        out.append(f"  end note: {period.end_note}")
    out += [
        f"  vote: {vote_words(report.promotion)}",
        f"  pull requests: {counts_words(counts)}",
        f"  wait for approval: median {duration(report.wait_median_seconds)},"
        f" longest {duration(report.wait_longest_seconds)}",
        f"  repositories: {repository_words(report)}",
    ]
    for m in report.mentors:
        out.append(
            f"  mentor {mentor_name(m)}: {plural(m.approvals, 'approval')} that counted,"
            f" median {duration(m.median_seconds_to_approve)} to approve"
        )
    for line in report.pulls:
        waited = f", waited {duration(line.waited_seconds)}" if line.gated else ""
        out.append(f"  {pull_name(line)} {STATE_WORDS.get(line.state, line.state)}{waited}:"
                   f" {line.title or ''}")  # fmt: skip
    for bypass in report.bypasses:
        note = (
            f"acknowledged by {bypass.acknowledged.by}: {bypass.acknowledged.note}"
            if bypass.acknowledged
            else "not acknowledged"
        )
        out.append(f"  bypass {pull_name(bypass)} by {bypass.merged_by or 'unknown'}; {note}")
    for o in report.overrides:
        out.append(f"  override {pull_name(o)} by {o.by}" + (f": {o.reason}" if o.reason else ""))
    return "\n".join(out)


# ---------------------------------------------------------------- CSV


CSV_COLUMNS = ("pull_request", "url", "title", "gate", "gated", "approved_by", "waited_seconds")


def csv_text(report: Report) -> str:
    """The pull requests as CSV, one row each (redacted ones say only that, and their gate)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in report.pulls:
        writer.writerow(
            [
                pull_name(line),
                line.url or "",
                _cell(line.title or ""),
                line.state,
                "yes" if line.gated else "no",
                _cell(" ".join(line.approved_by or ())),
                "" if line.waited_seconds is None else line.waited_seconds,
            ]
        )
    return buffer.getvalue()


def _cell(text: str) -> str:
    """Text that a spreadsheet will not run as a formula (a title is typed by anyone)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def current(session: Session, *, mentee: str, base_url: str, viewer: Viewer = CLI) -> Report:
    """The report as of now (one clock for the command and the pages)."""
    return build(session, mentee=mentee, now=utcnow(), base_url=base_url, viewer=viewer)
