"""Conversation vocabulary shared by channels, the bot runtime and (later) routing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from warmline.activity import Activity


class ConversationState(StrEnum):
    """Lifecycle states; ``pending`` is a widget session whose client has not started it yet."""

    PENDING = "pending"
    OPEN = "open"
    ACTIVE = "active"
    WAITING = "waiting"
    WRAP_UP = "wrap-up"
    CLOSED = "closed"


class Role(StrEnum):
    """Who speaks in a conversation."""

    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


# Bot Framework ``from.role`` for each participant role (the spec knows only user and bot).
WIRE_ROLE = {Role.CUSTOMER: "user", Role.BOT: "bot", Role.AGENT: "bot", Role.SYSTEM: "bot"}


@dataclass(frozen=True)
class Customer:
    """The person on the channel side, authenticated by SSO or anonymous."""

    id: str
    name: str | None = None
    authenticated: bool = False


@dataclass(frozen=True)
class Conversation:
    """A conversation as channels and bots see it."""

    id: str
    channel: str
    state: ConversationState
    owner: str
    bot_only: bool
    customer: Customer
    widget_id: str | None
    context: dict[str, Any] = field(default_factory=dict)
    auth_failure: str | None = None
    last_seq: int = 0
    bot_id: str | None = None
    bot_version: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None


@dataclass(frozen=True)
class StoredActivity:
    """An activity with its place in the log."""

    seq: int
    activity: Activity
    role: Role

    @property
    def id(self) -> str:
        """The activity's server id, ``<conversationId>|<7-digit seq>``."""
        assert self.activity.id is not None
        return self.activity.id


def activity_id(conversation_id: str, seq: int) -> str:
    """Direct Line style id: the conversation id, a bar and the zero-padded sequence number."""
    return f"{conversation_id}|{seq:07d}"
