"""The ``warmline`` command: serve, demo, database and widget tasks."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import uvicorn

from warmline.admin.actions import (
    AdminError,
    do_assign_bot_environment,
    do_connect_bot,
    do_disable_bot_connection,
    do_disconnect_bot,
    do_install_extension,
    do_register_app,
    do_save_environment,
    do_set_voice,
    do_uninstall_extension,
    installed_extensions,
    refresh_connection,
    require_admin,
)
from warmline.admin.alm import (
    do_customize_bot,
    do_import_solution,
    do_remove_unmanaged_layer,
    export_solution,
    list_layers,
)
from warmline.admin.model import EXTENSIONS, INSTALL_ORDER, SYSTEM_ADMINISTRATOR, Actor, Check, Geography
from warmline.admin.reads import EnvironmentView, get_agent_transfers, list_environments
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
SipPort = Annotated[
    int | None,
    typer.Option(help="UDP port of the SIP server for voice calls (0: any free port).", min=0, max=65535),
]
SipHost = Annotated[str | None, typer.Option(help="Address SIP and RTP listen on (default: loopback).")]
DEMO_SIP_PORT = 5080
DEMO_NUMBER = "15550100"


def _with_sip(settings: Settings, sip_port: int | None, sip_host: str | None) -> Settings:
    """Command-line SIP options win over ``WARMLINE_SIP_*`` settings."""
    updates: dict[str, object] = {}
    if sip_port is not None:
        updates["sip_port"] = sip_port
    if sip_host is not None:
        updates["sip_host"] = sip_host
    return settings.model_copy(update=updates) if updates else settings


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
def serve(
    host: Host = "127.0.0.1", port: Port = 8000, sip_port: SipPort = None, sip_host: SipHost = None
) -> None:
    """Migrate the database, then serve HTTP and WebSocket (and SIP with ``--sip-port``)."""
    settings = _with_sip(Settings(), sip_port, sip_host)
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
    sip_port: SipPort = None,
    sip_host: SipHost = None,
) -> None:
    """Migrate, seed the demo widget, print its URLs and secrets, and serve (SIP on port 5080)."""
    settings = Settings()
    if sip_port is None:
        sip_port = DEMO_SIP_PORT if settings.sip_port is None else settings.sip_port
    settings = _with_sip(settings, sip_port, sip_host)
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
                f"  Call the bot (SIP/UDP):  sip:{DEMO_NUMBER}@{settings.sip_host}:{settings.sip_port}"
                "  (keys: 1 orders, 2 person, 3 store, 9 hang up)",
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


# --- administration: environments, apps, the omnichannel connection, extensions, ALM -----------------

# The CLI runs on the deployment's own machine with its database: it acts as a System Administrator.
CLI_ADMIN = Actor("cli", (SYSTEM_ADMINISTRATOR,))

env_app = typer.Typer(help="Environments: geography, omnichannel on or off.", no_args_is_help=True)
apps_app = typer.Typer(help="App registrations (application id and secret).", no_args_is_help=True)
connection_app = typer.Typer(help="A bot's omnichannel connection.", no_args_is_help=True)
voice_app = typer.Typer(help="Voice for a whole bot.", no_args_is_help=True)
extensions_app = typer.Typer(help="Extensions of an environment, in dependency order.", no_args_is_help=True)
solution_app = typer.Typer(help="ALM: export and import bots as solutions; layers.", no_args_is_help=True)
app.add_typer(env_app, name="env")
app.add_typer(apps_app, name="apps")
app.add_typer(connection_app, name="connection")
app.add_typer(voice_app, name="voice")
app.add_typer(extensions_app, name="extensions")
app.add_typer(solution_app, name="solution")

BotId = Annotated[str, typer.Argument(help="The bot's id.")]
EnvironmentId = Annotated[str, typer.Argument(help="The environment's id.")]
T = TypeVar("T")


def _admin(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` against the configured database; a refusal prints its reason and exits 1."""
    settings = Settings()
    _prepare_store(settings)

    async def run() -> T:
        db = Database(settings.database_url, InProcessBus(), schema=settings.database_schema)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except AdminError as error:
        typer.echo(f"Refused ({error.code}): {error.message}", err=True)
        raise typer.Exit(1) from None


