"""Prebuilt entities: turn a customer's free-text answer to a Question into a typed value.

A Copilot Studio ``Question`` names the kind of answer it wants (``entity: NumberPrebuiltEntity``,
an embedded closed list, ...). The runtime must accept the ways people really answer ("yep",
"twenty three", "(425) 555-0100", "tomorrow at 3pm", "the second one") and reject what is not an
answer, so the question can re-prompt instead of storing garbage. Everything here is pure: the
current time comes in as ``now`` so relative dates resolve the same way in tests and in production,
and ``extract`` never raises on any text — a miss is ``None``.

English phrasing only; numbers follow the region's decimal separator (``1,234.5`` in the US,
``1.234,5`` in most of Europe).
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final

import phonenumbers
from rapidfuzz import fuzz, process

__all__ = [
    "ENTITY_NAMES",
    "Choice",
    "EntityKind",
    "EntityMatch",
    "extract",
    "fx_type_name",
]


class EntityKind(StrEnum):
    """What a Question's answer must be."""

    BOOLEAN = "Boolean"
    NUMBER = "Number"
    STRING = "String"
    EMAIL = "Email"
    PHONE_NUMBER = "PhoneNumber"
    DATETIME = "DateTime"
    DATE = "Date"
    AGE = "Age"
    STATE = "State"
    CHOICE = "Choice"
    ORDINAL = "Ordinal"
    PERCENTAGE = "Percentage"
    MONEY = "Money"
    URL = "URL"
    ZIP_CODE = "ZipCode"


# The YAML tokens Copilot Studio writes in `entity:` (its language server spells e-mail both ways).
# `ClosedListEntity` is the definition inside `entity: {kind: EmbeddedEntity, definition: ...}`;
# `DynamicClosedListEntity` takes its items from a table at run time.
ENTITY_NAMES: Final[Mapping[str, EntityKind]] = {
    "BooleanPrebuiltEntity": EntityKind.BOOLEAN,
    "NumberPrebuiltEntity": EntityKind.NUMBER,
    "StringPrebuiltEntity": EntityKind.STRING,
    "UserEntireResponse": EntityKind.STRING,
    "EMailPrebuiltEntity": EntityKind.EMAIL,
    "EmailPrebuiltEntity": EntityKind.EMAIL,
    "PhoneNumberPrebuiltEntity": EntityKind.PHONE_NUMBER,
    "DateTimePrebuiltEntity": EntityKind.DATETIME,
    "DateTimeNoTimeZonePrebuiltEntity": EntityKind.DATETIME,
    "DatePrebuiltEntity": EntityKind.DATE,
    "AgePrebuiltEntity": EntityKind.AGE,
    "StatePrebuiltEntity": EntityKind.STATE,
    "ChoicePrebuiltEntity": EntityKind.CHOICE,
    "ClosedListEntity": EntityKind.CHOICE,
    "DynamicClosedListEntity": EntityKind.CHOICE,
    "OrdinalPrebuiltEntity": EntityKind.ORDINAL,
    "PercentagePrebuiltEntity": EntityKind.PERCENTAGE,
    "MoneyPrebuiltEntity": EntityKind.MONEY,
    "URLPrebuiltEntity": EntityKind.URL,
    "ZipCodePrebuiltEntity": EntityKind.ZIP_CODE,
}

_FX_TYPES: Final[Mapping[EntityKind, str]] = {
    EntityKind.BOOLEAN: "Boolean",
    EntityKind.NUMBER: "Number",
    EntityKind.AGE: "Number",
    EntityKind.ORDINAL: "Number",
    EntityKind.PERCENTAGE: "Number",
    EntityKind.MONEY: "Number",
    EntityKind.DATETIME: "DateTime",
    EntityKind.DATE: "DateTime",
}


def fx_type_name(kind: EntityKind) -> str:
    """The Power Fx type a variable gets when a Question of this kind fills it."""
    return _FX_TYPES.get(kind, "Text")


@dataclass(frozen=True)
class Choice:
    """One option of a choice question; the answer stored is ``value``.

    ``display_name`` is what the customer sees (a closed-list item's ``displayName``, whose ``id``
    is the value); it and the synonyms are matched as well as the value.
    """

    value: str
    synonyms: tuple[str, ...] = ()
    display_name: str = ""

    @property
    def label(self) -> str:
        """The text to show for this option."""
        return self.display_name or self.value


@dataclass(frozen=True)
class EntityMatch:
    """A recognised answer: the typed ``value`` and the part of the text it came from."""

    value: Any
    text: str


