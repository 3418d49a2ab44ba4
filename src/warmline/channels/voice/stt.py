"""Speech in: the pluggable recogniser that turns a caller's voice into text.

DTMF keys always work (they are decoded from RTP and SIP INFO, not recognised). A
``SpeechRecognizer`` adds words: it receives the caller's audio as 8 kHz 16-bit PCM and reports,
on the event loop, when speech starts (barge-in) and what was said. With no engine installed the
server says so once at start-up and callers use the keypad.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Recognition:
    """What the caller said, with the engine's confidence (0-1)."""

    text: str
    confidence: float = 1.0


class RecognitionStream(Protocol):
    """One call's audio going to the engine."""

    def feed(self, pcm: bytes) -> None:
        """Another piece of audio: 8 kHz, mono, signed 16-bit little-endian."""

    def close(self) -> None:
        """The call ended; release the engine's resources."""


class SpeechRecognizer(Protocol):
    """An engine that can listen to calls."""

    name: str

    def open(
        self,
        *,
        locale: str,
        on_speech: Callable[[], None],
        on_result: Callable[[Recognition], None],
    ) -> RecognitionStream | None:
        """Start listening to one call (None: this engine wants no audio); callbacks run on the loop."""


class KeypadOnly:
    """No speech engine: callers answer with DTMF, and their audio is not even decoded."""

    name = "keypad only"

    def open(
        self,
        *,
        locale: str,
        on_speech: Callable[[], None],
        on_result: Callable[[Recognition], None],
    ) -> RecognitionStream | None:
        return None


NO_ENGINE_MESSAGE = (
    "Voice: no speech recogniser is installed, so callers can answer with their phone's keypad "
    "(DTMF) only. See docs/voice.md, 'Speech in', to add one."
)


def default_recognizer() -> tuple[SpeechRecognizer, str | None]:
    """The recogniser to use and, when it is keypad-only, the start-up message to log."""
    return KeypadOnly(), NO_ENGINE_MESSAGE
