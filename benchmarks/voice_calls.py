"""Voice: how many concurrent calls one server process carries with steady 20 ms RTP pacing.

``warmline demo`` serves SIP (with ``WARMLINE_VOICE_STATS=1``, so ``/voice/stats`` reports the
server's own RTP send intervals); sipp (Debian sip-tester) places N calls to the demo number at
once. Each call hears the phone menu for a while, presses 9 (an RFC 4733 recording from
sip-tester), hears the goodbye and is hung up by the server (BYE). Our RTP for all calls goes to one
sink socket here, so only the sender's side is measured.

For each N of a ladder the benchmark reports failed calls, the peak of concurrent calls the server
held, the RTP send-interval jitter (|interval - 20 ms|: p50, p99, max) and the server's CPU use. The
result is the largest N with no failed call and p99 jitter under 10 ms — the goal is at least 100
concurrent calls per core. The server can be pinned to one CPU (``--server-cpu``) so "per core" is
literal; sipp then runs on the others.

    .venv/bin/python benchmarks/voice_calls.py
    .venv/bin/python benchmarks/voice_calls.py --calls 50 100 200 300 --hear 4
    .venv/bin/python benchmarks/voice_calls.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

JITTER_GOAL_MS = 10.0
CALLS_PER_CORE_GOAL = 100
KEY_9 = Path("/usr/share/sip-tester/dtmf_2833_9.pcap")

# Each call: INVITE with our sink as its media address, ACK, listen for -d ms, press 9 (the demo
# menu's "hang up"), then expect the server's BYE once the goodbye has been said.
SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="hear the menu, press 9">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:1425555[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [local_ip]
      t=0 0
      m=audio [rtp_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:1425555[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause/>
  <nop><action><exec play_pcap_audio="[key_pcap]"/></action></nop>
  <recv request="BYE" timeout="30000"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Sink:
    """One UDP port that every call's RTP goes to; drained so the kernel never pushes back."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.packets = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _drain(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.sock.recv(2048)
                self.packets += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@contextlib.contextmanager
def database(url: str | None) -> Iterator[dict[str, str]]:
    """Environment for a fresh SQLite file, or a throw-away schema on PostgreSQL."""
    if url is None:
        with tempfile.TemporaryDirectory() as folder:
            yield {"WARMLINE_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/voice-bench.db"}
        return
    schema = f"voice_bench_{secrets.token_hex(4)}"
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")

    async def execute(statement: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(execute(f'CREATE SCHEMA "{schema}"'))
    try:
        yield {"WARMLINE_DATABASE_URL": url, "WARMLINE_DATABASE_SCHEMA": schema}
    finally:
        asyncio.run(execute(f'DROP SCHEMA "{schema}" CASCADE'))


@dataclass
class Server:
    """``warmline demo`` with SIP, voice stats, and a wide RTP port range."""

    process: subprocess.Popen[bytes]
    http: str
    sip_port: int
    log: Path

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.http}/voice/stats", timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def reset(self) -> None:
        httpx.delete(f"{self.http}/voice/stats", timeout=10).raise_for_status()


