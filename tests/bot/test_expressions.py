"""The Power Fx subset: grammar, Blank semantics, every operator and function, errors located by
line and column at validation time, and fuzzing that only ever yields values or ExpressionError."""

from __future__ import annotations

import timeit
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmline.bot.expressions import (
    FUNCTIONS,
    Expression,
    ExpressionError,
    FxType,
    evaluate,
    infer_type,
    interpolate,
    parse,
    render_text,
)

NOW = datetime(2024, 5, 1, 14, 30, 15, tzinfo=UTC)

TYPES: dict[str, FxType] = {
    "Topic.State": FxType.TEXT,
    "Topic.Count": FxType.NUMBER,
    "Topic.Accepted": FxType.BOOLEAN,
    "Topic.When": FxType.DATETIME,
    "Topic.Response": FxType.RECORD,
    "Topic.Orders": FxType.TABLE,
    "Topic.Anything": FxType.ANY,
    "Global.Empty": FxType.BLANK,
    "System.Activity.Text": FxType.TEXT,
    "System.FallbackCount": FxType.NUMBER,
}

VERBATIM = '=Topic.State = "California" || Topic.State = "Washington" || Topic.State     = "Oregon"'


def run(source: str, **variables: Any) -> Any:
    """Evaluate ``source`` with ``Topic_X=...`` keyword arguments standing for ``Topic.X``."""
    return evaluate(parse(source), {k.replace("_", "."): v for k, v in variables.items()}, NOW)


def type_of(source: str) -> FxType:
    return infer_type(parse(source), TYPES)


def error_of(source: str, types: dict[str, FxType] | None = None) -> ExpressionError:
    """The error that parsing and then type-checking ``source`` raises."""
    with pytest.raises(ExpressionError) as caught:
        infer_type(parse(source), TYPES if types is None else types)
    return caught.value


# --- the verbatim Copilot Studio condition -----------------------------------------------------


def test_the_verbatim_condition_parses_types_and_runs() -> None:
    expr = parse(VERBATIM.removeprefix("="))
    assert expr.names == frozenset({"Topic.State"})
    assert expr.functions == frozenset()
    assert infer_type(expr, TYPES) is FxType.BOOLEAN
    assert evaluate(expr, {"Topic.State": "Oregon"}, NOW) is True
    assert evaluate(expr, {"Topic.State": "Washington"}, NOW) is True
    assert evaluate(expr, {"Topic.State": "Texas"}, NOW) is False
    assert evaluate(expr, {}, NOW) is False  # unset is Blank, which equals no text


def test_names_and_functions_are_collected() -> None:
    expr = parse('If(IsBlank(Topic.Response.city), Lower(System.Activity.Text), Text(Topic.Count, "0"))')
    assert expr.names == frozenset({"Topic.Response.city", "System.Activity.Text", "Topic.Count"})
    assert expr.functions == frozenset({"If", "IsBlank", "Lower", "Text"})


# --- literals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("42", 42),
        ("3.25", 3.25),
        (".5", 0.5),
        ("1.", 1),
        ("2e3", 2000),
        ("1.5E-1", 0.15),
        ('"hello"', "hello"),
        ('"say ""hi"""', 'say "hi"'),
        ('""', ""),
        ('"two\nlines"', "two\nlines"),
        ("true", True),
        ("false", False),
        ("True", True),
        ("FALSE", False),
        ("Blank()", None),
    ],
)
def test_literals(source: str, value: Any) -> None:
    assert run(source) == value
    assert type(run(source)) is type(value)


def test_literal_types() -> None:
    assert type_of("1") is FxType.NUMBER
    assert type_of('"x"') is FxType.TEXT
    assert type_of("TRUE") is FxType.BOOLEAN
    assert type_of("Blank()") is FxType.BLANK
    assert type_of("Now()") is FxType.DATETIME


def test_comments_and_whitespace_are_ignored() -> None:
    assert run("1 + /* two */ 2 // and a comment\n + 3") == 6
    assert run("\t1\n+\n\n2  ") == 3


