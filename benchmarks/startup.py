"""How long the ``gatekeeper`` command takes to start: ``--help``, ``status --help``, ``status``.

Run with ``uv run python benchmarks/startup.py [--runs N] [--source DIR]``. Each command runs N
times in a fresh process against a fresh, migrated SQLite file holding one mentorship, and the
minimum and median wall-clock times are printed. Two ways of running are measured:

- ``as run``: the environment as it is. Where ``PYTHONDONTWRITEBYTECODE`` is set (as on this
  project's development machines) and the installed packages carry no bytecode, every import
  compiles its module from source again, every time.
- ``bytecode``: the same with bytecode cached (in a temporary ``PYTHONPYCACHEPREFIX``, so the
  installed packages are not touched), as after an install that compiles it (pip does by
  default; ``uv sync --compile-bytecode``).

``--source DIR`` runs the package found in DIR instead of this one (for example a
``git worktree`` of an older commit), to compare before and after. ``python -X importtime
-c "from gatekeeper.cli import main"`` says which imports cost the time.
"""

from __future__ import annotations

import argparse
import os
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
}


def gatekeeper(source: Path) -> list[str]:
    """The command line that starts ``gatekeeper`` from the package in ``source``."""
    bootstrap = (
        f"import sys; sys.path.insert(0, {str(source)!r}); from gatekeeper.cli import main; main()"
    )
    return [sys.executable, "-c", bootstrap]


def run(command: list[str], env: dict[str, str]) -> float:
    """Seconds one run takes, start to exit; a failing run stops the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command[3:]) or command}: exit {done.returncode}\n{done.stderr}"
        )
    return elapsed


def environments(base: dict[str, str], cache: Path) -> dict[str, dict[str, str]]:
    """The ways of running measured: as the environment is, and with bytecode cached."""
    cached = {key: value for key, value in base.items() if key != "PYTHONDONTWRITEBYTECODE"}
    cached["PYTHONPYCACHEPREFIX"] = str(cache)
    return {"as run": base, "bytecode": cached}


def main() -> None:
    """Measure each command's start-up in each way of running, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per command (default 10)")
    parser.add_argument(
        "--source",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="directory holding the gatekeeper package to run (default: this checkout)",
    )
    options = parser.parse_args()
    base = gatekeeper(options.source.resolve())
    with tempfile.TemporaryDirectory(prefix="gatekeeper-startup-") as scratch:
        database, no_env_file = Path(scratch) / "startup.sqlite", Path(scratch) / "empty.env"
        no_env_file.touch()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GATEKEEPER_"))},
            "DATABASE_URL": f"sqlite:///{database}",
            "GATEKEEPER_ENV_FILE": str(no_env_file),  # not a developer's github-app.env
        }
        run([*base, "db", "upgrade"], env)
        run([*base, "promote", "mpage", "--mentor", "colesbury", "--no-wait"], env)
        pristine = database.read_bytes()
        print(f"{options.runs} runs each of {options.source}; seconds, min / median")
        for mode, mode_env in environments(env, Path(scratch) / "pycache").items():
            run([*base, "status", "mpage"], mode_env)  # fills the bytecode cache, if any
            for label, args in COMMANDS.items():
                times = []
                for _ in range(options.runs):
                    database.write_bytes(pristine)  # each run starts from the same fresh file
                    times.append(run([*base, *args], mode_env))
                print(f"  {mode:9} {label:28} {min(times):.3f} / {statistics.median(times):.3f}")
        shutil.rmtree(Path(scratch) / "pycache", ignore_errors=True)


if __name__ == "__main__":
    main()
