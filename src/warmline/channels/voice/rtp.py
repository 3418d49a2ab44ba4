"""RTP media (RFC 3550): packets, 20 ms pacing, a small jitter buffer, RFC 4733 DTMF events.

Outgoing audio of every call is paced by one ``MediaClock`` thread on a drift-free schedule (the
n-th tick is due at start + n·20 ms, never "20 ms after the last one"), so a busy event loop —
bot turns, database work — delays no packet, and timing errors never accumulate. Receiving stays
on the event loop: packets are reordered by a few-packet jitter buffer, and DTMF events are
decoded once per event however many (redundant, end-bit) packets carry them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import ipaddress
import logging
import random
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from warmline.channels.voice import g711

log = logging.getLogger(__name__)

Address = tuple[str, int]

FRAME_SECONDS: Final = 0.020
SAMPLES_PER_FRAME: Final = 160  # 20 ms at 8 kHz, one byte per G.711 sample
_HEADER: Final = struct.Struct("!BBHII")
# RFC 4733 §3.2: events 0-9, *, #, A-D; 16 (flash) is not a digit.
DTMF_EVENTS: Final = "0123456789*#ABCD"


class RtpError(ValueError):
    """Not an RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet (RFC 3550 §5.1); CSRCs, padding and header extensions are read and dropped."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse a datagram; ``RtpError`` when it is not RTP version 2."""
        if len(data) < _HEADER.size:
            raise RtpError("shorter than an RTP header")
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
        if first >> 6 != 2:
            raise RtpError("not RTP version 2")
        offset = _HEADER.size + 4 * (first & 0x0F)
        if first & 0x10:  # header extension: 16-bit profile, 16-bit length in words
            if len(data) < offset + 4:
                raise RtpError("truncated header extension")
            offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
        end = len(data)
        if first & 0x20:  # padding: the last byte counts the padding bytes
            if end == 0 or data[-1] == 0 or data[-1] > end - offset:
                raise RtpError("bad padding")
            end -= data[-1]
        if offset > end:
            raise RtpError("header longer than the packet")
        return cls(second & 0x7F, sequence, timestamp, ssrc, bytes(data[offset:end]), bool(second & 0x80))

    def to_bytes(self) -> bytes:
        """The wire form (no CSRCs, padding or extension)."""
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        header = _HEADER.pack(0x80, second, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc)
        return header + self.payload


def _ahead(a: int, b: int) -> int:
    """How far sequence number ``a`` is after ``b`` (negative: before), modulo 2^16 (RFC 3550 A.1)."""
    diff = (a - b) & 0xFFFF
    return diff - 0x10000 if diff >= 0x8000 else diff


@dataclass
class JitterStats:
    """What the receive side saw."""

    received: int = 0
    released: int = 0
    lost: int = 0
    late: int = 0
    duplicates: int = 0


class JitterBuffer:
    """Holds up to ``depth`` packets to put them back in sequence order; late ones are dropped.

    A packet behind the playout point is late (dropped); a gap is waited for until ``depth``
    packets are held, then skipped as lost. A jump of more than ``restart`` sequence numbers or
    a new SSRC is a new stream (a peer switching sources), not a 30,000-packet loss.
    """

    def __init__(self, depth: int = 3, restart: int = 1000) -> None:
        self.depth = depth
        self.restart = restart
        self.stats = JitterStats()
        self._held: dict[int, RtpPacket] = {}
        self._next: int | None = None
        self._ssrc: int | None = None

    def push(self, packet: RtpPacket) -> list[RtpPacket]:
        """Add a packet; returns the packets now ready, in order."""
        self.stats.received += 1
        if (
            self._ssrc != packet.ssrc
            or self._next is None
            or abs(_ahead(packet.sequence, self._next)) > self.restart
        ):
            released = self.flush()
            self._ssrc, self._next = packet.ssrc, packet.sequence
        else:
            released = []
        position = _ahead(packet.sequence, self._next)
        if position < 0:
            self.stats.late += 1
            return released
        if packet.sequence in self._held:
            self.stats.duplicates += 1
            return released
        self._held[packet.sequence] = packet
        released.extend(self._release())
        if len(self._held) > self.depth:
            # Give up on the gap: skip to the oldest packet we hold.
            oldest = min(self._held, key=lambda s: _ahead(s, self._next or 0))
            self.stats.lost += _ahead(oldest, self._next)
            self._next = oldest
            released.extend(self._release())
        return released

    def flush(self) -> list[RtpPacket]:
        """Everything held, in order (the stream ended or restarted)."""
        if self._next is None:
            return []
        start = self._next
        ordered = sorted(self._held.values(), key=lambda p: _ahead(p.sequence, start))
        self._held.clear()
        self.stats.released += len(ordered)
        return ordered

    def _release(self) -> list[RtpPacket]:
        out = []
        assert self._next is not None
        while self._next in self._held:
            out.append(self._held.pop(self._next))
            self._next = (self._next + 1) & 0xFFFF
        self.stats.released += len(out)
        return out


