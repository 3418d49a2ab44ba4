"""Direct Line 3.0 over a real server: tokens, start, send, receive on the stream, reconnect."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websockets

from tests.support import LiveServer


def auth(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def start(client: httpx.AsyncClient, server: LiveServer, secret: str) -> dict[str, Any]:
    response = await client.post(f"{server.domain}/conversations", headers=auth(secret))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def frames_until(ws: Any, predicate: Any, limit: int = 20) -> list[dict[str, Any]]:
    """Read frames (skipping keep-alives) until one holds an activity matching ``predicate``."""
    seen: list[dict[str, Any]] = []
    for _ in range(limit):
        raw = await ws.recv()
        if not raw:
            continue
        frame = json.loads(raw)
        seen.append(frame)
        if any(predicate(a) for a in frame["activities"]):
            return seen
    raise AssertionError(f"no matching activity in {seen}")


async def test_start_send_and_receive_on_the_stream(live_server: LiveServer, secret: str) -> None:
    async with httpx.AsyncClient() as client:
        conversation = await start(client, live_server, secret)
        token, conversation_id = conversation["token"], conversation["conversationId"]
        assert conversation["streamUrl"].startswith("ws://127.0.0.1:")
        assert f"t={token}" in conversation["streamUrl"]
        async with websockets.connect(conversation["streamUrl"]) as ws:
            # The greeting was sent before the socket opened: it is replayed.
            greeting = await frames_until(ws, lambda a: a["text"].startswith("Hello"))
            assert greeting[-1]["watermark"] == "2"
            sent = await client.post(
                f"{live_server.domain}/conversations/{conversation_id}/activities",
                headers=auth(token),
                json={
                    "type": "message",
                    "text": "where is my order?",
                    "from": {"id": "someone-else", "name": "Pat"},
                    "channelData": {"clientActivityID": "client-1", "custom": {"keep": [1, 2]}},
                },
            )
            assert sent.status_code == 200, sent.text
            activity_id = sent.json()["id"]
            assert activity_id == f"{conversation_id}|0000003"
            frames = await frames_until(ws, lambda a: a.get("replyToId") == activity_id)
        activities = [a for f in frames for a in f["activities"]]
        echo = next(a for a in activities if a["id"] == activity_id)
        # Echo-back with the server id, the client's id and channelData untouched.
        assert echo["channelData"] == {"clientActivityID": "client-1", "custom": {"keep": [1, 2]}}
        # The token's user wins over whatever id the client claims to be.
        assert echo["from"]["id"].startswith("dl_")
        assert echo["from"]["role"] == "user"
        reply = activities[-1]
        assert reply["text"] == "You said: where is my order?"
        assert frames[-1]["watermark"] == "4"


async def test_resending_the_same_client_activity_stores_it_once(
    live_server: LiveServer, secret: str
) -> None:
    async with httpx.AsyncClient() as client:
        conversation = await start(client, live_server, secret)
        url = f"{live_server.domain}/conversations/{conversation['conversationId']}/activities"
        body = {"type": "message", "text": "once", "channelData": {"clientActivityID": "dup-1"}}
        first = await client.post(url, headers=auth(conversation["token"]), json=body)
        second = await client.post(url, headers=auth(conversation["token"]), json=body)
        assert first.json()["id"] == second.json()["id"]
        history = (await client.get(url, headers=auth(conversation["token"]))).json()
    texts = [a.get("text") for a in history["activities"]]
    assert texts.count("once") == 1
    assert texts.count("You said: once") == 1


@pytest.mark.parametrize("watermark", ["", "2"])
async def test_polling_pages_by_watermark(live_server: LiveServer, secret: str, watermark: str) -> None:
    async with httpx.AsyncClient() as client:
        conversation = await start(client, live_server, secret)
        url = f"{live_server.domain}/conversations/{conversation['conversationId']}/activities"
        await client.post(url, headers=auth(conversation["token"]), json={"type": "message", "text": "a"})
        page = (
            await client.get(url, params={"watermark": watermark}, headers=auth(conversation["token"]))
        ).json()
        assert page["watermark"] == "4"
        after = (
            await client.get(
                url, params={"watermark": page["watermark"]}, headers=auth(conversation["token"])
            )
        ).json()
    expected = ["Hello", "a", "You said: a"] if watermark == "" else ["a", "You said: a"]
    assert [a["text"][: len(e)] for a, e in zip(page["activities"], expected, strict=True)] == expected
    assert after == {"activities": [], "watermark": "4"}
