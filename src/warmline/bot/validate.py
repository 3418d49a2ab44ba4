"""Whole-bot validation: everything an author can get wrong, reported as ``file:line:col: message``.

Runs at ``bot validate`` and before every publish, so a published version never meets a type
error, a missing topic or an unknown variable at run time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from warmline.bot.entities import EntityKind, fx_type_name
from warmline.bot.expressions import Expression, ExpressionError, FxType, infer_type
from warmline.bot.loader import KNOWN_UNSUPPORTED, Problem
from warmline.bot.locales import locale_problem
from warmline.bot.topics import (
    Action,
    BeginDialog,
    BotDefinition,
    ConditionGroup,
    CSATQuestion,
    GotoAction,
    HttpRequest,
    ParseValue,
    Position,
    Question,
    ReplaceDialog,
    SendActivity,
    SetTextVariable,
    SetVariable,
    Telephony,
    TelephonyKind,
    Template,
    Topic,
    TransferConversation,
    TransferKind,
    TriggerKind,
    Unsupported,
    Value,
    VariableRef,
)
from warmline.bot.variables import BOT_VARIABLES, SYSTEM_VARIABLES, fx_type_of, is_omnichannel_name

TELEPHONY_EXTENSION = "telephony"


def walk(actions: tuple[Action, ...]) -> Iterator[Action]:
    """Every action, depth first, including those inside condition branches."""
    for action in actions:
        yield action
        if isinstance(action, ConditionGroup):
            for branch in action.branches:
                yield from walk(branch.actions)
            yield from walk(action.else_actions)


def written_variable(action: Action) -> tuple[VariableRef, FxType] | None:
    """The variable an action assigns, with the type it gets."""
    if isinstance(action, Question) and action.variable:
        kind = action.entity
        type_name = "Text" if kind is EntityKind.CHOICE else fx_type_name(kind)
        return action.variable, fx_type_of(type_name)
    if isinstance(action, SetTextVariable) and action.variable:
        return action.variable, FxType.TEXT
    if isinstance(action, CSATQuestion) and action.variable:
        return action.variable, FxType.NUMBER
    if isinstance(action, SetVariable | ParseValue) and action.variable:
        return action.variable, FxType.ANY
    if isinstance(action, HttpRequest) and action.response:
        return action.response, fx_type_of(action.response_schema)
    return None


def _literal_type(value: object) -> FxType:
    if isinstance(value, bool):
        return FxType.BOOLEAN
    if isinstance(value, int | float):
        return FxType.NUMBER
    if isinstance(value, str):
        return FxType.TEXT
    if isinstance(value, dict):
        return FxType.RECORD
    if isinstance(value, list):
        return FxType.TABLE
    return FxType.ANY


class BotValidator:
    """Collects problems for one bot definition."""

    def __init__(self, bot: BotDefinition) -> None:
        self.bot = bot
        self.problems: list[Problem] = []
        self.globals: dict[str, FxType] = {n: fx_type_of(g.type) for n, g in bot.globals.items()}
        for topic in bot.topics.values():
            for action in walk(topic.actions):
                written = written_variable(action)
                if written and written[0].scope == "Global":
                    self.globals.setdefault(written[0].name, written[1])
        env = {f"Env.{k}": FxType.TEXT for k, _ in bot.settings.env}
        self.shared: dict[str, FxType] = {**SYSTEM_VARIABLES, **BOT_VARIABLES, **env, **self.globals}

    def error(self, position: Position, message: str, severity: str = "error") -> None:
        """Record a problem."""
        self.problems.append(Problem(position, message, severity))

    def run(self) -> list[Problem]:
        """Validate every topic and the links between topics."""
        referenced = {
            a.dialog
            for t in self.bot.topics.values()
            for a in walk(t.actions)
            if isinstance(a, BeginDialog | ReplaceDialog)
        }
        for topic in self.bot.topics.values():
            self.topic(topic)
            trigger = topic.trigger
            lonely = trigger.kind is TriggerKind.SYSTEM_REDIRECT or (
                trigger.kind is TriggerKind.RECOGNIZED_INTENT and not trigger.trigger_queries
            )
            if lonely and topic.name not in referenced:
                self.error(
                    trigger.position,
                    f"topic '{topic.name}' is unreachable: it has no trigger phrases "
                    "and no BeginDialog or ReplaceDialog leads to it",
                )
        return sorted(self.problems, key=lambda p: (p.position.file, p.position.line, p.position.column))

    def topic(self, topic: Topic) -> None:
        """Check one topic, tracking which Topic variables are set before each use."""
        seen_ids: dict[str, Position] = {topic.trigger.id: topic.trigger.position}
        for action in walk(topic.actions):
            if action.id and action.id in seen_ids:
                self.error(
                    action.position,
                    f"duplicate id '{action.id}' (first used at line {seen_ids[action.id].line})",
                )
            elif action.id:
                seen_ids[action.id] = action.position
        known: dict[str, FxType] = {f"Topic.{p.name}": fx_type_of(p.type) for p in topic.inputs}
        for parameter in topic.outputs:
            known.setdefault(f"Topic.{parameter.name}", fx_type_of(parameter.type))
        if topic.trigger.condition is not None:
            self.expression(topic.trigger.condition, topic.trigger.position, known, want=FxType.BOOLEAN)
        self.actions(topic, topic.actions, known, set(seen_ids))

    def actions(
        self, topic: Topic, actions: tuple[Action, ...], known: dict[str, FxType], ids: set[str]
    ) -> None:
        """Check a list of actions in order; branches see what was set before them."""
        for action in actions:
            self.action(topic, action, known, ids)
            written = written_variable(action)
            if written is not None:
                ref, fx_type = written
                if isinstance(action, SetVariable) and action.value is not None:
                    fx_type = self.value_type(action.value, known)
                if ref.scope == "Topic":
                    previous = known.get(ref.name)
                    if previous not in (None, FxType.ANY) and fx_type not in (FxType.ANY, previous):
                        self.error(
                            ref.position,
                            f"{ref.name} was a {previous.value} and is now set to a {fx_type.value}",
                        )
                    known[ref.name] = (
                        fx_type if fx_type is not FxType.ANY else known.get(ref.name, FxType.ANY)
                    )

    def action(self, topic: Topic, action: Action, known: dict[str, FxType], ids: set[str]) -> None:
        """Checks specific to each kind."""
        if isinstance(action, Unsupported):
            if action.kind in KNOWN_UNSUPPORTED:
                self.error(
                    action.position,
                    f"action kind '{action.kind}' (Copilot Studio) is not supported by "
                    "Warmline yet; see docs/topics.md",
                )
            else:
                self.error(action.position, f"unknown action kind '{action.kind}'")
            return
        if isinstance(action, SendActivity):
            self.send(action, known)
        elif isinstance(action, Question):
            if action.prompt is not None:
                self.send(action.prompt, known)
            if action.invalid_prompt is not None:
                self.send(action.invalid_prompt, known)
            if action.default_value is not None:
                self.value_type(action.default_value, known)
            if action.choices_expression is not None:
                self.expression(action.choices_expression, action.position, known)
        elif isinstance(action, SetVariable | ParseValue) and action.value is not None:
            self.value_type(action.value, known)
        elif isinstance(action, SetTextVariable) and action.text is not None:
            self.template(action.text, known)
        elif isinstance(action, ConditionGroup):
            # A variable set in any branch is known after the group (it may be Blank on other paths,
            # which Power Fx allows), so later actions can read it.
            merged: dict[str, FxType] = {}
            for branch in action.branches:
                self.expression(branch.condition, branch.position, known, want=FxType.BOOLEAN)
                inner = dict(known)
                self.actions(topic, branch.actions, inner, ids)
                merged.update(inner)
            inner = dict(known)
            self.actions(topic, action.else_actions, inner, ids)
            merged.update(inner)
            for name, fx_type in merged.items():
                known.setdefault(name, fx_type)
        elif isinstance(action, BeginDialog | ReplaceDialog):
            self.call(action, known)
        elif isinstance(action, GotoAction) and action.target not in ids:
            self.error(
                action.position, f"GotoAction to '{action.target}', which is not an action id in this topic"
            )
        elif isinstance(action, TransferConversation):
            self.transfer(action, known)
        elif isinstance(action, Telephony):
            self.telephony(action, known)
        elif isinstance(action, HttpRequest):
            self.http(action, known)

    def send(self, action: SendActivity, known: dict[str, FxType]) -> None:
        """Message templates, and a warning where speech would read oddly."""
        for template in (*action.texts, *action.speak):
            self.template(template, known)
        if self.bot.settings.voice_enabled and not action.speak:
            for template in action.texts:
                if any(mark in template.source for mark in ("**", "* ", "__", "](", "#")):
                    self.error(
                        template.position,
                        "Markdown in a message of a voice-enabled bot: it is spoken "
                        "as plain text; add 'speak' if it should sound different",
                        "warning",
                    )

    def call(self, action: BeginDialog | ReplaceDialog, known: dict[str, FxType]) -> None:
        """The called topic exists and its inputs and outputs match."""
        target = self.bot.topics.get(action.dialog)
        if target is None:
            self.error(action.position, f"{action.kind} to '{action.dialog}', but there is no such topic")
            return
        inputs = {p.name for p in target.inputs}
        for name, value in action.inputs:
            self.value_type(value, known)
            if name not in inputs:
                self.error(value.position, f"topic '{target.name}' has no input '{name}'")
        if isinstance(action, BeginDialog):
            outputs = {p.name for p in target.outputs}
            for name, ref in action.outputs:
                if name not in outputs:
                    self.error(ref.position, f"topic '{target.name}' has no output '{name}'")
                if ref.scope == "Topic":
                    known.setdefault(ref.name, FxType.ANY)

    def transfer(self, action: TransferConversation, known: dict[str, FxType]) -> None:
        """Hand-off details; a phone transfer is voice-only and takes digits without '+'."""
        if action.message_to_agent is not None:
            self.template(action.message_to_agent, known)
        for _, value in action.context_variables:
            self.value_type(value, known)
        if action.transfer is TransferKind.PHONE_NUMBER:
            self.voice_only(action)
            if action.phone_number is not None:
                self.phone_number(action.phone_number, known)

    def telephony(self, action: Telephony, known: dict[str, FxType]) -> None:
        """Voice-only actions and their inputs."""
        self.voice_only(action)
        if action.value is None:
            return
        fx_type = self.value_type(action.value, known)
        if action.telephony is TelephonyKind.TRANSFER_TO_PHONE_NUMBER:
            self.phone_number(action.value, known)
        elif action.telephony is TelephonyKind.CUSTOMER_LOCALE and isinstance(action.value.literal, str):
            problem = locale_problem(action.value.literal)
            if problem:
                self.error(action.value.position, problem)
        elif action.telephony is TelephonyKind.SURVEY_CONSENT and fx_type not in (FxType.BOOLEAN, FxType.ANY):
            self.error(action.value.position, f"surveyConsent must be true or false, not a {fx_type.value}")

    def voice_only(self, action: Action) -> None:
        """Voice actions need voice enabled on the bot and the telephony extension."""
        if not self.bot.settings.voice_enabled:
            self.error(
                action.position,
                f"{action.kind} is a voice-only action, but voice is disabled for this bot "
                "(settings.voiceEnabled: true in bot.yaml)",
            )
        elif self.bot.settings.extensions and TELEPHONY_EXTENSION not in self.bot.settings.extensions:
            self.error(
                action.position,
                f"{action.kind} needs the '{TELEPHONY_EXTENSION}' extension, which is "
                "not installed for this bot",
            )

    def phone_number(self, value: Value, known: dict[str, FxType]) -> None:
        """Digits only; the seed warns against a leading '+'."""
        literal = value.literal
        if isinstance(literal, int):
            literal = str(literal)
        if isinstance(literal, str):
            if literal.startswith("+"):
                self.error(
                    value.position,
                    f"phone number '{literal}' starts with '+': write digits only, "
                    f"e.g. {literal.lstrip('+')}",
                )
            elif not literal.isdigit():
                self.error(value.position, f"phone number '{literal}' must be digits only")
        else:
            self.value_type(value, known)

    def http(self, action: HttpRequest, known: dict[str, FxType]) -> None:
        """HTTP requests only to hosts the bot's settings allow."""
        if action.url is not None:
            self.template(action.url, known)
            literal = action.url.parts[0] if action.url.parts and isinstance(action.url.parts[0], str) else ""
            host = literal.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] if "://" in literal else ""
            if host and host not in self.bot.settings.allowed_http_hosts:
                self.error(
                    action.url.position, f"host '{host}' is not in settings.allowedHttpHosts of bot.yaml"
                )
        for _, header in action.headers:
            self.template(header, known)
        if action.body is not None:
            self.value_type(action.body, known)

    def template(self, template: Template, known: dict[str, FxType]) -> None:
        """Every ``{...}`` hole of a message."""
        for part in template.parts:
            if isinstance(part, Expression):
                self.expression(part, template.position, known)

    def value_type(self, value: Value, known: dict[str, FxType]) -> FxType:
        """The type of an action input."""
        if value.expression is None:
            return _literal_type(value.literal)
        return self.expression(value.expression, value.position, known)

    def expression(
        self,
        expression: Expression,
        position: Position,
        known: Mapping[str, FxType],
        want: FxType | None = None,
    ) -> FxType:
        """Type-check a formula against the variables known at this point."""
        types = {**self.shared, **known}
        for name in expression.names:
            if name.startswith("Global.") and name not in types and is_omnichannel_name(name):
                types[name] = FxType.ANY
        try:
            fx_type = infer_type(expression, types)
        except ExpressionError as error:
            line = position.line + error.line - 1
            column = position.column + error.column if error.line <= 1 else error.column
            self.error(Position(position.file, line, column), error.message)
            return FxType.ANY
        if want is not None and fx_type not in (want, FxType.ANY):
            self.error(position, f"this condition is a {fx_type.value}, not a {want.value}")
        return fx_type


def validate_bot(bot: BotDefinition) -> list[Problem]:
    """Every problem in ``bot``, sorted by file and position."""
    return BotValidator(bot).run()
