"""The supported Power Fx functions: their argument counts, static types and run-time behaviour.

One table drives the parser (is the name known, is the argument count right), the type checker and
the evaluator, so a function is supported everywhere or nowhere. Semantics follow Microsoft's
Power Fx reference: ``StartsWith``/``EndsWith`` ignore case, ``IsMatch`` matches the whole text by
default, ``IsBlank("")`` is true, text functions read Blank as "".
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from warmline.bot.expressions.model import FxType, ValueProblem
from warmline.bot.expressions.nodes import (
    Call,
    Literal,
    Node,
    Variables,
    expect_boolean,
    expect_scalar,
    expect_text,
)
from warmline.bot.expressions.values import (
    format_with_pattern,
    normalize,
    parse_number,
    to_bool,
    to_number,
    to_text,
)

Check = Callable[[Call, list[FxType]], FxType]
Run = Callable[[Call, Variables, datetime], Any]
Expect = Callable[[Node, FxType, str], None]

_COMPLETE = "^c$"  # MatchOptions.Complete, IsMatch's default


@dataclass(frozen=True)
class Function:
    """One supported function."""

    name: str
    usage: str
    min_args: int
    max_args: int | None  # None: any number
    check: Check
    run: Run

    def arity_problem(self, count: int) -> str | None:
        """Why ``count`` arguments are wrong for this function, or None."""
        if self.min_args <= count and (self.max_args is None or count <= self.max_args):
            return None
        if self.max_args is None:
            expected = f"at least {_plural(self.min_args)}"
        elif self.min_args == self.max_args:
            expected = _plural(self.min_args)
        else:
            expected = f"{self.min_args} to {_plural(self.max_args)}"
        return f"{self.name} takes {expected}, got {count}: {self.usage}"


def _plural(count: int) -> str:
    return f"{count} argument" if count == 1 else f"{count} arguments"


def _expect_any(node: Node, kind: FxType, who: str) -> None:
    """Every type is accepted."""


def _signature(result: FxType, *expects: Expect, rest: Expect | None = None) -> Check:
    """A checker that applies ``expects`` to the arguments in order (``rest`` to any beyond)."""

    def check(call: Call, kinds: list[FxType]) -> FxType:
        for index, (arg, kind) in enumerate(zip(call.args, kinds, strict=True)):
            expect = expects[index] if index < len(expects) else rest
            if expect is not None:
                expect(arg, kind, call.name)
        return result

    return check


def _eager(function: Callable[..., Any]) -> Run:
    """A runner that evaluates every argument, then calls ``function`` with the values."""

    def run(call: Call, variables: Variables, now: datetime) -> Any:
        return function(*[arg.eval(variables, now) for arg in call.args])

    return run


# --- If, And, Or, Not --------------------------------------------------------------------------


def _check_if(call: Call, kinds: list[FxType]) -> FxType:
    last = len(call.args) - 1
    results: list[tuple[Node, FxType]] = []
    for index, (arg, kind) in enumerate(zip(call.args, kinds, strict=True)):
        if index % 2 == 0 and index < last:
            expect_boolean(arg, kind, "If condition")
        else:
            results.append((arg, kind))
    for arg, kind in results:
        if kind in (FxType.RECORD, FxType.TABLE):
            raise arg.error(f"If results must be single values, not a {kind.value}")
    known = [(arg, kind) for arg, kind in results if kind not in (FxType.BLANK, FxType.ANY)]
    for arg, kind in known[1:]:
        if kind != known[0][1]:
            raise arg.error(
                f"If results must all have the same type: this one is {kind.value}, "
                f"an earlier one is {known[0][1].value}"
            )
    if any(kind is FxType.ANY for _, kind in results):
        return FxType.ANY
    return known[0][1] if known else FxType.BLANK


def _run_if(call: Call, variables: Variables, now: datetime) -> Any:
    args = call.args
    count = len(args)
    index = 0
    while index + 1 < count:
        condition = args[index]
        try:
            chosen = to_bool(condition.eval(variables, now))
        except ValueProblem as problem:
            raise condition.error(f"If condition: {problem.message}") from None
        if chosen:
            return args[index + 1].eval(variables, now)
        index += 2
    return args[index].eval(variables, now) if index < count else None


def _logical(stop: bool) -> Run:
    """``And`` (stops at the first false) or ``Or`` (stops at the first true)."""

    def run(call: Call, variables: Variables, now: datetime) -> Any:
        for arg in call.args:
            try:
                if to_bool(arg.eval(variables, now)) is stop:
                    return stop
            except ValueProblem as problem:
                raise arg.error(f"{call.name}: {problem.message}") from None
        return not stop

    return run


def _not(value: Any) -> bool:
    return not to_bool(value)


# --- Blank -------------------------------------------------------------------------------------


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value)


def _blank() -> None:
    return None


# --- Text and numbers --------------------------------------------------------------------------


def _check_value(call: Call, kinds: list[FxType]) -> FxType:
    arg, kind = call.args[0], kinds[0]
    if kind not in (FxType.TEXT, FxType.NUMBER, FxType.BOOLEAN) and kind not in (FxType.BLANK, FxType.ANY):
        raise arg.error(f"Value converts Text to a Number, not a {kind.value}")
    text = arg.value if isinstance(arg, Literal) and isinstance(arg.value, str) else ""
    if text.strip() and parse_number(text) is None:
        raise arg.error(f'Value: "{text[:40]}" is not a number')
    return FxType.NUMBER


def _value(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        parsed = parse_number(value)
        if parsed is None:
            raise ValueProblem(f'"{value[:40]}" is not a number')
        return parsed
    if isinstance(value, datetime):
        raise ValueProblem("a DateTime can't be converted to a Number")
    return normalize(float(to_number(value)))


_NO_PATTERN = object()


def _text(value: Any, pattern: Any = _NO_PATTERN) -> Any:
    if value is None:
        return None
    if pattern is _NO_PATTERN:
        return to_text(value)
    if pattern is None:
        return ""
    if isinstance(value, dict | list):
        to_text(value)  # raises: a record has no text form
    return format_with_pattern(value, to_text(pattern))


def _lower(value: Any) -> str:
    return to_text(value).lower()


def _upper(value: Any) -> str:
    return to_text(value).upper()


_SPACE_RUNS = re.compile(" {2,}")


def _trim(value: Any) -> str:
    # Power Fx's Trim removes spaces only: leading, trailing and repeated ones between words.
    return _SPACE_RUNS.sub(" ", to_text(value)).strip(" ")


def _len(value: Any) -> int:
    return len(to_text(value))


def _concatenate(*values: Any) -> str:
    return "".join(to_text(value) for value in values)


def _starts_with(text: Any, start: Any) -> bool:
    return to_text(text).lower().startswith(to_text(start).lower())


def _ends_with(text: Any, end: Any) -> bool:
    return to_text(text).lower().endswith(to_text(end).lower())


# --- IsMatch -----------------------------------------------------------------------------------

# Power Fx's Match enumeration, in Python's regular-expression dialect.
MATCH_PATTERNS = {
    "Any": ".",
    "Comma": ",",
    "Digit": r"\d",
    "Email": r".+@.+\.[^.]{2,}",
    "Hyphen": r"\-",
    "LeftParen": r"\(",
    "Letter": r"[^\W\d_]",
    "MultipleDigits": r"\d+",
    "MultipleLetters": r"[^\W\d_]+",
    "MultipleNonSpaces": r"\S+",
    "MultipleSpaces": r"\s+",
    "NonSpace": r"\S",
    "OptionalDigits": r"\d*",
    "OptionalLetters": r"[^\W\d_]*",
    "OptionalNonSpaces": r"\S*",
    "OptionalSpaces": r"\s*",
    "Period": r"\.",
    "RightParen": r"\)",
    "Space": r"\s",
    "Tab": r"\t",
}
# MatchOptions values are strings in Power Fx too, so they combine with '&'.
MATCH_OPTIONS = {
    "BeginsWith": "^c",
    "Complete": _COMPLETE,
    "Contains": "c",
    "EndsWith": "c$",
    "IgnoreCase": "i",
    "Multiline": "m",
}
_OPTION_CHARACTERS = frozenset("^c$im")


def compile_pattern(pattern: str, options: str = _COMPLETE) -> Callable[[str], object]:
    """The matcher for ``IsMatch(text, pattern, options)``; a bad pattern raises ``ValueProblem``."""
    unknown = set(options) - _OPTION_CHARACTERS
    if unknown:
        raise ValueProblem(f"unknown match options {options!r}: use the MatchOptions values")
    flags = (re.IGNORECASE if "i" in options else 0) | (re.MULTILINE if "m" in options else 0)
    begins, ends = "^" in options, "$" in options
    source = pattern if begins or not ends else f"(?:{pattern})\\Z"
    try:
        # Warnings become errors so a questionable pattern fails cleanly instead of warning per turn.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compiled = re.compile(source, flags)
    except (re.error, Warning, OverflowError, ValueError, RecursionError) as error:
        raise ValueProblem(f"invalid regular expression: {error}") from None
    if begins and ends:
        return compiled.fullmatch
    if begins:
        return compiled.match
    return compiled.search


def _check_is_match(call: Call, kinds: list[FxType]) -> FxType:
    _signature(FxType.BOOLEAN, expect_scalar, expect_text, expect_text)(call, kinds)
    options = _COMPLETE
    if len(call.args) == 3:
        option_arg = call.args[2]
        if not (isinstance(option_arg, Literal) and isinstance(option_arg.value, str)):
            return FxType.BOOLEAN
        options = option_arg.value
    pattern = call.args[1]
    if isinstance(pattern, Literal) and isinstance(pattern.value, str):
        try:
            compile_pattern(pattern.value, options)
        except ValueProblem as problem:
            raise pattern.error(problem.message) from None
    return FxType.BOOLEAN


def _is_match(text: Any, pattern: Any, options: Any = _COMPLETE) -> bool:
    matcher = compile_pattern(to_text(pattern), _COMPLETE if options is None else to_text(options))
    try:
        return matcher(to_text(text)) is not None
    except RecursionError:
        raise ValueProblem("the regular expression is too complex") from None


# --- Now, Today --------------------------------------------------------------------------------


def _now(call: Call, variables: Variables, now: datetime) -> datetime:
    return now


def _today(call: Call, variables: Variables, now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _table() -> dict[str, Function]:
    text, number, boolean = FxType.TEXT, FxType.NUMBER, FxType.BOOLEAN
    scalar = expect_scalar
    entries = [
        Function(
            "If", "If(condition, result, [condition2, result2, ...], [else])", 2, None, _check_if, _run_if
        ),
        Function("And", "And(a, b, ...)", 1, None, _signature(boolean, rest=expect_boolean), _logical(False)),
        Function("Or", "Or(a, b, ...)", 1, None, _signature(boolean, rest=expect_boolean), _logical(True)),
        Function("Not", "Not(value)", 1, 1, _signature(boolean, expect_boolean), _eager(_not)),
        Function("IsBlank", "IsBlank(value)", 1, 1, _signature(boolean, _expect_any), _eager(_is_blank)),
        Function("Blank", "Blank()", 0, 0, _signature(FxType.BLANK), _eager(_blank)),
        Function("Text", "Text(value, [format])", 1, 2, _signature(text, scalar, expect_text), _eager(_text)),
        Function("Value", "Value(text)", 1, 1, _check_value, _eager(_value)),
        Function("Lower", "Lower(text)", 1, 1, _signature(text, scalar), _eager(_lower)),
        Function("Upper", "Upper(text)", 1, 1, _signature(text, scalar), _eager(_upper)),
        Function("Len", "Len(text)", 1, 1, _signature(number, scalar), _eager(_len)),
        Function("Trim", "Trim(text)", 1, 1, _signature(text, scalar), _eager(_trim)),
        Function(
            "Concatenate",
            "Concatenate(text1, text2, ...)",
            1,
            None,
            _signature(text, rest=scalar),
            _eager(_concatenate),
        ),
        Function(
            "StartsWith",
            "StartsWith(text, start)",
            2,
            2,
            _signature(boolean, scalar, scalar),
            _eager(_starts_with),
        ),
        Function(
            "EndsWith", "EndsWith(text, end)", 2, 2, _signature(boolean, scalar, scalar), _eager(_ends_with)
        ),
        Function("IsMatch", "IsMatch(text, pattern, [options])", 2, 3, _check_is_match, _eager(_is_match)),
        Function("Now", "Now()", 0, 0, _signature(FxType.DATETIME), _now),
        Function("Today", "Today()", 0, 0, _signature(FxType.DATETIME), _today),
    ]
    return {function.name: function for function in entries}


FUNCTIONS: dict[str, Function] = _table()


def call_problem(name: str, count: int) -> str | None:
    """Why ``name(...)`` with ``count`` arguments can't be used, or None if it can."""
    function = FUNCTIONS.get(name)
    if function is not None:
        return function.arity_problem(count)
    supported = ", ".join(sorted(FUNCTIONS))
    for known in FUNCTIONS:
        if known.lower() == name.lower():
            return (
                f"function '{name}' is not supported; did you mean '{known}'? "
                "(function names are case-sensitive)"
            )
    return f"function '{name}' is not supported (supported: {supported})"
