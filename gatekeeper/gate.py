"""The gate decision: a pure function of a pull request, its mentorship and its reviews.

No Flask, no database and no network here, so every rule can be tested exhaustively.
People are compared by GitHub user id, never by login (logins are renamed and reused): an
unknown id approves nothing, and an author whose id is unknown is taken for the mentee when
the logins match (both fail closed).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime

from gatekeeper.refusals import Refusal, RefusalKind

SUCCESS = "success"
ACTION_REQUIRED = "action_required"
APPROVED = "APPROVED"
CHANGES_REQUESTED = "CHANGES_REQUESTED"
DISMISSED = "DISMISSED"
# States that settle what a reviewer thinks; a plain comment changes nothing.
DECISIVE_STATES = frozenset({APPROVED, CHANGES_REQUESTED, DISMISSED})


class GateState(enum.StrEnum):
    """A pull request's stored gate (``PullRequest.gate``); equal to the string stored."""

    WAITING = "waiting"  # open, its check blocks merging until a mentor approves
    APPROVED = "approved"
    NOT_REQUIRED = "not_required"  # no mentorship gates it (or it closed unmerged)
    BYPASSED = "bypassed"  # merged while it waited
    LIFTED = "lifted"  # it waited under a mentorship that ended (or stopped covering it)
    OVERRIDDEN = "overridden"  # a maintainer let it merge without a mentor


class ApprovalSource(enum.StrEnum):
    """Where a mentor's approval came from (``Approval.source``, ``Signal.source``)."""

    REVIEW = "review"
    BUTTON = "button"  # the check run's "Approve" button
    COMMENT = "comment"  # a ``/gatekeeper approve`` comment
    DASHBOARD = "dashboard"


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
    author_id: int | None = None
    # The head commit's tree, once known: a later commit with an approved commit's tree holds
    # the same content, so the approval holds for it too.
    head_tree: str | None = None
    # When the base branch last changed: approvals given before it were for another base.
    base_changed_at: datetime | None = None
    repo_id: int | None = None  # GitHub's repository id: the same through renames

    def is_author(self, person_id: int | None, login: str) -> bool:
        """Whether the account ``person_id`` (``login``) wrote this pull request (fail closed:
        where an id is unknown, the same login is the author)."""
        return same_person(self.author_id, self.author, person_id, login)


@dataclasses.dataclass(frozen=True)
class Terms:
    """A mentorship as the gate sees it (logins and repos lowercase, times UTC)."""

    mentee: str
    mentors: frozenset[str]
    started_at: datetime
    ends_at: datetime
    ended_at: datetime | None = None
    repositories: frozenset[str] = frozenset()
    # The scope's entries whose GitHub id is known, as (name, id) pairs.
    repository_ids: frozenset[tuple[str, int]] = frozenset()
    approvals_required: int = 1
    dismiss_stale_approvals: bool = True
    gate_approved_prs: bool = False
    same_content_approvals: bool = True
    id: int | None = None
    mentor_display: tuple[str, ...] = ()
    mentee_display: str = ""
    mentee_id: int | None = None
    # The mentors whose account is known, by id, with their (lowercase) login: only they
    # approve. A mentor not learned yet is learned from their own first review or comment.
    mentor_ids: Mapping[int, str] = dataclasses.field(default_factory=dict, hash=False)

    def is_active(self, at: datetime) -> bool:
        """Whether the mentorship gates at ``at`` (see :func:`is_active_at`)."""
        return is_active_at(
            at, started_at=self.started_at, ends_at=self.ends_at, ended_at=self.ended_at
        )

    def covers(self, repo: str, repo_id: int | None = None) -> bool:
        """Whether the gate applies in ``repo`` (an empty scope means everywhere).

        A scope entry whose id is known matches that repository under any name (renamed or
        transferred) and nothing else under its old name. An entry whose id is not known yet
        matches by name, which is safe: every payload and answer carries the id, and seeing
        a name with an id resolves the entries of that name, so a name still unresolved has
        never been seen under any id (let alone another one). A pull request whose id is
        unknown (stored before ids were kept) is matched by name as it always was.
        """
        if not self.repositories:
            return True
        resolved = dict(self.repository_ids)
        if repo_id is not None and repo_id in resolved.values():
            return True
        return repo in self.repositories and (repo not in resolved or repo_id is None)

    @property
    def end(self) -> datetime:
        """When the gate lifted (or will lift)."""
        return gating_end(self.ends_at, self.ended_at)

    def mentor_names(self) -> list[str]:
        """Mentors as @-mentions, display form where known."""
        names = self.mentor_display or tuple(sorted(self.mentors))
        return [f"@{name}" for name in names]

    def is_mentee(self, person_id: int | None, login: str) -> bool:
        """Whether the account ``person_id`` (``login``) is this mentorship's mentee."""
        return same_person(self.mentee_id, self.mentee, person_id, login)

    def eligible(self, pr: Pull) -> set[int]:
        """Ids of the mentors who may approve ``pr`` (not its author)."""
        return {i for i, login in self.mentor_ids.items() if not pr.is_author(i, login)}