# --- operators ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 - 2 - 1", 4),
        ("8 / 2 / 2", 2),
        ("1 / 4", 0.25),
        ("2 ^ 3", 8),
        ("2 ^ 3 ^ 2", 512),  # right-associative, as in Power Fx
        ("-2 ^ 2", -4),  # '^' binds tighter than prefix minus
        ("2 ^ -1", 0.5),
        ("-(3)", -3),
        ("- - 3", 3),
        ("50%", 0.5),
        ("200 * 10%", 20),
        ("0.1 + 0.2", 0.30000000000000004),
        ('"2" + 3', 5),  # numeric text converts in arithmetic
        ("true + true", 2),
        ("Blank() + 1", 1),
        ("Blank() * 5", 0),
    ],
)
def test_arithmetic(source: str, value: Any) -> None:
    assert run(source) == value


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ('"a" & "b"', "ab"),
        ('"n=" & 5', "n=5"),
        ('"x" & 2.50', "x2.5"),
        ('"is " & true', "is true"),
        ('"A" & Blank() & "B"', "AB"),
        ("1 & 2 + 3", "15"),  # '&' binds looser than '+'
        ('"when " & Now()', "when 2024-05-01 14:30:15+00:00"),
    ],
)
def test_concatenation(source: str, value: str) -> None:
    assert run(source) == value


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("1 = 1", True),
        ("1 = 1.0", True),
        ("1 <> 2", True),
        ("1 < 2", True),
        ("2 <= 2", True),
        ("3 > 2", True),
        ("2 >= 3", False),
        ('"abc" = "abc"', True),
        ('"abc" = "ABC"', False),  # text equality is exact in Power Fx
        ('"abc" <> "ABC"', True),
        ("true = true", True),
        ("true <> false", True),
        ("Blank() = Blank()", True),
        ('Blank() = ""', False),  # Power Fx: Blank is not the empty string (IsBlank tests both)
        ("Blank() = 0", False),
        ("Blank() < 1", True),
        ("-5 < Blank()", True),
        ("Now() > Today()", True),
        ("Today() = Today()", True),
    ],
)
def test_comparisons(source: str, value: bool) -> None:
    assert run(source) is value


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("true && false", False),
        ("true || false", True),
        ("true And true", True),
        ("false Or true", True),
        ("!true", False),
        ("Not true", False),
        ("Not false And false", False),  # Not binds tighter than And
        ("And(true, true, false)", False),
        ("And(true)", True),
        ("Or(false, false, true)", True),
        ("Not(false)", True),
        ("!Blank()", True),
        ("Blank() || true", True),
        ("1 < 2 && 2 < 3 || false", True),
        ("false && 1/0 = 1", False),  # short-circuit: the division never runs
        ("true || 1/0 = 1", True),
        ("And(false, 1/0 = 1)", False),
    ],
)
def test_logic(source: str, value: bool) -> None:
    assert run(source) is value


def test_logical_operators_are_case_sensitive_keywords() -> None:
    with pytest.raises(ExpressionError):
        parse("true and false")
    assert parse("Nothing").names == frozenset({"Nothing"})  # starts with "Not", still a name
    assert parse("Android").names == frozenset({"Android"})


# --- Blank -------------------------------------------------------------------------------------


def test_blank_semantics() -> None:
    assert run("IsBlank(Blank())") is True
    assert run('IsBlank("")') is True
    assert run('IsBlank(" ")') is False
    assert run("IsBlank(0)") is False
    assert run("IsBlank(false)") is False
    assert run("IsBlank(Topic.Unset)") is True
    assert run("IsBlank(Topic.X)", Topic_X="") is True
    assert run("IsBlank(If(false, 1))") is True
    assert run("Len(Blank())") == 0
    assert run("Lower(Blank())") == ""
    assert run('Concatenate(Blank(), "a", Blank())') == "a"
    assert run("Not(Blank())") is True
    assert run("Topic.Unset + 1") == 1
    assert run("Topic.Unset = Blank()") is True


# --- functions ---------------------------------------------------------------------------------


