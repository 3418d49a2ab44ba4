"""The health endpoint reports the database and the event bus, and says when either is down."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support import DatabaseUnderTest, LiveServer


def test_healthy_with_redis(database: DatabaseUnderTest, tmp_path: Path) -> None:
    server = LiveServer(database.settings(redis_url="redis://127.0.0.1:6379/0", routing_worker=False)).start()
    try:
        for _ in range(50):
            body = httpx.get(f"{server.url}/healthz").json()
            if body["events"]["connected"]:
                break
        assert body["status"] == "ok"
        assert body["database"] == {"connected": True}
        assert body["events"]["backend"] == "redis"
    finally:
        server.stop()


def test_redis_outage_is_visible(database: DatabaseUnderTest) -> None:
    server = LiveServer(database.settings(redis_url="redis://127.0.0.1:1/0", routing_worker=False)).start()
    try:
        response = httpx.get(f"{server.url}/healthz")
        assert response.status_code == 503
        assert response.json()["status"] == "degraded"
        assert response.json()["events"]["connected"] is False
    finally:
        server.stop()
