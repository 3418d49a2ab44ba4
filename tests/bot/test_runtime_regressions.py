"""Regressions found by the end-to-end tests of the bot runtime, each pinned by a focused test."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.bot.conftest import Chat, build
from tests.support import TEST_SECRET, LiveServer
from warmline.bot.dialog import DialogEngine, OutcomeKind
from warmline.bot.loader import read_bot_folder
from warmline.bot.publishing import PublishRefused, check_bot, do_attach_bot, do_publish_bot
from warmline.demo import DEMO_BOT_FOLDER, DEMO_WIDGET_ID
from warmline.store import Database
from warmline.store.schema import ActivityRow

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
CSAT_PROMPT = "How would you rate your experience, from 1 (poor) to 5 (excellent)?"


def demo_engine() -> DialogEngine:
    bot, problems = check_bot(read_bot_folder(DEMO_BOT_FOLDER))
    assert not [p for p in problems if p.severity == "error"]
    return DialogEngine(bot)


# The handoff.initiate event carries the private message to the agent and every bot variable. It
# was stored as an ordinary bot activity, so Direct Line sent it to the customer's browser too.


async def test_the_handoff_event_never_reaches_the_customer(db: Database, live_server: LiveServer) -> None:
    async with db.transaction() as tx:
        await do_publish_bot(tx, "retail", read_bot_folder(DEMO_BOT_FOLDER), NOW)
        await do_attach_bot(tx, DEMO_WIDGET_ID, "retail")
    async with httpx.AsyncClient(timeout=10) as client:
        started = await client.post(
            f"{live_server.domain}/conversations", headers={"Authorization": f"Bearer {TEST_SECRET}"}
        )
        assert started.status_code == 201, started.text
        conversation_id, token = started.json()["conversationId"], started.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        for text in ("talk to a person", "my card was charged twice"):
            sent = await client.post(
                f"{live_server.domain}/conversations/{conversation_id}/activities",
                headers=auth,
                json={"type": "message", "text": text, "from": {"id": "customer"}},
            )
            assert sent.status_code == 200, sent.text
        seen = await client.get(
            f"{live_server.domain}/conversations/{conversation_id}/activities", headers=auth
        )
    assert seen.status_code == 200, seen.text
    customer_view: list[dict[str, Any]] = seen.json()["activities"]
    assert any("connecting you with an agent" in (a.get("text") or "") for a in customer_view)
    assert [a for a in customer_view if a["type"] == "event"] == []
    assert "my card was charged twice" not in json.dumps(
        [a for a in customer_view if a["from"].get("role") != "user"]
    )

    # It is still stored, for the omnichannel and the agent.
    async with db.reading() as session:
        rows = await session.execute(
            select(ActivityRow.payload).where(ActivityRow.conversation_id == conversation_id)
        )
        events = [p for (p,) in rows if p.get("name") == "handoff.initiate"]
    assert len(events) == 1
    assert events[0]["channelData"] == {"warmline": {"visibility": "agents"}}
    assert "my card was charged twice" in events[0]["value"]["va_AgentMessage"]


# A CSAT question the customer would not answer escalated to a live agent: a customer who had just
# said they needed nothing else was handed to a person for not giving a score.


async def test_an_unanswered_csat_question_is_skipped_not_escalated() -> None:
    chat = await Chat(demo_engine()).start()
    await chat.say("store hours")
    assert await chat.say("no") == [CSAT_PROMPT]
    assert await chat.say("bye") == [CSAT_PROMPT]
    assert await chat.say("thanks") == [CSAT_PROMPT]
    assert await chat.say("ok") == ["Thanks for chatting with Contoso. Goodbye!"]
    assert chat.outcome is not None and chat.outcome.kind is OutcomeKind.END_CONVERSATION
    assert chat.state.globals.get("Global.CSAT") is None
    assert chat.state.topics == ["Store hours"]  # the Escalate topic never started


async def test_a_csat_question_still_takes_a_late_valid_score() -> None:
    body = (
        "    - kind: CSATQuestion\n      id: csat\n      variable: init:Global.Score\n"
        "    - kind: SendActivity\n      id: after\n      activity: 'Score: {Global.Score}'\n"
    )
    topic = (
        "kind: AdaptiveDialog\nbeginDialog:\n  kind: OnRecognizedIntent\n  id: main\n"
        "  intent:\n    displayName: Rate\n    triggerQueries:\n      - rate us\n  actions:\n" + body
    )
    chat = await Chat(build({"Rate": topic})).start()
    await chat.say("rate us")
    assert await chat.say("meh") == [CSAT_PROMPT]
    assert await chat.say("four") == ["Score: 4"]
    # Skipped after the re-prompts: the topic goes on with the score blank.
    chat = await Chat(build({"Rate": topic})).start()
    await chat.say("rate us")
    for answer in ("meh", "dunno"):
        assert await chat.say(answer) == [CSAT_PROMPT]
    assert await chat.say("whatever") == ["Score: "]
    assert chat.outcome is None


# `warmline bot publish PATH` printed problems under the bot id ("<id>/topics/X.yaml:3:7"), a path
# that does not exist, instead of the file the author has open.


async def test_publish_problems_name_the_files_under_the_given_folder(db: Database) -> None:
    files = {
        "bot.yaml": "name: Broken\n",
        "topics/Hi.yaml": (
            "kind: AdaptiveDialog\nbeginDialog:\n  kind: OnRecognizedIntent\n  id: main\n"
            "  intent:\n    displayName: Hi\n    triggerQueries: [hi]\n  actions:\n"
            "    - kind: NoSuchAction\n      id: x\n"
        ),
    }
    with pytest.raises(PublishRefused) as refused:
        async with db.transaction() as tx:
            await do_publish_bot(tx, "broken", files, NOW, root="/home/dana/bots/broken-bot")
    assert [str(p) for p in refused.value.problems] == [
        "/home/dana/bots/broken-bot/topics/Hi.yaml:9:7: unknown action kind 'NoSuchAction'"
    ]
    with pytest.raises(PublishRefused) as refused:
        async with db.transaction() as tx:
            await do_publish_bot(tx, "broken", files, NOW)
    assert str(refused.value.problems[0]).startswith("broken/topics/Hi.yaml:9:7: ")
