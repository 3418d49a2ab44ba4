"""Direct Line tokens are signed, bound to one conversation and user, and expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from warmline.channels.directline.errors import DirectLineError
from warmline.channels.directline.tokens import TokenIssuer, looks_like_token, new_conversation_id, new_secret

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
KEY = "k" * 40


def issue(issuer: TokenIssuer, now: datetime = NOW) -> str:
    return issuer.issue(conversation_id="c1", user_id="dl_u", user_name="Pat", widget_id="demo", now=now)


def test_token_round_trip_keeps_the_binding() -> None:
    issuer = TokenIssuer(KEY, 1800)
    claims = issuer.verify(issue(issuer), NOW + timedelta(minutes=29))
    assert (claims.conversation_id, claims.user_id, claims.user_name, claims.widget_id) == (
        "c1",
        "dl_u",
        "Pat",
        "demo",
    )
    assert claims.expires_at == NOW + timedelta(seconds=1800)


def test_expired_token_is_refused_with_token_expired() -> None:
    issuer = TokenIssuer(KEY, 60)
    with pytest.raises(DirectLineError) as caught:
        issuer.verify(issue(issuer), NOW + timedelta(seconds=60))
    assert (caught.value.status, caught.value.code) == (403, "TokenExpired")


def test_token_signed_with_another_key_is_unauthorized() -> None:
    token = issue(TokenIssuer("x" * 40, 60))
    with pytest.raises(DirectLineError) as caught:
        TokenIssuer(KEY, 60).verify(token, NOW)
    assert caught.value.status == 401


def test_tampered_conversation_claim_is_refused() -> None:
    issuer = TokenIssuer(KEY, 60)
    header, _, signature = issue(issuer).split(".")
    forged_claims = jwt.encode({"conv": "other", "sub": "dl_u", "exp": 9999999999}, "guess" * 8).split(".")[1]
    with pytest.raises(DirectLineError):
        issuer.verify(f"{header}.{forged_claims}.{signature}", NOW)


def test_secrets_and_ids_cannot_be_mistaken_for_tokens() -> None:
    assert not looks_like_token(new_secret())
    assert looks_like_token(issue(TokenIssuer(KEY, 60)))
    ids = {new_conversation_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(i.isalnum() for i in ids)
