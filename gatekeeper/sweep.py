"""The sweep: expiry and reconciliation, healing whatever lost webhooks or outages left wrong.

It reads GitHub and stores what it learns; what GitHub should then show goes through the
outbox like everything else, so the sweep itself never posts a check. Its work is sharded by
installation (a lock each on PostgreSQL), so several clock processes share the installations
and none is swept twice at once. One failure never aborts the rest of a round.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gatekeeper import db, decisions, metrics, notify, outbox
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper.config import Settings
from gatekeeper.github import GitHubApp, GitHubNotFound, GitHubUnavailable
from gatekeeper.models import (
    KEPT,
    Delivery,
    Mentorship,
    Redelivery,
    Repository,
    SweepRun,
    utcnow,
)

log = logging.getLogger(__name__)

# Advisory lock keys of this app's own: (SWEEP_LOCK, installation id) for an installation's
# share of the sweep, (SWEEP_LOCK, 0) for the App-wide part.
SWEEP_LOCK = 0x6761_7465  # "gate"
APP_WIDE = 0
REDELIVERY_WINDOW = timedelta(days=3)  # GitHub keeps deliveries for three days


@dataclasses.dataclass
class Report:
    """What one sweep did."""

    expired: list[str] = dataclasses.field(default_factory=list)
    mentees: int = 0
    pulls: int = 0
    changed: int = 0  # commits whose desired check changed (the worker posts them)
    scanned: int = 0
    gone: list[str] = dataclasses.field(default_factory=list)
    redelivered: int = 0
    notices: int = 0  # notices to the team's chat queued (the worker sends them)
    failures: list[str] = dataclasses.field(default_factory=list)
    skipped: list[int] = dataclasses.field(default_factory=list)  # installations another sweep held


@contextlib.contextmanager
def _holding(session: Session, key: int) -> Iterator[bool]:
    """On PostgreSQL, hold the advisory lock ``(SWEEP_LOCK, key)``; yields whether it was taken.

    It lives on a connection of its own, since the sweep's session commits (and so returns
    its connection to the pool) many times. SQLite has one writer at a time anyway.
    """
    engine = session.get_bind()
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as connection:  # type: ignore[union-attr]
        acquired = connection.scalar(
            sa.text("SELECT pg_try_advisory_lock(:a, :b)"), {"a": SWEEP_LOCK, "b": key}
        )
        connection.commit()
        try:
            yield bool(acquired)
        finally:
            if acquired:
                connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:a, :b)"), {"a": SWEEP_LOCK, "b": key}
                )
            connection.commit()


def sweep(
    session: Session,
    *,
    settings: Settings,
    github: GitHubApp | None,
    now: datetime,
    progress: Callable[[str], None] = lambda line: None,
) -> Report:
    """End expired mentorships, reconcile gated mentees' open pulls, scan, redeliver."""
    with metrics.SWEEP_DURATION.time():
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
    due = _due(session, now=now)
    for mentorship in due:  # what is stored needs no GitHub: lifted gates show at once
        report.changed += _reevaluate_stored(session, mentorship, settings=settings, now=now)
    # Time-based notices need nothing from GitHub: found on what is stored, even without it.
    report.notices = len(notify.queue_due(session, settings=settings, now=now))
    session.commit()
    if github is None:
        # Nothing was read from GitHub: an ended mentorship stays due, so the first sweep
        # that can reach GitHub still reconciles it.
        return report
    incomplete: set[int | None] = set()  # mentorships GitHub left something undone for
    searches = Searches()
    for installation_id in _each_installation(session, github, report):
        with _holding(session, installation_id) as mine:
            if not mine:
                report.skipped.append(installation_id)
                progress(f"installation {installation_id}: another sweep has it; skipped")
                continue
            for mentorship in due:
                failed = len(report.failures)
                _reconcile_in(
                    session,
                    mentorship,
                    installation_id,
                    settings=settings,
                    github=github,
                    now=now,
                    report=report,
                    searches=searches,
                )
                if len(report.failures) > failed:
                    incomplete.add(mentorship.id)
                progress(
                    f"{mentorship.mentee_display}: reconciled in installation {installation_id}"
                )
            _scan(
                session, installation_id, settings=settings, github=github, now=now, report=report
            )
    for mentorship in due:
        if mentorship.id not in incomplete:
            _mark_swept(session, mentorship, now=now)
    with _holding(session, APP_WIDE) as mine:
        if mine:
            _redeliver_failed(session, github=github, now=now, report=report)
    _finished(session, "sweep", now)
    return report


