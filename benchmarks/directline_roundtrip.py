"""Direct Line turn latency and throughput, against a raw WebSocket echo on the same server.

Migrates a fresh store, seeds the demo widget with a known secret and no published bot (so its
chats go to the built-in echo bot), starts ``warmline serve`` with the ``/bench/echo`` baseline
switched on as a subprocess on 127.0.0.1, then runs N clients in this
process that behave like Web Chat: start a conversation with the secret, open its ``streamUrl``
WebSocket, and do M turns — POST a message carrying ``channelData.clientActivityID``, wait for the
bot reply whose ``replyToId`` is the id the POST returned. A turn's latency runs from the start of
the POST to the arrival of that reply on the socket. The same N clients then do M round trips each
against ``/bench/echo``. Every activity is persisted; the run checks that afterwards.

Figures are only meaningful relative to each other: client and server share the machine, so the
ratios (turn ÷ echo) are what the goals are stated in. See ``docs/performance.md``.

    .venv/bin/python benchmarks/directline_roundtrip.py --clients 1 --turns 500
    .venv/bin/python benchmarks/directline_roundtrip.py --clients 200 --turns 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from warmline.demo import seed_demo
from warmline.events import InProcessBus
from warmline.runtime import utc_now
from warmline.store import Database
from warmline.store.migrate import upgrade_database

SECRET = "bench-directline-secret"
READY_TIMEOUT = 60.0
REPLY_TIMEOUT = 60.0
# Goals of issue 2: at N=200, turns/s >= 1/10 of echo round trips/s; at N=1, turn p50 <= 10x echo p50.
THROUGHPUT_GOAL = 0.1
LATENCY_GOAL = 10.0


@dataclass
class Phase:
    """What one measured phase produced."""

    name: str
    unit: str
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.wall if self.wall else 0.0

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile in milliseconds."""
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000


