"""The README's deployment guide, checked where it can be: its commands are real commands
with real options, its Procfile is the Procfile, its systemd units pass ``systemd-analyze
verify``, and its backup and restore commands bring a mentorship back on PostgreSQL."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from gatekeeper import create_app
from gatekeeper.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
GUIDE = README[README.index("\n## Deploying\n") : README.index("\n## Development\n")]
BLOCKS = re.findall(r"^ *```(\w*)\n(.*?)^ *```", GUIDE, flags=re.S | re.M)
SEPARATORS = {"|", "||", "&&", ";"}


def blocks(*languages: str) -> list[str]:
    """The guide's code blocks in these languages ("" for a block without one)."""
    return [text for language, text in BLOCKS if language in languages]


def logical_lines(text: str) -> list[str]:
    """Lines with their ``\\`` continuations joined."""
    return text.replace("\\\n", " ").splitlines()


def invocations(tokens: list[str]) -> list[list[str]]:
    """The arguments of every ``gatekeeper`` run as a command in ``tokens`` (also inside an
    ``sh -c`` script), not a user or directory called gatekeeper."""
    found = []
    for index, token in enumerate(tokens):
        if " " in token:  # a quoted script
            found += invocations(shlex.split(token, comments=True))
            continue
        before = tokens[index - 1] if index else ";"
        at_command = (
            before in SEPARATORS
            or before.endswith(";")
            or before == "run"  # uv run, heroku run
            or re.fullmatch(r"[A-Z_]+=\S*", before) is not None
        )
        if at_command and (token == "gatekeeper" or token.endswith("/bin/gatekeeper")):
            arguments = []
            for argument in tokens[index + 1 :]:
                if argument in SEPARATORS or argument.startswith(">"):
                    break
                arguments.append(argument)
            found.append(arguments)
    return found


def commands_in_guide() -> list[list[str]]:
    """Every gatekeeper command line the guide gives, in shell, Procfile and unit blocks."""
    found = []
    for text in blocks("", "sh", "ini"):
        for line in logical_lines(text):
            line = re.sub(r"^(Exec\w*=|\w+: )", "", line.strip())
            found += invocations(shlex.split(line, comments=True))
    return found


def parsed(arguments: list[str]) -> click.Command:
    """Parse a command line as the console script would, without running it."""
    context = cli.make_context("gatekeeper", list(arguments))
    command: click.Command = cli
    while isinstance(command, click.Group):
        # click keeps the subcommand's name apart from its arguments (``_protected_args``).
        name, found, rest = command.resolve_command(
            context, [*context._protected_args, *context.args]
        )
        assert found is not None, arguments
        command = found
        context = command.make_context(name or "", rest, parent=context)
    return command


def test_the_guide_names_each_process_and_step():
    """The guide's commands cover the four processes, register, doctor and the migrations."""
    names = {" ".join(a[:2]) if a[:1] == ["db"] else a[0] for a in commands_in_guide()}
    assert {"register", "db upgrade", "worker", "sweep", "doctor"} <= names


def test_every_gatekeeper_command_in_the_guide_parses():
    """Each command line in the guide names a real command with real options and values."""
    commands = commands_in_guide()
    assert len(commands) >= 8
    for arguments in commands:
        try:
            parsed(arguments)
        except click.UsageError as error:
            pytest.fail(f"gatekeeper {' '.join(arguments)}: {error.format_message()}")


def test_the_guides_procfile_is_the_repositorys():
    """The Procfile shown is the Procfile shipped."""
    [shown] = [text for text in blocks("") if text.startswith("web:")]
    assert shown == (ROOT / "Procfile").read_text()


def gunicorn_arguments(line: str) -> list[str]:
    """A gunicorn command line's arguments, without its program, environment and --bind."""
    tokens = shlex.split(line)
    tokens = tokens[[Path(t).name for t in tokens].index("gunicorn") + 1 :]
    bind = tokens.index("--bind")
    return tokens[:bind] + tokens[bind + 2 :]


def test_the_web_unit_runs_gunicorn_as_the_procfile_does():
    """systemd's web unit is the Procfile's web process on loopback, and gunicorn takes it."""
    from gunicorn.config import Config

    procfile = (ROOT / "Procfile").read_text().splitlines()
    [web] = [line.removeprefix("web: ") for line in procfile if line.startswith("web:")]
    [unit_line] = [
        line.removeprefix("ExecStart=")
        for text in blocks("ini")
        for line in text.splitlines()
        if line.startswith("ExecStart=") and "gunicorn" in line
    ]
    assert "--bind 127.0.0.1:8000" in unit_line
    assert gunicorn_arguments(unit_line) == gunicorn_arguments(web)
    options = Config().parser().parse_args(gunicorn_arguments(unit_line))
    assert options.config == "python:gatekeeper.gunicorn_conf"
    assert options.args == ["gatekeeper:create_app()"]


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    """The three units are valid for systemd (unknown keys or a bad command would fail)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: apt-get install -y systemd", pytrace=False)
    units = dict(
        re.findall(
            r"`/etc/systemd/system/([\w-]+\.service)`(?:(?!```).)*?```ini\n(.*?)```", GUIDE, re.S
        )
    )
    assert sorted(units) == [
        "gatekeeper-clock.service",
        "gatekeeper-web.service",
        "gatekeeper-worker.service",
    ]
    settings = tmp_path / "gatekeeper.env"
    settings.write_text("GATEKEEPER_ENV=production\n")
    for name, text in units.items():
        # Where the guide's paths would be on the host, here.
        text = text.replace("/opt/gatekeeper/.venv/bin/", f"{Path(sys.executable).parent}/")
        text = text.replace("/etc/gatekeeper/gatekeeper.env", str(settings))
        text = text.replace("WorkingDirectory=/opt/gatekeeper", f"WorkingDirectory={ROOT}")
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", *(str(tmp_path / name) for name in units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_the_backup_commands_restore_a_mentorship(postgres_server, tmp_path):
    """pg_dump and pg_restore as the guide gives them carry a mentorship to a new database."""
    commands = [
        line
        for text in blocks("sh")
        for line in text.splitlines()
        if line.startswith(("pg_dump ", "pg_restore "))
    ]
    assert [c.split()[0] for c in commands] == ["pg_dump", "pg_restore"]
    source, target = postgres_server.create_database(), postgres_server.create_database()
    from gatekeeper import db

    db.upgrade(source.replace("postgresql://", "postgresql+psycopg://"))
    app = create_app({"database_url": source, "TESTING": True, "secret_key": "test"})
    promoted = app.test_cli_runner().invoke(
        cli, ["promote", "mpage", "--mentor", "colesbury", "--no-wait"]
    )
    assert promoted.exit_code == 0, promoted.output
    app.extensions["gatekeeper.engine"].dispose()
    for command, url in zip(commands, (source, target), strict=True):
        done = subprocess.run(
            command,
            shell=True,
            cwd=tmp_path,
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    restored = create_app({"database_url": target, "TESTING": True, "secret_key": "test"})
    status = restored.test_cli_runner().invoke(cli, ["status", "mpage"])
    restored.extensions["gatekeeper.engine"].dispose()
    assert status.exit_code == 0, status.output
    assert "colesbury" in status.output
