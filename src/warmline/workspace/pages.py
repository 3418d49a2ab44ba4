"""Workspace pages."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["Agent workspace"])


@router.get("/workspace", response_class=HTMLResponse)
async def workspace() -> str:
    """Placeholder until the agent workspace lands; says so plainly."""
    return (
        "<!doctype html><title>Warmline agent workspace</title>"
        "<h1>Agent workspace</h1><p>The agent workspace is not built yet: conversations stay "
        "with the bot for now.</p>"
    )
