"""Loading bot folders and topic files (Copilot Studio code-view YAML) into ``warmline.bot.topics``.

YAML is read as a node tree (``yaml.compose``), not as Python objects, for two reasons: every
value keeps its line and column for error messages, and scalars stay text, so YAML 1.1 surprises
(``yes`` becoming a boolean, ``0123`` an octal number) never reach a topic. Loading never raises
on author mistakes: it collects ``Problem``s and keeps going, so one run reports them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from warmline.bot.entities import ENTITY_NAMES, Choice, EntityKind
from warmline.bot.expressions import Expression, ExpressionError, interpolate, parse
from warmline.bot.topics import (
    Action,
    BeginDialog,
    BotDefinition,
    BotSettings,
    Branch,
    ConditionGroup,
    CSATQuestion,
    ExternalBotSettings,
    GlobalVariable,
    GotoAction,
    HttpRequest,
    ParseValue,
    Position,
    Question,
    ReplaceDialog,
    SendActivity,
    SetTextVariable,
    SetVariable,
    Simple,
    Telephony,
    TelephonyKind,
    Template,
    Topic,
    TopicParameter,
    TransferConversation,
    TransferKind,
    Trigger,
    TriggerKind,
    Unsupported,
    Value,
    VariableRef,
)

# Kinds seen in real Copilot Studio exports that Warmline does not run yet: loading keeps them and
# validation names them, instead of failing on the whole file.
KNOWN_UNSUPPORTED = {
    "OAuthInput",
    "InvokeFlowAction",
    "SearchAndSummarizeContent",
    "AnswerQuestionWithAI",
    "LogCustomTelemetryEvent",
    "EditTable",
    "EditTableV2",
    "SearchKnowledgeSources",
    "CreateSearchQuery",
    "AdaptiveCardPrompt",
    "ForEach",
    "InvokeConnectorAction",
    "InvokeSkillAction",
    "InvokeAIBuilderModelAction",
    "SignOutUser",
    "DisableTrigger",
    "ClearVariable",
    "ResetVariable",
}
MIN_APP_PASSWORD_BYTES = 32
VARIABLE_NAME = re.compile(r"^(Topic|Global)\.[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Problem:
    """Something wrong in a bot's files, with where it is."""

    position: Position
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else f"{self.severity}: "
        return f"{self.position}: {prefix}{self.message}"


class Source:
    """One YAML file being read: turns nodes into values and records problems with positions."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems

    def at(self, node: Node) -> Position:
        """The 1-based position of a node."""
        return Position(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def error(self, node: Node | Position, message: str, severity: str = "error") -> None:
        """Record a problem at a node."""
        position = node if isinstance(node, Position) else self.at(node)
        self.problems.append(Problem(position, message, severity))

    def mapping(self, node: Node | None, what: str) -> dict[str, Node]:
        """A mapping node's entries by key (problems for non-mappings and duplicate keys)."""
        if node is None:
            return {}
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping (key: value lines)")
            return {}
        entries: dict[str, Node] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in entries:
                self.error(key, f"duplicate key '{name}' in {what}")
            entries[name] = value
        return entries

    def sequence(self, node: Node | None, what: str) -> list[Node]:
        """A sequence node's items."""
        if node is None:
            return []
        if not isinstance(node, SequenceNode):
            self.error(node, f"{what} must be a list (lines starting with '- ')")
            return []
        return list(node.value)

    def text(self, node: Node | None, what: str) -> str | None:
        """A scalar as text."""
        if node is None:
            return None
        if not isinstance(node, ScalarNode):
            self.error(node, f"{what} must be a single value, not a list or mapping")
            return None
        return str(node.value)

    def boolean(self, node: Node | None, what: str, default: bool) -> bool:
        """A scalar read as true/false."""
        raw = self.text(node, what)
        if raw is None:
            return default
        lowered = raw.strip().lower().lstrip("=")
        if lowered in {"true", "yes", "on"}:
            return True
        if lowered in {"false", "no", "off"}:
            return False
        assert node is not None
        self.error(node, f"{what} must be true or false, not '{raw}'")
        return default

    def integer(self, node: Node | None, what: str, default: int) -> int:
        """A scalar read as a whole number."""
        raw = self.text(node, what)
        if raw is None:
            return default
        try:
            return int(raw.strip().lstrip("="))
        except ValueError:
            assert node is not None
            self.error(node, f"{what} must be a whole number, not '{raw}'")
            return default

    def expression(self, node: Node, source: str) -> Expression | None:
        """Parse a Power Fx formula (without its '='), mapping error positions into the file."""
        try:
            return parse(source)
        except ExpressionError as error:
            self.error(self._inner_position(node, error), f"in formula: {error.message}")
            return None

    def _inner_position(self, node: Node, error: ExpressionError) -> Position:
        base = self.at(node)
        quoted = isinstance(node, ScalarNode) and node.style in {"'", '"'}
        if error.line <= 1:
            # +1 for the leading '=', +1 more when the value is quoted.
            return Position(self.file, base.line, base.column + error.column + (1 if quoted else 0))
        return Position(self.file, base.line + error.line - 1, error.column)

    def value(self, node: Node | None, what: str) -> Value | None:
        """An action input: ``=formula`` or a literal."""
        if node is None:
            return None
        position = self.at(node)
        if isinstance(node, ScalarNode):
            raw = str(node.value)
            if raw.startswith("="):
                expression = self.expression(node, raw[1:])
                return Value(position, expression=expression) if expression else None
            return Value(position, literal=_literal(node))
        return Value(position, literal=_plain(node))

    def template(self, node: Node | None, what: str) -> Template | None:
        """Message text with ``{Topic.X}`` holes."""
        raw = self.text(node, what)
        if raw is None:
            return None
        assert node is not None
        try:
            parts = tuple(interpolate(raw))
        except ExpressionError as error:
            self.error(self._inner_position(node, error), f"in {what}: {error.message}")
            parts = (raw,)
        return Template(raw, parts, self.at(node))

    def variable(self, node: Node | None, what: str) -> VariableRef | None:
        """``init:Topic.X`` or ``Global.Y``: a variable an action writes."""
        raw = self.text(node, what)
        if raw is None:
            return None
        assert node is not None
        init = raw.startswith("init:")
        name = raw[5:] if init else raw
        if not VARIABLE_NAME.match(name):
            if name.startswith(("System.", "bot.", "Env.")):
                self.error(node, f"{name} is read-only; actions can only set Topic.* or Global.* variables")
            else:
                self.error(
                    node, f"'{raw}' is not a variable: write init:Topic.Name, Topic.Name or Global.Name"
                )
            return None
        return VariableRef(name, init, self.at(node))


