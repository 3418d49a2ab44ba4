"""The Bot Connector channel with a recording stand-in for the bot's endpoint: what Warmline sends,
what it accepts back, how it authenticates, and when it tells the bot how its hand-off went."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from sqlalchemy import select

from tests.routing.factories import contact_center
from tests.support import DatabaseUnderTest, LiveServer
from warmline.bot.loader import Problem, load_bot_files
from warmline.bot.publishing import do_attach_bot, do_publish_bot
from warmline.channels.botconnector.actions import next_status
from warmline.channels.botconnector.auth import signing_key
from warmline.events import InProcessBus
from warmline.handoff.actions import do_return_to_bot
from warmline.routing.actions import do_accept_offer, do_set_presence
from warmline.routing.config import do_apply_config
from warmline.runtime import utc_now
from warmline.store import Database, Transaction
from warmline.store.schema import OfferRow, WidgetRow

ENDPOINT = "http://127.0.0.1:9/api/messages"
APP_ID = "0f0e0d0c-1111-4222-8333-444455556666"
APP_PASSWORD = "a-long-enough-app-password-0123456789"
T = TypeVar("T")


@dataclass
class RecordingEndpoint:
    """Stands in for bots' endpoints: records every request and answers ``status``."""

    status: int = 201
    sent: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: str | None, timeout_seconds: float
    ) -> tuple[int, str]:
        assert method == "POST" and body is not None
        self.sent.append((url, dict(headers), json.loads(body)))
        return self.status, "" if self.status < 300 else "boom"

    def events(self, name: str) -> list[dict[str, Any]]:
        return [a for _, _, a in self.sent if a.get("name") == name]


async def _publish(database: DatabaseUnderTest, bot_yaml: str, *, routed: bool = False) -> None:
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        async with db.transaction() as tx:
            await do_publish_bot(tx, "byob", {"bot.yaml": bot_yaml}, utc_now())
            await do_attach_bot(tx, "demo", "byob")
            if routed:
                widget = await tx.session.get(WidgetRow, "demo")
                assert widget is not None
                widget.target_workstream = "env1/chat"
                await do_apply_config(tx, contact_center(), utc_now())
        if routed:
            async with db.transaction() as tx:
                await do_set_presence(tx, "env1", "ben", "Available", utc_now())
    finally:
        await db.dispose()


def _yaml(*, authenticated: bool = False) -> str:
    credentials = f"\n  appId: {APP_ID}\n  appPassword: {APP_PASSWORD}" if authenticated else ""
    return f"name: Bring your own\nexternal:\n  endpoint: {ENDPOINT}{credentials}\n"


@pytest.fixture
async def served(database: DatabaseUnderTest, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    servers: list[LiveServer] = []

    async def serve(*, authenticated: bool = False, routed: bool = False, status: int = 201) -> Any:
        await _publish(database, _yaml(authenticated=authenticated), routed=routed)
        endpoint = RecordingEndpoint(status=status)
        live = LiveServer(
            database.settings(upload_dir=tmp_path / "uploads", routing_worker=False), bot_http=endpoint
        ).start()
        servers.append(live)
        return live, endpoint

    yield serve
    for live in servers:
        live.stop()


async def _start(client: httpx.AsyncClient, live: LiveServer) -> dict[str, Any]:
    token = (await client.post(f"{live.url}/widgets/demo/conversations", json={})).json()["token"]
    started = await client.post(f"{live.domain}/conversations", headers={"Authorization": f"Bearer {token}"})
    assert started.status_code == 201, started.text
    conversation: dict[str, Any] = started.json()
    return conversation


async def _say(client: httpx.AsyncClient, live: LiveServer, conversation: dict[str, Any], text: str) -> None:
    response = await client.post(
        f"{live.domain}/conversations/{conversation['conversationId']}/activities",
        headers={"Authorization": f"Bearer {conversation['token']}"},
        json={"type": "message", "text": text},
    )
    assert response.status_code == 200, response.text


async def _texts(client: httpx.AsyncClient, live: LiveServer, conversation: dict[str, Any]) -> list[str]:
    response = await client.get(
        f"{live.domain}/conversations/{conversation['conversationId']}/activities",
        headers={"Authorization": f"Bearer {conversation['token']}"},
    )
    return [a.get("text") or "" for a in response.json()["activities"]]


async def on_server(live: LiveServer, action: Callable[[Transaction], Awaitable[T]]) -> T:
    """Run an action in the server's loop and store, so its events reach the server's bus."""
    runtime = live.app.state.runtime

    async def run() -> T:
        async with runtime.db.transaction() as tx:
            return await action(tx)

    loop = live.server.servers[0].get_loop()
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), loop))


