"""The administration commands: environments, apps, connect, connection, voice, extensions, solutions."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

from typer.testing import CliRunner, Result

from tests.admin.factories import apply, contact_center
from tests.support import DatabaseUnderTest
from warmline.cli import app
from warmline.demo import DEMO_BOT_FOLDER
from warmline.events import InProcessBus
from warmline.store import Database


def _run(database: DatabaseUnderTest, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=database.env())


def _ok(database: DatabaseUnderTest, *args: str) -> str:
    result = _run(database, *args)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def _refused(database: DatabaseUnderTest, *args: str) -> str:
    result = _run(database, *args)
    assert result.exit_code == 1, (args, result.output)
    return result.output


def _apply_contact_center(database: DatabaseUnderTest, environment: str, bot: str) -> None:
    async def work() -> None:
        db = Database(database.url, InProcessBus(), schema=database.schema)
        try:
            await apply(db, contact_center(environment, bot))
        finally:
            await db.dispose()

    asyncio.run(work())


def test_set_up_connect_refresh_and_manage_a_bot_from_the_command_line(database: DatabaseUnderTest) -> None:
    assert "saved: United States" in _ok(database, "env", "create", "dev", "--name", "Development")
    _ok(database, "env", "create", "eu", "--geography", "europe")
    _ok(database, "env", "create", "mumbai", "--geography", "India")
    listing = _ok(database, "env", "list")
    assert re.search(r"^dev\tDevelopment\tUnited States\tomnichannel\tvoice supported", listing, re.M)
    assert re.search(r"^mumbai\t.*\tIndia\t.*voice not available", listing, re.M)

    registered = _ok(database, "apps", "register", "retail bot")
    app_id = re.search(r"Application \(client\) id: (\S+)", registered)
    assert app_id is not None and re.search(r"Secret:\s+\S{32,}", registered)

    _ok(database, "bot", "publish", str(DEMO_BOT_FOLDER), "--id", "retail")
    _ok(database, "bot", "place", "retail", "--environment", "dev")
    # Another geography: refused, with the reason, and exit 1.
    cross = _refused(database, "connect", "retail", "--environment", "eu", "--app-id", app_id[1])
    assert "Refused (GeographyMismatch)" in cross and "same geography" in cross

    connected = _ok(database, "connect", "retail", "--environment", "dev", "--app-id", app_id[1])
    assert f"connected to the omnichannel of 'dev' as application {app_id[1]}" in connected
    # No workstream has the bot yet: refresh says which check fails and exits 1.
    refresh = _refused(database, "connection", "refresh", "retail")
    assert "✗ attached to a workstream: no workstream has this bot" in refresh
    _apply_contact_center(database, "dev", "retail")
    refresh = _ok(database, "connection", "refresh", "retail")
    assert refresh.count("✓") == 6 and "✗" not in refresh

    status = _ok(database, "connection", "status", "retail")
    assert "Connection: enabled to 'dev'" in status and "Workstreams: chat" in status

    # A second bot with the same application id: error 1004.
    _ok(database, "bot", "publish", str(DEMO_BOT_FOLDER), "--id", "billing")
    duplicate = _refused(database, "connect", "billing", "--environment", "dev", "--app-id", app_id[1])
    assert "Refused (DuplicateBotAppId)" in duplicate and "1004" in duplicate

    assert "receives no traffic" in _ok(database, "connection", "disable", "retail")
    assert "Connection: disabled" in _ok(database, "connection", "status", "retail")
    assert "receives traffic" in _ok(database, "connection", "enable", "retail")

    voice = _ok(database, "voice", "enable", "retail")
    assert "Voice is on" in voice and "reconnected" in voice
    assert "Voice is off" in _ok(database, "voice", "disable", "retail")

    assert "application user is disabled" in _ok(database, "connection", "disconnect", "retail")
    assert "Connection: disconnected" in _ok(database, "connection", "status", "retail")

    # Voice outside the supported geographies is refused, not silently broken.
    _ok(database, "bot", "place", "billing", "--environment", "mumbai")
    refused_voice = _refused(database, "voice", "enable", "billing")
    assert "Refused (VoiceGeography)" in refused_voice and "India" in refused_voice


def test_extensions_in_order(database: DatabaseUnderTest) -> None:
    _ok(database, "env", "create", "cc")
    out_of_order = _refused(database, "extensions", "install", "cc", "omnichannel-voice-bot")
    assert "install telephony, omnichannel-bot before omnichannel-voice-bot" in out_of_order
    for name in ("telephony", "omnichannel-bot", "omnichannel-voice-bot"):
        assert f"Installed '{name}'" in _ok(database, "extensions", "install", "cc", name)
    listing = _ok(database, "extensions", "list", "cc").splitlines()
    assert [line.split("\t")[:2] for line in listing] == [
        ["telephony", "installed"],
        ["omnichannel-bot", "installed"],
        ["omnichannel-voice-bot", "installed"],
    ]
    in_use = _refused(database, "extensions", "uninstall", "cc", "omnichannel-bot")
    assert "needed by omnichannel-voice-bot" in in_use
    _ok(database, "extensions", "uninstall", "cc", "omnichannel-voice-bot")
    assert "omnichannel-voice-bot\tnot installed" in _ok(database, "extensions", "list", "cc")


def test_solution_export_import_customise_layers_and_remove(
    database: DatabaseUnderTest, tmp_path: Path
) -> None:
    _ok(database, "env", "create", "dev")
    _ok(database, "env", "create", "prod")
    _ok(database, "bot", "publish", str(DEMO_BOT_FOLDER), "--id", "retail")
    _ok(database, "bot", "place", "retail", "--environment", "dev")
    archive = tmp_path / "retail.zip"
    exported = _ok(
        database, "solution", "export", "retail", "--managed", "-o", str(archive), "--version", "2.0"
    )
    assert "managed solution (version 2.0)" in exported and archive.stat().st_size > 0

    imported = _ok(
        database, "solution", "import", str(archive), "--environment", "prod", "--as-bot", "retail-prod"
    )
    assert "Imported bot 'retail-prod' into 'prod' as the managed layer; published version 1." in imported
    assert "Connection: not-connected: the bot has no omnichannel connection" in imported
    layers = _ok(database, "solution", "layers", "retail-prod")
    assert layers.startswith("managed\tretail-solution 2.0\t")

    folder = tmp_path / "edited"
    shutil.copytree(DEMO_BOT_FOLDER, folder)
    hours = folder / "topics" / "StoreHours.yaml"
    hours.write_text(hours.read_text().replace("Monday to Saturday", "every day"), encoding="utf-8")
    assert "published version 2" in _ok(database, "bot", "customize", str(folder), "--id", "retail-prod")
    layers = _ok(database, "solution", "layers", "retail-prod").splitlines()
    assert layers[1] == "unmanaged\tActive 0\t1 file(s): topics/StoreHours.yaml"

    removed = _ok(database, "solution", "remove-unmanaged-layer", "retail-prod")
    assert "published version 3 (the managed state)" in removed
    assert len(_ok(database, "solution", "layers", "retail-prod").splitlines()) == 1
    again = _refused(database, "solution", "remove-unmanaged-layer", "retail-prod")
    assert "Refused (NoUnmanagedLayer)" in again

    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"nope")
    assert "not a zip archive" in _refused(
        database, "solution", "import", str(broken), "--environment", "prod"
    )
    assert "Refused (NotPublished)" in _refused(
        database, "solution", "export", "nope", "-o", str(tmp_path / "x.zip")
    )
