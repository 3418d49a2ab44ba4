"""Choosing an agent for a conversation: pure functions over a snapshot of candidates.

Kept free of I/O so the assignment rules (capacity, presence, skills, method) can be tested
exhaustively with hypothesis; ``actions`` then claims the chosen agent's capacity atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from warmline.routing.model import AssignmentMethod, SkillMatching

EPOCH = datetime(1970, 1, 1).astimezone()


@dataclass(frozen=True)
class Candidate:
    """An agent as the assignment cycle sees it."""

    agent_id: str
    load: int
    capacity: int
    presence_ok: bool
    skills: Mapping[str, int]
    added_at: datetime
    last_assigned_at: datetime | None = None
    queue_last_assigned_at: datetime | None = None

    @property
    def free(self) -> int:
        """Capacity units still available."""
        return self.capacity - self.load


def skill_gap(required: Mapping[str, int], skills: Mapping[str, int]) -> tuple[int, int, int]:
    """(missing skills, total shortfall, total surplus): smaller is a closer match."""
    missing = sum(1 for s in required if s not in skills)
    shortfall = sum(max(0, level - skills.get(s, 0)) for s, level in required.items())
    surplus = sum(max(0, skills.get(s, 0) - level) for s, level in required.items() if s in skills)
    return missing, shortfall, surplus


def qualifies(required: Mapping[str, int], skills: Mapping[str, int]) -> bool:
    """Every required skill at or above the required proficiency (exact match)."""
    return all(skills.get(s, 0) >= level for s, level in required.items())


def eligible(
    candidates: Sequence[Candidate],
    units: int,
    required: Mapping[str, int],
    matching: SkillMatching,
    excluded: frozenset[str] = frozenset(),
) -> list[Candidate]:
    """Agents who may take the conversation now: present, with room, qualified, not excluded."""
    found = [c for c in candidates if c.presence_ok and c.free >= units and c.agent_id not in excluded]
    if matching is SkillMatching.EXACT and required:
        found = [c for c in found if qualifies(required, c.skills)]
    return found


def _since(value: datetime | None) -> datetime:
    return value or EPOCH


def order(
    candidates: Sequence[Candidate],
    method: AssignmentMethod,
    required: Mapping[str, int],
    matching: SkillMatching,
) -> list[Candidate]:
    """Candidates best first, by skill closeness (when matching is closest) then the queue's method."""

    def method_key(c: Candidate) -> tuple[object, ...]:
        if method is AssignmentMethod.ROUND_ROBIN:
            return (_since(c.queue_last_assigned_at), c.added_at, c.agent_id)
        if method is AssignmentMethod.LEAST_ACTIVE:
            return (c.load, _since(c.last_assigned_at), c.agent_id)
        return (-c.free, _since(c.last_assigned_at), c.agent_id)

    def key(c: Candidate) -> tuple[object, ...]:
        if matching is SkillMatching.CLOSEST and required:
            missing, shortfall, surplus = skill_gap(required, c.skills)
            # Exactly qualified first, then over-qualified, then under-qualified (seed §3.5).
            band = 0 if (shortfall == 0 and surplus == 0) else (1 if shortfall == 0 else 2)
            return (band, missing, shortfall, surplus, *method_key(c))
        return method_key(c)

    return sorted(candidates, key=key)


def pick_agent(
    candidates: Sequence[Candidate],
    *,
    units: int,
    method: AssignmentMethod,
    required: Mapping[str, int],
    matching: SkillMatching,
    excluded: frozenset[str] = frozenset(),
) -> list[Candidate]:
    """Eligible agents in the order they should be offered the conversation."""
    return order(eligible(candidates, units, required, matching, excluded), method, required, matching)


def effective_priority(priority: int, queued_at: datetime, now: datetime, aging_seconds: int | None) -> int:
    """Priority after aging: one step better for every ``aging_seconds`` waited (never below zero)."""
    if not aging_seconds:
        return priority
    steps = int(max(0.0, (now - queued_at).total_seconds()) // aging_seconds)
    return max(0, priority - steps)
