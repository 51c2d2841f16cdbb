"""The gate's transaction: decide each pull request's gate, store it, audit what changed.

``reevaluate`` runs in the transaction of whatever changed the pull request (an event, an
approval, a lifecycle change). It reads the decision's inputs once (the pull request, its
reviews, overrides, sightings and trees, and the terms of the mentorships involved), passes
them down, stores the decision, and returns the commits whose check may now read
differently. The caller hands those to ``outbox.commit_gates`` before it commits; forgetting
is an error in tests (``outbox``'s guard), never a check lost silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlmodel import Session, select

from gatekeeper import away, bypass_alerts, gate, jobs, notify, outbox, terms
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.config import Settings
from gatekeeper.events import PullInfo, ReviewInfo
from gatekeeper.gate import GateState
from gatekeeper.models import AuditEvent, Mentorship, Override, PullRequest, Review
from gatekeeper.outbox import Touched

# Each account's open (else latest) mentorship and its terms, as ``terms.latest_terms_of``.
Known = Mapping[lifecycle.Account, tuple[Mentorship, gate.Terms] | None]


@dataclasses.dataclass(frozen=True)
class Reevaluated:
    """What deciding one pull request's gate gave, and the commits whose check it touched."""

    decision: gate.Decision
    touched: Touched
    # The mentorships the decision read, by account, with their terms: a caller deciding the
    # same pull request again in its transaction (an approval just added) passes them back
    # (``known``), and one asking who may approve finds their terms here.
    mentorships: Known = dataclasses.field(default_factory=dict)

    @property
    def terms(self) -> dict[int, gate.Terms]:
        """The terms read, by mentorship id."""
        return {
            pair[0].id: pair[1]
            for pair in self.mentorships.values()
            if pair is not None and pair[0].id is not None
        }


@dataclasses.dataclass(frozen=True)
class Inputs:
    """Everything one decision reads, read once."""

    reviews: list[Review]
    overrides: list[Override]
    trees: dict[str, str]
    author: Mentorship | None  # the author's open (else latest) mentorship
    author_terms: gate.Terms | None
    reviewer_terms: list[gate.Terms]
    mentorships: Known  # every account's read, the author's and reviewers' among them


def reevaluate(
    session: Session,
    pull: PullRequest,
    *,
    settings: Settings,
    now: datetime,
    known: Known | None = None,
    also: Sequence[lifecycle.Account] = (),
) -> Reevaluated:
    """Decide the gate of ``pull`` now and store it; the commits whose check it touched.

    ``known``: mentorships this transaction read already (``Reevaluated.mentorships``), not
    read again; ``also``: accounts whose mentorship to read with the others (one about to
    approve, whose approval the next decision weighs).
    """
    inputs = _read_inputs(session, pull, known or {}, also)
    # A merged pull request is judged as it stood when it merged.
    moment = pull.merged_at if pull.merged and pull.merged_at else now
    decision = gate.evaluate(
        store.gate_pull(pull, inputs.trees),
        inputs.author_terms,
        store.signals(inputs.reviews, inputs.trees),
        moment,
        reviewer_mentorships=inputs.reviewer_terms,
        overrides=store.overridings(inputs.overrides, inputs.trees),
    )
    # The check names the mentors who are away (the decision itself does not depend on it).
    decision = away.tell(session, decision, [inputs.author_terms, *inputs.reviewer_terms], now=now)
    touched: Touched = frozenset({(pull.repo, pull.head_sha)})
    if decision.waiting:
        for sha in _trees_that_would_tell(pull, inputs):
            read_tree_later(session, repo=pull.repo, sha=sha, now=now)
    if pull.state != "open":
        _settle_closed(session, pull, decision, inputs, settings=settings, now=now)
        return Reevaluated(decision, touched, inputs.mentorships)
    previous, lifted_before = pull.gate, pull.lifted_at
    if decision.mentorship_id is None and pull.gated_mentorship_id is not None:
        _lift(pull, decision, now=now)
        # Only a gate still waiting was lifted: an approved (or overridden) one had passed.
        changed = lifted_before is None and pull.gate == GateState.LIFTED
    else:
        _store_open(pull, decision, now=now)
        changed = previous != pull.gate
    gated = _gating(session, pull, inputs)
    if changed and pull.gated_mentorship_id is not None:
        kind = "gate_lifted" if pull.lifted_at is not None else f"gate_{pull.gate}"
        _record(session, pull, gated, actor="gatekeeper", kind=kind, detail=decision.title, at=now)
    if settings.request_reviews:
        _ask_for_reviews_once(session, pull, gated, inputs, now=now)
    session.add(pull)
    return Reevaluated(decision, touched, inputs.mentorships)


