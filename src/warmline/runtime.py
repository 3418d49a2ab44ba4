"""The running deployment's shared parts, built once by ``app.create_app`` and read by handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.requests import HTTPConnection

from warmline.bot import Bot
from warmline.config import Settings
from warmline.events import Bus
from warmline.store import Database


def utc_now() -> datetime:
    """The real clock; tests pass their own."""
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Settings, store, bus, bot and clock of one server process."""

    settings: Settings
    db: Database
    bus: Bus
    bot: Bot
    clock: Callable[[], datetime] = field(default=utc_now)


def get_runtime(connection: HTTPConnection) -> Runtime:
    """FastAPI dependency: the runtime of the app serving this request or WebSocket."""
    runtime: Runtime = connection.app.state.runtime
    return runtime
