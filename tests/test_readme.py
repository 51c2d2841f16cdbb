"""The README's quick start, run as written: its two commands, on an externally-managed Python.

Debian's and Ubuntu's own Python refuses ``pip install`` outside a virtual environment (PEP
668), so the README's first command once stopped there. It is run here in a scratch copy of
the checkout with such a Python as ``python3``, exactly as written (only ``--port`` is
added, so that it does not take port 5000 from whoever else runs). Tests reach no network:
pip finds uv in a local folder (a wheel holding the uv this suite runs under) and uv
installs the locked dependencies from its cache (``UV_OFFLINE``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import requests
from test_serve import free_port

from gatekeeper.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
QUICK_START = README[README.index("\n## Quick start\n") : README.index("\n## Configuration\n")]
SYNOPSIS = README[README.index("\n## Command line\n") :].split("```")[1]
# Where a Debian or Ubuntu system keeps its own Python.
SYSTEM_PYTHONS = ("/usr/bin/python3",)


def quick_start_commands() -> list[str]:
    """The shell blocks of the quick start, each one command."""
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", QUICK_START, flags=re.S)]


def test_the_quick_start_is_two_commands_and_ci_runs_the_second():
    """Two one-line commands that set uv up the same way; CI's script runs the second."""
    serve, test = quick_start_commands()
    assert "\n" not in serve and "\n" not in test
    set_up = serve.rpartition(" && ")[0]
    assert test.rpartition(" && ")[0] == set_up
    assert serve.endswith("uv run --no-dev gatekeeper serve")  # no dev tools to serve
    assert test.endswith("uv run pytest")
    assert (ROOT / ".ci" / "run").read_text().splitlines()[-1] == test


def test_the_synopsis_names_every_command_and_the_demos_database():
    """Each command of ``gatekeeper -h`` has a synopsis line; doctor and demo --database too."""
    for name in cli.list_commands(None):  # type: ignore[arg-type]
        assert re.search(rf"^gatekeeper {name}\b", SYNOPSIS, flags=re.M), name
    assert re.search(r"^gatekeeper demo .*\[--database PATH\]", SYNOPSIS, flags=re.M)
    assert re.search(r"^gatekeeper doctor \[--json\]", SYNOPSIS, flags=re.M)


def externally_managed_python() -> str | None:
    """A system Python that refuses pip installs (PEP 668), if this machine has one."""
    for python in SYSTEM_PYTHONS:
        if not os.access(python, os.X_OK):
            continue
        marker = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if marker and (Path(marker) / "EXTERNALLY-MANAGED").exists():
            return python
    return None


def uv_wheel(folder: Path) -> Path:
    """A wheel of the uv binary this suite runs under, as PyPI's uv wheel holds it."""
    binary = Path(os.environ.get("UV") or shutil.which("uv") or "")
    if not binary.is_file():
        pytest.skip("no uv binary to offer pip offline")
    version = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    name = f"uv-{version}"
    files = {
        f"{name}.data/scripts/uv": binary.read_bytes(),
        f"{name}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: uv\nVersion: {version}\n".encode(),
        f"{name}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: gatekeeper-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }

    def digest(data: bytes) -> str:
        return (
            "sha256="
            + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        )

    files[f"{name}.dist-info/RECORD"] = (
        "".join(f"{path},{digest(data)},{len(data)}\n" for path, data in files.items())
        + f"{name}.dist-info/RECORD,,\n"
    ).encode()
    folder.mkdir()
    wheel = folder / f"{name}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for path, data in files.items():
            entry = zipfile.ZipInfo(path)
            # A regular file, executable for the script: pip keeps the mode it is given.
            entry.external_attr = (0o100755 if path.endswith("/uv") else 0o100644) << 16
            archive.writestr(entry, data)
    return folder


def scratch_copy(destination: Path) -> Path:
    """The checkout's files (tracked, and new ones not ignored), without .venv or instance/."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def test_the_first_command_serves_on_an_externally_managed_python(tmp_path):
    """Done-when: the README's first command, as written, on Debian's own python3 (which
    refuses ``python3 -m pip install uv``): uv lands in ``.uv``, the dependencies without
    the development tools in ``.venv``, the embedded database is set up and the dashboard
    answers."""
    python = externally_managed_python()
    if python is None:
        pytest.skip("this machine has no externally-managed system python3")
    refused = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "uv"], capture_output=True, text=True
    )
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr

    wheels = uv_wheel(tmp_path / "wheels")
    checkout = scratch_copy(tmp_path / "checkout")
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "python3").symlink_to(python)
    kept = {
        name: value
        for name, value in os.environ.items()
        if name in ("HOME", "LANG", "TMPDIR", "UV_CACHE_DIR", "XDG_CACHE_HOME")
    }
    env = {
        **kept,
        "PATH": f"{tools}:/usr/bin:/bin",
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "UV_OFFLINE": "1",
    }
    port = free_port()
    serve, _ = quick_start_commands()
    log = (tmp_path / "quick-start.log").open("w")
    process = subprocess.Popen(
        ["sh", "-c", f"{serve} --port {port}"],
        cwd=checkout,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: uv and the server stop with it
    )
    try:
        deadline = time.monotonic() + 600  # a deadline to fail by, not a measurement
        while True:
            assert process.poll() is None, (tmp_path / "quick-start.log").read_text()
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, (tmp_path / "quick-start.log").read_text()
                time.sleep(0.5)
        assert answer.status_code == 200
        assert (checkout / ".uv" / "bin" / "uv").is_file()
        assert (checkout / ".venv" / "bin" / "gatekeeper").is_file()
        assert not (checkout / ".venv" / "bin" / "pytest").exists()  # --no-dev
        assert (checkout / "instance" / "gatekeeper.sqlite").stat().st_size > 0
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
