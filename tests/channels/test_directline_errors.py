"""Bad input on Direct Line and widget routes: the documented 4xx with a message a person can act on,
nothing stored (let alone twice), and the server keeps serving the next good request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import websockets
from sqlalchemy import func, select

from tests.support import DatabaseUnderTest, LiveServer, free_port
from warmline.runtime import utc_now
from warmline.store import Database
from warmline.store.schema import ConversationRow, UploadRow

ACTIVITY_LIMIT = 4096
UPLOAD_LIMIT = 64 * 1024
LIFETIME = 1800
WEB_CHAT_HEADERS = "authorization,content-type,x-ms-bot-agent,x-requested-with"


class FakeClock:
    """The server's clock, moved by the test instead of by waiting."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(database: DatabaseUnderTest, tmp_path: Path, clock: FakeClock) -> Iterator[LiveServer]:
    """A live server with small body limits and a clock the test controls."""
    settings = database.settings(
        max_activity_bytes=ACTIVITY_LIMIT,
        max_upload_bytes=UPLOAD_LIMIT,
        token_lifetime_seconds=LIFETIME,
        upload_dir=tmp_path / "uploads",
    )
    live = LiveServer(settings, clock=clock).start()
    yield live
    live.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


def auth(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def assert_error(response: httpx.Response, status: int, code: str, *mentions: str) -> str:
    """A Direct Line error body with ``code`` whose message names what to fix; returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    assert len(message) > 15, message
    for mention in mentions:
        assert mention.lower() in message.lower(), f"{mention!r} not in {message!r}"
    return message


@dataclass
class Chat:
    """A started conversation seen from its Direct Line client."""

    client: httpx.AsyncClient
    server: LiveServer
    id: str
    token: str
    stream_url: str

    @property
    def activities_url(self) -> str:
        return f"{self.server.domain}/conversations/{self.id}/activities"

    @property
    def upload_url(self) -> str:
        return f"{self.server.domain}/conversations/{self.id}/upload"

    async def history(self, credential: str | None = None) -> list[tuple[str, str, str | None]]:
        """Every stored activity as (id, type, text), in order."""
        response = await self.client.get(self.activities_url, headers=auth(credential or self.token))
        assert response.status_code == 200, response.text
        return [(a["id"], a["type"], a.get("text")) for a in response.json()["activities"]]

    async def send_ok(self, text: str, credential: str | None = None) -> str:
        """Send a message that must succeed and be answered; returns its id."""
        before = await self.history(credential)
        response = await self.client.post(
            self.activities_url,
            headers=auth(credential or self.token),
            json={"type": "message", "text": text, "from": {"id": "user1"}},
        )
        assert response.status_code == 200, response.text
        activity_id: str = response.json()["id"]
        after = await self.history(credential)
        assert after == [
            *before,
            (activity_id, "message", text),
            (after[-1][0], "message", f"You said: {text}"),
        ]
        return activity_id


async def start_chat(client: httpx.AsyncClient, server: LiveServer, secret: str) -> Chat:
    response = await client.post(
        f"{server.domain}/conversations", headers=auth(secret), json={"user": {"id": "user1"}}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Chat(client, server, body["conversationId"], body["token"], body["streamUrl"])


async def count(db: Database, row: type[ConversationRow] | type[UploadRow]) -> int:
    async with db.reading() as session:
        total: int = await session.scalar(select(func.count()).select_from(row)) or 0
        return total


def oversized_activity(client_id: str) -> dict[str, Any]:
    return {
        "type": "message",
        "text": "x" * (ACTIVITY_LIMIT + 100),
        "channelData": {"clientActivityID": client_id},
    }


async def chunks(data: bytes, size: int = 1024) -> AsyncIterator[bytes]:
    """A body without Content-Length (chunked), so the server must count as it reads."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


# ---------------------------------------------------------------- posted activities


BAD_ACTIVITIES: list[tuple[str, bytes, int, str, tuple[str, ...]]] = [
    ("malformed JSON", b'{"type": "message", "text": ', 400, "BadArgument", ("not valid JSON",)),
    ("empty body", b"", 400, "BadArgument", ("empty",)),
    ("array", json.dumps([{"type": "message", "text": "a"}]).encode(), 400, "BadArgument", ("object",)),
    ("string", b'"hello"', 400, "BadArgument", ("object",)),
    ("type missing", json.dumps({"text": "no type"}).encode(), 400, "BadArgument", ("type",)),
    (
        "empty from.id",
        json.dumps({"type": "message", "text": "a", "from": {"id": ""}}).encode(),
        400,
        "BadArgument",
        ("from.id",),
    ),
    (
        "attachments not a list",
        json.dumps({"type": "message", "attachments": "file.png"}).encode(),
        400,
        "BadArgument",
        ("attachments",),
    ),
    (
        "client conversationUpdate",
        json.dumps({"type": "conversationUpdate", "membersAdded": [{"id": "intruder"}]}).encode(),
        400,
        "BadArgument",
        ("conversationUpdate", "message"),
    ),
    (
        "oversized",
        json.dumps(oversized_activity("big-1")).encode(),
        413,
        "MessageSizeTooBig",
        (str(ACTIVITY_LIMIT),),
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "code", "mentions"),
    [case[1:] for case in BAD_ACTIVITIES],
    ids=[case[0] for case in BAD_ACTIVITIES],
)
async def test_bad_activity_is_refused_and_nothing_is_stored(
    server: LiveServer,
    client: httpx.AsyncClient,
    secret: str,
    body: bytes,
    status: int,
    code: str,
    mentions: tuple[str, ...],
) -> None:
    chat = await start_chat(client, server, secret)
    before = await chat.history()
    response = await client.post(
        chat.activities_url,
        headers={**auth(chat.token), "Content-Type": "application/json"},
        content=body,
    )
    assert_error(response, status, code, *mentions)
    assert await chat.history() == before
    await chat.send_ok("still here")


async def test_oversized_chunked_activity_is_refused_while_reading(
    server: LiveServer, client: httpx.AsyncClient, secret: str
) -> None:
    chat = await start_chat(client, server, secret)
    before = await chat.history()
    data = json.dumps(oversized_activity("big-chunked")).encode()
    response = await client.post(
        chat.activities_url,
        headers={**auth(chat.token), "Content-Type": "application/json"},
        content=chunks(data),
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "MessageSizeTooBig", str(ACTIVITY_LIMIT))
    assert await chat.history() == before
    # The refused activity's client id was not consumed: the same id, small enough, is stored once.
    small = {"type": "message", "text": "small now", "channelData": {"clientActivityID": "big-chunked"}}
    for _ in range(2):
        sent = await client.post(chat.activities_url, headers=auth(chat.token), json=small)
        assert sent.status_code == 200, sent.text
    texts = [text for _, _, text in await chat.history()]
    assert texts[len(before) :] == ["small now", "You said: small now"]


async def test_oversized_conversation_start_is_refused(
    server: LiveServer, client: httpx.AsyncClient, secret: str, db: Database
) -> None:
    conversations = await count(db, ConversationRow)
    response = await client.post(
        f"{server.domain}/conversations",
        headers=auth(secret),
        json={"user": {"id": "u" * 10, "name": "n" * (ACTIVITY_LIMIT + 1)}},
    )
    assert_error(response, 413, "MessageSizeTooBig", str(ACTIVITY_LIMIT))
    malformed = await client.post(
        f"{server.domain}/conversations",
        headers={**auth(secret), "Content-Type": "application/json"},
        content=b"{user:",
    )
    assert_error(malformed, 400, "BadArgument", "JSON")
    no_user_id = await client.post(
        f"{server.domain}/conversations", headers=auth(secret), json={"user": {"id": ""}}
    )
    assert_error(no_user_id, 400, "BadArgument", "user.id")
    assert await count(db, ConversationRow) == conversations
    chat = await start_chat(client, server, secret)
    await chat.send_ok("after the bad starts")


# ---------------------------------------------------------------- uploads


async def test_raw_upload_is_stored_and_served_back(
    server: LiveServer, client: httpx.AsyncClient, secret: str
) -> None:
    chat = await start_chat(client, server, secret)
    data = bytes(range(256)) * 8
    response = await client.post(
        chat.upload_url,
        params={"userId": "user1"},
        headers={
            **auth(chat.token),
            "Content-Type": "image/png",
            "Content-Disposition": 'attachment; filename="photo.png"',
        },
        content=data,
    )
    assert response.status_code == 200, response.text
    activity_id = response.json()["id"]
    page = (await client.get(chat.activities_url, headers=auth(chat.token))).json()["activities"]
    posted = next(a for a in page if a["id"] == activity_id)
    assert [(a["contentType"], a["name"]) for a in posted["attachments"]] == [("image/png", "photo.png")]
    served = await client.get(posted["attachments"][0]["contentUrl"])
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-type"] == "image/png"
    assert page[-1]["text"] == "You sent: photo.png"


@pytest.mark.parametrize("activity_filename", ["blob", None], ids=["blob-part", "plain-field"])
async def test_multipart_upload_carries_the_activity_and_every_file(
    server: LiveServer, client: httpx.AsyncClient, secret: str, activity_filename: str | None
) -> None:
    """DirectLineJS sends the activity as a Blob part (filename "blob"); other clients as a plain field."""
    chat = await start_chat(client, server, secret)
    first, second = b"%PDF-1.4 first file\n" * 50, b"second,file\n1,2\n" * 40
    activity = {
        "type": "message",
        "text": "here are my receipts",
        "from": {"id": "user1"},
        "channelData": {"clientActivityID": "upload-1"},
    }
    response = await client.post(
        chat.upload_url,
        params={"userId": "user1"},
        headers=auth(chat.token),
        files=[
            (
                "activity",
                (activity_filename, json.dumps(activity).encode(), "application/vnd.microsoft.activity"),
            ),
            ("file", ("receipt.pdf", first, "application/pdf")),
            ("file", ("items.csv", second, "text/csv")),
        ],
    )
    assert response.status_code == 200, response.text
    activity_id = response.json()["id"]
    page = (await client.get(chat.activities_url, headers=auth(chat.token))).json()["activities"]
    posted = next(a for a in page if a["id"] == activity_id)
    assert posted["text"] == "here are my receipts"
    assert posted["channelData"] == {"clientActivityID": "upload-1"}
    attachments = posted["attachments"]
    assert [(a["contentType"], a["name"]) for a in attachments] == [
        ("application/pdf", "receipt.pdf"),
        ("text/csv", "items.csv"),
    ]
    for attachment, data in zip(attachments, [first, second], strict=True):
        served = await client.get(attachment["contentUrl"])
        assert served.status_code == 200
        assert served.content == data
    assert page[-1]["text"] == "You said: here are my receipts"


async def test_oversized_uploads_are_refused_and_nothing_is_stored(
    server: LiveServer, client: httpx.AsyncClient, secret: str, db: Database
) -> None:
    chat = await start_chat(client, server, secret)
    before = await chat.history()
    uploads = await count(db, UploadRow)
    big = b"\0" * (UPLOAD_LIMIT + 1)
    raw = await client.post(
        chat.upload_url, headers={**auth(chat.token), "Content-Type": "image/png"}, content=big
    )
    assert_error(raw, 413, "MessageSizeTooBig", str(UPLOAD_LIMIT))
    chunked = await client.post(
        chat.upload_url, headers={**auth(chat.token), "Content-Type": "image/png"}, content=chunks(big, 8192)
    )
    assert_error(chunked, 413, "MessageSizeTooBig", str(UPLOAD_LIMIT))
    multipart = await client.post(
        chat.upload_url,
        headers=auth(chat.token),
        files=[
            ("file", ("small.txt", b"small", "text/plain")),
            ("file", ("big.bin", big, "application/octet-stream")),
        ],
    )
    assert_error(multipart, 413, "MessageSizeTooBig", str(UPLOAD_LIMIT))
    assert await chat.history() == before
    assert await count(db, UploadRow) == uploads
    await chat.send_ok("after the big files")


@pytest.mark.parametrize(
    ("files", "mentions"),
    [
        ([("activity", ("blob", b"{not json", "application/vnd.microsoft.activity"))], ("activity", "JSON")),
        (
            [
                (
                    "activity",
                    ("blob", b'{"type": "conversationUpdate"}', "application/vnd.microsoft.activity"),
                ),
                ("file", ("a.txt", b"abc", "text/plain")),
            ],
            ("conversationUpdate",),
        ),
        (
            [("activity", ("blob", b'{"type": "message"}', "application/vnd.microsoft.activity"))],
            ("no file",),
        ),
        ([("activity", ("blob", b"[]", "application/vnd.microsoft.activity"))], ("activity", "object")),
        ([("note", (None, b"just text", "text/plain"))], ("note", "file part")),
        ([("file", (f"f{i}.txt", b"x", "text/plain")) for i in range(11)], ("too many files",)),
    ],
    ids=["activity-not-json", "activity-wrong-type", "no-file", "activity-array", "text-field", "too-many"],
)
async def test_bad_multipart_upload_is_refused_and_nothing_is_stored(
    server: LiveServer,
    client: httpx.AsyncClient,
    secret: str,
    db: Database,
    tmp_path: Path,
    files: list[tuple[str, tuple[str | None, bytes, str]]],
    mentions: tuple[str, ...],
) -> None:
    chat = await start_chat(client, server, secret)
    before = await chat.history()
    uploads = await count(db, UploadRow)
    response = await client.post(chat.upload_url, headers=auth(chat.token), files=files)
    assert_error(response, 400, "BadArgument", *mentions)
    assert await chat.history() == before
    assert await count(db, UploadRow) == uploads
    assert not (tmp_path / "uploads" / chat.id).exists()
    await chat.send_ok("after the bad upload")


# ---------------------------------------------------------------- credentials


def forged_token() -> str:
    claims = {"aud": "warmline:directline", "conv": "x", "sub": "dl_x", "exp": 4_000_000_000}
    return jwt.encode(claims, "not-the-server-key-but-long-enough-0123456789", algorithm="HS256")


BAD_CREDENTIALS: list[tuple[str, dict[str, str], tuple[str, ...]]] = [
    ("missing", {}, ("Authorization",)),
    ("not bearer", {"Authorization": "Basic dXNlcjpwYXNz"}, ("Bearer",)),
    ("empty bearer", {"Authorization": "Bearer"}, ("Bearer",)),
    ("wrong secret", auth("not-the-widget-secret"), ("secret",)),
    ("garbage token", auth("aaa.bbb.ccc"), ("token",)),
    ("forged token", auth(forged_token()), ("token",)),
]


@pytest.mark.parametrize(
    ("headers", "mentions"),
    [case[1:] for case in BAD_CREDENTIALS],
    ids=[case[0] for case in BAD_CREDENTIALS],
)
async def test_bad_credentials_get_401_everywhere(
    server: LiveServer,
    client: httpx.AsyncClient,
    secret: str,
    db: Database,
    headers: dict[str, str],
    mentions: tuple[str, ...],
) -> None:
    chat = await start_chat(client, server, secret)
    before = await chat.history()
    conversations = await count(db, ConversationRow)
    domain = server.domain
    attempts = [
        client.post(chat.activities_url, headers=headers, json={"type": "message", "text": "sneaky"}),
        client.get(chat.activities_url, headers=headers),
        client.get(f"{domain}/conversations/{chat.id}", headers=headers),
        client.post(f"{domain}/conversations", headers=headers),
        client.post(f"{domain}/tokens/generate", headers=headers),
        client.post(f"{domain}/tokens/refresh", headers=headers),
        client.post(chat.upload_url, headers={**headers, "Content-Type": "text/plain"}, content=b"hi"),
    ]
    for attempt in attempts:
        assert_error(await attempt, 401, "Unauthorized", *mentions)
    assert await chat.history() == before
    assert await count(db, ConversationRow) == conversations
    await chat.send_ok("the right token still works")


async def test_expired_token_gets_token_expired_and_the_secret_still_works(
    server: LiveServer, client: httpx.AsyncClient, secret: str, clock: FakeClock
) -> None:
    chat = await start_chat(client, server, secret)
    before = await chat.history()
    clock.advance(LIFETIME + 1)
    domain = server.domain
    attempts = [
        client.post(chat.activities_url, headers=auth(chat.token), json={"type": "message", "text": "late"}),
        client.get(chat.activities_url, headers=auth(chat.token)),
        client.get(f"{domain}/conversations/{chat.id}", headers=auth(chat.token)),
        client.post(f"{domain}/conversations", headers=auth(chat.token)),
        client.post(f"{domain}/tokens/refresh", headers=auth(chat.token)),
    ]
    for attempt in attempts:
        assert_error(await attempt, 403, "TokenExpired", "expired")
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(chat.stream_url, open_timeout=5):
            pytest.fail("the stream opened with an expired token")
    assert refused.value.response.status_code == 403
    assert await chat.history(secret) == before
    # The secret never expires; reconnecting with it hands out a fresh token that works.
    fresh = await client.get(f"{domain}/conversations/{chat.id}", headers=auth(secret))
    assert fresh.status_code == 200, fresh.text
    await chat.send_ok("back again", credential=fresh.json()["token"])


async def test_refresh_gives_a_token_that_outlives_the_old_one(
    server: LiveServer, client: httpx.AsyncClient, secret: str, clock: FakeClock
) -> None:
    chat = await start_chat(client, server, secret)
    clock.advance(LIFETIME - 60)
    refreshed = await client.post(f"{server.domain}/tokens/refresh", headers=auth(chat.token))
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert body["conversationId"] == chat.id
    assert body["expires_in"] == LIFETIME
    assert body["token"] != chat.token
    clock.advance(120)
    assert_error(await client.get(chat.activities_url, headers=auth(chat.token)), 403, "TokenExpired")
    await chat.send_ok("with the refreshed token", credential=body["token"])
    secret_refresh = await client.post(f"{server.domain}/tokens/refresh", headers=auth(secret))
    assert_error(secret_refresh, 401, "Unauthorized", "token")


# ---------------------------------------------------------------- other conversations


async def test_a_token_opens_only_its_own_conversation(
    server: LiveServer, client: httpx.AsyncClient, secret: str
) -> None:
    mine = await start_chat(client, server, secret)
    theirs = await start_chat(client, server, secret)
    await theirs.send_ok("private")
    their_history = await theirs.history()
    attempts = [
        client.post(theirs.activities_url, headers=auth(mine.token), json={"type": "message", "text": "hi"}),
        client.get(theirs.activities_url, headers=auth(mine.token)),
        client.get(f"{server.domain}/conversations/{theirs.id}", headers=auth(mine.token)),
        client.post(
            theirs.upload_url, headers={**auth(mine.token), "Content-Type": "text/plain"}, content=b"x"
        ),
    ]
    for attempt in attempts:
        message = assert_error(await attempt, 403, "Forbidden", "another conversation")
        assert their_history[-1][2] not in message
    stolen_stream = theirs.stream_url.replace(theirs.token, mine.token)
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(stolen_stream, open_timeout=5):
            pytest.fail("the stream opened for another conversation")
    assert refused.value.response.status_code == 403
    assert await theirs.history() == their_history
    await mine.send_ok("my own")


async def test_unknown_conversation_is_404_with_its_id(
    server: LiveServer, client: httpx.AsyncClient, secret: str
) -> None:
    chat = await start_chat(client, server, secret)
    missing = f"{server.domain}/conversations/NoSuchConversation"
    attempts = [
        client.get(f"{missing}/activities", headers=auth(secret)),
        client.post(f"{missing}/activities", headers=auth(secret), json={"type": "message", "text": "a"}),
        client.get(missing, headers=auth(secret)),
        client.post(
            f"{missing}/upload", headers={**auth(secret), "Content-Type": "text/plain"}, content=b"x"
        ),
    ]
    for attempt in attempts:
        assert_error(await attempt, 404, "NotFound", "NoSuchConversation")
    # A token minted by tokens/generate names a conversation nobody started yet.
    generated = await client.post(f"{server.domain}/tokens/generate", headers=auth(secret))
    assert generated.status_code == 200, generated.text
    unstarted = generated.json()
    assert_error(
        await client.get(
            f"{server.domain}/conversations/{unstarted['conversationId']}/activities",
            headers=auth(unstarted["token"]),
        ),
        404,
        "NotFound",
        unstarted["conversationId"],
    )
    await chat.send_ok("unaffected")


async def test_stream_with_a_bad_token_is_closed_without_frames(
    server: LiveServer, client: httpx.AsyncClient, secret: str
) -> None:
    chat = await start_chat(client, server, secret)
    base = f"ws://127.0.0.1:{server.port}/v3/directline/conversations/{chat.id}/stream"
    for url in [
        base,
        f"{base}?t=",
        f"{base}?t=aaa.bbb.ccc",
        f"{base}?t={forged_token()}",
        f"{base}?t={secret}",
    ]:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, open_timeout=5):
                pytest.fail(f"the stream opened for {url}")
        assert refused.value.response.status_code == 403
    # The right token still streams the conversation.
    async with websockets.connect(chat.stream_url, open_timeout=5) as ws:
        frame = json.loads(await ws.recv(decode=True))
    assert frame["activities"][0]["text"].startswith("Hello")