def _read_inputs(
    session: Session, pull: PullRequest, known: Known, also: Sequence[lifecycle.Account]
) -> Inputs:
    """Read what deciding ``pull`` needs, each fact once (the mentorships not ``known``)."""
    reviews, overrides = store.reviews_and_overrides(session, pull=pull)
    store.rebind_comments(session, pull, [*reviews, *overrides])
    given_on = {r.commit_id for r in reviews} | {o.commit_id for o in overrides}
    # A tree only tells whether something given on another commit holds for the head's
    # content: when everything was given on the head itself (the usual case), none is read.
    trees = (
        store.trees_of(session, repo=pull.repo, shas=[pull.head_sha, *(s or "" for s in given_on)])
        if given_on - {pull.head_sha}
        else {}
    )
    # The author's mentorship and the reviewers' (a mentee's approval may not count), with
    # their mentors: one query, however many reviewers (none when all are known).
    author_account = (pull.author_id, pull.author)
    reviewers: list[tuple[int | None, str]] = sorted(
        {
            (r.reviewer_id, r.reviewer)
            for r in reviews
            if r.reviewer_id is not None and r.reviewer_id != pull.author_id
        }
    )
    missing = [a for a in dict.fromkeys([author_account, *reviewers, *also]) if a not in known]
    found = {**known, **terms.latest_terms_of(session, accounts=missing)}
    author = found[author_account]
    gating_reviewers = [
        pair[1] for account in reviewers if (pair := found[account]) and pair[0].gate_approved_prs
    ]
    return Inputs(
        reviews=reviews,
        overrides=overrides,
        trees=trees,
        author=author[0] if author is not None else None,
        author_terms=author[1] if author is not None else None,
        reviewer_terms=gating_reviewers,
        mentorships=found,
    )


def _gating(session: Session, pull: PullRequest, inputs: Inputs) -> Mentorship | None:
    """The mentorship whose gate last applied to ``pull``: usually the author's, already read."""
    if inputs.author is not None and inputs.author.id == pull.gated_mentorship_id:
        return inputs.author
    return mentorship_of(session, pull)


def _store_open(pull: PullRequest, decision: gate.Decision, *, now: datetime) -> None:
    """Store the gate of an open pull request, and when it began and stopped waiting."""
    was_waiting = pull.gate == GateState.WAITING
    pull.gate, pull.gate_title = decision.gate, decision.title
    pull.gate_summary, pull.approved_by = decision.summary, list(decision.approved_by)
    if decision.mentorship_id is not None:
        pull.gated_mentorship_id, pull.lifted_at = decision.mentorship_id, None
    if decision.waiting:
        pull.waiting_since = pull.waiting_since or now
        pull.gated_at = pull.gated_at or now
        pull.settled_at = None
    else:
        if was_waiting:
            pull.settled_at = now
        pull.waiting_since = None


def _lift(pull: PullRequest, decision: gate.Decision, *, now: datetime) -> None:
    """The mentorship gating ``pull`` stopped gating it: the check turns green, the record stays.

    Its approvals and waits are what happened during the month, so they are kept: a pull
    request approved before the end still reads "approved by @x"; one still waiting becomes
    "lifted", its wait ending now.
    """
    if pull.gate == GateState.WAITING:
        pull.gate, pull.settled_at = GateState.LIFTED, now
    elif pull.gate not in (GateState.APPROVED, GateState.OVERRIDDEN, GateState.LIFTED):
        pull.gate = decision.gate
    pull.gate_title, pull.gate_summary = decision.title, decision.summary
    pull.waiting_since = None
    pull.lifted_at = pull.lifted_at or now


