"""The event bus protocol and its in-process implementation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Event:
    """Something that happened, named ``noun.past_verb``, addressed to a topic (a conversation id)."""

    name: str
    topic: str
    data: dict[str, Any] = field(default_factory=dict)


class Subscription:
    """A live feed of one topic's events; close it when the listener goes away."""

    def __init__(self, bus: InProcessBus, topic: str, maxsize: int) -> None:
        self.topic = topic
        self._bus = bus
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        """Queue an event; a listener too slow to keep up is flagged to resync from the store."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True

    async def get(self) -> Event:
        """Wait for the next event."""
        return await self._queue.get()

    def close(self) -> None:
        """Stop receiving events."""
        self._bus.unsubscribe(self)


class Bus(Protocol):
    """What actions and listeners need from an event bus."""

    def publish(self, events: Iterable[Event]) -> None:
        """Deliver committed events to current subscribers."""

    def subscribe(self, topic: str) -> Subscription:
        """Start receiving events of ``topic`` (``"*"``: every event)."""


# Subscribing to this topic receives every event, whatever its topic (listeners that fan out).
ALL_TOPICS = "*"


class InProcessBus:
    """Fan-out to subscribers in this process; enough for a single-process deployment."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}
        self._queue_size = queue_size

    def publish(self, events: Iterable[Event]) -> None:
        for event in events:
            for subscription in tuple(self._subscribers.get(event.topic, ())):
                subscription.offer(event)
            for subscription in tuple(self._subscribers.get(ALL_TOPICS, ())):
                subscription.offer(event)

    def publish_from_peer(self, events: Iterable[Event]) -> None:
        """Deliver events another process published (a Redis bus feeds them in here)."""
        self.publish(events)

    def subscribe(self, topic: str) -> Subscription:
        subscription = Subscription(self, topic, self._queue_size)
        self._subscribers.setdefault(topic, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a subscription (called by ``Subscription.close``)."""
        subscribers = self._subscribers.get(subscription.topic)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscribers[subscription.topic]
