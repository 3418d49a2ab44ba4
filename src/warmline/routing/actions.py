"""Routing actions: route to a queue, assign and offer, accept/reject/expire, transfer, end, presence.

Correctness rules, enforced here rather than hoped for:
- a conversation is in exactly one state and at most one queue (columns on its row);
- it is offered to at most one agent at a time (``offers.pending_for`` is unique);
- an agent's capacity is claimed by one conditional UPDATE (``load + units <= limit``), so
  concurrent workers can never push an agent over the limit;
- waiting conversations are claimed ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers routing
  the same queue at once never pick the same conversation.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from warmline.activity import Activity, ChannelAccount
from warmline.bot.expressions import ExpressionError, evaluate
from warmline.conversations.actions import do_append_activity
from warmline.conversations.model import ConversationState, Role
from warmline.events import Event
from warmline.routing.config import RoutingConfig, get_config
from warmline.routing.hours import is_open
from warmline.routing.model import (
    BasePresence,
    Distribution,
    OverflowAction,
    OverflowActionKind,
    Queue,
    Workstream,
    WorkstreamType,
)
from warmline.routing.selection import Candidate, effective_priority, pick_agent
from warmline.store import Transaction
from warmline.store.schema import (
    AgentRow,
    ConversationRow,
    OfferRow,
    ParticipantRow,
    QueueMemberRow,
    TimerRow,
    TransitionRow,
)

CONVERSATION_QUEUED = "conversation.queued"
CONVERSATION_ASSIGNED = "conversation.assigned"
CONVERSATION_ENDED = "conversation.ended"
CONVERSATION_CLOSED = "conversation.closed"
OFFER_CREATED = "offer.created"
OFFER_CLOSED = "offer.closed"
PRESENCE_CHANGED = "presence.changed"

OFFER_EXPIRY = "offer-expiry"
QUEUE_OVERFLOW = "queue-overflow"
AUTO_CLOSE = "auto-close"
WRAP_UP_END = "wrap-up-end"

AUTO_BUSY = "Busy (at capacity)"
SYSTEM = ChannelAccount(id="warmline-routing", name="Warmline", role="bot")

_CONVERSATIONS = cast(Table, ConversationRow.__table__)
_AGENTS = cast(Table, AgentRow.__table__)


class RoutingError(Exception):
    """A routing request that cannot be carried out; the message says why."""


def agent_topic(environment: str, agent_id: str) -> str:
    """Bus topic of one agent's workspace."""
    return f"agent:{environment}:{agent_id}"


def queue_topic(environment: str, queue_id: str) -> str:
    """Bus topic of a queue (supervisor views)."""
    return f"queue:{environment}:{queue_id}"


@dataclass(frozen=True)
class RouteDecision:
    """Where routing sent a conversation, and why."""

    queue_id: str | None
    rule: str | None
    reason: str
    ended: bool = False


def choose_queue(
    config: RoutingConfig, workstream: Workstream, variables: Mapping[str, Any], now: datetime
) -> tuple[str, str | None, str, dict[str, int], int | None]:
    """Run the route-to-queue ruleset: (queue, rule name, reason, skills, priority); first match wins."""
    for expression, index in config.rules.get(workstream.id, []):
        rule = workstream.rules[index]
        try:
            matched = evaluate(expression, variables, now) is True
        except ExpressionError as error:
            return (
                workstream.fallback_queue,
                None,
                f"rule '{rule.name}' failed ({error.message}); sent to the fallback queue",
                {},
                None,
            )
        if matched:
            return (
                rule.queue,
                rule.name,
                f"matched rule '{rule.name}': {rule.condition}",
                dict(rule.skills),
                rule.priority,
            )
    return workstream.fallback_queue, None, "no rule matched; sent to the fallback queue", {}, None


