"""A mentorship as the gate sees it (``gatekeeper/terms.py``) on SQLite and PostgreSQL: each
account's open (else latest) mentorship comes with its current mentors, from one query."""

from __future__ import annotations

from sqlmodel import Session

from database_support import statements_sent
from factories import HOUR, NOW, mentorship
from fakegithub import default_user_id
from gatekeeper import mentorships as lifecycle
from gatekeeper import terms


def test_each_accounts_latest_mentorship_comes_with_its_current_mentors_in_one_query(
    session: Session,
):
    """Two mentees' terms name their mentors still assigned (not one removed since); an
    account no mentorship names gets None; all of it is one query."""
    mentorship(session, "mpage", ("colesbury", "vstinner", "ambv"))
    mentorship(session, "hugovk", ("gvanrossum",))
    lifecycle.remove_mentor(session, mentee="mpage", mentor="ambv", actor="boss", now=NOW)
    session.commit()
    accounts = [
        (default_user_id("mpage"), "mpage"),
        (default_user_id("hugovk"), "hugovk"),
        (default_user_id("nobody"), "nobody"),
    ]
    with statements_sent(session.get_bind()) as statements:
        found = terms.latest_terms_of(session, accounts=accounts)
    assert len([s for s in statements if s.startswith("SELECT")]) == 1
    mentors = {
        login: sorted(pair[1].mentors) if pair is not None else None
        for (_id, login), pair in found.items()
    }
    assert mentors == {"mpage": ["colesbury", "vstinner"], "hugovk": ["gvanrossum"], "nobody": None}
    mpage = found[accounts[0]]
    assert mpage is not None and mpage[0].mentee == "mpage" and mpage[1].id == mpage[0].id
    assert mpage[1].mentor_ids == {
        default_user_id("colesbury"): "colesbury",
        default_user_id("vstinner"): "vstinner",
    }


def test_an_open_mentorship_is_chosen_over_an_ended_one(session: Session):
    """A mentee mentored twice is judged by the open mentorship and its mentors."""
    mentorship(session, "mpage", ("colesbury",), start=NOW - 48 * HOUR)
    lifecycle.end(session, mentee="mpage", reason="graduated", actor="boss", now=NOW - 24 * HOUR)
    session.commit()
    again = mentorship(session, "mpage", ("vstinner",), start=NOW - HOUR)
    account = (default_user_id("mpage"), "mpage")
    found = terms.latest_terms_of(session, accounts=[account])[account]
    assert found is not None
    assert (found[0].id, found[1].mentors) == (again.id, frozenset({"vstinner"}))
    assert terms.latest_terms_of(session, accounts=[]) == {}