def _warn(lines: list[str]) -> None:
    for line in lines:
        typer.echo(f"warning: {line}", err=True)


@env_app.command("create")
def env_create(
    environment: EnvironmentId,
    name: Annotated[str | None, typer.Option(help="Display name (the id by default).")] = None,
    geography: Annotated[
        Geography, typer.Option(help="Where the environment's data lives.", case_sensitive=False)
    ] = Geography.UNITED_STATES,
    omnichannel: Annotated[bool, typer.Option(help="Whether the omnichannel is enabled here.")] = True,
) -> None:
    """Create (or update) an environment."""

    async def work(db: Database) -> None:
        async with db.transaction() as tx:
            await do_save_environment(
                tx, CLI_ADMIN, environment, name or environment, geography, omnichannel, utc_now()
            )

    _admin(work)
    state = "omnichannel enabled" if omnichannel else "omnichannel off"
    typer.echo(f"Environment '{environment}' saved: {geography.value}, {state}.")


@env_app.command("list")
def env_list() -> None:
    """List environments with geography, omnichannel and installed extensions."""

    async def work(db: Database) -> list[EnvironmentView]:
        async with db.reading() as session:
            return await list_environments(session)

    for e in _admin(work):
        typer.echo(
            f"{e.id}\t{e.name}\t{e.geography or 'no geography'}\t"
            f"{'omnichannel' if e.omnichannel else 'no omnichannel'}\t"
            f"voice {'supported' if e.voice_supported else 'not available'}\t"
            f"extensions: {', '.join(e.extensions) or 'none'}"
        )


@bot_app.command("place")
def bot_place(
    bot_id: BotId,
    environment: Annotated[str, typer.Option(help="The environment the bot lives in.")],
) -> None:
    """Place a published bot in an environment."""

    async def work(db: Database) -> None:
        async with db.transaction() as tx:
            await do_assign_bot_environment(tx, CLI_ADMIN, bot_id, environment, utc_now())

    _admin(work)
    typer.echo(f"Bot '{bot_id}' lives in '{environment}'.")


@apps_app.command("register")
def apps_register(name: Annotated[str, typer.Argument(help="A name for the application.")]) -> None:
    """Register an application: prints its application (client) id and its secret, once."""

    async def work(db: Database) -> tuple[str, str]:
        async with db.transaction() as tx:
            return await do_register_app(tx, CLI_ADMIN, name, utc_now())

    app_id, secret = _admin(work)
    typer.echo(f"Application (client) id: {app_id}")
    typer.echo(f"Secret:                  {secret}")
    typer.echo("The secret is shown only now; Warmline keeps only its hash.")


@app.command("connect")
def connect(
    bot_id: BotId,
    environment: Annotated[str, typer.Option(help="The environment whose omnichannel the bot joins.")],
    app_id: Annotated[str, typer.Option("--app-id", help="The bot's application (client) id.")],
) -> None:
    """Connect a bot to an omnichannel: creates its application user and enables the channel."""

    async def work(db: Database) -> list[str]:
        async with db.transaction() as tx:
            return await do_connect_bot(tx, CLI_ADMIN, bot_id, environment, app_id, utc_now())

    _warn(_admin(work))
    typer.echo(f"Bot '{bot_id}' is connected to the omnichannel of '{environment}' as application {app_id}.")
    typer.echo(f"Next: make it the first agent of a workstream, then `warmline connection refresh {bot_id}`.")


@connection_app.command("status")
def connection_show(bot_id: BotId) -> None:
    """Show the connection, the extensions it needs and what the last import means for it."""

    async def work(db: Database) -> dict[str, Any] | None:
        async with db.reading() as session:
            return await get_agent_transfers(session, bot_id)

    view = _admin(work)
    if view is None:
        typer.echo(f"No bot '{bot_id}'.", err=True)
        raise typer.Exit(1)
    published = view["bot"]["publishedVersion"]
    typer.echo(f"Bot: {bot_id} ({view['bot']['environment'] or 'no environment'})")
    typer.echo(f"Published: {f'version {published}' if published else 'no; publish it for hand-off to work'}")
    connection = view["connection"]
    if connection is None:
        typer.echo("Connection: not connected")
    else:
        typer.echo(
            f"Connection: {connection['state']} to '{connection['environment']}' as application "
            f"{connection['appId']} (application user {connection['applicationUser'] or 'missing'})"
        )
        typer.echo(f"Workstreams: {', '.join(connection['workstreams']) or 'none'}")
    typer.echo(f"Voice: {'on' if view['voiceEnabled'] else 'off'}")
    missing = view["extensions"]["missing"]
    if missing:
        typer.echo(f"Missing extensions: {' → '.join(missing)}")
    imported = view["import"]
    if imported and imported["status"].get("message"):
        typer.echo(f"After the last import: {imported['status']['message']}")


