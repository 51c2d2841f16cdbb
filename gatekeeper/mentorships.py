"""The mentorship lifecycle: promote, extend, end, expire, mentors, and the PEP 13 vote rule."""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gatekeeper import config, gate, people
from gatekeeper import repositories as known_repositories
from gatekeeper.models import AuditEvent, EndReason, MentorAssignment, Mentorship

LOGIN_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
REPO_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
PEP13_MINIMUM_DAYS = 7
# Notes, end notes, override reasons and URLs are shown to every visitor: keep them short.
TEXT_LIMIT = 2000
WEB_SCHEMES = ("http", "https")


class MentorshipError(Exception):
    """A request the lifecycle refuses; the message is shown to the user as it is.

    ``field`` names the input at fault (``mentors``, ``approvals_required``, ...), so that a
    form can mark it where it was typed; the command line shows the message alone.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# ---------------------------------------------------------------- names and dates


def canonical_login(login: str) -> str:
    """Validate a GitHub login and return its canonical (lowercase) form."""
    display = display_login(login)
    return display.lower()


def display_login(login: str) -> str:
    """Validate a GitHub login and return it as typed, without a leading @."""
    cleaned = login.strip().removeprefix("@")
    if not LOGIN_PATTERN.match(cleaned):
        raise MentorshipError(f"{login!r} is not a valid GitHub login")
    return cleaned


def canonical_repo(name: str) -> str:
    """Validate an OWNER/REPO name and return it lowercase."""
    cleaned = name.strip()
    if not REPO_PATTERN.match(cleaned):
        raise MentorshipError(f"{name!r} is not a repository name of the form OWNER/REPO")
    return cleaned.lower()


def add_months(moment: datetime, months: int) -> datetime:
    """The same wall-clock moment ``months`` later, clamped to the month's last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def default_end(start: datetime) -> datetime:
    """One calendar month after ``start``: Jan 31 ends on Feb 28 (or 29)."""
    return add_months(start, 1)


def is_active(mentorship: Mentorship, at: datetime) -> bool:
    """Whether the mentorship gates at ``at``: the gate's one rule, nothing else counts."""
    return gate.is_active_at(
        at,
        started_at=mentorship.started_at,
        ends_at=mentorship.ends_at,
        ended_at=mentorship.ended_at,
    )


def state_of(mentorship: Mentorship, at: datetime) -> str:
    """``active``, ``scheduled`` (starts later) or ``ended`` (by hand or by its end date).

    A label for now: once a mentorship has been ended it reads "ended", whatever ``at``.
    """
    if mentorship.ended_at is not None or at >= mentorship.ends_at:
        return "ended"
    return "scheduled" if at < mentorship.started_at else "active"


def whole_days(seconds: float) -> int:
    """A span in days, a started day counting whole: 18.2 days is 19."""
    return max(math.ceil(seconds / 86400), 0)


def days_left(mentorship: Mentorship, now: datetime) -> int:
    """Days until the gate lifts (rounded up, from the start if later); 0 once ended.

    The one count of days left: the pages, ``status`` and ``/api`` all say this number.
    """
    if state_of(mentorship, now) == "ended":
        return 0
    return whole_days((mentorship.ends_at - max(now, mentorship.started_at)).total_seconds())


def days_until_start(mentorship: Mentorship, now: datetime) -> int:
    """Days until a scheduled mentorship starts (rounded up); 0 once it has."""
    return whole_days((mentorship.started_at - now).total_seconds())


def effective_end(mentorship: Mentorship) -> datetime:
    """When the mentorship stopped (or will stop) gating."""
    return gate.gating_end(mentorship.ends_at, mentorship.ended_at)


def bounded_text(text: str | None, *, what: str) -> str | None:
    """``text`` without surrounding blanks (None when empty); refused beyond TEXT_LIMIT."""
    cleaned = (text or "").strip()
    if len(cleaned) > TEXT_LIMIT:
        raise MentorshipError(
            f"{what} must be at most {TEXT_LIMIT:,} characters (got {len(cleaned):,})"
        )
    return cleaned or None