def reconcile(
    session: Session,
    mentorship: Mentorship,
    *,
    settings: Settings,
    github: GitHubApp | None,
    now: datetime,
) -> Report:
    """Bring one mentee's open pull requests in line with GitHub (a lifecycle change's job)."""
    report = Report()
    report.changed += _reevaluate_stored(session, mentorship, settings=settings, now=now)
    if github is not None:
        searches = Searches()
        for installation_id in _each_installation(session, github, report):
            _reconcile_in(
                session,
                mentorship,
                installation_id,
                settings=settings,
                github=github,
                now=now,
                report=report,
                searches=searches,
            )
    if github is not None and not report.failures:
        _mark_swept(session, mentorship, now=now)
    return report


def _reevaluate_stored(
    session: Session, mentorship: Mentorship, *, settings: Settings, now: datetime
) -> int:
    changed = 0
    session.expire_all()  # decided from the rows as they are now, not as first loaded
    now = _later(now)
    try:
        touched = decisions.reevaluate_open_pulls(session, mentorship, settings=settings, now=now)
        changed = outbox.commit_gates(session, touched, settings=settings, now=now)
        session.commit()
    except sa.exc.SQLAlchemyError as error:
        session.rollback()
        log.warning(
            "stored gates of %s not re-decided: %s", mentorship.mentee, type(error).__name__
        )
    return changed


def _reconcile_in(
    session: Session,
    mentorship: Mentorship,
    installation_id: int,
    *,
    settings: Settings,
    github: GitHubApp,
    now: datetime,
    report: Report,
    searches: Searches,
) -> None:
    """The mentee's open pull requests that ``installation_id`` covers, read and re-decided."""
    report.mentees += 1
    session.commit()  # no transaction stays open while GitHub answers (on SQLite: the lock)
    try:
        found = _found(
            session, mentorship, installation_id, github=github, searches=searches, report=report
        )
    except GitHubUnavailable as error:
        report.failures.append(f"{mentorship.mentee_display}: {error}")
        return
    targets: dict[tuple[str, int], datetime | None] = {}

    def covered(repo: str) -> bool:
        # Search finds the mentee's pull requests in every public repository: each is this
        # installation's business only if it covers the repository (see _learn_installations).
        row = session.get(Repository, repo)
        return row is not None and row.installation_id == installation_id and row.gone_at is None

    for repo, number, updated_at in found:
        if covered(repo.lower()):
            targets[(repo.lower(), number)] = updated_at
    for pull in store.open_pulls_of(
        session, author=mentorship.mentee, author_id=mentorship.mentee_id
    ):
        if covered(pull.repo):
            targets.setdefault((pull.repo, pull.number), None)
    for (repo, number), updated_at in sorted(targets.items()):
        _sync(
            session,
            repo,
            number,
            installation_id,
            updated_at,
            settings=settings,
            github=github,
            now=now,
            report=report,
        )


Found = tuple[str, int, datetime | None]  # (repository, number, updated_at) from search


@dataclasses.dataclass
class Searches:
    """What one round searched: a search with any installation's token sees every public
    repository (as on GitHub), so each mentee is searched once, not once per installation;
    each hit is then routed to the installation that covers its repository."""

    public: dict[int | None, list[Found]] = dataclasses.field(default_factory=dict)
    token_of: dict[int | None, int] = dataclasses.field(default_factory=dict)


def _found(
    session: Session,
    mentorship: Mentorship,
    installation_id: int,
    *,
    github: GitHubApp,
    searches: Searches,
    report: Report,
) -> list[Found]:
    """The mentee's open pull requests that search shows ``installation_id``: the round's one
    search (which also saw the private repositories of the installation whose token ran it),
    plus, for another installation with private repositories, a search of those alone."""
    key = mentorship.id
    if key not in searches.public:
        hits = github.open_pulls_by(installation_id=installation_id, author=mentorship.mentee)
        searches.public[key], searches.token_of[key] = hits, installation_id
        _learn_installations(session, hits, github=github, report=report)
    found = list(searches.public[key])
    if searches.token_of[key] != installation_id and _has_private(session, installation_id):
        private = github.open_pulls_by(
            installation_id=installation_id, author=mentorship.mentee, private_only=True
        )
        _learn_installations(session, private, github=github, report=report)
        found += private
    return found


