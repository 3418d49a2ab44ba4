"""The workspace API through a real server: sign-in, CSRF, environment scoping, the agent's work.

Customers talk over Direct Line to the retail demo bot and ask for a person; agents sign in with
their passwords and work through the same JSON API and WebSocket the workspace page uses.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
import websockets
from sqlalchemy import select

from tests.support import TEST_SECRET, DatabaseUnderTest, LiveServer
from tests.workspace.conftest import Clock
from tests.workspace.helpers import (
    Agent,
    agents,
    conversation_row,
    customer,
    env1,
    eventually,
    next_message,
    prepare,
    read,
    stored_log,
)
from warmline.bot.state import DialogState
from warmline.conversations.actions import do_create_conversation
from warmline.conversations.model import Customer as CustomerIdentity
from warmline.events import InProcessBus
from warmline.handoff.survey import QUESTION, SURVEY_EVENT, do_ask_survey, read_rating
from warmline.routing.actions import do_route_conversation
from warmline.routing.config import do_apply_config
from warmline.runtime import utc_now
from warmline.store import Database
from warmline.store.schema import AgentRow, DialogStateRow, TransitionRow
from warmline.workspace.session import COOKIE

pytestmark = pytest.mark.timeout(60)


def cookie_flags(response: httpx.Response) -> str:
    header = response.headers.get("set-cookie", "")
    assert header.startswith(f"{COOKIE}="), header
    return header.lower()


# --- sign-in, sessions, CSRF ---------------------------------------------------------------------


async def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session(
    server: LiveServer, database: DatabaseUnderTest
) -> None:
    agent = Agent(server)
    try:
        page = await agent.client.get("/workspace")
        assert (page.status_code, page.headers["location"]) == (303, "/workspace/login")
        assert (await agent.client.get("/api/workspace/me")).status_code == 401

        for environment, user, password in (
            ("env1", "ava", "wrong"),
            ("env1", "nobody", "demo"),
            ("nowhere", "ava", "demo"),
            ("env2", "ava", "demo"),  # ava is not an agent of env2
        ):
            refused = await agent.sign_in(environment, user, password)
            assert refused.status_code == 401, (environment, user)
            assert "Wrong user name or password." in refused.text
            assert COOKIE not in refused.headers.get("set-cookie", "")

        signed = await agent.sign_in("env1", "ava")
        assert (signed.status_code, signed.headers["location"]) == (303, "/workspace")
        flags = cookie_flags(signed)
        assert "httponly" in flags and "samesite=strict" in flags and "secure" not in flags
        page = await agent.client.get("/workspace")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        me = await agent.ok("GET", "/me")
        assert me["agent"] == {
            "id": "ava",
            "name": "Ava",
            "environment": "env1",
            "roles": ["agent"],
            "supervisor": False,
        }
        assert {"name": "Lunch", "base": "Away"} in me["presences"]
        await agent.available()

        # Sign-out needs the page's CSRF token; then the agent is Offline and the cookie gone.
        refused = await agent.client.post("/workspace/logout", data={"csrf": "forged"})
        assert refused.status_code == 403
        out = await agent.client.post("/workspace/logout", data={"csrf": agent.csrf})
        assert (out.status_code, out.headers["location"]) == (303, "/workspace/login")
        assert "max-age=0" in cookie_flags(out)
        assert (await agent.client.get("/api/workspace/me")).status_code == 401

        async def presence(session: Any) -> str:
            row = await session.get(AgentRow, ("env1", "ava"))
            return row.presence  # type: ignore[no-any-return]

        assert await read(database, presence) == "Offline"
    finally:
        await agent.close()


async def test_the_cookie_is_secure_behind_https(database: DatabaseUnderTest, tmp_path: Any) -> None:
    await prepare(database)
    settings = database.settings(upload_dir=tmp_path / "uploads", public_base_url="https://chat.example.com")
    server = LiveServer(settings).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.post(
                "/workspace/login", data={"environment": "env1", "user": "ava", "password": "demo"}
            )
            assert response.status_code == 303
            assert "; secure" in cookie_flags(response)
    finally:
        server.stop()


async def test_state_changes_need_the_csrf_token_and_our_origin(server: LiveServer) -> None:
    async with agents(server, ("env1", "ava")) as (ava,):
        body = {"presence": "Available"}
        missing = await ava.client.put("/api/workspace/presence", json=body)
        assert missing.status_code == 403
        assert "X-CSRF-Token" in missing.json()["error"]["message"]
        wrong = await ava.client.put("/api/workspace/presence", json=body, headers={"X-CSRF-Token": "nope"})
        assert wrong.status_code == 403
        elsewhere = await ava.client.put(
            "/api/workspace/presence",
            json=body,
            headers={"X-CSRF-Token": ava.csrf, "Origin": "http://evil.example"},
        )
        assert elsewhere.status_code == 403
        assert (
            (await ava.call("PUT", "/presence", {"presence": "Sleeping"}))
            .json()["error"]["message"]
            .startswith("Unknown presence 'Sleeping'")
        )
        assert await ava.ok("PUT", "/presence", body) == {"presence": "Available", "base": "Available"}
        assert await ava.ok("PUT", "/presence", {"presence": "Lunch"}) == {
            "presence": "Lunch",
            "base": "Away",
        }
        assert (await ava.ok("GET", "/me"))["presence"] == "Lunch"
        # The live feed refuses a page of another origin even with the agent's cookie.
        url = server.url.replace("http://", "ws://") + "/workspace/stream"
        headers = {"Cookie": f"{COOKIE}={ava.cookie}", "Origin": "http://evil.example"}
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, additional_headers=headers):
                pass
        assert refused.value.response.status_code == 403


async def test_a_customer_token_or_secret_never_opens_the_workspace(server: LiveServer) -> None:
    async with httpx.AsyncClient() as client, agents(server, ("env1", "ava")) as (ava,):
        await ava.available()
        chat = await customer(client, server)
        await chat.hand_off()
        offer = await ava.wait_offer()
        path = f"{server.url}/api/workspace/conversations/{chat.conversation_id}"
        forged_same_key = jwt.encode(
            {
                "aud": "warmline:workspace",
                "env": "env1",
                "sub": "ava",
                "roles": ["supervisor"],
                "csrf": "x",
                "exp": 4_000_000_000,
            },
            "test-secret-key-0123456789-abcdefghijkl",
            algorithm="HS256",
        )
        for headers, cookies in (
            ({"Authorization": f"Bearer {chat.token}"}, {}),
            ({"Authorization": f"Bearer {TEST_SECRET}"}, {}),
            ({}, {COOKIE: chat.token}),
            ({}, {COOKIE: forged_same_key}),
        ):
            async with httpx.AsyncClient(cookies=cookies) as stranger:
                for method, url in (
                    ("GET", path),
                    ("GET", f"{server.url}/api/workspace/offers"),
                    ("POST", f"{server.url}/api/workspace/offers/{offer['id']}/accept"),
                ):
                    response = await stranger.request(method, url, headers={**headers, "X-CSRF-Token": "x"})
                    assert response.status_code == 401, (headers, cookies, url)
        # Nor the live feed: the socket is closed with 4001 before anything is sent.
        url = server.url.replace("http://", "ws://") + "/workspace/stream"
        async with websockets.connect(url, additional_headers={"Cookie": f"{COOKIE}={chat.token}"}) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
        # And the offer is still there for ava.
        assert [o["id"] for o in await ava.offers()] == [offer["id"]]


# --- who sees what -------------------------------------------------------------------------------


async def test_agents_see_only_their_environment_and_their_own_work(server: LiveServer) -> None:
    async with (
        httpx.AsyncClient() as client,
        agents(server, ("env1", "ava"), ("env1", "ben"), ("env1", "sam"), ("env2", "zed")) as people,
    ):
        ava, ben, sam, zed = people
        await ava.available()
        chat = await customer(client, server)
        await chat.hand_off()
        offer = await ava.wait_offer()
        assert (offer["customer"], offer["queue"], offer["queueName"], offer["language"]) == (
            "Dana",
            "general",
            "General",
            "en-US",
        )
        assert 0 < offer["secondsLeft"] <= 60
        path = f"/conversations/{chat.conversation_id}"
        assert (await ava.ok("GET", path))["conversation"]["relation"] == "offered"
        for outsider in (ben, zed):
            missing = await outsider.call("GET", path)
            assert missing.status_code == 404
            assert (
                missing.json()["error"]["message"]
                == f"No conversation '{chat.conversation_id}' that you can see."
            )
        assert (await sam.ok("GET", path))["conversation"]["relation"] == "supervisor"
        # Another environment's supervisor sees nothing of env1, not even in the overview.
        floor = await zed.ok("GET", "/supervisor/overview")
        assert floor["conversations"] == [] and [a["id"] for a in floor["agents"]] == ["zed"]
        assert (await zed.call("POST", f"/offers/{offer['id']}/accept")).status_code == 409
        # Agents may not use the supervisor API.
        assert (await ava.call("GET", "/supervisor/overview")).status_code == 403
        assert (await ben.call("POST", f"{path}/messages", {"text": "hi"})).status_code == 404

        assert await ava.accept() == chat.conversation_id
        view = await ava.ok("GET", path)
        assert view["conversation"]["relation"] == "owner"
        assert view["can"]["send"] and view["can"]["end"] and not view["can"]["wrapUp"]
        assert (await ben.call("GET", path)).status_code == 404
        assert [c["id"] for c in (await ava.ok("GET", "/me"))["conversations"]] == [chat.conversation_id]
        assert (await ben.ok("GET", "/me"))["conversations"] == []


# --- the conversation ----------------------------------------------------------------------------


async def test_accept_then_talk_both_ways_while_private_notes_stay_private(
    server: LiveServer, database: DatabaseUnderTest
) -> None:
    async with httpx.AsyncClient() as client, agents(server, ("env1", "ava")) as (ava,), ava.feed() as feed:
        await ava.available()
        chat = await customer(
            client,
            server,
            context={
                "CustomerTier": {"value": "silver", "isDisplayable": True},
                "CartValue": {"value": 42, "isDisplayable": False},
            },
        )
        await chat.hand_off()
        created = await next_message(feed, lambda m: m.get("event") == "offer.created")
        assert created["data"]["conversation"] == chat.conversation_id
        conversation = await ava.accept()
        joined = await eventually(lambda: _has(chat, "Ava joined the chat."))
        assert joined

        view = await ava.ok("GET", f"/conversations/{conversation}")
        roles = [(e["role"], e["text"]) for e in view["transcript"]]
        assert ("customer", "talk to a person") in roles and ("customer", "my refund never arrived") in roles
        assert roles[0][0] == "bot" and any(k == "handoff" for k in (e["kind"] for e in view["transcript"]))
        # Markdown from the bot arrives rendered; raw HTML never does.
        offer_line = next(e for e in view["transcript"] if "I can help with" in e["text"])
        assert "<strong>store hours</strong>" in offer_line["html"]
        assert "Store hours" in offer_line["suggested"]
        assert view["messageToAgent"].startswith("Customer needs help with: my refund never arrived")
        assert [c["name"] for c in view["context"]] == ["CustomerTier", "CartValue"]  # displayable first
        assert {
            "scope": "topic",
            "name": "Issue",
            "value": "my refund never arrived",
            "type": "Text",
        } in view["variables"]
        assert view["routing"]["queue"] == "general" and "no rule matched" in view["routing"]["reason"]
        assert any(
            v["name"] == "va_LastTopic" and v["value"] == "Talk to a person" for v in view["vaContext"]
        )

        await feed.send(
            json.dumps(
                {"type": "watch", "conversation": conversation, "after": view["conversation"]["lastSeq"]}
            )
        )
        async with websockets.connect(chat.stream_url) as customer_stream:
            await ava.ok(
                "POST",
                f"/conversations/{conversation}/notes",
                {"text": "Refund was issued on the 3rd <b>x</b>"},
            )
            await ava.ok("POST", f"/conversations/{conversation}/messages", {"text": "Hi Dana, I'm on it."})
            # The customer's stream carries the message and never the note that was stored before it.
            frames = await _frames_until(customer_stream, lambda a: a.get("text") == "Hi Dana, I'm on it.")
            sent = [a for f in frames for a in f["activities"]]
            assert not any("Refund was issued" in (a.get("text") or "") for a in sent)
            message = next(a for a in sent if a.get("text") == "Hi Dana, I'm on it.")
            assert message["from"] == {"id": "agent:ava", "name": "Ava", "role": "bot"}
            # The agent's feed shows both, the note marked private and escaped.
            note = await next_message(
                feed, lambda m: m["type"] == "activities" and any(e["role"] == "note" for e in m["entries"])
            )
            entry = next(e for e in note["entries"] if e["role"] == "note")
            assert "&lt;b&gt;" in entry["html"] and "<b>" not in entry["html"]

            # Typing both ways: the agent's shows in the customer's stream, the customer's in the feed.
            await feed.send(json.dumps({"type": "typing", "conversation": conversation}))
            typing = await _frames_until(customer_stream, lambda a: a.get("type") == "typing")
            assert typing[-1]["activities"][-1]["from"]["name"] == "Ava"
            assert (await chat.post({"type": "typing", "from": {"id": "x"}})).status_code == 200
            await next_message(feed, lambda m: m["type"] == "typing" and m["conversation"] == conversation)

            await chat.say("great, when will it arrive?")
            said = await next_message(
                feed,
                lambda m: m["type"] == "activities" and any(e["role"] == "customer" for e in m["entries"]),
            )
            assert said["entries"][-1]["text"] == "great, when will it arrive?"

        # Polling never returns the note either, and the bot stayed silent after the hand-off.
        assert not any("Refund was issued" in t for t in await chat.texts())
        log = await stored_log(database, conversation)
        handoff = next(i for i, (_, a) in enumerate(log) if a.get("name") == "handoff.initiate")
        assert [role for role, _ in log[handoff + 1 :] if role == "bot"] == []
        stored = [(role, a) for role, a in log if a.get("text") == "Hi Dana, I'm on it."]
        assert stored[0][0] == "agent"


async def _has(chat: Any, text: str) -> bool:
    return text in await chat.texts()


async def _frames_until(ws: Any, predicate: Any, limit: int = 30) -> list[dict[str, Any]]:
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


async def test_reject_offers_the_conversation_to_the_next_agent(server: LiveServer) -> None:
    async with httpx.AsyncClient() as client, agents(server, ("env1", "ava"), ("env1", "ben")) as (ava, ben):
        await ava.available()
        await ben.available()
        chat = await customer(client, server)
        await chat.hand_off()

        async def offered() -> tuple[Agent, Agent, dict[str, Any]] | None:
            for first, second in ((ava, ben), (ben, ava)):
                offers = await first.offers()
                if offers:
                    return first, second, offers[0]
            return None

        first, second, offer = await eventually(offered)
        await first.ok("POST", f"/offers/{offer['id']}/reject")
        assert await first.offers() == []
        again = await second.wait_offer()
        assert again["conversation"] == chat.conversation_id
        # The first agent can neither accept the old offer nor see the conversation any more.
        refused = await first.call("POST", f"/offers/{offer['id']}/accept")
        assert refused.status_code == 409
        assert (await first.call("GET", f"/conversations/{chat.conversation_id}")).status_code == 404


async def test_an_unanswered_offer_times_out_and_moves_on(server: LiveServer, clock: Clock) -> None:
    async with httpx.AsyncClient() as client, agents(server, ("env1", "ava"), ("env1", "ben")) as (ava, ben):
        await ava.available()
        chat = await customer(client, server)
        await chat.hand_off()
        offer = await ava.wait_offer()
        await ben.available()
        async with ava.feed() as feed:
            clock.advance(61)  # the offer's 60 s are up; the routing worker fires its timer
            closed = await next_message(feed, lambda m: m.get("event") == "offer.closed")
            assert closed["data"] == {
                "offer": offer["id"],
                "conversation": chat.conversation_id,
                "state": "expired",
            }
        assert (await ben.wait_offer())["conversation"] == chat.conversation_id
        assert await ava.offers() == []
        late = await ava.call("POST", f"/offers/{offer['id']}/accept")
        assert late.status_code == 409
        assert late.json()["error"]["message"] == "This offer is no longer open (it was expired)."


async def test_transfer_to_a_queue_with_a_note(server: LiveServer, database: DatabaseUnderTest) -> None:
    async with httpx.AsyncClient() as client, agents(server, ("env1", "ava"), ("env1", "cat")) as (ava, cat):
        await ava.available()
        chat = await customer(client, server)
        await chat.hand_off()
        conversation = await ava.accept()
        await cat.available()
        bad = await ava.call(
            "POST", f"/conversations/{conversation}/transfer", {"queue": "vip", "agent": "cat"}
        )
        assert bad.status_code == 400
        await ava.ok(
            "POST",
            f"/conversations/{conversation}/transfer",
            {"queue": "vip", "note": "VIP, refund over 100"},
        )

        offer = await cat.wait_offer()
        assert (offer["conversation"], offer["queue"], offer["transferNote"]) == (
            conversation,
            "vip",
            "VIP, refund over 100",
        )
        assert (await ava.call("GET", f"/conversations/{conversation}")).status_code == 404
        assert (
            await ava.call("POST", f"/conversations/{conversation}/messages", {"text": "x"})
        ).status_code == 404
        await cat.accept()
        view = await cat.ok("GET", f"/conversations/{conversation}")
        notes = [e["text"] for e in view["transcript"] if e["role"] == "note"]
        assert notes == ["Transfer note: VIP, refund over 100"]
        assert view["routing"]["transferNote"] == "VIP, refund over 100"
        texts = await chat.texts()
        assert any(t.startswith("I'm transferring you") for t in texts) and "Cat joined the chat." in texts
        assert not any("refund over 100" in t for t in texts)
        row = await conversation_row(database, conversation)
        assert (row.state, row.queue_id, row.agent_id) == ("active", "vip", "cat")


async def test_consult_brings_a_second_agent_in_privately(server: LiveServer) -> None:
    async with httpx.AsyncClient() as client, agents(server, ("env1", "ava"), ("env1", "ben")) as (ava, ben):
        await ava.available()
        chat = await customer(client, server)
        await chat.hand_off()
        conversation = await ava.accept()
        assert (
            await ava.call("POST", f"/conversations/{conversation}/consult", {"agent": "nobody"})
        ).status_code == 400
        async with ben.feed() as feed:
            await ava.ok("POST", f"/conversations/{conversation}/consult", {"agent": "ben"})
            invited = await next_message(feed, lambda m: m.get("event") == "conversation.consulted")
            assert invited["data"] == {"conversation": conversation, "by": "agent:ava"}
        again = await ava.call("POST", f"/conversations/{conversation}/consult", {"agent": "ben"})
        assert again.status_code == 409 and "already consulting" in again.json()["error"]["message"]

        mine = (await ben.ok("GET", "/me"))["conversations"]
        assert [(c["id"], c["relation"]) for c in mine] == [(conversation, "consult")]
        view = await ben.ok("GET", f"/conversations/{conversation}")
        assert view["conversation"]["relation"] == "consult"
        assert view["can"]["note"] and not view["can"]["send"] and not view["can"]["end"]
        assert (
            await ben.call("POST", f"/conversations/{conversation}/messages", {"text": "hello"})
        ).status_code == 409
        await ben.ok(
            "POST", f"/conversations/{conversation}/notes", {"text": "Refunds over 100 need approval."}
        )
        notes = [
            e["text"]
            for e in (await ava.ok("GET", f"/conversations/{conversation}"))["transcript"]
            if e["role"] == "note"
        ]
        assert notes == ["Ava asked ben to consult.", "Refunds over 100 need approval."]
        assert not any("approval" in t or "consult" in t for t in await chat.texts())


async def test_return_to_the_bot_with_notes(server: LiveServer, database: DatabaseUnderTest) -> None:
    async with httpx.AsyncClient() as client, agents(server, ("env1", "ava")) as (ava,):
        await ava.available()
        chat = await customer(client, server)
        await chat.hand_off()
        conversation = await ava.accept()
        await ava.ok("POST", f"/conversations/{conversation}/return-to-bot", {"notes": "Refund sent"})
        row = await conversation_row(database, conversation)
        assert (row.state, row.owner, row.agent_id) == ("open", "bot", None)

        async def notes(session: Any) -> Any:
            state = await session.get(DialogStateRow, conversation)
            return DialogState.from_json(dict(state.state)).globals["System.Agent.Notes"]

        assert await read(database, notes) == "Refund sent"
        await chat.say("when are you open?")
        assert any("Monday to Saturday" in t for t in await chat.texts())
        assert (await ava.call("GET", f"/conversations/{conversation}")).status_code == 404


async def test_end_wrap_up_and_the_survey(server: LiveServer, database: DatabaseUnderTest) -> None:
    async with httpx.AsyncClient() as client, agents(server, ("env1", "ava")) as (ava,):
        await ava.available()
        chat = await customer(client, server)
        await chat.hand_off()
        conversation = await ava.accept()
        path = f"/conversations/{conversation}"
        assert (await ava.call("POST", f"{path}/wrap-up", {"disposition": "Resolved"})).status_code == 409
        assert await ava.ok("POST", f"{path}/end") == {"survey": True}
        view = await ava.ok("GET", path)
        assert (
            view["conversation"]["state"] == "wrap-up" and view["can"]["wrapUp"] and not view["can"]["send"]
        )
        history = await chat.history()
        assert history[-2]["text"] == "Ava has ended the chat. Thanks for contacting us!"
        survey = history[-1]
        assert survey["text"] == QUESTION
        assert [a["value"] for a in survey["suggestedActions"]["actions"]] == ["1", "2", "3", "4", "5"]

        unknown = await ava.call("POST", f"{path}/wrap-up", {"disposition": "Whatever"})
        assert unknown.status_code == 400 and "Resolved" in unknown.json()["error"]["message"]
        await ava.ok("POST", f"{path}/wrap-up", {"notes": "Refund re-sent.", "disposition": "Resolved"})
        row = await conversation_row(database, conversation)
        assert (row.state, row.owner) == ("closed", "survey")
        assert row.routing is not None
        assert {k: row.routing["wrap_up"][k] for k in ("notes", "disposition", "by")} == {
            "notes": "Refund re-sent.",
            "disposition": "Resolved",
            "by": "ava",
        }

        async def reasons(session: Any) -> list[str]:
            return list(
                await session.scalars(
                    select(TransitionRow.reason).where(TransitionRow.conversation_id == conversation)
                )
            )

        assert "wrap-up: Resolved — Refund re-sent." in await read(database, reasons)
        assert (await ava.ok("GET", path))["conversation"]["state"] == "closed"

        # Closed for the agent, but the customer's answer is still taken, stored and thanked.
        await chat.say("5")
        row = await conversation_row(database, conversation)
        assert row.owner == "nobody"
        assert row.routing is not None and row.routing["survey"]["rating"] == 5
        log = await stored_log(database, conversation)
        [(_, event)] = [(r, a) for r, a in log if a.get("name") == SURVEY_EVENT]
        assert event["value"]["rating"] == 5 and event["value"]["text"] == "5"
        history = await chat.history()
        assert history[-1]["type"] == "endOfConversation"
        assert history[-2]["text"] == "Thank you for your feedback!"
        assert not any(a.get("name") == SURVEY_EVENT for a in history)
        # The agent sees the answer in the transcript; the chat is over for the customer now.
        assert "Survey answer: 5/5" in [e["text"] for e in (await ava.ok("GET", path))["transcript"]]
        assert (await chat.post({"type": "message", "text": "one more thing"})).status_code == 403


def test_ratings_are_read_from_what_customers_type() -> None:
    assert [read_rating(t) for t in ("5", " 4/5 ", "3 stars", "2.", "1 out of 5")] == [5, 4, 3, 2, 1]
    assert [read_rating(t) for t in ("6", "five", "10", "", "great")] == [None] * 5


async def test_the_survey_is_skipped_when_off_and_on_voice_without_consent(db: Database) -> None:
    now = utc_now()
    async with db.transaction() as tx:
        await do_apply_config(tx, env1(), now)

    async def routed(conversation_id: str, channel: str) -> None:
        async with db.transaction() as tx:
            await do_create_conversation(
                tx,
                conversation_id=conversation_id,
                channel=channel,
                customer=CustomerIdentity(id="u"),
                now=now,
            )
            await do_route_conversation(
                tx, conversation_id, environment="env1", workstream_id="chat", variables={}, now=now
            )

    for conversation_id, channel in (("chat-1", "directline"), ("call-1", "voice"), ("call-2", "voice")):
        await routed(conversation_id, channel)
    async with db.transaction() as tx:
        tx.session.add(
            DialogStateRow(
                conversation_id="call-2",
                state=DialogState(globals={"Global.va_SurveyConsent": True}).to_json(),
                updated_at=now,
            )
        )
    asked = {}
    for conversation_id in ("chat-1", "call-1", "call-2"):
        async with db.transaction() as tx:
            asked[conversation_id] = await do_ask_survey(tx, conversation_id, now)
    # Voice asks only with the caller's consent; chat on a surveyed workstream always asks.
    assert asked == {"chat-1": True, "call-1": False, "call-2": True}

    off = env1()
    off.workstreams[0].post_conversation_survey = False
    async with db.transaction() as tx:
        await do_apply_config(tx, off, now)
    await routed("chat-2", "directline")
    async with db.transaction() as tx:
        assert await do_ask_survey(tx, "chat-2", now) is False


# --- supervisor ----------------------------------------------------------------------------------


async def test_supervisor_sees_the_floor_and_force_assigns(server: LiveServer, clock: Clock) -> None:
    async with httpx.AsyncClient() as client, agents(server, ("env1", "sam"), ("env1", "ben")) as (sam, ben):
        chat = await customer(client, server)
        await chat.hand_off()  # nobody is Available: it waits in General
        clock.advance(30)
        floor = await sam.ok("GET", "/supervisor/overview")
        general = next(q for q in floor["queues"] if q["id"] == "general")
        assert general["waiting"] == 1 and general["longestWaitSeconds"] >= 30 and general["agents"] == 2
        assert next(q for q in floor["queues"] if q["id"] == "vip")["waiting"] == 0
        agents_by_id = {a["id"]: a for a in floor["agents"]}
        assert agents_by_id["ben"]["presence"] == "Offline" and agents_by_id["ben"]["load"] == 0
        [live] = floor["conversations"]
        assert (live["id"], live["state"], live["queue"]) == (chat.conversation_id, "waiting", "general")

        # Monitoring is read-only: the supervisor sees the transcript but cannot write to the customer.
        view = await sam.ok("GET", f"/conversations/{chat.conversation_id}")
        assert view["can"]["forceAssign"] and not view["can"]["send"]
        assert (
            await sam.call("POST", f"/conversations/{chat.conversation_id}/messages", {"text": "x"})
        ).status_code == 409

        unknown = await sam.call(
            "POST", f"/supervisor/conversations/{chat.conversation_id}/assign", {"agent": "zed"}
        )
        assert unknown.status_code == 400
        await sam.ok("POST", f"/supervisor/conversations/{chat.conversation_id}/assign", {"agent": "ben"})
        assert [c["id"] for c in (await ben.ok("GET", "/me"))["conversations"]] == [chat.conversation_id]
        assert "Ben joined the chat." in await chat.texts()
        floor = await sam.ok("GET", "/supervisor/overview")
        ben_row = next(a for a in floor["agents"] if a["id"] == "ben")
        assert (ben_row["load"], ben_row["active"]) == (1, 1)
        again = await sam.call(
            "POST", f"/supervisor/conversations/{chat.conversation_id}/assign", {"agent": "ben"}
        )
        assert again.status_code == 409


async def test_session_expiry_follows_the_server_clock(server: LiveServer, clock: Clock) -> None:
    async with agents(server, ("env1", "ava")) as (ava,):
        assert (await ava.call("GET", "/me")).status_code == 200
        clock.advance(timedelta(hours=12, seconds=1).total_seconds())
        assert (await ava.call("GET", "/me")).status_code == 401


async def test_a_removed_agent_loses_access_at_once(server: LiveServer, database: DatabaseUnderTest) -> None:
    async with agents(server, ("env1", "ben")) as (ben,):
        assert (await ben.call("GET", "/me")).status_code == 200
        config = env1()
        config.agents = [a for a in config.agents if a.id != "ben"]
        db = Database(database.url, InProcessBus(), schema=database.schema)
        try:
            async with db.transaction() as tx:
                await do_apply_config(tx, config, utc_now())
        finally:
            await db.dispose()
        assert (await ben.call("GET", "/me")).status_code == 401
