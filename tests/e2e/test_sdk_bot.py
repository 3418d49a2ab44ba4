"""Bring your own bot: a real botbuilder 4.17.1 bot (examples/sdk-bot) behind Warmline's Bot Connector.

The bot runs as its own process on loopback; the customer talks over Direct Line; the bot's replies
come back through ``/botconnector/v3/...``; its hand-off routes into the omnichannel and it hears
``handoff.status`` accepted, then completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import jwt
import pytest
from sqlalchemy import select

from tests.routing.factories import contact_center
from tests.support import DatabaseUnderTest, LiveServer, free_port
from warmline.bot.publishing import do_attach_bot, do_publish_bot
from warmline.events import InProcessBus
from warmline.routing.actions import (
    do_accept_offer,
    do_close_conversation,
    do_end_conversation,
    do_set_presence,
)
from warmline.routing.config import do_apply_config
from warmline.runtime import utc_now
from warmline.store import Database, Transaction
from warmline.store.schema import ActivityRow, ConversationRow, OfferRow, WidgetRow

EXAMPLE_BOT = Path(__file__).resolve().parents[2] / "examples" / "sdk-bot" / "bot.py"
APP_ID = "6d3f1c2a-0000-4000-8000-5dcb0b07a11e"
APP_PASSWORD = "sdk-bot-app-password-for-the-tests-0123456789"
WAIT_SECONDS = 15.0
T = TypeVar("T")


class SdkBot:
    """examples/sdk-bot/bot.py as a child process; its ``/api/received`` says what it got."""

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port = port
        self.log_path = log_dir / f"sdk-bot-{port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/messages"

    def start(self, env: dict[str, str]) -> SdkBot:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(EXAMPLE_BOT), "--port", str(self.port)],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the SDK bot exited:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/api/received", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)  # readiness is only observable by asking
        raise RuntimeError(f"the SDK bot did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()

    async def received(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{self.port}/api/received")
        activities: list[dict[str, Any]] = response.json()
        return activities

    async def wait_for(self, check: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """Poll the bot's log until ``check`` holds (bounded)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            got = await self.received()
            if check(got):
                return got
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the bot never got it; it has: {got}\n{self.log_path.read_text()[-3000:]}"
                )
            await asyncio.sleep(0.05)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def statuses(received: list[dict[str, Any]], conversation_id: str) -> list[dict[str, Any]]:
    """The ``handoff.status`` values one conversation's bot got, in order."""
    return [
        a["value"]
        for a in received
        if a.get("name") == "handoff.status" and a["conversation"]["id"] == conversation_id
    ]


def external_bot_yaml(endpoint: str, *, authenticated: bool) -> str:
    credentials = f"\n  appId: {APP_ID}\n  appPassword: {APP_PASSWORD}" if authenticated else ""
    return f"name: My SDK bot\nexternal:\n  endpoint: {endpoint}{credentials}\n"


async def _prepare(database: DatabaseUnderTest, bot_yaml: str, *, workstream: str | None) -> None:
    db = Database(database.url, InProcessBus(), schema=database.schema)
    config = contact_center()
    # The SDK bot's hand-off context decides the queue: CreditCard goes to the VIP queue (agent cat).
    config.workstreams[0].rules[0].condition = '=Context.BotHandoffTopic = "CreditCard"'
    try:
        async with db.transaction() as tx:
            await do_publish_bot(tx, "sdk-bot", {"bot.yaml": bot_yaml}, utc_now())
            await do_attach_bot(tx, "demo", "sdk-bot")
            widget = await tx.session.get(WidgetRow, "demo")
            assert widget is not None
            widget.target_workstream = workstream
            await do_apply_config(tx, config, utc_now())
        async with db.transaction() as tx:
            await do_set_presence(tx, "env1", "cat", "Available", utc_now())
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def sdk_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SdkBot]:
    """One unauthenticated SDK bot for the module (importing botbuilder takes seconds)."""
    bot = SdkBot(free_port(), tmp_path_factory.mktemp("sdk-bot"))
    try:
        yield bot.start({})
    finally:
        bot.stop()


@contextlib.asynccontextmanager
async def running(
    database: DatabaseUnderTest,
    tmp_path: Path,
    bot: SdkBot,
    *,
    authenticated: bool = False,
    workstream: str | None = "env1/chat",
) -> AsyncIterator[LiveServer]:
    """Warmline on a uvicorn thread, with the SDK bot published as an external bot."""
    yaml = external_bot_yaml(bot.endpoint, authenticated=authenticated)
    await _prepare(database, yaml, workstream=workstream)
    live = LiveServer(database.settings(upload_dir=tmp_path / "uploads", routing_worker=False)).start()
    try:
        yield live
    finally:
        live.stop()


@contextlib.asynccontextmanager
async def authenticated_bot(bot: SdkBot, live: LiveServer) -> AsyncIterator[SdkBot]:
    """An SDK bot with an app registration that trusts this server's issuer and keys only."""
    bot.start({"WARMLINE_URL": live.url, "MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_PASSWORD": APP_PASSWORD})
    try:
        yield bot
    finally:
        bot.stop()


