"""The routing administration API: auth, whole-document and per-item edits, 400/404/409, presence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from tests.routing.factories import NOW, contact_center, make_conversation
from tests.support import DatabaseUnderTest
from warmline.app import create_app
from warmline.routing.actions import do_route_conversation
from warmline.store import Database
from warmline.store.schema import AgentRow, OfferRow, RoutingConfigRow

TOKEN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE = "/api/environments/env1"


@pytest.fixture
async def client(database: DatabaseUnderTest) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process, with an admin token, a fixed clock and no background worker."""
    app = create_app(database.settings(admin_token=TOKEN, routing_worker=False), clock=lambda: NOW)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=AUTH
        ) as client,
    ):
        yield client


def document(**overrides: Any) -> dict[str, Any]:
    """The factory contact center as JSON (ava has a password)."""
    return contact_center(**overrides).model_dump(mode="json")


async def versions(db: Database) -> int:
    async with db.reading() as session:
        count = await session.scalar(select(func.count()).select_from(RoutingConfigRow))
    return count or 0


@pytest.fixture
async def applied(client: httpx.AsyncClient) -> httpx.AsyncClient:
    response = await client.put(f"{BASE}/routing", json=document())
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1
    return client


# --- authentication -------------------------------------------------------------------------------


async def test_without_an_admin_token_setting_the_api_is_disabled(database: DatabaseUnderTest) -> None:
    app = create_app(database.settings(routing_worker=False))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        response = await client.get(f"{BASE}/routing", headers=AUTH)
    assert response.status_code == 403
    assert response.json() == {
        "error": {"code": "Forbidden", "message": "admin API disabled: set WARMLINE_ADMIN_TOKEN"}
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ],
    ids=["missing", "wrong", "not-bearer", "no-scheme"],
)
async def test_a_missing_or_wrong_token_is_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    client.headers.pop("Authorization")
    # Even with a body that would be refused: authentication answers first.
    response = await client.put(f"{BASE}/routing", content=b"{not json", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "Unauthorized"


# --- the whole document ---------------------------------------------------------------------------


async def test_put_then_get_the_document_and_a_second_put_changes_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert (await client.get(f"{BASE}/routing")).status_code == 404
    response = await client.put(f"{BASE}/routing", json=document())
    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert {"sign": "+", "section": "queues", "id": "vip"} in response.json()["changes"]

    current = (await client.get(f"{BASE}/routing")).json()
    assert (current["environment"], current["version"]) == ("env1", 1)
    assert [q["id"] for q in current["document"]["queues"]] == ["general", "vip"]
    assert all("password" not in agent for agent in current["document"]["agents"])

    again = await client.put(f"{BASE}/routing", json=document())
    assert again.json() == {"version": 1, "changes": []}
    # The document read back, without passwords, also applies as "no changes".
    echoed = await client.put(f"{BASE}/routing", json=current["document"])
    assert echoed.json() == {"version": 1, "changes": []}
    assert await versions(db) == 1


async def test_an_invalid_document_is_400_with_every_problem_and_changes_nothing(
    applied: httpx.AsyncClient, db: Database
) -> None:
    broken = document()
    broken["workstreams"][0]["rules"][0]["queue"] = "vip2"
    broken["agents"][0]["skills"] = {"cooking": 3}
    response = await applied.put(f"{BASE}/routing", json=broken)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "InvalidConfiguration",
            "message": "the configuration has 2 problem(s); nothing was changed",
            "problems": [
                {"where": "workstreams[0].rules[0].queue", "message": "unknown queue 'vip2'"},
                {"where": "agents[0].skills", "message": "unknown skill 'cooking'"},
            ],
        }
    }
    model_error = document()
    model_error["workstreams"][0].update(type="voice", distribution="pick")
    model_error["capacity_profiles"][0]["messaging"] = -1
    problems = (await applied.put(f"{BASE}/routing", json=model_error)).json()["error"]["problems"]
    assert problems == [
        {
            "where": "capacity_profiles[0].messaging",
            "message": "input should be greater than or equal to 0 (got '-1')",
        },
        {"where": "workstreams[0]", "message": "a voice workstream must use push distribution"},
    ]
    assert await versions(db) == 1


async def test_a_document_for_another_environment_is_refused(applied: httpx.AsyncClient) -> None:
    response = await applied.put(f"{BASE}/routing", json=document(environment="env2"))
    assert response.status_code == 400
    assert response.json()["error"]["problems"] == [
        {"where": "environment", "message": "the document is for environment 'env2', not 'env1'"}
    ]


