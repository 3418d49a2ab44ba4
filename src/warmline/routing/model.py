"""Routing configuration as validated models, in Dynamics 365 unified-routing vocabulary.

The same models back the YAML file of ``warmline config apply`` and the REST API, so both refuse
exactly the same mistakes with the same messages.
"""

from __future__ import annotations

import itertools
import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

ID = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
_NUMBER_PROBLEMS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "does not start with a known country code",
    phonenumbers.ValidationResult.TOO_SHORT: "is too short",
    phonenumbers.ValidationResult.TOO_LONG: "is too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "has an impossible length",
}


def check_phone_number(value: str) -> str:
    """A phone number as the seed writes them: country code and number, digits only, no ``+``."""
    if value.startswith("+"):
        raise ValueError(f"'{value}': write phone numbers without '+' (country code and number, digits only)")
    if not value.isdigit() or not value.isascii():
        raise ValueError(f"'{value}': a phone number is digits only")
    try:
        parsed = phonenumbers.parse(f"+{value}", None)
    except phonenumbers.NumberParseException:
        raise ValueError(f"'{value}' does not start with a known country code") from None
    result = phonenumbers.is_possible_number_with_reason(parsed)
    problem = _NUMBER_PROBLEMS.get(result)
    if problem:
        raise ValueError(f"'{value}' {problem}")
    return value


PhoneNumber = Annotated[str, AfterValidator(check_phone_number)]
TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


class Strict(BaseModel):
    """Base: unknown fields are refused (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class WorkstreamType(StrEnum):
    """Channel family of a workstream or queue."""

    MESSAGING = "messaging"
    VOICE = "voice"


class Distribution(StrEnum):
    """Push: routing offers work to agents. Pick: agents take work from the queue."""

    PUSH = "push"
    PICK = "pick"


class AssignmentMethod(StrEnum):
    """How a queue orders eligible agents."""

    HIGHEST_CAPACITY = "highest-capacity"
    ROUND_ROBIN = "round-robin"
    LEAST_ACTIVE = "least-active"


class SkillMatching(StrEnum):
    """How required skills filter and order agents."""

    NONE = "none"
    EXACT = "exact"
    CLOSEST = "closest"


class BasePresence(StrEnum):
    """Base presence statuses every custom presence maps to."""

    AVAILABLE = "Available"
    BUSY = "Busy"
    BUSY_DND = "Busy-DND"
    AWAY = "Away"
    OFFLINE = "Offline"


class OverflowActionKind(StrEnum):
    """What happens to work that overflows a queue."""

    ASSIGN_ANYWAY = "assign-anyway"
    TRANSFER_TO_QUEUE = "transfer-to-queue"
    END_CONVERSATION = "end-conversation"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"


class OverflowAction(Strict):
    """An overflow action; ``queue`` for transfers, ``message`` for the customer."""

    kind: OverflowActionKind
    queue: ID | None = None
    message: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _queue_for_transfer(self) -> OverflowAction:
        if self.kind is OverflowActionKind.TRANSFER_TO_QUEUE and not self.queue:
            raise ValueError("transfer-to-queue needs 'queue'")
        return self


class PreQueueOverflow(Strict):
    """Checked once, before the conversation joins the queue."""

    out_of_hours: OverflowAction | None = None
    work_item_limit: int | None = Field(default=None, ge=1, le=100)
    average_wait_seconds: int | None = Field(default=None, ge=30, le=3600)
    action: OverflowAction | None = None

    @model_validator(mode="after")
    def _action_for_limits(self) -> PreQueueOverflow:
        if (self.work_item_limit or self.average_wait_seconds) and self.action is None:
            raise ValueError("a work item limit or average wait needs 'action'")
        return self


class InQueueOverflow(Strict):
    """Checked while the conversation waits: waited too long."""

    wait_seconds: int = Field(ge=60, le=2 * 24 * 3600)
    action: OverflowAction


class Holiday(Strict):
    """Closed all day(s), inclusive."""

    name: str = Field(min_length=1, max_length=200)
    start: date
    end: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Holiday:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"holiday '{self.name}' ends before it starts")
        return self

    @property
    def last_day(self) -> date:
        """The holiday's last day."""
        return self.end or self.start


DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class OperatingHours(Strict):
    """Weekly opening hours in a time zone, with holidays."""

    id: ID
    name: str = Field(min_length=1, max_length=200)
    timezone: str = "UTC"
    week: dict[str, list[tuple[str, str]]] = Field(default_factory=dict)
    holidays: list[Holiday] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"unknown time zone '{value}' (use an IANA name such as Europe/Paris)"
            ) from error
        return value

    @field_validator("week")
    @classmethod
    def _valid_week(cls, value: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
        for day, spans in value.items():
            if day.lower() not in DAYS:
                raise ValueError(f"'{day}' is not a day of the week")
            for start, end in spans:
                if not TIME.match(start) or not TIME.match(end):
                    raise ValueError(f"{day}: times must be HH:MM, got {start}-{end}")
                if start >= end:
                    raise ValueError(f"{day}: {start}-{end} ends before it starts")
            ordered = sorted(spans)
            for (_, first_end), (second_start, _) in itertools.pairwise(ordered):
                if second_start < first_end:
                    raise ValueError(f"{day}: opening spans overlap")
        return {day.lower(): spans for day, spans in value.items()}

    @model_validator(mode="after")
    def _holidays_do_not_overlap(self) -> OperatingHours:
        ordered = sorted(self.holidays, key=lambda h: h.start)
        for first, second in itertools.pairwise(ordered):
            if second.start <= first.last_day:
                raise ValueError(f"holidays '{first.name}' and '{second.name}' overlap")
        return self


class Queue(Strict):
    """A queue of waiting conversations and the agents who serve it."""

    id: ID
    name: str = Field(min_length=1, max_length=200)
    type: WorkstreamType = WorkstreamType.MESSAGING
    priority: int = Field(default=10, ge=0, le=1_000_000)
    assignment: AssignmentMethod = AssignmentMethod.HIGHEST_CAPACITY
    skill_matching: SkillMatching = SkillMatching.NONE
    operating_hours: ID | None = None
    pre_queue_overflow: PreQueueOverflow | None = None
    in_queue_overflow: InQueueOverflow | None = None
    priority_aging_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Every this many seconds waiting, a conversation gains one priority step.",
    )


