"""ALM: export from dev, import managed into prod, customise there, list and remove layers."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.admin.factories import ADMIN, AGENT, NOW, apply, contact_center, environment, publish_bot
from warmline.admin.actions import AdminError, do_connect_bot, do_register_app
from warmline.admin.alm import (
    CANNOT_DETERMINE,
    FORMAT,
    FORMAT_VERSION,
    do_customize_bot,
    do_import_solution,
    do_remove_unmanaged_layer,
    export_solution,
    list_layers,
    read_solution,
)
from warmline.bot.loader import read_bot_folder
from warmline.bot.publishing import get_latest_version, get_version_files
from warmline.bot.scripted import ScriptReport, run_script
from warmline.demo import DEMO_BOT_FOLDER
from warmline.store import Database

SCRIPT = DEMO_BOT_FOLDER / "tests" / "retail.test.yaml"
EDITED_HOURS = "Our stores are open every day from 8:00 to 22:00."


async def _published_files(db: Database, bot: str) -> dict[str, str]:
    async with db.reading() as session:
        version = await get_latest_version(session, bot)
        assert version is not None
        files = await get_version_files(session, bot, version)
    assert files is not None
    return files


async def _run_scripted_tests(db: Database, bot: str, folder: Path) -> ScriptReport:
    """The demo bot's scripted conversations against ``bot``'s effective published version."""
    _write_folder(folder, await _published_files(db, bot))
    return await run_script(SCRIPT, folder)


def _write_folder(folder: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def _failed(report: ScriptReport) -> list[str]:
    return [case.name for case in report.cases if not case.passed]


async def _dev_bot(db: Database) -> tuple[str, str]:
    """'retail' published in dev and connected to dev's omnichannel; returns the app id and secret."""
    await environment(db, "dev")
    await environment(db, "prod")
    await publish_bot(db, "retail", "dev")
    await apply(db, contact_center("dev", "retail"))
    async with db.transaction() as tx:
        app_id, secret = await do_register_app(tx, ADMIN, "retail dev", NOW)
    async with db.transaction() as tx:
        await do_connect_bot(tx, ADMIN, "retail", "dev", app_id, NOW)
    return app_id, secret


async def test_export_import_managed_customise_and_remove_the_unmanaged_layer(
    db: Database, tmp_path: Path
) -> None:
    app_id, secret = await _dev_bot(db)
    async with db.reading() as session:
        exported = await export_solution(session, "retail", managed=True, version="1.2.0")

    # The archive: a manifest and the bot's files; connection settings without secrets.
    solution = read_solution(exported)
    assert solution.files == read_bot_folder(DEMO_BOT_FOLDER)
    manifest = solution.manifest
    assert (manifest["format"], manifest["formatVersion"]) == (FORMAT, FORMAT_VERSION)
    assert manifest["solution"] == {"name": "retail-solution", "version": "1.2.0", "managed": True}
    assert manifest["bot"]["id"] == "retail" and manifest["sourceEnvironment"] == "dev"
    assert manifest["connection"] == {
        "omnichannelEnvironment": "dev",
        "appId": app_id,
        "state": "enabled",
        "voiceEnabled": False,
    }
    assert secret.encode() not in exported
    with zipfile.ZipFile(io.BytesIO(exported)) as archive:
        assert all(name == "manifest.json" or name.startswith("bot/") for name in archive.namelist())

    # Bot ids are unique in a deployment: prod gets the bot under its own id.
    async with db.transaction() as tx:
        refused = await _refused_import(tx, exported, "prod")
    assert refused.code == "WrongEnvironment" and "--as-bot" in refused.message
    async with db.transaction() as tx:
        imported = await do_import_solution(tx, ADMIN, exported, "prod", NOW, bot_id="retail-prod")
    assert (imported["bot"], imported["layer"], imported["publishedVersion"]) == ("retail-prod", "managed", 1)
    # Connected in dev, not here yet: the status says so and what to do.
    assert imported["connection"]["status"] == "not-connected"
    assert "connect it here" in imported["connection"]["message"]
    assert await _published_files(db, "retail-prod") == solution.files
    report = await _run_scripted_tests(db, "retail-prod", tmp_path / "imported")
    assert report.passed, [(c.name, c.failures) for c in report.cases if not c.passed]

    # Customise in prod: the changed file becomes the unmanaged layer on top of the managed base.
    edited = dict(solution.files)
    # The demo's text has en dashes (9:00\u201320:00): typeset times, as a bot author writes them.
    original = "Our stores are open Monday to Saturday 9:00\u201320:00 and Sunday 11:00\u201317:00."
    assert original in edited["topics/StoreHours.yaml"]
    edited["topics/StoreHours.yaml"] = edited["topics/StoreHours.yaml"].replace(original, EDITED_HOURS)
    async with db.transaction() as tx:
        assert await do_customize_bot(tx, ADMIN, "retail-prod", edited, NOW) == 2
    async with db.reading() as session:
        layers = await list_layers(session, "retail-prod")
    assert [(layer["layer"], layer["solution"], layer["version"]) for layer in layers] == [
        ("managed", "retail-solution", "1.2.0"),
        ("unmanaged", "Active", "0"),
    ]
    assert layers[1]["files"] == ["topics/StoreHours.yaml"]
    customised = await _run_scripted_tests(db, "retail-prod", tmp_path / "customised")
    assert _failed(customised) == ["store hours, then goodbye with CSAT"]

    # A newer managed import while the unmanaged layer stays: the seed's "can't determine" message.
    async with db.transaction() as tx:
        again = await do_import_solution(tx, ADMIN, exported, "prod", NOW, bot_id="retail-prod")
    assert again["connection"] == {
        "status": "unknown",
        "message": CANNOT_DETERMINE,
        "resolution": "warmline solution remove-unmanaged-layer retail-prod",
    }
    assert EDITED_HOURS in (await _published_files(db, "retail-prod"))["topics/StoreHours.yaml"]

    # Remove the unmanaged layer: the bot behaves exactly as exported.
    async with db.transaction() as tx:
        await do_remove_unmanaged_layer(tx, ADMIN, "retail-prod", NOW)
    async with db.reading() as session:
        assert [layer["layer"] for layer in await list_layers(session, "retail-prod")] == ["managed"]
    assert await _published_files(db, "retail-prod") == solution.files
    restored = await _run_scripted_tests(db, "retail-prod", tmp_path / "restored")
    assert restored.passed, _failed(restored)

    async with db.transaction() as tx:
        with pytest.raises(AdminError) as nothing:
            await do_remove_unmanaged_layer(tx, ADMIN, "retail-prod", NOW)
    assert nothing.value.code == "NoUnmanagedLayer"


