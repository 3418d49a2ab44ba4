"""Property-based routing tests: random operation sequences keep every invariant; FIFO and aging order.

Each test keeps one migrated database (SQLite, or PostgreSQL when configured) and one event loop for
all its hypothesis examples; every example empties the routing tables and applies its contact
center under a fresh environment id (the parsed-config cache is keyed by environment and version).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from tests.routing.invariants import check, offer_history, overlapping_offers
from tests.support import DatabaseUnderTest
from warmline.conversations.actions import do_create_conversation
from warmline.conversations.model import Customer
from warmline.events import InProcessBus
from warmline.routing.actions import (
    RoutingError,
    do_accept_offer,
    do_assign_all,
    do_close_conversation,
    do_consult,
    do_end_conversation,
    do_force_assign,
    do_pick_conversation,
    do_reject_offer,
    do_route_conversation,
    do_run_due_timers,
    do_set_presence,
    do_transfer_to_agent,
    do_transfer_to_queue,
)
from warmline.routing.config import do_apply_config
from warmline.routing.model import ContactCenter
from warmline.store import Database
from warmline.store.schema import Base, ConversationRow, OfferRow

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
KEEP = {"widgets", "bots", "bot_versions"}  # the seeded demo widget; everything else is per example

AGENTS = ("ava", "ben", "cat", "dan")
QUEUES = ("general", "vip", "french", "big", "phone", "desk")
PRESENCES = ("Available", "Available", "Focused", "Busy", "Busy-DND", "Away", "Lunch", "Offline")
TIERS = ("gold", "french", "plain")


@dataclass
class Store:
    """One database and the loop that drives it, shared by a test's examples."""

    runner: asyncio.Runner
    db: Database

    def run(self, coroutine: Any) -> Any:
        return self.runner.run(coroutine)


@pytest.fixture
def store(database: DatabaseUnderTest) -> Iterator[Store]:
    with asyncio.Runner() as runner:
        db = Database(database.url, InProcessBus(), schema=database.schema)
        try:
            yield Store(runner, db)
        finally:
            runner.run(db.dispose())


async def fresh_environment(db: Database, document: dict[str, Any]) -> str:
    """Empty every routing and conversation table, then apply ``document`` as a new environment."""
    environment = f"p{secrets.token_hex(5)}"
    async with db.transaction() as tx:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in KEEP:
                await tx.session.execute(delete(table))
        await do_apply_config(tx, ContactCenter.model_validate({**document, "environment": environment}), NOW)
    return environment


