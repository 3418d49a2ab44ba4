"""Workspace test helpers: the contact centers, a customer on Direct Line, an agent's browser session."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

import httpx
import websockets
from sqlalchemy import select, update

from tests.support import DatabaseUnderTest, LiveServer
from warmline.bot.loader import read_bot_folder
from warmline.bot.publishing import do_attach_bot, do_publish_bot
from warmline.demo import DEMO_BOT_FOLDER
from warmline.events import InProcessBus
from warmline.routing.config import PASSWORDS, do_apply_config
from warmline.routing.model import ContactCenter
from warmline.runtime import utc_now
from warmline.store import Database
from warmline.store.schema import ActivityRow, AgentRow, ConversationRow, WidgetRow
from warmline.workspace.session import COOKIE

T = TypeVar("T")
WAIT = 10.0


def _agent(agent_id: str, name: str, queues: list[str], roles: list[str] | None = None) -> dict[str, Any]:
    return {"id": agent_id, "name": name, "queues": queues, "roles": roles or ["agent"]}


@cache
def demo_password_hash() -> str:
    """One argon2 hash of "demo" for every test agent (hashing is deliberately slow)."""
    return PASSWORDS.hash("demo")


def env1() -> ContactCenter:
    """Two queues, a surveyed push workstream, three agents and a supervisor."""
    return ContactCenter.model_validate(
        {
            "environment": "env1",
            "presences": [{"name": "Lunch", "base": "Away"}],
            "queues": [
                {"id": "general", "name": "General"},
                {"id": "vip", "name": "VIP", "priority": 1},
            ],
            "workstreams": [
                {
                    "id": "chat",
                    "name": "Web chat",
                    "fallback_queue": "general",
                    "offer_timeout_seconds": 60,
                    "wrap_up_seconds": 0,
                    "post_conversation_survey": True,
                    "rules": [
                        {"name": "gold", "condition": '=Context.CustomerTier = "gold"', "queue": "vip"}
                    ],
                }
            ],
            "agents": [
                _agent("ava", "Ava", ["general", "vip"]),
                _agent("ben", "Ben", ["general"]),
                _agent("cat", "Cat", ["vip"]),
                _agent("sam", "Sam", [], ["supervisor"]),
            ],
        }
    )


def env2() -> ContactCenter:
    """Another tenant, whose supervisor must never see env1's conversations."""
    return ContactCenter.model_validate(
        {
            "environment": "env2",
            "queues": [{"id": "general", "name": "General"}],
            "workstreams": [{"id": "chat", "name": "Chat", "fallback_queue": "general"}],
            "agents": [_agent("zed", "Zed", ["general"], ["supervisor"])],
        }
    )


async def prepare(database: DatabaseUnderTest) -> None:
    """Publish the demo bot behind the demo widget, routing into env1/chat; apply both environments."""
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        async with db.transaction() as tx:
            await do_publish_bot(tx, "retail", read_bot_folder(DEMO_BOT_FOLDER), utc_now())
            await do_attach_bot(tx, "demo", "retail")
            widget = await tx.session.get(WidgetRow, "demo")
            assert widget is not None
            widget.target_workstream = "env1/chat"
            await do_apply_config(tx, env1(), utc_now())
            await do_apply_config(tx, env2(), utc_now())
            await tx.session.execute(update(AgentRow).values(password_hash=demo_password_hash()))
    finally:
        await db.dispose()


