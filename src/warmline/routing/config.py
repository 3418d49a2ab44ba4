"""Routing configuration: cross-reference checks, versioned storage, and the in-process cache.

A configuration is applied whole (``warmline config apply`` or the REST API): it is validated,
compared with the current version, and stored as the next version together with the agents'
rows and queue memberships, in one transaction — an invalid file changes nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from warmline.bot.expressions import Expression, ExpressionError, parse
from warmline.routing.model import (
    Agent,
    BasePresence,
    CapacityProfile,
    ContactCenter,
    OperatingHours,
    OverflowAction,
    OverflowActionKind,
    Queue,
    Workstream,
    WorkstreamType,
)
from warmline.store import Transaction
from warmline.store.schema import (
    AgentRow,
    ConversationRow,
    EnvironmentRow,
    QueueMemberRow,
    RoutingConfigRow,
)

RULE_NAMESPACES = ("Context.", "Conversation.", "Global.", "Topic.", "va_", "msdyn_")
PASSWORDS = PasswordHasher()
DEFAULT_PROFILE = CapacityProfile(id="default", name="Default", messaging=3, voice=1)

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigProblem:
    """A mistake in a configuration, at a path such as ``workstreams[0].rules[1].queue``."""

    path: Path
    message: str

    @property
    def where(self) -> str:
        """The path as text."""
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out


class ConfigRefused(ValueError):
    """A configuration that cannot be applied; nothing was changed."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("; ".join(f"{p.where}: {p.message}" for p in problems))
        self.problems = problems


def _duplicates(items: list[Any], what: str, path: str) -> Iterator[ConfigProblem]:
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item.id in seen:
            yield ConfigProblem((path, index, "id"), f"{what} id '{item.id}' is used twice")
        seen.add(item.id)


def check_rule_condition(source: str) -> str | None:
    """Why a route-to-queue condition is unusable, or None."""
    text = source[1:] if source.startswith("=") else source
    try:
        expression = parse(text)
    except ExpressionError as error:
        return f"bad condition at column {error.column}: {error.message}"
    for name in expression.names:
        if not name.startswith(RULE_NAMESPACES):
            return (
                f"unknown name '{name}' in condition (use Context.<name>, Conversation.Channel, "
                "Conversation.Locale, Conversation.IsAuthenticated, Global.<name>, Topic.<name>, "
                "va_*, msdyn_*)"
            )
    return None


def check_contact_center(config: ContactCenter) -> list[ConfigProblem]:
    """Cross-reference problems pydantic cannot see alone."""
    problems: list[ConfigProblem] = []
    for items, what, path in (
        (config.queues, "queue", "queues"),
        (config.workstreams, "workstream", "workstreams"),
        (config.agents, "agent", "agents"),
        (config.skills, "skill", "skills"),
        (config.capacity_profiles, "capacity profile", "capacity_profiles"),
        (config.operating_hours, "operating hours", "operating_hours"),
    ):
        problems.extend(_duplicates(list(items), what, path))
    queues = {q.id: q for q in config.queues}
    hours = {h.id for h in config.operating_hours}
    skills = {s.id for s in config.skills}
    profiles = {p.id for p in config.capacity_profiles}

    def queue_ref(path: Path, queue_id: str | None, kind: WorkstreamType | None = None) -> None:
        if queue_id is None:
            return
        queue = queues.get(queue_id)
        if queue is None:
            problems.append(ConfigProblem(path, f"unknown queue '{queue_id}'"))
        elif kind is not None and queue.type is not kind:
            problems.append(
                ConfigProblem(
                    path, f"queue '{queue_id}' is a {queue.type.value} queue; this needs a {kind.value} queue"
                )
            )

    def action_ref(path: Path, action: OverflowAction | None, kind: WorkstreamType) -> None:
        if action is None:
            return
        queue_ref((*path, "queue"), action.queue, kind)
        if (
            action.kind in (OverflowActionKind.VOICEMAIL, OverflowActionKind.CALLBACK)
            and kind is not WorkstreamType.VOICE
        ):
            problems.append(ConfigProblem((*path, "kind"), f"{action.kind.value} is only for voice queues"))

    for index, queue in enumerate(config.queues):
        base: Path = ("queues", index)
        if queue.operating_hours and queue.operating_hours not in hours:
            problems.append(
                ConfigProblem(
                    (*base, "operating_hours"), f"unknown operating hours '{queue.operating_hours}'"
                )
            )
        if queue.pre_queue_overflow:
            action_ref((*base, "pre_queue_overflow", "action"), queue.pre_queue_overflow.action, queue.type)
            action_ref(
                (*base, "pre_queue_overflow", "out_of_hours"),
                queue.pre_queue_overflow.out_of_hours,
                queue.type,
            )
            if queue.pre_queue_overflow.out_of_hours and not queue.operating_hours:
                problems.append(
                    ConfigProblem(
                        (*base, "pre_queue_overflow", "out_of_hours"),
                        "an out-of-hours action needs operating_hours on the queue",
                    )
                )
            if queue.pre_queue_overflow.average_wait_seconds and queue.type is not WorkstreamType.VOICE:
                problems.append(
                    ConfigProblem(
                        (*base, "pre_queue_overflow", "average_wait_seconds"),
                        "average wait overflow is only for voice queues",
                    )
                )
        if queue.in_queue_overflow:
            action_ref((*base, "in_queue_overflow", "action"), queue.in_queue_overflow.action, queue.type)
    for index, workstream in enumerate(config.workstreams):
        base = ("workstreams", index)
        queue_ref((*base, "fallback_queue"), workstream.fallback_queue, workstream.type)
        for rule_index, rule in enumerate(workstream.rules):
            rule_path: Path = (*base, "rules", rule_index)
            queue_ref((*rule_path, "queue"), rule.queue, workstream.type)
            problem = check_rule_condition(rule.condition)
            if problem:
                problems.append(ConfigProblem((*rule_path, "condition"), problem))
            for skill in rule.skills:
                if skill not in skills:
                    problems.append(ConfigProblem((*rule_path, "skills"), f"unknown skill '{skill}'"))
    for index, agent in enumerate(config.agents):
        base = ("agents", index)
        if agent.capacity_profile and agent.capacity_profile not in profiles:
            problems.append(
                ConfigProblem(
                    (*base, "capacity_profile"), f"unknown capacity profile '{agent.capacity_profile}'"
                )
            )
        for skill in agent.skills:
            if skill not in skills:
                problems.append(ConfigProblem((*base, "skills"), f"unknown skill '{skill}'"))
        for queue_index, queue_id in enumerate(agent.queues):
            queue_ref((*base, "queues", queue_index), queue_id)
    return problems


