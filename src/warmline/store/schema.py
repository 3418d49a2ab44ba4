"""Tables. Every change here needs an Alembic migration; ``tests/store`` fails without one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every Warmline table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UTCDateTime,
    }


class WidgetRow(Base):
    """A chat widget: where it may be embedded, how SSO is checked, which context it accepts."""

    __tablename__ = "widgets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    target_workstream: Mapped[str | None] = mapped_column(String(64))
    allowed_origins: Mapped[list[Any]] = mapped_column(default=list)
    auth: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    context_variables: Mapped[list[Any]] = mapped_column(default=list)
    directline_secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    bot_id: Mapped[str | None] = mapped_column(ForeignKey("bots.id"))
    created_at: Mapped[datetime]


class ConversationRow(Base):
    """A conversation and who it is with; ``last_seq`` allocates activity sequence numbers."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    widget_id: Mapped[str | None] = mapped_column(ForeignKey("widgets.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(16))
    bot_only: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[str] = mapped_column(String(256))
    user_name: Mapped[str | None] = mapped_column(String(256))
    authenticated: Mapped[bool] = mapped_column(Boolean, default=False)
    auth_failure: Mapped[str | None] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    bot_id: Mapped[str | None] = mapped_column(ForeignKey("bots.id"))
    bot_version: Mapped[int | None] = mapped_column(Integer)
    # Routing: where the conversation waits or who has it (see warmline.routing).
    environment_id: Mapped[str | None] = mapped_column(String(64))
    workstream_id: Mapped[str | None] = mapped_column(String(64))
    queue_id: Mapped[str | None] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    routing_priority: Mapped[int | None] = mapped_column(Integer)
    queued_at: Mapped[datetime | None]
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]


class ParticipantRow(Base):
    """Someone taking part in a conversation: customer, bot, agent or system."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("conversation_id", "role", "participant_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    participant_id: Mapped[str] = mapped_column(String(256))
    name: Mapped[str | None] = mapped_column(String(256))
    joined_at: Mapped[datetime]


class ActivityRow(Base):
    """One entry of a conversation's ordered log; ``seq`` is the Direct Line watermark."""

    __tablename__ = "activities"
    __table_args__ = (
        UniqueConstraint("conversation_id", "client_activity_id"),
        Index("ix_activities_activity_id", "activity_id", unique=True),
    )

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(64))
    from_id: Mapped[str | None] = mapped_column(String(256))
    from_role: Mapped[str] = mapped_column(String(16))
    client_activity_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class UploadRow(Base):
    """A file a customer uploaded; served back by an unguessable id until it expires."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    content_type: Mapped[str] = mapped_column(String(256))
    name: Mapped[str | None] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class BotRow(Base):
    """A bot; what runs is its published versions."""

    __tablename__ = "bots"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    environment_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]


class BotVersionRow(Base):
    """An immutable published snapshot of a bot's files."""

    __tablename__ = "bot_versions"

    bot_id: Mapped[str] = mapped_column(ForeignKey("bots.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    files: Mapped[dict[str, Any]] = mapped_column(JSON)
    checksum: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime]


class DialogStateRow(Base):
    """Where a conversation's bot is: topic stack, variables, pending question (JSON)."""

    __tablename__ = "dialog_states"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class EnvironmentRow(Base):
    """A tenant: everything routing-related belongs to exactly one environment."""

    __tablename__ = "environments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    geography: Mapped[str | None] = mapped_column(String(64))
    omnichannel_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class RoutingConfigRow(Base):
    """An environment's routing configuration document (validated ``ContactCenter``), versioned."""

    __tablename__ = "routing_configs"

    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    applied_at: Mapped[datetime]


class AgentRow(Base):
    """An agent's run-time state: presence and the capacity in use (kept in step with offers)."""

    __tablename__ = "agents"

    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    presence: Mapped[str] = mapped_column(String(16))
    presence_text: Mapped[str | None] = mapped_column(String(100))
    presence_at: Mapped[datetime]
    load_messaging: Mapped[int] = mapped_column(Integer, default=0)
    load_voice: Mapped[int] = mapped_column(Integer, default=0)
    last_assigned_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class QueueMemberRow(Base):
    """An agent's membership of a queue; ``added_at`` orders advanced round robin."""

    __tablename__ = "queue_members"

    environment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    queue_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    added_at: Mapped[datetime]
    last_assigned_at: Mapped[datetime | None]


class OfferRow(Base):
    """A conversation offered to one agent until accepted, rejected or expired.

    ``pending_for`` equals the conversation id while the offer is pending and is unique, so the
    database itself refuses a second simultaneous offer of one conversation.
    """

    __tablename__ = "offers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    environment_id: Mapped[str] = mapped_column(String(64))
    queue_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    pending_for: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]


class TimerRow(Base):
    """A stored due time (offer expiry, overflow, auto-close, wrap-up end), claimed once when due."""

    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_due", "done", "due_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64), index=True)
    due_at: Mapped[datetime]
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class TransitionRow(Base):
    """Every state change of a conversation: when, from, to, by whom and why."""

    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    at: Mapped[datetime]
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)


class AppRegistrationRow(Base):
    """An application (client) id and secret, as an identity provider would issue them."""

    __tablename__ = "app_registrations"

    app_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]


class ApplicationUserRow(Base):
    """A bot as the omnichannel sees it: an application user for an app id, unique per environment."""

    __tablename__ = "application_users"

    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("app_registrations.app_id"), primary_key=True)
    bot_id: Mapped[str] = mapped_column(ForeignKey("bots.id"))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class BotConnectionRow(Base):
    """A bot's connection to an omnichannel environment (enabled | disabled | disconnected), voice on/off."""

    __tablename__ = "bot_connections"

    bot_id: Mapped[str] = mapped_column(ForeignKey("bots.id"), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"))
    app_id: Mapped[str] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(16))
    channel_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    voice_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    connected_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ExtensionRow(Base):
    """An extension installed in an environment."""

    __tablename__ = "extensions"

    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    installed_at: Mapped[datetime]


class BotLayerRow(Base):
    """A solution layer of a bot: the managed base from an import, or unmanaged edits on top."""

    __tablename__ = "bot_layers"

    bot_id: Mapped[str] = mapped_column(ForeignKey("bots.id"), primary_key=True)
    layer: Mapped[str] = mapped_column(String(16), primary_key=True)
    solution: Mapped[str] = mapped_column(String(200))
    solution_version: Mapped[str] = mapped_column(String(32))
    files: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_environment: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class AuditRow(Base):
    """Who did what in administration, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
