"""Locale codes voice hand-off accepts (seed-system-notes §4.2: end-to-end IVR support)."""

from __future__ import annotations

import langcodes

END_TO_END_VOICE_LOCALES = frozenset(
    code.lower()
    for code in [
        "ar-SA",
        "zh-CN",
        "zh-HK",
        "zh-TW",
        "cs-CZ",
        "da-DK",
        "nl-NL",
        "en-US",
        "fi-FI",
        "fr-FR",
        "de-DE",
        "el-GR",
        "hi-IN",
        "id-ID",
        "it-IT",
        "ja-JP",
        "ko-KR",
        "nb-NO",
        "pl-PL",
        "pt-BR",
        "ru-RU",
        "es-ES",
        "sv-SE",
        "th-TH",
        "tr-TR",
    ]
)


def locale_problem(code: str) -> str | None:
    """Why ``code`` can't be a customer locale, or None when it can (compared case-insensitively)."""
    if not langcodes.tag_is_valid(code):
        return f"'{code}' is not a locale code (expected a tag such as en-US)"
    if code.lower() not in END_TO_END_VOICE_LOCALES:
        return (
            f"locale '{code}' is not supported for voice hand-off "
            f"(supported: {', '.join(sorted(END_TO_END_VOICE_LOCALES))})"
        )
    return None
