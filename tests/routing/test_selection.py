"""Agent selection as pure functions: capacity, presence, skills, the three methods, priority aging."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from warmline.routing.model import AssignmentMethod, SkillMatching
from warmline.routing.selection import Candidate, effective_priority, pick_agent, qualifies, skill_gap

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SKILLS = ("billing", "french", "returns")

_moments = st.one_of(st.none(), st.integers(0, 50).map(lambda s: T0 + timedelta(seconds=s)))


@st.composite
def candidates(draw: st.DrawFn, min_size: int = 0, max_size: int = 8) -> list[Candidate]:
    """Agents with distinct ids and arbitrary load, capacity, presence, skills and history."""
    count = draw(st.integers(min_size, max_size))
    found = []
    for index in range(count):
        capacity = draw(st.integers(0, 4))
        found.append(
            Candidate(
                agent_id=f"a{index:02d}",
                load=draw(st.integers(0, 5)),
                capacity=capacity,
                presence_ok=draw(st.booleans()),
                skills=draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), max_size=3)),
                added_at=T0 - timedelta(minutes=draw(st.integers(0, 5))),
                last_assigned_at=draw(_moments),
                queue_last_assigned_at=draw(_moments),
            )
        )
    return found


_required = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), max_size=3)
_methods = st.sampled_from(list(AssignmentMethod))
_matchings = st.sampled_from(list(SkillMatching))


def agent(agent_id: str, **fields: Any) -> Candidate:
    base = Candidate(
        agent_id=agent_id, load=0, capacity=3, presence_ok=True, skills={}, added_at=T0 - timedelta(hours=1)
    )
    return replace(base, **fields)


def ids(found: list[Candidate]) -> list[str]:
    return [c.agent_id for c in found]


# --- eligibility -------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    pool=candidates(),
    units=st.integers(0, 3),
    method=_methods,
    required=_required,
    matching=_matchings,
    excluded=st.frozensets(st.sampled_from([f"a{i:02d}" for i in range(8)])),
)
def test_pick_agent_returns_exactly_the_eligible_agents_once(
    pool: list[Candidate],
    units: int,
    method: AssignmentMethod,
    required: dict[str, int],
    matching: SkillMatching,
    excluded: frozenset[str],
) -> None:
    chosen = pick_agent(
        pool, units=units, method=method, required=required, matching=matching, excluded=excluded
    )
    expected = {
        c.agent_id
        for c in pool
        if c.presence_ok
        and c.load + units <= c.capacity
        and c.agent_id not in excluded
        and (
            matching is not SkillMatching.EXACT
            or all(c.skills.get(skill, 0) >= level for skill, level in required.items())
        )
    }
    assert len(ids(chosen)) == len(set(ids(chosen)))
    assert set(ids(chosen)) == expected


@settings(max_examples=100, deadline=None)
@given(
    pool=candidates(),
    demands=st.lists(st.integers(1, 3), max_size=12),
    method=_methods,
    required=_required,
    matching=_matchings,
)
def test_an_assignment_cycle_never_exceeds_anyones_capacity(
    pool: list[Candidate],
    demands: list[int],
    method: AssignmentMethod,
    required: dict[str, int],
    matching: SkillMatching,
) -> None:
    """Offer conversations one after another to the first agent in order, as the cycle does."""
    agents = {c.agent_id: c for c in pool}
    start = {c.agent_id: c.load for c in pool}
    for step, units in enumerate(demands):
        order = pick_agent(
            list(agents.values()), units=units, method=method, required=required, matching=matching
        )
        if not order:
            continue
        first = order[0]
        moment = T0 + timedelta(minutes=1, seconds=step)
        agents[first.agent_id] = replace(
            first, load=first.load + units, last_assigned_at=moment, queue_last_assigned_at=moment
        )
    for agent_id, after in agents.items():
        # Agents who were already over their limit (forced assignments) get nothing more.
        assert after.load <= max(after.capacity, start[agent_id])
        if start[agent_id] > after.capacity:
            assert after.load == start[agent_id]


def test_nobody_is_chosen_when_the_units_do_not_fit() -> None:
    pool = [agent("ava", load=2, capacity=3), agent("ben", load=0, capacity=1)]
    for units, expected in ((0, ["ava", "ben"]), (1, ["ava", "ben"]), (2, [])):
        chosen = pick_agent(
            pool,
            units=units,
            method=AssignmentMethod.HIGHEST_CAPACITY,
            required={},
            matching=SkillMatching.NONE,
        )
        assert ids(chosen) == expected


def test_presence_and_exclusions_filter_agents_out() -> None:
    pool = [agent("ava"), agent("ben", presence_ok=False), agent("cat")]
    chosen = pick_agent(
        pool,
        units=1,
        method=AssignmentMethod.HIGHEST_CAPACITY,
        required={},
        matching=SkillMatching.NONE,
        excluded=frozenset({"cat"}),
    )
    assert ids(chosen) == ["ava"]


# --- skills --------------------------------------------------------------------------------------------


def test_exact_match_needs_every_skill_at_or_above_the_level() -> None:
    pool = [
        agent("at-level", skills={"billing": 3, "french": 5}),
        agent("above", skills={"billing": 9, "french": 9}),
        agent("one-short", skills={"billing": 2, "french": 5}),
        agent("missing-one", skills={"billing": 3}),
        agent("none"),
    ]
    chosen = pick_agent(
        pool,
        units=1,
        method=AssignmentMethod.HIGHEST_CAPACITY,
        required={"billing": 3, "french": 5},
        matching=SkillMatching.EXACT,
    )
    assert sorted(ids(chosen)) == ["above", "at-level"]
    assert qualifies({}, {})  # nothing required: everyone qualifies


def test_exact_match_with_no_requirement_keeps_everyone() -> None:
    pool = [agent("ava", skills={"billing": 1}), agent("ben")]
    chosen = pick_agent(
        pool, units=1, method=AssignmentMethod.HIGHEST_CAPACITY, required={}, matching=SkillMatching.EXACT
    )
    assert sorted(ids(chosen)) == ["ava", "ben"]


def test_closest_match_orders_exact_then_over_then_under_qualified() -> None:
    pool = [
        agent("missing", skills={}),
        agent("under", skills={"billing": 2}),
        agent("far-over", skills={"billing": 10}),
        agent("over", skills={"billing": 5}),
        agent("exact", skills={"billing": 4}),
    ]
    chosen = pick_agent(
        pool,
        units=1,
        method=AssignmentMethod.HIGHEST_CAPACITY,
        required={"billing": 4},
        matching=SkillMatching.CLOSEST,
    )
    assert ids(chosen) == ["exact", "over", "far-over", "under", "missing"]


def _band(required: dict[str, int], skills: dict[str, int]) -> tuple[int, int, int, int]:
    missing, shortfall, surplus = skill_gap(required, skills)
    band = 0 if shortfall == 0 and surplus == 0 else 1 if shortfall == 0 else 2
    return band, missing, shortfall, surplus


@settings(max_examples=100, deadline=None)
@given(pool=candidates(), required=_required.filter(bool), method=_methods)
def test_closest_match_never_puts_a_worse_band_before_a_better_one(
    pool: list[Candidate], required: dict[str, int], method: AssignmentMethod
) -> None:
    chosen = pick_agent(pool, units=0, method=method, required=required, matching=SkillMatching.CLOSEST)
    bands = [_band(required, dict(c.skills)) for c in chosen]
    assert bands == sorted(bands)
    # Band by band, by hand: exact-qualified, then over-qualified, then under-qualified.
    for c, (band, *_) in zip(chosen, bands, strict=True):
        levels = [(c.skills.get(skill, 0), level) for skill, level in required.items()]
        if band == 0:
            assert all(have == need for have, need in levels)
        elif band == 1:
            assert all(have >= need for have, need in levels) and any(have > need for have, need in levels)
        else:
            assert any(have < need for have, need in levels)


# --- assignment methods ---------------------------------------------------------------------------------


def test_highest_capacity_prefers_the_most_free_units_then_the_longest_idle() -> None:
    pool = [
        agent("busy", load=2, capacity=3),
        agent("recent", load=0, capacity=3, last_assigned_at=T0 + timedelta(seconds=30)),
        agent("idle", load=0, capacity=3, last_assigned_at=T0),
        agent("never", load=1, capacity=4),
    ]
    chosen = pick_agent(
        pool, units=1, method=AssignmentMethod.HIGHEST_CAPACITY, required={}, matching=SkillMatching.NONE
    )
    # never: 3 free, no assignment yet, so before idle and recent (3 free each, assigned later).
    assert ids(chosen) == ["never", "idle", "recent", "busy"]


def test_least_active_prefers_the_lowest_load() -> None:
    pool = [
        agent("two", load=2, capacity=9),
        agent("zero-recent", load=0, last_assigned_at=T0 + timedelta(seconds=5)),
        agent("zero-old", load=0, last_assigned_at=T0),
        agent("one", load=1, capacity=1),
    ]
    chosen = pick_agent(
        pool, units=0, method=AssignmentMethod.LEAST_ACTIVE, required={}, matching=SkillMatching.NONE
    )
    assert ids(chosen) == ["zero-old", "zero-recent", "one", "two"]


@settings(max_examples=100, deadline=None)
@given(
    joined=st.lists(st.integers(0, 600), min_size=1, max_size=8, unique=True),
    rounds=st.integers(1, 30),
)
def test_round_robin_serves_members_in_turn_from_the_order_they_joined(
    joined: list[int], rounds: int
) -> None:
    """With room for everyone, offer k goes to the (k mod n)-th member by time of joining."""
    agents = {
        f"a{index:02d}": agent(f"a{index:02d}", capacity=100, added_at=T0 - timedelta(seconds=seconds))
        for index, seconds in enumerate(joined)
    }
    by_joining = [a.agent_id for a in sorted(agents.values(), key=lambda a: a.added_at)]
    served = []
    for step in range(rounds):
        order = pick_agent(
            list(agents.values()),
            units=1,
            method=AssignmentMethod.ROUND_ROBIN,
            required={},
            matching=SkillMatching.NONE,
        )
        first = order[0]
        served.append(first.agent_id)
        moment = T0 + timedelta(seconds=step + 1)
        agents[first.agent_id] = replace(
            first, load=first.load + 1, last_assigned_at=moment, queue_last_assigned_at=moment
        )
    assert served == [by_joining[step % len(by_joining)] for step in range(rounds)]


def test_round_robin_skips_a_full_member_and_keeps_the_turn_order() -> None:
    pool = [
        agent("ava", added_at=T0 - timedelta(hours=3), queue_last_assigned_at=T0),
        agent("ben", added_at=T0 - timedelta(hours=2), load=3, capacity=3),
        agent("cat", added_at=T0 - timedelta(hours=1), queue_last_assigned_at=T0 + timedelta(seconds=1)),
    ]
    chosen = pick_agent(
        pool, units=1, method=AssignmentMethod.ROUND_ROBIN, required={}, matching=SkillMatching.NONE
    )
    assert ids(chosen) == ["ava", "cat"]


# --- priority aging ---------------------------------------------------------------------------------------


def test_priority_ages_one_step_per_period_and_stops_at_zero() -> None:
    queued = T0
    assert effective_priority(5, queued, queued + timedelta(seconds=59), 60) == 5
    assert effective_priority(5, queued, queued + timedelta(seconds=60), 60) == 4
    assert effective_priority(5, queued, queued + timedelta(seconds=179), 60) == 3
    assert effective_priority(5, queued, queued + timedelta(hours=5), 60) == 0
    assert effective_priority(5, queued, queued + timedelta(hours=5), None) == 5
    assert effective_priority(5, queued, queued - timedelta(seconds=120), 60) == 5  # clock skew


@settings(max_examples=100, deadline=None)
@given(
    priority=st.integers(0, 50),
    aging=st.one_of(st.none(), st.integers(1, 600)),
    first=st.integers(0, 10_000),
    later=st.integers(0, 10_000),
)
def test_aging_never_worsens_a_priority_over_time(
    priority: int, aging: int | None, first: int, later: int
) -> None:
    early, late = sorted((first, later))
    at_early = effective_priority(priority, T0, T0 + timedelta(seconds=early), aging)
    at_late = effective_priority(priority, T0, T0 + timedelta(seconds=late), aging)
    assert 0 <= at_late <= at_early <= priority
    if aging:
        assert at_late == max(0, priority - late // aging)
