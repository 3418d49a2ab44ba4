"""Typed events and the bus that carries them to live subscribers after a commit.

The bus is a seam: in-process by default, Redis when several processes serve one deployment.
The database stays the source of truth; a subscriber that misses an event catches up by watermark.
"""

from warmline.events.bus import ALL_TOPICS, Bus, Event, InProcessBus, Subscription

__all__ = ["ALL_TOPICS", "Bus", "Event", "InProcessBus", "Subscription"]