@dataclasses.dataclass(frozen=True)
class Signal:
    """A review, or an approval given with the button, a comment or on the dashboard."""

    reviewer: str
    state: str
    commit_id: str | None
    submitted_at: datetime
    source: str = ApprovalSource.REVIEW
    key: int = 0  # a stable tie-break for signals in the same second
    reviewer_id: int | None = None  # None: who gave it is unknown, so it approves nothing
    tree: str | None = None  # the tree of ``commit_id``, once known


@dataclasses.dataclass(frozen=True)
class Overriding:
    """A maintainer's override: the pull request may merge without a mentor, for this content."""

    maintainer: str
    reason: str
    commit_id: str
    given_at: datetime
    tree: str | None = None


def same_person(first_id: int | None, first: str, second_id: int | None, second: str) -> bool:
    """Whether two accounts are one: by id when both are known, else (failing closed, for the
    author and the mentee only) by login."""
    if first_id is not None and second_id is not None:
        return first_id == second_id
    return first.lower() == second.lower()


def _who(signal: Signal) -> int | str:
    """The key a signal's reviewer is told apart by: the id, else the login (such a signal
    never counts, but its verdict is still shown)."""
    return signal.reviewer_id if signal.reviewer_id is not None else signal.reviewer


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


def signal_order(signal: Signal) -> tuple[datetime, int, int]:
    """The order in which signals are read, at GitHub's precision (whole seconds).

    GitHub stamps reviews in whole seconds while approvals given here carry microseconds;
    compared as they are, an approval would always win a same-second "changes requested".
    Within one second an approval is read first, so a request for changes or a dismissal in
    that second is the reviewer's last word (fail closed); otherwise in the order stored.
    """
    return (_seconds(signal), 0 if signal.state == APPROVED else 1, signal.key)


def _seconds(signal: Signal) -> datetime:
    return _seconds_of(signal.submitted_at)


