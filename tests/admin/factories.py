"""Administration test setup: environments, the demo bot published under an id, a contact center."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx

from warmline.admin.actions import do_assign_bot_environment, do_register_app, do_save_environment
from warmline.admin.model import SYSTEM_ADMINISTRATOR, Actor, Geography
from warmline.app import create_app
from warmline.bot.loader import read_bot_folder
from warmline.bot.publishing import do_publish_bot
from warmline.config import Settings
from warmline.demo import DEMO_BOT_FOLDER
from warmline.routing.config import do_apply_config
from warmline.routing.model import ContactCenter
from warmline.store import Database

NOW = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)  # in the past: PyJWT checks "iat" against the wall clock
ADMIN = Actor("test-admin", (SYSTEM_ADMINISTRATOR,))
AGENT = Actor("env1/ben", ("agent",))
TOKEN = "admin-token-for-admin-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def environment(
    db: Database,
    environment_id: str,
    geography: Geography = Geography.UNITED_STATES,
    *,
    omnichannel: bool = True,
) -> str:
    async with db.transaction() as tx:
        await do_save_environment(
            tx, ADMIN, environment_id, environment_id.title(), geography, omnichannel, NOW
        )
    return environment_id


async def publish_bot(db: Database, bot_id: str, environment_id: str | None) -> str:
    """The retail demo bot, published as ``bot_id`` and placed in ``environment_id``."""
    async with db.transaction() as tx:
        await do_publish_bot(tx, bot_id, read_bot_folder(DEMO_BOT_FOLDER), NOW)
    if environment_id is not None:
        async with db.transaction() as tx:
            await do_assign_bot_environment(tx, ADMIN, bot_id, environment_id, NOW)
    return bot_id


async def register_app(db: Database, name: str = "retail app") -> str:
    async with db.transaction() as tx:
        app_id, _ = await do_register_app(tx, ADMIN, name, NOW)
    return app_id


def contact_center(environment_id: str, bot_id: str | None, *, voice: bool = False) -> ContactCenter:
    """A queue or two, a push workstream (a voice one too when ``voice``) with the bot as first agent."""
    document: dict[str, Any] = {
        "environment": environment_id,
        "capacity_profiles": [{"id": "std", "name": "Standard", "messaging": 2, "voice": 1}],
        "queues": [{"id": "general", "name": "General"}],
        "workstreams": [
            {"id": "chat", "name": "Web chat", "bot": bot_id, "fallback_queue": "general"},
        ],
        "agents": [
            {"id": "ava", "name": "Ava", "queues": ["general"], "capacity_profile": "std"},
            {"id": "ben", "name": "Ben", "queues": ["general"], "capacity_profile": "std"},
            {
                "id": "sam",
                "name": "Sam",
                "roles": ["supervisor"],
                "queues": ["general"],
                "capacity_profile": "std",
            },
            {
                "id": "ada",
                "name": "Ada",
                "roles": ["administrator"],
                "queues": ["general"],
                "capacity_profile": "std",
            },
        ],
    }
    if voice:
        document["queues"].append({"id": "phone", "name": "Phone", "type": "voice"})
        document["workstreams"].append(
            {"id": "calls", "name": "Calls", "type": "voice", "bot": bot_id, "fallback_queue": "phone"}
        )
    return ContactCenter.model_validate(document)


async def apply(db: Database, config: ContactCenter) -> None:
    async with db.transaction() as tx:
        await do_apply_config(tx, config, NOW)


async def api_client(settings: Settings, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process with an admin token, a fixed clock and no routing worker."""
    app = create_app(settings, clock=lambda: NOW)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
        ) as client,
    ):
        yield client
