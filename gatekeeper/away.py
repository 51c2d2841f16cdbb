"""Mentors who are away: a person marks themselves away until a date (or a maintainer does).

Away belongs to the person, an account, across every mentorship they are in: review requests
and reminders then go to the mentors who are present, the check's summary and the mentee's
page say who is away and until when, and an approval an away mentor gives still counts (the
gate itself never looks here). A mentorship whose mentors are all away is shown to the
maintainers with the mentee's waiting pull requests (:func:`stranded`).

Someone is away through ``until``, a UTC calendar date: the day after, they are present again
without anyone saying so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from gatekeeper import gate, people
from gatekeeper import mentorships as lifecycle
from gatekeeper.gate import GateState
from gatekeeper.models import Absence, Account, MentorAssignment, Mentorship, PullRequest

# Further ahead than this is no holiday but leaving: remove the mentor instead.
LONGEST = timedelta(days=366)
AWAY, BACK = "mentor_away", "mentor_back"


def day_words(day: date) -> str:
    """A date as the pages write it: ``Dec 20, 2026``."""
    return f"{day:%b} {day.day}, {day.year}"


def words(absence: Absence, *, login: str | None = None) -> str:
    """``june-h is away until Dec 20, 2026`` (``login``: the account's login now, when the
    caller read it; the absence keeps the one it was set under)."""
    return f"{login or absence.login} is away until {day_words(absence.until)}"


def parse_until(text: str | None, *, now: datetime) -> date:
    """The last day away, from ``YYYY-MM-DD``: refused when unparseable, past or too far."""
    cleaned = (text or "").strip()
    if not cleaned:
        raise lifecycle.MentorshipError("give the last day away (YYYY-MM-DD)", field="until")
    try:
        until = date.fromisoformat(cleaned)
    except ValueError:
        shown = cleaned if len(cleaned) <= 20 else cleaned[:20] + "…"
        raise lifecycle.MentorshipError(
            f"{shown!r} is not a date; write it as YYYY-MM-DD, e.g. "
            f"{(now.date() + timedelta(days=14)).isoformat()}",
            field="until",
        ) from None
    if until < now.date():
        raise lifecycle.MentorshipError(
            f"{day_words(until)} has passed; give today or a later day", field="until"
        )
    if until > now.date() + LONGEST:
        raise lifecycle.MentorshipError(
            f"{day_words(until)} is more than a year away; remove the mentor instead",
            field="until",
        )
    return until


# ---------------------------------------------------------------- reading


def current(session: Session, *, account_ids: Iterable[int], now: datetime) -> dict[int, Absence]:
    """Who of ``account_ids`` is away at ``now``, by account id, in one query."""
    wanted = sorted(set(account_ids))
    if not wanted:
        return {}
    rows = session.exec(
        select(Absence)
        .where(col(Absence.account_id).in_(wanted))
        .where(col(Absence.until) >= now.date())
    )
    return {row.account_id: row for row in rows}


def of_person(session: Session, *, account_id: int | None, now: datetime) -> Absence | None:
    """The person's absence, if they are away at ``now``."""
    if account_id is None:
        return None
    return current(session, account_ids=[account_id], now=now).get(account_id)


def of_mentors(
    session: Session, mentors: Iterable[MentorAssignment], *, now: datetime
) -> dict[str, Absence]:
    """The absent ones of ``mentors``, by their lowercase login."""
    by_id = {a.mentor_id: a.mentor for a in mentors if a.mentor_id is not None}
    return {
        by_id[i]: absence for i, absence in current(session, account_ids=by_id, now=now).items()
    }


def of_terms(session: Session, terms: gate.Terms | None, *, now: datetime) -> dict[str, Absence]:
    """The absent mentors of ``terms``, by their lowercase login."""
    if terms is None:
        return {}
    found = current(session, account_ids=terms.mentor_ids, now=now)
    return {terms.mentor_ids[i]: absence for i, absence in found.items()}


def present(names: Iterable[str], absent: dict[str, Absence]) -> list[str]:
    """``names`` (logins as shown) without those who are away."""
    return [name for name in names if name.lower() not in absent]


