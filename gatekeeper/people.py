"""People are GitHub accounts: Gatekeeper learns each one's user id once, then compares ids.

A login is only a name an account has *now*: accounts rename, and a freed login can be taken
by someone else. So every row that names a person keeps the account's id beside the login
(``Mentorship.mentee_id``, ``MentorAssignment.mentor_id``, ``PullRequest.author_id``,
``Review.reviewer_id``), and the gate compares those ids; the login is what is shown.

How an id is learned, once:

* from the first event that names the login with an id (author, reviewer, commenter, sender,
  who merged), through :func:`learn`, which every handler runs before the gate decides;
* from the worker's ``GET /users/{login}`` (the ``learn_account`` job, queued when a mentee or
  a mentor is named and their id is not known yet; a request never waits on GitHub);
* from signing in (GitHub's ``/user`` says the id).

``Account`` is the one record of an id and the login it was last seen under. When an event
shows a known id under a new login, :func:`learn` renames the account there and in the rows
that carry its id, in one place, so the new login is shown and the gate stays. Someone who
takes over a former login has another id: they are not the mentee, not a mentor and not a
maintainer, whatever their login. Maintainers are logins in GATEKEEPER_MAINTAINERS; the
account each configured login belonged to when first seen is kept in ``Maintainer``.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gatekeeper import db, jobs
from gatekeeper.events import Person
from gatekeeper.models import (
    Account,
    JobKind,
    Maintainer,
    MentorAssignment,
    Mentorship,
    PullRequest,
    Review,
)

log = logging.getLogger(__name__)

JOB = JobKind.LEARN_ACCOUNT


def learn(
    session: Session,
    person: Person | None,
    *,
    at: datetime,
    maintainers: Iterable[str] = (),
) -> None:
    """Take in what an event (or GitHub's answer) says about one account.

    A new id is recorded and given to the rows that name its login without an id yet; a
    known id under another login is a rename, followed everywhere. ``at`` is when GitHub
    said so: an older delivery never renames an account back.
    """
    if person is None:
        return
    account = session.get(Account, person.id) or _first_seen(session, person, at=at)
    # At GitHub's precision (whole seconds): what Gatekeeper stamps itself has microseconds.
    newer = at >= account.seen_at.replace(microsecond=0)
    if (account.login, account.display) != (person.login, person.display) and newer:
        _rename(session, account, person, at=at)
    if person.login in set(maintainers):
        _bind_maintainer(session, person, at=at)


def recall(session: Session, people: Iterable[tuple[Person | None, datetime]]) -> None:
    """Read the accounts of ``people`` in one query, so that learning each reads none (the
    transaction holds what it read: see ``db``); those the query shows never seen are
    recorded at once (``at``: when the event says so), not looked for again.

    A person named twice is recorded at the first ``at`` given, as :func:`learn` called in
    that order would.
    """
    named: dict[int, tuple[Person, datetime]] = {}
    for person, at in people:
        if person is not None:
            named.setdefault(person.id, (person, at))
    if not named:
        return
    read = session.exec(select(Account).where(col(Account.github_id).in_(sorted(named))))
    known = {account.github_id for account in read}
    for github_id in sorted(set(named) - known):
        person, at = named[github_id]
        _first_seen(session, person, at=at)


def _first_seen(session: Session, person: Person, *, at: datetime) -> Account:
    """Record an account seen for the first time, and give its id to the rows naming its
    login: created, or read as a concurrent delivery just created it, in one statement."""
    account = db.upsert_locked(
        session,
        Account,
        {"github_id": person.id, "login": person.login, "display": person.display, "seen_at": at},
        ["github_id"],
    )
    _bind(session, person)
    return account


def learn_all(
    session: Session, people: Iterable[Person | None], *, at: datetime, maintainers: Iterable[str]
) -> None:
    """:func:`learn` each of ``people``."""
    configured = frozenset(maintainers)
    for person in people:
        learn(session, person, at=at, maintainers=configured)


def _bind(session: Session, person: Person) -> None:
    """Give a newly seen id to the rows naming its login that have none yet."""
    for model, login, account_id in (
        (Mentorship, Mentorship.mentee, Mentorship.mentee_id),
        (MentorAssignment, MentorAssignment.mentor, MentorAssignment.mentor_id),
        (PullRequest, PullRequest.author, PullRequest.author_id),
        (Review, Review.reviewer, Review.reviewer_id),
    ):
        session.execute(
            sa.update(model)
            .where(col(login) == person.login)
            .where(col(account_id).is_(None))
            .values({account_id: person.id})
        )


def _rename(session: Session, account: Account, person: Person, *, at: datetime) -> None:
    """An account seen under a new login: show the new login wherever its id is."""
    log.info("account %s renamed from %s to %s", person.id, account.login, person.login)
    account.login, account.display, account.seen_at = person.login, person.display, at
    session.add(account)
    taken = session.exec(
        select(Mentorship.id)
        .where(Mentorship.mentee == person.login)
        .where(col(Mentorship.ended_at).is_(None))
        .where(sa.or_(col(Mentorship.mentee_id).is_(None), col(Mentorship.mentee_id) != person.id))
    ).first()
    renames: list[tuple[type, object, object, object]] = [
        (MentorAssignment, MentorAssignment.mentor_id, MentorAssignment.mentor, "mentor_display"),
        (PullRequest, PullRequest.author_id, PullRequest.author, "author_display"),
        (Review, Review.reviewer_id, Review.reviewer, "reviewer_display"),
    ]
    if taken is None:
        renames.append((Mentorship, Mentorship.mentee_id, Mentorship.mentee, "mentee_display"))
    else:  # another open mentorship holds the login: it stays, the gate goes by id anyway
        log.warning("mentorship of %s keeps its login: %s is taken", person.id, person.login)
    for model, account_id, login, display in renames:
        session.execute(
            sa.update(model)
            .where(col(account_id) == person.id)
            .values({login: person.login, display: person.display})
        )


def _bind_maintainer(session: Session, person: Person, *, at: datetime) -> None:
    """The first account seen under a configured maintainer's login is that maintainer."""
    if session.get(Maintainer, person.login) is None:
        db.insert_missing(
            session,
            Maintainer,
            {"login": person.login, "github_id": person.id, "learned_at": at},
            ["login"],
        )


def is_maintainer(
    session: Session, *, user_id: int | None, login: str, maintainers: frozenset[str]
) -> bool:
    """Whether the account ``user_id`` (signed in as ``login``) is a configured maintainer.

    It is if a configured login was learned as this account (even under a new login since),
    or if it holds a configured login no account was learned for yet (signing in learns it).
    """
    if not maintainers:
        return False
    learned = {
        row.login: row.github_id
        for row in session.exec(select(Maintainer).where(col(Maintainer.login).in_(maintainers)))
    }
    if user_id is not None and user_id in learned.values():
        return True
    return login in maintainers and login not in learned


def known_id(session: Session, *, login: str) -> int | None:
    """The id of the account last seen under ``login``, if one was."""
    found = session.exec(
        select(Account.github_id)
        .where(Account.login == login.lower())
        .order_by(col(Account.seen_at).desc())
    ).first()
    return found


def learn_later(session: Session, *, login: str, now: datetime) -> None:
    """Have the worker ask GitHub for ``login``'s id (``GET /users/{login}``)."""
    jobs.enqueue(
        session, key=f"{JOB}:{login.lower()}", args=jobs.LearnAccount(login=login.lower()), now=now
    )


def unknown_logins(session: Session, *, logins: Iterable[str]) -> list[str]:
    """Which of ``logins`` no account was seen under."""
    wanted = sorted({login.lower() for login in logins})
    if not wanted:
        return []
    seen = set(session.exec(select(Account.login).where(col(Account.login).in_(wanted))))
    return [login for login in wanted if login not in seen]


def offline_id(login: str) -> int:
    """The id of a sample account in ``gatekeeper demo``, which never asks GitHub: negative,
    so it is never a real account's."""
    return -(zlib.crc32(login.lower().encode()) + 1)
