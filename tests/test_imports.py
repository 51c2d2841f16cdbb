"""Every module of the package imports on its own, first: a command that needs only one of
them (``register`` imports ``github`` before anything else) must not meet an import circle
that the app's own import order happens to hide."""

from __future__ import annotations

import concurrent.futures
import pkgutil
import subprocess
import sys

import gatekeeper

MODULES = [
    f"gatekeeper.{module.name}"
    for module in pkgutil.iter_modules(gatekeeper.__path__)
    if module.name not in ("__main__", "migrations")  # __main__ runs the command line
]


def first_import(name: str) -> str:
    """What importing ``name`` first in a fresh interpreter printed on stderr (nothing if it
    imported)."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=120
    )
    return done.stderr.strip().splitlines()[-1] if done.returncode else ""


def test_every_module_imports_first():
    """Each ``gatekeeper`` module, imported first in a fresh interpreter, imports."""
    assert "gatekeeper.github" in MODULES
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        failures = dict(zip(MODULES, pool.map(first_import, MODULES), strict=True))
    assert {name: why for name, why in failures.items() if why} == {}
