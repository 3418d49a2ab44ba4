"""Administrative actions. Each checks the caller's role, refuses with a reason a person can act on,
and writes an audit record in the same transaction as the change."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warmline.admin.model import (
    EXTENSIONS,
    INSTALL_ORDER,
    VOICE_GEOGRAPHIES,
    Actor,
    Check,
    ConnectionState,
    Geography,
    required_extensions,
)
from warmline.bot.publishing import get_latest_version
from warmline.routing.config import PASSWORDS, get_config
from warmline.routing.model import WorkstreamType
from warmline.store import Transaction
from warmline.store.schema import (
    ApplicationUserRow,
    AppRegistrationRow,
    AuditRow,
    BotConnectionRow,
    BotRow,
    EnvironmentRow,
    ExtensionRow,
)


class AdminError(Exception):
    """A refused administrative action; ``code`` is stable, the message says what to do."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def require_admin(actor: Actor, action: str) -> None:
    """Only a System Administrator may do ``action``."""
    if not actor.is_system_administrator:
        held = ", ".join(actor.roles) or "none"
        raise AdminError(
            "Forbidden",
            f"{action} needs the System Administrator role (administrator); {actor.name} has: {held}",
            status=403,
        )


def audit(
    tx: Transaction,
    actor: Actor,
    action: str,
    subject: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    """Record an administrative action."""
    tx.session.add(AuditRow(at=now, actor=actor.name, action=action, subject=subject, details=details))


async def _environment(session: AsyncSession, environment_id: str) -> EnvironmentRow:
    row = await session.get(EnvironmentRow, environment_id)
    if row is None:
        raise AdminError("NotFound", f"no environment '{environment_id}'", status=404)
    return row


async def _bot(session: AsyncSession, bot_id: str) -> BotRow:
    row = await session.get(BotRow, bot_id)
    if row is None:
        raise AdminError(
            "NotFound", f"no bot '{bot_id}'; publish it first (warmline bot publish)", status=404
        )
    return row


# --- environments and apps -----------------------------------------------------------------------


async def do_save_environment(
    tx: Transaction,
    actor: Actor,
    environment_id: str,
    name: str,
    geography: Geography,
    omnichannel: bool,
    now: datetime,
) -> None:
    """Create or update an environment in a geography."""
    require_admin(actor, "Managing environments")
    row = await tx.session.get(EnvironmentRow, environment_id)
    if row is None:
        tx.session.add(
            EnvironmentRow(
                id=environment_id,
                name=name,
                geography=geography.value,
                omnichannel_enabled=omnichannel,
                created_at=now,
            )
        )
    else:
        row.name, row.geography, row.omnichannel_enabled = name, geography.value, omnichannel
    audit(
        tx,
        actor,
        "environment.saved",
        environment_id,
        now,
        {"geography": geography.value, "omnichannel": omnichannel},
    )


async def do_register_app(tx: Transaction, actor: Actor, name: str, now: datetime) -> tuple[str, str]:
    """Issue an application (client) id and secret; the secret is shown once and stored hashed."""
    require_admin(actor, "Registering an application")
    app_id, secret = str(uuid.uuid4()), secrets.token_urlsafe(32)
    tx.session.add(
        AppRegistrationRow(app_id=app_id, name=name, secret_hash=PASSWORDS.hash(secret), created_at=now)
    )
    audit(tx, actor, "app.registered", app_id, now, {"name": name})
    return app_id, secret


async def do_assign_bot_environment(
    tx: Transaction, actor: Actor, bot_id: str, environment_id: str, now: datetime
) -> None:
    """Place a bot in an environment (nothing crosses environments except by export/import)."""
    require_admin(actor, "Moving a bot")
    await _environment(tx.session, environment_id)
    bot = await _bot(tx.session, bot_id)
    bot.environment_id = environment_id
    audit(tx, actor, "bot.environment", bot_id, now, {"environment": environment_id})


# --- extensions ----------------------------------------------------------------------------------


async def installed_extensions(session: AsyncSession, environment_id: str) -> list[str]:
    """Installed extension names, in install order."""
    names = set(
        await session.scalars(select(ExtensionRow.name).where(ExtensionRow.environment_id == environment_id))
    )
    return [name for name in INSTALL_ORDER if name in names]


async def missing_extensions(session: AsyncSession, environment_id: str, voice: bool) -> list[str]:
    """Extensions hand-off needs that are not installed, in the order to install them."""
    have = set(await installed_extensions(session, environment_id))
    return [name for name in required_extensions(voice) if name not in have]


async def do_install_extension(
    tx: Transaction, actor: Actor, environment_id: str, name: str, now: datetime
) -> None:
    """Install one extension; its dependencies must be installed first."""
    require_admin(actor, "Installing extensions")
    await _environment(tx.session, environment_id)
    extension = EXTENSIONS.get(name)
    if extension is None:
        raise AdminError(
            "UnknownExtension", f"unknown extension '{name}' (known: {', '.join(INSTALL_ORDER)})"
        )
    have = set(await installed_extensions(tx.session, environment_id))
    if name in have:
        return
    missing = [r for r in extension.requires if r not in have]
    if missing:
        raise AdminError(
            "MissingDependency",
            f"install {', '.join(missing)} before {name} (order: {' → '.join(INSTALL_ORDER)})",
            status=409,
        )
    tx.session.add(ExtensionRow(environment_id=environment_id, name=name, installed_at=now))
    audit(tx, actor, "extension.installed", f"{environment_id}/{name}", now)


async def do_uninstall_extension(
    tx: Transaction, actor: Actor, environment_id: str, name: str, now: datetime
) -> None:
    """Uninstall; refused while another installed extension needs it."""
    require_admin(actor, "Uninstalling extensions")
    have = set(await installed_extensions(tx.session, environment_id))
    if name not in have:
        raise AdminError("NotInstalled", f"'{name}' is not installed in '{environment_id}'", status=404)
    needed_by = [e for e in have if name in EXTENSIONS[e].requires]
    if needed_by:
        raise AdminError(
            "InUse", f"'{name}' is needed by {', '.join(needed_by)}; uninstall that first", status=409
        )
    row = await tx.session.get(ExtensionRow, (environment_id, name))
    assert row is not None
    await tx.session.delete(row)
    audit(tx, actor, "extension.uninstalled", f"{environment_id}/{name}", now)


# --- the connection ------------------------------------------------------------------------------


async def do_connect_bot(
    tx: Transaction, actor: Actor, bot_id: str, environment_id: str, app_id: str, now: datetime
) -> list[str]:
    """Enable hand-off: create the application user, enable the channel; returns warnings to show."""
    require_admin(actor, "Connecting a bot to the omnichannel")
    bot = await _bot(tx.session, bot_id)
    omnichannel = await _environment(tx.session, environment_id)
    if not omnichannel.omnichannel_enabled:
        raise AdminError(
            "OmnichannelNotEnabled",
            f"the omnichannel is not enabled in '{environment_id}'; enable it "
            "for that environment first (or choose another environment)",
            status=409,
        )
    warnings: list[str] = []
    if bot.environment_id is None:
        bot.environment_id = environment_id
    home = await _environment(tx.session, bot.environment_id)
    if home.geography != omnichannel.geography:
        raise AdminError(
            "GeographyMismatch",
            f"the bot's environment '{home.id}' is in {home.geography} but "
            f"'{omnichannel.id}' is in {omnichannel.geography}; they must be in the same geography",
            status=409,
        )
    if home.id != omnichannel.id:
        warnings.append(
            f"the bot lives in '{home.id}' and the omnichannel in '{omnichannel.id}': omnichannel "
            "analytics for this bot won't work"
        )
    if await tx.session.get(AppRegistrationRow, app_id) is None:
        raise AdminError(
            "UnknownApplication",
            f"no app registration with id '{app_id}'; register one with `warmline apps register`",
            status=404,
        )
    user = await tx.session.get(ApplicationUserRow, (environment_id, app_id))
    if user is not None and user.bot_id != bot_id:
        raise AdminError(
            "DuplicateBotAppId",
            f"error 1004 (DuplicateBotAppId): application id '{app_id}' already "
            f"represents bot '{user.bot_id}' in '{environment_id}'; register a new app for this bot",
            status=409,
        )
    if user is None:
        tx.session.add(
            ApplicationUserRow(
                environment_id=environment_id, app_id=app_id, bot_id=bot_id, state="active", created_at=now
            )
        )
    else:
        user.state = "active"
    connection = await tx.session.get(BotConnectionRow, bot_id)
    voice = connection.voice_enabled if connection else False
    if connection is None:
        tx.session.add(
            BotConnectionRow(
                bot_id=bot_id,
                environment_id=environment_id,
                app_id=app_id,
                state=ConnectionState.ENABLED,
                channel_enabled=True,
                voice_enabled=False,
                connected_at=now,
                updated_at=now,
            )
        )
    else:
        connection.environment_id, connection.app_id = environment_id, app_id
        connection.state, connection.channel_enabled, connection.updated_at = (
            ConnectionState.ENABLED,
            True,
            now,
        )
    if home.id == omnichannel.id:
        # Same environment: the extensions come automatically, as in the seed.
        for name in required_extensions(voice):
            if await tx.session.get(ExtensionRow, (environment_id, name)) is None:
                tx.session.add(ExtensionRow(environment_id=environment_id, name=name, installed_at=now))
    else:
        missing = await missing_extensions(tx.session, environment_id, voice)
        if missing:
            warnings.append(
                "the bot doesn't have access to the variables or actions it needs: install "
                + " → ".join(missing)
            )
    if await get_latest_version(tx.session, bot_id) is None:
        warnings.append("the bot is not published; publish it for hand-off to work end to end")
    audit(tx, actor, "bot.connected", bot_id, now, {"environment": environment_id, "app_id": app_id})
    return warnings


async def _connection(session: AsyncSession, bot_id: str) -> BotConnectionRow:
    connection = await session.get(BotConnectionRow, bot_id)
    if connection is None:
        raise AdminError(
            "NotConnected", f"bot '{bot_id}' is not connected to an omnichannel; connect it first", status=404
        )
    return connection


async def do_disconnect_bot(tx: Transaction, actor: Actor, bot_id: str, now: datetime) -> None:
    """Disable the application user: the bot gets no traffic; connecting again starts over."""
    require_admin(actor, "Disconnecting a bot")
    connection = await _connection(tx.session, bot_id)
    user = await tx.session.get(ApplicationUserRow, (connection.environment_id, connection.app_id))
    if user is not None:
        user.state = "disabled"
    connection.state, connection.channel_enabled, connection.updated_at = (
        ConnectionState.DISCONNECTED,
        False,
        now,
    )
    audit(tx, actor, "bot.disconnected", bot_id, now)


async def do_disable_bot_connection(
    tx: Transaction, actor: Actor, bot_id: str, enabled: bool, now: datetime
) -> None:
    """Stop (or resume) all traffic while keeping the connection configured."""
    require_admin(actor, "Disabling a bot connection")
    connection = await _connection(tx.session, bot_id)
    if connection.state == ConnectionState.DISCONNECTED:
        raise AdminError("Disconnected", "this bot is disconnected; connect it again instead", status=409)
    connection.state = ConnectionState.ENABLED if enabled else ConnectionState.DISABLED
    connection.updated_at = now
    audit(tx, actor, "bot.enabled" if enabled else "bot.disabled", bot_id, now)


async def voice_attachments(session: AsyncSession, bot_id: str) -> list[str]:
    """Voice workstreams (and their queues) that use this bot."""
    found = []
    for environment in await session.scalars(select(EnvironmentRow.id)):
        config = await get_config(session, environment)
        if config is None:
            continue
        for workstream in config.workstreams.values():
            if workstream.bot == bot_id and workstream.type is WorkstreamType.VOICE:
                queues = sorted({workstream.fallback_queue, *(r.queue for r in workstream.rules)})
                found.append(f"{environment}/workstream {workstream.id} (queues: {', '.join(queues)})")
    return found


async def do_set_voice(tx: Transaction, actor: Actor, bot_id: str, enabled: bool, now: datetime) -> list[str]:
    """Turn voice on or off for the whole bot, with the guards the seed leaves to the reader."""
    require_admin(actor, "Changing voice")
    bot = await _bot(tx.session, bot_id)
    connection = await tx.session.get(BotConnectionRow, bot_id)
    notes: list[str] = []
    if enabled:
        environments = {bot.environment_id, connection.environment_id if connection else None} - {None}
        for environment_id in environments:
            environment = await _environment(tx.session, environment_id or "")
            if environment.geography not in {g.value for g in VOICE_GEOGRAPHIES}:
                allowed = ", ".join(sorted(g.value for g in VOICE_GEOGRAPHIES))
                raise AdminError(
                    "VoiceGeography",
                    f"voice is not available in {environment.geography} "
                    f"('{environment.id}'); it works only in: {allowed}",
                    status=409,
                )
        if connection is not None and connection.state != ConnectionState.DISCONNECTED:
            # The seed requires a manual disconnect + reconnect to add voice; we do it here.
            connection.state, connection.updated_at = ConnectionState.ENABLED, now
            notes.append("the bot was reconnected to the omnichannel so voice takes effect")
    else:
        attached = await voice_attachments(tx.session, bot_id)
        if attached:
            raise AdminError(
                "VoiceInUse",
                "calls would start failing: remove the bot from these first: " + "; ".join(attached),
                status=409,
            )
    if connection is not None:
        connection.voice_enabled, connection.updated_at = enabled, now
    elif enabled:
        notes.append("voice is recorded for when the bot is connected")
    audit(tx, actor, "bot.voice", bot_id, now, {"enabled": enabled})
    return notes


async def refresh_connection(session: AsyncSession, bot_id: str) -> list[Check]:
    """Test and verify the connection, one check at a time (the seed's Refresh, itemised)."""
    connection = await session.get(BotConnectionRow, bot_id)
    if connection is None:
        return [Check("connected", False, "the bot is not connected to an omnichannel")]
    bot = await session.get(BotRow, bot_id)
    user = await session.get(ApplicationUserRow, (connection.environment_id, connection.app_id))
    omnichannel = await session.get(EnvironmentRow, connection.environment_id)
    home = await session.get(EnvironmentRow, bot.environment_id) if bot and bot.environment_id else None
    workstreams = []
    config = await get_config(session, connection.environment_id)
    if config is not None:
        workstreams = [w.id for w in config.workstreams.values() if w.bot == bot_id]
    missing = await missing_extensions(session, connection.environment_id, connection.voice_enabled)
    published = await get_latest_version(session, bot_id)
    checks = [
        Check(
            "application user active",
            user is not None and user.state == "active",
            f"application user for {connection.app_id}" + ("" if user else " is missing"),
        ),
        Check(
            "channel enabled",
            connection.channel_enabled and connection.state == ConnectionState.ENABLED,
            f"connection is {connection.state}",
        ),
        Check(
            "bot published",
            published is not None,
            f"version {published}" if published else "publish the bot with `warmline bot publish`",
        ),
        Check(
            "attached to a workstream",
            bool(workstreams),
            ", ".join(workstreams) or "no workstream has this bot as its first agent",
        ),
        Check(
            "extensions installed",
            not missing,
            "missing: " + " → ".join(missing) if missing else "all present",
        ),
        Check(
            "same geography",
            bool(home and omnichannel and home.geography == omnichannel.geography),
            f"{home.geography if home else '?'} / {omnichannel.geography if omnichannel else '?'}",
        ),
    ]
    if connection.voice_enabled:
        ok = bool(omnichannel and omnichannel.geography in {g.value for g in VOICE_GEOGRAPHIES})
        checks.append(Check("voice geography", ok, (omnichannel.geography if omnichannel else None) or "?"))
    return checks


async def bot_traffic_allowed(session: AsyncSession, bot_id: str) -> bool:
    """False when the bot's omnichannel connection is disabled or disconnected (no traffic)."""
    connection = await session.get(BotConnectionRow, bot_id)
    return connection is None or connection.state == ConnectionState.ENABLED


async def voice_allowed(session: AsyncSession, bot_id: str) -> bool:
    """Whether calls may reach this bot (voice on and the connection passing traffic)."""
    connection = await session.get(BotConnectionRow, bot_id)
    return connection is not None and connection.voice_enabled and connection.state == ConnectionState.ENABLED