def _literal(node: ScalarNode) -> Any:
    """A scalar's value, with YAML's implicit types only for plain numbers and true/false."""
    raw = str(node.value)
    if node.style in {"'", '"', "|", ">"}:
        return raw
    if raw in {"true", "True", "false", "False"}:
        return raw.lower() == "true"
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if re.fullmatch(r"-?\d+\.\d+", raw):
        return float(raw)
    return raw


def _plain(node: Node) -> Any:
    """A node as plain Python data (cards and other opaque payloads)."""
    if isinstance(node, ScalarNode):
        return _literal(node)
    if isinstance(node, SequenceNode):
        return [_plain(item) for item in node.value]
    if isinstance(node, MappingNode):
        return {str(k.value): _plain(v) for k, v in node.value}
    return None


def dialog_name(reference: str) -> str:
    """``cr123_bot.topic.OrderStatus`` or ``OrderStatus`` → ``OrderStatus``."""
    return reference.rsplit(".topic.", 1)[-1].rsplit(".", 1)[-1] if ".topic." in reference else reference


class TopicReader:
    """Reads one topic file's tree into a ``Topic``."""

    def __init__(self, source: Source) -> None:
        self.src = source

    def topic(self, name: str, root: Node) -> Topic | None:
        """The topic in ``root`` (None when it cannot be read at all)."""
        top = self.src.mapping(root, "a topic file")
        kind = self.src.text(top.get("kind"), "kind")
        if kind != "AdaptiveDialog":
            self.src.error(
                top.get("kind") or root, f"a topic file must have 'kind: AdaptiveDialog', not '{kind}'"
            )
            return None
        begin = top.get("beginDialog")
        if begin is None:
            self.src.error(root, "a topic needs 'beginDialog' (its trigger and actions)")
            return None
        fields = self.src.mapping(begin, "beginDialog")
        trigger = self.trigger(begin, fields)
        if trigger is None:
            return None
        actions = self.actions(fields.get("actions"))
        inputs = self.parameters(top.get("inputType"), "inputType")
        outputs = self.parameters(top.get("outputType"), "outputType")
        return Topic(
            name=name,
            file=self.src.file,
            trigger=trigger,
            actions=actions,
            start_behavior=self.src.text(top.get("startBehavior"), "startBehavior"),
            inputs=inputs,
            outputs=outputs,
        )

    def parameters(self, node: Node | None, what: str) -> tuple[TopicParameter, ...]:
        """``inputType``/``outputType``: ``properties: {Name: {type: String}}`` or ``{Name: String}``."""
        fields = self.src.mapping(node, what)
        properties = self.src.mapping(fields.get("properties"), f"{what}.properties") if fields else {}
        found = []
        for name, spec in properties.items():
            if isinstance(spec, MappingNode):
                type_name = self.src.text(self.src.mapping(spec, name).get("type"), "type") or "Any"
            else:
                type_name = self.src.text(spec, name) or "Any"
            found.append(TopicParameter(name, type_name, self.src.at(spec)))
        return tuple(found)

    def trigger(self, node: Node, fields: dict[str, Node]) -> Trigger | None:
        """The ``beginDialog`` trigger."""
        raw_kind = self.src.text(fields.get("kind"), "beginDialog.kind") or ""
        try:
            kind = TriggerKind(raw_kind)
        except ValueError:
            supported = ", ".join(k.value for k in TriggerKind)
            self.src.error(
                fields.get("kind") or node, f"unknown trigger kind '{raw_kind}' (supported: {supported})"
            )
            return None
        trigger_id = self.src.text(fields.get("id"), "id")
        if not trigger_id:
            self.src.error(node, "the trigger needs an 'id'")
            trigger_id = "main"
        intent = self.src.mapping(fields.get("intent"), "intent")
        queries = tuple(
            q
            for q in (
                self.src.text(n, "trigger query")
                for n in self.src.sequence(intent.get("triggerQueries"), "triggerQueries")
            )
            if q
        )
        condition = None
        if "condition" in fields:
            raw = self.src.text(fields["condition"], "condition") or ""
            condition = self.src.expression(fields["condition"], raw.lstrip("="))
        return Trigger(
            kind=kind,
            id=trigger_id,
            position=self.src.at(node),
            display_name=self.src.text(intent.get("displayName"), "displayName"),
            trigger_queries=queries,
            condition=condition,
        )

    def actions(self, node: Node | None) -> tuple[Action, ...]:
        """A list of actions."""
        found = []
        for item in self.src.sequence(node, "actions"):
            action = self.action(item)
            if action is not None:
                found.append(action)
        return tuple(found)

    def action(self, node: Node) -> Action | None:
        """One action, by its ``kind``."""
        fields = self.src.mapping(node, "an action")
        if not fields:
            return None
        kind = self.src.text(fields.get("kind"), "kind")
        if not kind:
            self.src.error(node, "this action has no 'kind'")
            return None
        action_id = self.src.text(fields.get("id"), "id")
        if not action_id:
            self.src.error(node, f"this {kind} action has no 'id'")
            action_id = ""
        position = self.src.at(node)
        reader = getattr(self, f"read_{kind}", None)
        if reader is None:
            return Unsupported(kind, action_id, position, raw={k: _plain(v) for k, v in fields.items()})
        action: Action = reader(kind, action_id, position, fields)
        return action

    # --- messages -------------------------------------------------------------------------------

    def send(self, kind: str, action_id: str, position: Position, node: Node | None) -> SendActivity:
        """``activity``/``message``/``prompt``: a string, a list of variants, or a structured activity."""
        texts: list[Template] = []
        speak: list[Template] = []
        attachments: list[dict[str, Any]] = []
        suggested: list[str] = []
        if isinstance(node, MappingNode):
            fields = self.src.mapping(node, "activity")
            texts = self._variants(fields.get("text"), "text")
            speak = self._variants(fields.get("speak"), "speak")
            for item in self.src.sequence(fields.get("attachments"), "attachments"):
                attachment = _plain(item)
                if isinstance(attachment, dict) and "kind" in attachment:
                    # Copilot Studio's `kind: AdaptiveCardTemplate` with `cardContent` (a JSON string).
                    attachment = {
                        "contentType": "application/vnd.microsoft.card.adaptive",
                        "content": attachment.get("cardContent") or attachment.get("card"),
                    }
                attachments.append(attachment)
            quick = (
                self.src.mapping(fields.get("quickReplies"), "quickReplies")
                if isinstance(fields.get("quickReplies"), MappingNode)
                else None
            )
            items = self.src.sequence(fields.get("quickReplies"), "quickReplies") if quick is None else []
            for item in items:
                if isinstance(item, MappingNode):
                    entry = self.src.mapping(item, "quick reply")
                    title = self.src.text(entry.get("text") or entry.get("title"), "quick reply")
                else:
                    title = self.src.text(item, "quick reply")
                if title:
                    suggested.append(title)
        elif node is not None:
            texts = self._variants(node, "message")
        return SendActivity(
            kind,
            action_id,
            position,
            texts=tuple(texts),
            speak=tuple(speak),
            attachments=tuple(attachments),
            suggested_actions=tuple(suggested),
        )

    def _variants(self, node: Node | None, what: str) -> list[Template]:
        if node is None:
            return []
        nodes = node.value if isinstance(node, SequenceNode) else [node]
        found = [self.src.template(n, what) for n in nodes]
        return [t for t in found if t is not None]

    def read_SendActivity(
        self, kind: str, action_id: str, position: Position, fields: dict[str, Node]
    ) -> Action:
        sent = self.send(kind, action_id, position, fields.get("activity"))
        if not sent.texts and not sent.attachments and not sent.speak:
            self.src.error(position, "SendActivity needs 'activity' with text, speak or attachments")
        speak = self._variants(fields.get("speak"), "speak")
        outcome = self.src.text(fields.get("conversationOutcome"), "conversationOutcome")
        return replace(sent, speak=sent.speak or tuple(speak), conversation_outcome=outcome)

    def read_SendMessage(
        self, kind: str, action_id: str, position: Position, fields: dict[str, Node]
    ) -> Action:
        node = fields.get("message", fields.get("activity"))
        sent = self.send(kind, action_id, position, node)
        if not sent.texts and not sent.attachments:
            self.src.error(position, "SendMessage needs 'message'")
        speak = self._variants(fields.get("speak"), "speak")
        return replace(sent, speak=sent.speak or tuple(speak))

    # --- questions ------------------------------------------------------------------------------

    def read_Question(self, kind: str, action_id: str, position: Position, fields: dict[str, Node]) -> Action:
        variable = self.src.variable(fields.get("variable"), "variable")
        if fields.get("variable") is None:
            self.src.error(position, "a Question needs 'variable' (e.g. init:Topic.Answer)")
        prompt_node = fields.get("prompt")
        if prompt_node is None:
            self.src.error(position, "a Question needs 'prompt'")
        prompt = self.send("Prompt", f"{action_id}.prompt", position, prompt_node)
        entity, entity_name, choices, choices_expression = self.entity(fields.get("entity"), fields, position)
        invalid_node = fields.get("invalidPrompt") or fields.get("unrecognizedPrompt")
        interruption = self.src.mapping(fields.get("interruptionPolicy"), "interruptionPolicy")
        failure = self.src.text(
            fields.get("defaultValueMissingAction") or fields.get("onFailure"), "onFailure"
        )
        default = self.src.value(fields.get("defaultValue"), "defaultValue")
        on_failure = "default" if default is not None else "escalate"
        if failure:
            lowered = failure.lower()
            on_failure = (
                "escalate" if "escalate" in lowered else ("continue" if "continue" in lowered else "default")
            )
        return Question(
            kind,
            action_id,
            position,
            variable=variable,
            prompt=prompt,
            entity=entity,
            entity_name=entity_name,
            choices=choices,
            choices_expression=choices_expression,
            always_prompt=self.src.boolean(fields.get("alwaysPrompt"), "alwaysPrompt", False),
            repeat_count=self.src.integer(
                fields.get("repeatCount") or fields.get("maxTurnCount"), "repeatCount", 2
            ),
            invalid_prompt=self.send("Prompt", f"{action_id}.invalid", position, invalid_node)
            if invalid_node
            else None,
            default_value=default,
            on_failure=on_failure,
            allow_interruption=self.src.boolean(
                interruption.get("allowInterruption"), "allowInterruption", True
            ),
        )

    def entity(
        self, node: Node | None, fields: dict[str, Node], position: Position
    ) -> tuple[EntityKind, str, tuple[Choice, ...], Expression | None]:
        """A Question's entity: a prebuilt name, or an embedded closed list / choice options."""
        if node is None:
            return EntityKind.STRING, "StringPrebuiltEntity", (), None
        if isinstance(node, ScalarNode):
            name = str(node.value)
            if name not in ENTITY_NAMES:
                known = ", ".join(sorted(ENTITY_NAMES))
                self.src.error(node, f"unknown entity '{name}' (supported: {known})")
                return EntityKind.STRING, name, (), None
            kind = ENTITY_NAMES[name]
            choices, expression = self.choice_options(fields.get("choiceOptions"))
            if kind is EntityKind.CHOICE and not choices and expression is None:
                self.src.error(node, "ChoicePrebuiltEntity needs 'choiceOptions' (a list of options)")
            return kind, name, choices, expression
        entity = self.src.mapping(node, "entity")
        definition = self.src.mapping(entity.get("definition"), "entity.definition") or entity
        definition_kind = self.src.text(definition.get("kind"), "entity kind")
        if definition_kind in {"ClosedListEntity", "ChoiceEntity"}:
            items: list[Choice] = []
            for item in self.src.sequence(definition.get("items"), "items"):
                entry = self.src.mapping(item, "item")
                # Conditions compare against an item's id; the display name is what customers see.
                display = self.src.text(entry.get("displayName"), "displayName")
                item_id = self.src.text(entry.get("id"), "id") or display
                synonym_nodes = self.src.sequence(entry.get("values") or entry.get("synonyms"), "synonyms")
                synonyms = [s for s in (self.src.text(n, "synonym") for n in synonym_nodes) if s]
                if item_id:
                    items.append(Choice(item_id, tuple(synonyms), display_name=display or ""))
            if not items:
                self.src.error(node, "a closed list entity needs 'items'")
            return EntityKind.CHOICE, "ClosedListEntity", tuple(items), None
        self.src.error(node, f"entity kind '{definition_kind}' is not supported yet")
        return EntityKind.STRING, str(definition_kind), (), None

    def choice_options(self, node: Node | None) -> tuple[tuple[Choice, ...], Expression | None]:
        """``choiceOptions``: a list of strings or of ``{value, synonyms}``, or a formula."""
        if node is None:
            return (), None
        if isinstance(node, ScalarNode) and str(node.value).startswith("="):
            return (), self.src.expression(node, str(node.value)[1:])
        choices = []
        for item in self.src.sequence(node, "choiceOptions"):
            if isinstance(item, MappingNode):
                entry = self.src.mapping(item, "choice")
                value = self.src.text(entry.get("value") or entry.get("displayName"), "value")
                synonyms = [
                    s
                    for s in (
                        self.src.text(n, "synonym")
                        for n in self.src.sequence(entry.get("synonyms"), "synonyms")
                    )
                    if s
                ]
                if value:
                    choices.append(Choice(value, tuple(synonyms)))
            else:
                value = self.src.text(item, "choice")
                if value:
                    choices.append(Choice(value))
        return tuple(choices), None

    def read_CSATQuestion(
        self, kind: str, action_id: str, position: Position, fields: dict[str, Node]
    ) -> Action:
        return CSATQuestion(
            kind, action_id, position, variable=self.src.variable(fields.get("variable"), "variable")
        )

    # --- variables ------------------------------------------------------------------------------

    def read_SetVariable(
        self, kind: str, action_id: str, position: Position, fields: dict[str, Node]
    ) -> Action:
        variable = self.src.variable(fields.get("variable"), "variable")
        if "variable" not in fields:
            self.src.error(position, "SetVariable needs 'variable'")
        if "value" not in fields:
            self.src.error(position, "SetVariable needs 'value'")
        return SetVariable(
            kind, action_id, position, variable=variable, value=self.src.value(fields.get("value"), "value")
        )

    def read_SetTextVariable(
        self, kind: str, action_id: str, position: Position, fields: dict[str, Node]
    ) -> Action:
        variable = self.src.variable(fields.get("variable"), "variable")
        return SetTextVariable(
            kind, action_id, position, variable=variable, text=self.src.template(fields.get("value"), "value")
        )

    def read_ParseValue(
        self, kind: str, action_id: str, position: Position, fields: dict[str, Node]
    ) -> Action:
        variable = self.src.variable(fields.get("variable"), "variable")
        value_type = "Any"
        type_node = fields.get("valueType")
        if isinstance(type_node, MappingNode):
            value_type = (
                self.src.text(self.src.mapping(type_node, "valueType").get("kind"), "valueType") or "Any"
            )
        elif type_node is not None:
            value_type = self.src.text(type_node, "valueType") or "Any"
        return ParseValue(
            kind,
            action_id,
            position,
            variable=variable,
            value=self.src.value(fields.get("value"), "value"),
            value_type=value_type,
        )

    # --- flow -----------------------------------------------------------------------------------

    def read_ConditionGroup(
        self, kind: str, action_id: str, position: Position, fields: dict[str, Node]
    ) -> Action:
        branches = []
        for item in self.src.sequence(fields.get("conditions"), "conditions"):
            entry = self.src.mapping(item, "condition")
            branch_id = self.src.text(entry.get("id"), "id") or ""
            if not branch_id:
                self.src.error(item, "this condition has no 'id'")
            raw = self.src.text(entry.get("condition"), "condition")
            if raw is None:
                self.src.error(item, "this branch has no 'condition'")
                continue
            node = entry["condition"]
            expression = self.src.expression(node, raw[1:] if raw.startswith("=") else raw)
            if expression is None:
                continue
            branches.append(
                Branch(branch_id, expression, self.actions(entry.get("actions")), self.src.at(item))
            )
        return ConditionGroup(
            kind,
            action_id,
            position,
            branches=tuple(branches),
            else_actions=self.actions(fields.get("elseActions")),
        )

    def _bindings(self, node: Node | None, what: str) -> tuple[tuple[str, Value], ...]:
        """``input: {binding: {Name: value}}`` or ``inputs: [{name, value}]``."""
        if node is None:
            return ()
        found = []
        if isinstance(node, SequenceNode):
            for item in node.value:
                entry = self.src.mapping(item, what)
                name = self.src.text(entry.get("name"), "name")
                value = self.src.value(entry.get("value"), "value")
                if name and value:
                    found.append((name, value))
            return tuple(found)
        fields = self.src.mapping(node, what)
        binding = (
            self.src.mapping(fields.get("binding"), f"{what}.binding") if "binding" in fields else fields
        )
        for name, value_node in binding.items():
            value = self.src.value(value_node, name)
            if value:
                found.append((name, value))
        return tuple(found)

    def _outputs(self, node: Node | None) -> tuple[tuple[str, VariableRef], ...]:
        if node is None:
            return ()
        found = []
        if isinstance(node, SequenceNode):
            for item in node.value:
                entry = self.src.mapping(item, "output")
                name = self.src.text(entry.get("name"), "name")
                variable = self.src.variable(entry.get("variable"), "variable")
                if name and variable:
                    found.append((name, variable))
            return tuple(found)
        fields = self.src.mapping(node, "output")
        binding = self.src.mapping(fields.get("binding"), "output.binding") if "binding" in fields else fields
        for name, variable_node in binding.items():
            variable = self.src.variable(variable_node, name)
            if variable:
                found.append((name, variable))
        return tuple(found)

    def read_BeginDialog(
        self, kind: str, action_id: str, position: Position, fields: dict[str, Node]
    ) -> Action:
        target = self.src.text(fields.get("dialog") or fields.get("topicSchemaName"), "dialog")
        if not target:
            self.src.error(position, f"{kind} needs 'dialog' (the topic to call)")
        return BeginDialog(
            kind,
            action_id,
            position,
            dialog=dialog_name(target or ""),
            inputs=self._bindings(fields.get("input") or fields.get("inputs"), "input"),
            outputs=self._outputs(fields.get("output") or fields.get("outputs")),
        )

    read_RedirectToTopic = read_BeginDialog

    def read_ReplaceDialog(
        self, kind: str, action_id: str, position: Position, fields: dict[str, Node]
    ) -> Action:
        target = self.src.text(fields.get("dialog"), "dialog")
        if not target:
            self.src.error(position, "ReplaceDialog needs 'dialog' (the topic to switch to)")
        return ReplaceDialog(
            kind,
            action_id,
            position,
            dialog=dialog_name(target or ""),
            inputs=self._bindings(fields.get("input"), "input"),
        )

    def read_GotoAction(
        self, kind: str, action_id: str, position: Position, fields: dict[str, Node]
    ) -> Action:
        target = self.src.text(fields.get("actionId"), "actionId")
        if not target:
            self.src.error(position, "GotoAction needs 'actionId'")
        return GotoAction(kind, action_id, position, target=target or "")

    def _simple(self, kind: str, action_id: str, position: Position, fields: dict[str, Node]) -> Action:
        return Simple(kind, action_id, position)

    read_EndDialog = read_CancelAllDialogs = read_ClearAllVariables = _simple
    read_EndConversation = _simple

    # --- hand-off and telephony ----------------------------------------------------------------

    def read_TransferConversationV2(
        self, kind: str, action_id: str, position: Position, fields: dict[str, Node]
    ) -> Action:
        transfer = self.src.mapping(fields.get("transferType"), "transferType")
        raw_kind = self.src.text(transfer.get("kind"), "transferType.kind") or "TransferToAgent"
        try:
            transfer_kind = TransferKind(raw_kind)
        except ValueError:
            self.src.error(
                fields.get("transferType") or position,
                f"unknown transfer kind '{raw_kind}' (supported: TransferToAgent, TransferToPhoneNumber)",
            )
            transfer_kind = TransferKind.AGENT
        context = self.src.mapping(transfer.get("context"), "context")
        context_kind = self.src.text(context.get("kind"), "context.kind") or "AutomaticTransferContext"
        phone = transfer.get("phoneNumber") or transfer.get("TargetPhoneNumber")
        if transfer_kind is TransferKind.PHONE_NUMBER and phone is None:
            self.src.error(
                fields.get("transferType") or position, "TransferToPhoneNumber needs 'phoneNumber'"
            )
        return TransferConversation(
            kind,
            action_id,
            position,
            transfer=transfer_kind,
            message_to_agent=self.src.template(transfer.get("messageToAgent"), "messageToAgent"),
            context_kind=context_kind,
            context_variables=self._bindings(context.get("contextVariables"), "contextVariables"),
            phone_number=self.src.value(phone, "phoneNumber"),
        )

    def _telephony(self, kind: str, action_id: str, position: Position, fields: dict[str, Node]) -> Action:
        telephony = TelephonyKind(kind)
        key = {
            TelephonyKind.SURVEY_CONSENT: "surveyConsent",
            TelephonyKind.CUSTOMER_LOCALE: "customerLocale",
            TelephonyKind.UNINTERRUPTIBLE_MESSAGE: "UninterruptibleMessage",
            TelephonyKind.TRANSFER_TO_PHONE_NUMBER: "TargetPhoneNumber",
        }.get(telephony)
        value = None
        if key is not None:
            if key not in fields:
                self.src.error(position, f"{kind} needs '{key}'")
            value = self.src.value(fields.get(key), key)
        return Telephony(kind, action_id, position, telephony=telephony, value=value)

    read_SetSurveyConsent = read_SetCustomerLocaleAndTransfer = read_HangUp = _telephony
    read_SendUninterruptibleMessage = read_TransferCallToPhoneNumber = _telephony

    def read_HttpRequestAction(
        self, kind: str, action_id: str, position: Position, fields: dict[str, Node]
    ) -> Action:
        headers = tuple(
            (name, t)
            for name, node in self.src.mapping(fields.get("headers"), "headers").items()
            if (t := self.src.template(node, name)) is not None
        )
        body_node = fields.get("body")
        body = None
        if isinstance(body_node, MappingNode):
            body_fields = self.src.mapping(body_node, "body")
            body = self.src.value(body_fields.get("content") or body_fields.get("value"), "body")
        elif body_node is not None:
            body = self.src.value(body_node, "body")
        schema_node = fields.get("responseSchema")
        schema = "Any"
        if isinstance(schema_node, MappingNode):
            schema = (
                self.src.text(self.src.mapping(schema_node, "responseSchema").get("kind"), "kind") or "Any"
            )
        elif schema_node is not None:
            schema = self.src.text(schema_node, "responseSchema") or "Any"
        url = self.src.template(fields.get("url"), "url")
        if url is None:
            self.src.error(position, "HttpRequestAction needs 'url'")
        method = (self.src.text(fields.get("method"), "method") or "GET").upper()
        if method not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
            self.src.error(fields.get("method") or position, f"unsupported HTTP method '{method}'")
        return HttpRequest(
            kind,
            action_id,
            position,
            method=method,
            url=url,
            headers=headers,
            body=body,
            response=self.src.variable(fields.get("response"), "response"),
            response_schema=schema,
            timeout_ms=self.src.integer(
                fields.get("requestTimeoutInMilliseconds"), "requestTimeoutInMilliseconds", 30000
            ),
            error_variable=self.src.variable(fields.get("errorResponse"), "errorResponse")
            if fields.get("errorResponse") is not None
            else None,
        )

    read_InvokeHttpAction = read_HttpRequestAction


