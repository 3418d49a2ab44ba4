"""The typed model of a bot: topics, triggers and actions, as loaded from Copilot Studio-shaped YAML.

Every element remembers where it came from (file, line, column) so validation and run-time errors
can point an author at the exact spot, the way a compiler would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from warmline.bot.entities import Choice, EntityKind
from warmline.bot.expressions import Expression


@dataclass(frozen=True)
class Position:
    """A place in a source file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Template:
    """Text with ``{Topic.X}`` holes, pre-parsed; ``parts`` alternate literal text and expressions."""

    source: str
    parts: tuple[str | Expression, ...]
    position: Position


@dataclass(frozen=True)
class Value:
    """An action input: a Power Fx formula (``=...``) or a literal."""

    position: Position
    expression: Expression | None = None
    literal: Any = None


@dataclass(frozen=True)
class VariableRef:
    """A variable an action writes: ``init:Topic.X`` (first assignment) or ``Global.Y``."""

    name: str
    init: bool
    position: Position

    @property
    def scope(self) -> str:
        """``Topic``, ``Global``, ``System``, ``bot`` or ``Env``."""
        return self.name.split(".", 1)[0]


class TriggerKind(StrEnum):
    """How a topic starts."""

    RECOGNIZED_INTENT = "OnRecognizedIntent"
    CONVERSATION_START = "OnConversationStart"
    UNKNOWN_INTENT = "OnUnknownIntent"
    ESCALATE = "OnEscalate"
    ERROR = "OnError"
    SYSTEM_REDIRECT = "OnSystemRedirect"
    SIGN_IN = "OnSignIn"
    SELECT_INTENT = "OnSelectIntent"
    END_OF_CONVERSATION = "OnEndOfConversation"


@dataclass(frozen=True)
class Trigger:
    """A topic's ``beginDialog``."""

    kind: TriggerKind
    id: str
    position: Position
    display_name: str | None = None
    trigger_queries: tuple[str, ...] = ()
    condition: Expression | None = None


@dataclass(frozen=True)
class Action:
    """Fields every action has."""

    kind: str
    id: str
    position: Position


@dataclass(frozen=True)
class SendActivity(Action):
    """Send a message (text variants, speech, attachments such as adaptive cards)."""

    texts: tuple[Template, ...] = ()
    speak: tuple[Template, ...] = ()
    attachments: tuple[dict[str, Any], ...] = ()
    suggested_actions: tuple[str, ...] = ()
    conversation_outcome: str | None = None


@dataclass(frozen=True)
class Question(Action):
    """Ask, wait for the answer, extract an entity into a variable; re-prompt on failure."""

    variable: VariableRef | None = None
    prompt: SendActivity | None = None
    entity: EntityKind = EntityKind.STRING
    entity_name: str = "StringPrebuiltEntity"
    choices: tuple[Choice, ...] = ()
    choices_expression: Expression | None = None
    always_prompt: bool = False
    repeat_count: int = 2
    invalid_prompt: SendActivity | None = None
    default_value: Value | None = None
    on_failure: str = "escalate"  # "escalate" | "default" | "continue"
    allow_interruption: bool = True


@dataclass(frozen=True)
class SetVariable(Action):
    """Assign the value of a formula or literal."""

    variable: VariableRef | None = None
    value: Value | None = None


@dataclass(frozen=True)
class SetTextVariable(Action):
    """Assign interpolated text."""

    variable: VariableRef | None = None
    text: Template | None = None


@dataclass(frozen=True)
class ParseValue(Action):
    """Parse text (often JSON) into a typed variable."""

    variable: VariableRef | None = None
    value: Value | None = None
    value_type: str = "Any"


@dataclass(frozen=True)
class Branch:
    """One ``conditions`` entry of a ConditionGroup."""

    id: str
    condition: Expression
    actions: tuple[Action, ...]
    position: Position


@dataclass(frozen=True)
class ConditionGroup(Action):
    """First true condition's actions run, else ``elseActions``."""

    branches: tuple[Branch, ...] = ()
    else_actions: tuple[Action, ...] = ()


@dataclass(frozen=True)
class BeginDialog(Action):
    """Call another topic with inputs; its outputs come back into variables."""

    dialog: str = ""
    inputs: tuple[tuple[str, Value], ...] = ()
    outputs: tuple[tuple[str, VariableRef], ...] = ()


