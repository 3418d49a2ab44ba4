"""Who may use the workspace, and which conversations each agent may see.

Every read is scoped to the signed-in agent's environment. An agent sees conversations offered to
them, assigned to them (including ones they ended) and ones they were asked to consult on;
supervisors and administrators see every conversation of their environment. Nothing else is
visible, and a conversation outside that set answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from warmline.routing.config import RoutingConfig, get_config
from warmline.runtime import Runtime
from warmline.store.schema import AgentRow, ConversationRow, OfferRow, ParticipantRow
from warmline.workspace.session import COOKIE, AgentSession, read_session

CONSULT = "consult"


class WorkspaceError(Exception):
    """A refused workspace request: ``{"error": {"code", "message"}}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        """The JSON error response."""
        return JSONResponse({"error": {"code": self.code, "message": self.message}}, status_code=self.status)


def unauthorized() -> WorkspaceError:
    """No valid session."""
    return WorkspaceError(401, "Unauthorized", "Sign in to the workspace first (/workspace/login).")


def not_found(conversation_id: str) -> WorkspaceError:
    """Missing, or not the caller's to see: the same answer, so ids of others' work don't leak."""
    return WorkspaceError(404, "NotFound", f"No conversation '{conversation_id}' that you can see.")


@dataclass(frozen=True)
class SignedIn:
    """A request's agent with their environment's current configuration."""

    agent: AgentSession
    config: RoutingConfig

    @property
    def name(self) -> str:
        """The agent's display name (what customers see)."""
        entry = self.config.agents.get(self.agent.agent_id)
        return entry.name if entry else self.agent.agent_id


async def signed_in(connection: HTTPConnection, runtime: Runtime) -> SignedIn | None:
    """The session of this request or WebSocket, if its agent still exists and is active.

    Roles come from the current configuration, so a change (or a removed agent) applies at once
    rather than when the cookie expires.
    """
    agent = read_session(runtime.settings, connection.cookies.get(COOKIE), runtime.clock())
    if agent is None:
        return None
    async with runtime.db.reading() as session:
        config = await get_config(session, agent.environment)
        row = await session.get(AgentRow, (agent.environment, agent.agent_id))
    if config is None or row is None or not row.active or agent.agent_id not in config.agents:
        return None
    roles = tuple(config.agents[agent.agent_id].roles)
    return SignedIn(replace(agent, roles=roles), config)


@dataclass(frozen=True)
class Access:
    """A conversation the agent may see, and how they relate to it."""

    row: ConversationRow
    relation: str  # "owner" | "offered" | "consult" | "supervisor"

    @property
    def owns(self) -> bool:
        """The agent handles (or handled) this conversation."""
        return self.relation == "owner"


async def conversation_access(session: AsyncSession, agent: AgentSession, conversation_id: str) -> Access:
    """The conversation if ``agent`` may see it, else ``WorkspaceError`` 404."""
    row = await session.get(ConversationRow, conversation_id)
    if row is None or row.environment_id != agent.environment:
        raise not_found(conversation_id)
    if row.agent_id == agent.agent_id:
        return Access(row, "owner")
    offered = await session.scalar(
        select(OfferRow.id).where(
            OfferRow.conversation_id == row.id,
            OfferRow.agent_id == agent.agent_id,
            OfferRow.environment_id == agent.environment,
            OfferRow.state == "pending",
        )
    )
    if offered is not None:
        return Access(row, "offered")
    if await is_consultant(session, row.id, agent.agent_id):
        return Access(row, "consult")
    if agent.is_supervisor:
        return Access(row, "supervisor")
    raise not_found(conversation_id)


async def is_consultant(session: AsyncSession, conversation_id: str, agent_id: str) -> bool:
    """The agent was asked to consult on this conversation."""
    found = await session.scalar(
        select(ParticipantRow.id).where(
            ParticipantRow.conversation_id == conversation_id,
            ParticipantRow.role == CONSULT,
            ParticipantRow.participant_id == agent_id,
        )
    )
    return found is not None
