"""The vocabulary shared by the parser, the type checker and the evaluator.

Kept free of the grammar and the AST so that callers (the topic loader, the dialog engine) can
name types and catch errors without importing lark.
"""

from __future__ import annotations

from enum import StrEnum


class FxType(StrEnum):
    """The static type of an expression; values are Power Fx's own type names."""

    TEXT = "Text"
    NUMBER = "Number"
    BOOLEAN = "Boolean"
    DATETIME = "DateTime"
    RECORD = "Record"
    TABLE = "Table"
    BLANK = "Blank"
    ANY = "Any"  # unknown or untyped: checks are deferred to run time


class ExpressionError(ValueError):
    """A syntax, type or run-time error, located in the expression's source.

    ``line`` and ``column`` are 1-based; ``end_column`` is the column just past the offending text
    on ``end_line``. ``str(error)`` is the bare message so callers can prefix their own location.
    """

    def __init__(
        self,
        message: str,
        line: int = 1,
        column: int = 1,
        end_line: int | None = None,
        end_column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.end_line = line if end_line is None else end_line
        self.end_column = column + 1 if end_column is None else end_column

    def moved(self, line: int, column: int) -> ExpressionError:
        """The same error for source that starts at ``line``:``column`` of a larger text."""
        if line == 1 and column == 1:
            return self

        def shift(at_line: int, at_column: int) -> tuple[int, int]:
            return at_line + line - 1, at_column + (column - 1 if at_line == 1 else 0)

        start = shift(self.line, self.column)
        end = shift(self.end_line, self.end_column)
        return ExpressionError(self.message, start[0], start[1], end[0], end[1])

    def __repr__(self) -> str:
        return f"ExpressionError({self.message!r}, line={self.line}, column={self.column})"


class ValueProblem(ExpressionError):
    """A run-time conversion failure not yet tied to a position; nodes re-raise it located."""
