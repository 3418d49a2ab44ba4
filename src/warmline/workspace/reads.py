"""Reads behind the workspace pages: offers, an agent's conversations, one conversation, the floor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from warmline.conversations.model import ConversationState
from warmline.conversations.reads import list_activities
from warmline.routing.config import RoutingConfig
from warmline.routing.model import BasePresence, WorkstreamType
from warmline.store.schema import (
    ActivityRow,
    AgentRow,
    ConversationRow,
    OfferRow,
    ParticipantRow,
)
from warmline.workspace.access import CONSULT, Access
from warmline.workspace.session import AgentSession
from warmline.workspace.transcript import (
    HANDOFF_EVENT,
    bot_variables,
    context_panel,
    transcript,
    va_context,
)

LIVE_STATES = (ConversationState.WAITING, ConversationState.ACTIVE, ConversationState.WRAP_UP)
TRANSCRIPT_LIMIT = 2000


def customer_name(row: ConversationRow) -> str:
    """The customer as agents address them: their name, or a guest label from their id."""
    return row.user_name or f"Guest {row.user_id[-4:]}"


def _seconds(later: datetime, earlier: datetime | None) -> int | None:
    return None if earlier is None else max(0, int((later - earlier).total_seconds()))


def summary(row: ConversationRow, config: RoutingConfig, now: datetime) -> dict[str, Any]:
    """A conversation in a list: who, where, state."""
    routing = row.routing or {}
    queue = config.queues.get(row.queue_id or routing.get("queue") or "")
    return {
        "id": row.id,
        "customer": customer_name(row),
        "authenticated": row.authenticated,
        "channel": row.channel,
        "state": row.state,
        "owner": row.owner,
        "queue": queue.id if queue else None,
        "queueName": queue.name if queue else None,
        "agent": row.agent_id,
        "language": routing.get("language"),
        "waitingSeconds": _seconds(now, row.queued_at) if row.state == ConversationState.WAITING else None,
    }


async def list_offers(
    session: AsyncSession, agent: AgentSession, config: RoutingConfig, now: datetime
) -> list[dict[str, Any]]:
    """The agent's pending offers with what the notification shows, and seconds left."""
    rows = await session.execute(
        select(OfferRow, ConversationRow)
        .join(ConversationRow, ConversationRow.id == OfferRow.conversation_id)
        .where(
            OfferRow.environment_id == agent.environment,
            OfferRow.agent_id == agent.agent_id,
            OfferRow.state == "pending",
        )
        .order_by(OfferRow.created_at)
    )
    offers = []
    for offer, row in rows:
        queue = config.queues.get(offer.queue_id)
        routing = row.routing or {}
        offers.append(
            {
                "id": offer.id,
                "conversation": row.id,
                "customer": customer_name(row),
                "queue": offer.queue_id,
                "queueName": queue.name if queue else offer.queue_id,
                "language": routing.get("language"),
                "reason": routing.get("reason"),
                "transferNote": routing.get("transfer_note"),
                "expiresAt": offer.expires_at.isoformat(),
                "secondsLeft": max(0, int((offer.expires_at - now).total_seconds())),
            }
        )
    return offers


async def list_my_conversations(
    session: AsyncSession, agent: AgentSession, config: RoutingConfig, now: datetime
) -> list[dict[str, Any]]:
    """Conversations the agent handles or consults on that are not closed yet (the tabs)."""
    consulting = select(ParticipantRow.conversation_id).where(
        ParticipantRow.role == CONSULT, ParticipantRow.participant_id == agent.agent_id
    )
    rows = await session.scalars(
        select(ConversationRow)
        .where(
            ConversationRow.environment_id == agent.environment,
            ConversationRow.state.in_([ConversationState.ACTIVE, ConversationState.WRAP_UP]),
            or_(ConversationRow.agent_id == agent.agent_id, ConversationRow.id.in_(consulting)),
        )
        .order_by(ConversationRow.created_at)
    )
    items = []
    for row in rows:
        item = summary(row, config, now)
        item["relation"] = "owner" if row.agent_id == agent.agent_id else "consult"
        items.append(item)
    return items


async def handoff_value(session: AsyncSession, row: ConversationRow) -> dict[str, Any] | None:
    """The ``value`` of the hand-off event that put the conversation into routing."""
    seq = (row.routing or {}).get("handoff_seq")
    query = select(ActivityRow.payload).where(ActivityRow.conversation_id == row.id)
    if isinstance(seq, int):
        query = query.where(ActivityRow.seq == seq)
    else:
        query = query.where(ActivityRow.type == "event").order_by(ActivityRow.seq.desc())
    for payload in await session.scalars(query.limit(20)):
        if payload.get("name") == HANDOFF_EVENT and isinstance(payload.get("value"), dict):
            value: dict[str, Any] = payload["value"]
            return value
    return None


