"""The contract between a conversation and the bot that owns it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from warmline.activity import Activity
from warmline.conversations.model import Conversation
from warmline.store import Transaction


@dataclass(frozen=True)
class Turn:
    """One incoming activity, with the conversation it arrived on."""

    conversation: Conversation
    activity: Activity


@dataclass(frozen=True)
class BotReply:
    """A bot's answer: activities to send, and state to save in the same transaction as them."""

    activities: Sequence[Activity] = ()
    save: Callable[[Transaction], Awaitable[None]] | None = field(default=None, compare=False)


class Bot(Protocol):
    """Something that answers a turn."""

    name: str

    async def on_turn(self, turn: Turn) -> BotReply:
        """Reply to ``turn``; ``conversationUpdate`` marks the conversation's start."""
        ...