def asking(terms: gate.Terms, absent: dict[str, Absence]) -> gate.Terms:
    """``terms`` whose mentors to ask (``gate.blocker``'s "ask @x") are those present, while
    any is; who approves, and who counts, is unchanged."""
    here = tuple(present(terms.mentor_display, absent))
    if not absent or not here:
        return terms
    return dataclasses.replace(terms, mentor_display=here)


def tell(
    session: Session,
    decision: gate.Decision,
    terms: Iterable[gate.Terms | None],
    *,
    now: datetime,
) -> gate.Decision:
    """``decision`` with a line naming its mentorship's mentors who are away, while it waits.

    ``terms`` are the mentorships the decision may have come from (the author's, and those of
    reviewers gated as mentees); the one it names is read, nothing else is queried.
    """
    if not decision.waiting or decision.mentorship_id is None:
        return decision
    deciding = next((t for t in terms if t is not None and t.id == decision.mentorship_id), None)
    absent = of_terms(session, deciding, now=now)
    if not absent:
        return decision
    lines = [f"@{words(a, login=login)}" for login, a in sorted(absent.items())]
    note = "Away: " + "; ".join(lines) + ". An approval from them still counts."
    return dataclasses.replace(decision, summary=f"{decision.summary}\n\n{note}")


def mentored(
    session: Session, *, account_id: int | None, now: datetime, login: str | None = None
) -> list[Mentorship]:
    """The mentorships not ended (running or scheduled) that the account (or, while its id is
    not known, the login) mentors now."""
    # By login only where no id is known: a login held by another account is not theirs.
    by_login = (col(MentorAssignment.mentor) == (login or "").lower()) & col(
        MentorAssignment.mentor_id
    ).is_(None)
    who = (
        by_login
        if account_id is None
        else by_login | (col(MentorAssignment.mentor_id) == account_id)
    )
    rows = session.exec(
        select(Mentorship)
        .join(MentorAssignment, col(MentorAssignment.mentorship_id) == col(Mentorship.id))
        .where(who)
        .where(col(MentorAssignment.removed_at).is_(None))
        .where(col(Mentorship.ended_at).is_(None))
        .where(col(Mentorship.ends_at) > now)
        .order_by(col(Mentorship.id))
    )
    return list({m.id: m for m in rows}.values())


@dataclasses.dataclass(frozen=True)
class Stranded:
    """An active mentorship whose mentors are all away, and its mentee's waiting pulls."""

    mentorship: Mentorship
    away: list[Absence]
    waiting: list[PullRequest]

    @property
    def back_on(self) -> date:
        """The first day a mentor is present again."""
        return min(a.until for a in self.away) + timedelta(days=1)


def stranded(session: Session, *, now: datetime) -> list[Stranded]:
    """Active mentorships whose every current mentor is away, in four queries at most.

    This is the maintainer's item (``/me``, and the landing page's "what waits for you").
    """
    absences = {
        a.account_id: a for a in session.exec(select(Absence).where(Absence.until >= now.date()))
    }
    if not absences:
        return []
    assignments = session.exec(
        select(MentorAssignment, Mentorship)
        .join(Mentorship, col(MentorAssignment.mentorship_id) == col(Mentorship.id))
        .where(col(MentorAssignment.removed_at).is_(None))
        .where(col(Mentorship.ended_at).is_(None))
        .where(col(Mentorship.started_at) <= now)
        .where(col(Mentorship.ends_at) > now)
        .order_by(col(Mentorship.id), col(MentorAssignment.id))
    ).all()
    mentors: dict[int, list[MentorAssignment]] = {}
    mentorships: dict[int, Mentorship] = {}
    for assignment, mentorship in assignments:
        assert mentorship.id is not None
        mentors.setdefault(mentorship.id, []).append(assignment)
        mentorships[mentorship.id] = mentorship
    alone = {
        mentorship_id: [absences[a.mentor_id or 0] for a in their]
        for mentorship_id, their in mentors.items()
        if all(a.mentor_id in absences for a in their)
    }
    if not alone:
        return []
    waiting: dict[int, list[PullRequest]] = {}
    for pull in session.exec(
        select(PullRequest)
        .where(col(PullRequest.gated_mentorship_id).in_(sorted(alone)))
        .where(PullRequest.state == "open")
        .where(PullRequest.gate == GateState.WAITING)
        .order_by(col(PullRequest.waiting_since), col(PullRequest.id))
    ):
        waiting.setdefault(pull.gated_mentorship_id or 0, []).append(pull)
    return [Stranded(mentorships[i], away, waiting.get(i, [])) for i, away in alone.items()]


