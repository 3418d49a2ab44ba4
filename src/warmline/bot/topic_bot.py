"""The topic runtime behind the ``Bot`` protocol: loads a conversation's dialog state, runs the
published version the conversation is pinned to, and returns replies with the state to save."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from warmline.activity import Activity, ActivityType
from warmline.bot.base import Bot, BotReply, Turn
from warmline.bot.dialog import DialogEngine, Outcome, OutcomeKind, TurnContext, TurnResult
from warmline.bot.publishing import BotLibrary
from warmline.bot.state import DialogState
from warmline.conversations.model import Conversation
from warmline.store import Database, Transaction
from warmline.store.schema import DialogStateRow

HANDOFF_UNAVAILABLE = (
    "Talking to a live agent isn't available in this test chat (the bot-only embed). "
    "Please use the chat on our website to reach a person."
)
PHONE_ONLY = "That works only on a phone call."


def turn_context(conversation: Conversation, now: datetime) -> TurnContext:
    """What the engine needs to know about a conversation."""
    context = {
        name: entry.get("value") for name, entry in conversation.context.items() if isinstance(entry, dict)
    }
    # Only a call has phone numbers (the voice channel stores them when it answers): on messaging
    # they stay empty, whatever a host page sends, so `IsBlank(bot.CustomerPhoneNumber)` tells
    # the channels apart as in the seed.
    is_call = conversation.channel == "voice"
    return TurnContext(
        conversation_id=conversation.id,
        now=now,
        channel=conversation.channel,
        user_id=conversation.customer.id,
        user_name=conversation.customer.name,
        authenticated=conversation.customer.authenticated,
        in_test_mode=conversation.bot_only,
        customer_phone=str(context.get("CustomerPhoneNumber") or "") if is_call else "",
        organization_phone=str(context.get("OrganizationPhoneNumber") or "") if is_call else "",
        context=context,
    )


def handoff_context(
    engine: DialogEngine, state: DialogState, conversation: Conversation, outcome: Outcome
) -> dict[str, Any]:
    """The ``value`` of ``handoff.initiate``: the ``va_*`` context, omnichannel names, variables."""
    settings = engine.bot.settings
    last_phrase = state.phrases[-1] if state.phrases else None
    variables = dict(outcome.variables)
    value: dict[str, Any] = {
        "va_Scope": "bot",
        "va_LastTopic": state.last_topic,
        "va_Topics": list(state.topics),
        "va_LastPhrases": last_phrase,
        "va_LastPhrase": last_phrase,
        "va_Phrases": list(state.phrases),
        "va_ConversationId": conversation.id,
        "va_AgentMessage": outcome.message_to_agent,
        "va_BotId": conversation.bot_id,
        "va_BotName": settings.name,
        "va_Language": outcome.locale or settings.language,
    }
    for name, item in variables.items():
        short = name.split(".", 1)[-1]
        if name.startswith("Global.") and short.startswith(("msdyn_", "va_")):
            value[short] = item
    value["variables"] = {
        scope: {
            k.split(".", 1)[1]: {"value": v, "type": fx_type(v)}
            for k, v in variables.items()
            if k.startswith(prefix)
        }
        for scope, prefix in (("topic", "Topic."), ("global", "Global."))
    }
    return value


def fx_type(value: Any) -> str:
    """The Power Fx type name of a variable's value, as hand-off payloads and the agent panel show it."""
    if value is None:
        return "Blank"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, datetime):
        return "DateTime"
    if isinstance(value, dict):
        return "Record"
    if isinstance(value, list):
        return "Table"
    return "Text"


class TopicBot:
    """Runs YAML topics for conversations pinned to a published bot; others go to ``fallback``.

    A published version whose ``bot.yaml`` declares ``external`` runs no topics: its turns go to
    ``external`` (the Bot Connector channel, which forwards them to the bot's own endpoint).
    """

    name = "Warmline topics"

    def __init__(self, db: Database, library: BotLibrary, fallback: Bot, external: Bot | None = None) -> None:
        self.db = db
        self.library = library
        self.fallback = fallback
        self.external = external

    async def on_turn(self, turn: Turn) -> BotReply:
        conversation = turn.conversation
        if conversation.bot_id is None or conversation.bot_version is None:
            return await self.fallback.on_turn(turn)
        definition = await self.library.definition(conversation.bot_id, conversation.bot_version)
        if definition.settings.external is not None:
            if self.external is None:
                raise RuntimeError(f"bot '{conversation.bot_id}' is external, and no Bot Connector is wired")
            return await self.external.on_turn(turn)
        engine = await self.library.engine(conversation.bot_id, conversation.bot_version)
        state = await self.load_state(conversation.id)
        ctx = turn_context(conversation, turn.activity.timestamp or datetime.now().astimezone())
        if turn.activity.type == ActivityType.CONVERSATION_UPDATE:
            result = await engine.start(state, ctx)
        else:
            result = await engine.turn(state, turn.activity, ctx)
        activities = [*result.activities, *self.outcome_activities(engine, state, conversation, result)]
        snapshot = state.to_json()

        async def save(tx: Transaction) -> None:
            await do_save_dialog_state(tx, conversation.id, snapshot, ctx.now)

        return BotReply(activities, save)

    def outcome_activities(
        self, engine: DialogEngine, state: DialogState, conversation: Conversation, result: TurnResult
    ) -> list[Activity]:
        """What an outcome looks like on a messaging channel."""
        outcome = result.outcome
        if outcome is None:
            return []
        if outcome.kind is OutcomeKind.TRANSFER_TO_AGENT:
            if conversation.bot_only:
                return [Activity(type="message", text=HANDOFF_UNAVAILABLE, from_=engine.account)]
            value = handoff_context(engine, state, conversation, outcome)
            # For the omnichannel and the agent only: the customer's client never receives the
            # private message to the agent or the bot's variables.
            return [
                Activity(
                    type="event",
                    name="handoff.initiate",
                    value=value,
                    from_=engine.account,
                    channel_data={"warmline": {"visibility": "agents"}},
                )
            ]
        if outcome.kind in (OutcomeKind.TRANSFER_TO_PHONE_NUMBER, OutcomeKind.HANG_UP):
            event = Activity(
                type="event",
                name=f"warmline.{outcome.kind.value}",
                from_=engine.account,
                value={"phoneNumber": outcome.phone_number},
            )
            if conversation.channel != "voice":
                return [Activity(type="message", text=PHONE_ONLY, from_=engine.account), event]
            return [event]
        return []

    async def load_state(self, conversation_id: str) -> DialogState:
        """The stored dialog state, or a fresh one."""
        async with self.db.reading() as session:
            row = await session.get(DialogStateRow, conversation_id)
        return DialogState() if row is None else DialogState.from_json(dict(row.state))


async def do_save_dialog_state(
    tx: Transaction, conversation_id: str, state: dict[str, Any], now: datetime
) -> None:
    """Insert or replace a conversation's dialog state."""
    dialect = tx.session.bind.dialect.name if tx.session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(DialogStateRow).values(conversation_id=conversation_id, state=state, updated_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=[DialogStateRow.conversation_id], set_={"state": state, "updated_at": now}
    )
    await tx.session.execute(statement)
