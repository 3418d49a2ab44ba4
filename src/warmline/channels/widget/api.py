"""Widget routes: embed code, try-pages, widget.js assets and the widget's session start."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warmline.bot.publishing import pin_bot
from warmline.channels.directline.access import get_tokens
from warmline.channels.directline.api import (
    anonymous_user_id,
    public_base,
    read_json,
    validation_message,
)
from warmline.channels.directline.errors import DirectLineError, bad_argument, forbidden, not_found
from warmline.channels.directline.tokens import TokenIssuer, new_conversation_id
from warmline.channels.widget.context import ContextError, validate_context
from warmline.channels.widget.model import EmbedMode, Widget
from warmline.channels.widget.origins import origin_allowed
from warmline.channels.widget.registry import get_widget
from warmline.channels.widget.sso import SignIn, verify_sign_in
from warmline.conversations.actions import do_create_conversation
from warmline.conversations.model import Customer
from warmline.runtime import Runtime, get_runtime

router = APIRouter(prefix="/widgets", tags=["Chat widgets"])
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))

BOT_ONLY_WARNING = (
    "This is the bot-only test embed: it talks to the bot alone, and hand-off to a live agent "
    "is not available from it. Use the widget's embed code on your site."
)


class SessionRequest(BaseModel):
    """What widget.js sends to open a chat."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    mode: EmbedMode = EmbedMode.OMNICHANNEL
    user_name: str | None = Field(default=None, alias="userName", max_length=256)
    locale: str | None = Field(default=None, max_length=35)
    context: dict[str, Any] = Field(default_factory=dict)
    auth_token: str | None = Field(default=None, alias="authToken", max_length=16384)


async def widget_or_404(runtime: Runtime, widget_id: str) -> Widget:
    """The widget, or a 404 that names it."""
    async with runtime.db.reading() as session:
        widget = await get_widget(session, widget_id)
    if widget is None:
        raise not_found(f"No chat widget with id '{widget_id}'.")
    return widget


def embed_code(base: str, widget: Widget, mode: EmbedMode) -> str:
    """The one ``<script>`` tag a host page pastes in."""
    attrs = {
        "src": f"{base}/widgets/static/widget.js",
        "id": "warmline-widget",
        "data-widget-id": widget.id,
        "data-base-url": base,
        "data-mode": mode.value,
    }
    rendered = " ".join(f'{k}="{html.escape(v, quote=True)}"' for k, v in attrs.items())
    return f"<script {rendered} async></script>"


@router.get("/{widget_id}/embed")
async def get_embed(
    widget_id: str,
    request: Request,
    mode: EmbedMode = Query(default=EmbedMode.OMNICHANNEL),
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    """The widget's embed code (``mode=bot-only`` gives the test embed, which cannot hand off)."""
    widget = await widget_or_404(runtime, widget_id)
    body: dict[str, Any] = {
        "widgetId": widget.id,
        "mode": mode.value,
        "embedCode": embed_code(public_base(request, runtime), widget, mode),
        "options": {
            "data-context-provider": "name of a global function returning {name: {value, isDisplayable}}",
            "data-auth-token-provider": "name of a global (async) function returning a JWT",
            "data-open": "true to open the chat at once",
        },
    }
    if mode is EmbedMode.BOT_ONLY:
        body["warning"] = BOT_ONLY_WARNING
    return JSONResponse(body)


@router.get("/{widget_id}/try", response_class=HTMLResponse)
async def try_page(
    widget_id: str,
    request: Request,
    mode: EmbedMode = Query(default=EmbedMode.OMNICHANNEL),
    runtime: Runtime = Depends(get_runtime),
) -> HTMLResponse:
    """A page hosting the widget, to try it before embedding it anywhere."""
    widget = await widget_or_404(runtime, widget_id)
    code = embed_code(public_base(request, runtime), widget, mode)
    return templates.TemplateResponse(
        request,
        "try.html",
        {
            "widget": widget,
            "embed": code,
            "mode": mode.value,
            "warning": BOT_ONLY_WARNING if mode is EmbedMode.BOT_ONLY else None,
        },
    )


def _sign_in(widget: Widget, token: str | None, runtime: Runtime) -> SignIn | None:
    if token is None:
        return None
    if widget.auth is None:
        return SignIn(failure="this widget has no sign-in settings, so the token was ignored")
    return verify_sign_in(widget.auth, token, runtime.clock())


@router.post("/{widget_id}/conversations", status_code=201)
async def open_session(
    widget_id: str,
    request: Request,
    runtime: Runtime = Depends(get_runtime),
    tokens: TokenIssuer = Depends(get_tokens),
) -> JSONResponse:
    """Open a chat from a host page: check origin, context and sign-in; return a Direct Line token."""
    widget = await widget_or_404(runtime, widget_id)
    origin = request.headers.get("origin")
    if origin and not origin_allowed(origin, widget.allowed_origins):
        raise forbidden(
            f"Origin '{origin}' may not embed widget '{widget.id}'; add it to the widget's allowed origins."
        )
    data = await read_json(request, runtime, required=False)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise bad_argument('The body must be one JSON object, such as {"context": {...}}.')
    try:
        body = SessionRequest.model_validate(data)
    except ValidationError as error:
        raise bad_argument(validation_message(error).replace("activity", "widget request")) from error
    try:
        context = validate_context(widget.context_variables, body.context)
    except ContextError as error:
        raise bad_argument(str(error)) from error
    sign_in = _sign_in(widget, body.auth_token, runtime)
    if sign_in is not None and sign_in.ok:
        assert sign_in.user_id is not None
        customer = Customer(id=sign_in.user_id, name=sign_in.display_name, authenticated=True)
    else:
        customer = Customer(id=anonymous_user_id(), name=body.user_name)
    conversation_id = new_conversation_id()
    now = runtime.clock()
    async with runtime.db.transaction() as tx:
        await do_create_conversation(
            tx,
            conversation_id=conversation_id,
            channel="directline",
            customer=customer,
            widget_id=widget.id,
            bot_only=body.mode is EmbedMode.BOT_ONLY,
            context=context,
            auth_failure=sign_in.failure if sign_in else None,
            started=False,
            bot=await pin_bot(tx.session, widget.id),
            now=now,
        )
    token = tokens.issue(
        conversation_id=conversation_id,
        user_id=customer.id,
        user_name=customer.name,
        widget_id=widget.id,
        now=now,
    )
    base = public_base(request, runtime)
    status = "anonymous" if sign_in is None else ("signed-in" if sign_in.ok else "failed")
    return JSONResponse(
        {
            "conversationId": conversation_id,
            "token": token,
            "expires_in": tokens.lifetime_seconds,
            "domain": f"{base}/v3/directline",
            "mode": body.mode.value,
            "user": {
                "id": customer.id,
                "name": customer.name,
                "authenticated": customer.authenticated,
            },
            "signIn": {"status": status, "reason": sign_in.failure if sign_in else None},
            "warning": BOT_ONLY_WARNING if body.mode is EmbedMode.BOT_ONLY else None,
        },
        status_code=201,
    )


__all__ = ["DirectLineError", "router"]
