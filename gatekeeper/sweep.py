"""Expiry and reconciliation: heal whatever lost webhooks or GitHub outages left wrong."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gatekeeper import checks
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.config import Settings
from gatekeeper.github import GitHubApp, GitHubNotFound, GitHubUnavailable
from gatekeeper.models import Mentorship, PostedCheck, PullRequest, Repository


@dataclasses.dataclass
class Report:
    """What one sweep did."""

    expired: list[str] = dataclasses.field(default_factory=list)
    mentees: int = 0
    pulls: int = 0
    posted: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    skipped: bool = False  # another sweep was running


MERGE_GROUP_PATIENCE = timedelta(hours=6)

# Any number of this app's own, so a second sweep (the clock and a manual run) waits its turn.
SWEEP_LOCK = 0x6761_7465  # "gate"


@contextlib.contextmanager
def _only_sweep(session: Session) -> Iterator[bool]:
    """On PostgreSQL, hold an advisory lock for the sweep; yields whether it was acquired.

    Two sweeps at once could both find a commit without a check and both create one. The lock
    lives on a connection of its own, since the sweep's session commits (and so returns its
    connection to the pool) many times. SQLite has one writer at a time anyway.
    """
    engine = session.get_bind()
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as connection:  # type: ignore[union-attr]
        acquired = connection.scalar(
            sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": SWEEP_LOCK}
        )
        try:
            yield bool(acquired)
        finally:
            if acquired:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": SWEEP_LOCK})
            connection.commit()


def sweep(
    session: Session,
    *,
    settings: Settings,
    github: GitHubApp | None,
    now: datetime,
    progress: Callable[[str], None] = lambda line: None,
) -> Report:
    """End expired mentorships, reconcile every gated mentee's open pulls, retry pending posts."""
    with _only_sweep(session) as alone:
        if not alone:
            progress("another sweep is running; skipped")
            return Report(skipped=True)
        return _sweep(session, settings=settings, github=github, now=now, progress=progress)


def _sweep(
    session: Session,
    *,
    settings: Settings,
    github: GitHubApp | None,
    now: datetime,
    progress: Callable[[str], None],
) -> Report:
    report = Report()
    report.expired = [m.mentee_display for m in lifecycle.expire_lapsed(session, now=now)]
    session.commit()
    for mentee in report.expired:
        progress(f"{mentee}: mentorship expired")
    for mentorship in _due(session, now=now):
        reconcile(session, mentorship, settings=settings, github=github, now=now, report=report)
        progress(f"{mentorship.mentee_display}: reconciled")
    if github is not None:
        check_every_open_pull(session, settings=settings, github=github, now=now, report=report)
    for pull in store.pending_posts(session):
        _post(session, pull, settings=settings, github=github, now=now, report=report)
    if github is not None:
        # A merge group lives as long as the queue waits for it; older ones are moot.
        for group in store.pending_merge_groups(session, since=now - MERGE_GROUP_PATIENCE):
            if checks.post_merge_group(session, group, github=github, settings=settings, now=now):
                report.posted += 1
            else:
                report.failures.append(f"{group.repo}@{group.head_sha[:12]}: merge group check")
            session.commit()
    return report


def check_every_open_pull(
    session: Session, *, settings: Settings, github: GitHubApp, now: datetime, report: Report
) -> None:
    """Give the check to open pull requests of anyone whose head has none of ours yet.

    The check is required in branch protection, so a lost ``opened`` webhook would otherwise
    leave someone's pull request unmergeable. One paginated list per installed repository.
    """
    installed = session.exec(
        select(Repository).where(col(Repository.installation_id).is_not(None))
    ).all()
    for repository in installed:
        assert repository.installation_id is not None
        try:
            found = github.open_pulls(
                installation_id=repository.installation_id, repo=repository.full_name
            )
        except GitHubUnavailable as error:
            report.failures.append(f"{repository.full_name}: {error}")
            continue
        checked = set(
            session.exec(
                select(PostedCheck.head_sha)
                .where(PostedCheck.repo == repository.full_name)
                .where(PostedCheck.name == settings.check_name)
            )
        )
        for info in found:
            if info.head_sha in checked:
                continue
            report.pulls += 1
            pull = store.upsert_pull(session, info=info, now=now)
            checks.reevaluate(session, pull, settings=settings, now=now)
            _post(session, pull, settings=settings, github=github, now=now, report=report)


