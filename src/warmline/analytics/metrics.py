"""Bot and queue metrics as pure functions over facts read from the store.

Definitions (also in docs/admin.md):

- a **session** is one started conversation with a bot;
- **engaged**: the customer sent at least one message;
- **escalated**: the bot handed the conversation off (a ``handoff.initiate`` is in its log);
- **resolved**: not escalated, and the bot ended it (EndConversation) or the customer answered CSAT;
- **abandoned**: neither escalated nor resolved.
  Rates are over sessions, so resolution + escalation + abandon = 100 %.
- **CSAT**: the bot's ``Global.CSAT`` answers and the post-conversation survey's ratings (1 to 5).
- **waiting time**: from entering the queue (the last move to ``waiting``) to the accepted offer;
  **handle time**: from the accepted offer to the move to ``wrap-up``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

UNKNOWN_TOPIC = "(unknown topic)"


class Outcome(StrEnum):
    """How a bot session ended up."""

    RESOLVED = "resolved"
    ESCALATED = "escalated"
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class ConversationFacts:
    """What analytics needs to know about one bot conversation."""

    id: str
    bot_id: str
    created_at: datetime
    customer_messages: int = 0
    handoff_topics: tuple[str | None, ...] = ()  # va_LastTopic of each handoff.initiate
    ended_by_bot: bool = False
    csat: float | None = None  # Global.CSAT
    survey_rating: int | None = None  # post-conversation survey


@dataclass(frozen=True)
class OfferFacts:
    """One offer of a conversation to an agent."""

    conversation_id: str
    queue_id: str
    state: str  # pending | accepted | rejected | expired | withdrawn
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True)
class TransitionFacts:
    """One move of a conversation between states."""

    conversation_id: str
    at: datetime
    to_state: str


@dataclass(frozen=True)
class BotMetrics:
    """A bot's (or all bots') sessions and outcomes."""

    bot: str
    sessions: int
    engaged: int
    resolved: int
    escalated: int
    abandoned: int
    escalation_by_topic: dict[str, int]
    csat_ratings: tuple[float, ...]

    def rate(self, count: int) -> float | None:
        """``count`` as a share of sessions (None without sessions)."""
        return count / self.sessions if self.sessions else None

    @property
    def engagement_rate(self) -> float | None:
        return self.rate(self.engaged)

    @property
    def resolution_rate(self) -> float | None:
        return self.rate(self.resolved)

    @property
    def escalation_rate(self) -> float | None:
        return self.rate(self.escalated)

    @property
    def abandon_rate(self) -> float | None:
        return self.rate(self.abandoned)

    @property
    def csat_average(self) -> float | None:
        return sum(self.csat_ratings) / len(self.csat_ratings) if self.csat_ratings else None

    def to_json(self) -> dict[str, Any]:
        """Counts, rates and CSAT as JSON."""
        return {
            "bot": self.bot,
            "sessions": self.sessions,
            "engaged": self.engaged,
            "resolved": self.resolved,
            "escalated": self.escalated,
            "abandoned": self.abandoned,
            "engagementRate": self.engagement_rate,
            "resolutionRate": self.resolution_rate,
            "escalationRate": self.escalation_rate,
            "abandonRate": self.abandon_rate,
            "escalationByTopic": dict(self.escalation_by_topic),
            "csatAverage": self.csat_average,
            "csatResponses": len(self.csat_ratings),
        }


@dataclass(frozen=True)
class QueueMetrics:
    """How long customers waited in a queue and agents worked on its conversations."""

    queue: str
    offers: int
    accepted: int
    rejected: int
    timed_out: int
    waits: tuple[float, ...] = field(default=())  # seconds
    handles: tuple[float, ...] = field(default=())  # seconds

    @property
    def average_wait(self) -> float | None:
        return mean(self.waits)

    @property
    def p90_wait(self) -> float | None:
        return percentile(self.waits, 90)

    @property
    def average_handle(self) -> float | None:
        return mean(self.handles)

    def to_json(self) -> dict[str, Any]:
        """Counts and times (seconds) as JSON."""
        return {
            "queue": self.queue,
            "offers": self.offers,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "timedOut": self.timed_out,
            "averageWaitSeconds": self.average_wait,
            "p90WaitSeconds": self.p90_wait,
            "averageHandleSeconds": self.average_handle,
            "handled": len(self.handles),
        }


def mean(values: Sequence[float]) -> float | None:
    """The arithmetic mean, or None for no values."""
    return sum(values) / len(values) if values else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (an observed value: "90 % waited at most this long")."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def outcome(conversation: ConversationFacts) -> Outcome:
    """Escalated beats resolved: a hand-off means the bot did not resolve it on its own."""
    if conversation.handoff_topics:
        return Outcome.ESCALATED
    if conversation.ended_by_bot or conversation.csat is not None:
        return Outcome.RESOLVED
    return Outcome.ABANDONED


def ratings(conversation: ConversationFacts) -> list[float]:
    """The conversation's CSAT answers: the bot's question and the survey after an agent."""
    found = []
    if conversation.csat is not None:
        found.append(float(conversation.csat))
    if conversation.survey_rating is not None:
        found.append(float(conversation.survey_rating))
    return found


def bot_metrics(bot: str, conversations: Iterable[ConversationFacts]) -> BotMetrics:
    """Sessions, outcomes, escalations by topic and CSAT of the given conversations."""
    items = list(conversations)
    outcomes = Counter(outcome(c) for c in items)
    topics: Counter[str] = Counter()
    for conversation in items:
        if conversation.handoff_topics:
            # The topic that escalated: the last hand-off's (one conversation counts once).
            topics[conversation.handoff_topics[-1] or UNKNOWN_TOPIC] += 1
    return BotMetrics(
        bot=bot,
        sessions=len(items),
        engaged=sum(1 for c in items if c.customer_messages > 0),
        resolved=outcomes[Outcome.RESOLVED],
        escalated=outcomes[Outcome.ESCALATED],
        abandoned=outcomes[Outcome.ABANDONED],
        escalation_by_topic=dict(sorted(topics.items(), key=lambda item: (-item[1], item[0]))),
        csat_ratings=tuple(r for c in items for r in ratings(c)),
    )


def per_bot(conversations: Iterable[ConversationFacts]) -> list[BotMetrics]:
    """One ``BotMetrics`` per bot, by bot id."""
    grouped: dict[str, list[ConversationFacts]] = defaultdict(list)
    for conversation in conversations:
        grouped[conversation.bot_id].append(conversation)
    return [bot_metrics(bot, grouped[bot]) for bot in sorted(grouped)]


def queue_metrics(
    offers: Iterable[OfferFacts],
    transitions: Iterable[TransitionFacts],
    queued_at: dict[str, datetime] | None = None,
) -> list[QueueMetrics]:
    """Per queue: offers and their outcomes, waiting time and handle time of accepted offers.

    ``queued_at`` is the fallback start of waiting for conversations without a ``waiting`` move.
    """
    moves: dict[str, list[TransitionFacts]] = defaultdict(list)
    for move in transitions:
        moves[move.conversation_id].append(move)
    for history in moves.values():
        history.sort(key=lambda m: m.at)
    by_queue: dict[str, list[OfferFacts]] = defaultdict(list)
    accepted_by_conversation: dict[str, list[datetime]] = defaultdict(list)
    for offer in offers:
        by_queue[offer.queue_id].append(offer)
        if offer.state == "accepted" and offer.decided_at is not None:
            accepted_by_conversation[offer.conversation_id].append(offer.decided_at)
    for times in accepted_by_conversation.values():
        times.sort()

    result = []
    for queue in sorted(by_queue):
        waits: list[float] = []
        handles: list[float] = []
        items = by_queue[queue]
        for offer in items:
            if offer.state != "accepted" or offer.decided_at is None:
                continue
            accepted = offer.decided_at
            history = moves.get(offer.conversation_id, [])
            entered = [m.at for m in history if m.to_state == "waiting" and m.at <= accepted]
            start = entered[-1] if entered else (queued_at or {}).get(offer.conversation_id)
            if start is not None:
                waits.append(max(0.0, (accepted - start).total_seconds()))
            # Handled until wrap-up, unless another agent accepted the conversation first (a transfer).
            later = [t for t in accepted_by_conversation[offer.conversation_id] if t > accepted]
            until = later[0] if later else None
            wrap = next(
                (
                    m.at
                    for m in history
                    if m.to_state == "wrap-up" and m.at >= accepted and (until is None or m.at <= until)
                ),
                None,
            )
            if wrap is not None:
                handles.append((wrap - accepted).total_seconds())
        result.append(
            QueueMetrics(
                queue=queue,
                offers=len(items),
                accepted=sum(1 for o in items if o.state == "accepted"),
                rejected=sum(1 for o in items if o.state == "rejected"),
                timed_out=sum(1 for o in items if o.state == "expired"),
                waits=tuple(waits),
                handles=tuple(handles),
            )
        )
    return result


@dataclass(frozen=True)
class AnalyticsReport:
    """An environment's (or one bot's) analytics, ready for the page, the API and CSV."""

    environment: str
    bot: str | None
    total: BotMetrics
    bots: list[BotMetrics]
    # None when omnichannel analytics cannot be computed (bot and omnichannel in different environments).
    queues: list[QueueMetrics] | None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The whole report as JSON."""
        return {
            "environment": self.environment,
            "bot": self.bot,
            "total": self.total.to_json(),
            "bots": [b.to_json() for b in self.bots],
            "queues": None if self.queues is None else [q.to_json() for q in self.queues],
            "omnichannelAnalytics": self.queues is not None,
            "notes": list(self.notes),
        }

    def csv_rows(self) -> list[list[str]]:
        """Long format: scope, name, metric, value (rates as fractions, times in seconds)."""
        rows = [["scope", "name", "metric", "value"]]

        def add(scope: str, name: str, data: dict[str, Any]) -> None:
            for metric, value in data.items():
                if metric in ("bot", "queue"):
                    continue
                if isinstance(value, dict):
                    for key, count in value.items():
                        rows.append([scope, name, f"{metric}:{key}", _cell(count)])
                else:
                    rows.append([scope, name, metric, _cell(value)])

        scope_name = self.bot or "all bots"
        add("bots", scope_name, self.total.to_json())
        if self.bot is None:
            for metrics in self.bots:
                add("bot", metrics.bot, metrics.to_json())
        for queue in self.queues or []:
            add("queue", queue.queue, queue.to_json())
        return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return str(value)