def _compose(text: str, source: Source) -> Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        column = mark.column + 1 if mark else 1
        problem = error.problem or "invalid YAML"
        hint = ""
        if "mapping values are not allowed" in problem or "could not find expected ':'" in problem:
            hint = " — a value containing ': ' must be quoted, e.g. message: \"Note: we close at 5\""
        elif "found character '\\t'" in problem:
            hint = " — indent with spaces, not tabs"
        elif "found undefined alias" in problem or "expected alphabetic or numeric character" in problem:
            hint = " — a value starting with '*', '&', '!', '%' or '@' must be quoted"
        source.error(Position(source.file, line, column), f"YAML syntax error: {problem}{hint}")
        return None


def load_topic_text(text: str, file: str, name: str, problems: list[Problem]) -> Topic | None:
    """Load one topic from YAML text."""
    source = Source(file, problems)
    root = _compose(text, source)
    if root is None:
        if not any(p.position.file == file for p in problems):
            source.error(Position(file, 1, 1), "the file is empty")
        return None
    return TopicReader(source).topic(name, root)


def load_topic_file(path: Path, problems: list[Problem], *, display: str | None = None) -> Topic | None:
    """Load one topic file; its name is the file name without ``.yaml``/``.topic.yaml``."""
    name = path.name.split(".", 1)[0]
    return load_topic_text(path.read_text(encoding="utf-8"), display or str(path), name, problems)


