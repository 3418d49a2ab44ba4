"""SIGKILL the real ``warmline serve`` process mid-conversation: nothing stored is lost, and the client
reconnects with its watermark and carries on without seeing anything twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.support import TEST_SECRET, DatabaseUnderTest, ServerProcess

FRAME_TIMEOUT = 10.0


@pytest.fixture
def server(database: DatabaseUnderTest, tmp_path: Path) -> Iterator[ServerProcess]:
    """``warmline serve`` as a subprocess on the test's database; killed at teardown whatever happens."""
    process = ServerProcess(database.env(), tmp_path / "run")
    try:
        yield process
    finally:
        process.stop()


def auth(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def seq(activity_id: str) -> int:
    """The sequence number of ``<conversationId>|<7-digit seq>``."""
    return int(activity_id.rsplit("|", 1)[1])


async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    """The next activity frame, skipping empty keep-alives."""
    while True:
        raw = await asyncio.wait_for(ws.recv(decode=True), FRAME_TIMEOUT)
        if raw:
            frame: dict[str, Any] = json.loads(raw)
            return frame


async def read_until(ws: ClientConnection, watermark: int) -> list[dict[str, Any]]:
    """Frames until one carries ``watermark``; fails on a frame past it."""
    frames: list[dict[str, Any]] = []
    while True:
        frame = await next_frame(ws)
        frames.append(frame)
        mark = int(frame["watermark"])
        assert mark <= watermark, f"got watermark {mark} while waiting for {watermark}: {frames}"
        if mark == watermark:
            return frames


def activities(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for frame in frames for a in frame["activities"]]


async def history(client: httpx.AsyncClient, domain: str, conversation_id: str, token: str) -> list[str]:
    response = await client.get(f"{domain}/conversations/{conversation_id}/activities", headers=auth(token))
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()["activities"]]


async def post(client: httpx.AsyncClient, domain: str, conversation_id: str, token: str, text: str) -> str:
    response = await client.post(
        f"{domain}/conversations/{conversation_id}/activities",
        headers=auth(token),
        json={
            "type": "message",
            "text": text,
            "from": {"id": "user1"},
            "channelData": {"clientActivityID": text},
        },
    )
    assert response.status_code == 200, response.text
    activity_id: str = response.json()["id"]
    return activity_id


async def test_sigkill_mid_conversation_loses_nothing_and_the_client_resumes(server: ServerProcess) -> None:
    await asyncio.to_thread(server.start)
    domain = server.domain
    async with httpx.AsyncClient(timeout=10) as client:
        started = await client.post(
            f"{domain}/conversations", headers=auth(TEST_SECRET), json={"user": {"id": "user1"}}
        )
        assert started.status_code == 201, started.text
        conversation = started.json()
        conversation_id, token = conversation["conversationId"], conversation["token"]

        # Before the kill: the client processes frames up to the reply to "first", then sends "second".
        async with websockets.connect(conversation["streamUrl"], open_timeout=5) as ws:
            greeting = activities(await read_until(ws, 2))
            first_id = await post(client, domain, conversation_id, token, "first")
            exchange = activities(await read_until(ws, 4))
            streamed = [a["id"] for a in [*greeting, *exchange]]
            assert [a.get("text") for a in exchange] == ["first", "You said: first"]
            assert streamed[1] == first_id
            watermark = "4"
            second_id = await post(client, domain, conversation_id, token, "second")
            seen = [*streamed, second_id]

            # The POST returned, so "second" was committed: kill the server right now.
            server.kill()
            with pytest.raises(websockets.ConnectionClosed):
                while True:  # frames already on the wire may still arrive before the close
                    await next_frame(ws)

        await asyncio.to_thread(server.start)

        # Every activity seen before the kill is stored, with the same ids, in the same order.
        stored = await history(client, domain, conversation_id, token)
        assert stored[: len(seen)] == seen
        assert [seq(i) for i in stored] == list(range(2, 2 + len(stored)))
        assert (
            len(stored) == len(seen) + 1
        )  # the bot's reply to "second" was committed before the POST returned

        # Reconnect the way DirectLineJS does: GET the conversation with the last watermark it processed.
        reconnected = await client.get(
            f"{domain}/conversations/{conversation_id}", params={"watermark": watermark}, headers=auth(token)
        )
        assert reconnected.status_code == 200, reconnected.text
        fresh = reconnected.json()
        assert fresh["conversationId"] == conversation_id
        assert f"watermark={watermark}" in fresh["streamUrl"]
        async with websockets.connect(fresh["streamUrl"], open_timeout=5) as ws:
            replayed = activities(await read_until(ws, seq(stored[-1])))
            assert [a["id"] for a in replayed] == [i for i in stored if seq(i) > int(watermark)]
            assert [a.get("text") for a in replayed] == ["second", "You said: second"]
            assert replayed[1]["replyToId"] == second_id

            # The conversation continues: the next message gets the next sequence number and a reply.
            third_id = await post(client, domain, conversation_id, fresh["token"], "third")
            assert third_id == f"{conversation_id}|{seq(stored[-1]) + 1:07d}"
            live = activities(await read_until(ws, seq(third_id) + 1))
        assert [a["id"] for a in live] == [third_id, f"{conversation_id}|{seq(third_id) + 1:07d}"]
        assert live[1]["text"] == "You said: third"
        assert live[1]["replyToId"] == third_id

        # Across both sockets the client received each activity exactly once, and the store agrees.
        received = [*streamed, *(a["id"] for a in replayed), *(a["id"] for a in live)]
        assert len(received) == len(set(received))
        final = await history(client, domain, conversation_id, fresh["token"])
        assert final == received
        assert len(set(final)) == len(final)
