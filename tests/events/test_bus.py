"""The in-process bus: topic subscriptions and the ``"*"`` subscription that sees everything."""

from __future__ import annotations

import asyncio

from warmline.events import ALL_TOPICS, Event, InProcessBus, Subscription


async def _drain(subscription: Subscription, count: int) -> list[Event]:
    return [await asyncio.wait_for(subscription.get(), timeout=1) for _ in range(count)]


async def test_a_wildcard_subscription_receives_every_topic_and_a_topic_only_its_own() -> None:
    bus = InProcessBus()
    everything = bus.subscribe(ALL_TOPICS)
    one = bus.subscribe("conv-1")
    events = [
        Event("a.happened", "conv-1"),
        Event("b.happened", "agent:env:ava"),
        Event("c.happened", "conv-2"),
    ]
    bus.publish(events)

    assert await _drain(everything, 3) == events
    assert await _drain(one, 1) == [events[0]]
    assert one._queue.empty()

    everything.close()
    bus.publish([Event("d.happened", "conv-1")])
    assert everything._queue.empty()
    assert (await _drain(one, 1))[0].name == "d.happened"
