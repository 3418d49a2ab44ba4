"""Microsoft's own ``botframework-directlinejs`` client, run with node, against a live server.

``node/directline-client.js`` starts a conversation, exchanges messages, ends the client (its socket
closes), has two messages posted while it is away, reconnects with the watermark, refreshes its token
and sends again. It prints what the client observed; this test checks every activity arrived once.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import LiveServer

pytestmark = pytest.mark.node

NODE_DIR = Path(__file__).resolve().parents[2] / "node"
SCRIPT = NODE_DIR / "directline-client.js"


def run_client(server: LiveServer, secret: str, scenario: str) -> dict[str, Any]:
    """Run the node client to the end and return its report."""
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "botframework-directlinejs").is_dir():
        pytest.fail("node and node/node_modules are needed: run `make install` (it runs npm install).")
    completed = subprocess.run(
        [node, str(SCRIPT), "--domain", server.domain, "--secret", secret, "--scenario", scenario],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=NODE_DIR,
    )
    assert completed.returncode == 0, f"client failed:\n{completed.stderr}\n{completed.stdout}"
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


def server_history(server: LiveServer, conversation_id: str, token: str) -> list[dict[str, Any]]:
    """Everything the server holds for the conversation, paging by watermark."""
    activities: list[dict[str, Any]] = []
    watermark = ""
    with httpx.Client(timeout=10) as client:
        while True:
            page = client.get(
                f"{server.domain}/conversations/{conversation_id}/activities",
                params={"watermark": watermark},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            if not page["activities"]:
                return activities
            activities.extend(page["activities"])
            watermark = page["watermark"]


def seq(activity_id: str) -> int:
    return int(activity_id.rsplit("|", 1)[1])


def exactly_one(activities: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    matches = [a for a in activities if all(a.get(k) == v for k, v in fields.items())]
    assert len(matches) == 1, f"expected one activity with {fields}, got {matches}"
    return matches[0]


@pytest.mark.parametrize("scenario", ["websocket", "polling"])
def test_directlinejs_sees_every_activity_once_across_a_reconnect(
    live_server: LiveServer, secret: str, scenario: str
) -> None:
    report = run_client(live_server, secret, scenario)
    conversation_id = report["conversationId"]
    server_id = re.compile(rf"^{re.escape(conversation_id)}\|\d{{7}}$")
    first, second = report["phases"]
    away = report["disconnected"]

    # Both clients connected and stayed online until the script ended them.
    for phase in (first, second):
        assert phase["statuses"] == ["Uninitialized", "Connecting", "Online", "Ended"], phase["statuses"]

    # The greeting comes first, from the bot.
    greeting = first["activities"][0]
    assert greeting["id"] == report["greetingId"]
    assert greeting["from"]["role"] == "bot"
    assert greeting["text"].startswith("Hello")

    # Each message the client sent: a server id, echoed back once with its client id, replied to once.
    for phase in (first, second):
        for posted in phase["posted"]:
            assert server_id.match(posted["id"]), posted
            echo = exactly_one(phase["activities"], id=posted["id"])
            assert echo["text"] == posted["text"]
            assert echo["channelData"]["clientActivityID"] == posted["clientActivityID"]
            assert echo["from"]["role"] == "user"
            reply = exactly_one(phase["activities"], replyToId=posted["id"])
            assert reply["text"] == f"You said: {posted['text']}"
    assert [p["text"] for p in first["posted"]] == ["first message", "second message"]
    assert [p["text"] for p in second["posted"]] == ["third message"]

    # The client resumed from the watermark of the last activity it had seen...
    assert away["watermark"] == str(seq(first["activities"][-1]["id"]))
    # ...and what was posted while it was away arrived after the reconnect, not before.
    first_ids = {a["id"] for a in first["activities"]}
    for posted in away["posted"]:
        assert posted["id"] not in first_ids
        exactly_one(second["activities"], id=posted["id"])
        exactly_one(second["activities"], replyToId=posted["id"], text=f"You said: {posted['text']}")

    # Across the whole run nothing is missing and nothing came twice, in the server's order.
    received = [a["id"] for phase in (first, second) for a in phase["activities"]]
    assert [i for i, n in Counter(received).items() if n > 1] == []
    history = server_history(live_server, conversation_id, report["token"])
    assert received == [a["id"] for a in history]
    assert len(received) == 11  # the greeting, then 5 messages each echoed and replied to
    for phase in (first, second):
        watermarks = [int(a["watermark"]) for a in phase["activities"]]
        assert watermarks == sorted(watermarks)
    assert second["finalWatermark"] == str(seq(received[-1]))

    # How the client talked to us: reconnect via GET conversation?watermark, then a working refresh.
    requests = [
        (r["method"], r["path"], r["query"].get("watermark"), r["status"]) for r in report["requests"]
    ]
    conversation_path = f"/v3/directline/conversations/{conversation_id}"
    reconnect = requests.index(("GET", conversation_path, away["watermark"], 200))
    refresh = requests.index(("POST", "/v3/directline/tokens/refresh", None, 200))
    assert reconnect < refresh < len(requests) - 1
    assert second["refreshed"] is True
    assert all(status in (200, 201) for *_, status in requests), requests
    if scenario == "websocket":
        dropped, resumed = report["sockets"]
        assert dropped["opened"] and "closeCode" in dropped and dropped["hasToken"]
        assert "watermark" not in dropped["query"]
        assert resumed["opened"] and resumed["hasToken"]
        assert resumed["query"]["watermark"] == away["watermark"]
        assert resumed["path"] == f"{conversation_path}/stream"
    else:
        assert report["sockets"] == []
        polls_after_reconnect = [
            w for m, p, w, _ in requests[reconnect:] if m == "GET" and p == f"{conversation_path}/activities"
        ]
        assert polls_after_reconnect[0] == away["watermark"]
