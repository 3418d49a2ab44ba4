"""Trigger-phrase recognition: the right topic, a 'Did you mean' when two are close, nothing for noise."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmline.bot.recognizer import Intent, Recognition, Recognizer

# The verbatim Copilot Studio lesson's triggers plus a retail bot's usual topics.
INTENTS = (
    Intent(
        "Lesson3",
        "Lesson 3 - A topic with a condition, variables and a pre-built entity",
        ("Buy items", "Buy online", "Buy product", "Purchase item", "Order product"),
    ),
    Intent(
        "OrderStatus",
        "Order status",
        ("Where is my order", "Order status", "Track my package", "When will my order arrive"),
    ),
    Intent(
        "StoreHours",
        "Store hours",
        ("What are your hours", "Store hours", "When are you open", "opening times"),
    ),
    Intent(
        "Returns",
        "Returns",
        ("I want to return an item", "Return policy", "How do I return something", "refund"),
    ),
    Intent(
        "Escalate", "Talk to a person", ("Talk to a person", "I want to speak to an agent", "real person")
    ),
    Intent("Password", "Reset password", ("Reset my password", "I forgot my password", "can't log in")),
    Intent("Capabilities", "What can you do", ("What can you do",)),
    Intent("Greeting", "Greeting", ("Hello", "Hi", "Good morning", "Hey there")),
)


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer(INTENTS)


def matched(recognition: Recognition) -> str | None:
    return None if recognition.matched is None else recognition.matched.topic


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("Buy product", "Lesson3"),
        ("order status", "OrderStatus"),
        ("What are your hours?", "StoreHours"),
        ("hello", "Greeting"),
        ("What can you do", "Capabilities"),
    ],
)
def test_a_trigger_phrase_matches_its_topic_fully(recognizer: Recognizer, text: str, topic: str) -> None:
    recognition = recognizer.recognize(text)
    assert recognition.matched is not None
    assert (recognition.matched.topic, recognition.matched.score) == (topic, 100.0)
    assert not recognition.ambiguous


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("product buy", "Lesson3"),  # word order
        ("status of my order??", "OrderStatus"),
        ("I would like to buy a product please", "Lesson3"),  # extra words
        ("can i buy online", "Lesson3"),
        ("what time do you open", "StoreHours"),
        ("speak to a human agent", "Escalate"),
        ("tracking my packages", "OrderStatus"),  # stems: tracking/track, packages/package
        ("refund please", "Returns"),
        ("hello there!", "Greeting"),
        ("what can you do for me", "Capabilities"),
        ("WHERE IS MY ORDER", "OrderStatus"),
    ],
)
def test_robust_to_word_order_extra_words_and_word_forms(
    recognizer: Recognizer, text: str, topic: str
) -> None:
    assert matched(recognizer.recognize(text)) == topic


@pytest.mark.parametrize(
    ("text", "topic"),
    [("stor hours", "StoreHours"), ("i forgot my pasword", "Password"), ("resett my passwrd", "Password")],
)
def test_typos(recognizer: Recognizer, text: str, topic: str) -> None:
    recognition = recognizer.recognize(text)
    assert matched(recognition) == topic
    assert recognition.matched is not None and recognition.matched.score < 100.0


@pytest.mark.parametrize(
    "text", ["the weather in Paris", "lol", "asdf qwerty", "", "   ", "???", "my cat", "the"]
)
def test_unknown_text_matches_nothing(recognizer: Recognizer, text: str) -> None:
    recognition = recognizer.recognize(text)
    assert recognition.matched is None
    assert not recognition.ambiguous


def test_short_words_need_an_exact_match(recognizer: Recognizer) -> None:
    # "hu" is not "hi", and "shop" is not "stop": a one-letter change in a short word is a new word.
    assert recognizer.recognize("hu").matched is None


def test_candidates_are_best_first_with_display_names(recognizer: Recognizer) -> None:
    recognition = recognizer.recognize("my order status")
    assert recognition.candidates[0].topic == "OrderStatus"
    assert recognition.candidates[0].display_name == "Order status"
    scores = [c.score for c in recognition.candidates]
    assert scores == sorted(scores, reverse=True)
    assert len(recognition.candidates) <= 3


def test_below_the_threshold_is_no_match_but_still_a_candidate() -> None:
    recognizer = Recognizer([Intent("Returns", "Returns", ("return damaged item",))])
    recognition = recognizer.recognize("an item arrived")
    assert recognition.matched is None
    assert [c.topic for c in recognition.candidates] == ["Returns"]
    assert recognition.candidates[0].score < 70.0


def test_the_threshold_is_configurable() -> None:
    intents = [Intent("Returns", "Returns", ("return damaged item",))]
    lenient = Recognizer(intents, threshold=40.0).recognize("an item arrived")
    strict = Recognizer(intents, threshold=40.0).recognize("weather")
    assert matched(lenient) == "Returns"
    assert matched(strict) is None


def test_close_topics_are_ambiguous(recognizer: Recognizer) -> None:
    recognition = recognizer.recognize("I want to return my order")
    assert recognition.ambiguous
    assert recognition.matched is None
    assert {c.topic for c in recognition.candidates} == {"Returns", "OrderStatus"}
    assert all(c.score >= 70.0 for c in recognition.candidates)


def test_the_ambiguity_margin_decides_how_close_is_close() -> None:
    intents = [
        Intent("Returns", "Returns", ("return",)),
        Intent("Status", "Order status", ("order",)),
        Intent("Cancel", "Cancel order", ("cancel order",)),
    ]
    text = "return my order"  # Both topics cover it; "return" is the rarer word, so Returns leads by 4.
    wide = Recognizer(intents, ambiguity_margin=5.0).recognize(text)
    narrow = Recognizer(intents, ambiguity_margin=2.0).recognize(text)
    assert wide.ambiguous and wide.matched is None
    assert [c.topic for c in wide.candidates] == ["Returns", "Status"]
    assert not narrow.ambiguous and matched(narrow) == "Returns"


def test_identical_phrases_in_two_topics_are_ambiguous() -> None:
    recognizer = Recognizer(
        [Intent("A", "Billing", ("billing question",)), Intent("B", "Invoices", ("billing question",))]
    )
    recognition = recognizer.recognize("billing question")
    assert recognition.ambiguous
    assert [c.topic for c in recognition.candidates] == ["A", "B"]  # Ties keep the authors' order.


def test_a_single_keyword_shared_by_topics_asks_which() -> None:
    recognition = Recognizer(
        [
            Intent("Track", "Track order", ("track order",)),
            Intent("Cancel", "Cancel order", ("cancel order",)),
        ]
    ).recognize("order")
    assert recognition.ambiguous
    assert {c.topic for c in recognition.candidates} == {"Track", "Cancel"}


def test_a_rare_word_outweighs_a_common_one() -> None:
    # "order" appears in three topics, "warranty" in one: the message is about the warranty.
    recognizer = Recognizer(
        [
            Intent("Status", "Order status", ("order",)),
            Intent("Cancel", "Cancel order", ("cancel order",)),
            Intent("Change", "Change order", ("change order",)),
            Intent("Warranty", "Warranty", ("warranty",)),
        ]
    )
    recognition = recognizer.recognize("warranty for my order")
    assert matched(recognition) == "Warranty"
    assert [c.topic for c in recognition.candidates[:2]] == ["Warranty", "Status"]


def test_intents_for_one_topic_merge() -> None:
    recognizer = Recognizer(
        [Intent("Hours", "Hours", ("store hours",)), Intent("Hours", "Hours", ("opening times",))]
    )
    recognition = recognizer.recognize("opening times")
    assert matched(recognition) == "Hours"
    assert len(recognition.candidates) == 1


def test_topics_without_trigger_phrases_are_never_matched() -> None:
    recognizer = Recognizer([Intent("Fallback", "Fallback", ()), Intent("Hi", "Greeting", ("hello",))])
    assert matched(recognizer.recognize("fallback")) is None
    assert matched(recognizer.recognize("hello")) == "Hi"


def test_no_intents_never_match() -> None:
    assert Recognizer([]).recognize("hello") == Recognition((), None, ambiguous=False)


def test_a_stop_word_phrase_does_not_swallow_messages_with_content(recognizer: Recognizer) -> None:
    # "What can you do" is all stop words; "what can you do about my order" is about the order.
    recognition = recognizer.recognize("what can you do about my order")
    assert "Capabilities" not in {c.topic for c in recognition.candidates}


def test_non_latin_phrases() -> None:
    recognizer = Recognizer([Intent("Hours", "営業時間", ("営業時間を教えて", "何時まで営業"))])
    assert matched(recognizer.recognize("営業時間を教えて")) == "Hours"


def _fifty_topics() -> list[Intent]:
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    shared = ["".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(30)]
    filler = ["i", "want", "to", "my", "the", "a", "please", "can", "you", "how", "do", "what", "is", "where"]
    intents = []
    for topic in range(50):
        own = ["".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(8)]
        phrases = []
        for _ in range(10):
            words = rng.sample(own, rng.randint(1, 3)) + rng.sample(shared, rng.randint(0, 1))
            words += rng.sample(filler, rng.randint(0, 3))
            rng.shuffle(words)
            phrases.append(" ".join(words))
        intents.append(Intent(f"t{topic}", f"Topic {topic}", tuple(phrases)))
    return intents


def test_recognition_is_fast() -> None:
    intents = _fifty_topics()
    recognizer = Recognizer(intents)
    messages = [
        intents[5].trigger_queries[0],
        "please " + intents[9].trigger_queries[3] + " thanks",
        "hello how are you today",
        intents[20].trigger_queries[1][:-1],
    ]
    for message in messages:  # Warm the typo cache, as a running bot would be.
        recognizer.recognize(message)
    rounds = 250
    started = time.perf_counter()
    for _ in range(rounds):
        for message in messages:
            recognizer.recognize(message)
    mean = (time.perf_counter() - started) / (rounds * len(messages))
    # Typically 10-40 µs; the bound is loose so a loaded CI machine does not fail it.
    assert mean < 0.001
    assert matched(recognizer.recognize(messages[0])) == "t5"


@settings(max_examples=300, deadline=None)
@given(
    text=st.text()
    | st.lists(st.sampled_from(["order", "status", "buy", "what", "stor", "hours", "?"])).map(" ".join)
)
def test_recognize_never_raises_and_keeps_its_invariants(text: str) -> None:
    recognition = Recognizer(INTENTS).recognize(text)
    scores = [c.score for c in recognition.candidates]
    assert all(0.0 <= s <= 100.0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    if recognition.matched is not None:
        assert not recognition.ambiguous
        assert recognition.matched.score >= 70.0
        assert recognition.matched == recognition.candidates[0]
    if recognition.ambiguous:
        assert recognition.matched is None
        assert len(recognition.candidates) >= 2
        assert scores[0] - scores[-1] <= 5.1  # The margin, plus rounding to one decimal.
