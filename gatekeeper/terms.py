"""A mentorship as the gate sees it (``gate.Terms``): its mentee, mentors and settings.

Read from the mentorship and its current mentor assignments; ``decisions`` reads them once
per decision and hands them down.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlmodel import Session

from gatekeeper import gate, mentorships
from gatekeeper.models import MentorAssignment, Mentorship


def terms_of(session: Session, mentorship: Mentorship) -> gate.Terms:
    """A mentorship and its current mentors as the gate sees them."""
    return _terms(mentorship, mentorships.mentors_of(session, mentorship=mentorship))


def terms_by_mentorship(session: Session, found: Iterable[Mentorship]) -> dict[int, gate.Terms]:
    """Several mentorships' terms, their mentors read in one query."""
    by_id = {m.id: m for m in found if m.id is not None}
    assignments = mentorships.mentors_by_mentorship(session, mentorship_ids=by_id)
    return {i: _terms(m, assignments[i]) for i, m in by_id.items()}


def latest_terms_of(
    session: Session, *, accounts: Sequence[mentorships.Account]
) -> dict[mentorships.Account, tuple[Mentorship, gate.Terms] | None]:
    """The open (else most recent) mentorship of each account and its terms: one query,
    however many accounts."""
    found = mentorships.latest_mentorships_with_mentors(session, accounts=accounts)
    return {
        account: (pair[0], _terms(*pair)) if pair is not None else None
        for account, pair in found.items()
    }


def _terms(mentorship: Mentorship, assignments: list[MentorAssignment]) -> gate.Terms:
    return gate.Terms(
        mentee=mentorship.mentee,
        mentors=frozenset(a.mentor for a in assignments),
        started_at=mentorship.started_at,
        ends_at=mentorship.ends_at,
        ended_at=mentorship.ended_at,
        repositories=frozenset(mentorship.repositories),
        repository_ids=frozenset(mentorship.repository_ids.items()),
        approvals_required=mentorship.approvals_required,
        dismiss_stale_approvals=mentorship.dismiss_stale_approvals,
        gate_approved_prs=mentorship.gate_approved_prs,
        same_content_approvals=mentorship.same_content_approvals,
        id=mentorship.id,
        mentor_display=tuple(a.mentor_display for a in assignments),
        mentee_display=mentorship.mentee_display,
        mentee_id=mentorship.mentee_id,
        mentor_ids={a.mentor_id: a.mentor for a in assignments if a.mentor_id is not None},
    )


def latest_terms(session: Session, *, login: str, account_id: int | None) -> gate.Terms | None:
    """The terms of the account's open (else most recent) mentorship, if it ever had one."""
    mentorship = mentorships.latest_mentorship_of(session, account_id=account_id, login=login)
    return terms_of(session, mentorship) if mentorship is not None else None
