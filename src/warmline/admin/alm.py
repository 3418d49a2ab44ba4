"""ALM: solution export/import between environments, with managed and unmanaged layers.

A solution is a zip: ``manifest.json`` (format, solution name and version, managed or not, the bot,
connection settings without secrets) and the bot's files under ``bot/``. Importing a managed solution
makes a read-only base layer; edits in the target make an unmanaged layer on top (file by file),
and removing the unmanaged layer brings the bot back to exactly what was imported.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warmline.admin.actions import AdminError, audit, require_admin
from warmline.admin.model import Actor, ConnectionState
from warmline.bot.publishing import (
    PublishRefused,
    check_bot,
    do_publish_bot,
    get_latest_version,
    get_version_files,
)
from warmline.store import Transaction
from warmline.store.schema import ApplicationUserRow, BotConnectionRow, BotLayerRow, BotRow, EnvironmentRow

FORMAT = "warmline-solution"
FORMAT_VERSION = 1
MANAGED, UNMANAGED = "managed", "unmanaged"
MAX_ARCHIVE_BYTES = 10 * 1024 * 1024
MAX_FILES = 500


@dataclass(frozen=True)
class Solution:
    """A read solution archive."""

    manifest: dict[str, Any]
    files: dict[str, str]


async def export_solution(
    session: AsyncSession, bot_id: str, *, managed: bool, version: str = "1.0.0"
) -> bytes:
    """The newest published version of a bot as a solution zip."""
    bot = await session.get(BotRow, bot_id)
    latest = await get_latest_version(session, bot_id)
    if bot is None or latest is None:
        raise AdminError("NotPublished", f"bot '{bot_id}' has no published version to export", status=404)
    files = await get_version_files(session, bot_id, latest)
    assert files is not None
    connection = await session.get(BotConnectionRow, bot_id)
    manifest = {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "solution": {"name": f"{bot_id}-solution", "version": version, "managed": managed},
        "bot": {"id": bot_id, "name": bot.name, "publishedVersion": latest},
        "sourceEnvironment": bot.environment_id,
        # Connection settings travel without secrets: the app id is public, the app password never leaves.
        "connection": None
        if connection is None
        else {
            "omnichannelEnvironment": connection.environment_id,
            "appId": connection.app_id,
            "state": connection.state,
            "voiceEnabled": connection.voice_enabled,
        },
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
        for path, text in sorted(files.items()):
            archive.writestr(f"bot/{path}", text)
    return buffer.getvalue()


def read_solution(data: bytes) -> Solution:
    """Open and check a solution zip; every problem is a clear refusal, never a crash."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise AdminError("TooLarge", f"the solution is {len(data)} bytes; the limit is {MAX_ARCHIVE_BYTES}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise AdminError("BadSolution", "this is not a solution file (not a zip archive)") from error
    with archive:
        names = archive.namelist()
        if len(names) > MAX_FILES:
            raise AdminError("BadSolution", f"the solution has {len(names)} files; at most {MAX_FILES}")
        if "manifest.json" not in names:
            raise AdminError("BadSolution", "the solution has no manifest.json")
        try:
            manifest = json.loads(archive.read("manifest.json"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise AdminError("BadSolution", f"manifest.json is not valid JSON: {error}") from error
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise AdminError("BadSolution", f"manifest.json is not a {FORMAT} manifest")
        if manifest.get("formatVersion") != FORMAT_VERSION:
            raise AdminError(
                "BadSolution",
                f"solution format version {manifest.get('formatVersion')} is not "
                f"supported (this Warmline reads version {FORMAT_VERSION})",
            )
        files = {}
        for name in names:
            if name.startswith("bot/") and not name.endswith("/"):
                relative = name[4:]
                if ".." in relative.split("/") or relative.startswith("/"):
                    raise AdminError("BadSolution", f"unsafe path in solution: {name}")
                files[relative] = archive.read(name).decode("utf-8")
    if "bot.yaml" not in files:
        raise AdminError("BadSolution", "the solution has no bot/bot.yaml")
    return Solution(manifest, files)


def effective_files(layers: dict[str, dict[str, str]]) -> dict[str, str]:
    """The bot as it runs: the managed base with unmanaged edits on top, file by file."""
    return {**layers.get(MANAGED, {}), **layers.get(UNMANAGED, {})}


async def _layers(session: AsyncSession, bot_id: str) -> dict[str, BotLayerRow]:
    rows = await session.scalars(select(BotLayerRow).where(BotLayerRow.bot_id == bot_id))
    return {row.layer: row for row in rows}


async def _publish_effective(tx: Transaction, bot_id: str, now: datetime) -> int:
    layers = {name: dict(row.files) for name, row in (await _layers(tx.session, bot_id)).items()}
    try:
        return (await do_publish_bot(tx, bot_id, effective_files(layers), now)).version
    except PublishRefused as refused:
        raise AdminError(
            "InvalidBot", "the bot does not validate: " + "; ".join(str(p) for p in refused.problems[:10])
        ) from refused


async def do_import_solution(
    tx: Transaction,
    actor: Actor,
    data: bytes,
    environment_id: str,
    now: datetime,
    *,
    bot_id: str | None = None,
) -> dict[str, Any]:
    """Import into an environment; managed → base layer, unmanaged → editable layer; then publish.

    Bot ids are unique in a deployment, so importing into another environment of the same
    deployment needs ``bot_id`` (the id the bot gets there).
    """
    require_admin(actor, "Importing a solution")
    if await tx.session.get(EnvironmentRow, environment_id) is None:
        raise AdminError("NotFound", f"no environment '{environment_id}'", status=404)
    solution = read_solution(data)
    _, problems = check_bot(solution.files, root="solution")
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise AdminError(
            "InvalidBot", "the solution's bot does not validate: " + "; ".join(map(str, errors[:10]))
        )
    bot_id = bot_id or str(solution.manifest["bot"]["id"])
    managed = bool(solution.manifest["solution"].get("managed"))
    bot = await tx.session.get(BotRow, bot_id)
    if bot is None:
        tx.session.add(
            BotRow(
                id=bot_id,
                name=str(solution.manifest["bot"].get("name", bot_id)),
                environment_id=environment_id,
                created_at=now,
            )
        )
        await tx.session.flush()
    elif bot.environment_id not in (None, environment_id):
        raise AdminError(
            "WrongEnvironment",
            f"bot '{bot_id}' already lives in '{bot.environment_id}'; import into "
            "that environment or give the bot another id here (--as-bot)",
            status=409,
        )
    else:
        bot.environment_id = environment_id
    layers = await _layers(tx.session, bot_id)
    layer = MANAGED if managed else UNMANAGED
    if not managed and MANAGED in layers:
        raise AdminError(
            "ManagedBot",
            f"bot '{bot_id}' is managed here; an unmanaged import would hide the managed "
            "base: customise it instead, or import a managed solution",
            status=409,
        )
    row = layers.get(layer)
    info = solution.manifest["solution"]
    if row is None:
        tx.session.add(
            BotLayerRow(
                bot_id=bot_id,
                layer=layer,
                solution=str(info.get("name")),
                solution_version=str(info.get("version")),
                files=solution.files,
                source_environment=solution.manifest.get("sourceEnvironment"),
                updated_at=now,
            )
        )
    else:
        row.files, row.solution_version, row.updated_at = solution.files, str(info.get("version")), now
    await tx.session.flush()
    version = await _publish_effective(tx, bot_id, now)
    audit(
        tx,
        actor,
        "solution.imported",
        bot_id,
        now,
        {
            "environment": environment_id,
            "managed": managed,
            "version": info.get("version"),
            # Kept so the Agent transfers tile can say, later, what the import means for the connection.
            "connection": solution.manifest.get("connection"),
        },
    )
    return {
        "bot": bot_id,
        "layer": layer,
        "publishedVersion": version,
        "connection": await connection_status(tx.session, bot_id, solution.manifest.get("connection")),
    }


async def do_customize_bot(
    tx: Transaction, actor: Actor, bot_id: str, files: dict[str, str], now: datetime
) -> int:
    """Edit a bot in this environment: on a managed bot the edits form the unmanaged layer."""
    require_admin(actor, "Customizing a bot")
    layers = await _layers(tx.session, bot_id)
    if MANAGED not in layers:
        try:
            return (await do_publish_bot(tx, bot_id, files, now)).version
        except PublishRefused as refused:
            raise AdminError(
                "InvalidBot", "the bot does not validate: " + "; ".join(str(p) for p in refused.problems[:10])
            ) from refused
    base = dict(layers[MANAGED].files)
    changed = {path: text for path, text in files.items() if base.get(path) != text}
    row = layers.get(UNMANAGED)
    if row is None:
        tx.session.add(
            BotLayerRow(
                bot_id=bot_id,
                layer=UNMANAGED,
                solution="Active",
                solution_version="0",
                files=changed,
                source_environment=None,
                updated_at=now,
            )
        )
    else:
        row.files, row.updated_at = changed, now
    await tx.session.flush()
    version = await _publish_effective(tx, bot_id, now)
    audit(tx, actor, "bot.customized", bot_id, now, {"files": sorted(changed)})
    return version


async def list_layers(session: AsyncSession, bot_id: str) -> list[dict[str, Any]]:
    """A bot's layers, base first."""
    layers = await _layers(session, bot_id)
    return [
        {
            "layer": name,
            "solution": row.solution,
            "version": row.solution_version,
            "files": sorted(row.files),
            "updated_at": row.updated_at.isoformat(),
        }
        for name, row in sorted(layers.items(), key=lambda item: item[0] != MANAGED)
    ]


async def do_remove_unmanaged_layer(tx: Transaction, actor: Actor, bot_id: str, now: datetime) -> int:
    """Revert a managed bot to exactly its managed state."""
    require_admin(actor, "Removing an unmanaged layer")
    layers = await _layers(tx.session, bot_id)
    if MANAGED not in layers:
        raise AdminError("NotManaged", f"bot '{bot_id}' has no managed layer", status=409)
    if UNMANAGED not in layers:
        raise AdminError("NoUnmanagedLayer", f"bot '{bot_id}' has no unmanaged layer to remove", status=404)
    await tx.session.delete(layers[UNMANAGED])
    await tx.session.flush()
    version = await _publish_effective(tx, bot_id, now)
    audit(tx, actor, "solution.unmanaged_removed", bot_id, now)
    return version


CANNOT_DETERMINE = (
    "We can't determine if omnichannel integration is enabled for this environment. "
    "If the exported bot had it enabled, you can ignore this: the bot works. "
    "The message disappears after you export the latest version from development and import it here "
    "as managed; if it stays, remove the unmanaged layer "
    "(`warmline solution remove-unmanaged-layer BOT`). "
    "If the bot doesn't have omnichannel enabled, this always shows."
)


async def connection_status(
    session: AsyncSession, bot_id: str, exported: dict[str, Any] | None
) -> dict[str, Any]:
    """What the connection tile should say after an import; says why when it can't be determined."""
    connection = await session.get(BotConnectionRow, bot_id)
    if connection is not None:
        user = await session.get(ApplicationUserRow, (connection.environment_id, connection.app_id))
        active = user is not None and user.state == "active" and connection.state == ConnectionState.ENABLED
        return {
            "status": "connected" if active else connection.state,
            "environment": connection.environment_id,
        }
    layers = await _layers(session, bot_id)
    if exported and exported.get("state") == ConnectionState.ENABLED:
        if UNMANAGED in layers:
            return {
                "status": "unknown",
                "message": CANNOT_DETERMINE,
                "resolution": f"warmline solution remove-unmanaged-layer {bot_id}",
            }
        return {
            "status": "not-connected",
            "message": "the bot was connected in its source environment; connect it "
            "here with an application id registered for this environment (`warmline connect`)",
        }
    return {"status": "not-connected", "message": "the bot has no omnichannel connection"}
