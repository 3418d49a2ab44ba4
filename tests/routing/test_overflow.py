"""Overflow at its edges: work-item limit, out of operating hours, waited too long, average wait.

Time is injected: routing happens at chosen instants and timers fire through ``do_run_due_timers``
with a chosen ``now``.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.routing.invariants import check
from warmline.conversations.actions import do_create_conversation
from warmline.conversations.model import Customer
from warmline.routing.actions import (
    RouteDecision,
    do_accept_offer,
    do_close_conversation,
    do_route_conversation,
    do_run_due_timers,
    do_set_presence,
    do_transfer_to_queue,
)
from warmline.routing.config import do_apply_config
from warmline.routing.model import ContactCenter
from warmline.store import Database
from warmline.store.schema import ActivityRow, AgentRow, ConversationRow, OfferRow, TransitionRow

THURSDAY = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def center(general: dict[str, Any], *, workstream_type: str = "messaging", **extra: Any) -> ContactCenter:
    """Queue ``general`` (with the given overflow settings), a plain ``spill`` queue, one agent each."""
    return ContactCenter.model_validate(
        {
            "environment": "placeholder",
            "operating_hours": [
                {
                    "id": "office",
                    "name": "Office",
                    "timezone": "Europe/Paris",
                    "week": {
                        d: [("09:00", "17:00")]
                        for d in ("monday", "tuesday", "wednesday", "thursday", "friday")
                    },
                    "holidays": [{"name": "Christmas", "start": "2026-12-25"}],
                }
            ],
            "queues": [
                {"id": "general", "name": "General", "type": workstream_type, **general},
                {"id": "spill", "name": "Spill", "type": workstream_type},
            ],
            "workstreams": [
                {
                    "id": "chat",
                    "name": "Chat",
                    "type": workstream_type,
                    "fallback_queue": "general",
                    "offer_timeout_seconds": 120,
                }
            ],
            "agents": [
                {"id": "gus", "name": "Gus", "queues": ["general"]},
                {"id": "sue", "name": "Sue", "queues": ["spill"]},
            ],
            **extra,
        }
    )


async def apply(db: Database, config: ContactCenter) -> str:
    """Apply under a fresh environment id (parsed configurations are cached per id and version)."""
    config = config.model_copy(update={"environment": f"ovf-{secrets.token_hex(5)}"})
    async with db.transaction() as tx:
        await do_apply_config(tx, config, THURSDAY - timedelta(days=30))
    return config.environment


async def route(db: Database, environment: str, conversation_id: str, now: datetime) -> RouteDecision:
    async with db.transaction() as tx:
        await do_create_conversation(
            tx, conversation_id=conversation_id, channel="directline", customer=Customer(id="u1"), now=now
        )
        return await do_route_conversation(
            tx, conversation_id, environment=environment, workstream_id="chat", variables={}, now=now
        )


async def row(db: Database, conversation_id: str) -> ConversationRow:
    async with db.reading() as session:
        found = await session.get(ConversationRow, conversation_id)
    assert found is not None
    return found


async def texts(db: Database, conversation_id: str) -> list[tuple[str, str | None]]:
    async with db.reading() as session:
        rows = await session.scalars(
            select(ActivityRow)
            .where(ActivityRow.conversation_id == conversation_id)
            .order_by(ActivityRow.seq)
        )
        return [(a.type, a.payload.get("text")) for a in rows]


async def fire(db: Database, now: datetime) -> int:
    async with db.transaction() as tx:
        return await do_run_due_timers(tx, now)


async def available(db: Database, environment: str, agent_id: str, now: datetime) -> None:
    async with db.transaction() as tx:
        await do_set_presence(tx, environment, agent_id, "Available", now)


async def assert_invariants(db: Database, environment: str) -> None:
    problems = await check(db, environment)
    assert not problems, "\n".join(problems)


# --- work-item limit ------------------------------------------------------------------------------


async def test_the_work_item_limit_admits_up_to_the_limit_and_transfers_the_next(db: Database) -> None:
    environment = await apply(
        db,
        center(
            {
                "pre_queue_overflow": {
                    "work_item_limit": 2,
                    "action": {"kind": "transfer-to-queue", "queue": "spill"},
                }
            }
        ),
    )
    assert (await route(db, environment, "c1", THURSDAY)).queue_id == "general"
    assert (await route(db, environment, "c2", THURSDAY)).queue_id == "general"  # exactly at the limit
    third = await route(db, environment, "c3", THURSDAY)
    assert third.queue_id == "spill"
    assert "queue has 2 waiting (limit 2)" in third.reason
    assert ((await row(db, "c3")).state, (await row(db, "c3")).queue_id) == ("waiting", "spill")
    # One leaves: the queue is below its limit again and admits the next arrival.
    async with db.transaction() as tx:
        await do_close_conversation(tx, "c1", "customer", "customer left", THURSDAY)
    assert (await route(db, environment, "c4", THURSDAY)).queue_id == "general"
    assert (await route(db, environment, "c5", THURSDAY)).queue_id == "spill"
    await assert_invariants(db, environment)


async def test_the_work_item_limit_can_end_the_conversation_with_a_message(db: Database) -> None:
    sorry = "Sorry, we're very busy right now. Please try again later."
    environment = await apply(
        db,
        center(
            {
                "pre_queue_overflow": {
                    "work_item_limit": 1,
                    "action": {"kind": "end-conversation", "message": sorry},
                }
            }
        ),
    )
    assert (await route(db, environment, "c1", THURSDAY)).queue_id == "general"
    decision = await route(db, environment, "c2", THURSDAY)
    assert (decision.queue_id, decision.ended) == (None, True)
    ended = await row(db, "c2")
    assert (ended.state, ended.owner, ended.queue_id) == ("closed", "nobody", None)
    assert (await texts(db, "c2"))[-2:] == [("message", sorry), ("endOfConversation", None)]
    async with db.reading() as session:
        [step] = await session.scalars(select(TransitionRow).where(TransitionRow.conversation_id == "c2"))
    assert (step.from_state, step.to_state) == ("open", "closed")
    assert "limit 1" in step.reason
    await assert_invariants(db, environment)


async def test_the_work_item_limit_counts_only_waiting_work(db: Database) -> None:
    environment = await apply(
        db,
        center(
            {
                "pre_queue_overflow": {
                    "work_item_limit": 1,
                    "action": {"kind": "transfer-to-queue", "queue": "spill"},
                }
            }
        ),
    )
    await available(db, environment, "gus", THURSDAY)
    await route(db, environment, "c1", THURSDAY)
    async with db.reading() as session:
        [offer] = await session.scalars(select(OfferRow).where(OfferRow.conversation_id == "c1"))
    async with db.transaction() as tx:
        await do_accept_offer(tx, offer.id, "gus", THURSDAY)
    # c1 is active with Gus now, not waiting: the queue is empty again.
    assert (await route(db, environment, "c2", THURSDAY)).queue_id == "general"
    assert (await route(db, environment, "c3", THURSDAY)).queue_id == "spill"
    await assert_invariants(db, environment)


# --- operating hours --------------------------------------------------------------------------------

PARIS_OPENS = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # Thursday 09:00 in Paris (UTC+1 in November)
PARIS_CLOSES = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)  # 17:00 in Paris


@pytest.mark.parametrize(
    ("at", "queue"),
    [
        (PARIS_OPENS - timedelta(seconds=1), "spill"),  # 08:59:59
        (PARIS_OPENS - TICK, "spill"),
        (PARIS_OPENS, "general"),  # 09:00:00
        (PARIS_CLOSES - TICK, "general"),
        (PARIS_CLOSES, "spill"),  # 17:00:00
        (datetime(2026, 11, 28, 10, 0, tzinfo=UTC), "spill"),  # Saturday
        (datetime(2026, 12, 25, 10, 0, tzinfo=UTC), "spill"),  # a holiday on a Friday
    ],
)
async def test_out_of_hours_transfers_at_the_edges_of_the_day(db: Database, at: datetime, queue: str) -> None:
    environment = await apply(
        db,
        center(
            {
                "operating_hours": "office",
                "pre_queue_overflow": {"out_of_hours": {"kind": "transfer-to-queue", "queue": "spill"}},
            }
        ),
    )
    decision = await route(db, environment, "c1", at)
    assert decision.queue_id == queue
    assert ("out of operating hours" in decision.reason) is (queue == "spill")
    await assert_invariants(db, environment)


async def test_out_of_hours_can_end_the_conversation(db: Database) -> None:
    closed = "We're closed. Our hours are 9:00 to 17:00, Monday to Friday."
    environment = await apply(
        db,
        center(
            {
                "operating_hours": "office",
                "pre_queue_overflow": {"out_of_hours": {"kind": "end-conversation", "message": closed}},
            }
        ),
    )
    late = await route(db, environment, "late", PARIS_CLOSES)
    assert late.ended and late.queue_id is None
    assert (await row(db, "late")).state == "closed"
    assert ("message", closed) in await texts(db, "late")
    on_time = await route(db, environment, "on-time", PARIS_CLOSES - TICK)
    assert not on_time.ended and on_time.queue_id == "general"
    await assert_invariants(db, environment)


async def test_out_of_hours_assign_anyway_queues_as_usual(db: Database) -> None:
    environment = await apply(
        db,
        center(
            {
                "operating_hours": "office",
                "pre_queue_overflow": {"out_of_hours": {"kind": "assign-anyway"}},
            }
        ),
    )
    await available(db, environment, "gus", PARIS_CLOSES)
    decision = await route(db, environment, "c1", PARIS_CLOSES + timedelta(hours=3))
    assert decision.queue_id == "general" and "out of operating hours" in decision.reason
    async with db.reading() as session:
        [offer] = await session.scalars(select(OfferRow).where(OfferRow.conversation_id == "c1"))
    assert (offer.agent_id, offer.state) == ("gus", "pending")
    await assert_invariants(db, environment)


# --- waited too long in the queue ---------------------------------------------------------------------


def waiting_limit(kind: str = "transfer-to-queue", **action: Any) -> ContactCenter:
    target = {"queue": "spill"} if kind == "transfer-to-queue" else {}
    return center({"in_queue_overflow": {"wait_seconds": 60, "action": {"kind": kind, **target, **action}}})


async def test_the_wait_timer_fires_at_exactly_wait_seconds(db: Database) -> None:
    environment = await apply(db, waiting_limit())
    await route(db, environment, "c1", THURSDAY)
    assert await fire(db, THURSDAY + timedelta(seconds=60) - TICK) == 0
    assert (await row(db, "c1")).queue_id == "general"
    assert await fire(db, THURSDAY + timedelta(seconds=60)) == 1
    moved = await row(db, "c1")
    assert (moved.state, moved.queue_id, moved.queued_at) == (
        "waiting",
        "spill",
        THURSDAY + timedelta(seconds=60),
    )
    assert moved.routing is not None and moved.routing["reason"] == "waited over 60 s in 'general'"
    assert await fire(db, THURSDAY + timedelta(hours=1)) == 0  # fired once; spill has no limit
    await assert_invariants(db, environment)


async def test_the_wait_timer_withdraws_an_open_offer_and_frees_the_agent(db: Database) -> None:
    environment = await apply(db, waiting_limit())
    await available(db, environment, "gus", THURSDAY)
    await available(db, environment, "sue", THURSDAY)
    await route(db, environment, "c1", THURSDAY)  # offered to Gus for 120 s
    assert await fire(db, THURSDAY + timedelta(seconds=60)) == 1
    async with db.reading() as session:
        offers = list(
            await session.scalars(
                select(OfferRow).where(OfferRow.conversation_id == "c1").order_by(OfferRow.created_at)
            )
        )
        gus = await session.get(AgentRow, (environment, "gus"))
    assert [(o.agent_id, o.state, o.queue_id) for o in offers] == [
        ("gus", "withdrawn", "general"),
        ("sue", "pending", "spill"),
    ]
    assert gus is not None and gus.load_messaging == 0
    await assert_invariants(db, environment)


async def test_the_wait_timer_ends_the_conversation_with_its_message(db: Database) -> None:
    message = "Sorry for the wait. We'll email you instead."
    environment = await apply(db, waiting_limit("end-conversation", message=message))
    await route(db, environment, "c1", THURSDAY)
    assert await fire(db, THURSDAY + timedelta(seconds=59)) == 0
    assert await fire(db, THURSDAY + timedelta(seconds=60)) == 1
    ended = await row(db, "c1")
    assert (ended.state, ended.owner) == ("closed", "nobody")
    assert (await texts(db, "c1"))[-2:] == [("message", message), ("endOfConversation", None)]
    await assert_invariants(db, environment)


async def test_an_accepted_conversation_never_overflows(db: Database) -> None:
    environment = await apply(db, waiting_limit("end-conversation", message="too late"))
    await available(db, environment, "gus", THURSDAY)
    await route(db, environment, "c1", THURSDAY)
    async with db.reading() as session:
        [offer] = await session.scalars(select(OfferRow).where(OfferRow.conversation_id == "c1"))
    async with db.transaction() as tx:
        await do_accept_offer(tx, offer.id, "gus", THURSDAY + timedelta(seconds=59))
    assert await fire(db, THURSDAY + timedelta(seconds=60)) == 0
    assert (await row(db, "c1")).state == "active"
    await assert_invariants(db, environment)


async def test_the_wait_timer_is_for_the_queue_it_was_set_in(db: Database) -> None:
    environment = await apply(db, waiting_limit("end-conversation", message="too late"))
    await route(db, environment, "c1", THURSDAY)
    async with db.transaction() as tx:
        await do_transfer_to_queue(
            tx, "c1", "spill", "supervisor:sam", None, THURSDAY + timedelta(seconds=30)
        )
    assert await fire(db, THURSDAY + timedelta(seconds=60)) == 1  # due, but c1 left 'general'
    moved = await row(db, "c1")
    assert (moved.state, moved.queue_id) == ("waiting", "spill")
    await assert_invariants(db, environment)


# --- average wait (voice) -------------------------------------------------------------------------------


async def test_average_wait_overflows_only_past_the_limit(db: Database) -> None:
    environment = await apply(
        db,
        center(
            {
                "pre_queue_overflow": {
                    "average_wait_seconds": 30,
                    "action": {"kind": "transfer-to-queue", "queue": "spill"},
                }
            },
            workstream_type="voice",
        ),
    )
    assert (await route(db, environment, "first", THURSDAY)).queue_id == "general"
    # The oldest caller has waited exactly 30 s: not over the limit yet.
    assert (await route(db, environment, "second", THURSDAY + timedelta(seconds=30))).queue_id == "general"
    third = await route(db, environment, "third", THURSDAY + timedelta(seconds=30) + TICK)
    assert third.queue_id == "spill" and "wait is over the limit" in third.reason
    await assert_invariants(db, environment)