def contact_center() -> dict[str, Any]:
    """Four agents over six queues: push and pick, messaging and voice, skills, overflow, aging."""
    return {
        "environment": "placeholder",
        "skills": [{"id": "billing", "name": "Billing"}, {"id": "french", "name": "French"}],
        "capacity_profiles": [
            {"id": "one", "name": "One", "messaging": 1, "voice": 1},
            {"id": "two", "name": "Two", "messaging": 2, "voice": 1},
            {"id": "four", "name": "Four", "messaging": 4, "voice": 0},
        ],
        "presences": [{"name": "Lunch", "base": "Away"}, {"name": "Focused", "base": "Available"}],
        "queues": [
            {"id": "general", "name": "General", "priority": 10},
            {
                "id": "vip",
                "name": "VIP",
                "priority": 1,
                "assignment": "round-robin",
                "in_queue_overflow": {
                    "wait_seconds": 120,
                    "action": {"kind": "transfer-to-queue", "queue": "general"},
                },
            },
            {
                "id": "french",
                "name": "French",
                "priority": 5,
                "assignment": "least-active",
                "skill_matching": "exact",
                "priority_aging_seconds": 60,
            },
            {"id": "big", "name": "Big", "skill_matching": "closest"},
            {"id": "phone", "name": "Phone", "type": "voice"},
            {"id": "desk", "name": "Desk"},
        ],
        "workstreams": [
            {
                "id": "chat",
                "name": "Chat",
                "fallback_queue": "general",
                "offer_timeout_seconds": 30,
                "wrap_up_seconds": 60,
                "auto_close_seconds": 600,
                "rules": [
                    {"name": "gold", "condition": '=Context.Tier = "gold"', "queue": "vip"},
                    {
                        "name": "french",
                        "condition": '=Context.Tier = "french"',
                        "queue": "french",
                        "skills": {"french": 3},
                        "priority": 2,
                    },
                ],
            },
            {
                "id": "video",
                "name": "Video",
                "fallback_queue": "big",
                "capacity_units": 2,
                "offer_timeout_seconds": 45,
                "rules": [
                    {
                        "name": "billing",
                        "condition": '=Context.Tier = "gold"',
                        "queue": "big",
                        "skills": {"billing": 4},
                    }
                ],
            },
            {
                "id": "voice",
                "name": "Voice",
                "type": "voice",
                "fallback_queue": "phone",
                "offer_timeout_seconds": 20,
                "wrap_up_seconds": 0,
            },
            {"id": "pick", "name": "Pick", "distribution": "pick", "fallback_queue": "desk"},
        ],
        "agents": [
            {
                "id": "ava",
                "name": "Ava",
                "capacity_profile": "two",
                "skills": {"billing": 5, "french": 3},
                "queues": ["general", "vip", "french", "big", "phone"],
            },
            {
                "id": "ben",
                "name": "Ben",
                "capacity_profile": "one",
                "queues": ["general", "big", "desk", "phone"],
            },
            {
                "id": "cat",
                "name": "Cat",
                "capacity_profile": "four",
                "skills": {"french": 5},
                "queues": ["vip", "french", "desk", "big"],
            },
            {
                "id": "dan",
                "name": "Dan",
                "skills": {"billing": 4},
                "queues": ["general", "vip", "big", "phone", "desk"],
            },
        ],
    }


# --- random operation sequences ------------------------------------------------------------------

_pick = st.integers(0, 63)  # which of the candidate conversations or offers, modulo their number
_route = st.tuples(
    st.just("route"), st.sampled_from(("chat", "chat", "video", "voice", "pick")), st.sampled_from(TIERS)
)
_accept = st.tuples(st.just("accept"), _pick)
_wait = st.tuples(st.just("wait"), st.sampled_from((1, 19, 20, 29, 30, 45, 60, 120, 600)))
_end = st.tuples(st.just("end"), _pick)
# Repeated branches weigh the draw towards what moves work along: arrivals, accepts, time, ends.
_operation = st.one_of(
    _route,
    _route,
    _route,
    _accept,
    _accept,
    _accept,
    _wait,
    _wait,
    _end,
    _end,
    st.tuples(st.just("reject"), _pick),
    st.tuples(st.just("close"), _pick),
    st.tuples(st.just("presence"), st.sampled_from(AGENTS), st.sampled_from(PRESENCES)),
    st.tuples(st.just("transfer-queue"), _pick, st.sampled_from(QUEUES)),
    st.tuples(st.just("transfer-agent"), _pick, st.sampled_from(AGENTS)),
    st.tuples(st.just("pick"), _pick, st.sampled_from(AGENTS)),
    st.tuples(st.just("force"), _pick, st.sampled_from(AGENTS)),
    st.tuples(st.just("reroute"), _pick, st.sampled_from(TIERS)),
    st.tuples(st.just("consult"), _pick, st.sampled_from(AGENTS)),
    st.tuples(st.just("sweep")),
)
# Each example starts by setting every agent's presence, mostly to one that takes work, and a
# few arrivals; then anything goes.
_opening = st.tuples(
    *(st.sampled_from(("Available", "Available", "Focused", *PRESENCES)) for _ in AGENTS)
).map(lambda chosen: [("presence", agent, presence) for agent, presence in zip(AGENTS, chosen, strict=True)])
operations = st.tuples(
    _opening, st.lists(_route, min_size=2, max_size=6), st.lists(_operation, min_size=5, max_size=30)
).map(lambda parts: parts[0] + parts[1] + parts[2])


