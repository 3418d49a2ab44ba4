"""``handoff.status`` to external bots: a bus listener that turns conversation events into status events.

Accepted when an agent takes the conversation, completed when it closes (or goes back to the bot),
failed when routing could not place it or it ended before anyone took it (Bot Framework hand-off
protocol; seed notes §1.3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from warmline.channels.botconnector.actions import do_record_handoff_status
from warmline.channels.botconnector.outbound import BotUnavailable, ExternalBot
from warmline.conversations.reads import get_conversation
from warmline.events import ALL_TOPICS, Bus, Event
from warmline.handoff.actions import CONVERSATION_RETURNED
from warmline.routing.actions import CONVERSATION_ASSIGNED, CONVERSATION_CLOSED
from warmline.store import Database

log = logging.getLogger(__name__)

# Conversation-topic events (the agent-topic copy of ``conversation.assigned`` carries no "agent").
WATCHED = {
    CONVERSATION_ASSIGNED: "assigned",
    CONVERSATION_CLOSED: "closed",
    CONVERSATION_RETURNED: "returned",
}


class HandoffStatusNotifier:
    """Watches every event of this process and tells external bots how their hand-offs went."""

    def __init__(self, db: Database, bus: Bus, bot: ExternalBot, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.bus = bus
        self.bot = bot
        self.clock = clock

    async def run(self) -> None:
        """Listen until cancelled; one failing bot never stops the others' statuses."""
        subscription = self.bus.subscribe(ALL_TOPICS)
        try:
            while True:
                event = await subscription.get()
                if subscription.overflowed:
                    subscription.overflowed = False
                    log.warning("hand-off status listener fell behind; some statuses may be missing")
                kind = WATCHED.get(event.name)
                if kind is None or (kind == "assigned" and "agent" not in event.data):
                    continue
                try:
                    await self.handle(event, kind)
                except Exception:
                    log.exception("hand-off status for %s failed", event.topic)
        finally:
            subscription.close()

    async def handle(self, event: Event, kind: str) -> None:
        """Record and send the status one conversation event means, if its bot is external."""
        reason = event.data.get("reason") if kind == "closed" else None
        await self.notify(event.topic, kind, message=reason if isinstance(reason, str) else None)

    async def notify(self, conversation_id: str, kind: str, *, message: str | None = None) -> None:
        """Send the bot the status ``kind`` means now (nothing when the bot is not external)."""
        async with self.db.reading() as session:
            conversation = await get_conversation(session, conversation_id)
        if conversation is None:
            return
        settings = await self.bot.settings(conversation)
        if settings is None:
            return
        async with self.db.transaction() as tx:
            stored = await do_record_handoff_status(tx, conversation_id, kind, self.clock(), message=message)
        if stored is None:
            return
        try:
            await self.bot.send(conversation, stored.activity, settings)
        except BotUnavailable as error:
            # At most once: the status stays in the log for the agent; the bot missed it.
            log.warning("bot of %s missed handoff.status: %s", conversation_id, error)