@pytest.mark.parametrize("watermark", ["abc", "-1", "1.5", "0x10", "9" * 21])
async def test_watermark_that_is_not_ours_is_400(
    server: LiveServer, client: httpx.AsyncClient, secret: str, watermark: str
) -> None:
    chat = await start_chat(client, server, secret)
    polled = await client.get(chat.activities_url, params={"watermark": watermark}, headers=auth(chat.token))
    assert_error(polled, 400, "BadArgument", "watermark")
    reconnected = await client.get(
        f"{server.domain}/conversations/{chat.id}", params={"watermark": watermark}, headers=auth(chat.token)
    )
    assert_error(reconnected, 400, "BadArgument", "watermark")
    await chat.send_ok("fine")


# ---------------------------------------------------------------- widgets


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/widgets/nope/embed"), ("GET", "/widgets/nope/try"), ("POST", "/widgets/nope/conversations")],
)
async def test_unknown_widget_is_404_naming_it(
    live_server: LiveServer, client: httpx.AsyncClient, db: Database, method: str, path: str
) -> None:
    conversations = await count(db, ConversationRow)
    response = await client.request(method, f"{live_server.url}{path}", json={} if method == "POST" else None)
    assert_error(response, 404, "NotFound", "'nope'")
    assert await count(db, ConversationRow) == conversations
    assert (await client.get(f"{live_server.url}/widgets/demo/embed")).status_code == 200