def _seconds_of(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


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
    overrides: Sequence[Overriding] = (),
) -> Decision:
    """Decide the check for ``pr`` at ``now``.

    ``mentorship`` is the author's latest mentorship, if any. ``reviewer_mentorships`` are
    those of other people who reviewed the PR, which matter when they gate what they approve.
    ``overrides`` are the maintainers' overrides of its gate.
    """
    standing_overrides = [o for o in overrides if _seconds_of(o.given_at) <= now]
    # Only what was said by ``now`` counts: a merged pull request is judged as it stood then,
    # whatever late reviews arrive afterwards.
    ordered = sorted((s for s in signals if _seconds(s) <= now), key=signal_order)
    if mentorship is not None and not mentorship.is_mentee(pr.author_id, pr.author):
        mentorship = None  # the login's former holder's mentorship: not this author's
    if (
        mentorship is not None
        and mentorship.is_active(now)
        and mentorship.covers(pr.repo, pr.repo_id)
    ):
        return _mentee_gate(
            pr, mentorship, ordered, reason="is under mentorship", overrides=standing_overrides
        )
    for terms in sorted(reviewer_mentorships, key=lambda t: t.mentee):
        if (
            terms.gate_approved_prs
            and terms.mentee_id is not None
            and not terms.is_mentee(pr.author_id, pr.author)
            and terms.is_active(now)
            and terms.covers(pr.repo, pr.repo_id)
            and _standing_approvers(ordered, pr, {terms.mentee_id}, any_commit=True)
        ):
            return _mentee_gate(
                pr,
                terms,
                ordered,
                reason="approved this pull request",
                overrides=standing_overrides,
            )
    if (
        mentorship is not None
        and not mentorship.covers(pr.repo, pr.repo_id)
        and mentorship.is_active(now)
    ):
        # The scope is not named: a check on a public pull request must never show the name
        # of a private repository the mentorship also covers.
        return Decision(
            SUCCESS,
            "Outside the mentorship's scope",
            f"@{pr.author}'s mentorship gates other repositories; this one is outside its "
            "scope, so no approval is needed.",
            GateState.NOT_REQUIRED,
        )
    if mentorship is not None and mentorship.covers(pr.repo, pr.repo_id) and now >= mentorship.end:
        return Decision(
            SUCCESS,
            "Mentorship ended",
            f"@{pr.author}'s mentorship ended on {mentorship.end:%Y-%m-%d}; no approval is needed.",
            GateState.NOT_REQUIRED,
        )
    return Decision(
        SUCCESS,
        "No mentorship applies",
        "The author is not under mentorship here; nothing to approve.",
        GateState.NOT_REQUIRED,
    )


def standing_approvals(pr: Pull, terms: Terms, signals: Iterable[Signal]) -> list[str]:
    """Mentors whose approval currently counts for ``pr``, in login order."""
    ordered = sorted(signals, key=signal_order)
    approvers = _standing_approvers(ordered, pr, terms.eligible(pr), terms=terms)
    return _logins(terms, approvers)


def _logins(terms: Terms, ids: Iterable[int]) -> list[str]:
    """Mentors' logins (as stored now, renames followed), sorted."""
    return sorted(terms.mentor_ids[i] for i in ids)


def _standing_approvers(
    ordered: list[Signal],
    pr: Pull,
    eligible: Collection[int | None],
    *,
    terms: Terms | None = None,
    any_commit: bool = False,
) -> set[int]:
    """Ids of the reviewers whose latest decisive signal is an approval that still holds: for
    this base, and (unless ``any_commit``) for the head's content under ``terms``' rules."""
    latest: dict[int, Signal] = {}
    for signal in ordered:
        who = signal.reviewer_id
        if who is not None and who in eligible and signal.state in DECISIVE_STATES:
            latest[who] = signal
    return {
        reviewer
        for reviewer, signal in latest.items()
        if signal.state == APPROVED
        and for_this_base(signal.submitted_at, pr)
        and (any_commit or holds_on_head(signal, pr, terms))
    }


def for_this_base(given_at: datetime, pr: Pull) -> bool:
    """Whether something given at ``given_at`` came after the pull request's latest change of
    base. GitHub's times have whole seconds: given in the same second, it fails closed."""
    return pr.base_changed_at is None or _seconds_of(given_at) > _seconds_of(pr.base_changed_at)


def holds_on_head(signal: Signal, pr: Pull, terms: Terms | None) -> bool:
    """Whether an approval given on ``signal.commit_id`` holds for the head now: the same
    commit; any commit when the mentorship keeps approvals on push; else a commit with the
    same tree, if the mentorship lets approvals follow the same content and both trees are
    known (until the head's tree is read, it does not)."""
    if signal.commit_id == pr.head_sha:
        return True
    if terms is not None and not terms.dismiss_stale_approvals:
        return True
    same_content = terms is None or terms.same_content_approvals
    return same_content and signal.tree is not None and signal.tree == pr.head_tree


