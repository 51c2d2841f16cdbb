"""Refusals by kind: what the gate answers when someone may not act, and the HTTP status
each kind is given, in one table, so no view picks a status from a message's wording."""

from __future__ import annotations

import dataclasses
import enum
from http import HTTPStatus


class RefusalKind(enum.StrEnum):
    """Why an action is refused, in the terms a status code speaks."""

    NOT_ALLOWED = "not_allowed"  # this person may never do it here: a mentee, an outsider
    CONFLICT = "conflict"  # the pull request's state refuses it now: closed, ungated, done


@dataclasses.dataclass(frozen=True)
class Refusal:
    """A refusal's kind and the words shown to the person (kept as the gate wrote them)."""

    kind: RefusalKind
    message: str

    def __str__(self) -> str:
        return self.message


STATUS: dict[RefusalKind, HTTPStatus] = {
    RefusalKind.NOT_ALLOWED: HTTPStatus.FORBIDDEN,
    RefusalKind.CONFLICT: HTTPStatus.CONFLICT,
}


def status_of(refusal: Refusal) -> int:
    """The HTTP status a web answer gives ``refusal``."""
    return int(STATUS[refusal.kind])