async def test_widget_session_from_a_disallowed_origin_is_403(
    live_server: LiveServer, client: httpx.AsyncClient, db: Database
) -> None:
    conversations = await count(db, ConversationRow)
    url = f"{live_server.url}/widgets/demo/conversations"
    for origin in [
        "http://evil.example",
        "https://127.0.0.1.evil.example",
        "http://127.0.0.1.evil.example:80",
    ]:
        response = await client.post(url, headers={"Origin": origin}, json={})
        assert_error(response, 403, "Forbidden", origin, "allowed origins")
    assert await count(db, ConversationRow) == conversations
    allowed = await client.post(url, headers={"Origin": f"http://127.0.0.1:{free_port()}"}, json={})
    assert allowed.status_code == 201, allowed.text
    assert await count(db, ConversationRow) == conversations + 1


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        (
            {"context": {"FavouriteColour": {"value": "red"}}},
            ("FavouriteColour", "not declared", "CartValue"),
        ),
        ({"context": {"CartValue": {"value": "lots", "isDisplayable": True}}}, ("CartValue", "number")),
        ({"context": {"IsReturningCustomer": {"value": "yes"}}}, ("IsReturningCustomer", "boolean")),
        ({"context": {"CustomerTier": "Gold"}}, ("CustomerTier", "value")),
        (
            {"context": {"CustomerTier": {"value": "Gold", "isDisplayable": "no"}}},
            ("CustomerTier", "isDisplayable"),
        ),
        ({"context": {f"Var{i}": {"value": i} for i in range(101)}}, ("101", "100")),
        ({"context": ["CustomerTier"]}, ("context",)),
        ({"colour": "red"}, ("colour",)),
    ],
    ids=["undeclared", "number", "boolean", "not-an-object", "displayable", "too-many", "not-a-map", "extra"],
)
async def test_bad_context_is_400_naming_the_variable(
    live_server: LiveServer,
    client: httpx.AsyncClient,
    db: Database,
    body: dict[str, Any],
    mentions: tuple[str, ...],
) -> None:
    conversations = await count(db, ConversationRow)
    url = f"{live_server.url}/widgets/demo/conversations"
    response = await client.post(url, json=body)
    assert_error(response, 400, "BadArgument", *mentions)
    assert await count(db, ConversationRow) == conversations
    good = {"context": {"CartValue": {"value": 12.5, "isDisplayable": True}}}
    assert (await client.post(url, json=good)).status_code == 201


