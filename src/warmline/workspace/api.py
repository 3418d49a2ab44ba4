"""The workspace JSON API under ``/api/workspace``, used by the agent and supervisor pages.

Only a workspace session cookie authorises it (never a Direct Line secret or token), every
state-changing request must carry the session's CSRF token in ``X-CSRF-Token``, and every query is
scoped to the signed-in agent's environment (see ``access``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from warmline.activity import Activity
from warmline.conversations.actions import do_send_transient
from warmline.conversations.model import ConversationState
from warmline.routing.actions import RoutingError, do_reject_offer, do_set_presence
from warmline.routing.model import BasePresence
from warmline.runtime import Runtime, get_runtime
from warmline.store.schema import AgentRow
from warmline.workspace import reads
from warmline.workspace.access import (
    Access,
    SignedIn,
    WorkspaceError,
    conversation_access,
    signed_in,
    unauthorized,
)
from warmline.workspace.actions import (
    agent_account,
    do_accept_work,
    do_add_private_note,
    do_ask_consult,
    do_assign_by_supervisor,
    do_end_work,
    do_hand_back,
    do_send_agent_message,
    do_transfer_work,
    do_wrap_up,
)
from warmline.workspace.session import CSRF_HEADER, SAFE_METHODS, csrf_ok, same_origin

QUICK_REPLIES = (
    "Thanks for your patience; I'm looking into this now.",
    "Could you tell me a bit more about that?",
    "I've sorted that out for you.",
    "Is there anything else I can help you with today?",
)
DISPOSITIONS = ("Resolved", "Follow-up needed", "Escalated", "Not resolved")


class WorkspaceRoute(APIRoute):
    """Authenticates (session cookie), checks origin and CSRF, then runs the handler.

    Auth runs before the body is parsed, so a caller without a session learns nothing about what a
    valid request would look like. Routing refusals become 409 with their message.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            runtime = get_runtime(request)
            try:
                who = await signed_in(request, runtime)
                if who is None:
                    raise unauthorized()
                if request.method not in SAFE_METHODS:
                    if not same_origin(request, runtime.settings):
                        raise WorkspaceError(403, "Forbidden", "Cross-origin requests are not accepted.")
                    if not csrf_ok(who.agent, request.headers.get(CSRF_HEADER)):
                        raise WorkspaceError(
                            403, "Forbidden", "Missing or wrong X-CSRF-Token header; reload the workspace."
                        )
                request.state.signed_in = who
                return await handler(request)
            except WorkspaceError as error:
                return error.response()
            except RoutingError as error:
                return WorkspaceError(409, "Conflict", _sentence(str(error))).response()

        return guarded


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else text


router = APIRouter(prefix="/api/workspace", tags=["Agent workspace"], route_class=WorkspaceRoute)


def current(request: Request) -> SignedIn:
    """FastAPI dependency: the signed-in agent (``WorkspaceRoute`` checked the session)."""
    who: SignedIn = request.state.signed_in
    return who


class Text(BaseModel):
    """A message or note."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)


class PresenceBody(BaseModel):
    """A base presence (Available, Busy, …) or one of the environment's custom presences."""

    model_config = ConfigDict(extra="forbid")

    presence: str = Field(min_length=1, max_length=100)


class TransferBody(BaseModel):
    """Where to transfer: a queue or an agent, with a note for whoever takes over."""

    model_config = ConfigDict(extra="forbid")

    queue: str | None = Field(default=None, max_length=64)
    agent: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=2000)


class AgentBody(BaseModel):
    """An agent of the environment."""

    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1, max_length=64)


class WrapUpBody(BaseModel):
    """Wrap-up notes and the disposition."""

    model_config = ConfigDict(extra="forbid")

    notes: str = Field(default="", max_length=4000)
    disposition: str = Field(min_length=1, max_length=100)


class NotesBody(BaseModel):
    """Notes for the bot when the conversation goes back to it."""

    model_config = ConfigDict(extra="forbid")

    notes: str | None = Field(default=None, max_length=4000)


def _known_agent(who: SignedIn, agent_id: str) -> None:
    if agent_id not in who.config.agents:
        raise WorkspaceError(400, "BadArgument", f"There is no agent '{agent_id}' in your environment.")


async def _access(runtime: Runtime, who: SignedIn, conversation_id: str) -> Access:
    async with runtime.db.reading() as session:
        return await conversation_access(session, who.agent, conversation_id)