def _mentee_gate(
    pr: Pull,
    terms: Terms,
    ordered: list[Signal],
    *,
    reason: str,
    overrides: Sequence[Overriding] = (),
) -> Decision:
    approvers = tuple(standing_approvals(pr, terms, ordered))
    needed = terms.approvals_required
    if len(approvers) >= needed:
        names = ", ".join(f"@{login}" for login in approvers)
        return Decision(
            SUCCESS,
            f"Approved by {names}",
            f"@{terms.mentee} {reason}; mentor approval given by {names}. Ready to merge.",
            GateState.APPROVED,
            approvers,
            terms.id,
        )
    override = standing_override(pr, overrides)
    if override is not None:
        return Decision(
            SUCCESS,
            f"Overridden by @{override.maintainer}",
            f"@{terms.mentee} {reason}, and no mentor has approved this pull request, but "
            f"maintainer @{override.maintainer} overrode the gate for commit "
            f"{override.commit_id[:12]}:\n\n> {_one_line(override.reason)}\n\n"
            "A push with other content needs a mentor's approval or a new override.",
            "overridden",
            approvers,
            terms.id,
        )
    missing = needed - len(approvers)
    authors = {login for i, login in terms.mentor_ids.items() if pr.is_author(i, login)}
    mentors = " or ".join(
        n for n in terms.mentor_names() if n[1:].lower() not in authors | {pr.author}
    )
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
    blocking = _logins(terms, _changes_requested_by(ordered, terms.eligible(pr)))
    if blocking:
        # Named so that the run is posted again (and re-dated) whenever a mentor asks for
        # changes: the button pressed afterwards then dates after the request.
        listed = ", ".join("@" + login for login in blocking)
        lines += ["", f"Changes requested by {listed}."]
    stale = _stale_approvers(ordered, pr, terms) - set(approvers)
    if stale:
        listed = ", ".join("@" + login for login in sorted(stale))
        why = "on an older commit or before the base branch changed"
        if pr.base_changed_at is None:
            why = "on an older commit"
            if pr.head_tree is None and terms.same_content_approvals:
                why += " (whether the new head holds the same content is being checked)"
        lines += ["", f"Not counted: approval from {listed} was given {why}."]
    return Decision(
        ACTION_REQUIRED,
        f"Waiting for {wanted}",
        "\n".join(lines),
        GateState.WAITING,
        approvers,
        terms.id,
    )


def standing_override(pr: Pull, overrides: Iterable[Overriding]) -> Overriding | None:
    """The latest override that holds for the head's content and base, if any."""
    holding = [
        o
        for o in overrides
        if for_this_base(o.given_at, pr)
        and (o.commit_id == pr.head_sha or (o.tree is not None and o.tree == pr.head_tree))
    ]
    return max(holding, key=lambda o: o.given_at) if holding else None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _changes_requested_by(ordered: list[Signal], eligible: Collection[int]) -> set[int]:
    """Ids of the reviewers whose latest decisive word is a request for changes."""
    latest: dict[int, Signal] = {}
    for signal in ordered:
        who = signal.reviewer_id
        if who is not None and who in eligible and signal.state in DECISIVE_STATES:
            latest[who] = signal
    return {r for r, s in latest.items() if s.state == CHANGES_REQUESTED}


def _stale_approvers(ordered: list[Signal], pr: Pull, terms: Terms) -> set[str]:
    """Mentors whose latest word is an approval that no longer holds: given on other content
    or before the base changed."""
    latest: dict[int, Signal] = {}
    eligible = terms.eligible(pr)
    for signal in ordered:
        who = signal.reviewer_id
        if who is not None and who in eligible and signal.state in DECISIVE_STATES:
            latest[who] = signal
    stale = {
        reviewer
        for reviewer, signal in latest.items()
        if signal.state == APPROVED
        and not (for_this_base(signal.submitted_at, pr) and holds_on_head(signal, pr, terms))
    }
    return set(_logins(terms, stale))


# ---------------------------------------------------------------- who may approve


