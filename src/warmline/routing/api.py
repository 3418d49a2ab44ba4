"""Routing administration API: an environment's contact-center document, its parts, and presence.

Every edit — the whole document or one queue, workstream or agent — rebuilds the whole document
and goes through ``do_apply_config`` in one transaction, so the API refuses exactly what
``warmline config apply`` refuses (cross-references included) and a refused edit changes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from warmline.routing.actions import RoutingError, do_set_presence
from warmline.routing.config import (
    ConfigChange,
    ConfigProblem,
    ConfigRefused,
    do_apply_config,
    get_config,
)
from warmline.routing.config_file import validate_contact_center
from warmline.routing.model import ContactCenter
from warmline.runtime import Runtime, get_runtime

Section = Literal["queues", "workstreams", "agents"]
SINGULAR = {
    "queues": "queue",
    "workstreams": "workstream",
    "agents": "agent",
    "skills": "skill",
    "capacity_profiles": "capacity profile",
    "operating_hours": "operating hours",
}
DISABLED = "admin API disabled: set WARMLINE_ADMIN_TOKEN"


class AdminError(Exception):
    """An admin request refused: ``{"error": {"code", "message", "problems"?}}`` with a status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: list[ConfigProblem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.problems, self.headers = problems, headers

    def response(self) -> Response:
        """The JSON error response."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.problems is not None:
            body["problems"] = [{"where": p.where, "message": p.message} for p in self.problems]
        return JSONResponse({"error": body}, status_code=self.status, headers=self.headers)


def authorize(request: Request) -> None:
    """Admit only ``Authorization: Bearer <WARMLINE_ADMIN_TOKEN>``; no token configured → no API."""
    token = get_runtime(request).settings.admin_token
    if token is None:
        raise AdminError(403, "Forbidden", DISABLED)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), token.encode()):
        raise AdminError(
            401,
            "Unauthorized",
            "missing or wrong admin token (send Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


class AdminRoute(APIRoute):
    """Checks the admin token before anything else (a bad body must not answer before auth does)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                authorize(request)
                return await handler(request)
            except AdminError as error:
                return error.response()

        return guarded


# Declared for the OpenAPI document only; ``AdminRoute`` does the checking.
BEARER = HTTPBearer(auto_error=False, description="The WARMLINE_ADMIN_TOKEN value.")
router = APIRouter(
    prefix="/api/environments/{env}",
    tags=["Routing administration"],
    route_class=AdminRoute,
    dependencies=[Depends(BEARER)],
)


class Change(BaseModel):
    """One line of a configuration diff."""

    sign: str = Field(description="'+' added, '-' removed, '~' changed")
    section: str
    id: str


class RoutingDocument(BaseModel):
    """An environment's current configuration."""

    environment: str
    version: int
    document: dict[str, Any]


class Applied(BaseModel):
    """The version an edit produced (unchanged when the edit changed nothing) and what changed."""

    version: int
    changes: list[Change]


class AppliedItem(Applied):
    """An edit of one queue, workstream or agent, and the item as stored."""

    item: dict[str, Any]


class PresenceRequest(BaseModel):
    """An agent's new presence: a base status or one of the environment's custom presences."""

    model_config = ConfigDict(extra="forbid")

    presence: str = Field(min_length=1, max_length=100)


class PresenceSet(BaseModel):
    """The presence stored for the agent."""

    agent: str
    presence: str
    text: str


def public(document: ContactCenter) -> dict[str, Any]:
    """A document as JSON, without passwords (they are stored only as hashes anyway)."""
    data = document.model_dump(mode="json")
    for agent in data["agents"]:
        agent.pop("password", None)
    return data


def _changes(changes: list[ConfigChange]) -> list[Change]:
    return [Change(sign=c.sign, section=c.section, id=c.id) for c in changes]


def _refused(refused: ConfigRefused) -> AdminError:
    return AdminError(
        400,
        "InvalidConfiguration",
        f"the configuration has {len(refused.problems)} problem(s); nothing was changed",
        refused.problems,
    )


def _referrer(data: dict[str, Any], problem: ConfigProblem) -> str:
    """``workstream 'chat' (rules[0].queue)`` for a problem at ``workstreams[0].rules[0].queue``."""
    section, index, *rest = problem.path
    item = data[str(section)][int(index)]
    inside = ConfigProblem(tuple(rest), problem.message).where
    return f"{SINGULAR.get(str(section), str(section))} '{item.get('id')}' ({inside})"


Edit = Callable[[dict[str, Any]], None]


async def _apply_edit(
    runtime: Runtime, env: str, edit: Edit, deleting: str | None = None
) -> tuple[Applied, ContactCenter]:
    """Edit the current document (as plain data), validate it whole and apply it, in one transaction."""
    data: dict[str, Any] = {}
    try:
        async with runtime.db.transaction() as tx:
            current = await get_config(tx.session, env)
            data = public(current.document) if current else {"environment": env}
            edit(data)
            document = validate_contact_center(data)
            version, changes = await do_apply_config(tx, document, runtime.clock())
    except ConfigRefused as refused:
        if deleting is None:
            raise _refused(refused) from None
        references = [_referrer(data, p) for p in refused.problems if len(p.path) >= 2]
        others = [p.message for p in refused.problems if len(p.path) < 2]
        reasons = ([f"still referenced by {', '.join(references)}"] if references else []) + others
        raise AdminError(
            409, "Conflict", f"cannot delete {deleting}: {'; '.join(reasons)}", refused.problems
        ) from None
    except IntegrityError:
        # Two edits read the same version and both tried to store the next one; this one lost.
        raise AdminError(
            409, "Conflict", "the configuration changed while this edit was applied; read it again and retry"
        ) from None
    return Applied(version=version, changes=_changes(changes)), document


async def _document(runtime: Runtime, env: str) -> tuple[int, ContactCenter]:
    async with runtime.db.reading() as session:
        config = await get_config(session, env)
    if config is None:
        raise AdminError(404, "NotFound", f"environment '{env}' has no routing configuration")
    return config.version, config.document


@router.get("/routing")
async def get_routing(env: str, runtime: Runtime = Depends(get_runtime)) -> RoutingDocument:
    """The environment's current contact-center document and its version."""
    version, document = await _document(runtime, env)
    return RoutingDocument(environment=env, version=version, document=public(document))


@router.put("/routing")
async def put_routing(
    env: str, body: dict[str, Any] = Body(...), runtime: Runtime = Depends(get_runtime)
) -> Applied:
    """Replace the whole document (what ``warmline config apply`` does with a file)."""
    given = body.get("environment", env)
    if given != env:
        problem = ConfigProblem(("environment",), f"the document is for environment '{given}', not '{env}'")
        raise AdminError(400, "InvalidConfiguration", problem.message, [problem])

    def replace(data: dict[str, Any]) -> None:
        data.clear()
        data.update(body, environment=env)

    applied, _ = await _apply_edit(runtime, env, replace)
    return applied


def _find(items: list[dict[str, Any]], item_id: str) -> int | None:
    return next((i for i, item in enumerate(items) if item.get("id") == item_id), None)


async def _get_item(runtime: Runtime, env: str, section: Section, item_id: str) -> dict[str, Any]:
    _, document = await _document(runtime, env)
    items: list[dict[str, Any]] = public(document)[section]
    index = _find(items, item_id)
    if index is None:
        raise AdminError(404, "NotFound", f"environment '{env}' has no {SINGULAR[section]} '{item_id}'")
    return items[index]


async def _put_item(
    runtime: Runtime, env: str, section: Section, item_id: str, body: dict[str, Any], response: Response
) -> AppliedItem:
    given = body.get("id", item_id)
    if given != item_id:
        problem = ConfigProblem(("id",), f"the body's id '{given}' differs from '{item_id}' in the URL")
        raise AdminError(400, "InvalidConfiguration", problem.message, [problem])
    item = {**body, "id": item_id}
    created = False

    def put(data: dict[str, Any]) -> None:
        nonlocal created
        items: list[dict[str, Any]] = data.setdefault(section, [])
        index = _find(items, item_id)
        created = index is None
        if index is None:
            items.append(item)
        else:
            items[index] = item

    applied, document = await _apply_edit(runtime, env, put)
    response.status_code = 201 if created else 200
    items: list[dict[str, Any]] = public(document)[section]
    index = _find(items, item_id)
    assert index is not None  # just applied
    stored = items[index]
    return AppliedItem(version=applied.version, changes=applied.changes, item=stored)


async def _delete_item(runtime: Runtime, env: str, section: Section, item_id: str) -> Applied:
    await _get_item(runtime, env, section, item_id)  # 404 when absent

    def delete(data: dict[str, Any]) -> None:
        data[section] = [item for item in data[section] if item.get("id") != item_id]

    applied, _ = await _apply_edit(runtime, env, delete, deleting=f"{SINGULAR[section]} '{item_id}'")
    return applied


@router.get("/routing/queues/{item_id}")
async def get_queue(env: str, item_id: str, runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """One queue."""
    return await _get_item(runtime, env, "queues", item_id)


@router.put("/routing/queues/{item_id}")
async def put_queue(
    env: str,
    item_id: str,
    response: Response,
    body: dict[str, Any] = Body(...),
    runtime: Runtime = Depends(get_runtime),
) -> AppliedItem:
    """Create (201) or replace a queue."""
    return await _put_item(runtime, env, "queues", item_id, body, response)


@router.delete("/routing/queues/{item_id}")
async def delete_queue(env: str, item_id: str, runtime: Runtime = Depends(get_runtime)) -> Applied:
    """Delete a queue; 409 while workstreams, agents or overflow actions still name it."""
    return await _delete_item(runtime, env, "queues", item_id)


@router.get("/routing/workstreams/{item_id}")
async def get_workstream(env: str, item_id: str, runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """One workstream."""
    return await _get_item(runtime, env, "workstreams", item_id)


@router.put("/routing/workstreams/{item_id}")
async def put_workstream(
    env: str,
    item_id: str,
    response: Response,
    body: dict[str, Any] = Body(...),
    runtime: Runtime = Depends(get_runtime),
) -> AppliedItem:
    """Create (201) or replace a workstream (its type and distribution are fixed once created)."""
    return await _put_item(runtime, env, "workstreams", item_id, body, response)


@router.delete("/routing/workstreams/{item_id}")
async def delete_workstream(env: str, item_id: str, runtime: Runtime = Depends(get_runtime)) -> Applied:
    """Delete a workstream; 409 while conversations in it are not closed."""
    return await _delete_item(runtime, env, "workstreams", item_id)


@router.get("/routing/agents/{item_id}")
async def get_agent(env: str, item_id: str, runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """One agent (never their password)."""
    return await _get_item(runtime, env, "agents", item_id)


@router.put("/routing/agents/{item_id}")
async def put_agent(
    env: str,
    item_id: str,
    response: Response,
    body: dict[str, Any] = Body(...),
    runtime: Runtime = Depends(get_runtime),
) -> AppliedItem:
    """Create (201) or replace an agent; a ``password`` is stored hashed, and kept when omitted."""
    return await _put_item(runtime, env, "agents", item_id, body, response)


@router.delete("/routing/agents/{item_id}")
async def delete_agent(env: str, item_id: str, runtime: Runtime = Depends(get_runtime)) -> Applied:
    """Remove an agent (kept inactive for history; never offered work again)."""
    return await _delete_item(runtime, env, "agents", item_id)


@router.put("/agents/{agent_id}/presence")
async def put_presence(
    env: str, agent_id: str, body: PresenceRequest, runtime: Runtime = Depends(get_runtime)
) -> PresenceSet:
    """Set an agent's presence; Available starts an assignment cycle on their queues."""
    _, document = await _document(runtime, env)
    if all(agent.id != agent_id for agent in document.agents):
        raise AdminError(404, "NotFound", f"environment '{env}' has no agent '{agent_id}'")
    try:
        async with runtime.db.transaction() as tx:
            base = await do_set_presence(tx, env, agent_id, body.presence, runtime.clock())
    except RoutingError as error:
        raise AdminError(400, "BadArgument", str(error)) from None
    return PresenceSet(agent=agent_id, presence=base, text=body.presence)
