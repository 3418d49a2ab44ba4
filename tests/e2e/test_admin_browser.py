"""The admin pages in Chromium: a bot's Agent transfers tile walked end to end, and analytics.

The bot lives in 'bots' (United States, no omnichannel); the omnichannel runs in 'contact-center'
(United States) and 'eu-contact-center' (Europe). The administrator signs in with the admin token,
enables the Omnichannel tile, installs the missing extension, is refused the European environment,
picks the American one (with the analytics warning), pastes the application id, adds the bot,
refreshes (every check green), disables, enables and disconnects. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from tests.admin.factories import (
    ADMIN,
    NOW,
    TOKEN,
    apply,
    contact_center,
    environment,
    publish_bot,
    register_app,
)
from tests.admin.test_analytics import _four_conversations
from tests.e2e.browser import ARTIFACTS_DIR, read_store
from tests.support import DatabaseUnderTest, LiveServer
from warmline.admin.actions import do_connect_bot, installed_extensions
from warmline.admin.model import Geography
from warmline.bot.publishing import do_attach_bot
from warmline.events import InProcessBus
from warmline.routing.actions import do_set_presence
from warmline.store import Database
from warmline.store.schema import ApplicationUserRow, BotConnectionRow, WidgetRow

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
T = TypeVar("T")


async def seed(database: DatabaseUnderTest) -> str:
    """Environments, the bot, the contact center whose chat workstream starts with the bot; an app id."""
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        await apply(db, contact_center("contact-center", "retail"))
        await environment(db, "bots", omnichannel=False)
        await environment(db, "contact-center")
        await environment(db, "eu-contact-center", Geography.EUROPE)
        await publish_bot(db, "retail", "bots")
        async with db.transaction() as tx:
            await do_attach_bot(tx, "demo", "retail")
            widget = await tx.session.get(WidgetRow, "demo")
            assert widget is not None
            widget.target_workstream = "contact-center/chat"
        for agent in ("ava", "ben"):
            async with db.transaction() as tx:
                await do_set_presence(tx, "contact-center", agent, "Available", NOW)
        return await register_app(db, "retail (browser test)")
    finally:
        await db.dispose()


@pytest.fixture
def app_id(database: DatabaseUnderTest) -> str:
    return asyncio.run(seed(database))


@pytest.fixture
def live_server(database: DatabaseUnderTest, tmp_path: Path, app_id: str) -> Iterator[LiveServer]:
    """The app with an admin token, over the seeded environments."""
    settings = database.settings(upload_dir=tmp_path / "uploads", routing_worker=False, admin_token=TOKEN)
    server = LiveServer(settings).start()
    yield server
    server.stop()


def shot(page: Page, name: str) -> None:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / f"admin-{name}.png"), full_page=True)


def off_the_page_thread(work: Callable[[], Awaitable[T]]) -> T:
    """Run async work on a worker thread: Playwright's sync API owns this thread's event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result(timeout=60)


def sign_in(page: Page, server: LiveServer, path: str) -> None:
    page.goto(f"{server.url}{path}")
    expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    page.get_by_label("Admin token").fill("not the token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_contain_text("not the admin token")
    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}{path}")