async def test_a_body_that_is_not_an_object_is_a_bad_argument(applied: httpx.AsyncClient) -> None:
    response = await applied.put(f"{BASE}/routing", json=["queues"])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadArgument"


# --- queues, workstreams, agents ------------------------------------------------------------------


async def test_queues_are_read_created_replaced_and_deleted(applied: httpx.AsyncClient, db: Database) -> None:
    vip = await applied.get(f"{BASE}/routing/queues/vip")
    assert vip.status_code == 200
    assert (vip.json()["id"], vip.json()["priority"]) == ("vip", 1)
    missing = await applied.get(f"{BASE}/routing/queues/nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "NotFound",
        "message": "environment 'env1' has no queue 'nope'",
    }

    created = await applied.put(f"{BASE}/routing/queues/billing", json={"name": "Billing", "priority": 3})
    assert created.status_code == 201
    assert created.json()["version"] == 2
    assert created.json()["changes"] == [{"sign": "+", "section": "queues", "id": "billing"}]
    assert created.json()["item"]["assignment"] == "highest-capacity"  # defaults filled in

    replaced = await applied.put(f"{BASE}/routing/queues/billing", json={"name": "Billing", "priority": 4})
    assert (replaced.status_code, replaced.json()["version"]) == (200, 3)
    assert replaced.json()["changes"] == [{"sign": "~", "section": "queues", "id": "billing"}]

    bad = await applied.put(f"{BASE}/routing/queues/billing", json={"name": "Billing", "priority": -4})
    assert bad.status_code == 400
    assert bad.json()["error"]["problems"] == [
        {"where": "queues[2].priority", "message": "input should be greater than or equal to 0 (got '-4')"}
    ]
    other_id = await applied.put(f"{BASE}/routing/queues/billing", json={"id": "sales", "name": "Sales"})
    assert other_id.status_code == 400
    assert other_id.json()["error"]["problems"][0]["where"] == "id"

    deleted = await applied.delete(f"{BASE}/routing/queues/billing")
    assert deleted.json() == {"version": 4, "changes": [{"sign": "-", "section": "queues", "id": "billing"}]}
    assert (await applied.get(f"{BASE}/routing/queues/billing")).status_code == 404
    assert (await applied.delete(f"{BASE}/routing/queues/billing")).status_code == 404
    assert await versions(db) == 4


async def test_deleting_a_queue_still_referenced_is_409_naming_the_references(
    applied: httpx.AsyncClient, db: Database
) -> None:
    response = await applied.delete(f"{BASE}/routing/queues/vip")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "Conflict"
    assert error["message"] == (
        "cannot delete queue 'vip': still referenced by workstream 'chat' (rules[0].queue), "
        "agent 'ava' (queues[1]), agent 'cat' (queues[0])"
    )
    assert [p["where"] for p in error["problems"]] == [
        "workstreams[0].rules[0].queue",
        "agents[0].queues[1]",
        "agents[2].queues[0]",
    ]
    assert (await applied.get(f"{BASE}/routing/queues/vip")).status_code == 200
    assert await versions(db) == 1


async def test_deleting_a_workstream_with_a_waiting_conversation_is_409(
    applied: httpx.AsyncClient, db: Database
) -> None:
    await make_conversation(db, "c1")
    async with db.transaction() as tx:
        await do_route_conversation(tx, "c1", environment="env1", workstream_id="chat", variables={}, now=NOW)
    response = await applied.delete(f"{BASE}/routing/workstreams/chat")
    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        "cannot delete workstream 'chat': workstream 'chat' cannot be removed: 1 conversation(s) in it "
        "are not closed yet (transfer or close them first)"
    )
    assert await versions(db) == 1


async def test_workstreams_keep_their_distribution(applied: httpx.AsyncClient) -> None:
    chat = (await applied.get(f"{BASE}/routing/workstreams/chat")).json()
    response = await applied.put(f"{BASE}/routing/workstreams/chat", json={**chat, "distribution": "pick"})
    assert response.status_code == 400
    assert response.json()["error"]["problems"] == [
        {
            "where": "workstreams[0].distribution",
            "message": "a workstream's distribution is fixed after creation ('chat' is push); "
            "create a new workstream instead",
        }
    ]
    created = await applied.put(
        f"{BASE}/routing/workstreams/pick-chat",
        json={"name": "Pick chat", "distribution": "pick", "fallback_queue": "general"},
    )
    assert created.status_code == 201
    assert (await applied.delete(f"{BASE}/routing/workstreams/pick-chat")).status_code == 200


