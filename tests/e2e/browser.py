"""Browser test support: headless Debian Chromium, a customer's web site on another origin, store reads.

Playwright's sync API keeps its event loop marked as running on the test's thread, so anything
that needs ``asyncio.run`` (reading the store) runs on a worker thread instead.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
from playwright.sync_api import Page, WebSocket
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support import DatabaseUnderTest
from warmline.events import InProcessBus
from warmline.store import Database

CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"

T = TypeVar("T")


class _PageHandler(BaseHTTPRequestHandler):
    """Serves the pages of the ``HostSite`` that owns the server."""

    server: _HostServer

    def do_GET(self) -> None:
        body = self.server.pages.get(self.path.split("?", 1)[0])
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


class _HostServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PageHandler)
        self.pages: dict[str, str] = {}


class HostSite:
    """A customer's own web site: static pages on a loopback port other than Warmline's."""

    def __init__(self) -> None:
        self._server = _HostServer()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def publish(self, path: str, body: str) -> str:
        """Serve ``body`` at ``path``; returns the page's URL."""
        self._server.pages[path] = body
        return f"{self.origin}{path}"

    @contextmanager
    def running(self) -> Iterator[HostSite]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)


def fetch_embed_code(server_url: str, widget_id: str = "demo") -> str:
    """The widget's embed code as the admin would copy it."""
    response = httpx.get(f"{server_url}/widgets/{widget_id}/embed", timeout=10)
    response.raise_for_status()
    code: str = response.json()["embedCode"]
    return code


def _script_literal(value: object) -> str:
    # JSON is a JavaScript literal; "</" must not close the inline <script> early.
    return json.dumps(value).replace("</", "<\\/")


def host_page(embed_code: str, *, token: str | None = None, context: dict[str, Any] | None = None) -> str:
    """A shop page with the embed code, opened at once, with sign-in and context providers."""
    extra = 'data-open="true" data-auth-token-provider="getToken" data-context-provider="getContext"'
    tag, count = re.subn(r"^<script ", f"<script {extra} ", embed_code)
    assert count == 1, f"unexpected embed code: {embed_code}"
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Contoso Retail</title></head>
<body>
  <h1>Contoso Retail</h1>
  <p id="shop-notice">{html.escape("Questions? Chat with us.")}</p>
  <script>
    window.getToken = function () {{ return Promise.resolve({_script_literal(token)}); }};
    window.getContext = function () {{ return {_script_literal(context)}; }};
  </script>
  {tag}
</body>
</html>
"""


@dataclass
class PageTraffic:
    """What one page did on the network that tells which Direct Line transport it used."""

    websockets: list[str] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)
    polls: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("websocket", self._socket)
        page.on(
            "request",
            lambda request: (
                self.polls.append(request.url)
                if request.method == "GET" and "/activities" in request.url
                else None
            ),
        )

    def _socket(self, socket: WebSocket) -> None:
        self.websockets.append(socket.url)
        socket.on("framereceived", lambda payload: self.frames.append(str(payload)))


def read_store(database: DatabaseUnderTest, read: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``read`` against the test's database on a worker thread (see the module docstring)."""

    async def run() -> T:
        db = Database(database.url, InProcessBus(), schema=database.schema)
        try:
            async with db.reading() as session:
                return await read(session)
        finally:
            await db.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(run())).result(timeout=30)
