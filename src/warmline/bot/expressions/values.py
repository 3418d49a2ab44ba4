"""Run-time values: how Python values stand in for Power Fx ones, and how they convert.

Blank is ``None``; Text is ``str``; Number is ``int`` or ``float``; Boolean is ``bool``; DateTime is
``datetime``; records and tables are ``dict`` and ``list``. Conversions follow Power Fx: Blank reads
as 0 in arithmetic, "" in text and false in logic; text converts to a number when it reads as one.
Every failure raises ``ValueProblem`` so no Python exception ever escapes an evaluation.
"""

from __future__ import annotations

import decimal
import json
import math
import numbers
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from warmline.bot.expressions.model import ValueProblem

Number = int | float

# Integral results below this stay ``int`` so they print and compare like the numbers users wrote.
_EXACT_LIMIT = 1e15

_NUMERIC_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_CURRENCY = "$€£¥"

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def normalize(value: float) -> Number:
    """A finite float as an ``int`` when it is a whole number of ordinary size; overflow is an error."""
    if not math.isfinite(value):
        raise ValueProblem("the result is not a finite number")
    if value.is_integer() and -_EXACT_LIMIT < value < _EXACT_LIMIT:
        return int(value)
    return value


def parse_number(text: str) -> Number | None:
    """The number ``text`` reads as (``Value`` rules: spaces, ``%``, a currency sign, thousands commas)."""
    body = text.strip()
    percent = False
    if body.startswith("%"):
        body, percent = body[1:].strip(), True
    elif body.endswith("%"):
        body, percent = body[:-1].strip(), True
    sign = ""
    if body[:1] in ("+", "-"):
        sign, body = body[0], body[1:].strip()
    if body[:1] and body[0] in _CURRENCY:
        body = body[1:].strip()
    body = sign + body.replace(",", "")
    if not _NUMERIC_TEXT.fullmatch(body):
        return None
    value = float(body)
    if not math.isfinite(value):
        return None
    if percent:
        value /= 100
    return normalize(value)


def describe(value: Any) -> str:
    """The Power Fx type name of a run-time value, for messages."""
    if value is None:
        return "Blank"
    if isinstance(value, bool):
        return "a Boolean"
    if isinstance(value, str):
        return "Text"
    if isinstance(value, numbers.Real):
        return "a Number"
    if isinstance(value, date):
        return "a DateTime"
    if isinstance(value, Mapping):
        return "a Record"
    if isinstance(value, list | tuple):
        return "a Table"
    return f"an unsupported value ({type(value).__name__})"


def to_number(value: Any) -> Number:
    """``value`` as a Number: Blank is 0, true is 1, numeric text is its number."""
    kind = type(value)
    if kind is int or kind is float:
        return value  # type: ignore[no-any-return]  # narrowed by the exact type test above
    if value is None:
        return 0
    if kind is bool:
        return 1 if value else 0
    if isinstance(value, str):
        if not value.strip():
            return 0
        parsed = parse_number(value)
        if parsed is None:
            raise ValueProblem(f"{_quote(value)} is not a number")
        return parsed
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            return normalize(float(value))
        except OverflowError:
            raise ValueProblem("the number is too large") from None
    raise ValueProblem(f"expected a Number, got {describe(value)}")


def to_float(value: Any) -> float:
    """``value`` as a float, for arithmetic; huge integers are an error, not an ``OverflowError``."""
    number = to_number(value)
    try:
        return float(number)
    except OverflowError:
        raise ValueProblem("the number is too large") from None


def to_bool(value: Any) -> bool:
    """``value`` as a Boolean: Blank is false, a Number is true unless 0, "true"/"false" in any case."""
    if value is True or value is False:
        return value
    if value is None:
        return False
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise ValueProblem(f"{_quote(value)} is not a Boolean")
    if isinstance(value, numbers.Real):
        return bool(value != 0)
    raise ValueProblem(f"expected a Boolean, got {describe(value)}")