async def _refused_import(tx: object, data: bytes, environment_id: str) -> AdminError:
    with pytest.raises(AdminError) as caught:
        await do_import_solution(tx, ADMIN, data, environment_id, NOW)  # type: ignore[arg-type]
    return caught.value


async def test_an_unmanaged_import_is_editable_and_cannot_hide_a_managed_bot(db: Database) -> None:
    await _dev_bot(db)
    async with db.reading() as session:
        unmanaged = await export_solution(session, "retail", managed=False)
        managed = await export_solution(session, "retail", managed=True)
    async with db.transaction() as tx:
        result = await do_import_solution(tx, ADMIN, unmanaged, "prod", NOW, bot_id="retail-copy")
    assert result["layer"] == "unmanaged"
    async with db.transaction() as tx:
        await do_import_solution(tx, ADMIN, managed, "prod", NOW, bot_id="retail-prod")
    async with db.transaction() as tx:
        with pytest.raises(AdminError) as caught:
            await do_import_solution(tx, ADMIN, unmanaged, "prod", NOW, bot_id="retail-prod")
    assert caught.value.code == "ManagedBot" and "customise it instead" in caught.value.message
    async with db.transaction() as tx:
        with pytest.raises(AdminError) as role:
            await do_import_solution(tx, AGENT, managed, "prod", NOW, bot_id="retail-x")
    assert role.value.status == 403
    async with db.transaction() as tx:
        with pytest.raises(AdminError) as customise:
            await do_customize_bot(tx, AGENT, "retail-prod", read_bot_folder(DEMO_BOT_FOLDER), NOW)
    assert customise.value.status == 403


def _zip(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in entries.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip", "not a zip archive"),
        (_zip({"bot/bot.yaml": "name: x\n"}), "no manifest.json"),
        (_zip({"manifest.json": "{", "bot/bot.yaml": "name: x\n"}), "not valid JSON"),
        (_zip({"manifest.json": json.dumps({"format": "other"})}), "not a warmline-solution manifest"),
        (
            _zip({"manifest.json": json.dumps({"format": FORMAT, "formatVersion": 99})}),
            "format version 99 is not supported",
        ),
        (
            _zip(
                {
                    "manifest.json": json.dumps({"format": FORMAT, "formatVersion": FORMAT_VERSION}),
                    "bot/../../etc/passwd": "x",
                }
            ),
            "unsafe path",
        ),
        (
            _zip({"manifest.json": json.dumps({"format": FORMAT, "formatVersion": FORMAT_VERSION})}),
            "no bot/bot.yaml",
        ),
    ],
)
def test_a_broken_solution_is_refused_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(AdminError) as caught:
        read_solution(data)
    assert caught.value.code == "BadSolution"
    assert message in caught.value.message
