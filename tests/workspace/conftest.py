"""Workspace test fixtures: two environments, the demo bot behind the demo widget, a movable clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.support import DatabaseUnderTest, LiveServer
from tests.workspace.helpers import prepare
from warmline.runtime import utc_now


class Clock:
    """The server's clock: real time plus an offset a test can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utc_now() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(database: DatabaseUnderTest, tmp_path: Path, clock: Clock) -> Iterator[LiveServer]:
    """The app on 127.0.0.1 with env1 (ava, ben, cat, supervisor sam) and env2 (supervisor zed)."""
    asyncio.run(prepare(database))
    live = LiveServer(database.settings(upload_dir=tmp_path / "uploads"), clock=clock).start()
    yield live
    live.stop()
