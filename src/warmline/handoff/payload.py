"""The hand-off payload: what the agent and the routing rules get from the bot.

The transcript itself is the conversation's activity log (every activity, cards and attachments
included); the payload records up to which sequence number the bot part runs, so nothing is copied
into a lossy text summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from warmline.bot.topic_bot import fx_type
from warmline.conversations.model import Conversation

HANDOFF_EVENT = "handoff.initiate"
VA_NAMES = (
    "va_Scope",
    "va_LastTopic",
    "va_Topics",
    "va_LastPhrases",
    "va_LastPhrase",
    "va_Phrases",
    "va_ConversationId",
    "va_AgentMessage",
    "va_BotId",
    "va_BotName",
    "va_Language",
)


def typed(variables: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{name: {value, type}}`` for a set of variables."""
    return {name: {"value": value, "type": fx_type(value)} for name, value in variables.items()}


def context_values(conversation: Conversation) -> dict[str, Any]:
    """Host-page context as plain values (``{value, isDisplayable}`` unwrapped)."""
    return {
        name: entry.get("value") for name, entry in conversation.context.items() if isinstance(entry, dict)
    }


def routing_variables(conversation: Conversation, value: Mapping[str, Any]) -> dict[str, Any]:
    """The names a route-to-queue condition can read (see docs/routing.md)."""
    names: dict[str, Any] = {
        "Conversation.Channel": conversation.channel,
        "Conversation.Locale": value.get("va_Language"),
        "Conversation.IsAuthenticated": conversation.customer.authenticated,
    }
    for name, item in context_values(conversation).items():
        names[f"Context.{name}"] = item
    variables = value.get("variables") or {}
    for scope, prefix in (("topic", "Topic."), ("global", "Global.")):
        for name, entry in (variables.get(scope) or {}).items():
            names[f"{prefix}{name}"] = entry.get("value") if isinstance(entry, dict) else entry
    for name, item in value.items():
        if name.startswith(("va_", "msdyn_")):
            names[name] = item
    return names


def summary(value: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a hand-off the agent sees first: private message, last topic, phrases."""
    return {
        "message_to_agent": value.get("va_AgentMessage"),
        "last_topic": value.get("va_LastTopic"),
        "topics": value.get("va_Topics") or [],
        "last_phrase": value.get("va_LastPhrases") or value.get("va_LastPhrase"),
        "language": value.get("va_Language"),
    }
