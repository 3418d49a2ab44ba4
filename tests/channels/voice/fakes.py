"""Test doubles for the voice channel: a scheduler driven by hand, a recording synthesizer."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(order=True)
class _Timer:
    due: float
    order: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class ManualScheduler:
    """A ``Scheduler`` whose time moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[_Timer] = []
        self._order = itertools.count()

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(self.now + delay, next(self._order), callback)
        heapq.heappush(self._timers, timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Run every timer due within ``seconds``, in order, moving the clock to each."""
        end = self.now + seconds
        while self._timers and self._timers[0].due <= end:
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self.now = timer.due
                timer.callback()
        self.now = end

    @property
    def pending(self) -> int:
        return sum(not t.cancelled for t in self._timers)


class RecordingSynthesizer:
    """Speech out without espeak: 20 ms of audio per character (capped), and a log of what was said."""

    name = "recording"

    def __init__(self, ms_per_char: int = 5, max_seconds: float = 1.0) -> None:
        self.said: list[str] = []
        self.ms_per_char = ms_per_char
        self.max_seconds = max_seconds

    async def synthesize(self, text: str, *, locale: str = "en-US") -> bytes:
        self.said.append(text)
        seconds = min(len(text) * self.ms_per_char / 1000, self.max_seconds)
        return b"\x7f" * max(int(8000 * seconds), 160)
