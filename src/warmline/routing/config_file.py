"""The ``warmline config apply`` file: YAML read with positions, validated into a ``ContactCenter``.

The YAML is read as a node tree (``yaml.compose``) so every value keeps its line and column, and
scalars stay text (pydantic converts them), so YAML 1.1 surprises such as ``09:00`` read as a
sexagesimal number never reach the model. Every problem — YAML syntax, pydantic, cross-reference,
or one the running system raises at apply time — is reported as ``FILE:LINE:COL: where: message``.
"""

from __future__ import annotations

import difflib
import re
import types
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from warmline.bot.expressions import ExpressionError, parse
from warmline.routing.config import ConfigProblem, ConfigRefused, Path, check_contact_center
from warmline.routing.model import ContactCenter

NULL_TAG = "tag:yaml.org,2002:null"
MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_NODES = 200_000  # aliases can multiply a small file (the "billion laughs"); stop well before that
UNKNOWN_FIELD = "unknown field"
QUOTED = re.compile(r"'([^']+)'")


@dataclass(frozen=True)
class FileProblem:
    """A problem at a place in a configuration file."""

    file: str
    line: int
    column: int
    where: str
    message: str

    def __str__(self) -> str:
        where = f" {self.where}:" if self.where else ""
        return f"{self.file}:{self.line}:{self.column}:{where} {self.message}"


class ConfigFileError(Exception):
    """A configuration file that was refused; ``problems`` has every reason, in file order."""

    def __init__(self, problems: list[FileProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line, p.column))
        super().__init__("\n".join(str(p) for p in self.problems))


# --- pydantic errors as configuration problems ----------------------------------------------------


def _strip(kind: Any) -> Any:
    """``Annotated[X, ...]`` and ``X | None`` → ``X``."""
    while True:
        origin = get_origin(kind)
        if origin is Annotated:
            kind = get_args(kind)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in get_args(kind) if a is not type(None)]
            if len(options) != 1:
                return kind
            kind = options[0]
        else:
            return kind


def _fields_at(loc: Path) -> list[str]:
    """The field names the model allows at ``loc`` (for "did you mean")."""
    kind: Any = ContactCenter
    for part in loc:
        kind = _strip(kind)
        origin = get_origin(kind)
        if isinstance(part, int) and origin in (list, tuple):
            kind = get_args(kind)[0]
        elif isinstance(part, str) and origin is dict:
            kind = get_args(kind)[1]
        elif isinstance(kind, type) and issubclass(kind, BaseModel) and part in kind.model_fields:
            kind = kind.model_fields[str(part)].annotation
        else:
            return []
    kind = _strip(kind)
    return list(kind.model_fields) if isinstance(kind, type) and issubclass(kind, BaseModel) else []


def _message(error: Any) -> str:
    kind, loc, text = error["type"], tuple(error["loc"]), str(error["msg"])
    if kind == "missing":
        return f"missing required field '{loc[-1]}'"
    if kind == "extra_forbidden":
        allowed = _fields_at(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(allowed)}"
        return f"{UNKNOWN_FIELD} '{loc[-1]}' ({hint})"
    if kind == "value_error":
        return text.removeprefix("Value error, ")
    value = error.get("input")
    if value is None and kind in ("list_type", "dict_type", "model_type", "model_attributes_type"):
        empty = "[]" if kind == "list_type" else "{}"
        return f"has no value (write {empty} for none, or leave the key out)"
    text = text[:1].lower() + text[1:]
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text += f" (got '{value}')"
    return text


def problems_from_validation(error: ValidationError) -> list[ConfigProblem]:
    """pydantic's errors as configuration problems with readable messages."""
    return [ConfigProblem(tuple(e["loc"]), _message(e)) for e in error.errors()]


def validate_contact_center(data: Any) -> ContactCenter:
    """Plain data → ``ContactCenter``, or ``ConfigRefused`` with every model and cross-reference problem."""
    try:
        document = ContactCenter.model_validate(data)
    except ValidationError as error:
        raise ConfigRefused(problems_from_validation(error)) from None
    problems = check_contact_center(document)
    if problems:
        raise ConfigRefused(problems)
    return document


# --- reading YAML with positions ------------------------------------------------------------------


