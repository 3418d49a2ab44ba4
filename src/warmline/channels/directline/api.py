"""Direct Line 3.0 REST routes under ``/v3/directline`` (see seed-system-notes §6)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warmline.activity import Activity, ActivitySet, ActivityType, ChannelAccount, ResourceResponse
from warmline.bot.publishing import pin_bot
from warmline.channels.directline import uploads
from warmline.channels.directline.access import (
    Caller,
    conversation_for,
    get_caller,
    get_tokens,
)
from warmline.channels.directline.errors import (
    DirectLineError,
    bad_argument,
    forbidden,
    not_found,
    too_large,
    unauthorized,
)
from warmline.channels.directline.tokens import TokenIssuer, new_conversation_id
from warmline.conversations.actions import (
    do_create_conversation,
    do_send_transient,
    do_start_conversation,
)
from warmline.conversations.model import Conversation, ConversationState, Customer
from warmline.conversations.reads import get_conversation, list_activities
from warmline.handoff.delivery import do_deliver_customer_activity, do_start_with_bot
from warmline.handoff.survey import SURVEY_OWNER
from warmline.runtime import Runtime, get_runtime

router = APIRouter(prefix="/v3/directline", tags=["Direct Line 3.0"])

# Client-facing streams leave these out (Direct Line: conversationUpdate is not sent to clients).
HIDDEN_TYPES = (ActivityType.CONVERSATION_UPDATE.value,)
CLIENT_TYPES = {t.value for t in ActivityType} - {ActivityType.CONVERSATION_UPDATE.value}
PAGE_SIZE = 100


def for_customer(activity: dict[str, Any]) -> bool:
    """Whether the customer's client may receive a stored activity.

    Agents' private notes and consult messages (and internal records such as survey answers) are
    marked ``channelData.warmline.visibility = "agents"``; they live in the same log but never
    leave through Direct Line.
    """
    if activity.get("type") in HIDDEN_TYPES:
        return False
    channel_data = activity.get("channelData")
    if not isinstance(channel_data, dict):
        return True
    warmline = channel_data.get("warmline")
    return not (isinstance(warmline, dict) and warmline.get("visibility") == "agents")


class UserBody(BaseModel):
    """``user`` of a token or conversation request."""

    model_config = ConfigDict(extra="ignore")

    # directlinejs sends ``{"user": {}}`` when the page set no user id: that caller is anonymous.
    id: str | None = Field(default=None, min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=256)


class TokenRequest(BaseModel):
    """Optional body of ``tokens/generate`` and ``conversations``."""

    model_config = ConfigDict(extra="ignore")

    user: UserBody | None = None
    trusted_origins: list[str] | None = Field(default=None, alias="trustedOrigins")


class ConversationResponse(BaseModel):
    """Direct Line ``Conversation`` object."""

    conversationId: str
    token: str | None = None
    expires_in: int | None = None
    streamUrl: str | None = None
    referenceGrammarId: str | None = None


def public_base(request: Request, runtime: Runtime) -> str:
    """Origin clients reach us at: configured, or as this request saw it."""
    if runtime.settings.public_base_url:
        return runtime.settings.public_base_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def stream_url(
    request: Request, runtime: Runtime, conversation_id: str, token: str, watermark: str | None
) -> str:
    """The preauthorised WebSocket URL (browsers cannot send headers on a WebSocket)."""
    base = public_base(request, runtime).replace("https://", "wss://").replace("http://", "ws://")
    url = f"{base}/v3/directline/conversations/{conversation_id}/stream?t={token}"
    return f"{url}&watermark={watermark}" if watermark else url


async def read_json(request: Request, runtime: Runtime, *, required: bool) -> Any:
    """The request body as JSON, size-checked before it is parsed."""
    limit = runtime.settings.max_activity_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(f"The body is {declared} bytes; the limit is {limit} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise too_large(f"The body is over the limit of {limit} bytes.")
    if not body.strip():
        if required:
            raise bad_argument("The request body is empty; send a JSON object.")
        return None
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise bad_argument(f"The request body is not valid JSON: {error}.") from error


def validation_message(error: ValidationError) -> str:
    """Pydantic errors as one sentence a person can act on."""
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "Invalid activity: " + "; ".join(parts) + "."


async def parse_token_request(request: Request, runtime: Runtime) -> TokenRequest:
    """Body of tokens/generate or conversations, which may be absent."""
    data = await read_json(request, runtime, required=False)
    if data is None:
        return TokenRequest()
    try:
        return TokenRequest.model_validate(data)
    except ValidationError as error:
        raise bad_argument(validation_message(error).replace("activity", "request")) from error


def anonymous_user_id() -> str:
    """A user id for a caller that gave none (``dl_`` prefix, as enhanced authentication wants)."""
    return f"dl_{secrets.token_hex(8)}"


@router.post("/tokens/generate", response_model=ConversationResponse, response_model_exclude_none=True)
async def generate_token(
    request: Request,
    caller: Caller = Depends(get_caller),
    runtime: Runtime = Depends(get_runtime),
    tokens: TokenIssuer = Depends(get_tokens),
) -> ConversationResponse:
    """Exchange a secret for a token bound to a new conversation id and one user."""
    if caller.widget is None:
        raise unauthorized("tokens/generate needs the Direct Line secret, not a token.")
    body = await parse_token_request(request, runtime)
    user_id = body.user.id if body.user and body.user.id else anonymous_user_id()
    conversation_id = new_conversation_id()
    token = tokens.issue(
        conversation_id=conversation_id,
        user_id=user_id,
        user_name=body.user.name if body.user else None,
        widget_id=caller.widget.id,
        now=runtime.clock(),
    )
    return ConversationResponse(
        conversationId=conversation_id, token=token, expires_in=tokens.lifetime_seconds
    )


@router.post("/tokens/refresh", response_model=ConversationResponse, response_model_exclude_none=True)
async def refresh_token(
    caller: Caller = Depends(get_caller),
    runtime: Runtime = Depends(get_runtime),
    tokens: TokenIssuer = Depends(get_tokens),
) -> ConversationResponse:
    """A new token for the same conversation and user; an expired token was refused already."""
    claims = caller.claims
    if claims is None:
        raise unauthorized("tokens/refresh needs a token; secrets do not expire.")
    token = tokens.issue(
        conversation_id=claims.conversation_id,
        user_id=claims.user_id,
        user_name=claims.user_name,
        widget_id=claims.widget_id,
        now=runtime.clock(),
    )
    return ConversationResponse(
        conversationId=claims.conversation_id, token=token, expires_in=tokens.lifetime_seconds
    )


@router.post(
    "/conversations",
    response_model=ConversationResponse,
    response_model_exclude_none=True,
    status_code=201,
)
async def start_conversation(
    request: Request,
    response: Response,
    caller: Caller = Depends(get_caller),
    runtime: Runtime = Depends(get_runtime),
    tokens: TokenIssuer = Depends(get_tokens),
) -> ConversationResponse:
    """Start the conversation (201), or return it when this token already started it (200)."""
    body = await parse_token_request(request, runtime)
    now = runtime.clock()
    if caller.claims is not None:
        claims = caller.claims
        conversation_id, widget_id = claims.conversation_id, claims.widget_id
        customer = Customer(id=claims.user_id, name=claims.user_name)
    else:
        assert caller.widget is not None
        conversation_id, widget_id = new_conversation_id(), caller.widget.id
        user = body.user
        customer = Customer(
            id=user.id if user and user.id else anonymous_user_id(), name=user.name if user else None
        )
    async with runtime.db.reading() as session:
        existing = await get_conversation(session, conversation_id)
    created = False
    if existing is None:
        async with runtime.db.transaction() as tx:
            conversation = await do_create_conversation(
                tx,
                conversation_id=conversation_id,
                channel="directline",
                customer=customer,
                widget_id=widget_id,
                bot=await pin_bot(tx.session, widget_id),
                now=now,
            )
        created = True
    else:
        async with runtime.db.transaction() as tx:
            created = await do_start_conversation(tx, conversation_id, now)
        async with runtime.db.reading() as session:
            conversation = await get_conversation(session, conversation_id)  # type: ignore[assignment]
        assert conversation is not None
    if created:
        await do_start_with_bot(runtime.db, runtime.bot, conversation, runtime.clock)
    else:
        response.status_code = 200
    token = tokens.issue(
        conversation_id=conversation_id,
        user_id=conversation.customer.id,
        user_name=conversation.customer.name,
        widget_id=widget_id,
        now=now,
    )
    return ConversationResponse(
        conversationId=conversation_id,
        token=token,
        expires_in=tokens.lifetime_seconds,
        streamUrl=stream_url(request, runtime, conversation_id, token, None),
        referenceGrammarId=conversation_id,
    )


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationResponse,
    response_model_exclude_none=True,
)
async def reconnect(
    conversation_id: str,
    request: Request,
    watermark: str | None = Query(default=None, max_length=20),
    caller: Caller = Depends(get_caller),
    runtime: Runtime = Depends(get_runtime),
    tokens: TokenIssuer = Depends(get_tokens),
) -> ConversationResponse:
    """Reconnect: the conversation with a fresh token and ``streamUrl`` resuming at ``watermark``."""
    conversation = await conversation_for(caller, conversation_id, runtime)
    parse_watermark(watermark)
    token = tokens.issue(
        conversation_id=conversation.id,
        user_id=conversation.customer.id,
        user_name=conversation.customer.name,
        widget_id=conversation.widget_id,
        now=runtime.clock(),
    )
    return ConversationResponse(
        conversationId=conversation.id,
        token=token,
        expires_in=tokens.lifetime_seconds,
        streamUrl=stream_url(request, runtime, conversation.id, token, watermark),
        referenceGrammarId=conversation.id,
    )


def parse_watermark(watermark: str | None) -> int:
    """Our watermarks are sequence numbers; anything else is a client error."""
    if watermark is None or watermark == "":
        return 0
    if not watermark.isdigit():
        raise bad_argument(f"Watermark '{watermark}' is not one this service issued.")
    return int(watermark)


@router.get("/conversations/{conversation_id}/activities")
async def get_activities(
    conversation_id: str,
    watermark: str | None = Query(default=None, max_length=20),
    caller: Caller = Depends(get_caller),
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    """Activities after ``watermark``, a page at a time (polling mode and history)."""
    conversation = await conversation_for(caller, conversation_id, runtime)
    after = parse_watermark(watermark)
    async with runtime.db.reading() as session:
        page = await list_activities(
            session, conversation.id, after_seq=after, limit=PAGE_SIZE, exclude_types=HIDDEN_TYPES
        )
    mark = page[-1].seq if page else after
    visible = [
        s.activity
        for s in page
        if for_customer({"type": s.activity.type, "channelData": s.activity.channel_data})
    ]
    return JSONResponse(ActivitySet(activities=visible, watermark=str(mark)).to_wire())


def customer_activity(data: Any, conversation: Conversation) -> Activity:
    """Validate a posted activity and stamp it with the token's user (the client cannot pose)."""
    if not isinstance(data, dict):
        raise bad_argument("The body must be one JSON object (an Activity).")
    try:
        activity = Activity.model_validate(data)
    except ValidationError as error:
        raise bad_argument(validation_message(error)) from error
    if activity.type not in CLIENT_TYPES:
        raise bad_argument(
            f"Activity type '{activity.type}' can't be sent by a client; use one of "
            f"{', '.join(sorted(CLIENT_TYPES))}."
        )
    name = conversation.customer.name or (activity.from_.name if activity.from_ else None)
    return activity.model_copy(
        update={
            "from_": ChannelAccount(id=conversation.customer.id, name=name, role="user"),
            "channel_id": "directline",
        }
    )


