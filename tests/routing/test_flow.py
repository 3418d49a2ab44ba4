"""Routing end to end on the store: rules, offers, accept/reject/expire, capacity, transfer, wrap-up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.routing.factories import NOW, apply, contact_center, make_conversation
from warmline.routing.actions import (
    RoutingError,
    do_accept_offer,
    do_close_conversation,
    do_end_conversation,
    do_reject_offer,
    do_route_conversation,
    do_run_due_timers,
    do_set_presence,
    do_transfer_to_queue,
)
from warmline.store import Database
from warmline.store.schema import AgentRow, ConversationRow, OfferRow, TransitionRow


async def state(db: Database, conversation_id: str) -> ConversationRow:
    async with db.reading() as session:
        row = await session.get(ConversationRow, conversation_id)
    assert row is not None
    return row


async def offers(db: Database, conversation_id: str) -> list[OfferRow]:
    async with db.reading() as session:
        return list(
            await session.scalars(
                select(OfferRow)
                .where(OfferRow.conversation_id == conversation_id)
                .order_by(OfferRow.created_at)
            )
        )


async def agent(db: Database, agent_id: str) -> AgentRow:
    async with db.reading() as session:
        row = await session.get(AgentRow, ("env1", agent_id))
    assert row is not None
    return row


async def available(db: Database, *agents: str) -> None:
    for agent_id in agents:
        async with db.transaction() as tx:
            await do_set_presence(tx, "env1", agent_id, "Available", NOW)


async def route(db: Database, conversation_id: str, **variables: object) -> str | None:
    async with db.transaction() as tx:
        decision = await do_route_conversation(
            tx, conversation_id, environment="env1", workstream_id="chat", variables=variables, now=NOW
        )
    return decision.queue_id


async def test_rule_match_queues_and_offers_to_an_available_member(db: Database) -> None:
    await apply(db)
    await available(db, "cat")
    await make_conversation(db, "c1")
    assert await route(db, "c1", **{"Context.CustomerTier": "gold"}) == "vip"
    row = await state(db, "c1")
    assert (row.state, row.queue_id, row.owner) == ("waiting", "vip", "queue")
    assert row.routing is not None and row.routing["rule"] == "gold"
    assert "matched rule 'gold'" in row.routing["reason"]
    [offer] = await offers(db, "c1")
    assert (offer.agent_id, offer.state) == ("cat", "pending")
    assert offer.expires_at == NOW + timedelta(seconds=60)
    assert (await agent(db, "cat")).load_messaging == 1


async def test_no_rule_match_goes_to_the_fallback_queue(db: Database) -> None:
    await apply(db)
    await make_conversation(db, "c1")
    assert await route(db, "c1", **{"Context.CustomerTier": "silver"}) == "general"
    row = await state(db, "c1")
    assert row.routing is not None and "fallback" in row.routing["reason"]
    assert await offers(db, "c1") == []  # nobody is available yet


async def test_accept_makes_the_conversation_active_with_the_agent(db: Database) -> None:
    await apply(db)
    await available(db, "ben")
    await make_conversation(db, "c1")
    await route(db, "c1")
    [offer] = await offers(db, "c1")
    async with db.transaction() as tx:
        await do_accept_offer(tx, offer.id, "ben", NOW + timedelta(seconds=5))
    row = await state(db, "c1")
    assert (row.state, row.owner, row.agent_id) == ("active", "agent", "ben")
    async with db.reading() as session:
        steps = [
            (t.from_state, t.to_state)
            for t in await session.scalars(
                select(TransitionRow).where(TransitionRow.conversation_id == "c1").order_by(TransitionRow.id)
            )
        ]
    assert steps == [("open", "waiting"), ("waiting", "active")]


async def test_reject_moves_the_offer_to_the_next_agent_and_frees_capacity(db: Database) -> None:
    await apply(db)
    await available(db, "ava", "ben")
    await make_conversation(db, "c1")
    await route(db, "c1")
    [first] = await offers(db, "c1")
    async with db.transaction() as tx:
        await do_reject_offer(tx, first.id, first.agent_id, NOW)
    first_after, second = await offers(db, "c1")
    assert first_after.state == "rejected"
    assert second.state == "pending"
    assert second.agent_id != first.agent_id
    assert (await agent(db, first.agent_id)).load_messaging == 0
    assert (await agent(db, second.agent_id)).load_messaging == 1


async def test_offer_expiry_timer_moves_it_on(db: Database) -> None:
    await apply(db)
    await available(db, "ava", "ben")
    await make_conversation(db, "c1")
    await route(db, "c1")
    async with db.transaction() as tx:
        assert await do_run_due_timers(tx, NOW + timedelta(seconds=59)) == 0
    async with db.transaction() as tx:
        assert await do_run_due_timers(tx, NOW + timedelta(seconds=60)) == 1
    states = [(o.state) for o in await offers(db, "c1")]
    assert states == ["expired", "pending"]


async def test_a_late_accept_is_refused(db: Database) -> None:
    await apply(db)
    await available(db, "ben")
    await make_conversation(db, "c1")
    await route(db, "c1")
    [offer] = await offers(db, "c1")
    with pytest.raises(RoutingError, match="expired"):
        async with db.transaction() as tx:
            await do_accept_offer(tx, offer.id, "ben", NOW + timedelta(seconds=61))


async def test_capacity_limits_offers_and_auto_busy(db: Database) -> None:
    await apply(db)
    await available(db, "ben")
    for name in ("c1", "c2", "c3"):
        await make_conversation(db, name)
        await route(db, name)
    pending = [o for name in ("c1", "c2", "c3") for o in await offers(db, name)]
    assert len(pending) == 2  # Ben's profile allows two chats
    ben = await agent(db, "ben")
    assert (ben.load_messaging, ben.presence) == (2, "Busy")
    assert (await state(db, "c3")).state == "waiting"


async def test_end_then_close_releases_capacity_and_next_conversation_is_offered(db: Database) -> None:
    config = contact_center()
    config.workstreams[0].wrap_up_seconds = None  # block capacity until closed
    await apply(db, config)
    await available(db, "ben")
    for name in ("c1", "c2", "c3"):
        await make_conversation(db, name)
        await route(db, name)
    [offer] = await offers(db, "c1")
    async with db.transaction() as tx:
        await do_accept_offer(tx, offer.id, "ben", NOW)
    async with db.transaction() as tx:
        await do_end_conversation(tx, "c1", "agent:ben", NOW)
    assert (await state(db, "c1")).state == "wrap-up"
    assert (await agent(db, "ben")).load_messaging == 2
    async with db.transaction() as tx:
        await do_close_conversation(tx, "c1", "agent:ben", "wrap-up done", NOW)
    assert (await state(db, "c1")).state == "closed"
    async with db.transaction() as tx:
        await do_set_presence(tx, "env1", "ben", "Available", NOW)
    assert [o.state for o in await offers(db, "c3")] == ["pending"]


async def test_transfer_to_queue_releases_the_agent(db: Database) -> None:
    await apply(db)
    await available(db, "ben")
    await make_conversation(db, "c1")
    await route(db, "c1")
    [offer] = await offers(db, "c1")
    async with db.transaction() as tx:
        await do_accept_offer(tx, offer.id, "ben", NOW)
    async with db.transaction() as tx:
        await do_transfer_to_queue(tx, "c1", "vip", "agent:ben", "needs a supervisor", NOW)
    row = await state(db, "c1")
    assert (row.state, row.queue_id, row.agent_id) == ("waiting", "vip", None)
    assert row.routing is not None and row.routing["transfer_note"] == "needs a supervisor"
    assert (await agent(db, "ben")).load_messaging == 0


async def test_unknown_presence_is_refused_with_choices(db: Database) -> None:
    await apply(db)
    with pytest.raises(RoutingError, match=r"unknown presence 'Sleeping'.*Available"):
        async with db.transaction() as tx:
            await do_set_presence(tx, "env1", "ava", "Sleeping", NOW)