def approval_refusal(
    pr: Pull, terms: Terms | None, *, gated: bool, login: str, user_id: int | None
) -> Refusal | None:
    """Why the account ``user_id`` (``login``) may not approve ``pr`` without a review
    (button, comment, dashboard).

    ``terms`` is the mentorship whose gate applies to ``pr`` and ``gated`` whether its stored
    gate is one a mentor can act on (waiting or approved). None means they may.
    """
    login = login.lower()
    if pr.state != "open":
        return Refusal(RefusalKind.CONFLICT, "the pull request is closed")
    if terms is None or not gated:
        return Refusal(RefusalKind.CONFLICT, "no mentorship gates this pull request")
    if pr.is_author(user_id, login):
        return Refusal(RefusalKind.NOT_ALLOWED, "authors cannot approve their own pull request")
    if user_id is None or user_id not in terms.mentor_ids:
        return Refusal(
            RefusalKind.NOT_ALLOWED,
            f"only mentors of {terms.mentee_display or terms.mentee} can approve",
        )
    return None


def reviewers_to_request(
    pr: Pull, terms: Terms | None, *, draft: bool, waiting: bool, already_requested: bool
) -> list[str]:
    """Mentors to ask for a review: once, when a mentee's ready pull request first waits."""
    if already_requested or draft or not waiting or terms is None or pr.state != "open":
        return []
    names = terms.mentor_display or tuple(sorted(terms.mentors))
    authors = {login for i, login in terms.mentor_ids.items() if pr.is_author(i, login)}
    return [name for name in names if name.lower() not in authors | {pr.author}]


# ---------------------------------------------------------------- closing


@dataclasses.dataclass(frozen=True)
class Closing:
    """What a closed pull request's stored gate becomes, and what to record about it."""

    gate: str
    title: str | None  # None: keep what is stored
    approved_by: tuple[str, ...] | None = None  # None: keep what is stored
    event: str | None = None  # "bypass", "bypass_cleared", or "merger_known"


def settle_closed(
    pr: Pull, *, stored_gate: str, merged_by: str | None, decision: Decision
) -> Closing:
    """A closed pull request as a record: merging past a waiting gate is a bypass.

    ``decision`` is the gate as it stood when the pull request merged. Events arrive out of
    order, so a bypass can be recorded before GitHub says who merged (``merger_known`` then
    completes it) and an approval given before the merge can arrive after it
    (``bypass_cleared``).
    """
    if not pr.merged:
        return Closing(GateState.NOT_REQUIRED, "Closed without merging")
    if decision.waiting and stored_gate != GateState.BYPASSED:
        return Closing(
            GateState.BYPASSED, "Merged without mentor approval", decision.approved_by, "bypass"
        )
    if decision.waiting:
        return Closing(
            GateState.BYPASSED,
            "Merged without mentor approval",
            event="merger_known" if merged_by else None,
        )
    if stored_gate in (GateState.WAITING, GateState.BYPASSED):
        event = "bypass_cleared" if stored_gate == GateState.BYPASSED else None
        return Closing(decision.gate, decision.title, decision.approved_by, event)
    return Closing(stored_gate, None)


# ---------------------------------------------------------------- one check per commit


@dataclasses.dataclass(frozen=True)
class PullVerdict:
    """One open pull request's stored decision, as a commit's check combines it."""

    number: int
    author: str
    waiting: bool
    title: str
    summary: str


@dataclasses.dataclass(frozen=True)
class CommitVerdict:
    """What the one check run on a commit says for every open pull request on it."""

    conclusion: str
    title: str
    summary: str
    lead: int  # the pull request the check's details link opens
    numbers: tuple[int, ...]

    @property
    def waiting(self) -> bool:
        return self.conclusion == ACTION_REQUIRED


def combine(verdicts: Sequence[PullVerdict]) -> CommitVerdict:
    """Combine the decisions of every open pull request whose head is one commit.

    A check run belongs to a commit, not to a pull request, so anyone's pull request from the
    same commit must not turn a waiting mentee's check green: the commit waits if any of its
    pull requests waits (fail closed) and passes only if all of them pass.
    """
    if not verdicts:
        raise ValueError("a commit's check needs at least one pull request")
    ordered = sorted(verdicts, key=lambda v: v.number)
    waiting = [v for v in ordered if v.waiting]
    lead = waiting[0] if waiting else ordered[0]
    conclusion = ACTION_REQUIRED if waiting else SUCCESS
    if len(ordered) == 1:
        return CommitVerdict(conclusion, lead.title, lead.summary, lead.number, (lead.number,))
    title = lead.title if len(waiting) <= 1 else f"{len(waiting)} pull requests wait"
    if waiting:
        title += f" (#{lead.number})" if len(waiting) == 1 else ""
    else:
        title = f"Passes for all {len(ordered)} pull requests on this commit"
    lines = [
        f"This commit is the head of {len(ordered)} open pull requests; "
        "its check passes only when every one of them does.",
        "",
    ]
    for verdict in ordered:
        mark = "waits" if verdict.waiting else "passes"
        lines.append(f"- #{verdict.number} by @{verdict.author} {mark}: {verdict.title}")
    for verdict in waiting:
        lines += ["", f"### #{verdict.number}", "", verdict.summary]
    return CommitVerdict(
        conclusion, title, "\n".join(lines), lead.number, tuple(v.number for v in ordered)
    )


