"""What callers hear: Markdown read as words, `speak` first, cards' speak; the espeak-ng engine."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from warmline.activity import Activity, Attachment
from warmline.channels.voice.stt import KeypadOnly, default_recognizer
from warmline.channels.voice.tts import EspeakSynthesizer, markdown_to_speech, speech_text, ssml_to_text


@pytest.mark.parametrize(
    ("markdown", "spoken"),
    [
        (
            "I can help with **store hours**, *order status* and __returns__.",
            "I can help with store hours, order status and returns.",
        ),
        ("# Opening hours\nMonday to Friday", "Opening hours. Monday to Friday."),
        ("- Mon 8-20\n- Sat 9-17", "Mon 8-20. Sat 9-17."),
        ("See [our site](https://contoso.example) or `call us`", "See our site or call us."),
        ("Press * to go back, # to finish", "Press star to go back, pound to finish."),
        ("5 * 3 = 15 and ***bold italic***", "5 star 3 = 15 and bold italic."),
        ("~~old~~ new ![logo](x.png)", "old new logo."),
        ("| Day | Hours |\n|---|---|\n| Mon | 8-20 |", "Day, Hours. Mon, 8-20."),
        ("line one  \nline two", "line one line two."),
    ],
)
def test_markdown_is_read_as_words(markdown: str, spoken: str) -> None:
    assert markdown_to_speech(markdown) == spoken
    assert "*" not in spoken and "asterisk" not in spoken


def test_other_languages_do_not_get_english_key_names() -> None:
    assert markdown_to_speech("Appuyez sur *", "fr-FR") == "Appuyez sur."


def test_speak_wins_over_text_and_ssml_is_read_as_words() -> None:
    activity = Activity(
        type="message", text="**Hello** there", speak="<speak>Hello<break time='1s'/>caller</speak>"
    )
    assert speech_text(activity) == "Hello, caller"
    assert ssml_to_text("plain   words ") == "plain words"


def test_adaptive_cards_speak_their_speak_property() -> None:
    card = Attachment(
        content_type="application/vnd.microsoft.card.adaptive",
        content={
            "type": "AdaptiveCard",
            "speak": "Your order ships tomorrow.",
            "body": [{"type": "TextBlock", "text": "x"}],
        },
    )
    silent = Attachment(content_type="application/vnd.microsoft.card.hero", content={"title": "no speak"})
    activity = Activity(type="message", text="Here is your order:", attachments=[card, silent])
    assert speech_text(activity) == "Here is your order: Your order ships tomorrow."
    assert speech_text(Activity(type="message", text="a *b*", text_format="plain")) == "a *b*"
    assert speech_text(Activity(type="message")) == ""


def test_the_keypad_only_recogniser_wants_no_audio_and_says_so() -> None:
    recognizer, message = default_recognizer()
    assert isinstance(recognizer, KeypadOnly) and message and "DTMF" in message
    assert recognizer.open(locale="en-US", on_speech=lambda: None, on_result=lambda _: None) is None


@pytest.mark.skipif(
    not shutil.which("espeak-ng") or not shutil.which("sox"), reason="espeak-ng and sox are not installed"
)
async def test_espeak_renders_telephone_audio_once_per_text() -> None:
    engine = EspeakSynthesizer()
    first, second = await asyncio.gather(
        engine.synthesize("Thanks for calling Contoso."), engine.synthesize("Thanks for calling Contoso.")
    )
    assert first is second  # one espeak-ng run served both
    seconds = len(first) / 8000
    assert 1.0 < seconds < 4.0
    # μ-law speech: many distinct codes, and not the silence code throughout.
    assert len(set(first)) > 50 and first.count(0xFF) < len(first) / 2
    assert await engine.synthesize("Thanks for calling Contoso.") is first
    assert engine.voice_for("en-US") == "en-us" and engine.voice_for("fr-FR") == "fr-fr"
    assert engine.voice_for("de-DE") == "de" and engine.voice_for("xx-YY") == "en-us"