async def on_server(live: LiveServer, action: Callable[[Transaction], Awaitable[T]]) -> T:
    """Run an action in the server's own event loop and store, so its events reach the server's bus."""
    runtime = live.app.state.runtime
    loop = live.server.servers[0].get_loop()

    async def run() -> T:
        async with runtime.db.transaction() as tx:
            return await action(tx)

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), loop))


class Customer:
    """A Direct Line client on the demo widget."""

    def __init__(self, client: httpx.AsyncClient, live: LiveServer) -> None:
        self.client = client
        self.live = live
        self.conversation: dict[str, Any] = {}

    @property
    def id(self) -> str:
        conversation_id: str = self.conversation["conversationId"]
        return conversation_id

    async def start(self) -> None:
        session = await self.client.post(f"{self.live.url}/widgets/demo/conversations", json={})
        assert session.status_code == 201, session.text
        token = session.json()["token"]
        started = await self.client.post(
            f"{self.live.domain}/conversations", headers={"Authorization": f"Bearer {token}"}
        )
        assert started.status_code == 201, started.text
        self.conversation = started.json()

    async def say(self, text: str) -> None:
        response = await self.client.post(
            f"{self.live.domain}/conversations/{self.id}/activities",
            headers={"Authorization": f"Bearer {self.conversation['token']}"},
            json={"type": "message", "text": text},
        )
        assert response.status_code == 200, response.text

    async def history(self) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"{self.live.domain}/conversations/{self.id}/activities",
            headers={"Authorization": f"Bearer {self.conversation['token']}"},
        )
        activities: list[dict[str, Any]] = response.json()["activities"]
        return activities

    async def texts(self) -> list[str]:
        return [a.get("text") or "" for a in await self.history()]


async def read_state(
    database: DatabaseUnderTest, conversation_id: str
) -> tuple[ConversationRow, list[OfferRow], list[dict[str, Any]]]:
    """The stored conversation, its offers and its whole log (what agents see too)."""
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        async with db.reading() as session:
            row = await session.get(ConversationRow, conversation_id)
            offers = list(
                await session.scalars(select(OfferRow).where(OfferRow.conversation_id == conversation_id))
            )
            log = list(
                await session.scalars(
                    select(ActivityRow.payload)
                    .where(ActivityRow.conversation_id == conversation_id)
                    .order_by(ActivityRow.seq)
                )
            )
        assert row is not None
        return row, offers, log
    finally:
        await db.dispose()


async def test_sdk_bot_echoes_hands_off_and_hears_accepted_then_completed(
    database: DatabaseUnderTest, tmp_path: Path, sdk_bot: SdkBot
) -> None:
    bot = sdk_bot
    async with running(database, tmp_path, bot) as live, httpx.AsyncClient() as client:
        customer = Customer(client, live)
        await customer.start()
        assert "Hello from the SDK bot. Say 'agent' to talk to a person." in await customer.texts()

        await customer.say("hi")
        history = await customer.history()
        echo = next(a for a in history if a.get("text") == "Echo: hi")
        assert echo["from"]["role"] == "bot"
        said = next(a for a in history if a.get("text") == "hi")
        assert echo["replyToId"] == said["id"]
        # What the SDK bot got is the Bot Framework schema with Warmline as the channel.
        hi = next(a for a in await bot.received() if a.get("id") == said["id"])
        assert hi["channelId"] == "warmline"
        assert hi["serviceUrl"] == f"{live.url}/botconnector"
        assert hi["conversation"]["id"] == customer.id
        assert hi["id"] == said["id"]
        assert hi["recipient"] == {"id": "sdk-bot", "name": "My SDK bot", "role": "bot"}

        await customer.say("agent")
        row, offers, log = await read_state(database, customer.id)
        assert (row.state, row.owner, row.queue_id) == ("waiting", "queue", "vip")
        assert row.routing is not None and row.routing["rule"] == "gold"
        assert row.routing["message_to_agent"] == "Customer asked for a person after: ['hi', 'agent']"
        assert row.context["BotHandoffTopic"] == {"value": "CreditCard", "isDisplayable": True}
        [offer] = offers
        assert (offer.agent_id, offer.state) == ("cat", "pending")
        [initiate] = [a for a in log if a.get("name") == "handoff.initiate"]
        assert initiate["from"] == {"id": "sdk-bot", "name": "My SDK bot", "role": "bot"}
        assert initiate["value"]["Skill"] == "credit cards"
        assert row.routing["handoff_seq"] == int(initiate["id"].rsplit("|", 1)[1])
        [transcript] = initiate["attachments"]
        assert transcript["name"] == "Transcript"
        assert [a.get("text") for a in transcript["content"]["activities"]] == ["hi", "Echo: hi", "agent"]
        assert "Connecting you to a person…" in await customer.texts()
        assert not any(a.get("name") == "handoff.initiate" for a in await customer.history())

        await on_server(live, lambda tx: do_accept_offer(tx, offer.id, "cat", utc_now()))
        received = await bot.wait_for(lambda got: statuses(got, customer.id) == [{"state": "accepted"}])
        status = received[-1]
        assert status["conversation"]["id"] == customer.id
        assert status["channelId"] == "warmline"

        # The agent owns the conversation: the SDK bot hears nothing of it.
        await customer.say("are you a person?")
        assert not any(a.get("text") == "are you a person?" for a in await bot.received())

        await on_server(live, lambda tx: do_end_conversation(tx, customer.id, "agent:cat", utc_now()))
        await on_server(
            live, lambda tx: do_close_conversation(tx, customer.id, "agent:cat", "wrapped up", utc_now())
        )
        received = await bot.wait_for(lambda got: len(statuses(got, customer.id)) == 2)
        assert [s["state"] for s in statuses(received, customer.id)] == ["accepted", "completed"]
        assert "handoff.status" in bot.log_text()

        # The statuses are in the log for agents, never on the customer's stream.
        _, _, log = await read_state(database, customer.id)
        assert [a["value"]["state"] for a in log if a.get("name") == "handoff.status"] == [
            "accepted",
            "completed",
        ]
        assert not any(a.get("name") == "handoff.status" for a in await customer.history())


