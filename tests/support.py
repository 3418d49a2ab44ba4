"""Test support: databases on both backends, and a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import asyncpg
import httpx
import uvicorn

from warmline.app import create_app
from warmline.config import Settings
from warmline.demo import seed_demo
from warmline.events import InProcessBus
from warmline.runtime import utc_now
from warmline.store import Database
from warmline.store.migrate import upgrade_database

PG_URL_ENV = "WARMLINE_TEST_DATABASE_URL"
TEST_SECRET = "test-directline-secret"
# The console script installed next to the interpreter running the tests (.venv/bin/warmline).
WARMLINE_COMMAND = Path(sys.executable).with_name("warmline")


@dataclass(frozen=True)
class DatabaseUnderTest:
    """Where a test's data lives: a URL and, on PostgreSQL, a schema of its own."""

    url: str
    schema: str | None = None

    @property
    def backend(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"

    def settings(self, **overrides: object) -> Settings:
        """Settings pointing at this database."""
        values: dict[str, object] = {
            "database_url": self.url,
            "database_schema": self.schema,
            "secret_key": "test-secret-key-0123456789-abcdefghijkl",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    def env(self) -> dict[str, str]:
        """Environment variables that point a ``warmline`` subprocess at this database."""
        env = {
            "WARMLINE_DATABASE_URL": self.url,
            "WARMLINE_SECRET_KEY": "test-secret-key-0123456789-abcdefghijkl",
        }
        if self.schema:
            env["WARMLINE_DATABASE_SCHEMA"] = self.schema
        return env


def backends() -> list[str]:
    """SQLite always; PostgreSQL too when ``WARMLINE_TEST_DATABASE_URL`` is set."""
    return ["sqlite", "postgresql"] if os.environ.get(PG_URL_ENV) else ["sqlite"]


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@contextlib.contextmanager
def provision_database(backend: str, tmp_path: Path) -> Iterator[DatabaseUnderTest]:
    """A fresh, migrated database for one test, removed afterwards."""
    if backend == "sqlite":
        database = DatabaseUnderTest(f"sqlite+aiosqlite:///{tmp_path / 'warmline.db'}")
        asyncio.run(_migrate(database))
        yield database
        return
    url = os.environ[PG_URL_ENV]
    schema = f"wl_test_{secrets.token_hex(6)}"
    asyncio.run(_pg_execute(url, f'CREATE SCHEMA "{schema}"'))
    try:
        database = DatabaseUnderTest(url, schema)
        asyncio.run(_migrate(database))
        yield database
    finally:
        asyncio.run(_pg_execute(url, f'DROP SCHEMA "{schema}" CASCADE'))


async def _pg_execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(_pg_dsn(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _migrate(database: DatabaseUnderTest) -> None:
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        await upgrade_database(db.engine)
        await seed_demo(db, TEST_SECRET, utc_now())
    finally:
        await db.dispose()


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a background thread; stops when the test ends."""

    def __init__(self, settings: Settings, **app_options: object) -> None:
        self.port = free_port()
        self.app = create_app(settings, **app_options)  # type: ignore[arg-type]
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", ws_ping_interval=None
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def domain(self) -> str:
        """The Direct Line domain clients are given."""
        return f"{self.url}/v3/directline"

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class ServerProcess:
    """``warmline serve`` as a child process, so a test can SIGKILL it and start it again.

    Output goes to a log file in ``cwd`` (a pipe nobody reads could fill up and stall the server);
    ``start`` returns once ``/healthz`` answers, and ``stop`` always leaves no process behind.
    """

    def __init__(
        self,
        env: dict[str, str],
        cwd: Path,
        *,
        port: int | None = None,
        args: tuple[str, ...] = ("serve",),
    ) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, **env}
        self.cwd = cwd
        self.args = args
        self.log_path = cwd / f"warmline-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def domain(self) -> str:
        """The Direct Line domain clients are given."""
        return f"{self.url}/v3/directline"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Start the process (again, on the same port) and wait until it serves."""
        if self.running:
            raise RuntimeError("the server process is already running")
        self._close_log()
        self.cwd.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        command = [str(WARMLINE_COMMAND), *self.args, "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"warmline exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.05)  # nothing to await: readiness is only observable by asking
        self.kill()
        raise RuntimeError(f"warmline did not answer /healthz within {timeout} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing; what was committed must survive."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Ask the process to stop (SIGTERM), killing it if it does not within 10 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's output, for failure messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
