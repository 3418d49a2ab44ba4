"""G.711 without audioop: exact against the ITU tables (and audioop itself while it still exists)."""

from __future__ import annotations

import importlib
import struct
import warnings
from types import ModuleType

import pytest

from warmline.channels.voice import g711


def _audioop() -> ModuleType | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return importlib.import_module("audioop")
        except ImportError:  # Python 3.13 removed it (PEP 594)
            return None


def test_known_code_points() -> None:
    assert (g711.ulaw_to_linear(0x00), g711.ulaw_to_linear(0x80), g711.ulaw_to_linear(0xFF)) == (
        -32124,
        32124,
        0,
    )
    assert (g711.alaw_to_linear(0xD5), g711.alaw_to_linear(0x55), g711.alaw_to_linear(0xAA)) == (8, -8, 32256)
    assert g711.linear_to_ulaw(0) == 0xFF and g711.linear_to_alaw(0) == 0xD5


def test_every_code_round_trips() -> None:
    for code in range(256):
        # μ-law has two zeros (0x7F and 0xFF); both decode to 0, which encodes as 0xFF.
        assert g711.linear_to_ulaw(g711.ulaw_to_linear(code)) == (0xFF if code == 0x7F else code)
        assert g711.linear_to_alaw(g711.alaw_to_linear(code)) == code


def test_buffers_round_trip_and_laws_convert_directly() -> None:
    codes = bytes(range(256))
    assert g711.encode(g711.decode(codes, "alaw"), "alaw") == codes
    assert g711.ulaw_to_alaw(codes) == g711.encode(g711.decode(codes, "ulaw"), "alaw")
    pcm = struct.pack("<4h", 1000, -1000, 32767, -32768)
    assert len(g711.encode(pcm)) == 4 and len(g711.decode(g711.encode(pcm))) == 8


def test_encoding_is_monotonic() -> None:
    decoded = [g711.ulaw_to_linear(g711.linear_to_ulaw(s)) for s in range(-32768, 32768, 97)]
    assert decoded == sorted(decoded)


@pytest.mark.skipif(_audioop() is None, reason="audioop is gone from this Python")
def test_identical_to_audioop_for_every_sample() -> None:
    audioop = _audioop()
    assert audioop is not None
    samples = struct.pack("<65536h", *range(-32768, 32768))
    assert g711.encode(samples, "ulaw") == audioop.lin2ulaw(samples, 2)
    assert g711.encode(samples, "alaw") == audioop.lin2alaw(samples, 2)
    codes = bytes(range(256))
    assert g711.decode(codes, "ulaw") == audioop.ulaw2lin(codes, 2)
    assert g711.decode(codes, "alaw") == audioop.alaw2lin(codes, 2)