async def test_agents_are_created_with_a_hashed_password_and_deleted_inactive(
    applied: httpx.AsyncClient, db: Database
) -> None:
    created = await applied.put(
        f"{BASE}/routing/agents/dan",
        json={"name": "Dan", "password": "dan-secret", "queues": ["general"], "skills": {"billing": 2}},
    )
    assert created.status_code == 201
    assert "password" not in created.json()["item"]
    shown = (await applied.get(f"{BASE}/routing/agents/dan")).json()
    assert shown == {
        "id": "dan",
        "name": "Dan",
        "roles": ["agent"],
        "capacity_profile": None,
        "skills": {"billing": 2},
        "queues": ["general"],
    }
    async with db.reading() as session:
        row = await session.get(AgentRow, ("env1", "dan"))
    assert row is not None and row.active and PasswordHasher().verify(row.password_hash or "", "dan-secret")

    unknown_queue = await applied.put(f"{BASE}/routing/agents/dan", json={"name": "Dan", "queues": ["vip2"]})
    assert unknown_queue.status_code == 400
    assert unknown_queue.json()["error"]["problems"] == [
        {"where": "agents[3].queues[0]", "message": "unknown queue 'vip2'"}
    ]

    assert (await applied.delete(f"{BASE}/routing/agents/dan")).status_code == 200
    async with db.reading() as session:
        row = await session.get(AgentRow, ("env1", "dan"))
    assert row is not None and not row.active


# --- presence -------------------------------------------------------------------------------------


async def test_presence_changes_and_available_starts_assignment(
    applied: httpx.AsyncClient, db: Database
) -> None:
    await make_conversation(db, "c1")
    async with db.transaction() as tx:
        await do_route_conversation(
            tx,
            "c1",
            environment="env1",
            workstream_id="chat",
            variables={"Context.CustomerTier": "gold"},
            now=NOW,
        )
    response = await applied.put(f"{BASE}/agents/cat/presence", json={"presence": "Available"})
    assert response.status_code == 200
    assert response.json() == {"agent": "cat", "presence": "Available", "text": "Available"}
    async with db.reading() as session:
        offer = await session.scalar(select(OfferRow).where(OfferRow.conversation_id == "c1"))
        row = await session.get(AgentRow, ("env1", "cat"))
    assert offer is not None and offer.agent_id == "cat"
    assert row is not None and row.load_messaging == 1

    away = await applied.put(f"{BASE}/agents/cat/presence", json={"presence": "Away"})
    assert away.json()["presence"] == "Away"


async def test_custom_presences_map_to_their_base(client: httpx.AsyncClient) -> None:
    await client.put(f"{BASE}/routing", json=document(presences=[{"name": "Lunch", "base": "Away"}]))
    response = await client.put(f"{BASE}/agents/ben/presence", json={"presence": "Lunch"})
    assert response.json() == {"agent": "ben", "presence": "Away", "text": "Lunch"}


async def test_an_unknown_presence_is_400_with_the_choices(applied: httpx.AsyncClient) -> None:
    response = await applied.put(f"{BASE}/agents/ava/presence", json={"presence": "Napping"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "BadArgument",
        "message": "unknown presence 'Napping' (choose one of: Available, Busy, Busy-DND, Away, Offline)",
    }


async def test_presence_of_an_unknown_agent_or_environment_is_404(applied: httpx.AsyncClient) -> None:
    response = await applied.put(f"{BASE}/agents/zed/presence", json={"presence": "Available"})
    assert (response.status_code, response.json()["error"]["message"]) == (
        404,
        "environment 'env1' has no agent 'zed'",
    )
    elsewhere = await applied.put(
        "/api/environments/env9/agents/ava/presence", json={"presence": "Available"}
    )
    assert elsewhere.status_code == 404


async def test_a_presence_body_is_validated(applied: httpx.AsyncClient) -> None:
    response = await applied.put(f"{BASE}/agents/ava/presence", json={"status": "Available"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadArgument"


async def test_the_admin_api_is_in_the_openapi_document_with_bearer_auth(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "/api/environments/{env}/routing/queues/{item_id}" in schema["paths"]
    operation = schema["paths"]["/api/environments/{env}/routing"]["put"]
    assert operation["security"] == [{"HTTPBearer": []}]
