"""Phone numbers: which voice workstream (and bot) answers a dialled number, where calls may go.

Numbers live in the routing configuration (``Workstream.phone_numbers``,
``ContactCenter.outbound_numbers``), so one ``config apply`` changes them for every server.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warmline.admin.actions import voice_allowed
from warmline.bot.publishing import BotLibrary, get_latest_version
from warmline.routing.config import get_config
from warmline.routing.model import WorkstreamType
from warmline.store.schema import BotConnectionRow, EnvironmentRow

log = logging.getLogger(__name__)

_SEPARATORS = re.compile(r"[\s\-.()]")


@dataclass(frozen=True)
class VoiceLine:
    """A number this deployment answers: its environment, voice workstream and first-agent bot."""

    number: str
    environment: str
    workstream: str
    bot_id: str | None


class CallRefused(Exception):
    """A call that must not be answered: the SIP status and reason phrase to refuse it with."""

    def __init__(self, status: int, reason: str, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.reason = reason
        self.why = why


def normalise_number(text: str | None) -> str:
    """A dialled or calling number as configured: visual separators and a leading ``+`` dropped."""
    value = _SEPARATORS.sub("", text or "")
    return value[1:] if value.startswith("+") else value


async def find_line(session: AsyncSession, number: str) -> VoiceLine | None:
    """The voice workstream that owns ``number``, in any environment."""
    number = normalise_number(number)
    if not number:
        return None
    for environment in await session.scalars(select(EnvironmentRow.id).order_by(EnvironmentRow.id)):
        config = await get_config(session, environment)
        if config is None:
            continue
        for workstream in config.workstreams.values():
            if workstream.type is WorkstreamType.VOICE and number in workstream.phone_numbers:
                return VoiceLine(number, environment, workstream.id, workstream.bot)
    return None


async def answering_bot(session: AsyncSession, library: BotLibrary, line: VoiceLine) -> tuple[str, int]:
    """The bot and published version that answers the line; ``CallRefused`` when none may.

    Voice must be on: with an omnichannel connection, its voice switch (and the connection
    passing traffic); a bot never connected — the demo, a bot published with the CLI — speaks
    when its ``bot.yaml`` says ``voiceEnabled: true``.
    """
    if line.bot_id is None:
        raise CallRefused(480, "No Bot Answers This Number", f"workstream '{line.workstream}' has no bot")
    version = await get_latest_version(session, line.bot_id)
    if version is None:
        raise CallRefused(480, "Bot Not Published", f"bot '{line.bot_id}' has no published version")
    connection = await session.get(BotConnectionRow, line.bot_id)
    if connection is not None:
        allowed = await voice_allowed(session, line.bot_id)
        voice = "on" if connection.voice_enabled else "off"
        why = f"bot '{line.bot_id}' connection is {connection.state} with voice {voice}"
    else:
        definition = await library.definition(line.bot_id, version)
        allowed = definition.settings.voice_enabled
        why = f"bot '{line.bot_id}' has voiceEnabled: false in bot.yaml"
    if not allowed:
        raise CallRefused(403, "Voice Disabled For This Bot", why)
    return line.bot_id, version


async def outbound_allowed(session: AsyncSession, environment: str, number: str) -> bool:
    """Whether calls in ``environment`` may be transferred to ``number`` (digits only, listed)."""
    if not number.isdigit():
        return False
    config = await get_config(session, environment)
    return config is not None and number in config.document.outbound_numbers
