"""Admin pages without a browser: sign-in, the environment form, notices on the Agent transfers page."""

from __future__ import annotations

import re

from tests.admin.factories import (
    ADMIN,
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
from warmline.admin.actions import do_connect_bot
from warmline.admin.alm import CANNOT_DETERMINE, do_customize_bot, do_import_solution, export_solution
from warmline.bot.loader import read_bot_folder
from warmline.demo import DEMO_BOT_FOLDER
from warmline.store import Database
from warmline.store.schema import BotRow, EnvironmentRow
from warmline.workspace.session import COOKIE as WORKSPACE_COOKIE
from warmline.workspace.session import issue_session


def _csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert found is not None
    return found[1]


async def test_sign_in_with_the_admin_token_then_create_an_environment_with_the_form(
    db: Database, database: DatabaseUnderTest
) -> None:
    settings = database.settings(admin_token=TOKEN, routing_worker=False)
    async for client in api_client(settings):
        to_login = await client.get("/admin/environments")
        assert to_login.status_code == 303
        assert to_login.headers["location"] == "/admin/login?next=/admin/environments"
        wrong = await client.post("/admin/login", data={"token": "guess", "next": "/admin/environments"})
        assert wrong.status_code == 401 and "not the admin token" in wrong.text
        # Only our own admin pages are valid destinations: no open redirect.
        signed = await client.post("/admin/login", data={"token": TOKEN, "next": "//evil.example/admin"})
        assert signed.status_code == 303 and signed.headers["location"] == "/admin/environments"
        assert "httponly" in signed.headers["set-cookie"].lower()
        assert TOKEN not in signed.headers["set-cookie"]

        page = await client.get("/admin/environments")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        csrf = _csrf(page.text)
        form = {"id": "emea", "name": "EMEA", "geography": "Europe", "omnichannel": "on"}
        refused = await client.post("/admin/environments", data=form)
        assert refused.status_code == 403
        saved = await client.post("/admin/environments", data={**form, "csrf": csrf})
        assert saved.status_code == 303
        bad = await client.post("/admin/environments", data={**form, "id": "no spaces", "csrf": csrf})
        assert bad.status_code == 400 and "letters, digits" in bad.text
        listing = (await client.get("/admin/environments")).text
        assert '<tr data-environment="emea">' in listing and "Europe" in listing

        signed_out = await client.post("/admin/logout", data={"csrf": csrf})
        assert signed_out.status_code == 303
        assert (await client.get("/admin/environments")).status_code == 303
    async with db.reading() as session:
        row = await session.get(EnvironmentRow, "emea")
    assert row is not None and (row.name, row.geography, row.omnichannel_enabled) == ("EMEA", "Europe", True)


async def test_without_an_admin_token_the_sign_in_page_says_how_to_get_in(
    database: DatabaseUnderTest,
) -> None:
    async for client in api_client(database.settings(routing_worker=False)):
        page = await client.get("/admin/login")
        assert 'id="login-disabled"' in page.text and "WARMLINE_ADMIN_TOKEN" in page.text
        refused = await client.post("/admin/login", data={"token": "anything"})
        assert refused.status_code == 401


async def test_the_agent_transfers_page_says_when_the_bot_is_not_published(
    db: Database, database: DatabaseUnderTest
) -> None:
    async with db.transaction() as tx:
        tx.session.add(BotRow(id="draft", name="Draft bot", environment_id=None, created_at=NOW))
    async for client in api_client(database.settings(admin_token=TOKEN, routing_worker=False), **AUTH):
        page = await client.get("/admin/bots/draft/agent-transfers")
        assert page.status_code == 200
        assert 'id="not-published"' in page.text and "must be\npublished" in page.text
        missing = await client.get("/admin/bots/nope/agent-transfers")
        assert missing.status_code == 404


async def test_after_an_import_the_page_shows_the_connection_status_message(
    db: Database, database: DatabaseUnderTest
) -> None:
    await environment(db, "dev")
    await environment(db, "prod")
    await publish_bot(db, "retail", "dev")
    app_id = await register_app(db)
    async with db.transaction() as tx:
        await do_connect_bot(tx, ADMIN, "retail", "dev", app_id, NOW)
    async with db.reading() as session:
        exported = await export_solution(session, "retail", managed=True)
    async with db.transaction() as tx:
        await do_import_solution(tx, ADMIN, exported, "prod", NOW, bot_id="retail-prod")
    edited = read_bot_folder(DEMO_BOT_FOLDER)
    edited["bot.yaml"] = edited["bot.yaml"].replace("Contoso Retail Assistant", "Contoso (prod edit)")
    async with db.transaction() as tx:
        await do_customize_bot(tx, ADMIN, "retail-prod", edited, NOW)
    async with db.transaction() as tx:
        await do_import_solution(tx, ADMIN, exported, "prod", NOW, bot_id="retail-prod")
    async for client in api_client(database.settings(admin_token=TOKEN, routing_worker=False), **AUTH):
        page = (await client.get("/admin/bots/retail-prod/agent-transfers")).text
        assert 'id="import-status"' in page
        assert "We can&#39;t determine if omnichannel integration is enabled" in page
        assert "warmline solution remove-unmanaged-layer retail-prod" in page
        assert '<tr data-layer="managed">' in page and '<tr data-layer="unmanaged">' in page
        view = (await client.get("/api/admin/bots/retail-prod/agent-transfers")).json()
        assert view["import"]["status"]["message"] == CANNOT_DETERMINE
        # Over the API: export, import (as another bot), layers, remove the unmanaged layer.
        zipped = await client.get(
            "/api/admin/bots/retail/solution", params={"managed": "true", "version": "3.1"}
        )
        assert zipped.headers["content-type"] == "application/zip"
        assert 'filename="retail-3.1-managed.zip"' in zipped.headers["content-disposition"]
        imported = await client.post(
            "/api/admin/solutions/import",
            params={"environment": "prod", "asBot": "retail-qa"},
            content=zipped.content,
            headers={"Content-Type": "application/zip"},
        )
        assert imported.status_code == 200, imported.text
        assert (imported.json()["bot"], imported.json()["layer"]) == ("retail-qa", "managed")
        layers = (await client.get("/api/admin/bots/retail-prod/layers")).json()
        assert [layer["layer"] for layer in layers] == ["managed", "unmanaged"]
        removed = await client.delete("/api/admin/bots/retail-prod/layers/unmanaged")
        assert removed.status_code == 200
        again = await client.delete("/api/admin/bots/retail-prod/layers/unmanaged")
        assert again.status_code == 404 and again.json()["error"]["code"] == "NoUnmanagedLayer"
        broken = await client.post(
            "/api/admin/solutions/import", params={"environment": "prod"}, content=b"garbage"
        )
        assert broken.status_code == 400 and "not a zip archive" in broken.json()["error"]["message"]


async def test_analytics_is_for_supervisors_and_administrators(
    db: Database, database: DatabaseUnderTest
) -> None:
    await apply(db, contact_center("env1", None))
    settings = database.settings(admin_token=TOKEN, routing_worker=False)
    for agent, roles, status in (("ben", ["agent"], 403), ("sam", ["supervisor"], 200)):
        cookie, _ = issue_session(settings, "env1", agent, roles, NOW)
        async for client in api_client(settings):
            client.cookies.set(WORKSPACE_COOKIE, cookie)
            page = await client.get("/admin/analytics", params={"environment": "env1"})
            assert page.status_code == status, agent
            if status == 403:
                assert "needs the supervisor or administrator role; you have: agent" in page.text
            exported = await client.get("/admin/analytics.csv", params={"environment": "env1"})
            assert exported.status_code == status


async def test_unknown_routes_and_bodies_answer_json_errors(database: DatabaseUnderTest) -> None:
    async for client in api_client(database.settings(admin_token=TOKEN, routing_worker=False), **AUTH):
        bad_geography = await client.put(
            "/api/admin/environments/x", json={"name": "X", "geography": "Atlantis", "omnichannel": True}
        )
        assert bad_geography.status_code == 400
        assert bad_geography.json()["error"]["code"] == "BadArgument"
        created = await client.put(
            "/api/admin/environments/x", json={"name": "X", "geography": "Canada", "omnichannel": True}
        )
        assert created.status_code == 200
        extensions = (
            await client.get("/api/admin/environments/x/extensions", params={"voice": "true"})
        ).json()
        assert extensions["missing"] == ["telephony", "omnichannel-bot", "omnichannel-voice-bot"]
        out_of_order = await client.post("/api/admin/environments/x/extensions/omnichannel-voice-bot")
        assert out_of_order.status_code == 409
        assert out_of_order.json()["error"] == {
            "code": "MissingDependency",
            "message": "install telephony, omnichannel-bot before omnichannel-voice-bot "
            "(order: telephony → omnichannel-bot → omnichannel-voice-bot)",
        }
        nothing = await client.put("/api/admin/bots/nope/voice", json={"enabled": True})
        assert nothing.status_code == 404 and nothing.json()["error"]["code"] == "NotFound"
