"""``create_app``: the one place that wires settings, store, bus, bot and routes together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.routing import WebSocketRoute

from warmline import __version__, bench
from warmline.admin import api as admin_api
from warmline.admin import pages as admin_pages
from warmline.bot import Bot, EchoBot
from warmline.bot.dialog import HttpClient
from warmline.bot.http import HttpxClient
from warmline.bot.publishing import BotLibrary
from warmline.bot.topic_bot import TopicBot
from warmline.channels.botconnector import api as botconnector_api
from warmline.channels.botconnector.outbound import ExternalBot, LearnServiceUrl, ServiceUrl
from warmline.channels.botconnector.status import HandoffStatusNotifier
from warmline.channels.directline import api as directline_api
from warmline.channels.directline import stream as directline_stream
from warmline.channels.directline.errors import DirectLineError
from warmline.channels.directline.tokens import TokenIssuer
from warmline.channels.voice import server as voice_server
from warmline.channels.widget import api as widget_api
from warmline.channels.widget.registry import list_widgets
from warmline.config import Settings
from warmline.cors import BrowserCORSMiddleware, OriginPolicy
from warmline.events import InProcessBus
from warmline.events.redis import RedisBus
from warmline.routing import api as routing_api
from warmline.routing.worker import RoutingWorker
from warmline.runtime import Runtime, utc_now
from warmline.store import Database
from warmline.workspace import api as workspace_api
from warmline.workspace import pages as workspace_pages
from warmline.workspace import stream as workspace_stream

WIDGET_STATIC = Path(__file__).parent / "channels" / "widget" / "static"
ORIGIN_REFRESH_SECONDS = 5.0


async def refresh_origins(runtime: Runtime, policy: OriginPolicy) -> None:
    """Reload widget origins, so a widget saved by another process is honoured within seconds."""
    async with runtime.db.reading() as session:
        widgets = await list_widgets(session)
    policy.update_widgets(p for w in widgets for p in w.allowed_origins)


def create_app(
    settings: Settings | None = None,
    *,
    bot: Bot | None = None,
    clock: Callable[[], datetime] = utc_now,
    bot_http: HttpClient | None = None,
) -> FastAPI:
    """Build the ASGI application for one process (``bot_http``: outbound to external bots)."""
    settings = settings or Settings()
    # One process: events stay in memory. Several: Redis carries them (the store stays the truth).
    bus: InProcessBus | RedisBus = RedisBus(settings.redis_url) if settings.redis_url else InProcessBus()
    db = Database(settings.database_url, bus, schema=settings.database_schema)
    http = HttpxClient()
    library = BotLibrary(db, http=http)
    service_url = ServiceUrl(settings.public_base_url)
    external = ExternalBot(library, bot_http or http, service_url, settings.secret_key, clock)
    handoff_status = HandoffStatusNotifier(db, bus, external, clock)
    # Conversations pinned to a published bot run its topics (or, for an external bot, go to its
    # endpoint); the others get `bot` (echo by default).
    topics = TopicBot(db, library, fallback=bot or EchoBot(), external=external)
    runtime = Runtime(settings=settings, db=db, bus=bus, bot=topics, clock=clock)
    policy = OriginPolicy(settings.allowed_origins)
    # The SIP server (voice channel) runs in this process's event loop when a port is configured.
    voice = (
        voice_server.create_switchboard(settings, db=db, bus=bus, bot=topics, library=library, clock=clock)
        if settings.sip_port is not None
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async def keep_fresh() -> None:
            while True:
                await asyncio.sleep(ORIGIN_REFRESH_SECONDS)
                with contextlib.suppress(Exception):
                    await refresh_origins(runtime, policy)

        if isinstance(bus, RedisBus):
            await bus.start()
        await refresh_origins(runtime, policy)
        tasks = [asyncio.create_task(keep_fresh()), asyncio.create_task(handoff_status.run())]
        if settings.routing_worker:
            tasks.append(asyncio.create_task(RoutingWorker(db, clock).run()))
        if voice is not None:
            await voice.start()
        try:
            yield
        finally:
            if voice is not None:
                await voice.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await http.close()
            if isinstance(bus, RedisBus):
                await bus.stop()
            await runtime.db.dispose()

    app = FastAPI(
        title="Warmline",
        version=__version__,
        summary="Bots that hand conversations to live agents, warm.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.tokens = TokenIssuer(settings.secret_key, settings.token_lifetime_seconds)
    app.state.origin_policy = policy
    app.state.voice = voice
    app.state.botconnector = external
    app.state.handoff_status = handoff_status
    app.add_middleware(BrowserCORSMiddleware, policy=lambda: policy)
    if service_url.learning:
        app.add_middleware(LearnServiceUrl, service_url=service_url)

    @app.exception_handler(DirectLineError)
    async def direct_line_error(_: Request, error: DirectLineError) -> Response:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:5])
        return JSONResponse(
            {"error": {"code": "BadArgument", "message": f"Invalid request: {problems}."}},
            status_code=400,
        )

    app.include_router(directline_api.router)
    app.include_router(directline_stream.router)
    app.include_router(botconnector_api.router)
    app.include_router(widget_api.router)
    app.include_router(workspace_pages.router)
    app.include_router(workspace_api.router)
    app.include_router(workspace_stream.router)
    app.include_router(routing_api.router)
    app.mount("/widgets/static", StaticFiles(directory=WIDGET_STATIC), name="widget-static")
    app.mount("/workspace/static", StaticFiles(directory=workspace_pages.STATIC), name="workspace-static")
    app.include_router(admin_api.router)
    app.include_router(admin_pages.router)
    app.mount("/admin/static", StaticFiles(directory=admin_pages.STATIC), name="admin-static")
    if settings.voice_stats:
        app.include_router(voice_server.stats_router)
    if settings.bench_echo:
        app.router.routes.append(WebSocketRoute(bench.ECHO_PATH, bench.echo))

    @app.get("/healthz", tags=["Operations"])
    async def health() -> JSONResponse:
        """Liveness, version, and whether the database and the event bus are reachable (503 if not)."""
        database_ok = True
        try:
            async with runtime.db.reading() as session:
                await session.execute(text("SELECT 1"))
        except Exception:
            database_ok = False
        events = bus.health() if isinstance(bus, RedisBus) else {"backend": "in-process", "connected": True}
        ok = database_ok and bool(events["connected"])
        body = {
            "status": "ok" if ok else "degraded",
            "version": __version__,
            "database": {"connected": database_ok},
            "events": events,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return (
            "<!doctype html><title>Warmline</title><h1>Warmline</h1><ul>"
            '<li><a href="/widgets/demo/try">Try the demo chat widget</a></li>'
            '<li><a href="/widgets/demo/try?mode=bot-only">Bot-only test embed</a></li>'
            '<li><a href="/workspace">Agent workspace</a></li>'
            '<li><a href="/admin">Administration</a></li>'
            '<li><a href="/docs">API documentation</a></li></ul>'
        )

    return app