def _has_private(session: Session, installation_id: int) -> bool:
    return (
        session.exec(
            select(Repository.full_name)
            .where(col(Repository.installation_id) == installation_id)
            .where(col(Repository.private))
            .where(col(Repository.gone_at).is_(None))
            .limit(1)
        ).first()
        is not None
    )


def _learn_installations(
    session: Session, found: list[Found], *, github: GitHubApp, report: Report
) -> None:
    """Repositories search showed that no event told of (an ``installation_repositories``
    lost): GitHub is asked once which installation covers each (and, if one does, the
    repository's id and visibility), and the answer remembered, so their pull requests get
    their check at this sweep. One with no installation of this App (404) is remembered as
    not covered, and not asked about again."""
    names = {repo.lower(): repo for repo, _, _ in found}
    for name, display in sorted(names.items()):
        if session.get(Repository, name) is not None:
            continue
        session.commit()  # no transaction stays open while GitHub answers
        try:
            installation_id = github.installation_for(display)
            info = github.repository(installation_id=installation_id, repo=display)
        except GitHubNotFound:
            store.remember_installation(session, repo=name, display=display, installation_id=None)
            session.commit()
            continue
        except GitHubUnavailable as error:
            report.failures.append(f"{display}: {error}")
            continue
        store.remember_installation(
            session,
            repo=info.full_name,
            display=info.full_name,
            installation_id=installation_id,
            private=info.private,
            github_id=info.github_id,
        )
        session.commit()
        log.info("%s: installation %d learned from search", display, installation_id)


def _sync(
    session: Session,
    repo: str,
    number: int,
    installation_id: int,
    updated_at: datetime | None,
    *,
    settings: Settings,
    github: GitHubApp,
    now: datetime,
    report: Report,
) -> None:
    """Refresh one pull request and its reviews from GitHub; the pull itself only if it changed."""
    report.pulls += 1
    # A sweep takes a while: what it loaded earlier, and the moment it started, must not
    # decide now (a mentorship ended meanwhile would be undone).
    session.expire_all()
    now = _later(now)
    stored = store.find_pull(session, repo=repo, number=number)
    session.commit()  # no transaction stays open while GitHub answers
    try:
        unchanged = (
            stored is not None and updated_at is not None and stored.github_updated_at == updated_at
        )
        info = (
            None
            if unchanged
            else github.pull(installation_id=installation_id, repo=repo, number=number)
        )
        reviews = github.reviews(installation_id=installation_id, repo=repo, number=number)
    except GitHubNotFound:
        _gone(session, repo, now=now, report=report)
        return
    except GitHubUnavailable as error:
        report.failures.append(f"{repo}#{number}: {error}")
        return
    try:
        pull, left = (
            store.record_pull(session, info=info, now=now)
            if info is not None
            else (store.find_pull(session, repo=repo, number=number, lock=True), None)
        )
        if pull is not None:  # None: deleted from the database since it was read
            report.changed += decisions.apply_reviews(
                session, pull, reviews=reviews, settings=settings, now=now, moved_from=left
            )
        session.commit()
    except sa.exc.SQLAlchemyError as error:
        # A webhook changed the same rows at this moment; it decided from the newer state.
        session.rollback()
        report.failures.append(f"{repo}#{number}: database: {type(error).__name__}")


def _scan(
    session: Session,
    installation_id: int,
    *,
    settings: Settings,
    github: GitHubApp,
    now: datetime,
    report: Report,
) -> None:
    """The safety net: anyone's open pull request whose head has no check of ours gets one.

    The check is required in branch protection, so a lost ``opened`` webhook would otherwise
    leave someone's pull request unmergeable. It runs on its own, slower cadence, and asks
    with the ETags of last time, so an unchanged repository costs no rate limit at all.
    """
    cutoff = now - timedelta(seconds=settings.scan_interval)
    repositories = session.exec(
        select(Repository)
        .where(col(Repository.installation_id) == installation_id)
        .where(col(Repository.gone_at).is_(None))
        .where(sa.or_(col(Repository.scanned_at).is_(None), col(Repository.scanned_at) <= cutoff))
        .order_by(col(Repository.full_name))
    ).all()
    session.commit()  # no transaction stays open while GitHub answers
    for repository in repositories:
        name = repository.full_name
        try:
            changed, etags = github.open_pulls_if_changed(
                installation_id=installation_id, repo=name, etags=list(repository.pulls_etags)
            )
        except GitHubNotFound:
            _gone(session, name, now=now, report=report)
            continue
        except GitHubUnavailable as error:
            report.failures.append(f"{name}: {error}")
            continue
        report.scanned += 1
        try:
            checked = outbox.posted_shas(session, repo=name, name=settings.check_name)
            touched = outbox.NOTHING
            for info in changed:
                if info.head_sha in checked:
                    continue
                report.pulls += 1
                pull, left = store.record_pull(session, info=info, now=now)
                touched |= decisions.reevaluate(session, pull, settings=settings, now=now).touched
                touched |= {(pull.repo, left)} if left is not None else set()
            report.changed += outbox.commit_gates(session, touched, settings=settings, now=now)
            row = session.get(Repository, name, populate_existing=True)
            if row is not None:
                row.pulls_etags, row.scanned_at = etags, now
                session.add(row)
            session.commit()
        except sa.exc.SQLAlchemyError as error:
            session.rollback()
            report.failures.append(f"{name}: database: {type(error).__name__}")
        session.commit()


