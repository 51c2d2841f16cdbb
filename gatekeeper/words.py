"""How Gatekeeper words things for people: counted nouns, sentences, and quoted input.

One place for the voice of every page and message, so "1 mentor" and "2 mentors" agree
everywhere and no message reads "approval(s)".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

# How much of a typed value an error repeats: enough to recognise it, never a whole page of it.
QUOTED_LIMIT = 40
ELLIPSIS = "…"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun`` agreeing: ``1 mentor``, ``0 mentors``, ``2 days``; ``many`` is
    the plural when it is not ``noun`` with an "s" (``plural(2, "reply", "replies")``)."""
    return f"{count:,} {noun if count == 1 else (many or noun + 's')}"


def shorten(text: str, limit: int = QUOTED_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, for repeating typed input."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def sentence(message: str, *, names: Iterable[str] = ()) -> str:
    """``message`` as a sentence: a capital first letter and a full stop.

    A message that begins with one of ``names`` (logins, repositories) keeps its case: a login
    is spelled as its owner spells it, so "mira-k already mentors…" never becomes "Mira-k".
    """
    text = message.strip()
    if not text:
        return text
    first = text.split(maxsplit=1)[0].removesuffix("'s").lower()
    if first not in {name.strip().removeprefix("@").lower() for name in names}:
        text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!", "…")) else f"{text}."


def day(moment: date) -> str:
    """A date as every page shows it: ``Dec 21, 2026`` (no hyphen for a line to break at)."""
    return f"{moment:%b} {moment.day}, {moment.year}"


def exact_time(moment: datetime) -> str:
    """A moment to the minute, in UTC and saying so: ``Dec 21, 2026, 14:05 UTC``."""
    return f"{day(moment)}, {moment:%H:%M} UTC"
