"""Voice actions: a call starts and ends a conversation; the channel's own words join its log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from warmline.activity import Activity, ChannelAccount
from warmline.channels.voice.numbers import VoiceLine
from warmline.conversations.actions import do_append_activity, do_create_conversation
from warmline.conversations.model import Conversation, ConversationState, Customer, Role
from warmline.routing.actions import do_close_conversation, do_end_conversation
from warmline.store import Transaction
from warmline.store.schema import ConversationRow

CHANNEL = "voice"
VOICE_SYSTEM = ChannelAccount(id="warmline-voice", name="Warmline", role="bot")


def phone_context(caller: str, dialled: str) -> dict[str, dict[str, object]]:
    """The context a call starts with: caller ID and dialled number (seed §2.2 telephony variables)."""
    return {
        "CustomerPhoneNumber": {"value": caller, "isDisplayable": True},
        "OrganizationPhoneNumber": {"value": dialled, "isDisplayable": True},
    }


async def do_start_call(
    tx: Transaction,
    *,
    conversation_id: str,
    line: VoiceLine,
    caller: str,
    bot: tuple[str, int],
    now: datetime,
) -> Conversation:
    """An answered call becomes a bot-owned conversation in the line's voice workstream."""
    conversation = await do_create_conversation(
        tx,
        conversation_id=conversation_id,
        channel=CHANNEL,
        customer=Customer(id=f"tel:{caller}", name=caller),
        context=phone_context(caller, line.number),
        bot=bot,
        now=now,
    )
    row = await tx.session.get(ConversationRow, conversation_id)
    assert row is not None
    # Known from the number dialled, before any hand-off: a hand-off routes into this workstream.
    row.environment_id, row.workstream_id = line.environment, line.workstream
    return conversation


async def do_end_call(tx: Transaction, conversation_id: str, actor: str, reason: str, now: datetime) -> None:
    """The call is over: close its conversation (an agent's goes to wrap-up, a queued one leaves)."""
    state = await tx.session.scalar(
        select(ConversationRow.state).where(ConversationRow.id == conversation_id)
    )
    if state is None or state == ConversationState.CLOSED:
        return
    if state == ConversationState.ACTIVE:
        await do_end_conversation(tx, conversation_id, actor, now)
        return
    if state == ConversationState.WAITING:
        reason = f"{reason} while waiting in the queue"
    await do_close_conversation(tx, conversation_id, actor, reason, now)


async def do_tell_caller(tx: Transaction, conversation_id: str, text: str, now: datetime) -> None:
    """Something the voice channel itself says (a refused transfer): stored, then spoken."""
    await do_append_activity(
        tx,
        conversation_id,
        Activity(type="message", text=text, text_format="plain", from_=VOICE_SYSTEM),
        role=Role.SYSTEM,
        now=now,
    )
