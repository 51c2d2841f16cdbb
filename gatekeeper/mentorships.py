"""The mentorship lifecycle: promote, extend, end, expire, and mentors (the promotion vote
and its PEP 13 rule are ``votes``)."""

from __future__ import annotations

import calendar
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gatekeeper import config, gate, people, words
from gatekeeper import repositories as known_repositories
from gatekeeper.models import AuditEvent, EndReason, MentorAssignment, Mentorship

# The pure part lives in standing.py, re-exported so that callers keep writing lifecycle.X.
from gatekeeper.standing import (  # noqa: F401
    LOGIN_LIMIT,
    LOGIN_PATTERN,
    TERM_NAMES,
    MentorshipError,
    canonical_login,
    day_of,
    days_left,
    display_login,
    effective_end,
    left_words,
    no_mentorship,
    state_of,
    total_days,
    whole_days,
)
from gatekeeper.votes import Vote

REPO_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
# Notes, end notes, override reasons and URLs are shown to every visitor: keep them short.
TEXT_LIMIT = 2000
WEB_SCHEMES = ("http", "https")


# ---------------------------------------------------------------- names and dates


def canonical_repo(name: str) -> str:
    """Validate an OWNER/REPO name and return it lowercase."""
    cleaned = name.strip()
    if not REPO_PATTERN.match(cleaned):
        raise MentorshipError(
            f"{words.shorten(name)!r} is not a repository name of the form OWNER/REPO"
        )
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


RECOMMENDED_MENTORS = 2  # the new-mentorship form asks for "two or three mentors"


def few_mentors_warning(count: int) -> str | None:
    """A warning (never a refusal) when fewer mentors than recommended were named."""
    if count >= RECOMMENDED_MENTORS:
        return None
    named = "no mentor" if count == 0 else "only 1 mentor"
    return (
        f"This mentorship has {named}; two or three are recommended, so that a mentor who is "
        "busy or away does not hold the mentee's pull requests up."
    )


def days_until_start(mentorship: Mentorship, now: datetime) -> int:
    """Days until a scheduled mentorship starts (rounded up); 0 once it has."""
    return whole_days((mentorship.started_at - now).total_seconds())


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
        raise MentorshipError(
            f"{what} must be an http or https link, got {words.shorten(cleaned)!r}"
        )
    return cleaned


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


def latest_mentorship_of(
    session: Session, *, account_id: int | None, login: str
) -> Mentorship | None:
    """The open (else most recent) mentorship of the account ``account_id``, now ``login``.

    A mentorship whose mentee's id is not learned yet is matched by login, and so is an
    author whose id is unknown (failing closed: they are gated); one learned as another
    account is not theirs, whatever the login.
    """
    return latest_mentorships_of(session, accounts=[(account_id, login)])[(account_id, login)]


Account = tuple[int | None, str]  # (account id if known, login)


def latest_mentorships_of(
    session: Session, *, accounts: Sequence[Account]
) -> dict[Account, Mentorship | None]:
    """:func:`latest_mentorship_of` for several accounts, in one query."""
    if not accounts:
        return {}
    canonical = [(account_id, canonical_login(login)) for account_id, login in accounts]
    rows = list(
        session.exec(
            select(Mentorship)
            .where(sa.or_(*(_mentee_is(account_id, login) for account_id, login in canonical)))
            .order_by(col(Mentorship.ended_at).is_not(None), col(Mentorship.started_at).desc())
        )
    )
    return {
        given: next((m for m in rows if _is_mentee(m, account_id, login)), None)
        for given, (account_id, login) in zip(accounts, canonical, strict=True)
    }


