"""Agent sign-in sessions: a signed cookie, a CSRF token, and the checks every workspace request runs.

The cookie is an HS256 JWT under a key derived from the deployment's secret key for this purpose
only, with its own audience: a Direct Line token (signed with the secret key itself) can never pass
for a workspace session, and a session can never pass for a Direct Line token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from starlette.requests import HTTPConnection

from warmline.config import Settings

COOKIE = "warmline_workspace"
AUDIENCE = "warmline:workspace"
CSRF_HEADER = "x-csrf-token"
LIFETIME = timedelta(hours=12)
SUPERVISOR_ROLES = frozenset({"supervisor", "administrator"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class AgentSession:
    """Who is signed in: an agent of one environment, their roles, and the session's CSRF token."""

    environment: str
    agent_id: str
    roles: tuple[str, ...]
    csrf: str

    @property
    def is_supervisor(self) -> bool:
        """Supervisors and administrators see their whole environment."""
        return bool(SUPERVISOR_ROLES.intersection(self.roles))


def _key(settings: Settings) -> bytes:
    return hmac.new(settings.secret_key.encode(), b"warmline workspace session v1", hashlib.sha256).digest()


def issue_session(
    settings: Settings, environment: str, agent_id: str, roles: list[str], now: datetime
) -> tuple[str, AgentSession]:
    """A signed cookie value for a fresh session, and the session it holds."""
    session = AgentSession(environment, agent_id, tuple(roles), secrets.token_urlsafe(24))
    claims = {
        "aud": AUDIENCE,
        "env": environment,
        "sub": agent_id,
        "roles": list(roles),
        "csrf": session.csrf,
        "iat": int(now.timestamp()),
        "exp": int((now + LIFETIME).timestamp()),
    }
    return jwt.encode(claims, _key(settings), algorithm="HS256"), session


def read_session(settings: Settings, value: str | None, now: datetime) -> AgentSession | None:
    """The session a cookie value holds, or None when it is missing, forged or expired."""
    if not value:
        return None
    try:
        claims = jwt.decode(
            value,
            _key(settings),
            algorithms=["HS256"],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "env", "csrf"], "verify_exp": False},
        )
    except jwt.PyJWTError:
        return None
    # Expiry is checked against the injected clock (tests move time), not the wall clock.
    if int(claims["exp"]) <= now.timestamp():
        return None
    roles = claims.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        return None
    return AgentSession(str(claims["env"]), str(claims["sub"]), tuple(roles), str(claims["csrf"]))


def cookie_secure(settings: Settings) -> bool:
    """Mark the cookie Secure when clients reach us over HTTPS."""
    return bool(settings.public_base_url and settings.public_base_url.startswith("https://"))


def csrf_ok(session: AgentSession, given: str | None) -> bool:
    """The request carries this session's CSRF token."""
    return given is not None and hmac.compare_digest(given.encode(), session.csrf.encode())


def same_origin(connection: HTTPConnection, settings: Settings) -> bool:
    """A browser request or WebSocket from our own pages (no ``Origin`` means not a browser)."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    if settings.public_base_url and origin.rstrip("/") == settings.public_base_url.rstrip("/"):
        return True
    host = connection.headers.get("host")
    return host is not None and origin.split("://", 1)[-1] == host