@router.get("/me")
async def me(request: Request, runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """The signed-in agent, their presence, offers, conversations, and what the menus offer."""
    who = current(request)
    now = runtime.clock()
    async with runtime.db.reading() as session:
        row = await session.get(AgentRow, (who.agent.environment, who.agent.agent_id))
        offers = await reads.list_offers(session, who.agent, who.config, now)
        conversations = await reads.list_my_conversations(session, who.agent, who.config, now)
    assert row is not None  # signed_in checked the agent row exists
    return {
        "agent": {
            "id": who.agent.agent_id,
            "name": who.name,
            "environment": who.agent.environment,
            "roles": list(who.agent.roles),
            "supervisor": who.agent.is_supervisor,
        },
        "presence": row.presence_text or row.presence,
        "presences": [{"name": p.value, "base": p.value} for p in BasePresence]
        + [{"name": name, "base": base.value} for name, base in who.config.presences.items()],
        "offers": offers,
        "conversations": conversations,
        "queues": [{"id": q.id, "name": q.name, "type": q.type.value} for q in who.config.queues.values()],
        "agents": [
            {"id": a.id, "name": a.name} for a in who.config.agents.values() if a.id != who.agent.agent_id
        ],
        "quickReplies": list(QUICK_REPLIES),
        "dispositions": list(DISPOSITIONS),
    }


@router.put("/presence")
async def set_presence(
    body: PresenceBody, request: Request, runtime: Runtime = Depends(get_runtime)
) -> dict[str, str]:
    """Set the agent's presence; Available starts an assignment cycle on their queues."""
    who = current(request)
    try:
        async with runtime.db.transaction() as tx:
            base = await do_set_presence(
                tx, who.agent.environment, who.agent.agent_id, body.presence, runtime.clock()
            )
    except RoutingError as error:
        raise WorkspaceError(400, "BadArgument", _sentence(str(error))) from None
    return {"presence": body.presence, "base": base}


@router.get("/offers")
async def offers(request: Request, runtime: Runtime = Depends(get_runtime)) -> list[dict[str, Any]]:
    """Pending offers with customer, queue, language and seconds left."""
    who = current(request)
    async with runtime.db.reading() as session:
        return await reads.list_offers(session, who.agent, who.config, runtime.clock())


@router.post("/offers/{offer_id}/accept")
async def accept(offer_id: str, request: Request, runtime: Runtime = Depends(get_runtime)) -> dict[str, str]:
    """Take the offered conversation."""
    who = current(request)
    async with runtime.db.transaction() as tx:
        conversation_id = await do_accept_work(tx, offer_id, who.agent.agent_id, who.name, runtime.clock())
    return {"conversation": conversation_id}


@router.post("/offers/{offer_id}/reject", status_code=204)
async def reject(offer_id: str, request: Request, runtime: Runtime = Depends(get_runtime)) -> Response:
    """Decline; the conversation is offered to the next eligible agent."""
    who = current(request)
    async with runtime.db.transaction() as tx:
        await do_reject_offer(tx, offer_id, who.agent.agent_id, runtime.clock())
    return Response(status_code=204)


@router.get("/conversations")
async def conversations(request: Request, runtime: Runtime = Depends(get_runtime)) -> list[dict[str, Any]]:
    """The agent's open conversations (handled or consulted on)."""
    who = current(request)
    async with runtime.db.reading() as session:
        return await reads.list_my_conversations(session, who.agent, who.config, runtime.clock())


@router.get("/conversations/{conversation_id}")
async def conversation(
    conversation_id: str, request: Request, runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """One conversation: transcript, context and bot variables, private message, routing reason."""
    who = current(request)
    async with runtime.db.reading() as session:
        access = await conversation_access(session, who.agent, conversation_id)
        return await reads.conversation_view(session, access, who.agent, who.config, runtime.clock())


@router.post("/conversations/{conversation_id}/messages", status_code=201)
async def send_message(
    conversation_id: str, body: Text, request: Request, runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Write to the customer."""
    who = current(request)
    await _access(runtime, who, conversation_id)
    async with runtime.db.transaction() as tx:
        stored = await do_send_agent_message(
            tx, conversation_id, who.agent.agent_id, who.name, body.text, runtime.clock()
        )
    return {"id": stored.id, "seq": stored.seq}


@router.post("/conversations/{conversation_id}/notes", status_code=201)
async def add_note(
    conversation_id: str, body: Text, request: Request, runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Leave a private note (agents only; consultants talk to the owner this way)."""
    who = current(request)
    access = await _access(runtime, who, conversation_id)
    if access.relation == "offered" or access.row.state not in reads.LIVE_STATES:
        raise WorkspaceError(
            409, "Conflict", "Notes can be added only to a live conversation you are part of."
        )
    async with runtime.db.transaction() as tx:
        stored = await do_add_private_note(
            tx, conversation_id, who.agent.agent_id, who.name, body.text, runtime.clock()
        )
    return {"id": stored.id, "seq": stored.seq}


@router.post("/conversations/{conversation_id}/typing", status_code=204)
async def typing(conversation_id: str, request: Request, runtime: Runtime = Depends(get_runtime)) -> Response:
    """Show the customer that the agent is typing (never stored)."""
    who = current(request)
    access = await _access(runtime, who, conversation_id)
    if not access.owns or access.row.state != ConversationState.ACTIVE:
        raise WorkspaceError(409, "Conflict", "This conversation is not active with you.")
    do_send_transient(
        runtime.bus,
        conversation_id,
        Activity(type="typing", from_=agent_account(who.agent.agent_id, who.name)),
    )
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/transfer", status_code=204)
async def transfer(
    conversation_id: str, body: TransferBody, request: Request, runtime: Runtime = Depends(get_runtime)
) -> Response:
    """Transfer to a queue or an agent, with a note."""
    who = current(request)
    if (body.queue is None) == (body.agent is None):
        raise WorkspaceError(400, "BadArgument", "Give exactly one of 'queue' or 'agent'.")
    if body.agent is not None:
        _known_agent(who, body.agent)
    await _access(runtime, who, conversation_id)
    async with runtime.db.transaction() as tx:
        await do_transfer_work(
            tx,
            conversation_id,
            who.agent.agent_id,
            who.name,
            queue=body.queue,
            to_agent=body.agent,
            note=body.note or None,
            now=runtime.clock(),
        )
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/consult", status_code=204)
async def consult(
    conversation_id: str, body: AgentBody, request: Request, runtime: Runtime = Depends(get_runtime)
) -> Response:
    """Ask another agent to join privately."""
    who = current(request)
    _known_agent(who, body.agent)
    await _access(runtime, who, conversation_id)
    async with runtime.db.transaction() as tx:
        await do_ask_consult(tx, conversation_id, who.agent.agent_id, who.name, body.agent, runtime.clock())
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/end")
async def end(
    conversation_id: str, request: Request, runtime: Runtime = Depends(get_runtime)
) -> dict[str, bool]:
    """End the chat: the conversation goes to wrap-up and the customer may get the survey."""
    who = current(request)
    await _access(runtime, who, conversation_id)
    async with runtime.db.transaction() as tx:
        surveyed = await do_end_work(tx, conversation_id, who.agent.agent_id, who.name, runtime.clock())
    return {"survey": surveyed}


@router.post("/conversations/{conversation_id}/wrap-up", status_code=204)
async def wrap_up(
    conversation_id: str, body: WrapUpBody, request: Request, runtime: Runtime = Depends(get_runtime)
) -> Response:
    """Save wrap-up notes and disposition, and close the conversation."""
    who = current(request)
    if body.disposition not in DISPOSITIONS:
        raise WorkspaceError(
            400,
            "BadArgument",
            f"Unknown disposition '{body.disposition}'; choose one of {', '.join(DISPOSITIONS)}.",
        )
    await _access(runtime, who, conversation_id)
    async with runtime.db.transaction() as tx:
        await do_wrap_up(
            tx,
            conversation_id,
            who.agent.agent_id,
            notes=body.notes,
            disposition=body.disposition,
            now=runtime.clock(),
        )
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/return-to-bot", status_code=204)
async def return_to_bot(
    conversation_id: str, body: NotesBody, request: Request, runtime: Runtime = Depends(get_runtime)
) -> Response:
    """Hand the conversation back to the bot with notes."""
    who = current(request)
    await _access(runtime, who, conversation_id)
    async with runtime.db.transaction() as tx:
        await do_hand_back(tx, conversation_id, who.agent.agent_id, who.name, body.notes, runtime.clock())
    return Response(status_code=204)


def _supervisor(who: SignedIn) -> None:
    if not who.agent.is_supervisor:
        raise WorkspaceError(
            403, "Forbidden", "The supervisor view needs the supervisor or administrator role."
        )


@router.get("/supervisor/overview")
async def overview(request: Request, runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """Queues (waiting, longest wait), agents (presence, load) and live conversations."""
    who = current(request)
    _supervisor(who)
    async with runtime.db.reading() as session:
        return await reads.floor_view(session, who.agent.environment, who.config, runtime.clock())


@router.post("/supervisor/conversations/{conversation_id}/assign", status_code=204)
async def force_assign(
    conversation_id: str, body: AgentBody, request: Request, runtime: Runtime = Depends(get_runtime)
) -> Response:
    """Give a waiting conversation to an agent, even past their capacity."""
    who = current(request)
    _supervisor(who)
    _known_agent(who, body.agent)
    await _access(runtime, who, conversation_id)
    name = who.config.agents[body.agent].name
    async with runtime.db.transaction() as tx:
        await do_assign_by_supervisor(
            tx, conversation_id, body.agent, who.agent.agent_id, name, runtime.clock()
        )
    return Response(status_code=204)