class _Reader:
    """Turns a node tree into plain data, remembering the node at every path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.values: dict[Path, Node] = {}
        self.keys: dict[Path, Node] = {}
        self.problems: list[FileProblem] = []
        self.count = 0

    def problem(self, node: Node, path: Path, message: str) -> None:
        self.problems.append(
            FileProblem(
                self.file,
                node.start_mark.line + 1,
                node.start_mark.column + 1,
                ConfigProblem(path, message).where,
                message,
            )
        )

    def read(self, node: Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge(node)
        self.values.setdefault(path, node)
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.read(item, (*path, index)) for index, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        if node.tag == NULL_TAG and node.style is None:
            return None
        return str(node.value)

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merges: list[Node] = []
        for key, value in node.value:
            if key.tag == MERGE_TAG:
                merges.extend(value.value if isinstance(value, SequenceNode) else [value])
                continue
            if not isinstance(key, ScalarNode):
                self.problem(key, path, "keys must be plain names, not lists or mappings")
                continue
            name = str(key.value)
            if name in out:
                self.problem(key, (*path, name), f"duplicate key '{name}'")
            self.keys.setdefault((*path, name), key)
            out[name] = self.read(value, (*path, name))
        for merged in merges:  # YAML merge keys (<<: *defaults): explicit keys win
            if not isinstance(merged, MappingNode):
                self.problem(merged, path, "'<<' must merge a mapping")
                continue
            for name, value in self._mapping(merged, path).items():
                out.setdefault(name, value)
        return out


class _TooLarge(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


@dataclass
class ConfigFile:
    """A valid configuration file: the document, and where each part of it is written."""

    file: str
    document: ContactCenter
    values: dict[Path, Node]
    keys: dict[Path, Node]

    def locate(self, problem: ConfigProblem) -> FileProblem:
        """The file position of a problem found later (for instance by the running system)."""
        return _locate(self.file, self.values, self.keys, problem)

    def refused(self, refused: ConfigRefused) -> ConfigFileError:
        """An apply-time refusal, with file positions."""
        return ConfigFileError([self.locate(p) for p in refused.problems])


def _scalar_column(node: Node, offset: int) -> int | None:
    """The 1-based file column of character ``offset`` inside a one-line scalar, when it can be known."""
    if not isinstance(node, ScalarNode) or node.start_mark.line != node.end_mark.line:
        return None
    if node.style not in (None, "'", '"'):
        return None
    return node.start_mark.column + 1 + (1 if node.style else 0) + offset


def _condition_offset(source: str, message: str) -> int | None:
    """Where in a rule condition its problem is (0-based), for a column inside the value."""
    body = source[1:] if source.startswith("=") else source
    skip = len(source) - len(body)
    try:
        parse(body)
    except ExpressionError as error:
        return skip + error.column - 1 if error.line <= 1 else None
    names = QUOTED.findall(message)
    if names and names[0] in body:
        return skip + body.index(names[0])
    return None


def _refine(node: Node, message: str) -> Node:
    """Point inside a mapping or list at what the message names, when it names something there."""
    names = QUOTED.findall(message)
    if isinstance(node, MappingNode):
        entries = [(k, v) for k, v in node.value if isinstance(k, ScalarNode)]
        for key, _ in entries:
            if str(key.value) in names:
                return key
        for key, value in entries:
            if re.search(rf"\b{re.escape(str(key.value))}\b", message):
                return _refine(value, message) if isinstance(value, SequenceNode) else value
    if isinstance(node, SequenceNode) and names:
        # Several named items (e.g. two overlapping holidays): the one named last is the later one.
        for name in reversed(names):
            for item in node.value:
                if isinstance(item, MappingNode) and any(
                    isinstance(k, ScalarNode)
                    and k.value in ("id", "name")
                    and isinstance(v, ScalarNode)
                    and v.value == name
                    for k, v in item.value
                ):
                    return item
    return node


def _locate(
    file: str, values: dict[Path, Node], keys: dict[Path, Node], problem: ConfigProblem
) -> FileProblem:
    path = problem.path
    node: Node | None = None
    for end in range(len(path), -1, -1):
        node = values.get(path[:end])
        if node is not None:
            exact = end == len(path)
            break
    line, column = 1, 1
    if node is not None:
        empty = isinstance(node, ScalarNode) and node.tag == NULL_TAG and not node.value
        if exact and (empty or problem.message.startswith(UNKNOWN_FIELD)) and path in keys:
            node = keys[path]  # the key itself: an empty value has no place of its own
        elif exact:
            node = _refine(node, problem.message)
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        if exact and path and path[-1] == "condition" and isinstance(node, ScalarNode):
            offset = _condition_offset(str(node.value), problem.message)
            inner = _scalar_column(node, offset) if offset is not None else None
            column = inner or column
    return FileProblem(file, line, column, problem.where, problem.message)


def read_contact_center(text: str, file: str) -> ConfigFile:
    """Parse and validate a configuration file's text (``ConfigFileError`` lists every problem)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = error.problem or error.context or "unreadable YAML"
        raise ConfigFileError([FileProblem(file, line, column, "", f"invalid YAML: {detail}")]) from None
    if not isinstance(root, MappingNode):
        at = (root.start_mark.line + 1, root.start_mark.column + 1) if root is not None else (1, 1)
        message = "the file must be a mapping with 'environment:', 'queues:', 'workstreams:', 'agents:' …"
        raise ConfigFileError([FileProblem(file, *at, "", message)])
    reader = _Reader(file)
    try:
        data = reader.read(root, ())
    except _TooLarge as too_large:
        mark = too_large.node.start_mark
        message = f"the file expands to more than {MAX_NODES} values (check its aliases)"
        raise ConfigFileError([FileProblem(file, mark.line + 1, mark.column + 1, "", message)]) from None
    try:
        document = validate_contact_center(data)
    except ConfigRefused as refused:
        problems = [_locate(file, reader.values, reader.keys, p) for p in refused.problems]
        raise ConfigFileError(reader.problems + problems) from None
    if reader.problems:
        raise ConfigFileError(reader.problems)
    return ConfigFile(file, document, reader.values, reader.keys)


def load_contact_center(path: FilePath) -> ConfigFile:
    """Read and validate a configuration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigFileError([FileProblem(str(path), 1, 1, "", f"cannot read the file: {error}")]) from None
    return read_contact_center(text, str(path))


def _scalar(value: Any) -> bool:
    return not isinstance(value, list | dict)


class _Dumper(yaml.SafeDumper):
    """Short lists and small flat mappings on one line, as a person writes them."""

    def represent_list(self, data: Any) -> SequenceNode:
        flat = all(_scalar(v) or (isinstance(v, list) and all(map(_scalar, v))) for v in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)

    def represent_dict(self, data: Any) -> MappingNode:
        flat = len(data) <= 4 and all(map(_scalar, data.values()))
        return self.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flat)


_Dumper.add_representer(list, _Dumper.represent_list)
_Dumper.add_representer(dict, _Dumper.represent_dict)


def dump_contact_center(document: ContactCenter) -> str:
    """A document as YAML that ``config apply`` reads back to the same configuration."""
    data = document.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    for agent in data.get("agents", []):
        agent.pop("password", None)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