def to_text(value: Any) -> str:
    """``value`` as Text for ``&`` and the text functions; a record or table is an error."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple):
        raise ValueProblem(f"{describe(value)} can't be used as text")
    text = _scalar_text(value)
    if text is None:
        raise ValueProblem(f"{describe(value)} can't be used as text")
    return text


def render_text(value: Any) -> str:
    """How a value reads in a message: Blank is "", true is "true", 5.0 is "5", a DateTime is ISO-like."""
    if isinstance(value, str):
        return value
    text = _scalar_text(value)
    if text is not None:
        return text
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _scalar_text(value: Any) -> str | None:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, numbers.Real):
        return format_number(value)
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return None


def format_number(value: Any) -> str:
    """A Number the way Power Fx prints it by default: no trailing ".0", 15 significant digits."""
    if isinstance(value, int) and -_EXACT_LIMIT < value < _EXACT_LIMIT:
        return str(value)
    try:
        number = float(value)
    except OverflowError:
        return "-∞" if value < 0 else "∞"
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "-∞" if number < 0 else "∞"
    if number.is_integer() and -_EXACT_LIMIT < number < _EXACT_LIMIT:
        return str(int(number))
    return format(number, ".15g").replace("e", "E")


def format_datetime(value: datetime) -> str:
    """A DateTime as ISO 8601 with a space; midnight (what ``Today()`` gives) prints as the date alone."""
    if value.hour == value.minute == value.second == value.microsecond == 0:
        return value.date().isoformat()
    return value.replace(microsecond=0).isoformat(sep=" ")


def values_equal(left: Any, right: Any) -> bool:
    """Power Fx ``=``: Blank equals only Blank, text compares exactly, Booleans never equal Numbers."""
    if left is None or right is None:
        return left is None and right is None
    left_kind, right_kind = type(left), type(right)
    if left_kind is right_kind and (left_kind is str or left_kind is int):
        return bool(left == right)
    if left_kind is bool or right_kind is bool:
        return left_kind is right_kind and left is right
    left_number = isinstance(left, numbers.Real)
    right_number = isinstance(right, numbers.Real)
    if left_number and right_number:
        return bool(left == right)
    # Untyped data (an HTTP response) may hold a number where the author compares with text.
    if left_number and isinstance(right, str):
        return format_number(left) == right
    if right_number and isinstance(left, str):
        return left == format_number(right)
    if isinstance(left, datetime) and isinstance(right, datetime):
        return left == right
    if isinstance(left, str | datetime) or isinstance(right, str | datetime):
        return False
    try:
        return bool(left == right)
    except Exception:  # foreign objects may compare badly; unequal is the safe answer
        return False


def order(left: Any, right: Any) -> int:
    """-1, 0 or 1 for ``<``-family comparisons of Numbers or DateTimes (Blank reads as 0 / earliest)."""
    left_time = isinstance(left, datetime)
    right_time = isinstance(right, datetime)
    if left_time or right_time:
        if left is None:
            return -1
        if right is None:
            return 1
        if not (left_time and right_time):
            raise ValueProblem(f"can't compare {describe(left)} with {describe(right)}")
        try:
            return int(left > right) - int(left < right)
        except TypeError:
            raise ValueProblem(
                "can't compare a DateTime that has a time zone with one that has none"
            ) from None
    # Numeric text from untyped data orders by its number, as Power Fx does for Dynamic values.
    a, b = to_number(left), to_number(right)
    return (a > b) - (a < b)


def format_with_pattern(value: Any, pattern: str) -> str:
    """``Text(value, pattern)``: Excel-style number patterns (0 # , .) or date patterns (yyyy mm dd hh ss)."""
    if isinstance(value, datetime):
        return _format_datetime_pattern(value, pattern)
    if isinstance(value, date):
        return _format_datetime_pattern(datetime(value.year, value.month, value.day), pattern)
    if isinstance(value, str):
        parsed = parse_number(value)
        if parsed is None:
            return value
        value = parsed
    if isinstance(value, bool):
        return "true" if value else "false"
    return _format_number_pattern(to_float(value), pattern)


_PLACEHOLDERS = re.compile(r"[#0,]*\.[#0]+|[#0][#0,]*(?:\.[#0]*)?")


def _format_number_pattern(number: float, pattern: str) -> str:
    match = _PLACEHOLDERS.search(pattern)
    if match is None:
        return pattern
    prefix, spec, suffix = pattern[: match.start()], match.group(), pattern[match.end() :]
    whole_spec, _, fraction_spec = spec.partition(".")
    decimals = fraction_spec.count("0") + fraction_spec.count("#")
    min_decimals = fraction_spec.count("0")
    min_whole = whole_spec.count("0")
    if not math.isfinite(number) or abs(number) >= 1e18:
        return prefix + format_number(number) + suffix
    context = decimal.Context(prec=40 + decimals, rounding=decimal.ROUND_HALF_UP)
    rounded = decimal.Decimal(repr(number)).quantize(decimal.Decimal(1).scaleb(-decimals), context=context)
    negative = rounded < 0
    digits = format(abs(rounded), "f")
    whole, _, fraction = digits.partition(".")
    fraction = fraction.rstrip("0")
    if len(fraction) < min_decimals:
        fraction += "0" * (min_decimals - len(fraction))
    if whole == "0":
        whole = ""
    whole = whole.rjust(min_whole, "0")
    if "," in whole_spec and whole:
        whole = f"{int(whole):,}"
        if min_whole > len(whole.replace(",", "")):
            whole = whole.rjust(min_whole, "0")
    sign = "-" if negative and (whole.strip("0,") or fraction.strip("0")) else ""
    body = whole + ("." + fraction if fraction else "")
    return sign + prefix + body + suffix


_DATE_TOKENS = re.compile(
    r'"[^"]*"|\\.|yyyy|yy|mmmm|mmm|mm|m|dddd|ddd|dd|d|hh|h|ss|s|am/pm|a/p|.', re.IGNORECASE | re.DOTALL
)


def _format_datetime_pattern(value: datetime, pattern: str) -> str:
    tokens = _DATE_TOKENS.findall(pattern)
    twelve_hour = any(token.lower() in ("am/pm", "a/p") for token in tokens)
    out: list[str] = []
    after_hour = False
    for index, token in enumerate(tokens):
        lower = token.lower()
        if lower in ("m", "mm"):
            before_second = any(t.lower() in ("s", "ss") for t in tokens[index + 1 : index + 3])
            if after_hour or before_second:
                out.append(f"{value.minute:02d}" if lower == "mm" else str(value.minute))
            else:
                out.append(f"{value.month:02d}" if lower == "mm" else str(value.month))
            after_hour = False
            continue
        if lower in ("h", "hh"):
            hour = (value.hour % 12 or 12) if twelve_hour else value.hour
            out.append(f"{hour:02d}" if lower == "hh" else str(hour))
            after_hour = True
            continue
        out.append(_date_part(value, token, lower))
    return "".join(out)


def _date_part(value: datetime, token: str, lower: str) -> str:
    parts = {
        "yyyy": f"{value.year:04d}",
        "yy": f"{value.year % 100:02d}",
        "mmmm": _MONTHS[value.month - 1],
        "mmm": _MONTHS[value.month - 1][:3],
        "dddd": _DAYS[value.weekday()],
        "ddd": _DAYS[value.weekday()][:3],
        "dd": f"{value.day:02d}",
        "d": str(value.day),
        "ss": f"{value.second:02d}",
        "s": str(value.second),
        "am/pm": "AM" if value.hour < 12 else "PM",
        "a/p": "A" if value.hour < 12 else "P",
    }
    if lower in parts:
        return parts[lower]
    if token.startswith('"') and len(token) > 1:
        return token[1:-1]
    if token.startswith("\\") and len(token) == 2:
        return token[1]
    return token


def _quote(text: str) -> str:
    shown = text if len(text) <= 40 else text[:37] + "..."
    return f'"{shown}"'