async def _eventually(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


# --- bot.yaml -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("external", "message"),
    [
        ("external:\n  appId: x\n", "external needs 'endpoint'"),
        ("external:\n  endpoint: ftp://bot/api\n", "external needs 'endpoint'"),
        ("external:\n  endpoint: http://bot/api/messages\n  appId: x\n", "give both appId and appPassword"),
        (
            "external:\n  endpoint: http://bot/api/messages\n  appId: x\n  appPassword: short\n",
            "appPassword must be at least 32 characters",
        ),
    ],
)
def test_external_settings_are_checked_where_they_are_written(external: str, message: str) -> None:
    problems: list[Problem] = []
    load_bot_files({"bot.yaml": f"name: B\n{external}"}, problems, root="b")
    assert any(message in p.message and p.position.file == "b/bot.yaml" for p in problems), problems


def test_an_external_bot_reads_its_registration() -> None:
    problems: list[Problem] = []
    bot = load_bot_files({"bot.yaml": _yaml(authenticated=True)}, problems)
    assert problems == []
    assert bot.settings.external is not None
    assert (bot.settings.external.endpoint, bot.settings.external.app_id) == (ENDPOINT, APP_ID)
    assert APP_PASSWORD not in repr(bot.settings)


def test_the_status_a_conversation_event_means() -> None:
    assert next_status(None, "assigned") == "accepted"
    assert next_status("accepted", "assigned") is None
    assert next_status("accepted", "closed") == "completed"
    assert next_status(None, "closed") == "failed"
    assert next_status("failed", "closed") is None
    assert next_status("accepted", "returned") == "completed"
    assert next_status(None, "returned") is None
    assert next_status("completed", "refused") == "failed"


def test_every_process_derives_the_same_signing_key_from_the_secret() -> None:
    secret = "a-deployment-secret-of-enough-length-0123"
    cached = signing_key(secret)
    assert signing_key.__wrapped__(secret).private_numbers() == cached.private_numbers()
    assert cached.key_size == 2048


# --- outbound -------------------------------------------------------------------------------------


async def test_turns_go_to_the_bot_in_bot_framework_schema_without_auth_in_development_mode(
    served: Callable[..., Awaitable[Any]],
) -> None:
    live, endpoint = await served()
    async with httpx.AsyncClient() as client:
        conversation = await _start(client, live)
        await _say(client, live, conversation, "hello")
    [(url, headers, update), (_, _, message)] = endpoint.sent
    assert url == ENDPOINT
    assert "Authorization" not in headers  # the SDK answers 500 to any header when it has no app id
    assert update["type"] == "conversationUpdate"
    assert message["text"] == "hello"
    assert message["channelId"] == "warmline"
    assert message["serviceUrl"] == f"{live.url}/botconnector"
    assert message["conversation"] == {"id": conversation["conversationId"]}
    assert message["recipient"] == {"id": "byob", "name": "Bring your own", "role": "bot"}
    assert message["from"]["role"] == "user"
    assert message["id"].startswith(conversation["conversationId"] + "|")


async def test_an_authenticated_bot_gets_a_token_it_can_check_against_warmline_keys(
    served: Callable[..., Awaitable[Any]],
) -> None:
    live, endpoint = await served(authenticated=True)
    async with httpx.AsyncClient() as client:
        await _start(client, live)
        metadata = (await client.get(f"{live.url}/botconnector/.well-known/openid-configuration")).json()
        keys = (await client.get(metadata["jwks_uri"])).json()["keys"]
    [(_, headers, activity)] = endpoint.sent
    token = headers["Authorization"].removeprefix("Bearer ")
    kid = jwt.get_unverified_header(token)["kid"]
    [key] = [k for k in keys if k["kid"] == kid]
    assert key["endorsements"] == ["warmline"]
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=APP_ID)
    assert claims["iss"] == metadata["issuer"] == f"{live.url}/botconnector"
    assert claims["serviceurl"] == activity["serviceUrl"]
    assert activity["recipient"]["id"] == APP_ID


