"""A Microsoft Bot Framework SDK bot (botbuilder 4.17.1) whose channel is Warmline.

It echoes; "agent" hands off with the standard ``handoff.initiate`` event (context in ``value``, a
``Transcript`` attachment); "escalate" hands off the Omnichannel way (``channelData.tags``). Every
activity it receives is kept and served at ``GET /api/received``, so you can see the
``handoff.status`` events Warmline sends back.

    python examples/sdk-bot/bot.py --port 3978                          # local development, no auth
    MICROSOFT_APP_ID=... MICROSOFT_APP_PASSWORD=... WARMLINE_URL=http://127.0.0.1:8000 \\
        python examples/sdk-bot/bot.py --port 3978                      # JWTs both ways
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import jwt
from aiohttp import web
from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes, Attachment, ChannelAccount, Transcript
from botframework.connector.auth import (
    AppCredentials,
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
)

log = logging.getLogger("sdk-bot")

HANDOFF_CONTEXT = {"BotHandoffTopic": "CreditCard", "Skill": "credit cards"}


class Config:
    """What ``ConfigurationBotFrameworkAuthentication`` reads (the SDK's own setting names)."""

    def __init__(self, app_id: str, app_password: str, warmline_url: str) -> None:
        self.APP_ID = app_id
        self.APP_PASSWORD = app_password
        self.APP_TYPE = "MultiTenant"
        self.APP_TENANTID = ""
        if app_id:
            # Warmline is the channel: its tokens are checked against its own issuer and keys,
            # and the bot's tokens are addressed to it (instead of Azure AD and api.botframework.com).
            channel = f"{warmline_url.rstrip('/')}/botconnector"
            self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = channel
            self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = f"{channel}/.well-known/openid-configuration"
            self.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = channel
            self.TO_CHANNEL_FROM_BOT_LOGIN_URL = channel
            self.VALIDATE_AUTHORITY = False


class WarmlineCredentials(AppCredentials):
    """The bot's token for Warmline: HS256, signed with the app password (no Azure AD offline)."""

    def __init__(self, app_id: str, password: str, audience: str) -> None:
        super().__init__(app_id=app_id, oauth_scope=audience)
        self.password = password

    def get_access_token(self, force_refresh: bool = False) -> str:
        now = int(time.time())
        claims = {"appid": self.microsoft_app_id, "aud": self.oauth_scope, "iat": now, "exp": now + 3600}
        return jwt.encode(claims, self.password, algorithm="HS256")


class WarmlineCredentialsFactory(ServiceClientCredentialsFactory):
    """Hands the SDK ``WarmlineCredentials`` where it would otherwise ask Azure AD (MSAL) for a token."""

    def __init__(self, app_id: str, password: str) -> None:
        self.app_id = app_id
        self.password = password

    async def is_valid_app_id(self, app_id: str) -> bool:
        return app_id == self.app_id

    async def is_authentication_disabled(self) -> bool:
        return not self.app_id

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> AppCredentials:
        if not self.app_id:
            return MicrosoftAppCredentials.empty()
        if app_id != self.app_id:
            raise PermissionError(f"unknown app id {app_id!r}")
        return WarmlineCredentials(app_id, self.password, oauth_scope)


def handoff_initiation(
    turn_context: TurnContext, context: dict[str, Any], transcript: list[Activity]
) -> Activity:
    """``handoff.initiate`` as C#'s ``EventFactory.CreateHandoffInitiation`` builds it (Python has none)."""
    incoming = turn_context.activity
    return Activity(
        type=ActivityTypes.event,
        name="handoff.initiate",
        id=str(uuid.uuid4()),
        timestamp=datetime.now(UTC),
        value=context,
        conversation=incoming.conversation,
        relates_to=TurnContext.get_conversation_reference(incoming),
        reply_to_id=incoming.id,
        service_url=incoming.service_url,
        channel_id=incoming.channel_id,
        attachments=[
            Attachment(
                content_type="application/json",
                name="Transcript",
                content=Transcript(activities=transcript).serialize(),
            )
        ],
    )


class SdkBot(ActivityHandler):
    """Echo, hand off on request, and remember everything Warmline sends."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.transcripts: dict[str, list[Activity]] = defaultdict(list)

    async def on_turn(self, turn_context: TurnContext) -> None:
        self.received.append(turn_context.activity.serialize())
        await super().on_turn(turn_context)

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        for member in members_added:
            if member.id != turn_context.activity.recipient.id:
                await turn_context.send_activity("Hello from the SDK bot. Say 'agent' to talk to a person.")

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        incoming = turn_context.activity
        transcript = self.transcripts[incoming.conversation.id]
        transcript.append(incoming)
        text = (incoming.text or "").strip()
        if text.lower() == "agent":
            await turn_context.send_activity("Connecting you to a person…")
            said = [a.text for a in transcript if a.from_property and a.from_property.role == "user"]
            context = {
                **HANDOFF_CONTEXT,
                "va_AgentMessage": f"Customer asked for a person after: {said[-2:]}",
            }
            await turn_context.send_activity(handoff_initiation(turn_context, context, transcript))
        elif text.lower() == "escalate":
            # Omnichannel's Azure-bot protocol: the command rides on a message; its text is the
            # summary only the agent sees.
            command = {"type": "Escalate", "context": {"BotHandoffTopic": "CreditCard", "IDNumber": 101}}
            message = MessageFactory.text("Customer wants to talk about a credit card.")
            message.channel_data = {"tags": json.dumps(command)}
            await turn_context.send_activity(message)
        else:
            reply = MessageFactory.text(f"Echo: {text}")
            transcript.append(reply)
            await turn_context.send_activity(reply)

    async def on_event(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if activity.name == "handoff.status":
            # The hand-off protocol: a bot must not reject this event; it may act on it.
            log.info("handoff.status %s for %s", json.dumps(activity.value), activity.conversation.id)


def create_app(app_id: str, app_password: str, warmline_url: str) -> web.Application:
    """The aiohttp app: ``POST /api/messages`` for Warmline, ``GET /api/received`` for people."""
    config = Config(app_id, app_password, warmline_url)
    auth = ConfigurationBotFrameworkAuthentication(
        config, credentials_factory=WarmlineCredentialsFactory(app_id, app_password) if app_id else None
    )
    adapter = CloudAdapter(auth)
    bot = SdkBot()

    async def on_error(turn_context: TurnContext, error: Exception) -> None:
        log.exception("turn failed: %s", error)
        bot.received.append({"type": "error", "text": repr(error)})

    adapter.on_turn_error = on_error

    async def messages(request: web.Request) -> web.StreamResponse:
        return await adapter.process(request, bot)

    async def received(_: web.Request) -> web.Response:
        return web.json_response(bot.received)

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/api/received", received)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3978)
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(
        os.environ.get("MICROSOFT_APP_ID", ""),
        os.environ.get("MICROSOFT_APP_PASSWORD", ""),
        os.environ.get("WARMLINE_URL", "http://127.0.0.1:8000"),
    )
    web.run_app(app, host=options.host, port=options.port, print=None)


if __name__ == "__main__":
    main()
