"""Every module of the package imports on its own, first: a command that needs only one of
them (``register`` imports ``github`` before anything else) must not meet an import circle
that the app's own import order happens to hide."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import gatekeeper

MODULES = [
    f"gatekeeper.{module.name}"
    for module in pkgutil.iter_modules(gatekeeper.__path__)
    if module.name not in ("__main__", "migrations")  # __main__ runs the command line
]

# A fresh interpreter loads the libraries the package uses (an import circle is the
# package's own, so they cannot hide one), then forks a child per module that imports it
# first: each costs a fork, not an interpreter's start and SQLAlchemy's import.
FIRST_IMPORTS = """
import importlib, json, os, sys, traceback
import flask, github, jinja2, sqlalchemy, sqlmodel, werkzeug
results = {}
for name in sys.argv[1:]:
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read)
        try:
            importlib.import_module(name)
        except BaseException:
            os.write(write, traceback.format_exc().strip().splitlines()[-1].encode())
            os._exit(1)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as why:
        said = why.read().decode()
    _, status = os.waitpid(child, 0)
    results[name] = said if status else ""
print(json.dumps(results))
"""


def first_imports(names: list[str]) -> dict[str, str]:
    """What importing each of ``names`` first in a fresh interpreter raised, by name (nothing
    for one that imported)."""
    done = subprocess.run(
        [sys.executable, "-c", FIRST_IMPORTS, *names],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(done.stdout))


def test_every_module_imports_first():
    """Each ``gatekeeper`` module, imported first in a fresh interpreter, imports."""
    assert "gatekeeper.github" in MODULES
    results = first_imports(MODULES)
    assert sorted(results) == sorted(MODULES)
    assert {name: why for name, why in results.items() if why} == {}


def test_an_import_circle_is_seen(tmp_path, monkeypatch):
    """The check fails on a module that meets a circle when imported first."""
    package = tmp_path / "circled"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from circled.b import B\nA = 1\n")
    (package / "b.py").write_text("from circled.a import A\nB = 2\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    results = first_imports(["circled.a", "circled.b"])
    assert "ImportError" in results["circled.a"]
    assert "circled.a" in results["circled.a"] or "circular" in results["circled.a"]
