"""What unsigned webhook bodies cost ``gatekeeper serve`` in resident memory.

Run with ``uv run python benchmarks/memory.py [--bodies 8] [--mib 25] [--source DIR ...]``.
``gatekeeper serve --no-worker`` starts on a fresh, migrated SQLite file; once it answers,
BODIES clients send MIB MiB each at the same time to ``/webhooks/github`` with a wrong
signature (each must be answered 401). Printed, from ``/proc``: the server's resident memory
before, its peak (``VmHWM``) while the bodies arrived, and after.

``--source DIR`` runs the package found in DIR instead of this one (a ``git worktree`` of an
older commit, say); given more than once, each is measured in turn, for before and after.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

SECRET = "benchmark-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def gatekeeper(source: Path, *arguments: str) -> list[str]:
    """The command line that runs ``gatekeeper`` from the package in ``source``."""
    bootstrap = (
        f"import sys; sys.path.insert(0, {str(source)!r}); from gatekeeper.cli import main; main()"
    )
    return [sys.executable, "-c", bootstrap, *arguments]


def kib(pid: int, field: str) -> int:
    """A ``/proc/PID/status`` memory field (VmRSS, VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/{pid}/status")


def wait_until_answering(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"serve exited with {server.returncode}")
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit("serve did not answer within 60 s")


def measure(source: Path, *, bodies: int, size: int) -> dict[str, int]:
    """Resident KiB of one ``serve`` before, at its peak during and after the bodies."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{scratch}/memory.sqlite",
            "GITHUB_WEBHOOK_SECRET": SECRET,
            "TMPDIR": scratch,  # where spooled bodies go
        }
        subprocess.run(
            gatekeeper(source, "db", "upgrade"), env=env, check=True, capture_output=True
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            gatekeeper(source, "serve", "--port", str(port), "--no-worker"),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_answering(url, server)
            before = kib(server.pid, "VmRSS")
            body = b" " * size
            headers = {
                "X-GitHub-Event": "ping",
                "X-GitHub-Delivery": "memory",
                "X-Hub-Signature-256": "sha256=" + "0" * 64,
            }

            def send(_: int) -> int:
                answer = requests.post(
                    f"{url}/webhooks/github", data=body, headers=headers, timeout=120
                )
                return answer.status_code

            with ThreadPoolExecutor(bodies) as pool:
                statuses = list(pool.map(send, range(bodies)))
            if set(statuses) != {401}:
                raise SystemExit(f"expected 401 for every unsigned body, got {statuses}")
            return {
                "before": before,
                "peak": kib(server.pid, "VmHWM"),
                "after": kib(server.pid, "VmRSS"),
            }
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bodies", type=int, default=8, help="bodies sent at once")
    parser.add_argument("--mib", type=int, default=25, help="size of each body in MiB")
    parser.add_argument(
        "--source", type=Path, action="append", help="a checkout whose package to run"
    )
    options = parser.parse_args()
    sources = options.source or [Path(__file__).resolve().parent.parent]
    print(f"gatekeeper serve, {options.bodies} unsigned bodies of {options.mib} MiB at once")
    print(f"{'source':40} {'before MB':>10} {'peak MB':>10} {'after MB':>10}")
    for source in (path.resolve() for path in sources):
        found = measure(source, bodies=options.bodies, size=options.mib * 2**20)
        figures = " ".join(f"{found[key] / 1024:10.0f}" for key in ("before", "peak", "after"))
        print(f"{str(source)[-40:]:40} {figures}")


if __name__ == "__main__":
    main()