def extract(
    kind: EntityKind,
    text: str,
    *,
    now: datetime,
    choices: Sequence[Choice] = (),
    region: str = "US",
) -> EntityMatch | None:
    """Find a value of ``kind`` in ``text``; ``None`` when the text holds none."""
    if not text or text.isspace():
        return None
    match kind:
        case EntityKind.STRING:
            answer = text.strip()
            return EntityMatch(answer, answer)
        case EntityKind.BOOLEAN:
            return _boolean(text)
        case EntityKind.NUMBER:
            return _number(text, region)
        case EntityKind.EMAIL:
            return _email(text)
        case EntityKind.PHONE_NUMBER:
            return _phone_number(text, region)
        case EntityKind.DATETIME:
            return _datetime(text, now, region, date_only=False)
        case EntityKind.DATE:
            return _datetime(text, now, region, date_only=True)
        case EntityKind.AGE:
            return _age(text, region)
        case EntityKind.STATE:
            return _state(text)
        case EntityKind.CHOICE:
            return _choice(text, tuple(choices), region)
        case EntityKind.ORDINAL:
            return _ordinal(text)
        case EntityKind.PERCENTAGE:
            return _percentage(text, region)
        case EntityKind.MONEY:
            return _money(text, region)
        case EntityKind.URL:
            return _url(text)
        case EntityKind.ZIP_CODE:
            return _zip_code(text)


def _normalise(text: str) -> str:
    """Lower case, typographic apostrophes made plain, runs of whitespace collapsed."""
    return " ".join(text.replace("\u2019", "'").replace("\u2018", "'").lower().split())


# ---------------------------------------------------------------------------------------------------
# Booleans


_YES: Final = (
    r"yes please|yes+|ye+a+h*|yea|yep+|yup+|ya|yah|y|sure thing|sure|ok+|okay|okey|k|alright|all right"
    r"|correct|that'?s correct|that is correct|that'?s right|that is right|right|absolutely|definitely"
    r"|certainly|of course|affirmative|true|please do|go ahead|sounds good|i do|i agree|agreed|indeed"
    r"|no problem|no worries|why not|fine|yessir|totally|exactly|for sure|you bet|i don'?t mind"
)
_NO: Final = (
    r"no+|nope|nah|naw|no way|no thanks?|no thank you|not really|not at all|not now|not yet|negative"
    r"|false|incorrect|wrong|that'?s wrong|not right|not correct|that'?s not right|that is not right"
    r"|that'?s not correct|not ok|not okay|i don'?t think so|i do not think so|i don'?t|i do not|never"
    r"|absolutely not|definitely not|certainly not|of course not|no sir|n|nay"
)
_UNSURE: Final = (
    r"not sure|no idea|maybe|i don'?t know|i do not know|dunno|idk|perhaps|not certain|no clue"
    r"|i'?m not sure|possibly"
)


def _phrase_pattern(groups: Mapping[str, str]) -> re.Pattern[str]:
    """One regex, a named group per phrase, longest first so 'not right' wins over 'right' at one spot."""
    phrases = [(len(alt), name, alt) for name, alts in groups.items() for alt in alts.split("|")]
    phrases.sort(key=lambda item: item[0], reverse=True)
    body = "|".join(f"(?P<{name}_{i}>{alt})" for i, (_, name, alt) in enumerate(phrases))
    return re.compile(rf"(?<![\w'])(?:{body})(?![\w'])")


_BOOLEAN_PATTERN: Final = _phrase_pattern({"yes": _YES, "no": _NO, "unsure": _UNSURE})


def _boolean(text: str) -> EntityMatch | None:
    normal = _normalise(text)
    found = _BOOLEAN_PATTERN.search(normal)
    if found is None or found.lastgroup is None:
        return None
    answer = found.lastgroup.split("_", 1)[0]
    if answer == "unsure":
        return None
    return EntityMatch(answer == "yes", found.group(0))


# ---------------------------------------------------------------------------------------------------
# Numbers

_UNITS: Final = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9,
}  # fmt: skip
_TEENS: Final = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS: Final = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES: Final = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_NUMBER_WORDS: Final = frozenset({*_UNITS, *_TEENS, *_TENS})
_WORD: Final = re.compile(r"[a-z]+")
# Region codes whose decimal separator is a comma (thousands grouped with dots).
_COMMA_DECIMAL_REGIONS: Final = frozenset({
    "AR", "AT", "BE", "BO", "BR", "CL", "CO", "CR", "DE", "DK", "EC", "ES", "FI", "FR", "GR", "HR",
    "HU", "ID", "IS", "IT", "NL", "NO", "PL", "PT", "PY", "RO", "RS", "RU", "SE", "SI", "SK", "TR",
    "UA", "UY", "VE",
})  # fmt: skip
# More digits than this is not an answer anyone gives; it also keeps int() clear of its size limit.
_MAX_DIGITS: Final = 30