def note(what: str) -> None:
    """Count it in hypothesis's statistics (``--hypothesis-show-statistics``) when under hypothesis."""
    if currently_in_test_context():
        event(what)


@dataclass
class Driver:
    """Applies operations one transaction each, at an injected clock that only moves on ``wait``."""

    db: Database
    environment: str
    now: datetime = NOW
    conversations: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def rows(self) -> list[ConversationRow]:
        async with self.db.reading() as session:
            return list(
                await session.scalars(
                    select(ConversationRow)
                    .where(ConversationRow.id.in_(self.conversations))
                    .order_by(ConversationRow.id)
                )
            )

    async def pending(self) -> list[OfferRow]:
        async with self.db.reading() as session:
            return list(
                await session.scalars(
                    select(OfferRow)
                    .where(OfferRow.environment_id == self.environment, OfferRow.state == "pending")
                    .order_by(OfferRow.conversation_id, OfferRow.created_at)
                )
            )

    async def route(self, conversation_id: str, workstream: str, tier: str) -> None:
        async with self.db.transaction() as tx:
            await do_route_conversation(
                tx,
                conversation_id,
                environment=self.environment,
                workstream_id=workstream,
                variables={"Context.Tier": tier},
                now=self.now,
            )

    async def apply(self, op: tuple[Any, ...]) -> None:
        """Run one operation; a RoutingError is a refusal the engine may legitimately give."""
        try:
            done = await self._apply(op)
        except RoutingError as error:
            self.refused.append(f"{op}: {error}")
            note(f"refused: {op[0]}")
        else:
            if done:
                note(f"done: {op[0]}")

    async def _apply(self, op: tuple[Any, ...]) -> bool:
        """Run it; False when there was nothing to apply it to."""
        kind, *args = op
        now = self.now
        if kind == "route":
            conversation_id = f"c{len(self.conversations):03d}"
            async with self.db.transaction() as tx:
                await do_create_conversation(
                    tx,
                    conversation_id=conversation_id,
                    channel="directline",
                    customer=Customer(id=conversation_id),
                    now=now,
                )
            self.conversations.append(conversation_id)
            await self.route(conversation_id, args[0], args[1])
        elif kind == "presence":
            async with self.db.transaction() as tx:
                await do_set_presence(tx, self.environment, args[0], args[1], now)
        elif kind in ("accept", "reject"):
            offers = await self.pending()
            if not offers:
                return False
            offer = offers[args[0] % len(offers)]
            action = do_accept_offer if kind == "accept" else do_reject_offer
            async with self.db.transaction() as tx:
                await action(tx, offer.id, offer.agent_id, now)
        elif kind == "wait":
            self.now += timedelta(seconds=args[0])
            fired = 0
            while True:
                async with self.db.transaction() as tx:
                    count = await do_run_due_timers(tx, self.now, limit=20)
                fired += count
                if count < 20:
                    return fired > 0
        elif kind == "sweep":
            async with self.db.transaction() as tx:
                await do_assign_all(tx, self.environment, now)
        else:
            rows = await self.rows()
            if kind == "end":
                rows = [r for r in rows if r.state == "active"]
            elif kind == "close":
                rows = [r for r in rows if r.state != "closed"]
            if not rows:
                return False
            row = rows[args[0] % len(rows)]
            async with self.db.transaction() as tx:
                if kind == "end":
                    await do_end_conversation(tx, row.id, f"agent:{row.agent_id}", now)
                elif kind == "close":
                    await do_close_conversation(tx, row.id, "test", "closed by the test", now)
                elif kind == "transfer-queue":
                    await do_transfer_to_queue(tx, row.id, args[1], "agent:test", "a note", now)
                elif kind == "transfer-agent":
                    await do_transfer_to_agent(tx, row.id, args[1], "agent:test", None, now)
                elif kind == "pick":
                    await do_pick_conversation(tx, self.environment, row.id, args[1], now)
                elif kind == "force":
                    await do_force_assign(tx, row.id, args[1], "sam", now)
                elif kind == "consult":
                    await do_consult(tx, row.id, args[1], "agent:test", now)
            if kind == "reroute":
                await self.route(row.id, (row.routing or {}).get("workstream", "chat"), args[1])
        return True


