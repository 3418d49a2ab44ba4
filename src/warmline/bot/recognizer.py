"""Trigger-phrase recognition: which topic does the customer's message ask for?

Copilot Studio topics list a few example ``triggerQueries``; customers type neither those words nor
that order ("status of my order??" for "Order status"). Each topic's score is its best-matching
trigger phrase, scored 0-100 as a token-set similarity over content words: word order is ignored,
extra words cost little, stop words ("what", "my", "please") count only when a phrase has nothing
else, plurals and -ing/-ed forms match their stem, and a misspelt word ("pasword") matches a trigger
word at rapidfuzz's ``ratio`` ≥ 80. When the best two topics are both above the threshold and
close, the result is *ambiguous* so the bot can ask "Did you mean…" instead of guessing.

Scoring every phrase with a rapidfuzz scorer costs ~5 µs per phrase (``token_set_ratio``) — half a
millisecond for 50 topics of 10 phrases. Instead everything that does not depend on the message is
built once in ``__init__`` (stems, an inverted index from word to phrases, the vocabulary by length
for typo look-ups), so a message only scores the phrases that share a word with it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from rapidfuzz import fuzz, process

__all__ = ["Candidate", "Intent", "Recognition", "Recognizer"]


@dataclass(frozen=True)
class Intent:
    """A topic as the recognizer sees it: its trigger phrases."""

    topic: str
    display_name: str
    trigger_queries: tuple[str, ...]


@dataclass(frozen=True)
class Candidate:
    """A topic and how well the message matched it (0-100)."""

    topic: str
    display_name: str
    score: float


@dataclass(frozen=True)
class Recognition:
    """The outcome for one message.

    ``matched`` is the topic to start, if any. When ``ambiguous``, ``candidates`` holds exactly the
    close topics to offer in a "Did you mean…" prompt; otherwise it holds the best few topics that
    scored at all, best first.
    """

    candidates: tuple[Candidate, ...]
    matched: Candidate | None
    ambiguous: bool


# Words that say little about *which* topic is meant. Negations stay: "no thanks" is not "thanks".
_STOP_WORDS: Final = frozenset(
    {
        "a", "an", "the", "i", "me", "my", "mine", "myself", "you", "your", "yours", "we", "our", "ours",
        "us", "it", "its", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did",
        "doing", "to", "of", "in", "on", "at", "for", "with", "about", "from", "by", "into", "and", "or",
        "but", "so", "if", "then", "than", "can", "could", "would", "should", "will", "shall", "may",
        "might", "must", "please", "pls", "plz", "want", "wanna", "need", "like", "just", "some", "any",
        "this", "that", "these", "those", "there", "here", "what", "whats", "when", "where", "which",
        "who", "how", "why", "im", "id", "ive", "ill", "youre", "get", "got", "know", "tell", "let",
        "lets", "have", "has", "had", "also", "really", "very", "much", "too", "up", "something",
        "anything", "thing", "things", "stuff",
    }
)  # fmt: skip
_NON_WORD: Final = re.compile(r"[^\w]+|_")
_TYPO_CUTOFF: Final = 80.0
_TYPO_MIN_LENGTH: Final = 4
_TYPO_CACHE_SIZE: Final = 4096
_MAX_CANDIDATES: Final = 3
# A phrase's score leans on the better of coverage (trigger words found) and precision (message
# words explained): "order" alone and "where is my order status" both point at "order status".
_MAX_WEIGHT: Final = 0.8


@functools.lru_cache(maxsize=8192)
def _stem(word: str) -> str:
    """A light English stemmer: enough that 'orders', 'ordered' and 'ordering' meet at 'order'."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _words(text: str) -> list[str]:
    """Lower-case words; apostrophes dropped so "what's" is "whats"."""
    return _NON_WORD.sub(" ", text.lower().replace("'", "").replace("\u2019", "")).split()


def _content(words: Sequence[str]) -> tuple[frozenset[str], frozenset[str]]:
    """Stems of the content words, and of all words."""
    every: set[str] = set()
    content: set[str] = set()
    for word in words:
        stem = _stem(word)
        every.add(stem)
        if word not in _STOP_WORDS:
            content.add(stem)
    return frozenset(content), frozenset(every)


