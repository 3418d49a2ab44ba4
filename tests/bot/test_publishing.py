"""Publishing: numbered immutable versions, refusals that store nothing, conversations pinned to the
version they started on, and ``warmline bot publish`` from the command line."""

from __future__ import annotations

import asyncio
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.support import TEST_SECRET, DatabaseUnderTest, LiveServer
from warmline.bot.loader import read_bot_folder
from warmline.bot.publishing import (
    PublishRefused,
    do_attach_bot,
    do_publish_bot,
    get_latest_version,
    get_version_files,
    list_versions,
    pin_bot,
)
from warmline.cli import app
from warmline.conversations.reads import get_conversation
from warmline.demo import DEMO_BOT_FOLDER, DEMO_WIDGET_ID
from warmline.events import InProcessBus
from warmline.store import Database
from warmline.store.schema import BotRow, BotVersionRow, WidgetRow

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
BOT_ID = "contoso-test"

GREETING_V1 = "Hello! I'm the Contoso Retail assistant."
GREETING_V2 = "Hi there, this is Contoso's new assistant."
ASK_ORDER_V1 = "What's your order number? It's the 5-digit number in your confirmation email."
ASK_ORDER_V2 = "Please type your order number."
SHIPPED_V1 = "Order 12345 has shipped and should arrive within 2 business days."
SHIPPED_V2 = "Good news: order 12345 is on its way."

BROKEN_TOPIC = """\
kind: AdaptiveDialog
beginDialog:
  kind: OnRecognizedIntent
  id: main
  intent:
    displayName: Broken
    triggerQueries: [break something]
  actions:
    - kind: SendActivity
      id: hi
      activity: "Hi {Topic.Missing}"
    - kind: BeginDialog
      id: go
      dialog: NoSuchTopic
"""
# Where the two errors above are: the formula hole, and the BeginDialog action.
BROKEN_AT = [(11, 22, "unknown variable 'Topic.Missing'"), (12, 7, "no such topic")]


def demo_files() -> dict[str, str]:
    return read_bot_folder(DEMO_BOT_FOLDER)


def version_two(files: dict[str, str]) -> dict[str, str]:
    """The demo bot with a new greeting and new order-status texts, and an extra action that
    shifts every later action of Order status (a conversation on v1 must not notice)."""
    changed = dict(files)
    start = changed["topics/ConversationStart.yaml"]
    assert GREETING_V1 in start
    changed["topics/ConversationStart.yaml"] = start.replace(GREETING_V1, GREETING_V2)
    order = changed["topics/OrderStatus.yaml"]
    assert ASK_ORDER_V1 in order and "has shipped and should arrive" in order
    order = order.replace(ASK_ORDER_V1, ASK_ORDER_V2)
    order = order.replace(
        "Order {Topic.OrderNumber} has shipped and should arrive within 2 business days.",
        "Good news: order {Topic.OrderNumber} is on its way.",
    )
    order = order.replace(
        "  actions:\n",
        "  actions:\n    - kind: SendActivity\n      id: intro\n      activity: Let me look that up.\n",
        1,
    )
    changed["topics/OrderStatus.yaml"] = order
    return changed


async def publish(db: Database, files: dict[str, str], now: datetime = NOW, bot_id: str = BOT_ID) -> Any:
    async with db.transaction() as tx:
        return await do_publish_bot(tx, bot_id, files, now)


async def stored_versions(db: Database, bot_id: str = BOT_ID) -> list[int]:
    async with db.reading() as session:
        return [version for version, _ in await list_versions(session, bot_id)]


# --- versions ---------------------------------------------------------------------------------------


async def test_publish_numbers_versions_and_unchanged_files_publish_nothing(db: Database) -> None:
    files = demo_files()
    first = await publish(db, files)
    assert (first.bot_id, first.version, first.created) == (BOT_ID, 1, True)
    assert first.warnings == ()

    again = await publish(db, dict(files), NOW + timedelta(minutes=5))
    assert (again.version, again.created) == (1, False)
    assert await stored_versions(db) == [1]

    changed = version_two(files)
    second = await publish(db, changed, NOW + timedelta(minutes=10))
    assert (second.version, second.created) == (2, True)
    # Going back to v1's files is a change too: versions only ever count up.
    third = await publish(db, files, NOW + timedelta(minutes=20))
    assert (third.version, third.created) == (3, True)

    async with db.reading() as session:
        assert [v for v, _ in await list_versions(session, BOT_ID)] == [1, 2, 3]
        assert await get_latest_version(session, BOT_ID) == 3
        # Each version is an immutable snapshot of exactly the files it was published from.
        assert await get_version_files(session, BOT_ID, 1) == files
        assert await get_version_files(session, BOT_ID, 2) == changed
        assert await get_version_files(session, BOT_ID, 3) == files
        assert await get_version_files(session, BOT_ID, 4) is None
        bot = await session.get(BotRow, BOT_ID)
        assert bot is not None and bot.name == "Contoso Retail Assistant"
        published_at = [at for _, at in await list_versions(session, BOT_ID)]
    assert [at.replace(tzinfo=UTC) if at.tzinfo is None else at for at in published_at] == [
        NOW,
        NOW + timedelta(minutes=10),
        NOW + timedelta(minutes=20),
    ]