def _settle_closed(
    session: Session,
    pull: PullRequest,
    decision: gate.Decision,
    inputs: Inputs,
    *,
    settings: Settings,
    now: datetime,
) -> None:
    """Store what ``gate.settle_closed`` makes of a closed pull request, and audit it."""
    closing = gate.settle_closed(
        store.gate_pull(pull), stored_gate=pull.gate, merged_by=pull.merged_by, decision=decision
    )
    pull.gate = closing.gate
    if closing.title is not None:
        pull.gate_title = closing.title
    if closing.approved_by is not None:
        pull.approved_by = list(closing.approved_by)
    if pull.merged and pull.settled_at is None and pull.gated_at is not None:
        pull.settled_at = pull.merged_at or now  # merged past (or after) its wait
    if closing.event == "bypass":
        if decision.mentorship_id is not None:
            pull.gated_mentorship_id = decision.mentorship_id
        gated = _gating(session, pull, inputs)
        _record(
            session,
            pull,
            gated,
            actor=pull.merged_by or "unknown",
            kind="bypass",
            detail=f"merged while waiting for mentor approval ({decision.title})",
            at=now,
        )
        bypass_alerts.queue(session, pull, mentorship=gated, now=now)
        told = notify.bypass(session, pull, mentorship=gated)
        notify.tell(session, told, mentorship=gated, settings=settings, now=now)
    elif closing.event == "merger_known":
        _name_the_merger(session, pull)
    elif closing.event == "bypass_cleared":
        _record(
            session,
            pull,
            _gating(session, pull, inputs),
            actor="gatekeeper",
            kind="bypass_cleared",
            detail=f"approved before the merge: {decision.title}",
            at=now,
        )
    session.add(pull)


def _name_the_merger(session: Session, pull: PullRequest) -> None:
    """Complete a bypass recorded before GitHub had said who merged (events came out of order)."""
    for event in session.exec(
        select(AuditEvent)
        .where(AuditEvent.repo == pull.repo)
        .where(AuditEvent.pr_number == pull.number)
        .where(AuditEvent.kind == "bypass")
        .where(AuditEvent.actor == "unknown")
    ):
        event.actor = pull.merged_by or event.actor
        session.add(event)


def _ask_for_reviews_once(
    session: Session,
    pull: PullRequest,
    gated: Mentorship | None,
    inputs: Inputs,
    *,
    now: datetime,
) -> None:
    """Queue the mentors' review request when ``gate.reviewers_to_request`` says so."""
    if gated is not None and gated is inputs.author:
        gated_terms = inputs.author_terms
    else:
        gated_terms = terms.terms_of(session, gated) if gated is not None else None
    reviewers = gate.reviewers_to_request(
        store.gate_pull(pull),
        gated_terms,
        draft=pull.draft,
        waiting=pull.gate == GateState.WAITING,
        already_requested=pull.reviews_requested,
    )
    # Only present mentors are asked; with all away, none is, and a return re-decides.
    if reviewers and gated_terms is not None:
        reviewers = away.present(reviewers, away.of_terms(session, gated_terms, now=now))
    if reviewers:
        jobs.enqueue(
            session,
            key=f"request_reviews:{pull.repo}#{pull.number}",
            args=jobs.RequestReviews(repo=pull.repo, number=pull.number, logins=tuple(reviewers)),
            now=now,
        )
        pull.reviews_requested = True


def _trees_that_would_tell(pull: PullRequest, inputs: Inputs) -> list[str]:
    """Commits whose unknown tree could let an approval or override given on another commit
    hold for the head (the same content): only those are worth a request to GitHub."""
    carried = {o.commit_id for o in inputs.overrides if o.commit_id}
    author_terms = inputs.author_terms
    if (
        author_terms is not None
        and author_terms.dismiss_stale_approvals
        and author_terms.same_content_approvals
    ):
        carried |= {r.commit_id for r in inputs.reviews if r.state == gate.APPROVED and r.commit_id}
    carried.discard(pull.head_sha)
    if not carried:
        return []
    return sorted(sha for sha in {pull.head_sha, *carried} if sha not in inputs.trees)


def read_tree_later(session: Session, *, repo: str, sha: str, now: datetime) -> None:
    """Have the worker read a commit's tree, so an approval of the same content can hold."""
    jobs.enqueue(
        session,
        key=f"read_tree:{repo}@{sha}",
        args=jobs.ReadTree(repo=repo, sha=sha),
        now=now,
    )


