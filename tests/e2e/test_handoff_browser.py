"""The warm hand-off in two browsers: a customer in Web Chat, an agent in the workspace.

The customer talks to the retail demo bot on the widget's try page, gives an order number and an
email, then asks for a person. Ava, signed in and Available, gets the offer with its countdown,
accepts, finds the whole bot transcript, the bot's variables and its private message, and the two
talk; the bot stays silent. Ava ends with a wrap-up note; the customer sees the end and the
survey, and answers it. Screenshots of the workspace go to ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.e2e.browser import ARTIFACTS_DIR, read_store
from tests.e2e.test_widget_browser import CHAT_TIMEOUT, conversation_id, send
from tests.support import TEST_SECRET, DatabaseUnderTest, LiveServer
from warmline.demo import DEMO_CONTACT_CENTER, seed_demo
from warmline.events import InProcessBus
from warmline.routing.config import do_apply_config
from warmline.routing.config_file import load_contact_center
from warmline.store import Database
from warmline.store.schema import ActivityRow, ConversationRow

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

AGENT_LINE = "Hi, I'm Ava. I can see order 12345 and I'm chasing the courier now."
CUSTOMER_LINE = "Thank you, that's kind!"
WRAP_UP_NOTE = "Parcel delayed at the depot; courier chased, customer happy."


async def seed(database: DatabaseUnderTest) -> None:
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        await seed_demo(db, TEST_SECRET, datetime.now(UTC), with_bot=True)
        # The demo contact center turns the survey on; make sure of it even if that file changes.
        document = load_contact_center(DEMO_CONTACT_CENTER).document
        chat = next(w for w in document.workstreams if w.id == "demo-messaging")
        if not chat.post_conversation_survey:
            chat.post_conversation_survey = True
            async with db.transaction() as tx:
                await do_apply_config(tx, document, datetime.now(UTC))
    finally:
        await db.dispose()


@pytest.fixture
def live_server(database: DatabaseUnderTest, tmp_path: Path) -> Iterator[LiveServer]:
    """The app with the retail bot behind the demo widget and the demo contact center applied."""
    asyncio.run(seed(database))
    server = LiveServer(database.settings(upload_dir=tmp_path / "uploads")).start()
    yield server
    server.stop()


@pytest.fixture
def two_contexts(chromium: Browser) -> Iterator[tuple[BrowserContext, BrowserContext]]:
    """The agent's browser and the customer's: separate cookies, separate storage."""
    agent = chromium.new_context(viewport={"width": 1280, "height": 900})
    customer = chromium.new_context(viewport={"width": 1100, "height": 800})
    for context in (agent, customer):
        context.set_default_timeout(10_000)
    try:
        yield agent, customer
    finally:
        agent.close()
        customer.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / f"handoff-{name}.png"), full_page=True)


def bubble(page: Page, text: str) -> Locator:
    """A Web Chat message paragraph; Markdown typesets apostrophes, so ``'`` matches both kinds."""
    return page.locator("p", has_text=re.compile(re.escape(text).replace("'", "['\u2019]")))


def suggested_action(page: Page, title: str) -> Locator:
    return page.get_by_role("toolbar", name="Suggested actions").get_by_role("button", name=title, exact=True)


def stored(
    database: DatabaseUnderTest, conversation: str
) -> tuple[ConversationRow, list[tuple[str, dict[str, Any]]]]:
    async def read(session: AsyncSession) -> tuple[ConversationRow, list[tuple[str, dict[str, Any]]]]:
        row = await session.get(ConversationRow, conversation)
        assert row is not None
        log = await session.execute(
            select(ActivityRow.from_role, ActivityRow.payload)
            .where(ActivityRow.conversation_id == conversation)
            .order_by(ActivityRow.seq)
        )
        return row, [(role, payload) for role, payload in log]

    return read_store(database, read)


