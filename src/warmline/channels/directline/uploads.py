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
from starlette.exceptions import HTTPException
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
DEFAULT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class StoredFile:
    """An uploaded file as stored."""

    id: str
    name: str
    content_type: str
    size: int
    path: str


@dataclass(frozen=True)
class FilePart:
    """One file of an upload, read but not yet stored."""

    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Received:
    """What an upload request carried: an optional activity and the files."""

    activity: dict[str, Any] | None
    files: list[FilePart]


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


def _activity(data: bytes | str) -> dict[str, Any]:
    try:
        activity = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise bad_argument(f"The 'activity' part is not valid JSON: {error}.") from error
    if not isinstance(activity, dict):
        raise bad_argument("The 'activity' part must be one JSON object (an Activity).")
    return activity


async def read(request: Request, limit: int) -> Received:
    """Read and parse an upload (raw body, or multipart with an ``activity`` part); stores nothing."""
    body = await read_limited(request, limit)
    content_type = request.headers.get("content-type", "application/octet-stream")
    if not content_type.startswith("multipart/form-data"):
        disposition = request.headers.get("content-disposition", "")
        match = re.search(r'filename="?([^";]+)"?', disposition)
        return Received(None, [FilePart(match.group(1) if match else "file", content_type, body)])
    parts: list[FilePart] = []
    activity: dict[str, Any] | None = None
    try:
        # Closing the form releases its spooled temporary files, whatever happens while reading it.
        async with _replay(request, body).form(max_files=MAX_FILES, max_fields=MAX_FILES) as form:
            for key, value in form.multi_items():
                if key == "activity":
                    # DirectLineJS sends a Blob (a file part named "blob"); other clients a plain field.
                    activity = _activity(await value.read() if isinstance(value, UploadFile) else value)
                elif isinstance(value, UploadFile):
                    data = await value.read()
                    parts.append(FilePart(value.filename or "file", value.content_type or DEFAULT_TYPE, data))
                else:
                    raise bad_argument(f"Form field '{key}' must be a file part (or 'activity').")
    except HTTPException as error:
        # Starlette's multipart parser reports malformed bodies and too many parts this way.
        raise bad_argument(f"The multipart body was refused: {error.detail}") from error
    if not parts:
        raise bad_argument("The upload carries no file; send at least one 'file' part.")
    return Received(activity, parts)


async def store(runtime: Runtime, conversation_id: str, parts: list[FilePart]) -> list[StoredFile]:
    """Write the files and their rows together."""
    files = [_write(runtime.settings.upload_dir, conversation_id, part) for part in parts]
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
    return files


def _write(root: Path, conversation_id: str, part: FilePart) -> StoredFile:
    upload_id = secrets.token_urlsafe(24)
    folder = root / conversation_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / upload_id
    path.write_bytes(part.data)
    clean = SAFE_NAME.sub("_", part.name)[:200] or "file"
    return StoredFile(upload_id, clean, part.content_type[:256], len(part.data), str(path.resolve()))


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
