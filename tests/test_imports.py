"""Every module of the package imports on its own, first: a command that needs only one of
them (``register`` imports ``github`` before anything else) must not meet an import circle
that the app's own import order happens to hide."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import gatekeeper

MODULES = [
    f"gatekeeper.{module.name}"
    for module in pkgutil.iter_modules(gatekeeper.__path__)
    if module.name not in ("__main__", "migrations")  # __main__ runs the command line
]

# A fresh interpreter loads the libraries the package uses (an import circle is the
# package's own, so they cannot hide one), then forks a child per module that imports it
# first: each costs a fork, not an interpreter's start and SQLAlchemy's import. Once the
# modules that ``PRELOAD`` imports have each been imported first, the parent imports them
# too, and the other modules' children start from there: a circle through one of them
# would need it to import the child's module, which would then be among them.
PRELOAD = "gatekeeper.models"  # the tables: a quarter of a second to define, for every child
FIRST_IMPORTS = """
import importlib, json, os, sys, traceback
import flask, github, jinja2, sqlalchemy, sqlmodel, werkzeug

def first(name):
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
    return said if status else ""

preload, names = sys.argv[1], sys.argv[2:]
before = set(sys.modules)
results = {}
if preload:
    # What importing it loads, learned in a child, each of those then imported first.
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read)
        importlib.import_module(preload)
        os.write(write, json.dumps(sorted(set(sys.modules) - before)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as told:
        loaded = [name for name in json.loads(told.read() or b"[]") if name in names]
    os.waitpid(child, 0)
    results = {name: first(name) for name in loaded}
    if loaded and not any(results.values()):
        importlib.import_module(preload)
for name in names:
    if name not in results:
        results[name] = first(name)
print(json.dumps(results))
"""


def first_imports(names: list[str], *, preload: str = "") -> dict[str, str]:
    """What importing each of ``names`` first in a fresh interpreter raised, by name (nothing
    for one that imported); ``preload``'s modules are imported first before the others."""
    done = subprocess.run(
        [sys.executable, "-c", FIRST_IMPORTS, preload, *names],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(done.stdout))


def test_every_module_imports_first():
    """Each ``gatekeeper`` module, imported first in a fresh interpreter, imports."""
    assert "gatekeeper.github" in MODULES
    results = first_imports(MODULES, preload=PRELOAD)
    assert sorted(results) == sorted(MODULES)
    assert {name: why for name, why in results.items() if why} == {}


@pytest.mark.parametrize("preload", ["", "circled.tables"], ids=["alone", "preloaded"])
def test_an_import_circle_is_seen(tmp_path, monkeypatch, preload):
    """The check fails on a module that meets a circle when imported first, with or without
    a preloaded module beside it, and passes the modules that import."""
    package = tmp_path / "circled"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text("BASE = 0\n")
    (package / "tables.py").write_text("from circled.base import BASE\nTABLES = 1\n")
    (package / "a.py").write_text(
        "from circled.tables import TABLES\nfrom circled.b import B\nA = 1\n"
    )
    (package / "b.py").write_text("from circled.a import A\nB = 2\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    names = ["circled.base", "circled.tables", "circled.a", "circled.b"]
    results = first_imports(names, preload=preload)
    assert "ImportError" in results["circled.a"]
    assert "circled.a" in results["circled.a"] or "circular" in results["circled.a"]
    assert results["circled.base"] == results["circled.tables"] == ""