def _due(session: Session, *, now: datetime) -> list[Mentorship]:
    """Active mentorships, and ended ones not reconciled since they ended."""
    active = col(Mentorship.ended_at).is_(None) & (Mentorship.started_at <= now)
    ended_unswept = col(Mentorship.ended_at).is_not(None) & (
        col(Mentorship.swept_at).is_(None) | (col(Mentorship.swept_at) < Mentorship.ended_at)
    )
    return list(
        session.exec(
            select(Mentorship).where(sa.or_(active, ended_unswept)).order_by(col(Mentorship.id))
        )
    )


def reconcile(
    session: Session,
    mentorship: Mentorship,
    *,
    settings: Settings,
    github: GitHubApp | None,
    now: datetime,
    report: Report | None = None,
) -> Report:
    """Bring every open pull request of a mentee (or gated by them) in line with GitHub and the gate."""
    report = report or Report()
    report.mentees += 1
    failed_before = len(report.failures)
    targets: dict[tuple[str, int], int | None] = {}
    if github is not None:
        try:
            for installation_id in _installations(session, github):
                for repo, number in github.open_pulls_by(
                    installation_id=installation_id, author=mentorship.mentee
                ):
                    # Search also finds public pull requests in repositories the App is not
                    # installed on; those are none of its business.
                    if _installation_covering(session, github, repo.lower()) == installation_id:
                        targets[(repo.lower(), number)] = installation_id
        except GitHubUnavailable as error:
            report.failures.append(f"{mentorship.mentee_display}: {error}")
    known = store.open_pulls_of(session, author=mentorship.mentee)
    if mentorship.id is not None:
        known += store.open_pulls_gated_by(session, mentorship_id=mentorship.id)
    for stored in known:
        targets.setdefault((stored.repo, stored.number), None)
    for (repo, number), known_installation in sorted(targets.items()):
        pull = _sync(
            session, repo, number, known_installation, github=github, now=now, report=report
        )
        if pull is not None:
            checks.reevaluate(session, pull, settings=settings, now=now)
            _post(session, pull, settings=settings, github=github, now=now, report=report)
    if len(report.failures) == failed_before:
        mentorship.swept_at = now
        session.add(mentorship)
    session.commit()
    return report


def _sync(
    session: Session,
    repo: str,
    number: int,
    installation_id: int | None,
    *,
    github: GitHubApp | None,
    now: datetime,
    report: Report,
) -> PullRequest | None:
    """Refresh a pull request and its reviews from GitHub (or use what is stored without it)."""
    report.pulls += 1
    if github is None:
        return store.find_pull(session, repo=repo, number=number)
    try:
        installation = (
            installation_id
            or store.installation_of(session, repo=repo)
            or github.installation_for(repo)
        )
        info = github.pull(installation_id=installation, repo=repo, number=number)
        reviews = github.reviews(installation_id=installation, repo=repo, number=number)
    except GitHubUnavailable as error:
        report.failures.append(f"{repo}#{number}: {error}")
        return store.find_pull(session, repo=repo, number=number)
    pull = store.upsert_pull(session, info=info, now=now)
    for review in reviews:
        store.upsert_review(session, pull=pull, info=review, now=now)
    session.flush()
    return pull


def _post(
    session: Session,
    pull: PullRequest,
    *,
    settings: Settings,
    github: GitHubApp | None,
    now: datetime,
    report: Report,
) -> None:
    was_pending = pull.needs_post
    if checks.deliver(session, pull, github=github, settings=settings, now=now):
        report.posted += int(was_pending)
    elif github is not None:
        report.failures.append(f"{pull.repo}#{pull.number}: check not posted")
    session.commit()


def _installation_covering(session: Session, github: GitHubApp, repo: str) -> int | None:
    """The installation that covers ``repo``, or None; an unknown repository is asked once."""
    row = session.get(Repository, repo)
    if row is not None:
        return row.installation_id
    try:
        installation_id: int | None = github.installation_for(repo)
    except GitHubNotFound:
        installation_id = None
    store.remember_installation(session, repo=repo, installation_id=installation_id)
    return installation_id


def _installations(session: Session, github: GitHubApp) -> list[int]:
    """Installation ids known from events; asked of GitHub when none were seen yet."""
    known = session.exec(
        select(Repository.installation_id)
        .where(col(Repository.installation_id).is_not(None))
        .distinct()
    ).all()
    if known:
        return sorted(i for i in known if i is not None)
    found = github.installations()
    for installation_id, repos in found.items():
        for repo in repos:
            store.remember_installation(
                session, repo=repo, display=repo, installation_id=installation_id
            )
    return sorted(found)
