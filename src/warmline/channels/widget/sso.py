"""Checking the host page's sign-in token (single sign-on) against a widget's auth settings.

A failed check never blocks the chat: the customer continues anonymous and is told why. The
raw token is used here and nowhere else; only the outcome (user id, name, reason) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt

from warmline.channels.widget.model import WidgetAuth

LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class SignIn:
    """Outcome of a sign-in check: a user, or the reason there is none."""

    user_id: str | None = None
    display_name: str | None = None
    failure: str | None = None

    @property
    def ok(self) -> bool:
        """True when the token was genuine and current."""
        return self.user_id is not None


def _key(auth: WidgetAuth, token: str) -> Any:
    if auth.algorithm == "HS256":
        return auth.secret
    if auth.public_key:
        return auth.public_key
    assert auth.jwks_file is not None
    keys = jwt.PyJWKSet.from_json(Path(auth.jwks_file).read_text())
    kid = jwt.get_unverified_header(token).get("kid")
    for key in keys.keys:
        if kid is None or key.key_id == kid:
            return key.key
    raise jwt.InvalidKeyError(f"no key with kid '{kid}' in the widget's JWKS file")


def verify_sign_in(auth: WidgetAuth, token: str, now: datetime) -> SignIn:
    """Check signature, ``exp``, ``iss`` and ``aud``; return the user or why not."""
    try:
        key = _key(auth, token)
        claims = jwt.decode(
            token,
            key,
            algorithms=[auth.algorithm],
            audience=auth.audience,
            issuer=auth.issuer,
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["exp", "iss", "aud", "sub"],
            },
        )
    except jwt.ExpiredSignatureError:
        return SignIn(failure="the sign-in token has expired")
    except jwt.InvalidSignatureError:
        return SignIn(failure="the sign-in token's signature is not valid")
    except jwt.InvalidAudienceError:
        return SignIn(failure="the sign-in token is for another audience")
    except jwt.InvalidIssuerError:
        return SignIn(failure="the sign-in token comes from an issuer this widget does not trust")
    except jwt.MissingRequiredClaimError as error:
        return SignIn(failure=f"the sign-in token lacks the '{error.claim}' claim")
    except (jwt.PyJWTError, OSError, ValueError) as error:
        return SignIn(failure=f"the sign-in token could not be read ({error})")
    expires = datetime.fromtimestamp(float(claims["exp"]), tz=UTC)
    # Expiry against the injected clock, so tests age tokens without waiting.
    if (now - expires).total_seconds() > LEEWAY_SECONDS:
        return SignIn(failure="the sign-in token has expired")
    if "nbf" in claims and float(claims["nbf"]) - now.timestamp() > LEEWAY_SECONDS:
        return SignIn(failure="the sign-in token is not valid yet (nbf)")
    name = claims.get(auth.name_claim) or claims.get("preferred_username")
    return SignIn(user_id=str(claims["sub"]), display_name=str(name) if name else None)
