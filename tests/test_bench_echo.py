"""The benchmark's raw WebSocket echo baseline: off unless asked for, a plain echo when on."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.support import DatabaseUnderTest, LiveServer


async def test_echo_endpoint_is_not_mounted_by_default(live_server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(f"ws://127.0.0.1:{live_server.port}/bench/echo", open_timeout=5):
            pass
    assert refused.value.response.status_code in {403, 404}


async def test_echo_endpoint_sends_every_text_frame_back(database: DatabaseUnderTest) -> None:
    server = LiveServer(database.settings(bench_echo=True)).start()
    try:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/bench/echo", open_timeout=5) as ws:
            for text in ["hello", '{"type":"message"}', "x" * 70_000]:
                await ws.send(text)
                assert await asyncio.wait_for(ws.recv(), 5) == text
    finally:
        server.stop()