def merge_group_verdict(
    *, number: int | None, carried: PullVerdict | None, base: str, carried_base: str = ""
) -> CommitVerdict:
    """A merge queue's commit: the gate of the one pull request its group adds to the queue.

    The groups ahead carry the pull requests ahead, each checked on its own group, so this
    group passes only while pull request ``number`` passes now; an approval withdrawn after
    it joined the queue fails it. What Gatekeeper cannot tell fails closed: a ref naming no
    pull request, a pull request not read yet (``carried`` None), or one it knows as
    targeting another branch (``carried_base``, "" when unknown) than the group merges into.
    """
    if number is None:
        return _group(
            ACTION_REQUIRED,
            "Merge queue: which pull request is unknown",
            "This merge group's branch does not name the pull request it adds to the queue, "
            "so Gatekeeper cannot check that pull request's gate and does not let it merge.",
            lead=0,
        )
    if carried is None:
        return _group(
            ACTION_REQUIRED,
            f"Merge queue: #{number} not read yet",
            f"Gatekeeper has not seen #{number} before and is reading it from GitHub; this "
            "merge group waits until that pull request's gate is known.",
            lead=number,
        )
    if carried_base and carried_base != base:
        return _group(
            ACTION_REQUIRED,
            f"Merge queue: #{number} targets {carried_base}",
            f"This merge group merges #{number} into `{base}`, but Gatekeeper knows it as a "
            f"pull request into `{carried_base}`; it is read again from GitHub, and the group "
            "waits until the two agree.",
            lead=number,
        )
    preface = (
        f"This merge group adds #{number} by @{carried.author} to `{base}`. Its check is "
        f"#{number}'s own gate as it stands now: {carried.title}."
    )
    if carried.waiting:
        return _group(
            ACTION_REQUIRED,
            f"Merge queue: #{number} waits ({carried.title})",
            f"{preface}\n\nThe queue must not merge it until a mentor approves #{number} "
            "itself (a review, its own check's button, a comment or its page); the group's "
            "check then passes.",
            lead=number,
        )
    return _group(
        SUCCESS,
        f"Merge queue: #{number} passes ({carried.title})",
        f"{preface}\n\nShould that change while #{number} is in the queue (an approval "
        "withdrawn), this check fails and the queue drops it.",
        lead=number,
    )


def _group(conclusion: str, title: str, summary: str, *, lead: int) -> CommitVerdict:
    # No pull request has a group's commit as its head: ``numbers`` is empty.
    return CommitVerdict(conclusion, title, summary, lead=lead, numbers=())


# ---------------------------------------------------------------- why each signal counts


@dataclasses.dataclass(frozen=True)
class SignalVerdict:
    """One decisive review or approval, whether it counts at the moment judged, and why."""

    signal: Signal
    counts: bool
    why: str


def signal_verdicts(
    pr: Pull, terms: Terms | None, signals: Iterable[Signal], moment: datetime
) -> list[SignalVerdict]:
    """Each decisive signal, oldest first, explained by the rules ``evaluate`` applies.

    ``moment`` is what ``evaluate`` judges at: now, or when a merged pull request merged, so
    an approval given after the merge is shown as not counting, as it did not.
    """
    ordered = sorted(signals, key=signal_order)
    decisive = [s for s in ordered if s.state in DECISIVE_STATES]
    in_time = [s for s in decisive if _seconds(s) <= moment]
    latest = {_who(s): s for s in in_time}
    standing = set(standing_approvals(pr, terms, in_time)) if terms is not None else set()
    return [_verdict_of(s, pr, terms, latest, standing, moment) for s in decisive]


