"""SIGKILL ``warmline serve`` with offers outstanding: nothing is lost, and the countdowns carry on.

Offers and their countdowns are rows (``offers``, ``timers``), so a restarted process's routing worker
finds them: an offer whose expiry passed while the server was down expires at once and the
conversation is offered to the next agent; one still running expires when it was due, not before.
The test drives routing through actions on the same database and watches the real server's work
there; it waits on real time only because the server runs on the real clock.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.routing.invariants import check
from tests.support import DatabaseUnderTest, ServerProcess
from warmline.conversations.actions import do_create_conversation
from warmline.conversations.model import Customer
from warmline.routing.actions import do_route_conversation, do_set_presence
from warmline.routing.config import do_apply_config
from warmline.routing.model import ContactCenter
from warmline.runtime import utc_now
from warmline.store import Database
from warmline.store.schema import ConversationRow, OfferRow

AGENTS = ("ava", "ben", "cat", "dan")
POLL_SECONDS = 30.0
START_SECONDS = 120.0  # a loaded machine can take a while to import and migrate


@pytest.fixture
def server(database: DatabaseUnderTest, tmp_path: Path) -> Iterator[ServerProcess]:
    """``warmline serve`` on the test's database; killed at teardown whatever happens."""
    process = ServerProcess(database.env(), tmp_path / "run")
    try:
        yield process
    finally:
        process.stop()


def contact_center(offer_timeout: int) -> ContactCenter:
    """One queue, four agents who take one chat at a time."""
    return ContactCenter.model_validate(
        {
            "environment": f"restart-{secrets.token_hex(4)}",
            "capacity_profiles": [{"id": "one", "name": "One chat", "messaging": 1}],
            "queues": [{"id": "line", "name": "Line"}],
            "workstreams": [
                {
                    "id": "chat",
                    "name": "Chat",
                    "fallback_queue": "line",
                    "offer_timeout_seconds": offer_timeout,
                }
            ],
            "agents": [
                {"id": agent, "name": agent.title(), "capacity_profile": "one", "queues": ["line"]}
                for agent in AGENTS
            ],
        }
    )


async def set_up(db: Database, offer_timeout: int) -> str:
    """Apply the contact center and make every agent Available, before any server runs."""
    center = contact_center(offer_timeout)
    now = utc_now()
    async with db.transaction() as tx:
        await do_apply_config(tx, center, now)
    for agent in AGENTS:
        async with db.transaction() as tx:
            await do_set_presence(tx, center.environment, agent, "Available", now)
    return center.environment


async def route(db: Database, environment: str, count: int) -> list[str]:
    """Hand ``count`` conversations to routing now: one offer per agent, the rest wait."""
    ids = [f"r{n}-{secrets.token_hex(3)}" for n in range(count)]
    for conversation_id in ids:
        async with db.transaction() as tx:
            now = utc_now()
            await do_create_conversation(
                tx, conversation_id=conversation_id, channel="directline", customer=Customer(id="u"), now=now
            )
            await do_route_conversation(
                tx, conversation_id, environment=environment, workstream_id="chat", variables={}, now=now
            )
    return ids


async def offers(db: Database, environment: str) -> list[OfferRow]:
    async with db.reading() as session:
        return list(
            await session.scalars(
                select(OfferRow).where(OfferRow.environment_id == environment).order_by(OfferRow.created_at)
            )
        )


async def states(db: Database, ids: list[str]) -> set[str]:
    async with db.reading() as session:
        return set(await session.scalars(select(ConversationRow.state).where(ConversationRow.id.in_(ids))))


async def assert_invariants(db: Database, environment: str) -> None:
    problems = await check(db, environment)
    assert not problems, "\n".join(problems)


async def all_waiting_and_offered(db: Database, environment: str, ids: list[str]) -> list[OfferRow]:
    """Every conversation still queued, every agent holding exactly one open offer."""
    assert await states(db, ids) == {"waiting"}
    pending = [o for o in await offers(db, environment) if o.state == "pending"]
    assert sorted(o.agent_id for o in pending) == sorted(AGENTS)
    await assert_invariants(db, environment)
    return pending