def read_settings(text: str | None, file: str, problems: list[Problem]) -> BotSettings:
    """``bot.yaml``."""
    source = Source(file, problems)
    if text is None:
        source.error(Position(file, 1, 1), "a bot folder needs bot.yaml (name, language, settings)")
        return BotSettings(name="Unnamed bot")
    root = _compose(text, source)
    if root is None:
        return BotSettings(name="Unnamed bot")
    fields = source.mapping(root, "bot.yaml")
    settings = source.mapping(fields.get("settings"), "settings")
    name = source.text(fields.get("name"), "name")
    if not name:
        source.error(root, "bot.yaml needs 'name'")
    env_node = fields.get("env") or settings.get("env")
    env = tuple((k, source.text(v, k) or "") for k, v in source.mapping(env_node, "env").items())
    hosts = tuple(
        h
        for h in (source.text(n, "host") for n in source.sequence(settings.get("allowedHttpHosts"), "hosts"))
        if h
    )
    extensions = tuple(
        e
        for e in (
            source.text(n, "extension") for n in source.sequence(settings.get("extensions"), "extensions")
        )
        if e
    )
    return BotSettings(
        external=read_external(source, fields.get("external")),
        name=name or "Unnamed bot",
        language=source.text(fields.get("language"), "language") or "en-US",
        voice_enabled=source.boolean(settings.get("voiceEnabled"), "voiceEnabled", False),
        recognition_threshold=float(
            source.integer(settings.get("recognitionThreshold"), "recognitionThreshold", 70)
        ),
        allowed_http_hosts=hosts,
        env=env,
        extensions=extensions,
    )


