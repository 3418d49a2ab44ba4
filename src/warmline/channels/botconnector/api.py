"""The Bot Connector API external bots call back: replies, escalations, and the keys of Warmline's tokens.

A bot's adapter posts to ``{serviceUrl}/v3/conversations/{id}/activities`` (Direct Line-like
channels) or ``.../activities/{replyToId}`` (every other channel, ``warmline`` included); both
routes do the same. The answer is a ``ResourceResponse`` with the stored activity's id.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask

from warmline.activity import Activity, ActivityType, ChannelAccount
from warmline.bot.topic_bot import HANDOFF_UNAVAILABLE
from warmline.channels.botconnector.actions import as_stored, do_escalate, escalation
from warmline.channels.botconnector.auth import (
    BotAuthError,
    jwks,
    openid_configuration,
    signing_key,
    verify_bot_token,
)
from warmline.channels.botconnector.outbound import ExternalBot, bot_account
from warmline.channels.botconnector.status import HandoffStatusNotifier
from warmline.channels.directline.api import read_json, validation_message
from warmline.channels.directline.errors import (
    DirectLineError,
    bad_argument,
    not_found,
    unauthorized,
)
from warmline.conversations.actions import do_append_activity, do_send_transient
from warmline.conversations.model import Conversation, ConversationState, Role
from warmline.conversations.reads import get_conversation
from warmline.handoff.actions import SYSTEM
from warmline.routing.actions import RoutingError
from warmline.runtime import Runtime, get_runtime

router = APIRouter(prefix="/botconnector", tags=["Bot Connector (external bots)"])

NO_WORKSTREAM = "no workstream takes this conversation (its widget has no target workstream)"
BOT_ONLY = "hand-off isn't available in the bot-only test chat"


def _external(request: Request) -> ExternalBot:
    bot: ExternalBot = request.app.state.botconnector
    return bot


def _notifier(request: Request) -> HandoffStatusNotifier:
    notifier: HandoffStatusNotifier = request.app.state.handoff_status
    return notifier


@router.get("/.well-known/openid-configuration", summary="OpenID discovery for Warmline's tokens to bots")
async def openid(request: Request) -> dict[str, Any]:
    """Bots set ``TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL`` to this address."""
    return openid_configuration(_external(request).service_url.for_request(str(request.base_url)))


@router.get("/.well-known/keys", summary="JSON Web Key Set of Warmline's tokens to bots")
async def keys(request: Request) -> dict[str, Any]:
    """The public key (RS256) Warmline signs its requests to authenticated bots with."""
    # Deriving the key takes about a second the first time: keep the event loop free meanwhile.
    return jwks(await asyncio.to_thread(signing_key, get_runtime(request).settings.secret_key))


@router.post("/v3/conversations/{conversation_id}/activities", summary="Send to a conversation")
async def send_to_conversation(conversation_id: str, request: Request) -> JSONResponse:
    """A bot's activity for the customer (or its hand-off): stored, then acted on."""
    return await _receive(request, conversation_id, None)


@router.post("/v3/conversations/{conversation_id}/activities/{activity_id}", summary="Reply to an activity")
async def reply_to_activity(conversation_id: str, activity_id: str, request: Request) -> JSONResponse:
    """Same as sending to the conversation, with ``replyToId`` taken from the path when absent."""
    return await _receive(request, conversation_id, activity_id)


async def _receive(request: Request, conversation_id: str, reply_to: str | None) -> JSONResponse:
    runtime = get_runtime(request)
    bot = _external(request)
    async with runtime.db.reading() as session:
        conversation = await get_conversation(session, conversation_id)
    settings = await bot.settings(conversation) if conversation is not None else None
    if conversation is None or settings is None or settings.external is None:
        # Another bot's (or a topic bot's) conversation is indistinguishable from a missing one.
        raise not_found("No conversation with this id belongs to an external bot.")
    external = settings.external
    if external.app_id and external.app_password:
        try:
            verify_bot_token(
                request.headers.get("authorization"),
                app_id=external.app_id,
                app_password=external.app_password,
                service_url=bot.service_url.for_request(str(request.base_url)),
                now=runtime.clock(),
            )
        except BotAuthError as error:
            raise unauthorized(str(error)) from error
    activity = _activity(await read_json(request, runtime, required=True), conversation, reply_to)
    assert conversation.bot_id is not None
    activity = activity.model_copy(
        update={"from_": ChannelAccount(**bot_account(conversation.bot_id, settings))}
    )
    if conversation.owner != "bot" or conversation.state is not ConversationState.OPEN:
        # Ownership is the platform's invariant: after a hand-off only the agent speaks.
        raise DirectLineError(
            403, "BotNotInControl", "The bot no longer owns this conversation (a queue or an agent does)."
        )
    if activity.type == ActivityType.TYPING:
        do_send_transient(runtime.bus, conversation.id, activity)
        return JSONResponse({"id": f"{conversation.id}|typing"})
    now = runtime.clock()
    async with runtime.db.transaction() as tx:
        stored, _ = await do_append_activity(tx, conversation.id, as_stored(activity), role=Role.BOT, now=now)
    value = escalation(activity)
    if value is None:
        return JSONResponse({"id": stored.id})
    failure = await _escalate(runtime, conversation, stored.seq, value, settings.name, activity.locale)
    if failure is None:
        return JSONResponse({"id": stored.id})
    # After the response: the bot is still inside the turn that sent the hand-off.
    task = BackgroundTask(_notifier(request).notify, conversation.id, "refused", message=failure)
    return JSONResponse({"id": stored.id}, background=task)


def _activity(data: Any, conversation: Conversation, reply_to: str | None) -> Activity:
    if not isinstance(data, dict):
        raise bad_argument("The body must be a JSON activity object.")
    data = dict(data)
    # Where the bot thinks it is talking is Warmline's own business; the log keeps the activity.
    data.pop("serviceUrl", None)
    try:
        activity = Activity.model_validate(data)
    except ValidationError as error:
        raise bad_argument(validation_message(error)) from error
    if activity.conversation is not None and activity.conversation.id != conversation.id:
        raise bad_argument("The activity's conversation.id is not the conversation in the path.")
    if reply_to and activity.reply_to_id is None:
        activity = activity.model_copy(update={"reply_to_id": reply_to})
    return activity


async def _escalate(
    runtime: Runtime,
    conversation: Conversation,
    seq: int,
    value: dict[str, Any],
    bot_name: str,
    locale: str | None,
) -> str | None:
    """Route the hand-off; the reason it failed, or None when the conversation is queued."""
    now = runtime.clock()
    if conversation.bot_only:
        async with runtime.db.transaction() as tx:
            await do_append_activity(
                tx,
                conversation.id,
                Activity(type="message", text=HANDOFF_UNAVAILABLE, from_=SYSTEM),
                role=Role.SYSTEM,
                now=now,
            )
        return BOT_ONLY
    assert conversation.bot_id is not None
    try:
        async with runtime.db.transaction() as tx:
            decision = await do_escalate(
                tx,
                conversation.id,
                seq,
                value,
                now,
                bot_id=conversation.bot_id,
                bot_name=bot_name,
                locale=locale,
            )
    except RoutingError as error:
        return str(error)
    if decision is None:
        return NO_WORKSTREAM
    # Ended by pre-queue overflow: conversation.closed reaches the status listener with the reason.
    return None