def is_web_url(url: object) -> bool:
    """Whether ``url`` is an http(s) link to a host, safe as an ``href`` (no ``javascript:``)."""
    if not isinstance(url, str) or not url or len(url) > TEXT_LIMIT:
        return False
    # Browsers drop blanks and control characters from a URL, so they could hide a scheme.
    if any(char <= " " or char == "\x7f" for char in url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # a malformed port or IPv6 address
        return False
    # A user name before the host (https://python.org@evil.example/) only serves to mislead.
    has_userinfo = parts.username is not None or parts.password is not None
    return parts.scheme.lower() in WEB_SCHEMES and bool(host) and not has_userinfo


def web_url(url: str | None, *, what: str) -> str | None:
    """``url`` without surrounding blanks (None when empty), refused unless an http(s) link."""
    cleaned = bounded_text(url, what=what)
    if cleaned is not None and not is_web_url(cleaned):
        raise MentorshipError(f"{what} must be an http or https link, got {cleaned!r}")
    return cleaned


# ---------------------------------------------------------------- PEP 13


@dataclasses.dataclass(frozen=True)
class Vote:
    """The core-team vote that promoted the mentee."""

    votes_for: int
    votes_against: int
    opened: date
    closed: date
    url: str | None = None
    # Where the numbers came from: "manual" (typed) or "discourse" (read from the forum),
    # when they were read, and what was typed over the forum's numbers ("votes for: 12
    # from the forum, 13 given").
    source: str = "manual"
    fetched_at: datetime | None = None
    overrides: tuple[str, ...] = ()

    def problems(self) -> list[str]:
        """Why the vote fails PEP 13 (two-thirds in favour, open at least a week); empty if it passes."""
        found = []
        cast = self.votes_for + self.votes_against
        if cast == 0:
            found.append("no votes were cast")
        elif self.votes_for * 3 < cast * 2:
            found.append(f"{self.votes_for} of {cast} votes in favour is less than two-thirds")
        open_days = (self.closed - self.opened).days
        if open_days < PEP13_MINIMUM_DAYS:
            found.append(
                f"the vote was open {open_days} days, PEP 13 asks for {PEP13_MINIMUM_DAYS}"
            )
        return found

    @property
    def passes(self) -> bool:
        """Whether the vote meets PEP 13."""
        return not self.problems()


@dataclasses.dataclass(frozen=True)
class FetchedVote:
    """The vote as the forum's poll tells it (see ``discourse.fetch_vote``)."""

    url: str
    poll: str
    votes_for: int
    votes_against: int
    opened_at: datetime
    closed_at: datetime | None  # None: the forum does not say (``closed_unknown`` says why)
    fetched_at: datetime
    closed_unknown: str | None = None

    def parts(self) -> dict[str, int | date | None]:
        """The four numbers of a vote record, by the names make_vote reports them with."""
        return {
            "votes for": self.votes_for,
            "votes against": self.votes_against,
            "vote opened": self.opened_at.date(),
            "vote closed": self.closed_at.date() if self.closed_at is not None else None,
        }

    def summary(self) -> str:
        """One line saying what the forum's poll holds."""
        closed = f"{self.closed_at:%Y-%m-%d %H:%M} UTC" if self.closed_at else "(not said)"
        return (
            f"{self.votes_for} for, {self.votes_against} against in poll {self.poll!r},"
            f" open {self.opened_at:%Y-%m-%d %H:%M} UTC to {closed}"
        )


def make_vote(
    *,
    url: str | None,
    votes_for: int | None,
    votes_against: int | None,
    opened: date | None,
    closed: date | None,
    fetched: FetchedVote | None = None,
) -> Vote | None:
    """Build a vote from optional parts: none given is no vote, a partial record is an error.

    With ``fetched`` (the forum's poll) the parts given override the forum's, and each
    difference is kept in the vote's ``overrides``.
    """
    given = {
        "votes for": votes_for,
        "votes against": votes_against,
        "vote opened": opened,
        "vote closed": closed,
    }
    if fetched is None and url is None and all(value is None for value in given.values()):
        return None
    from_forum = fetched.parts() if fetched is not None else dict.fromkeys(given)
    parts = {name: given[name] if given[name] is not None else from_forum[name] for name in given}
    if fetched is not None and parts["vote closed"] is None:
        raise MentorshipError(f"{fetched.closed_unknown}; give the date it closed (--vote-closed)")
    missing = [name for name, value in parts.items() if value is None]
    if missing:
        raise MentorshipError(f"the promotion vote is incomplete: missing {', '.join(missing)}")
    votes_for, votes_against = parts["votes for"], parts["votes against"]  # type: ignore[assignment]
    opened, closed = parts["vote opened"], parts["vote closed"]  # type: ignore[assignment]
    overrides = tuple(
        f"{name}: {from_forum[name]} from the forum, {value} given"
        if from_forum[name] is not None
        else f"{name}: not said by the forum, {value} given"
        for name, value in given.items()
        if fetched is not None and value is not None and value != from_forum[name]
    )
    assert votes_for is not None and votes_against is not None
    assert opened is not None and closed is not None
    if votes_for < 0 or votes_against < 0:
        raise MentorshipError("vote counts cannot be negative")
    if closed < opened:
        raise MentorshipError("the vote cannot close before it opened")
    if fetched is None:
        return Vote(votes_for, votes_against, opened, closed, url)
    return Vote(
        votes_for,
        votes_against,
        opened,
        closed,
        url or fetched.url,
        source="discourse",
        fetched_at=fetched.fetched_at,
        overrides=overrides,
    )


def vote_of(mentorship: Mentorship) -> Vote | None:
    """The stored promotion vote, if one was recorded."""
    if mentorship.votes_for is None or mentorship.vote_opened is None:
        return None
    assert mentorship.votes_against is not None and mentorship.vote_closed is not None
    return Vote(
        mentorship.votes_for,
        mentorship.votes_against,
        mentorship.vote_opened,
        mentorship.vote_closed,
        mentorship.vote_url,
        source=mentorship.vote_source or "manual",
        fetched_at=mentorship.vote_fetched_at,
    )


# ---------------------------------------------------------------- queries


def mentors_of(session: Session, *, mentorship: Mentorship) -> list[MentorAssignment]:
    """The mentors currently assigned, in the order they were added."""
    return list(
        session.exec(
            select(MentorAssignment)
            .where(MentorAssignment.mentorship_id == mentorship.id)
            .where(col(MentorAssignment.removed_at).is_(None))
            .order_by(col(MentorAssignment.id))
        )
    )


def open_mentorship(session: Session, *, mentee: str) -> Mentorship | None:
    """The mentee's mentorship that has not been marked ended (it may have lapsed)."""
    return session.exec(
        select(Mentorship)
        .where(Mentorship.mentee == canonical_login(mentee))
        .where(col(Mentorship.ended_at).is_(None))
    ).first()


def latest_mentorship(session: Session, *, mentee: str) -> Mentorship | None:
    """The mentee's open mentorship, else their most recent one; None for someone never
    mentored (a name that is no GitHub login never was)."""
    try:
        login = canonical_login(mentee)
    except MentorshipError:
        return None
    return session.exec(
        select(Mentorship)
        .where(Mentorship.mentee == login)
        .order_by(col(Mentorship.ended_at).is_not(None), col(Mentorship.started_at).desc())
    ).first()


def no_mentorship(mentee: str) -> str:
    """What a lookup of someone never mentored answers: a CLI line, a 404's description (a
    name that is no GitHub login is said to be none)."""
    try:
        return f"{display_login(mentee)} has no mentorship"
    except MentorshipError as error:
        return str(error)


def latest_mentorship_of(
    session: Session, *, account_id: int | None, login: str
) -> Mentorship | None:
    """The open (else most recent) mentorship of the account ``account_id``, now ``login``.

    A mentorship whose mentee's id is not learned yet is matched by login, and so is an
    author whose id is unknown (failing closed: they are gated); one learned as another
    account is not theirs, whatever the login.
    """
    query = select(Mentorship)
    if account_id is None:
        query = query.where(Mentorship.mentee == canonical_login(login))
    else:
        query = query.where(
            sa.or_(
                col(Mentorship.mentee_id) == account_id,
                sa.and_(
                    col(Mentorship.mentee_id).is_(None),
                    col(Mentorship.mentee) == canonical_login(login),
                ),
            )
        )
    return session.exec(
        query.order_by(col(Mentorship.ended_at).is_not(None), col(Mentorship.started_at).desc())
    ).first()


def active_mentorship(session: Session, *, mentee: str, at: datetime) -> Mentorship | None:
    """The mentorship that gates ``mentee`` at ``at``, if any."""
    found = open_mentorship(session, mentee=mentee)
    return found if found is not None and is_active(found, at) else None


def _current(session: Session, *, mentee: str, at: datetime) -> Mentorship:
    """The open mentorship a change applies to; a lapsed one is expired first and refused."""
    found = open_mentorship(session, mentee=mentee)
    if found is not None and state_of(found, at) == "ended":
        _mark_expired(session, found)
        found = None
    if found is None:
        if latest_mentorship(session, mentee=mentee) is None:
            raise MentorshipError(no_mentorship(mentee))
        raise MentorshipError(f"{display_login(mentee)}'s mentorship has already ended")
    return found


# ---------------------------------------------------------------- changes


def record(
    session: Session,
    *,
    mentorship: Mentorship | None,
    actor: str,
    kind: str,
    detail: str = "",
    at: datetime,
    repo: str | None = None,
    pr_number: int | None = None,
) -> AuditEvent:
    """Add an audit event to the session (committed with the change it describes)."""
    event = AuditEvent(
        mentorship_id=mentorship.id if mentorship else None,
        at=at,
        actor=actor,
        kind=kind,
        detail=detail,
        repo=repo,
        pr_number=pr_number,
    )
    session.add(event)
    return event


def promote(
    session: Session,
    *,
    mentee: str,
    mentors: Sequence[str],
    actor: str,
    now: datetime,
    start: datetime | None = None,
    days: int | None = None,
    until: datetime | None = None,
    repositories: Iterable[str] = (),
    approvals_required: int = 1,
    dismiss_stale_approvals: bool = True,
    same_content_approvals: bool = True,
    gate_approved_prs: bool = False,
    bypass_alerts: bool = True,
    vote: Vote | None = None,
    override_reason: str | None = None,
    note: str | None = None,
) -> Mentorship:
    """Start a mentorship for a newly promoted core developer."""
    note = bounded_text(note, what="the note")
    override_reason = bounded_text(override_reason, what="the override reason")
    vote_url = web_url(vote.url, what="the vote URL") if vote is not None else None
    mentee_display = display_login(mentee)
    mentor_displays = _unique_mentors(mentors)
    if mentee_display.lower() in {m.lower() for m in mentor_displays}:
        raise MentorshipError(f"{mentee_display} cannot be their own mentor", field="mentors")
    if not mentor_displays:
        raise MentorshipError("a mentorship needs at least one mentor", field="mentors")
    if approvals_required < 1:
        raise MentorshipError("at least one approval must be required", field="approvals_required")
    if approvals_required > len(mentor_displays):
        raise MentorshipError(
            f"{approvals_required} approvals required but only {len(mentor_displays)} mentors",
            field="approvals_required",
        )
    if vote is not None and not vote.passes and override_reason is None:
        raise MentorshipError(
            "the promotion vote fails PEP 13 ("
            + "; ".join(vote.problems())
            + "); give an override reason to promote anyway",
            field="override_reason",
        )
    started_at = start or now
    ends_at = _end_from(started_at, days=days, until=until)
    if ends_at <= now:
        raise MentorshipError(
            f"that mentorship would already have ended on {ends_at:%Y-%m-%d}", field="until"
        )

    existing = open_mentorship(session, mentee=mentee_display)
    if existing is not None and state_of(existing, now) == "ended":
        _mark_expired(session, existing)
    elif existing is not None:
        state = state_of(existing, now)
        article = "an" if state == "active" else "a"
        raise MentorshipError(
            f"{mentee_display} already has {article} {state} mentorship", field="mentee"
        )

    mentorship = Mentorship(
        mentee=mentee_display.lower(),
        mentee_display=mentee_display,
        mentee_id=_account_id(session, login=mentee_display, now=now),
        started_at=started_at,
        ends_at=ends_at,
        created_by=actor,
        created_at=now,
        repositories=sorted({canonical_repo(name) for name in repositories}),
        approvals_required=approvals_required,
        dismiss_stale_approvals=dismiss_stale_approvals,
        same_content_approvals=same_content_approvals,
        gate_approved_prs=gate_approved_prs,
        bypass_alerts=bypass_alerts,
        override_reason=override_reason,
        note=note,
    )
    if vote is not None:
        mentorship.vote_url = vote_url
        mentorship.votes_for, mentorship.votes_against = vote.votes_for, vote.votes_against
        mentorship.vote_opened, mentorship.vote_closed = vote.opened, vote.closed
        mentorship.vote_source, mentorship.vote_fetched_at = vote.source, vote.fetched_at
    mentorship.repository_ids = known_repositories.scope_ids(
        session, names=mentorship.repositories, now=now
    )
    session.add(mentorship)
    session.flush()
    detail = f"mentors {', '.join(mentor_displays)}; ends {ends_at:%Y-%m-%d %H:%M} UTC"
    record(session, mentorship=mentorship, actor=actor, kind="created", detail=detail, at=now)
    if vote is not None and vote.source == "discourse":
        fetched = f"{vote.fetched_at:%Y-%m-%d %H:%M} UTC" if vote.fetched_at else "?"
        typed = f"; given over the forum's: {'; '.join(vote.overrides)}" if vote.overrides else ""
        record(
            session,
            mentorship=mentorship,
            actor=actor,
            kind="vote_fetched",
            detail=f"from {vote.url} at {fetched}{typed}",
            at=now,
        )
    if vote is not None and not vote.passes:
        record(
            session,
            mentorship=mentorship,
            actor=actor,
            kind="pep13_override",
            detail=f"{'; '.join(vote.problems())}. Reason: {override_reason}",
            at=now,
        )
    for mentor in mentor_displays:
        _assign(session, mentorship=mentorship, mentor=mentor, actor=actor, at=now)
    return mentorship


def extend(
    session: Session,
    *,
    mentee: str,
    actor: str,
    now: datetime,
    days: int | None = None,
    until: datetime | None = None,
) -> Mentorship:
    """Move the end of an open mentorship later, by days or to a date."""
    mentorship = _current(session, mentee=mentee, at=now)
    if (days is None) == (until is None):
        raise MentorshipError("give either a number of days or an end date")
    if days is not None:
        if days < 1:
            raise MentorshipError("extend by at least one day")
        new_end = mentorship.ends_at + timedelta(days=days)
    else:
        assert until is not None
        new_end = until
        if new_end <= mentorship.ends_at:
            raise MentorshipError(
                f"the mentorship already runs until {mentorship.ends_at:%Y-%m-%d %H:%M} UTC;"
                " use end to stop it earlier"
            )
    old_end, mentorship.ends_at = mentorship.ends_at, new_end
    session.add(mentorship)
    record(
        session,
        mentorship=mentorship,
        actor=actor,
        kind="extended",
        detail=f"from {old_end:%Y-%m-%d %H:%M} to {new_end:%Y-%m-%d %H:%M} UTC",
        at=now,
    )
    return mentorship


def end(
    session: Session,
    *,
    mentee: str,
    reason: str,
    actor: str,
    now: datetime,
    note: str | None = None,
) -> Mentorship:
    """End an open mentorship early: the mentee graduated, or it was revoked."""
    if reason not in (EndReason.GRADUATED, EndReason.REVOKED):
        raise MentorshipError("the reason must be graduated or revoked")
    end_note = bounded_text(note, what="the end note")
    mentorship = _current(session, mentee=mentee, at=now)
    mentorship.ended_at, mentorship.end_reason = now, reason
    mentorship.ended_by, mentorship.end_note = actor, end_note
    session.add(mentorship)
    record(session, mentorship=mentorship, actor=actor, kind="ended", detail=reason, at=now)
    return mentorship


def add_mentor(
    session: Session, *, mentee: str, mentor: str, actor: str, now: datetime
) -> Mentorship:
    """Assign one more mentor to an open mentorship."""
    mentorship = _current(session, mentee=mentee, at=now)
    mentor_display = display_login(mentor)
    if mentor_display.lower() == mentorship.mentee:
        raise MentorshipError(f"{mentor_display} cannot be their own mentor")
    if mentor_display.lower() in {a.mentor for a in mentors_of(session, mentorship=mentorship)}:
        raise MentorshipError(f"{mentor_display} already mentors {mentorship.mentee_display}")
    _assign(session, mentorship=mentorship, mentor=mentor_display, actor=actor, at=now)
    return mentorship


def remove_mentor(
    session: Session, *, mentee: str, mentor: str, actor: str, now: datetime
) -> Mentorship:
    """Take a mentor off an open mentorship, keeping at least as many as approvals require."""
    mentorship = _current(session, mentee=mentee, at=now)
    refusal = removal_refusal(session, mentorship=mentorship, mentor=mentor)
    if refusal is not None:
        raise MentorshipError(refusal)
    login = canonical_login(mentor)
    assignments = mentors_of(session, mentorship=mentorship)
    assignment = next(a for a in assignments if a.mentor == login)
    assignment.removed_at, assignment.removed_by = now, actor
    session.add(assignment)
    record(
        session,
        mentorship=mentorship,
        actor=actor,
        kind="mentor_removed",
        detail=assignment.mentor_display,
        at=now,
    )
    return mentorship


def removal_refusal(session: Session, *, mentorship: Mentorship, mentor: str) -> str | None:
    """Why ``mentor`` cannot be taken off ``mentorship`` (None: they can), for the confirm
    page and for ``remove_mentor`` alike."""
    login = canonical_login(mentor)
    assignments = mentors_of(session, mentorship=mentorship)
    if login not in {a.mentor for a in assignments}:
        return f"{display_login(mentor)} is not a mentor of {mentorship.mentee_display}"
    if len(assignments) - 1 < max(1, mentorship.approvals_required):
        return (
            f"{mentorship.mentee_display} needs at least {max(1, mentorship.approvals_required)}"
            " mentor(s); add another before removing this one"
        )
    return None


# The terms change_terms may change, as the audit log names them.
TERM_NAMES = {
    "approvals_required": "approvals required",
    "repositories": "repositories",
    "dismiss_stale_approvals": "a new push needs a new approval",
    "same_content_approvals": "an approval holds for a push with the same content",
    "gate_approved_prs": "gate pull requests the mentee approves",
    "bypass_alerts": "comment on a bypass",
    "note": "note",
}


def change_terms(
    session: Session,
    *,
    mentee: str,
    actor: str,
    now: datetime,
    approvals_required: int | None = None,
    repositories: Iterable[str] | None = None,
    dismiss_stale_approvals: bool | None = None,
    same_content_approvals: bool | None = None,
    gate_approved_prs: bool | None = None,
    bypass_alerts: bool | None = None,
    note: str | None = None,
    notify_url: str | None = None,
    seen: str | None = None,
) -> tuple[Mentorship, list[str]]:
    """Change an open mentorship's terms after its start; the mentorship and what changed.

    None leaves a term as it is (an empty note removes the note; empty repositories mean
    every repository). Refused as ``promote`` refuses, naming the field; each change is one
    audit event (old → new). The caller re-decides the gates, as after any lifecycle change.

    ``seen`` is :func:`terms_digest` of the terms the editor was shown: if another change
    landed since, this one is refused rather than quietly undoing it.
    """
    mentorship = _current(session, mentee=mentee, at=now)
    # Held to the end of the transaction, so two editors take turns and the second sees
    # what the first stored.
    session.exec(
        select(Mentorship)
        .where(Mentorship.id == mentorship.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if seen is not None and seen != terms_digest(mentorship):
        raise MentorshipError(
            "the terms were changed since you opened this page; nothing was saved —"
            " look at them again, then make your change",
            field="conflict",
        )
    wanted: dict[str, object] = {}
    if approvals_required is not None:
        mentors = len(mentors_of(session, mentorship=mentorship))
        if approvals_required < 1:
            raise MentorshipError(
                "at least one approval must be required", field="approvals_required"
            )
        if approvals_required > mentors:
            raise MentorshipError(
                f"{approvals_required} approvals required but only {mentors} mentors",
                field="approvals_required",
            )
        wanted["approvals_required"] = approvals_required
    if repositories is not None:
        try:
            wanted["repositories"] = sorted({canonical_repo(name) for name in repositories})
        except MentorshipError as error:
            raise MentorshipError(str(error), field="repositories") from None
    if note is not None:
        try:
            wanted["note"] = bounded_text(note, what="the note")
        except MentorshipError as error:
            raise MentorshipError(str(error), field="note") from None
    for name, flag in (
        ("dismiss_stale_approvals", dismiss_stale_approvals),
        ("same_content_approvals", same_content_approvals),
        ("gate_approved_prs", gate_approved_prs),
        ("bypass_alerts", bypass_alerts),
    ):
        if flag is not None:
            wanted[name] = flag
    changed = []
    for name, new in wanted.items():
        old = getattr(mentorship, name)
        if old == new:
            continue
        setattr(mentorship, name, new)
        line = f"{TERM_NAMES[name]}: {_term(name, old)} → {_term(name, new)}"
        record(
            session, mentorship=mentorship, actor=actor, kind="terms_changed", detail=line, at=now
        )
        changed.append(line)
    if notify_url is not None:
        chat = _change_notify_url(session, mentorship, notify_url, actor=actor, now=now)
        changed += [chat] if chat else []
    if "repositories" in wanted:  # the ids of the new scope, looked up by the worker if unknown
        mentorship.repository_ids = known_repositories.scope_ids(
            session, names=mentorship.repositories, now=now
        )
    session.add(mentorship)
    return mentorship, changed


def _change_notify_url(
    session: Session, mentorship: Mentorship, url: str, *, actor: str, now: datetime
) -> str | None:
    """Set (or, empty, clear) the mentorship's own chat URL; the audit line names hosts only,
    as the URL is a secret. None when nothing changed."""
    try:
        new = config.notify_url(url, name="the team chat URL")
    except config.ConfigError as error:
        raise MentorshipError(str(error), field="notify_url") from None
    if new == mentorship.notify_url:
        return None

    def shown(value: str | None) -> str:
        return urlsplit(value).hostname or "set" if value else "the deployment's"

    line = f"team chat: {shown(mentorship.notify_url)} → {shown(new)}"
    mentorship.notify_url = new
    record(session, mentorship=mentorship, actor=actor, kind="terms_changed", detail=line, at=now)
    return line


def terms_digest(mentorship: Mentorship) -> str:
    """A short digest of the editable terms, for an edit form to say which ones it showed."""
    shown = {name: getattr(mentorship, name) for name in sorted(TERM_NAMES)}
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:16]


def _term(name: str, value: object) -> str:
    """A term's value as the audit log says it."""
    if name == "repositories":
        return ", ".join(value) if isinstance(value, list) and value else "every repository"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    return f"“{value}”" if name == "note" else str(value)


def expire_lapsed(session: Session, *, now: datetime) -> list[Mentorship]:
    """Mark every mentorship whose end date has passed as ended with reason ``expired``."""
    lapsed = list(
        session.exec(
            select(Mentorship)
            .where(col(Mentorship.ended_at).is_(None))
            .where(Mentorship.ends_at <= now)
            .order_by(col(Mentorship.ends_at))
        )
    )
    for mentorship in lapsed:
        _mark_expired(session, mentorship)
    return lapsed


def _mark_expired(session: Session, mentorship: Mentorship) -> None:
    """Record a lapsed mentorship as expired at its own end date (not when we noticed)."""
    mentorship.ended_at, mentorship.end_reason = mentorship.ends_at, EndReason.EXPIRED
    mentorship.ended_by = "gatekeeper"
    session.add(mentorship)
    record(
        session,
        mentorship=mentorship,
        actor="gatekeeper",
        kind="expired",
        detail=f"ended on {mentorship.ends_at:%Y-%m-%d %H:%M} UTC",
        at=mentorship.ends_at,
    )
    # Flush now: the partial unique index must see this row ended before a new one is added.
    session.flush()


def _assign(
    session: Session, *, mentorship: Mentorship, mentor: str, actor: str, at: datetime
) -> None:
    assert mentorship.id is not None, "flush the mentorship before assigning mentors"
    session.add(
        MentorAssignment(
            mentorship_id=mentorship.id,
            mentor=mentor.lower(),
            mentor_display=mentor,
            mentor_id=_account_id(session, login=mentor, now=at),
            added_at=at,
            added_by=actor,
        )
    )
    record(session, mentorship=mentorship, actor=actor, kind="mentor_added", detail=mentor, at=at)


def _account_id(session: Session, *, login: str, now: datetime) -> int | None:
    """The id of the account under ``login`` if one was seen; else the worker asks GitHub."""
    found = people.known_id(session, login=login)
    if found is None:
        people.learn_later(session, login=login, now=now)
    return found


def _unique_mentors(mentors: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for mentor in mentors:
        display = display_login(mentor)
        seen.setdefault(display.lower(), display)
    return list(seen.values())


def _end_from(start: datetime, *, days: int | None, until: datetime | None) -> datetime:
    if days is not None and until is not None:
        raise MentorshipError("give a number of days or an end date, not both", field="until")
    if days is not None:
        if days < 1:
            raise MentorshipError("a mentorship lasts at least one day", field="days")
        return start + timedelta(days=days)
    if until is not None:
        if until <= start:
            raise MentorshipError("the end date must come after the start", field="until")
        return until
    return default_end(start)


def mentors_by_mentorship(
    session: Session, *, mentorship_ids: Iterable[int]
) -> dict[int, list[MentorAssignment]]:
    """Current mentors of several mentorships in one query."""
    wanted = list(set(mentorship_ids))
    grouped: dict[int, list[MentorAssignment]] = {mid: [] for mid in wanted}
    if not wanted:
        return grouped
    rows = session.exec(
        select(MentorAssignment)
        .where(col(MentorAssignment.mentorship_id).in_(wanted))
        .where(col(MentorAssignment.removed_at).is_(None))
        .order_by(col(MentorAssignment.id))
    )
    for row in rows:
        grouped[row.mentorship_id].append(row)
    return grouped


def all_mentorships(session: Session, *, include_ended: bool, now: datetime) -> list[Mentorship]:
    """Mentorships for listing: open ones, or all of them, soonest end first, ended last."""
    query = select(Mentorship)
    if not include_ended:
        query = query.where(col(Mentorship.ended_at).is_(None)).where(Mentorship.ends_at > now)
    ended_last = sa.case(
        (col(Mentorship.ended_at).is_(None) & (Mentorship.ends_at > now), 0), else_=1
    )
    return list(session.exec(query.order_by(ended_last, col(Mentorship.ends_at))))