def read_external(source: Source, node: Node | None) -> ExternalBotSettings | None:
    """``external: {endpoint, appId, appPassword}``: a Bot Framework bot reached over HTTP."""
    if node is None:
        return None
    fields = source.mapping(node, "external")
    endpoint = source.text(fields.get("endpoint"), "endpoint") or ""
    if not endpoint.startswith(("http://", "https://")):
        source.error(
            fields.get("endpoint") or node, "external needs 'endpoint', the bot's http(s) /api/messages URL"
        )
    app_id = source.text(fields.get("appId"), "appId") or None
    password = source.text(fields.get("appPassword"), "appPassword") or None
    if (app_id is None) != (password is None):
        source.error(node, "give both appId and appPassword (authenticated) or neither (local development)")
    elif password is not None and len(password.encode()) < MIN_APP_PASSWORD_BYTES:
        # It signs HS256 tokens (RFC 7518 §3.2: the key must be at least as long as the hash).
        source.error(
            fields["appPassword"], f"appPassword must be at least {MIN_APP_PASSWORD_BYTES} characters"
        )
    return ExternalBotSettings(endpoint=endpoint, app_id=app_id, app_password=password)


def read_globals(text: str | None, file: str, problems: list[Problem]) -> dict[str, GlobalVariable]:
    """``variables.yaml``: ``variables: [{name: Global.X, type: String, external: true, default: ...}]``."""
    if text is None:
        return {}
    source = Source(file, problems)
    root = _compose(text, source)
    if root is None:
        return {}
    found: dict[str, GlobalVariable] = {}
    for item in source.sequence(source.mapping(root, "variables.yaml").get("variables"), "variables"):
        entry = source.mapping(item, "variable")
        raw = source.text(entry.get("name"), "name") or ""
        name = raw if raw.startswith("Global.") else f"Global.{raw}"
        if not VARIABLE_NAME.match(name):
            source.error(item, f"'{raw}' is not a valid global variable name")
            continue
        if name in found:
            source.error(item, f"global variable {name} is declared twice")
        found[name] = GlobalVariable(
            name=name,
            type=source.text(entry.get("type"), "type") or "Any",
            external=source.boolean(entry.get("external"), "external", False),
            default=source.value(entry.get("default"), "default"),
            position=source.at(item),
        )
    return found