# ---------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def warmline_command() -> str:
    beside = Path(sys.executable).parent / "warmline"
    found = str(beside) if beside.exists() else shutil.which("warmline")
    if found is None:
        raise SystemExit("The 'warmline' command is not installed; run 'make install' first.")
    return found


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to show where the cycles went."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for the run, dropped afterwards."""
    import asyncpg  # type: ignore[import-untyped]  # no stubs; only PostgreSQL runs need it

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    schema = f"bench_{secrets.token_hex(6)}"

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        asyncio.run(run(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def seed(url: str, schema: str | None) -> None:
    """Migrate, and seed the demo widget without a bot: its conversations get the echo bot."""

    async def run() -> None:
        db = Database(url, InProcessBus(), schema=schema)
        try:
            await upgrade_database(db.engine)
            await seed_demo(db, SECRET, utc_now())
        finally:
            await db.dispose()

    asyncio.run(run())


@contextlib.contextmanager
def warmline_server(
    database_url: str | None, port: int, workdir: Path, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``warmline serve`` with the echo baseline on; killed on the way out, whatever happened."""
    with contextlib.ExitStack() as stack:
        env = {
            **os.environ,
            "WARMLINE_BENCH_ECHO": "1",
            "WARMLINE_SECRET_KEY": secrets.token_urlsafe(32),
            "WARMLINE_UPLOAD_DIR": str(workdir / "uploads"),
            "WARMLINE_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{workdir / 'warmline.db'}",
        }
        if database_url and database_url.startswith("postgresql"):
            env["WARMLINE_DATABASE_SCHEMA"] = stack.enter_context(postgres_schema(database_url))
        seed(env["WARMLINE_DATABASE_URL"], env.get("WARMLINE_DATABASE_SCHEMA"))
        log = stack.enter_context(log_path.open("wb"))
        command = [warmline_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
        on_linux = sys.platform == "linux"
        server = subprocess.Popen(
            command, env=env, stdout=log, stderr=log, preexec_fn=die_with_parent if on_linux else None
        )
        try:
            wait_until_ready(server, port, log_path)
            yield server
        except Exception:
            # The log may live in the temp dir that is about to go: show its end with the error.
            stop(server)
            tail = log_path.read_text(errors="replace").splitlines()[-60:]
            print("--- end of the server log ---", *tail, "---", sep="\n", file=sys.stderr)
            raise
        finally:
            stop(server)


def die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM the server if this benchmark dies without cleaning up."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def wait_until_ready(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"warmline exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)  # nothing to await on a process we do not control; poll the port
    raise SystemExit(f"warmline did not listen on port {port} within {READY_TIMEOUT:.0f} s")


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@contextlib.contextmanager
def profiled(pid: int, output: str | None) -> Iterator[None]:
    """Record the server with py-spy (``pip install py-spy``) for the duration of the block."""
    if output is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(pid), "--rate", "250", "--threads", "--gil", "--output", output]
    kind = {".txt": "raw", ".json": "speedscope"}.get(Path(output).suffix, "flamegraph")
    recorder = subprocess.Popen([*command, "--format", kind], stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            recorder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait(timeout=10)


# ---------------------------------------------------------------------------- clients


class WebChatClient:
    """One Web Chat: a Direct Line conversation, its stream socket, and turns over them."""

    def __init__(self, http: aiohttp.ClientSession, base: str, number: int) -> None:
        self.http = http
        self.domain = f"{base}/v3/directline"
        self.number = number
        self.user_id = f"dl_bench{number:05d}"
        self.conversation_id = ""
        self.token = ""
        self.socket: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None
        # Replies can beat the POST's response (the server commits the bot's answer before it
        # answers the POST), so arrivals are recorded by replyToId whichever comes first.
        self.arrived: dict[str, float] = {}
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.sent = 0

    async def connect(self) -> None:
        async with self.http.post(
            f"{self.domain}/conversations",
            headers={"Authorization": f"Bearer {SECRET}"},
            json={"user": {"id": self.user_id}},
        ) as response:
            if response.status != 201:
                raise RuntimeError(f"start conversation: {response.status} {await response.text()}")
            body = await response.json()
        self.conversation_id, self.token = body["conversationId"], body["token"]
        self.socket = await self.http.ws_connect(body["streamUrl"], autoping=False, max_msg_size=0)
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.socket is not None
        async for message in self.socket:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            if not message.data:
                continue  # keep-alive
            now = time.perf_counter()
            for activity in json.loads(message.data)["activities"]:
                reply_to = activity.get("replyToId")
                if reply_to is None:
                    continue
                future = self.waiting.pop(reply_to, None)
                if future is None:
                    self.arrived[reply_to] = now
                elif not future.done():
                    future.set_result(now)

    async def turn(self) -> float:
        """One message and its reply; returns seconds from POST start to reply received."""
        self.sent += 1
        body = {
            "type": "message",
            "text": f"Where is my order number {self.number}-{self.sent}?",
            "textFormat": "plain",
            "locale": "en-US",
            "from": {"id": self.user_id, "role": "user"},
            "channelData": {"clientActivityID": f"{secrets.token_hex(5)}{self.sent}"},
            "entities": [{"type": "ClientCapabilities", "requiresBotState": True, "supportsTts": True}],
        }
        started = time.perf_counter()
        async with self.http.post(
            f"{self.domain}/conversations/{self.conversation_id}/activities",
            headers={"Authorization": f"Bearer {self.token}", "x-ms-bot-agent": "DirectLine/3.0 bench"},
            json=body,
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"post activity: {response.status} {await response.text()}")
            activity_id = (await response.json())["id"]
        if activity_id in self.arrived:
            return self.arrived.pop(activity_id) - started
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[activity_id] = future
        return await asyncio.wait_for(future, REPLY_TIMEOUT) - started

    async def stored_activity_count(self) -> int:
        """How many activities the store holds for this conversation (paging the REST history)."""
        count, watermark = 0, ""
        while True:
            async with self.http.get(
                f"{self.domain}/conversations/{self.conversation_id}/activities",
                params={"watermark": watermark},
                headers={"Authorization": f"Bearer {self.token}"},
            ) as response:
                page = await response.json()
            if not page["activities"]:
                return count
            count += len(page["activities"])
            watermark = page["watermark"]

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self.reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self.reader, 10)


class EchoClient:
    """One raw WebSocket on ``/bench/echo``: the cheapest round trip this server can do."""

    def __init__(self, http: aiohttp.ClientSession, base: str, payload: str) -> None:
        self.http = http
        self.url = base.replace("http://", "ws://") + "/bench/echo"
        self.payload = payload
        self.socket: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self) -> None:
        self.socket = await self.http.ws_connect(self.url, autoping=False, max_msg_size=0)

    async def turn(self) -> float:
        assert self.socket is not None
        started = time.perf_counter()
        await self.socket.send_str(self.payload)
        message = await asyncio.wait_for(self.socket.receive(), REPLY_TIMEOUT)
        if message.type is not aiohttp.WSMsgType.TEXT or message.data != self.payload:
            raise RuntimeError(f"echo returned {message.type} {message.data!r:.80}")
        return time.perf_counter() - started

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()


async def measure(
    phase: Phase,
    turns: list[Callable[[], Awaitable[float]]],
    count: int,
    warmup: int,
    server_pid: int,
) -> None:
    """Warm every client up, then run ``count`` turns on each at once and time the lot."""

    async def run(turn: Callable[[], Awaitable[float]], n: int, into: list[float] | None) -> None:
        for _ in range(n):
            latency = await turn()
            if into is not None:
                into.append(latency)

    await asyncio.gather(*(run(t, warmup, None) for t in turns))
    cpu, server_cpu, started = time.process_time(), process_cpu_seconds(server_pid), time.perf_counter()
    await asyncio.gather(*(run(t, count, phase.latencies) for t in turns))
    phase.wall = time.perf_counter() - started
    phase.client_cpu = time.process_time() - cpu
    phase.server_cpu = process_cpu_seconds(server_pid) - server_cpu


async def benchmark(args: argparse.Namespace, base: str, server_pid: int) -> tuple[Phase, Phase]:
    # One pooled HTTP session with no connection cap, so N clients never queue in the client. Idle
    # connections are dropped before uvicorn's 5 s keep-alive ends: reusing one the server is
    # closing at that moment fails a POST with a reset (browsers retry; this client would not).
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=2.0)
    timeout = aiohttp.ClientTimeout(total=REPLY_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        chats = [WebChatClient(http, base, n) for n in range(args.clients)]
        await asyncio.gather(*(c.connect() for c in chats))
        turns = Phase("Direct Line turn", "turns/s")
        try:
            await measure(turns, [c.turn for c in chats], args.turns, args.warmup, server_pid)
            # Greeting + (customer message + bot reply) per turn, all in the store.
            expected = 1 + 2 * (args.warmup + args.turns)
            counts = await asyncio.gather(*(c.stored_activity_count() for c in chats))
            short = [n for n in counts if n != expected]
            if short:
                raise SystemExit(
                    f"{len(short)} conversations did not store {expected} activities: {short[:5]}"
                )
        finally:
            await asyncio.gather(*(c.close() for c in chats))

        payload = json.dumps({"type": "message", "text": "Where is my order number 1-1?", "pad": "x" * 200})
        echoes = [EchoClient(http, base, payload) for _ in range(args.clients)]
        await asyncio.gather(*(e.connect() for e in echoes))
        echo = Phase("WebSocket echo", "rt/s")
        try:
            await measure(echo, [e.turn for e in echoes], args.turns, args.warmup, server_pid)
        finally:
            await asyncio.gather(*(e.close() for e in echoes))
    return turns, echo


# ---------------------------------------------------------------------------- report


def report(args: argparse.Namespace, backend: str, turns: Phase, echo: Phase) -> str:
    lines = [
        f"Warmline Direct Line round trip: {args.clients} client(s) x {args.turns} turns "
        f"(+{args.warmup} warm-up), {backend}, {os.cpu_count()} CPU(s) shared by client and server",
        "",
        f"{'':18}{'ops':>7}{'p50 ms':>9}{'p99 ms':>9}{'ops/s':>10}"
        f"{'client CPU ms/op':>18}{'server CPU ms/op':>18}",
    ]
    for phase in (turns, echo):
        lines.append(
            f"{phase.name:18}{phase.count:>7}{phase.percentile(0.5):>9.2f}{phase.percentile(0.99):>9.2f}"
            f"{phase.rate:>10.1f}{phase.client_cpu / phase.count * 1000:>18.3f}"
            f"{phase.server_cpu / phase.count * 1000:>18.3f}"
        )
    throughput = turns.rate / echo.rate
    latency = turns.percentile(0.5) / echo.percentile(0.5)
    throughput_met = "met" if throughput >= THROUGHPUT_GOAL else "NOT met"
    latency_met = "met" if latency <= LATENCY_GOAL else "NOT met"
    lines += [
        "",
        f"turns/s / echo rt/s = {throughput:.3f}  (goal at N=200: >= {THROUGHPUT_GOAL}: "
        + (
            throughput_met
            if args.clients == 200
            else f"would be {throughput_met}; this run has N={args.clients}"
        )
        + ")",
        f"turn p50 / echo p50 = {latency:.2f}  (goal at N=1: <= {LATENCY_GOAL:g}: "
        + (latency_met if args.clients == 1 else f"would be {latency_met}; this run has N={args.clients}")
        + ")",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=1, help="concurrent Web Chat clients (N)")
    parser.add_argument("--turns", type=int, default=500, help="measured turns per client (M)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured turns per client first")
    parser.add_argument(
        "--database-url",
        help="store URL (default: a fresh SQLite file in a temp dir); for PostgreSQL, "
        "postgresql+asyncpg://postgres@127.0.0.1:5432/test runs in a fresh schema, dropped afterwards",
    )
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--server-log", type=Path, help="keep the server's output here (default: discarded)")
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="sample the server with py-spy while clients run: a flame graph (.svg), collapsed stacks "
        "(.txt) or speedscope (.json)",
    )
    args = parser.parse_args(argv)
    if args.clients < 1 or args.turns < 1 or args.warmup < 0:
        parser.error("--clients and --turns must be at least 1, --warmup at least 0")
    return args


def interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # SIGTERM (and SIGINT, even where a shell ignored it) unwind normally, so the server is stopped.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)
    port = args.port or free_port()
    backend = "PostgreSQL" if args.database_url and args.database_url.startswith("postgresql") else "SQLite"
    try:
        import uvloop

        runner: Callable[..., Any] = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        with (
            tempfile.TemporaryDirectory(prefix="warmline-bench-") as tmp,
            warmline_server(
                args.database_url, port, Path(tmp), args.server_log or Path(tmp) / "server.log"
            ) as server,
            profiled(server.pid, args.profile),
        ):
            turns, echo = runner(benchmark(args, f"http://127.0.0.1:{port}", server.pid))
    except KeyboardInterrupt as stop:
        raise SystemExit(f"Interrupted ({stop}); the server was stopped.") from None
    print(report(args, backend, turns, echo))


if __name__ == "__main__":
    main()
