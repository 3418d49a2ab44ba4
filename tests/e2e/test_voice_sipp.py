"""Phone calls to ``warmline demo`` from sipp (Debian's sip-tester), with the real espeak-ng voice.

sipp places the call and presses keys by replaying sip-tester's RFC 4733 recordings; our RTP goes
to a receiver in this test (the SDP offer names its port), which times every packet.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support import TEST_SECRET, DatabaseUnderTest, ServerProcess
from warmline.bot.loader import read_bot_folder
from warmline.bot.publishing import do_publish_bot
from warmline.channels.voice.calls import CANT_TRANSFER
from warmline.channels.voice.rtp import SAMPLES_PER_FRAME, RtpPacket
from warmline.channels.voice.tts import EspeakSynthesizer
from warmline.conversations.reads import list_activities
from warmline.demo import DEMO_BOT_FOLDER, DEMO_BOT_ID
from warmline.events import InProcessBus
from warmline.runtime import utc_now
from warmline.store import Database
from warmline.store.schema import ConversationRow, TransitionRow

pytestmark = [
    pytest.mark.sip,
    pytest.mark.skipif(
        not (shutil.which("sipp") and shutil.which("espeak-ng") and shutil.which("sox")),
        reason="needs sipp (sip-tester), espeak-ng and sox from Debian",
    ),
]

SCENARIOS = Path(__file__).with_name("sipp")
KEYS = Path("/usr/share/sip-tester")
MENU = (
    "Thanks for calling Contoso. Press 1 for order status, 2 to talk to a person, 3 to reach our store, "
    "or 9 to hang up."
)
GOODBYE = "Thanks for calling Contoso. Goodbye!"
TRANSFERRING = "Transferring you to our store now."


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def frames_of(text: str) -> int:
    """How many 20 ms packets the server's voice takes to say ``text`` (espeak-ng is deterministic)."""
    audio = asyncio.run(EspeakSynthesizer().synthesize(text))
    return math.ceil(len(audio) / SAMPLES_PER_FRAME)