def read_bot_folder(folder: Path) -> dict[str, str]:
    """A bot folder's files as ``{relative path: text}`` (what a published version stores)."""
    files: dict[str, str] = {}
    for name in ("bot.yaml", "variables.yaml"):
        if (folder / name).is_file():
            files[name] = (folder / name).read_text(encoding="utf-8")
    for path in sorted((folder / "topics").glob("*.yaml")):
        if path.is_file():
            files[f"topics/{path.name}"] = path.read_text(encoding="utf-8")
    return files


def load_bot_files(
    files: dict[str, str],
    problems: list[Problem],
    *,
    root: str = "",
    system_topics: dict[str, Topic] | None = None,
) -> BotDefinition:
    """Load a bot from its files; system topics fill in any the author did not write."""
    prefix = f"{root.rstrip('/')}/" if root else ""
    settings = read_settings(files.get("bot.yaml"), f"{prefix}bot.yaml", problems)
    topics: dict[str, Topic] = {}
    if settings.external is not None and any(f.startswith("topics/") for f in files):
        problems.append(
            Problem(
                Position(f"{prefix}bot.yaml", 1, 1),
                "an external bot runs no topics; topics/ is ignored",
                "warning",
            )
        )
    for relative in sorted(f for f in files if f.startswith("topics/") and f.endswith(".yaml")):
        name = relative.split("/", 1)[1].split(".", 1)[0]
        topic = load_topic_text(files[relative], f"{prefix}{relative}", name, problems)
        if topic is None:
            continue
        if topic.name in topics:
            problems.append(Problem(topic.trigger.position, f"two topics are named '{topic.name}'"))
        topics[topic.name] = topic
    for name, topic in (system_topics or {}).items():
        topics.setdefault(name, topic)
    return BotDefinition(
        settings=settings,
        topics=topics,
        globals=read_globals(files.get("variables.yaml"), f"{prefix}variables.yaml", problems),
        source=root,
    )


def load_bot(
    folder: Path, problems: list[Problem], *, system_topics: dict[str, Topic] | None = None
) -> BotDefinition:
    """Load a bot folder from disk."""
    return load_bot_files(read_bot_folder(folder), problems, root=str(folder), system_topics=system_topics)
