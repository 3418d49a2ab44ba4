"""The expression AST: small frozen nodes that type-check and evaluate themselves.

Each node carries its source span so a type error or a run-time failure points at the text that
caused it. Evaluation is a method call per node (no ``isinstance`` dispatch, no tree rebuilt per
turn) because the dialog engine evaluates conditions on every turn.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from warmline.bot.expressions.model import ExpressionError, FxType, ValueProblem
from warmline.bot.expressions.values import (
    describe,
    normalize,
    order,
    parse_number,
    to_bool,
    to_float,
    to_text,
    values_equal,
)

Variables = Mapping[str, Any]
Types = Mapping[str, FxType]

_MISSING = object()

# Types that carry one value and can therefore be compared, shown as text or tested.
SCALAR_TYPES = frozenset(
    {FxType.TEXT, FxType.NUMBER, FxType.BOOLEAN, FxType.DATETIME, FxType.BLANK, FxType.ANY}
)
_OPEN = frozenset({FxType.BLANK, FxType.ANY})  # fit wherever any type is expected
_FIELDS_OK = frozenset({FxType.RECORD, FxType.ANY, FxType.BLANK})


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node's text starts and ends (1-based lines and columns; the end is exclusive)."""

    line: int
    column: int
    end_line: int
    end_column: int

    def error(self, message: str) -> ExpressionError:
        """An error located at this span."""
        return ExpressionError(message, self.line, self.column, self.end_line, self.end_column)

    def through(self, other: Span) -> Span:
        """The span from the start of this one to the end of ``other``."""
        return Span(self.line, self.column, other.end_line, other.end_column)


class Node:
    """A node of the expression tree."""

    __slots__ = ()
    span: Span

    def eval(self, variables: Variables, now: datetime) -> Any:
        """The node's value for these variables."""
        raise NotImplementedError

    def infer(self, types: Types) -> FxType:
        """The node's static type; raises ``ExpressionError`` at the offending text."""
        raise NotImplementedError

    def children(self) -> tuple[Node, ...]:
        """The direct sub-expressions."""
        return ()

    def error(self, message: str) -> ExpressionError:
        """An error located at this node."""
        return self.span.error(message)


class FunctionLike(Protocol):
    """What a ``Call`` needs from the function table (kept abstract to avoid an import cycle)."""

    @property
    def check(self) -> Callable[[Call, list[FxType]], FxType]: ...

    @property
    def run(self) -> Callable[[Call, Variables, datetime], Any]: ...


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """A number, text or Boolean written in the source, or a ``Match``/``MatchOptions`` constant."""

    value: Any
    type: FxType
    span: Span

    def eval(self, variables: Variables, now: datetime) -> Any:
        return self.value

    def infer(self, types: Types) -> FxType:
        return self.type


@dataclass(frozen=True, slots=True)
class Name(Node):
    """A dotted variable reference such as ``Topic.State`` or ``Topic.Response.city``."""

    path: str
    span: Span
    # (variable, fields below it) for each shorter prefix, longest first: Topic.Resp + (city,).
    prefixes: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def of(cls, parts: tuple[str, ...], span: Span) -> Name:
        """A name from its dotted parts."""
        prefixes = tuple((".".join(parts[:cut]), parts[cut:]) for cut in range(len(parts) - 1, 0, -1))
        return cls(".".join(parts), span, prefixes)

    def eval(self, variables: Variables, now: datetime) -> Any:
        value = variables.get(self.path, _MISSING)
        if value is not _MISSING:
            return value
        for prefix, fields in self.prefixes:
            value = variables.get(prefix, _MISSING)
            if value is _MISSING:
                continue
            for name in fields:
                if value is None:
                    return None
                if not isinstance(value, Mapping):
                    raise self.error(
                        f"'{prefix}' is {describe(value)}, not a record: it has no field '{name}'"
                    )
                value = value.get(name)
            return value
        return None  # a variable not yet set is Blank

    def infer(self, types: Types) -> FxType:
        known = types.get(self.path)
        if known is not None:
            return known
        for prefix, fields in self.prefixes:
            known = types.get(prefix)
            if known is None:
                continue
            if known in _FIELDS_OK:
                return FxType.ANY
            raise self.error(f"'{prefix}' is {known.value}, which has no field '{fields[0]}'")
        raise self.error(f"unknown variable '{self.path}'{_suggest(self.path, types)}")


def _suggest(path: str, types: Types) -> str:
    lowered = path.lower()
    for name in types:
        if name.lower() == lowered:
            return f" (did you mean '{name}'? names are case-sensitive)"
    close = difflib.get_close_matches(path, list(types), n=1, cutoff=0.8)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(frozen=True, slots=True)