@dataclass
class RoutingConfig:
    """One environment's configuration, indexed for the assignment cycle."""

    environment: str
    version: int
    document: ContactCenter
    queues: dict[str, Queue] = field(default_factory=dict)
    workstreams: dict[str, Workstream] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    hours: dict[str, OperatingHours] = field(default_factory=dict)
    profiles: dict[str, CapacityProfile] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    rules: dict[str, list[tuple[Expression, int]]] = field(default_factory=dict)
    presences: dict[str, BasePresence] = field(default_factory=dict)

    @classmethod
    def build(cls, environment: str, version: int, document: ContactCenter) -> RoutingConfig:
        """Index a validated document."""
        config = cls(environment, version, document)
        config.queues = {q.id: q for q in document.queues}
        config.workstreams = {w.id: w for w in document.workstreams}
        config.agents = {a.id: a for a in document.agents}
        config.hours = {h.id: h for h in document.operating_hours}
        config.profiles = {p.id: p for p in document.capacity_profiles}
        config.presences = {p.name: p.base for p in document.presences}
        for agent in document.agents:
            for queue_id in agent.queues:
                config.members.setdefault(queue_id, []).append(agent.id)
        for workstream in document.workstreams:
            compiled = []
            for index, rule in enumerate(workstream.rules):
                source = rule.condition[1:] if rule.condition.startswith("=") else rule.condition
                compiled.append((parse(source), index))
            config.rules[workstream.id] = compiled
        return config

    def capacity(self, agent_id: str, kind: WorkstreamType) -> int:
        """An agent's limit for a workstream type (their profile, or the default profile)."""
        agent = self.agents.get(agent_id)
        profile = self.profiles.get(agent.capacity_profile or "") if agent else None
        profile = profile or DEFAULT_PROFILE
        return profile.voice if kind is WorkstreamType.VOICE else profile.messaging

    def workstream_for_queue(self, queue_id: str) -> Workstream | None:
        """A workstream that routes into this queue (for capacity units and offer timeouts)."""
        for workstream in self.workstreams.values():
            if workstream.fallback_queue == queue_id or any(r.queue == queue_id for r in workstream.rules):
                return workstream
        return None


# Per database (engine), so two databases in one process — tests, or a tool holding two — never
# share a version number's parsed document.
_cache: weakref.WeakKeyDictionary[object, dict[tuple[str, int], RoutingConfig]] = weakref.WeakKeyDictionary()