def _digit_pattern(thousands: str, decimal: str) -> re.Pattern[str]:
    t, d = re.escape(thousands), re.escape(decimal)
    # A minus sign counts only at the start of a word, so "425-555" is not minus 555.
    return re.compile(
        rf"(?:(?<!\S)-)?(?<![\d{t}{d}])(?:\d{{1,3}}(?:{t}\d{{3}})+|\d+)(?:{d}\d+)?(?!\d)"
        rf"|(?:(?<!\S)-)?(?<![\d{t}{d}]){d}\d+(?!\d)"
    )


_DIGITS_POINT: Final = _digit_pattern(",", ".")
_DIGITS_COMMA: Final = _digit_pattern(".", ",")
_SCALE_AFTER_DIGITS: Final = re.compile(r"\s*(thousand|million|billion)\b")


@dataclass(frozen=True)
class _Number:
    value: int | float
    start: int
    end: int
    worded: bool


def _tidy(value: float) -> int | float:
    """Whole numbers as ``int`` (Power Fx has one Number type, but 42 reads better than 42.0)."""
    return int(value) if value.is_integer() else value


def _digits(normal: str, region: str) -> Iterator[_Number]:
    comma_decimal = region.upper() in _COMMA_DECIMAL_REGIONS
    pattern = _DIGITS_COMMA if comma_decimal else _DIGITS_POINT
    for found in pattern.finditer(normal):
        raw = found.group(0)
        if sum(ch.isdigit() for ch in raw) > _MAX_DIGITS:
            continue
        canonical = raw.replace(".", "").replace(",", ".") if comma_decimal else raw.replace(",", "")
        value = float(canonical)
        end = found.end()
        scale = _SCALE_AFTER_DIGITS.match(normal, end)
        if scale is not None:
            value *= _SCALES[scale.group(1)]
            end = scale.end()
        yield _Number(_tidy(value), found.start(), end, worded=False)


def _words(normal: str) -> Iterator[_Number]:
    tokens = [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(normal)]
    i = 0
    while i < len(tokens):
        parsed = _parse_number_words(tokens, i)
        if parsed is None:
            i += 1
            continue
        value, last = parsed
        yield _Number(value, tokens[i][1], tokens[last][2], worded=True)
        i = last + 1


def _parse_number_words(tokens: Sequence[tuple[str, int, int]], start: int) -> tuple[int, int] | None:
    """Read 'two thousand three hundred and five' from ``start``; the value and the last token used."""
    total, group, last_scale = 0, 0, 10**12
    last: str | None = None
    end: int | None = None
    for j in range(start, len(tokens)):
        word = tokens[j][0]
        following = tokens[j + 1][0] if j + 1 < len(tokens) else ""
        if word in _UNITS:
            if word == "zero" and last is not None:
                break
            if last not in (None, "tens", "hundred", "scale", "and") or (last == "tens" and group % 10):
                break
            group += _UNITS[word]
            last = "unit"
        elif word in _TEENS or word in _TENS:
            if last not in (None, "hundred", "scale", "and"):
                break
            group += _TEENS.get(word) or _TENS[word]
            last = "teen" if word in _TEENS else "tens"
        elif word == "hundred":
            if last not in ("unit", "teen", "a") or group >= 100:
                break
            group = (group or 1) * 100
            last = "hundred"
        elif word in _SCALES:
            scale = _SCALES[word]
            if last not in ("unit", "teen", "tens", "hundred", "a") or scale >= last_scale:
                break
            total += (group or 1) * scale
            group, last_scale, last = 0, scale, "scale"
        elif word == "and" and last in ("hundred", "scale") and following in _NUMBER_WORDS:
            last = "and"
        elif word == "a" and last is None and (following == "hundred" or following in _SCALES):
            last = "a"
        else:
            break
        if last not in ("and", "a"):
            end = j
    if end is None:
        return None
    return total + group, end


def _numbers(normal: str, region: str) -> list[_Number]:
    """Every number written in digits or words, in the order they appear."""
    return sorted([*_digits(normal, region), *_words(normal)], key=lambda n: n.start)


def _number(text: str, region: str) -> EntityMatch | None:
    normal = _normalise(text)
    numbers = _numbers(normal, region)
    if not numbers:
        return None
    first = numbers[0]
    return EntityMatch(first.value, normal[first.start : first.end])


# ---------------------------------------------------------------------------------------------------
# Percentages and money

