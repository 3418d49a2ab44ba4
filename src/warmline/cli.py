"""The ``warmline`` command: serve, demo, database and widget tasks."""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from warmline.app import create_app
from warmline.config import Settings
from warmline.demo import DEMO_WIDGET_ID, demo_sign_in_token, seed_demo
from warmline.events import InProcessBus
from warmline.runtime import utc_now
from warmline.store import Database
from warmline.store.migrate import upgrade_database

app = typer.Typer(help="Warmline: bots that hand conversations to live agents, warm.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema tasks.", no_args_is_help=True)
widget_app = typer.Typer(help="Chat widget tasks.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(widget_app, name="widget")

Host = Annotated[str, typer.Option(help="Address to listen on (loopback by default).")]
Port = Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)]


def _prepare_store(settings: Settings) -> None:
    if settings.database_url.startswith("sqlite"):
        path = settings.database_url.split("///", 1)[-1]
        Path(path).parent.mkdir(parents=True, exist_ok=True)

    async def upgrade() -> None:
        db = Database(settings.database_url, InProcessBus(), schema=settings.database_schema)
        try:
            await upgrade_database(db.engine)
        finally:
            await db.dispose()

    asyncio.run(upgrade())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to the configured database."""
    settings = Settings()
    _prepare_store(settings)
    typer.echo(f"Database is up to date: {settings.database_url}")


def _serve(settings: Settings, host: str, port: int) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        ws_ping_interval=None,
        timeout_graceful_shutdown=3,
    )


@app.command()
def serve(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Migrate the database, then serve HTTP and WebSocket."""
    settings = Settings()
    _prepare_store(settings)
    _serve(settings, host, port)


@app.command()
def demo(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    directline_secret: Annotated[
        str | None,
        typer.Option(help="Direct Line secret of the demo widget (random when omitted)."),
    ] = None,
) -> None:
    """Migrate, seed the demo widget, print its URLs and secrets, and serve."""
    settings = Settings()
    _prepare_store(settings)
    secret = directline_secret or secrets.token_urlsafe(24)

    async def seed() -> None:
        db = Database(settings.database_url, InProcessBus(), schema=settings.database_schema)
        try:
            await seed_demo(db, secret, utc_now())
        finally:
            await db.dispose()

    asyncio.run(seed())
    base = settings.public_base_url or f"http://{host}:{port}"
    sso = demo_sign_in_token("demo-user-1", "Dana Demo", utc_now())
    typer.echo(
        "\n".join(
            [
                "",
                "Warmline demo is starting.",
                f"  Try the chat widget:     {base}/widgets/{DEMO_WIDGET_ID}/try",
                f"  Bot-only test embed:     {base}/widgets/{DEMO_WIDGET_ID}/try?mode=bot-only",
                f"  Embed code:              {base}/widgets/{DEMO_WIDGET_ID}/embed",
                f"  Agent workspace:         {base}/workspace (placeholder)",
                f"  API documentation:       {base}/docs",
                f"  Direct Line domain:      {base}/v3/directline",
                f"  Direct Line secret:      {secret}",
                f"  Database:                {settings.database_url}",
                "  Demo SSO token (host page's authToken, valid 1 h, user 'Dana Demo'):",
                f"    {sso}",
                "",
            ]
        )
    )
    _serve(settings, host, port)


@widget_app.command("sso-token")
def sso_token(
    subject: Annotated[str, typer.Option(help="User id (sub claim).")] = "demo-user-1",
    name: Annotated[str, typer.Option(help="Display name (name claim).")] = "Dana Demo",
) -> None:
    """Print a sign-in token the demo widget accepts, as a host page's login would issue."""
    typer.echo(demo_sign_in_token(subject, name, utc_now()))
