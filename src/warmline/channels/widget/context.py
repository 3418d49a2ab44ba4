"""Host-page context variables: ``{name: {value, isDisplayable}}``, checked against the widget."""

from __future__ import annotations

from typing import Any

from warmline.channels.widget.model import ContextVariable, ContextVariableType

MAX_VARIABLES = 100
MAX_TEXT = 4000


class ContextError(ValueError):
    """The host page sent context the widget does not accept; the message says what to fix."""


def _type_ok(kind: ContextVariableType, value: Any) -> bool:
    if kind is ContextVariableType.BOOLEAN:
        return isinstance(value, bool)
    if kind is ContextVariableType.NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str) and len(value) <= MAX_TEXT


def validate_context(declared: list[ContextVariable], provided: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The context to store, or a ``ContextError`` naming every problem."""
    if len(provided) > MAX_VARIABLES:
        raise ContextError(
            f"{len(provided)} context variables were sent; at most {MAX_VARIABLES} are allowed."
        )
    types = {v.name: v.type for v in declared}
    problems: list[str] = []
    accepted: dict[str, dict[str, Any]] = {}
    for name, entry in provided.items():
        if name not in types:
            known = ", ".join(sorted(types)) or "none"
            problems.append(f"'{name}' is not declared on this widget (declared: {known})")
            continue
        if not isinstance(entry, dict) or "value" not in entry:
            problems.append(f'\'{name}\' must be an object {{"value": ..., "isDisplayable": ...}}')
            continue
        value, displayable = entry["value"], entry.get("isDisplayable", False)
        if not _type_ok(types[name], value):
            problems.append(f"'{name}' must be a {types[name].value}, not {type(value).__name__}")
            continue
        if not isinstance(displayable, bool):
            problems.append(f"'{name}'.isDisplayable must be true or false")
            continue
        accepted[name] = {"value": value, "isDisplayable": displayable}
    if problems:
        raise ContextError("Context refused: " + "; ".join(problems) + ".")
    return accepted