def test_customer_and_agent_hand_off_warm_in_two_browsers(
    two_contexts: tuple[BrowserContext, BrowserContext], live_server: LiveServer, database: DatabaseUnderTest
) -> None:
    agent_context, customer_context = two_contexts
    agent = agent_context.new_page()
    customer = customer_context.new_page()

    # Ava signs in and becomes Available.
    agent.goto(f"{live_server.url}/workspace/login")
    expect(agent.get_by_label("Environment")).to_have_value("demo")
    agent.get_by_label("User name").fill("ava")
    agent.get_by_label("Password").fill("wrong")
    agent.get_by_role("button", name="Sign in").click()
    expect(agent.locator("#login-error")).to_have_text("Wrong user name or password.")
    agent.get_by_label("User name").fill("ava")
    agent.get_by_label("Password").fill("demo")
    agent.get_by_role("button", name="Sign in").click()
    expect(agent.locator("#agent-name")).to_have_text("Ava Agent")
    expect(agent.locator("body")).to_have_attribute("data-live", "yes")
    with agent.expect_response(lambda r: r.url.endswith("/api/workspace/presence") and r.ok):
        agent.get_by_label("Presence").select_option("Available")
    expect(agent.locator("body")).to_have_attribute("data-presence", "Available")
    shot(agent, "1-signed-in")

    # The customer checks an order with the bot, then asks for a person.
    customer.goto(f"{live_server.url}/widgets/demo/try")
    customer.get_by_role("button", name="Open chat").click()
    expect(bubble(customer, "I'm the Contoso Retail assistant")).to_be_visible(timeout=CHAT_TIMEOUT)
    send(customer, "where is my order")
    expect(bubble(customer, "What's your order number?")).to_be_visible()
    send(customer, "12345")
    expect(bubble(customer, "And the email address you ordered with?")).to_be_visible()
    send(customer, "dana@example.com")
    expect(bubble(customer, "Order 12345 has shipped")).to_be_visible()
    expect(bubble(customer, "Is there anything else I can help with?")).to_be_visible()
    send(customer, "talk to a person")
    expect(bubble(customer, "what do you need help with?")).to_be_visible()
    send(customer, "my parcel still hasn't arrived")
    expect(bubble(customer, "You're number 1 in the queue")).to_be_visible()
    conversation = conversation_id(customer)

    # Ava gets the offer: customer, queue, language and a live countdown.
    offer = agent.locator(".offer")
    expect(offer).to_be_visible()
    expect(offer.locator(".offer-customer")).to_have_text(re.compile(r"^Guest "))
    expect(offer.locator(".offer-queue")).to_have_text(re.compile(r"^(Orders|General)$"))
    expect(offer.locator(".offer-language")).to_have_text("en-US")
    countdown = offer.locator(".countdown")
    expect(countdown).to_have_text(re.compile(r"^Expires in \d+ s$"))
    first = countdown.get_attribute("data-seconds")
    assert first is not None and 100 <= int(first) <= 120, first
    expect(countdown).not_to_have_attribute("data-seconds", first)  # it counts down
    shot(agent, "2-offer")
    offer.get_by_role("button", name="Accept").click()
    expect(offer).to_have_count(0)

    # The whole story so far, the bot's variables and its private message.
    panel = agent.locator(f'.conversation[data-conversation="{conversation}"]')
    expect(panel).to_be_visible()
    expect(agent.get_by_role("tab")).to_have_count(1)
    transcript = panel.locator(".transcript")
    for line in (
        "where is my order",
        "12345",
        "dana@example.com",
        "Order 12345 has shipped",
        "talk to a person",
    ):
        expect(transcript).to_contain_text(line)
    expect(transcript.locator(".entry.role-bot").first).to_contain_text("Contoso Retail assistant")
    expect(transcript.locator(".entry.role-customer")).to_have_count(5)
    expect(panel.locator('.variables-table tr[data-variable="Global.OrderNumber"]')).to_contain_text("12345")
    expect(panel.locator('.variables-table tr[data-variable="Global.CustomerEmail"]')).to_contain_text(
        "dana@example.com"
    )
    expect(panel.locator(".message-to-agent")).to_have_text(
        "Customer needs help with: my parcel still hasn't arrived. Order: 12345. Tier: ."
    )
    expect(panel.locator(".routing-list")).to_contain_text("Reason")
    expect(bubble(customer, "Ava Agent joined the chat.")).to_be_visible()
    shot(agent, "3-conversation")

    # Messages both ways.
    composer = panel.get_by_label("Message to the customer")
    composer.fill(AGENT_LINE)
    composer.press("Enter")
    expect(bubble(customer, AGENT_LINE)).to_be_visible()
    send(customer, CUSTOMER_LINE)
    expect(transcript.locator(".entry.role-customer").last).to_contain_text(CUSTOMER_LINE)
    expect(transcript.locator(".entry.role-agent")).to_contain_text(AGENT_LINE)

    # Ava ends the chat and wraps up.
    panel.get_by_role("button", name="End conversation").click()
    wrap_up = panel.locator(".wrap-up")
    expect(wrap_up).to_be_visible()
    expect(panel.locator(".state")).to_have_text("wrap-up")
    wrap_up.get_by_label("Wrap-up notes").fill(WRAP_UP_NOTE)
    wrap_up.get_by_label("Disposition").select_option("Resolved")
    shot(agent, "4-wrap-up")
    wrap_up.get_by_role("button", name="Close conversation").click()
    expect(panel.locator(".closed-note")).to_have_text("Closed — Resolved.")

    # The customer sees the end and the survey, and answers it.
    expect(bubble(customer, "Ava Agent has ended the chat.")).to_be_visible()
    expect(bubble(customer, "How satisfied were you with the help you got?")).to_be_visible()
    suggested_action(customer, "5").click()
    expect(bubble(customer, "Thank you for your feedback!")).to_be_visible()
    expect(customer.get_by_text("Send failed")).to_have_count(0)
    expect(transcript).to_contain_text("Survey answer: 5/5")
    shot(agent, "5-closed")
    shot(customer, "6-customer")

    row, log = stored(database, conversation)
    assert (row.state, row.agent_id) == ("closed", "ava")
    assert row.routing is not None
    assert row.routing["survey"]["rating"] == 5
    assert (row.routing["wrap_up"]["notes"], row.routing["wrap_up"]["disposition"]) == (
        WRAP_UP_NOTE,
        "Resolved",
    )
    handoff = next(i for i, (_, a) in enumerate(log) if a.get("name") == "handoff.initiate")
    after = log[handoff + 1 :]
    # The bot never spoke after it handed over; Ava's line is stored as hers.
    assert [a.get("text") for role, a in after if role == "bot"] == []
    assert ("agent", AGENT_LINE) in [(role, a.get("text")) for role, a in after]
    assert any(a.get("name") == "warmline.survey.response" for _, a in after)


