"""What an external bot's activities change: its replies, its escalations, the hand-off status record."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from warmline.activity import Activity, ChannelAccount
from warmline.conversations.actions import do_append_activity
from warmline.conversations.model import Role, StoredActivity
from warmline.handoff.actions import do_hand_off
from warmline.handoff.payload import HANDOFF_EVENT
from warmline.routing.actions import RouteDecision, RoutingError
from warmline.store import Transaction
from warmline.store.schema import ConversationRow

STATUS_EVENT = "handoff.status"
ACCEPTED, FAILED, COMPLETED = "accepted", "failed", "completed"
# The omnichannel's side of handoff.status, as the bot sees it.
HUB = ChannelAccount(id="warmline-omnichannel", name="Warmline", role="bot")
# Omnichannel shows an escalation message's text to the agent only (seed notes §1.5).
AGENTS_ONLY = {"visibility": "agents"}


def escalate_command(activity: Activity) -> dict[str, Any] | None:
    """The ``{"type": "Escalate", "context": {...}}`` command of a message's ``channelData.tags``."""
    if activity.type != "message" or not isinstance(activity.channel_data, dict):
        return None
    tags = activity.channel_data.get("tags")
    if not isinstance(tags, str):
        return None
    try:
        command = json.loads(tags)
    except ValueError:
        return None
    if isinstance(command, dict) and command.get("type") == "Escalate":
        return command
    return None


def escalation(activity: Activity) -> dict[str, Any] | None:
    """The hand-off context when a bot's activity escalates (``handoff.initiate`` or an Escalate tag)."""
    if activity.type == "event" and activity.name == HANDOFF_EVENT:
        return dict(activity.value) if isinstance(activity.value, dict) else {}
    command = escalate_command(activity)
    if command is None:
        return None
    context = command.get("context")
    value = dict(context) if isinstance(context, dict) else {}
    if activity.text:
        # The escalation message's text is the summary for the agent.
        value.setdefault("va_AgentMessage", activity.text)
    return value


def as_stored(activity: Activity) -> Activity:
    """The bot's activity as the log keeps it: an escalation (its context, the summary in an Escalate
    message's text) is for the agent's eyes only, as the topic runtime's ``handoff.initiate`` is."""
    if escalation(activity) is None:
        return activity
    channel_data = dict(activity.channel_data or {})
    channel_data["warmline"] = {**(channel_data.get("warmline") or {}), **AGENTS_ONLY}
    return activity.model_copy(update={"channel_data": channel_data})


def context_variables(value: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The hand-off context's own names as conversation context variables (``Context.<name>`` in rules).

    Omnichannel updates the conversation's context variables with an escalation's context and runs
    the routing rules again (seed notes §1.5); ``va_*``/``msdyn_*`` names are read by routing as they are.
    """
    return {
        name: {"value": item, "isDisplayable": True}
        for name, item in value.items()
        if not name.startswith(("va_", "msdyn_"))
        and name != "variables"
        and (item is None or isinstance(item, str | int | float | bool))
    }


async def do_escalate(
    tx: Transaction,
    conversation_id: str,
    escalation_seq: int,
    value: Mapping[str, Any],
    now: datetime,
    *,
    bot_id: str,
    bot_name: str,
    locale: str | None,
) -> RouteDecision | None:
    """Hand a conversation off for its external bot: context variables first, then routing."""
    row = await tx.session.get(ConversationRow, conversation_id, with_for_update=True)
    if row is None:
        raise RoutingError(f"conversation '{conversation_id}' does not exist")
    row.context = {**(row.context or {}), **context_variables(value)}
    await tx.session.flush()
    payload = {
        "va_Scope": "bot",
        "va_ConversationId": conversation_id,
        "va_BotId": bot_id,
        "va_BotName": bot_name,
        **({"va_Language": locale} if locale else {}),
        **value,
    }
    return await do_hand_off(tx, conversation_id, escalation_seq, payload, now)


def next_status(previous: str | None, event: str) -> str | None:
    """Which ``handoff.status`` a conversation event means for the bot, given the last one sent.

    ``accepted`` once per assignment; a close after it is ``completed``, a close before any agent
    took it is ``failed``; a return to the bot completes the hand-off too; ``refused`` is a hand-off
    routing could not take at all.
    """
    if event == "assigned":
        return None if previous == ACCEPTED else ACCEPTED
    if event == "returned":
        return COMPLETED if previous == ACCEPTED else None
    if event == "closed":
        if previous == ACCEPTED:
            return COMPLETED
        return None if previous in (FAILED, COMPLETED) else FAILED
    if event == "refused":
        return FAILED
    raise ValueError(f"unknown hand-off event '{event}'")


async def do_record_handoff_status(
    tx: Transaction, conversation_id: str, event: str, now: datetime, *, message: str | None = None
) -> StoredActivity | None:
    """Decide, claim and log the ``handoff.status`` a conversation event means; None if there is none.

    The decision reads the last status sent under the conversation's row lock and records the new
    one in the same transaction, so a status goes out once even when several processes see the event.
    """
    row = await tx.session.get(ConversationRow, conversation_id, with_for_update=True)
    if row is None:
        return None
    routing = dict(row.routing or {})
    state = next_status(routing.get("bot_status"), event)
    if state is None:
        return None
    routing["bot_status"] = state
    row.routing = routing
    value = {"state": state, **({"message": message} if message else {})}
    stored, _ = await do_append_activity(
        tx,
        conversation_id,
        Activity(
            type="event",
            name=STATUS_EVENT,
            value=value,
            from_=HUB,
            channel_data={"warmline": AGENTS_ONLY},
        ),
        role=Role.SYSTEM,
        now=now,
    )
    return stored
