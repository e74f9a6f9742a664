"""Every store test runs on SQLite and on PostgreSQL (from SYNCD_TEST_POSTGRES_URL; in CI a missing URL fails)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, make_url, text

from syncd.store import Store

POSTGRES_URL = os.environ.get("SYNCD_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = Store(f"sqlite:///{tmp_path / 'syncd.db'}")
        opened.migrate()
        yield opened
        opened.close()
        return
    with schema_store() as opened:
        opened.migrate()
        yield opened


@contextmanager
def schema_store() -> Iterator[Store]:
    """A store (not migrated) in a schema of its own of the shared PostgreSQL test database, dropped after."""
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("SYNCD_TEST_POSTGRES_URL is not set: CI must run the store tests on PostgreSQL")
        pytest.skip("SYNCD_TEST_POSTGRES_URL is not set (PostgreSQL tests run in CI)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    opened = Store(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield opened
    finally:
        opened.close()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a PostgreSQL database of its own (the shared one keeps its schema): created empty, dropped after."""
    if not POSTGRES_URL:
        pytest.skip("SYNCD_TEST_POSTGRES_URL is not set (PostgreSQL tests run in CI)")
    name = f"syncd_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _schema_head() -> str:
    config = AlembicConfig()
    config.set_main_option(
        "script_location", str(Path(__file__).resolve().parents[2] / "syncd" / "store" / "migrations")
    )
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


SCHEMA_HEAD = _schema_head()
"""The newest schema revision this syncd knows: where a migrated store is, what a newer one is refused against."""
