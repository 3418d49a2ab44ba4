"""The chat widget in headless Chromium: a customer's page embeds it, Web Chat talks Direct Line.

The host page lives on another loopback port than Warmline, so every call the widget and Web Chat
make is cross-origin, exactly as on a real customer's site.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.e2e.browser import HostSite, PageTraffic, fetch_embed_code, host_page, read_store
from tests.support import DatabaseUnderTest, LiveServer
from warmline.conversations.model import Conversation
from warmline.conversations.reads import get_conversation
from warmline.demo import DEMO_SSO_AUDIENCE, DEMO_SSO_ISSUER, demo_sign_in_token
from warmline.store.schema import ActivityRow, ConversationRow

pytestmark = pytest.mark.browser

ANONYMOUS_GREETING = "Hello! I'm Warmline Echo"
SENDBOX = 'input[data-id="webchat-sendbox-input"]'
# Web Chat needs a few seconds on a cold page: a 3.9 MB bundle, then token, start, socket.
CHAT_TIMEOUT = 12_000


def bubble(page: Page, text: str) -> Locator:
    """A Web Chat message bubble's paragraph containing ``text``."""
    return page.locator("p", has_text=text)


def send(page: Page, text: str) -> None:
    """Type into Web Chat's send box and press Enter, as a customer would."""
    box = page.locator(SENDBOX)
    box.fill(text)
    box.press("Enter")


def conversation_id(page: Page) -> str:
    """The id of the conversation the widget opened."""
    value = page.evaluate("window.Warmline.session.conversationId")
    assert isinstance(value, str) and value
    return value


def stored_conversation(database: DatabaseUnderTest, conversation: str) -> Conversation:
    found = read_store(database, lambda session: get_conversation(session, conversation))
    assert found is not None, f"conversation {conversation} was not stored"
    return found


def stored_payloads(database: DatabaseUnderTest) -> list[dict[str, Any]]:
    """Every activity in the store, as stored."""

    async def read(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await session.execute(select(ActivityRow.payload).order_by(ActivityRow.seq))
        return [payload for (payload,) in rows]

    return read_store(database, read)


def conversation_count(database: DatabaseUnderTest) -> int:
    async def read(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(ConversationRow)) or 0)

    return read_store(database, read)


def open_shop(page: Page, site: HostSite, server: LiveServer, **providers: Any) -> None:
    """Load a page of the customer's site that embeds the demo widget."""
    url = site.publish("/shop.html", host_page(fetch_embed_code(server.url), **providers))
    page.goto(url)


def test_customer_chats_with_the_bot_over_websocket(
    page: Page,
    host_site: HostSite,
    live_server: LiveServer,
    database: DatabaseUnderTest,
    traffic: PageTraffic,
) -> None:
    open_shop(page, host_site, live_server)
    expect(bubble(page, ANONYMOUS_GREETING)).to_be_visible(timeout=CHAT_TIMEOUT)
    expect(page.locator(".wl-panel")).to_have_attribute("data-sign-in", "anonymous")

    send(page, "where is my parcel?")
    expect(bubble(page, "You said: where is my parcel?")).to_be_visible()
    expect(page.locator("p", has_text=re.compile(r"^where is my parcel\?$"))).to_be_visible()
    expect(page.get_by_text("Send failed")).to_have_count(0)

    conversation = conversation_id(page)
    # Cross-origin, as on a real site: the widget's calls passed Warmline's CORS checks.
    assert page.evaluate("location.origin") == host_site.origin != live_server.url
    # The transport was Direct Line's WebSocket stream (token in the URL), and nobody polled.
    assert any(f"/conversations/{conversation}/stream?t=" in url for url in traffic.websockets), traffic
    assert traffic.polls == []
    assert any("You said: where is my parcel?" in frame for frame in traffic.frames)
    # The server stored Web Chat's own activity with the client's id, then the bot's reply.
    payloads = stored_payloads(database)
    texts = [(p["from"].get("role"), p.get("text")) for p in payloads if p["type"] == "message"]
    assert texts[-2:] == [("user", "where is my parcel?"), ("bot", "You said: where is my parcel?")]
    customer_message = next(p for p in payloads if p.get("text") == "where is my parcel?")
    assert customer_message["channelData"]["clientActivityID"]


