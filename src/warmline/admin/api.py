"""Administration REST API under ``/api/admin``: environments, apps, the bot connection, ALM, analytics.

Callers are identified by ``admin.access`` (admin token, admin sign-in cookie or workspace session);
the actions check roles, so a caller without the System Administrator role gets the action's 403
naming the role. Every refusal is ``{"error": {"code", "message"}}`` with the action's status.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from warmline.admin import reads
from warmline.admin.access import CSRF_HEADER, SAFE_METHODS, Caller, change_allowed, identify
from warmline.admin.actions import (
    AdminError,
    do_assign_bot_environment,
    do_connect_bot,
    do_disable_bot_connection,
    do_disconnect_bot,
    do_install_extension,
    do_register_app,
    do_save_environment,
    do_set_voice,
    do_uninstall_extension,
    installed_extensions,
    missing_extensions,
    refresh_connection,
    require_admin,
)
from warmline.admin.alm import (
    MAX_ARCHIVE_BYTES,
    do_customize_bot,
    do_import_solution,
    do_remove_unmanaged_layer,
    export_solution,
    list_layers,
)
from warmline.admin.model import EXTENSIONS, INSTALL_ORDER, Actor, Geography
from warmline.analytics.reads import read_analytics
from warmline.runtime import Runtime, get_runtime


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class AdminAPIRoute(APIRoute):
    """Identifies the caller before anything else (a bad body must not answer before auth does),
    enforces CSRF for cookie callers, and turns ``AdminError`` into its JSON response."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            runtime = get_runtime(request)
            caller = await identify(request, runtime)
            if caller is None:
                return _error(
                    401,
                    "Unauthorized",
                    "send Authorization: Bearer <WARMLINE_ADMIN_TOKEN>, sign in at /admin/login, or sign "
                    "in to the workspace as an administrator",
                    {"WWW-Authenticate": "Bearer"},
                )
            if request.method not in SAFE_METHODS and not change_allowed(
                request, runtime.settings, caller, request.headers.get(CSRF_HEADER)
            ):
                return _error(403, "Forbidden", "missing or wrong CSRF token; reload the page and try again")
            request.state.caller = caller
            try:
                return await handler(request)
            except AdminError as error:
                return _error(error.status, error.code, error.message)

        return guarded


BEARER = HTTPBearer(auto_error=False, description="The WARMLINE_ADMIN_TOKEN value.")
router = APIRouter(
    prefix="/api/admin",
    tags=["Administration"],
    route_class=AdminAPIRoute,
    dependencies=[Depends(BEARER)],
)


def get_actor(request: Request) -> Actor:
    """FastAPI dependency: the actor ``AdminAPIRoute`` identified."""
    caller: Caller = request.state.caller
    return caller.actor


# --- bodies ----------------------------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EnvironmentBody(Strict):
    """An environment's settings."""

    name: str = Field(min_length=1, max_length=200)
    geography: Geography
    omnichannel: bool = True


class AppBody(Strict):
    """A new app registration."""

    name: str = Field(min_length=1, max_length=200)


class ConnectBody(Strict):
    """Connect a bot: the omnichannel environment and the application (client) id."""

    environment: str = Field(min_length=1, max_length=64)
    app_id: str = Field(alias="appId", min_length=1, max_length=36)


class VoiceBody(Strict):
    """Voice on or off for the whole bot."""

    enabled: bool


class BotEnvironmentBody(Strict):
    """The environment a bot lives in."""

    environment: str = Field(min_length=1, max_length=64)


class FilesBody(Strict):
    """A bot's files (path → text), as in its folder."""

    files: dict[str, str] = Field(min_length=1)


# --- environments and apps -----------------------------------------------------------------------


@router.get("/environments")
async def get_environments(runtime: Runtime = Depends(get_runtime)) -> list[dict[str, Any]]:
    """Every environment with its geography, omnichannel flag and installed extensions."""
    async with runtime.db.reading() as session:
        environments = await reads.list_environments(session)
    return [
        {
            "id": e.id,
            "name": e.name,
            "geography": e.geography,
            "omnichannel": e.omnichannel,
            "voiceSupported": e.voice_supported,
            "extensions": e.extensions,
        }
        for e in environments
    ]