def everyone(session: Session, *, now: datetime) -> list[Absence]:
    """Everyone away at ``now``, back soonest first."""
    return list(
        session.exec(
            select(Absence)
            .where(col(Absence.until) >= now.date())
            .order_by(col(Absence.until), col(Absence.login))
        )
    )


# ---------------------------------------------------------------- changing


def account_of(session: Session, *, login: str, account_id: int | None = None) -> tuple[int, str]:
    """The account id and shown login of ``login`` (the account ``account_id`` when the caller
    knows it: the signed-in person); refused when Gatekeeper knows no account."""
    canonical = lifecycle.canonical_login(login)
    if account_id is None:
        account_id = people.known_id(session, login=canonical)
    if account_id is None:
        account_id = session.exec(
            select(MentorAssignment.mentor_id)
            .where(MentorAssignment.mentor == canonical)
            .where(col(MentorAssignment.mentor_id).is_not(None))
            .order_by(col(MentorAssignment.id).desc())
        ).first()
    if account_id is None:
        raise lifecycle.MentorshipError(
            f"Gatekeeper knows no GitHub account under {canonical} yet; it learns one when "
            "they sign in or once GitHub has been asked about a newly named mentor",
            field="login",
        )
    account = session.get(Account, account_id)
    return account_id, account.display if account is not None else lifecycle.display_login(login)


@dataclasses.dataclass(frozen=True)
class Change:
    """A person went away or came back: who, and the mentorships whose gates must follow
    (the caller re-decides them in the same transaction, as after any lifecycle change)."""

    login: str
    mentorships: list[Mentorship]


def set_away(
    session: Session,
    *,
    login: str,
    until: date,
    note: str | None,
    actor: str,
    now: datetime,
    account_id: int | None = None,
) -> Change:
    """Mark ``login`` away through ``until`` (replacing an earlier date), audited in each of
    their mentorships."""
    account_id, shown = account_of(session, login=login, account_id=account_id)
    text = lifecycle.bounded_text(note, what="the note")
    absence = session.get(Absence, account_id) or Absence(
        account_id=account_id, login=shown, until=until, set_by=actor, set_at=now
    )
    absence.login, absence.until, absence.note = shown, until, text
    absence.set_by, absence.set_at = actor, now
    session.add(absence)
    detail = words(absence) + (f": {text}" if text else "")
    return _audited(session, account_id, shown, kind=AWAY, detail=detail, actor=actor, now=now)


def come_back(
    session: Session, *, login: str, actor: str, now: datetime, account_id: int | None = None
) -> Change:
    """End ``login``'s absence now. Refused if they are not away."""
    account_id, shown = account_of(session, login=login, account_id=account_id)
    absence = of_person(session, account_id=account_id, now=now)
    if absence is None:
        raise lifecycle.MentorshipError(f"{shown} is not marked away", field="login")
    session.delete(absence)
    detail = f"{shown} is back (was away until {day_words(absence.until)})"
    return _audited(session, account_id, shown, kind=BACK, detail=detail, actor=actor, now=now)


def _audited(
    session: Session,
    account_id: int,
    login: str,
    *,
    kind: str,
    detail: str,
    actor: str,
    now: datetime,
) -> Change:
    """Audit the change in each mentorship the person mentors (once, unattached, if none)."""
    session.flush()
    mentorships = mentored(session, account_id=account_id, login=login, now=now)
    audited: list[Mentorship | None] = [*mentorships] or [None]
    for mentorship in audited:
        lifecycle.record(
            session, mentorship=mentorship, actor=actor, kind=kind, detail=detail, at=now
        )
    return Change(login, mentorships)
