"""Prebuilt entities: each kind accepts the ways people answer and rejects what is not an answer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmline.bot.entities import ENTITY_NAMES, Choice, EntityKind, EntityMatch, extract, fx_type_name

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # A Thursday.


def value(kind: EntityKind, text: str, *, choices: Sequence[Choice] = ()) -> object:
    match = extract(kind, text, now=NOW, choices=choices)
    return None if match is None else match.value


# --- names and types --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("BooleanPrebuiltEntity", EntityKind.BOOLEAN),
        ("NumberPrebuiltEntity", EntityKind.NUMBER),
        ("StringPrebuiltEntity", EntityKind.STRING),
        ("UserEntireResponse", EntityKind.STRING),
        ("EMailPrebuiltEntity", EntityKind.EMAIL),
        ("EmailPrebuiltEntity", EntityKind.EMAIL),
        ("PhoneNumberPrebuiltEntity", EntityKind.PHONE_NUMBER),
        ("DateTimePrebuiltEntity", EntityKind.DATETIME),
        ("DatePrebuiltEntity", EntityKind.DATE),
        ("AgePrebuiltEntity", EntityKind.AGE),
        ("StatePrebuiltEntity", EntityKind.STATE),
        ("ChoicePrebuiltEntity", EntityKind.CHOICE),
        ("ClosedListEntity", EntityKind.CHOICE),
        ("ZipCodePrebuiltEntity", EntityKind.ZIP_CODE),
    ],
)
def test_copilot_studio_entity_names_map_to_kinds(name: str, kind: EntityKind) -> None:
    assert ENTITY_NAMES[name] is kind


def test_entities_we_do_not_extract_are_not_named() -> None:
    assert "CityPrebuiltEntity" not in ENTITY_NAMES
    assert "EmbeddedEntity" not in ENTITY_NAMES


@pytest.mark.parametrize(
    ("kind", "fx"),
    [
        (EntityKind.BOOLEAN, "Boolean"),
        (EntityKind.NUMBER, "Number"),
        (EntityKind.AGE, "Number"),
        (EntityKind.MONEY, "Number"),
        (EntityKind.DATETIME, "DateTime"),
        (EntityKind.DATE, "DateTime"),
        (EntityKind.STRING, "Text"),
        (EntityKind.EMAIL, "Text"),
        (EntityKind.PHONE_NUMBER, "Text"),
        (EntityKind.STATE, "Text"),
        (EntityKind.CHOICE, "Text"),
    ],
)
def test_fx_type_names(kind: EntityKind, fx: str) -> None:
    assert fx_type_name(kind) == fx


# --- string -----------------------------------------------------------------------------------------


def test_string_is_the_whole_answer() -> None:
    assert extract(EntityKind.STRING, "  I'd like a refund, please ", now=NOW) == EntityMatch(
        "I'd like a refund, please", "I'd like a refund, please"
    )


@pytest.mark.parametrize("kind", list(EntityKind))
@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_answer_is_no_answer(kind: EntityKind, text: str) -> None:
    assert extract(kind, text, now=NOW, choices=[Choice("red")]) is None


# --- boolean ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["yes", "Yes!", "yep", "yeah", "sure", "Sure thing", "correct", "that's right", "That\u2019s right", "ok",
     "absolutely", "yes please", "of course", "Y", "sounds good", "no problem", "yesss", "I don't mind"],
)  # fmt: skip
def test_boolean_yes(text: str) -> None:
    assert value(EntityKind.BOOLEAN, text) is True


@pytest.mark.parametrize(
    "text",
    ["no", "No.", "nope", "nah", "not really", "no thanks", "that's not right", "That is not correct",
     "wrong", "absolutely not", "I don't think so", "never", "N", "noooo"],
)  # fmt: skip
def test_boolean_no(text: str) -> None:
    assert value(EntityKind.BOOLEAN, text) is False


@pytest.mark.parametrize(
    "text", ["maybe", "not sure", "I don't know", "blue", "eyes", "know", "nobody", "yesterday"]
)
def test_boolean_rejects_what_is_neither(text: str) -> None:
    assert extract(EntityKind.BOOLEAN, text, now=NOW) is None


def test_boolean_reports_the_words_it_read() -> None:
    assert extract(EntityKind.BOOLEAN, "Hmm, yep that works", now=NOW) == EntityMatch(True, "yep")


# --- numbers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("I'd like 3 please", 3),
        ("3.75", 3.75),
        (".5", 0.5),
        ("-12", -12),
        ("1,234", 1234),
        ("about 1,234,567.89 of them", 1234567.89),
        ("twenty three", 23),
        ("twenty-three", 23),
        ("one hundred and five", 105),
        ("a hundred", 100),
        ("two thousand three hundred forty five", 2345),
        ("nineteen hundred", 1900),
        ("zero", 0),
        ("5 thousand", 5000),
        ("2.5 million", 2_500_000),
    ],
)
def test_numbers(text: str, expected: float) -> None:
    assert value(EntityKind.NUMBER, text) == expected


def test_number_is_an_int_when_whole() -> None:
    assert isinstance(value(EntityKind.NUMBER, "42"), int)
    assert isinstance(value(EntityKind.NUMBER, "4.2"), float)


def test_the_first_number_wins() -> None:
    assert value(EntityKind.NUMBER, "one two three") == 1
    assert value(EntityKind.NUMBER, "seven, or maybe 8") == 7


def test_a_hyphen_between_digits_is_not_a_minus_sign() -> None:
    assert value(EntityKind.NUMBER, "425-555") == 425


def test_comma_decimal_regions() -> None:
    assert extract(EntityKind.NUMBER, "1.234,5", now=NOW, region="DE") == EntityMatch(1234.5, "1.234,5")
    assert value(EntityKind.NUMBER, "1.234,5") == 1.234


@pytest.mark.parametrize("text", ["none", "a few", "lots", "a", "and", "9" * 40])
def test_not_numbers(text: str) -> None:
    assert extract(EntityKind.NUMBER, text, now=NOW) is None


# --- percentage, money, ordinal -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [("25%", 25), ("12.5 percent", 12.5), ("twenty percent", 20)])
def test_percentages(text: str, expected: float) -> None:
    assert value(EntityKind.PERCENTAGE, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("$25", 25), ("$1,200.50", 1200.5), ("25 dollars", 25), ("USD 30", 30), ("50 cents", 0.5), ("€20", 20)],
)
def test_money(text: str, expected: float) -> None:
    assert value(EntityKind.MONEY, text) == expected


@pytest.mark.parametrize(("kind", "text"), [(EntityKind.PERCENTAGE, "25"), (EntityKind.MONEY, "30")])
def test_bare_numbers_are_not_percentages_or_money(kind: EntityKind, text: str) -> None:
    assert extract(kind, text, now=NOW) is None


@pytest.mark.parametrize(
    ("text", "expected"), [("the 3rd", 3), ("second", 2), ("21st", 21), ("tenth one", 10)]
)
def test_ordinals(text: str, expected: int) -> None:
    assert value(EntityKind.ORDINAL, text) == expected


def test_ordinal_rejects_plain_words() -> None:
    assert extract(EntityKind.ORDINAL, "the other one", now=NOW) is None


# --- email, phone, URL, zip -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pat@example.com", "pat@example.com"),
        ("it's Pat.Smith+orders@mail.example.co.uk.", "Pat.Smith+orders@mail.example.co.uk"),
        ("<o'brien@example.org>", "o'brien@example.org"),
    ],
)
def test_emails(text: str, expected: str) -> None:
    assert value(EntityKind.EMAIL, text) == expected


@pytest.mark.parametrize(
    "text",
    ["pat@", "@example.com", "pat@example", "pat..smith@example.com", "pat at example dot com", "a@b.c"],
)
def test_not_emails(text: str) -> None:
    assert extract(EntityKind.EMAIL, text, now=NOW) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+1 425 555 0100", "14255550100"),
        ("(425) 555-0100", "14255550100"),
        ("call me on 206-555-1234 after 5", "12065551234"),
        ("4255550100", "14255550100"),
        ("+44 20 7946 0958", "442079460958"),
    ],
)
def test_phone_numbers_are_e164_digits_without_plus(text: str, expected: str) -> None:
    assert value(EntityKind.PHONE_NUMBER, text) == expected


def test_phone_number_region_decides_national_numbers() -> None:
    match = extract(EntityKind.PHONE_NUMBER, "020 7946 0958", now=NOW, region="GB")
    assert match == EntityMatch("442079460958", "020 7946 0958")


@pytest.mark.parametrize("text", ["555-0100", "12345", "my order is 998877", "no phone"])
def test_not_phone_numbers(text: str) -> None:
    assert extract(EntityKind.PHONE_NUMBER, text, now=NOW) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see https://contoso.com/a?b=1.", "https://contoso.com/a?b=1"),
        ("www.contoso.com", "www.contoso.com"),
        ("contoso.com/returns", "contoso.com/returns"),
    ],
)
def test_urls(text: str, expected: str) -> None:
    assert value(EntityKind.URL, text) == expected


@pytest.mark.parametrize("text", ["pat@contoso.com", "nothing here", "3.5"])
def test_not_urls(text: str) -> None:
    assert extract(EntityKind.URL, text, now=NOW) is None


@pytest.mark.parametrize(("text", "expected"), [("98052", "98052"), ("zip is 98052-1234", "98052-1234")])
def test_zip_codes(text: str, expected: str) -> None:
    assert value(EntityKind.ZIP_CODE, text) == expected


@pytest.mark.parametrize("text", ["980521", "9805", "ninety"])
def test_not_zip_codes(text: str) -> None:
    assert extract(EntityKind.ZIP_CODE, text, now=NOW) is None


# --- dates and times --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tomorrow at 3pm", datetime(2026, 11, 27, 15, 0)),
        ("today", datetime(2026, 11, 26, 0, 0)),
        ("yesterday", datetime(2026, 11, 25, 0, 0)),
        ("the day after tomorrow at 9am", datetime(2026, 11, 28, 9, 0)),
        ("March 5", datetime(2027, 3, 5)),  # No year: the next 5 March.
        ("December 1st", datetime(2026, 12, 1)),
        ("5th of March 2026", datetime(2026, 3, 5)),
        ("dec 25, 2026 at 7:30 pm", datetime(2026, 12, 25, 19, 30)),
        ("2026-12-01", datetime(2026, 12, 1)),
        ("2026-12-01T10:30", datetime(2026, 12, 1, 10, 30)),
        ("12/01/2026", datetime(2026, 12, 1)),
        ("12/1/26", datetime(2026, 12, 1)),
        ("friday", datetime(2026, 11, 27)),
        ("thursday", datetime(2026, 11, 26)),
        ("next thursday", datetime(2026, 12, 3)),
        ("last monday", datetime(2026, 11, 23)),
        ("in 3 days", datetime(2026, 11, 29)),
        ("in a week", datetime(2026, 12, 3)),
        ("in 2 hours", datetime(2026, 11, 26, 11, 0)),
        ("30 minutes from now", datetime(2026, 11, 26, 9, 30)),
        ("next month", datetime(2026, 12, 26)),
        ("at noon", datetime(2026, 11, 26, 12, 0)),
        ("14:45", datetime(2026, 11, 26, 14, 45)),
        ("tonight at 8", datetime(2026, 11, 26, 20, 0)),
        ("at 7am", datetime(2026, 11, 26, 7, 0)),
        ("at 3", datetime(2026, 11, 26, 15, 0)),  # Business hours: 3 is in the afternoon.
        ("friday at 7 in the morning", datetime(2026, 11, 27, 7, 0)),
    ],
)
def test_datetimes_resolve_relative_to_now(text: str, expected: datetime) -> None:
    assert value(EntityKind.DATETIME, text) == expected.replace(tzinfo=UTC)


def test_datetime_keeps_the_time_zone_of_now() -> None:
    pacific = timezone(timedelta(hours=-8))
    match = extract(EntityKind.DATETIME, "tomorrow at 3pm", now=datetime(2026, 11, 26, 9, tzinfo=pacific))
    assert match is not None and match.value == datetime(2026, 11, 27, 15, tzinfo=pacific)


def test_datetime_reports_the_span_it_read() -> None:
    match = extract(EntityKind.DATETIME, "Could we do tomorrow at 3pm please?", now=NOW)
    assert match is not None and match.text == "tomorrow at 3pm"


def test_day_first_outside_the_us() -> None:
    match = extract(EntityKind.DATETIME, "01/12/2026", now=NOW, region="GB")
    assert match is not None and match.value == datetime(2026, 12, 1, tzinfo=UTC)


def test_date_drops_the_time() -> None:
    assert value(EntityKind.DATE, "tomorrow at 3pm") == datetime(2026, 11, 27, tzinfo=UTC)
    assert extract(EntityKind.DATE, "at 3pm", now=NOW) is None


@pytest.mark.parametrize(
    "text", ["hello", "3 cats", "Feb 30", "2026-13-01", "2/30", "may I ask something", "order 12345"]
)
def test_not_datetimes(text: str) -> None:
    assert extract(EntityKind.DATETIME, text, now=NOW) is None


def test_leap_day_without_a_year_is_the_next_one() -> None:
    assert value(EntityKind.DATETIME, "Feb 29") == datetime(2028, 2, 29, tzinfo=UTC)


# --- age --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("I'm 42", 42),
        ("i am 42", 42),
        ("42 years old", 42),
        ("42 yrs", 42),
        ("forty two years old", 42),
        ("age 30", 30),
        ("about 35", 35),
        ("6 months old", 0.5),
    ],
)
def test_ages(text: str, expected: float) -> None:
    assert value(EntityKind.AGE, text) == expected


@pytest.mark.parametrize("text", ["I have 3 kids", "200 years old", "-3", "old enough", "42.5 apples"])
def test_not_ages(text: str) -> None:
    assert extract(EntityKind.AGE, text, now=NOW) is None


# --- US states --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("California", "California"),
        ("CA", "California"),
        ("ca", "California"),
        ("shipping to new york please", "New York"),
        ("West Virginia", "West Virginia"),
        ("Virginia", "Virginia"),
        ("washington", "Washington"),
        ("Washington, D.C.", "District of Columbia"),
        ("I live in WA", "Washington"),
        ("OR", "Oregon"),
        ("Califronia", "California"),
        ("puerto rico", "Puerto Rico"),
    ],
)
def test_states(text: str, expected: str) -> None:
    assert value(EntityKind.STATE, text) == expected


@pytest.mark.parametrize("text", ["Narnia", "ok", "OK", "or", "in", "me", "hi", "Ontario", "I'm in a hurry"])
def test_not_states(text: str) -> None:
    assert extract(EntityKind.STATE, text, now=NOW) is None


def test_verbatim_example_condition_values() -> None:
    # The Copilot Studio lesson compares Topic.State with "California", "Washington" and "Oregon".
    assert [value(EntityKind.STATE, t) for t in ("CA", "wa", "Oregon")] == [
        "California",
        "Washington",
        "Oregon",
    ]


# --- choices ----------------------------------------------------------------------------------------

DEPARTMENTS = (
    Choice("sales", ("buy", "purchase"), display_name="Sales"),
    Choice("support", ("help", "tech support"), display_name="Technical support"),
    Choice("billing", display_name="Billing"),
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sales", "sales"),
        ("Sales", "sales"),
        ("Technical support", "support"),
        ("I want to buy", "sales"),
        ("help!", "support"),
        ("I'd like technical support please", "support"),
        ("the second one", "support"),
        ("2", "support"),
        ("number two", "support"),
        ("option 1", "sales"),
        ("3rd", "billing"),
        ("the last one", "billing"),
        ("suport", "support"),
        ("biling", "billing"),
    ],
)
def test_choices(text: str, expected: str) -> None:
    assert value(EntityKind.CHOICE, text, choices=DEPARTMENTS) == expected


@pytest.mark.parametrize("text", ["xyz", "4", "the fifth one", "billing and sales", "s", "weather"])
def test_not_choices(text: str) -> None:
    assert extract(EntityKind.CHOICE, text, now=NOW, choices=DEPARTMENTS) is None


def test_a_longer_option_beats_the_option_inside_it() -> None:
    options = (Choice("Order"), Choice("Order status"))
    assert value(EntityKind.CHOICE, "order status please", choices=options) == "Order status"
    assert value(EntityKind.CHOICE, "my order", choices=options) == "Order"


def test_an_option_named_by_a_number_is_matched_as_itself() -> None:
    sizes = (Choice("5"), Choice("10"), Choice("2"))
    assert value(EntityKind.CHOICE, "2", choices=sizes) == "2"
    assert value(EntityKind.CHOICE, "the second one", choices=sizes) == "10"


def test_choice_without_options_is_never_matched() -> None:
    assert extract(EntityKind.CHOICE, "sales", now=NOW) is None


def test_choice_label() -> None:
    assert DEPARTMENTS[1].label == "Technical support"
    assert Choice("red").label == "red"


# --- never raises -----------------------------------------------------------------------------------

_PIECES = st.sampled_from(
    ["a", "and", "at", "in", "of", "the", "next", "last", "yes", "no", "not", "one", "twenty", "hundred",
     "thousand", "million", "march", "may", "feb", "monday", "tomorrow", "pm", "am", "o'clock", "noon",
     "years", "old", "months", "%", "$", "cents", "@", ".", ",", "-", "/", ":", "+1", "555", "0", "29",
     "99999", "9" * 35, "2026-02-31", "12/31", "in 9999 months", "CA", "ok", "first", "1st", "http://",
     ".com", "\u0130"]
)  # fmt: skip
_TEXTS = st.one_of(
    st.text(),
    st.lists(
        st.one_of(_PIECES, st.text(max_size=4), st.integers(-(10**40), 10**40).map(str)), max_size=12
    ).map(" ".join),
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(list(EntityKind)),
    text=_TEXTS,
    now=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=14))])) | st.just(datetime.min),
    region=st.sampled_from(["US", "GB", "DE", "XX", ""]),
)
def test_extract_never_raises(kind: EntityKind, text: str, now: datetime, region: str) -> None:
    match = extract(kind, text, now=now, choices=DEPARTMENTS, region=region)
    assert match is None or isinstance(match, EntityMatch)