def test_agent_transfers_walk(
    page: Page, live_server: LiveServer, database: DatabaseUnderTest, app_id: str
) -> None:
    sign_in(page, live_server, "/admin/bots/retail/agent-transfers")
    tile = page.locator("#omnichannel-tile")
    expect(page.locator("#tile-state")).to_have_text("Not connected to an omnichannel.")
    expect(page.locator("#not-published")).to_have_count(0)

    # Enable: the extension hand-off needs is missing in the chosen omnichannel environment.
    page.get_by_role("button", name="Enable", exact=True).click()
    expect(page.locator("#environment")).to_have_value("contact-center")
    missing = page.locator("#missing-extensions")
    expect(missing).to_be_visible()
    expect(missing).to_contain_text("doesn't have access to the variables or actions it needs")
    expect(page.locator("#extension-list li")).to_have_text(["omnichannel-bot Install"])
    shot(page, "1-missing-extensions")
    page.locator('[data-install="omnichannel-bot"]').click()
    expect(missing).to_be_hidden()
    expect(page.locator("#extensions-ok")).to_be_visible()
    assert read_store(database, lambda s: installed_extensions(s, "contact-center")) == ["omnichannel-bot"]

    # Another geography is refused with the reason; another environment here gets the analytics warning.
    page.locator("#environment").select_option("eu-contact-center")
    problem = page.locator("#environment-problem")
    expect(problem).to_contain_text("'bots' is in United States but 'eu-contact-center' is in Europe")
    expect(page.get_by_role("button", name="Add your bot")).to_be_disabled()
    page.locator("#environment").select_option("contact-center")
    expect(problem).to_be_hidden()
    expect(page.locator("#environment-warning")).to_contain_text("analytics for this bot won't work")

    # Paste the application id and add the bot.
    page.get_by_label("Application ID").fill(app_id)
    shot(page, "2-ready-to-add")
    page.get_by_role("button", name="Add your bot").click()
    expect(page.locator("#tile-state")).to_have_text("Connected to the omnichannel of 'contact-center'.")
    expect(page.locator("#connected-app-id")).to_have_text(app_id)
    expect(page.locator("#connected-user")).to_have_text("active")
    expect(page.locator("#connected-workstreams")).to_have_text("chat")
    expect(page.locator("#warnings li")).to_contain_text(["analytics for this bot won't work"])
    details = page.get_by_role("link", name="View details in Omnichannel")
    expect(details).to_have_attribute("href", "/admin/environments/contact-center#bot-retail")

    def connection(session: AsyncSession) -> Awaitable[BotConnectionRow | None]:
        return session.get(BotConnectionRow, "retail")

    stored = read_store(database, connection)
    assert stored is not None and (stored.environment_id, stored.app_id, stored.state) == (
        "contact-center",
        app_id,
        "enabled",
    )

    # Refresh: every check green.
    page.get_by_role("button", name="Refresh").click()
    checks = page.locator("#checks li")
    expect(checks).to_have_count(6)
    expect(page.locator("#checks li.fail")).to_have_count(0)
    expect(page.locator("#checks")).to_have_attribute("data-ok", "true")
    expect(checks.first).to_contain_text("✓application user active")
    shot(page, "3-refreshed")

    # Disable (traffic stops), enable again, then disconnect.
    page.get_by_role("button", name="Disable").click()
    expect(page.locator("#tile-state")).to_contain_text("disabled: the bot receives no traffic")
    page.get_by_role("button", name="Enable connection").click()
    expect(page.locator("#tile-state")).to_have_text("Connected to the omnichannel of 'contact-center'.")
    page.get_by_role("button", name="Disconnect bot").click()
    expect(page.locator("#tile-state")).to_contain_text("Disconnected: the application user is disabled")
    expect(tile.get_by_role("button", name="Enable", exact=True)).to_be_visible()
    expect(page.locator("#connected")).to_be_hidden()
    shot(page, "4-disconnected")

    def user(session: AsyncSession) -> Awaitable[ApplicationUserRow | None]:
        return session.get(ApplicationUserRow, ("contact-center", app_id))

    row = read_store(database, user)
    assert row is not None and row.state == "disabled"

    # The omnichannel admin's view lists the application user.
    page.goto(f"{live_server.url}/admin/environments/contact-center#bot-retail")
    expect(page.locator("#bot-retail")).to_contain_text(app_id)
    expect(page.locator("#bot-retail")).to_contain_text("disabled")


def test_voice_guard_and_analytics_pages(
    page: Page, live_server: LiveServer, database: DatabaseUnderTest, app_id: str
) -> None:
    async def prepare() -> None:
        db = Database(database.url, InProcessBus(), schema=database.schema)
        try:
            async with db.transaction() as tx:
                await do_connect_bot(tx, ADMIN, "retail", "contact-center", app_id, NOW)
            await environment(db, "mumbai", Geography.INDIA)
            await publish_bot(db, "concierge", "mumbai")
            await _four_conversations(live_server, db)
        finally:
            await db.dispose()

    off_the_page_thread(prepare)

    # Voice in India is refused with the reason, and the toggle stays off.
    sign_in(page, live_server, "/admin/bots/concierge/agent-transfers")
    page.get_by_label("Enable voice").check()
    expect(page.locator("#voice-error")).to_contain_text("voice is not available in India ('mumbai')")
    expect(page.get_by_label("Enable voice")).not_to_be_checked()

    # In the United States it works, and the connected bot is reconnected for the user.
    page.goto(f"{live_server.url}/admin/bots/retail/agent-transfers")
    page.get_by_label("Enable voice").check()
    expect(page.locator("#voice-message")).to_contain_text("reconnected to the omnichannel")

    # Analytics of the bot's environment: the numbers, and why omnichannel analytics are missing.
    page.goto(f"{live_server.url}/admin/analytics?environment=bots&bot=retail")
    expect(page.locator("#m-sessions")).to_have_text("4")
    expect(page.locator("#m-engagement")).to_have_text("75 %")
    expect(page.locator("#m-resolution")).to_have_text("50 %")
    expect(page.locator("#m-escalation")).to_have_text("25 %")
    expect(page.locator("#m-abandon")).to_have_text("25 %")
    expect(page.locator("#m-csat")).to_have_text("4.50")
    expect(page.locator("#chart-topics .bar")).to_have_attribute("data-label", "Talk to a person")
    expect(page.locator("#no-omnichannel-analytics")).to_be_visible()
    expect(page.locator(".omnichannel-note")).to_contain_text("'bots', its omnichannel in 'contact-center'")
    shot(page, "5-analytics-bot")

    # The omnichannel environment's queues: waiting and handle times, rejected offers.
    page.goto(f"{live_server.url}/admin/analytics?environment=contact-center")
    queue = page.locator('#queues tr[data-queue="general"]')
    expect(queue.locator(".wait")).to_have_text("30 s")
    expect(queue.locator(".handle")).to_have_text("2 min 00 s")
    expect(queue.locator(".rejected")).to_have_text("1")
    expect(page.locator("#chart-waits .bar")).to_have_attribute("data-value", "30")
    shot(page, "6-analytics-queues")