_PERCENT_AFTER: Final = re.compile(r"\s*(?:%|percent\b|per cent\b|pct\b)")
_CURRENCY_BEFORE: Final = re.compile(r"(?:[$€£¥]|\b(?:usd|eur|gbp|cad|aud|us\$))\s*$")
_CURRENCY_AFTER: Final = re.compile(
    r"\s*(?:[$€£¥]|(?:usd|eur|gbp|cad|aud|dollars?|bucks|euros?|pounds?|cents?)\b)"
)


def _percentage(text: str, region: str) -> EntityMatch | None:
    normal = _normalise(text)
    for number in _numbers(normal, region):
        unit = _PERCENT_AFTER.match(normal, number.end)
        if unit is not None:
            return EntityMatch(number.value, normal[number.start : unit.end()])
    return None


def _money(text: str, region: str) -> EntityMatch | None:
    normal = _normalise(text)
    for number in _numbers(normal, region):
        before = _CURRENCY_BEFORE.search(normal, 0, number.start)
        after = _CURRENCY_AFTER.match(normal, number.end)
        if before is None and after is None:
            continue
        value: int | float = number.value
        if after is not None and after.group(0).strip().startswith("cent"):
            value = _tidy(round(number.value / 100, 2))
        start = before.start() if before is not None else number.start
        end = after.end() if after is not None else number.end
        return EntityMatch(value, normal[start:end])
    return None


# ---------------------------------------------------------------------------------------------------
# Ordinals

_ORDINAL_WORDS: Final = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20,
}  # fmt: skip
_ORDINAL_PATTERN: Final = re.compile(
    r"\b(?:(\d{1,4})(?:st|nd|rd|th)|(" + "|".join(_ORDINAL_WORDS) + r")|(last|final))\b"
)
_LAST: Final = -1


def _find_ordinal(normal: str) -> tuple[int, re.Match[str]] | None:
    """The first ordinal in the text, 1-based; ``_LAST`` for 'last'."""
    found = _ORDINAL_PATTERN.search(normal)
    if found is None:
        return None
    digits, word, _last = found.groups()
    if digits is not None:
        return int(digits), found
    if word is not None:
        return _ORDINAL_WORDS[word], found
    return _LAST, found


def _ordinal(text: str) -> EntityMatch | None:
    normal = _normalise(text)
    found = _find_ordinal(normal)
    if found is None or found[0] == _LAST:
        return None
    return EntityMatch(found[0], found[1].group(0))


# ---------------------------------------------------------------------------------------------------
# E-mail, URL, zip code, phone number

_EMAIL: Final = re.compile(
    r"(?<![\w.+-])"
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
    r"(?![\w@-])"
)
_URL: Final = re.compile(
    r"(?<![\w@.])(?:https?://[^\s<>\"']+|www\.[^\s<>\"']+"
    r"|(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:com|org|net|edu|gov|io|co|us|uk|de|fr|info|biz|app|dev)"
    r"(?:/[^\s<>\"']*)?)(?![\w@])",
    re.IGNORECASE,
)
_ZIP_CODE: Final = re.compile(r"(?<![\d-])\d{5}(?:-\d{4})?(?![\d-])")


def _email(text: str) -> EntityMatch | None:
    found = _EMAIL.search(text)
    if found is None:
        return None
    return EntityMatch(found.group(0), found.group(0))


def _url(text: str) -> EntityMatch | None:
    found = _URL.search(text)
    if found is None:
        return None
    url = found.group(0).rstrip(".,;:!?)]}")
    return EntityMatch(url, url)


def _zip_code(text: str) -> EntityMatch | None:
    found = _ZIP_CODE.search(text)
    if found is None:
        return None
    return EntityMatch(found.group(0), found.group(0))


def _phone_number(text: str, region: str) -> EntityMatch | None:
    # VALID leniency: the digits must form a number that exists in the plan of its country, so an
    # order number or a bare "555-0100" is not taken for a phone number.
    matcher = phonenumbers.PhoneNumberMatcher(text, region.upper(), leniency=phonenumbers.Leniency.VALID)
    for found in matcher:
        e164 = phonenumbers.format_number(found.number, phonenumbers.PhoneNumberFormat.E164)
        # Stored without the "+": Copilot Studio's transfer actions reject a leading plus.
        return EntityMatch(e164.lstrip("+"), found.raw_string)
    return None


# ---------------------------------------------------------------------------------------------------
# Age

_AGE_UNIT: Final = re.compile(r"\s*(?:-\s*)?(years?|yrs?|y/?o|months?)\b(?:\s*-?\s*old\b)?")
_AGE_CUE: Final = re.compile(r"\b(?:i'?m|i am|im|age|aged|age is|turning|turned)\s+(?:about\s+|almost\s+)?$")
_AGE_FILLER: Final = frozenset(
    {"about", "around", "almost", "nearly", "just", "only", "i", "am", "i'm", "im"}
)
_MAX_AGE: Final = 130


