"""The retail demo bot in headless Chromium: Web Chat on a customer's page plays its topics end to end.

The demo bot is published onto the demo widget before the server starts, so every conversation the
widget opens is pinned to it (not the echo bot the other browser tests talk to).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.e2e.browser import HostSite, PageTraffic, fetch_embed_code, host_page, read_store
from tests.e2e.test_widget_browser import CHAT_TIMEOUT, conversation_id, send, stored_conversation
from tests.support import TEST_SECRET, DatabaseUnderTest, LiveServer
from warmline.bot.topic_bot import HANDOFF_UNAVAILABLE
from warmline.channels.directline.tokens import TokenIssuer
from warmline.conversations.model import Conversation
from warmline.demo import DEMO_BOT_ID, demo_sign_in_token, seed_demo
from warmline.events import InProcessBus
from warmline.store import Database
from warmline.store.schema import ActivityRow

pytestmark = pytest.mark.browser

GREETING = "Hello! I'm the Contoso Retail assistant."
OFFER = "I can help with"
ASK_ORDER = "What's your order number?"
ASK_EMAIL = "And the email address you ordered with?"
ANYTHING_ELSE = "Is there anything else I can help with?"
CSAT = "How would you rate your experience"
GOODBYE = "Thanks for chatting with Contoso. Goodbye!"
ASK_ISSUE = "In a few words, what do you need help with?"
CONNECTING = "connecting you with an agent"


async def publish_demo_bot(database: DatabaseUnderTest) -> None:
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        await seed_demo(db, TEST_SECRET, datetime.now(UTC), with_bot=True)
    finally:
        await db.dispose()


@pytest.fixture
def live_server(database: DatabaseUnderTest, tmp_path: Path) -> Iterator[LiveServer]:
    """The app on 127.0.0.1 with the retail demo bot behind the demo widget.

    Overrides the shared fixture of the same name, so the ``chromium`` fixture (which depends on
    ``live_server``) starts after the bot is published and stops before the server does.
    """
    asyncio.run(publish_demo_bot(database))
    server = LiveServer(database.settings(upload_dir=tmp_path / "uploads")).start()
    yield server
    server.stop()


def stored_activities(database: DatabaseUnderTest, conversation: str) -> list[dict[str, Any]]:
    """One conversation's activity log, in order."""

    async def read(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await session.execute(
            select(ActivityRow.payload)
            .where(ActivityRow.conversation_id == conversation)
            .order_by(ActivityRow.seq)
        )
        return [payload for (payload,) in rows]

    return read_store(database, read)


def handoff_events(activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in activities if a["type"] == "event" and a.get("name") == "handoff.initiate"]


def bubble(page: Page, text: str) -> Locator:
    """A bot or customer message paragraph containing ``text``.

    Web Chat's Markdown renderer typesets apostrophes as typographic ones, so ``'`` matches both.
    """
    pattern = re.escape(text).replace("'", "['\u2019]")
    return page.locator("p", has_text=re.compile(pattern))


def suggested_action(page: Page, title: str) -> Locator:
    """A button of Web Chat's suggested-actions toolbar above the send box."""
    toolbar = page.get_by_role("toolbar", name="Suggested actions")
    return toolbar.get_by_role("button", name=title, exact=True)


def open_shop(page: Page, site: HostSite, server: LiveServer, **providers: Any) -> None:
    url = site.publish("/shop.html", host_page(fetch_embed_code(server.url), **providers))
    page.goto(url)


def test_order_status_path_end_to_end(
    page: Page, host_site: HostSite, live_server: LiveServer, database: DatabaseUnderTest
) -> None:
    open_shop(page, host_site, live_server)
    expect(bubble(page, GREETING)).to_be_visible(timeout=CHAT_TIMEOUT)
    # The offer is Markdown: Web Chat renders its **bold** parts as <strong>.
    offer = bubble(page, OFFER)
    expect(offer).to_be_visible()
    expect(offer.locator("strong")).to_have_text(["store hours", "order status", "returns"])
    expect(page.get_by_text("**")).to_have_count(0)
    # Its quick replies are Web Chat suggested actions.
    expect(suggested_action(page, "Where is my order?")).to_be_visible()

    send(page, "where is my order")
    expect(bubble(page, ASK_ORDER)).to_be_visible()
    send(page, "12345")
    expect(bubble(page, ASK_EMAIL)).to_be_visible()
    send(page, "dana@example.com")
    expect(bubble(page, "Order 12345 has shipped")).to_be_visible()
    expect(bubble(page, "Order 12345 has shipped")).to_contain_text(
        "should arrive within 2 business days. We sent the tracking link to dana@example.com."
    )
    expect(bubble(page, ANYTHING_ELSE)).to_be_visible()

    send(page, "no")
    expect(bubble(page, CSAT)).to_be_visible()
    for score in "12345":
        expect(suggested_action(page, score)).to_be_visible()
    suggested_action(page, "5").click()
    expect(bubble(page, GOODBYE)).to_be_visible()
    expect(page.get_by_text("Send failed")).to_have_count(0)

    conversation = conversation_id(page)
    stored = stored_conversation(database, conversation)
    assert (stored.bot_id, stored.bot_version) == (DEMO_BOT_ID, 1)
    activities = stored_activities(database, conversation)
    texts = [(a["from"].get("role"), a.get("text")) for a in activities if a["type"] == "message"]
    customer = [text for role, text in texts if role == "user"]
    assert customer == ["where is my order", "12345", "dana@example.com", "no", "5"]
    bot = [text for role, text in texts if role == "bot"]
    assert bot[0] == GREETING
    assert bot[-1] == GOODBYE
    # No fallback and no re-prompt anywhere along the path.
    assert not any("Sorry" in (text or "") for text in bot), bot
    assert activities[-1]["type"] == "endOfConversation"
    assert handoff_events(activities) == []
    csat_prompt = next(a for a in activities if (a.get("text") or "").startswith(CSAT))
    assert [x["title"] for x in csat_prompt["suggestedActions"]["actions"]] == list("12345")


def customer_view(server: LiveServer, conversation: Conversation) -> list[dict[str, Any]]:
    """Every activity the customer's Direct Line client can read, with a token for their conversation."""
    tokens: TokenIssuer = server.app.state.tokens
    token = tokens.issue(
        conversation_id=conversation.id,
        user_id=conversation.customer.id,
        user_name=conversation.customer.name,
        widget_id=conversation.widget_id,
        now=datetime.now(UTC),
    )
    response = httpx.get(
        f"{server.domain}/conversations/{conversation.id}/activities",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    activities: list[dict[str, Any]] = response.json()["activities"]
    return activities


def test_talk_to_a_person_hands_off_with_a_private_message(
    page: Page,
    host_site: HostSite,
    live_server: LiveServer,
    database: DatabaseUnderTest,
    traffic: PageTraffic,
) -> None:
    token = demo_sign_in_token("u-7", "Dana Scully", datetime.now(UTC))
    context = {"CustomerTier": {"value": "gold", "isDisplayable": True}}
    open_shop(page, host_site, live_server, token=token, context=context)
    expect(bubble(page, "Hello, Dana Scully! I'm the Contoso Retail assistant.")).to_be_visible(
        timeout=CHAT_TIMEOUT
    )

    send(page, "talk to a person")
    expect(bubble(page, ASK_ISSUE)).to_be_visible()
    send(page, "my refund never arrived")
    expect(bubble(page, CONNECTING)).to_be_visible()
    expect(bubble(page, "isn't available in this test chat")).to_have_count(0)

    conversation = conversation_id(page)
    events = handoff_events(stored_activities(database, conversation))
    assert len(events) == 1, events
    value = events[0]["value"]
    assert events[0]["from"]["role"] == "bot"
    assert "my refund never arrived" in value["va_AgentMessage"]
    assert value["va_AgentMessage"] == (
        "Customer needs help with: my refund never arrived. Order: . Tier: gold."
    )
    assert value["va_Topics"] == ["Talk to a person"]
    assert value["va_LastTopic"] == "Talk to a person"
    assert value["va_LastPhrase"] == value["va_LastPhrases"] == "my refund never arrived"
    assert value["va_Phrases"] == ["talk to a person", "my refund never arrived"]
    assert value["va_ConversationId"] == conversation
    assert value["va_BotId"] == DEMO_BOT_ID
    assert value["va_BotName"] == "Contoso Retail Assistant"
    assert value["va_Language"] == "en-US"
    # The signed-in name the greeting kept in an omnichannel variable goes to the agent by name.
    assert value["msdyn_CustomerName"] == "Dana Scully"
    # The hand-off event is for the omnichannel and the agent: the message to the agent and the
    # variables never reach the customer's browser.
    seen = customer_view(live_server, stored_conversation(database, conversation))
    assert any(CONNECTING in (a.get("text") or "") for a in seen)
    assert handoff_events(seen) == []
    assert "va_AgentMessage" not in json.dumps(seen)
    assert not any("va_AgentMessage" in frame for frame in traffic.frames)
    # Every variable, typed: the topic's answer and the global the host page's context set.
    assert value["variables"]["topic"]["Issue"] == {"value": "my refund never arrived", "type": "Text"}
    assert value["variables"]["global"]["CustomerTier"] == {"value": "gold", "type": "Text"}


def test_bot_only_try_page_refuses_the_hand_off(
    page: Page, live_server: LiveServer, database: DatabaseUnderTest
) -> None:
    page.goto(f"{live_server.url}/widgets/demo/try?mode=bot-only")
    expect(page.locator("#bot-only-warning")).to_be_visible()
    page.get_by_role("button", name="Open chat").click()
    expect(bubble(page, GREETING)).to_be_visible(timeout=CHAT_TIMEOUT)

    send(page, "talk to a person")
    expect(bubble(page, ASK_ISSUE)).to_be_visible()
    send(page, "my refund never arrived")
    expect(bubble(page, CONNECTING)).to_be_visible()
    expect(bubble(page, "isn't available in this test chat")).to_be_visible()
    expect(page.get_by_text("Send failed")).to_have_count(0)

    conversation = conversation_id(page)
    assert stored_conversation(database, conversation).bot_only is True
    activities = stored_activities(database, conversation)
    assert handoff_events(activities) == []
    bot_texts = [a.get("text") for a in activities if a["type"] == "message" and a["from"]["role"] == "bot"]
    assert bot_texts[-1] == HANDOFF_UNAVAILABLE
    assert re.search(CONNECTING, bot_texts[-2] or "")