async def test_malformed_widget_session_body_is_400(
    live_server: LiveServer, client: httpx.AsyncClient, db: Database
) -> None:
    conversations = await count(db, ConversationRow)
    url = f"{live_server.url}/widgets/demo/conversations"
    broken = await client.post(url, headers={"Content-Type": "application/json"}, content=b'{"context": {')
    assert_error(broken, 400, "BadArgument", "JSON")
    for not_an_object in [[{"context": {}}], [], "context", 0]:
        refused = await client.post(url, json=not_an_object)
        assert_error(refused, 400, "BadArgument", "JSON object")
    assert await count(db, ConversationRow) == conversations


# ---------------------------------------------------------------- CORS


async def test_preflight_from_an_allowed_origin_allows_web_chat_headers(
    live_server: LiveServer, client: httpx.AsyncClient
) -> None:
    origin = f"http://127.0.0.1:{free_port()}"
    response = await client.options(
        f"{live_server.domain}/conversations",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": WEB_CHAT_HEADERS,
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == origin
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert set(WEB_CHAT_HEADERS.split(",")) <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    # Errors reach the page too, or the browser would hide the message behind a CORS failure.
    refused = await client.post(f"{live_server.domain}/conversations", headers={"Origin": origin})
    assert_error(refused, 401, "Unauthorized", "Authorization")
    assert refused.headers["access-control-allow-origin"] == origin


async def test_preflight_from_another_site_is_not_allowed(
    live_server: LiveServer, client: httpx.AsyncClient, secret: str
) -> None:
    response = await client.options(
        f"{live_server.domain}/conversations",
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": WEB_CHAT_HEADERS,
        },
    )
    assert response.status_code >= 400
    assert "access-control-allow-origin" not in response.headers
    simple = await client.post(
        f"{live_server.domain}/conversations", headers={**auth(secret), "Origin": "http://evil.example"}
    )
    assert "access-control-allow-origin" not in simple.headers
