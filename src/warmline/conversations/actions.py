"""Every change to conversations and their activity log (one transaction each)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update

from warmline.activity import Activity, ChannelAccount, ConversationAccount
from warmline.conversations.model import (
    WIRE_ROLE,
    Conversation,
    ConversationState,
    Customer,
    Role,
    StoredActivity,
    activity_id,
)
from warmline.conversations.reads import to_conversation
from warmline.events import Bus, Event
from warmline.store import Transaction
from warmline.store.schema import ActivityRow, ConversationRow, ParticipantRow

ACTIVITY_ADDED = "activity.added"
ACTIVITY_TRANSIENT = "activity.transient"
CONVERSATION_STARTED = "conversation.started"

# Appending to the log is every turn's hot path, so it runs Core statements built once here: the
# SQL is the same, without rebuilding the statements or the ORM's flush machinery on every call.
_CONVERSATIONS = cast(Table, ConversationRow.__table__)
_ACTIVITIES = cast(Table, ActivityRow.__table__)
_FIND_RESENT = select(_ACTIVITIES.c.seq, _ACTIVITIES.c.from_role, _ACTIVITIES.c.payload).where(
    _ACTIVITIES.c.conversation_id == bindparam("conversation_id"),
    _ACTIVITIES.c.client_activity_id == bindparam("client_id"),
)
_NEXT_SEQ = (
    update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id == bindparam("conversation_id"))
    .values(last_seq=_CONVERSATIONS.c.last_seq + 1)
    .returning(_CONVERSATIONS.c.last_seq)
)
_INSERT_ACTIVITY = insert(_ACTIVITIES)


async def do_create_conversation(
    tx: Transaction,
    *,
    conversation_id: str,
    channel: str,
    customer: Customer,
    now: datetime,
    widget_id: str | None = None,
    bot_only: bool = False,
    context: dict[str, Any] | None = None,
    auth_failure: str | None = None,
    started: bool = True,
    bot: tuple[str | None, int | None] = (None, None),
) -> Conversation:
    """Create a conversation owned by the bot; ``started=False`` leaves it pending for its client."""
    row = ConversationRow(
        id=conversation_id,
        widget_id=widget_id,
        channel=channel,
        state=ConversationState.OPEN if started else ConversationState.PENDING,
        owner="bot",
        bot_only=bot_only,
        user_id=customer.id,
        user_name=customer.name,
        authenticated=customer.authenticated,
        auth_failure=auth_failure,
        context=context or {},
        last_seq=0,
        bot_id=bot[0],
        bot_version=bot[1],
        created_at=now,
        started_at=now if started else None,
    )
    tx.session.add(row)
    tx.session.add(
        ParticipantRow(
            conversation_id=conversation_id,
            role=Role.CUSTOMER,
            participant_id=customer.id,
            name=customer.name,
            joined_at=now,
        )
    )
    await tx.session.flush()
    if started:
        tx.emit(Event(CONVERSATION_STARTED, conversation_id))
    return to_conversation(row)


async def do_start_conversation(tx: Transaction, conversation_id: str, now: datetime) -> bool:
    """Move a pending conversation to open; False when it was already started."""
    result = await tx.session.execute(
        update(ConversationRow)
        .where(ConversationRow.id == conversation_id)
        .where(ConversationRow.state == ConversationState.PENDING)
        .values(state=ConversationState.OPEN, started_at=now)
    )
    started = bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult of an UPDATE
    if started:
        tx.emit(Event(CONVERSATION_STARTED, conversation_id))
    return started


async def do_append_activity(
    tx: Transaction,
    conversation_id: str,
    activity: Activity,
    *,
    role: Role,
    now: datetime,
) -> tuple[StoredActivity, bool]:
    """Store an activity at the end of the log; returns it and whether it is new.

    A client retrying a send with the same ``clientActivityID`` gets the stored activity back
    instead of a second copy, so a flaky network never duplicates a customer's message.
    """
    client_id = activity.client_activity_id if role is Role.CUSTOMER else None
    if client_id is not None:
        found = await tx.session.execute(
            _FIND_RESENT, {"conversation_id": conversation_id, "client_id": client_id}
        )
        existing = found.first()
        if existing is not None:
            seq, from_role, stored_payload = existing
            return StoredActivity(
                seq=seq, activity=Activity.model_validate(stored_payload), role=Role(from_role)
            ), False

    seq = await tx.session.scalar(_NEXT_SEQ, {"conversation_id": conversation_id})
    if seq is None:
        raise LookupError(conversation_id)
    stamped = activity.model_copy(
        update={
            "id": activity_id(conversation_id, seq),
            "timestamp": now,
            "conversation": ConversationAccount(id=conversation_id),
            "from_": _sender(activity.from_, role),
        }
    )
    payload = stamped.to_wire()
    await tx.session.execute(
        _INSERT_ACTIVITY,
        {
            "conversation_id": conversation_id,
            "seq": seq,
            "activity_id": payload["id"],
            "type": stamped.type,
            "from_id": stamped.from_.id if stamped.from_ else None,
            "from_role": role,
            "client_activity_id": client_id,
            "created_at": now,
            "payload": payload,
        },
    )
    tx.emit(Event(ACTIVITY_ADDED, conversation_id, {"seq": seq, "activity": payload}))
    return StoredActivity(seq=seq, activity=stamped, role=role), True


def do_send_transient(bus: Bus, conversation_id: str, activity: Activity) -> None:
    """Publish an activity that is never stored (``typing``: Direct Line streams it, never logs it)."""
    bus.publish([Event(ACTIVITY_TRANSIENT, conversation_id, {"activity": activity.to_wire()})])


def _sender(account: ChannelAccount | None, role: Role) -> ChannelAccount:
    wire_role = WIRE_ROLE[role]
    if account is None:
        return ChannelAccount(id=role.value, role=wire_role)
    return account.model_copy(update={"role": account.role or wire_role})
