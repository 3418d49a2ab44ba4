"""Warmline → external bot: activities POSTed to the bot's ``/api/messages``.

The bot answers asynchronously, the Bot Framework way: it calls back the Bot Connector API at the
activity's ``serviceUrl`` (``channels/botconnector/api.py``), so a turn here returns no replies.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from warmline.activity import Activity
from warmline.bot.base import BotReply, Turn
from warmline.bot.dialog import HttpClient
from warmline.bot.publishing import BotLibrary
from warmline.bot.topics import BotSettings, ExternalBotSettings
from warmline.channels.botconnector.auth import CHANNEL_ID, signing_key, token_for_bot
from warmline.conversations.model import Conversation

PATH = "/botconnector"
# What Azure Bot Service allows a bot for one request before it gives up on it.
SEND_TIMEOUT_SECONDS = 15.0
FALLBACK_BASE = "http://127.0.0.1:8000"


class BotUnavailable(Exception):
    """The bot's endpoint refused an activity or could not be reached."""


class ServiceUrl:
    """Where bots reach Warmline's Bot Connector API: configured, or learned from the first request.

    ``WARMLINE_PUBLIC_BASE_URL`` should be set in production (tokens to authenticated bots name it as
    their issuer); without it, the address of the first request this process served is used.
    """

    def __init__(self, configured_base: str | None) -> None:
        self.configured = configured_base.rstrip("/") if configured_base else None
        self.learned: str | None = None

    @property
    def learning(self) -> bool:
        return self.configured is None and self.learned is None

    def learn(self, base: str) -> None:
        """Remember the base URL a client reached us at (the first one wins)."""
        if self.learning:
            self.learned = base.rstrip("/")

    @property
    def value(self) -> str:
        """The ``serviceUrl`` of activities sent to bots."""
        return f"{self.configured or self.learned or FALLBACK_BASE}{PATH}"

    def for_request(self, request_base: str) -> str:
        """The service URL a bot's request was addressed to (the configured one, else as it reached us)."""
        return f"{self.configured or request_base.rstrip('/')}{PATH}"


class LearnServiceUrl:
    """ASGI middleware: the first HTTP request teaches ``ServiceUrl`` our address, then it steps aside."""

    def __init__(self, app: ASGIApp, service_url: ServiceUrl) -> None:
        self.app = app
        self.service_url = service_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.service_url.learning and scope["type"] == "http":
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
            if host:
                self.service_url.learn(f"{scope['scheme']}://{host}{scope.get('root_path', '')}")
        await self.app(scope, receive, send)


def bot_account(bot_id: str, settings: BotSettings) -> dict[str, Any]:
    """The bot as ``recipient`` of what Warmline sends it (its app id when it has one)."""
    external = settings.external
    return {"id": (external.app_id if external else None) or bot_id, "name": settings.name, "role": "bot"}


def to_bot(
    activity: Activity, conversation: Conversation, recipient: dict[str, Any], service_url: str
) -> dict[str, Any]:
    """A stored activity as the Bot Framework schema a bot's adapter expects."""
    wire = activity.to_wire()
    channel_data = wire.pop("channelData", None)
    if isinstance(channel_data, dict):
        # Warmline's own bookkeeping (who may see an activity) is nothing the bot needs.
        channel_data = {k: v for k, v in channel_data.items() if k != "warmline"}
    if channel_data:
        wire["channelData"] = channel_data
    wire.update(
        channelId=CHANNEL_ID,
        serviceUrl=service_url,
        conversation={"id": conversation.id},
        recipient=recipient,
    )
    wire.setdefault(
        "from", {"id": conversation.customer.id, "name": conversation.customer.name, "role": "user"}
    )
    return wire


class ExternalBot:
    """The ``Bot`` of conversations pinned to an external bot: forwards each turn to its endpoint."""

    name = "Bot Connector"

    def __init__(
        self,
        library: BotLibrary,
        http: HttpClient,
        service_url: ServiceUrl,
        secret_key: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.library = library
        self.http = http
        self.service_url = service_url
        self.secret_key = secret_key
        self.clock = clock

    async def settings(self, conversation: Conversation) -> BotSettings | None:
        """The pinned bot version's settings when it is an external bot."""
        if conversation.bot_id is None or conversation.bot_version is None:
            return None
        settings = (await self.library.definition(conversation.bot_id, conversation.bot_version)).settings
        return settings if settings.external is not None else None

    async def on_turn(self, turn: Turn) -> BotReply:
        conversation = turn.conversation
        settings = await self.settings(conversation)
        if settings is None or conversation.bot_id is None:
            raise LookupError(f"conversation '{conversation.id}' is not pinned to an external bot")
        await self.send(conversation, turn.activity, settings)
        return BotReply()

    async def send(self, conversation: Conversation, activity: Activity, settings: BotSettings) -> None:
        """POST one activity to the bot; raises ``BotUnavailable`` unless it answers 2xx."""
        external = settings.external
        assert external is not None and conversation.bot_id is not None
        service_url = self.service_url.value
        payload = to_bot(activity, conversation, bot_account(conversation.bot_id, settings), service_url)
        headers = {"Content-Type": "application/json"}
        authorization = await self.authorization(external, service_url)
        if authorization:
            headers["Authorization"] = authorization
        try:
            status, text = await self.http.request(
                "POST", external.endpoint, headers, json.dumps(payload), SEND_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError) as error:
            raise BotUnavailable(f"{external.endpoint} could not be reached: {error}") from error
        if not 200 <= status < 300:
            raise BotUnavailable(f"{external.endpoint} answered {status}: {text[:200]}")

    async def authorization(self, external: ExternalBotSettings, service_url: str) -> str | None:
        """``Bearer <JWT>`` for an authenticated bot; None in local development mode.

        The SDK refuses *any* Authorization header (500) when its own app id is empty, so an
        unauthenticated bot gets none at all.
        """
        if not external.app_id:
            return None
        # Deriving the key takes about a second the first time: keep the event loop free meanwhile.
        key = await asyncio.to_thread(signing_key, self.secret_key)
        return "Bearer " + token_for_bot(
            key, app_id=external.app_id, service_url=service_url, now=self.clock()
        )
