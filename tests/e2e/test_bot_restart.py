"""SIGKILL ``warmline demo`` while the retail bot waits for an answer: after a restart the same
question is answered, because the dialog state was stored with the turn that asked it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import TEST_SECRET, DatabaseUnderTest, ServerProcess
from warmline.conversations.reads import get_conversation
from warmline.demo import DEMO_BOT_ID
from warmline.events import InProcessBus
from warmline.store import Database
from warmline.store.schema import DialogStateRow

GREETING = "Hello! I'm the Contoso Retail assistant."
ASK_ORDER = "What's your order number? It's the 5-digit number in your confirmation email."
ASK_EMAIL = "And the email address you ordered with?"
ANYTHING_ELSE = "Is there anything else I can help with?"
CSAT = "How would you rate your experience, from 1 (poor) to 5 (excellent)?"
GOODBYE = "Thanks for chatting with Contoso. Goodbye!"


@pytest.fixture
def server(database: DatabaseUnderTest, tmp_path: Path) -> Iterator[ServerProcess]:
    """``warmline demo`` (which publishes the retail bot onto the demo widget) as a subprocess."""
    process = ServerProcess(
        database.env(), tmp_path / "run", args=("demo", "--directline-secret", TEST_SECRET)
    )
    try:
        yield process
    finally:
        process.stop()


class Chat:
    """A Direct Line conversation over plain HTTP, as a server-side client would hold it."""

    def __init__(self, client: httpx.AsyncClient, domain: str) -> None:
        self.client = client
        self.domain = domain
        self.id = ""
        self.token = ""
        self.watermark: str | None = None

    async def start(self) -> list[dict[str, Any]]:
        response = await self.client.post(
            f"{self.domain}/conversations",
            headers={"Authorization": f"Bearer {TEST_SECRET}"},
            json={"user": {"id": "customer-1"}},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        self.id, self.token = body["conversationId"], body["token"]
        return await self.news()

    async def say(self, text: str) -> list[dict[str, Any]]:
        response = await self.client.post(
            f"{self.domain}/conversations/{self.id}/activities",
            headers={"Authorization": f"Bearer {self.token}"},
            json={"type": "message", "text": text, "from": {"id": "customer-1"}},
        )
        assert response.status_code == 200, response.text
        return await self.news()

    async def news(self) -> list[dict[str, Any]]:
        """Bot activities since the last read (the POST returns after the reply is committed)."""
        response = await self.client.get(
            f"{self.domain}/conversations/{self.id}/activities",
            headers={"Authorization": f"Bearer {self.token}"},
            params={"watermark": self.watermark} if self.watermark else {},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        self.watermark = body["watermark"]
        return [a for a in body["activities"] if a["from"].get("role") == "bot"]


def texts(activities: list[dict[str, Any]]) -> list[str]:
    return [a["text"] for a in activities if a["type"] == "message"]


async def stored_state(database: DatabaseUnderTest, conversation_id: str) -> dict[str, Any]:
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        async with db.reading() as session:
            row = await session.get(DialogStateRow, conversation_id)
            assert row is not None, "no dialog state stored"
            return dict(row.state)
    finally:
        await db.dispose()


async def pinned_bot(database: DatabaseUnderTest, conversation_id: str) -> tuple[str | None, int | None]:
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        async with db.reading() as session:
            conversation = await get_conversation(session, conversation_id)
            assert conversation is not None
            return conversation.bot_id, conversation.bot_version
    finally:
        await db.dispose()


async def test_restart_mid_question_resumes_the_same_question(
    server: ServerProcess, database: DatabaseUnderTest
) -> None:
    await asyncio.to_thread(server.start)
    async with httpx.AsyncClient(timeout=10) as client:
        chat = Chat(client, server.domain)
        greeting = texts(await chat.start())
        assert greeting[0] == GREETING
        assert texts(await chat.say("where is my order")) == [ASK_ORDER]

        # What the killed process leaves behind: the topic waiting on its order-number question.
        state = await stored_state(database, chat.id)
        assert [(f["topic"], f["asking"]) for f in state["frames"]] == [("OrderStatus", "askOrderNumber")]

        server.kill()
        await asyncio.to_thread(server.start)

        # The new process answers the stored question: no greeting again, no fallback, no re-prompt.
        assert texts(await chat.say("12345")) == [ASK_EMAIL]
        state = await stored_state(database, chat.id)
        assert state["frames"][0]["variables"] == {"Topic.OrderNumber": 12345}

        # Killed again between the two questions: the email question is the one that resumes.
        server.kill()
        await asyncio.to_thread(server.start)
        replies = texts(await chat.say("dana@example.com"))
        assert replies == [
            "Order 12345 has shipped and should arrive within 2 business days. "
            "We sent the tracking link to dana@example.com.",
            ANYTHING_ELSE,
        ]
        assert texts(await chat.say("no")) == [CSAT]
        finale = await chat.say("5")
        assert texts(finale) == [GOODBYE]
        assert finale[-1]["type"] == "endOfConversation"

        # The restarts reseeded the demo but published nothing new: the chat ran v1 throughout.
        history = await client.get(
            f"{server.domain}/conversations/{chat.id}/activities",
            headers={"Authorization": f"Bearer {chat.token}"},
        )
        all_bot = [
            a["text"]
            for a in history.json()["activities"]
            if a["type"] == "message" and a["from"].get("role") == "bot"
        ]
    assert all_bot.count(GREETING) == 1
    assert not any(t.startswith("Sorry") for t in all_bot), all_bot
    state = await stored_state(database, chat.id)
    assert state["frames"] == []
    assert state["globals"]["Global.OrderNumber"] == "12345"
    assert state["globals"]["Global.CSAT"] == 5
    assert state["ended"] is True
    assert await pinned_bot(database, chat.id) == (DEMO_BOT_ID, 1)