def test_if() -> None:
    assert run('If(true, "yes", "no")') == "yes"
    assert run('If(false, "yes", "no")') == "no"
    assert run('If(false, "yes")') is None
    assert run('If(false, "a", true, "b", "c")') == "b"
    assert run('If(false, "a", false, "b", "c")') == "c"
    assert run('If(false, "a", false, "b")') is None
    assert run("If(5 > 10, 1/0, 99)") == 99  # untaken branches are not evaluated
    assert run('If(Topic.N > 3, "big", "small")', Topic_N=5) == "big"
    assert type_of('If(Topic.Accepted, "a", "b")') is FxType.TEXT
    assert type_of("If(Topic.Accepted, 1)") is FxType.NUMBER
    assert type_of("If(Topic.Accepted, Blank(), 2)") is FxType.NUMBER
    assert type_of("If(Topic.Accepted, Topic.Anything, 2)") is FxType.ANY


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("Text(5)", "5"),
        ("Text(5.0)", "5"),
        ("Text(-123.4)", "-123.4"),
        ("Text(1/2)", "0.5"),
        ("Text(true)", "true"),
        ('Text("abc")', "abc"),
        ('Text(123.4, "#.000")', "123.400"),
        ('Text(8.9, "#.000")', "8.900"),
        ('Text(1.5, "000")', "002"),
        ('Text(123456789, "0,0.0")', "123,456,789.0"),
        ('Text(1234.59, "####.#")', "1234.6"),
        ('Text(0.631, "0.#")', "0.6"),
        ('Text(0.5, ".##")', ".5"),
        ('Text(12, "#.0#")', "12.0"),
        ('Text(1234.568, "#.0#")', "1234.57"),
        ('Text(12000, "$ #,###")', "$ 12,000"),
        ('Text(1234.5, "#,##0.00")', "1,234.50"),
        ('Text(-1234.5, "#,##0.00")', "-1,234.50"),
        ('Text(0.004, "0.00")', "0.00"),
        ('Text(2.5, "0")', "3"),  # half away from zero, like Excel
        ('Text(Now(), "yyyy-mm-dd")', "2024-05-01"),
        ('Text(Now(), "dd/mm/yyyy hh:mm:ss")', "01/05/2024 14:30:15"),
        ('Text(Now(), "mmmm d, yyyy h:mm AM/PM")', "May 1, 2024 2:30 PM"),
        ('Text(Now(), "ddd mmm")', "Wed May"),
        ("Text(5, Blank())", ""),
    ],
)
def test_text(source: str, value: str) -> None:
    assert run(source) == value


def test_text_of_blank_is_blank() -> None:
    assert run("Text(Blank())") is None
    assert run("IsBlank(Text(Blank()))") is True


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ('Value("12")', 12),
        ('Value("-5")', -5),
        ('Value(" 1.25 ")', 1.25),
        ('Value("123,456.78")', 123456.78),
        ('Value("$ 12.34")', 12.34),
        ('Value("24e3")', 24000),
        ('Value("12.5%")', 0.125),
        ("Value(7)", 7),
        ("Value(true)", 1),
        ('Value("")', None),
        ("Value(Blank())", None),
    ],
)
def test_value(source: str, value: Any) -> None:
    assert run(source) == value


def test_text_functions() -> None:
    assert run('Lower("HeLLo")') == "hello"
    assert run('Upper("HeLLo")') == "HELLO"
    assert run("Upper(12)") == "12"
    assert run('Len("hello")') == 5
    assert run("Len(12345)") == 5
    assert run('Len("")') == 0
    assert run('Trim("   Hello     World   ")') == "Hello World"
    assert run('Trim("   ")') == ""
    assert run('Concatenate("Jane", " ", "Doe")') == "Jane Doe"
    assert run("Concatenate(174, true, 4.5)") == "174true4.5"


def test_starts_and_ends_with_ignore_case() -> None:
    assert run('StartsWith("Hello", "hE")') is True
    assert run('StartsWith("Hello", "ell")') is False
    assert run('StartsWith("Hello", "")') is True
    assert run('StartsWith(Blank(), "a")') is False
    assert run('EndsWith("Hello", "LO")') is True
    assert run('EndsWith("Hello", "Hel")') is False
    assert run("StartsWith(123456, 12)") is True


