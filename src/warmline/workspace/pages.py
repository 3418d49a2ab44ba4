"""Workspace pages: sign-in, sign-out, the agent workspace and the supervisor view.

Pages are server-rendered; the JavaScript in ``static/`` talks to the JSON API and the WebSocket.
A strict Content-Security-Policy allows only our own scripts, so even a rendering mistake in a
transcript cannot run a customer's markup.
"""

from __future__ import annotations

import asyncio
from functools import cache
from pathlib import Path

from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from warmline.routing.actions import RoutingError, do_set_presence
from warmline.routing.config import PASSWORDS, get_config
from warmline.routing.model import BasePresence
from warmline.runtime import Runtime, get_runtime
from warmline.store.schema import AgentRow, RoutingConfigRow
from warmline.workspace.access import signed_in
from warmline.workspace.session import (
    COOKIE,
    LIFETIME,
    cookie_secure,
    csrf_ok,
    issue_session,
    read_session,
    same_origin,
)

STATIC = Path(__file__).with_name("static")
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
router = APIRouter(tags=["Agent workspace"], include_in_schema=False)

WRONG = "Wrong user name or password."
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


@cache
def _dummy_hash() -> str:
    """A hash no password is checked against for real: an unknown user costs as much as a wrong password."""
    return PASSWORDS.hash("warmline-no-such-user")


def _page(request: Request, name: str, context: dict[str, object], status: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _to_login() -> RedirectResponse:
    return RedirectResponse("/workspace/login", status_code=303)


async def _environments(runtime: Runtime) -> list[str]:
    async with runtime.db.reading() as session:
        return list(await session.scalars(select(RoutingConfigRow.environment_id).distinct()))


async def _login_form(
    request: Request, runtime: Runtime, *, environment: str = "", user: str = "", error: str | None = None
) -> HTMLResponse:
    environments = await _environments(runtime)
    if not environment and len(environments) == 1:
        environment = environments[0]
    context: dict[str, object] = {
        "environment": environment,
        "user": user,
        "error": error,
        "environments": environments,
    }
    return _page(request, "login.html", context, status=401 if error else 200)


@router.get("/workspace/login", response_class=HTMLResponse)
async def login_page(request: Request, env: str = "", runtime: Runtime = Depends(get_runtime)) -> Response:
    """The sign-in form (straight to the workspace when already signed in)."""
    if await signed_in(request, runtime) is not None:
        return RedirectResponse("/workspace", status_code=303)
    return await _login_form(request, runtime, environment=env)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return PASSWORDS.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


@router.post("/workspace/login", response_class=HTMLResponse)
async def login(
    request: Request,
    environment: str = Form(default="", max_length=64),
    user: str = Form(default="", max_length=64),
    password: str = Form(default="", max_length=200),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Check the agent's password and start a session."""
    if not same_origin(request, runtime.settings):
        return _page(request, "message.html", {"title": "Refused", "text": "Sign in from this site."}, 403)
    environment, user = environment.strip(), user.strip()
    async with runtime.db.reading() as session:
        config = await get_config(session, environment) if environment else None
        row = await session.get(AgentRow, (environment, user)) if config and user else None
    entry = config.agents.get(user) if config else None
    usable = row is not None and row.active and entry is not None
    stored = row.password_hash if usable and row is not None else None
    # argon2 is deliberately slow: keep it off the event loop.
    if not await asyncio.to_thread(_verify, stored, password) or entry is None:
        return await _login_form(request, runtime, environment=environment, user=user, error=WRONG)
    value, _ = issue_session(runtime.settings, environment, user, list(entry.roles), runtime.clock())
    response = RedirectResponse("/workspace", status_code=303)
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=cookie_secure(runtime.settings),
        path="/",
    )
    return response


@router.post("/workspace/logout")
async def logout(
    request: Request, csrf: str = Form(default=""), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """Sign out: the agent goes Offline (no more offers) and the cookie is cleared."""
    agent = read_session(runtime.settings, request.cookies.get(COOKIE), runtime.clock())
    if agent is not None:
        if not csrf_ok(agent, csrf or request.headers.get("x-csrf-token")):
            return _page(
                request, "message.html", {"title": "Refused", "text": "Reload the page and try again."}, 403
            )
        try:
            async with runtime.db.transaction() as tx:
                await do_set_presence(
                    tx, agent.environment, agent.agent_id, BasePresence.OFFLINE.value, runtime.clock()
                )
        except RoutingError:
            pass  # the agent or environment is gone; signing out still works
    response = _to_login()
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=cookie_secure(runtime.settings)
    )
    return response


@router.get("/workspace", response_class=HTMLResponse)
async def workspace(request: Request, runtime: Runtime = Depends(get_runtime)) -> Response:
    """The agent workspace."""
    who = await signed_in(request, runtime)
    if who is None:
        return _to_login()
    context = {"agent": who.agent, "name": who.name, "csrf": who.agent.csrf, "page": "workspace"}
    return _page(request, "workspace.html", context)


@router.get("/workspace/supervisor", response_class=HTMLResponse)
async def supervisor(request: Request, runtime: Runtime = Depends(get_runtime)) -> Response:
    """The supervisor view (supervisor or administrator role)."""
    who = await signed_in(request, runtime)
    if who is None:
        return _to_login()
    if not who.agent.is_supervisor:
        text = "The supervisor view needs the supervisor or administrator role."
        return _page(request, "message.html", {"title": "Not allowed", "text": text}, 403)
    context = {"agent": who.agent, "name": who.name, "csrf": who.agent.csrf, "page": "supervisor"}
    return _page(request, "supervisor.html", context)
