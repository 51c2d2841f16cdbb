"""The gate decision: a pure function of a pull request, its mentorship and its reviews.

No Flask, no database and no network here, so every rule can be tested exhaustively.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime

SUCCESS = "success"
ACTION_REQUIRED = "action_required"
APPROVED = "APPROVED"
CHANGES_REQUESTED = "CHANGES_REQUESTED"
DISMISSED = "DISMISSED"
# States that settle what a reviewer thinks; a plain comment changes nothing.
DECISIVE_STATES = frozenset({APPROVED, CHANGES_REQUESTED, DISMISSED})


def gating_end(ends_at: datetime, ended_at: datetime | None) -> datetime:
    """When a mentorship stops gating: its end date, or the moment it was ended, if earlier."""
    return min(ended_at, ends_at) if ended_at is not None else ends_at


def is_active_at(
    at: datetime, *, started_at: datetime, ends_at: datetime, ended_at: datetime | None
) -> bool:
    """The one activity rule: from the start (inclusive) to the gating end (exclusive).

    Asked about now, this is "started, before its end date and not ended"; asked about a
    past moment (when a pull request merged), it answers for that moment.
    """
    return started_at <= at < gating_end(ends_at, ended_at)


@dataclasses.dataclass(frozen=True)
class Pull:
    """The parts of a pull request the gate looks at (logins and repo lowercase)."""

    repo: str
    number: int
    author: str
    head_sha: str
    state: str = "open"
    merged: bool = False


@dataclasses.dataclass(frozen=True)
class Terms:
    """A mentorship as the gate sees it (logins and repos lowercase, times UTC)."""

    mentee: str
    mentors: frozenset[str]
    started_at: datetime
    ends_at: datetime
    ended_at: datetime | None = None
    repositories: frozenset[str] = frozenset()
    approvals_required: int = 1
    dismiss_stale_approvals: bool = True
    gate_approved_prs: bool = False
    id: int | None = None
    mentor_display: tuple[str, ...] = ()

    def is_active(self, at: datetime) -> bool:
        """Whether the mentorship gates at ``at`` (see :func:`is_active_at`)."""
        return is_active_at(
            at, started_at=self.started_at, ends_at=self.ends_at, ended_at=self.ended_at
        )

    def covers(self, repo: str) -> bool:
        """Whether the gate applies in ``repo`` (an empty scope means everywhere)."""
        return not self.repositories or repo in self.repositories

    @property
    def end(self) -> datetime:
        """When the gate lifted (or will lift)."""
        return gating_end(self.ends_at, self.ended_at)

    def mentor_names(self) -> list[str]:
        """Mentors as @-mentions, display form where known."""
        names = self.mentor_display or tuple(sorted(self.mentors))
        return [f"@{name}" for name in names]


@dataclasses.dataclass(frozen=True)
class Signal:
    """A review, or an approval given with the button, a comment or on the dashboard."""

    reviewer: str
    state: str
    commit_id: str | None
    submitted_at: datetime
    source: str = "review"
    key: int = 0  # a stable tie-break for signals in the same second


@dataclasses.dataclass(frozen=True)
class Decision:
    """What the check run says, and the gate state stored for the dashboard."""

    conclusion: str
    title: str
    summary: str
    gate: str
    approved_by: tuple[str, ...] = ()
    mentorship_id: int | None = None

    @property
    def waiting(self) -> bool:
        """Whether the check blocks merging."""
        return self.conclusion == ACTION_REQUIRED


HOW_TO_APPROVE = (
    "A mentor approves by submitting an approving review on the latest commit, "
    "pressing **Approve merge** on this check, or commenting `/gatekeeper approve` on the pull request."
)


def evaluate(
    pr: Pull,
    mentorship: Terms | None,
    signals: Iterable[Signal],
    now: datetime,
    *,
    reviewer_mentorships: Sequence[Terms] = (),
) -> Decision:
    """Decide the check for ``pr`` at ``now``.

    ``mentorship`` is the author's latest mentorship, if any. ``reviewer_mentorships`` are
    those of other people who reviewed the PR, which matter when they gate what they approve.
    """
    # Only what was said by ``now`` counts: a merged pull request is judged as it stood then,
    # whatever late reviews arrive afterwards.
    ordered = sorted(
        (s for s in signals if s.submitted_at <= now), key=lambda s: (s.submitted_at, s.key)
    )
    if mentorship is not None and mentorship.is_active(now) and mentorship.covers(pr.repo):
        return _mentee_gate(pr, mentorship, ordered, reason="is under mentorship")
    for terms in sorted(reviewer_mentorships, key=lambda t: t.mentee):
        if (
            terms.gate_approved_prs
            and terms.mentee != pr.author
            and terms.is_active(now)
            and terms.covers(pr.repo)
            and terms.mentee in _standing_approvers(ordered, pr, {terms.mentee}, stale_ok=True)
        ):
            return _mentee_gate(pr, terms, ordered, reason="approved this pull request")
    if mentorship is not None and mentorship.covers(pr.repo) and now >= mentorship.end:
        return Decision(
            SUCCESS,
            "Mentorship ended",
            f"@{pr.author}'s mentorship ended on {mentorship.end:%Y-%m-%d}; no approval is needed.",
            "not_required",
        )
    return Decision(
        SUCCESS,
        "No mentorship applies",
        "The author is not under mentorship here; nothing to approve.",
        "not_required",
    )


def standing_approvals(pr: Pull, terms: Terms, signals: Iterable[Signal]) -> list[str]:
    """Mentors whose approval currently counts for ``pr``, in login order."""
    ordered = sorted(signals, key=lambda s: (s.submitted_at, s.key))
    return sorted(
        _standing_approvers(
            ordered, pr, terms.mentors - {pr.author}, stale_ok=not terms.dismiss_stale_approvals
        )
    )


def _standing_approvers(
    ordered: list[Signal], pr: Pull, eligible: set[str] | frozenset[str], *, stale_ok: bool
) -> set[str]:
    """Reviewers whose latest decisive signal is an approval that still holds."""
    latest: dict[str, Signal] = {}
    for signal in ordered:
        if signal.reviewer in eligible and signal.state in DECISIVE_STATES:
            latest[signal.reviewer] = signal
    return {
        reviewer
        for reviewer, signal in latest.items()
        if signal.state == APPROVED and (stale_ok or signal.commit_id == pr.head_sha)
    }


def _mentee_gate(pr: Pull, terms: Terms, ordered: list[Signal], *, reason: str) -> Decision:
    approvers = tuple(standing_approvals(pr, terms, ordered))
    needed = terms.approvals_required
    if len(approvers) >= needed:
        names = ", ".join(f"@{login}" for login in approvers)
        return Decision(
            SUCCESS,
            f"Approved by {names}",
            f"@{terms.mentee} {reason}; mentor approval given by {names}. Ready to merge.",
            "approved",
            approvers,
            terms.id,
        )
    missing = needed - len(approvers)
    mentors = " or ".join(n for n in terms.mentor_names() if n[1:].lower() != pr.author)
    if needed == 1:
        wanted = "a mentor's approval"
    else:
        wanted = f"{missing} more mentor approval" + ("s" if missing > 1 else "")
    lines = [
        f"@{terms.mentee} {reason} until {terms.ends_at:%Y-%m-%d}, "
        f"so this pull request waits for {wanted} before it can merge.",
        "",
        f"Mentors: {mentors}.",
        "",
        HOW_TO_APPROVE,
    ]
    if approvers:
        lines += ["", f"Approved so far by {', '.join('@' + a for a in approvers)}."]
    stale = _stale_approvers(ordered, pr, terms) - set(approvers)
    if stale:
        listed = ", ".join("@" + login for login in sorted(stale))
        lines += ["", f"Not counted: approval from {listed} was given on an older commit."]
    return Decision(
        ACTION_REQUIRED,
        f"Waiting for {wanted}",
        "\n".join(lines),
        "waiting",
        approvers,
        terms.id,
    )


def _stale_approvers(ordered: list[Signal], pr: Pull, terms: Terms) -> set[str]:
    if not terms.dismiss_stale_approvals:
        return set()
    return _standing_approvers(ordered, pr, terms.mentors - {pr.author}, stale_ok=True)