async def still_queued_or_offered(db: Database, environment: str, ids: list[str]) -> None:
    """Nothing lost: every conversation is waiting (offered or not) and every invariant holds.

    Checked while the server keeps working (the new offers have their own countdowns), so only
    what holds at any instant is asserted.
    """
    assert await states(db, ids) == {"waiting"}
    await assert_invariants(db, environment)


def summary(found: list[OfferRow]) -> list[tuple[str, str, str, str]]:
    return [(o.id, o.conversation_id, o.agent_id, o.state) for o in found]


async def wait_until_expired(db: Database, environment: str, first: list[OfferRow]) -> list[OfferRow]:
    """Poll (bounded) until the restarted server has expired every one of ``first``."""
    ids = {o.id for o in first}
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        history = await offers(db, environment)
        if all(o.state == "expired" for o in history if o.id in ids):
            return history
        if time.monotonic() > deadline:
            raise AssertionError(
                f"offers not expired within {POLL_SECONDS} s: {[(o.id, o.state) for o in history]}"
            )
        await asyncio.sleep(0.1)  # the server works on its own clock; there is nothing to await but it


async def wait_until_offered(db: Database, environment: str, expected: int) -> list[OfferRow]:
    """Poll (bounded) until ``expected`` offers are open again."""
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        history = await offers(db, environment)
        pending = [o for o in history if o.state == "pending"]
        if len(pending) >= expected:
            return pending
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(pending)} offers open after {POLL_SECONDS} s")
        await asyncio.sleep(0.1)


def assert_moved_on(first: list[OfferRow], pending: list[OfferRow]) -> None:
    """A conversation whose offer expired is never offered to that agent again."""
    before = {o.conversation_id: o.agent_id for o in first}
    for offer in pending:
        assert before.get(offer.conversation_id) != offer.agent_id, (first, pending)


async def wait_for_real_time(until: datetime) -> None:
    """The server runs on the real clock, so its countdowns need real time to pass."""
    await asyncio.sleep(max(0.0, (until - utc_now()).total_seconds()))


async def test_offers_that_expired_while_the_server_was_down_are_offered_again(
    server: ServerProcess, db: Database
) -> None:
    environment = await set_up(db, offer_timeout=5)
    await asyncio.to_thread(server.start, START_SECONDS)
    ids = await route(db, environment, 5)  # four offers out, one conversation waiting
    server.kill()

    # Down: every conversation is queued or offered, each open offer with its stored countdown.
    first = await all_waiting_and_offered(db, environment, ids)
    await wait_for_real_time(max(o.expires_at for o in first) + timedelta(seconds=0.5))
    assert [o.state for o in await offers(db, environment)] == ["pending"] * 4  # nobody to expire them

    await asyncio.to_thread(server.start, START_SECONDS)
    history = await wait_until_expired(db, environment, first)
    assert all(
        o.decided_at is not None and o.decided_at >= o.expires_at for o in history if o.state == "expired"
    )
    pending = await wait_until_offered(db, environment, len(AGENTS))
    assert_moved_on(first, pending)
    await still_queued_or_offered(db, environment, ids)


async def test_countdowns_resume_after_a_restart_and_end_when_due(
    server: ServerProcess, db: Database
) -> None:
    environment = await set_up(db, offer_timeout=20)
    await asyncio.to_thread(server.start, START_SECONDS)
    ids = await route(db, environment, 5)
    server.kill()
    first = await all_waiting_and_offered(db, environment, ids)
    await asyncio.to_thread(server.start, START_SECONDS)

    # Back up before the countdowns ran out (a restart takes a few seconds): the offers are still
    # open. Either way they expire when due, never before, and the work moves on.
    if utc_now() < min(o.expires_at for o in first) - timedelta(seconds=2):
        assert summary(await all_waiting_and_offered(db, environment, ids)) == summary(first)
    history = await wait_until_expired(db, environment, first)
    for offer in history:
        if offer.id in {o.id for o in first}:
            assert offer.decided_at is not None and offer.decided_at >= offer.expires_at
    pending = await wait_until_offered(db, environment, len(AGENTS))
    assert_moved_on(first, pending)
    await still_queued_or_offered(db, environment, ids)
