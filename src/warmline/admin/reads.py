"""Administration reads: environments, bots and what their Agent transfers tile shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warmline.admin.actions import installed_extensions, missing_extensions
from warmline.admin.alm import connection_status, list_layers
from warmline.admin.model import INSTALL_ORDER, VOICE_GEOGRAPHIES
from warmline.bot.publishing import get_latest_version
from warmline.routing.config import get_config
from warmline.store.schema import (
    ApplicationUserRow,
    AuditRow,
    BotConnectionRow,
    BotRow,
    EnvironmentRow,
)


@dataclass(frozen=True)
class EnvironmentView:
    """An environment as the admin pages list it."""

    id: str
    name: str
    geography: str | None
    omnichannel: bool
    extensions: list[str]

    @property
    def voice_supported(self) -> bool:
        """Voice hand-off works in this environment's geography."""
        return self.geography in {g.value for g in VOICE_GEOGRAPHIES}


@dataclass(frozen=True)
class Preflight:
    """What connecting a bot to an omnichannel environment would do, checked before any write."""

    environment: str
    problem: str | None
    warnings: list[str] = field(default_factory=list)
    missing_extensions: list[str] = field(default_factory=list)


async def list_environments(session: AsyncSession) -> list[EnvironmentView]:
    """Every environment, by id."""
    rows = list(await session.scalars(select(EnvironmentRow).order_by(EnvironmentRow.id)))
    return [
        EnvironmentView(
            row.id,
            row.name,
            row.geography,
            row.omnichannel_enabled,
            await installed_extensions(session, row.id),
        )
        for row in rows
    ]


async def list_bots(session: AsyncSession) -> list[dict[str, Any]]:
    """Every bot with its environment, newest published version and connection state."""
    bots = list(await session.scalars(select(BotRow).order_by(BotRow.id)))
    connections = {c.bot_id: c for c in await session.scalars(select(BotConnectionRow))}
    result = []
    for bot in bots:
        connection = connections.get(bot.id)
        result.append(
            {
                "id": bot.id,
                "name": bot.name,
                "environment": bot.environment_id,
                "publishedVersion": await get_latest_version(session, bot.id),
                "connection": connection.state if connection else None,
                "omnichannelEnvironment": connection.environment_id if connection else None,
            }
        )
    return result


async def list_application_users(session: AsyncSession, environment_id: str) -> list[dict[str, Any]]:
    """The application users (bots) of an omnichannel environment."""
    rows = await session.scalars(
        select(ApplicationUserRow)
        .where(ApplicationUserRow.environment_id == environment_id)
        .order_by(ApplicationUserRow.created_at)
    )
    return [
        {"appId": r.app_id, "bot": r.bot_id, "state": r.state, "createdAt": r.created_at.isoformat()}
        for r in rows
    ]


async def bot_workstreams(session: AsyncSession, environment_id: str, bot_id: str) -> list[str]:
    """Workstreams of an environment whose first agent is this bot."""
    config = await get_config(session, environment_id)
    if config is None:
        return []
    return sorted(w.id for w in config.workstreams.values() if w.bot == bot_id)


async def connection_preflight(session: AsyncSession, bot_id: str, environment_id: str) -> Preflight:
    """The checks ``do_connect_bot`` makes about environments, without an application id or a write."""
    bot = await session.get(BotRow, bot_id)
    target = await session.get(EnvironmentRow, environment_id)
    if bot is None:
        return Preflight(environment_id, f"no bot '{bot_id}'; publish it first")
    if target is None:
        return Preflight(environment_id, f"no environment '{environment_id}'")
    if not target.omnichannel_enabled:
        return Preflight(
            environment_id,
            f"the omnichannel is not enabled in '{environment_id}'; enable it for that environment "
            "first (or choose another environment)",
        )
    home = await session.get(EnvironmentRow, bot.environment_id) if bot.environment_id else target
    assert home is not None
    if home.geography != target.geography:
        return Preflight(
            environment_id,
            f"the bot's environment '{home.id}' is in {home.geography} but '{target.id}' is in "
            f"{target.geography}; they must be in the same geography",
        )
    warnings = []
    if home.id != target.id:
        warnings.append(
            f"the bot lives in '{home.id}' and the omnichannel in '{target.id}': omnichannel "
            "analytics for this bot won't work"
        )
    connection = await session.get(BotConnectionRow, bot_id)
    voice = bool(connection and connection.voice_enabled)
    # In the bot's own environment the extensions are installed automatically on connect.
    missing = [] if home.id == target.id else await missing_extensions(session, environment_id, voice)
    return Preflight(environment_id, None, warnings, missing)


async def last_import(session: AsyncSession, bot_id: str) -> dict[str, Any] | None:
    """The details of the bot's most recent solution import, if any."""
    row = await session.scalar(
        select(AuditRow)
        .where(AuditRow.action == "solution.imported", AuditRow.subject == bot_id)
        .order_by(AuditRow.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    return {"at": row.at.isoformat(), **(row.details or {})}


async def get_agent_transfers(session: AsyncSession, bot_id: str) -> dict[str, Any] | None:
    """Everything the bot's Agent transfers page shows; None when there is no such bot."""
    bot = await session.get(BotRow, bot_id)
    if bot is None:
        return None
    connection = await session.get(BotConnectionRow, bot_id)
    environments = await list_environments(session)
    # The connected environment, else the bot's own if it runs the omnichannel, else the first that does.
    candidates = [e.id for e in environments if e.omnichannel]
    if bot.environment_id in candidates:
        candidates.insert(0, str(bot.environment_id))
    selected = connection.environment_id if connection else next(iter(candidates), bot.environment_id)
    voice = bool(connection and connection.voice_enabled)
    imported = await last_import(session, bot_id)
    user = (
        await session.get(ApplicationUserRow, (connection.environment_id, connection.app_id))
        if connection
        else None
    )
    return {
        "bot": {
            "id": bot.id,
            "name": bot.name,
            "environment": bot.environment_id,
            "publishedVersion": await get_latest_version(session, bot_id),
        },
        "connection": None
        if connection is None
        else {
            "environment": connection.environment_id,
            "appId": connection.app_id,
            "state": connection.state,
            "channelEnabled": connection.channel_enabled,
            "voiceEnabled": connection.voice_enabled,
            "applicationUser": user.state if user else None,
            "connectedAt": connection.connected_at.isoformat(),
            "workstreams": await bot_workstreams(session, connection.environment_id, bot_id),
        },
        "voiceEnabled": voice,
        "environments": [
            {
                "id": e.id,
                "name": e.name,
                "geography": e.geography,
                "omnichannel": e.omnichannel,
                "extensions": e.extensions,
            }
            for e in environments
        ],
        "selectedEnvironment": selected,
        "extensions": {
            "order": list(INSTALL_ORDER),
            "installed": await installed_extensions(session, selected) if selected else [],
            "missing": await missing_extensions(session, selected, voice) if selected else [],
        },
        "import": None
        if imported is None
        else {**imported, "status": await connection_status(session, bot_id, imported.get("connection"))},
        "layers": await list_layers(session, bot_id),
    }
