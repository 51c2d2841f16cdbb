"""The ``gatekeeper`` command: run the service, manage mentorships, sweep."""

from __future__ import annotations

import functools
import json
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo

from gatekeeper import api, create_app, db, decisions, demo, outbox, protection
from gatekeeper import mentorships as lifecycle
from gatekeeper import sweep as sweeper
from gatekeeper import worker as workers
from gatekeeper.config import ConfigError
from gatekeeper.extensions import github_of, settings_of
from gatekeeper.github import GitHubUnavailable
from gatekeeper.models import utcnow

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(command: F) -> F:
    """Turn refusals into one line on stderr and exit status 1, with nothing committed."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (lifecycle.MentorshipError, ConfigError) as error:
            db.get_session().rollback()
            raise click.ClickException(str(error)) from None
        except sa.exc.IntegrityError:
            db.get_session().rollback()
            raise click.ClickException(
                "the change conflicts with one made at the same time; nothing was saved, try again"
            ) from None
        except sa.exc.DBAPIError as error:  # unreachable, unmigrated (missing table), ...
            reason = " ".join(str(error.orig).split())  # PostgreSQL's messages span lines
            raise click.ClickException(
                f"database error ({reason}); is it reachable and migrated (gatekeeper db upgrade)?"
            ) from None

    return wrapper  # type: ignore[return-value]


def parse_moment(text: str | None, *, name: str) -> datetime | None:
    """An ISO 8601 date or time; a bare date is midnight UTC and a time without offset is UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise lifecycle.MentorshipError(
            f"{name}: {text!r} is not a date (YYYY-MM-DD) or ISO 8601 time"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_day(text: str | None, *, name: str) -> date | None:
    """A calendar date YYYY-MM-DD."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise lifecycle.MentorshipError(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None


def commit() -> None:
    """Commit the command's one transaction."""
    db.get_session().commit()


no_wait_option = click.option(
    "--no-wait", is_flag=True, help="Leave posting the checks on GitHub to the workers."
)


def commit_with_gates(mentorship: Any, *, wait: bool) -> None:
    """Commit a lifecycle change with its effect on the gates, then post what it changed.

    The change, the mentee's re-decided gates and their commits' desired checks are one
    transaction; posting them is the worker's part, which this command does itself (unless
    ``--no-wait``), so it works with no server or worker running.
    """
    session, settings, now = db.get_session(), settings_of(current_app), utcnow()
    decisions.follow_lifecycle_change(session, mentorship, settings=settings, now=now)
    outbox.flush(session, settings=settings, now=now)
    commit()
    if wait:
        drain()


def drain() -> workers.Tally:
    """Post what waits in the outbox and run the queued jobs, then say what happened."""
    if github_of(current_app) is None:
        pending = outbox.pending_count(db.get_session())
        db.get_session().commit()
        if pending:
            click.echo(
                f"GitHub is not configured: {pending} check(s) will be posted once it is.",
                err=True,
            )
        return workers.Tally()
    tally = workers.Worker(current_app._get_current_object()).drain()  # type: ignore[attr-defined]
    for line in tally.posted:
        click.echo(f"  posted {line}")
    for failure in tally.failures:
        click.echo(f"not done yet, kept for the workers: {failure}", err=True)
    click.echo(f"Checks posted: {len(tally.posted)}.")
    return tally


@click.group(cls=AppGroup)
def cli() -> None:
    """Gatekeeper: mentor approval for a new core developer's first month of merges."""


def create_cli_app() -> Flask:
    """The app for a command; the embedded SQLite default is migrated so it just works."""
    app = create_app()
    settings = settings_of(app)
    if settings.uses_embedded_database:
        db.upgrade(settings.database_url)
    return app


def main() -> None:
    """Entry point of the ``gatekeeper`` console script."""
    # Each command builds the app from the environment when it first needs it.
    script_info = ScriptInfo(create_app=create_cli_app, set_debug_flag=False)
    try:
        cli.main(prog_name="gatekeeper", obj=script_info)
    except ConfigError as error:  # raised while building the app, before any command runs
        click.echo(f"Error: {error}", err=True)
        raise SystemExit(1) from None


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--no-worker",
    is_flag=True,
    help="Do not post checks from this process (workers run elsewhere).",
)
def serve(host: str, port: int, no_worker: bool) -> None:
    """Run the service locally, posting checks from a thread of its own (no second process)."""
    settings = settings_of(current_app)
    click.echo(
        f"Gatekeeper on http://{host}:{port}/ (database: {_safe_url(settings.database_url)})"
    )
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = None if no_worker else workers.start_background(app)
    try:
        app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)
    finally:
        if stop is not None:
            stop.set()


