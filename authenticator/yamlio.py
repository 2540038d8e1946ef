"""The one door to PyYAML: every YAML file kubeiam reads or writes goes through here.

Reading is strict in the same way everywhere (mapping files, the server config,
policy suites, RBAC files, tier inputs, kubeconfig files, paths inputs):

* a mapping key given twice is an error (PyYAML keeps the last one silently,
  which once let a suite policy's ``Effect: Deny`` be replaced by a later
  ``Effect: Allow``);
* nesting deeper than :data:`MAX_YAML_DEPTH` is an error, also when reached
  through an alias;
* an alias inside the node it refers to (``&a [*a]``) is an error, and alias
  expansion is capped at :data:`MAX_ALIAS_NODES` nodes (the "billion laughs");
* every mapping key is text, and explicit tags other than ``!!str``, ``!!map``
  and ``!!seq`` are refused (no ``!!python/...``, ``!!binary``, ``!!set``);
* digit strings never become YAML 1.1 ints or octals by accident: see the two
  scalar modes below.

Two scalar modes:

``text`` (mapping files)
    Every scalar is its text. A plain scalar YAML 1.1 reads as a number is a
    :class:`NumericText` (a ``str``), so callers can tell ``0123`` from
    ``'0123'``; nulls are ``None``.
``typed`` (everything else)
    JSON-like values: ``true``/``false`` (any case) are booleans, nulls are
    ``None``, a plain decimal integer of at most 11 digits without a leading
    zero is an ``int`` and a plain decimal with a dot is a ``float``. Anything
    else YAML 1.1 would turn into a number (an account ID ``000123456789`` or
    ``123456789012``, octal ``0o17``, ``1_000``, ``1:30``, ``0x1f``, ``.inf``)
    stays text (:class:`NumericText`); ``yes``/``no``/``on``/``off`` and dates
    stay text too.

The document is parsed into events by libyaml's C parser when PyYAML was built
with it (4-5x faster on large mapping files) and by PyYAML's pure-Python parser
otherwise; values are built from the events here, iteratively, so both parsers
give the same values and the same refusals.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import yaml

from authenticator.errors import ConfigError

__all__ = [
    "C_PARSER_AVAILABLE",
    "MAX_ALIAS_NODES",
    "MAX_YAML_DEPTH",
    "NumericText",
    "Scalars",
    "YAMLError",
    "dump_yaml",
    "load_yaml",
    "load_yaml_documents",
    "with_yaml11_numbers",
]

Scalars = Literal["text", "typed"]

# The deepest nesting read (a mapping file needs about five levels).
MAX_YAML_DEPTH = 100
# A cap on the nodes aliases may add: a small text can expand enormously.
MAX_ALIAS_NODES = 100_000

_C_LOADER: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)
C_PARSER_AVAILABLE = _C_LOADER is not None

_TAG = "tag:yaml.org,2002:"
_ALLOWED_EXPLICIT = frozenset({f"{_TAG}str", f"{_TAG}map", f"{_TAG}seq", "!"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]{0,10})")
_FLOAT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\.[0-9]+(?:[eE][-+]?[0-9]+)?")
_TOO_DEEP = f"nested deeper than {MAX_YAML_DEPTH} levels"
_ALIAS_BOMB = "YAML document too large (aliases expand too far)"
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"
_RESOLVE: Callable[[type[yaml.Node], str, tuple[bool, bool]], str] = (
    yaml.resolver.Resolver().resolve
)
_PLAIN = (True, False)


class _Mark(Protocol):
    """A position in the text (PyYAML's and libyaml's marks both have these)."""

    @property
    def line(self) -> int: ...

    @property
    def column(self) -> int: ...


class YAMLError(ConfigError):
    """Text that is not YAML kubeiam reads.

    The message is one line, ``not valid YAML: line N, column M: <problem>``
    (no position when none is known); callers put the file name in front.

    Args:
        message: The message.
        line: The 1-based line, or None.
        column: The 1-based column, or None.
    """

    def __init__(
        self, message: str, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class NumericText(str):
    """A plain YAML scalar kept as text that YAML 1.1 would have read as a number."""

    __slots__ = ()


def load_yaml_documents(
    text: str, *, scalars: Scalars = "typed", c_parser: bool | None = None
) -> list[object]:
    """Parse every document of a YAML stream.

    Args:
        text: The YAML text.
        scalars: ``"text"`` keeps every scalar as text, ``"typed"`` builds
            JSON-like values (see the module docstring).
        c_parser: Force libyaml's parser (True) or the pure-Python one
            (False); None picks libyaml when present.

    Returns:
        One value per document (an empty document is None; an empty stream
        gives an empty list).

    Raises:
        YAMLError: The text is not valid YAML or breaks one of the rules above.
    """
    loader = _loader(c_parser)
    try:
        return _build(yaml.parse(text, Loader=loader), scalars == "typed")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or type(exc).__name__
        if problem == _LIBYAML_TOO_DEEP:  # libyaml's own cap (1,000) can come first
            raise _error(None, _TOO_DEEP) from exc
        raise _error(mark, _one_line(problem)) from exc
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        raise _error(None, _one_line(str(exc))) from exc


def load_yaml(
    text: str, *, scalars: Scalars = "typed", c_parser: bool | None = None
) -> object:
    """Parse a single-document YAML text (an empty text gives None).

    Args:
        text: The YAML text.
        scalars: As for :func:`load_yaml_documents`.
        c_parser: As for :func:`load_yaml_documents`.

    Returns:
        The document's value.

    Raises:
        YAMLError: The text is not valid YAML or holds more than one document.
    """
    docs = load_yaml_documents(text, scalars=scalars, c_parser=c_parser)
    if len(docs) > 1:
        raise _error(None, "expected one document, found several ('---')")
    return docs[0] if docs else None


def with_yaml11_numbers(doc: object) -> object:
    """A copy of ``doc`` with each :class:`NumericText` as the number YAML 1.1 reads.

    For output in another format (JSON) that must mean to a YAML 1.1 reader
    (kubectl) what the text file meant: an unquoted ``0123`` is 83 there.

    Args:
        doc: Values as :func:`load_yaml` returns them.

    Returns:
        The same structure with numbers in place of NumericText.
    """
    if isinstance(doc, NumericText):
        value: object = yaml.load(str(doc), Loader=_loader(None))  # noqa: S506 - safe
        return value if isinstance(value, int | float) else str(doc)
    if isinstance(doc, dict):
        return {k: with_yaml11_numbers(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [with_yaml11_numbers(v) for v in doc]
    return doc


class _Dumper(yaml.SafeDumper):
    """Safe dumper that indents list items under their key, as kubectl writes them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_numeric_text(dumper: _Dumper, value: NumericText) -> yaml.ScalarNode:
    """Write NumericText plain again, so a file read and rewritten keeps its meaning.

    (kubectl reads an unquoted ``0123`` as YAML 1.1 does; quoting it would turn
    someone's number into a string.)
    """
    return dumper.represent_scalar(_RESOLVE(yaml.ScalarNode, str(value), _PLAIN), value)


