"""Engine, sessions and the unit of work that publishes events only after commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolResetState

from warmline.events import Bus, Event


class Transaction:
    """One unit of work: a session plus the events to publish if, and only if, it commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        """Queue an event for after commit; a rollback drops it."""
        self.events.append(event)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; NORMAL sync is durable across process
    # crashes (SIGKILL), which is the failure the product promises to survive.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
    # Replaces the pool's rollback-on-return, which on aiosqlite is a thread hop per session even
    # though the session has just committed or rolled back: roll back only what SQLite says is open.
    if state.asyncio_safe and not state.terminate_only and dbapi_connection.driver_connection.in_transaction:
        dbapi_connection.rollback()


class Database:
    """The store of one deployment: engine, session factory and the event bus actions publish to."""

    def __init__(self, url: str, bus: Bus, *, schema: str | None = None, echo: bool = False) -> None:
        self.url = url
        self.bus = bus
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs.update(pool_reset_on_return=None)
        else:
            kwargs.update(pool_size=20, max_overflow=20, pool_pre_ping=True)
            if schema:
                kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "reset", _sqlite_reset)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time; queueing writers here instead of in SQLite's busy
        # loop keeps latency flat under concurrency and avoids "database is locked" errors.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Run a unit of work; commit on success, then publish its events."""
        if self._write_lock is None:
            async with self._unit() as work:
                yield work
        else:
            async with self._write_lock, self._unit() as work:
                yield work

    @asynccontextmanager
    async def _unit(self) -> AsyncIterator[Transaction]:
        async with self._sessions() as session, session.begin():
            work = Transaction(session)
            yield work
        self.bus.publish(work.events)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only session (no write lock)."""
        async with self._sessions() as session:
            yield session

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
