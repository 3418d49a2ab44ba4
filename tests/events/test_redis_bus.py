"""The Redis bus carries events between processes (two buses stand in for two processes)."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from warmline.events import Event
from warmline.events.redis import RedisBus

REDIS_URL = os.environ.get("WARMLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _connected(*buses: RedisBus) -> None:
    for _ in range(100):
        if all(b.connected for b in buses):
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"Redis at {REDIS_URL} is not reachable: {[b.last_error for b in buses]}")


async def test_events_reach_subscribers_in_another_process_once() -> None:
    channel = f"warmline:test:{uuid.uuid4().hex}"
    first, second = RedisBus(REDIS_URL, channel=channel), RedisBus(REDIS_URL, channel=channel)
    await first.start()
    await second.start()
    try:
        await _connected(first, second)
        local = first.subscribe("conv-1")
        remote = second.subscribe("conv-1")
        first.publish([Event("activity.added", "conv-1", {"seq": 1})])
        assert (await asyncio.wait_for(local.get(), 2)).data == {"seq": 1}
        assert (await asyncio.wait_for(remote.get(), 2)).data == {"seq": 1}
        with pytest.raises(TimeoutError):  # the publisher does not hear its own event twice
            await asyncio.wait_for(local.get(), 0.3)
        assert first.health() == {"backend": "redis", "connected": True, "last_error": None}
    finally:
        await first.stop()
        await second.stop()


async def test_an_unreachable_redis_is_reported_and_local_delivery_goes_on() -> None:
    bus = RedisBus("redis://127.0.0.1:1/0", retry_seconds=0.05)
    await bus.start()
    try:
        subscription = bus.subscribe("conv-2")
        bus.publish([Event("activity.added", "conv-2", {"seq": 7})])
        assert (await asyncio.wait_for(subscription.get(), 2)).data == {"seq": 7}
        for _ in range(100):
            if bus.last_error:
                break
            await asyncio.sleep(0.02)
        assert bus.health()["connected"] is False
        assert bus.last_error
    finally:
        await bus.stop()