def learn_tree(
    session: Session, *, repo: str, sha: str, tree_sha: str, settings: Settings, now: datetime
) -> Touched:
    """Keep a commit's tree and re-decide the open pull requests it may tell about: those
    whose head it is, and those approved or overridden on it; the commits touched."""
    store.remember_tree(session, repo=repo, sha=sha, tree_sha=tree_sha)
    session.flush()
    touched: Touched = outbox.NOTHING
    for pull_id in store.open_pulls_concerning(session, repo=repo, sha=sha):
        locked = store.lock_pull(session, pull_id=pull_id)
        if locked is not None and locked.state == "open":
            touched |= reevaluate(session, locked, settings=settings, now=now).touched
    return touched


def audit(
    session: Session, pull: PullRequest, *, actor: str, kind: str, detail: str, at: datetime
) -> None:
    """Record something that happened to ``pull`` in its mentorship's audit log."""
    _record(
        session, pull, mentorship_of(session, pull), actor=actor, kind=kind, detail=detail, at=at
    )


def _record(
    session: Session,
    pull: PullRequest,
    mentorship: Mentorship | None,
    *,
    actor: str,
    kind: str,
    detail: str,
    at: datetime,
) -> None:
    lifecycle.record(
        session,
        mentorship=mentorship,
        actor=actor,
        kind=kind,
        detail=detail,
        at=at,
        repo=pull.repo,
        pr_number=pull.number,
    )


def mentorship_of(session: Session, pull: PullRequest) -> Mentorship | None:
    """The mentorship whose gate last applied to ``pull``."""
    return session.get(Mentorship, pull.gated_mentorship_id) if pull.gated_mentorship_id else None


def reevaluate_open_pulls(
    session: Session, mentorship: Mentorship, *, settings: Settings, now: datetime
) -> Touched:
    """Re-decide every stored open pull request a lifecycle change may affect; the commits
    touched."""
    pulls = {
        p.id: p
        for p in store.open_pulls_of(
            session, author=mentorship.mentee, author_id=mentorship.mentee_id
        )
    }
    if mentorship.id is not None:
        pulls.update(
            {p.id: p for p in store.open_pulls_gated_by(session, mentorship_id=mentorship.id)}
        )
    touched: Touched = outbox.NOTHING
    for pull_id in sorted(i for i in pulls if i is not None):
        locked = store.lock_pull(session, pull_id=pull_id)
        if locked is not None:
            touched |= reevaluate(session, locked, settings=settings, now=now).touched
    return touched


def follow_lifecycle_change(
    session: Session, mentorship: Mentorship, *, settings: Settings, now: datetime
) -> Touched:
    """Make the mentee's gates follow a change to their mentorship, in the same transaction.

    The stored pull requests are re-decided and their commits' checks desired now; reading
    the mentee's pull requests from GitHub (ones never seen, reviews missed) is a job for
    the worker, so the request or command that made the change never waits for GitHub.
    Returns the commits touched, for ``outbox.commit_gates``.
    """
    touched = reevaluate_open_pulls(session, mentorship, settings=settings, now=now)
    if mentorship.id is not None:
        jobs.enqueue(
            session,
            key=f"reconcile:{mentorship.id}",
            args=jobs.Reconcile(mentorship_id=mentorship.id),
            now=now,
        )
    return touched


def apply_pull(
    session: Session,
    *,
    info: PullInfo,
    reviews: list[ReviewInfo],
    settings: Settings,
    now: datetime,
) -> int:
    """Store a pull request and its reviews as GitHub has them and re-decide its gate; how
    many commits' checks changed."""
    pull, left = store.record_pull(session, info=info, now=now)
    return apply_reviews(
        session, pull, reviews=reviews, settings=settings, now=now, moved_from=left
    )


def apply_reviews(
    session: Session,
    pull: PullRequest,
    *,
    reviews: list[ReviewInfo],
    settings: Settings,
    now: datetime,
    moved_from: str | None = None,
) -> int:
    """Store a (locked) pull request's reviews as GitHub has them, re-decide its gate and
    derive the checks (also of ``moved_from``, a head it just left); how many changed."""
    for review in reviews:
        store.upsert_review(session, pull=pull, info=review, now=now)
    session.flush()
    touched = reevaluate(session, pull, settings=settings, now=now).touched
    if moved_from is not None:
        touched |= {(pull.repo, moved_from)}
    return outbox.commit_gates(session, touched, settings=settings, now=now)
