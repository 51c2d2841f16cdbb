"""The newest migration, read from the revision files alone: no Alembic, no SQLAlchemy, so
that a command which only reads can tell whether its database is behind at no cost."""

from __future__ import annotations

import re
from pathlib import Path

MIGRATIONS = Path(__file__).parent / "migrations"
# The lines of a revision file naming it and its parents: down_revision: str | None = "0008"
# (a merge names a tuple of them).
_REVISION_LINE = re.compile(r"^(down_revision|revision)\b[^=]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


def head_revisions() -> set[str]:
    """The newest migration's revision id (one, unless the history forks), read from the
    revision files without importing Alembic: those no other revision names as its parent."""
    named: dict[str, set[str]] = {"revision": set(), "down_revision": set()}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for kind, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            named[kind].update(_QUOTED.findall(value))
    return named["revision"] - named["down_revision"]
