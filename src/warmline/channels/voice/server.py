"""Wiring for ``app.py``: the voice settings, the switchboard with its speech engines, a stats route."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from warmline.bot import Bot
from warmline.bot.publishing import BotLibrary
from warmline.channels.voice.calls import Switchboard, VoiceSettings
from warmline.channels.voice.stt import default_recognizer
from warmline.channels.voice.tts import default_synthesizer
from warmline.config import Settings
from warmline.events import Bus
from warmline.store import Database

log = logging.getLogger("warmline.voice")

WILDCARDS = ("0.0.0.0", "::", "")


def reachable_address() -> str:
    """This machine's outward IPv4 address (a UDP 'connect' sends nothing), else loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed, never contacted
            address: str = probe.getsockname()[0]
            return address
        except OSError:
            return "127.0.0.1"


def voice_settings(settings: Settings) -> VoiceSettings:
    """The switchboard's settings from the process settings."""
    public = settings.sip_public_host
    if public is None and settings.sip_host in WILDCARDS:
        public = reachable_address()
        log.warning(
            "Voice: listening on all interfaces; advertising %s (set WARMLINE_SIP_PUBLIC_HOST)", public
        )
    return VoiceSettings(
        host=settings.sip_host,
        port=settings.sip_port or 0,
        public_host=public,
        rtp_ports=(settings.rtp_port_min, settings.rtp_port_max),
        trunk=settings.sip_trunk,
        dtmf_timeout=settings.voice_dtmf_timeout,
        ring_seconds=settings.voice_ring_seconds,
    )


def create_switchboard(
    settings: Settings,
    *,
    db: Database,
    bus: Bus,
    bot: Bot,
    library: BotLibrary,
    clock: Callable[[], datetime],
) -> Switchboard:
    """A switchboard with the default speech engines; what is missing is logged once, here."""
    synthesizer, tts_warning = default_synthesizer()
    recognizer, stt_message = default_recognizer()
    for message in (tts_warning, stt_message):
        if message:
            log.warning(message)
    return Switchboard(
        db=db,
        bus=bus,
        bot=bot,
        library=library,
        clock=clock,
        settings=voice_settings(settings),
        synthesizer=synthesizer,
        recognizer=recognizer,
    )


stats_router = APIRouter(include_in_schema=False)


def _board(request: Request) -> Switchboard:
    board: Switchboard | None = request.app.state.voice
    if board is None:
        raise HTTPException(404, "the SIP server is not running (set WARMLINE_SIP_PORT)")
    return board


@stats_router.get("/voice/stats")
async def voice_stats(request: Request) -> dict[str, Any]:
    """Calls in progress and RTP send-interval jitter (mounted with ``WARMLINE_VOICE_STATS=1``)."""
    return _board(request).stats()


@stats_router.delete("/voice/stats", status_code=204)
async def reset_voice_stats(request: Request) -> None:
    """Start the counters and the jitter histogram afresh."""
    _board(request).reset_stats()