class Negate(Node):
    """Unary minus."""

    operand: Node
    span: Span

    def eval(self, variables: Variables, now: datetime) -> Any:
        try:
            return normalize(-to_float(self.operand.eval(variables, now)))
        except ValueProblem as problem:
            raise self.error(problem.message) from None

    def infer(self, types: Types) -> FxType:
        expect_number(self.operand, self.operand.infer(types), "'-'")
        return FxType.NUMBER

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class Percent(Node):
    """Postfix ``%``: divides by 100."""

    operand: Node
    span: Span

    def eval(self, variables: Variables, now: datetime) -> Any:
        try:
            return normalize(to_float(self.operand.eval(variables, now)) / 100)
        except ValueProblem as problem:
            raise self.error(problem.message) from None

    def infer(self, types: Types) -> FxType:
        expect_number(self.operand, self.operand.infer(types), "'%'")
        return FxType.NUMBER

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class Not(Node):
    """``!x`` or ``Not x``."""

    operand: Node
    span: Span

    def eval(self, variables: Variables, now: datetime) -> Any:
        try:
            return not to_bool(self.operand.eval(variables, now))
        except ValueProblem as problem:
            raise self.operand.error(problem.message) from None

    def infer(self, types: Types) -> FxType:
        expect_boolean(self.operand, self.operand.infer(types), "Not")
        return FxType.BOOLEAN

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


def _add(a: float, b: float) -> float:
    return a + b


def _subtract(a: float, b: float) -> float:
    return a - b


def _multiply(a: float, b: float) -> float:
    return a * b


def _divide(a: float, b: float) -> float:
    if b == 0:
        raise ValueProblem("division by zero")
    return a / b


def _power(a: float, b: float) -> float:
    try:
        return float(a**b) if a >= 0 or b.is_integer() else _no_root(a, b)
    except ZeroDivisionError:
        raise ValueProblem("division by zero") from None
    except OverflowError:
        raise ValueProblem("the result is too large") from None


def _no_root(a: float, b: float) -> float:
    raise ValueProblem(f"can't raise the negative number {a:g} to the fractional power {b:g}")


ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": _add,
    "-": _subtract,
    "*": _multiply,
    "/": _divide,
    "^": _power,
}


@dataclass(frozen=True, slots=True)
class Arithmetic(Node):
    """``+ - * / ^`` on Numbers; Blank is 0 and numeric text converts."""

    op: str
    left: Node
    right: Node
    span: Span
    op_span: Span
    apply: Callable[[float, float], float] = field(repr=False, compare=False)

    def eval(self, variables: Variables, now: datetime) -> Any:
        try:
            a = to_float(self.left.eval(variables, now))
            b = to_float(self.right.eval(variables, now))
            return normalize(self.apply(a, b))
        except ValueProblem as problem:
            raise self.op_span.error(problem.message) from None

    def infer(self, types: Types) -> FxType:
        expect_number(self.left, self.left.infer(types), f"'{self.op}'")
        expect_number(self.right, self.right.infer(types), f"'{self.op}'")
        return FxType.NUMBER

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Concat(Node):
    """``a & b & c``: joins the parts as text (flattened: the operator is associative)."""

    parts: tuple[Node, ...]
    span: Span

    def eval(self, variables: Variables, now: datetime) -> Any:
        pieces = []
        for part in self.parts:
            value = part.eval(variables, now)
            if type(value) is str:
                pieces.append(value)
                continue
            try:
                pieces.append(to_text(value))
            except ValueProblem as problem:
                raise part.error(problem.message) from None
        return "".join(pieces)

    def infer(self, types: Types) -> FxType:
        for part in self.parts:
            expect_scalar(part, part.infer(types), "'&'")
        return FxType.TEXT

    def children(self) -> tuple[Node, ...]:
        return self.parts


def _equal(left: Any, right: Any) -> bool:
    return values_equal(left, right)


def _not_equal(left: Any, right: Any) -> bool:
    return not values_equal(left, right)


def _less(left: Any, right: Any) -> bool:
    return order(left, right) < 0


def _less_equal(left: Any, right: Any) -> bool:
    return order(left, right) <= 0


def _greater(left: Any, right: Any) -> bool:
    return order(left, right) > 0


