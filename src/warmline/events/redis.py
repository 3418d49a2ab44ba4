"""Events across processes through Redis pub/sub.

Each process publishes its committed events to one Redis channel and runs one listener that feeds
events from other processes to its local subscribers. Redis only carries wake-up calls: the store
stays the source of truth, so a subscriber that misses events during a Redis outage catches up by
watermark. Wildcard (``*``) subscribers see the events of every process; listeners that act on them
(such as the external-bot status notifier) record what they did under a row lock, so each effect
happens once however many processes hear the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Iterable
from typing import Any

import redis.asyncio as redis

from warmline.events.bus import Event, InProcessBus, Subscription

log = logging.getLogger(__name__)
CHANNEL = "warmline:events"


class RedisBus:
    """A ``Bus`` whose events reach every process sharing the Redis server."""

    def __init__(self, url: str, *, channel: str = CHANNEL, retry_seconds: float = 1.0) -> None:
        self.local = InProcessBus()
        self.url = url
        self.channel = channel
        self.origin = uuid.uuid4().hex
        self.retry_seconds = retry_seconds
        self.connected = False
        self.last_error: str | None = None
        self._client: redis.Redis = redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=100_000)
        self._tasks: list[asyncio.Task[None]] = []

    def publish(self, events: Iterable[Event]) -> None:
        batch = list(events)
        if not batch:
            return
        self.local.publish(batch)
        message = json.dumps(
            {"origin": self.origin, "events": [[e.name, e.topic, e.data] for e in batch]}, default=str
        )
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            self.last_error = "outbox full: Redis is too slow or down; peers catch up from the store"

    def subscribe(self, topic: str) -> Subscription:
        return self.local.subscribe(topic)

    async def start(self) -> None:
        """Start the sender and the listener (they reconnect by themselves)."""
        self._tasks = [asyncio.create_task(self._send()), asyncio.create_task(self._listen())]

    async def stop(self) -> None:
        """Stop background tasks and close the connection."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()

    def health(self) -> dict[str, Any]:
        """For the health endpoint: whether Redis is reachable now, and the last problem."""
        return {"backend": "redis", "connected": self.connected, "last_error": self.last_error}

    async def _send(self) -> None:
        while True:
            message = await self._outbox.get()
            while True:
                try:
                    await self._client.publish(self.channel, message)
                    break
                except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
                    self._down(error)
                    await asyncio.sleep(self.retry_seconds)

    async def _listen(self) -> None:
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                if not self.connected:
                    log.info("event bus: connected to Redis at %s", self.url)
                self.connected, self.last_error = True, None
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._deliver(message["data"])
            except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
                self._down(error)
                await asyncio.sleep(self.retry_seconds)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped

    def _deliver(self, raw: bytes | str) -> None:
        try:
            payload = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("event bus: ignoring a malformed message on %s", self.channel)
            return
        if payload.get("origin") == self.origin:
            return  # already delivered locally
        events = [Event(name, topic, data) for name, topic, data in payload.get("events", [])]
        self.local.publish_from_peer(events)

    def _down(self, error: BaseException) -> None:
        if self.connected or self.last_error is None:
            log.warning("event bus: Redis unavailable (%s); retrying every %.1f s", error, self.retry_seconds)
        self.connected = False
        self.last_error = str(error)
