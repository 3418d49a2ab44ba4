"""Dialog state: what a conversation's bot remembers between turns, as plain JSON.

Stored after every turn (``dialog_states``), so a restart mid-question resumes the same question.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Frame:
    """One running topic: where it is and its ``Topic.*`` variables."""

    topic: str
    pc: int = 0
    variables: dict[str, Any] = field(default_factory=dict)
    asking: str | None = None  # id of the Question waiting for an answer
    attempts: int = 0
    outputs: list[list[str]] = field(default_factory=list)  # [output name, caller variable]


@dataclass
class DialogState:
    """A conversation's bot state."""

    frames: list[Frame] = field(default_factory=list)
    globals: dict[str, Any] = field(default_factory=dict)
    fallback_count: int = 0
    topics: list[str] = field(default_factory=list)  # va_Topics: topics started by a user phrase
    phrases: list[str] = field(default_factory=list)  # va_Phrases
    last_topic: str | None = None
    choosing: list[str] = field(default_factory=list)  # topics offered by "Did you mean…"
    turns: int = 0
    ended: bool = False
    last_message: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] = field(default_factory=dict)
    collected: dict[str, Any] = field(default_factory=dict)  # Topic.* of finished topics, latest wins

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe copy (datetimes tagged)."""
        return _encode(asdict(self))  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DialogState:
        """The state stored by ``to_json``."""
        decoded = _decode(data)
        frames = [Frame(**f) for f in decoded.pop("frames", [])]
        return cls(frames=frames, **decoded)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$datetime"}:
            return datetime.fromisoformat(value["$datetime"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value