async def test_omnichannel_escalate_tag_routes_on_its_context_and_stays_private(
    database: DatabaseUnderTest, tmp_path: Path, sdk_bot: SdkBot
) -> None:
    bot = sdk_bot
    async with running(database, tmp_path, bot) as live, httpx.AsyncClient() as client:
        customer = Customer(client, live)
        await customer.start()
        await customer.say("escalate")
        row, [offer], log = await read_state(database, customer.id)
        assert (row.state, row.queue_id, offer.agent_id) == ("waiting", "vip", "cat")
        assert row.context["IDNumber"] == {"value": 101, "isDisplayable": True}
        assert row.routing is not None
        assert row.routing["message_to_agent"] == "Customer wants to talk about a credit card."
        [escalation] = [a for a in log if "tags" in (a.get("channelData") or {})]
        assert escalation["type"] == "message"
        # The escalation summary is for the agent: kept in the log, never sent to the customer.
        assert "Customer wants to talk about a credit card." not in await customer.texts()

        await on_server(live, lambda tx: do_accept_offer(tx, offer.id, "cat", utc_now()))
        await bot.wait_for(lambda got: statuses(got, customer.id) == [{"state": "accepted"}])


async def test_hand_off_without_a_workstream_fails_with_a_reason(
    database: DatabaseUnderTest, tmp_path: Path, sdk_bot: SdkBot
) -> None:
    bot = sdk_bot
    async with running(database, tmp_path, bot, workstream=None) as live, httpx.AsyncClient() as client:
        customer = Customer(client, live)
        await customer.start()
        await customer.say("agent")
        received = await bot.wait_for(lambda got: bool(statuses(got, customer.id)))
        [failed] = statuses(received, customer.id)
        assert failed["state"] == "failed"
        assert "no workstream" in failed["message"]
        row, offers, _ = await read_state(database, customer.id)
        assert (row.state, row.owner, offers) == ("open", "bot", [])
        # The bot still owns the conversation and keeps answering.
        await customer.say("ok then")
        assert "Echo: ok then" in await customer.texts()


async def test_authenticated_bot_checks_warmline_tokens_and_warmline_checks_its_own(
    database: DatabaseUnderTest, tmp_path: Path
) -> None:
    bot = SdkBot(free_port(), tmp_path)
    async with (
        running(database, tmp_path, bot, authenticated=True) as live,
        httpx.AsyncClient() as client,
        authenticated_bot(bot, live),
    ):
        customer = Customer(client, live)
        await customer.start()
        # The SDK validated Warmline's RS256 token (issuer, audience = its app id, serviceurl,
        # key from Warmline's JWKS); Warmline validated the SDK's token on the replies.
        await customer.say("hi")
        assert "Echo: hi" in await customer.texts(), bot.log_text()[-3000:]

        url = f"{live.url}/botconnector/v3/conversations/{customer.id}/activities"
        message = {"type": "message", "text": "injected"}
        now = int(time.time())
        claims = {"appid": APP_ID, "aud": f"{live.url}/botconnector", "iat": now, "exp": now + 600}
        missing = await client.post(url, json=message)
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "Unauthorized"
        forged = jwt.encode(claims, "not-the-app-password-at-all-0123456789", algorithm="HS256")
        wrong = await client.post(url, json=message, headers={"Authorization": f"Bearer {forged}"})
        assert wrong.status_code == 401
        other_audience = jwt.encode({**claims, "aud": "https://elsewhere"}, APP_PASSWORD, algorithm="HS256")
        elsewhere = await client.post(
            url, json=message, headers={"Authorization": f"Bearer {other_audience}"}
        )
        assert elsewhere.status_code == 401
        valid = jwt.encode(claims, APP_PASSWORD, algorithm="HS256")
        unknown = await client.post(
            f"{live.url}/botconnector/v3/conversations/someone-elses/activities",
            json=message,
            headers={"Authorization": f"Bearer {valid}"},
        )
        assert unknown.status_code == 404
        accepted = await client.post(url, json=message, headers={"Authorization": f"Bearer {valid}"})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["id"].startswith(f"{customer.id}|")
        assert "injected" in await customer.texts()
