"""Deciding and storing each pull request's gate, and auditing what changed.

``reevaluate`` runs in the transaction of whatever changed the pull request (an event, an
approval, a lifecycle change) and notes the commits whose check may now read differently;
``outbox.flush`` turns those notes into the desired check of each commit before it commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from gatekeeper import bypass_alerts, gate, jobs, notify, outbox
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.config import Settings
from gatekeeper.events import PullInfo, ReviewInfo
from gatekeeper.gate import GateState
from gatekeeper.models import AuditEvent, JobKind, Mentorship, Override, PullRequest, Review


def reevaluate(
    session: Session, pull: PullRequest, *, settings: Settings, now: datetime
) -> gate.Decision:
    """Decide the gate of ``pull`` now, store it, and note its commit for the outbox."""
    reviews = store.reviews_of(session, pull=pull)
    overrides = store.overrides_of(session, pull=pull)
    store.rebind_comments(session, pull, [*reviews, *overrides])
    trees = store.trees_of(
        session,
        repo=pull.repo,
        shas=[
            pull.head_sha,
            *(r.commit_id or "" for r in reviews),
            *(o.commit_id for o in overrides),
        ],
    )
    author_terms = store.latest_terms(session, login=pull.author, account_id=pull.author_id)
    reviewers = {(r.reviewer_id, r.reviewer) for r in reviews if r.reviewer_id is not None}
    reviewer_terms = [
        terms
        for reviewer_id, login in sorted(reviewers)
        if reviewer_id != pull.author_id
        and (terms := store.latest_terms(session, login=login, account_id=reviewer_id)) is not None
        and terms.gate_approved_prs
    ]
    # A merged pull request is judged as it stood when it merged.
    moment = pull.merged_at if pull.merged and pull.merged_at else now
    decision = gate.evaluate(
        store.gate_pull(pull, trees),
        author_terms,
        store.signals(reviews, trees),
        moment,
        reviewer_mentorships=reviewer_terms,
        overrides=store.overridings(overrides, trees),
    )
    if decision.waiting:
        for sha in _trees_that_would_tell(pull, author_terms, reviews, overrides, trees):
            read_tree_later(session, repo=pull.repo, sha=sha, now=now)
    store.touch_commit(session, repo=pull.repo, head_sha=pull.head_sha)
    if pull.state != "open":
        _settle_closed(session, pull, decision, settings=settings, now=now)
        return decision
    previous, lifted_before = pull.gate, pull.lifted_at
    if decision.mentorship_id is None and pull.gated_mentorship_id is not None:
        _lift(pull, decision, now=now)
        changed = lifted_before is None
    else:
        _store_open(pull, decision, now=now)
        changed = previous != pull.gate
    if changed and pull.gated_mentorship_id is not None:
        kind = "gate_lifted" if pull.lifted_at is not None else f"gate_{pull.gate}"
        audit(session, pull, actor="gatekeeper", kind=kind, detail=decision.title, at=now)
    if settings.request_reviews:
        _ask_for_reviews_once(session, pull, now=now)
    session.add(pull)
    return decision


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
        audit(
            session,
            pull,
            actor=pull.merged_by or "unknown",
            kind="bypass",
            detail=f"merged while waiting for mentor approval ({decision.title})",
            at=now,
        )
        mentorship = mentorship_of(session, pull)
        bypass_alerts.queue(session, pull, mentorship=mentorship, now=now)
        told = notify.bypass(session, pull, mentorship=mentorship)
        notify.tell(session, told, mentorship=mentorship, settings=settings, now=now)
    elif closing.event == "merger_known":
        _name_the_merger(session, pull)
    elif closing.event == "bypass_cleared":
        audit(
            session,
            pull,
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


def _ask_for_reviews_once(session: Session, pull: PullRequest, *, now: datetime) -> None:
    """Queue the mentors' review request when ``gate.reviewers_to_request`` says so."""
    mentorship = mentorship_of(session, pull)
    terms = store.terms_of(session, mentorship) if mentorship is not None else None
    reviewers = gate.reviewers_to_request(
        store.gate_pull(pull),
        terms,
        draft=pull.draft,
        waiting=pull.gate == GateState.WAITING,
        already_requested=pull.reviews_requested,
    )
    if reviewers:
        jobs.enqueue(
            session,
            kind=JobKind.REQUEST_REVIEWS,
            key=f"request_reviews:{pull.repo}#{pull.number}",
            args={"repo": pull.repo, "number": pull.number, "logins": reviewers},
            now=now,
        )
        pull.reviews_requested = True