def forged_token(now: datetime) -> str:
    """Claims the demo widget would accept, signed with a secret it does not know."""
    claims = {
        "sub": "u-42",
        "name": "Alice Example",
        "iss": DEMO_SSO_ISSUER,
        "aud": DEMO_SSO_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    return jwt.encode(claims, "not-the-demo-widget-sso-secret-0123456789", algorithm="HS256")


def test_signed_in_customer_is_greeted_by_name(
    page: Page, host_site: HostSite, live_server: LiveServer, database: DatabaseUnderTest
) -> None:
    token = demo_sign_in_token("u-42", "Alice Example", datetime.now(UTC))
    open_shop(page, host_site, live_server, token=token)
    expect(bubble(page, "Hello, Alice Example!")).to_be_visible(timeout=CHAT_TIMEOUT)
    expect(page.locator(".wl-notice")).to_contain_text("Signed in as Alice Example")
    expect(page.locator(".wl-panel")).to_have_attribute("data-sign-in", "signed-in")
    send(page, "hi, it's me")
    expect(bubble(page, "You said: hi, it's me")).to_be_visible()

    stored = stored_conversation(database, conversation_id(page))
    assert (stored.customer.id, stored.customer.name, stored.customer.authenticated) == (
        "u-42",
        "Alice Example",
        True,
    )
    assert stored.auth_failure is None
    payloads = stored_payloads(database)
    assert payloads and token not in json.dumps(payloads)
    # Web Chat posts as the signed-in user; the stored activity says so.
    assert next(p for p in payloads if p.get("text") == "hi, it's me")["from"]["id"] == "u-42"


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        pytest.param(forged_token, "signature", id="forged"),
        pytest.param(
            lambda now: demo_sign_in_token("u-42", "Alice Example", now - timedelta(hours=2)),
            "expired",
            id="expired",
        ),
    ],
)
def test_bad_sign_in_token_leaves_the_customer_anonymous(
    make_token: Any,
    reason: str,
    page: Page,
    host_site: HostSite,
    live_server: LiveServer,
    database: DatabaseUnderTest,
) -> None:
    token: str = make_token(datetime.now(UTC))
    open_shop(page, host_site, live_server, token=token)
    expect(bubble(page, ANONYMOUS_GREETING)).to_be_visible(timeout=CHAT_TIMEOUT)
    notice = page.locator(".wl-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("guest")
    expect(notice).to_contain_text(reason)
    expect(page.locator(".wl-panel")).to_have_attribute("data-sign-in", "failed")
    expect(bubble(page, "Alice")).to_have_count(0)
    # The chat itself still works.
    send(page, "anyone there?")
    expect(bubble(page, "You said: anyone there?")).to_be_visible()

    stored = stored_conversation(database, conversation_id(page))
    assert stored.customer.authenticated is False
    assert stored.customer.id != "u-42"
    assert stored.auth_failure is not None and reason in stored.auth_failure
    assert token not in stored.auth_failure
    payloads = stored_payloads(database)
    assert payloads and token not in json.dumps(payloads)


def test_context_from_the_host_page_is_stored_on_the_conversation(
    page: Page, host_site: HostSite, live_server: LiveServer, database: DatabaseUnderTest
) -> None:
    context = {"CustomerTier": {"value": "gold", "isDisplayable": True}}
    open_shop(page, host_site, live_server, context=context)
    expect(bubble(page, ANONYMOUS_GREETING)).to_be_visible(timeout=CHAT_TIMEOUT)

    stored = stored_conversation(database, conversation_id(page))
    assert stored.context == context


def test_undeclared_context_variable_is_refused_with_a_clear_message(
    page: Page, host_site: HostSite, live_server: LiveServer, database: DatabaseUnderTest
) -> None:
    context = {
        "CustomerTier": {"value": "gold", "isDisplayable": True},
        "LoyaltyPoints": {"value": 1200, "isDisplayable": False},
    }
    open_shop(page, host_site, live_server, context=context)
    notice = page.locator(".wl-notice")
    expect(notice).to_contain_text("Chat is unavailable:", timeout=CHAT_TIMEOUT)
    expect(notice).to_contain_text("'LoyaltyPoints' is not declared")
    expect(notice).to_have_attribute("data-kind", "error")
    expect(page.locator(SENDBOX)).to_have_count(0)
    # The notice appears only after the server answered, so nothing more can be on its way.
    assert conversation_count(database) == 0


def test_bot_only_try_page_warns_and_chats(
    page: Page, live_server: LiveServer, database: DatabaseUnderTest, traffic: PageTraffic
) -> None:
    page.goto(f"{live_server.url}/widgets/demo/try?mode=bot-only")
    expect(page.locator("#bot-only-warning")).to_contain_text("hand-off to a live agent is not available")
    expect(page.locator("#embed-code")).to_contain_text('data-mode="bot-only"')
    page.get_by_role("button", name="Open chat").click()
    expect(bubble(page, ANONYMOUS_GREETING)).to_be_visible(timeout=CHAT_TIMEOUT)
    expect(page.locator(".wl-notice")).to_contain_text("bot-only test embed")
    send(page, "can I talk to a person?")
    expect(bubble(page, "You said: can I talk to a person?")).to_be_visible()
    expect(page.get_by_text("Send failed")).to_have_count(0)

    stored = stored_conversation(database, conversation_id(page))
    assert stored.bot_only is True
    assert any("/stream?t=" in url for url in traffic.websockets)
