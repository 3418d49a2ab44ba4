"""Disable and Disconnect stop the bot's traffic: new chats no longer reach it."""

from __future__ import annotations

from tests.admin.factories import ADMIN, NOW, environment, publish_bot, register_app
from warmline.admin.actions import do_connect_bot, do_disable_bot_connection, do_disconnect_bot
from warmline.admin.model import Geography
from warmline.bot.publishing import do_attach_bot, pin_bot
from warmline.store import Database


async def _pinned(db: Database) -> tuple[str | None, int | None]:
    async with db.reading() as session:
        return await pin_bot(session, "demo")


async def test_disable_and_disconnect_stop_new_chats_reaching_the_bot(db: Database) -> None:
    await environment(db, "prod", Geography.EUROPE)
    await publish_bot(db, "retail", "prod")
    app_id = await register_app(db)
    async with db.transaction() as tx:
        await do_attach_bot(tx, "demo", "retail")
        await do_connect_bot(tx, ADMIN, "retail", "prod", app_id, NOW)
    assert await _pinned(db) == ("retail", 1)
    async with db.transaction() as tx:
        await do_disable_bot_connection(tx, ADMIN, "retail", False, NOW)
    assert await _pinned(db) == (None, None)
    async with db.transaction() as tx:
        await do_disable_bot_connection(tx, ADMIN, "retail", True, NOW)
    assert await _pinned(db) == ("retail", 1)
    async with db.transaction() as tx:
        await do_disconnect_bot(tx, ADMIN, "retail", NOW)
    assert await _pinned(db) == (None, None)
