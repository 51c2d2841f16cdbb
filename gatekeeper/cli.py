"""The ``gatekeeper`` command: run the service, manage mentorships, sweep.

Start-up is kept short: this module imports only click and the standard library at the
top. Flask, SQLAlchemy and PyGithub are imported inside the commands that use them, and a
command living in a heavy module is named in ``LAZY_COMMANDS`` and imported only when it
runs, so ``gatekeeper --help`` loads none of them (``benchmarks/startup.py`` measures it).
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import importlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from gatekeeper.config import ConfigError
from gatekeeper.words import plural

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from gatekeeper import worker as workers
    from gatekeeper.models import Mentorship
    from gatekeeper.readings import Reader

F = TypeVar("F", bound=Callable[..., Any])

ACTOR_VARIABLE = "GATEKEEPER_ACTOR"
GITHUB_SETTINGS = "set GITHUB_APP_ID and GITHUB_PRIVATE_KEY"


def user_errors(command: F) -> F:
    """Turn refusals into one line on stderr and exit status 1, with nothing committed."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import sqlalchemy as sa

        from gatekeeper import db
        from gatekeeper import mentorships as lifecycle

        try:
            return command(*args, **kwargs)
        except db.Busy as error:
            raise click.ClickException(str(error)) from None
        except (lifecycle.MentorshipError, ConfigError) as error:
            db.get_session().rollback()
            raise click.ClickException(str(error)) from None
        except sa.exc.IntegrityError:
            db.get_session().rollback()
            raise click.ClickException(
                "the change conflicts with one made at the same time; nothing was saved, try again"
            ) from None
        except sa.exc.DBAPIError as error:  # unreachable, unmigrated (missing table), ...
            raise database_error(str(error.orig)) from None

    return wrapper  # type: ignore[return-value]


def database_error(reason: str) -> click.ClickException:
    """A database's failure in one line, saying what to check."""
    reason = " ".join(reason.split())  # PostgreSQL's messages span lines
    return click.ClickException(
        f"database error ({reason}); is it reachable and migrated (gatekeeper db upgrade)?"
    )


@contextlib.contextmanager
def reading() -> Iterator[Reader]:
    """A reader for a command that only reads (``status``, ``list``); refusals and database
    errors become one line on stderr and exit status 1.

    It needs no app, no ORM and no SQLAlchemy: the URL comes from the settings alone and the
    reads are plain SQL through the database's driver (``readings.py``), so these commands
    start without importing Flask, SQLAlchemy or the models (nor Alembic, once a SQLite
    database is set up). When a caller already built the app (Flask's test runner), a
    connection of its engine is used.
    """
    from gatekeeper import readings
    from gatekeeper.standing import MentorshipError

    try:
        engine = app_engine()
        opened = (
            readings.connect(reading_url()) if engine is None else readings.engine_reader(engine)
        )
        with opened as reader:
            yield reader
    except (MentorshipError, ConfigError) as error:
        raise click.ClickException(str(error)) from None
    except readings.ReadError as error:
        raise database_error(str(error)) from None


def app_engine() -> Engine | None:
    """The engine of the app a caller built: the current app, or the one Flask's test runner
    hands over in a ``ScriptInfo``. Neither exists unless Flask was imported, so a plain
    ``gatekeeper status`` does not import it to find out."""
    if "flask" not in sys.modules:
        return None
    from flask import current_app
    from flask.cli import ScriptInfo

    if current_app:
        return current_app.extensions["gatekeeper.engine"]
    info = click.get_current_context().find_object(ScriptInfo)
    return info.load_app().extensions["gatekeeper.engine"] if info is not None else None


def reading_url() -> str:
    """The database URL the environment names, for reading. The embedded SQLite default is
    made and migrated first if it is behind, and a SQLite file DATABASE_URL names is set up
    the first time, as the app's commands do (that alone loads ``db``, and Alembic)."""
    from gatekeeper.config import Settings, instance_path

    settings = Settings.from_env(instance_path=instance_path())
    url, embedded = settings.database_url, settings.uses_embedded_database
    if sqlite_to_set_up(url, embedded=embedded):
        from gatekeeper import db

        engine = db.engine_for(url)
        try:
            set_up_sqlite(url, engine, embedded=embedded)
        finally:
            engine.dispose()
    return url


def sqlite_to_set_up(url: str, *, embedded: bool) -> bool:
    """Whether a SQLite file must be set up before it is read: missing, holding no table, or
    (the embedded default) behind the newest migration. Asked with ``sqlite3`` alone; the
    answer for PostgreSQL is no (``gatekeeper db upgrade`` migrates it, a release step)."""
    from gatekeeper import readings
    from gatekeeper.revisions import head_revisions

    path = url.removeprefix("sqlite:///")
    if path == url or path in ("", ":memory:"):
        return False
    if not os.path.exists(path):
        return True
    with readings.connect(url) as reader:
        if embedded:
            return readings.revisions(reader) != head_revisions()
        return not reader.rows("sqlite_master", {"name": str}, "WHERE type = 'table'")


def set_up_sqlite(url: str, engine: Engine, *, embedded: bool) -> None:
    """Set up a SQLite database on first use, as ``serve`` does: the embedded default is
    migrated whenever it is behind, a file DATABASE_URL names when it holds no table yet
    (one it does not find is created). Anything else, PostgreSQL above all, is migrated by
    ``gatekeeper db upgrade`` alone: a release step, which the error then names."""
    from gatekeeper import db

    if embedded:
        db.upgrade_if_behind(url, engine)
    elif is_new_sqlite(url, engine):
        db.upgrade(url)


