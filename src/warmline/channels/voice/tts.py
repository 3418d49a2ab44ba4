"""Speech out: what a bot message sounds like, and the engine that says it.

``speech_text`` picks the words (``speak`` wins over text; an Adaptive Card speaks its ``speak``
property; Markdown is rendered to plain words so nobody hears "asterisk"). A
``SpeechSynthesizer`` turns them into 8 kHz μ-law; the default runs espeak-ng and sox, both from
Debian, and caches by text, since most prompts are said again and again.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Protocol

from markdown_it import MarkdownIt
from markdown_it.token import Token

from warmline.activity import Activity

log = logging.getLogger(__name__)

_MARKDOWN = MarkdownIt("commonmark").enable("table").enable("strikethrough")
_SENTENCE_END = re.compile(r"[.!?:;,]$")
_SSML_BREAK = re.compile(r"<break\b[^>]*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


class SpeechSynthesizer(Protocol):
    """Text to telephone audio: 8 kHz, mono, μ-law, no header."""

    name: str

    async def synthesize(self, text: str, *, locale: str = "en-US") -> bytes: ...


def speech_text(activity: Activity, locale: str = "en-US") -> str:
    """The words a caller hears for a bot message ('' when there is nothing to say)."""
    if activity.speak:
        return ssml_to_text(activity.speak)
    spoken: list[str] = []
    for attachment in activity.attachments or []:
        content = attachment.content if isinstance(attachment.content, dict) else {}
        if isinstance(content.get("speak"), str) and content["speak"].strip():
            spoken.append(ssml_to_text(content["speak"]))
    if activity.text:
        text = (
            activity.text
            if activity.text_format in ("plain", "xml")
            else markdown_to_speech(activity.text, locale)
        )
        spoken.insert(0, text)
    return " ".join(s for s in spoken if s).strip()


def ssml_to_text(value: str) -> str:
    """SSML or plain ``speak`` to plain words (a ``<break>`` becomes a pause)."""
    if "<" not in value:
        return _normalise(value)
    return _normalise(_TAG.sub(" ", _SSML_BREAK.sub(", ", value)))


def markdown_to_speech(text: str, locale: str = "en-US") -> str:
    """Markdown to sentences: markup dropped, links read by their text, list items as sentences."""
    parts: list[str] = []
    for token in _MARKDOWN.parse(text):
        if token.type == "inline":
            parts.append(_inline(token.children or []))
        elif token.type in ("fence", "code_block"):
            parts.append(token.content.strip())
        elif token.type in ("paragraph_close", "heading_close", "list_item_close", "th_close", "td_close"):
            _end_sentence(parts, "," if token.type in ("th_close", "td_close") else ".")
        elif token.type == "tr_close":
            _end_sentence(parts, ".")
    return _keypad_words(_normalise(" ".join(parts)), locale)


def _inline(children: Iterable[Token]) -> str:
    out: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif child.type == "image":
            out.append(child.content)
    return "".join(out)


def _end_sentence(parts: list[str], mark: str) -> None:
    if parts:
        last = parts[-1].rstrip()
        if mark == "." and last.endswith(","):  # the last cell of a table row ends the row
            last = last[:-1]
        parts[-1] = last if not last or _SENTENCE_END.search(last) else last + mark


def _keypad_words(text: str, locale: str) -> str:
    """A lone ``*`` or ``#`` is a phone key; read it as one (other stray markup is dropped)."""
    english = locale.lower().startswith("en")
    text = re.sub(r"(?<![\w*])\*(?![\w*])", " star " if english else " ", text)
    text = re.sub(r"(?<![\w#])#(?![\w#])", " pound " if english else " ", text)
    return _normalise(text.replace("*", " ").replace("_", " "))