def _age(text: str, region: str) -> EntityMatch | None:
    normal = _normalise(text)
    numbers = _numbers(normal, region)
    for number in numbers:
        if not 0 <= number.value <= _MAX_AGE:
            continue
        unit = _AGE_UNIT.match(normal, number.end)
        if unit is not None:
            value = number.value
            if unit.group(1).startswith("month"):
                value = _tidy(round(number.value / 12, 2))
            return EntityMatch(value, normal[number.start : unit.end()])
        if _AGE_CUE.search(normal, 0, number.start) is not None and isinstance(number.value, int):
            return EntityMatch(number.value, normal[number.start : number.end])
    # A bare "42" answers "How old are you?"; "I have 3 kids" does not.
    if len(numbers) == 1 and isinstance(numbers[0].value, int) and 0 <= numbers[0].value <= _MAX_AGE:
        number = numbers[0]
        rest = (normal[: number.start] + " " + normal[number.end :]).replace(".", " ").replace("!", " ")
        if all(word in _AGE_FILLER for word in rest.split()):
            return EntityMatch(number.value, normal[number.start : number.end])
    return None


# ---------------------------------------------------------------------------------------------------
# US states

_STATES: Final = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts",
    "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico",
    "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "DC": "District of Columbia", "PR": "Puerto Rico", "GU": "Guam", "VI": "U.S. Virgin Islands",
    "AS": "American Samoa", "MP": "Northern Mariana Islands",
}  # fmt: skip
_STATE_ALIASES: Final = {
    "washington dc": "District of Columbia",
    "washington d c": "District of Columbia",
    "d c": "District of Columbia",
    "us virgin islands": "U.S. Virgin Islands",
    "u s virgin islands": "U.S. Virgin Islands",
    "virgin islands": "U.S. Virgin Islands",
}
# Codes that are also everyday words count only as a whole answer in capitals; "OK" never does.
_WORDLIKE_CODES: Final = frozenset(
    {"AL", "AS", "CO", "DE", "GA", "HI", "ID", "IN", "LA", "MA", "ME", "OH", "OR", "PA"}
)
_STATE_NAMES: Final = {name.lower().replace(".", ""): name for name in _STATES.values()} | _STATE_ALIASES
_STATE_NAME_PATTERN: Final = re.compile(
    r"\b(?:" + "|".join(re.escape(n) for n in sorted(_STATE_NAMES, key=len, reverse=True)) + r")\b"
)
_STATE_CODE_PATTERN: Final = re.compile(r"(?<![\w.])(" + "|".join(_STATES) + r")(?![\w])")
_STATE_FUZZY_CUTOFF: Final = 85.0


def _letters_only(text: str) -> str:
    """Lower case with every run of non-letters made one space: 'D.C.' → 'd c'."""
    return " ".join(re.sub(r"[^a-z]+", " ", _normalise(text).replace("'", "")).split())


def _state(text: str) -> EntityMatch | None:
    plain = _letters_only(text)
    named = _STATE_NAME_PATTERN.search(plain)
    if named is not None:
        return EntityMatch(_STATE_NAMES[named.group(0)], named.group(0))
    whole = re.sub(r"[^A-Za-z]", "", text)
    if len(whole) == 2:
        code = whole.upper()
        if code in _STATES and code != "OK" and (whole.isupper() or code not in _WORDLIKE_CODES):
            return EntityMatch(_STATES[code], whole)
    for found in _STATE_CODE_PATTERN.finditer(text):
        if found.group(1) not in _WORDLIKE_CODES and found.group(1) != "OK":
            return EntityMatch(_STATES[found.group(1)], found.group(0))
    if 3 <= len(plain) <= 30:
        best = process.extractOne(
            plain, list(_STATE_NAMES), scorer=fuzz.ratio, processor=None, score_cutoff=_STATE_FUZZY_CUTOFF
        )
        if best is not None:
            return EntityMatch(_STATE_NAMES[best[0]], text.strip())
    return None


# ---------------------------------------------------------------------------------------------------
# Choices

# Words around a position that still leave it the whole answer (keys have no apostrophes: "i'd" is "id").
_CHOICE_FILLER: Final = frozenset({
    "the", "a", "an", "one", "option", "choice", "number", "no", "please", "pls", "i", "id",
    "choose", "pick", "want", "select", "take", "go", "with", "for", "me", "it", "is", "its",
    "that", "this", "like", "would", "ill",
})  # fmt: skip
_CHOICE_FUZZY_CUTOFF: Final = 85.0
_CHOICE_FUZZY_MARGIN: Final = 5.0


def _choice_key(text: str) -> str:
    return " ".join(re.sub(r"[^\w']+|_", " ", _normalise(text)).replace("'", "").split())


