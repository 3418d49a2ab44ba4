"""What agents do in the workspace, each in one transaction: accept, talk, note, transfer, end, wrap up.

These wrap the routing and hand-off actions with what the people involved should see: the customer
hears that an agent joined or left, the next agent finds the transfer note in the transcript.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from warmline.activity import Activity, ActivityType, ChannelAccount
from warmline.conversations.actions import do_append_activity
from warmline.conversations.model import ConversationState, Role, StoredActivity
from warmline.handoff.actions import do_return_to_bot
from warmline.handoff.survey import SURVEY_OWNER, do_ask_survey
from warmline.routing.actions import (
    RoutingError,
    do_accept_offer,
    do_close_conversation,
    do_consult,
    do_end_conversation,
    do_force_assign,
    do_transfer_to_agent,
    do_transfer_to_queue,
)
from warmline.store import Transaction
from warmline.store.schema import ConversationRow, OfferRow
from warmline.workspace.access import is_consultant

SYSTEM = ChannelAccount(id="warmline-workspace", name="Warmline", role="bot")
# Private notes and consult messages: in the log for agents, never sent to the customer.
AGENTS_ONLY = "agents"


def agent_account(agent_id: str, name: str) -> ChannelAccount:
    """How an agent appears on the wire: a bot-side participant with their display name."""
    return ChannelAccount(id=f"agent:{agent_id}", name=name, role="bot")


def private(agent_id: str) -> dict[str, Any]:
    """``channelData`` of an agents-only activity."""
    return {"warmline": {"visibility": AGENTS_ONLY, "agent": agent_id}}


async def _say(tx: Transaction, conversation_id: str, text: str, now: datetime) -> None:
    await do_append_activity(
        tx, conversation_id, Activity(type="message", text=text, from_=SYSTEM), role=Role.SYSTEM, now=now
    )


async def _note(
    tx: Transaction, conversation_id: str, agent_id: str, name: str, text: str, now: datetime
) -> StoredActivity:
    stored, _ = await do_append_activity(
        tx,
        conversation_id,
        Activity(
            type="message",
            text=text,
            text_format="plain",
            from_=agent_account(agent_id, name),
            channel_data=private(agent_id),
        ),
        role=Role.AGENT,
        now=now,
    )
    return stored


async def _owned(tx: Transaction, conversation_id: str, agent_id: str) -> ConversationRow:
    row = await tx.session.get(ConversationRow, conversation_id, with_for_update=True)
    if row is None or row.agent_id != agent_id or row.state != ConversationState.ACTIVE:
        raise RoutingError("this conversation is not active with you")
    return row


async def do_accept_work(tx: Transaction, offer_id: str, agent_id: str, name: str, now: datetime) -> str:
    """Accept an offer; the customer learns who joined."""
    offer = await tx.session.get(OfferRow, offer_id)
    if offer is None or offer.agent_id != agent_id:
        raise RoutingError(f"offer '{offer_id}' was not made to you")
    conversation_id = await do_accept_offer(tx, offer_id, agent_id, now)
    await _say(tx, conversation_id, f"{name} joined the chat.", now)
    return conversation_id


async def do_send_agent_message(
    tx: Transaction, conversation_id: str, agent_id: str, name: str, text: str, now: datetime
) -> StoredActivity:
    """The agent writes to the customer (``from`` is the agent's name; role ``bot`` on the wire)."""
    await _owned(tx, conversation_id, agent_id)
    stored, _ = await do_append_activity(
        tx,
        conversation_id,
        Activity(type="message", text=text, text_format="plain", from_=agent_account(agent_id, name)),
        role=Role.AGENT,
        now=now,
    )
    return stored


async def do_add_private_note(
    tx: Transaction, conversation_id: str, agent_id: str, name: str, text: str, now: datetime
) -> StoredActivity:
    """A note only agents see (the owner, consultants, supervisors); never sent to the customer."""
    return await _note(tx, conversation_id, agent_id, name, text, now)


async def do_transfer_work(
    tx: Transaction,
    conversation_id: str,
    agent_id: str,
    name: str,
    *,
    queue: str | None,
    to_agent: str | None,
    note: str | None,
    now: datetime,
) -> None:
    """Hand the conversation to a queue or a named agent, leaving the note in the transcript."""
    await _owned(tx, conversation_id, agent_id)
    if to_agent == agent_id:
        raise RoutingError("you already have this conversation")
    actor = f"agent:{agent_id}"
    if note:
        await _note(tx, conversation_id, agent_id, name, f"Transfer note: {note}", now)
    await _say(
        tx, conversation_id, "I'm transferring you to a colleague who can help; please stay here.", now
    )
    if to_agent:
        await do_transfer_to_agent(tx, conversation_id, to_agent, actor, note, now)
    elif queue:
        await do_transfer_to_queue(tx, conversation_id, queue, actor, note, now)
    else:
        raise RoutingError("say where to transfer: a queue or an agent")


async def do_ask_consult(
    tx: Transaction, conversation_id: str, agent_id: str, name: str, consultant: str, now: datetime
) -> None:
    """Invite another agent to help privately; the customer is not told."""
    await _owned(tx, conversation_id, agent_id)
    if consultant == agent_id:
        raise RoutingError("you cannot consult yourself")
    if await is_consultant(tx.session, conversation_id, consultant):
        raise RoutingError(f"'{consultant}' is already consulting on this conversation")
    await do_consult(tx, conversation_id, consultant, f"agent:{agent_id}", now)
    await _note(tx, conversation_id, agent_id, name, f"{name} asked {consultant} to consult.", now)


async def do_end_work(tx: Transaction, conversation_id: str, agent_id: str, name: str, now: datetime) -> bool:
    """End the chat (Active → Wrap-up); the customer is told, then surveyed if the workstream wants it.

    Returns whether a survey was asked.
    """
    await _owned(tx, conversation_id, agent_id)
    await do_end_conversation(tx, conversation_id, f"agent:{agent_id}", now)
    await _say(tx, conversation_id, f"{name} has ended the chat. Thanks for contacting us!", now)
    asked = await do_ask_survey(tx, conversation_id, now)
    if not asked:
        await do_append_activity(
            tx,
            conversation_id,
            Activity(type=ActivityType.END_OF_CONVERSATION.value, from_=SYSTEM),
            role=Role.SYSTEM,
            now=now,
        )
    return asked


async def do_wrap_up(
    tx: Transaction,
    conversation_id: str,
    agent_id: str,
    *,
    notes: str,
    disposition: str,
    now: datetime,
) -> None:
    """Record the wrap-up notes and disposition and close the conversation (Wrap-up → Closed)."""
    row = await tx.session.get(ConversationRow, conversation_id, with_for_update=True)
    if row is None or row.agent_id != agent_id or row.state != ConversationState.WRAP_UP:
        raise RoutingError("only the agent who ended this conversation can wrap it up")
    survey_waiting = row.owner == SURVEY_OWNER
    wrap_up = {"notes": notes, "disposition": disposition, "by": agent_id, "at": now.isoformat()}
    row.routing = {**(row.routing or {}), "wrap_up": wrap_up}
    reason = f"wrap-up: {disposition}" + (f" — {notes}" if notes else "")
    await do_close_conversation(tx, conversation_id, f"agent:{agent_id}", reason, now)
    if survey_waiting:
        # Closed for the agent, but the customer's answer is still welcome.
        row.owner = SURVEY_OWNER


async def do_hand_back(
    tx: Transaction, conversation_id: str, agent_id: str, name: str, notes: str | None, now: datetime
) -> None:
    """Return the conversation to the bot, which reads the notes from ``System.Agent.Notes``."""
    await _owned(tx, conversation_id, agent_id)
    if notes:
        await _note(tx, conversation_id, agent_id, name, f"Returned to the bot: {notes}", now)
    await do_return_to_bot(tx, conversation_id, agent_id, notes, now)


async def do_assign_by_supervisor(
    tx: Transaction, conversation_id: str, to_agent: str, supervisor: str, name: str, now: datetime
) -> None:
    """A supervisor gives a waiting conversation to an agent; the customer learns who joined."""
    await do_force_assign(tx, conversation_id, to_agent, supervisor, now)
    await _say(tx, conversation_id, f"{name} joined the chat.", now)
