"""Direct Line tokens: HS256 JWTs bound to one conversation and one user.

A token carries everything the server needs to authorise a request (conversation, user), so any
process can check it without a lookup; secrets are long-lived and never leave the widget owner.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from warmline.channels.directline.errors import token_expired, unauthorized

AUDIENCE = "warmline:directline"


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token grants: one conversation, as one user, until ``expires_at``."""

    conversation_id: str
    user_id: str
    user_name: str | None
    widget_id: str | None
    expires_at: datetime


class TokenIssuer:
    """Signs and checks tokens with the deployment's secret key."""

    def __init__(self, key: str, lifetime_seconds: int) -> None:
        self._key = key
        self.lifetime_seconds = lifetime_seconds

    def issue(
        self,
        *,
        conversation_id: str,
        user_id: str,
        user_name: str | None,
        widget_id: str | None,
        now: datetime,
    ) -> str:
        """A fresh token for ``conversation_id``."""
        claims: dict[str, object] = {
            "aud": AUDIENCE,
            "conv": conversation_id,
            "sub": user_id,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=self.lifetime_seconds)).timestamp()),
            "jti": secrets.token_urlsafe(8),
        }
        if user_name:
            claims["name"] = user_name
        if widget_id:
            claims["wid"] = widget_id
        return jwt.encode(claims, self._key, algorithm="HS256")

    def verify(self, token: str, now: datetime) -> TokenClaims:
        """Claims of a genuine, unexpired token; raises the Direct Line error otherwise."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                options={"verify_exp": False, "verify_iat": False, "require": ["exp", "conv", "sub"]},
            )
        except jwt.InvalidTokenError as error:
            raise unauthorized(f"The token is not valid: {error}.") from error
        expires_at = datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo)
        # Expiry is checked against the injected clock so tests can age tokens without sleeping.
        if expires_at <= now:
            raise token_expired()
        return TokenClaims(
            conversation_id=str(claims["conv"]),
            user_id=str(claims["sub"]),
            user_name=claims.get("name"),
            widget_id=claims.get("wid"),
            expires_at=expires_at,
        )


def looks_like_token(credential: str) -> bool:
    """Tokens are JWTs (three dot-separated parts); secrets never contain a dot."""
    return credential.count(".") == 2


def new_conversation_id() -> str:
    """An unguessable conversation id, safe in URLs and activity ids."""
    return secrets.token_urlsafe(18).replace("-", "A").replace("_", "B")


def new_secret() -> str:
    """A Direct Line secret for a widget (no dots, so it never looks like a token)."""
    return secrets.token_urlsafe(32)
