"""Conversation actions: stored state and the events they emit, on every backend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from warmline.activity import Activity, Attachment
from warmline.conversations.actions import (
    ACTIVITY_ADDED,
    CONVERSATION_STARTED,
    do_append_activity,
    do_create_conversation,
    do_start_conversation,
)
from warmline.conversations.model import ConversationState, Customer, Role
from warmline.conversations.reads import get_conversation, list_activities
from warmline.store import Database

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


async def make_conversation(db: Database, conversation_id: str = "conv1", *, started: bool = True) -> None:
    async with db.transaction() as tx:
        await do_create_conversation(
            tx,
            conversation_id=conversation_id,
            channel="directline",
            customer=Customer(id="dl_u1", name="Pat"),
            widget_id="demo",
            context={"CustomerTier": {"value": "gold", "isDisplayable": True}},
            started=started,
            now=NOW,
        )


async def test_create_stores_the_conversation_and_announces_it(db: Database) -> None:
    subscription = db.bus.subscribe("conv1")
    await make_conversation(db)
    conversation = None
    async with db.reading() as session:
        conversation = await get_conversation(session, "conv1")
    assert conversation is not None
    assert conversation.state is ConversationState.OPEN
    assert conversation.owner == "bot"
    assert conversation.customer == Customer(id="dl_u1", name="Pat")
    assert conversation.context["CustomerTier"]["value"] == "gold"
    assert conversation.started_at == NOW
    event = await asyncio.wait_for(subscription.get(), 1)
    assert event.name == CONVERSATION_STARTED


async def test_pending_conversation_starts_once(db: Database) -> None:
    await make_conversation(db, started=False)
    async with db.transaction() as tx:
        assert await do_start_conversation(tx, "conv1", NOW) is True
    async with db.transaction() as tx:
        assert await do_start_conversation(tx, "conv1", NOW) is False


async def test_activities_get_ordered_ids_and_keep_channel_data(db: Database) -> None:
    await make_conversation(db)
    subscription = db.bus.subscribe("conv1")
    card = Attachment(
        content_type="application/vnd.microsoft.card.adaptive",
        content={"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Hi"}]},
    )
    sent = Activity(
        type="message",
        text="hello",
        attachments=[card],
        channel_data={"clientActivityID": "c-1", "nested": {"x": [1, None, "y"]}},
        entities=[{"type": "ClientCapabilities", "requiresBotState": True}],
    )
    async with db.transaction() as tx:
        first, new_first = await do_append_activity(tx, "conv1", sent, role=Role.CUSTOMER, now=NOW)
        second, new_second = await do_append_activity(
            tx, "conv1", Activity(type="message", text="reply"), role=Role.BOT, now=NOW
        )
    assert (new_first, new_second) == (True, True)
    assert (first.seq, second.seq) == (1, 2)
    assert first.id == "conv1|0000001"
    assert second.activity.from_ is not None and second.activity.from_.role == "bot"
    async with db.reading() as session:
        stored = await list_activities(session, "conv1")
    assert [s.id for s in stored] == ["conv1|0000001", "conv1|0000002"]
    wire = stored[0].activity.to_wire()
    assert wire["channelData"] == {"clientActivityID": "c-1", "nested": {"x": [1, None, "y"]}}
    assert wire["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert wire["attachments"][0]["content"]["body"][0]["text"] == "Hi"
    assert wire["entities"] == [{"type": "ClientCapabilities", "requiresBotState": True}]
    events = [await asyncio.wait_for(subscription.get(), 1) for _ in range(2)]
    assert [(e.name, e.data["seq"]) for e in events] == [(ACTIVITY_ADDED, 1), (ACTIVITY_ADDED, 2)]


async def test_same_client_activity_id_is_stored_once(db: Database) -> None:
    await make_conversation(db)
    activity = Activity(type="message", text="once", channel_data={"clientActivityID": "same"})
    async with db.transaction() as tx:
        first, _ = await do_append_activity(tx, "conv1", activity, role=Role.CUSTOMER, now=NOW)
    async with db.transaction() as tx:
        again, is_new = await do_append_activity(tx, "conv1", activity, role=Role.CUSTOMER, now=NOW)
    assert is_new is False
    assert again.id == first.id
    async with db.reading() as session:
        assert len(await list_activities(session, "conv1")) == 1


async def test_rolled_back_work_publishes_nothing_and_stores_nothing(db: Database) -> None:
    await make_conversation(db)
    subscription = db.bus.subscribe("conv1")
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await do_append_activity(tx, "conv1", Activity(type="message", text="x"), role=Role.BOT, now=NOW)
            raise RuntimeError("boom")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(subscription.get(), 0.1)
    async with db.reading() as session:
        assert await list_activities(session, "conv1") == []
        conversation = await get_conversation(session, "conv1")
    assert conversation is not None and conversation.last_seq == 0


async def test_concurrent_appends_never_share_a_sequence_number(db: Database) -> None:
    await make_conversation(db)

    async def append(i: int) -> int:
        async with db.transaction() as tx:
            stored, _ = await do_append_activity(
                tx, "conv1", Activity(type="message", text=str(i)), role=Role.CUSTOMER, now=NOW
            )
        return stored.seq

    seqs = await asyncio.gather(*(append(i) for i in range(40)))
    assert sorted(seqs) == list(range(1, 41))


async def test_appending_to_a_missing_conversation_fails(db: Database) -> None:
    with pytest.raises(LookupError):
        async with db.transaction() as tx:
            await do_append_activity(tx, "nope", Activity(type="message"), role=Role.BOT, now=NOW)
