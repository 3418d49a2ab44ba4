"""Direct Line requests exactly as botframework-directlinejs 0.15.5 sends them: start, reconnect, resume.

Each test replays the shape of a request the real client makes (see node/directline-client.js and
tests/e2e/test_directlinejs.py, which run the client itself) so a server change that breaks it fails here.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import websockets

from tests.support import LiveServer

# directlinejs sends these on startConversation and on the reconnect GET (which has no body).
CLIENT_HEADERS = {
    "Accept": "application/json",
    "Content-Type": "application/json",
    "x-ms-bot-agent": "DirectLine/3.0 (directlinejs undefined)",
}


def auth(credential: str) -> dict[str, str]:
    return {**CLIENT_HEADERS, "Authorization": f"Bearer {credential}"}


async def next_frame(ws: Any) -> dict[str, Any]:
    """The next non-empty frame (empty frames are keep-alives)."""
    while True:
        raw = await ws.recv()
        if raw:
            frame: dict[str, Any] = json.loads(raw)
            return frame


async def start(client: httpx.AsyncClient, server: LiveServer, secret: str) -> dict[str, Any]:
    # Without setUserId the client's body is {"user": {"id": undefined}}, which serialises to this.
    response = await client.post(f"{server.domain}/conversations", headers=auth(secret), json={"user": {}})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("path", ["/conversations", "/tokens/generate"])
async def test_an_empty_user_object_means_an_anonymous_user(
    live_server: LiveServer, secret: str, path: str
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{live_server.domain}{path}", headers=auth(secret), json={"user": {}})
        assert response.status_code in (200, 201), response.text
        token = response.json()["token"]
        conversation_id = response.json()["conversationId"]
        if path == "/tokens/generate":
            started = await client.post(f"{live_server.domain}/conversations", headers=auth(token))
            assert started.status_code == 201, started.text
        url = f"{live_server.domain}/conversations/{conversation_id}/activities"
        sent = await client.post(url, headers=auth(token), json={"type": "message", "text": "hi"})
        history = (await client.get(url, headers=auth(token))).json()["activities"]
    echo = next(a for a in history if a["id"] == sent.json()["id"])
    assert echo["from"]["id"].startswith("dl_")


async def test_a_user_object_with_an_empty_id_is_still_refused(live_server: LiveServer, secret: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{live_server.domain}/conversations", headers=auth(secret), json={"user": {"id": ""}}
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadArgument"
    assert "user.id" in response.json()["error"]["message"]


async def test_reconnect_with_a_watermark_resumes_the_stream_after_it(
    live_server: LiveServer, secret: str
) -> None:
    async with httpx.AsyncClient() as client:
        conversation = await start(client, live_server, secret)
        conversation_id, token = conversation["conversationId"], conversation["token"]
        activities = f"{live_server.domain}/conversations/{conversation_id}/activities"
        async with websockets.connect(conversation["streamUrl"]) as ws:
            greeting = await next_frame(ws)
        seen = greeting["watermark"]
        # Posted while no socket is open: the reconnected stream must deliver these and nothing older.
        missed = await client.post(activities, headers=auth(token), json={"type": "message", "text": "away"})
        # directlinejs: GET {domain}/conversations/{id}?watermark=… with Content-Type and no body.
        response = await client.get(
            f"{live_server.domain}/conversations/{conversation_id}?watermark={seen}", headers=auth(token)
        )
        assert response.status_code == 200, response.text
        resumed = response.json()
        assert resumed["conversationId"] == conversation_id
        query = parse_qs(urlsplit(resumed["streamUrl"]).query)
        assert query == {"t": [resumed["token"]], "watermark": [seen]}
        async with websockets.connect(resumed["streamUrl"]) as ws:
            frame = await next_frame(ws)
            while not any(a.get("replyToId") == missed.json()["id"] for a in frame["activities"]):
                frame["activities"] += (await next_frame(ws))["activities"]
        # The client switches to the returned token; it must work for sending.
        third = await client.post(
            activities, headers=auth(resumed["token"]), json={"type": "message", "text": "back"}
        )
        assert third.status_code == 200, third.text
    assert [a["text"] for a in frame["activities"]] == ["away", "You said: away"]
    assert int(frame["activities"][0]["id"].rsplit("|", 1)[1]) == int(seen) + 1


async def test_reconnect_with_an_empty_watermark_replays_everything(
    live_server: LiveServer, secret: str
) -> None:
    async with httpx.AsyncClient() as client:
        conversation = await start(client, live_server, secret)
        conversation_id = conversation["conversationId"]
        # A client that never received a frame still sends "?watermark=" (its watermark is '').
        response = await client.get(
            f"{live_server.domain}/conversations/{conversation_id}?watermark=",
            headers=auth(conversation["token"]),
        )
        assert response.status_code == 200, response.text
        stream = response.json()["streamUrl"]
        assert "watermark" not in parse_qs(urlsplit(stream).query)
        async with websockets.connect(stream) as ws:
            frame = await next_frame(ws)
    assert frame["activities"][0]["text"].startswith("Hello")


async def test_the_secret_can_reconnect_to_its_widgets_conversation(
    live_server: LiveServer, secret: str
) -> None:
    # A page that started with the secret has no token of its own; reconnecting hands it one.
    async with httpx.AsyncClient() as client:
        conversation = await start(client, live_server, secret)
        conversation_id = conversation["conversationId"]
        response = await client.get(
            f"{live_server.domain}/conversations/{conversation_id}?watermark=2", headers=auth(secret)
        )
        assert response.status_code == 200, response.text
        token = response.json()["token"]
        sent = await client.post(
            f"{live_server.domain}/conversations/{conversation_id}/activities",
            headers=auth(token),
            json={"type": "message", "text": "with the new token"},
        )
    assert sent.status_code == 200, sent.text
    assert sent.json()["id"] == f"{conversation_id}|0000003"
