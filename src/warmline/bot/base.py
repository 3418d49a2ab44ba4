"""The contract between a conversation and the bot that owns it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from warmline.activity import Activity
from warmline.conversations.model import Conversation


@dataclass(frozen=True)
class Turn:
    """One incoming activity, with the conversation it arrived on."""

    conversation: Conversation
    activity: Activity


class Bot(Protocol):
    """Something that answers a turn with zero or more activities."""

    name: str

    async def on_turn(self, turn: Turn) -> Sequence[Activity]:
        """Reply to ``turn``; ``conversationUpdate`` marks the conversation's start."""
        ...
