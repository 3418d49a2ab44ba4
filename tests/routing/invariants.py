"""The routing invariants, checked against everything stored: a list of violations, empty when all hold.

Read in one consistent snapshot (``check``), so it can run while other workers write. What it
asserts, per environment:

- each agent's ``load_messaging``/``load_voice`` equals the units of the conversations holding their
  capacity (pending offers to them, conversations active with them, wrap-ups still blocking), is
  never negative, and never exceeds their capacity profile except by force-assigned work;
- an agent is "Busy (at capacity)" only while at capacity;
- a conversation is in exactly one known state, and its fields agree with it: waiting ⇒ in a
  queue, with nobody; active ⇒ with one agent, capacity held; closed ⇒ no offer, nothing held;
  its transition log is an unbroken chain ending in that state;
- at most one pending offer per conversation; a pending offer's conversation waits in the offer's
  queue and says it is offered to that agent; each pending offer has exactly one running countdown
  (an offer-expiry timer due when the offer expires), a decided offer none;
- every accepted offer is one "offer accepted" transition by the same agent at the same instant, so
  no conversation is accepted by two agents, and an active conversation's agent is the one who took it.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import false, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from warmline.conversations.model import ConversationState
from warmline.routing.actions import AUTO_BUSY, OFFER_EXPIRY
from warmline.routing.config import RoutingConfig, get_config
from warmline.routing.model import WorkstreamType
from warmline.store import Database
from warmline.store.schema import AgentRow, ConversationRow, OfferRow, TimerRow, TransitionRow

STATES = {state.value for state in ConversationState}
OFFER_STATES = {"pending", "accepted", "rejected", "expired", "withdrawn"}


async def check(db: Database, environment: str | None = None) -> list[str]:
    """Every violation, read in one snapshot even while other workers write."""
    if db.is_sqlite:
        # Outside a transaction each SQLite read sees its own snapshot. A write that changes nothing
        # opens one and takes the database's write lock, so no process (a server under test
        # included) commits between the reads below.
        async with db.transaction() as tx:
            await tx.session.execute(update(TimerRow).where(false()).values(done=TimerRow.done))
            return await violations(tx.session, environment)
    async with db.reading() as session:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        return await violations(session, environment)


async def violations(session: AsyncSession, environment: str | None = None) -> list[str]:
    """Every violation of the routing invariants in what ``session`` sees."""
    found: list[str] = []
    where = [ConversationRow.environment_id.is_not(None)]
    if environment is not None:
        where.append(ConversationRow.environment_id == environment)
    conversations = {row.id: row for row in await session.scalars(select(ConversationRow).where(*where))}
    offer_query = select(OfferRow).order_by(OfferRow.created_at, OfferRow.id)
    agent_query = select(AgentRow)
    if environment is not None:
        offer_query = offer_query.where(OfferRow.environment_id == environment)
        agent_query = agent_query.where(AgentRow.environment_id == environment)
    offers = list(await session.scalars(offer_query))
    agents = list(await session.scalars(agent_query))
    countdowns: dict[str, list[datetime]] = defaultdict(list)
    for timer in await session.scalars(
        select(TimerRow).where(TimerRow.purpose == OFFER_EXPIRY, TimerRow.done.is_(False))
    ):
        countdowns[timer.subject].append(timer.due_at)
    transitions: dict[str, list[TransitionRow]] = defaultdict(list)
    steps = select(TransitionRow).join(ConversationRow, ConversationRow.id == TransitionRow.conversation_id)
    for step in await session.scalars(steps.where(*where).order_by(TransitionRow.id)):
        transitions[step.conversation_id].append(step)
    by_conversation: dict[str, list[OfferRow]] = defaultdict(list)
    for offer in offers:
        by_conversation[offer.conversation_id].append(offer)
    configs: dict[str, RoutingConfig | None] = {}
    for env in {a.environment_id for a in agents} | {c.environment_id or "" for c in conversations.values()}:
        configs[env] = await get_config(session, env)

    pending: dict[str, list[OfferRow]] = defaultdict(list)
    for offer in offers:
        found.extend(_offer_problems(offer, conversations, countdowns.get(offer.id, [])))
        if offer.state == "pending":
            pending[offer.conversation_id].append(offer)
    for conversation_id, open_offers in pending.items():
        if len(open_offers) > 1:
            agents_offered = [o.agent_id for o in open_offers]
            found.append(
                f"conversation {conversation_id} has {len(open_offers)} pending offers: {agents_offered}"
            )
    for row in conversations.values():
        config = configs.get(row.environment_id or "")
        found.extend(_conversation_problems(row, pending.get(row.id, []), config))
        found.extend(_history_problems(row, transitions.get(row.id, []), by_conversation.get(row.id, [])))
    found.extend(_load_problems(agents, conversations, pending, configs))
    return found


def _routing(row: ConversationRow) -> dict[str, Any]:
    return dict(row.routing or {})


def _units(row: ConversationRow) -> tuple[str, int]:
    routing = _routing(row)
    return str(routing.get("type", WorkstreamType.MESSAGING.value)), int(routing.get("units", 1))


def _offer_problems(
    offer: OfferRow, conversations: dict[str, ConversationRow], countdowns: list[datetime]
) -> Iterable[str]:
    name = f"offer {offer.id} ({offer.state}, {offer.conversation_id} → {offer.agent_id})"
    if offer.state not in OFFER_STATES:
        yield f"{name} has an unknown state"
    if offer.state == "pending":
        if offer.pending_for != offer.conversation_id:
            yield f"{name} is pending but pending_for is {offer.pending_for!r}"
        if offer.decided_at is not None:
            yield f"{name} is pending but was decided at {offer.decided_at}"
        if countdowns != [offer.expires_at]:
            yield f"{name} is pending with countdowns {countdowns} (want one, due {offer.expires_at})"
        row = conversations.get(offer.conversation_id)
        if row is None:
            yield f"{name} is pending for a conversation outside routing"
        else:
            if row.state != ConversationState.WAITING:
                yield f"{name} is pending but the conversation is {row.state}"
            if row.queue_id != offer.queue_id:
                yield f"{name} is pending for queue {offer.queue_id} but the conversation is in {row.queue_id}"
            if _routing(row).get("offered_to") != offer.agent_id:
                yield f"{name} is pending but the conversation says offered_to={_routing(row).get('offered_to')}"
    else:
        if offer.pending_for is not None:
            yield f"{name} is decided but still holds pending_for={offer.pending_for}"
        if offer.decided_at is None:
            yield f"{name} is decided without a decision time"
        if countdowns:
            yield f"{name} is decided but still has countdowns {countdowns}"


def _conversation_problems(
    row: ConversationRow, pending: list[OfferRow], config: RoutingConfig | None
) -> Iterable[str]:
    name = f"conversation {row.id} ({row.state})"
    held = bool(_routing(row).get("capacity_held"))
    if row.state not in STATES:
        yield f"{name} has an unknown state"
    if row.state == ConversationState.WAITING:
        if row.queue_id is None:
            yield f"{name} waits in no queue"
        elif config is not None and row.queue_id not in config.queues:
            yield f"{name} waits in unknown queue {row.queue_id}"
        if row.agent_id is not None:
            yield f"{name} waits but is with agent {row.agent_id}"
        if row.owner != "queue":
            yield f"{name} waits but is owned by {row.owner}"
        if held != bool(pending):
            yield f"{name} waits with capacity_held={held} and {len(pending)} pending offers"
    elif row.state == ConversationState.ACTIVE:
        if row.agent_id is None or row.owner != "agent":
            yield f"{name} is active with agent={row.agent_id} owner={row.owner}"
        if not held:
            yield f"{name} is active with agent {row.agent_id} but holds no capacity"
    elif row.state == ConversationState.WRAP_UP:
        if row.agent_id is None:
            yield f"{name} is in wrap-up with no agent"
    elif row.state == ConversationState.CLOSED:
        if held:
            yield f"{name} is closed but still holds capacity"
        if row.owner != "nobody":
            yield f"{name} is closed but owned by {row.owner}"
    if pending and row.state != ConversationState.WAITING:
        yield f"{name} has a pending offer"


def _history_problems(
    row: ConversationRow, steps: list[TransitionRow], offers: list[OfferRow]
) -> Iterable[str]:
    name = f"conversation {row.id} ({row.state})"
    if not steps:
        yield f"{name} was routed but has no transitions"
        return
    for before, after in itertools.pairwise(steps):
        if after.from_state != before.to_state:
            yield f"{name}: transition {after.id} starts from {after.from_state} but {before.id} ended in {before.to_state}"
    if steps[-1].to_state != row.state:
        yield f"{name}: the last transition ends in {steps[-1].to_state}"
    accepted = Counter((o.agent_id, o.decided_at) for o in offers if o.state == "accepted")
    taken = Counter(
        (s.actor.removeprefix("agent:"), s.at)
        for s in steps
        if s.reason == "offer accepted" and s.to_state == "active"
    )
    if accepted != taken:
        yield f"{name}: accepted offers {sorted(accepted)} do not match accept transitions {sorted(taken)}"
    into_active = [s for s in steps if s.to_state == ConversationState.ACTIVE and s.from_state != s.to_state]
    if row.state in (ConversationState.ACTIVE, ConversationState.WRAP_UP) and into_active:
        last = into_active[-1]
        if last.actor.startswith("agent:") and last.actor != f"agent:{row.agent_id}":
            yield f"{name} is with {row.agent_id} but was last taken by {last.actor}"


def _load_problems(
    agents: list[AgentRow],
    conversations: dict[str, ConversationRow],
    pending: dict[str, list[OfferRow]],
    configs: dict[str, RoutingConfig | None],
) -> Iterable[str]:
    expected: Counter[tuple[str, str, str]] = Counter()
    forced: Counter[tuple[str, str, str]] = Counter()
    for conversation_id, open_offers in pending.items():
        row = conversations.get(conversation_id)
        if row is None:
            continue
        kind, units = _units(row)
        for offer in open_offers:
            expected[(offer.environment_id, offer.agent_id, kind)] += units
    for row in conversations.values():
        holds = row.state == ConversationState.ACTIVE or (
            row.state == ConversationState.WRAP_UP and _routing(row).get("capacity_held")
        )
        if holds and row.agent_id is not None:
            kind, units = _units(row)
            key = (row.environment_id or "", row.agent_id, kind)
            expected[key] += units
            if _routing(row).get("forced_by"):
                forced[key] += units
    for agent in agents:
        config = configs.get(agent.environment_id)
        loads = {
            WorkstreamType.MESSAGING.value: agent.load_messaging,
            WorkstreamType.VOICE.value: agent.load_voice,
        }
        full = False
        for kind, load in loads.items():
            key = (agent.environment_id, agent.id, kind)
            name = f"agent {agent.id} ({kind})"
            if load != expected[key]:
                yield f"{name} has load {load} but holds {expected[key]} units of work"
            if load < 0:
                yield f"{name} has negative load {load}"
            if config is not None:
                limit = config.capacity(agent.id, WorkstreamType(kind))
                if load - forced[key] > limit:
                    yield f"{name} holds {load - forced[key]} assigned units over the profile limit {limit}"
                full = full or load >= limit
        if agent.presence_text == AUTO_BUSY and not full:
            yield f"agent {agent.id} is '{AUTO_BUSY}' with loads {loads}"


def overlapping_offers(offers: Iterable[OfferRow]) -> list[str]:
    """Conversations offered to two agents at once: pending intervals [created, decided) that overlap."""
    by_conversation: dict[str, list[OfferRow]] = defaultdict(list)
    for offer in offers:
        by_conversation[offer.conversation_id].append(offer)
    found = []
    for conversation_id, history in by_conversation.items():
        history.sort(key=lambda o: (o.created_at, o.decided_at is None, o.decided_at or o.created_at))
        for first, second in itertools.pairwise(history):
            if first.decided_at is None or second.created_at < first.decided_at:
                found.append(
                    f"conversation {conversation_id} was offered to {second.agent_id} at {second.created_at} "
                    f"while the offer to {first.agent_id} ({first.created_at} → {first.decided_at}) was open"
                )
    return found


async def offer_history(db: Database, environment: str | None = None) -> list[OfferRow]:
    """Every offer ever made, oldest first."""
    query = select(OfferRow).order_by(OfferRow.created_at, OfferRow.id)
    if environment is not None:
        query = query.where(OfferRow.environment_id == environment)
    async with db.reading() as session:
        return list(await session.scalars(query))
