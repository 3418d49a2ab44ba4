"""Pooled connections come back clean: a transaction left open is rolled back on return."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.util import greenlet_spawn

from warmline.store import Database


async def test_a_transaction_left_open_is_rolled_back_when_the_connection_returns(db: Database) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE reset_probe (x INTEGER)"))

    def leave_a_transaction_open() -> None:
        # A raw DBAPI connection bypasses the Connection/Session that would normally end it.
        raw = db.engine.sync_engine.raw_connection()
        cursor = raw.cursor()
        cursor.execute("INSERT INTO reset_probe VALUES (1)")
        cursor.close()
        raw.close()

    await greenlet_spawn(leave_a_transaction_open)
    async with db.transaction() as tx:
        await tx.session.execute(text("INSERT INTO reset_probe VALUES (2)"))
    async with db.reading() as session:
        rows = (await session.execute(text("SELECT x FROM reset_probe ORDER BY x"))).scalars().all()
    assert rows == [2]