def _greater_equal(left: Any, right: Any) -> bool:
    return order(left, right) >= 0


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": _equal,
    "<>": _not_equal,
    "<": _less,
    "<=": _less_equal,
    ">": _greater,
    ">=": _greater_equal,
}
_ORDERED = frozenset({FxType.NUMBER, FxType.DATETIME, FxType.BLANK, FxType.ANY})


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """``= <> < <= > >=``; ``=`` on text is exact (case-sensitive), as in Power Fx."""

    op: str
    left: Node
    right: Node
    span: Span
    op_span: Span
    test: Callable[[Any, Any], bool] = field(repr=False, compare=False)

    def eval(self, variables: Variables, now: datetime) -> Any:
        left = self.left.eval(variables, now)
        right = self.right.eval(variables, now)
        try:
            return self.test(left, right)
        except ValueProblem as problem:
            raise self.op_span.error(problem.message) from None

    def infer(self, types: Types) -> FxType:
        left, right = self.left.infer(types), self.right.infer(types)
        if self.op in ("=", "<>"):
            for side, kind in ((self.left, left), (self.right, right)):
                if kind in (FxType.RECORD, FxType.TABLE):
                    raise side.error(f"a {kind.value} can't be compared with '{self.op}'")
            if left in _OPEN or right in _OPEN or left == right:
                return FxType.BOOLEAN
            raise self.op_span.error(f"can't compare {left.value} with {right.value}")
        for side, kind in ((self.left, left), (self.right, right)):
            if kind not in _ORDERED:
                raise side.error(f"'{self.op}' compares Numbers or DateTimes, not {kind.value}")
        if left not in _OPEN and right not in _OPEN and left != right:
            raise self.op_span.error(f"can't compare {left.value} with {right.value}")
        return FxType.BOOLEAN

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Logical(Node):
    """``And``/``&&`` or ``Or``/``||`` over two or more operands, short-circuiting left to right."""

    op: str  # "And" or "Or"
    operands: tuple[Node, ...]
    span: Span

    def eval(self, variables: Variables, now: datetime) -> Any:
        stop = self.op == "Or"  # the operand value that decides the result early
        for operand in self.operands:
            try:
                if to_bool(operand.eval(variables, now)) is stop:
                    return stop
            except ValueProblem as problem:
                raise operand.error(problem.message) from None
        return not stop

    def infer(self, types: Types) -> FxType:
        for operand in self.operands:
            expect_boolean(operand, operand.infer(types), self.op)
        return FxType.BOOLEAN

    def children(self) -> tuple[Node, ...]:
        return self.operands


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A function call; ``problem`` says why it can't run (unsupported, wrong argument count)."""

    name: str
    args: tuple[Node, ...]
    span: Span
    name_span: Span
    function: FunctionLike | None = field(repr=False, compare=False)
    problem: str | None = None

    def eval(self, variables: Variables, now: datetime) -> Any:
        if self.function is None or self.problem is not None:
            raise self.name_span.error(self.problem or f"function '{self.name}' is not supported")
        try:
            return self.function.run(self, variables, now)
        except ValueProblem as problem:
            raise self.error(f"{self.name}: {problem.message}") from None

    def infer(self, types: Types) -> FxType:
        if self.function is None or self.problem is not None:
            raise self.name_span.error(self.problem or f"function '{self.name}' is not supported")
        arg_types = [arg.infer(types) for arg in self.args]
        return self.function.check(self, arg_types)

    def children(self) -> tuple[Node, ...]:
        return self.args


def expect_number(node: Node, kind: FxType, who: str) -> None:
    """Check that ``node`` (of type ``kind``) can be read as a Number; a non-numeric text literal can't."""
    if kind in (FxType.NUMBER, FxType.BOOLEAN) or kind in _OPEN:
        return
    if kind is FxType.TEXT:
        if isinstance(node, Literal) and node.value.strip() and parse_number(node.value) is None:
            raise node.error(f'{who} needs a Number, and "{node.value}" is not one')
        return
    raise node.error(f"{who} needs a Number, not a {kind.value}")


def expect_boolean(node: Node, kind: FxType, who: str) -> None:
    """Check that ``node`` is a Boolean (or Blank, or untyped)."""
    if kind is FxType.BOOLEAN or kind in _OPEN:
        return
    raise node.error(f"{who} needs a Boolean, not a {kind.value}")


def expect_scalar(node: Node, kind: FxType, who: str) -> None:
    """Check that ``node`` holds a single value (not a record or table)."""
    if kind not in SCALAR_TYPES:
        raise node.error(f"{who} needs a single value, not a {kind.value}")


def expect_text(node: Node, kind: FxType, who: str) -> None:
    """Check that ``node`` is Text (or Blank, or untyped)."""
    if kind is FxType.TEXT or kind in _OPEN:
        return
    raise node.error(f"{who} needs Text, not a {kind.value}")
