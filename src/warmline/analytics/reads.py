"""Analytics reads: the facts ``metrics`` needs, gathered with a handful of queries per report.

Scope: a bot conversation belongs to an environment when its bot lives there or the omnichannel
of that environment routed it; queue facts are the offers made in the environment.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from warmline.analytics.metrics import (
    AnalyticsReport,
    ConversationFacts,
    OfferFacts,
    TransitionFacts,
    bot_metrics,
    per_bot,
    queue_metrics,
)
from warmline.store.schema import (
    ActivityRow,
    BotConnectionRow,
    BotRow,
    ConversationRow,
    DialogStateRow,
    OfferRow,
    TransitionRow,
)

HANDOFF_EVENT = "handoff.initiate"
CSAT_VARIABLE = "Global.CSAT"


def _scope(environment: str, bot: str | None) -> Select[Any]:
    """Ids of the bot conversations in scope (never the widget sessions nobody started)."""
    homes = select(BotRow.id).where(BotRow.environment_id == environment)
    query = select(ConversationRow.id).where(
        ConversationRow.bot_id.is_not(None),
        ConversationRow.state != "pending",
        or_(ConversationRow.bot_id.in_(homes), ConversationRow.environment_id == environment),
    )
    if bot is not None:
        query = query.where(ConversationRow.bot_id == bot)
    return query


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


async def read_conversation_facts(
    session: AsyncSession, environment: str, bot: str | None = None
) -> list[ConversationFacts]:
    """The bot conversations of an environment (of one bot when given), with what they led to."""
    scope = _scope(environment, bot)
    conversations = list(
        await session.execute(
            select(
                ConversationRow.id,
                ConversationRow.bot_id,
                ConversationRow.created_at,
                ConversationRow.routing,
            ).where(ConversationRow.id.in_(scope))
        )
    )
    messages = dict(
        (row[0], int(row[1]))
        for row in await session.execute(
            select(ActivityRow.conversation_id, func.count())
            .where(
                ActivityRow.conversation_id.in_(scope),
                ActivityRow.from_role == "customer",
                ActivityRow.type == "message",
            )
            .group_by(ActivityRow.conversation_id)
        )
    )
    topics: dict[str, list[str | None]] = defaultdict(list)
    for conversation_id, payload in await session.execute(
        select(ActivityRow.conversation_id, ActivityRow.payload)
        .where(ActivityRow.conversation_id.in_(scope), ActivityRow.type == "event")
        .order_by(ActivityRow.conversation_id, ActivityRow.seq)
    ):
        if isinstance(payload, dict) and payload.get("name") == HANDOFF_EVENT:
            value = payload.get("value")
            topic = value.get("va_LastTopic") if isinstance(value, dict) else None
            topics[conversation_id].append(str(topic) if topic else None)
    ended = set(
        await session.scalars(
            select(ActivityRow.conversation_id)
            .where(
                ActivityRow.conversation_id.in_(scope),
                ActivityRow.type == "endOfConversation",
                ActivityRow.from_role == "bot",
            )
            .distinct()
        )
    )
    csat: dict[str, float] = {}
    for conversation_id, state in await session.execute(
        select(DialogStateRow.conversation_id, DialogStateRow.state).where(
            DialogStateRow.conversation_id.in_(scope)
        )
    ):
        globals_ = state.get("globals") if isinstance(state, dict) else None
        value = _number(globals_.get(CSAT_VARIABLE)) if isinstance(globals_, dict) else None
        if value is not None:
            csat[conversation_id] = value
    facts = []
    for conversation_id, bot_id, created_at, routing in conversations:
        survey = (routing or {}).get("survey") if isinstance(routing, dict) else None
        rating = _number(survey.get("rating")) if isinstance(survey, dict) else None
        facts.append(
            ConversationFacts(
                id=conversation_id,
                bot_id=bot_id,
                created_at=created_at,
                customer_messages=messages.get(conversation_id, 0),
                handoff_topics=tuple(topics.get(conversation_id, ())),
                ended_by_bot=conversation_id in ended,
                csat=csat.get(conversation_id),
                survey_rating=int(rating) if rating is not None else None,
            )
        )
    return facts


async def read_queue_facts(
    session: AsyncSession, environment: str, bot: str | None = None
) -> tuple[list[OfferFacts], list[TransitionFacts], dict[str, datetime]]:
    """Offers made in an environment (for one bot's conversations when given) and their moves."""
    query = select(OfferRow).where(OfferRow.environment_id == environment)
    if bot is not None:
        query = query.where(
            OfferRow.conversation_id.in_(select(ConversationRow.id).where(ConversationRow.bot_id == bot))
        )
    offers = [
        OfferFacts(o.conversation_id, o.queue_id, o.state, o.created_at, o.decided_at)
        for o in await session.scalars(query)
    ]
    ids = sorted({o.conversation_id for o in offers})
    transitions: list[TransitionFacts] = []
    queued: dict[str, datetime] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        transitions.extend(
            TransitionFacts(conversation_id, at, to_state)
            for conversation_id, at, to_state in await session.execute(
                select(TransitionRow.conversation_id, TransitionRow.at, TransitionRow.to_state).where(
                    TransitionRow.conversation_id.in_(chunk),
                    TransitionRow.to_state.in_(("waiting", "wrap-up")),
                )
            )
        )
        for conversation_id, queued_at in await session.execute(
            select(ConversationRow.id, ConversationRow.queued_at).where(ConversationRow.id.in_(chunk))
        ):
            if queued_at is not None:
                queued[conversation_id] = queued_at
    return offers, transitions, queued


async def _split_environment_notes(session: AsyncSession, environment: str, bot: str | None) -> list[str]:
    """Bots whose omnichannel lives in another environment than the bot (no omnichannel analytics)."""
    query = select(BotRow, BotConnectionRow).join(BotConnectionRow, BotConnectionRow.bot_id == BotRow.id)
    query = query.where(BotRow.id == bot) if bot else query.where(BotRow.environment_id == environment)
    notes = []
    for row, connection in await session.execute(query):
        if row.environment_id and connection.environment_id != row.environment_id:
            notes.append(
                f"Omnichannel analytics for bot '{row.id}' need the bot and the omnichannel in the same "
                f"environment: the bot is in '{row.environment_id}', its omnichannel in "
                f"'{connection.environment_id}'. Only the bot's own metrics are shown for it."
            )
    return notes


async def read_analytics(session: AsyncSession, environment: str, bot: str | None = None) -> AnalyticsReport:
    """The analytics report of an environment, or of one bot in it."""
    conversations = await read_conversation_facts(session, environment, bot)
    notes = await _split_environment_notes(session, environment, bot)
    queues = None
    if not (bot and notes):
        offers, transitions, queued = await read_queue_facts(session, environment, bot)
        queues = queue_metrics(offers, transitions, queued)
    return AnalyticsReport(
        environment=environment,
        bot=bot,
        total=bot_metrics(bot or "all bots", conversations),
        bots=per_bot(conversations),
        queues=queues,
        notes=notes,
    )
