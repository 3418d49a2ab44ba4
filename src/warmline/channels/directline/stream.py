"""The Direct Line WebSocket stream (Direct Line 3.0 §Receive activities via WebSocket).

Order of work matters: subscribe to live events first, then replay the store from the
client's watermark, then forward live events whose sequence number is past what was sent.
That way nothing committed between replay and subscription is lost, and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from warmline.channels.directline.access import Caller, conversation_for
from warmline.channels.directline.api import PAGE_SIZE, for_customer
from warmline.channels.directline.errors import DirectLineError
from warmline.channels.directline.tokens import TokenIssuer
from warmline.conversations.actions import ACTIVITY_ADDED, ACTIVITY_TRANSIENT
from warmline.conversations.reads import list_activities
from warmline.events import Event, Subscription
from warmline.runtime import Runtime, get_runtime

router = APIRouter(prefix="/v3/directline")

# WebSocket close codes: 4001-4004 mirror HTTP 401/403/404 for clients that read them.
CLOSE_FOR_STATUS = {400: 4000, 401: 4001, 403: 4003, 404: 4004}


@router.websocket("/conversations/{conversation_id}/stream")
async def stream(
    websocket: WebSocket,
    conversation_id: str,
    t: str = Query(default=""),
    watermark: str | None = Query(default=None),
) -> None:
    """Push ``{activities, watermark}`` frames, empty keep-alives, and replay what was missed."""
    runtime = get_runtime(websocket)
    tokens: TokenIssuer = websocket.app.state.tokens
    try:
        claims = tokens.verify(t, runtime.clock())
        conversation = await conversation_for(Caller(claims=claims), conversation_id, runtime)
        after = int(watermark) if watermark and watermark.isdigit() else 0
    except DirectLineError as error:
        await websocket.close(code=CLOSE_FOR_STATUS.get(error.status, 4000), reason=error.code)
        return
    await websocket.accept()
    subscription = runtime.bus.subscribe(conversation.id)
    reader = asyncio.create_task(_drain_client(websocket))
    try:
        await _pump(websocket, runtime, subscription, conversation.id, after, reader)
    except WebSocketDisconnect:
        pass
    finally:
        subscription.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await reader


async def _drain_client(websocket: WebSocket) -> None:
    """Read and ignore client frames (empty pings); returns when the client goes away."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _pump(
    websocket: WebSocket,
    runtime: Runtime,
    subscription: Subscription,
    conversation_id: str,
    sent: int,
    reader: asyncio.Task[None],
) -> None:
    sent = await _replay(websocket, runtime, conversation_id, sent)
    keepalive = runtime.settings.keepalive_seconds
    while not reader.done():
        getter = asyncio.ensure_future(subscription.get())
        done, _ = await asyncio.wait({getter, reader}, timeout=keepalive, return_when=asyncio.FIRST_COMPLETED)
        if getter not in done:
            getter.cancel()
            if not done:
                await websocket.send_text("")  # keep-alive; clients ignore empty frames
            continue
        event = getter.result()
        if subscription.overflowed:
            subscription.overflowed = False
            sent = await _replay(websocket, runtime, conversation_id, sent)
            continue
        sent = await _forward(websocket, runtime, conversation_id, event, sent)


async def _forward(
    websocket: WebSocket, runtime: Runtime, conversation_id: str, event: Event, sent: int
) -> int:
    if event.name == ACTIVITY_TRANSIENT:
        await _send(websocket, [event.data["activity"]], None)
        return sent
    if event.name != ACTIVITY_ADDED:
        return sent
    seq = int(event.data["seq"])
    if seq <= sent:
        return sent  # already replayed from the store
    if seq > sent + 1:
        # Events of one conversation can arrive out of commit order across transactions;
        # the store knows the truth, so fill the gap from it.
        return await _replay(websocket, runtime, conversation_id, sent)
    activity = event.data["activity"]
    if for_customer(activity):
        await _send(websocket, [activity], str(seq))
    return seq


async def _replay(websocket: WebSocket, runtime: Runtime, conversation_id: str, sent: int) -> int:
    while True:
        async with runtime.db.reading() as session:
            page = await list_activities(session, conversation_id, after_seq=sent, limit=PAGE_SIZE)
        if not page:
            return sent
        visible = [wire for wire in (s.activity.to_wire() for s in page) if for_customer(wire)]
        sent = page[-1].seq
        if visible:
            await _send(websocket, visible, str(sent))
        if len(page) < PAGE_SIZE:
            return sent


async def _send(websocket: WebSocket, activities: list[dict[str, Any]], watermark: str | None) -> None:
    frame: dict[str, Any] = {"activities": activities}
    if watermark is not None:
        frame["watermark"] = watermark
    await websocket.send_text(json.dumps(frame, separators=(",", ":")))