async def read(database: DatabaseUnderTest, reader: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``reader(session)`` on a connection of the test's own."""
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        async with db.reading() as session:
            return await reader(session)
    finally:
        await db.dispose()


async def conversation_row(database: DatabaseUnderTest, conversation_id: str) -> ConversationRow:
    async def get(session: Any) -> ConversationRow:
        row = await session.get(ConversationRow, conversation_id)
        assert row is not None
        return row  # type: ignore[no-any-return]

    return await read(database, get)


async def stored_log(database: DatabaseUnderTest, conversation_id: str) -> list[tuple[str, dict[str, Any]]]:
    """``(role, payload)`` of every stored activity, in order."""

    async def get(session: Any) -> list[tuple[str, dict[str, Any]]]:
        rows = await session.execute(
            select(ActivityRow.from_role, ActivityRow.payload)
            .where(ActivityRow.conversation_id == conversation_id)
            .order_by(ActivityRow.seq)
        )
        return [(role, payload) for role, payload in rows]

    return await read(database, get)


async def eventually(check: Callable[[], Awaitable[T | None]], within: float = WAIT) -> T:
    """Poll ``check`` until it returns something (a background worker is doing the work)."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@dataclass
class Customer:
    """A customer chatting over Direct Line (token auth), as Web Chat would."""

    client: httpx.AsyncClient
    server: LiveServer
    conversation_id: str
    token: str
    stream_url: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def post(self, activity: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            f"{self.server.domain}/conversations/{self.conversation_id}/activities",
            headers=self.auth,
            json=activity,
        )

    async def say(self, text: str) -> None:
        response = await self.post({"type": "message", "text": text, "from": {"id": "x"}})
        assert response.status_code == 200, response.text

    async def history(self) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"{self.server.domain}/conversations/{self.conversation_id}/activities", headers=self.auth
        )
        assert response.status_code == 200, response.text
        activities: list[dict[str, Any]] = response.json()["activities"]
        return activities

    async def texts(self) -> list[str]:
        return [a.get("text") or "" for a in await self.history() if a["type"] == "message"]

    async def hand_off(self) -> None:
        """Ask the demo bot for a person."""
        await self.say("talk to a person")
        await self.say("my refund never arrived")


async def customer(
    client: httpx.AsyncClient, server: LiveServer, context: dict[str, Any] | None = None, name: str = "Dana"
) -> Customer:
    session = await client.post(
        f"{server.url}/widgets/demo/conversations", json={"context": context or {}, "userName": name}
    )
    assert session.status_code == 201, session.text
    token = session.json()["token"]
    started = await client.post(
        f"{server.domain}/conversations", headers={"Authorization": f"Bearer {token}"}
    )
    assert started.status_code == 201, started.text
    body = started.json()
    return Customer(client, server, body["conversationId"], body["token"], body["streamUrl"])


class Agent:
    """An agent's browser: the session cookie, the CSRF token of the page, the live feed."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.client = httpx.AsyncClient(base_url=server.url, timeout=WAIT)
        self.csrf = ""

    async def close(self) -> None:
        await self.client.aclose()

    async def sign_in(self, environment: str, user: str, password: str = "demo") -> httpx.Response:
        response = await self.client.post(
            "/workspace/login", data={"environment": environment, "user": user, "password": password}
        )
        if response.status_code == 303:
            page = await self.client.get("/workspace")
            found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
            assert found, page.text
            self.csrf = found.group(1)
        return response

    @property
    def cookie(self) -> str:
        return self.client.cookies.get(COOKIE) or ""

    async def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf}
        return await self.client.request(method, f"/api/workspace{path}", json=body, headers=headers)

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.call(method, path, body)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return None if response.status_code == 204 else response.json()

    async def available(self) -> None:
        await self.ok("PUT", "/presence", {"presence": "Available"})

    async def offers(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.ok("GET", "/offers")
        return result

    async def wait_offer(self) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            offers = await self.offers()
            return offers[0] if offers else None

        return await eventually(found)

    async def accept(self) -> str:
        offer = await self.wait_offer()
        result = await self.ok("POST", f"/offers/{offer['id']}/accept")
        conversation: str = result["conversation"]
        return conversation

    @asynccontextmanager
    async def feed(self) -> Any:
        url = self.server.url.replace("http://", "ws://") + "/workspace/stream"
        headers = {"Cookie": f"{COOKIE}={self.cookie}", "Origin": self.server.url}
        async with websockets.connect(url, additional_headers=headers, open_timeout=WAIT) as ws:
            hello = json.loads(await ws.recv())
            assert hello["type"] == "hello", hello
            yield ws


async def next_message(
    ws: Any, predicate: Callable[[dict[str, Any]], bool], within: float = WAIT
) -> dict[str, Any]:
    """The next workspace-feed message matching ``predicate`` (others are skipped)."""
    async with asyncio.timeout(within):
        while True:
            message = json.loads(await ws.recv())
            if predicate(message):
                return message  # type: ignore[no-any-return]


@asynccontextmanager
async def agents(server: LiveServer, *names: tuple[str, str]) -> Any:
    """Signed-in agents ``(environment, user)``, closed afterwards."""
    people = [Agent(server) for _ in names]
    try:
        for person, (environment, user) in zip(people, names, strict=True):
            response = await person.sign_in(environment, user)
            assert response.status_code == 303, response.text
        yield people
    finally:
        for person in people:
            await person.close()
