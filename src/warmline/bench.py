"""A raw WebSocket echo endpoint, mounted only when ``WARMLINE_BENCH_ECHO=1``.

It exists as the baseline of ``benchmarks/directline_roundtrip.py``: the same server process, event
loop, HTTP stack and WebSocket library as a Direct Line turn, but no auth, bot or database. The ratio
of a turn to one echo round trip measures what Warmline itself costs, on whatever machine runs it.
"""

from __future__ import annotations

from starlette.websockets import WebSocket, WebSocketDisconnect

ECHO_PATH = "/bench/echo"


async def echo(websocket: WebSocket) -> None:
    """Send every text frame straight back until the client goes away."""
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        return
