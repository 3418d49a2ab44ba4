"""The warm hand-off through the real server: bot → routing → offer; the bot stays silent after."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.routing.factories import contact_center
from tests.support import DatabaseUnderTest, LiveServer
from warmline.bot.loader import read_bot_folder
from warmline.bot.publishing import do_attach_bot, do_publish_bot
from warmline.conversations.reads import list_activities
from warmline.demo import DEMO_BOT_FOLDER
from warmline.events import InProcessBus
from warmline.handoff.actions import do_return_to_bot
from warmline.routing.actions import do_accept_offer, do_set_presence
from warmline.routing.config import do_apply_config
from warmline.runtime import utc_now
from warmline.store import Database
from warmline.store.schema import ConversationRow, OfferRow, WidgetRow


async def _prepare(database: DatabaseUnderTest) -> None:
    db = Database(database.url, InProcessBus(), schema=database.schema)
    config = contact_center()
    config.workstreams[0].rules[
        0
    ].condition = '=Context.CustomerTier = "gold" || Global.CustomerTier = "gold"'
    try:
        async with db.transaction() as tx:
            await do_publish_bot(tx, "retail", read_bot_folder(DEMO_BOT_FOLDER), utc_now())
            await do_attach_bot(tx, "demo", "retail")
            widget = await tx.session.get(WidgetRow, "demo")
            assert widget is not None
            widget.target_workstream = "env1/chat"
            await do_apply_config(tx, config, utc_now())
        async with db.transaction() as tx:
            await do_set_presence(tx, "env1", "cat", "Available", utc_now())
    finally:
        await db.dispose()


@pytest.fixture
def server(database: DatabaseUnderTest, tmp_path: Path) -> Iterator[LiveServer]:
    asyncio.run(_prepare(database))
    live = LiveServer(database.settings(upload_dir=tmp_path / "uploads", routing_worker=False)).start()
    yield live
    live.stop()


async def _read(database: DatabaseUnderTest, conversation_id: str) -> tuple[ConversationRow, list[OfferRow]]:
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        async with db.reading() as session:
            row = await session.get(ConversationRow, conversation_id)
            offers = list(
                await session.scalars(select(OfferRow).where(OfferRow.conversation_id == conversation_id))
            )
        assert row is not None
        return row, offers
    finally:
        await db.dispose()


async def _stored_handoff(database: DatabaseUnderTest, conversation_id: str) -> dict[str, Any]:
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        async with db.reading() as session:
            stored = await list_activities(session, conversation_id)
    finally:
        await db.dispose()
    [event] = [s.activity.to_wire() for s in stored if s.activity.name == "handoff.initiate"]
    return event


async def _say(
    client: httpx.AsyncClient, server: LiveServer, conversation: dict[str, Any], text: str
) -> None:
    response = await client.post(
        f"{server.domain}/conversations/{conversation['conversationId']}/activities",
        headers={"Authorization": f"Bearer {conversation['token']}"},
        json={"type": "message", "text": text},
    )
    assert response.status_code == 200, response.text


async def _history(
    client: httpx.AsyncClient, server: LiveServer, conversation: dict[str, Any]
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{server.domain}/conversations/{conversation['conversationId']}/activities",
        headers={"Authorization": f"Bearer {conversation['token']}"},
    )
    activities: list[dict[str, Any]] = response.json()["activities"]
    return activities


async def test_talk_to_a_person_routes_by_context_and_the_bot_goes_quiet(
    server: LiveServer, database: DatabaseUnderTest
) -> None:
    async with httpx.AsyncClient() as client:
        session = await client.post(
            f"{server.url}/widgets/demo/conversations",
            json={"context": {"CustomerTier": {"value": "gold", "isDisplayable": True}}},
        )
        assert session.status_code == 201, session.text
        token = session.json()["token"]
        started = await client.post(
            f"{server.domain}/conversations", headers={"Authorization": f"Bearer {token}"}
        )
        conversation = started.json()
        await _say(client, server, conversation, "talk to a person")
        await _say(client, server, conversation, "my refund never arrived")
        row, offers = await _read(database, conversation["conversationId"])
        assert (row.state, row.queue_id, row.owner) == ("waiting", "vip", "queue")
        assert row.routing is not None
        assert row.routing["rule"] == "gold"
        assert "my refund never arrived" in row.routing["message_to_agent"]
        assert row.routing["last_topic"] == "Talk to a person"
        [offer] = offers
        assert (offer.agent_id, offer.state) == ("cat", "pending")

        texts = [a.get("text") for a in await _history(client, server, conversation)]
        assert any(t and "number 1 in the queue" in t for t in texts)
        # The hand-off event carries the private message: stored for agents, never sent to the customer.
        assert not [
            a for a in await _history(client, server, conversation) if a.get("name") == "handoff.initiate"
        ]
        event = await _stored_handoff(database, conversation["conversationId"])
        assert event["value"]["va_AgentMessage"].startswith("Customer needs help with: my refund")
        assert event["value"]["variables"]["topic"]["Issue"] == {
            "value": "my refund never arrived",
            "type": "Text",
        }

        # While the conversation waits for a person, the bot never answers.
        before = len(await _history(client, server, conversation))
        await _say(client, server, conversation, "hello? store hours?")
        after = await _history(client, server, conversation)
        assert len(after) == before + 1
        assert after[-1]["text"] == "hello? store hours?"


async def test_return_to_bot_gives_the_conversation_back(
    server: LiveServer, database: DatabaseUnderTest
) -> None:
    async with httpx.AsyncClient() as client:
        session = await client.post(
            f"{server.url}/widgets/demo/conversations",
            json={"context": {"CustomerTier": {"value": "gold", "isDisplayable": True}}},
        )
        token = session.json()["token"]
        conversation = (
            await client.post(f"{server.domain}/conversations", headers={"Authorization": f"Bearer {token}"})
        ).json()
        await _say(client, server, conversation, "talk to a person")
        await _say(client, server, conversation, "a question")
        _, [offer] = await _read(database, conversation["conversationId"])
        db = Database(database.url, InProcessBus(), schema=database.schema)
        try:
            async with db.transaction() as tx:
                await do_accept_offer(tx, offer.id, "cat", utc_now())
            async with db.transaction() as tx:
                await do_return_to_bot(tx, conversation["conversationId"], "cat", "Refund sent", utc_now())
        finally:
            await db.dispose()
        row, _ = await _read(database, conversation["conversationId"])
        assert (row.state, row.owner, row.agent_id) == ("open", "bot", None)
        await _say(client, server, conversation, "when are you open?")
        texts = [a.get("text") or "" for a in await _history(client, server, conversation)]
        assert any("Monday to Saturday" in t for t in texts)
