"""Who is calling: a widget's secret or a conversation token, and what each may touch."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request

from warmline.channels.directline.errors import forbidden, not_found, unauthorized
from warmline.channels.directline.tokens import TokenClaims, TokenIssuer, looks_like_token
from warmline.channels.widget.model import Widget
from warmline.channels.widget.registry import get_widget_by_secret
from warmline.conversations.model import Conversation
from warmline.conversations.reads import get_conversation
from warmline.runtime import Runtime, get_runtime


@dataclass(frozen=True)
class Caller:
    """An authenticated Direct Line caller: exactly one of ``widget`` (secret) or ``claims``."""

    widget: Widget | None = None
    claims: TokenClaims | None = None


def bearer(request: Request) -> str:
    """The credential of ``Authorization: Bearer …``."""
    header = request.headers.get("authorization")
    if not header:
        raise unauthorized("Send 'Authorization: Bearer <secret or token>'.")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise unauthorized("The Authorization header must be 'Bearer <secret or token>'.")
    return credential.strip()


async def authenticate(credential: str, runtime: Runtime, tokens: TokenIssuer) -> Caller:
    """Resolve a secret or token to a caller, or raise 401/403."""
    if looks_like_token(credential):
        return Caller(claims=tokens.verify(credential, runtime.clock()))
    async with runtime.db.reading() as session:
        widget = await get_widget_by_secret(session, credential)
    if widget is None:
        raise unauthorized("Unknown Direct Line secret.")
    return Caller(widget=widget)


def get_tokens(request: Request) -> TokenIssuer:
    """FastAPI dependency: the token issuer."""
    tokens: TokenIssuer = request.app.state.tokens
    return tokens


async def get_caller(
    request: Request,
    runtime: Runtime = Depends(get_runtime),
    tokens: TokenIssuer = Depends(get_tokens),
) -> Caller:
    """FastAPI dependency: the authenticated caller of this request."""
    return await authenticate(bearer(request), runtime, tokens)


async def conversation_for(caller: Caller, conversation_id: str, runtime: Runtime) -> Conversation:
    """The conversation, if this caller may use it; a token opens exactly one conversation."""
    if caller.claims is not None and caller.claims.conversation_id != conversation_id:
        raise forbidden("This token belongs to another conversation.")
    async with runtime.db.reading() as session:
        conversation = await get_conversation(session, conversation_id)
    if conversation is None:
        raise not_found(f"Conversation '{conversation_id}' does not exist.")
    if caller.widget is not None and conversation.widget_id != caller.widget.id:
        # Same answer as for a missing conversation: a secret must not reveal other widgets' ids.
        raise not_found(f"Conversation '{conversation_id}' does not exist.")
    return conversation
