"""JWTs between Warmline and an external bot's app registration, both directions, offline.

Warmline → bot: RS256 tokens the Bot Framework SDK validates itself when configured with
Warmline as its channel (``TO_BOT_FROM_CHANNEL_TOKEN_ISSUER`` = the service URL and
``TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL`` = its ``/.well-known/openid-configuration``): the
claims the SDK checks are ``iss``, ``aud`` (the bot's app id) and ``serviceurl``; the key is found
by ``kid`` in the JWKS Warmline serves, endorsed for channel ``warmline``.

Bot → Warmline: HS256 tokens signed with the app password (``appid``, ``aud`` = the service URL,
``exp``). Azure AD would issue the bot's token in the Microsoft cloud; offline, the SDK's
``AppCredentials`` extension point signs it (examples/sdk-bot shows the ten lines).

The RSA key is derived from ``WARMLINE_SECRET_KEY`` (primes drawn from an HMAC stream), so every
process of a deployment signs with the same key and serves the same JWKS without a key file.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CHANNEL_ID = "warmline"
TOKEN_LIFETIME = timedelta(hours=1)
# Clock skew tolerated on tokens bots send (the SDK allows five minutes on ours).
LEEWAY_SECONDS = 300
PRIME_BITS = 1024
PUBLIC_EXPONENT = 65537
SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % d for d in range(3, math.isqrt(p) + 1, 2))]


class BotAuthError(Exception):
    """A bot's request carries no usable credentials for its app registration."""


def _stream(seed: bytes) -> Iterator[int]:
    """Bytes of HMAC-SHA512(seed, counter): a deterministic generator keyed by the secret."""
    counter = 0
    while True:
        yield from hmac.new(seed, counter.to_bytes(8, "big"), hashlib.sha512).digest()
        counter += 1


def _draw(stream: Iterator[int], bits: int) -> int:
    return int.from_bytes(bytes(next(stream) for _ in range(bits // 8)), "big")


def _is_probable_prime(n: int, stream: Iterator[int], rounds: int = 16) -> bool:
    """Miller-Rabin; the candidates are uniformly drawn, so 16 rounds err with probability < 2^-100."""
    if any(n % p == 0 for p in SMALL_PRIMES):
        return n in SMALL_PRIMES
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        a = 2 + _draw(stream, PRIME_BITS) % (n - 3)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(stream: Iterator[int]) -> int:
    while True:
        # Top two bits set, so p*q has exactly 2*PRIME_BITS bits; odd.
        candidate = _draw(stream, PRIME_BITS) | (3 << (PRIME_BITS - 2)) | 1
        if (candidate - 1) % PUBLIC_EXPONENT and _is_probable_prime(candidate, stream):
            return candidate


@functools.lru_cache(maxsize=4)
def signing_key(secret: str) -> rsa.RSAPrivateKey:
    """The deployment's RSA-2048 key for tokens to bots (about a second of work, once per process)."""
    stream = _stream(hmac.new(secret.encode(), b"warmline botconnector signing key v1", "sha256").digest())
    p = _prime(stream)
    q = _prime(stream)
    while q == p:
        q = _prime(stream)
    d = pow(PUBLIC_EXPONENT, -1, math.lcm(p - 1, q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=d % (p - 1),
        dmq1=d % (q - 1),
        iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(PUBLIC_EXPONENT, p * q),
    )
    return numbers.private_key()


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def key_id(key: rsa.RSAPrivateKey) -> str:
    """``kid``: a digest of the public modulus."""
    modulus = key.public_key().public_numbers().n
    return hashlib.sha256(modulus.to_bytes(256, "big")).hexdigest()[:32]


def jwks(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """The JSON Web Key Set bots fetch to check Warmline's tokens."""
    numbers = key.public_key().public_numbers()
    return {
        "keys": [
            {
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": key_id(key),
                "n": _b64(numbers.n),
                "e": _b64(numbers.e),
                # The SDK checks that the activity's channelId is among the key's endorsements.
                "endorsements": [CHANNEL_ID],
            }
        ]
    }


def openid_configuration(service_url: str) -> dict[str, Any]:
    """The discovery document at ``{service_url}/.well-known/openid-configuration``."""
    return {
        "issuer": service_url,
        "jwks_uri": f"{service_url}/.well-known/keys",
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    }


def token_for_bot(key: rsa.RSAPrivateKey, *, app_id: str, service_url: str, now: datetime) -> str:
    """The ``Authorization`` bearer token of one request to a bot's endpoint."""
    claims = {
        "iss": service_url,
        "aud": app_id,
        "serviceurl": service_url,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + TOKEN_LIFETIME).timestamp()),
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": key_id(key)})


@dataclass(frozen=True)
class BotIdentity:
    """Who a verified request came from."""

    app_id: str


def verify_bot_token(
    authorization: str | None, *, app_id: str, app_password: str, service_url: str, now: datetime
) -> BotIdentity:
    """Check a bot's ``Authorization`` header against its app registration; raises ``BotAuthError``."""
    if not authorization:
        raise BotAuthError("this bot's app registration requires an Authorization: Bearer token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise BotAuthError("the Authorization header must be 'Bearer <JWT>'")
    try:
        claims = jwt.decode(
            token,
            app_password,
            algorithms=["HS256"],
            audience=service_url,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "aud"], "verify_iat": False},
        )
    except jwt.ExpiredSignatureError as error:
        raise BotAuthError("the token has expired") from error
    except jwt.InvalidAudienceError as error:
        raise BotAuthError(f"the token's audience must be {service_url}") from error
    except jwt.InvalidTokenError as error:
        raise BotAuthError(f"the token is not valid for this app registration ({error})") from error
    # pyjwt checks exp against the real clock; the deployment's clock decides too (tests move it).
    if int(claims["exp"]) + LEEWAY_SECONDS < now.timestamp():
        raise BotAuthError("the token has expired")
    token_app = claims.get("appid") or claims.get("azp")
    if token_app != app_id:
        raise BotAuthError("the token was issued to another app registration")
    return BotIdentity(app_id=app_id)