def is_new_sqlite(url: str, engine: Engine) -> bool:
    """Whether ``url`` is a SQLite file that does not exist yet or holds no table."""
    import sqlalchemy as sa

    if not url.startswith("sqlite:///") or url.removeprefix("sqlite:///") in ("", ":memory:"):
        return False
    if not os.path.exists(url.removeprefix("sqlite:///")):
        return True
    with engine.connect() as connection:
        tables = connection.execute(
            sa.text("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
        )
        return tables.scalar_one() == 0


def parse_moment(text: str | None, *, name: str) -> datetime | None:
    """An ISO 8601 date or time; a bare date is midnight UTC and a time without offset is UTC."""
    from gatekeeper.mentorships import MentorshipError

    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise MentorshipError(
            f"{name}: {text!r} is not a date (YYYY-MM-DD) or ISO 8601 time"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_day(text: str | None, *, name: str) -> date | None:
    """A calendar date YYYY-MM-DD."""
    from gatekeeper.mentorships import MentorshipError

    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise MentorshipError(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None


def split_logins(given: tuple[str, ...]) -> tuple[str, ...]:
    """Repeated options and comma-separated lists alike: ``--mentor a,b --mentor c``."""
    return tuple(login.strip() for value in given for login in value.split(",") if login.strip())


def refuse(message: str) -> NoReturn:
    """Refuse the command: one ``Error:`` line, exit status 1 (``user_errors`` rolls back)."""
    from gatekeeper.mentorships import MentorshipError

    raise MentorshipError(message)


no_wait_option = click.option(
    "--no-wait", is_flag=True, help="Leave posting the checks on GitHub to the workers."
)


def commit_with_gates(change: Callable[[Session], Mentorship]) -> Mentorship:
    """Commit a lifecycle change with its effect on the gates; ``post`` them next.

    The change, the mentee's re-decided gates and their commits' desired checks are one
    unit of work (``db.writing``: run again from the start if the database was busy).
    """
    from gatekeeper import db

    return db.writing(db.get_session(), lambda session: gates_follow(session, change(session)))


def gates_follow(session: Session, mentorship: Mentorship) -> Mentorship:
    """The mentee's gates and their commits' desired checks follow a lifecycle change."""
    from flask import current_app

    from gatekeeper import decisions, outbox, settings_of
    from gatekeeper.models import utcnow

    settings, now = settings_of(current_app), utcnow()
    touched = decisions.follow_lifecycle_change(session, mentorship, settings=settings, now=now)
    outbox.commit_gates(session, touched, settings=settings, now=now)
    return mentorship


def post(*, wait: bool) -> None:
    """Post what a change stored: the worker's part, which a command does itself (unless
    ``--no-wait``), so it works with no server or worker running."""
    if wait:
        drain()


def drain(*, quiet: bool = False) -> workers.Tally:
    """Post what waits in the outbox and run the queued jobs, then say what happened
    (``quiet``: say nothing, the caller reports the tally)."""
    from flask import current_app

    from gatekeeper import db, github_of, outbox
    from gatekeeper import worker as workers

    if github_of(current_app) is None:
        pending = outbox.pending_count(db.get_session())
        db.get_session().commit()
        if pending and not quiet:
            click.echo(
                not_configured(f"{plural(pending, 'check')} {waits(pending)} to be posted"),
                err=True,
            )
        return workers.Tally()
    tally = workers.Worker(current_app._get_current_object()).drain()  # type: ignore[attr-defined]
    if quiet:
        return tally
    for line in tally.posted:
        click.echo(f"  posted {line}")
    for failure in tally.failures:
        click.echo(f"not done yet, kept for the workers: {failure}", err=True)
    if tally.failures:
        click.echo(
            f"Checks posted: {len(tally.posted)}; {len(tally.failures)} not yet, retried by"
            " `gatekeeper worker` or the next sweep."
        )
    else:
        click.echo(f"Checks posted: {len(tally.posted)}.")
    return tally


def not_configured(waiting: str) -> str:
    """What a command without GitHub did not do, and who does it later."""
    return (
        f"GitHub is not configured ({GITHUB_SETTINGS}): nothing was read from or posted to"
        f" GitHub; {waiting}, and a worker posts them once GitHub is configured."
    )


def default_actor() -> str:
    """Who runs the command, for the audit log: $GATEKEEPER_ACTOR, else the OS user name."""
    named = os.environ.get(ACTOR_VARIABLE, "").strip()
    if named:
        return named
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no passwd entry and no $USER
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown-user"


class ActorOption(click.Option):
    """``--by``: its default is worked out when the command runs, and help shows that name."""

    def get_help_extra(self, ctx: click.Context) -> Any:
        extra = super().get_help_extra(ctx)
        extra["default"] = default_actor()
        return extra


def _checked_actor(ctx: click.Context, param: click.Parameter, value: str) -> str:
    actor = " ".join(value.split())
    if not actor or len(actor) > 64:  # the audit log's column holds 64 characters
        raise click.ClickException(
            f"--by (or ${ACTOR_VARIABLE}) must name who makes the change in 1 to 64 characters"
        )
    return actor


by_option = click.option(
    "--by",
    "actor",
    cls=ActorOption,
    default=default_actor,
    callback=_checked_actor,
    metavar="NAME",
    help=f"Who makes the change, as the audit log records it (${ACTOR_VARIABLE}, else your OS user name).",
)


def in_app_context(command: F) -> F:
    """Run ``command`` inside the app's context, building the app first (Flask's
    ``with_appcontext``, with Flask imported only once a command runs)."""

    @click.pass_context
    def wrapper(ctx: click.Context, /, *args: Any, **kwargs: Any) -> Any:
        from flask import current_app
        from flask.cli import ScriptInfo

        if not current_app:
            # main() and Flask's test runner pass a ScriptInfo; a bare invocation gets ours.
            info = ctx.find_object(ScriptInfo) or ScriptInfo(
                create_app=create_cli_app, set_debug_flag=False
            )
            ctx.with_resource(info.load_app().app_context())
        return ctx.invoke(command, *args, **kwargs)

    return functools.update_wrapper(wrapper, command)  # type: ignore[return-value]


class Misuse(click.UsageError):
    """A usage error said as every refusal is: one ``Error:`` line on stderr and exit status
    1, as the README promises (click's own prints its usage block and exits 2)."""

    exit_code = 1

    def __init__(self, error: click.UsageError) -> None:
        super().__init__(" ".join(error.format_message().split()), error.ctx)

    def format_message(self) -> str:
        if self.ctx is None:
            return self.message
        # Named as the console script is, whatever name the group was invoked under.
        path = " ".join(["gatekeeper", *self.ctx.command_path.split()[1:]])
        return f"{self.message.rstrip('.')}; see {path} -h"

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", file=file, err=True)


@contextlib.contextmanager
def usage_in_one_line() -> Iterator[None]:
    """Turn click's usage errors into Misuse; a bare ``gatekeeper`` still shows its help."""
    try:
        yield
    except (Misuse, click.exceptions.NoArgsIsHelpError):
        raise
    except click.UsageError as error:
        raise Misuse(error) from None


class Gatekeeper(click.Group):
    """The command group: its commands run in the app's context (as under Flask's
    ``AppGroup``; ``with_appcontext=False`` opts out), and those in ``lazy`` are imported
    only when named, their summary listed without importing them."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})  # name -> ("module:attribute", summary)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        wrap = kwargs.pop("with_appcontext", True)

        def decorator(function: Callable[..., Any]) -> click.Command:
            return super(Gatekeeper, self).command(*args, **kwargs)(
                in_app_context(function) if wrap else function
            )

        return decorator

    def group(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Gatekeeper)
        return super().group(*args, **kwargs)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with usage_in_one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with usage_in_one_line():  # the subcommand's parsing, and its body's UsageError
            return super().invoke(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy and name not in self.commands:
            where, summary = self.lazy[name]
            module, _, attribute = where.partition(":")
            command = getattr(importlib.import_module(module), attribute)
            command.short_help = command.short_help or summary  # listed the same, loaded or not
            self.add_command(command, name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy and name not in self.commands:
                rows.append((name, self.lazy[name][1]))  # listed without importing it
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def examples(*lines: str) -> str:
    """A help epilog listing example command lines, kept as written (click's ``\\b``)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


# Commands defined in modules too heavy to import for --help: name -> (where, summary).
LAZY_COMMANDS = {
    "demo": ("gatekeeper.demo:demo_command", "Serve the dashboard on a sample month."),
    "register": (
        "gatekeeper.register:register_command",
        "Create the GitHub App from a manifest.",
    ),
}


@click.group(
    cls=Gatekeeper,
    lazy=LAZY_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every command
    epilog=examples(
        "gatekeeper promote mpage --mentor colesbury",
        "gatekeeper status mpage",
        "gatekeeper sweep",
        "gatekeeper COMMAND -h",
    ),
)
@click.version_option(
    package_name="gatekeeper", prog_name="gatekeeper", message="%(prog)s %(version)s"
)
def cli() -> None:
    """Gatekeeper: mentor approval for a new core developer's first month of merges."""


def create_cli_app() -> Flask:
    """The app for a command; a new SQLite database is set up so it just works."""
    from gatekeeper import create_app, logs, settings_of

    app = create_app()
    settings = settings_of(app)
    # A one-off command's own output says what it did: its log lines are only warnings,
    # unless GATEKEEPER_LOG_LEVEL asks (serve and worker log at that level regardless).
    if not os.environ.get("GATEKEEPER_LOG_LEVEL"):
        logs.configure(settings, level="WARNING")
    set_up_sqlite(
        settings.database_url,
        app.extensions["gatekeeper.engine"],
        embedded=settings.uses_embedded_database,
    )
    return app


def main() -> None:
    """Entry point of the ``gatekeeper`` console script."""
    # Each command builds the app from the environment when it first needs it
    # (in_app_context), so help, --version and completion never import Flask.
    try:
        cli.main(prog_name="gatekeeper")
    except ConfigError as error:  # raised while building the app, before any command runs
        click.echo(f"Error: {error}", err=True)
        raise SystemExit(1) from None


@cli.command(
    short_help="Run the service locally.",
    epilog=examples("gatekeeper serve", "gatekeeper serve --port 8000 --no-worker"),
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--no-worker",
    is_flag=True,
    help="Do not apply deliveries nor post checks from this process (workers run elsewhere).",
)
def serve(host: str, port: int, no_worker: bool) -> None:
    """Run the service locally, with its worker in a thread of its own (no second process)."""
    from flask import current_app

    from gatekeeper import logs, settings_of
    from gatekeeper import worker as workers

    settings = settings_of(current_app)
    logs.configure(settings)  # a service's lines, at GATEKEEPER_LOG_LEVEL
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


@cli.command(
    short_help="Apply deliveries, post checks, run jobs.",
    epilog=examples(
        "gatekeeper worker", "gatekeeper worker --once", "gatekeeper worker --concurrency 8"
    ),
)
@click.option("--once", is_flag=True, help="Do what is due now, then exit.")
@click.option(
    "--concurrency",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="Threads posting at once (writes stay paced per installation).",
)
@click.option(
    "--nice",
    default=10,
    show_default=True,
    type=click.IntRange(0, 19),
    help="Lower this process's CPU priority by this much: on a host it shares with the web"
    " process, GitHub's deliveries are answered first.",
)
@user_errors
def worker(once: bool, concurrency: int, nice: int) -> None:
    """Apply the stored deliveries, post the outbox's checks and run the jobs that need GitHub
    (the Procfile's worker)."""
    from flask import current_app

    from gatekeeper import github_of
    from gatekeeper import worker as workers

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if github_of(app) is None:
        refuse(f"GitHub is not configured: {GITHUB_SETTINGS}")
    runner = workers.Worker(app, concurrency=concurrency)
    if once:
        tally = runner.drain()
        click.echo(
            f"Deliveries applied: {len(tally.applied)}; checks posted: {len(tally.posted)};"
            f" jobs done: {tally.jobs}; failures: {len(tally.failures)}."
        )
        return
    from gatekeeper import logs, settings_of

    logs.configure(settings_of(app))  # a service's lines, at GATEKEEPER_LOG_LEVEL
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Applying a burst of deliveries takes all the CPU it can get; an answer to GitHub is
    # what must not wait (and what stays to do is only later, never lost).
    os.nice(nice)
    click.echo(f"Worker running with {concurrency} threads; Ctrl-C or SIGTERM stops it.")
    try:
        runner.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()


@cli.group("db", epilog=examples("gatekeeper db upgrade"))
def db_group() -> None:
    """Database schema commands."""


@db_group.command(
    "upgrade",
    short_help="Apply migrations (the release step).",
    epilog=examples("gatekeeper db upgrade", "gatekeeper db upgrade --revision 0005"),
)
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
@user_errors
def db_upgrade(revision: str) -> None:
    """Apply migrations (the Procfile's release step)."""
    from flask import current_app

    from gatekeeper import db, settings_of

    url = settings_of(current_app).database_url
    db.upgrade(url, revision)
    click.echo(f"Database at {_safe_url(url)} is at revision {revision}.")


@cli.command(
    short_help="Start a new core developer's mentorship.",
    epilog=examples(
        "gatekeeper promote mpage --mentor colesbury",
        "gatekeeper promote mpage --mentor colesbury --mentor vstinner --approvals 2",
        "gatekeeper promote mpage --mentor colesbury --repo python/cpython --days 45",
        "gatekeeper promote mpage --mentor colesbury --votes-for 30 --votes-against 2 \\",
        "    --vote-opened 2024-11-01 --vote-closed 2024-11-08",
        "gatekeeper promote mpage --mentor colesbury \\",
        "    --vote-url https://discuss.python.org/t/promote-matt-page/12345",
    ),
)
@click.argument("mentee")
@click.option(
    "--mentor",
    "mentors",
    multiple=True,
    required=True,
    callback=lambda ctx, param, value: split_logins(value),
    metavar="LOGIN[,LOGIN...]",
    help="A mentor's GitHub login (repeat, or give a comma-separated list, as the web form takes).",
)
@click.option("--start", help="When the mentorship starts (ISO 8601; default now).")
@click.option("--days", type=click.IntRange(min=1), help="Length in days (default one month).")
@click.option("--until", help="End date or time (ISO 8601; a bare date ends at 00:00 UTC).")
@click.option("--repo", "repos", multiple=True, help="Limit the gate to OWNER/REPO (repeatable).")
@click.option(
    "--approvals",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many different mentors must approve each pull request.",
)
@click.option("--keep-approvals-on-push", is_flag=True, help="Approvals survive new commits.")
@click.option(
    "--every-push",
    is_flag=True,
    help="Even a push with the same content needs a new approval.",
)
@click.option(
    "--gate-approved-prs", is_flag=True, help="Also gate others' PRs the mentee approves."
)
@click.option(
    "--no-bypass-alerts", is_flag=True, help="No comment on a PR merged without approval."
)
@click.option(
    "--vote-url",
    help="The vote's forum topic or post (https://HOST/t/SLUG/ID[/POST]): its poll gives"
    " the counts and dates not given below (DISCOURSE_API_KEY for a private category).",
)
@click.option(
    "--votes-for",
    type=click.IntRange(min=0),
    help="Votes for the promotion; with the other --vote options, checked against PEP 13.",
)
@click.option("--votes-against", type=click.IntRange(min=0), help="Votes against the promotion.")
@click.option("--vote-opened", help="Date the vote opened (YYYY-MM-DD).")
@click.option("--vote-closed", help="Date the vote closed (YYYY-MM-DD).")
@click.option("--vote-poll", help="Which poll of the post, by name, when it holds several.")
@click.option(
    "--vote-for-option", help='The poll option meaning "for" (default: the one starting "Promote").'
)
@click.option(
    "--vote-against-option",
    help='The poll option meaning "against" (default: the one starting "Do not promote").',
)
@click.option("--override-reason", help="Why to promote although the vote fails PEP 13.")
@click.option("--note", help="A free-text note kept with the mentorship.")
@by_option
@no_wait_option
@user_errors
def promote(mentee: str, mentors: tuple[str, ...], **options: Any) -> None:
    """Start a mentorship for a newly promoted core developer.

    MENTEE is the new core developer's GitHub login. Their pull requests then need a
    mentor's approval to merge until the mentorship ends (one month unless told otherwise).
    """
    from gatekeeper import db
    from gatekeeper import mentorships as lifecycle
    from gatekeeper.models import utcnow

    now = utcnow()
    if options["days"] is not None and options["until"] is not None:
        refuse("give --days or --until, not both")
    from flask import current_app

    from gatekeeper import discourse, settings_of

    vote, fetched = discourse.promotion_vote(
        url=options["vote_url"],
        votes_for=options["votes_for"],
        votes_against=options["votes_against"],
        opened=parse_day(options["vote_opened"], name="--vote-opened"),
        closed=parse_day(options["vote_closed"], name="--vote-closed"),
        settings=settings_of(current_app),
        now=now,
        poll_name=options["vote_poll"],
        for_option=options["vote_for_option"],
        against_option=options["vote_against_option"],
    )
    mentorship = commit_with_gates(
        lambda session: lifecycle.promote(
            session,
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
            same_content_approvals=not options["every_push"],
            gate_approved_prs=options["gate_approved_prs"],
            bypass_alerts=not options["no_bypass_alerts"],
            vote=vote,
            override_reason=options["override_reason"],
            note=options["note"],
        )
    )
    if fetched is not None and vote is not None:  # said once the promotion is accepted
        click.echo(f"From the forum: {fetched.summary()}.")
        for line in vote.overrides:
            click.echo(f"  {line}")
    post(wait=not options["no_wait"])
    state = lifecycle.state_of(mentorship, now)
    names = [
        a.mentor_display for a in lifecycle.mentors_of(db.get_session(), mentorship=mentorship)
    ]
    click.echo(
        f"{mentorship.mentee_display}: {state} mentorship with {', '.join(names)}"
        f" until {mentorship.ends_at:%Y-%m-%d %H:%M} UTC."
    )
    warn_few_mentors(len(names))


def warn_few_mentors(count: int) -> None:
    """Say on stderr (the command still succeeds) when fewer than two mentors are left."""
    from gatekeeper import mentorships as lifecycle

    warning = lifecycle.few_mentors_warning(count)
    if warning is not None:
        click.echo(f"warning: {warning}", err=True)


@cli.command(
    short_help="End a mentorship early.",
    epilog=examples(
        "gatekeeper end mpage --reason graduated",
        'gatekeeper end mpage --reason revoked --note "asked to step back"',
    ),
)
@click.argument("mentee")
@click.option(
    "--reason",
    type=click.Choice(["graduated", "revoked"]),
    required=True,
    help="graduated: done early, as hoped; revoked: the mentorship is withdrawn.",
)
@click.option("--note", help="Why, in a sentence.")
@by_option
@no_wait_option
@user_errors
def end(mentee: str, reason: str, note: str | None, actor: str, no_wait: bool) -> None:
    """End a mentorship early: the mentee graduated, or it was revoked.

    MENTEE's open pull requests no longer wait for a mentor.
    """
    from gatekeeper import mentorships as lifecycle
    from gatekeeper.models import utcnow

    mentorship = commit_with_gates(
        lambda session: lifecycle.end(
            session, mentee=mentee, reason=reason, note=note, actor=actor, now=utcnow()
        )
    )
    click.echo(f"{mentorship.mentee_display}: mentorship ended ({reason}).")
    post(wait=not no_wait)


@cli.command(
    epilog=examples(
        "gatekeeper extend mpage --days 14", "gatekeeper extend mpage --until 2025-03-01"
    )
)
@click.argument("mentee")
@click.option("--days", type=click.IntRange(min=1), help="Add this many days to the current end.")
@click.option("--until", help="New end date or time (ISO 8601).")
@by_option
@no_wait_option
@user_errors
def extend(mentee: str, days: int | None, until: str | None, actor: str, no_wait: bool) -> None:
    """Move the end of a mentorship later.

    MENTEE's mentorship is extended by --days or to --until (give one, not both).
    """
    from gatekeeper import mentorships as lifecycle
    from gatekeeper.models import utcnow

    if days is not None and until is not None:
        refuse("give --days or --until, not both")
    ends = parse_moment(until, name="--until")
    mentorship = commit_with_gates(
        lambda session: lifecycle.extend(
            session, mentee=mentee, days=days, until=ends, actor=actor, now=utcnow()
        )
    )
    post(wait=not no_wait)
    click.echo(f"{mentorship.mentee_display}: now until {mentorship.ends_at:%Y-%m-%d %H:%M} UTC.")


@cli.command(
    epilog=examples(
        "gatekeeper mentors mpage --add vstinner", "gatekeeper mentors mpage --remove colesbury"
    )
)
@click.argument("mentee")
@click.option("--add", "to_add", metavar="LOGIN", help="Assign this mentor.")
@click.option("--remove", "to_remove", metavar="LOGIN", help="Take this mentor off.")
@by_option
@no_wait_option
@user_errors
def mentors(
    mentee: str, to_add: str | None, to_remove: str | None, actor: str, no_wait: bool
) -> None:
    """Add or remove one mentor.

    MENTEE's mentorship gains or loses one mentor; give exactly one of --add or --remove.
    """
    from gatekeeper import db
    from gatekeeper import mentorships as lifecycle
    from gatekeeper.models import utcnow

    if (to_add is None) == (to_remove is None):
        refuse("give exactly one of --add or --remove")
    now = utcnow()

    def change(session: Session) -> Mentorship:
        if to_add is not None:
            return lifecycle.add_mentor(session, mentee=mentee, mentor=to_add, actor=actor, now=now)
        assert to_remove is not None
        return lifecycle.remove_mentor(
            session, mentee=mentee, mentor=to_remove, actor=actor, now=now
        )

    mentorship = commit_with_gates(change)
    post(wait=not no_wait)
    session = db.get_session()
    names = [a.mentor_display for a in lifecycle.mentors_of(session, mentorship=mentorship)]
    click.echo(f"{mentorship.mentee_display}: mentors are now {', '.join(names)}.")
    warn_few_mentors(len(names))


@cli.command(
    short_help="Mark a mentor away until a date, or back.",
    epilog=examples(
        'gatekeeper away colesbury --until 2026-12-20 --note "on holiday"',
        "gatekeeper away colesbury --back",
    ),
)
@click.argument("login")
@click.option("--until", help="The last day away (YYYY-MM-DD, UTC).")
@click.option("--note", help="Why, or whom to ask meanwhile, in a sentence.")
@click.option("--back", is_flag=True, help="They are back: end the absence now.")
@by_option
@no_wait_option
@user_errors
def away(
    login: str, until: str | None, note: str | None, back: bool, actor: str, no_wait: bool
) -> None:
    """Mark LOGIN away until a date, across all their mentorships, or back (--back).

    While away, review requests and reminders go to the other mentors, and the checks and
    the mentee's page say who is away until when; an approval they give still counts.
    """
    from gatekeeper import away as absences
    from gatekeeper import db
    from gatekeeper.models import utcnow

    if back == (until is not None):
        refuse("give --until DATE or --back, one of them")
    if back and note is not None:
        refuse("--note goes with --until, not with --back")
    now = utcnow()
    day = None if back else absences.parse_until(until, now=now)

    def change(session: Session) -> absences.Change:
        if day is None:
            done = absences.come_back(session, login=login, actor=actor, now=now)
        else:
            done = absences.set_away(
                session, login=login, until=day, note=note, actor=actor, now=now
            )
        for mentorship in done.mentorships:
            gates_follow(session, mentorship)
        return done

    done = db.writing(db.get_session(), change)
    post(wait=not no_wait)
    count = len(done.mentorships)
    where = f"{count} mentorship{'s' if count != 1 else ''}"
    if day is None:
        click.echo(f"{done.login} is back; review requests in {where} go to them again.")
    else:
        click.echo(
            f"{done.login} is away until {absences.day_words(day)}; review requests and"
            f" reminders in {where} go to the other mentors."
        )


@cli.command(
    short_help="Change a running mentorship's terms.",
    epilog=examples(
        "gatekeeper change mpage --approvals 1",
        "gatekeeper change mpage --repo python/cpython --repo python/peps",
        "gatekeeper change mpage --keep-approvals-on-push --note 'pairs on Tuesdays'",
    ),
)
@click.argument("mentee")
@click.option("--approvals", type=click.IntRange(min=1), help="Mentor approvals per pull request.")
@click.option(
    "--repo",
    "repos",
    multiple=True,
    metavar="OWNER/REPO",
    help="Gate only these repositories (repeat it); replaces the scope.",
)
@click.option("--every-repo", is_flag=True, help="Gate every repository (an empty scope).")
@click.option(
    "--dismiss-stale/--keep-approvals-on-push",
    default=None,
    help="Whether a new push needs a new approval.",
)
@click.option(
    "--same-content/--every-push",
    default=None,
    help="Whether an approval holds for a push with the same content.",
)
@click.option(
    "--gate-approved/--no-gate-approved",
    default=None,
    help="Whether others' pull requests the mentee approves wait too.",
)
@click.option(
    "--bypass-alerts/--no-bypass-alerts",
    default=None,
    help="Whether a merge without approval gets a comment.",
)
@click.option("--note", help='The mentorship\'s note ("" removes it).')
@click.option(
    "--notify-url",
    metavar="URL",
    help='Its own team chat webhook, instead of GATEKEEPER_NOTIFY_URL ("" clears it).',
)
@by_option
@no_wait_option
@user_errors
def change(mentee: str, **options: Any) -> None:
    """Change a running mentorship's terms after its start.

    MENTEE's terms not named stay as they are; each change is audited and the open pull
    requests are decided again (one leaving the scope turns green, one coming back waits).
    """
    change_terms(mentee, **options)


def change_terms(
    mentee: str,
    *,
    approvals: int | None,
    repos: tuple[str, ...],
    every_repo: bool,
    dismiss_stale: bool | None,
    same_content: bool | None,
    gate_approved: bool | None,
    bypass_alerts: bool | None,
    note: str | None,
    notify_url: str | None,
    actor: str,
    no_wait: bool,
) -> None:
    """The body of ``gatekeeper change``: the lifecycle's change_terms, then the gates."""
    from gatekeeper import db
    from gatekeeper import mentorships as lifecycle
    from gatekeeper.models import utcnow

    if repos and every_repo:
        refuse("give --repo or --every-repo, not both")

    def change(session: Session) -> tuple[Mentorship, list[str]]:
        mentorship, lines = lifecycle.change_terms(
            session,
            mentee=mentee,
            actor=actor,
            now=utcnow(),
            approvals_required=approvals,
            repositories=[] if every_repo else (list(repos) or None),
            dismiss_stale_approvals=dismiss_stale,
            same_content_approvals=same_content,
            gate_approved_prs=gate_approved,
            bypass_alerts=bypass_alerts,
            note=note,
            notify_url=notify_url,
        )
        return (gates_follow(session, mentorship) if lines else mentorship), lines

    mentorship, lines = db.writing(db.get_session(), change)
    if not lines:
        click.echo(f"{mentorship.mentee_display}: nothing changed.")
        return
    post(wait=not no_wait)
    for line in lines:
        click.echo(f"{mentorship.mentee_display}: {line}")


@cli.command(
    "list",
    with_appcontext=False,  # it only reads: reading(), no app to build
    epilog=examples("gatekeeper list", "gatekeeper list --all --json"),
)
@click.option("--all", "include_ended", is_flag=True, help="Include ended mentorships.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_command(include_ended: bool, as_json: bool) -> None:
    """List mentorships: open ones, or all."""
    from gatekeeper import readings

    with reading() as reader:
        found = readings.list_documents(reader, include_ended=include_ended, now=datetime.now(UTC))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("No mentorships yet. Start one with: gatekeeper promote MENTEE --mentor LOGIN")
        return
    for document in found:
        click.echo(_summary_line(document))


@cli.command(
    with_appcontext=False,  # it only reads: reading(), no app to build
    epilog=examples("gatekeeper status mpage", "gatekeeper status mpage --json"),
)
@click.argument("mentee")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def status(mentee: str, as_json: bool) -> None:
    """Show one mentee's mentorship.

    MENTEE's mentors, dates, vote and gated pull requests, as /api shows them.
    """
    from gatekeeper import readings

    with reading() as reader:
        document = readings.status_document(reader, mentee=mentee, now=datetime.now(UTC))
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


@cli.command(
    short_help="The month's report, for graduation.",
    epilog=examples(
        "gatekeeper report mpage",
        "gatekeeper report mpage --markdown",
        "gatekeeper report mpage --json",
        "gatekeeper report mpage --post   # reply in the vote's forum thread, once",
    ),
)
@click.argument("mentee")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document, as /api does.")
@click.option("--markdown", is_flag=True, help="Print Markdown to paste into the forum thread.")
@click.option(
    "--post",
    is_flag=True,
    help="Post the Markdown as a reply in the promotion vote's forum topic (once).",
)
@click.option("--again", is_flag=True, help="With --post: post it even though it was posted.")
@by_option
@user_errors
def report(mentee: str, as_json: bool, markdown: bool, post: bool, again: bool, actor: str) -> None:
    """The month's report, for the graduation decision.

    MENTEE's period, vote, pull requests, mentors' approvals, waits and bypasses. With
    --post, the Markdown (as someone signed out would read it) is posted in the vote's
    forum thread using DISCOURSE_API_KEY and DISCOURSE_API_USERNAME.
    """
    from flask import current_app

    from gatekeeper import db, settings_of
    from gatekeeper import report as reports

    if as_json and markdown:
        raise click.UsageError("give --json or --markdown, not both", click.get_current_context())
    if again and not post:
        raise click.UsageError("--again goes with --post", click.get_current_context())
    if post and (as_json or markdown):
        raise click.UsageError(
            "--post goes alone: it prints where the report was posted", click.get_current_context()
        )
    if post:
        from gatekeeper import forum_posts
        from gatekeeper.models import utcnow

        posted = forum_posts.post_report(
            db.get_session(),
            mentee=mentee,
            actor=actor,
            settings=settings_of(current_app),
            now=utcnow(),
            again=again,
        )
        click.echo(f"posted {mentee}'s report in the vote's thread: {posted.url}")
        return
    found = reports.current(
        db.get_session(), mentee=mentee, base_url=settings_of(current_app).base_url
    )
    if as_json:
        click.echo(json.dumps(reports.document(found), indent=2))
    else:
        click.echo(reports.markdown(found) if markdown else reports.plain(found))


@cli.command(
    short_help="Expire, reconcile with GitHub, redeliver.",
    epilog=examples(
        "gatekeeper sweep",
        "gatekeeper sweep --json",
        "gatekeeper sweep --loop 300 --no-wait   # the Procfile's clock",
    ),
)
@click.option("--loop", "interval", type=click.IntRange(min=1), help="Repeat every N seconds.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print only a JSON summary, one line per sweep (no progress, no other lines).",
)
@no_wait_option
@user_errors
def sweep(interval: int | None, as_json: bool, no_wait: bool) -> None:
    """End expired mentorships, reconcile gated pull requests with GitHub, scan, redeliver.

    On a terminal each step is shown as it happens; piped, or with --json, only the
    results are printed. A single sweep exits 1 when something is left for the next one;
    with --loop it goes on.
    """
    import sqlalchemy as sa
    from flask import current_app

    from gatekeeper import db, github_of, settings_of
    from gatekeeper import sweep as sweeper
    from gatekeeper import worker as workers
    from gatekeeper.models import utcnow

    settings, github = settings_of(current_app), github_of(current_app)
    progress = _progress_printer(quiet=as_json)
    while True:
        try:
            progress("sweeping: expired mentorships first, then each mentee's pull requests")
            # Its transactions wait their turn to write; a round the database refused for
            # the moment is swept again (a sweep only brings the rows in line again).
            report = db.writing(
                db.get_session(),
                lambda session: sweeper.sweep(
                    session, settings=settings, github=github, now=utcnow(), progress=progress
                ),
            )
            # Without GitHub there is nothing to post; say so once, below, not twice.
            tally = workers.Tally() if no_wait or github is None else drain(quiet=as_json)
            waiting = _waiting_checks()
        except (sa.exc.SQLAlchemyError, db.Busy) as error:
            if interval is None:
                raise
            # The clock process must outlive a database hiccup; the next round starts afresh.
            db.get_session().rollback()
            click.echo(f"sweep failed, retrying in {interval}s: {type(error).__name__}", err=True)
            db.close_session()
            time.sleep(interval)
            continue
        if as_json:
            click.echo(json.dumps(_sweep_document(report, tally, waiting, github is not None)))
        else:
            _say_swept(report, waiting=waiting, configured=github is not None)
        if interval is None:
            if report.failures or tally.failures:
                raise SystemExit(1)  # a signal for whoever runs a single sweep from cron
            return
        db.close_session()
        time.sleep(interval)


def _waiting_checks() -> int:
    """Checks stored for posting and not yet posted (by anyone)."""
    from gatekeeper import db, outbox

    waiting = outbox.pending_count(db.get_session())
    db.get_session().commit()
    return waiting


def _say_swept(report: Any, *, waiting: int, configured: bool) -> None:
    """A sweep's results as lines: what changed, what failed, and what is left to whom."""
    for failure in report.failures:
        click.echo(f"not done, will retry: {failure}", err=True)
    for repo in report.gone:
        click.echo(f"{repo}: GitHub answers 404; marked gone and skipped from now on.")
    if report.skipped:
        click.echo(f"Installations another sweep is doing: {', '.join(map(str, report.skipped))}.")
    expired = f"{len(report.expired)} expired" + (
        f" ({', '.join(report.expired)})" if report.expired else ""
    )
    if not configured:
        click.echo(
            not_configured(
                "mentorships were expired and stored gates re-decided here;"
                f" {plural(waiting, 'check')} {waits(waiting)} to be posted"
            ),
            err=True,
        )
        click.echo(
            f"Sweep done without GitHub: {expired}, {report.changed} stored gates changed;"
            " no pull request was read from GitHub and no check was posted."
        )
        return
    click.echo(
        f"Sweep done: {expired}, {report.mentees} mentees and {report.pulls} pull requests"
        f" checked with GitHub, {report.scanned} repositories scanned, {report.changed} checks"
        f" to update, {report.redelivered} deliveries redelivered,"
        f" {len(report.failures)} failures."
    )
    if waiting:
        click.echo(
            f"{plural(waiting, 'check')} {waits(waiting)} to be posted by `gatekeeper worker`."
        )


def _sweep_document(
    report: Any, tally: workers.Tally, waiting: int, configured: bool
) -> dict[str, Any]:
    """``sweep --json``: the report and the posting, one object."""
    return {
        "github_configured": configured,
        "expired": report.expired,
        "mentees_checked": report.mentees,
        "pull_requests_checked": report.pulls,
        "repositories_scanned": report.scanned,
        "checks_changed": report.changed,
        "checks_posted": len(tally.posted),
        "checks_waiting": waiting,
        "deliveries_redelivered": report.redelivered,
        "notices_queued": report.notices,
        "gone": report.gone,
        "skipped_installations": report.skipped,
        "failures": [*report.failures, *tally.failures],
    }


@cli.command(
    short_help="Require the check from this App (a ruleset).",
    epilog=examples(
        "gatekeeper protect python/cpython --dry-run",
        "gatekeeper protect python/cpython --branch main --branch 3.13",
        "gatekeeper protect --org python",
        "gatekeeper protect --org python cpython peps",
        "gatekeeper protect python/cpython --branch-protection",
    ),
)
@click.argument("repositories", nargs=-1, metavar="[REPOSITORY]...")
@click.option(
    "--org",
    metavar="ORG",
    help="One organisation ruleset over the REPOs given (default: every repository).",
)
@click.option(
    "--branch",
    "branches",
    multiple=True,
    help="Branch to cover; repeatable (default: the repository's default branch).",
)
@click.option(
    "--branch-protection",
    is_flag=True,
    help="Edit classic branch protection instead (GitHub Enterprise Server without rulesets).",
)
@click.option("--dry-run", is_flag=True, help="Print what would be sent without sending it.")
@user_errors
def protect(
    repositories: tuple[str, ...],
    org: str | None,
    branches: tuple[str, ...],
    branch_protection: bool,
    dry_run: bool,
) -> None:
    """Require the mentor-approval check, accepted only from this App.

    [REPOSITORY]... is one OWNER/REPO: its ruleset named after the check is created, or
    updated in place (other rulesets are left alone). With --org ORG they are the
    organisation's repositories its one ruleset covers (REPO or ORG/REPO; none: all). With
    --branch-protection: the branch's classic required status checks instead.
    """
    from flask import current_app

    from gatekeeper import github_of, protection, settings_of
    from gatekeeper import mentorships as lifecycle
    from gatekeeper.github import GitHubUnavailable

    settings, github = settings_of(current_app), github_of(current_app)
    if github is None:
        refuse(f"GitHub is not configured: {GITHUB_SETTINGS}")
    if org is not None and branch_protection:
        refuse("--branch-protection works on one repository at a time; drop --org")
    if org is None and len(repositories) != 1:
        refuse("give one OWNER/REPO, or --org ORG for an organisation ruleset")
    where = org or lifecycle.canonical_repo(repositories[0])
    try:
        if branch_protection:
            for branch in branches or (None,):
                change = protection.require_check(
                    github,
                    repo=where,
                    branch=branch,
                    check_name=settings.check_name,
                    dry_run=dry_run,
                )
                click.echo(change.describe(dry_run=dry_run))
        elif org is not None:
            names = tuple(_org_repository(org, name) for name in repositories)
            ruleset = protection.require_check_for_organisation(
                github,
                org=org,
                repositories=names,
                branches=branches,
                check_name=settings.check_name,
                dry_run=dry_run,
            )
        else:
            ruleset = protection.require_check_by_ruleset(
                github,
                repo=where,
                branches=branches,
                check_name=settings.check_name,
                dry_run=dry_run,
            )
    except GitHubUnavailable as error:
        raise lifecycle.MentorshipError(f"{where}: {error}") from None
    if not branch_protection:
        click.echo(
            ruleset.describe(dry_run=dry_run, check_name=settings.check_name, app_id=github.app_id)
        )


def _org_repository(org: str, name: str) -> str:
    """A repository of ``org`` as an organisation ruleset names it: without the owner."""
    owner, _, repo = name.strip().rpartition("/")
    if owner and owner.lower() != org.lower():
        refuse(f"{name} is not a repository of {org}")
    if not repo:
        refuse(f"{name!r} is not a repository name")
    return repo


@cli.command(
    "notify",
    short_help="Send the team chat's notices that are due.",
    epilog=examples("gatekeeper notify --dry-run", "gatekeeper notify"),
)
@click.option("--dry-run", is_flag=True, help="Print what would be sent now; send nothing.")
@user_errors
def notify_command(dry_run: bool) -> None:
    """Queue the notices to the team's chat that are due now, then send them.

    The sweep queues them on its own and the worker sends them; this is for a deployment
    without a clock process. With --dry-run: print each notice that would be sent now (due,
    or queued and not sent yet) and where to (the host only), and change nothing.
    """
    from flask import current_app

    from gatekeeper import db, settings_of
    from gatekeeper import notify as notices
    from gatekeeper import worker as workers
    from gatekeeper.models import utcnow

    settings, session, now = settings_of(current_app), db.get_session(), utcnow()
    if dry_run:
        for line in _notices_due(session, settings=settings, now=now):
            click.echo(line)
        session.rollback()
        return
    queued = db.writing(session, lambda s: notices.queue_due(s, settings=settings, now=now))
    tally = workers.Worker(current_app._get_current_object()).drain()  # type: ignore[attr-defined]
    failed = [failure for failure in tally.failures if failure.startswith("send_notice:")]
    click.echo(f"{len(queued)} notices queued; {len(failed)} could not be sent now.")
    for failure in failed:
        click.echo(f"  not sent, retried later: {failure}", err=True)
    if failed:
        raise SystemExit(1)


def _notices_due(session: Session, *, settings: Any, now: datetime) -> list[str]:
    """``notify --dry-run``'s lines: the notices due, then those queued and not yet sent."""
    from gatekeeper import notify as notices
    from gatekeeper.models import Mentorship

    lines = []
    for planned in notices.due(session, settings=settings, now=now):
        mentorship = session.get(Mentorship, planned.mentorship_id)
        assert mentorship is not None
        host = notices.host_of(notices.url_for(mentorship, settings))
        lines.append(f"would send to {host}: {planned.line()}")
    for notice in notices.pending(session):
        error = f" (last error: {notice.last_error})" if notice.last_error else ""
        first = notice.text.splitlines()[0]
        lines.append(f"queued, not sent yet{error}: {first}")
    return lines or ["Nothing to send to the team chat now."]


@cli.command(
    short_help="Check settings, GitHub App and database.",
    epilog=examples("gatekeeper doctor", "gatekeeper doctor --json"),
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def doctor(as_json: bool) -> None:
    """Check the settings, the App's permissions and events, every installation and whether
    its repositories require the check (rulesets or branch protection), the database's
    migrations, the outbox and the sweep.

    Each failed check names its fix; exits 1 when any check fails.
    """
    from gatekeeper import doctor as checkup

    checkup.command(as_json=as_json)


def _progress_printer(*, quiet: bool) -> Callable[[str], None]:
    """Per-step lines on stderr when it is a terminal; nothing when piped or with --json."""

    def say(line: str) -> None:
        click.echo(f"  {line}", err=True)

    def silent(line: str) -> None:
        pass

    return silent if quiet or not sys.stderr.isatty() else say


def _summary_line(document: dict[str, Any]) -> str:
    from gatekeeper.standing import left_words  # no models: status and list stay light

    mentors = ", ".join(document["mentors"]) or "no mentors"
    if document["state"] == "ended":
        when = f"ended {document['ended_at'][:10]} ({document['end_reason']})"
    elif document["state"] == "scheduled":
        when = f"scheduled, starts {document['started_at'][:10]}, ends {document['ends_at'][:10]}"
    else:
        when = f"active, ends {document['ends_at'][:10]}, {left_words(document['days_left'])}"
    waiting = sum(1 for pull in document["pull_requests"] if pull["gate"] == "waiting")
    return f"{document['mentee']}: {when}; mentors {mentors}; {waiting} PRs waiting"


def _safe_url(url: str) -> str:
    """The database URL without its password, for printing."""
    import sqlalchemy as sa

    return sa.engine.make_url(url).render_as_string(hide_password=True)


def waits(count: int) -> str:
    """The verb agreeing with ``count`` checks: "1 check waits", "2 checks wait"."""
    return "waits" if count == 1 else "wait"