def ensure_open(conversation: Conversation) -> None:
    """Refuse sends to a conversation that has ended (unless its survey still waits for an answer)."""
    if conversation.state is ConversationState.CLOSED and conversation.owner != SURVEY_OWNER:
        raise forbidden("This conversation has ended; start a new one.")
    if conversation.state is ConversationState.PENDING:
        raise bad_argument("Start the conversation (POST /conversations) before sending.")


@router.post("/conversations/{conversation_id}/activities", response_model=ResourceResponse)
async def post_activity(conversation_id: str, request: Request) -> JSONResponse:
    """Send one activity; the reply is its server id, and it is echoed on the stream."""
    # The hottest route resolves its caller here rather than through Depends: FastAPI runs the
    # sync dependencies (get_runtime, get_tokens) in a thread pool, two thread hops per message.
    runtime = get_runtime(request)
    caller = await get_caller(request, runtime, get_tokens(request))
    conversation = await conversation_for(caller, conversation_id, runtime)
    ensure_open(conversation)
    activity = customer_activity(await read_json(request, runtime, required=True), conversation)
    if activity.type == ActivityType.TYPING:
        do_send_transient(runtime.bus, conversation.id, activity)
        return JSONResponse({"id": f"{conversation.id}|typing"})
    stored = await do_deliver_customer_activity(
        runtime.db, runtime.bot, conversation, activity, runtime.clock
    )
    return JSONResponse({"id": stored.id})