@router.put("/environments/{env}")
async def put_environment(
    env: str,
    body: EnvironmentBody,
    actor: Actor = Depends(get_actor),
    runtime: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Create or update an environment."""
    async with runtime.db.transaction() as tx:
        await do_save_environment(
            tx, actor, env, body.name, body.geography, body.omnichannel, runtime.clock()
        )
    return {"id": env, "name": body.name, "geography": body.geography.value, "omnichannel": body.omnichannel}


@router.get("/environments/{env}/extensions")
async def get_extensions(
    env: str, voice: bool = Query(default=True), runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Installed extensions, and the ones hand-off (text, or text and voice) still needs, in order."""
    async with runtime.db.reading() as session:
        installed = await installed_extensions(session, env)
        missing = await missing_extensions(session, env, voice)
    return {
        "environment": env,
        "order": list(INSTALL_ORDER),
        "installed": installed,
        "missing": missing,
        "catalog": [
            {"name": e.name, "title": e.title, "requires": list(e.requires), "adds": e.adds}
            for e in (EXTENSIONS[n] for n in INSTALL_ORDER)
        ],
    }


@router.post("/environments/{env}/extensions/{name}")
async def install_extension(
    env: str, name: str, actor: Actor = Depends(get_actor), runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Install one extension (its dependencies first)."""
    async with runtime.db.transaction() as tx:
        await do_install_extension(tx, actor, env, name, runtime.clock())
    async with runtime.db.reading() as session:
        return {"environment": env, "installed": await installed_extensions(session, env)}


@router.delete("/environments/{env}/extensions/{name}")
async def uninstall_extension(
    env: str, name: str, actor: Actor = Depends(get_actor), runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Uninstall one extension (refused while another needs it)."""
    async with runtime.db.transaction() as tx:
        await do_uninstall_extension(tx, actor, env, name, runtime.clock())
    async with runtime.db.reading() as session:
        return {"environment": env, "installed": await installed_extensions(session, env)}


@router.get("/environments/{env}/application-users")
async def get_application_users(env: str, runtime: Runtime = Depends(get_runtime)) -> list[dict[str, Any]]:
    """The bots' application users in an omnichannel environment."""
    async with runtime.db.reading() as session:
        return await reads.list_application_users(session, env)


@router.post("/apps", status_code=201)
async def register_app(
    body: AppBody, actor: Actor = Depends(get_actor), runtime: Runtime = Depends(get_runtime)
) -> dict[str, str]:
    """Register an application: its (client) id and a secret shown only in this answer."""
    async with runtime.db.transaction() as tx:
        app_id, secret = await do_register_app(tx, actor, body.name, runtime.clock())
    return {"appId": app_id, "secret": secret, "name": body.name}


# --- bots and their connection -------------------------------------------------------------------


@router.get("/bots")
async def get_bots(runtime: Runtime = Depends(get_runtime)) -> list[dict[str, Any]]:
    """Every bot with its environment and connection state."""
    async with runtime.db.reading() as session:
        return await reads.list_bots(session)


@router.put("/bots/{bot}/environment")
async def put_bot_environment(
    bot: str,
    body: BotEnvironmentBody,
    actor: Actor = Depends(get_actor),
    runtime: Runtime = Depends(get_runtime),
) -> dict[str, str]:
    """Place a bot in an environment."""
    async with runtime.db.transaction() as tx:
        await do_assign_bot_environment(tx, actor, bot, body.environment, runtime.clock())
    return {"bot": bot, "environment": body.environment}


async def _transfers(runtime: Runtime, bot: str) -> dict[str, Any]:
    async with runtime.db.reading() as session:
        view = await reads.get_agent_transfers(session, bot)
    if view is None:
        raise AdminError("NotFound", f"no bot '{bot}'; publish it first (warmline bot publish)", status=404)
    return view


@router.get("/bots/{bot}/agent-transfers")
async def get_agent_transfers(bot: str, runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """What the bot's Agent transfers tile shows: connection, environments, extensions, import status."""
    return await _transfers(runtime, bot)


@router.get("/bots/{bot}/connection/check")
async def check_connection(
    bot: str,
    environment: str = Query(min_length=1, max_length=64),
    runtime: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Whether the bot could connect to this environment's omnichannel, and with which warnings."""
    async with runtime.db.reading() as session:
        preflight = await reads.connection_preflight(session, bot, environment)
    return {
        "environment": preflight.environment,
        "ok": preflight.problem is None,
        "problem": preflight.problem,
        "warnings": preflight.warnings,
        "missingExtensions": preflight.missing_extensions,
    }


@router.put("/bots/{bot}/connection")
async def connect_bot(
    bot: str, body: ConnectBody, actor: Actor = Depends(get_actor), runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Add the bot: create its application user in the omnichannel environment and enable the channel."""
    async with runtime.db.transaction() as tx:
        warnings = await do_connect_bot(tx, actor, bot, body.environment, body.app_id, runtime.clock())
    return {"warnings": warnings, **await _transfers(runtime, bot)}


@router.delete("/bots/{bot}/connection")
async def disconnect_bot(
    bot: str, actor: Actor = Depends(get_actor), runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Disconnect: the application user is disabled and the bot gets no traffic."""
    async with runtime.db.transaction() as tx:
        await do_disconnect_bot(tx, actor, bot, runtime.clock())
    return await _transfers(runtime, bot)


@router.post("/bots/{bot}/connection/disable")
async def disable_connection(
    bot: str, actor: Actor = Depends(get_actor), runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Stop all traffic, keeping the connection configured."""
    async with runtime.db.transaction() as tx:
        await do_disable_bot_connection(tx, actor, bot, False, runtime.clock())
    return await _transfers(runtime, bot)


@router.post("/bots/{bot}/connection/enable")
async def enable_connection(
    bot: str, actor: Actor = Depends(get_actor), runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Let traffic through again after Disable."""
    async with runtime.db.transaction() as tx:
        await do_disable_bot_connection(tx, actor, bot, True, runtime.clock())
    return await _transfers(runtime, bot)


@router.post("/bots/{bot}/connection/refresh")
async def refresh(
    bot: str, actor: Actor = Depends(get_actor), runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Test and verify the connection, check by check."""
    require_admin(actor, "Refreshing a bot connection")
    async with runtime.db.reading() as session:
        checks = await refresh_connection(session, bot)
    return {
        "ok": all(c.ok for c in checks),
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
    }


@router.put("/bots/{bot}/voice")
async def set_voice(
    bot: str, body: VoiceBody, actor: Actor = Depends(get_actor), runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Turn voice on or off for the whole bot (reconnecting it when needed)."""
    async with runtime.db.transaction() as tx:
        notes = await do_set_voice(tx, actor, bot, body.enabled, runtime.clock())
    return {"notes": notes, **await _transfers(runtime, bot)}


# --- ALM -------------------------------------------------------------------------------------------


@router.get("/bots/{bot}/solution", response_class=Response)
async def export(
    bot: str,
    managed: bool = Query(default=True),
    version: str = Query(default="1.0.0", pattern=r"^\d+(\.\d+){0,3}$"),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """The bot's newest published version as a solution zip (managed by default)."""
    async with runtime.db.reading() as session:
        data = await export_solution(session, bot, managed=managed, version=version)
    kind = "managed" if managed else "unmanaged"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{bot}-{version}-{kind}")[:100]
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}.zip"'},
    )


async def _body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise AdminError("TooLarge", f"the solution is larger than {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/solutions/import",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def import_solution(
    request: Request,
    environment: str = Query(min_length=1, max_length=64),
    as_bot: str | None = Query(default=None, alias="asBot", min_length=1, max_length=64),
    actor: Actor = Depends(get_actor),
    runtime: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Import a solution zip (the request body) into an environment; managed → read-only base layer."""
    data = await _body(request, MAX_ARCHIVE_BYTES)
    async with runtime.db.transaction() as tx:
        return await do_import_solution(tx, actor, data, environment, runtime.clock(), bot_id=as_bot)


@router.get("/bots/{bot}/layers")
async def get_layers(bot: str, runtime: Runtime = Depends(get_runtime)) -> list[dict[str, Any]]:
    """The bot's solution layers, managed base first."""
    async with runtime.db.reading() as session:
        return await list_layers(session, bot)


@router.delete("/bots/{bot}/layers/unmanaged")
async def remove_unmanaged_layer(
    bot: str, actor: Actor = Depends(get_actor), runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Revert a managed bot to its managed state; publishes the result."""
    async with runtime.db.transaction() as tx:
        version = await do_remove_unmanaged_layer(tx, actor, bot, runtime.clock())
    return {"bot": bot, "publishedVersion": version}


@router.put("/bots/{bot}/files")
async def customize(
    bot: str, body: FilesBody, actor: Actor = Depends(get_actor), runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Edit the bot here and publish; on a managed bot the edits become the unmanaged layer."""
    async with runtime.db.transaction() as tx:
        version = await do_customize_bot(tx, actor, bot, body.files, runtime.clock())
    return {"bot": bot, "publishedVersion": version}


# --- analytics -------------------------------------------------------------------------------------


@router.get("/analytics")
async def analytics(
    environment: str = Query(min_length=1, max_length=64),
    bot: str | None = Query(default=None, max_length=64),
    runtime: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Bot and queue metrics of an environment (one bot's when ``bot`` is given)."""
    async with runtime.db.reading() as session:
        report = await read_analytics(session, environment, bot or None)
    return report.to_json()
