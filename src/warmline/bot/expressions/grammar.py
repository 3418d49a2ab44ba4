"""The Power Fx subset's grammar (lark, LALR) and the builder that turns it into AST nodes.

Precedence follows Power Fx's own parser (``Precedence.cs``), loosest first: ``Or ||``, ``And &&``,
comparisons, ``&``, ``+ -``, ``* /``, prefix ``- ! Not``, ``^``, postfix ``%``. The LALR parser
builds nodes as it reduces (no intermediate tree) and never recurses, so hostile input such as
ten thousand open parentheses fails with a located error instead of exhausting the stack; the
nesting limit then keeps the recursive type checker and evaluator within Python's stack.
"""

from __future__ import annotations

import math
from typing import Any, cast

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from warmline.bot.expressions.functions import FUNCTIONS, MATCH_OPTIONS, MATCH_PATTERNS, call_problem
from warmline.bot.expressions.model import ExpressionError, FxType
from warmline.bot.expressions.nodes import (
    ARITHMETIC,
    COMPARISONS,
    Arithmetic,
    Call,
    Compare,
    Concat,
    Literal,
    Logical,
    Name,
    Negate,
    Node,
    Not,
    Percent,
    Span,
)
from warmline.bot.expressions.values import normalize

MAX_DEPTH = 100

GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr
        | or_expr OR_OP and_expr            -> logical
?and_expr: compare_expr
         | and_expr AND_OP compare_expr     -> logical
?compare_expr: concat_expr
             | compare_expr COMPARE_OP concat_expr -> compare
?concat_expr: add_expr
            | concat_expr AMP add_expr      -> concat
?add_expr: mul_expr
         | add_expr (PLUS | MINUS) mul_expr -> arithmetic
?mul_expr: prefix_expr
         | mul_expr (STAR | SLASH) prefix_expr -> arithmetic
?prefix_expr: power_expr
            | (MINUS | BANG | NOT_KEYWORD) prefix_expr -> prefix
?power_expr: postfix_expr
           | postfix_expr CARET prefix_expr -> arithmetic
?postfix_expr: atom
             | postfix_expr PERCENT         -> percent
?atom: NUMBER                               -> number
     | STRING                               -> string
     | BOOLEAN                              -> boolean
     | name
     | NAME LPAR [arguments] RPAR           -> call
     | LPAR or_expr RPAR                    -> paren

name: path
path: NAME
    | path DOT NAME
arguments: or_expr
         | arguments COMMA or_expr

// Keywords outrank NAME where both could match; the look-aheads keep "Nothing" a name and make
// "Not(x)" the function while "Not x" is the operator, as in Power Fx.
OR_OP.3: /\|\||Or(?!\w)/
AND_OP.3: /&&|And(?!\w)/
NOT_KEYWORD.3: /Not(?![\w(])/
BOOLEAN.2: /(?i:true|false)(?!\w)/
COMPARE_OP: /<>|<=|>=|<|>|=/
AMP: "&"
PLUS: "+"
MINUS: "-"
STAR: "*"
SLASH: "/"
CARET: "^"
PERCENT: "%"
BANG: "!"
DOT: "."
COMMA: ","
LPAR: "("
RPAR: ")"
NUMBER: /(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
STRING: /"([^"]|"")*"/
NAME: /[^\W\d]\w*/
COMMENT: /\/\/[^\n]*|\/\*[\s\S]*?\*\//