async def run_sequence(db: Database, ops: list[tuple[Any, ...]]) -> None:
    environment = await fresh_environment(db, contact_center())
    driver = Driver(db, environment)
    for step, op in enumerate(ops):
        await driver.apply(op)
        problems = await check(db, environment)
        assert not problems, f"after step {step} {op} (of {ops}):\n" + "\n".join(problems)
    problems = overlapping_offers(await offer_history(db, environment))
    assert not problems, "\n".join(problems)
    for state in sorted({row.state for row in await driver.rows()}):
        note(f"ends with a conversation {state}")


@pytest.mark.timeout(900)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_every_invariant_holds_after_every_operation(store: Store, ops: list[tuple[Any, ...]]) -> None:
    store.run(run_sequence(store.db, ops))


@pytest.mark.timeout(300)
def test_a_busy_afternoon_keeps_every_invariant(store: Store) -> None:
    """A fixed, long sequence touching every operation, so each run covers the same ground too."""
    day: list[tuple[Any, ...]] = [("presence", agent, "Available") for agent in AGENTS]
    for round_ in range(6):
        day += [
            ("route", "chat", TIERS[round_ % 3]),
            ("route", "video", "gold"),
            ("route", "voice", "plain"),
            ("route", "pick", "plain"),
            ("route", "chat", "gold"),
            ("accept", round_),
            ("reject", round_ + 1),
            ("pick", round_, AGENTS[round_ % 4]),
            ("wait", 30),
            ("accept", 0),
            ("transfer-queue", round_ + 2, QUEUES[round_ % 6]),
            ("transfer-agent", round_ + 3, AGENTS[(round_ + 1) % 4]),
            ("force", round_ + 4, AGENTS[(round_ + 2) % 4]),
            ("end", round_),
            ("presence", AGENTS[round_ % 4], PRESENCES[round_ % len(PRESENCES)]),
            ("reroute", round_ + 5, "gold"),
            ("wait", 60),
            ("close", round_),
            ("sweep",),
            ("wait", 120),
            ("presence", AGENTS[round_ % 4], "Available"),
        ]
    store.run(run_sequence(store.db, day))


# --- FIFO within a priority, and priority aging ---------------------------------------------------


def line_center(aging_seconds: int | None) -> dict[str, Any]:
    """One queue, one agent who takes one conversation at a time; Context.Level sets the priority."""
    return {
        "environment": "placeholder",
        "capacity_profiles": [{"id": "one", "name": "One", "messaging": 1}],
        "queues": [{"id": "line", "name": "Line", "priority": 10, "priority_aging_seconds": aging_seconds}],
        "workstreams": [
            {
                "id": "chat",
                "name": "Chat",
                "fallback_queue": "line",
                "wrap_up_seconds": 0,
                "offer_timeout_seconds": 3600,
                "rules": [
                    {
                        "name": f"level-{level}",
                        "condition": f"=Context.Level = {level}",
                        "queue": "line",
                        "priority": level,
                    }
                    for level in range(4)
                ],
            }
        ],
        "agents": [{"id": "solo", "name": "Solo", "capacity_profile": "one", "queues": ["line"]}],
    }


