"""Bot Framework Activity schema as pydantic models, keeping the spec's wire names.

Every channel converts its wire protocol to these models and back, so the rest of Warmline
speaks one vocabulary. Unknown fields are kept (``extra="allow"``) because clients and bots put
their own data on activities and the spec says ``channelData`` travels unmodified.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Base for Bot Framework objects: camelCase on the wire, snake_case in Python, extras kept."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", serialize_by_alias=True
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON object a Bot Framework client expects (aliases, no unset fields)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ActivityType(StrEnum):
    """Activity types Warmline handles; others are accepted and stored as-is."""

    MESSAGE = "message"
    TYPING = "typing"
    EVENT = "event"
    END_OF_CONVERSATION = "endOfConversation"
    CONVERSATION_UPDATE = "conversationUpdate"


class ChannelAccount(WireModel):
    """One side of an activity: ``from`` or ``recipient``."""

    id: str = Field(min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    role: str | None = Field(default=None, max_length=32)


class ConversationAccount(WireModel):
    """The conversation an activity belongs to."""

    id: str = Field(max_length=256)


class Attachment(WireModel):
    """A file, card or media item; adaptive cards use ``application/vnd.microsoft.card.adaptive``."""

    content_type: str = Field(max_length=256)
    content_url: str | None = Field(default=None, max_length=4096)
    content: Any = None
    name: str | None = Field(default=None, max_length=512)
    thumbnail_url: str | None = Field(default=None, max_length=4096)


ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


class Activity(WireModel):
    """One Bot Framework activity (message, typing, event, endOfConversation, conversationUpdate)."""

    type: str = Field(min_length=1, max_length=64)
    id: str | None = None
    timestamp: datetime | None = None
    local_timestamp: str | None = None
    channel_id: str | None = None
    from_: ChannelAccount | None = Field(default=None, alias="from")
    recipient: ChannelAccount | None = None
    conversation: ConversationAccount | None = None
    reply_to_id: str | None = None
    text: str | None = None
    text_format: str | None = None
    speak: str | None = None
    locale: str | None = None
    name: str | None = None
    value: Any = None
    attachments: list[Attachment] | None = None
    attachment_layout: str | None = None
    suggested_actions: dict[str, Any] | None = None
    input_hint: str | None = None
    entities: list[dict[str, Any]] | None = None
    channel_data: dict[str, Any] | None = None
    members_added: list[ChannelAccount] | None = None
    members_removed: list[ChannelAccount] | None = None

    @property
    def client_activity_id(self) -> str | None:
        """Web Chat's own id for an outgoing activity, echoed back so it can match its send."""
        if self.channel_data is None:
            return None
        value = self.channel_data.get("clientActivityID")
        return value if isinstance(value, str) else None


class ActivitySet(WireModel):
    """A page of activities and the watermark to resume after (Direct Line 3.0 ``ActivitySet``)."""

    activities: list[Activity]
    watermark: str | None = None


class ResourceResponse(WireModel):
    """The id the service gave a posted activity or upload."""

    id: str
