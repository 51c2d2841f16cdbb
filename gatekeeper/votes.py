"""The core-team vote that promotes a mentee, and the PEP 13 rule it must meet: two-thirds
in favour, open at least a week. A vote is typed in (``make_vote``) or read from the forum
(``discourse.fetch_vote`` gives a ``FetchedVote``), and stored on its mentorship.

Pure, like ``standing``: the standard library and the project's wording alone, so that
``gatekeeper status`` can say whether a vote passes without loading the models.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

from gatekeeper import words
from gatekeeper.standing import MentorshipError, Voted

PEP13_MINIMUM_DAYS = 7


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
                f"the vote was open {words.plural(open_days, 'day')},"
                f" PEP 13 asks for {PEP13_MINIMUM_DAYS}"
            )
        return found

    @property
    def passes(self) -> bool:
        """Whether the vote meets PEP 13."""
        return not self.problems()


def vote_of(mentorship: Voted) -> Vote | None:
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
        closed = words.exact_time(self.closed_at) if self.closed_at else "(not said)"
        return (
            f"{self.votes_for} for, {self.votes_against} against in poll {self.poll!r},"
            f" open {words.exact_time(self.opened_at)} to {closed}"
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
