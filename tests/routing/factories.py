"""Factories for routing tests: a small contact center and conversations to route."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from warmline.conversations.actions import do_create_conversation
from warmline.conversations.model import Customer
from warmline.routing.config import do_apply_config
from warmline.routing.model import ContactCenter
from warmline.store import Database

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # a Thursday


def contact_center(**overrides: Any) -> ContactCenter:
    """Two queues (general, vip), three agents, a push messaging workstream with one rule."""
    document: dict[str, Any] = {
        "environment": "env1",
        "skills": [{"id": "billing", "name": "Billing"}, {"id": "french", "name": "French"}],
        "capacity_profiles": [{"id": "chat2", "name": "Two chats", "messaging": 2, "voice": 1}],
        "queues": [
            {"id": "general", "name": "General", "priority": 10},
            {"id": "vip", "name": "VIP", "priority": 1},
        ],
        "workstreams": [
            {
                "id": "chat",
                "name": "Web chat",
                "fallback_queue": "general",
                "offer_timeout_seconds": 60,
                "rules": [{"name": "gold", "condition": '=Context.CustomerTier = "gold"', "queue": "vip"}],
            }
        ],
        "agents": [
            {
                "id": "ava",
                "name": "Ava",
                "queues": ["general", "vip"],
                "capacity_profile": "chat2",
                "skills": {"billing": 5},
                "password": "demo",
            },
            {"id": "ben", "name": "Ben", "queues": ["general"], "capacity_profile": "chat2"},
            {"id": "cat", "name": "Cat", "queues": ["vip"], "capacity_profile": "chat2"},
        ],
    }
    document.update(overrides)
    return ContactCenter.model_validate(document)


async def apply(db: Database, config: ContactCenter | None = None, now: datetime = NOW) -> int:
    async with db.transaction() as tx:
        version, _ = await do_apply_config(tx, config or contact_center(), now)
    return version


async def make_conversation(db: Database, conversation_id: str, now: datetime = NOW) -> str:
    async with db.transaction() as tx:
        await do_create_conversation(
            tx,
            conversation_id=conversation_id,
            channel="directline",
            customer=Customer(id=f"u-{conversation_id}"),
            now=now,
        )
    return conversation_id
