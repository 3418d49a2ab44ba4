"""Run the bot on what a customer sends and store what it answers."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from datetime import datetime

from warmline.activity import Activity, ActivityType, ChannelAccount
from warmline.bot.base import Bot, BotReply, Turn
from warmline.conversations.actions import do_append_activity
from warmline.conversations.model import Conversation, Role, StoredActivity
from warmline.store import Database

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# One turn at a time per conversation in this process: a bot reads its state, answers and saves;
# two overlapping turns would otherwise both start from the same state and one would be lost.
_turn_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def _turn_lock(conversation_id: str) -> asyncio.Lock:
    lock = _turn_locks.get(conversation_id)
    if lock is None:
        lock = asyncio.Lock()
        _turn_locks[conversation_id] = lock
    return lock


async def do_receive_customer_activity(
    db: Database, bot: Bot, conversation: Conversation, activity: Activity, clock: Clock
) -> StoredActivity:
    """Store the customer's activity, then let the owning bot answer it.

    The customer's activity commits on its own first: if the bot fails, what the customer said is
    never lost, and their client sees its own message echoed with the server id.
    """
    async with db.transaction() as tx:
        stored, is_new = await do_append_activity(
            tx, conversation.id, activity, role=Role.CUSTOMER, now=clock()
        )
    if is_new and conversation.owner == "bot":
        await do_run_bot_turn(db, bot, Turn(conversation, stored.activity), clock)
    return stored


async def do_greet_customer(
    db: Database, bot: Bot, conversation: Conversation, clock: Clock
) -> list[StoredActivity]:
    """Tell the bot the customer joined (``conversationUpdate``) so it can greet them."""
    joined = Activity(
        type=ActivityType.CONVERSATION_UPDATE,
        members_added=[ChannelAccount(id=conversation.customer.id, name=conversation.customer.name)],
        from_=ChannelAccount(id=conversation.customer.id, name=conversation.customer.name),
    )
    async with db.transaction() as tx:
        stored, _ = await do_append_activity(tx, conversation.id, joined, role=Role.SYSTEM, now=clock())
    return await do_run_bot_turn(db, bot, Turn(conversation, stored.activity), clock)


async def do_run_bot_turn(db: Database, bot: Bot, turn: Turn, clock: Clock) -> list[StoredActivity]:
    """Let the bot answer one stored activity; returns its stored replies."""
    async with _turn_lock(turn.conversation.id):
        return await _answer_locked(db, bot, turn, clock)


async def _answer_locked(db: Database, bot: Bot, turn: Turn, clock: Clock) -> list[StoredActivity]:
    try:
        reply = await bot.on_turn(turn)
    except Exception:
        log.exception("bot %s failed on %s", bot.name, turn.activity.id)
        reply = BotReply(
            [
                Activity(
                    type=ActivityType.MESSAGE,
                    text="Sorry, something went wrong on our side. Please try again.",
                )
            ]
        )
    if not reply.activities and reply.save is None:
        return []
    stored_replies: list[StoredActivity] = []
    # The bot's new state and its replies commit together: a crash never leaves one without the other.
    async with db.transaction() as tx:
        if reply.save is not None:
            await reply.save(tx)
        for activity in reply.activities:
            if (
                activity.type == ActivityType.MESSAGE
                and activity.reply_to_id is None
                and turn.activity.type == "message"
            ):
                activity = activity.model_copy(update={"reply_to_id": turn.activity.id})
            stored, _ = await do_append_activity(
                tx, turn.conversation.id, activity, role=Role.BOT, now=clock()
            )
            stored_replies.append(stored)
    return stored_replies
