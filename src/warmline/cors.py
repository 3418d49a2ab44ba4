"""CORS for the browser-facing APIs, with origins taken from settings and every widget.

Starlette's middleware does the protocol; only the origin decision is ours, because allowed
origins live on widget records and change at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from warmline.channels.widget.origins import origin_allowed

# Web Chat preflights every POST with these (ecosystem-notes §2.6); X-Requested-With is easy to miss.
ALLOWED_HEADERS = ["Authorization", "Content-Type", "x-ms-bot-agent", "X-Requested-With"]
BROWSER_PREFIXES = ("/v3/directline", "/widgets")


class OriginPolicy:
    """The origins allowed right now: configured ones plus those of every widget."""

    def __init__(self, configured: Iterable[str]) -> None:
        self._configured = list(configured)
        self._widgets: list[str] = []

    def update_widgets(self, patterns: Iterable[str]) -> None:
        """Replace the widget-derived patterns (called when widgets are loaded or saved)."""
        self._widgets = list(patterns)

    def allows(self, origin: str) -> bool:
        """True when a browser page from ``origin`` may call the browser-facing APIs."""
        return origin_allowed(origin, self._configured) or origin_allowed(origin, self._widgets)


class BrowserCORSMiddleware(CORSMiddleware):
    """CORS on Direct Line and widget routes only, deciding origins through an ``OriginPolicy``."""

    def __init__(self, app: ASGIApp, policy: Callable[[], OriginPolicy]) -> None:
        super().__init__(
            app,
            allow_origins=[],
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=ALLOWED_HEADERS,
            max_age=600,
        )
        self._policy = policy
        self._inner = app

    def is_allowed_origin(self, origin: str) -> bool:
        return self._policy().allows(origin)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(BROWSER_PREFIXES):
            await super().__call__(scope, receive, send)
        else:
            await self._inner(scope, receive, send)