def test_is_match() -> None:
    assert run('IsMatch("Hi", "Hi")') is True
    assert run('IsMatch("Hi", "H")') is False  # the whole text must match by default
    assert run('IsMatch("Hi", "H.*")') is True
    assert run('IsMatch("Hi", "H", MatchOptions.Contains)') is True
    assert run('IsMatch("Hi", "H", MatchOptions.BeginsWith)') is True
    assert run('IsMatch("Hi", "i", MatchOptions.EndsWith)') is True
    assert run('IsMatch("Hi", "H", MatchOptions.EndsWith)') is False
    assert run('IsMatch("hello", "HELLO", MatchOptions.IgnoreCase)') is True
    assert run('IsMatch("say hello", "HELLO", MatchOptions.Contains & MatchOptions.IgnoreCase)') is True
    assert run('IsMatch("", "")') is True
    assert run('IsMatch(Blank(), ".")') is False
    assert run('IsMatch("JohnDoe@microsoft.com", Match.Email)') is True
    assert run('IsMatch("JohnDoe@microsoftcom", Match.Email)') is False
    assert run('IsMatch("123", Match.MultipleDigits)') is True
    assert run('IsMatch(Topic.Code, "[A-Z]{2}\\d{3}")', Topic_Code="AB123") is True
    assert parse('IsMatch("a", Match.Digit)').names == frozenset()  # enumerations are not variables


def test_now_and_today_come_from_the_caller() -> None:
    assert run("Now()") == NOW
    assert run("Today()") == datetime(2024, 5, 1, tzinfo=UTC)
    later = NOW + timedelta(days=3)
    assert evaluate(parse("Now()"), {}, later) == later


def test_every_function_has_a_usage_line() -> None:
    assert set(FUNCTIONS) >= {
        "If", "IsBlank", "Text", "Value", "Lower", "Upper", "Len", "Trim", "Concatenate",
        "StartsWith", "EndsWith", "IsMatch", "Now", "Today", "And", "Or", "Not", "Blank",
    }  # fmt: skip
    for name, function in FUNCTIONS.items():
        assert function.usage.startswith(f"{name}(")


# --- variables and records ---------------------------------------------------------------------


def test_record_fields_read_dict_keys() -> None:
    variables = {"Topic.Response": {"city": "Oslo", "address": {"zip": "0150"}}, "Topic.Gone": None}
    assert evaluate(parse("Topic.Response.city"), variables, NOW) == "Oslo"
    assert evaluate(parse("Topic.Response.address.zip"), variables, NOW) == "0150"
    assert evaluate(parse("Topic.Response.missing"), variables, NOW) is None
    assert evaluate(parse("Topic.Gone.anything"), variables, NOW) is None
    assert evaluate(parse("System.Activity.Text"), {"System.Activity.Text": "hi"}, NOW) == "hi"
    with pytest.raises(ExpressionError, match="not a record") as caught:
        evaluate(parse("Topic.Response.city.name"), variables, NOW)
    assert (caught.value.line, caught.value.column) == (1, 1)


def test_field_paths_type_as_any_under_records() -> None:
    assert type_of("Topic.Response.city") is FxType.ANY
    assert type_of("Topic.Anything.a.b.c") is FxType.ANY
    assert type_of("Global.Empty.x") is FxType.ANY
    assert type_of("System.Activity.Text") is FxType.TEXT


# --- static errors: unknown names, unsupported functions, type errors --------------------------


def test_unknown_variables_are_located() -> None:
    error = error_of('Topic.State = "x" && Topic.Nope')
    assert error.message == "unknown variable 'Topic.Nope'"
    assert (error.line, error.column, error.end_line, error.end_column) == (1, 22, 1, 32)


def test_unknown_variable_suggests_the_right_case() -> None:
    error = error_of("Topic.state")
    assert "unknown variable 'Topic.state'" in error.message
    assert "Topic.State" in error.message


def test_fields_of_a_scalar_are_unknown() -> None:
    error = error_of("Topic.State.length")
    assert "'Topic.State' is Text" in error.message
    assert error.column == 1


def test_unsupported_functions_are_located() -> None:
    error = error_of("1 + Sum(1, 2)")
    assert error.message.startswith("function 'Sum' is not supported (supported: ")
    assert "IsBlank" in error.message
    assert (error.line, error.column, error.end_column) == (1, 5, 8)
    wrong_case = error_of("isblank(1)")
    assert "did you mean 'IsBlank'" in wrong_case.message


def test_unsupported_functions_parse_but_fail_to_check_and_run() -> None:
    expr = parse("Sum(1, 2)")
    assert expr.functions == frozenset({"Sum"})
    with pytest.raises(ExpressionError, match="not supported"):
        evaluate(expr, {}, NOW)


