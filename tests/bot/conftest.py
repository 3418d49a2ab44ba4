"""Helpers for running bots in memory: build a bot from YAML strings and talk to it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from warmline.activity import Activity
from warmline.bot.dialog import DialogEngine, HttpClient, Outcome, TurnContext
from warmline.bot.publishing import check_bot
from warmline.bot.state import DialogState

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


class Chat:
    """A conversation with an in-memory engine; ``said`` holds the bot's texts of the last turn."""

    def __init__(self, engine: DialogEngine, **context: Any) -> None:
        self.engine = engine
        self.state = DialogState()
        self.ctx = TurnContext(conversation_id="c-test", now=NOW, **context)
        self.activities: list[Activity] = []
        self.outcome: Outcome | None = None
        self.turn = 0

    @property
    def said(self) -> list[str]:
        return [a.text or "" for a in self.activities if a.type == "message"]

    async def start(self) -> Chat:
        result = await self.engine.start(self.state, self.ctx)
        self.activities, self.outcome = result.activities, result.outcome
        return self

    async def say(self, text: str) -> list[str]:
        self.turn += 1
        activity = Activity(type="message", text=text, id=f"c-test|{self.turn:07d}")
        result = await self.engine.turn(self.state, activity, self.ctx)
        self.activities, self.outcome = result.activities, result.outcome
        return self.said

    def var(self, name: str) -> Any:
        for frame in reversed(self.state.frames):
            if name in frame.variables:
                return frame.variables[name]
        return self.state.globals.get(name, self.state.collected.get(name))


def build(
    topics: Mapping[str, str],
    bot_yaml: str = "name: Test bot\n",
    variables: str | None = None,
    http: HttpClient | None = None,
) -> DialogEngine:
    """An engine for a bot made of these topic files; fails the test on any validation error."""
    files = {"bot.yaml": bot_yaml, **{f"topics/{name}.yaml": text for name, text in topics.items()}}
    if variables is not None:
        files["variables.yaml"] = variables
    bot, problems = check_bot(files)
    errors = [str(p) for p in problems if p.severity == "error"]
    assert not errors, errors
    return DialogEngine(bot, http=http)


@pytest.fixture
def now() -> datetime:
    return NOW
