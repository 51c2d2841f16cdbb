"""What ``create_app`` attaches to the app, read back by the modules that need it.

It lives apart from the package's ``__init__`` so that no module imports the one that
builds the app: imports only run downward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from gatekeeper.config import Settings
    from gatekeeper.github import GitHubApp


def github_of(app: Flask) -> GitHubApp | None:
    """The App's GitHub client, or None where GitHub is not configured."""
    return app.extensions["gatekeeper.github"]


def settings_of(app: Flask) -> Settings:
    """The typed settings ``create_app`` attached to ``app``."""
    return app.extensions["gatekeeper.settings"]
