"""Fixtures for browser tests: Chromium per test, a page that leaves a screenshot, a host site."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.browser import ARTIFACTS_DIR, CHROMIUM_ARGS, CHROMIUM_PATH, HostSite, PageTraffic
from tests.support import LiveServer


@pytest.fixture
def chromium(live_server: LiveServer) -> Iterator[Browser]:
    """Headless Debian Chromium, never a downloaded browser.

    One per test rather than per module: Playwright's sync API marks its loop as running on this
    thread, which would break the ``asyncio.run`` the database fixtures do. Depending on
    ``live_server`` makes it start after, and stop before, the server and its database.
    """
    if not CHROMIUM_PATH.exists():
        pytest.fail(f"{CHROMIUM_PATH} is missing; install the Debian 'chromium' package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM_PATH), headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def traffic() -> PageTraffic:
    """The page's WebSockets, frames and polling requests."""
    return PageTraffic()


@pytest.fixture
def page(chromium: Browser, traffic: PageTraffic, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context and page; its final state is saved to ``test-artifacts/``."""
    context = chromium.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    traffic.watch(page)
    try:
        yield page
    finally:
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        page.screenshot(path=str(ARTIFACTS_DIR / f"{name}.png"), timeout=10_000)
        context.close()


@pytest.fixture
def host_site() -> Iterator[HostSite]:
    """A customer's web site on its own loopback origin, so CORS is exercised for real."""
    with HostSite().running() as site:
        yield site
