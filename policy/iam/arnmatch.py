"""Wildcard and ARN matching for policy elements (pure).

A pattern is a sequence of *chunks* ``(text, wild)``: when ``wild`` is true, ``*``
(any run, possibly empty) and ``?`` (exactly one character) in ``text`` are
wildcards; when false the text is literal. Substituted policy variables and the
escapes ``${*}``, ``${?}``, ``${$}`` are literal chunks, so a ``*`` inside a tag
value never acts as a wildcard (IAM User Guide, **IAM policy elements: Variables
and tags**).

ARN patterns match segment by segment (**IAM JSON policy elements: Resource**,
**Condition operators**: ``ArnLike``): the first five ``:`` separate partition,
service, region and account; in those segments a wildcard never crosses ``:``;
the resource part keeps its colons and ``*`` spans ``/`` and ``:``. A flat glob
(``StringLike``, actions) has no segments.

Compiled regular expressions are cached in a bounded, thread-safe
``functools.lru_cache``; callers hold no other shared state.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

__all__ = [
    "Chunks",
    "arn_regex",
    "count_arn_separators",
    "flat_regex",
    "literal",
    "split_arn",
    "wild",
]

# ``arn:partition:service:region:account:resource`` has six parts, five separators.
ARN_SEPARATORS = 5

Chunks = tuple[tuple[str, bool], ...]


def wild(text: str) -> Chunks:
    """A pattern made of one wildcard-active chunk.

    Args:
        text: Policy text whose ``*`` and ``?`` are wildcards.

    Returns:
        The pattern.
    """
    return ((text, True),)


def literal(text: str) -> Chunks:
    """A pattern made of one literal chunk.

    Args:
        text: Text that matches only itself.

    Returns:
        The pattern.
    """
    return ((text, False),)


def split_arn(value: str) -> tuple[str, str, str, str, str, str] | None:
    """Split an ARN on its first five colons.

    Args:
        value: A string that may be an ARN.

    Returns:
        The six parts, or None when ``value`` is not ``arn:`` plus five separators.
    """
    parts = value.split(":", ARN_SEPARATORS)
    if len(parts) != ARN_SEPARATORS + 1 or parts[0] != "arn":
        return None
    return (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5])


def count_arn_separators(chunks: Sequence[tuple[str, bool]]) -> int:
    """How many of the five ARN separators a pattern holds.

    Args:
        chunks: The pattern.

    Returns:
        The number of ``:`` in it, capped at five.
    """
    return min(sum(text.count(":") for text, _ in chunks), ARN_SEPARATORS)


def _build(chunks: Sequence[tuple[str, bool]], *, arn: bool) -> str:
    out: list[str] = []
    seg = 0
    for text, is_wild in chunks:
        for ch in text:
            in_prefix = arn and seg < ARN_SEPARATORS
            if ch == ":" and in_prefix:
                out.append(":")
                seg += 1
            elif is_wild and ch == "*":
                out.append("[^:]*" if in_prefix else ".*")
            elif is_wild and ch == "?":
                out.append("[^:]" if in_prefix else ".")
            else:
                out.append(re.escape(ch))
    return "".join(out)


@functools.lru_cache(maxsize=8192)
def _compile(source: str, ignore_case: bool) -> re.Pattern[str]:
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(source, flags)


def flat_regex(chunks: Chunks, *, ignore_case: bool = False) -> re.Pattern[str]:
    """Compile a flat glob (``StringLike``, actions): no segments.

    Args:
        chunks: The pattern.
        ignore_case: Match case-insensitively (actions).

    Returns:
        A compiled expression for ``fullmatch``.
    """
    return _flat(tuple(chunks), ignore_case)


@functools.lru_cache(maxsize=8192)
def _flat(chunks: Chunks, ignore_case: bool) -> re.Pattern[str]:
    # Keyed by the chunks: a substituted pattern seen before costs one lookup.
    return _compile(_build(chunks, arn=False), ignore_case)


def arn_regex(chunks: Chunks) -> re.Pattern[str]:
    """Compile an ARN glob that matches segment by segment (case-sensitive).

    Args:
        chunks: The pattern; its first five ``:`` are the segment separators.

    Returns:
        A compiled expression for ``fullmatch``. A value with fewer than five
        colons cannot match a pattern with five.
    """
    return _arn(tuple(chunks))


@functools.lru_cache(maxsize=8192)
def _arn(chunks: Chunks) -> re.Pattern[str]:
    return _compile(_build(chunks, arn=True), False)