@functools.lru_cache(maxsize=256)
def _choice_phrases(choices: tuple[Choice, ...]) -> tuple[tuple[str, int], ...]:
    """Every matchable phrase of every option with the option's index, longest first."""
    phrases: dict[str, int] = {}
    for index, choice in enumerate(choices):
        for phrase in (choice.value, choice.display_name, *choice.synonyms):
            key = _choice_key(phrase)
            if key:
                phrases.setdefault(key, index)
    return tuple(sorted(phrases.items(), key=lambda item: len(item[0]), reverse=True))


def _choice(text: str, choices: tuple[Choice, ...], region: str) -> EntityMatch | None:
    if not choices:
        return None
    phrases = _choice_phrases(choices)
    key = _choice_key(text)
    if not key:
        return None
    for phrase, index in phrases:
        if phrase == key:
            return EntityMatch(choices[index].value, text.strip())
    picked = _choice_by_position(key, len(choices), region)
    if picked is not None:
        return EntityMatch(choices[picked].value, text.strip())
    mentioned = _mentioned(key, phrases)
    if mentioned:
        # "billing and sales" names two options: ask again rather than guess.
        if len({index for _, index in mentioned}) == 1:
            return EntityMatch(choices[mentioned[0][1]].value, mentioned[0][0])
        return None
    if len(key) < 3:
        return None
    scored = process.extract(
        key,
        [phrase for phrase, _ in phrases],
        scorer=fuzz.WRatio,
        processor=None,
        score_cutoff=_CHOICE_FUZZY_CUTOFF,
        limit=None,
    )
    if not scored:
        return None
    _, best_score, best_at = scored[0]
    best_index = phrases[best_at][1]
    for _, score, at in scored[1:]:
        if phrases[at][1] != best_index and best_score - score < _CHOICE_FUZZY_MARGIN:
            return None
    return EntityMatch(choices[best_index].value, text.strip())