async def test_a_bot_that_fails_leaves_the_customer_an_apology(served: Callable[..., Awaitable[Any]]) -> None:
    live, _ = await served(status=500)
    async with httpx.AsyncClient() as client:
        conversation = await _start(client, live)
        await _say(client, live, conversation, "hello")
        assert "Sorry, something went wrong on our side. Please try again." in await _texts(
            client, live, conversation
        )


# --- inbound --------------------------------------------------------------------------------------


async def test_replies_are_stored_for_the_customer_and_checked(served: Callable[..., Awaitable[Any]]) -> None:
    live, _ = await served()
    async with httpx.AsyncClient() as client:
        conversation = await _start(client, live)
        conversation_id = conversation["conversationId"]
        base = f"{live.url}/botconnector/v3/conversations"
        reply = await client.post(
            f"{base}/{conversation_id}/activities/{conversation_id}%7C0000001",
            json={"type": "message", "text": "Hi, I'm external", "serviceUrl": "http://ignored"},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"id": f"{conversation_id}|0000002"}
        history = (
            await client.get(
                f"{live.domain}/conversations/{conversation_id}/activities",
                headers={"Authorization": f"Bearer {conversation['token']}"},
            )
        ).json()["activities"]
        stored = history[-1]
        assert (stored["text"], stored["replyToId"]) == ("Hi, I'm external", f"{conversation_id}|0000001")
        assert stored["from"] == {"id": "byob", "name": "Bring your own", "role": "bot"}
        assert "serviceUrl" not in stored

        mismatched = await client.post(
            f"{base}/{conversation_id}/activities", json={"type": "message", "conversation": {"id": "other"}}
        )
        assert mismatched.status_code == 400
        not_json = await client.post(f"{base}/{conversation_id}/activities", content=b"[1]")
        assert not_json.status_code == 400
        missing = await client.post(f"{base}/nobody/activities", json={"type": "message", "text": "x"})
        assert missing.status_code == 404


async def test_after_the_hand_off_the_bot_may_not_speak_and_hears_how_it_went(
    served: Callable[..., Awaitable[Any]],
) -> None:
    live, endpoint = await served(routed=True)
    async with httpx.AsyncClient() as client:
        conversation = await _start(client, live)
        conversation_id = conversation["conversationId"]
        url = f"{live.url}/botconnector/v3/conversations/{conversation_id}/activities"
        handoff = await client.post(
            url, json={"type": "event", "name": "handoff.initiate", "value": {"Skill": "billing"}}
        )
        assert handoff.status_code == 200
        after = await client.post(url, json={"type": "message", "text": "I'm still here"})
        assert after.status_code == 403
        assert after.json()["error"]["code"] == "BotNotInControl"
        assert "I'm still here" not in await _texts(client, live, conversation)

        async def accept(tx: Transaction) -> str:
            offer = await tx.session.scalar(
                select(OfferRow.id).where(OfferRow.conversation_id == conversation_id)
            )
            assert offer is not None
            return await do_accept_offer(tx, offer, "ben", utc_now())

        await on_server(live, accept)
        await _eventually(lambda: len(endpoint.events("handoff.status")) == 1)
        await on_server(
            live, lambda tx: do_return_to_bot(tx, conversation_id, "ben", "all sorted", utc_now())
        )
        await _eventually(lambda: len(endpoint.events("handoff.status")) == 2)
        assert "channelData" not in endpoint.events("handoff.status")[0]
        assert [e["value"] for e in endpoint.events("handoff.status")] == [
            {"state": "accepted"},
            {"state": "completed"},
        ]
        # Back with the bot: it may speak again, and it gets the customer's next turn.
        again = await client.post(url, json={"type": "message", "text": "Welcome back"})
        assert again.status_code == 200
        await _say(client, live, conversation, "thanks")
        assert endpoint.sent[-1][2]["text"] == "thanks"
