"""The fake forum and an app that reads votes from it, shared by the forum's test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakediscourse import FakeDiscourse
from flask import Flask

from database_support import migrate
from gatekeeper import create_app

KEY, USER = "d1s-c0urse-key-kept-secret", "gatekeeper-bot"
STAFF_KEY, STAFF = "staff-key-also-secret", "forum-admin"


@pytest.fixture
def forum() -> Iterator[FakeDiscourse]:
    """The fake forum, knowing the service's API key (a member of the private categories)."""
    with FakeDiscourse() as fake:
        fake.add_user(USER, KEY)
        fake.add_user(STAFF, STAFF_KEY, staff=True)
        yield fake


@pytest.fixture
def forum_app(database_url: str, forum: FakeDiscourse) -> Iterator[Flask]:
    """The app on SQLite or PostgreSQL, reading votes from the fake forum; boss maintains."""
    migrate(database_url)  # the migrated schema, copied rather than migrated again
    app = create_app(
        {
            "database_url": database_url,
            "secret_key": "test",
            "maintainers": "boss",
            "discourse_url": forum.url,
            "discourse_api_key": KEY,
            "discourse_api_username": USER,
        }
    )
    yield app
    app.extensions["gatekeeper.engine"].dispose()