def test_wrong_argument_counts() -> None:
    assert error_of("Len()").message == "Len takes 1 argument, got 0: Len(text)"
    assert "takes at least 2 arguments" in error_of("If(true)").message
    assert "1 to 2 arguments" in error_of('Text(1, "0", "x")').message


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ('Topic.Count + "abc"', "'+' needs a Number, and \"abc\" is not one", 15),
        ("Not(3)", "Not needs a Boolean, not a Number", 5),
        ("!Topic.State", "Not needs a Boolean, not a Text", 2),
        ("Topic.Count && true", "And needs a Boolean, not a Number", 1),
        ("If(Topic.Count, 1, 2)", "If condition needs a Boolean, not a Number", 4),
        ("Topic.Accepted = 1", "can't compare Boolean with Number", 16),
        ('Topic.Count = "1"', "can't compare Number with Text", 13),
        ('"a" < "b"', "'<' compares Numbers or DateTimes, not Text", 1),
        ("Topic.When < 5", "can't compare DateTime with Number", 12),
        ("Topic.When + 1", "'+' needs a Number, not a DateTime", 1),
        ('"x" & Topic.Response', "'&' needs a single value, not a Record", 7),
        ("Topic.Orders = Topic.Orders", "a Table can't be compared with '='", 1),
        (
            'If(Topic.Accepted, "a", 1)',
            "If results must all have the same type: this one is Number, an earlier one is Text",
            25,
        ),
        ('Value("abc")', 'Value: "abc" is not a number', 7),
        ("Value(Now())", "Value converts Text to a Number, not a DateTime", 7),
        ("Lower(Topic.Orders)", "Lower needs a single value, not a Table", 7),
        ('IsMatch("a", "(")', "invalid regular expression", 14),
        ("Text(1, 2)", "Text needs Text, not a Number", 9),
    ],
)
def test_type_errors_are_located(source: str, message: str, column: int) -> None:
    error = error_of(source)
    assert error.message.startswith(message)
    assert error.line == 1
    assert error.column == column


def test_text_that_reads_as_a_number_is_fine_in_arithmetic() -> None:
    assert type_of('Topic.Count + "2"') is FxType.NUMBER
    assert type_of("Topic.Count + Topic.State") is FxType.NUMBER  # checked when it runs, as in Power Fx
    with pytest.raises(ExpressionError, match='"abc" is not a number'):
        run("Topic.Count + Topic.State", Topic_Count=1, Topic_State="abc")


# --- positions in multi-line sources -----------------------------------------------------------


def test_type_errors_in_multi_line_sources() -> None:
    source = 'Topic.State = "California" ||\n    Topic.State = "Washington" ||\n  Topic.Stat = "Oregon"'
    error = error_of(source)
    assert error.message.startswith("unknown variable 'Topic.Stat'")
    assert (error.line, error.column, error.end_line, error.end_column) == (3, 3, 3, 13)


def test_syntax_errors_in_multi_line_sources() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse('Topic.State = "a"\n  &&\n    Topic.Count >')
    assert caught.value.message == "the expression ends too early: a value is missing"
    assert (caught.value.line, caught.value.column) == (3, 18)
    with pytest.raises(ExpressionError) as caught:
        parse('Topic.State = "a"\n  && ?')
    assert caught.value.message == "unexpected character '?'"
    assert (caught.value.line, caught.value.column) == (2, 6)