def _verdict_of(
    signal: Signal,
    pr: Pull,
    terms: Terms | None,
    latest: dict[int | str, Signal],
    standing: set[str],
    moment: datetime,
) -> SignalVerdict:
    if _seconds(signal) > moment:
        return SignalVerdict(signal, False, "given after the merge")
    superseded = latest[_who(signal)] is not signal
    if signal.state == DISMISSED:
        return SignalVerdict(signal, False, "dismissed on GitHub")
    if signal.state == CHANGES_REQUESTED:
        why = "asked for changes" + ("" if superseded else "; a new approval is needed")
        return SignalVerdict(signal, False, why)
    if terms is None:
        return SignalVerdict(signal, False, "no mentorship gates this pull request")
    if pr.is_author(signal.reviewer_id, signal.reviewer):
        return SignalVerdict(signal, False, "authors cannot approve their own pull request")
    if signal.reviewer_id is None or signal.reviewer_id not in terms.mentor_ids:
        return SignalVerdict(signal, False, f"not a mentor of {terms.mentee}")
    if superseded:
        return SignalVerdict(signal, False, "replaced by their later review")
    if terms.mentor_ids[signal.reviewer_id] not in standing:
        if not for_this_base(signal.submitted_at, pr):
            return SignalVerdict(signal, False, "given before the base branch changed")
        sha = (signal.commit_id or "unknown")[:7]
        if pr.head_tree is None and terms.same_content_approvals:
            return SignalVerdict(
                signal,
                False,
                f"given on an older commit ({sha}); the new head's content is being read",
            )
        return SignalVerdict(signal, False, f"given on an older commit ({sha})")
    return SignalVerdict(signal, True, "counts")


# ---------------------------------------------------------------- what blocks a pull request


@dataclasses.dataclass(frozen=True)
class Blocker:
    """What a waiting pull request still needs, in one line, for its author."""

    given: int  # approvals that count now
    needed: int
    line: str


def blocker(pr: Pull, terms: Terms, signals: Iterable[Signal], now: datetime) -> Blocker:
    """Why ``pr`` waits and what its author can do about it, by the rules of ``evaluate``.

    The most useful fact comes first: a request for changes, then an approval given on an
    older commit (a new look is all it takes), then how many approvals are still missing.
    """
    ordered = sorted((s for s in signals if _seconds(s) <= now), key=signal_order)
    eligible = terms.eligible(pr)
    given = _logins(terms, _standing_approvers(ordered, pr, eligible, terms=terms))
    needed = terms.approvals_required
    count = f"{len(given)} of {needed} approvals" if needed > 1 else ""
    # Mentors not learned yet are asked too: their first review teaches their id.
    unknown = terms.mentors - set(terms.mentor_ids.values()) - {pr.author}
    askable = (set(_logins(terms, eligible)) | unknown) - set(given)
    others = [n for n in terms.mentor_names() if n[1:].lower() in askable]
    ask = " or ".join(others) or "another mentor"
    changes = _logins(terms, _changes_requested_by(ordered, eligible))
    stale = sorted(_stale_approvers(ordered, pr, terms) - set(given) - set(changes))
    shown = {name.lower(): name for name in terms.mentor_display}
    if changes:
        names = _mentions(shown.get(login, login) for login in changes)
        line = f"{names} asked for changes — push a fix, then ask for a new look."
    elif stale:
        names = _mentions(shown.get(login, login) for login in stale)
        line = f"Approved by {names} on an older commit — ask for a new look."
    elif given:
        line = f"Needs {needed - len(given)} more: ask {ask}."
    else:
        line = f"Waits for {'a mentor' if needed == 1 else f'{needed} mentors'}: ask {ask}."
    return Blocker(len(given), needed, f"{count}. {line}" if count else line)


def _mentions(logins: Iterable[str]) -> str:
    return ", ".join(f"@{login}" for login in logins)
