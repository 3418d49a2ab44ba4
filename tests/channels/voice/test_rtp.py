"""RTP: packets, the jitter buffer, RFC 4733 DTMF decoding, and 20 ms pacing that does not drift."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from warmline.channels.voice.rtp import (
    SAMPLES_PER_FRAME,
    DtmfDecoder,
    JitterBuffer,
    MediaClock,
    Playback,
    RtpError,
    RtpPacket,
    RtpSender,
)

PCAPS = Path("/usr/share/sip-tester")


def _packet(
    sequence: int, *, ssrc: int = 7, timestamp: int = 0, payload: bytes = b"x", marker: bool = False
) -> RtpPacket:
    return RtpPacket(0, sequence & 0xFFFF, timestamp, ssrc, payload, marker)


def test_packets_round_trip_and_optional_header_parts_are_skipped() -> None:
    packet = RtpPacket(101, 65535, 4_000_000_000, 0xDEADBEEF, b"\x01\x8a\x08\xc0", marker=True)
    assert RtpPacket.parse(packet.to_bytes()) == packet
    # Two CSRCs, a one-word header extension and four bytes of padding around a 3-byte payload.
    header = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, 0, 1, 2, 3) + b"\0" * 8
    data = header + struct.pack("!HH", 0xBEDE, 1) + b"\0" * 4 + b"abc" + b"\0\0\0\x04"
    assert RtpPacket.parse(data).payload == b"abc"


@pytest.mark.parametrize(
    "data", [b"", b"\x80" * 11, b"\x40" + b"\0" * 11, b"\xa0" + b"\0" * 11, b"\x90" + b"\0" * 12]
)
def test_what_is_not_rtp_is_refused(data: bytes) -> None:
    with pytest.raises(RtpError):
        RtpPacket.parse(data)


def test_the_jitter_buffer_reorders_and_drops_late_and_duplicate_packets() -> None:
    buffer = JitterBuffer(depth=3)
    released = []
    for sequence in (10, 12, 12, 11, 13, 9, 14):
        released += [p.sequence for p in buffer.push(_packet(sequence))]
    assert released == [10, 11, 12, 13, 14]
    assert (buffer.stats.late, buffer.stats.duplicates, buffer.stats.lost) == (1, 1, 0)


def test_a_gap_is_given_up_once_the_buffer_is_full_and_wraps_around() -> None:
    buffer = JitterBuffer(depth=2)
    released = []
    for sequence in (65534, 65535, 1, 2, 3):  # 0 is lost
        released += [p.sequence for p in buffer.push(_packet(sequence))]
    assert released == [65534, 65535, 1, 2, 3] and buffer.stats.lost == 1


def test_a_new_source_restarts_the_buffer() -> None:
    buffer = JitterBuffer()
    assert [p.sequence for p in buffer.push(_packet(100))] == [100]
    assert [p.sequence for p in buffer.push(_packet(30_000))] == [30_000]  # a jump, not 29,900 losses
    assert [p.sequence for p in buffer.push(_packet(5, ssrc=8))] == [5]
    assert buffer.stats.lost == 0


def _event(key: int, *, end: bool, duration: int, timestamp: int, sequence: int) -> RtpPacket:
    payload = bytes([key, (0x80 if end else 0) | 10]) + duration.to_bytes(2, "big")
    return RtpPacket(101, sequence, timestamp, 1, payload)


def test_each_dtmf_event_is_one_digit_however_many_packets_carry_it() -> None:
    now = [0.0]
    decoder = DtmfDecoder(clock=lambda: now[0])
    digits = []
    for timestamp, key in ((1000, 1), (5000, 11)):
        for i in range(6):
            digits.append(
                decoder.push(_event(key, end=False, duration=160 * i, timestamp=timestamp, sequence=i))
            )
        for _ in range(3):  # the end packet, sent three times
            digits.append(decoder.push(_event(key, end=True, duration=1000, timestamp=timestamp, sequence=9)))
        now[0] += 0.1
    assert [d for d in digits if d] == ["1", "#"]


def test_a_lost_start_is_recovered_from_the_end_packet_and_a_replay_counts_again() -> None:
    now = [0.0]
    decoder = DtmfDecoder(clock=lambda: now[0])
    assert decoder.push(_event(5, end=True, duration=800, timestamp=9, sequence=1)) == "5"
    assert decoder.push(_event(5, end=True, duration=800, timestamp=9, sequence=1)) is None
    now[0] += 1.0
    # The same recording played again (same timestamp, starting over): a second press.
    assert decoder.push(_event(5, end=False, duration=0, timestamp=9, sequence=1)) == "5"


def _pcap_packets(path: Path) -> list[RtpPacket]:
    data = path.read_bytes()
    offset, packets = 24, []
    while offset < len(data):
        length = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + length]
        offset += 16 + length
        ip = frame[14:]
        packets.append(RtpPacket.parse(ip[(ip[0] & 0x0F) * 4 + 8 :]))
    return packets


@pytest.mark.skipif(not PCAPS.exists(), reason="sip-tester's DTMF recordings are not installed")
def test_sipps_recorded_keys_decode_to_their_digits() -> None:
    decoder = DtmfDecoder()
    heard = ""
    for name in ("1", "9", "3", "star", "pound", "0"):
        for packet in _pcap_packets(PCAPS / f"dtmf_2833_{name}.pcap"):
            heard += decoder.push(packet) or ""
    assert heard == "193*#0"


class _Ticks:
    def __init__(self) -> None:
        self.at: list[float] = []
        self.stats = None

    def tick(self, now: float) -> None:
        self.at.append(round(now, 6))


def test_the_clock_is_drift_free_a_late_tick_does_not_move_the_later_ones() -> None:
    now = [100.0]
    lateness = {3: 0.015}  # the 4th wake-up comes 15 ms late
    wakes = [0]

    def sleep(seconds: float) -> None:
        wakes[0] += 1
        now[0] += seconds + lateness.get(len(ticks.at), 0.0)
        lateness.pop(len(ticks.at), None)

    ticks = _Ticks()
    clock = MediaClock(clock=lambda: now[0], sleep=sleep)
    clock._senders = (ticks,)  # type: ignore[assignment]  # a stand-in sender that records tick times
    clock.run(ticks=8)
    due = [round(100.0 + 0.02 * n, 6) for n in range(8)]
    assert ticks.at[:3] == due[:3] and ticks.at[3] == round(due[3] + 0.015, 6)
    assert ticks.at[4:] == due[4:]


def test_after_a_long_stall_the_clock_starts_a_fresh_schedule_instead_of_a_burst() -> None:
    now = [0.0]
    stalls = [0.0, 2.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds + (stalls.pop() if stalls else 0.0)

    ticks = _Ticks()
    clock = MediaClock(clock=lambda: now[0], sleep=sleep)
    clock._senders = (ticks,)  # type: ignore[assignment]
    clock.run(ticks=4)
    assert ticks.at[0] == 0.0 and ticks.at[1] == pytest.approx(2.02) and ticks.at[2] == pytest.approx(2.04)
    assert clock.stats.late_ticks == 1


async def test_a_sender_plays_prompts_in_order_with_marker_bits_and_stops_on_barge_in() -> None:
    loop = asyncio.get_running_loop()
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(1)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender = RtpSender(out, receiver.getsockname(), 0)
        first = Playback(b"\x01" * (SAMPLES_PER_FRAME * 2 + 10), loop)
        second = Playback(b"\x02" * SAMPLES_PER_FRAME * 5, loop)
        kept = Playback(b"\x03" * SAMPLES_PER_FRAME, loop, interruptible=False)
        for playback in (first, second, kept):
            sender.play(playback)
        for n in range(4):
            sender.tick(n * 0.02)
        sender.stop(interruptible_only=True)
        for n in range(4, 8):
            sender.tick(n * 0.02)
        packets = [RtpPacket.parse(receiver.recv(2048)) for _ in range(5)]
        await asyncio.sleep(0)  # let the clock thread's call_soon_threadsafe land
        assert [p.payload[0] for p in packets] == [1, 1, 1, 2, 3]
        assert packets[2].payload[-1] == 0xFF  # the last frame is padded with μ-law silence
        assert [p.marker for p in packets] == [True, False, False, False, False]
        assert [(p.sequence - packets[0].sequence) & 0xFFFF for p in packets] == [0, 1, 2, 3, 4]
        assert [(p.timestamp - packets[0].timestamp) & 0xFFFFFFFF for p in packets] == [0, 160, 320, 480, 640]
        assert await first.done is True and await second.done is False and await kept.done is True
    finally:
        receiver.close()
        out.close()


def _machine_is_oversubscribed() -> bool:
    """More runnable work than CPUs (other test runs, builds): wall-clock timing means little then."""
    return os.getloadavg()[0] > (os.cpu_count() or 1)


def test_pacing_holds_for_a_hundred_streams_while_the_interpreter_is_busy() -> None:
    streams = 100
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    out = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(streams)]
    loop = asyncio.new_event_loop()
    clock = MediaClock()
    stop = threading.Event()

    def busy() -> None:  # pure-Python work competing for the GIL, as bot turns would
        while not stop.is_set():
            sum(i * i for i in range(2000))

    worker = threading.Thread(target=busy)
    try:
        for sock in out:
            sock.setblocking(False)
            sender = RtpSender(sock, sink.getsockname(), 0)
            sender.play(Playback(b"\x55" * SAMPLES_PER_FRAME * 50, loop))
            clock.add(sender)
        worker.start()
        started = time.monotonic()
        clock.start()
        deadline = started + 10
        while clock.stats.packets < streams * 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        if worker.is_alive():
            worker.join()
        clock.stop()
        loop.close()
        sink.close()
        for sock in out:
            sock.close()
    stats = clock.stats.snapshot()
    assert stats["packets"] == streams * 50
    # Drift-free, and no convoy: 50 frames take 49 intervals of 20 ms plus at most one late tick.
    # (Sending with socket.sendto, which drops the GIL per packet, this took over 30 s.)
    assert 0.98 - 0.05 < elapsed < 0.98 + 0.3, elapsed
    if not _machine_is_oversubscribed():
        assert stats["jitter_p99_ms"] < 10, stats