_Dumper.add_representer(NumericText, _represent_numeric_text)


def dump_yaml(doc: object, *, header: str | None = None) -> str:
    """Render a document as block-style YAML, keys in insertion order.

    Args:
        doc: Plain data (dicts, lists, strings, numbers, booleans, None).
        header: Comment lines to put first (``# `` is added to each).

    Returns:
        The YAML text.
    """
    text = yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,
    )
    if header:
        lines = header.splitlines()
        text = "".join(f"# {line}".rstrip() + "\n" for line in lines) + text
    return text


def _loader(c_parser: bool | None) -> type[yaml.SafeLoader] | type[yaml.CSafeLoader]:
    if c_parser is None:
        return _C_LOADER or yaml.SafeLoader
    if c_parser:
        if _C_LOADER is None:
            raise RuntimeError("PyYAML was built without libyaml")
        return _C_LOADER
    return yaml.SafeLoader


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _error(mark: _Mark | None, problem: str) -> YAMLError:
    if mark is None:
        return YAMLError(f"not valid YAML: {problem}")
    line, column = mark.line + 1, mark.column + 1
    return YAMLError(
        f"not valid YAML: line {line}, column {column}: {problem}", line, column
    )


@dataclass(slots=True)
class _Anchored:
    """An anchored value; its size and height are measured on first alias use."""

    value: object
    size: int = -1
    height: int = 0


_SCALAR_EVENT = yaml.ScalarEvent
_ALIAS_EVENT = yaml.AliasEvent
_MAPPING_START = yaml.MappingStartEvent
_SEQUENCE_START = yaml.SequenceStartEvent
_COLLECTION_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
_DOCUMENT_START = yaml.DocumentStartEvent
# First characters PyYAML's implicit resolvers look at; a plain scalar that
# starts with anything else is a string (the common case, checked first).
_RESOLVERS = yaml.resolver.Resolver.yaml_implicit_resolvers
_RESOLVER_FIRST = frozenset(k for k in _RESOLVERS if k)
_FAST_PLAIN = None not in _RESOLVERS