class Recognizer:
    """Scores a message against every topic's trigger phrases."""

    def __init__(
        self, intents: Sequence[Intent], *, threshold: float = 70.0, ambiguity_margin: float = 5.0
    ) -> None:
        self.threshold = threshold
        self.ambiguity_margin = ambiguity_margin
        topic_at: dict[str, int] = {}
        self._topics: list[tuple[str, str]] = []
        phrases: list[tuple[int, frozenset[str]]] = []
        for intent in intents:
            if intent.topic not in topic_at:
                topic_at[intent.topic] = len(self._topics)
                self._topics.append((intent.topic, intent.display_name))
            for query in intent.trigger_queries:
                content, every = _content(_words(query))
                # A phrase made only of stop words ("what can you do") keeps them all; it is
                # reached only by a message that has no content words either.
                if every:
                    phrases.append((topic_at[intent.topic], content or every))
        # Inverse document frequency over topics: a word only one topic uses says more than
        # "order", which five topics use.
        topics_using: dict[str, set[int]] = {}
        for topic, stems in phrases:
            for stem in stems:
                topics_using.setdefault(stem, set()).add(topic)
        count = max(len(self._topics), 1)
        self._weight: Mapping[str, float] = {
            stem: 1.0 + math.log(count / len(using)) for stem, using in topics_using.items()
        }
        self._unknown_weight = 1.0 + math.log(count)
        postings: dict[str, list[int]] = {}
        for at, (_, stems) in enumerate(phrases):
            for stem in stems:
                postings.setdefault(stem, []).append(at)
        self._postings: Mapping[str, tuple[int, ...]] = {stem: tuple(ats) for stem, ats in postings.items()}
        self._phrase_topic: tuple[int, ...] = tuple(topic for topic, _ in phrases)
        self._phrase_inverse_weight: tuple[float, ...] = tuple(
            1.0 / sum(self._weight[stem] for stem in stems) for _, stems in phrases
        )
        self._by_length: dict[int, list[str]] = {}
        for stem in self._postings:
            self._by_length.setdefault(len(stem), []).append(stem)
        self._pools: dict[int, list[str]] = {}
        self._typos: dict[str, Mapping[str, float]] = {}

    def recognize(self, text: str) -> Recognition:
        """Score ``text`` against every topic and decide: one topic, ambiguous, or none."""
        content, every = _content(_words(text))
        typos = bool(content)
        words = content or every
        if not words:
            return Recognition((), None, ambiguous=False)
        # Each trigger word the message hits, with the closest similarity; and the message's weight.
        hits: dict[str, float] = {}
        message_weight = 0.0
        for word in words:
            near = self._similar(word, typos=typos)
            if not near:
                message_weight += self._unknown_weight
                continue
            closest = max(near, key=near.__getitem__)
            message_weight += self._weight[closest]
            for stem, similarity in near.items():
                if similarity > hits.get(stem, 0.0):
                    hits[stem] = similarity
        # Sum each phrase's hit weight once over the postings, rather than visiting every phrase.
        found: dict[int, float] = {}
        for stem, similarity in hits.items():
            gained = self._weight[stem] * similarity
            for at in self._postings[stem]:
                found[at] = found.get(at, 0.0) + gained
        # The hot loop: plain arithmetic on locals, no calls.
        best: dict[int, float] = {}
        inverse_weight, phrase_topic = self._phrase_inverse_weight, self._phrase_topic
        inverse_message = 1.0 / message_weight
        high_weight, low_weight = _MAX_WEIGHT, 1.0 - _MAX_WEIGHT
        for at, gained in found.items():
            coverage = gained * inverse_weight[at]
            precision = gained * inverse_message
            coverage = 1.0 if coverage > 1.0 else coverage
            precision = 1.0 if precision > 1.0 else precision
            if coverage >= precision:
                score = high_weight * coverage + low_weight * precision
            else:
                score = high_weight * precision + low_weight * coverage
            topic = phrase_topic[at]
            if score > best.get(topic, 0.0):
                best[topic] = score
        return self._decide(best)

    def _decide(self, best: Mapping[int, float]) -> Recognition:
        # Scores are 0-1 here and 0-100 in a Candidate.
        ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
        threshold, margin = self.threshold / 100.0, self.ambiguity_margin / 100.0
        if not ranked or ranked[0][1] < threshold:
            return Recognition(self._candidates(ranked[:_MAX_CANDIDATES]), None, ambiguous=False)
        top = ranked[0][1]
        close = [item for item in ranked if item[1] >= threshold and top - item[1] <= margin]
        if len(close) > 1:
            return Recognition(self._candidates(close[:_MAX_CANDIDATES]), None, ambiguous=True)
        candidates = self._candidates(ranked[:_MAX_CANDIDATES])
        return Recognition(candidates, candidates[0], ambiguous=False)

    def _candidates(self, scored: Sequence[tuple[int, float]]) -> tuple[Candidate, ...]:
        return tuple(
            Candidate(self._topics[topic][0], self._topics[topic][1], round(100.0 * score, 1))
            for topic, score in scored
        )

    def _similar(self, stem: str, *, typos: bool) -> Mapping[str, float]:
        """Trigger words this message word matches: itself, or near spellings of a long content word."""
        if stem in self._postings:
            return {stem: 1.0}
        if not typos or len(stem) < _TYPO_MIN_LENGTH:
            return {}
        cached = self._typos.get(stem)
        if cached is not None:
            return cached
        found = process.extract(
            stem, self._pool(len(stem)), scorer=fuzz.ratio, processor=None, score_cutoff=_TYPO_CUTOFF, limit=3
        )
        near = {word: score / 100.0 for word, score, _ in found}
        # Bounded: typos are unbounded in number. The cache changes speed only, never a result.
        if len(self._typos) >= _TYPO_CACHE_SIZE:
            self._typos.clear()
        self._typos[stem] = near
        return near

    def _pool(self, length: int) -> list[str]:
        """Trigger words whose length allows a ratio ≥ the typo cutoff against a word of ``length``."""
        pool = self._pools.get(length)
        if pool is None:
            # ratio = 2·matches / (n + m) ≥ 0.8 needs 2n/3 ≤ m ≤ 3n/2.
            lowest, highest = max(_TYPO_MIN_LENGTH, math.ceil(2 * length / 3)), (3 * length) // 2
            pool = [word for size in range(lowest, highest + 1) for word in self._by_length.get(size, ())]
            self._pools[length] = pool
        return pool