async def serve_one_at_a_time(
    db: Database, arrivals: list[tuple[int, int]], aging: int | None, service_seconds: int
) -> tuple[list[str], list[datetime], dict[str, datetime]]:
    """Route (level, gap) arrivals while the agent is away; then they take each offer in turn.

    Returns the order conversations were offered in, when each was offered, and when each was queued.
    """
    environment = await fresh_environment(db, line_center(aging))
    now, queued = NOW, {}
    for index, (level, gap) in enumerate(arrivals):
        now += timedelta(seconds=gap)
        conversation_id = f"c{index:02d}"
        async with db.transaction() as tx:
            await do_create_conversation(
                tx, conversation_id=conversation_id, channel="directline", customer=Customer(id="u"), now=now
            )
            await do_route_conversation(
                tx,
                conversation_id,
                environment=environment,
                workstream_id="chat",
                variables={"Context.Level": level},
                now=now,
            )
        queued[conversation_id] = now
    now += timedelta(seconds=1)
    async with db.transaction() as tx:
        await do_set_presence(tx, environment, "solo", "Available", now)
    order: list[str] = []
    offered_at: list[datetime] = []
    for _ in arrivals:
        async with db.reading() as session:
            offers = list(await session.scalars(select(OfferRow).where(OfferRow.state == "pending")))
        assert len(offers) == 1, (
            f"expected one offer after {order}, got {[o.conversation_id for o in offers]}"
        )
        [offer] = offers
        order.append(offer.conversation_id)
        offered_at.append(offer.created_at)
        async with db.transaction() as tx:
            await do_accept_offer(tx, offer.id, "solo", now)
        async with db.transaction() as tx:
            await do_end_conversation(tx, offer.conversation_id, "agent:solo", now)
        now += timedelta(seconds=service_seconds)
        async with db.transaction() as tx:
            await do_assign_all(tx, environment, now)
    assert not await check(db, environment)
    return order, offered_at, queued


_arrivals = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40)), min_size=2, max_size=6)


@pytest.mark.timeout(600)
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(arrivals=_arrivals)
def test_equal_priorities_are_offered_first_in_first_out(
    store: Store, arrivals: list[tuple[int, int]]
) -> None:
    order, _, _ = store.run(serve_one_at_a_time(store.db, arrivals, None, 30))
    # Smaller level first; within a level, in the order they were queued (ids follow arrival order).
    expected = sorted(
        (f"c{i:02d}" for i in range(len(arrivals))), key=lambda c: (arrivals[int(c[1:])][0], int(c[1:]))
    )
    assert order == expected


@pytest.mark.timeout(600)
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(arrivals=_arrivals, aging=st.integers(10, 90), service=st.integers(5, 120))
def test_priority_aging_lets_long_waiters_overtake(
    store: Store, arrivals: list[tuple[int, int]], aging: int, service: int
) -> None:
    order, offered_at, queued = store.run(serve_one_at_a_time(store.db, arrivals, aging, service))
    # Model: at each offer, the best (level minus one per full aging period waited, floor 0), then oldest.
    remaining = {f"c{i:02d}": level for i, (level, _) in enumerate(arrivals)}
    for conversation_id, moment in zip(order, offered_at, strict=True):

        def rank(c: str, moment: datetime = moment) -> tuple[int, datetime, str]:
            waited = int((moment - queued[c]).total_seconds())
            return max(0, remaining[c] - waited // aging), queued[c], c

        assert conversation_id == min(remaining, key=rank), (order, offered_at)
        del remaining[conversation_id]


def test_aging_lets_an_old_low_priority_conversation_overtake_a_new_urgent_one(store: Store) -> None:
    # Level 3 queued at 0 s, level 1 at 200 s; offered at 201 s. With 60 s aging the old one has
    # aged to max(0, 3 - 3) = 0 and goes first; without aging the urgent one does.
    arrivals = [(3, 0), (1, 200)]
    aged, _, _ = store.run(serve_one_at_a_time(store.db, arrivals, 60, 10))
    assert aged == ["c00", "c01"]
    plain, _, _ = store.run(serve_one_at_a_time(store.db, arrivals, None, 10))
    assert plain == ["c01", "c00"]
