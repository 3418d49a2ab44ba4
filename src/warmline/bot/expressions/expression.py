"""Parse once, check once, evaluate every turn: the entry points the loader and the engine call.

The loader parses and type-checks every expression when a bot is validated, so authors see
unknown names and type mismatches with a line and column before publishing; the engine then only
evaluates. ``parse`` can place positions inside a larger text (``line``/``column`` of the
expression's first character), which is how interpolated ``{...}`` parts report where they sit in
their message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from warmline.bot.expressions.grammar import parse_tree
from warmline.bot.expressions.model import ExpressionError, FxType
from warmline.bot.expressions.nodes import Call, Name, Node


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its source, the variables and functions it uses, and its AST."""

    source: str
    names: frozenset[str]  # every variable reference, dotted: "Topic.State", "System.Activity.Text"
    functions: frozenset[str]
    root: Node = field(repr=False, compare=False)
    line: int = 1  # where ``source`` starts in the text it came from
    column: int = 1


def parse(source: str, *, line: int = 1, column: int = 1) -> Expression:
    """Parse ``source`` (without the leading ``=``); raises ``ExpressionError`` on bad syntax."""
    try:
        root = parse_tree(source)
    except ExpressionError as error:
        raise error.moved(line, column) from None
    names: set[str] = set()
    functions: set[str] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, Name):
            names.add(node.path)
        elif isinstance(node, Call):
            functions.add(node.name)
        stack.extend(node.children())
    return Expression(source, frozenset(names), frozenset(functions), root, line, column)


def infer_type(expr: Expression, types: Mapping[str, FxType]) -> FxType:
    """The static type of ``expr`` given the variables' types; raises ``ExpressionError`` where it is wrong.

    A name is known if it is in ``types`` or is a field below a known Record or Any variable.
    """
    try:
        return expr.root.infer(types)
    except ExpressionError as error:
        raise error.moved(expr.line, expr.column) from None
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply", expr.line, expr.column) from None


def evaluate(expr: Expression, variables: Mapping[str, Any], now: datetime) -> Any:
    """The value of ``expr``; ``variables`` maps dotted names to values (``None`` is Blank).

    Unset variables read as Blank. Every failure raises ``ExpressionError``.
    """
    try:
        return expr.root.eval(variables, now)
    except ExpressionError as error:
        raise error.moved(expr.line, expr.column) from None
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply", expr.line, expr.column) from None
    except Exception as error:  # the contract is that only ExpressionError escapes
        raise ExpressionError(
            f"internal error evaluating the expression: {type(error).__name__}: {error}",
            expr.line,
            expr.column,
        ) from error


def interpolate(template: str, *, line: int = 1, column: int = 1) -> list[str | Expression]:
    """Split message text into literal parts and the ``{...}`` expressions between them.

    A ``{`` with no matching ``}`` is literal text. Errors inside braces point into ``template``
    (offset by ``line``/``column`` when the template itself sits inside a larger file).
    """
    parts: list[str | Expression] = []
    literal_start = 0
    index = 0
    while True:
        opening = template.find("{", index)
        if opening < 0:
            break
        closing = _closing_brace(template, opening + 1)
        if closing < 0:
            break
        if opening > literal_start:
            parts.append(template[literal_start:opening])
        at_line, at_column = _position(template, opening + 1, line, column)
        parts.append(parse(template[opening + 1 : closing], line=at_line, column=at_column))
        index = literal_start = closing + 1
    if literal_start < len(template):
        parts.append(template[literal_start:])
    return parts


def _closing_brace(template: str, start: int) -> int:
    """The index of the ``}`` closing a ``{`` just before ``start``, skipping quoted text; -1 if none."""
    depth = 0
    index = start
    length = len(template)
    while index < length:
        character = template[index]
        if character == '"':
            end = template.find('"', index + 1)
            # A doubled quote inside text is an escaped quote: keep scanning past it.
            while end >= 0 and template[end + 1 : end + 2] == '"':
                end = template.find('"', end + 2)
            if end < 0:
                return -1
            index = end + 1
            continue
        if character == "{":
            depth += 1
        elif character == "}":
            if depth == 0:
                return index
            depth -= 1
        index += 1
    return -1


def _position(text: str, index: int, line: int, column: int) -> tuple[int, int]:
    """The line and column of ``text[index]``, for text that starts at ``line``:``column``."""
    newlines = text.count("\n", 0, index)
    if newlines == 0:
        return line, column + index
    return line + newlines, index - text.rfind("\n", 0, index)
