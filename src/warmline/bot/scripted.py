"""Scripted conversation tests (``warmline bot test FILE.yaml``): the bot author's CI.

A test file names a bot folder and lists conversations as steps::

    bot: ../bot                      # relative to this file
    tests:
      - name: order status
        user: {name: Dana, authenticated: true}   # optional sign-in
        context: {CustomerTier: gold}             # optional host-page context
        steps:
          - bot: Hello, Dana!*                    # exact text, or
          - user: where is my order
          - bot: {regex: "order number"}          # a regular expression (search)
          - expect_variable: {Topic.OrderNumber: 12345}
          - expect_transfer: {message_to_agent: {regex: "refund"}}

The conversation runs in memory against the draft files (validated first), so it needs no server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from warmline.activity import Activity
from warmline.bot.dialog import DialogEngine, Outcome, OutcomeKind, TurnContext
from warmline.bot.expressions import render_text
from warmline.bot.loader import Problem, _plain, read_bot_folder
from warmline.bot.publishing import check_bot
from warmline.bot.state import DialogState

SCRIPT_NOW = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


@dataclass
class CaseResult:
    """Outcome of one scripted conversation."""

    name: str
    failures: list[str] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every step held."""
        return not self.failures


@dataclass
class ScriptReport:
    """Outcome of a whole test file."""

    file: str
    problems: list[Problem] = field(default_factory=list)
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when the bot loaded cleanly and every case passed."""
        return not [p for p in self.problems if p.severity == "error"] and all(c.passed for c in self.cases)


def _matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict) and "regex" in expected:
        return actual is not None and re.search(str(expected["regex"]), render_text(actual)) is not None
    if isinstance(actual, float) and isinstance(expected, int):
        return actual == expected
    return bool(expected == actual or (isinstance(actual, str) and str(expected) == actual))


class _Conversation:
    def __init__(self, engine: DialogEngine, case: dict[str, Any], index: int) -> None:
        user = case.get("user") or {}
        self.engine = engine
        self.state = DialogState()
        self.ctx = TurnContext(
            conversation_id=f"script-{index}",
            now=SCRIPT_NOW,
            channel=str(case.get("channel", "directline")),
            user_id=str(user.get("id", "script-user")),
            user_name=user.get("name"),
            authenticated=bool(user.get("authenticated", False)),
            in_test_mode=True,
            customer_phone=str(case.get("customer_phone", "")),
            organization_phone=str(case.get("organization_phone", "")),
            context=dict(case.get("context") or {}),
        )
        self.pending: list[Activity] = []
        self.outcome: Outcome | None = None
        self.turn = 0

    async def start(self) -> None:
        result = await self.engine.start(self.state, self.ctx)
        self._take(result.activities, result.outcome)

    async def say(self, text: str) -> None:
        self.turn += 1
        activity = Activity(type="message", text=text, id=f"{self.ctx.conversation_id}|{self.turn:07d}")
        self.pending.clear()
        self.outcome = None
        result = await self.engine.turn(self.state, activity, self.ctx)
        self._take(result.activities, result.outcome)

    def _take(self, activities: list[Activity], outcome: Outcome | None) -> None:
        self.pending.extend(a for a in activities if a.type == "message")
        if outcome is not None:
            self.outcome = outcome

    def variable(self, name: str) -> Any:
        for frame in reversed(self.state.frames):
            if name in frame.variables:
                return frame.variables[name]
        if name in self.state.globals:
            return self.state.globals[name]
        return self.state.collected.get(name)


async def _run_case(engine: DialogEngine, case: dict[str, Any], index: int, where: str) -> CaseResult:
    result = CaseResult(str(case.get("name", f"case {index + 1}")))
    talk = _Conversation(engine, case, index)
    await talk.start()
    for number, step in enumerate(case.get("steps") or [], start=1):
        label = f"{where} step {number}"
        if not isinstance(step, dict) or len(step) != 1:
            result.failures.append(
                f"{label}: a step is one of user:, bot:, expect_variable:, expect_transfer:"
            )
            break
        ((kind, expected),) = step.items()
        if kind == "user":
            result.transcript.append(f"user: {expected}")
            await talk.say(str(expected))
        elif kind == "bot":
            if not talk.pending:
                result.failures.append(
                    f"{label}: expected the bot to say {expected!r}, but it said nothing more"
                )
                break
            said = talk.pending.pop(0)
            result.transcript.append(f"bot:  {said.text}")
            if not _matches(expected, said.text):
                result.failures.append(f"{label}: expected the bot to say {expected!r}, got {said.text!r}")
                break
        elif kind == "expect_variable":
            for name, want in dict(expected).items():
                got = talk.variable(str(name))
                if not _matches(want, got):
                    result.failures.append(f"{label}: expected {name} = {want!r}, got {got!r}")
        elif kind == "expect_transfer":
            outcome = talk.outcome
            if outcome is None or outcome.kind is not OutcomeKind.TRANSFER_TO_AGENT:
                got = outcome.kind.value if outcome else "no transfer"
                result.failures.append(f"{label}: expected a transfer to an agent, got {got}")
                break
            if (
                isinstance(expected, dict)
                and "message_to_agent" in expected
                and not _matches(expected["message_to_agent"], outcome.message_to_agent)
            ):
                result.failures.append(
                    f"{label}: expected message to agent {expected['message_to_agent']!r}, "
                    f"got {outcome.message_to_agent!r}"
                )
        elif kind == "expect_end":
            outcome = talk.outcome
            if outcome is None or outcome.kind is not OutcomeKind.END_CONVERSATION:
                result.failures.append(f"{label}: expected the conversation to end")
        else:
            result.failures.append(f"{label}: unknown step '{kind}'")
            break
    return result


def _case_lines(root: Node | None) -> list[int]:
    """The line of each test case, for messages."""
    if not isinstance(root, MappingNode):
        return []
    for key, value in root.value:
        if key.value == "tests" and isinstance(value, SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


async def run_script(path: Path, bot_folder: Path | None = None) -> ScriptReport:
    """Run every conversation of a test file against a bot's draft files."""
    report = ScriptReport(str(path))
    try:
        root = yaml.compose(await anyio.Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        report.cases.append(
            CaseResult("(file)", [f"{path}:{line}:{column}: YAML syntax error: {error.problem}"])
        )
        return report
    data = _plain(root) if root is not None else {}
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
        report.cases.append(CaseResult("(file)", [f"{path}:1:1: a test file needs 'tests:' (a list)"]))
        return report
    folder = bot_folder or (path.parent / str(data.get("bot", "."))).resolve()
    bot, problems = check_bot(read_bot_folder(folder), root=str(folder))
    report.problems = problems
    if any(p.severity == "error" for p in problems):
        return report
    engine = DialogEngine(bot)
    lines = _case_lines(root)
    for index, case in enumerate(data["tests"]):
        where = f"{path}:{lines[index] if index < len(lines) else 1}"
        report.cases.append(await _run_case(engine, dict(case), index, where))
    return report