@cli.command()
@click.option("--once", is_flag=True, help="Do what is due now, then exit.")
@click.option(
    "--concurrency",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="Threads posting at once (writes stay paced per installation).",
)
@user_errors
def worker(once: bool, concurrency: int) -> None:
    """Post the outbox's checks and run the jobs that need GitHub (the Procfile's worker)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if github_of(app) is None:
        raise lifecycle.MentorshipError(
            "GitHub is not configured: set GITHUB_APP_ID and GITHUB_PRIVATE_KEY"
        )
    runner = workers.Worker(app, concurrency=concurrency)
    if once:
        tally = runner.drain()
        click.echo(
            f"Checks posted: {len(tally.posted)}; jobs done: {tally.jobs}; failures: {len(tally.failures)}."
        )
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"Worker running with {concurrency} threads; Ctrl-C or SIGTERM stops it.")
    try:
        runner.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()


@cli.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@user_errors
def db_upgrade(revision: str) -> None:
    """Apply migrations (the Procfile's release step)."""
    url = settings_of(current_app).database_url
    db.upgrade(url, revision)
    click.echo(f"Database at {_safe_url(url)} is at revision {revision}.")


@cli.command()
@click.argument("mentee")
@click.option("--mentor", "mentors", multiple=True, required=True, help="A mentor (repeatable).")
@click.option("--start", help="When the mentorship starts (ISO 8601; default now).")
@click.option("--days", type=click.IntRange(min=1), help="Length in days (default one month).")
@click.option("--until", help="End date or time (ISO 8601; a bare date ends at 00:00 UTC).")
@click.option("--repo", "repos", multiple=True, help="Limit the gate to OWNER/REPO (repeatable).")
@click.option("--approvals", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--keep-approvals-on-push", is_flag=True, help="Approvals survive new commits.")
@click.option(
    "--gate-approved-prs", is_flag=True, help="Also gate others' PRs the mentee approves."
)
@click.option("--vote-url", help="Link to the promotion vote.")
@click.option("--votes-for", type=click.IntRange(min=0))
@click.option("--votes-against", type=click.IntRange(min=0))
@click.option("--vote-opened", help="Date the vote opened (YYYY-MM-DD).")
@click.option("--vote-closed", help="Date the vote closed (YYYY-MM-DD).")
@click.option("--override-reason", help="Why to promote although the vote fails PEP 13.")
@click.option("--note", help="A free-text note kept with the mentorship.")
@click.option("--by", "actor", default="cli", show_default=True, help="Who is making the change.")
@no_wait_option
@user_errors
def promote(mentee: str, mentors: tuple[str, ...], **options: Any) -> None:
    """Start a mentorship for a newly promoted core developer."""
    now = utcnow()
    if options["days"] is not None and options["until"] is not None:
        raise lifecycle.MentorshipError("give --days or --until, not both")
    vote = lifecycle.make_vote(
        url=options["vote_url"],
        votes_for=options["votes_for"],
        votes_against=options["votes_against"],
        opened=parse_day(options["vote_opened"], name="--vote-opened"),
        closed=parse_day(options["vote_closed"], name="--vote-closed"),
    )
    mentorship = lifecycle.promote(
        db.get_session(),
        mentee=mentee,
        mentors=mentors,
        actor=options["actor"],
        now=now,
        start=parse_moment(options["start"], name="--start"),
        days=options["days"],
        until=parse_moment(options["until"], name="--until"),
        repositories=options["repos"],
        approvals_required=options["approvals"],
        dismiss_stale_approvals=not options["keep_approvals_on_push"],
        gate_approved_prs=options["gate_approved_prs"],
        vote=vote,
        override_reason=options["override_reason"],
        note=options["note"],
    )
    commit_with_gates(mentorship, wait=not options["no_wait"])
    state = lifecycle.state_of(mentorship, now)
    names = [
        a.mentor_display for a in lifecycle.mentors_of(db.get_session(), mentorship=mentorship)
    ]
    click.echo(
        f"{mentorship.mentee_display}: {state} mentorship with {', '.join(names)}"
        f" until {mentorship.ends_at:%Y-%m-%d %H:%M} UTC."
    )


@cli.command()
@click.argument("mentee")
@click.option("--reason", type=click.Choice(["graduated", "revoked"]), required=True)
@click.option("--note", help="Why, in a sentence.")
@click.option("--by", "actor", default="cli", show_default=True, help="Who is making the change.")
@no_wait_option
@user_errors
def end(mentee: str, reason: str, note: str | None, actor: str, no_wait: bool) -> None:
    """End a mentorship early: the mentee graduated, or it was revoked."""
    mentorship = lifecycle.end(
        db.get_session(), mentee=mentee, reason=reason, note=note, actor=actor, now=utcnow()
    )
    click.echo(f"{mentorship.mentee_display}: mentorship ended ({reason}).")
    commit_with_gates(mentorship, wait=not no_wait)


@cli.command()
@click.argument("mentee")
@click.option("--days", type=click.IntRange(min=1), help="Add this many days.")
@click.option("--until", help="New end date or time (ISO 8601).")
@click.option("--by", "actor", default="cli", show_default=True, help="Who is making the change.")
@no_wait_option
@user_errors
def extend(mentee: str, days: int | None, until: str | None, actor: str, no_wait: bool) -> None:
    """Move the end of a mentorship later."""
    mentorship = lifecycle.extend(
        db.get_session(),
        mentee=mentee,
        days=days,
        until=parse_moment(until, name="--until"),
        actor=actor,
        now=utcnow(),
    )
    commit_with_gates(mentorship, wait=not no_wait)
    click.echo(f"{mentorship.mentee_display}: now until {mentorship.ends_at:%Y-%m-%d %H:%M} UTC.")


@cli.command()
@click.argument("mentee")
@click.option("--add", "to_add", help="Assign this mentor.")
@click.option("--remove", "to_remove", help="Take this mentor off.")
@click.option("--by", "actor", default="cli", show_default=True, help="Who is making the change.")
@no_wait_option
@user_errors
def mentors(
    mentee: str, to_add: str | None, to_remove: str | None, actor: str, no_wait: bool
) -> None:
    """Add or remove one mentor."""
    if (to_add is None) == (to_remove is None):
        raise lifecycle.MentorshipError("give exactly one of --add or --remove")
    session, now = db.get_session(), utcnow()
    if to_add is not None:
        mentorship = lifecycle.add_mentor(
            session, mentee=mentee, mentor=to_add, actor=actor, now=now
        )
    else:
        assert to_remove is not None
        mentorship = lifecycle.remove_mentor(
            session, mentee=mentee, mentor=to_remove, actor=actor, now=now
        )
    commit_with_gates(mentorship, wait=not no_wait)
    names = [a.mentor_display for a in lifecycle.mentors_of(session, mentorship=mentorship)]
    click.echo(f"{mentorship.mentee_display}: mentors are now {', '.join(names)}.")


@cli.command("list")
@click.option("--all", "include_ended", is_flag=True, help="Include ended mentorships.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@user_errors
def list_command(include_ended: bool, as_json: bool) -> None:
    """List mentorships: open ones, or all."""
    found = api.list_documents(db.get_session(), include_ended=include_ended, now=utcnow())
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("No mentorships yet. Start one with: gatekeeper promote MENTEE --mentor LOGIN")
        return
    for document in found:
        click.echo(_summary_line(document))


@cli.command()
@click.argument("mentee")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@user_errors
def status(mentee: str, as_json: bool) -> None:
    """Show one mentee's mentorship."""
    document = api.status_document(db.get_session(), mentee=mentee, now=utcnow())
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(_summary_line(document))
    if document["promotion"]:
        promotion = document["promotion"]
        if promotion["votes_for"] is None:
            vote = "no vote recorded"
        else:
            vote = f"{promotion['votes_for']} for, {promotion['votes_against']} against"
        if promotion["pep13_passed"]:
            vote += "; passes PEP 13"
        elif promotion["pep13_problems"]:
            vote += f"; fails PEP 13 ({'; '.join(promotion['pep13_problems'])})"
        if promotion["override_reason"]:
            vote += f"; promoted anyway: {promotion['override_reason']}"
        click.echo(f"  vote: {vote}")
    for pull in document["pull_requests"]:
        approvers = f" by {', '.join(pull['approved_by'])}" if pull["approved_by"] else ""
        click.echo(f"  {pull['repo']}#{pull['number']} {pull['gate']}{approvers}: {pull['title']}")


@cli.command()
@click.option("--loop", "interval", type=click.IntRange(min=1), help="Repeat every N seconds.")
@no_wait_option
@user_errors
def sweep(interval: int | None, no_wait: bool) -> None:
    """End expired mentorships, reconcile gated pull requests with GitHub, scan, redeliver.

    A single sweep exits 1 when something is left for the next one; with --loop it goes on.
    """
    settings, github = settings_of(current_app), github_of(current_app)
    if github is None:
        click.echo(
            "GitHub is not configured: only expiring mentorships and stored gates.", err=True
        )
    while True:
        try:
            report = sweeper.sweep(
                db.get_session(), settings=settings, github=github, now=utcnow(), progress=_progress
            )
            tally = workers.Tally() if no_wait else drain()
        except sa.exc.SQLAlchemyError as error:
            if interval is None:
                raise
            # The clock process must outlive a database hiccup; the next round starts afresh.
            db.get_session().rollback()
            click.echo(f"sweep failed, retrying in {interval}s: {type(error).__name__}", err=True)
            db.close_session()
            time.sleep(interval)
            continue
        for failure in report.failures:
            click.echo(f"not done, will retry: {failure}", err=True)
        for repo in report.gone:
            click.echo(f"{repo}: GitHub answers 404; marked gone and skipped from now on.")
        if report.skipped:
            click.echo(
                f"Installations another sweep is doing: {', '.join(map(str, report.skipped))}."
            )
        click.echo(
            f"Sweep done: {len(report.expired)} expired, {report.mentees} mentees and"
            f" {report.pulls} pull requests reconciled, {report.scanned} repositories scanned,"
            f" {report.changed} checks to update, {report.redelivered} deliveries redelivered,"
            f" {len(report.failures)} failures."
        )
        if interval is None:
            if report.failures or tally.failures:
                raise SystemExit(1)  # a signal for whoever runs a single sweep from cron
            return
        db.close_session()
        time.sleep(interval)


@cli.command()
@click.argument("repository")
@click.option("--branch", help="Branch to protect (default: the repository's default branch).")
@click.option("--dry-run", is_flag=True, help="Print the change without making it.")
@user_errors
def protect(repository: str, branch: str | None, dry_run: bool) -> None:
    """Require the mentor-approval check on a branch, accepted only from this App."""
    settings, github = settings_of(current_app), github_of(current_app)
    if github is None:
        raise lifecycle.MentorshipError(
            "GitHub is not configured: set GITHUB_APP_ID and GITHUB_PRIVATE_KEY"
        )
    repo = lifecycle.canonical_repo(repository)
    try:
        change = protection.require_check(
            github, repo=repo, branch=branch, check_name=settings.check_name, dry_run=dry_run
        )
    except GitHubUnavailable as error:
        raise lifecycle.MentorshipError(f"{repo}: {error}") from None
    click.echo(change.describe(dry_run=dry_run))


cli.add_command(demo.demo_command)


def _progress(line: str) -> None:
    click.echo(f"  {line}")


def _summary_line(document: dict[str, Any]) -> str:
    mentors = ", ".join(document["mentors"]) or "no mentors"
    if document["state"] == "ended":
        when = f"ended {document['ended_at'][:10]} ({document['end_reason']})"
    elif document["state"] == "scheduled":
        when = f"scheduled, starts {document['started_at'][:10]}, ends {document['ends_at'][:10]}"
    else:
        when = f"active, ends {document['ends_at'][:10]}, {document['days_left']} days left"
    waiting = sum(1 for pull in document["pull_requests"] if pull["gate"] == "waiting")
    return f"{document['mentee']}: {when}; mentors {mentors}; {waiting} PRs waiting"


def _safe_url(url: str) -> str:
    """The database URL without its password, for printing."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)