def latest_mentorships_with_mentors(
    session: Session, *, accounts: Sequence[Account]
) -> dict[Account, tuple[Mentorship, list[MentorAssignment]] | None]:
    """:func:`latest_mentorships_of`, each with its current mentors, in one query."""
    if not accounts:
        return {}
    canonical = [(account_id, canonical_login(login)) for account_id, login in accounts]
    named = {
        "ids": sorted({account_id for account_id, _ in canonical if account_id is not None}),
        "logins_with_ids": sorted(
            {login for account_id, login in canonical if account_id is not None}
        ),
        "logins": sorted({login for account_id, login in canonical if account_id is None}),
    }
    # The rules of ``_mentee_is`` as one IN list each, for all the accounts at once: a row
    # may match another account's rule too, and ``_is_mentee`` picks each account's below.
    rows = session.exec(_latest_with_mentors(), params=named).all()
    mentors: dict[int | None, list[MentorAssignment]] = {}
    found: list[Mentorship] = []
    for mentorship, assignment in rows:
        if mentorship.id not in mentors:
            mentors[mentorship.id] = []
            found.append(mentorship)
        if assignment is not None:
            mentors[mentorship.id].append(assignment)
    chosen = {
        given: next((m for m in found if _is_mentee(m, account_id, login)), None)
        for given, (account_id, login) in zip(accounts, canonical, strict=True)
    }
    return {given: (m, mentors[m.id]) if m is not None else None for given, m in chosen.items()}


@functools.cache
def _latest_with_mentors() -> Any:
    """The query of :func:`latest_mentorships_with_mentors`, built once (every decision runs
    it): the mentorships of the accounts named by id, of those without an id by login, and
    of ids not linked yet by their login; each with its current mentors."""
    ids: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)
    logins_with_ids: sa.BindParameter[list[str]] = sa.bindparam("logins_with_ids", expanding=True)
    logins: sa.BindParameter[list[str]] = sa.bindparam("logins", expanding=True)
    current = (col(MentorAssignment.mentorship_id) == col(Mentorship.id)) & col(
        MentorAssignment.removed_at
    ).is_(None)
    return (
        select(Mentorship, MentorAssignment)
        .outerjoin(MentorAssignment, current)
        .where(
            sa.or_(
                col(Mentorship.mentee_id).in_(ids),
                col(Mentorship.mentee_id).is_(None) & col(Mentorship.mentee).in_(logins_with_ids),
                col(Mentorship.mentee).in_(logins),
            )
        )
        .order_by(
            col(Mentorship.ended_at).is_not(None),
            col(Mentorship.started_at).desc(),
            col(Mentorship.id),
            col(MentorAssignment.id),
        )
    )


def _mentee_is(account_id: int | None, login: str) -> sa.ColumnElement[bool]:
    by_login = col(Mentorship.mentee) == login
    if account_id is None:
        return by_login
    return sa.or_(
        col(Mentorship.mentee_id) == account_id,
        sa.and_(col(Mentorship.mentee_id).is_(None), by_login),
    )


def _is_mentee(mentorship: Mentorship, account_id: int | None, login: str) -> bool:
    """``_mentee_is``, of a row already read."""
    if account_id is not None and mentorship.mentee_id is not None:
        return mentorship.mentee_id == account_id
    return mentorship.mentee == login


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
            f"that mentorship would already have ended on {words.day(ends_at)}", field="until"
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
    detail = f"mentors {', '.join(mentor_displays)}; ends {words.exact_time(ends_at)}"
    record(session, mentorship=mentorship, actor=actor, kind="created", detail=detail, at=now)
    if vote is not None and vote.source == "discourse":
        fetched = words.exact_time(vote.fetched_at) if vote.fetched_at else "?"
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
                f"the mentorship already runs until {words.exact_time(mentorship.ends_at)};"
                " use end to stop it earlier"
            )
    old_end, mentorship.ends_at = mentorship.ends_at, new_end
    session.add(mentorship)
    record(
        session,
        mentorship=mentorship,
        actor=actor,
        kind="extended",
        detail=f"from {words.exact_time(old_end)} to {words.exact_time(new_end)}",
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
            f"{mentorship.mentee_display} needs at least"
            f" {words.plural(max(1, mentorship.approvals_required), 'mentor')};"
            " add another before removing this one"
        )
    return None


# The terms change_terms may change, as the audit log names them.
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
        detail=f"ended on {words.exact_time(mentorship.ends_at)}",
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
