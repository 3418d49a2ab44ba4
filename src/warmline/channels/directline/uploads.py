"""Direct Line uploads: files kept on disk for 24 hours, served back by an unguessable id."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message

from warmline.activity import Attachment
from warmline.channels.directline.errors import bad_argument, too_large
from warmline.store.schema import UploadRow

if TYPE_CHECKING:
    from warmline.runtime import Runtime

RETENTION = timedelta(hours=24)
MAX_FILES = 10
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class StoredFile:
    """An uploaded file as stored."""

    id: str
    name: str
    content_type: str
    size: int
    path: str


@dataclass(frozen=True)
class Received:
    """What an upload request carried: an optional activity and the files."""

    activity: dict[str, Any] | None
    files: list[StoredFile]


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, refusing it as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(f"The upload is {declared} bytes; the limit is {limit} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise too_large(f"The upload is over the limit of {limit} bytes.")
    return bytes(body)


def _replay(request: Request, body: bytes) -> Request:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


async def receive(request: Request, runtime: Runtime, conversation_id: str) -> Received:
    """Read, check and store an upload; rows and files are written together."""
    body = await read_limited(request, runtime.settings.max_upload_bytes)
    content_type = request.headers.get("content-type", "application/octet-stream")
    parts: list[tuple[str, str, bytes]] = []
    activity: dict[str, Any] | None = None
    if content_type.startswith("multipart/form-data"):
        form = await _replay(request, body).form(max_files=MAX_FILES, max_fields=MAX_FILES)
        for key, value in form.multi_items():
            if not isinstance(value, UploadFile):
                raise bad_argument(f"Form field '{key}' must be a file part.")
            data = await value.read()
            if key == "activity":
                try:
                    activity = json.loads(data)
                except (json.JSONDecodeError, UnicodeDecodeError) as error:
                    raise bad_argument(f"The 'activity' part is not valid JSON: {error}.") from error
                continue
            parts.append((value.filename or "file", value.content_type or "application/octet-stream", data))
    else:
        disposition = request.headers.get("content-disposition", "")
        match = re.search(r'filename="?([^";]+)"?', disposition)
        parts.append((match.group(1) if match else "file", content_type, body))
    if not parts:
        raise bad_argument("The upload carries no file.")
    files = [_write(runtime.settings.upload_dir, conversation_id, *part) for part in parts]
    now = runtime.clock()
    async with runtime.db.transaction() as tx:
        for stored in files:
            tx.session.add(
                UploadRow(
                    id=stored.id,
                    conversation_id=conversation_id,
                    content_type=stored.content_type,
                    name=stored.name,
                    size=stored.size,
                    path=stored.path,
                    created_at=now,
                    expires_at=now + RETENTION,
                )
            )
    return Received(activity=activity, files=files)


def _write(root: Path, conversation_id: str, name: str, content_type: str, data: bytes) -> StoredFile:
    upload_id = secrets.token_urlsafe(24)
    folder = root / conversation_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / upload_id
    path.write_bytes(data)
    clean = SAFE_NAME.sub("_", name)[:200] or "file"
    return StoredFile(upload_id, clean, content_type[:256], len(data), str(path.resolve()))


def as_attachments(files: list[StoredFile], base_url: str) -> list[Attachment]:
    """Attachments pointing at where each file can be fetched."""
    return [
        Attachment(
            content_type=f.content_type,
            content_url=f"{base_url}/v3/directline/attachments/{f.id}/{quote(f.name)}",
            name=f.name,
        )
        for f in files
    ]


async def find(session: AsyncSession, upload_id: str, now: datetime) -> StoredFile | None:
    """A stored, unexpired upload."""
    row = await session.get(UploadRow, upload_id)
    if row is None or row.expires_at <= now or not await anyio.Path(row.path).exists():
        return None
    return StoredFile(row.id, row.name or "file", row.content_type, row.size, row.path)
