"""The command's help as a newcomer reads it: -h everywhere, --version, every option explained,
examples, summaries that fit, shell completion, and help that starts without the heavy imports."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gatekeeper.cli import cli

SUMMARY_LIMIT = 45  # what click shows of a summary beside a long name on an 80-column terminal
HEAVY = ("flask", "sqlalchemy", "sqlmodel", "github", "alembic", "jinja2", "authlib")


def command_paths(
    group: click.Group = cli, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command and group under ``group``, with the words that name it (lazy ones loaded)."""
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from command_paths(command, (*path, name))


ALL_COMMANDS = sorted(command_paths(), key=lambda item: item[0])
IDS = [" ".join(path) for path, _ in ALL_COMMANDS]


def help_of(*words: str) -> str:
    """What ``gatekeeper WORDS --help`` prints on an 80-column terminal."""
    result = CliRunner().invoke(cli, [*words, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


@pytest.mark.parametrize(
    "path", [(), *(path for path, _ in ALL_COMMANDS)], ids=["gatekeeper", *IDS]
)
def test_h_is_help_everywhere(path):
    """-h prints the same help as --help, for the group and every command under it."""
    short = CliRunner().invoke(cli, [*path, "-h"], env={"COLUMNS": "80"})
    assert short.exit_code == 0, short.output
    assert short.stdout == help_of(*path)
    assert "-h, --help" in short.stdout


def test_version_is_the_package_version():
    """--version prints the installed package's version, as its metadata says."""
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"gatekeeper {importlib.metadata.version('gatekeeper')}\n"


@pytest.mark.parametrize(("path", "command"), ALL_COMMANDS, ids=IDS)
def test_every_option_and_argument_is_explained(path, command):
    """Each option has help text, and each argument is named in its command's description
    (click gives arguments no help of their own); options added later are held to this too."""
    for parameter in command.params:
        if isinstance(parameter, click.Option):
            assert parameter.hidden or (parameter.help or "").strip(), (path, parameter.opts)
        else:
            name = parameter.human_readable_name.upper()
            assert name in (command.help or ""), (path, name)


@pytest.mark.parametrize(("path", "command"), ALL_COMMANDS, ids=IDS)
def test_every_command_shows_examples_as_written(path, command):
    """Each command's help ends with an Examples section whose lines run that very command and
    are printed as written, not re-wrapped."""
    text = help_of(*path)
    assert "\n  Examples:\n" in text, path
    examples = text.split("\n  Examples:\n", 1)[1].splitlines()
    starts = [line.strip() for line in examples if line.strip().startswith("gatekeeper ")]
    assert starts, path
    assert all(line.startswith(f"gatekeeper {' '.join(path)}") for line in starts), starts
    for line in (command.epilog or "").splitlines()[2:]:
        assert f"  {line}" in examples, (path, line)


def test_the_group_help_has_examples():
    """gatekeeper --help ends with examples too, pointing at COMMAND -h."""
    assert "  gatekeeper COMMAND -h" in help_of()


@pytest.mark.parametrize(
    "group_path", [(), *(path for path, c in ALL_COMMANDS if isinstance(c, click.Group))]
)
def test_summaries_in_the_command_list_are_whole(group_path):
    """Each command's one-line summary is listed whole (click cuts long ones with '...'),
    short enough to stay whole beside any command name on an 80-column terminal."""
    text = help_of(*group_path)
    listing = text.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert listing
    for path, command in ALL_COMMANDS:
        if path[:-1] != group_path:
            continue
        summary = command.get_short_help_str(limit=10_000)
        assert len(summary) <= SUMMARY_LIMIT, (path, summary)
        assert f"  {path[-1]}" in "\n".join(listing)
        [row] = [line for line in listing if line.split()[0] == path[-1]]
        assert row.split(None, 1)[1] == summary
    assert not any(line.rstrip().endswith("...") for line in listing)


def test_by_shows_who_it_will_record(monkeypatch):
    """--by's help names the person it defaults to, not a placeholder."""
    monkeypatch.setenv("GATEKEEPER_ACTOR", "ambv")
    assert "[default: ambv]" in help_of("promote")


# ---------------------------------------------------------------- the real console script


def gatekeeper(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with a clean, app-free environment."""
    script = Path(sys.executable).parent / "gatekeeper"
    return subprocess.run(
        [str(script), *args],
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("args", [["--help"], ["status", "--help"], ["--version"]])
def test_help_does_not_import_the_heavy_libraries(args):
    """Help and --version load no Flask, SQLAlchemy, PyGithub or Alembic: they answer at once."""
    probe = (
        "import sys\n"
        "from gatekeeper.cli import main\n"
        f"sys.argv = ['gatekeeper', *{args!r}]\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        f"print('loaded:', sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stderr.splitlines()[-1] == "loaded: []"
    assert result.stdout  # it did print the help or the version


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _gatekeeper_completion gatekeeper"),
        ("zsh", "#compdef gatekeeper"),
        ("fish", "complete --no-files --command gatekeeper"),
    ],
)
def test_completion_scripts_as_the_readme_gives_them(shell, marker):
    """The README's completion setup (_GATEKEEPER_COMPLETE=<shell>_source) prints a script."""
    result = gatekeeper(env={"_GATEKEEPER_COMPLETE": f"{shell}_source"})
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert f"_GATEKEEPER_COMPLETE={shell}_source gatekeeper" in readme


def test_completion_completes_command_names():
    """What bash asks for 'gatekeeper pro<TAB>' is answered with promote and protect."""
    result = gatekeeper(
        env={
            "_GATEKEEPER_COMPLETE": "bash_complete",
            "COMP_WORDS": "gatekeeper pro",
            "COMP_CWORD": "1",
        }
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["plain,promote", "plain,protect"]


def test_python_m_gatekeeper_is_the_command():
    """``python -m gatekeeper`` runs the same command, under the same name."""
    result = subprocess.run(
        [sys.executable, "-m", "gatekeeper", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"gatekeeper {importlib.metadata.version('gatekeeper')}\n"
