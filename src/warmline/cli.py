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
from warmline.bot.loader import Problem, read_bot_folder
from warmline.bot.publishing import Published, PublishRefused, check_bot, do_attach_bot, do_publish_bot
from warmline.bot.scripted import run_script
from warmline.bot.topics import Position
from warmline.config import Settings
from warmline.demo import DEMO_WIDGET_ID, demo_sign_in_token, seed_demo
from warmline.events import InProcessBus
from warmline.routing.config import ConfigChange, ConfigRefused, do_apply_config, get_config, plan_config
from warmline.routing.config_file import ConfigFileError, dump_contact_center, load_contact_center
from warmline.runtime import utc_now
from warmline.store import Database
from warmline.store.migrate import upgrade_database

app = typer.Typer(help="Warmline: bots that hand conversations to live agents, warm.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema tasks.", no_args_is_help=True)
widget_app = typer.Typer(help="Chat widget tasks.", no_args_is_help=True)
bot_app = typer.Typer(help="Bots: validate, test and publish topic YAML.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(widget_app, name="widget")
app.add_typer(bot_app, name="bot")

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
            await seed_demo(db, secret, utc_now(), with_bot=True)
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
                "  Agents:                  ava / demo, ben / demo; supervisor: sam / demo",
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


def _print_problems(problems: list[Problem]) -> int:
    errors = 0
    for problem in problems:
        typer.echo(str(problem), err=problem.severity == "error")
        errors += problem.severity == "error"
    return errors


@bot_app.command("validate")
def bot_validate(
    path: Annotated[
        Path, typer.Argument(help="A bot folder (with bot.yaml) or one topic file.", exists=True)
    ],
) -> None:
    """Print every problem as file:line:col: message; exit 1 when there are errors."""
    if path.is_dir():
        _, problems = check_bot(read_bot_folder(path), root=str(path))
    else:
        folder = path.parent.parent if path.parent.name == "topics" else None
        files = (
            read_bot_folder(folder)
            if folder and (folder / "bot.yaml").exists()
            else {"bot.yaml": "name: Topic check\n"}
        )
        files = {k: v for k, v in files.items() if not k.startswith("topics/")}
        files[f"topics/{path.name}"] = path.read_text(encoding="utf-8")
        _, problems = check_bot(files, root=str(folder) if folder else "")
        shown = f"topics/{path.name}"
        problems = [
            Problem(Position(str(path), p.position.line, p.position.column), p.message, p.severity)
            if p.position.file.endswith(shown)
            else p
            for p in problems
            if p.position.file.endswith(shown) or not p.position.file.startswith("<system>")
        ]
    errors = _print_problems(problems)
    if errors:
        typer.echo(f"{errors} error(s).", err=True)
        raise typer.Exit(1)
    typer.echo("No problems found.")


@bot_app.command("publish")
def bot_publish(
    path: Annotated[Path, typer.Argument(help="The bot folder to publish.", exists=True, file_okay=False)],
    bot_id: Annotated[str, typer.Option("--id", help="The bot's id.")],
    widget: Annotated[str | None, typer.Option(help="Also make this widget's new chats use the bot.")] = None,
) -> None:
    """Validate the draft and publish it as the next version (unchanged files publish nothing new)."""
    settings = Settings()
    _prepare_store(settings)

    async def publish() -> Published:
        db = Database(settings.database_url, InProcessBus(), schema=settings.database_schema)
        try:
            async with db.transaction() as tx:
                published = await do_publish_bot(tx, bot_id, read_bot_folder(path), utc_now(), root=str(path))
                if widget:
                    await do_attach_bot(tx, widget, bot_id)
            return published
        finally:
            await db.dispose()

    try:
        published = asyncio.run(publish())
    except PublishRefused as refused:
        _print_problems(refused.problems)
        typer.echo(f"Not published: {len(refused.problems)} error(s).", err=True)
        raise typer.Exit(1) from None
    except LookupError as missing:
        typer.echo(f"Not published: {missing}.", err=True)
        raise typer.Exit(1) from None
    _print_problems(list(published.warnings))
    state = "published" if published.created else "unchanged; still"
    typer.echo(f"Bot '{bot_id}' {state} version {published.version}.")


@bot_app.command("test")
def bot_test(
    files: Annotated[list[Path], typer.Argument(help="Scripted conversation files.", exists=True)],
    bot: Annotated[Path | None, typer.Option(help="Bot folder (default: 'bot:' in each file).")] = None,
) -> None:
    """Run scripted conversations; print a pass/fail report; exit 1 on any failure."""
    failed = 0
    for file in files:
        report = asyncio.run(run_script(file, bot))
        _print_problems(report.problems)
        for case in report.cases:
            mark = "PASS" if case.passed else "FAIL"
            typer.echo(f"{mark} {file}: {case.name}")
            for failure in case.failures:
                typer.echo(f"     {failure}")
            failed += not case.passed
        if any(p.severity == "error" for p in report.problems):
            failed += 1
    if failed:
        typer.echo(f"{failed} failed.", err=True)
        raise typer.Exit(1)
    typer.echo("All scripted conversations passed.")


# --- routing configuration as code ----------------------------------------------------------------

config_app = typer.Typer(
    help="Routing configuration as code: contact-center YAML files.", no_args_is_help=True
)
app.add_typer(config_app, name="config")


def _refuse(error: ConfigFileError) -> typer.Exit:
    for problem in error.problems:
        typer.echo(str(problem), err=True)
    typer.echo(f"Nothing applied: {len(error.problems)} problem(s).", err=True)
    return typer.Exit(1)


@config_app.command("apply")
def config_apply(
    file: Annotated[Path, typer.Argument(help="The contact-center YAML file.", dir_okay=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the diff and change nothing.")] = False,
) -> None:
    """Validate a contact-center file, print the diff, and apply it as the environment's next version."""
    try:
        loaded = load_contact_center(file)
    except ConfigFileError as error:
        raise _refuse(error) from None
    settings = Settings()
    _prepare_store(settings)

    async def run() -> tuple[int, list[ConfigChange]]:
        db = Database(settings.database_url, InProcessBus(), schema=settings.database_schema)
        try:
            if dry_run:
                async with db.reading() as session:
                    plan = await plan_config(session, loaded.document)
                return plan.next_version, plan.changes
            async with db.transaction() as tx:
                return await do_apply_config(tx, loaded.document, utc_now())
        finally:
            await db.dispose()

    try:
        version, changes = asyncio.run(run())
    except ConfigRefused as refused:
        raise _refuse(loaded.refused(refused)) from None
    for change in changes:
        typer.echo(str(change))
    environment = loaded.document.environment
    if not changes:
        typer.echo(f"No changes: environment '{environment}' is at version {version}.")
    elif dry_run:
        typer.echo(f"Dry run: applying would store version {version} of '{environment}'; nothing changed.")
    else:
        typer.echo(f"Applied: environment '{environment}' is at version {version}.")


@config_app.command("show")
def config_show(environment: Annotated[str, typer.Argument(help="The environment's id.")]) -> None:
    """Print an environment's current routing configuration as YAML (passwords are never shown)."""
    settings = Settings()
    _prepare_store(settings)

    async def read() -> tuple[int, str] | None:
        db = Database(settings.database_url, InProcessBus(), schema=settings.database_schema)
        try:
            async with db.reading() as session:
                config = await get_config(session, environment)
            return (config.version, dump_contact_center(config.document)) if config else None
        finally:
            await db.dispose()

    current = asyncio.run(read())
    if current is None:
        typer.echo(f"Environment '{environment}' has no routing configuration.", err=True)
        raise typer.Exit(1)
    version, text = current
    typer.echo(f"# environment '{environment}', version {version}")
    typer.echo(text, nl=False)