@connection_app.command("refresh")
def connection_refresh(bot_id: BotId) -> None:
    """Test and verify the connection; exit 1 when a check fails."""

    async def work(db: Database) -> list[Check]:
        require_admin(CLI_ADMIN, "Refreshing a bot connection")
        async with db.reading() as session:
            return await refresh_connection(session, bot_id)

    checks = _admin(work)
    for check in checks:
        typer.echo(f"{'✓' if check.ok else '✗'} {check.name}: {check.detail}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@connection_app.command("disconnect")
def connection_disconnect(bot_id: BotId) -> None:
    """Disable the bot's application user: no traffic; connect again from the start to restore."""

    async def work(db: Database) -> None:
        async with db.transaction() as tx:
            await do_disconnect_bot(tx, CLI_ADMIN, bot_id, utc_now())

    _admin(work)
    typer.echo(f"Bot '{bot_id}' is disconnected; its application user is disabled.")


def _set_enabled(bot_id: str, enabled: bool) -> None:
    async def work(db: Database) -> None:
        async with db.transaction() as tx:
            await do_disable_bot_connection(tx, CLI_ADMIN, bot_id, enabled, utc_now())

    _admin(work)
    if enabled:
        typer.echo(f"Bot '{bot_id}' receives traffic from the omnichannel again.")
    else:
        typer.echo(f"Bot '{bot_id}' receives no traffic; the connection stays configured.")


@connection_app.command("disable")
def connection_disable(bot_id: BotId) -> None:
    """Stop all traffic to the bot, keeping the connection configured."""
    _set_enabled(bot_id, False)


@connection_app.command("enable")
def connection_enable(bot_id: BotId) -> None:
    """Let traffic through again after disable."""
    _set_enabled(bot_id, True)


def _voice(bot_id: str, enabled: bool) -> None:
    async def work(db: Database) -> list[str]:
        async with db.transaction() as tx:
            return await do_set_voice(tx, CLI_ADMIN, bot_id, enabled, utc_now())

    notes = _admin(work)
    typer.echo(f"Voice is {'on' if enabled else 'off'} for bot '{bot_id}'.")
    for note in notes:
        typer.echo(f"note: {note}")


@voice_app.command("enable")
def voice_enable(bot_id: BotId) -> None:
    """Turn voice on (supported geographies only; a connected bot is reconnected for you)."""
    _voice(bot_id, True)


@voice_app.command("disable")
def voice_disable(bot_id: BotId) -> None:
    """Turn voice off (refused while a voice workstream uses the bot)."""
    _voice(bot_id, False)


@extensions_app.command("list")
def extensions_list(environment: EnvironmentId) -> None:
    """Every extension in install order, installed or not."""

    async def work(db: Database) -> list[str]:
        async with db.reading() as session:
            return await installed_extensions(session, environment)

    installed = _admin(work)
    for name in INSTALL_ORDER:
        extension = EXTENSIONS[name]
        needs = f" (needs {', '.join(extension.requires)})" if extension.requires else ""
        state = "installed" if name in installed else "not installed"
        typer.echo(f"{name}\t{state}\t{extension.title}{needs}: {extension.adds}")


@extensions_app.command("install")
def extensions_install(
    environment: EnvironmentId, name: Annotated[str, typer.Argument(help="The extension.")]
) -> None:
    """Install an extension (its dependencies must be installed first)."""

    async def work(db: Database) -> None:
        async with db.transaction() as tx:
            await do_install_extension(tx, CLI_ADMIN, environment, name, utc_now())

    _admin(work)
    typer.echo(f"Installed '{name}' in '{environment}'.")


@extensions_app.command("uninstall")
def extensions_uninstall(
    environment: EnvironmentId, name: Annotated[str, typer.Argument(help="The extension.")]
) -> None:
    """Uninstall an extension (refused while another installed extension needs it)."""

    async def work(db: Database) -> None:
        async with db.transaction() as tx:
            await do_uninstall_extension(tx, CLI_ADMIN, environment, name, utc_now())

    _admin(work)
    typer.echo(f"Uninstalled '{name}' from '{environment}'.")


@solution_app.command("export")
def solution_export(
    bot_id: BotId,
    output: Annotated[Path, typer.Option("--output", "-o", help="The .zip file to write.", dir_okay=False)],
    managed: Annotated[
        bool, typer.Option("--managed/--unmanaged", help="Managed: read-only base layer where imported.")
    ] = True,
    version: Annotated[str, typer.Option(help="The solution's version.")] = "1.0.0",
) -> None:
    """Export the bot's newest published version as a solution zip (no secrets)."""

    async def work(db: Database) -> bytes:
        async with db.reading() as session:
            return await export_solution(session, bot_id, managed=managed, version=version)

    data = _admin(work)
    output.write_bytes(data)
    kind = "managed" if managed else "unmanaged"
    typer.echo(f"Exported bot '{bot_id}' as a {kind} solution (version {version}) to {output}.")


@solution_app.command("import")
def solution_import(
    file: Annotated[Path, typer.Argument(help="The solution .zip.", exists=True, dir_okay=False)],
    environment: Annotated[str, typer.Option(help="The environment to import into.")],
    as_bot: Annotated[
        str | None,
        typer.Option("--as-bot", help="The bot's id here (bot ids are unique in a deployment)."),
    ] = None,
) -> None:
    """Import a solution: managed → read-only base layer, unmanaged → editable; publishes the bot."""

    async def work(db: Database) -> dict[str, Any]:
        async with db.transaction() as tx:
            return await do_import_solution(
                tx, CLI_ADMIN, file.read_bytes(), environment, utc_now(), bot_id=as_bot
            )

    result = _admin(work)
    typer.echo(
        f"Imported bot '{result['bot']}' into '{environment}' as the {result['layer']} layer; "
        f"published version {result['publishedVersion']}."
    )
    status = result["connection"]
    typer.echo(
        f"Connection: {status['status']}" + (f": {status['message']}" if status.get("message") else "")
    )
    if status.get("resolution"):
        typer.echo(f"To resolve: {status['resolution']}")


@solution_app.command("layers")
def solution_layers(bot_id: BotId) -> None:
    """List the bot's layers, managed base first."""

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.reading() as session:
            return await list_layers(session, bot_id)

    layers = _admin(work)
    if not layers:
        typer.echo(f"Bot '{bot_id}' has no solution layers (it was published here, not imported).")
    for layer in layers:
        typer.echo(
            f"{layer['layer']}\t{layer['solution']} {layer['version']}\t"
            f"{len(layer['files'])} file(s): {', '.join(layer['files'])}"
        )


@solution_app.command("remove-unmanaged-layer")
def solution_remove_unmanaged_layer(bot_id: BotId) -> None:
    """Drop the edits made on top of a managed bot: it runs exactly as imported again."""

    async def work(db: Database) -> int:
        async with db.transaction() as tx:
            return await do_remove_unmanaged_layer(tx, CLI_ADMIN, bot_id, utc_now())

    version = _admin(work)
    typer.echo(f"Removed the unmanaged layer of '{bot_id}'; published version {version} (the managed state).")


@bot_app.command("customize")
def bot_customize(
    path: Annotated[Path, typer.Argument(help="The edited bot folder.", exists=True, file_okay=False)],
    bot_id: Annotated[str, typer.Option("--id", help="The bot's id.")],
) -> None:
    """Publish edits; on a managed (imported) bot they become its unmanaged layer."""

    async def work(db: Database) -> int:
        async with db.transaction() as tx:
            return await do_customize_bot(tx, CLI_ADMIN, bot_id, read_bot_folder(path), utc_now())

    version = _admin(work)
    typer.echo(f"Bot '{bot_id}' published version {version}.")
