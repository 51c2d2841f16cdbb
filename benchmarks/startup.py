"""How long ``gatekeeper`` takes to start: ``--help``, ``status --help``, ``status``, ``list``.

Run with ``uv run python benchmarks/startup.py [--runs N] [--source DIR ...]``. Each command runs
N times in a fresh process against a fresh, migrated SQLite file holding one mentorship, and the
minimum and median wall-clock times are printed, and the least CPU time (user + system) a run
took: on a shared machine the wall clock also counts the wait for a core, the CPU time does not.
Two ways of running are measured:

- ``as run``: the environment as it is. Where ``PYTHONDONTWRITEBYTECODE`` is set (as on this
  project's development machines) and the installed packages carry no bytecode, every import
  compiles its module from source again, every time.
- ``bytecode``: the same with bytecode cached (in a temporary ``PYTHONPYCACHEPREFIX``, so the
  installed packages are not touched), as after an install that compiles it (pip does by
  default; ``uv sync --compile-bytecode``).

``--source DIR`` runs the package found in DIR instead of this one (for example a
``git worktree`` of an older commit); given twice, the two take turns run by run, so before
and after are compared under the same load. ``python -X importtime -c "from gatekeeper.cli
import main"`` says which imports cost the time.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "gatekeeper --help": ["--help"],
    "gatekeeper status --help": ["status", "--help"],
    "gatekeeper status mpage": ["status", "mpage"],
    "gatekeeper list": ["list"],
}


def gatekeeper(source: Path) -> list[str]:
    """The command line that starts ``gatekeeper`` from the package in ``source``."""
    bootstrap = (
        f"import sys; sys.path.insert(0, {str(source)!r}); from gatekeeper.cli import main; main()"
    )
    return [sys.executable, "-c", bootstrap]


def run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds one run takes, start to exit, and the CPU seconds it used; a failing run stops
    the benchmark."""
    used = cpu_of_children()
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command[3:]) or command}: exit {done.returncode}\n{done.stderr}"
        )
    return elapsed, cpu_of_children() - used


def cpu_of_children() -> float:
    """User and system CPU seconds used so far by the processes this one waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ways(base: dict[str, str], scratch: Path) -> dict[str, dict[str, str]]:
    """The ways of running measured: as the environment is, and with bytecode cached."""
    cached = {key: value for key, value in base.items() if key != "PYTHONDONTWRITEBYTECODE"}
    cached["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    return {"as run": base, "bytecode": cached}


def prepare(source: Path, scratch: Path, env: dict[str, str]) -> tuple[dict[str, str], bytes]:
    """A migrated SQLite file of ``source``'s own schema holding one mentorship, and its bytes."""
    database = scratch / f"startup-{abs(hash(source))}.sqlite"
    env = {**env, "DATABASE_URL": f"sqlite:///{database}"}
    run([*gatekeeper(source), "db", "upgrade"], env)
    run([*gatekeeper(source), "promote", "mpage", "--mentor", "colesbury", "--no-wait"], env)
    return env, database.read_bytes()


def main() -> None:
    """Measure each command's start-up in each way of running, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per command (default 10)")
    parser.add_argument(
        "--source",
        type=Path,
        action="append",
        help="directory holding the gatekeeper package to run (default: this checkout);"
        " given more than once, their runs take turns, so a busy machine slows all alike",
    )
    options = parser.parse_args()
    sources = [s.resolve() for s in options.source or [Path(__file__).resolve().parent.parent]]
    with tempfile.TemporaryDirectory(prefix="gatekeeper-startup-") as directory:
        scratch = Path(directory)
        (scratch / "empty.env").touch()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GATEKEEPER_"))},
            "GATEKEEPER_ENV_FILE": str(scratch / "empty.env"),  # not a developer's github-app.env
        }
        prepared = {source: prepare(source, scratch, env) for source in sources}
        print(f"{options.runs} runs of each command; seconds, min / median, and least CPU")
        for mode in ("as run", "bytecode"):
            times: dict[tuple[Path, str], list[tuple[float, float]]] = {}
            for source, (source_env, _) in prepared.items():
                run([*gatekeeper(source), "status", "mpage"], ways(source_env, scratch)[mode])
            for label, args in COMMANDS.items():
                for _ in range(options.runs):
                    for source, (source_env, pristine) in prepared.items():
                        # Each run starts from the same fresh file.
                        Path(source_env["DATABASE_URL"].removeprefix("sqlite:///")).write_bytes(
                            pristine
                        )
                        taken = run([*gatekeeper(source), *args], ways(source_env, scratch)[mode])
                        times.setdefault((source, label), []).append(taken)
            for (source, label), measured in times.items():
                wall = [elapsed for elapsed, _ in measured]
                cpu = min(used for _, used in measured)
                print(
                    f"  {mode:9} {label:26} {min(wall):.3f} / {statistics.median(wall):.3f}"
                    f"  cpu {cpu:.3f}  {source}"
                )
        shutil.rmtree(scratch / "pycache", ignore_errors=True)


if __name__ == "__main__":
    main()