class RoutingRule(Strict):
    """Route-to-queue rule: when ``condition`` (Power Fx over the context) holds, go to ``queue``."""

    name: str = Field(min_length=1, max_length=200)
    condition: str = Field(min_length=1, max_length=4000)
    queue: ID
    skills: dict[str, int] = Field(default_factory=dict)
    priority: int | None = Field(default=None, ge=0)


class Workstream(Strict):
    """Where conversations of a channel type enter routing."""

    id: ID
    name: str = Field(min_length=1, max_length=200)
    type: WorkstreamType = WorkstreamType.MESSAGING
    distribution: Distribution = Distribution.PUSH
    bot: ID | None = None
    capacity_units: int = Field(default=1, ge=0, le=1000)
    auto_close_seconds: int | None = Field(default=None, ge=60)
    wrap_up_seconds: int | None = Field(default=None, ge=0, le=3600)
    offer_timeout_seconds: int = Field(default=120, ge=5, le=3600)
    fallback_queue: ID
    rules: list[RoutingRule] = Field(default_factory=list)
    allowed_presences: list[BasePresence] = Field(default_factory=lambda: [BasePresence.AVAILABLE])
    post_conversation_survey: bool = False
    phone_numbers: list[PhoneNumber] = Field(
        default_factory=list, description="Numbers callers dial to reach this voice workstream."
    )

    @model_validator(mode="after")
    def _voice_is_push(self) -> Workstream:
        if self.type is WorkstreamType.VOICE and self.distribution is Distribution.PICK:
            raise ValueError("a voice workstream must use push distribution")
        if self.phone_numbers and self.type is not WorkstreamType.VOICE:
            raise ValueError("only a voice workstream has phone numbers")
        if self.bot and self.distribution is Distribution.PICK:
            raise ValueError("a bot can only be the first agent of a push workstream")
        return self


class Skill(Strict):
    """A skill agents have and conversations may require."""

    id: ID
    name: str = Field(min_length=1, max_length=200)


class CapacityProfile(Strict):
    """How many conversations an agent may hold at once, per workstream type."""

    id: ID
    name: str = Field(min_length=1, max_length=200)
    messaging: int = Field(default=3, ge=0, le=100)
    voice: int = Field(default=1, ge=0, le=100)


class Presence(Strict):
    """A custom presence shown to agents, mapped to a base status."""

    # 16: the agent row stores a custom presence's name in its 16-character presence column.
    name: str = Field(min_length=1, max_length=16)
    base: BasePresence


Role = Literal["agent", "supervisor", "administrator"]


def _agent_only() -> list[Role]:
    return ["agent"]


class Agent(Strict):
    """A person who takes conversations."""

    id: ID
    name: str = Field(min_length=1, max_length=200)
    roles: list[Role] = Field(default_factory=_agent_only)
    password: str | None = Field(default=None, min_length=4, max_length=200, repr=False)
    capacity_profile: ID | None = None
    skills: dict[str, int] = Field(default_factory=dict)
    queues: list[ID] = Field(default_factory=list)

    @field_validator("skills")
    @classmethod
    def _proficiency(cls, value: dict[str, int]) -> dict[str, int]:
        for skill, level in value.items():
            if not 1 <= level <= 10:
                raise ValueError(f"skill '{skill}' proficiency must be 1 to 10, not {level}")
        return value


class ContactCenter(Strict):
    """One environment's whole routing configuration (the ``config apply`` file)."""

    environment: ID
    name: str | None = None
    operating_hours: list[OperatingHours] = Field(default_factory=list)
    skills: list[Skill] = Field(default_factory=list)
    capacity_profiles: list[CapacityProfile] = Field(default_factory=list)
    presences: list[Presence] = Field(default_factory=list)
    queues: list[Queue] = Field(default_factory=list)
    workstreams: list[Workstream] = Field(default_factory=list)
    agents: list[Agent] = Field(default_factory=list)
    outbound_numbers: list[PhoneNumber] = Field(
        default_factory=list,
        description="Numbers calls may be transferred to (the 'Make calls' permission of the seed).",
    )

    @model_validator(mode="after")
    def _numbers_answer_once(self) -> ContactCenter:
        seen: dict[str, str] = {}
        for workstream in self.workstreams:
            for number in workstream.phone_numbers:
                if number in seen:
                    raise ValueError(
                        f"phone number {number} belongs to both '{seen[number]}' and '{workstream.id}'"
                    )
                seen[number] = workstream.id
        return self
