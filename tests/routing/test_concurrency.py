"""Four routing workers at once over the same queues; afterwards (and during) every invariant holds.

On PostgreSQL each worker has its own ``Database`` (its own connection pool), so their transactions
really interleave: assignment cycles claim waiting conversations with ``FOR UPDATE SKIP LOCKED``
while the others accept, reject, end, close, change presence and fire timers. On SQLite the four
tasks share one ``Database`` and its writes serialize, so the test runs everywhere.

The clock is injected and moves in rounds: every worker uses the same ``now`` within a round and
all of them finish a round before the next begins, so offer history can be checked for overlaps
(a conversation offered to two agents at once) without clock skew between workers.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from tests.routing.invariants import check, offer_history, overlapping_offers
from tests.support import PG_URL_ENV, DatabaseUnderTest, provision_database
from warmline.conversations.actions import do_create_conversation
from warmline.conversations.model import Customer
from warmline.events import InProcessBus
from warmline.routing.actions import (
    RoutingError,
    do_accept_offer,
    do_assign_all,
    do_assign_queue,
    do_close_conversation,
    do_end_conversation,
    do_reject_offer,
    do_route_conversation,
    do_run_due_timers,
    do_set_presence,
)
from warmline.routing.config import do_apply_config, get_config
from warmline.routing.model import BasePresence, ContactCenter, WorkstreamType
from warmline.store import Database
from warmline.store.schema import AgentRow, ConversationRow, OfferRow

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ROUND = timedelta(seconds=5)
WORKERS = 4
QUEUES = ("q0", "q1", "q2")


def contact_center(agents: int, rng: random.Random) -> ContactCenter:
    """Three push queues with different methods and wrap-up rules; agents in one to three of them."""
    return ContactCenter.model_validate(
        {
            "environment": f"conc-{secrets.token_hex(4)}",
            "capacity_profiles": [
                {"id": f"cap{n}", "name": f"{n} chats", "messaging": n, "voice": 1} for n in (1, 2, 3)
            ],
            "queues": [
                {"id": "q0", "name": "Q0", "priority": 5, "assignment": "highest-capacity"},
                {
                    "id": "q1",
                    "name": "Q1",
                    "priority": 1,
                    "assignment": "round-robin",
                    "priority_aging_seconds": 20,
                },
                {
                    "id": "q2",
                    "name": "Q2",
                    "priority": 10,
                    "assignment": "least-active",
                    "in_queue_overflow": {
                        "wait_seconds": 60,
                        "action": {"kind": "transfer-to-queue", "queue": "q0"},
                    },
                },
            ],
            "workstreams": [
                {
                    "id": "chat",
                    "name": "Chat",
                    "fallback_queue": "q0",
                    "offer_timeout_seconds": 15,
                    "wrap_up_seconds": 10,
                    "rules": [
                        {"name": "one", "condition": "=Context.Q = 1", "queue": "q1"},
                        {"name": "two", "condition": "=Context.Q = 2", "queue": "q2"},
                    ],
                },
            ],
            "agents": [
                {
                    "id": f"agent-{n:02d}",
                    "name": f"Agent {n}",
                    "capacity_profile": f"cap{rng.randint(1, 3)}",
                    "queues": sorted(rng.sample(QUEUES, rng.randint(1, 3))),
                }
                for n in range(agents)
            ],
        }
    )


@dataclass
class Tally:
    """What the workers did: operations that changed something, refusals, and aborted transactions."""

    done: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    aborted: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)


@dataclass
class Run:
    """Shared settings of one concurrent run."""

    environment: str
    agents: list[str]
    rounds: int
    barrier: asyncio.Barrier
    tally: Tally

    def now(self, round_: int) -> datetime:
        return T0 + ROUND * round_


async def attempt(tally: Tally, name: str, action: Callable[[], Awaitable[Any]]) -> None:
    """Run one transaction, retrying it when the database aborted it (a deadlock victim)."""
    for _ in range(3):
        try:
            result = await action()
        except RoutingError:
            tally.refused[name] += 1
        except DBAPIError as error:
            # Rolled back whole, so nothing of it is visible to anyone: count it and run it again.
            cause = error.orig.__cause__ if error.orig is not None else None
            tally.aborted[f"{name}: {type(cause or error.orig).__name__}"] += 1
            continue
        else:
            if result is not False:
                tally.done[name] += 1
        return


async def rows(db: Database, environment: str, model: Any, *where: Any) -> list[Any]:
    async with db.reading() as session:
        return list(await session.scalars(select(model).where(model.environment_id == environment, *where)))


async def worker(db: Database, run: Run, index: int, share: list[str]) -> None:
    """Route its share of conversations a few per round, and act randomly on everyone's work."""
    rng = random.Random(index)
    per_round = -(-len(share) // (run.rounds // 2))
    env = run.environment
    for round_ in range(run.rounds):
        await run.barrier.wait()
        now = run.now(round_)
        for conversation_id in share[round_ * per_round : (round_ + 1) * per_round]:

            async def route(conversation_id: str = conversation_id, now: datetime = now) -> None:
                async with db.transaction() as tx:
                    await do_route_conversation(
                        tx,
                        conversation_id,
                        environment=env,
                        workstream_id="chat",
                        variables={"Context.Q": rng.randint(0, 2)},
                        now=now,
                        notify=False,
                    )

            await attempt(run.tally, "route", route)
        for _ in range(8):
            kind = rng.choices(
                ("accept", "reject", "end", "close", "assign-all", "assign-queue", "timers", "presence"),
                weights=(4, 1, 2, 2, 1, 1, 1, 1),
            )[0]
            await attempt(run.tally, kind, await operation(db, run, kind, now, rng))


async def operation(
    db: Database, run: Run, kind: str, now: datetime, rng: random.Random
) -> Callable[[], Awaitable[Any]]:
    """The transaction for one random operation, chosen from what is stored right now."""
    env = run.environment
    if kind in ("accept", "reject"):
        offers = await rows(db, env, OfferRow, OfferRow.state == "pending")
        if not offers:
            return _nothing
        offer = rng.choice(offers)

        async def decide() -> None:
            async with db.transaction() as tx:
                if kind == "accept":
                    await do_accept_offer(tx, offer.id, offer.agent_id, now)
                else:
                    await do_reject_offer(tx, offer.id, offer.agent_id, now)

        return decide
    if kind in ("end", "close"):
        states = ("active",) if kind == "end" else ("active", "wrap-up", "waiting")
        found = await rows(db, env, ConversationRow, ConversationRow.state.in_(states))
        if not found:
            return _nothing
        row = rng.choice(found)

        async def finish() -> None:
            async with db.transaction() as tx:
                if kind == "end":
                    await do_end_conversation(tx, row.id, f"agent:{row.agent_id}", now)
                else:
                    await do_close_conversation(tx, row.id, "customer", "customer left", now)

        return finish
    if kind == "presence":
        agent_id = rng.choice(run.agents)
        presence = rng.choice(("Available", "Available", "Away", "Busy"))

        async def set_presence() -> None:
            async with db.transaction() as tx:
                await do_set_presence(tx, env, agent_id, presence, now)

        return set_presence

    async def cycle() -> int:
        async with db.transaction() as tx:
            if kind == "timers":
                return await do_run_due_timers(tx, now)
            if kind == "assign-all":
                return await do_assign_all(tx, env, now)
            config = await get_config(tx.session, env)
            assert config is not None
            return len(await do_assign_queue(tx, config, rng.choice(QUEUES), now))

    return cycle


async def _nothing() -> bool:
    return False


async def sampler(db: Database, run: Run) -> None:
    """Check every invariant on a consistent snapshot once per round, while the workers write."""
    for _ in range(run.rounds):
        await run.barrier.wait()
        run.tally.violations.extend(await check(db, run.environment))


async def idle_agents_with_waiting_work(db: Database, environment: str) -> list[str]:
    """After a final cycle: waiting, unoffered work must have no agent who could take it."""
    async with db.reading() as session:
        config = await get_config(session, environment)
        assert config is not None
        agents = {
            a.id: a
            for a in await session.scalars(select(AgentRow).where(AgentRow.environment_id == environment))
        }
        offered = set(
            await session.scalars(select(OfferRow.conversation_id).where(OfferRow.state == "pending"))
        )
        waiting = await session.scalars(
            select(ConversationRow).where(
                ConversationRow.environment_id == environment, ConversationRow.state == "waiting"
            )
        )
        found = []
        for row in waiting:
            if row.id in offered:
                continue
            rejected = set((row.routing or {}).get("rejected", []))
            for agent_id in config.members.get(row.queue_id or "", []):
                agent = agents[agent_id]
                free = config.capacity(agent_id, WorkstreamType.MESSAGING) - agent.load_messaging
                if agent.presence == BasePresence.AVAILABLE and free >= 1 and agent_id not in rejected:
                    found.append(
                        f"{agent_id} is available with {free} free while {row.id} waits in {row.queue_id}"
                    )
        return found


async def concurrent_run(databases: list[Database], conversations: int, agents: int, rounds: int) -> Tally:
    """Apply a contact center, create the conversations, and let four workers loose on them."""
    rng = random.Random(2026)
    first = databases[0]
    center = contact_center(agents, rng)
    async with first.transaction() as tx:
        await do_apply_config(tx, center, T0 - timedelta(days=1))
    environment = center.environment
    agent_ids = [a.id for a in center.agents]
    for agent_id in agent_ids:
        async with first.transaction() as tx:
            await do_set_presence(tx, environment, agent_id, "Available", T0)
    ids = [f"k{n:04d}" for n in range(conversations)]
    async with first.transaction() as tx:
        for conversation_id in ids:
            await do_create_conversation(
                tx,
                conversation_id=conversation_id,
                channel="directline",
                customer=Customer(id=conversation_id),
                now=T0,
            )
    tally = Tally()
    run = Run(environment, agent_ids, rounds, asyncio.Barrier(WORKERS + 1), tally)
    await asyncio.gather(
        *(worker(databases[i % len(databases)], run, i, ids[i::WORKERS]) for i in range(WORKERS)),
        sampler(first, run),
    )
    final = run.now(rounds)
    async with first.transaction() as tx:
        await do_run_due_timers(tx, final)
    async with first.transaction() as tx:
        await do_assign_all(tx, environment, final)
    tally.violations.extend(await check(first, environment))
    history = await offer_history(first, environment)
    tally.violations.extend(overlapping_offers(history))
    tally.violations.extend(await idle_agents_with_waiting_work(first, environment))
    async with first.reading() as session:
        states = Counter(
            await session.scalars(
                select(ConversationRow.state).where(ConversationRow.environment_id == environment)
            )
        )
    tally.done.update({f"final {state}": n for state, n in states.items()})
    tally.done["offers made"] = len(history)
    return tally


def assert_clean(tally: Tally, conversations: int) -> None:
    report = f"done={dict(tally.done)} refused={dict(tally.refused)} aborted={dict(tally.aborted)}"
    assert not tally.violations, "\n".join(tally.violations[:40]) + "\n" + report
    # The run did real work: every conversation was routed, offers were taken and finished.
    assert tally.done["route"] == conversations, report
    assert tally.done["accept"] >= conversations // 4, report
    assert tally.done["final closed"] > 0 and tally.done["final waiting"] + tally.done["final active"] > 0, (
        report
    )
    total = sum(tally.done.values()) + sum(tally.refused.values())
    # Aborted transactions are safe (rolled back, then retried), but they must stay the exception:
    # lock-order inversions between timers, offers and conversations once made a few percent.
    assert sum(tally.aborted.values()) <= total // 50, report


@pytest.mark.timeout(600)
@pytest.mark.skipif(not os.environ.get(PG_URL_ENV), reason=f"needs PostgreSQL: set {PG_URL_ENV}")
def test_four_workers_with_their_own_pools_on_postgresql(tmp_path: Path) -> None:
    with provision_database("postgresql", tmp_path) as database:
        tally = asyncio.run(_with_databases(database, WORKERS, conversations=300, agents=30, rounds=24))
    assert_clean(tally, 300)


@pytest.mark.timeout(600)
def test_four_tasks_sharing_one_sqlite_database(tmp_path: Path) -> None:
    with provision_database("sqlite", tmp_path) as database:
        tally = asyncio.run(_with_databases(database, 1, conversations=120, agents=12, rounds=16))
    assert_clean(tally, 120)


async def _with_databases(database: DatabaseUnderTest, count: int, **sizes: int) -> Tally:
    databases = [Database(database.url, InProcessBus(), schema=database.schema) for _ in range(count)]
    try:
        return await concurrent_run(databases, **sizes)
    finally:
        for db in databases:
            await db.dispose()
