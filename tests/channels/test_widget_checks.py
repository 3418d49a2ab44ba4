"""Widget checks without a server: sign-in tokens, context variables, origin patterns."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from warmline.channels.widget.context import ContextError, validate_context
from warmline.channels.widget.model import ContextVariable, ContextVariableType, WidgetAuth
from warmline.channels.widget.origins import origin_allowed
from warmline.channels.widget.sso import verify_sign_in

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SECRET = "s" * 40
HS = WidgetAuth(algorithm="HS256", secret=SECRET, issuer="https://idp", audience="shop")


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "u-1",
        "name": "Alice",
        "iss": "https://idp",
        "aud": "shop",
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_hs256_token_signs_the_user_in() -> None:
    result = verify_sign_in(HS, jwt.encode(claims(), SECRET, algorithm="HS256"), NOW)
    assert result.ok
    assert (result.user_id, result.display_name) == ("u-1", "Alice")


@pytest.mark.parametrize(
    ("token_claims", "key", "reason"),
    [
        (claims(), "t" * 40, "signature"),
        (claims(exp=int((NOW - timedelta(minutes=5)).timestamp())), SECRET, "expired"),
        (claims(aud="other"), SECRET, "audience"),
        (claims(iss="https://evil"), SECRET, "issuer"),
        (claims(sub=None), SECRET, "'sub'"),
    ],
)
def test_bad_tokens_leave_the_user_anonymous_with_a_reason(
    token_claims: dict[str, Any], key: str, reason: str
) -> None:
    result = verify_sign_in(HS, jwt.encode(token_claims, key, algorithm="HS256"), NOW)
    assert not result.ok
    assert result.failure is not None and reason in result.failure


def test_garbage_token_is_a_clean_failure() -> None:
    result = verify_sign_in(HS, "not-a-jwt", NOW)
    assert not result.ok and result.failure


def test_none_algorithm_is_refused() -> None:
    token = jwt.encode(claims(), None, algorithm="none")
    assert not verify_sign_in(HS, token, NOW).ok


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_rs256_with_public_key_and_with_jwks_file(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    with_pem = WidgetAuth(algorithm="RS256", public_key=pem.decode(), issuer="https://idp", audience="shop")
    assert verify_sign_in(with_pem, token, NOW).ok

    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    with_jwks = WidgetAuth(algorithm="RS256", jwks_file=str(jwks), issuer="https://idp", audience="shop")
    assert verify_sign_in(with_jwks, token, NOW).ok

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims(), other, algorithm="RS256", headers={"kid": "k1"})
    assert not verify_sign_in(with_jwks, forged, NOW).ok
    unknown_kid = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "nope"})
    result = verify_sign_in(with_jwks, unknown_kid, NOW)
    assert not result.ok and result.failure is not None and "nope" in result.failure


def test_auth_settings_need_a_key_for_their_algorithm() -> None:
    with pytest.raises(ValidationError, match="secret"):
        WidgetAuth(algorithm="HS256", issuer="i", audience="a")
    with pytest.raises(ValidationError, match="public_key"):
        WidgetAuth(algorithm="RS256", issuer="i", audience="a")


DECLARED = [
    ContextVariable(name="Tier", type=ContextVariableType.STRING),
    ContextVariable(name="Cart", type=ContextVariableType.NUMBER),
    ContextVariable(name="Vip", type=ContextVariableType.BOOLEAN),
]


def test_declared_context_is_accepted() -> None:
    given = {
        "Tier": {"value": "gold", "isDisplayable": True},
        "Cart": {"value": 12.5, "isDisplayable": False},
        "Vip": {"value": True},
    }
    assert validate_context(DECLARED, given) == {
        "Tier": {"value": "gold", "isDisplayable": True},
        "Cart": {"value": 12.5, "isDisplayable": False},
        "Vip": {"value": True, "isDisplayable": False},
    }


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"Unknown": {"value": "x"}}, "'Unknown' is not declared on this widget (declared: Cart, Tier, Vip)"),
        ({"Cart": {"value": "12"}}, "'Cart' must be a number, not str"),
        ({"Vip": {"value": 1}}, "'Vip' must be a boolean, not int"),
        ({"Cart": {"value": True}}, "'Cart' must be a number, not bool"),
        ({"Tier": "gold"}, "'Tier' must be an object"),
        ({"Tier": {"value": "x", "isDisplayable": "yes"}}, "isDisplayable must be true or false"),
    ],
)
def test_bad_context_is_refused_by_name(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ContextError) as caught:
        validate_context(DECLARED, given)
    assert message in str(caught.value)


def test_more_than_a_hundred_context_variables_are_refused() -> None:
    declared = [ContextVariable(name=f"v{i}") for i in range(101)]
    with pytest.raises(ContextError, match="at most 100"):
        validate_context(declared, {f"v{i}": {"value": "x"} for i in range(101)})


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://127.0.0.1:5173", True),
        ("http://localhost:3000", True),
        ("http://127.0.0.1", False),
        ("http://127.0.0.2:80", False),
        ("https://shop.example.com", True),
        ("https://shop.example.com.evil.net", False),
        ("https://www.shop.example.com", False),
    ],
)
def test_origin_patterns(origin: str, allowed: bool) -> None:
    patterns = ["http://127.0.0.1:*", "http://localhost:*", "https://shop.example.com"]
    assert origin_allowed(origin, patterns) is allowed
