"""Reads of conversations and their activity log."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warmline.activity import Activity
from warmline.conversations.model import (
    Conversation,
    ConversationState,
    Customer,
    Role,
    StoredActivity,
)
from warmline.store.schema import ActivityRow, ConversationRow


def to_conversation(row: ConversationRow) -> Conversation:
    """The domain view of a stored conversation."""
    return Conversation(
        id=row.id,
        channel=row.channel,
        state=ConversationState(row.state),
        owner=row.owner,
        bot_only=row.bot_only,
        customer=Customer(id=row.user_id, name=row.user_name, authenticated=row.authenticated),
        widget_id=row.widget_id,
        context=dict(row.context or {}),
        auth_failure=row.auth_failure,
        last_seq=row.last_seq,
        bot_id=row.bot_id,
        bot_version=row.bot_version,
        created_at=row.created_at,
        started_at=row.started_at,
    )


async def get_conversation(session: AsyncSession, conversation_id: str) -> Conversation | None:
    """The conversation with this id, or None."""
    row = await session.get(ConversationRow, conversation_id)
    return None if row is None else to_conversation(row)


async def list_activities(
    session: AsyncSession,
    conversation_id: str,
    *,
    after_seq: int = 0,
    limit: int = 500,
    exclude_types: tuple[str, ...] = (),
) -> list[StoredActivity]:
    """Activities after ``after_seq`` in log order, at most ``limit``."""
    query = (
        select(ActivityRow.seq, ActivityRow.from_role, ActivityRow.payload)
        .where(ActivityRow.conversation_id == conversation_id, ActivityRow.seq > after_seq)
        .order_by(ActivityRow.seq)
        .limit(limit)
    )
    if exclude_types:
        query = query.where(ActivityRow.type.not_in(exclude_types))
    rows = await session.execute(query)
    return [
        StoredActivity(seq=seq, activity=Activity.model_validate(payload), role=Role(role))
        for seq, role, payload in rows
    ]
