"""The Alembic migrations build exactly the models' schema, and run down and up again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import gatekeeper.models  # noqa: F401  (registers every table on SQLModel.metadata)
from gatekeeper import db
from gatekeeper.config import normalise_database_url


@pytest.fixture
def url(database_url: str) -> str:
    """The empty test database's URL in the form the app uses."""
    return normalise_database_url(database_url)


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def schema_differences(engine: sa.Engine) -> list:
    """What autogenerate would change to make the database match the models."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


def application_tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_head_gives_exactly_the_models_schema(url, engine):
    """On an empty database, upgrade head leaves nothing for autogenerate to add or change."""
    db.upgrade(url)
    assert application_tables(engine) == set(SQLModel.metadata.tables)
    assert schema_differences(engine) == []


def test_upgrade_head_records_the_single_head(url, engine):
    """The database ends at the script directory's one head revision."""
    db.upgrade(url)
    heads = ScriptDirectory.from_config(db.alembic_config(url)).get_heads()
    assert len(heads) == 1
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_heads() == tuple(heads)


def test_downgrade_base_then_upgrade_head(url, engine):
    """Every revision's downgrade() works, and upgrading again rebuilds the same schema."""
    config = db.alembic_config(url)
    db.upgrade(url)
    command.downgrade(config, "base")
    assert application_tables(engine) == set()
    db.upgrade(url)
    assert schema_differences(engine) == []


def test_the_open_mentorship_index_is_partial(url, engine):
    """The migration creates the unique index on open mentorships only (ended_at IS NULL)."""
    db.upgrade(url)
    [index] = [
        i
        for i in sa.inspect(engine).get_indexes("mentorship")
        if i["name"] == "uq_mentorship_open_mentee"
    ]
    assert index["unique"] and index["column_names"] == ["mentee"]
    [where] = [str(v) for k, v in index["dialect_options"].items() if k.endswith("_where")]
    assert where.strip("()") == "ended_at IS NULL"


def test_the_head_read_from_the_files_is_alembics(url):
    """The head found without Alembic (to skip importing it at head) is Alembic's own."""
    heads = ScriptDirectory.from_config(db.alembic_config(url)).get_heads()
    assert db.head_revisions() == set(heads)


def test_upgrade_if_behind_brings_a_new_database_to_head(url):
    """A database never migrated is at no revision; upgrade_if_behind takes it to the head."""
    engine = db.make_engine(url)
    try:
        assert db.schema_revisions(engine) == set()
        db.upgrade_if_behind(url, engine)
        assert db.schema_revisions(engine) == db.head_revisions()
    finally:
        engine.dispose()
