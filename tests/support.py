"""Test support: databases on both backends, and a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import uvicorn

from warmline.app import create_app
from warmline.config import Settings
from warmline.demo import seed_demo
from warmline.events import InProcessBus
from warmline.runtime import utc_now
from warmline.store import Database
from warmline.store.migrate import upgrade_database

PG_URL_ENV = "WARMLINE_TEST_DATABASE_URL"
TEST_SECRET = "test-directline-secret"


@dataclass(frozen=True)
class DatabaseUnderTest:
    """Where a test's data lives: a URL and, on PostgreSQL, a schema of its own."""

    url: str
    schema: str | None = None

    @property
    def backend(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"

    def settings(self, **overrides: object) -> Settings:
        """Settings pointing at this database."""
        values: dict[str, object] = {
            "database_url": self.url,
            "database_schema": self.schema,
            "secret_key": "test-secret-key-0123456789-abcdefghijkl",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    def env(self) -> dict[str, str]:
        """Environment variables that point a ``warmline`` subprocess at this database."""
        env = {
            "WARMLINE_DATABASE_URL": self.url,
            "WARMLINE_SECRET_KEY": "test-secret-key-0123456789-abcdefghijkl",
        }
        if self.schema:
            env["WARMLINE_DATABASE_SCHEMA"] = self.schema
        return env


def backends() -> list[str]:
    """SQLite always; PostgreSQL too when ``WARMLINE_TEST_DATABASE_URL`` is set."""
    return ["sqlite", "postgresql"] if os.environ.get(PG_URL_ENV) else ["sqlite"]


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@contextlib.contextmanager
def provision_database(backend: str, tmp_path: Path) -> Iterator[DatabaseUnderTest]:
    """A fresh, migrated database for one test, removed afterwards."""
    if backend == "sqlite":
        database = DatabaseUnderTest(f"sqlite+aiosqlite:///{tmp_path / 'warmline.db'}")
        asyncio.run(_migrate(database))
        yield database
        return
    url = os.environ[PG_URL_ENV]
    schema = f"wl_test_{secrets.token_hex(6)}"
    asyncio.run(_pg_execute(url, f'CREATE SCHEMA "{schema}"'))
    try:
        database = DatabaseUnderTest(url, schema)
        asyncio.run(_migrate(database))
        yield database
    finally:
        asyncio.run(_pg_execute(url, f'DROP SCHEMA "{schema}" CASCADE'))


async def _pg_execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(_pg_dsn(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _migrate(database: DatabaseUnderTest) -> None:
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        await upgrade_database(db.engine)
        await seed_demo(db, TEST_SECRET, utc_now())
    finally:
        await db.dispose()


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a background thread; stops when the test ends."""

    def __init__(self, settings: Settings, **app_options: object) -> None:
        self.port = free_port()
        self.app = create_app(settings, **app_options)  # type: ignore[arg-type]
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", ws_ping_interval=None
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def domain(self) -> str:
        """The Direct Line domain clients are given."""
        return f"{self.url}/v3/directline"

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
