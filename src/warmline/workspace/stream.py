"""``/workspace/stream``: the agent's live feed over one WebSocket, authenticated by the session cookie.

The agent's own topic brings offers, assignments and presence changes; each conversation the page
*watches* brings new transcript entries and the customer's typing. Transcript entries are always
read from the store after the last sequence number sent (the bus only says "something was
added"), so an event that arrives out of order or not at all never loses or repeats a line.
All sends happen on one task, in order: client commands and bus events share one inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from warmline.activity import Activity
from warmline.conversations.actions import ACTIVITY_ADDED, ACTIVITY_TRANSIENT, do_send_transient
from warmline.conversations.model import ConversationState
from warmline.conversations.reads import list_activities
from warmline.events import Event, Subscription
from warmline.routing.actions import agent_topic
from warmline.runtime import Runtime, get_runtime
from warmline.workspace.access import SignedIn, WorkspaceError, conversation_access, signed_in
from warmline.workspace.actions import agent_account
from warmline.workspace.session import same_origin
from warmline.workspace.transcript import transcript

router = APIRouter()

CLOSE_UNAUTHORIZED = 4001
CLOSE_FORBIDDEN = 4003
MAX_WATCHED = 50


@dataclass
class _Watch:
    subscription: Subscription
    pump: asyncio.Task[None]
    sent: int


@dataclass
class Feed:
    """One agent's live connection: the topics it follows and what it has sent."""

    websocket: WebSocket
    runtime: Runtime
    who: SignedIn
    inbox: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    watching: dict[str, _Watch] = field(default_factory=dict)
    pumps: list[asyncio.Task[None]] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)

    def follow(self, topic: str) -> tuple[Subscription, asyncio.Task[None]]:
        """Subscribe to a bus topic; its events land in the inbox."""
        subscription = self.runtime.bus.subscribe(topic)

        async def pump() -> None:
            while True:
                self.inbox.put_nowait(("event", await subscription.get()))

        task = asyncio.create_task(pump())
        self.subscriptions.append(subscription)
        self.pumps.append(task)
        return subscription, task

    async def send(self, message: dict[str, Any]) -> None:
        """One JSON frame to the page."""
        await self.websocket.send_text(json.dumps(message, separators=(",", ":"), default=str))

    async def run(self) -> None:
        """Serve until the page goes away."""
        agent = self.who.agent
        self.follow(agent_topic(agent.environment, agent.agent_id))
        reader = asyncio.create_task(self._read())
        keepalive = self.runtime.settings.keepalive_seconds
        await self.send({"type": "hello", "agent": agent.agent_id})
        try:
            while True:
                try:
                    kind, item = await asyncio.wait_for(self.inbox.get(), timeout=keepalive)
                except TimeoutError:
                    await self.send({"type": "ping"})
                    continue
                if kind == "closed":
                    return
                if kind == "command":
                    await self._command(item)
                else:
                    await self._event(item)
        finally:
            reader.cancel()
            for task in self.pumps:
                task.cancel()
            for subscription in self.subscriptions:
                subscription.close()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await reader

    async def _read(self) -> None:
        try:
            while True:
                text = await self.websocket.receive_text()
                with contextlib.suppress(ValueError):
                    message = json.loads(text)
                    if isinstance(message, dict):
                        self.inbox.put_nowait(("command", message))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.inbox.put_nowait(("closed", None))

    async def _command(self, message: dict[str, Any]) -> None:
        kind, conversation_id = message.get("type"), message.get("conversation")
        if not isinstance(conversation_id, str):
            return
        if kind == "watch":
            after = message.get("after")
            await self._watch(conversation_id, after if isinstance(after, int) and after >= 0 else 0)
        elif kind == "unwatch":
            watch = self.watching.pop(conversation_id, None)
            if watch is not None:
                watch.pump.cancel()
                watch.subscription.close()
        elif kind == "typing":
            await self._typing(conversation_id)

    async def _watch(self, conversation_id: str, after: int) -> None:
        if conversation_id in self.watching:
            await self._catch_up(conversation_id)
            return
        if len(self.watching) >= MAX_WATCHED:
            await self.send({"type": "error", "message": f"Watch at most {MAX_WATCHED} conversations."})
            return
        try:
            async with self.runtime.db.reading() as session:
                await conversation_access(session, self.who.agent, conversation_id)
        except WorkspaceError as error:
            await self.send({"type": "error", "conversation": conversation_id, "message": error.message})
            return
        # Subscribe before reading the store, so nothing committed in between is missed.
        subscription, pump = self.follow(conversation_id)
        self.watching[conversation_id] = _Watch(subscription, pump, after)
        await self._catch_up(conversation_id)

    async def _catch_up(self, conversation_id: str) -> None:
        watch = self.watching.get(conversation_id)
        if watch is None:
            return
        async with self.runtime.db.reading() as session:
            stored = await list_activities(session, conversation_id, after_seq=watch.sent, limit=500)
        if not stored:
            return
        watch.sent = stored[-1].seq
        entries = transcript(stored)
        if entries:
            await self.send(
                {
                    "type": "activities",
                    "conversation": conversation_id,
                    "entries": entries,
                    "lastSeq": watch.sent,
                }
            )

    async def _typing(self, conversation_id: str) -> None:
        if conversation_id not in self.watching:
            return
        async with self.runtime.db.reading() as session:
            try:
                access = await conversation_access(session, self.who.agent, conversation_id)
            except WorkspaceError:
                return
        if access.owns and access.row.state == ConversationState.ACTIVE:
            agent = self.who.agent
            account = agent_account(agent.agent_id, self.who.name)
            do_send_transient(self.runtime.bus, conversation_id, Activity(type="typing", from_=account))

    async def _event(self, event: Event) -> None:
        if event.topic in self.watching:
            if event.name == ACTIVITY_ADDED:
                await self._catch_up(event.topic)
            elif event.name == ACTIVITY_TRANSIENT:
                activity = event.data.get("activity") or {}
                sender = activity.get("from") or {}
                if activity.get("type") == "typing" and sender.get("role") == "user":
                    await self.send(
                        {"type": "typing", "conversation": event.topic, "from": sender.get("name")}
                    )
            else:
                await self.send(
                    {
                        "type": "conversation",
                        "conversation": event.topic,
                        "event": event.name,
                        "data": event.data,
                    }
                )
            return
        await self.send({"type": "agent", "event": event.name, "data": event.data})


@router.websocket("/workspace/stream")
async def stream(websocket: WebSocket) -> None:
    """The workspace's live feed; closes with 4001 without a valid session."""
    runtime = get_runtime(websocket)
    if not same_origin(websocket, runtime.settings):
        await websocket.close(code=CLOSE_FORBIDDEN, reason="cross-origin")
        return
    who = await signed_in(websocket, runtime)
    await websocket.accept()
    if who is None:
        # Accepted first so the page sees the code (a refused handshake is an anonymous 403).
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason="sign in first")
        return
    with contextlib.suppress(WebSocketDisconnect):
        await Feed(websocket, runtime, who).run()