async def get_config(session: AsyncSession, environment: str) -> RoutingConfig | None:
    """The newest applied configuration of an environment (parsed once per version per process)."""
    version = await session.scalar(
        select(func.max(RoutingConfigRow.version)).where(RoutingConfigRow.environment_id == environment)
    )
    if version is None:
        return None
    cache = _cache.setdefault(session.get_bind(), {})
    cached = cache.get((environment, version))
    if cached is not None:
        return cached
    row = await session.get(RoutingConfigRow, (environment, version))
    assert row is not None
    config = RoutingConfig.build(environment, version, ContactCenter.model_validate(row.document))
    cache[(environment, version)] = config
    return config


@dataclass(frozen=True)
class ConfigChange:
    """One line of a diff: ``+`` added, ``-`` removed, ``~`` changed."""

    sign: str
    section: str
    id: str

    def __str__(self) -> str:
        return f"{self.sign} {self.section} {self.id}"


def diff(old: ContactCenter | None, new: ContactCenter) -> list[ConfigChange]:
    """What applying ``new`` over ``old`` changes, section by section."""
    changes: list[ConfigChange] = []
    sections = ("operating_hours", "skills", "capacity_profiles", "queues", "workstreams", "agents")
    for section in sections:
        before = {i.id: i.model_dump() for i in getattr(old, section, [])} if old else {}
        after = {i.id: i.model_dump() for i in getattr(new, section)}
        for item_id in sorted(after.keys() - before.keys()):
            changes.append(ConfigChange("+", section, item_id))
        for item_id in sorted(before.keys() - after.keys()):
            changes.append(ConfigChange("-", section, item_id))
        for item_id in sorted(after.keys() & before.keys()):
            if _without_password(after[item_id]) != _without_password(before[item_id]):
                changes.append(ConfigChange("~", section, item_id))
    if old is not None and [p.model_dump() for p in old.presences] != [p.model_dump() for p in new.presences]:
        changes.append(ConfigChange("~", "presences", "*"))
    return changes


def _without_password(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "password"}


def check_change(old: ContactCenter | None, new: ContactCenter) -> list[ConfigProblem]:
    """Edits a running workstream cannot take (D365: the distribution mode can't be edited later)."""
    if old is None:
        return []
    before = {w.id: w for w in old.workstreams}
    problems: list[ConfigProblem] = []
    for index, workstream in enumerate(new.workstreams):
        previous = before.get(workstream.id)
        if previous is None:
            continue
        for field_name in ("type", "distribution"):
            was, now = getattr(previous, field_name), getattr(workstream, field_name)
            if was is not now:
                problems.append(
                    ConfigProblem(
                        ("workstreams", index, field_name),
                        f"a workstream's {field_name} is fixed after creation ('{workstream.id}' is "
                        f"{was.value}); create a new workstream instead",
                    )
                )
    return problems


async def _removed_in_use(
    session: AsyncSession, old: ContactCenter | None, new: ContactCenter
) -> list[ConfigProblem]:
    """Removing a queue or workstream that conversations in flight still use would strand them."""
    if old is None:
        return []
    problems: list[ConfigProblem] = []
    in_flight = ConversationRow.state.not_in(("closed", "open", "pending"))
    for section, column, what in (
        ("queues", ConversationRow.queue_id, "queue"),
        ("workstreams", ConversationRow.workstream_id, "workstream"),
    ):
        removed = {i.id for i in getattr(old, section)} - {i.id for i in getattr(new, section)}
        for item_id in sorted(removed):
            count = await session.scalar(
                select(func.count())
                .select_from(ConversationRow)
                .where(ConversationRow.environment_id == new.environment, column == item_id, in_flight)
            )
            if count:
                problems.append(
                    ConfigProblem(
                        (section,),
                        f"{what} '{item_id}' cannot be removed: {count} conversation(s) in it are not "
                        "closed yet (transfer or close them first)",
                    )
                )
    return problems


async def _changed_passwords(session: AsyncSession, config: ContactCenter) -> list[str]:
    """Agents whose given password differs from the stored one (so re-applying a file is a no-op)."""
    given = {a.id: a.password for a in config.agents if a.password}
    if not given:
        return []
    rows = await session.execute(
        select(AgentRow.id, AgentRow.password_hash).where(
            AgentRow.environment_id == config.environment, AgentRow.id.in_(given)
        )
    )
    hashes = {agent_id: password_hash for agent_id, password_hash in rows}
    changed = []
    for agent_id, password in sorted(given.items()):
        stored = hashes.get(agent_id)
        try:
            if stored and PASSWORDS.verify(stored, password):
                continue
        except (VerificationError, InvalidHashError):
            pass
        changed.append(agent_id)
    return changed


