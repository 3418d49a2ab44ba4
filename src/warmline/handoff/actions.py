"""Hand-off actions: route a conversation the bot let go of; hand one back to the bot."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warmline.activity import Activity, ChannelAccount
from warmline.bot.state import DialogState
from warmline.conversations.actions import do_append_activity
from warmline.conversations.model import ConversationState, Role
from warmline.conversations.reads import get_conversation
from warmline.events import Event
from warmline.handoff.payload import routing_variables, summary
from warmline.routing.actions import RouteDecision, RoutingError, do_route_conversation, release_agent
from warmline.routing.config import get_config
from warmline.store import Transaction
from warmline.store.schema import ConversationRow, DialogStateRow, EnvironmentRow, TransitionRow, WidgetRow

CONVERSATION_RETURNED = "conversation.returned_to_bot"
NO_ROUTE = (
    "Sorry, there's nobody set up to take this conversation right now. I'll keep helping as best I can."
)
SYSTEM = ChannelAccount(id="warmline-routing", name="Warmline", role="bot")


async def find_workstream(session: AsyncSession, target: str | None) -> tuple[str, str] | None:
    """``environment/workstream`` or a bare workstream id searched across environments."""
    if not target:
        return None
    if "/" in target:
        environment, workstream = target.split("/", 1)
        config = await get_config(session, environment)
        return (environment, workstream) if config and workstream in config.workstreams else None
    for environment in await session.scalars(select(EnvironmentRow.id).order_by(EnvironmentRow.id)):
        config = await get_config(session, environment)
        if config is not None and target in config.workstreams:
            return environment, target
    return None


async def do_hand_off(
    tx: Transaction, conversation_id: str, handoff_seq: int, value: Mapping[str, Any], now: datetime
) -> RouteDecision | None:
    """Route a conversation whose bot sent ``handoff.initiate``; rules re-run on the new variables."""
    conversation = await get_conversation(tx.session, conversation_id)
    if conversation is None:
        raise RoutingError(f"conversation '{conversation_id}' does not exist")
    target = (
        await tx.session.scalar(
            select(WidgetRow.target_workstream).where(WidgetRow.id == conversation.widget_id)
        )
        if conversation.widget_id
        else None
    )
    if target is None:
        # A call knows its workstream from the number dialled (see warmline.channels.voice).
        placed = await tx.session.get(ConversationRow, conversation_id)
        if placed is not None and placed.environment_id and placed.workstream_id:
            target = f"{placed.environment_id}/{placed.workstream_id}"
    found = await find_workstream(tx.session, target)
    if found is None:
        await do_append_activity(
            tx,
            conversation_id,
            Activity(type="message", text=NO_ROUTE, from_=SYSTEM),
            role=Role.SYSTEM,
            now=now,
        )
        return None
    environment, workstream = found
    decision = await do_route_conversation(
        tx,
        conversation_id,
        environment=environment,
        workstream_id=workstream,
        variables=routing_variables(conversation, value),
        now=now,
        actor="bot",
    )
    row = await tx.session.get(ConversationRow, conversation_id)
    if row is not None:
        row.routing = {**(row.routing or {}), "handoff_seq": handoff_seq, **summary(value)}
    return decision


async def do_return_to_bot(
    tx: Transaction, conversation_id: str, agent_id: str, notes: str | None, now: datetime
) -> None:
    """The agent hands the conversation back: the bot owns it again and can read the agent's notes."""
    row = await tx.session.get(ConversationRow, conversation_id, with_for_update=True)
    if row is None:
        raise RoutingError(f"conversation '{conversation_id}' does not exist")
    if row.state != ConversationState.ACTIVE or row.agent_id != agent_id:
        raise RoutingError("only the agent handling an active conversation can return it to the bot")
    if row.bot_id is None:
        raise RoutingError("this conversation has no bot to return to")
    await release_agent(tx, row, now)
    before = row.state
    row.state, row.owner, row.queue_id, row.agent_id = ConversationState.OPEN, "bot", None, None
    state_row = await tx.session.get(DialogStateRow, conversation_id)
    state = DialogState.from_json(dict(state_row.state)) if state_row else DialogState()
    state.globals["System.Agent.Notes"] = notes
    state.globals["System.Agent.Name"] = agent_id
    if state_row is None:
        tx.session.add(DialogStateRow(conversation_id=conversation_id, state=state.to_json(), updated_at=now))
    else:
        state_row.state, state_row.updated_at = state.to_json(), now
    tx.session.add(
        TransitionRow(
            conversation_id=conversation_id,
            at=now,
            from_state=before,
            to_state=ConversationState.OPEN,
            actor=f"agent:{agent_id}",
            reason="returned to the bot",
        )
    )
    await do_append_activity(
        tx,
        conversation_id,
        Activity(
            type="message", text="You're back with the virtual assistant. How else can I help?", from_=SYSTEM
        ),
        role=Role.SYSTEM,
        now=now,
    )
    tx.emit(Event(CONVERSATION_RETURNED, conversation_id, {"agent": agent_id}))