def _build(events: Iterable[Any], typed: bool) -> list[object]:
    """Build values from a parser's events without recursion.

    One loop with the open collection in local variables: a large mapping
    file is a million events, so this is the hot path of loading it. (The
    events are ``Any``: they are told apart by class identity, which is
    faster than isinstance and which mypy does not narrow on.)
    """
    docs: list[object] = []
    # The enclosing collections: (container, is_map, pending key, anchor).
    stack: list[
        tuple[dict[str, object] | list[object] | None, bool, str | None, str | None]
    ] = []
    top: dict[str, object] | list[object] | None = None
    is_map = False
    key: str | None = None  # a mapping's key waiting for its value
    top_anchor: str | None = None
    anchors: dict[str, _Anchored] = {}
    open_anchors: set[str] = set()
    budget = MAX_ALIAS_NODES
    value: object
    for event in events:
        cls = event.__class__
        if cls is _SCALAR_EVENT:
            tag = event.tag
            if tag is not None and tag not in _ALLOWED_EXPLICIT:
                raise _error(event.start_mark, f"the YAML tag {tag!r} is not allowed")
            text: str = event.value
            if is_map and key is None:
                if text in top:  # type: ignore[operator]  # is_map: a dict
                    raise _error(event.start_mark, f"duplicate key {text!r}")
                key = text
                if event.anchor is not None:
                    anchors[event.anchor] = _Anchored(text, 1, 0)
                continue
            if event.style or tag is not None or not event.implicit[0]:
                value = text  # quoted, block or explicitly tagged: text
            elif _FAST_PLAIN and text and text[0] not in _RESOLVER_FIRST:
                value = text
            else:
                value = _plain(text, typed)
            if event.anchor is not None:
                anchors[event.anchor] = _Anchored(value, 1, 0)
        elif cls is _MAPPING_START or cls is _SEQUENCE_START:
            tag = event.tag
            if tag is not None and tag not in _ALLOWED_EXPLICIT:
                raise _error(event.start_mark, f"the YAML tag {tag!r} is not allowed")
            if is_map and key is None:
                raise _error(event.start_mark, "a mapping key must be text")
            if len(stack) >= MAX_YAML_DEPTH:
                # no position: libyaml scans ahead and may stop somewhere else
                raise _error(None, _TOO_DEEP)
            stack.append((top, is_map, key, top_anchor))
            is_map = cls is _MAPPING_START
            top = {} if is_map else []
            key = None
            top_anchor = event.anchor
            if top_anchor is not None:
                open_anchors.add(top_anchor)
            continue
        elif cls in _COLLECTION_END:
            value = top
            if top_anchor is not None:
                open_anchors.discard(top_anchor)
                anchors[top_anchor] = _Anchored(value)
            top, is_map, key, top_anchor = stack.pop()
        elif cls is _ALIAS_EVENT:
            mark = event.start_mark
            anchor = event.anchor or ""
            if anchor in open_anchors:
                raise _error(mark, "an alias refers to a node that contains it")
            target = anchors.get(anchor)
            if target is None:
                raise _error(mark, f"undefined alias {anchor!r}")
            if target.size < 0:
                _measure(target, budget, mark)
            if len(stack) + target.height > MAX_YAML_DEPTH:
                raise _error(mark, f"{_TOO_DEEP} (through an alias)")
            budget -= target.size
            if budget < 0:
                raise _error(mark, _ALIAS_BOMB)
            value = target.value
            if is_map and key is None:
                if not isinstance(value, str):
                    raise _error(mark, "a mapping key must be text")
                if value in top:  # type: ignore[operator]  # is_map: a dict
                    raise _error(mark, f"duplicate key {value!r}")
                key = value
                continue
            if target.height:
                value = copy.deepcopy(value)
        else:
            if cls is _DOCUMENT_START:
                anchors.clear()  # anchors are scoped to their document
            continue
        if top is None:
            docs.append(value)
        elif is_map:
            top[key] = value  # type: ignore[index,call-overload]  # key set above
            key = None
        else:
            top.append(value)  # type: ignore[union-attr]  # not is_map: a list
    return docs


def _measure(target: _Anchored, budget: int, mark: _Mark | None) -> None:
    """Set an anchored value's size (nodes, keys counted) and height.

    Only values an alias refers to are measured, each once; the walk stops as
    soon as the size passes the alias budget left (the alias would be refused).
    """
    size = 0
    height = 0
    todo: list[tuple[object, int]] = [(target.value, 0)]
    while todo:
        node, depth = todo.pop()
        size += 1
        if size > budget:
            raise _error(mark, _ALIAS_BOMB)
        height = max(height, depth)
        if isinstance(node, dict):
            if node:
                height = max(height, depth + 1)  # the keys
            size += len(node)
            todo.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            todo.extend((v, depth + 1) for v in node)
    target.size = size
    target.height = height


def _plain(value: str, typed: bool) -> object:
    """A plain scalar one of YAML 1.1's implicit resolvers may claim."""
    tag = _RESOLVE(yaml.ScalarNode, value, _PLAIN)
    if not tag.startswith(_TAG):
        return value
    kind = tag[len(_TAG) :]
    if kind == "null":
        return None
    if kind == "bool":
        if typed and value in _TRUE:
            return True
        if typed and value in _FALSE:
            return False
        return value
    if kind == "int":
        if typed and _INT.fullmatch(value):
            return int(value)
        return NumericText(value)
    if kind == "float":
        if typed and _FLOAT.fullmatch(value):
            return float(value)
        return NumericText(value)
    return value