@dataclass(frozen=True)
class ConfigPlan:
    """What applying a configuration would do: the current version and the changes."""

    current: RoutingConfig | None
    changes: list[ConfigChange]
    new_passwords: frozenset[str] = frozenset()

    @property
    def next_version(self) -> int:
        """The version an apply would store (the current one when nothing changes)."""
        version = self.current.version if self.current else 0
        return version + 1 if self.changes or self.current is None else version


async def plan_config(session: AsyncSession, config: ContactCenter) -> ConfigPlan:
    """Check ``config`` against itself and the running system, and diff it (raises ``ConfigRefused``)."""
    problems = check_contact_center(config)
    current = await get_config(session, config.environment)
    old = current.document if current else None
    problems += check_change(old, config)
    if problems:
        raise ConfigRefused(problems)
    problems = await _removed_in_use(session, old, config)
    if problems:
        raise ConfigRefused(problems)
    changes = diff(old, config)
    changed = {c.id for c in changes if c.section == "agents"}
    new_passwords = await _changed_passwords(session, config)
    for agent_id in new_passwords:
        if agent_id not in changed:
            changes.append(ConfigChange("~", "agents", agent_id))
    return ConfigPlan(current, changes, frozenset(new_passwords))


async def do_apply_config(
    tx: Transaction, config: ContactCenter, now: datetime
) -> tuple[int, list[ConfigChange]]:
    """Store ``config`` as the environment's next version (none when nothing changed).

    Raises ``ConfigRefused`` (with every problem) before writing anything.
    """
    session = tx.session
    plan = await plan_config(session, config)
    current, changes = plan.current, plan.changes
    environment = await session.get(EnvironmentRow, config.environment)
    if environment is None:
        session.add(
            EnvironmentRow(
                id=config.environment,
                name=config.name or config.environment,
                geography=None,
                omnichannel_enabled=True,
                created_at=now,
            )
        )
    elif config.name:
        environment.name = config.name
    if current is not None and not changes:
        return current.version, []
    version = plan.next_version
    document = config.model_dump(mode="json")
    for agent in document["agents"]:
        agent.pop("password", None)  # passwords live hashed on the agent row, never in the document
    session.add(
        RoutingConfigRow(
            environment_id=config.environment, version=version, document=document, applied_at=now
        )
    )
    await _sync_agents(session, config, plan.new_passwords, now)
    await session.flush()
    return version, changes


async def _sync_agents(
    session: AsyncSession, config: ContactCenter, new_passwords: frozenset[str], now: datetime
) -> None:
    existing = {
        row.id: row
        for row in await session.scalars(
            select(AgentRow).where(AgentRow.environment_id == config.environment)
        )
    }
    wanted = {a.id: a for a in config.agents}
    for agent_id, agent in wanted.items():
        row = existing.get(agent_id)
        if row is None:
            row = AgentRow(
                environment_id=config.environment,
                id=agent_id,
                name=agent.name,
                password_hash=None,
                presence=BasePresence.OFFLINE.value,
                presence_text=None,
                presence_at=now,
                load_messaging=0,
                load_voice=0,
                last_assigned_at=None,
                active=True,
            )
            session.add(row)
        row.name = agent.name
        row.active = True
        if agent.password and agent_id in new_passwords:  # hashing is slow on purpose; only when new
            row.password_hash = PASSWORDS.hash(agent.password)
    for agent_id, row in existing.items():
        if agent_id not in wanted:
            row.active = False  # kept for history; a removed agent is never offered work
            row.presence = BasePresence.OFFLINE.value
    members = {
        (m.queue_id, m.agent_id): m
        for m in await session.scalars(
            select(QueueMemberRow).where(QueueMemberRow.environment_id == config.environment)
        )
    }
    wanted_members = {(q, a.id) for a in config.agents for q in a.queues}
    for queue_id, agent_id in wanted_members - members.keys():
        session.add(
            QueueMemberRow(
                environment_id=config.environment,
                queue_id=queue_id,
                agent_id=agent_id,
                added_at=now,
                last_assigned_at=None,
            )
        )
    for queue_id, agent_id in members.keys() - wanted_members:
        await session.execute(
            delete(QueueMemberRow).where(
                QueueMemberRow.environment_id == config.environment,
                QueueMemberRow.queue_id == queue_id,
                QueueMemberRow.agent_id == agent_id,
            )
        )