async def test_a_bot_with_errors_is_refused_and_nothing_is_stored(db: Database) -> None:
    files = {**demo_files(), "topics/Broken.yaml": BROKEN_TOPIC}
    with pytest.raises(PublishRefused) as refused:
        await publish(db, files)
    problems = refused.value.problems
    assert [(p.position.file, p.position.line, p.position.column) for p in problems] == [
        (f"{BOT_ID}/topics/Broken.yaml", line, column) for line, column, _ in BROKEN_AT
    ]
    for problem, (line, column, message) in zip(problems, BROKEN_AT, strict=True):
        assert str(problem).startswith(f"{BOT_ID}/topics/Broken.yaml:{line}:{column}: ")
        assert message in problem.message
    assert all(p.severity == "error" for p in problems)

    async with db.reading() as session:
        assert await session.get(BotRow, BOT_ID) is None
        assert await session.scalar(select(func.count()).select_from(BotVersionRow)) == 0


async def test_a_refused_version_leaves_the_published_one_running(db: Database) -> None:
    files = demo_files()
    await publish(db, files)
    with pytest.raises(PublishRefused):
        await publish(db, {**version_two(files), "topics/Broken.yaml": BROKEN_TOPIC})
    assert await stored_versions(db) == [1]
    async with db.reading() as session:
        assert await get_version_files(session, BOT_ID, 1) == files


async def test_new_conversations_pin_the_widgets_newest_version(db: Database) -> None:
    async with db.reading() as session:
        assert await pin_bot(session, DEMO_WIDGET_ID) == (None, None)  # no bot yet: the echo bot
        assert await pin_bot(session, None) == (None, None)
    await publish(db, demo_files())
    async with db.transaction() as tx:
        await do_attach_bot(tx, DEMO_WIDGET_ID, BOT_ID)
    async with db.reading() as session:
        assert await pin_bot(session, DEMO_WIDGET_ID) == (BOT_ID, 1)
    await publish(db, version_two(demo_files()))
    async with db.reading() as session:
        assert await pin_bot(session, DEMO_WIDGET_ID) == (BOT_ID, 2)
    with pytest.raises(LookupError, match="no widget 'nope'"):
        async with db.transaction() as tx:
            await do_attach_bot(tx, "nope", BOT_ID)


# --- in-flight pinning over Direct Line ---------------------------------------------------------------