def test_a_multi_line_text_literal_keeps_later_positions_right() -> None:
    error = error_of('"one\ntwo" & Topic.Nope')
    assert (error.line, error.column) == (2, 8)


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("", "the expression is empty", 1),
        ("(1 + 2", "a closing ')' is missing", 7),
        ("1 +", "the expression ends too early: a value is missing", 4),
        ("1 2", "unexpected '2': an operator is missing before it", 3),
        ("Topic.", "a name is missing after '.'", 7),
        ('"open', "this text has no closing '\"'", 1),
        ("1 /* open", "this comment has no closing '*/'", 3),
        ("Topic.X == 1", "use '=' to compare, not '=='", 10),
        ("Topic.X != 1", "use '<>' for 'not equal', not '!='", 9),
        ("'Some Name'", "names in single quotes are not supported", 1),
        ("{a: 1}", "record and table literals ({...} and [...]) are not supported", 1),
        ("1; 2", "chaining expressions with ';' is not supported", 2),
        ("Topic.Do(1)", "only the supported functions can be called, not a dotted name", 9),
        ("1 + * 2", "expected a value, found '*'", 5),
        ("1e999", "the number 1e999 is too large", 1),
        ("a # b", "unexpected character '#'", 3),
    ],
)
def test_syntax_errors(source: str, message: str, column: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(source)
    assert caught.value.message == message
    assert (caught.value.line, caught.value.column) == (1, column)
    assert str(caught.value) == message


def test_parse_can_place_positions_inside_a_larger_text() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse("1 + ?", line=10, column=20)
    assert (caught.value.line, caught.value.column) == (10, 24)
    expr = parse("1 +\n Topic.Nope", line=10, column=20)
    with pytest.raises(ExpressionError) as caught:
        infer_type(expr, TYPES)
    assert (caught.value.line, caught.value.column) == (11, 2)  # later lines keep their own columns


def test_nesting_is_limited_not_a_crash() -> None:
    with pytest.raises(ExpressionError, match="closing"):
        parse("(" * 10_000 + "1")
    assert run("(" * 500 + "1" + ")" * 500) == 1  # parentheses alone add no depth
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse("Len(" * 150 + '"x"' + ")" * 150)
    long_chain = " || ".join(["false"] * 500)  # a long flat chain is not deep
    assert run(long_chain) is False


# --- run-time errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "variables", "message"),
    [
        ("1 / 0", {}, "division by zero"),
        ("Topic.X * 2", {"Topic.X": "abc"}, '"abc" is not a number'),
        ("Topic.X & 1", {"Topic.X": {"a": 1}}, "a Record can't be used as text"),
        ("Not(Topic.X)", {"Topic.X": "maybe"}, '"maybe" is not a Boolean'),
        ("If(Topic.X, 1, 2)", {"Topic.X": [1]}, "expected a Boolean, got a Table"),
        ("10 ^ 400", {}, "the result is too large"),
        ("(-8) ^ 0.5", {}, "can't raise the negative number"),
        ('IsMatch("a", Topic.X)', {"Topic.X": "("}, "invalid regular expression"),
        ("Value(Topic.X)", {"Topic.X": "12abc"}, '"12abc" is not a number'),
        ("Topic.X < Now()", {"Topic.X": datetime(2024, 1, 1)}, "time zone"),
        ("Topic.X + 1", {"Topic.X": object()}, "unsupported value"),
        ("Topic.X + 1", {"Topic.X": 10**400}, "too large"),
    ],
)
def test_run_time_failures_are_expression_errors(
    source: str, variables: dict[str, Any], message: str
) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(")):
        evaluate(parse(source), variables, NOW)


def test_run_time_errors_are_located() -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate(parse("1 +\n  2 / Topic.Zero"), {"Topic.Zero": 0}, NOW)
    assert (caught.value.line, caught.value.column) == (2, 5)


# --- interpolation and display -----------------------------------------------------------------


def test_interpolate_splits_text_and_expressions() -> None:
    parts = interpolate("Hello {System.User.DisplayName}, you live in {Topic.State}.")
    assert [p if isinstance(p, str) else p.source for p in parts] == [
        "Hello ",
        "System.User.DisplayName",
        ", you live in ",
        "Topic.State",
        ".",
    ]
    assert all(isinstance(p, Expression) for p in parts[1::2])
    assert interpolate("no holes") == ["no holes"]
    assert interpolate("") == []
    assert [type(p) for p in interpolate("{Topic.X}")] == [Expression]


def test_interpolate_handles_braces_in_text_and_unclosed_braces() -> None:
    parts = interpolate('{If(Topic.A, "}", "{")} and { not closed')
    assert isinstance(parts[0], Expression)
    assert evaluate(parts[0], {"Topic.A": True}, NOW) == "}"
    assert parts[1] == " and { not closed"
    assert interpolate('{"say ""}"" ok"}')[0].source == '"say ""}"" ok"'  # type: ignore[union-attr]


def test_interpolate_errors_point_into_the_template() -> None:
    with pytest.raises(ExpressionError) as caught:
        interpolate("Line one\nYour order {Topic.Order Number} is ready")
    assert caught.value.message == "unexpected 'Number': an operator is missing before it"
    assert (caught.value.line, caught.value.column) == (2, 25)
    parts = interpolate("ok\n  {Topic.Nope}")
    with pytest.raises(ExpressionError) as caught:
        infer_type(parts[1], TYPES)  # type: ignore[arg-type]
    assert (caught.value.line, caught.value.column) == (2, 4)
    with pytest.raises(ExpressionError, match="empty"):
        interpolate("a {} b")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (5, "5"),
        (5.0, "5"),
        (-0.0, "0"),
        (2.5, "2.5"),
        (0.1 + 0.2, "0.3"),
        (1e21, "1E+21"),
        (float("nan"), "NaN"),
        ("text", "text"),
        (datetime(2024, 5, 1, 14, 30, tzinfo=UTC), "2024-05-01 14:30:00+00:00"),
        (datetime(2024, 5, 1, 9, 5, 7), "2024-05-01 09:05:07"),
        (datetime(2024, 5, 1), "2024-05-01"),
        ({"a": 1}, '{"a": 1}'),
        ([1, "x"], '[1, "x"]'),
    ],
)
def test_render_text(value: Any, text: str) -> None:
    assert render_text(value) == text