def test_supervisor_watches_the_floor_monitors_and_force_assigns(
    two_contexts: tuple[BrowserContext, BrowserContext], live_server: LiveServer
) -> None:
    supervisor_context, _ = two_contexts
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        session = client.post("/widgets/demo/conversations", json={"userName": "Dana"}).json()
        auth = {"Authorization": f"Bearer {session['token']}"}
        started = client.post("/v3/directline/conversations", headers=auth).json()
        auth = {"Authorization": f"Bearer {started['token']}"}
        conversation = started["conversationId"]
        for text in ("talk to a person", "my refund never arrived"):
            sent = client.post(
                f"/v3/directline/conversations/{conversation}/activities",
                headers=auth,
                json={"type": "message", "text": text, "from": {"id": "dana"}},
            )
            assert sent.status_code == 200, sent.text

    page = supervisor_context.new_page()
    page.goto(f"{live_server.url}/workspace/login")
    page.get_by_label("User name").fill("sam")
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Supervisor view").click()
    expect(page.locator("body")).to_have_attribute("data-ready", "yes")
    # Nobody is Available: the chat waits in General.
    general = page.locator('#queues tr[data-queue="general"]')
    expect(general.locator("td").nth(2)).to_have_text("1")
    expect(page.locator('#agents tr[data-agent="ava"]')).to_contain_text("Offline")
    row = page.locator(f'#live tr[data-conversation="{conversation}"]')
    expect(row).to_contain_text("Dana")
    expect(row).to_contain_text("waiting")

    row.get_by_role("button", name="Monitor").click()
    monitor = page.locator("#monitor")
    expect(monitor.locator(".transcript")).to_contain_text("my refund never arrived")
    row.get_by_label("Assign to").select_option("ben")
    row.get_by_role("button", name="Assign").click()
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("Ben Agent")
    expect(monitor.locator(".monitor-state")).to_have_text("active")
    expect(general.locator("td").nth(2)).to_have_text("0")
    # The monitored transcript is live: the customer is told who joined.
    expect(monitor.locator(".transcript")).to_contain_text("Ben Agent joined the chat.")
    expect(page.locator('#agents tr[data-agent="ben"]')).to_contain_text("1 / 3")
    shot(page, "7-supervisor")
