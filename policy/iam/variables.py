"""Policy variables: ``${key}``, ``${key, 'd'}``, ``${*}``, ``${?}``, ``${$}`` (pure).

Rules (IAM User Guide, **IAM policy elements: Variables and tags**):

- Variables are substituted only in policies with ``"Version": "2012-10-17"``;
  under ``2008-10-17`` or without a Version, ``${...}`` is literal text.
- Key names are case-insensitive. Only a single-valued key can be a variable:
  a key given a set of several values does not resolve, and neither does a
  documented multivalued key (``aws:TagKeys``) given one value.
- In ``Resource``/``NotResource`` variables resolve only in the resource part
  of the ARN (after the fifth colon); before it ``${...}`` is literal text.
- ``${key, 'default'}`` uses the quoted literal when the key is absent.
- ``${*}``, ``${?}``, ``${$}`` stand for the literal characters; after
  substitution they never act as wildcards, and neither does any substituted value.
- A variable with no value (absent key, no default) leaves the whole pattern
  unresolved: a positive comparison fails, a negated one succeeds, a
  ``Resource`` pattern matches nothing. Callers see ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from policy.iam.arnmatch import Chunks

__all__ = ["Template", "Variable", "chunks_text", "parse_template", "resolve_template"]

# ``${...}``: the body may not contain ``}``.
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
# ``key, 'default'``: the documented default syntax (comma, space, single quotes).
_WITH_DEFAULT = re.compile(r"^\s*([^,'\s][^,']*?)\s*,\s*'([^']*)'\s*$")
_KEY = re.compile(r"^\s*([^,'\s{}$][^,'{}$]*?)\s*$")
_SPECIAL = frozenset("*?$")
# ``arn:partition:service:region:account:resource``: variables only after the fifth.
_ARN_SEPARATORS = 5

Lookup = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class Variable:
    """One ``${key}`` reference.

    Attributes:
        key: The key as written.
        default: The default literal, or None when there is none.
    """

    key: str
    default: str | None = None

    @property
    def key_lower(self) -> str:
        """The key name folded for case-insensitive lookup."""
        return self.key.lower()


Part = str | Variable


@dataclass(frozen=True, slots=True)
class Template:
    """A string from a policy, split into policy text, variables and escapes.

    Attributes:
        raw: The string as written.
        parts: Policy text (``str``, wildcard-active where the element allows),
            ``Variable`` references, and escapes stored as ``("lit", char)``.
    """

    raw: str
    parts: tuple[Part | tuple[str, str], ...]

    @property
    def has_variables(self) -> bool:
        """True when resolution depends on the request context."""
        return any(isinstance(p, Variable) for p in self.parts)

    @property
    def is_plain(self) -> bool:
        """True when the template is one policy-text part (no variables, no escapes)."""
        return len(self.parts) == 1 and isinstance(self.parts[0], str)

    def static_chunks(self) -> Chunks:
        """Chunks for a template without variables.

        Returns:
            Policy text as wildcard-active chunks, escapes as literal chunks.
        """
        out: list[tuple[str, bool]] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append((part, True))
            elif isinstance(part, tuple):
                out.append((part[1], False))
        return tuple(out)


def parse_template(text: str, *, substitute: bool, arn: bool = False) -> Template:
    """Split a policy string into a template.

    Args:
        text: The string as written in the policy.
        substitute: False for 2008-10-17 or version-less policies, where
            ``${...}`` is literal text.
        arn: The string is a ``Resource``/``NotResource`` ARN: variables are
            resolved only in the resource part, after the fifth colon; a
            ``${...}`` in the partition, service, region or account segment
            stays literal text (IAM User Guide, **IAM policy elements:
            Variables and tags**, "Where you can use policy variables":
            "only in the resource part of the ARN").

    Returns:
        The template; text that does not parse as a variable stays literal text.
    """
    if not substitute or "${" not in text:
        return Template(raw=text, parts=(text,))
    parts: list[Part | tuple[str, str]] = []
    pos = 0
    for match in _VARIABLE.finditer(text):
        if match.start() > pos:
            parts.append(text[pos : match.start()])
        body = match.group(1)
        if arn and text.count(":", 0, match.start()) < _ARN_SEPARATORS:
            # Before the fifth colon: literal text (its colons count as written).
            parts.append(match.group(0))
        elif body in _SPECIAL:
            parts.append(("lit", body))
        elif m := _WITH_DEFAULT.match(body):
            parts.append(Variable(key=m.group(1), default=m.group(2)))
        elif m := _KEY.match(body):
            parts.append(Variable(key=m.group(1)))
        else:
            parts.append(match.group(0))
        pos = match.end()
    if pos < len(text):
        parts.append(text[pos:])
    return Template(raw=text, parts=tuple(parts))


def resolve_template(template: Template, lookup: Lookup) -> Chunks | None:
    """Substitute a template's variables from the request context.

    Args:
        template: The parsed string.
        lookup: Returns the single value of a (lower-cased) key, or None when
            the key is absent or multi-valued.

    Returns:
        The chunks (substituted values literal), or None when a variable has no
        value and no default.
    """
    out: list[tuple[str, bool]] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append((part, True))
        elif isinstance(part, Variable):
            value = lookup(part.key_lower)
            if value is None:
                value = part.default
            if value is None:
                return None
            out.append((value, False))
        else:
            out.append((part[1], False))
    return tuple(out)


def chunks_text(chunks: Chunks) -> str:
    """The plain text of chunks (for equality comparisons and traces).

    Args:
        chunks: A resolved pattern.

    Returns:
        The concatenated text, wildcards included as written.
    """
    return "".join(text for text, _ in chunks)