def _later(moment: datetime) -> datetime:
    """The sweep's moment, or now if the clock has moved past it (a test may sweep ahead)."""
    return max(moment, utcnow())


def _gone(session: Session, repo: str, *, now: datetime, report: Report) -> None:
    """GitHub no longer shows ``repo`` to the App: skip it until an event names it again."""
    row = session.get(Repository, repo)
    if row is None or row.gone_at is not None:
        return
    log.warning("%s answers 404: marked gone, skipped until an event names it again", repo)
    row.gone_at = now
    session.add(row)
    session.commit()
    report.gone.append(repo)


def _redeliver_failed(
    session: Session, *, github: GitHubApp, now: datetime, report: Report
) -> None:
    """Ask GitHub to send again what we answered with a 5xx (or never answered), once each."""
    last = session.get(SweepRun, "redeliver")
    since = max(
        now - REDELIVERY_WINDOW,
        (last.finished_at - timedelta(hours=1)) if last else now - REDELIVERY_WINDOW,
    )
    session.commit()  # no transaction stays open while GitHub answers
    try:
        failed = github.failed_deliveries(since=since)
    except GitHubUnavailable as error:
        report.failures.append(f"failed deliveries: {error}")
        return
    for delivery in failed:
        applied = session.get(Delivery, delivery.guid)
        if session.get(Redelivery, delivery.guid) is not None or (
            applied is not None and applied.outcome in KEPT
        ):
            continue
        session.commit()
        try:
            github.redeliver(delivery_id=delivery.id)
        except GitHubUnavailable as error:
            report.failures.append(f"redelivery of {delivery.guid}: {error}")
            continue
        db.insert_missing(  # two sweeps on SQLite (no lock there) may both get here
            session,
            Redelivery,
            {
                "guid": delivery.guid,
                "github_id": delivery.id,
                "event": delivery.event,
                "requested_at": now,
            },
            ["guid"],
        )
        session.commit()
        report.redelivered += 1
    _finished(session, "redeliver", now)


def _finished(session: Session, name: str, now: datetime) -> None:
    row = session.get(SweepRun, name) or SweepRun(name=name, finished_at=now)
    row.finished_at = now
    session.add(row)
    session.commit()


def _mark_swept(session: Session, mentorship: Mentorship, *, now: datetime) -> None:
    mentorship.swept_at = now
    session.add(mentorship)
    session.commit()


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


def _each_installation(session: Session, github: GitHubApp, report: Report) -> Iterator[int]:
    """Every known installation, and then those the round learns of as it goes (search
    found a repository of one that no event told of)."""
    visited: set[int] = set()
    while todo := [i for i in _installations(session, github, report) if i not in visited]:
        for installation_id in todo:
            visited.add(installation_id)
            yield installation_id


def _installations(session: Session, github: GitHubApp, report: Report) -> list[int]:
    """Installation ids known from events; asked of GitHub when none were seen yet."""
    known = session.exec(
        select(Repository.installation_id)
        .where(col(Repository.installation_id).is_not(None))
        .distinct()
    ).all()
    session.commit()  # no transaction stays open while GitHub answers
    if known:
        return sorted(i for i in known if i is not None)
    try:
        found = github.installations()
    except GitHubUnavailable as error:
        report.failures.append(f"installations: {error}")
        return []
    for installation_id, repos in found.items():
        for repo in repos:
            store.remember_installation(
                session, repo=repo, display=repo, installation_id=installation_id
            )
    session.commit()
    return sorted(found)
