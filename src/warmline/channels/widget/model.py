"""Widget configuration as validated models (the REST API, the seed and the store share them)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,99}$")


class ContextVariableType(StrEnum):
    """Types a declared context variable may have."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"


class ContextVariable(BaseModel):
    """A context variable the host page may set, as declared on the widget."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN.pattern)
    type: ContextVariableType = ContextVariableType.STRING


class WidgetAuth(BaseModel):
    """How the host page's sign-in token (JWT) is verified.

    HS256 uses a shared ``secret``; RS256 uses a PEM ``public_key`` or a ``jwks_file`` on disk.
    """

    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["HS256", "RS256"]
    secret: str | None = Field(default=None, min_length=32)
    public_key: str | None = None
    jwks_file: str | None = None
    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    name_claim: str = "name"

    @model_validator(mode="after")
    def _key_matches_algorithm(self) -> WidgetAuth:
        if self.algorithm == "HS256" and not self.secret:
            raise ValueError("HS256 sign-in needs 'secret' (at least 32 characters)")
        if self.algorithm == "RS256" and not (self.public_key or self.jwks_file):
            raise ValueError("RS256 sign-in needs 'public_key' (PEM) or 'jwks_file'")
        return self


class Widget(BaseModel):
    """A chat widget record."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    target_workstream: str | None = Field(default=None, max_length=64)
    allowed_origins: list[str] = Field(default_factory=list, max_length=100)
    auth: WidgetAuth | None = None
    context_variables: list[ContextVariable] = Field(default_factory=list, max_length=100)


class EmbedMode(StrEnum):
    """Full omnichannel embed, or the bot-only test embed that cannot hand off."""

    OMNICHANNEL = "omnichannel"
    BOT_ONLY = "bot-only"
