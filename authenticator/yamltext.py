"""YAML read with every scalar kept as its text (the authenticator's PyYAML helper).

Mapping files carry AWS account IDs, which must stay text (SPEC section 6):
PyYAML would read an unquoted ``000123456701`` as an octal int and drop the
zeros. This loader builds plain Python values from the composed node tree
instead, so nothing is converted, and it refuses duplicate keys, nesting deeper
than :data:`MAX_YAML_DEPTH` and aliases that refer to a node containing them
(each would otherwise exhaust Python's recursion limit).
"""

from __future__ import annotations

import yaml

from authenticator.errors import ConfigError

_NUMERIC_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
# A cap on constructed nodes: aliases can make a small text expand enormously.
_MAX_YAML_NODES = 100_000
# The deepest nesting read (a mapping file needs about five levels); PyYAML's
# composer and the constructor below recurse once or twice per level.
MAX_YAML_DEPTH = 100


class _DepthLimitedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses nesting deeper than MAX_YAML_DEPTH."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    f"nested deeper than {MAX_YAML_DEPTH} levels",
                    None if parent is None else parent.start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class NumericText(str):
    """A plain YAML scalar kept as text that YAML 1.1 would have read as a number."""

    __slots__ = ()


def parse_yaml_text(text: str) -> list[object]:
    """Parse YAML documents, keeping every scalar as its text.

    ``000123456789`` stays that string (PyYAML would make an int, or an octal);
    plain scalars YAML 1.1 reads as numbers become :class:`NumericText`, nulls
    become None. Duplicate keys are an error (PyYAML keeps the last silently),
    and so are nesting deeper than :data:`MAX_YAML_DEPTH` (also through
    aliases) and an alias inside the node it refers to (``&a [*a]``).

    Args:
        text: The YAML text.

    Returns:
        One value per document.

    Raises:
        ConfigError: The text is not valid YAML, has duplicate keys, is nested
            too deeply or has a self-referencing alias.
    """
    try:
        nodes = list(yaml.compose_all(text, Loader=_DepthLimitedLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {_one_line(str(exc))}") from exc
    except RecursionError as exc:  # a deep stack at the call; the cap is the rule
        raise ConfigError("not valid YAML: nested too deeply") from exc
    budget = [_MAX_YAML_NODES]
    return [_construct(node, budget, set()) for node in nodes if node is not None]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _construct(node: yaml.Node, budget: list[int], open_nodes: set[int]) -> object:
    """Build the value of ``node``; ``open_nodes`` holds the ids of its ancestors."""
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError("YAML document too large (aliases?)")
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:null":
            return None
        if node.style is None and node.tag in _NUMERIC_TAGS:
            return NumericText(node.value)
        return str(node.value)
    line = node.start_mark.line + 1
    if id(node) in open_nodes:
        raise ConfigError(f"line {line}: an alias refers to a node that contains it")
    if len(open_nodes) >= MAX_YAML_DEPTH:
        raise ConfigError(
            f"line {line}: nested deeper than {MAX_YAML_DEPTH} levels (aliases?)"
        )
    open_nodes.add(id(node))
    try:
        return _construct_collection(node, budget, open_nodes)
    finally:
        open_nodes.discard(id(node))


def _construct_collection(
    node: yaml.Node, budget: list[int], open_nodes: set[int]
) -> object:
    if isinstance(node, yaml.SequenceNode):
        return [_construct(child, budget, open_nodes) for child in node.value]
    if isinstance(node, yaml.MappingNode):
        out: dict[str, object] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    f"line {key_node.start_mark.line + 1}: a key must be text"
                )
            key = str(key_node.value)
            if key in out:
                line = key_node.start_mark.line + 1
                raise ConfigError(f"line {line}: duplicate key {key!r}")
            out[key] = _construct(value_node, budget, open_nodes)
        return out
    raise ConfigError(f"unsupported YAML node {node.tag}")  # pragma: no cover