class DtmfDecoder:
    """RFC 4733 telephone-events to digits, each event counted once.

    All packets of one event share its RTP timestamp; the end packet is sent three times
    (§2.5.1.4). A digit is reported on the first packet of an event (so a key press stops a
    prompt at once), or on its end packet if the start was lost. The same timestamp starting
    again (no end bit) well after that event ended is a new press — a peer replaying a recording.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, repeat_after: float = 0.25) -> None:
        self.clock = clock
        self.repeat_after = repeat_after
        self._current: tuple[int, int, int] | None = None
        self._ended_at: float | None = None

    def push(self, packet: RtpPacket) -> str | None:
        """A digit when this packet starts a new event, else None."""
        payload = packet.payload
        if len(payload) < 4:
            return None
        event, flags = payload[0], payload[1]
        end = bool(flags & 0x80)
        if event >= len(DTMF_EVENTS):
            return None
        key = (packet.ssrc, packet.timestamp, event)
        now = self.clock()
        new = key != self._current or (
            not end and self._ended_at is not None and now - self._ended_at >= self.repeat_after
        )
        if new:
            self._current = key
            self._ended_at = now if end else None
            return DTMF_EVENTS[event]
        if end and self._ended_at is None:
            self._ended_at = now
        return None


class SendStats:
    """Send-interval jitter of paced packets: |interval - 20 ms| in a 0.1 ms histogram."""

    BUCKETS: Final = 1000  # 0 .. 100 ms

    def __init__(self) -> None:
        self.histogram = [0] * (self.BUCKETS + 1)
        self.packets = 0
        self.intervals = 0
        self.worst = 0.0
        self.late_ticks = 0

    def reset(self) -> None:
        """Start counting afresh (a benchmark's next round); senders keep this same object."""
        self.histogram = [0] * (self.BUCKETS + 1)
        self.packets = self.intervals = self.late_ticks = 0
        self.worst = 0.0

    def record(self, interval: float) -> None:
        """One interval between consecutive packets of a talkspurt."""
        error = abs(interval - FRAME_SECONDS)
        self.histogram[min(int(error * 10_000), self.BUCKETS)] += 1
        self.intervals += 1
        self.worst = max(self.worst, error)

    def percentile(self, fraction: float) -> float:
        """The jitter (seconds) that ``fraction`` of intervals stay at or under."""
        if not self.intervals:
            return 0.0
        wanted = fraction * self.intervals
        seen = 0
        for bucket, count in enumerate(self.histogram):
            seen += count
            if seen >= wanted:
                return (bucket + 1) / 10_000
        return self.worst

    def snapshot(self) -> dict[str, float]:
        """Counts and percentiles in milliseconds."""
        return {
            "packets": self.packets,
            "intervals": self.intervals,
            "jitter_p50_ms": round(self.percentile(0.50) * 1000, 2),
            "jitter_p99_ms": round(self.percentile(0.99) * 1000, 2),
            "jitter_max_ms": round(self.worst * 1000, 2),
            "late_ticks": self.late_ticks,
        }


class _HeldSendto:
    """``sendto(2)`` called with the GIL held, through ``ctypes.PyDLL``.

    ``socket.sendto`` releases the GIL around the system call. With one call per packet, a busy
    event-loop thread grabs the GIL at every release, and the clock thread waits a whole switch
    interval (5 ms) to get it back — per packet, so 200 calls' packets took seconds (a convoy). A
    non-blocking UDP send returns at once, so holding the GIL through it costs nothing; the clock
    thread then waits for the GIL once per tick at most. Linux only; elsewhere ``socket.sendto``.
    """

    def __init__(self) -> None:
        self._sendto: Any = None
        path = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
        if path:
            libc = ctypes.PyDLL(path, use_errno=True)
            libc.sendto.argtypes = [
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_uint32,
            ]
            libc.sendto.restype = ctypes.c_ssize_t
            self._sendto = libc.sendto

    @staticmethod
    def sockaddr(address: Address) -> bytes | None:
        """``struct sockaddr_in``/``sockaddr_in6`` (Linux layout) for an IP literal, else None."""
        try:
            ip = ipaddress.ip_address(address[0])
        except ValueError:
            return None
        port = struct.pack("!H", address[1])
        if ip.version == 4:
            return struct.pack("=H", socket.AF_INET) + port + ip.packed + bytes(8)
        return struct.pack("=H", socket.AF_INET6) + port + bytes(4) + ip.packed + bytes(4)

    def send(self, sock: socket.socket, data: bytes, address: Address, sockaddr: bytes | None) -> bool:
        """Send one datagram; False when the socket buffer is full (the packet is dropped)."""
        if self._sendto is None or sockaddr is None:
            try:
                sock.sendto(data, address)
            except OSError:
                return False
            return True
        return int(self._sendto(sock.fileno(), data, len(data), 0, sockaddr, len(sockaddr))) >= 0


_SENDTO = _HeldSendto()


class Playback:
    """One prompt's audio, played frame by frame by the clock thread; ``done`` resolves when over.

    ``done`` is True when it played to the end, False when it was stopped (barge-in, hang-up).
    """

    def __init__(self, audio: bytes, loop: asyncio.AbstractEventLoop, *, interruptible: bool = True) -> None:
        self.audio = audio
        self.interruptible = interruptible
        self.frames = (len(audio) + SAMPLES_PER_FRAME - 1) // SAMPLES_PER_FRAME
        self.position = 0
        self.stopped = False
        self._loop = loop
        self.done: asyncio.Future[bool] = loop.create_future()

    def stop(self) -> None:
        """Stop at the next frame (called on the event loop)."""
        self.stopped = True
        if not self.done.done():
            self.done.set_result(False)

    def next_frame(self) -> bytes | None:
        """The next 20 ms (clock thread); None when finished or stopped."""
        if self.stopped or self.position >= self.frames:
            return None
        start = self.position * SAMPLES_PER_FRAME
        self.position += 1
        frame = self.audio[start : start + SAMPLES_PER_FRAME]
        if len(frame) < SAMPLES_PER_FRAME:
            frame += bytes([g711.SILENCE_ULAW]) * (SAMPLES_PER_FRAME - len(frame))
        return frame

    def finish(self) -> None:
        """Played out (clock thread): resolve ``done`` on the loop."""
        if not self.stopped:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                self._loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if not self.done.done():
            self.done.set_result(True)


@dataclass
class RtpSender:
    """One call's outgoing stream: the next prompt's frames, sequence numbers and timestamps.

    ``tick`` runs on the clock thread only; ``play``/``stop_all`` on the event loop. They share a
    deque (atomic appends and pops) and the ``current`` reference, nothing else.
    """

    sock: socket.socket
    remote: Address | None
    payload_type: int
    law: str = "ulaw"
    stats: SendStats | None = None
    rng: random.Random = field(default_factory=random.Random)
    queue: deque[Playback] = field(default_factory=deque)
    current: Playback | None = None
    sent: int = 0
    dropped: int = 0

    def __post_init__(self) -> None:
        # RFC 3550 §5.1: random initial sequence number, timestamp and SSRC.
        self.sequence = self.rng.randrange(1 << 16)
        self.timestamp = self.rng.randrange(1 << 32)
        self.ssrc = self.rng.randrange(1, 1 << 32)
        self._talking = False
        self._last_sent: float | None = None
        self._sockaddr: tuple[Address | None, bytes | None] = (None, None)

    def play(self, playback: Playback) -> None:
        """Queue a prompt behind the ones already playing."""
        self.queue.append(playback)

    def stop(self, *, interruptible_only: bool = False) -> None:
        """Stop the current prompt and drop queued ones (all, or only the interruptible)."""
        kept = [p for p in self.queue if interruptible_only and not p.interruptible]
        dropped = [p for p in self.queue if p not in kept]
        self.queue.clear()
        self.queue.extend(kept)
        for playback in dropped:
            playback.stop()
        current = self.current
        if current is not None and (current.interruptible or not interruptible_only):
            current.stop()

    @property
    def playing(self) -> Playback | None:
        """The prompt being played, if any."""
        current = self.current
        return current if current is not None and not current.stopped else None

    def tick(self, now: float) -> None:
        """Send the next frame, if there is one (clock thread)."""
        self.timestamp = (self.timestamp + SAMPLES_PER_FRAME) & 0xFFFFFFFF
        frame = None
        while frame is None:
            if self.current is None:
                if not self.queue:
                    break
                self.current = self.queue.popleft()
            frame = self.current.next_frame()
            if frame is None:
                self.current.finish()
                self.current = None
        if frame is None or self.remote is None:
            self._talking = False
            return
        if self.law == "alaw":
            frame = g711.ulaw_to_alaw(frame)
        # RFC 3551 §4.1: the marker bit starts each talkspurt after silence. (Packed here rather
        # than through RtpPacket: this runs for every call every 20 ms.)
        second = self.payload_type if self._talking else self.payload_type | 0x80
        data = _HEADER.pack(0x80, second, self.sequence, self.timestamp, self.ssrc) + frame
        self.sequence = (self.sequence + 1) & 0xFFFF
        remote = self.remote
        if self._sockaddr[0] != remote:
            self._sockaddr = (remote, _SENDTO.sockaddr(remote))
        if not _SENDTO.send(self.sock, data, remote, self._sockaddr[1]):
            self.dropped += 1
            self._talking = False
            return
        self.sent += 1
        if self.stats is not None:
            self.stats.packets += 1
            if self._talking and self._last_sent is not None:
                self.stats.record(now - self._last_sent)
        self._talking = True
        self._last_sent = now


class MediaClock:
    """One thread that ticks every sender each 20 ms on a drift-free schedule."""

    def __init__(
        self,
        *,
        interval: float = FRAME_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        resync_after: float = 0.5,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self.resync_after = resync_after
        self.stats = SendStats()
        self._senders: tuple[RtpSender, ...] = ()
        # Held for a whole tick: once ``remove`` returns, the thread no longer touches the sender
        # (or its socket, which the call then closes). Re-entrant for ``tick``'s own ``remove``.
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, sender: RtpSender) -> None:
        """Start pacing a sender (copy-on-write: the thread iterates an immutable tuple)."""
        sender.stats = self.stats
        with self._lock:
            self._senders = (*self._senders, sender)

    def remove(self, sender: RtpSender) -> None:
        """Stop pacing a sender."""
        with self._lock:
            self._senders = tuple(s for s in self._senders if s is not sender)

    @property
    def senders(self) -> int:
        """How many streams are paced."""
        return len(self._senders)

    def start(self) -> None:
        """Start the thread."""
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self.run, name="warmline-media-clock", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def run(self, ticks: int | None = None) -> None:
        """Tick until stopped (or ``ticks`` times — tests drive it with a fake clock and sleep)."""
        due = self.clock()
        count = 0
        while not self._stopping.is_set() and (ticks is None or count < ticks):
            now = self.clock()
            if now < due:
                self.sleep(due - now)
                continue
            if now - due > self.resync_after:
                # Far behind (the machine stalled): start a fresh schedule instead of a burst.
                self.stats.late_ticks += 1
                due = now
            self.tick(now)
            count += 1
            due += self.interval

    def tick(self, now: float) -> None:
        """One 20 ms step for every sender."""
        with self._lock:
            for sender in self._senders:
                try:
                    sender.tick(now)
                except Exception:  # one broken stream must not silence every other call
                    log.exception("RTP sender failed; removing it")
                    self.remove(sender)


class RtpReceiver(asyncio.DatagramProtocol):
    """Parses datagrams on a call's RTP port and hands packets to the call."""

    def __init__(self, on_packet: Callable[[RtpPacket, Address], None]) -> None:
        self.on_packet = on_packet
        self.invalid = 0

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            self.invalid += 1
            return
        self.on_packet(packet, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("RTP socket error: %s", exc)


class NoPortsLeft(RuntimeError):
    """Every RTP port of the configured range is in use."""


class PortPool:
    """Even UDP ports of a range for RTP (RFC 3550 §11), handed out round-robin."""

    def __init__(self, host: str, low: int, high: int) -> None:
        self.host = host
        self.low = low + (low % 2)
        self.high = high
        self._cursor = self.low

    def open(self) -> tuple[socket.socket, int]:
        """A bound, non-blocking UDP socket on the next free even port."""
        span = max((self.high - self.low) // 2 + 1, 1)
        for _ in range(span):
            port = self._cursor
            self._cursor = self._cursor + 2 if self._cursor + 2 <= self.high else self.low
            sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((self.host, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            return sock, port
        raise NoPortsLeft(f"no free RTP port in {self.low}-{self.high}")
