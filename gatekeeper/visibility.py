"""What a visitor may see of a mentorship: the one place that decides it, for the pages,
``/api`` and the report alike.

Maintainers and the mentorship's own mentee and mentors see all of it. Anyone else sees a
pull request in a private repository as ``PRIVATE_PULL`` (its gate, nothing that names it),
and a private repository in the mentorship's scope only counted ("1 private repository"),
in the terms and in the audit log's changes of them. The command line runs beside the
database, with its credentials, and sees everything.

Which repositories are private comes from the payloads (``Repository.private``). A pull
request's repository was described by the payload that brought it, so one never heard of is
public, as GitHub's default is (the payload said nothing else). A scope is typed by a maintainer and may name a private
repository no event has described yet: such a name stays hidden until one says it is public.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

from gatekeeper.standing import TERM_NAMES

# The queries and the models are imported where they are used, so that ``gatekeeper status``
# describes a mentorship with these rules and no ORM (see readings.py). Only a web visitor has
# roles: ``auth`` (Flask, Authlib) is imported where one is looked at.
if TYPE_CHECKING:
    from sqlmodel import Session

    from gatekeeper.auth import User
    from gatekeeper.models import AuditEvent, PullRequest

# What someone who may not see a private repository's pull request is shown instead.
PRIVATE_PULL = "a pull request in a private repository"
SEES_PRIVATE = frozenset({"maintainer", "mentor", "mentee"})
# A scope with no repository in it gates every repository the App is installed on.
EVERY_REPOSITORY = "every repository the App is installed on"
# The command line runs where the database is, with its credentials: it is shown everything.
CLI: Final = "cli"
# Who reads: the CLI, or a web visitor (signed in or not).
Viewer: TypeAlias = "User | Literal['cli'] | None"
NOTHING_HIDDEN: frozenset[str] = frozenset()


def sees_private(viewer_roles: Iterable[str]) -> bool:
    """Maintainers and the mentorship's own mentee and mentors see its private repositories."""
    return not SEES_PRIVATE.isdisjoint(viewer_roles)


def sees_all(viewer: Viewer, *, mentee: str, mentors: Iterable[str]) -> bool:
    """Whether ``viewer`` sees the named mentorship's private repositories."""
    if viewer == CLI:
        return True
    from gatekeeper.auth import User, roles

    user = viewer if isinstance(viewer, User) else None
    return sees_private(roles(user, mentee=mentee, mentors=mentors))


# ---------------------------------------------------------------- which names are hidden


def hidden_names(
    *, pulls: Iterable[str], scope: Iterable[str], private: Mapping[str, bool | None]
) -> frozenset[str]:
    """The repositories an outsider may not see named, given what is known of each
    (``private``: full name → ``Repository.private``; absent, or None, when not known).

    A repository of a stored pull request is hidden when known private (the payload that
    brought the pull request described it); any other in a scope unless known public.
    """
    described = set(pulls)
    hidden = {repo for repo in described if private.get(repo) is True}
    hidden |= {repo for repo in scope if repo not in described and private.get(repo) is not False}
    return frozenset(hidden)


def hidden_from(
    session: Session, *, sees: bool, pulls: Iterable[str] = (), scope: Iterable[str] = ()
) -> frozenset[str]:
    """The repositories hidden from a viewer (``sees``: whether they see everything), from one
    query, none when they see everything or nothing is named."""
    if sees:
        return NOTHING_HIDDEN
    from gatekeeper import queries

    pulls, scope = list(pulls), list(scope)
    known = queries.repository_privacy(session, repos=[*pulls, *scope])
    return hidden_names(pulls=pulls, scope=scope, private=known)


def may_see_pull(session: Session, pull: PullRequest, *, user: User | None) -> bool:
    """Whether ``user`` may see ``pull`` at all (a refused one is answered as never seen)."""
    from gatekeeper import mentorships as lifecycle
    from gatekeeper import queries
    from gatekeeper.auth import is_maintainer, roles

    if is_maintainer(user) or not hidden_from(session, sees=False, pulls=[pull.repo]):
        return True
    mentorship = queries.mentorship_of_pull(session, pull=pull)
    if mentorship is None:
        return False
    mentors = [a.mentor for a in lifecycle.mentors_of(session, mentorship=mentorship)]
    return sees_private(roles(user, mentee=mentorship.mentee, mentors=mentors))


# ---------------------------------------------------------------- a scope, as shown


def private_count(number: int) -> str:
    """How many private repositories there are, in words."""
    return f"{number} private {'repository' if number == 1 else 'repositories'}"


@dataclasses.dataclass(frozen=True)
class Scope:
    """A mentorship's repositories as one viewer may see them: those named, the rest counted."""

    named: tuple[str, ...]
    hidden: int = 0

    @classmethod
    def of(cls, repositories: Iterable[str], *, hidden: frozenset[str]) -> Scope:
        """``repositories`` without the ``hidden`` ones, which are only counted."""
        names = list(repositories)
        return cls(tuple(r for r in names if r not in hidden), sum(r in hidden for r in names))

    @property
    def everywhere(self) -> bool:
        """An empty scope: every repository the App is installed on."""
        return not (self.named or self.hidden)

    def words(self, everywhere: str = EVERY_REPOSITORY) -> str:
        """``python/cpython and 1 private repository``; ``everywhere`` for an empty scope."""
        if self.everywhere:
            return everywhere
        named = ", ".join(self.named)
        if not self.hidden:
            return named
        counted = private_count(self.hidden)
        return f"{named} and {counted}" if named else counted


# ---------------------------------------------------------------- the audit log

# How mentorships.change_terms words a change of scope: "repositories: A, B → C".
SCOPE_CHANGE = f"{TERM_NAMES['repositories']}: "
SCOPE_EVERYWHERE = "every repository"  # an empty side, as the audit log words it
ARROW = " → "


def scope_change(event: AuditEvent) -> tuple[list[str], list[str]] | None:
    """The scopes before and after of a change of the terms' repositories; None for any other
    event (or one whose detail does not read as two scopes)."""
    if event.kind != "terms_changed" or not event.detail.startswith(SCOPE_CHANGE):
        return None
    sides = event.detail.removeprefix(SCOPE_CHANGE).split(ARROW)
    if len(sides) != 2:
        return None
    old, new = (
        [] if side == SCOPE_EVERYWHERE else [name.strip() for name in side.split(",")]
        for side in sides
    )
    return old, new


def scope_names(events: Iterable[AuditEvent]) -> set[str]:
    """Every repository the changes of scope among ``events`` name."""
    names: set[str] = set()
    for event in events:
        change = scope_change(event)
        if change is not None:
            names.update(*change)
    return names


def shown_detail(event: AuditEvent, *, hidden: frozenset[str]) -> str:
    """The event's detail as a viewer may read it: none for a pull request in a hidden
    repository (it may hold the head commit or the gate's title), a change of scope with the
    hidden repositories counted, anything else as recorded."""
    if event.repo is not None and event.repo in hidden:
        return ""
    change = scope_change(event)
    if change is None:
        if event.kind == "terms_changed" and event.detail.startswith(SCOPE_CHANGE) and hidden:
            return "repositories changed"  # unreadable: it might name a hidden one
        return event.detail
    old, new = (Scope.of(side, hidden=hidden).words(SCOPE_EVERYWHERE) for side in change)
    return f"{SCOPE_CHANGE}{old}{ARROW}{new}"
