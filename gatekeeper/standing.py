"""What a mentorship's stored fields say, with nothing but the standard library: its state and
days left, its PEP 13 vote, the logins it names, and the lifecycle's refusal.

Apart from ``mentorships.py`` (which re-exports all of it) so that ``gatekeeper status`` and
``list`` describe a mentorship read without the ORM (``readings.py``): these take any object
with the fields they read, a model or a row.
"""

from __future__ import annotations

import enum
import math
import re
from datetime import date, datetime
from typing import Protocol

from gatekeeper import gate, words


class EndReason(enum.StrEnum):
    """Why a mentorship ended (``Mentorship.end_reason``)."""

    EXPIRED = "expired"  # its end date passed
    GRADUATED = "graduated"
    REVOKED = "revoked"


class Dated(Protocol):
    """A mentorship's dates, as stored."""

    @property
    def started_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def ended_at(self) -> datetime | None: ...


class Voted(Protocol):
    """A mentorship's promotion vote, as stored."""

    @property
    def vote_url(self) -> str | None: ...
    @property
    def votes_for(self) -> int | None: ...
    @property
    def votes_against(self) -> int | None: ...
    @property
    def vote_opened(self) -> date | None: ...
    @property
    def vote_closed(self) -> date | None: ...
    @property
    def vote_source(self) -> str | None: ...
    @property
    def vote_fetched_at(self) -> datetime | None: ...


LOGIN_LIMIT = 39  # characters in a GitHub login, GitHub's own limit
LOGIN_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")


class MentorshipError(Exception):
    """A request the lifecycle refuses; the message is shown to the user as it is.

    ``field`` names the input at fault (``mentors``, ``approvals_required``, ...), so that a
    form can mark it where it was typed; the command line shows the message alone.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def canonical_login(login: str) -> str:
    """Validate a GitHub login and return its canonical (lowercase) form."""
    display = display_login(login)
    return display.lower()


def display_login(login: str) -> str:
    """Validate a GitHub login and return it as typed, without a leading @."""
    cleaned = login.strip().removeprefix("@")
    if len(cleaned) > LOGIN_LIMIT:
        # Said without repeating it: a 300-character login quoted whole widens every page.
        raise MentorshipError(
            f"a GitHub login has at most {LOGIN_LIMIT} characters, "
            f"and {words.shorten(cleaned, 20)!r} has {len(cleaned):,}"
        )
    if not LOGIN_PATTERN.match(cleaned):
        raise MentorshipError(f"{words.shorten(login)!r} is not a valid GitHub login")
    return cleaned


def state_of(mentorship: Dated, at: datetime) -> str:
    """``active``, ``scheduled`` (starts later) or ``ended`` (by hand or by its end date).

    A label for now: once a mentorship has been ended it reads "ended", whatever ``at``.
    """
    if mentorship.ended_at is not None or at >= mentorship.ends_at:
        return "ended"
    return "scheduled" if at < mentorship.started_at else "active"


def whole_days(seconds: float) -> int:
    """A span in days, a started day counting whole: 18.2 days is 19."""
    return max(math.ceil(seconds / 86400), 0)


def total_days(mentorship: Dated) -> int:
    """How many days the period runs: its length in days, a started day counting whole."""
    return max(whole_days((mentorship.ends_at - mentorship.started_at).total_seconds()), 1)


def day_of(mentorship: Dated, now: datetime) -> int:
    """Which day of the period ``now`` is, the first being day 1; 0 before the start, the
    last day once it ended."""
    elapsed = (min(now, effective_end(mentorship)) - mentorship.started_at).total_seconds()
    if elapsed < 0:
        return 0
    return min(math.floor(elapsed / 86400) + 1, total_days(mentorship))


def days_left(mentorship: Dated, now: datetime) -> int:
    """The days of the period after today: on day N of M, M - N (0 on the last day and once
    ended; all M before the start).

    The one day rule: "Day N of M · M - N days left", so the two always add up to M; a new
    mentorship of a 30-day month reads "Day 1 of 30 · 29 days left". The pages, ``status``
    and ``/api`` all say this number.
    """
    if state_of(mentorship, now) == "ended":
        return 0
    return total_days(mentorship) - day_of(mentorship, now)


def left_words(days: int) -> str:
    """The days left as the pages and ``status`` say them: "18 days left", "last day"."""
    if days == 0:
        return "last day"
    return f"{days} day{'s' if days != 1 else ''} left"


def effective_end(mentorship: Dated) -> datetime:
    """When the mentorship stopped (or will stop) gating."""
    return gate.gating_end(mentorship.ends_at, mentorship.ended_at)


def no_mentorship(mentee: str) -> str:
    """What a lookup of someone never mentored answers: a CLI line, a 404's description (a
    name that is no GitHub login is said to be none)."""
    try:
        return f"{display_login(mentee)} has no mentorship"
    except MentorshipError as error:
        return str(error)


TERM_NAMES = {
    "approvals_required": "approvals required",
    "repositories": "repositories",
    "dismiss_stale_approvals": "a new push needs a new approval",
    "same_content_approvals": "an approval holds for a push with the same content",
    "gate_approved_prs": "gate pull requests the mentee approves",
    "bypass_alerts": "comment on a bypass",
    "note": "note",
}
