"""Fixtures shared by every test: a migrated database per test on each backend, live servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import TEST_SECRET, DatabaseUnderTest, LiveServer, backends, provision_database
from warmline.events import InProcessBus
from warmline.store import Database


@pytest.fixture(params=backends())
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseUnderTest]:
    """A fresh migrated database with the demo widget, on SQLite and (if configured) PostgreSQL."""
    with provision_database(request.param, tmp_path) as db:
        yield db


@pytest.fixture
async def db(database: DatabaseUnderTest) -> AsyncIterator[Database]:
    """A connected ``Database`` with an in-process bus."""
    store = Database(database.url, InProcessBus(), schema=database.schema)
    yield store
    await store.dispose()


@pytest.fixture
def live_server(database: DatabaseUnderTest, tmp_path: Path) -> Iterator[LiveServer]:
    """The whole app served by uvicorn on 127.0.0.1 (echo bot, demo widget)."""
    server = LiveServer(database.settings(upload_dir=tmp_path / "uploads")).start()
    yield server
    server.stop()


@pytest.fixture
def secret() -> str:
    """The Direct Line secret of the seeded demo widget."""
    return TEST_SECRET