def _normalise(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\s+([.,!?;:])", r"\1", text)


class EspeakSynthesizer:
    """espeak-ng renders speech, sox resamples it to 8 kHz μ-law; results are cached by text."""

    name = "espeak-ng"

    def __init__(
        self,
        *,
        espeak: str = "espeak-ng",
        sox: str = "sox",
        cache_bytes: int = 32 * 1024 * 1024,
        concurrency: int = 4,
        voices: Iterable[str] = (),
    ) -> None:
        self.espeak = espeak
        self.sox = sox
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._cached_bytes = 0
        self._pending: dict[tuple[str, str], asyncio.Future[bytes]] = {}
        self._limit = asyncio.Semaphore(concurrency)
        self._voices = set(voices)
        self._voices_loaded = bool(self._voices)

    @staticmethod
    def missing(espeak: str = "espeak-ng", sox: str = "sox") -> list[str]:
        """The programs this engine needs that are not installed."""
        return [program for program in (espeak, sox) if shutil.which(program) is None]

    def voice_for(self, locale: str) -> str:
        """An installed espeak-ng voice for a locale: ``fr-FR`` → ``fr-fr``, ``de-DE`` → ``de``."""
        full = locale.lower()
        language = full.split("-", 1)[0]
        if not self._voices:
            return full if full in ("en-us", "en-gb") else language
        for candidate in (full, language, f"{language}-{language}"):
            if candidate in self._voices:
                return candidate
        return "en-us"

    async def load_voices(self) -> None:
        """Read the installed voices once (``espeak-ng --voices``)."""
        process = await asyncio.create_subprocess_exec(
            self.espeak, "--voices", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        out, _ = await process.communicate()
        self._voices = {
            line.split()[1] for line in out.decode(errors="replace").splitlines()[1:] if line.split()
        }

    async def synthesize(self, text: str, *, locale: str = "en-US") -> bytes:
        """The μ-law audio for ``text`` (cached; concurrent requests for one text share one run)."""
        if not self._voices_loaded:
            self._voices_loaded = True
            try:
                await self.load_voices()
            except OSError as error:
                log.warning("espeak-ng --voices failed (%s); using en-us", error)
        key = (self.voice_for(locale), text)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            audio = await self._render(*key)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: waiters re-raise it, nobody else must log it
            raise
        finally:
            self._pending.pop(key, None)
        future.set_result(audio)
        self._remember(key, audio)
        return audio

    async def _render(self, voice: str, text: str) -> bytes:
        async with self._limit:
            espeak = await asyncio.create_subprocess_exec(
                self.espeak,
                "-v",
                voice,
                "--stdout",
                "--",
                text,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            wav, errors = await espeak.communicate()
            if espeak.returncode != 0:
                raise RuntimeError(
                    f"espeak-ng failed ({espeak.returncode}): {errors.decode(errors='replace')[:200]}"
                )
            sox = await asyncio.create_subprocess_exec(
                self.sox,
                "-t",
                "wav",
                "-",
                "-r",
                "8000",
                "-c",
                "1",
                "-e",
                "mu-law",
                "-t",
                "raw",
                "-",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            audio, errors = await sox.communicate(wav)
            if sox.returncode != 0:
                raise RuntimeError(f"sox failed ({sox.returncode}): {errors.decode(errors='replace')[:200]}")
            return audio

    def _remember(self, key: tuple[str, str], audio: bytes) -> None:
        self._cache[key] = audio
        self._cached_bytes += len(audio)
        while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= len(dropped)


class SilentSynthesizer:
    """Stands in when espeak-ng or sox is missing: a pause as long as the words would take."""

    name = "silence (no speech engine installed)"

    async def synthesize(self, text: str, *, locale: str = "en-US") -> bytes:
        # About 15 characters a second, the pace of espeak-ng's default voice.
        return b"\xff" * int(8000 * max(len(text), 1) / 15)


def default_synthesizer(**options: Any) -> tuple[SpeechSynthesizer, str | None]:
    """espeak-ng + sox if both are installed; else silence and the start-up warning to log."""
    missing = EspeakSynthesizer.missing()
    if missing:
        return SilentSynthesizer(), (
            f"Voice: {' and '.join(missing)} not installed, so callers will hear silence instead of "
            "the bot (install the Debian packages espeak-ng and sox)."
        )
    return EspeakSynthesizer(**options), None