%ignore /\s+/
%ignore COMMENT
"""


def _span(token: Token) -> Span:
    line = token.line or 1
    column = token.column or 1
    return Span(line, column, token.end_line or line, token.end_column or column + len(token))


class _Builder(Transformer[Token, Node]):
    """Builds AST nodes as the parser reduces; holds no state, so one instance serves every parse."""

    def number(self, children: list[Token]) -> Node:
        (token,) = children
        value = float(token)
        if not math.isfinite(value):
            raise _span(token).error(f"the number {token} is too large")
        return Literal(normalize(value), FxType.NUMBER, _span(token))

    def string(self, children: list[Token]) -> Node:
        (token,) = children
        return Literal(token[1:-1].replace('""', '"'), FxType.TEXT, _span(token))

    def boolean(self, children: list[Token]) -> Node:
        (token,) = children
        return Literal(token.lower() == "true", FxType.BOOLEAN, _span(token))

    def path(self, children: list[Any]) -> list[Token]:
        if len(children) == 1:
            return [children[0]]
        prefix, _dot, name = children
        return [*prefix, name]

    def name(self, children: list[list[Token]]) -> Node:
        (tokens,) = children
        span = _span(tokens[0]).through(_span(tokens[-1]))
        parts = tuple(str(token) for token in tokens)
        if len(parts) == 2 and parts[0] in ("Match", "MatchOptions"):
            constants = MATCH_PATTERNS if parts[0] == "Match" else MATCH_OPTIONS
            if parts[1] in constants:
                return Literal(constants[parts[1]], FxType.TEXT, span)
        return Name.of(parts, span)

    def arguments(self, children: list[Any]) -> list[Node]:
        if len(children) == 1:
            return [children[0]]
        previous, _comma, argument = children
        return [*previous, argument]

    def call(self, children: list[Any]) -> Node:
        name, _open, arguments, close = children
        args = tuple(arguments or ())
        return Call(
            name=str(name),
            args=args,
            span=_span(name).through(_span(close)),
            name_span=_span(name),
            function=FUNCTIONS.get(str(name)),
            problem=call_problem(str(name), len(args)),
        )

    def paren(self, children: list[Any]) -> Node:
        _open, inner, _close = children
        return inner  # type: ignore[no-any-return]  # the middle child is always a built node

    def prefix(self, children: list[Any]) -> Node:
        operator, operand = children
        span = _span(operator).through(operand.span)
        if operator.type == "MINUS":
            if isinstance(operand, Literal) and operand.type is FxType.NUMBER:
                return Literal(-operand.value, FxType.NUMBER, span)
            return Negate(operand, span)
        return Not(operand, span)

    def percent(self, children: list[Any]) -> Node:
        operand, operator = children
        return Percent(operand, operand.span.through(_span(operator)))

    def arithmetic(self, children: list[Any]) -> Node:
        left, operator, right = children
        op = str(operator)
        return Arithmetic(op, left, right, left.span.through(right.span), _span(operator), ARITHMETIC[op])

    def compare(self, children: list[Any]) -> Node:
        left, operator, right = children
        op = str(operator)
        return Compare(op, left, right, left.span.through(right.span), _span(operator), COMPARISONS[op])

    def concat(self, children: list[Any]) -> Node:
        left, _operator, right = children
        parts = (*left.parts, right) if isinstance(left, Concat) else (left, right)
        return Concat(parts, left.span.through(right.span))

    def logical(self, children: list[Any]) -> Node:
        left, operator, right = children
        op = "And" if operator.type == "AND_OP" else "Or"
        if isinstance(left, Logical) and left.op == op:
            return Logical(op, (*left.operands, right), left.span.through(right.span))
        return Logical(op, (left, right), left.span.through(right.span))


_PARSER = Lark(GRAMMAR, parser="lalr", transformer=_Builder(), maybe_placeholders=True)

# Terminals the parser only expects where a value must start (NAME, "(" and "-" also follow values).
_VALUE_STARTS = frozenset({"NUMBER", "STRING", "BOOLEAN", "BANG", "NOT_KEYWORD"})
_OPERAND_TOKENS = frozenset({"NAME", "NUMBER", "STRING", "BOOLEAN"})


def parse_tree(source: str) -> Node:
    """The AST of ``source``; raises ``ExpressionError`` at the first syntax problem."""
    if not source.strip():
        raise ExpressionError("the expression is empty", 1, 1, 1, max(2, len(source) + 1))
    try:
        root = cast(Node, _PARSER.parse(source))
    except UnexpectedInput as error:
        raise _syntax_error(source, error) from None
    except LarkError as error:  # pragma: no cover — lark reports every syntax problem as UnexpectedInput
        raise ExpressionError(f"can't parse the expression: {error}") from None
    _check_depth(root)
    return root


def _check_depth(root: Node) -> None:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise node.error(f"the expression is nested too deeply (more than {MAX_DEPTH} levels)")
        stack.extend((child, depth + 1) for child in node.children())


def _syntax_error(source: str, error: UnexpectedInput) -> ExpressionError:
    if isinstance(error, UnexpectedCharacters):
        return ExpressionError(_bad_character(source, error.pos_in_stream or 0), error.line, error.column)
    if isinstance(error, UnexpectedToken):
        token = error.token
        expected = set(error.expected)
        if token.type == "$END":
            line = token.end_line if token.end_line is not None else 1
            column = token.end_column if token.end_column is not None else 1
            if expected == {"NAME"}:
                message = "a name is missing after '.'"
            elif expected & _VALUE_STARTS:
                message = "the expression ends too early: a value is missing"
            elif "RPAR" in expected:
                message = "a closing ')' is missing"
            else:
                message = "the expression ends too early"
            return ExpressionError(message, line, column, line, column + 1)
        span = _span(token)
        start = token.start_pos or 0
        if str(token) == "*" and source[start - 1 : start] == "/" and span.column > 1:
            # "1 /* note" lexes as a division before the star: the real problem is the open comment.
            return ExpressionError("this comment has no closing '*/'", span.line, span.column - 1)
        return span.error(_unexpected(source, token, expected))
    return ExpressionError(f"can't parse the expression: {error}")  # pragma: no cover — no other kind exists


def _bad_character(source: str, position: int) -> str:
    character = source[position] if 0 <= position < len(source) else ""
    if character == '"':
        return "this text has no closing '\"'"
    if character == "/" and source.startswith("/*", position):
        return "this comment has no closing '*/'"
    if character == "'":
        return "names in single quotes are not supported"
    if character in "{[":
        return "record and table literals ({...} and [...]) are not supported"
    if character == ";":
        return "chaining expressions with ';' is not supported"
    if character in "“”":
        return 'use straight double quotes (") around text'
    return f"unexpected character {character!r}"


def _unexpected(source: str, token: Token, expected: set[str]) -> str:
    text = str(token)
    shown = text if len(text) <= 30 else text[:27] + "..."
    start = token.start_pos if token.start_pos is not None else 0
    if text == "=" and source[start - 1 : start] == "=":
        return "use '=' to compare, not '=='"
    if token.type == "BANG" and source[start + 1 : start + 2] == "=":
        return "use '<>' for 'not equal', not '!='"
    if text == "/" and source.startswith("/*", start):
        return "this comment has no closing '*/'"
    if token.type == "LPAR" and source[:start].rstrip()[-1:].isidentifier():
        return "only the supported functions can be called, not a dotted name"
    if expected & _VALUE_STARTS:
        return f"expected a value, found '{shown}'"
    if token.type in _OPERAND_TOKENS or token.type == "LPAR":
        return f"unexpected '{shown}': an operator is missing before it"
    return f"unexpected '{shown}'"