async def _transition(
    tx: Transaction,
    conversation_id: str,
    before: str | None,
    after: str,
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    tx.session.add(
        TransitionRow(
            conversation_id=conversation_id,
            at=now,
            from_state=before,
            to_state=after,
            actor=actor,
            reason=reason,
        )
    )


async def _timer(
    tx: Transaction, purpose: str, subject: str, due_at: datetime, payload: dict[str, Any] | None = None
) -> None:
    tx.session.add(TimerRow(purpose=purpose, subject=subject, due_at=due_at, done=False, payload=payload))


async def _cancel_timers(tx: Transaction, purpose: str, subject: str) -> None:
    # A timer another worker has claimed (and is firing) is skipped, not waited for: that worker
    # holds it while it waits for the conversation or offer this transaction holds, so waiting
    # would deadlock. Firing re-checks the state under lock and finds nothing left to do.
    unclaimed = (
        select(TimerRow.id)
        .where(TimerRow.purpose == purpose, TimerRow.subject == subject, TimerRow.done.is_(False))
        .with_for_update(skip_locked=True)
    )
    await tx.session.execute(update(TimerRow).where(TimerRow.id.in_(unclaimed)).values(done=True))


async def _conversation(
    session: AsyncSession, conversation_id: str, *, lock: bool = False
) -> ConversationRow:
    query = select(ConversationRow).where(ConversationRow.id == conversation_id)
    if lock:
        # Refresh too: a copy this session read earlier may predate another worker's commit.
        query = query.with_for_update().execution_options(populate_existing=True)
    row = await session.scalar(query)
    if row is None:
        raise RoutingError(f"conversation '{conversation_id}' does not exist")
    return row


async def _config(session: AsyncSession, environment: str) -> RoutingConfig:
    config = await get_config(session, environment)
    if config is None:
        raise RoutingError(
            f"environment '{environment}' has no routing configuration; run `warmline config apply`"
        )
    return config


async def queue_position(session: AsyncSession, row: ConversationRow) -> int:
    """1-based place in its queue (higher priority and older conversations first)."""
    ahead = await session.scalar(
        select(func.count())
        .select_from(ConversationRow)
        .where(
            ConversationRow.environment_id == row.environment_id,
            ConversationRow.queue_id == row.queue_id,
            ConversationRow.state == ConversationState.WAITING,
            (ConversationRow.routing_priority < row.routing_priority)
            | and_(
                ConversationRow.routing_priority == row.routing_priority,
                ConversationRow.queued_at < row.queued_at,
            ),
        )
    )
    return int(ahead or 0) + 1


async def _say(tx: Transaction, conversation_id: str, text: str, now: datetime) -> None:
    await do_append_activity(
        tx, conversation_id, Activity(type="message", text=text, from_=SYSTEM), role=Role.SYSTEM, now=now
    )


# --- hand-off into routing ------------------------------------------------------------------------


async def do_route_conversation(
    tx: Transaction,
    conversation_id: str,
    *,
    environment: str,
    workstream_id: str,
    variables: Mapping[str, Any],
    now: datetime,
    actor: str = "bot",
    notify: bool = True,
) -> RouteDecision:
    """Run the workstream's rules, apply pre-queue overflow, and queue the conversation."""
    config = await _config(tx.session, environment)
    workstream = config.workstreams.get(workstream_id)
    if workstream is None:
        raise RoutingError(f"environment '{environment}' has no workstream '{workstream_id}'")
    row = await _conversation(tx.session, conversation_id, lock=True)
    if row.state in (ConversationState.CLOSED, ConversationState.WRAP_UP):
        raise RoutingError(f"conversation '{conversation_id}' has ended")
    if row.state == ConversationState.ACTIVE and row.owner == "agent":
        raise RoutingError(f"conversation '{conversation_id}' is with agent '{row.agent_id}'")
    # Re-routing a waiting conversation: its open offer (and the capacity it holds) goes first.
    await _withdraw_offer(tx, row.id, now)
    queue_id, rule, reason, skills, rule_priority = choose_queue(config, workstream, variables, now)
    queue = config.queues[queue_id]
    overflow = await _pre_queue_overflow(tx, config, queue, now)
    if overflow is not None:
        reason += f"; {overflow[1]}"
        action = overflow[0]
        if action.kind is OverflowActionKind.END_CONVERSATION:
            await _end_unassigned(tx, row, actor, reason, action.message, now)
            return RouteDecision(None, rule, reason, ended=True)
        if action.kind is OverflowActionKind.TRANSFER_TO_QUEUE and action.queue:
            queue = config.queues[action.queue]
        elif action.kind in (OverflowActionKind.VOICEMAIL, OverflowActionKind.CALLBACK):
            row.routing = {**(row.routing or {}), "overflow": action.kind.value}
    routing: dict[str, Any] = {
        "environment": environment,
        "workstream": workstream.id,
        "queue": queue.id,
        "rule": rule,
        "reason": reason,
        "skills": skills,
        "units": workstream.capacity_units,
        "type": workstream.type.value,
        "rejected": [],
        "capacity_held": False,
    }
    await _enqueue(tx, row, config, queue, routing, rule_priority, actor, reason, now)
    if workstream.auto_close_seconds:
        await _timer(tx, AUTO_CLOSE, row.id, now + timedelta(seconds=workstream.auto_close_seconds))
    if notify:
        position = await queue_position(tx.session, row)
        await _say(
            tx,
            row.id,
            f"Thanks for waiting: a person will be with you soon. You're number {position} in the queue.",
            now,
        )
    await do_assign_queue(tx, config, queue.id, now)
    return RouteDecision(queue.id, rule, reason)


async def _enqueue(
    tx: Transaction,
    row: ConversationRow,
    config: RoutingConfig,
    queue: Queue,
    routing: dict[str, Any],
    priority: int | None,
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    before = row.state
    row.environment_id = config.environment
    row.workstream_id = routing["workstream"]
    row.queue_id = queue.id
    row.agent_id = None
    row.state = ConversationState.WAITING
    row.owner = "queue"
    row.routing_priority = priority if priority is not None else queue.priority
    row.queued_at = now
    row.routing = routing
    await _transition(
        tx, row.id, before, ConversationState.WAITING, actor, f"queued in '{queue.id}': {reason}", now
    )
    if queue.in_queue_overflow:
        due = now + timedelta(seconds=queue.in_queue_overflow.wait_seconds)
        await _timer(tx, QUEUE_OVERFLOW, row.id, due, {"queue": queue.id})
    tx.emit(Event(CONVERSATION_QUEUED, row.id, {"queue": queue.id, "reason": reason}))
    tx.emit(Event(CONVERSATION_QUEUED, queue_topic(config.environment, queue.id), {"conversation": row.id}))


async def _pre_queue_overflow(
    tx: Transaction, config: RoutingConfig, queue: Queue, now: datetime
) -> tuple[OverflowAction, str] | None:
    rules = queue.pre_queue_overflow
    if rules is None:
        return None
    hours = config.hours.get(queue.operating_hours or "")
    if rules.out_of_hours and not is_open(hours, now):
        return rules.out_of_hours, "queue is out of operating hours"
    if rules.work_item_limit and rules.action:
        waiting = await tx.session.scalar(
            select(func.count())
            .select_from(ConversationRow)
            .where(
                ConversationRow.environment_id == config.environment,
                ConversationRow.queue_id == queue.id,
                ConversationRow.state == ConversationState.WAITING,
            )
        )
        if int(waiting or 0) >= rules.work_item_limit:
            return rules.action, f"queue has {waiting} waiting (limit {rules.work_item_limit})"
    if rules.average_wait_seconds and rules.action:
        oldest = await tx.session.scalar(
            select(func.min(ConversationRow.queued_at)).where(
                ConversationRow.environment_id == config.environment,
                ConversationRow.queue_id == queue.id,
                ConversationRow.state == ConversationState.WAITING,
            )
        )
        if oldest is not None and (now - oldest).total_seconds() > rules.average_wait_seconds:
            return rules.action, "queue wait is over the limit"
    return None


async def _end_unassigned(
    tx: Transaction, row: ConversationRow, actor: str, reason: str, message: str | None, now: datetime
) -> None:
    before = row.state
    if message:
        await _say(tx, row.id, message, now)
    row.state = ConversationState.CLOSED
    row.owner = "nobody"
    row.ended_at = now
    row.queue_id = None
    await _transition(tx, row.id, before, ConversationState.CLOSED, actor, reason, now)
    await do_append_activity(
        tx, row.id, Activity(type="endOfConversation", from_=SYSTEM), role=Role.SYSTEM, now=now
    )
    tx.emit(Event(CONVERSATION_CLOSED, row.id, {"reason": reason}))


# --- assignment ----------------------------------------------------------------------------------


def _base_presence(config: RoutingConfig, presence: str) -> BasePresence | None:
    try:
        return BasePresence(presence)
    except ValueError:
        return config.presences.get(presence)


async def _candidates(
    session: AsyncSession, config: RoutingConfig, queue_id: str, workstream: Workstream
) -> list[Candidate]:
    rows = await session.execute(
        select(AgentRow, QueueMemberRow.added_at, QueueMemberRow.last_assigned_at)
        .join(
            QueueMemberRow,
            and_(
                QueueMemberRow.environment_id == AgentRow.environment_id,
                QueueMemberRow.agent_id == AgentRow.id,
            ),
        )
        .where(
            AgentRow.environment_id == config.environment,
            QueueMemberRow.queue_id == queue_id,
            AgentRow.active.is_(True),
        )
    )
    allowed = set(workstream.allowed_presences)
    found = []
    for agent, added_at, queue_last in rows:
        voice = workstream.type is WorkstreamType.VOICE
        found.append(
            Candidate(
                agent_id=agent.id,
                load=agent.load_voice if voice else agent.load_messaging,
                capacity=config.capacity(agent.id, workstream.type),
                presence_ok=_base_presence(config, agent.presence) in allowed,
                skills=config.agents[agent.id].skills if agent.id in config.agents else {},
                added_at=added_at,
                last_assigned_at=agent.last_assigned_at,
                queue_last_assigned_at=queue_last,
            )
        )
    return found


async def _claim_capacity(
    tx: Transaction, config: RoutingConfig, agent_id: str, workstream: Workstream, units: int, now: datetime
) -> bool:
    """Atomically take ``units`` of an agent's capacity if they still have room and may work."""
    column = _AGENTS.c.load_voice if workstream.type is WorkstreamType.VOICE else _AGENTS.c.load_messaging
    allowed = [p.value for p in workstream.allowed_presences] + [
        name for name, base in config.presences.items() if base in workstream.allowed_presences
    ]
    result = await tx.session.execute(
        update(_AGENTS)
        .where(
            _AGENTS.c.environment_id == config.environment,
            _AGENTS.c.id == agent_id,
            _AGENTS.c.active.is_(True),
            _AGENTS.c.presence.in_(allowed),
            column + units <= config.capacity(agent_id, workstream.type),
        )
        .values({column.name: column + units, "last_assigned_at": now})
        .returning(column)
    )
    claimed = result.first()
    if claimed is None:
        return False
    if claimed[0] >= config.capacity(agent_id, workstream.type):
        await _set_presence_row(tx, config.environment, agent_id, BasePresence.BUSY, AUTO_BUSY, now)
    return True


async def release_capacity(
    tx: Transaction, environment: str, agent_id: str, kind: str, units: int, now: datetime
) -> None:
    """Give back capacity; an agent made Busy by a full load becomes Available again."""
    column = _AGENTS.c.load_voice if kind == WorkstreamType.VOICE.value else _AGENTS.c.load_messaging
    await tx.session.execute(
        update(_AGENTS)
        .where(_AGENTS.c.environment_id == environment, _AGENTS.c.id == agent_id)
        .values(
            {
                column.name: func.max(column - units, 0)
                if tx.session.bind and tx.session.bind.dialect.name == "sqlite"
                else func.greatest(column - units, 0)
            }
        )
    )
    # Read the stored value, not a copy loaded earlier in this transaction (a claim since may
    # have made the agent Busy).
    text = await tx.session.scalar(
        select(_AGENTS.c.presence_text).where(
            _AGENTS.c.environment_id == environment, _AGENTS.c.id == agent_id
        )
    )
    if text == AUTO_BUSY:
        await _set_presence_row(tx, environment, agent_id, BasePresence.AVAILABLE, None, now)


async def do_assign_queue(
    tx: Transaction, config: RoutingConfig, queue_id: str, now: datetime, limit: int = 50
) -> list[str]:
    """One assignment cycle for a queue: offer its waiting push conversations to eligible agents."""
    queue = config.queues.get(queue_id)
    if queue is None:
        return []
    # Each conversation keeps its own workstream's settings (distribution, units, offer timeout),
    # also in a queue it reached by transfer or overflow that no workstream routes to.
    fallback = config.workstream_for_queue(queue_id)
    pick = [w.id for w in config.workstreams.values() if w.distribution is Distribution.PICK]
    pending_offer = exists().where(OfferRow.pending_for == ConversationRow.id)
    waiting = list(
        await tx.session.scalars(
            select(ConversationRow)
            .where(
                ConversationRow.environment_id == config.environment,
                ConversationRow.queue_id == queue_id,
                ConversationRow.state == ConversationState.WAITING,
                ConversationRow.workstream_id.not_in(pick),
                ~pending_offer,
            )
            .order_by(ConversationRow.routing_priority, ConversationRow.queued_at, ConversationRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=ConversationRow)
        )
    )
    if not waiting:
        return []
    waiting.sort(
        key=lambda r: (
            effective_priority(
                r.routing_priority or 0, r.queued_at or now, now, queue.priority_aging_seconds
            ),
            r.queued_at or now,
            r.id,
        )
    )
    pools: dict[str, dict[str, Candidate]] = {}
    offered: list[str] = []
    for row in waiting:
        workstream = config.workstreams.get(row.workstream_id or "") or fallback
        if workstream is None:
            continue
        if workstream.id not in pools:
            found = await _candidates(tx.session, config, queue_id, workstream)
            pools[workstream.id] = {c.agent_id: c for c in found}
        candidates = pools[workstream.id]
        routing = row.routing or {}
        units = int(routing.get("units", workstream.capacity_units))
        order = pick_agent(
            list(candidates.values()),
            units=units,
            method=queue.assignment,
            required=routing.get("skills") or {},
            matching=queue.skill_matching,
            excluded=frozenset(routing.get("rejected") or ()),
        )
        for candidate in order:
            if await _claim_capacity(tx, config, candidate.agent_id, workstream, units, now):
                await _offer(tx, config, row, candidate.agent_id, queue_id, workstream, now)
                candidates[candidate.agent_id] = Candidate(
                    **{
                        **candidate.__dict__,
                        "load": candidate.load + units,
                        "last_assigned_at": now,
                        "queue_last_assigned_at": now,
                    }
                )
                offered.append(row.id)
                break
            # Someone else took that agent's last unit; forget them for this cycle.
            candidates.pop(candidate.agent_id, None)
    return offered


async def _offer(
    tx: Transaction,
    config: RoutingConfig,
    row: ConversationRow,
    agent_id: str,
    queue_id: str,
    workstream: Workstream,
    now: datetime,
) -> str:
    offer_id = f"offer-{secrets.token_hex(8)}"
    expires = now + timedelta(seconds=workstream.offer_timeout_seconds)
    tx.session.add(
        OfferRow(
            id=offer_id,
            conversation_id=row.id,
            agent_id=agent_id,
            environment_id=config.environment,
            queue_id=queue_id,
            state="pending",
            pending_for=row.id,
            created_at=now,
            expires_at=expires,
            decided_at=None,
        )
    )
    row.routing = {**(row.routing or {}), "capacity_held": True, "offered_to": agent_id}
    await tx.session.execute(
        update(QueueMemberRow)
        .where(
            QueueMemberRow.environment_id == config.environment,
            QueueMemberRow.queue_id == queue_id,
            QueueMemberRow.agent_id == agent_id,
        )
        .values(last_assigned_at=now)
    )
    await _timer(tx, OFFER_EXPIRY, offer_id, expires, {"environment": config.environment})
    data = {
        "offer": offer_id,
        "conversation": row.id,
        "queue": queue_id,
        "expires_at": expires.isoformat(),
        "seconds": workstream.offer_timeout_seconds,
    }
    tx.emit(Event(OFFER_CREATED, agent_topic(config.environment, agent_id), data))
    tx.emit(Event(OFFER_CREATED, row.id, data))
    return offer_id


# --- offers --------------------------------------------------------------------------------------


async def _pending_offer(session: AsyncSession, offer_id: str) -> OfferRow:
    offer = await session.scalar(select(OfferRow).where(OfferRow.id == offer_id).with_for_update())
    if offer is None:
        raise RoutingError(f"offer '{offer_id}' does not exist")
    if offer.state != "pending":
        raise RoutingError(f"this offer is no longer open (it was {offer.state})")
    return offer


async def do_accept_offer(tx: Transaction, offer_id: str, agent_id: str, now: datetime) -> str:
    """The agent takes the conversation: it becomes Active with them."""
    offer = await _pending_offer(tx.session, offer_id)
    if offer.agent_id != agent_id:
        raise RoutingError("this offer was made to another agent")
    if offer.expires_at <= now:
        await _close_offer(tx, offer, "expired", now)
        raise RoutingError("this offer has expired")
    offer.state, offer.pending_for, offer.decided_at = "accepted", None, now
    await _cancel_timers(tx, OFFER_EXPIRY, offer.id)
    row = await _conversation(tx.session, offer.conversation_id, lock=True)
    before = row.state
    row.state = ConversationState.ACTIVE
    row.owner = "agent"
    row.agent_id = agent_id
    await _cancel_timers(tx, QUEUE_OVERFLOW, row.id)
    await _cancel_timers(tx, AUTO_CLOSE, row.id)
    await _join(tx, row.id, agent_id, now)
    await _transition(
        tx, row.id, before, ConversationState.ACTIVE, f"agent:{agent_id}", "offer accepted", now
    )
    tx.emit(Event(CONVERSATION_ASSIGNED, row.id, {"agent": agent_id}))
    tx.emit(
        Event(CONVERSATION_ASSIGNED, agent_topic(offer.environment_id, agent_id), {"conversation": row.id})
    )
    return row.id


async def _join(
    tx: Transaction, conversation_id: str, agent_id: str, now: datetime, role: str = Role.AGENT
) -> None:
    # Once per role: an agent can come back (transfer back, a second consult) but is one participant.
    found = await tx.session.scalar(
        select(ParticipantRow.id).where(
            ParticipantRow.conversation_id == conversation_id,
            ParticipantRow.role == role,
            ParticipantRow.participant_id == agent_id,
        )
    )
    if found is None:
        tx.session.add(
            ParticipantRow(
                conversation_id=conversation_id,
                role=role,
                participant_id=agent_id,
                name=None,
                joined_at=now,
            )
        )


async def _close_offer(tx: Transaction, offer: OfferRow, state: str, now: datetime) -> None:
    """Reject or expire: release the reserved capacity and remember not to offer it to them again."""
    offer.state, offer.pending_for, offer.decided_at = state, None, now
    await _cancel_timers(tx, OFFER_EXPIRY, offer.id)
    row = await _conversation(tx.session, offer.conversation_id, lock=True)
    routing = dict(row.routing or {})
    routing["rejected"] = sorted({*routing.get("rejected", []), offer.agent_id})
    routing["capacity_held"] = False
    routing.pop("offered_to", None)
    row.routing = routing
    await release_capacity(
        tx,
        offer.environment_id,
        offer.agent_id,
        routing.get("type", "messaging"),
        int(routing.get("units", 1)),
        now,
    )
    event = {"offer": offer.id, "conversation": row.id, "state": state}
    tx.emit(Event(OFFER_CLOSED, agent_topic(offer.environment_id, offer.agent_id), event))
    tx.emit(Event(OFFER_CLOSED, row.id, event))


async def _withdraw_offer(tx: Transaction, conversation_id: str, now: datetime) -> None:
    """Close the conversation's pending offer, if any, giving the offered agent's capacity back."""
    pending = await tx.session.scalar(
        select(OfferRow).where(OfferRow.pending_for == conversation_id).with_for_update()
    )
    if pending is not None:
        await _close_offer(tx, pending, "withdrawn", now)


async def do_reject_offer(tx: Transaction, offer_id: str, agent_id: str, now: datetime) -> None:
    """The agent declines; the conversation is offered to the next eligible agent."""
    offer = await _pending_offer(tx.session, offer_id)
    if offer.agent_id != agent_id:
        raise RoutingError("this offer was made to another agent")
    await _close_offer(tx, offer, "rejected", now)
    await _reassign(tx, offer, now)


async def do_expire_offer(tx: Transaction, offer_id: str, now: datetime) -> bool:
    """Countdown over: the offer moves on (no-op if it was already decided)."""
    offer = await tx.session.scalar(select(OfferRow).where(OfferRow.id == offer_id).with_for_update())
    if offer is None or offer.state != "pending":
        return False
    await _close_offer(tx, offer, "expired", now)
    await _reassign(tx, offer, now)
    return True


async def _reassign(tx: Transaction, offer: OfferRow, now: datetime) -> None:
    config = await get_config(tx.session, offer.environment_id)
    if config is not None:
        await do_assign_queue(tx, config, offer.queue_id, now)


# --- pick, transfer, consult, force-assign -------------------------------------------------------


async def do_pick_conversation(
    tx: Transaction, environment: str, conversation_id: str, agent_id: str, now: datetime
) -> None:
    """An agent takes a waiting conversation from a pick queue they belong to."""
    config = await _config(tx.session, environment)
    row = await _conversation(tx.session, conversation_id, lock=True)
    if row.environment_id != environment or row.state != ConversationState.WAITING or row.queue_id is None:
        raise RoutingError("this conversation is not waiting in a queue")
    if agent_id not in config.members.get(row.queue_id, []):
        raise RoutingError(f"you are not a member of queue '{row.queue_id}'")
    workstream = config.workstreams[row.workstream_id or ""]
    units = int((row.routing or {}).get("units", workstream.capacity_units))
    if not await _claim_capacity(tx, config, agent_id, workstream, units, now):
        raise RoutingError("you have no capacity left, or your presence does not allow new work")
    await _withdraw_offer(tx, row.id, now)  # offered to someone else meanwhile: the pick wins
    row.routing = {**(row.routing or {}), "capacity_held": True}
    before = row.state
    row.state, row.owner, row.agent_id = ConversationState.ACTIVE, "agent", agent_id
    await _join(tx, row.id, agent_id, now)
    await _transition(
        tx, row.id, before, ConversationState.ACTIVE, f"agent:{agent_id}", "picked from queue", now
    )
    tx.emit(Event(CONVERSATION_ASSIGNED, row.id, {"agent": agent_id}))


async def release_agent(tx: Transaction, row: ConversationRow, now: datetime) -> None:
    routing = dict(row.routing or {})
    if row.agent_id and routing.get("capacity_held"):
        await release_capacity(
            tx,
            row.environment_id or "",
            row.agent_id,
            routing.get("type", "messaging"),
            int(routing.get("units", 1)),
            now,
        )
    routing["capacity_held"] = False
    row.routing = routing


async def do_transfer_to_queue(
    tx: Transaction, conversation_id: str, queue_id: str, actor: str, note: str | None, now: datetime
) -> None:
    """Active → Waiting in another queue (same channel type); the agent's capacity is released."""
    row = await _conversation(tx.session, conversation_id, lock=True)
    if row.state not in (ConversationState.ACTIVE, ConversationState.WAITING):
        raise RoutingError(f"a {row.state} conversation cannot be transferred")
    config = await _config(tx.session, row.environment_id or "")
    queue = config.queues.get(queue_id)
    if queue is None:
        raise RoutingError(f"unknown queue '{queue_id}'")
    kind = (row.routing or {}).get("type", "messaging")
    if queue.type.value != kind:
        raise RoutingError(f"a {kind} conversation can only move to a {kind} queue")
    await _withdraw_offer(tx, row.id, now)
    await release_agent(tx, row, now)
    routing = {
        **(row.routing or {}),
        "queue": queue_id,
        "rejected": [],
        "transfer_note": note,
        "reason": f"transferred by {actor}" + (f": {note}" if note else ""),
    }
    await _enqueue(tx, row, config, queue, routing, None, actor, routing["reason"], now)
    await do_assign_queue(tx, config, queue_id, now)


async def do_transfer_to_agent(
    tx: Transaction, conversation_id: str, agent_id: str, actor: str, note: str | None, now: datetime
) -> str:
    """Offer the conversation to one named agent; until they accept, it waits in its queue."""
    row = await _conversation(tx.session, conversation_id, lock=True)
    if row.state not in (ConversationState.ACTIVE, ConversationState.WAITING):
        raise RoutingError(f"a {row.state} conversation cannot be transferred")
    config = await _config(tx.session, row.environment_id or "")
    if agent_id not in config.agents:
        raise RoutingError(f"unknown agent '{agent_id}'")
    workstream = config.workstreams[row.workstream_id or ""]
    units = int((row.routing or {}).get("units", workstream.capacity_units))
    if not await _claim_capacity(tx, config, agent_id, workstream, units, now):
        raise RoutingError(f"agent '{agent_id}' is not available or has no capacity left")
    await _withdraw_offer(tx, row.id, now)
    await release_agent(tx, row, now)
    queue = config.queues[row.queue_id or workstream.fallback_queue]
    routing = {
        **(row.routing or {}),
        "rejected": [],
        "transfer_note": note,
        "reason": f"transferred by {actor}",
    }
    await _enqueue(tx, row, config, queue, routing, 0, actor, f"transfer to agent '{agent_id}'", now)
    return await _offer(tx, config, row, agent_id, queue.id, workstream, now)


async def do_consult(tx: Transaction, conversation_id: str, agent_id: str, actor: str, now: datetime) -> None:
    """A second agent joins privately; consulting consumes no capacity."""
    row = await _conversation(tx.session, conversation_id)
    if row.state != ConversationState.ACTIVE:
        raise RoutingError("only an active conversation can be consulted on")
    await _join(tx, row.id, agent_id, now, role="consult")
    await _transition(tx, row.id, row.state, row.state, actor, f"consult with agent '{agent_id}'", now)
    tx.emit(
        Event(
            "conversation.consulted",
            agent_topic(row.environment_id or "", agent_id),
            {"conversation": row.id, "by": actor},
        )
    )


async def do_force_assign(
    tx: Transaction, conversation_id: str, agent_id: str, supervisor: str, now: datetime
) -> None:
    """A supervisor gives a waiting conversation to an agent, even past their capacity (seed §3.6)."""
    row = await _conversation(tx.session, conversation_id, lock=True)
    if row.state != ConversationState.WAITING:
        raise RoutingError("only a waiting conversation can be force-assigned")
    pending = await tx.session.scalar(
        select(OfferRow).where(OfferRow.pending_for == row.id).with_for_update()
    )
    if pending is not None:
        await _close_offer(tx, pending, "withdrawn", now)
    routing = dict(row.routing or {})
    column = _AGENTS.c.load_voice if routing.get("type") == "voice" else _AGENTS.c.load_messaging
    await tx.session.execute(
        update(_AGENTS)
        .where(_AGENTS.c.environment_id == row.environment_id, _AGENTS.c.id == agent_id)
        .values({column.name: column + int(routing.get("units", 1))})
    )
    row.routing = {**routing, "capacity_held": True, "forced_by": supervisor}
    before = row.state
    row.state, row.owner, row.agent_id = ConversationState.ACTIVE, "agent", agent_id
    await _join(tx, row.id, agent_id, now)
    await _transition(
        tx, row.id, before, ConversationState.ACTIVE, f"supervisor:{supervisor}", "force-assigned", now
    )
    tx.emit(Event(CONVERSATION_ASSIGNED, row.id, {"agent": agent_id}))


# --- end of work ---------------------------------------------------------------------------------


async def do_end_conversation(tx: Transaction, conversation_id: str, actor: str, now: datetime) -> None:
    """Active → Wrap-up; capacity stays blocked as the workstream's wrap-up setting says."""
    row = await _conversation(tx.session, conversation_id, lock=True)
    if row.state != ConversationState.ACTIVE:
        raise RoutingError("only an active conversation can be ended")
    config = await get_config(tx.session, row.environment_id or "")
    workstream = config.workstreams.get(row.workstream_id or "") if config else None
    before = row.state
    row.state, row.ended_at = ConversationState.WRAP_UP, now
    await _transition(tx, row.id, before, ConversationState.WRAP_UP, actor, "ended", now)
    block = workstream.wrap_up_seconds if workstream else 0
    if block == 0:
        await release_agent(tx, row, now)
    elif block is not None:
        await _timer(tx, WRAP_UP_END, row.id, now + timedelta(seconds=block))
    tx.emit(Event(CONVERSATION_ENDED, row.id, {"by": actor}))


async def do_close_conversation(
    tx: Transaction, conversation_id: str, actor: str, reason: str, now: datetime
) -> None:
    """Wrap-up (or waiting) → Closed; any capacity still held is released."""
    row = await _conversation(tx.session, conversation_id, lock=True)
    if row.state == ConversationState.CLOSED:
        return
    pending = await tx.session.scalar(
        select(OfferRow).where(OfferRow.pending_for == row.id).with_for_update()
    )
    if pending is not None:
        await _close_offer(tx, pending, "withdrawn", now)
    await release_agent(tx, row, now)
    before = row.state
    row.state, row.owner = ConversationState.CLOSED, "nobody"
    row.ended_at = row.ended_at or now
    for purpose in (QUEUE_OVERFLOW, AUTO_CLOSE, WRAP_UP_END):
        await _cancel_timers(tx, purpose, row.id)
    await _transition(tx, row.id, before, ConversationState.CLOSED, actor, reason, now)
    tx.emit(Event(CONVERSATION_CLOSED, row.id, {"reason": reason}))


# --- presence ------------------------------------------------------------------------------------


async def _set_presence_row(
    tx: Transaction, environment: str, agent_id: str, base: BasePresence, text: str | None, now: datetime
) -> None:
    await tx.session.execute(
        update(_AGENTS)
        .where(_AGENTS.c.environment_id == environment, _AGENTS.c.id == agent_id)
        .values(presence=base.value, presence_text=text, presence_at=now)
    )
    tx.emit(
        Event(PRESENCE_CHANGED, agent_topic(environment, agent_id), {"presence": base.value, "text": text})
    )


async def do_set_presence(
    tx: Transaction, environment: str, agent_id: str, presence: str, now: datetime
) -> str:
    """Set an agent's presence (a base status or a custom one); Available starts an assignment cycle."""
    config = await _config(tx.session, environment)
    base = _base_presence(config, presence)
    if base is None:
        known = ", ".join([p.value for p in BasePresence] + sorted(config.presences))
        raise RoutingError(f"unknown presence '{presence}' (choose one of: {known})")
    if agent_id not in config.agents:
        raise RoutingError(f"unknown agent '{agent_id}'")
    stored = presence if presence in config.presences else base.value
    await tx.session.execute(
        update(_AGENTS)
        .where(_AGENTS.c.environment_id == environment, _AGENTS.c.id == agent_id)
        .values(presence=stored, presence_text=None if stored == base.value else presence, presence_at=now)
    )
    tx.emit(
        Event(
            PRESENCE_CHANGED, agent_topic(environment, agent_id), {"presence": base.value, "text": presence}
        )
    )
    if base is BasePresence.AVAILABLE:
        for queue_id in config.agents[agent_id].queues:
            await do_assign_queue(tx, config, queue_id, now)
    return base.value


# --- timers --------------------------------------------------------------------------------------


async def _fire(tx: Transaction, timer: TimerRow, now: datetime) -> None:
    if timer.purpose == OFFER_EXPIRY:
        await do_expire_offer(tx, timer.subject, now)
        return
    # Locked and fresh: an agent may be accepting this conversation at the same moment.
    try:
        row = await _conversation(tx.session, timer.subject, lock=True)
    except RoutingError:
        return
    if timer.purpose == QUEUE_OVERFLOW:
        queue_id = (timer.payload or {}).get("queue")
        if row.state != ConversationState.WAITING or row.queue_id != queue_id:
            return
        config = await get_config(tx.session, row.environment_id or "")
        queue = config.queues.get(queue_id or "") if config else None
        if config is None or queue is None or queue.in_queue_overflow is None:
            return
        action = queue.in_queue_overflow.action
        reason = f"waited over {queue.in_queue_overflow.wait_seconds} s in '{queue_id}'"
        pending = await tx.session.scalar(
            select(OfferRow).where(OfferRow.pending_for == row.id).with_for_update()
        )
        if action.kind is OverflowActionKind.END_CONVERSATION:
            if pending is not None:
                await _close_offer(tx, pending, "withdrawn", now)
            await _end_unassigned(tx, row, "routing", reason, action.message, now)
        elif action.kind is OverflowActionKind.TRANSFER_TO_QUEUE and action.queue:
            if pending is not None:
                await _close_offer(tx, pending, "withdrawn", now)
            target = config.queues[action.queue]
            routing = {**(row.routing or {}), "queue": target.id, "rejected": [], "reason": reason}
            await _enqueue(tx, row, config, target, routing, None, "routing", reason, now)
            await do_assign_queue(tx, config, target.id, now)
        elif action.kind in (OverflowActionKind.VOICEMAIL, OverflowActionKind.CALLBACK):
            row.routing = {**(row.routing or {}), "overflow": action.kind.value}
    elif timer.purpose == AUTO_CLOSE and row.state == ConversationState.WAITING:
        await do_close_conversation(tx, row.id, "routing", "closed after inactivity", now)
    elif timer.purpose == WRAP_UP_END and row.state == ConversationState.WRAP_UP:
        await release_agent(tx, row, now)


async def do_run_due_timers(tx: Transaction, now: datetime, limit: int = 100) -> int:
    """Fire every due timer once: claimed with row locks, so concurrent workers share the work."""
    timers = list(
        await tx.session.scalars(
            select(TimerRow)
            .where(TimerRow.done.is_(False), TimerRow.due_at <= now)
            .order_by(TimerRow.due_at, TimerRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for timer in timers:
        timer.done = True
        await _fire(tx, timer, now)
    return len(timers)


async def do_assign_all(tx: Transaction, environment: str, now: datetime) -> int:
    """An assignment cycle over every queue with waiting work (the periodic safety net)."""
    config = await get_config(tx.session, environment)
    if config is None:
        return 0
    queues = await tx.session.scalars(
        select(ConversationRow.queue_id)
        .where(
            ConversationRow.environment_id == environment, ConversationRow.state == ConversationState.WAITING
        )
        .distinct()
    )
    total = 0
    for queue_id in list(queues):
        if queue_id:
            total += len(await do_assign_queue(tx, config, queue_id, now))
    return total