class DirectLineChat:
    """One Direct Line conversation over HTTP; ``say`` returns the bot's texts since the last call."""

    def __init__(self, client: httpx.AsyncClient, server: LiveServer) -> None:
        self.client = client
        self.server = server
        self.id = ""
        self.token = ""
        self.watermark: str | None = None

    async def start(self) -> list[str]:
        response = await self.client.post(
            f"{self.server.domain}/conversations",
            headers={"Authorization": f"Bearer {TEST_SECRET}"},
            json={"user": {"id": "customer-1"}},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        self.id, self.token = body["conversationId"], body["token"]
        return await self.bot_texts()

    async def say(self, text: str) -> list[str]:
        response = await self.client.post(
            f"{self.server.domain}/conversations/{self.id}/activities",
            headers={"Authorization": f"Bearer {self.token}"},
            json={"type": "message", "text": text, "from": {"id": "customer-1"}},
        )
        assert response.status_code == 200, response.text
        # The POST answers once the bot's reply is committed, so the reply is already readable.
        return await self.bot_texts()

    async def bot_texts(self) -> list[str]:
        params = {"watermark": self.watermark} if self.watermark else {}
        response = await self.client.get(
            f"{self.server.domain}/conversations/{self.id}/activities",
            headers={"Authorization": f"Bearer {self.token}"},
            params=params,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        self.watermark = body["watermark"]
        return [
            a["text"] for a in body["activities"] if a["type"] == "message" and a["from"].get("role") == "bot"
        ]


async def test_conversations_in_flight_keep_their_version_after_a_new_one_is_published(
    db: Database, live_server: LiveServer
) -> None:
    files = demo_files()
    async with db.transaction() as tx:
        await do_publish_bot(tx, BOT_ID, files, NOW)
        await do_attach_bot(tx, DEMO_WIDGET_ID, BOT_ID)

    async with httpx.AsyncClient(timeout=10) as client:
        early = DirectLineChat(client, live_server)
        assert (await early.start())[0] == GREETING_V1
        assert await early.say("where is my order") == [ASK_ORDER_V1]

        # Published mid-question, while `early` waits for its order number.
        assert (await publish(db, version_two(files), NOW + timedelta(minutes=1))).version == 2

        late = DirectLineChat(client, live_server)
        assert (await late.start())[0] == GREETING_V2
        assert await late.say("where is my order") == ["Let me look that up.", ASK_ORDER_V2]

        # The early conversation resumes the v1 question it was asked, and finishes on v1's texts.
        assert await early.say("12345") == ["And the email address you ordered with?"]
        replies = await early.say("dana@example.com")
        assert replies[0].startswith(SHIPPED_V1), replies
        assert replies[1:] == ["Is there anything else I can help with?"]

        assert await late.say("12345") == ["And the email address you ordered with?"]
        replies = await late.say("dana@example.com")
        assert replies[0].startswith(SHIPPED_V2), replies

    async with db.reading() as session:
        for chat, version in ((early, 1), (late, 2)):
            conversation = await get_conversation(session, chat.id)
            assert conversation is not None
            assert (conversation.bot_id, conversation.bot_version) == (BOT_ID, version)


async def test_a_widget_without_a_bot_keeps_the_echo_bot(db: Database, live_server: LiveServer) -> None:
    await publish(db, demo_files())  # published, but attached to no widget
    async with httpx.AsyncClient(timeout=10) as client:
        chat = DirectLineChat(client, live_server)
        assert (await chat.start())[0].startswith("Hello! I'm Warmline Echo")
        assert await chat.say("where is my order") == ["You said: where is my order"]


# --- the command line ---------------------------------------------------------------------------------


def copy_demo_bot(tmp_path: Path) -> Path:
    folder = tmp_path / "my-bot"
    shutil.copytree(DEMO_BOT_FOLDER, folder, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    return folder


def read_back(database: DatabaseUnderTest, bot_id: str) -> tuple[list[int], str | None]:
    """The bot's published versions and the demo widget's bot."""

    async def read() -> tuple[list[int], str | None]:
        db = Database(database.url, InProcessBus(), schema=database.schema)
        try:
            async with db.reading() as session:
                versions = [v for v, _ in await list_versions(session, bot_id)]
                widget = await session.get(WidgetRow, DEMO_WIDGET_ID)
                assert widget is not None
                return versions, widget.bot_id
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_cli_publish_prints_the_version_and_attaches_the_widget(
    database: DatabaseUnderTest, tmp_path: Path
) -> None:
    folder = copy_demo_bot(tmp_path)
    runner = CliRunner()
    command = ["bot", "publish", str(folder), "--id", BOT_ID, "--widget", DEMO_WIDGET_ID]

    result = runner.invoke(app, command, env=database.env())
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Bot '{BOT_ID}' published version 1."
    assert read_back(database, BOT_ID) == ([1], BOT_ID)

    result = runner.invoke(app, command, env=database.env())
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Bot '{BOT_ID}' unchanged; still version 1."

    topic = folder / "topics" / "StoreHours.yaml"
    topic.write_text(topic.read_text().replace("Sunday 11:00", "Sunday 10:00"))
    result = runner.invoke(app, ["bot", "publish", str(folder), "--id", BOT_ID], env=database.env())
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Bot '{BOT_ID}' published version 2."
    assert read_back(database, BOT_ID) == ([1, 2], BOT_ID)


def test_cli_refused_publish_exits_1_with_file_line_col(database: DatabaseUnderTest, tmp_path: Path) -> None:
    folder = copy_demo_bot(tmp_path)
    broken = folder / "topics" / "Broken.yaml"
    broken.write_text(BROKEN_TOPIC)

    result = CliRunner().invoke(
        app, ["bot", "publish", str(folder), "--id", BOT_ID, "--widget", DEMO_WIDGET_ID], env=database.env()
    )
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[-1] == "Not published: 2 error(s)."
    # Each problem names the file the author has open, as file:line:col: message.
    for line, (row, column, message) in zip(lines[:-1], BROKEN_AT, strict=True):
        assert line.startswith(f"{broken}:{row}:{column}: "), line
        assert message in line
    assert result.stdout == ""
    assert read_back(database, BOT_ID) == ([], None)


def test_cli_publish_to_an_unknown_widget_publishes_nothing(
    database: DatabaseUnderTest, tmp_path: Path
) -> None:
    folder = copy_demo_bot(tmp_path)
    result = CliRunner().invoke(
        app, ["bot", "publish", str(folder), "--id", BOT_ID, "--widget", "nope"], env=database.env()
    )
    assert result.exit_code == 1, result.output
    assert re.search(r"Not published: .*no widget 'nope'", result.stderr)
    assert read_back(database, BOT_ID) == ([], None)
