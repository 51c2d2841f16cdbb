"""gatekeeper.words: counted nouns, sentences, quoted input and dates, worded one way."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gatekeeper import words


@pytest.mark.parametrize(
    ("count", "noun", "many", "expected"),
    [
        (0, "mentor", None, "0 mentors"),
        (1, "mentor", None, "1 mentor"),
        (2, "mentor", None, "2 mentors"),
        (1, "day", None, "1 day"),
        (-9, "day", None, "-9 days"),
        (1, "reply", "replies", "1 reply"),
        (3, "reply", "replies", "3 replies"),
        (1200, "approval", None, "1,200 approvals"),
    ],
)
def test_plural_agrees_with_its_count(count: int, noun: str, many: str | None, expected: str):
    """One is singular, every other count plural; an irregular plural is given, never "(s)"."""
    assert words.plural(count, noun, many) == expected


def test_shorten_keeps_short_text_and_cuts_long_text_with_an_ellipsis():
    """Text up to the limit is kept whole; longer text keeps the limit's length, ending "…"."""
    assert words.shorten("mira-k") == "mira-k"
    cut = words.shorten("x" * 300)
    assert len(cut) == words.QUOTED_LIMIT and cut.endswith("…") and cut.startswith("xxx")
    assert words.shorten("abcdef", 4) == "abc…"


@pytest.mark.parametrize(
    ("message", "names", "expected"),
    [
        ("a mentorship needs at least one mentor", (), "A mentorship needs at least one mentor."),
        (
            "mira-k already has an active mentorship",
            ("mira-k",),
            "mira-k already has an active mentorship.",
        ),
        ("alex already mentors sam", ("@Alex",), "alex already mentors sam."),
        (
            "mpage's mentorship has already ended",
            ("mpage",),
            "mpage's mentorship has already ended.",
        ),
        ("the vote fails. Say why", ("vote",), "The vote fails. Say why."),
        ("Already a sentence.", (), "Already a sentence."),
        ("  ", (), ""),
    ],
)
def test_sentence_capitalises_and_ends_with_a_full_stop_but_keeps_a_logins_case(
    message: str, names: tuple[str, ...], expected: str
):
    """A message becomes a sentence (capital, full stop) unless it starts with a name given,
    which keeps its spelling: logins are never capitalised."""
    assert words.sentence(message, names=names) == expected


def test_dates_and_exact_times_read_one_way_without_hyphens():
    """A date is "Nov 8, 2026" (nothing for a line to break at); an exact time adds the
    minute and says UTC."""
    assert words.day(date(2026, 11, 8)) == "Nov 8, 2026"
    moment = datetime(2026, 11, 8, 9, 5, tzinfo=UTC)
    assert words.day(moment) == "Nov 8, 2026"
    assert words.exact_time(moment) == "Nov 8, 2026, 09:05 UTC"
