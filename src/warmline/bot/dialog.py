"""The dialog engine: runs compiled topics turn by turn against a conversation's ``DialogState``.

It is a pure function of (bot, state, incoming activity, context) apart from HTTP requests,
which go through an injected ``HttpClient``; it never touches the database or the clock itself.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

from warmline.activity import Activity, Attachment, ChannelAccount
from warmline.bot.entities import EntityKind, extract
from warmline.bot.expressions import Expression, ExpressionError, evaluate, render_text
from warmline.bot.program import Jump, JumpUnless, Program, Run, compile_bot
from warmline.bot.recognizer import Intent, Recognizer
from warmline.bot.state import DialogState, Frame
from warmline.bot.topics import (
    Action,
    BeginDialog,
    BotDefinition,
    CSATQuestion,
    HttpRequest,
    ParseValue,
    Question,
    ReplaceDialog,
    SendActivity,
    SetTextVariable,
    SetVariable,
    Simple,
    Telephony,
    TelephonyKind,
    Template,
    TransferConversation,
    TransferKind,
    TriggerKind,
    Unsupported,
    Value,
    VariableRef,
)

MAX_STEPS = 2000
CSAT_CHOICES = ("1", "2", "3", "4", "5")


class OutcomeKind(StrEnum):
    """How a turn hands the conversation on."""

    TRANSFER_TO_AGENT = "transfer-to-agent"
    TRANSFER_TO_PHONE_NUMBER = "transfer-to-phone-number"
    END_CONVERSATION = "end-conversation"
    HANG_UP = "hang-up"


@dataclass(frozen=True)
class Outcome:
    """A typed result the channel or omnichannel acts on."""

    kind: OutcomeKind
    message_to_agent: str | None = None
    phone_number: str | None = None
    locale: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TurnContext:
    """What the engine knows about the conversation besides its state."""

    conversation_id: str
    now: datetime
    channel: str = "directline"
    user_id: str = ""
    user_name: str | None = None
    authenticated: bool = False
    in_test_mode: bool = False
    customer_phone: str = ""
    organization_phone: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)
    locale: str = "en-US"
    activity: Activity | None = None
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class TurnResult:
    """What one turn produced."""

    activities: list[Activity] = field(default_factory=list)
    outcome: Outcome | None = None


class HttpClient(Protocol):
    """Outbound HTTP for HttpRequestAction (a seam: tests record, production uses httpx)."""

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: str | None, timeout_seconds: float
    ) -> tuple[int, str]:
        """Send a request; return status and body text."""
        ...


class RuntimeFailure(Exception):
    """An error while running a topic; the OnError topic (or a default message) handles it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Scope(Mapping[str, Any]):
    """Variables visible to a formula: the current topic's, globals, system and bot values."""

    def __init__(self, frame: Frame | None, state: DialogState, system: Mapping[str, Any]) -> None:
        self._topic = frame.variables if frame else {}
        self._globals = state.globals
        self._system = system

    def __getitem__(self, name: str) -> Any:
        if name.startswith("Topic."):
            return self._topic[name]
        if name.startswith("Global."):
            return self._globals[name]
        return self._system[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._topic
        yield from self._globals
        yield from self._system

    def __len__(self) -> int:
        return len(self._topic) + len(self._globals) + len(self._system)


class DialogEngine:
    """Runs one bot definition (one published version)."""

    def __init__(self, bot: BotDefinition, *, http: HttpClient | None = None) -> None:
        self.bot = bot
        self.programs: dict[str, Program] = compile_bot(bot)
        self.http = http
        settings = bot.settings
        intents = [
            Intent(name, t.trigger.display_name or name, t.trigger.trigger_queries)
            for name, t in bot.topics.items()
            if t.trigger.trigger_queries
            and t.trigger.kind in (TriggerKind.RECOGNIZED_INTENT, TriggerKind.ESCALATE)
        ]
        self.recognizer = Recognizer(
            intents, threshold=settings.recognition_threshold, ambiguity_margin=settings.ambiguity_margin
        )
        self.by_trigger: dict[TriggerKind, str] = {}
        for name, topic in bot.topics.items():
            self.by_trigger.setdefault(topic.trigger.kind, name)
        self.account = ChannelAccount(id="warmline-bot", name=settings.name, role="bot")

    # --- entry points ---------------------------------------------------------------------------

    async def start(self, state: DialogState, ctx: TurnContext) -> TurnResult:
        """The conversation began: run the Conversation Start topic."""
        result = TurnResult()
        ctx = replace(ctx, activity=None, cache={})
        self._seed_globals(state, ctx)
        topic = self.by_trigger.get(TriggerKind.CONVERSATION_START)
        if topic is not None:
            self._push(state, topic)
            await self._run(state, ctx, None, result)
        return result

    async def turn(self, state: DialogState, activity: Activity, ctx: TurnContext) -> TurnResult:
        """Answer one customer activity."""
        result = TurnResult()
        ctx = replace(ctx, activity=activity, cache={})
        self._seed_globals(state, ctx)
        state.turns += 1
        if activity.type != "message":
            return result
        text = (activity.text or "").strip()
        if state.ended:
            state.frames.clear()
            state.ended = False
        if text:
            state.phrases.append(text)
            state.phrases = state.phrases[-20:]
        try:
            if state.choosing:
                self._choose(state, text, result)
            elif state.frames and state.frames[-1].asking:
                await self._answer(state, ctx, activity, text, result)
            else:
                self._recognize(state, text, result)
            await self._run(state, ctx, activity, result)
        except RuntimeFailure as failure:
            await self._fail(state, ctx, activity, failure, result)
        state.last_message = {"text": text, "id": activity.id or ""}
        return result

    # --- recognition ----------------------------------------------------------------------------

    def _recognize(self, state: DialogState, text: str, result: TurnResult) -> None:
        recognition = self.recognizer.recognize(text)
        if recognition.matched is not None:
            self._begin_recognized(state, recognition.matched.topic)
        elif recognition.ambiguous:
            options = [c.topic for c in recognition.candidates[:3]]
            state.choosing = options
            names = [self.bot.topics[t].trigger.display_name or t for t in options]
            result.activities.append(self._message("Did you mean:", suggested=[*names, "None of these"]))
        else:
            state.fallback_count += 1
            fallback = self.by_trigger.get(TriggerKind.UNKNOWN_INTENT)
            if fallback is None:
                result.activities.append(self._message("Sorry, I didn't get that. Could you rephrase?"))
            else:
                self._push(state, fallback)

    def _begin_recognized(self, state: DialogState, topic_name: str) -> None:
        topic = self.bot.topics[topic_name]
        state.fallback_count = 0
        display = topic.trigger.display_name or topic_name
        state.last_topic = display
        state.topics.append(display)
        if topic.start_behavior == "CancelOtherTopics":
            state.frames.clear()
        self._push(state, topic_name)

    def _choose(self, state: DialogState, text: str, result: TurnResult) -> None:
        options = state.choosing
        state.choosing = []
        from warmline.bot.entities import Choice  # local: only disambiguation needs it

        names = [self.bot.topics[t].trigger.display_name or t for t in options]
        match = extract(EntityKind.CHOICE, text, now=datetime.min, choices=[Choice(n) for n in names])
        if match is not None and match.value in names:
            self._begin_recognized(state, options[names.index(match.value)])
            return
        self._recognize(state, text, result)

    # --- questions ------------------------------------------------------------------------------

    async def _answer(
        self, state: DialogState, ctx: TurnContext, activity: Activity, text: str, result: TurnResult
    ) -> None:
        frame = state.frames[-1]
        question = self._current(frame)
        if not isinstance(question, Question | CSATQuestion):
            frame.asking = None
            return
        value = self._extract(question, frame, state, ctx, text)
        if value is not _MISSING:
            self._assign(state, frame, question.variable, value)
            frame.asking, frame.attempts = None, 0
            frame.pc += 1
            return
        if isinstance(question, Question) and question.allow_interruption and text:
            recognition = self.recognizer.recognize(text)
            if recognition.matched is not None and recognition.matched.topic != frame.topic:
                # Switch topics mid-question; the question is asked again when the new topic ends.
                frame.asking = None
                self._begin_recognized(state, recognition.matched.topic)
                return
        frame.attempts += 1
        limit = question.repeat_count if isinstance(question, Question) else 2
        if frame.attempts > limit:
            frame.asking, frame.attempts = None, 0
            if isinstance(question, CSATQuestion):
                # A survey the customer would not answer is skipped (score left blank), never a
                # reason to hand a conversation that is wrapping up to a live agent.
                frame.pc += 1
            elif question.on_failure == "default" and question.default_value:
                self._assign(
                    state, frame, question.variable, self._value(question.default_value, frame, state, ctx)
                )
                frame.pc += 1
            elif isinstance(question, Question) and question.on_failure == "continue":
                frame.pc += 1
            else:
                self._escalate(state)
            return
        reprompt = question.invalid_prompt if isinstance(question, Question) else None
        if reprompt is None and isinstance(question, Question):
            reprompt = question.prompt
        if reprompt is not None:
            result.activities.append(self._send(reprompt, frame, state, ctx, question))
        else:
            result.activities.append(self._csat_prompt())

    def _extract(
        self, question: Question | CSATQuestion, frame: Frame, state: DialogState, ctx: TurnContext, text: str
    ) -> Any:
        if not text:
            return _MISSING
        if isinstance(question, CSATQuestion):
            match = extract(EntityKind.NUMBER, text, now=ctx.now)
            if match is not None and isinstance(match.value, int | float) and 1 <= match.value <= 5:
                return int(match.value)
            return _MISSING
        choices = question.choices
        if question.choices_expression is not None:
            from warmline.bot.entities import Choice

            options = self._evaluate(question.choices_expression, frame, state, ctx)
            choices = tuple(Choice(render_text(o)) for o in (options if isinstance(options, list) else []))
        match = extract(question.entity, text, now=ctx.now, choices=choices)
        return _MISSING if match is None else match.value

    def _escalate(self, state: DialogState) -> None:
        state.frames.clear()
        escalate = self.by_trigger.get(TriggerKind.ESCALATE)
        if escalate is not None:
            self._push(state, escalate)

    # --- running --------------------------------------------------------------------------------

    def _push(
        self,
        state: DialogState,
        topic: str,
        inputs: dict[str, Any] | None = None,
        outputs: list[list[str]] | None = None,
    ) -> None:
        state.frames.append(Frame(topic=topic, variables=dict(inputs or {}), outputs=outputs or []))

    def _current(self, frame: Frame) -> Action | None:
        program = self.programs[frame.topic]
        if frame.pc >= len(program.instructions):
            return None
        instruction = program.instructions[frame.pc]
        return instruction.action if isinstance(instruction, Run) else None

    async def _run(
        self, state: DialogState, ctx: TurnContext, activity: Activity | None, result: TurnResult
    ) -> None:
        steps = 0
        while state.frames and result.outcome is None:
            steps += 1
            if steps > MAX_STEPS:
                state.frames.clear()
                raise RuntimeFailure("LoopDetected", f"more than {MAX_STEPS} steps in one turn")
            frame = state.frames[-1]
            program = self.programs.get(frame.topic)
            if program is None:
                raise RuntimeFailure("TopicNotFound", f"topic '{frame.topic}' does not exist")
            if frame.asking:
                return
            if frame.pc >= len(program.instructions):
                self._return(state)
                continue
            instruction = program.instructions[frame.pc]
            if isinstance(instruction, Jump):
                frame.pc = instruction.target
            elif isinstance(instruction, JumpUnless):
                passed = self._evaluate(instruction.condition, frame, state, ctx)
                frame.pc = frame.pc + 1 if passed is True else instruction.target
            else:
                await self._do(instruction.action, state, frame, ctx, result)

    def _return(self, state: DialogState) -> None:
        finished = state.frames.pop()
        state.collected.update(finished.variables)
        if state.frames:
            caller = state.frames[-1]
            for name, target in finished.outputs:
                caller_value = finished.variables.get(f"Topic.{name}")
                if target.startswith("Global."):
                    state.globals[target] = caller_value
                else:
                    caller.variables[target] = caller_value

    async def _do(
        self, action: Action, state: DialogState, frame: Frame, ctx: TurnContext, result: TurnResult
    ) -> None:
        if isinstance(action, SendActivity):
            result.activities.append(self._send(action, frame, state, ctx, action))
            frame.pc += 1
        elif isinstance(action, Question):
            current = (
                frame.variables.get(action.variable.name)
                if action.variable and action.variable.scope == "Topic"
                else state.globals.get(action.variable.name)
                if action.variable
                else None
            )
            if current not in (None, "") and not action.always_prompt:
                frame.pc += 1
                return
            if action.prompt is not None:
                prompt = self._send(action.prompt, frame, state, ctx, action)
                if action.choices and prompt.suggested_actions is None:
                    prompt = _with_suggestions(prompt, [c.label for c in action.choices])
                result.activities.append(prompt)
            frame.asking = action.id
        elif isinstance(action, CSATQuestion):
            result.activities.append(self._csat_prompt())
            frame.asking = action.id
        elif isinstance(action, SetVariable):
            assert action.value is not None
            self._assign(state, frame, action.variable, self._value(action.value, frame, state, ctx))
            frame.pc += 1
        elif isinstance(action, SetTextVariable):
            assert action.text is not None
            self._assign(state, frame, action.variable, self._render(action.text, frame, state, ctx))
            frame.pc += 1
        elif isinstance(action, ParseValue):
            assert action.value is not None
            raw = self._value(action.value, frame, state, ctx)
            self._assign(state, frame, action.variable, _parse_value(raw, action.value_type))
            frame.pc += 1
        elif isinstance(action, BeginDialog):
            frame.pc += 1
            inputs = {f"Topic.{n}": self._value(v, frame, state, ctx) for n, v in action.inputs}
            self._push(state, action.dialog, inputs, [[n, ref.name] for n, ref in action.outputs])
        elif isinstance(action, ReplaceDialog):
            inputs = {f"Topic.{n}": self._value(v, frame, state, ctx) for n, v in action.inputs}
            state.frames.pop()
            self._push(state, action.dialog, inputs)
        elif isinstance(action, Simple):
            await self._simple(action, state, frame, ctx, result)
        elif isinstance(action, TransferConversation):
            self._transfer(action, state, frame, ctx, result)
        elif isinstance(action, Telephony):
            self._telephony(action, state, frame, ctx, result)
        elif isinstance(action, HttpRequest):
            await self._http(action, state, frame, ctx)
            frame.pc += 1
        elif isinstance(action, Unsupported):
            raise RuntimeFailure("UnsupportedAction", f"action kind '{action.kind}' is not supported")
        else:
            frame.pc += 1

    async def _simple(
        self, action: Simple, state: DialogState, frame: Frame, ctx: TurnContext, result: TurnResult
    ) -> None:
        if action.kind == "EndDialog":
            self._return(state)
        elif action.kind == "CancelAllDialogs":
            state.frames.clear()
        elif action.kind == "ClearAllVariables":
            state.globals.clear()
            frame.pc += 1
        elif action.kind == "EndConversation":
            state.frames.clear()
            state.ended = True
            result.activities.append(Activity(type="endOfConversation", from_=self.account))
            result.outcome = Outcome(OutcomeKind.END_CONVERSATION)
        elif action.kind == "HangUp":
            state.frames.clear()
            state.ended = True
            result.outcome = Outcome(OutcomeKind.HANG_UP)
        else:
            frame.pc += 1

    def _transfer(
        self,
        action: TransferConversation,
        state: DialogState,
        frame: Frame,
        ctx: TurnContext,
        result: TurnResult,
    ) -> None:
        message = (
            self._render(action.message_to_agent, frame, state, ctx) if action.message_to_agent else None
        )
        if action.transfer is TransferKind.PHONE_NUMBER:
            assert action.phone_number is not None
            number = render_text(self._value(action.phone_number, frame, state, ctx))
            result.outcome = Outcome(OutcomeKind.TRANSFER_TO_PHONE_NUMBER, phone_number=number)
        else:
            variables = self.handoff_variables(state, ctx)
            if action.context_kind == "ManualTransferContext":
                for name, value in action.context_variables:
                    variables[name] = self._value(value, frame, state, ctx)
            result.outcome = Outcome(
                OutcomeKind.TRANSFER_TO_AGENT, message_to_agent=message, variables=variables
            )
        state.frames.clear()

    def _telephony(
        self, action: Telephony, state: DialogState, frame: Frame, ctx: TurnContext, result: TurnResult
    ) -> None:
        value = self._value(action.value, frame, state, ctx) if action.value else None
        frame.pc += 1
        if action.telephony is TelephonyKind.SURVEY_CONSENT:
            state.globals["Global.va_SurveyConsent"] = bool(value)
        elif action.telephony is TelephonyKind.UNINTERRUPTIBLE_MESSAGE:
            text = render_text(value)
            result.activities.append(
                Activity(
                    type="message",
                    from_=self.account,
                    text=text,
                    speak=text,
                    text_format="plain",
                    channel_data={"warmline": {"uninterruptible": True}},
                )
            )
        elif action.telephony is TelephonyKind.CUSTOMER_LOCALE:
            locale = render_text(value)
            state.globals["Global.va_CustomerLocale"] = locale
            state.frames.clear()
            result.outcome = Outcome(
                OutcomeKind.TRANSFER_TO_AGENT, locale=locale, variables=self.handoff_variables(state, ctx)
            )
        elif action.telephony is TelephonyKind.TRANSFER_TO_PHONE_NUMBER:
            state.frames.clear()
            result.outcome = Outcome(OutcomeKind.TRANSFER_TO_PHONE_NUMBER, phone_number=render_text(value))
        else:
            state.frames.clear()
            state.ended = True
            result.outcome = Outcome(OutcomeKind.HANG_UP)

    async def _http(self, action: HttpRequest, state: DialogState, frame: Frame, ctx: TurnContext) -> None:
        assert action.url is not None
        url = self._render(action.url, frame, state, ctx)
        host = urlsplit(url).hostname or ""
        if host not in self.bot.settings.allowed_http_hosts:
            raise RuntimeFailure(
                "HttpHostNotAllowed", f"HTTP requests to '{host}' are not allowed for this bot"
            )
        if self.http is None:
            raise RuntimeFailure("HttpUnavailable", "HTTP requests are not available in this runtime")
        headers = {name: self._render(t, frame, state, ctx) for name, t in action.headers}
        body = None
        if action.body is not None:
            raw = self._value(action.body, frame, state, ctx)
            body = raw if isinstance(raw, str) else json.dumps(raw)
        try:
            status, text = await self.http.request(
                action.method, url, headers, body, action.timeout_ms / 1000
            )
        except TimeoutError as error:
            status, text = 0, ""
            if action.error_variable is None:
                raise RuntimeFailure("HttpTimeout", f"{action.method} {url} timed out") from error
        except OSError as error:
            status, text = 0, ""
            if action.error_variable is None:
                raise RuntimeFailure("HttpError", f"{action.method} {url} failed: {error}") from error
        if status >= 400 or status == 0:
            if action.error_variable is None:
                raise RuntimeFailure("HttpError", f"{action.method} {url} answered {status}")
            self._assign(state, frame, action.error_variable, {"StatusCode": status, "Body": text})
            return
        if action.response is not None:
            value: Any = text
            if action.response_schema != "String":
                try:
                    value = json.loads(text) if text else None
                except json.JSONDecodeError as error:
                    raise RuntimeFailure("HttpBadResponse", f"{url} did not answer JSON") from error
            self._assign(state, frame, action.response, value)

    async def _fail(
        self,
        state: DialogState,
        ctx: TurnContext,
        activity: Activity | None,
        failure: RuntimeFailure,
        result: TurnResult,
    ) -> None:
        state.frames.clear()
        state.error = {"code": failure.code, "message": failure.message}
        handler = self.by_trigger.get(TriggerKind.ERROR)
        if handler is not None:
            self._push(state, handler)
            try:
                await self._run(state, ctx, activity, result)
                return
            except RuntimeFailure:
                state.frames.clear()
        result.activities.append(self._message(f"Sorry, something went wrong ({failure.code})."))

    # --- values ---------------------------------------------------------------------------------

    def system_values(self, state: DialogState, ctx: TurnContext) -> dict[str, Any]:
        """``System.*``, ``bot.*`` and ``Env.*`` values for this turn (cached until they change)."""
        key = (state.fallback_count, state.error.get("code"), len(state.phrases), state.turns)
        cached = ctx.cache.get("system")
        if cached is not None and cached[0] == key:
            return cached[1]  # type: ignore[no-any-return]
        activity = ctx.activity
        values: dict[str, Any] = {
            "System.Activity.Text": activity.text if activity else None,
            "System.Activity.Type": activity.type if activity else None,
            "System.Activity.Name": activity.name if activity else None,
            "System.Activity.Value": activity.value if activity else None,
            "System.Activity.ChannelData": activity.channel_data if activity else None,
            "System.Activity.From.Name": ctx.customer_phone or ctx.user_name,
            "System.Activity.Recipient.Name": ctx.organization_phone or self.bot.settings.name,
            "System.Conversation.Id": ctx.conversation_id,
            "System.Conversation.InTestMode": ctx.in_test_mode,
            "System.Conversation.LocalTimeZone": "UTC",
            "System.Channel.Id": ctx.channel,
            "System.User.IsLoggedIn": ctx.authenticated,
            "System.User.Id": ctx.user_id if ctx.authenticated else None,
            "System.User.DisplayName": ctx.user_name,
            "System.Bot.Name": self.bot.settings.name,
            "System.Bot.Id": self.bot.settings.name,
            "System.FallbackCount": state.fallback_count,
            "System.Error.Message": state.error.get("message"),
            "System.Error.Code": state.error.get("code"),
            "System.LastMessage.Text": state.last_message.get("text"),
            "System.LastMessage.Id": state.last_message.get("id"),
            "System.Recognizer.TriggerMessage.Text": state.phrases[-1] if state.phrases else None,
            "System.SignInReason": None,
            "System.Agent.Notes": state.globals.get("System.Agent.Notes"),
            "System.Agent.Name": state.globals.get("System.Agent.Name"),
            "System.Locale": ctx.locale,
            "bot.CustomerPhoneNumber": ctx.customer_phone,
            "bot.OrganizationPhoneNumber": ctx.organization_phone,
        }
        for name, value in self.bot.settings.env:
            values[f"Env.{name}"] = value
        ctx.cache["system"] = (key, values)
        return values

    def _seed_globals(self, state: DialogState, ctx: TurnContext) -> None:
        """Defaults, and values the host page or omnichannel supplied for external globals."""
        for name, declared in self.bot.globals.items():
            short = name.split(".", 1)[1]
            if declared.external and short in ctx.context and name not in state.globals:
                state.globals[name] = ctx.context[short]
            elif name not in state.globals and declared.default is not None:
                state.globals[name] = (
                    declared.default.literal if declared.default.expression is None else None
                )
        for short, value in ctx.context.items():
            if short.startswith(("msdyn_", "va_")):
                state.globals.setdefault(f"Global.{short}", value)

    def _scope(self, frame: Frame | None, state: DialogState, ctx: TurnContext) -> Scope:
        return Scope(frame, state, self.system_values(state, ctx))

    def _evaluate(
        self, expression: Expression, frame: Frame | None, state: DialogState, ctx: TurnContext
    ) -> Any:
        try:
            return evaluate(expression, self._scope(frame, state, ctx), ctx.now)
        except ExpressionError as error:
            raise RuntimeFailure("FormulaError", f"{expression.source}: {error.message}") from error

    def _value(self, value: Value, frame: Frame | None, state: DialogState, ctx: TurnContext) -> Any:
        if value.expression is None:
            return value.literal
        return self._evaluate(value.expression, frame, state, ctx)

    def _render(self, template: Template, frame: Frame | None, state: DialogState, ctx: TurnContext) -> str:
        out = []
        for part in template.parts:
            out.append(
                part if isinstance(part, str) else render_text(self._evaluate(part, frame, state, ctx))
            )
        return "".join(out)

    def _assign(self, state: DialogState, frame: Frame, ref: VariableRef | None, value: Any) -> None:
        if ref is None:
            return
        if ref.scope == "Global":
            state.globals[ref.name] = value
        else:
            frame.variables[ref.name] = value

    def handoff_variables(self, state: DialogState, ctx: TurnContext) -> dict[str, Any]:
        """Every variable collected: topic variables merged across topics (the most recent topic
        wins), then globals; names keep their scope prefix so the two never mix."""
        merged: dict[str, Any] = dict(state.collected)
        for frame in state.frames:
            merged.update(frame.variables)
        merged.update(state.globals)
        return merged

    # --- messages -------------------------------------------------------------------------------

    def _send(
        self, action: SendActivity, frame: Frame, state: DialogState, ctx: TurnContext, owner: Action
    ) -> Activity:
        variant = zlib.crc32(f"{ctx.conversation_id}/{owner.id}/{state.turns}".encode())
        text = (
            self._render(action.texts[variant % len(action.texts)], frame, state, ctx)
            if action.texts
            else None
        )
        speak = (
            self._render(action.speak[variant % len(action.speak)], frame, state, ctx)
            if action.speak
            else None
        )
        attachments = [Attachment.model_validate(_card(a)) for a in action.attachments]
        return self._message(
            text,
            speak=speak,
            attachments=attachments or None,
            suggested=list(action.suggested_actions) or None,
        )

    def _csat_prompt(self) -> Activity:
        return self._message(
            "How would you rate your experience, from 1 (poor) to 5 (excellent)?",
            suggested=list(CSAT_CHOICES),
        )

    def _message(
        self,
        text: str | None,
        *,
        speak: str | None = None,
        attachments: list[Attachment] | None = None,
        suggested: list[str] | None = None,
    ) -> Activity:
        activity = Activity(
            type="message",
            from_=self.account,
            text=text,
            speak=speak,
            text_format="markdown",
            attachments=attachments,
        )
        return _with_suggestions(activity, suggested) if suggested else activity


class _Missing:
    pass


_MISSING: Any = _Missing()


def _with_suggestions(activity: Activity, titles: list[str]) -> Activity:
    actions = [{"type": "imBack", "title": t, "value": t} for t in titles]
    return activity.model_copy(update={"suggested_actions": {"actions": actions}})


def _card(raw: dict[str, Any]) -> dict[str, Any]:
    content = raw.get("content")
    if isinstance(content, str):
        with contextlib.suppress(json.JSONDecodeError):
            content = json.loads(content)
    return {
        **raw,
        "contentType": raw.get("contentType", "application/vnd.microsoft.card.adaptive"),
        "content": content,
    }


def _parse_value(raw: Any, value_type: str) -> Any:
    if not isinstance(raw, str):
        return raw
    lowered = value_type.lower()
    if lowered in {"number", "numberdatatype"}:
        try:
            return float(raw) if "." in raw else int(raw)
        except ValueError as error:
            raise RuntimeFailure("ParseError", f"'{raw}' is not a number") from error
    if lowered in {"boolean", "booleandatatype"}:
        return raw.strip().lower() == "true"
    if lowered in {"string", "stringdatatype", "text"}:
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise RuntimeFailure("ParseError", f"could not parse {value_type}: {error}") from error