@dataclass
class Ear:
    """The caller's RTP port: every packet with its arrival time."""

    sock: socket.socket = field(default_factory=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    heard: list[tuple[float, RtpPacket]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            self.heard.append((time.monotonic(), RtpPacket.parse(data)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def talkspurts(self) -> list[list[tuple[float, RtpPacket]]]:
        """Packets grouped by talkspurt (RFC 3551: the marker bit starts each)."""
        spurts: list[list[tuple[float, RtpPacket]]] = []
        for arrival, packet in self.heard:
            if packet.marker or not spurts:
                spurts.append([])
            spurts[-1].append((arrival, packet))
        return spurts


@pytest.fixture
def ear() -> Iterator[Ear]:
    listener = Ear()
    yield listener
    listener.close()


@dataclass
class Demo:
    """``warmline demo`` serving SIP on a free port, and its database."""

    process: ServerProcess
    sip_port: int
    database: DatabaseUnderTest
    workdir: Path

    def sipp(
        self,
        scenario: str,
        *,
        number: str = "15550100",
        keys: dict[str, str] | None = None,
        pause_ms: int = 1000,
        timeout: int = 40,
    ) -> str:
        """Run one call of a scenario; its log (sipp's ``-trace_logs``) when it succeeded."""
        # sipp writes its logs next to the scenario file: run a copy in this test's directory.
        copy = self.workdir / scenario
        copy.write_bytes((SCENARIOS / scenario).read_bytes())
        command = [
            "sipp", f"127.0.0.1:{self.sip_port}", "-sf", str(copy), "-s", number, "-i", "127.0.0.1",
            "-p", str(free_udp_port()), "-mp", str(free_udp_port()), "-m", "1", "-d", str(pause_ms),
            "-nostdin", "-timeout", f"{timeout}s", "-timeout_error", "-trace_err", "-trace_logs",
        ]  # fmt: skip
        for name, value in (keys or {}).items():
            command += ["-key", name, value]
        done = subprocess.run(
            command, cwd=self.workdir, capture_output=True, timeout=timeout + 15, check=False
        )
        logs = "\n".join(p.read_text(errors="replace") for p in self.workdir.glob(f"{copy.stem}_*.log"))
        for path in self.workdir.glob(f"{copy.stem}_*.log"):
            path.unlink()
        assert done.returncode == 0, f"sipp failed ({done.returncode}):\n{logs}\n{self.process.log_tail()}"
        return logs

    def read(self) -> tuple[ConversationRow, list[tuple[str, str]], list[TransitionRow]]:
        """The one voice conversation: its row, its messages/events, its transitions."""

        async def load() -> tuple[ConversationRow, list[tuple[str, str]], list[TransitionRow]]:
            db = Database(self.database.url, InProcessBus(), schema=self.database.schema)
            try:
                async with db.reading() as session:
                    rows = list(
                        await session.scalars(
                            select(ConversationRow).where(ConversationRow.channel == "voice")
                        )
                    )
                    assert len(rows) == 1, [r.id for r in rows]
                    stored = await list_activities(session, rows[0].id)
                    transitions = list(
                        await session.scalars(
                            select(TransitionRow)
                            .where(TransitionRow.conversation_id == rows[0].id)
                            .order_by(TransitionRow.id)
                        )
                    )
            finally:
                await db.dispose()
            said = [
                (s.role.value, s.activity.text or s.activity.name or "")
                for s in stored
                if s.activity.type in ("message", "event")
            ]
            return rows[0], said, transitions

        return asyncio.run(load())

    def wait_closed(
        self, timeout: float = 10.0
    ) -> tuple[ConversationRow, list[tuple[str, str]], list[TransitionRow]]:
        deadline = time.monotonic() + timeout
        while True:
            row, said, transitions = self.read()
            if row.state == "closed" or time.monotonic() > deadline:
                return row, said, transitions
            time.sleep(0.1)  # the server closes it on its own schedule; nothing to await from here

    def publish(self, files: dict[str, str]) -> None:
        async def run() -> None:
            db = Database(self.database.url, InProcessBus(), schema=self.database.schema)
            try:
                async with db.transaction() as tx:
                    await do_publish_bot(tx, DEMO_BOT_ID, files, utc_now())
            finally:
                await db.dispose()

        asyncio.run(run())


@pytest.fixture
def demo(database: DatabaseUnderTest, tmp_path: Path) -> Iterator[Demo]:
    sip_port = free_udp_port()
    process = ServerProcess(
        database.env(),
        tmp_path / "run",
        args=("demo", "--directline-secret", TEST_SECRET, "--sip-port", str(sip_port)),
    )
    process.start()
    workdir = tmp_path / "sipp"
    workdir.mkdir()
    try:
        assert f"sip:15550100@127.0.0.1:{sip_port}" in process.log_path.read_text()
        yield Demo(process, sip_port, database, workdir)
    finally:
        process.stop()


def test_the_demo_number_answers_and_the_greeting_is_heard_in_full(demo: Demo, ear: Ear) -> None:
    expected = frames_of(MENU)
    demo.sipp("call_and_listen.xml", keys={"rtp_port": str(ear.port)}, pause_ms=expected * 20 + 1500)
    (greeting,) = ear.talkspurts()
    packets = [p for _, p in greeting]
    assert len(packets) == expected  # every frame of the prompt, nothing else
    assert {p.payload_type for p in packets} == {0} and all(len(p.payload) == 160 for p in packets)
    assert [(p.sequence - packets[0].sequence) & 0xFFFF for p in packets] == list(range(expected))
    assert all((b.timestamp - a.timestamp) & 0xFFFFFFFF == 160 for a, b in itertools.pairwise(packets))
    # Paced in real time: the prompt's ~7 s arrive over ~7 s, not in a burst.
    span = greeting[-1][0] - greeting[0][0]
    assert abs(span - (expected - 1) * 0.02) < 0.25, span
    row, said, _ = demo.wait_closed()
    assert row.state == "closed"
    assert said[0] == ("bot", MENU)


def test_key_9_says_goodbye_and_the_server_hangs_up(demo: Demo, ear: Ear) -> None:
    demo.sipp(
        "key_then_bye_from_server.xml",
        keys={"rtp_port": str(ear.port), "key_pcap": str(KEYS / "dtmf_2833_9.pcap")},
    )
    greeting, goodbye = ear.talkspurts()
    assert len(greeting) < frames_of(MENU) // 2  # the key cut the menu short (barge-in)
    assert len(goodbye) == frames_of(GOODBYE)  # the BYE came after the whole goodbye
    row, said, transitions = demo.wait_closed()
    assert row.state == "closed" and transitions[-1].reason == "the bot hung up"
    assert ("customer", "9") in said and said[-2:] == [("bot", GOODBYE), ("bot", "warmline.hang-up")]


def test_key_3_transfers_the_call_by_refer_to_the_allowed_number(demo: Demo, ear: Ear) -> None:
    logs = demo.sipp(
        "key_then_refer.xml",
        keys={"rtp_port": str(ear.port), "key_pcap": str(KEYS / "dtmf_2833_3.pcap")},
    )
    assert "REFER-TO 15550199 IN Refer-To: <sip:15550199@" in logs
    # The uninterruptible message was said in full before the REFER.
    assert len(ear.talkspurts()[-1]) == frames_of(TRANSFERRING)
    row, said, transitions = demo.wait_closed()
    assert row.state == "closed"
    assert ("bot", TRANSFERRING) in said and ("bot", "warmline.transfer-to-phone-number") in said
    assert transitions[-1].reason == "transferred to 15550199"


TRANSFER_ELSEWHERE = """kind: AdaptiveDialog
beginDialog:
  kind: OnConversationStart
  id: main
  actions:
    - kind: SendActivity
      id: hello
      activity: Let me put you through.
    - kind: TransferCallToPhoneNumber
      id: away
      TargetPhoneNumber: "15550123"
"""


def test_a_number_without_permission_is_refused_aloud_and_no_refer_is_sent(demo: Demo, ear: Ear) -> None:
    files = read_bot_folder(DEMO_BOT_FOLDER)
    del files["topics/VoiceMenu.yaml"]
    files["topics/ConversationStart.yaml"] = TRANSFER_ELSEWHERE
    demo.publish(files)
    expected = frames_of("Let me put you through.") + frames_of(CANT_TRANSFER)
    # sipp fails the call on any unexpected request, so a REFER would fail this scenario.
    demo.sipp("call_and_listen.xml", keys={"rtp_port": str(ear.port)}, pause_ms=expected * 20 + 2000)
    assert sum(len(s) for s in ear.talkspurts()) == expected
    row, said, transitions = demo.wait_closed()
    assert row.state == "closed" and ("system", CANT_TRANSFER) in said
    assert transitions[-1].reason == "the caller hung up"  # the call went on until the caller left


def test_an_unknown_number_gets_404(demo: Demo) -> None:
    demo.sipp("expect_not_found.xml", number="15550999")


def test_malformed_sip_gets_400_and_the_next_call_still_works(demo: Demo, ear: Ear) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.bind(("127.0.0.1", 0))
        raw.settimeout(5)
        host, port = raw.getsockname()
        raw.sendto(b"\x00\x01\x02 junk that is no SIP at all \xff\xfe", ("127.0.0.1", demo.sip_port))
        truncated = (
            f"INVITE sip:15550100@127.0.0.1:{demo.sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bKcut1\r\n"
            f"From: <sip:14255550100@{host}>;tag=cut\r\nTo: <sip:15550100@127.0.0.1>\r\n"
            "Call-ID: truncated-invite\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
            "Content-Length: 180\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127."
        )
        raw.sendto(truncated.encode(), ("127.0.0.1", demo.sip_port))
        answer = raw.recv(4096).decode()
    assert answer.startswith("SIP/2.0 400 Bad Request\r\n") and "Call-ID: truncated-invite" in answer
    assert "Content-Length says 180" in answer  # the Warning header says why
    demo.sipp("call_and_listen.xml", keys={"rtp_port": str(ear.port)}, pause_ms=500)
    assert ear.heard
