"""Who is calling the administration API and pages, and as which roles.

Three ways in: ``Authorization: Bearer <WARMLINE_ADMIN_TOKEN>`` (scripts; a System Administrator),
the admin sign-in cookie (a browser that typed that token into ``/admin/login``; also a System
Administrator), or a workspace session (an agent acting with the roles the current routing
configuration gives them). Cookie callers must send the session's CSRF token on every change.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from starlette.requests import HTTPConnection

from warmline.admin.model import SYSTEM_ADMINISTRATOR, Actor
from warmline.config import Settings
from warmline.runtime import Runtime
from warmline.workspace.access import signed_in
from warmline.workspace.session import same_origin

ADMIN_COOKIE = "warmline_admin"
AUDIENCE = "warmline:admin"
LIFETIME = timedelta(hours=8)
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Caller:
    """An authenticated caller; ``csrf`` is None for bearer-token callers (no cookie, no CSRF risk)."""

    actor: Actor
    csrf: str | None
    via: str  # "token" | "admin-session" | "workspace"


def _key(settings: Settings, token: str) -> bytes:
    # Bound to the admin token as well: rotating WARMLINE_ADMIN_TOKEN signs every browser out.
    material = b"warmline admin session v1\x00" + hashlib.sha256(token.encode()).digest()
    return hmac.new(settings.secret_key.encode(), material, hashlib.sha256).digest()


def token_matches(settings: Settings, given: str) -> bool:
    """The admin token is configured and ``given`` is it (constant time)."""
    token = settings.admin_token
    return token is not None and secrets.compare_digest(given.strip().encode(), token.encode())


def issue_admin_session(settings: Settings, now: datetime) -> str:
    """A signed cookie value for a browser that proved it knows the admin token."""
    assert settings.admin_token is not None
    claims = {
        "aud": AUDIENCE,
        "sub": "admin",
        "csrf": secrets.token_urlsafe(24),
        "iat": int(now.timestamp()),
        "exp": int((now + LIFETIME).timestamp()),
    }
    return jwt.encode(claims, _key(settings, settings.admin_token), algorithm="HS256")


def read_admin_session(settings: Settings, value: str | None, now: datetime) -> str | None:
    """The CSRF token of a valid admin session cookie, or None."""
    if not value or settings.admin_token is None:
        return None
    try:
        claims = jwt.decode(
            value,
            _key(settings, settings.admin_token),
            algorithms=["HS256"],
            audience=AUDIENCE,
            options={"require": ["exp", "csrf"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None
    # Expiry against the injected clock, like the workspace session.
    if int(claims["exp"]) <= now.timestamp():
        return None
    return str(claims["csrf"])


async def _workspace_caller(connection: HTTPConnection, runtime: Runtime) -> Caller | None:
    who = await signed_in(connection, runtime)
    if who is None:
        return None
    agent = who.agent
    # signed_in reads the roles from the current configuration: a role taken away applies at once.
    return Caller(Actor(f"{agent.environment}/{agent.agent_id}", agent.roles), agent.csrf, "workspace")


async def identify(connection: HTTPConnection, runtime: Runtime) -> Caller | None:
    """The caller of this request, or None when it carries no valid credentials."""
    settings = runtime.settings
    scheme, _, given = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        if token_matches(settings, given):
            return Caller(Actor("admin-token", (SYSTEM_ADMINISTRATOR,)), None, "token")
        return None
    csrf = read_admin_session(settings, connection.cookies.get(ADMIN_COOKIE), runtime.clock())
    if csrf is not None:
        return Caller(Actor("admin", (SYSTEM_ADMINISTRATOR,)), csrf, "admin-session")
    return await _workspace_caller(connection, runtime)


def change_allowed(connection: HTTPConnection, settings: Settings, caller: Caller, given: str | None) -> bool:
    """Cookie callers change things only from our own pages, with their session's CSRF token."""
    if caller.csrf is None:
        return True
    return (
        given is not None
        and hmac.compare_digest(given.encode(), caller.csrf.encode())
        and same_origin(connection, settings)
    )