def _trees_that_would_tell(
    pull: PullRequest,
    terms: gate.Terms | None,
    reviews: list[Review],
    overrides: list[Override],
    trees: dict[str, str],
) -> list[str]:
    """Commits whose unknown tree could let an approval or override given on another commit
    hold for the head (the same content): only those are worth a request to GitHub."""
    carried = {o.commit_id for o in overrides if o.commit_id}
    if terms is not None and terms.dismiss_stale_approvals and terms.same_content_approvals:
        carried |= {r.commit_id for r in reviews if r.state == gate.APPROVED and r.commit_id}
    carried.discard(pull.head_sha)
    if not carried:
        return []
    return sorted(sha for sha in {pull.head_sha, *carried} if sha not in trees)


def read_tree_later(session: Session, *, repo: str, sha: str, now: datetime) -> None:
    """Have the worker read a commit's tree, so an approval of the same content can hold."""
    jobs.enqueue(
        session,
        kind=JobKind.READ_TREE,
        key=f"read_tree:{repo}@{sha}",
        args={"repo": repo, "sha": sha},
        now=now,
    )


def learn_tree(
    session: Session, *, repo: str, sha: str, tree_sha: str, settings: Settings, now: datetime
) -> None:
    """Keep a commit's tree and re-decide the open pull requests it may tell about: those
    whose head it is, and those approved or overridden on it."""
    store.remember_tree(session, repo=repo, sha=sha, tree_sha=tree_sha)
    session.flush()
    for pull_id in store.open_pulls_concerning(session, repo=repo, sha=sha):
        locked = store.lock_pull(session, pull_id=pull_id)
        if locked is not None and locked.state == "open":
            reevaluate(session, locked, settings=settings, now=now)


def audit(
    session: Session, pull: PullRequest, *, actor: str, kind: str, detail: str, at: datetime
) -> None:
    """Record something that happened to ``pull`` in its mentorship's audit log."""
    lifecycle.record(
        session,
        mentorship=mentorship_of(session, pull),
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
) -> int:
    """Re-decide every stored open pull request a lifecycle change may affect; how many."""
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
    for pull_id in sorted(i for i in pulls if i is not None):
        locked = store.lock_pull(session, pull_id=pull_id)
        if locked is not None:
            reevaluate(session, locked, settings=settings, now=now)
    return len(pulls)


def follow_lifecycle_change(
    session: Session, mentorship: Mentorship, *, settings: Settings, now: datetime
) -> None:
    """Make the mentee's gates follow a change to their mentorship, in the same transaction.

    The stored pull requests are re-decided and their commits' checks desired now; reading
    the mentee's pull requests from GitHub (ones never seen, reviews missed) is a job for
    the worker, so the request or command that made the change never waits for GitHub.
    """
    reevaluate_open_pulls(session, mentorship, settings=settings, now=now)
    if mentorship.id is not None:
        jobs.enqueue(
            session,
            kind=JobKind.RECONCILE,
            key=f"reconcile:{mentorship.id}",
            args={"mentorship_id": mentorship.id},
            now=now,
        )


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
    pull = store.upsert_pull(session, info=info, now=now)
    return apply_reviews(session, pull, reviews=reviews, settings=settings, now=now)


def apply_reviews(
    session: Session,
    pull: PullRequest,
    *,
    reviews: list[ReviewInfo],
    settings: Settings,
    now: datetime,
) -> int:
    """Store a (locked) pull request's reviews as GitHub has them and re-decide its gate; how
    many commits' checks changed."""
    for review in reviews:
        store.upsert_review(session, pull=pull, info=review, now=now)
    session.flush()
    reevaluate(session, pull, settings=settings, now=now)
    return outbox.flush(session, settings=settings, now=now)