@dataclass(frozen=True)
class ReplaceDialog(Action):
    """Leave this topic for another one (no return)."""

    dialog: str = ""
    inputs: tuple[tuple[str, Value], ...] = ()


@dataclass(frozen=True)
class GotoAction(Action):
    """Continue at another action of the same topic."""

    target: str = ""


@dataclass(frozen=True)
class Simple(Action):
    """Actions with no fields of their own: EndDialog, CancelAllDialogs, ClearAllVariables,
    EndConversation, HangUp."""


@dataclass(frozen=True)
class CSATQuestion(Action):
    """Ask for a 1 to 5 satisfaction score."""

    variable: VariableRef | None = None


class TransferKind(StrEnum):
    """Where a TransferConversationV2 sends the conversation."""

    AGENT = "TransferToAgent"
    PHONE_NUMBER = "TransferToPhoneNumber"


@dataclass(frozen=True)
class TransferConversation(Action):
    """Hand the conversation to a live agent (with a private message) or to a phone number."""

    transfer: TransferKind = TransferKind.AGENT
    message_to_agent: Template | None = None
    context_kind: str = "AutomaticTransferContext"
    context_variables: tuple[tuple[str, Value], ...] = ()
    phone_number: Value | None = None


class TelephonyKind(StrEnum):
    """The telephony extension's actions (seed §2.2)."""

    SURVEY_CONSENT = "SetSurveyConsent"
    CUSTOMER_LOCALE = "SetCustomerLocaleAndTransfer"
    UNINTERRUPTIBLE_MESSAGE = "SendUninterruptibleMessage"
    TRANSFER_TO_PHONE_NUMBER = "TransferCallToPhoneNumber"
    HANG_UP = "HangUp"


@dataclass(frozen=True)
class Telephony(Action):
    """A voice-only action; the voice channel carries it out, other channels get a typed outcome."""

    telephony: TelephonyKind = TelephonyKind.HANG_UP
    value: Value | None = None


@dataclass(frozen=True)
class HttpRequest(Action):
    """Call an HTTP API the bot's settings allow; the response lands in a variable."""

    method: str = "GET"
    url: Template | None = None
    headers: tuple[tuple[str, Template], ...] = ()
    body: Value | None = None
    response: VariableRef | None = None
    response_schema: str = "Any"
    timeout_ms: int = 30000
    error_variable: VariableRef | None = None


@dataclass(frozen=True)
class Unsupported(Action):
    """A kind Warmline does not run yet; loading keeps it so validation can name it."""

    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicParameter:
    """A topic input or output, with its Power Fx type name."""

    name: str
    type: str
    position: Position


@dataclass(frozen=True)
class Topic:
    """One topic file: its trigger and actions."""

    name: str
    file: str
    trigger: Trigger
    actions: tuple[Action, ...]
    start_behavior: str | None = None
    inputs: tuple[TopicParameter, ...] = ()
    outputs: tuple[TopicParameter, ...] = ()
    is_system: bool = False


@dataclass(frozen=True)
class GlobalVariable:
    """A conversation-scoped variable from ``variables.yaml``; external ones the host page may set."""

    name: str
    type: str
    external: bool
    default: Value | None
    position: Position


@dataclass(frozen=True)
class ExternalBotSettings:
    """``bot.yaml`` ``external``: a Bot Framework bot Warmline is the channel of (no topics run here).

    Without ``app_id`` the bot runs unauthenticated (local development); with it, both directions
    carry JWTs for this app registration (see docs/handoff.md).
    """

    endpoint: str
    app_id: str | None = None
    app_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class BotSettings:
    """``bot.yaml``: identity, language and behaviour switches."""

    name: str
    language: str = "en-US"
    voice_enabled: bool = False
    recognition_threshold: float = 70.0
    ambiguity_margin: float = 5.0
    allowed_http_hosts: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    extensions: tuple[str, ...] = ()
    external: ExternalBotSettings | None = None


@dataclass(frozen=True)
class BotDefinition:
    """A whole bot: settings, topics by name, globals."""

    settings: BotSettings
    topics: dict[str, Topic]
    globals: dict[str, GlobalVariable]
    source: str
