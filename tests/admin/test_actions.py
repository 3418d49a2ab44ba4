"""Administrative actions and their API: every refusal with its reason, and the happy path's checks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from tests.admin.factories import (
    ADMIN,
    AGENT,
    AUTH,
    NOW,
    TOKEN,
    api_client,
    apply,
    contact_center,
    environment,
    publish_bot,
    register_app,
)
from tests.support import DatabaseUnderTest
from warmline.admin.access import ADMIN_COOKIE, issue_admin_session
from warmline.admin.actions import (
    AdminError,
    bot_traffic_allowed,
    do_connect_bot,
    do_disable_bot_connection,
    do_disconnect_bot,
    do_install_extension,
    do_set_voice,
    do_uninstall_extension,
    installed_extensions,
    missing_extensions,
    refresh_connection,
    voice_allowed,
)
from warmline.admin.model import Geography
from warmline.store import Database
from warmline.store.schema import ApplicationUserRow, AuditRow, BotConnectionRow
from warmline.workspace.session import COOKIE as WORKSPACE_COOKIE
from warmline.workspace.session import issue_session


async def _refused(work: object) -> AdminError:
    with pytest.raises(AdminError) as caught:
        await work  # type: ignore[misc]
    return caught.value


async def _connection(db: Database, bot: str) -> BotConnectionRow | None:
    async with db.reading() as session:
        return await session.get(BotConnectionRow, bot)


async def _audit(db: Database) -> list[tuple[str, str]]:
    async with db.reading() as session:
        rows = await session.scalars(select(AuditRow).order_by(AuditRow.id))
        return [(r.action, r.subject) for r in rows]


@pytest.fixture
async def world(db: Database) -> Database:
    """env1 (United States, omnichannel) with bot 'retail' attached to its chat workstream."""
    await environment(db, "env1")
    await publish_bot(db, "retail", "env1")
    await apply(db, contact_center("env1", "retail"))
    return db


# --- roles -----------------------------------------------------------------------------------------


async def test_a_caller_without_the_administrator_role_is_refused_with_the_role_named(
    world: Database,
) -> None:
    app_id = await register_app(world)
    async with world.transaction() as tx:
        error = await _refused(do_connect_bot(tx, AGENT, "retail", "env1", app_id, NOW))
    assert error.status == 403
    assert "System Administrator role (administrator)" in error.message
    assert "env1/ben has: agent" in error.message
    for work in (
        lambda tx: do_install_extension(tx, AGENT, "env1", "telephony", NOW),
        lambda tx: do_uninstall_extension(tx, AGENT, "env1", "telephony", NOW),
        lambda tx: do_disconnect_bot(tx, AGENT, "retail", NOW),
        lambda tx: do_disable_bot_connection(tx, AGENT, "retail", False, NOW),
        lambda tx: do_set_voice(tx, AGENT, "retail", True, NOW),
    ):
        async with world.transaction() as tx:
            error = await _refused(work(tx))
        assert error.status == 403 and "(administrator)" in error.message
    assert await _connection(world, "retail") is None
    assert ("bot.connected", "retail") not in await _audit(world)


@pytest.fixture
async def as_agent(world: Database, database: DatabaseUnderTest) -> AsyncIterator[httpx.AsyncClient]:
    """The API called by Ben, a signed-in workspace agent (role: agent)."""
    settings = database.settings(admin_token=TOKEN, routing_worker=False)
    cookie, session = issue_session(settings, "env1", "ben", ["agent"], NOW)
    async for client in api_client(settings):
        client.cookies.set(WORKSPACE_COOKIE, cookie)
        client.headers["X-CSRF-Token"] = session.csrf
        yield client


async def test_over_the_api_a_workspace_agent_gets_403_naming_the_role_they_lack(
    as_agent: httpx.AsyncClient, world: Database
) -> None:
    app_id = await register_app(world)
    calls = [
        ("PUT", "/api/admin/bots/retail/connection", {"environment": "env1", "appId": app_id}),
        ("POST", "/api/admin/bots/retail/connection/refresh", None),
        ("POST", "/api/admin/bots/retail/connection/disable", None),
        ("DELETE", "/api/admin/bots/retail/connection", None),
        ("POST", "/api/admin/environments/env1/extensions/telephony", None),
        ("PUT", "/api/admin/bots/retail/voice", {"enabled": True}),
    ]
    for method, path, body in calls:
        response = await as_agent.request(method, path, json=body)
        assert response.status_code == 403, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "Forbidden"
        assert "System Administrator role (administrator)" in error["message"]
        assert "env1/ben has: agent" in error["message"]
    # Reading is allowed; nothing changed.
    view = (await as_agent.get("/api/admin/bots/retail/agent-transfers")).json()
    assert view["connection"] is None
    assert await installed_extensions_of(world, "env1") == []


async def installed_extensions_of(db: Database, environment_id: str) -> list[str]:
    async with db.reading() as session:
        return await installed_extensions(session, environment_id)


async def test_a_workspace_administrator_may_connect_and_cookie_callers_need_the_csrf_token(
    world: Database, database: DatabaseUnderTest
) -> None:
    settings = database.settings(admin_token=TOKEN, routing_worker=False)
    cookie, session = issue_session(settings, "env1", "ada", ["administrator"], NOW)
    app_id = await register_app(world)
    async for client in api_client(settings):
        client.cookies.set(WORKSPACE_COOKIE, cookie)
        body = {"environment": "env1", "appId": app_id}
        refused = await client.put("/api/admin/bots/retail/connection", json=body)
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
        connected = await client.put(
            "/api/admin/bots/retail/connection", json=body, headers={"X-CSRF-Token": session.csrf}
        )
        assert connected.status_code == 200, connected.text
        assert connected.json()["connection"]["state"] == "enabled"
    async with world.reading() as read:
        user = await read.get(ApplicationUserRow, ("env1", app_id))
    assert user is not None and (user.bot_id, user.state) == ("retail", "active")


async def test_the_api_needs_credentials_and_the_admin_sign_in_cookie_works(
    world: Database, database: DatabaseUnderTest
) -> None:
    settings = database.settings(admin_token=TOKEN, routing_worker=False)
    async for client in api_client(settings):
        anonymous = await client.get("/api/admin/environments")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "Unauthorized"
        wrong = await client.get("/api/admin/environments", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        client.cookies.set(ADMIN_COOKIE, issue_admin_session(settings, NOW))
        listed = await client.get("/api/admin/environments")
        assert listed.status_code == 200
        assert [e["id"] for e in listed.json()] == ["env1"]
        # A signed cookie from another admin token (rotated since) is worthless.
        rotated = database.settings(admin_token=TOKEN + "-old", routing_worker=False)
        client.cookies.set(ADMIN_COOKIE, issue_admin_session(rotated, NOW))
        assert (await client.get("/api/admin/environments")).status_code == 401


# --- application ids, environments and geographies ------------------------------------------------


async def test_a_second_bot_with_the_same_application_id_is_refused_with_error_1004(world: Database) -> None:
    await publish_bot(world, "billing", "env1")
    app_id = await register_app(world)
    async with world.transaction() as tx:
        assert await do_connect_bot(tx, ADMIN, "retail", "env1", app_id, NOW) == []
    async with world.transaction() as tx:
        error = await _refused(do_connect_bot(tx, ADMIN, "billing", "env1", app_id, NOW))
    assert (error.code, error.status) == ("DuplicateBotAppId", 409)
    assert "error 1004" in error.message and "already represents bot 'retail'" in error.message
    assert await _connection(world, "billing") is None
    async with world.reading() as session:
        user = await session.get(ApplicationUserRow, ("env1", app_id))
    assert user is not None and user.bot_id == "retail"


async def test_the_api_reports_1004_as_json_with_its_status(
    world: Database, database: DatabaseUnderTest
) -> None:
    await publish_bot(world, "billing", "env1")
    settings = database.settings(admin_token=TOKEN, routing_worker=False)
    async for client in api_client(settings, **AUTH):
        registered = await client.post("/api/admin/apps", json={"name": "shared"})
        assert registered.status_code == 201
        app_id = registered.json()["appId"]
        assert len(registered.json()["secret"]) >= 32
        first = await client.put(
            "/api/admin/bots/retail/connection", json={"environment": "env1", "appId": app_id}
        )
        assert first.status_code == 200, first.text
        second = await client.put(
            "/api/admin/bots/billing/connection", json={"environment": "env1", "appId": app_id}
        )
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "DuplicateBotAppId"
        assert "1004" in second.json()["error"]["message"]
        bad = await client.put("/api/admin/bots/retail/connection", json={"environment": "env1"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadArgument"


async def test_an_omnichannel_in_another_geography_is_refused_with_the_reason(world: Database) -> None:
    await environment(world, "eu", Geography.EUROPE)
    app_id = await register_app(world)
    async with world.transaction() as tx:
        error = await _refused(do_connect_bot(tx, ADMIN, "retail", "eu", app_id, NOW))
    assert (error.code, error.status) == ("GeographyMismatch", 409)
    assert "'env1' is in United States but 'eu' is in Europe" in error.message
    assert "same geography" in error.message
    assert await _connection(world, "retail") is None


async def test_another_environment_in_the_same_geography_is_allowed_with_the_analytics_warning(
    world: Database,
) -> None:
    await environment(world, "contact-center")
    app_id = await register_app(world)
    async with world.transaction() as tx:
        warnings = await do_connect_bot(tx, ADMIN, "retail", "contact-center", app_id, NOW)
    assert any("analytics for this bot won't work" in w for w in warnings)
    # Extensions are not installed for you across environments: the seed's warning, with the order.
    assert any(
        "doesn't have access to the variables or actions" in w and "omnichannel-bot" in w for w in warnings
    )
    connection = await _connection(world, "retail")
    assert connection is not None and connection.environment_id == "contact-center"


async def test_an_environment_without_the_omnichannel_is_refused(world: Database) -> None:
    await environment(world, "lab", omnichannel=False)
    app_id = await register_app(world)
    async with world.transaction() as tx:
        error = await _refused(do_connect_bot(tx, ADMIN, "retail", "lab", app_id, NOW))
    assert error.code == "OmnichannelNotEnabled" and "not enabled in 'lab'" in error.message


# --- voice -----------------------------------------------------------------------------------------


async def test_voice_outside_the_supported_geographies_is_refused_instead_of_failing_silently(
    db: Database,
) -> None:
    await environment(db, "india", Geography.INDIA)
    await publish_bot(db, "retail", "india")
    async with db.transaction() as tx:
        error = await _refused(do_set_voice(tx, ADMIN, "retail", True, NOW))
    assert (error.code, error.status) == ("VoiceGeography", 409)
    assert "voice is not available in India ('india')" in error.message
    for geography in ("United States", "Canada", "Europe", "Asia", "United Kingdom", "Australia"):
        assert geography in error.message
    assert not await _voice_on(db, "retail")


async def _voice_on(db: Database, bot: str) -> bool:
    connection = await _connection(db, bot)
    return bool(connection and connection.voice_enabled)


async def test_enabling_voice_on_a_connected_bot_reconnects_it_for_you(world: Database) -> None:
    app_id = await register_app(world)
    async with world.transaction() as tx:
        await do_connect_bot(tx, ADMIN, "retail", "env1", app_id, NOW)
    async with world.transaction() as tx:
        notes = await do_set_voice(tx, ADMIN, "retail", True, NOW)
    assert notes == ["the bot was reconnected to the omnichannel so voice takes effect"]
    assert await _voice_on(world, "retail")
    async with world.reading() as session:
        assert await voice_allowed(session, "retail")
        # Voice needs all three extensions, in order; same environment, so connecting installed only text's.
        assert await missing_extensions(session, "env1", voice=True) == ["telephony", "omnichannel-voice-bot"]


async def test_disabling_voice_while_a_voice_workstream_uses_the_bot_is_refused_with_the_attachments(
    db: Database,
) -> None:
    await environment(db, "env1")
    await publish_bot(db, "retail", "env1")
    await apply(db, contact_center("env1", "retail", voice=True))
    app_id = await register_app(db)
    async with db.transaction() as tx:
        await do_connect_bot(tx, ADMIN, "retail", "env1", app_id, NOW)
    async with db.transaction() as tx:
        await do_set_voice(tx, ADMIN, "retail", True, NOW)
    async with db.transaction() as tx:
        error = await _refused(do_set_voice(tx, ADMIN, "retail", False, NOW))
    assert (error.code, error.status) == ("VoiceInUse", 409)
    assert "calls would start failing" in error.message
    assert "env1/workstream calls (queues: phone)" in error.message
    assert await _voice_on(db, "retail")
    # Once the bot is off the voice workstream, voice can go.
    await apply(db, contact_center("env1", "retail"))
    async with db.transaction() as tx:
        await do_set_voice(tx, ADMIN, "retail", False, NOW)
    assert not await _voice_on(db, "retail")


# --- extensions ------------------------------------------------------------------------------------


async def test_extensions_install_in_dependency_order_and_one_in_use_cannot_be_uninstalled(
    world: Database,
) -> None:
    async with world.transaction() as tx:
        error = await _refused(do_install_extension(tx, ADMIN, "env1", "omnichannel-voice-bot", NOW))
    assert (error.code, error.status) == ("MissingDependency", 409)
    assert "install telephony, omnichannel-bot before omnichannel-voice-bot" in error.message
    assert "telephony → omnichannel-bot → omnichannel-voice-bot" in error.message
    async with world.transaction() as tx:
        error = await _refused(do_install_extension(tx, ADMIN, "env1", "bogus", NOW))
    assert error.code == "UnknownExtension"

    for name in ("telephony", "omnichannel-bot", "omnichannel-voice-bot"):
        async with world.transaction() as tx:
            await do_install_extension(tx, ADMIN, "env1", name, NOW)
    assert await installed_extensions_of(world, "env1") == [
        "telephony",
        "omnichannel-bot",
        "omnichannel-voice-bot",
    ]
    async with world.transaction() as tx:
        error = await _refused(do_uninstall_extension(tx, ADMIN, "env1", "telephony", NOW))
    assert (error.code, error.status) == ("InUse", 409)
    assert "'telephony' is needed by omnichannel-voice-bot" in error.message
    async with world.transaction() as tx:
        await do_uninstall_extension(tx, ADMIN, "env1", "omnichannel-voice-bot", NOW)
    async with world.transaction() as tx:
        await do_uninstall_extension(tx, ADMIN, "env1", "telephony", NOW)
    assert await installed_extensions_of(world, "env1") == ["omnichannel-bot"]
    actions = [a for a, _ in await _audit(world)]
    assert actions.count("extension.installed") == 3 and actions.count("extension.uninstalled") == 2


# --- the connection's life -------------------------------------------------------------------------


async def test_refresh_is_all_green_in_the_happy_path_and_shows_what_disable_and_disconnect_break(
    world: Database,
) -> None:
    app_id = await register_app(world)
    async with world.transaction() as tx:
        assert await do_connect_bot(tx, ADMIN, "retail", "env1", app_id, NOW) == []
    async with world.reading() as session:
        checks = await refresh_connection(session, "retail")
        assert await bot_traffic_allowed(session, "retail")
    assert [c.name for c in checks] == [
        "application user active",
        "channel enabled",
        "bot published",
        "attached to a workstream",
        "extensions installed",
        "same geography",
    ]
    assert all(c.ok for c in checks), checks
    assert next(c for c in checks if c.name == "attached to a workstream").detail == "chat"

    async with world.transaction() as tx:
        await do_disable_bot_connection(tx, ADMIN, "retail", False, NOW)
    async with world.reading() as session:
        failing = [c.name for c in await refresh_connection(session, "retail") if not c.ok]
        assert not await bot_traffic_allowed(session, "retail")
    assert failing == ["channel enabled"]
    async with world.transaction() as tx:
        await do_disable_bot_connection(tx, ADMIN, "retail", True, NOW)

    async with world.transaction() as tx:
        await do_disconnect_bot(tx, ADMIN, "retail", NOW)
    async with world.reading() as session:
        failing = [c.name for c in await refresh_connection(session, "retail") if not c.ok]
        user = await session.get(ApplicationUserRow, ("env1", app_id))
        assert not await bot_traffic_allowed(session, "retail")
    assert failing == ["application user active", "channel enabled"]
    assert user is not None and user.state == "disabled"
    # Disabling a disconnected bot makes no sense: connect again instead.
    async with world.transaction() as tx:
        error = await _refused(do_disable_bot_connection(tx, ADMIN, "retail", True, NOW))
    assert error.code == "Disconnected"
    # Connecting again from the start brings it back with the same application id.
    async with world.transaction() as tx:
        await do_connect_bot(tx, ADMIN, "retail", "env1", app_id, NOW)
    async with world.reading() as session:
        assert all(c.ok for c in await refresh_connection(session, "retail"))
    assert [a for a, s in await _audit(world) if s == "retail" and a.startswith("bot.")] == [
        "bot.environment",
        "bot.connected",
        "bot.disabled",
        "bot.enabled",
        "bot.disconnected",
        "bot.connected",
    ]


async def test_the_api_walks_connect_refresh_disable_enable_disconnect(
    world: Database, database: DatabaseUnderTest
) -> None:
    settings = database.settings(admin_token=TOKEN, routing_worker=False)
    async for client in api_client(settings, **AUTH):
        await environment(world, "eu", Geography.EUROPE)
        check = (
            await client.get("/api/admin/bots/retail/connection/check", params={"environment": "eu"})
        ).json()
        assert not check["ok"] and "same geography" in check["problem"]
        app_id = (await client.post("/api/admin/apps", json={"name": "retail"})).json()["appId"]
        connected = await client.put(
            "/api/admin/bots/retail/connection", json={"environment": "env1", "appId": app_id}
        )
        assert connected.json()["connection"]["applicationUser"] == "active"
        refreshed = (await client.post("/api/admin/bots/retail/connection/refresh")).json()
        assert refreshed["ok"] and all(c["ok"] for c in refreshed["checks"])
        disabled = (await client.post("/api/admin/bots/retail/connection/disable")).json()
        assert disabled["connection"]["state"] == "disabled"
        enabled = (await client.post("/api/admin/bots/retail/connection/enable")).json()
        assert enabled["connection"]["state"] == "enabled"
        gone = (await client.delete("/api/admin/bots/retail/connection")).json()
        assert (gone["connection"]["state"], gone["connection"]["applicationUser"]) == (
            "disconnected",
            "disabled",
        )
        users = (await client.get("/api/admin/environments/env1/application-users")).json()
        assert [(u["bot"], u["state"]) for u in users] == [("retail", "disabled")]
        missing = await client.delete("/api/admin/bots/nope/connection")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotConnected"
