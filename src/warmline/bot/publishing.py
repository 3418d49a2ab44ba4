"""Publishing: validate a bot's draft files and store them as the next numbered, immutable version.

Channels only ever run published versions, and a conversation keeps the version it started on,
so an author can publish mid-day without changing conversations already in flight.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from warmline.bot.dialog import DialogEngine, HttpClient
from warmline.bot.loader import Problem, load_bot_files
from warmline.bot.system import system_topics
from warmline.bot.topics import BotDefinition
from warmline.bot.validate import validate_bot
from warmline.store import Database, Transaction
from warmline.store.schema import BotConnectionRow, BotRow, BotVersionRow, WidgetRow


class PublishRefused(Exception):
    """The draft has errors; nothing was published."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the bot")
        self.problems = problems


def check_bot(files: dict[str, str], root: str = "") -> tuple[BotDefinition, list[Problem]]:
    """Load and validate a bot's files; problems include warnings."""
    problems: list[Problem] = []
    bot = load_bot_files(files, problems, root=root, system_topics=system_topics())
    problems.extend(validate_bot(bot))
    return bot, problems


def checksum(files: dict[str, str]) -> str:
    """Identity of a set of files, so publishing unchanged files makes no new version."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Published:
    """Outcome of a publish."""

    bot_id: str
    version: int
    created: bool
    warnings: tuple[Problem, ...]


async def do_publish_bot(
    tx: Transaction, bot_id: str, files: dict[str, str], now: datetime, *, root: str | None = None
) -> Published:
    """Validate and publish; raises ``PublishRefused`` listing every error.

    Problems name files under ``root`` (the folder the files came from; the bot id by default).
    """
    bot, problems = check_bot(files, root=bot_id if root is None else root)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise PublishRefused(errors)
    warnings = tuple(p for p in problems if p.severity != "error")
    row = await tx.session.get(BotRow, bot_id)
    if row is None:
        tx.session.add(BotRow(id=bot_id, name=bot.settings.name, created_at=now))
    else:
        row.name = bot.settings.name
    digest = checksum(files)
    latest = await tx.session.scalar(
        select(BotVersionRow)
        .where(BotVersionRow.bot_id == bot_id)
        .order_by(BotVersionRow.version.desc())
        .limit(1)
    )
    if latest is not None and latest.checksum == digest:
        return Published(bot_id, latest.version, False, warnings)
    version = (latest.version if latest else 0) + 1
    tx.session.add(
        BotVersionRow(bot_id=bot_id, version=version, files=files, checksum=digest, published_at=now)
    )
    await tx.session.flush()
    return Published(bot_id, version, True, warnings)


async def do_attach_bot(tx: Transaction, widget_id: str, bot_id: str | None) -> None:
    """Make a widget's new conversations start with this bot (None: the built-in echo bot)."""
    widget = await tx.session.get(WidgetRow, widget_id)
    if widget is None:
        raise LookupError(f"no widget '{widget_id}'")
    widget.bot_id = bot_id


async def get_latest_version(session: AsyncSession, bot_id: str) -> int | None:
    """The newest published version number."""
    version: int | None = await session.scalar(
        select(func.max(BotVersionRow.version)).where(BotVersionRow.bot_id == bot_id)
    )
    return version


async def list_versions(session: AsyncSession, bot_id: str) -> list[tuple[int, datetime]]:
    """Published versions of a bot, oldest first."""
    rows = await session.execute(
        select(BotVersionRow.version, BotVersionRow.published_at)
        .where(BotVersionRow.bot_id == bot_id)
        .order_by(BotVersionRow.version)
    )
    return [(v, at) for v, at in rows]


async def get_version_files(session: AsyncSession, bot_id: str, version: int) -> dict[str, str] | None:
    """The files of one published version."""
    row = await session.get(BotVersionRow, (bot_id, version))
    return None if row is None else dict(row.files)


async def pin_bot(session: AsyncSession, widget_id: str | None) -> tuple[str | None, int | None]:
    """The bot and published version a new conversation on this widget starts with."""
    if widget_id is None:
        return None, None
    bot_id = await session.scalar(select(WidgetRow.bot_id).where(WidgetRow.id == widget_id))
    if bot_id is None:
        return None, None
    connection = await session.scalar(select(BotConnectionRow.state).where(BotConnectionRow.bot_id == bot_id))
    if connection is not None and connection != "enabled":
        # A disabled or disconnected bot gets no traffic from the omnichannel (admin: Disable / Disconnect).
        return None, None
    return bot_id, await get_latest_version(session, bot_id)


class BotLibrary:
    """Compiled engines of published versions, shared by all conversations of this process."""

    def __init__(self, db: Database, *, http: HttpClient | None = None, size: int = 64) -> None:
        self.db = db
        self.http = http
        self._engines: OrderedDict[tuple[str, int], DialogEngine] = OrderedDict()
        self._definitions: OrderedDict[tuple[str, int], BotDefinition] = OrderedDict()
        self._size = size

    async def definition(self, bot_id: str, version: int) -> BotDefinition:
        """One published version, loaded (and checked) once, then cached."""
        key = (bot_id, version)
        bot = self._definitions.get(key)
        if bot is not None:
            self._definitions.move_to_end(key)
            return bot
        async with self.db.reading() as session:
            files = await get_version_files(session, bot_id, version)
        if files is None:
            raise LookupError(f"bot '{bot_id}' has no published version {version}")
        bot, problems = check_bot(files, root=bot_id)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise RuntimeError(f"published version {bot_id} v{version} no longer validates: {errors[0]}")
        self._definitions[key] = bot
        if len(self._definitions) > self._size:
            self._definitions.popitem(last=False)
        return bot

    async def engine(self, bot_id: str, version: int) -> DialogEngine:
        """The engine of one published version (compiled once, then cached)."""
        key = (bot_id, version)
        engine = self._engines.get(key)
        if engine is not None:
            self._engines.move_to_end(key)
            return engine
        engine = DialogEngine(await self.definition(bot_id, version), http=self.http)
        self._engines[key] = engine
        if len(self._engines) > self._size:
            self._engines.popitem(last=False)
        return engine