@router.post("/conversations/{conversation_id}/upload", response_model=ResourceResponse)
async def upload(
    conversation_id: str,
    request: Request,
    user_id: str | None = Query(default=None, alias="userId", max_length=256),
    caller: Caller = Depends(get_caller),
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    """Upload files (raw body, or multipart with an optional ``activity`` part)."""
    conversation = await conversation_for(caller, conversation_id, runtime)
    ensure_open(conversation)
    received = await uploads.read(request, runtime.settings.max_upload_bytes)
    data = received.activity if received.activity is not None else {"type": "message"}
    # Checked before any file is written, so a refused upload leaves nothing behind.
    activity = customer_activity(data, conversation)
    files = await uploads.store(runtime, conversation.id, received.files)
    attachments = [
        *(activity.attachments or []),
        *uploads.as_attachments(files, public_base(request, runtime)),
    ]
    activity = activity.model_copy(update={"attachments": attachments})
    stored = await do_deliver_customer_activity(
        runtime.db, runtime.bot, conversation, activity, runtime.clock
    )
    return JSONResponse({"id": stored.id})


@router.get("/attachments/{upload_id}/{name}", include_in_schema=True)
async def get_attachment(upload_id: str, name: str, runtime: Runtime = Depends(get_runtime)) -> FileResponse:
    """An uploaded file, by its unguessable id, until it expires (24 hours)."""
    async with runtime.db.reading() as session:
        found = await uploads.find(session, upload_id, runtime.clock())
    if found is None:
        raise not_found("No such file, or it has expired.")
    return FileResponse(found.path, media_type=found.content_type, filename=found.name)


__all__ = ["DirectLineError", "router"]
