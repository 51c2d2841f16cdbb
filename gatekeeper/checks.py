"""Keeping each pull request's check run in step with its gate.

Two steps, so that nothing is lost when GitHub fails: ``reevaluate`` decides and stores the
gate and marks the pull request ``needs_post`` if GitHub shows something else (committed with
the event that caused it); ``deliver`` then posts it and clears the mark. Whatever is still
marked is retried by the next event or sweep.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from gatekeeper import gate
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.config import Settings
from gatekeeper.github import CheckRunBody, GitHubApp, GitHubUnavailable
from gatekeeper.models import AuditEvent, Mentorship, MergeGroup, PostedCheck, PullRequest

log = logging.getLogger(__name__)

APPROVE_ACTION = {
    "label": "Approve merge",
    "identifier": "approve",
    "description": "Mentors only: let this PR merge",
}
SUMMARY_LIMIT = 65535  # bytes, GitHub's limit for output.summary


def reevaluate(
    session: Session, pull: PullRequest, *, settings: Settings, now: datetime
) -> gate.Decision:
    """Decide the gate of ``pull`` now, store it, and mark it if GitHub must be told."""
    reviews = store.reviews_of(session, pull=pull)
    author_terms = store.latest_terms(session, login=pull.author)
    reviewer_terms = [
        terms
        for login in sorted({r.reviewer for r in reviews} - {pull.author})
        if (terms := store.latest_terms(session, login=login)) is not None
        and terms.gate_approved_prs
    ]
    # A merged pull request is judged as it stood when it merged.
    moment = pull.merged_at if pull.merged and pull.merged_at else now
    decision = gate.evaluate(
        store.gate_pull(pull),
        author_terms,
        store.signals(reviews),
        moment,
        reviewer_mentorships=reviewer_terms,
    )
    previous = pull.gate
    if pull.state != "open":
        _settle_closed(session, pull, decision, now=now)
        return decision
    pull.gate, pull.gate_title = decision.gate, decision.title
    pull.gate_summary, pull.approved_by = decision.summary, list(decision.approved_by)
    if decision.mentorship_id is not None:
        pull.gated_mentorship_id = decision.mentorship_id
    if decision.waiting and pull.waiting_since is None:
        pull.waiting_since = now
    elif not decision.waiting:
        pull.waiting_since = None
    if previous != pull.gate and pull.gated_mentorship_id is not None:
        audit(
            session,
            pull,
            actor="gatekeeper",
            kind=f"gate_{pull.gate}",
            detail=decision.title,
            at=now,
        )
    pull.needs_post = _posted_fingerprint(session, pull, settings) != fingerprint(
        check_body(pull, settings=settings, now=now)
    )
    session.add(pull)
    return decision


def _settle_closed(
    session: Session, pull: PullRequest, decision: gate.Decision, *, now: datetime
) -> None:
    """Closed pull requests get no more check runs; merging past a waiting gate is a bypass."""
    pull.needs_post = False
    if not pull.merged:
        pull.gate, pull.gate_title = "not_required", "Closed without merging"
    elif decision.waiting and pull.gate != "bypassed":
        pull.gate, pull.gate_title = "bypassed", "Merged without mentor approval"
        pull.approved_by = list(decision.approved_by)
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
    elif decision.waiting and pull.merged_by:
        _name_the_merger(session, pull)
    elif not decision.waiting and pull.gate in ("waiting", "bypassed"):
        if pull.gate == "bypassed":  # an approval given before the merge arrived late
            audit(
                session,
                pull,
                actor="gatekeeper",
                kind="bypass_cleared",
                detail=f"approved before the merge: {decision.title}",
                at=now,
            )
        pull.gate, pull.gate_title = decision.gate, decision.title
        pull.approved_by = list(decision.approved_by)
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
    return session.get(Mentorship, pull.gated_mentorship_id) if pull.gated_mentorship_id else None


def check_body(pull: PullRequest, *, settings: Settings, now: datetime) -> CheckRunBody:
    """The check run that shows ``pull``'s stored gate."""
    waiting = pull.gate == "waiting"
    return CheckRunBody(
        name=settings.check_name,
        head_sha=pull.head_sha,
        conclusion=gate.ACTION_REQUIRED if waiting else gate.SUCCESS,
        title=pull.gate_title or "No mentorship applies",
        summary=truncate_bytes(pull.gate_summary or pull.gate_title, SUMMARY_LIMIT),
        details_url=f"{settings.base_url}/pulls/{pull.repo}/{pull.number}",
        external_id=f"{pull.repo}#{pull.number}",
        completed_at=now,
        actions=(APPROVE_ACTION,) if waiting else (),
    )


