"""Condition operators: parsing policy values and testing request values (pure).

Semantics (IAM User Guide, **IAM JSON policy elements: Condition operators**,
**Creating a condition with multiple keys or values**, **Single-valued vs.
multivalued context keys**; kubeiam's ``docs/policy-semantics.md``):

- Key absent: positive operators are false, negated operators true; ``...IfExists``
  is true; ``Null`` tests presence (``"true"`` = absent).
- Several policy values for one key: OR for positive operators; for negated
  operators the request value must differ from all of them.
- ``ForAllValues:`` is true when every request value matches some policy value,
  and also when the key is absent or its set empty. ``ForAnyValue:`` needs at
  least one matching request value: false on an absent key or empty set (true
  with ``IfExists`` on an absent key). A negated inner operator applies per
  request value first.
- Plain operator on a key given several values [open, kubeiam's choice]: a
  positive operator is true when some value matches, a negated one when no
  value matches (the set is read as "any of these"); ``lint`` warns.
- Unparseable policy values are rejected at load time; an unparseable request
  value matches nothing.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from policy.iam.arnmatch import Chunks, arn_regex, count_arn_separators, flat_regex
from policy.iam.variables import Template, chunks_text, parse_template, resolve_template

__all__ = [
    "ClauseResult",
    "ConditionClause",
    "Family",
    "Operator",
    "ValueError_",
    "clause_holds",
    "compile_clause",
    "evaluate_clause",
    "parse_date",
    "parse_operator",
]

Context = Mapping[str, tuple[str, ...]]
Lookup = Callable[[str], str | None]

# The five ARN separators; an ARN pattern needs all of them (docs/policy-semantics.md).
_ARN_SEPARATORS = 5


class Family(enum.Enum):
    """How an operator reads its values."""

    STRING = "String"
    NUMERIC = "Numeric"
    DATE = "Date"
    BOOL = "Bool"
    BINARY = "Binary"
    IP = "IpAddress"
    ARN = "Arn"
    NULL = "Null"


@dataclass(frozen=True, slots=True)
class _Spec:
    family: Family
    negated: bool
    test: str  # eq, eqi, like, lt, lte, gt, gte, in (ip), null


# Base operator name -> how it compares (IAM User Guide, Condition operators).
_BASE: dict[str, _Spec] = {
    "StringEquals": _Spec(Family.STRING, False, "eq"),
    "StringNotEquals": _Spec(Family.STRING, True, "eq"),
    "StringEqualsIgnoreCase": _Spec(Family.STRING, False, "eqi"),
    "StringNotEqualsIgnoreCase": _Spec(Family.STRING, True, "eqi"),
    "StringLike": _Spec(Family.STRING, False, "like"),
    "StringNotLike": _Spec(Family.STRING, True, "like"),
    "NumericEquals": _Spec(Family.NUMERIC, False, "eq"),
    "NumericNotEquals": _Spec(Family.NUMERIC, True, "eq"),
    "NumericLessThan": _Spec(Family.NUMERIC, False, "lt"),
    "NumericLessThanEquals": _Spec(Family.NUMERIC, False, "lte"),
    "NumericGreaterThan": _Spec(Family.NUMERIC, False, "gt"),
    "NumericGreaterThanEquals": _Spec(Family.NUMERIC, False, "gte"),
    "DateEquals": _Spec(Family.DATE, False, "eq"),
    "DateNotEquals": _Spec(Family.DATE, True, "eq"),
    "DateLessThan": _Spec(Family.DATE, False, "lt"),
    "DateLessThanEquals": _Spec(Family.DATE, False, "lte"),
    "DateGreaterThan": _Spec(Family.DATE, False, "gt"),
    "DateGreaterThanEquals": _Spec(Family.DATE, False, "gte"),
    "Bool": _Spec(Family.BOOL, False, "eq"),
    "BinaryEquals": _Spec(Family.BINARY, False, "eq"),
    "IpAddress": _Spec(Family.IP, False, "in"),
    "NotIpAddress": _Spec(Family.IP, True, "in"),
    "ArnEquals": _Spec(Family.ARN, False, "like"),
    "ArnLike": _Spec(Family.ARN, False, "like"),
    "ArnNotEquals": _Spec(Family.ARN, True, "like"),
    "ArnNotLike": _Spec(Family.ARN, True, "like"),
    "Null": _Spec(Family.NULL, False, "null"),
}
_BASE_BY_LOWER = {name.lower(): name for name in _BASE}
_QUALIFIERS = {"forallvalues": "ForAllValues", "foranyvalue": "ForAnyValue"}
_IF_EXISTS = "ifexists"

# Families whose values may hold policy variables (Variables and tags; Bool per
# docs/policy-semantics.md: allowed).
_VARIABLE_FAMILIES = frozenset({Family.STRING, Family.ARN, Family.BOOL})

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_EPOCH = re.compile(r"^-?\d+(\.\d+)?$")
# W3C profiles of ISO 8601: YYYY, YYYY-MM, YYYY-MM-DD, and date-time with
# optional seconds, fraction and zone (Z or +hh:mm).
_ISO = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"(Z|z|[+-]\d{2}:?\d{2})?)?)?)?$"
)


class ValueError_(Exception):  # noqa: N801, N818 - internal, re-raised as InvalidPolicyError
    """A policy value that does not parse for its operator (internal)."""


@dataclass(frozen=True, slots=True)
class Operator:
    """A parsed operator name such as ``ForAnyValue:StringLikeIfExists``.

    Attributes:
        name: As written in the policy.
        base: The canonical base operator (``StringLike``).
        qualifier: ``ForAllValues``, ``ForAnyValue`` or None.
        if_exists: True for ``...IfExists``.
    """

    name: str
    base: str
    qualifier: str | None
    if_exists: bool

    @property
    def family(self) -> Family:
        """The value family."""
        return _BASE[self.base].family

    @property
    def negated(self) -> bool:
        """True for ``...Not...`` operators."""
        return _BASE[self.base].negated

    @property
    def canonical(self) -> str:
        """The operator name with canonical capitalisation."""
        prefix = f"{self.qualifier}:" if self.qualifier else ""
        return f"{prefix}{self.base}{'IfExists' if self.if_exists else ''}"


def parse_operator(name: str) -> Operator | None:
    """Parse an operator name (case-insensitive).

    Args:
        name: e.g. ``StringEquals``, ``ForAllValues:StringLikeIfExists``.

    Returns:
        The operator, or None when the name is unknown (``Null`` takes no
        ``IfExists``).
    """
    rest = name
    qualifier = None
    if ":" in rest:
        prefix, rest = rest.split(":", 1)
        qualifier = _QUALIFIERS.get(prefix.lower())
        if qualifier is None:
            return None
    lower = rest.lower()
    if_exists = False
    if lower not in _BASE_BY_LOWER and lower.endswith(_IF_EXISTS):
        lower = lower[: -len(_IF_EXISTS)]
        if_exists = True
    base = _BASE_BY_LOWER.get(lower)
    if base is None or (base == "Null" and (if_exists or qualifier)):
        return None
    return Operator(name=name, base=base, qualifier=qualifier, if_exists=if_exists)


def parse_date(text: str) -> float | None:
    """Parse an ISO 8601 (W3C profile) date or epoch seconds into epoch seconds.

    Args:
        text: The value.

    Returns:
        Seconds since the epoch, or None when the value does not parse.
    """
    text = text.strip()
    if _EPOCH.match(text):
        return float(text)
    m = _ISO.match(text)
    if not m:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        tz: timezone = UTC
        if zone and zone not in ("Z", "z"):
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            tz = timezone(sign * offset)
        moment = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=tz,
        )
    except ValueError:
        return None
    return moment.timestamp() + (float(frac) if frac else 0.0)


def _parse_number(text: str) -> Decimal | None:
    if not _NUMBER.match(text.strip()):
        return None
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        return None


def _parse_bool(text: str) -> bool | None:
    low = text.strip().lower()
    return True if low == "true" else False if low == "false" else None


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class _Value:
    """One policy value: its text, template and pre-parsed form."""

    raw: str
    template: Template | None
    parsed: object


@dataclass(frozen=True, slots=True)
class ConditionClause:
    """One ``operator -> key -> values`` entry of a Condition block.

    Attributes:
        operator: The parsed operator.
        key: The condition key as written.
        values: The policy values, pre-parsed.
    """

    operator: Operator
    key: str
    values: tuple[_Value, ...]
    # Precomputed once for ``clause_holds`` (the decision-only path): the folded
    # key, the operator's dispatch, and the matchers when no value has variables.
    _key: str = field(init=False, repr=False, compare=False)
    _spec: _Spec = field(init=False, repr=False, compare=False)
    _static: tuple[object, ...] | None = field(init=False, repr=False, compare=False)
    _eq_set: frozenset[object] | None = field(init=False, repr=False, compare=False)
    _fold: bool = field(init=False, repr=False, compare=False)
    _pos: Callable[[object, str], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        spec = _BASE[self.operator.base]
        static: tuple[object, ...] | None = None
        if all(v.template is None or not v.template.has_variables for v in self.values):
            static = tuple(v.parsed for v in self.values if v.parsed is not None)
        eq_set: frozenset[object] | None = None
        if (
            static is not None
            and spec.family is Family.STRING
            and spec.test in ("eq", "eqi")
        ):
            eq_set = frozenset(static)
        object.__setattr__(self, "_key", self.key.lower())
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_static", static)
        object.__setattr__(self, "_eq_set", eq_set)
        object.__setattr__(self, "_fold", spec.test == "eqi")
        object.__setattr__(self, "_pos", _dispatch(self.operator, spec))

    @property
    def key_lower(self) -> str:
        """The key folded for case-insensitive lookup."""
        return self._key


@dataclass(frozen=True, slots=True)
class ClauseResult:
    """The outcome of one clause, for explain traces.

    Attributes:
        operator: The operator as written.
        key: The key as written.
        result: Whether the clause holds.
        missing: True when the key was absent from the request context.
        request_values: The request's values for the key.
        policy_values: The resolved policy values (None: variable without value).
    """

    operator: str
    key: str
    result: bool
    missing: bool
    request_values: tuple[str, ...]
    policy_values: tuple[str | None, ...]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "operator": self.operator,
            "key": self.key,
            "result": self.result,
            "missing": self.missing,
            "requestValues": list(self.request_values),
            "policyValues": list(self.policy_values),
        }


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise ValueError_("values must be strings, numbers or booleans")


def _compile_value(op: Operator, value: object, *, substitute: bool) -> _Value:
    family = op.family
    if family in (Family.NUMERIC, Family.DATE) and isinstance(value, bool):
        raise ValueError_(f"{value!r} is not a valid {family.value} value")
    raw = _scalar_text(value)
    template = None
    parsed: object = None
    if family in _VARIABLE_FAMILIES:
        template = parse_template(raw, substitute=substitute, arn=family is Family.ARN)
        if template.has_variables:
            return _Value(raw=raw, template=template, parsed=None)
    if family is Family.STRING:
        assert template is not None  # noqa: S101 - set above for this family
        chunks = template.static_chunks()
        if _BASE[op.base].test == "like":
            parsed = flat_regex(chunks)
        else:
            parsed = _fold(op, chunks_text(_literal(chunks)))
    elif family is Family.ARN:
        assert template is not None  # noqa: S101 - set above for this family
        parsed = _arn_pattern(template.static_chunks(), raw)
    elif family is Family.BOOL:
        if _parse_bool(raw) is None:
            raise ValueError_(f"{raw!r} is not true or false")
        parsed = raw.strip().lower()
    elif family is Family.NULL:
        parsed = _parse_bool(raw)
        if parsed is None:
            raise ValueError_(f"{raw!r} is not true or false")
    elif family is Family.NUMERIC:
        parsed = _parse_number(raw)
        if parsed is None:
            raise ValueError_(f"{raw!r} is not a number")
    elif family is Family.DATE:
        parsed = parse_date(raw)
        if parsed is None:
            raise ValueError_(f"{raw!r} is not an ISO 8601 date or epoch seconds")
    elif family is Family.BINARY:
        try:
            parsed = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError_(f"{raw!r} is not base64") from exc
    elif family is Family.IP:
        try:
            parsed = ipaddress.ip_network(raw.strip(), strict=False)
        except ValueError as exc:
            raise ValueError_(f"{raw!r} is not an IPv4 or IPv6 address/CIDR") from exc
    return _Value(raw=raw, template=template, parsed=parsed)


def _literal(chunks: Chunks) -> Chunks:
    return tuple((text, False) for text, _ in chunks)


def _fold(op: Operator, text: str) -> str:
    return text.lower() if _BASE[op.base].test == "eqi" else text


class _MatchAll:
    """The ARN pattern ``*``: matches any value."""

    def fullmatch(self, value: str) -> bool:
        return True


MATCH_ALL = _MatchAll()


def _arn_pattern(chunks: Chunks, raw: str) -> re.Pattern[str] | _MatchAll:
    if chunks == (("*", True),):
        return MATCH_ALL
    if count_arn_separators(chunks) < _ARN_SEPARATORS:
        raise ValueError_(f"{raw!r} is not an ARN pattern (needs six parts)")
    return arn_regex(chunks)


def compile_clause(
    operator: Operator, key: str, values: Sequence[object], *, substitute: bool
) -> ConditionClause:
    """Compile one clause.

    Args:
        operator: The parsed operator.
        key: The condition key as written.
        values: The policy's values for the key (already a list).
        substitute: Whether policy variables are substituted (Version 2012-10-17).

    Returns:
        The compiled clause.

    Raises:
        ValueError_: A value does not parse for the operator.
    """
    compiled = tuple(_compile_value(operator, v, substitute=substitute) for v in values)
    return ConditionClause(operator=operator, key=key, values=compiled)


def _resolved(op: Operator, value: _Value, lookup: Lookup) -> tuple[object, str | None]:
    """Return (matcher, display) for a value; matcher None when unresolved."""
    if value.template is None or not value.template.has_variables:
        return value.parsed, value.raw
    chunks = resolve_template(value.template, lookup)
    if chunks is None:
        return None, None
    text = chunks_text(chunks)
    family = op.family
    if family is Family.ARN:
        try:
            return _arn_pattern(chunks, text), text
        except ValueError_:
            return None, text
    if family is Family.BOOL:
        return text.strip().lower(), text
    if _BASE[op.base].test == "like":
        return flat_regex(chunks), text
    return _fold(op, text), text


# Request values parse the same every time: bounded, thread-safe caches keep the
# parsing off the per-decision cost (no shared mutable state of our own).
@functools.lru_cache(maxsize=4096)
def _request_number(text: str) -> Decimal | None:
    return _parse_number(text)


@functools.lru_cache(maxsize=4096)
def _request_date(text: str) -> float | None:
    return parse_date(text)


@functools.lru_cache(maxsize=4096)
def _request_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _like(matcher: object, value: str) -> bool:
    return bool(matcher.fullmatch(value))  # type: ignore[attr-defined]  # regex or MATCH_ALL


def _equals(matcher: object, value: str) -> bool:
    return matcher == value


def _equals_folded(matcher: object, value: str) -> bool:
    return matcher == value.lower()


def _dispatch(op: Operator, spec: _Spec) -> Callable[[object, str], bool]:
    """The positive test of one policy value against one request value."""
    if spec.family in (Family.STRING, Family.ARN):
        if spec.test == "like":
            return _like
        return _equals_folded if spec.test == "eqi" else _equals
    return functools.partial(_positive, op)


def _positive(op: Operator, matcher: object, request_value: str) -> bool:
    """Whether one request value satisfies one (positive form) policy value."""
    spec = _BASE[op.base]
    family = spec.family
    if family in (Family.STRING, Family.ARN):
        if spec.test in ("like",):
            return bool(matcher.fullmatch(request_value))  # type: ignore[attr-defined]  # regex or MATCH_ALL
        if spec.test == "eqi":
            return matcher == request_value.lower()
        return matcher == request_value
    if family is Family.BOOL:
        return matcher == request_value.strip().lower()
    if family is Family.NUMERIC:
        return _compare(spec.test, _request_number(request_value), matcher)
    if family is Family.DATE:
        return _compare(spec.test, _request_date(request_value), matcher)
    if family is Family.BINARY:
        try:
            return base64.b64decode(request_value, validate=True) == matcher
        except (binascii.Error, ValueError):
            return False
    if family is Family.IP:
        address = _request_address(request_value)
        if address is None:
            return False
        network: IPNetwork = matcher  # type: ignore[assignment]  # parsed IP network
        return address.version == network.version and address in network
    return False


def _compare(test: str, left: object, right: object) -> bool:
    if left is None or right is None:
        return False
    a: float = left  # type: ignore[assignment]  # Decimal or float, comparable
    b: float = right  # type: ignore[assignment]  # same family as left
    if test == "eq":
        return a == b
    if test == "lt":
        return a < b
    if test == "lte":
        return a <= b
    if test == "gt":
        return a > b
    return a >= b


def evaluate_clause(
    clause: ConditionClause, context: Context, lookup: Lookup
) -> ClauseResult:
    """Evaluate one clause against the request context.

    Args:
        clause: The compiled clause.
        context: Lower-cased key -> the request's values (a tuple; several
            values when the key is multi-valued).
        lookup: Single-value lookup for policy variables.

    Returns:
        The result with the values used, for the trace.
    """
    op = clause.operator
    values = context.get(clause.key_lower)
    present = values is not None and len(values) > 0
    request_values: tuple[str, ...] = values or ()
    resolved = [_resolved(op, v, lookup) for v in clause.values]
    shown = tuple(display for _, display in resolved)
    matchers = [m for m, _ in resolved if m is not None]

    if op.family is Family.NULL:
        result = any(
            (m is True and not present) or (m is False and present) for m in matchers
        )
        return ClauseResult(
            op.name, clause.key, result, not present, request_values, shown
        )

    def value_ok(request_value: str) -> bool:
        hit = any(_positive(op, m, request_value) for m in matchers)
        return not hit if op.negated else hit

    if op.qualifier == "ForAllValues":
        result = all(value_ok(v) for v in request_values)
    elif op.qualifier == "ForAnyValue":
        result = any(value_ok(v) for v in request_values) if present else op.if_exists
    elif not present:
        result = op.if_exists or op.negated
    elif op.negated:
        result = all(value_ok(v) for v in request_values)
    else:
        result = any(value_ok(v) for v in request_values)
    return ClauseResult(op.name, clause.key, result, not present, request_values, shown)


def clause_holds(clause: ConditionClause, context: Context, lookup: Lookup) -> bool:
    """Whether a clause holds: ``evaluate_clause(...).result`` without the trace.

    The decision-only path: same rules, no per-value display strings, and the
    operator's dispatch and static matchers precomputed on the clause.

    Args:
        clause: The compiled clause.
        context: Lower-cased key -> the request's values.
        lookup: Single-value lookup for policy variables.

    Returns:
        True when the clause holds.
    """
    op = clause.operator
    values = context.get(clause._key)
    present = bool(values)
    spec = clause._spec
    matchers = clause._static
    if matchers is None:
        resolved = (_resolved(op, v, lookup)[0] for v in clause.values)
        matchers = tuple(m for m in resolved if m is not None)
    if spec.family is Family.NULL:
        return any(
            (m is True and not present) or (m is False and present) for m in matchers
        )
    qualifier = op.qualifier
    if not present:
        if qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return op.if_exists
        return op.if_exists or spec.negated
    assert values is not None  # noqa: S101 - present
    eq_set = clause._eq_set
    negated = spec.negated
    # value_ok(v) = hit(v) != negated. Plain positive: some value ok; plain
    # negated and ForAllValues: every value ok; ForAnyValue: some value ok.
    want_all = negated if qualifier is None else qualifier == "ForAllValues"
    pos = clause._pos
    for v in values:
        if eq_set is not None:
            hit = (v.lower() if clause._fold else v) in eq_set
        else:
            hit = False
            for m in matchers:
                if pos(m, v):
                    hit = True
                    break
        if want_all:
            if hit == negated:
                return False
        elif hit != negated:
            return True
    return want_all