def _mentioned(key: str, phrases: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Option phrases said as whole words, longest first; one inside a longer one ('order' in
    'order status') does not count on its own."""
    padded = f" {key} "
    taken: list[tuple[int, int]] = []
    found: list[tuple[str, int]] = []
    for phrase, index in phrases:  # Longest first, so the longer phrase claims its span.
        at = padded.find(f" {phrase} ")
        while at >= 0:
            span = (at, at + len(phrase) + 1)
            if not any(start < span[1] and span[0] < end for start, end in taken):
                taken.append(span)
                found.append((phrase, index))
                break
            at = padded.find(f" {phrase} ", at + 1)
    return found


def _choice_by_position(key: str, count: int, region: str) -> int | None:
    """'2', 'the second one', 'number two', 'last' → a 0-based index, when that is all the text says."""
    ordinal = _find_ordinal(key)
    if ordinal is not None:
        position, found = ordinal
        rest = key[: found.start()] + " " + key[found.end() :]
    else:
        numbers = _numbers(key, region)
        if len(numbers) != 1 or not isinstance(numbers[0].value, int):
            return None
        position = numbers[0].value
        rest = key[: numbers[0].start] + " " + key[numbers[0].end :]
    if any(word not in _CHOICE_FILLER for word in rest.split()):
        return None
    if position == _LAST:
        return count - 1
    if 1 <= position <= count:
        return position - 1
    return None


# ---------------------------------------------------------------------------------------------------
# Dates and times

_MONTHS: Final = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4,
    "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9,
    "september": 9, "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}  # fmt: skip
_WEEKDAYS: Final = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2, "weds": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4, "saturday": 5, "sunday": 6,
}  # fmt: skip
_HOUR_WORDS: Final = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_MONTH_RE: Final = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY_RE: Final = "(" + "|".join(sorted(_WEEKDAYS, key=len, reverse=True)) + r")\.?"
_HOUR_RE: Final = r"(\d{1,2}|" + "|".join(sorted(_HOUR_WORDS, key=len, reverse=True)) + ")"

_ISO_DATE: Final = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})(?:[t ](\d{1,2}):(\d{2})(?::(\d{2}))?)?\b")
_NUMERIC_DATE: Final = re.compile(r"(?<![\d/.:])(\d{1,2})([/.])(\d{1,2})(?:\2(\d{4}|\d{2}))?(?![\d/:]|\.\d)")
_MONTH_DAY: Final = re.compile(rf"\b{_MONTH_RE}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?")
_DAY_MONTH: Final = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_RE}(?![a-z])(?:,?\s+(\d{{4}})\b)?"
)
_RELATIVE_DAY: Final = re.compile(
    r"\b(the day after tomorrow|day after tomorrow|the day before yesterday|day before yesterday"
    r"|today|tonight|tomorrow|tmrw|tmr|yesterday|next week|next month)\b"
)
_WEEKDAY: Final = re.compile(rf"\b(?:(next|this|last|on)\s+)?{_WEEKDAY_RE}(?![a-z])")
_IN_DURATION: Final = re.compile(
    r"\b(?:in\s+(\d{1,4}|an?|one|two|three|four|five|six|seven|eight|nine|ten)\s+"
    r"(minutes?|mins?|hours?|hrs?|days?|weeks?|months?)"
    r"|(\d{1,4}|an?|one|two|three|four|five|six|seven|eight|nine|ten)\s+"
    r"(minutes?|mins?|hours?|hrs?|days?|weeks?|months?)\s+from\s+now)\b"
)
_NOW: Final = re.compile(r"\b(?:right now|now|asap|immediately)\b")
_CLOCK_MERIDIEM: Final = re.compile(rf"\b{_HOUR_RE}(?::([0-5]\d))?\s*(a\.?m\.?|p\.?m\.?)(?![a-z])")
_CLOCK_24: Final = re.compile(r"(?<![\d:])([01]?\d|2[0-3]):([0-5]\d)(?![\d:])")
_CLOCK_OCLOCK: Final = re.compile(rf"\b{_HOUR_RE}\s*o'?\s?clock\b")
_CLOCK_AT: Final = re.compile(
    r"\b(?:at|@|around|by)\s+(\d{1,2})(?![\d:/.]|\s*(?:st|nd|rd|th|%|percent|o'?\s?clock)\b|\s*[ap]\.?m\b)"
)
_CLOCK_NAMED: Final = re.compile(r"\b(noon|midday|midnight)\b")
_EVENING: Final = re.compile(r"\b(?:tonight|evening|afternoon|night|pm)\b")
_MORNING: Final = re.compile(r"\b(?:morning|am)\b")
# Unqualified "at 3" in a customer-service chat means business hours: 1-7 is afternoon.
_AFTERNOON_GUESS: Final = range(1, 8)


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    day: date | None = None
    clock: time | None = None
    moment: datetime | None = None


def _safe_date(year: int, month: int, day: int) -> date | None:
    if not (1 <= year <= 9999 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return None
    return date(year, month, day)


def _full_year(year: str | None, today: date) -> int | None:
    if year is None:
        return None
    value = int(year)
    if len(year) == 2:
        century = 2000 if value <= today.year % 100 + 20 else 1900
        return century + value
    return value


def _upcoming(month: int, day: int, year: int | None, today: date) -> date | None:
    """A date given without a year is its next occurrence, today included."""
    if year is not None:
        return _safe_date(year, month, day)
    for candidate_year in range(today.year, today.year + 9):  # Far enough for the next 29 February.
        found = _safe_date(candidate_year, month, day)
        if found is not None and found >= today:
            return found
    return None


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _date_pieces(normal: str, now: datetime, dayfirst: bool) -> Iterator[_Piece]:
    today = now.date()
    for found in _ISO_DATE.finditer(normal):
        day = _safe_date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
        if day is None:
            continue
        clock = None
        if found.group(4) is not None and int(found.group(4)) < 24:
            clock = time(int(found.group(4)), int(found.group(5)), int(found.group(6) or 0))
        yield _Piece(found.start(), found.end(), day=day, clock=clock)
    for found in _NUMERIC_DATE.finditer(normal):
        first, second = int(found.group(1)), int(found.group(3))
        month, day_of_month = (second, first) if dayfirst else (first, second)
        day = _upcoming(month, day_of_month, _full_year(found.group(4), today), today)
        if day is not None:
            yield _Piece(found.start(), found.end(), day=day)
    for found in _MONTH_DAY.finditer(normal):
        day = _upcoming(
            _MONTHS[found.group(1)], int(found.group(2)), _full_year(found.group(3), today), today
        )
        if day is not None:
            yield _Piece(found.start(), found.end(), day=day)
    for found in _DAY_MONTH.finditer(normal):
        day = _upcoming(
            _MONTHS[found.group(2)], int(found.group(1)), _full_year(found.group(3), today), today
        )
        if day is not None:
            yield _Piece(found.start(), found.end(), day=day)
    for found in _RELATIVE_DAY.finditer(normal):
        word = found.group(1).removeprefix("the ")
        offset = {
            "today": 0, "tonight": 0, "tomorrow": 1, "tmrw": 1, "tmr": 1, "yesterday": -1,
            "day after tomorrow": 2, "day before yesterday": -2, "next week": 7,
        }.get(word)  # fmt: skip
        day = _add_months(today, 1) if word == "next month" else today + timedelta(days=offset or 0)
        yield _Piece(found.start(), found.end(), day=day)
    for found in _WEEKDAY.finditer(normal):
        qualifier, weekday = found.group(1), _WEEKDAYS[found.group(2)]
        ahead = (weekday - today.weekday()) % 7
        if qualifier == "next" and ahead == 0:
            ahead = 7
        if qualifier == "last":
            ahead = ahead - 7 if ahead else -7
        yield _Piece(found.start(), found.end(), day=today + timedelta(days=ahead))
    for found in _IN_DURATION.finditer(normal):
        amount_word = found.group(1) or found.group(3)
        unit = (found.group(2) or found.group(4)).rstrip("s")
        amount = 1 if amount_word in ("a", "an") else _HOUR_WORDS.get(amount_word) or int(amount_word)
        if unit == "month":
            yield _Piece(found.start(), found.end(), day=_add_months(today, amount))
        elif unit in ("day", "week"):
            yield _Piece(
                found.start(), found.end(), day=today + timedelta(days=amount * (7 if unit == "week" else 1))
            )
        else:
            minutes = amount * (60 if unit in ("hour", "hr") else 1)
            yield _Piece(found.start(), found.end(), moment=now + timedelta(minutes=minutes))
    for found in _NOW.finditer(normal):
        yield _Piece(found.start(), found.end(), moment=now)


def _hour(value: str) -> int:
    return _HOUR_WORDS.get(value) or int(value)


def _time_pieces(normal: str) -> Iterator[_Piece]:
    evening = _EVENING.search(normal) is not None
    morning = _MORNING.search(normal) is not None
    for found in _CLOCK_MERIDIEM.finditer(normal):
        hour, minute = _hour(found.group(1)), int(found.group(2) or 0)
        if 1 <= hour <= 12:
            pm = found.group(3).startswith("p")
            yield _Piece(found.start(), found.end(), clock=time(hour % 12 + (12 if pm else 0), minute))
    for found in _CLOCK_24.finditer(normal):
        hour, minute = int(found.group(1)), int(found.group(2))
        if evening and 1 <= hour < 12:
            hour += 12
        yield _Piece(found.start(), found.end(), clock=time(hour, minute))
    for pattern in (_CLOCK_OCLOCK, _CLOCK_AT):
        for found in pattern.finditer(normal):
            hour = _hour(found.group(1))
            if not 0 <= hour <= 23:
                continue
            if hour < 12 and (evening or (not morning and hour in _AFTERNOON_GUESS)):
                hour += 12
            yield _Piece(found.start(), found.end(), clock=time(hour, 0))
    for found in _CLOCK_NAMED.finditer(normal):
        yield _Piece(found.start(), found.end(), clock=time(0 if found.group(1) == "midnight" else 12, 0))


def _first(pieces: Iterator[_Piece]) -> _Piece | None:
    """The leftmost piece, the longest when two start together."""
    return min(pieces, key=lambda p: (p.start, -p.end), default=None)


def _datetime(text: str, now: datetime, region: str, *, date_only: bool) -> EntityMatch | None:
    normal = _normalise(text)
    dayfirst = region.upper() not in ("US", "CA", "PH", "FM", "MH", "PW")
    try:
        day_piece = _first(_date_pieces(normal, now, dayfirst))
        time_piece = _first(_time_pieces(normal))
        # A time inside the date's own span ("2026-12-01 10:00" read by the ISO pattern) is not a second one.
        if (
            day_piece is not None
            and time_piece is not None
            and time_piece.start < day_piece.end
            and (time_piece.end > day_piece.start)
        ):
            time_piece = None
        if day_piece is not None and day_piece.moment is not None:
            moment = day_piece.moment
            if time_piece is not None and time_piece.clock is not None:
                moment = datetime.combine(moment.date(), time_piece.clock, tzinfo=now.tzinfo)
        elif day_piece is not None and day_piece.day is not None:
            clock = day_piece.clock or (time_piece.clock if time_piece is not None else None) or time(0, 0)
            moment = datetime.combine(day_piece.day, clock, tzinfo=now.tzinfo)
        elif time_piece is not None and time_piece.clock is not None:
            if date_only:
                return None
            moment = datetime.combine(now.date(), time_piece.clock, tzinfo=now.tzinfo)
        else:
            return None
    except (OverflowError, ValueError):  # "in 9999 months" runs past year 9999.
        return None
    if date_only:
        moment = datetime.combine(moment.date(), time(0, 0), tzinfo=now.tzinfo)
    used = [p for p in (day_piece, time_piece) if p is not None]
    start, end = min(p.start for p in used), max(p.end for p in used)
    return EntityMatch(moment, normal[start:end])