def test_render_text_never_raises() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    assert isinstance(render_text(loop), str)
    assert render_text(10**5000).endswith("∞")


# --- speed -------------------------------------------------------------------------------------


def test_evaluating_a_condition_takes_microseconds() -> None:
    expr = parse(VERBATIM.removeprefix("="))
    variables = {"Topic.State": "Oregon"}
    seconds = min(timeit.repeat(lambda: evaluate(expr, variables, NOW), number=2000, repeat=3)) / 2000
    assert seconds < 50e-6  # typically 2-4 µs; the bound only catches an accidental re-parse per call


# --- fuzzing -----------------------------------------------------------------------------------

TOKENS = [
    " ", "\n", "(", ")", ",", ".", "1", "2.5", ".5", "1e3", '"a"', '""', '"', "'", "true", "FALSE",
    "Topic.State", "Topic.Count", "Topic.Response", ".city", "Topic.Nope", "x", "&&", "||", "!", "Not ",
    " And ", " Or ", "=", "<>", "<", "<=", ">", ">=", "+", "-", "*", "/", "^", "%", "&", "If(", "IsMatch(",
    "Text(", "Value(", "Len(", "Blank()", "Now()", "Today()", "Match.Email", "MatchOptions.Contains",
    "Sum(", "//", "/*", "*/", "{", "}", "[", ";", "==", "!=",
]  # fmt: skip


def _check_error(error: ExpressionError, source: str) -> None:
    lines = source.split("\n")
    assert not error.message.startswith("internal error"), error.message
    assert 1 <= error.line <= len(lines)
    assert 1 <= error.column <= len(lines[error.line - 1]) + 2
    assert (error.end_line, error.end_column) >= (error.line, error.column)


def _exercise(source: str, variables: dict[str, Any], now: datetime) -> None:
    """parse, infer_type and evaluate either succeed or raise a located ExpressionError."""
    try:
        expr = parse(source)
    except ExpressionError as error:
        _check_error(error, source)
        return
    try:
        infer_type(expr, TYPES)
    except ExpressionError as error:
        _check_error(error, source)
    try:
        evaluate(expr, variables, now)
    except ExpressionError as error:
        _check_error(error, source)


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(),
    st.text(max_size=20),
    st.datetimes(timezones=st.none() | st.just(UTC)),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["city", "a"]), inner, max_size=3)
    ),
    max_leaves=6,
)
_variables = st.dictionaries(st.sampled_from(sorted(TYPES)), _values, max_size=len(TYPES))
_nows = st.datetimes(timezones=st.none() | st.just(UTC) | st.just(timezone(timedelta(hours=-5))))
_fuzz = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fuzz
@given(source=st.text(max_size=80), variables=_variables, now=_nows)
def test_fuzz_random_text(source: str, variables: dict[str, Any], now: datetime) -> None:
    _exercise(source, variables, now)


