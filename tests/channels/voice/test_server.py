"""The voice channel inside the app: the lifespan starts SIP, the stats route, a busy port."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import httpx
import pytest

from tests.support import DatabaseUnderTest, LiveServer
from warmline.channels.voice.server import voice_settings
from warmline.config import Settings


def test_the_app_serves_sip_and_its_stats_when_configured(
    database: DatabaseUnderTest, tmp_path: Path
) -> None:
    server = LiveServer(database.settings(upload_dir=tmp_path, sip_port=0, voice_stats=True)).start()
    try:
        board = server.app.state.voice
        assert board is not None and board.port > 0 and board.transport is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(5)
            probe.sendto(
                b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKopt;rport\r\n"
                b"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: probe\r\n"
                b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                ("127.0.0.1", board.port),
            )
            assert probe.recv(2048).startswith(b"SIP/2.0 200 OK\r\n")
        stats = httpx.get(f"{server.url}/voice/stats").json()
        assert stats["calls"] == 0 and stats["media"]["packets"] == 0
        assert httpx.delete(f"{server.url}/voice/stats").status_code == 204
    finally:
        server.stop()


def test_without_a_sip_port_there_is_no_sip_and_no_stats_route(
    database: DatabaseUnderTest, tmp_path: Path
) -> None:
    server = LiveServer(database.settings(upload_dir=tmp_path)).start()
    try:
        assert server.app.state.voice is None
        assert httpx.get(f"{server.url}/voice/stats").status_code == 404
    finally:
        server.stop()


def test_a_taken_sip_port_turns_voice_off_not_the_server(
    database: DatabaseUnderTest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="warmline.voice"):
            server = LiveServer(database.settings(upload_dir=tmp_path, sip_port=port)).start()
        try:
            assert httpx.get(f"{server.url}/healthz").status_code in (200, 503)
            assert server.app.state.voice.transport is None
            assert any("calls are off" in r.getMessage() for r in caplog.records)
        finally:
            server.stop()


def test_listening_everywhere_advertises_a_reachable_address(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="warmline.voice"):
        settings = voice_settings(Settings(sip_port=5060, sip_host="0.0.0.0"))
    assert settings.advertised_host not in ("0.0.0.0", "")
    assert any("WARMLINE_SIP_PUBLIC_HOST" in r.getMessage() for r in caplog.records)
    assert (
        voice_settings(Settings(sip_port=5060, sip_public_host="198.51.100.7")).advertised_host
        == "198.51.100.7"
    )