async def conversation_view(
    session: AsyncSession, access: Access, agent: AgentSession, config: RoutingConfig, now: datetime
) -> dict[str, Any]:
    """Everything the conversation view shows: transcript, variables, private message, routing."""
    row = access.row
    activities = await list_activities(session, row.id, limit=TRANSCRIPT_LIMIT)
    handoff = await handoff_value(session, row)
    routing = row.routing or {}
    active_owner = access.owns and row.state == ConversationState.ACTIVE
    return {
        "conversation": {
            **summary(row, config, now),
            "relation": access.relation,
            "createdAt": row.created_at.isoformat(),
            "lastSeq": row.last_seq,
        },
        "transcript": transcript(activities),
        "context": context_panel(row.context or {}),
        "variables": bot_variables(handoff),
        "vaContext": va_context(handoff),
        "messageToAgent": routing.get("message_to_agent"),
        "routing": {
            "workstream": row.workstream_id,
            "queue": row.queue_id or routing.get("queue"),
            "rule": routing.get("rule"),
            "reason": routing.get("reason"),
            "lastTopic": routing.get("last_topic"),
            "lastPhrase": routing.get("last_phrase"),
            "transferNote": routing.get("transfer_note"),
        },
        "wrapUp": routing.get("wrap_up"),
        "survey": routing.get("survey"),
        "can": {
            "send": active_owner,
            "note": row.state in LIVE_STATES and access.relation in ("owner", "consult", "supervisor"),
            "transfer": active_owner,
            "consult": active_owner,
            "end": active_owner,
            "returnToBot": active_owner and row.bot_id is not None,
            "wrapUp": access.owns and row.state == ConversationState.WRAP_UP and "wrap_up" not in routing,
            "accept": access.relation == "offered",
            "forceAssign": agent.is_supervisor and row.state == ConversationState.WAITING,
        },
    }


async def floor_view(
    session: AsyncSession, environment: str, config: RoutingConfig, now: datetime
) -> dict[str, Any]:
    """The supervisor's view: queues, agents, live conversations of one environment."""
    waiting = (
        await session.execute(
            select(ConversationRow.queue_id, func.count(), func.min(ConversationRow.queued_at))
            .where(
                ConversationRow.environment_id == environment,
                ConversationRow.state == ConversationState.WAITING,
            )
            .group_by(ConversationRow.queue_id)
        )
    ).all()
    by_queue = {queue_id: (count, oldest) for queue_id, count, oldest in waiting}
    active = (
        await session.execute(
            select(ConversationRow.agent_id, func.count())
            .where(
                ConversationRow.environment_id == environment,
                ConversationRow.state == ConversationState.ACTIVE,
            )
            .group_by(ConversationRow.agent_id)
        )
    ).all()
    active_by_agent = {agent_id: count for agent_id, count in active}
    queues = []
    for queue in config.queues.values():
        count, oldest = by_queue.get(queue.id, (0, None))
        queues.append(
            {
                "id": queue.id,
                "name": queue.name,
                "type": queue.type.value,
                "waiting": count,
                "longestWaitSeconds": _seconds(now, oldest),
                "agents": len(config.members.get(queue.id, [])),
            }
        )
    rows = {
        row.id: row
        for row in await session.scalars(select(AgentRow).where(AgentRow.environment_id == environment))
    }
    agents = []
    for agent_id, entry in config.agents.items():
        row = rows.get(agent_id)
        presence = row.presence if row else BasePresence.OFFLINE.value
        agents.append(
            {
                "id": agent_id,
                "name": entry.name,
                "roles": list(entry.roles),
                "presence": (row.presence_text or presence) if row else presence,
                "basePresence": config.presences.get(presence, presence),
                "load": row.load_messaging if row else 0,
                "capacity": config.capacity(agent_id, WorkstreamType.MESSAGING),
                "voiceLoad": row.load_voice if row else 0,
                "active": active_by_agent.get(agent_id, 0),
                "queues": list(entry.queues),
            }
        )
    live = await session.scalars(
        select(ConversationRow)
        .where(ConversationRow.environment_id == environment, ConversationRow.state.in_(LIVE_STATES))
        .order_by(ConversationRow.queued_at, ConversationRow.created_at)
        .limit(500)
    )
    return {
        "environment": environment,
        "queues": queues,
        "agents": agents,
        "conversations": [summary(row, config, now) for row in live],
    }
