"""Power Fx expressions for topics: the ``=...`` conditions and values and ``{...}`` in messages.

Owns the grammar (lark), the static type checker that reports unknown names and type errors with a
line and column at validation time, and the evaluator the dialog engine runs on every turn.
"""

from warmline.bot.expressions.expression import Expression, evaluate, infer_type, interpolate, parse
from warmline.bot.expressions.functions import FUNCTIONS, MATCH_OPTIONS, MATCH_PATTERNS
from warmline.bot.expressions.model import ExpressionError, FxType
from warmline.bot.expressions.values import render_text

__all__ = [
    "FUNCTIONS",
    "MATCH_OPTIONS",
    "MATCH_PATTERNS",
    "Expression",
    "ExpressionError",
    "FxType",
    "evaluate",
    "infer_type",
    "interpolate",
    "parse",
    "render_text",
]