@contextlib.contextmanager
def server(env: dict[str, str], workdir: Path, cpu: int | None) -> Iterator[Server]:
    http_port, sip_port = free_port(socket.SOCK_STREAM), free_port()
    warmline = Path(sys.executable).with_name("warmline")
    command = [str(warmline), "demo", "--port", str(http_port), "--sip-port", str(sip_port)]
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu), *command]
    log = workdir / "server.log"
    environment = {
        **os.environ,
        **env,
        "WARMLINE_VOICE_STATS": "1",
        "WARMLINE_RTP_PORT_MIN": "20000",
        "WARMLINE_RTP_PORT_MAX": "29999",
        "WARMLINE_ROUTING_WORKER": "0",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=workdir, env=environment, stdout=out, stderr=subprocess.STDOUT
        )
    running = Server(process, f"http://127.0.0.1:{http_port}", sip_port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"warmline exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{running.http}/voice/stats", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"warmline did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)  # polling a child process's readiness; there is nothing to await
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Round:
    calls: int
    successful: int
    failed: int
    peak: int
    packets: int
    p50: float
    p99: float
    worst: float
    cpu: float
    seconds: float

    @property
    def passed(self) -> bool:
        return self.failed == 0 and self.successful == self.calls and self.p99 < JITTER_GOAL_MS


def run_round(
    running: Server, workdir: Path, sink: Sink, calls: int, hear: float, rate: int, cpu: int | None
) -> Round:
    scenario = workdir / "hear_and_press.xml"
    scenario.write_text(SCENARIO)
    running.reset()
    command = [
        "sipp", f"127.0.0.1:{running.sip_port}", "-sf", str(scenario), "-s", "15550100",
        "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(free_port()),
        "-m", str(calls), "-l", str(calls), "-r", str(rate), "-d", str(int(hear * 1000)),
        "-key", "rtp_port", str(sink.port), "-key", "key_pcap", str(KEY_9),
        "-max_socket", "2048", "-nostdin", "-timeout", f"{int(hear + 90)}s", "-trace_err",
    ]  # fmt: skip
    if cpu is not None and shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        others = ",".join(str(c) for c in range(os.cpu_count() or 1) if c != cpu)
        command = ["taskset", "-c", others, *command]
    cpu_before, started = running.cpu_seconds(), time.monotonic()
    done = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=hear + 180, check=False
    )
    seconds = time.monotonic() - started
    cpu = running.cpu_seconds() - cpu_before
    successful = _sipp_count(done.stdout, "Successful call")
    failed = _sipp_count(done.stdout, "Failed call")
    deadline = time.monotonic() + 30
    stats = running.stats()
    while stats["calls"] and time.monotonic() < deadline:  # the last BYEs' transactions finishing
        time.sleep(0.2)
        stats = running.stats()
    media = stats["media"]
    return Round(
        calls, successful, failed, stats["peak_calls"], media["packets"],
        media["jitter_p50_ms"], media["jitter_p99_ms"], media["jitter_max_ms"], cpu / seconds, seconds,
    )  # fmt: skip


def _sipp_count(screen: str, label: str) -> int:
    """The cumulative column of sipp's last statistics screen."""
    found = re.findall(rf"{label}\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    return int(found[-1]) if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, nargs="+", default=[25, 50, 100, 150, 200, 300])
    parser.add_argument(
        "--hear", type=float, default=4.0, help="seconds each caller listens before pressing 9"
    )
    parser.add_argument("--rate", type=int, default=100, help="new calls per second while ramping up")
    parser.add_argument(
        "--server-cpu", type=int, default=0, help="pin the server to this CPU (-1: no pinning)"
    )
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    for program in ("sipp", "espeak-ng", "sox"):
        if shutil.which(program) is None:
            raise SystemExit(f"{program} is missing: apt-get install sip-tester espeak-ng sox")
    cpu = None if args.server_cpu < 0 else args.server_cpu
    pinned = f"on CPU {cpu}" if cpu is not None else "unpinned"
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; server {pinned}; database {backend}; "
        f"each caller listens {args.hear:g} s, presses 9"
    )
    print(f"{'calls':>6} {'ok':>5} {'failed':>6} {'peak':>5} {'RTP pkts':>9} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'server CPU':>10} {'wall s':>7}")  # fmt: skip
    best = 0
    sink = Sink()
    try:
        with tempfile.TemporaryDirectory() as folder, database(args.database_url) as env:
            workdir = Path(folder)
            with server(env, workdir, cpu) as running:
                for calls in args.calls:
                    result = run_round(running, workdir, sink, calls, args.hear, args.rate, cpu)
                    mark = "ok" if result.passed else "--"
                    print(
                        f"{result.calls:>6} {result.successful:>5} {result.failed:>6} {result.peak:>5} "
                        f"{result.packets:>9} {result.p50:>7.2f} {result.p99:>7.2f} {result.worst:>7.1f} "
                        f"{result.cpu * 100:>9.0f}% {result.seconds:>7.1f}  {mark}"
                    )
                    if result.passed:
                        best = max(best, result.peak)
    finally:
        sink.close()
    verdict = "meets" if best >= CALLS_PER_CORE_GOAL else "misses"
    print(
        f"\nMost concurrent calls with no failure and RTP jitter p99 < {JITTER_GOAL_MS:g} ms: {best} "
        f"(one server process{', one CPU' if cpu is not None else ''}; {verdict} the goal of "
        f"{CALLS_PER_CORE_GOAL} per core)"
    )


if __name__ == "__main__":
    main()
