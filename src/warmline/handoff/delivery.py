"""Who answers a customer's activity: the ownership state machine.

While the bot owns a conversation the bot answers; once it hands off, the conversation waits in a
queue or belongs to an agent and the bot never speaks again until an agent hands it back. After
the agent ends it, a post-conversation survey may own it until the customer answers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from warmline.activity import Activity
from warmline.bot.actions import do_greet_customer, do_run_bot_turn
from warmline.bot.base import Bot, Turn
from warmline.conversations.actions import do_append_activity
from warmline.conversations.model import Conversation, Role, StoredActivity
from warmline.conversations.reads import get_conversation
from warmline.handoff.actions import do_hand_off
from warmline.handoff.payload import HANDOFF_EVENT
from warmline.handoff.survey import SURVEY_OWNER, do_record_survey_answer
from warmline.store import Database

Clock = Callable[[], datetime]


async def do_deliver_customer_activity(
    db: Database, bot: Bot, conversation: Conversation, activity: Activity, clock: Clock
) -> StoredActivity:
    """Store the customer's activity; the bot answers only while it owns the conversation."""
    async with db.transaction() as tx:
        stored, is_new = await do_append_activity(
            tx, conversation.id, activity, role=Role.CUSTOMER, now=clock()
        )
    if not is_new:
        return stored
    async with db.reading() as session:
        current = await get_conversation(session, conversation.id) or conversation
    if current.owner == "bot":
        replies = await do_run_bot_turn(db, bot, Turn(current, stored.activity), clock)
        await _follow_bot(db, current, replies, clock)
    elif current.owner == SURVEY_OWNER:
        async with db.transaction() as tx:
            await do_record_survey_answer(tx, current.id, stored.activity, clock())
    return stored


async def do_start_with_bot(db: Database, bot: Bot, conversation: Conversation, clock: Clock) -> None:
    """The customer joined: the bot greets (and may hand off at once)."""
    replies = await do_greet_customer(db, bot, conversation, clock)
    await _follow_bot(db, conversation, replies, clock)


async def _follow_bot(
    db: Database, conversation: Conversation, replies: list[StoredActivity], clock: Clock
) -> None:
    for reply in replies:
        activity = reply.activity
        if activity.type == "event" and activity.name == HANDOFF_EVENT and not conversation.bot_only:
            value = activity.value if isinstance(activity.value, dict) else {}
            async with db.transaction() as tx:
                await do_hand_off(tx, conversation.id, reply.seq, value, clock())
            return