@_fuzz
@given(source=st.lists(st.sampled_from(TOKENS), max_size=25).map("".join), variables=_variables, now=_nows)
def test_fuzz_token_soup(source: str, variables: dict[str, Any], now: datetime) -> None:
    _exercise(source, variables, now)


@_fuzz
@given(template=st.lists(st.sampled_from([*'ab {}"\n', *TOKENS]), max_size=30).map("".join))
def test_fuzz_interpolate(template: str) -> None:
    try:
        parts = interpolate(template)
    except ExpressionError as error:
        _check_error(error, template)
        return
    rebuilt = "".join(p if isinstance(p, str) else "{" + p.source + "}" for p in parts)
    assert rebuilt == template


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


_ARITIES = {
    name: (f.min_args, f.max_args if f.max_args is not None else f.min_args + 3)
    for name, f in FUNCTIONS.items()
}
_atoms = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.floats(min_value=0, max_value=1e6, allow_nan=False).map(repr),
    st.text(max_size=10).map(_quote),
    st.sampled_from(["true", "false", "Blank()", "Now()", "Today()", "Match.Email", "MatchOptions.Contains"]),
    st.sampled_from([*TYPES, "Topic.Response.city", "Topic.Anything.a.b"]),
)


def _calls(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def build(name: str) -> st.SearchStrategy[str]:
        low, high = _ARITIES[name]
        return st.lists(children, min_size=low, max_size=high).map(lambda args: f"{name}({', '.join(args)})")

    return st.sampled_from(sorted(FUNCTIONS)).flatmap(build)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(
        ["+", "-", "*", "/", "^", "&", "=", "<>", "<", "<=", ">", ">=", "&&", "||", "And", "Or"]
    )
    return st.one_of(
        st.tuples(children, binary, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["-", "!", "Not "]), children).map(lambda t: f"{t[0]}({t[1]})"),
        children.map(lambda c: f"({c})%"),
        _calls(children),
    )


_expressions = st.recursive(_atoms, _extend, max_leaves=20)


@_fuzz
@given(source=_expressions, variables=_variables, now=_nows)
def test_fuzz_well_formed_expressions(source: str, variables: dict[str, Any], now: datetime) -> None:
    expr = parse(source)  # well-formed input always parses
    try:
        infer_type(expr, TYPES)
    except ExpressionError as error:
        _check_error(error, source)
    try:
        evaluate(expr, variables, now)
    except ExpressionError as error:
        _check_error(error, source)


_typed_values: dict[FxType, st.SearchStrategy[Any]] = {
    FxType.TEXT: st.text(max_size=10),
    FxType.NUMBER: st.integers(min_value=-1000, max_value=1000) | st.floats(-1e6, 1e6, allow_nan=False),
    FxType.BOOLEAN: st.booleans(),
    FxType.DATETIME: st.datetimes(timezones=st.just(UTC)),
    FxType.RECORD: st.dictionaries(st.sampled_from(["city", "a"]), _scalars, max_size=2),
    FxType.TABLE: st.lists(_scalars, max_size=2),
    FxType.ANY: _values,
    FxType.BLANK: st.none(),
}
_conforming = st.fixed_dictionaries(
    {}, optional={name: st.none() | _typed_values[kind] for name, kind in TYPES.items()}
)
_RESULT_TYPES: dict[FxType, tuple[type, ...]] = {
    FxType.TEXT: (str,),
    FxType.NUMBER: (int, float),
    FxType.BOOLEAN: (bool,),
    FxType.DATETIME: (datetime,),
}


@_fuzz
@given(source=_expressions, variables=_conforming)
def test_fuzz_values_have_their_inferred_type(source: str, variables: dict[str, Any]) -> None:
    """When an expression type-checks and the variables hold their declared types, its value does too."""
    expr = parse(source)
    try:
        kind = infer_type(expr, TYPES)
    except ExpressionError:
        return
    try:
        value = evaluate(expr, variables, NOW)
    except ExpressionError as error:
        _check_error(error, source)
        return
    if value is not None and kind in _RESULT_TYPES:
        assert isinstance(value, _RESULT_TYPES[kind]), (source, kind, value)
        assert kind is FxType.NUMBER or not isinstance(value, bool) or kind is FxType.BOOLEAN