def fingerprint(body: CheckRunBody) -> str:
    """A digest of what a check run shows (not when it was posted)."""
    shown = {
        "name": body.name,
        "conclusion": body.conclusion,
        "title": body.title,
        "summary": body.summary,
        "details_url": body.details_url,
        "external_id": body.external_id,
        "actions": list(body.actions),
    }
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()


def truncate_bytes(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes without splitting a character."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "…"


def _posted(session: Session, *, repo: str, head_sha: str, name: str) -> PostedCheck | None:
    """What GitHub shows on the commit, read afresh (it is written with a Core upsert)."""
    return session.exec(
        select(PostedCheck)
        .where(PostedCheck.repo == repo)
        .where(PostedCheck.head_sha == head_sha)
        .where(PostedCheck.name == name)
        .execution_options(populate_existing=True)
    ).first()


def _posted_fingerprint(session: Session, pull: PullRequest, settings: Settings) -> str | None:
    posted = _posted(session, repo=pull.repo, head_sha=pull.head_sha, name=settings.check_name)
    return posted.fingerprint if posted else None


def deliver(
    session: Session,
    pull: PullRequest,
    *,
    github: GitHubApp | None,
    settings: Settings,
    now: datetime,
    fresh: bool = False,
) -> bool:
    """Post the pull request's check run if it is marked (or ``fresh``); True once GitHub has it.

    ``fresh`` creates a new check run even if an identical one exists, as GitHub expects
    when someone presses "Re-run".
    """
    if pull.state != "open" or github is None:
        return not pull.needs_post
    reviewers = _reviewers_to_request(session, pull, settings=settings)
    if not (pull.needs_post or fresh or reviewers):
        return True
    try:
        installation_id = _installation(session, pull.repo, github)
        if pull.needs_post or fresh:
            body = check_body(pull, settings=settings, now=now)
            post(
                session,
                repo=pull.repo,
                body=body,
                github=github,
                installation_id=installation_id,
                fresh=fresh,
                now=now,
            )
            _clear_mark(session, pull)
    except GitHubUnavailable as error:
        if not error.permanent:
            log.warning(
                "check for %s#%s not posted, kept for retry: %s", pull.repo, pull.number, error
            )
            return False
        # The App no longer sees the repository, or GitHub refuses the post for good:
        # retrying every sweep would change nothing.
        log.warning("check for %s#%s given up: %s", pull.repo, pull.number, error)
        _clear_mark(session, pull)
        return True
    if reviewers:
        _ask_for_reviews(
            session, pull, github=github, installation_id=installation_id, reviewers=reviewers
        )
    return True


def _clear_mark(session: Session, pull: PullRequest) -> None:
    """Clear ``needs_post`` only if the row still shows what was just posted.

    Another worker may meanwhile have stored a newer head or decision and marked it; an
    unconditional write would erase that mark and leave the new commit without a check.
    """
    session.flush()
    session.execute(
        sa.update(PullRequest)
        .where(col(PullRequest.id) == pull.id)
        .where(col(PullRequest.head_sha) == pull.head_sha)
        .where(col(PullRequest.gate) == pull.gate)
        .where(col(PullRequest.gate_title) == pull.gate_title)
        .where(col(PullRequest.gate_summary) == pull.gate_summary)
        .values(needs_post=False)
    )
    session.refresh(pull, attribute_names=["needs_post"])


def _ask_for_reviews(
    session: Session,
    pull: PullRequest,
    *,
    github: GitHubApp,
    installation_id: int,
    reviewers: list[str],
) -> None:
    """Request the mentors' reviews once; a refusal (e.g. not a collaborator) is not retried."""
    try:
        github.request_reviewers(
            installation_id=installation_id, repo=pull.repo, number=pull.number, logins=reviewers
        )
    except GitHubUnavailable as error:
        if not error.permanent:
            log.warning("reviews for %s#%s not requested yet: %s", pull.repo, pull.number, error)
            return
        log.warning("reviews for %s#%s refused: %s", pull.repo, pull.number, error)
    pull.reviews_requested = True
    session.add(pull)


def post_merge_group(
    session: Session,
    group: MergeGroup,
    *,
    github: GitHubApp | None,
    settings: Settings,
    now: datetime,
) -> bool:
    """A merge group only holds pull requests whose own gate passed: mark it success.

    Until that is posted the group stays pending, and the sweep tries again.
    """
    if github is None or group.posted_at is not None:
        return group.posted_at is not None
    body = CheckRunBody(
        name=settings.check_name,
        head_sha=group.head_sha,
        conclusion=gate.SUCCESS,
        title="Merge queue",
        summary="Every pull request in this merge group passed its own gate.",
        details_url=f"{settings.base_url}/",
        external_id=f"{group.repo}@{group.head_sha}",
        completed_at=now,
    )
    try:
        installation_id = group.installation_id or _installation(session, group.repo, github)
        post(
            session,
            repo=group.repo,
            body=body,
            github=github,
            now=now,
            installation_id=installation_id,
        )
    except GitHubUnavailable as error:
        log.warning("merge group check for %s@%s not posted: %s", group.repo, group.head_sha, error)
        return False
    group.posted_at = now
    session.add(group)
    return True


def post(
    session: Session,
    *,
    repo: str,
    body: CheckRunBody,
    github: GitHubApp,
    installation_id: int,
    now: datetime,
    fresh: bool = False,
) -> None:
    """Post ``body`` unless GitHub already shows exactly that; one write at most."""
    posted = _posted(session, repo=repo, head_sha=body.head_sha, name=body.name)
    digest = fingerprint(body)
    if posted is not None and posted.fingerprint == digest and not fresh:
        return
    existing = None
    if not fresh:
        existing = (
            posted.check_run_id
            if posted
            else github.find_check_run(
                installation_id=installation_id, repo=repo, head_sha=body.head_sha, name=body.name
            )
        )
    run_id = github.post_check_run(
        installation_id=installation_id, repo=repo, body=body, existing_id=existing
    )
    _remember_posted(session, repo=repo, body=body, run_id=run_id, digest=digest, now=now)


def _remember_posted(
    session: Session, *, repo: str, body: CheckRunBody, run_id: int, digest: str, now: datetime
) -> None:
    """Upsert what GitHub now shows; a concurrent writer for the same commit is not an error."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {"check_run_id": run_id, "fingerprint": digest, "posted_at": now}
    statement = insert(PostedCheck).values(
        repo=repo, head_sha=body.head_sha, name=body.name, **values
    )
    session.execute(
        statement.on_conflict_do_update(index_elements=["repo", "head_sha", "name"], set_=values)
    )
    session.expire_all()


def _installation(session: Session, repo: str, github: GitHubApp) -> int:
    installation_id = store.installation_of(session, repo=repo)
    if installation_id is None:
        installation_id = github.installation_for(repo)
        store.remember_installation(session, repo=repo, installation_id=installation_id)
    return installation_id


def _reviewers_to_request(session: Session, pull: PullRequest, *, settings: Settings) -> list[str]:
    """Mentors to ask for a review: once, when a mentee's ready pull request first waits."""
    if (
        not settings.request_reviews
        or pull.reviews_requested
        or pull.draft
        or pull.gate != "waiting"
    ):
        return []
    mentorship = mentorship_of(session, pull)
    if mentorship is None:
        return []
    return [
        a.mentor_display
        for a in lifecycle.mentors_of(session, mentorship=mentorship)
        if a.mentor != pull.author
    ]
