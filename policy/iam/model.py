"""Parse and validate IAM policy documents into compiled, typed statements (pure).

Every policy type shares the grammar of **IAM JSON policy element reference**;
the kind decides which elements are allowed:

- identity, boundary, session: no Principal/NotPrincipal; Resource or
  NotResource required.
- resource, trust: Principal or NotPrincipal required; Resource optional
  (absent = this resource); ``Allow`` + ``NotPrincipal`` rejected. A trust
  policy is the resource policy of ``sts:AssumeRole*``.
- scp: no Principal/NotPrincipal; Resource optional (absent = ``*``); every
  level must allow and SCPs never grant.
- rcp: only ``"Principal": "*"``; no NotAction/NotPrincipal; Version 2012-10-17.

Errors are ``InvalidPolicyError`` whose ``pointer`` names the statement (index
and Sid) and the element, e.g. ``/Statement/2 (Sid "AllowS3")/Condition/StringEqulas``.
Nothing but ``InvalidPolicyError`` escapes ``compile_policy``, whatever JSON it
is given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from authenticator.findings import Finding, Severity
from policy.errors import InvalidPolicyError
from policy.iam.arnmatch import Chunks, arn_regex, count_arn_separators, flat_regex
from policy.iam.conditions import (
    ConditionClause,
    ValueError_,
    compile_clause,
    parse_operator,
)
from policy.iam.keys import is_multi_valued, is_single_valued
from policy.iam.statement import (
    ActionMatcher,
    CompiledPolicy,
    Effect,
    PolicyKind,
    PrincipalSpec,
    ResourcePattern,
    Statement,
)
from policy.iam.variables import parse_template

__all__ = [
    "compile_policy",
    "load_policy_json",
]

# Policy language versions (IAM JSON policy elements: Version).
VERSION_2012 = "2012-10-17"
VERSION_2008 = "2008-10-17"
_VERSIONS = (VERSION_2012, VERSION_2008)

_POLICY_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "NotPrincipal",
        "Condition",
    }
)
_PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")
_ACTION = re.compile(r"^[A-Za-z0-9*?_.-]+:[A-Za-z0-9*?_.-]*$")
# Keys used in JSON-decoding to mark duplicate object keys (AWS rejects them on write).
DUPLICATES_ATTR = "_kubeiam_duplicates"


class _DupDict(dict[str, object]):
    """A JSON object that remembers duplicate keys."""

    __slots__ = (DUPLICATES_ATTR,)


def _pairs_hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = _DupDict()
    dups: list[str] = []
    for key, value in pairs:
        if key in out:
            dups.append(key)
        out[key] = value
    setattr(out, DUPLICATES_ATTR, tuple(dups))
    return out


def load_policy_json(text: str | bytes) -> object:
    """Decode JSON, remembering duplicate object keys so validation can reject them.

    Args:
        text: JSON text.

    Returns:
        The decoded value; objects are dicts that carry their duplicate keys.

    Raises:
        InvalidPolicyError: The text is not JSON.
    """
    try:
        return json.loads(text, object_pairs_hook=_pairs_hook)
    except (ValueError, RecursionError) as exc:
        raise InvalidPolicyError(f"not valid JSON: {exc}") from exc


def _duplicates(obj: Mapping[str, object]) -> tuple[str, ...]:
    dups = getattr(obj, DUPLICATES_ATTR, ())
    return dups if isinstance(dups, tuple) else ()


def _fail(name: str, pointer: str, message: str) -> InvalidPolicyError:
    return InvalidPolicyError(message, pointer=pointer, policy=name)


def _strings(name: str, pointer: str, value: object, *, what: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise _fail(name, pointer, f"{what} must not be an empty list")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item:
            raise _fail(
                name, pointer, f"{what} must be a non-empty string or list of them"
            )
        out.append(item)
    return tuple(out)


def _compile_actions(name: str, pointer: str, value: object) -> ActionMatcher:
    patterns = _strings(name, pointer, value, what="an action")
    exact: set[str] = set()
    globs: list[re.Pattern[str]] = []
    services: set[str] | None = set()
    for pattern in patterns:
        if pattern != "*" and not _ACTION.match(pattern):
            raise _fail(name, pointer, f'{pattern!r} is not "*" or service:action')
        low = pattern.lower()
        prefix = low.split(":", 1)[0]
        if services is not None:
            if "*" in prefix or "?" in prefix:
                services = None
            else:
                services.add(prefix)
        if "*" in low or "?" in low:
            globs.append(flat_regex(((low, True),)))
        else:
            exact.add(low)
    return ActionMatcher(
        patterns=patterns,
        exact=frozenset(exact),
        globs=tuple(globs),
        services=frozenset(services) if services is not None else None,
    )


def _compile_resources(
    name: str, pointer: str, value: object, *, substitute: bool
) -> tuple[ResourcePattern, ...]:
    out: list[ResourcePattern] = []
    for raw in _strings(name, pointer, value, what="a resource"):
        template = parse_template(raw, substitute=substitute, arn=True)
        if raw == "*":
            out.append(ResourcePattern(raw, template, None, match_all=True))
            continue
        chunks: Chunks = template.static_chunks()
        if not raw.startswith("arn:") or count_arn_separators(chunks) < 5:
            raise _fail(name, pointer, f'{raw!r} is not "*" or an ARN with six parts')
        service = raw.split(":", 3)[2]
        if "*" in service or "?" in service:
            raise _fail(
                name, pointer, f"{raw!r}: wildcards are not allowed in the service"
            )
        compiled = None if template.has_variables else arn_regex(chunks)
        out.append(ResourcePattern(raw, template, compiled, match_all=False))
    return tuple(out)


def _compile_principal(name: str, pointer: str, value: object) -> PrincipalSpec:
    if value == "*":
        return PrincipalSpec(wildcard=True)
    if not isinstance(value, Mapping) or not value:
        raise _fail(
            name,
            pointer,
            'must be "*" or an object of AWS/Service/Federated/CanonicalUser',
        )
    if dups := _duplicates(value):
        raise _fail(name, pointer, f"duplicate key {dups[0]!r}")
    found: dict[str, tuple[str, ...]] = {}
    for ptype, entries in value.items():
        if ptype not in _PRINCIPAL_TYPES:
            raise _fail(name, f"{pointer}/{ptype}", "unknown principal type")
        found[ptype] = _strings(name, f"{pointer}/{ptype}", entries, what="a principal")
    aws = found.get("AWS", ())
    return PrincipalSpec(
        wildcard="*" in aws,
        aws=tuple(a for a in aws if a != "*"),
        service=found.get("Service", ()),
        federated=found.get("Federated", ()),
        canonical=found.get("CanonicalUser", ()),
    )


def _compile_conditions(
    name: str, pointer: str, value: object, *, substitute: bool
) -> tuple[ConditionClause, ...]:
    if not isinstance(value, Mapping):
        raise _fail(name, pointer, "must be an object of operator -> {key: values}")
    if dups := _duplicates(value):
        raise _fail(name, f"{pointer}/{dups[0]}", "duplicate operator (AWS rejects it)")
    clauses: list[ConditionClause] = []
    for op_name, block in value.items():
        where = f"{pointer}/{op_name}"
        operator = parse_operator(op_name)
        if operator is None:
            raise _fail(name, where, "unknown operator")
        if not isinstance(block, Mapping) or not block:
            raise _fail(name, where, "must be a non-empty object of key -> values")
        if dups := _duplicates(block):
            raise _fail(name, f"{where}/{dups[0]}", "duplicate condition key")
        for key, raw_values in block.items():
            at = f"{where}/{key}"
            if not key:
                raise _fail(name, at, "empty condition key")
            values = raw_values if isinstance(raw_values, list) else [raw_values]
            if not values:
                raise _fail(name, at, "must have at least one value")
            try:
                clauses.append(
                    compile_clause(operator, key, values, substitute=substitute)
                )
            except ValueError_ as exc:
                raise _fail(name, at, str(exc)) from exc
    return tuple(clauses)


def _statement_pointer(index: int | None, sid: object) -> str:
    base = "/Statement" if index is None else f"/Statement/{index}"
    return f'{base} (Sid "{sid}")' if isinstance(sid, str) and sid else base


def _compile_statement(
    name: str,
    kind: PolicyKind,
    raw: object,
    index: int | None,
    *,
    substitute: bool,
    warnings: list[Finding],
) -> Statement:
    if not isinstance(raw, Mapping):
        raise _fail(
            name, _statement_pointer(index, None), "a statement must be an object"
        )
    ptr = _statement_pointer(index, raw.get("Sid"))
    if dups := _duplicates(raw):
        raise _fail(name, f"{ptr}/{dups[0]}", "duplicate element")
    for key in raw:
        if key not in _STATEMENT_KEYS:
            raise _fail(name, f"{ptr}/{key}", "unknown element")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise _fail(name, f"{ptr}/Sid", "must be a string")
    effect_raw = raw.get("Effect")
    if effect_raw not in ("Allow", "Deny"):
        raise _fail(name, f"{ptr}/Effect", 'must be "Allow" or "Deny"')
    effect = Effect(effect_raw)

    if ("Action" in raw) == ("NotAction" in raw):
        raise _fail(name, ptr, "needs exactly one of Action or NotAction")
    not_action = "NotAction" in raw
    if not_action and kind is PolicyKind.RCP:
        raise _fail(name, f"{ptr}/NotAction", "not supported in RCPs")
    elem = "NotAction" if not_action else "Action"
    actions = _compile_actions(name, f"{ptr}/{elem}", raw[elem])

    if "Resource" in raw and "NotResource" in raw:
        raise _fail(name, ptr, "Resource and NotResource are exclusive")
    not_resource = "NotResource" in raw
    relem = "NotResource" if not_resource else "Resource"
    resources = None
    if relem in raw:
        resources = _compile_resources(
            name, f"{ptr}/{relem}", raw[relem], substitute=substitute
        )
    elif kind in (PolicyKind.IDENTITY, PolicyKind.BOUNDARY, PolicyKind.SESSION):
        raise _fail(name, ptr, "needs Resource or NotResource")

    principal, not_principal = _statement_principal(name, kind, raw, ptr, effect)

    conditions: tuple[ConditionClause, ...] = ()
    if "Condition" in raw:
        conditions = _compile_conditions(
            name, f"{ptr}/Condition", raw["Condition"], substitute=substitute
        )
    statement = Statement(
        index=index or 0,
        sid=sid,
        pointer=ptr,
        effect=effect,
        actions=actions,
        not_action=not_action,
        resources=resources,
        not_resource=not_resource,
        principal=principal,
        not_principal=not_principal,
        conditions=conditions,
    )
    warnings.extend(_statement_warnings(kind, statement))
    return statement


def _statement_principal(
    name: str, kind: PolicyKind, raw: Mapping[str, object], ptr: str, effect: Effect
) -> tuple[PrincipalSpec | None, bool]:
    has_p, has_np = "Principal" in raw, "NotPrincipal" in raw
    if not kind.takes_principal:
        if has_p or has_np:
            elem = "Principal" if has_p else "NotPrincipal"
            raise _fail(name, f"{ptr}/{elem}", f"not allowed in a {kind.value} policy")
        return None, False
    if has_p and has_np:
        raise _fail(name, ptr, "Principal and NotPrincipal are exclusive")
    if has_np:
        if kind is PolicyKind.RCP:
            raise _fail(name, f"{ptr}/NotPrincipal", "not supported in RCPs")
        if effect is Effect.ALLOW:
            raise _fail(
                name, f"{ptr}/NotPrincipal", "Allow with NotPrincipal is not supported"
            )
        return _compile_principal(
            name, f"{ptr}/NotPrincipal", raw["NotPrincipal"]
        ), True
    if not has_p:
        if kind is PolicyKind.RCP:
            return PrincipalSpec(wildcard=True), False
        raise _fail(name, ptr, f"a {kind.value} policy statement needs Principal")
    spec = _compile_principal(name, f"{ptr}/Principal", raw["Principal"])
    if kind is PolicyKind.RCP and spec != PrincipalSpec(wildcard=True):
        raise _fail(name, f"{ptr}/Principal", 'RCPs only support "Principal": "*"')
    return spec, False


def _warning(code: str, where: str, message: str) -> Finding:
    """A ``kubeiam policy lint`` warning: valid, but likely not what was meant."""
    return Finding(Severity.MEDIUM, code, where, message)


def _statement_warnings(kind: PolicyKind, st: Statement) -> list[Finding]:
    out: list[Finding] = []
    ptr = st.pointer
    all_resources = st.resources is not None and any(r.match_all for r in st.resources)
    if (
        st.effect is Effect.ALLOW
        and st.not_action
        and all_resources
        and not st.not_resource
    ):
        out.append(
            _warning(
                "not-action-allow",
                f"{ptr}/NotAction",
                'Allow + NotAction on "*" grants almost everything',
            )
        )
    if (
        st.effect is Effect.ALLOW
        and not st.not_action
        and any(p in ("*", "*:*") for p in st.actions.patterns)
        and all_resources
        and not st.not_resource
        # FullAWSAccess (Allow * on *) is how SCPs and boundaries say "no limit".
        and kind not in (PolicyKind.SCP, PolicyKind.RCP, PolicyKind.BOUNDARY)
    ):
        out.append(
            _warning(
                "allow-all",
                f"{ptr}/Action",
                'Allow "*" on "*" grants every action on every resource '
                "(administrator access)"
                + (" under a Condition" if st.conditions else "")
                + "; name the actions and resources needed",
            )
        )
    for clause in st.conditions:
        where = f"{ptr}/Condition/{clause.operator.name}/{clause.key}"
        if clause.operator.qualifier and is_single_valued(clause.key):
            out.append(
                _warning(
                    "set-operator-single-valued",
                    where,
                    "set operator on a single-valued key",
                )
            )
        if (
            not clause.operator.qualifier
            and clause.operator.base != "Null"
            and is_multi_valued(clause.key)
        ):
            out.append(
                _warning(
                    "multivalued-key-unqualified",
                    where,
                    "multivalued key: use ForAllValues: or ForAnyValue:",
                )
            )
        if st.effect is Effect.ALLOW and clause.operator.qualifier == "ForAllValues":
            out.append(
                _warning(
                    "for-all-values-allow",
                    f"{ptr}/Condition/{clause.operator.name}",
                    "ForAllValues under Allow is also true when the key is absent",
                )
            )
        if clause.operator.name != clause.operator.canonical:
            out.append(
                _warning(
                    "operator-spelling",
                    f"{ptr}/Condition/{clause.operator.name}",
                    f"write the operator as {clause.operator.canonical}",
                )
            )
    full_access = (
        st.actions.patterns == ("*",)
        and not st.not_action
        and all_resources
        and not st.conditions
    )
    if kind is PolicyKind.RCP and st.effect is Effect.ALLOW and not full_access:
        out.append(
            _warning(
                "rcp-allow",
                f"{ptr}/Effect",
                "RCP Allow is only supported in RCPFullAWSAccess",
            )
        )
    out.extend(_resource_mismatch(st))
    if st.principal is not None:
        for entry in st.principal.aws:
            if "*" in entry or "?" in entry:
                out.append(
                    _warning(
                        "principal-wildcard",
                        ptr,
                        f'principal {entry!r}: wildcards only work as the whole "*"',
                    )
                )
    return out


# Actions authorized against a resource type other than the one people expect
# (Service Authorization Reference for Amazon ECS; docs/policy-semantics.md):
# action -> the ARN resource types it is authorized against.
_RESOURCE_TYPES = {
    "ecs:runtask": ("task-definition/",),
    "ecs:starttask": ("task-definition/", "container-instance/"),
}


def _resource_mismatch(st: Statement) -> list[Finding]:
    """Warn when an action's resource type cannot match any listed ARN."""
    if st.not_action or st.not_resource or not st.resources:
        return []
    out: list[Finding] = []
    for action in st.actions.exact:
        types = _RESOURCE_TYPES.get(action)
        if types is None:
            continue
        parts = [r.raw.split(":", 5) for r in st.resources]
        if all(
            len(p) == 6
            and not any(p[5].startswith(t) or p[5].startswith("*") for t in types)
            for p in parts
        ):
            out.append(
                _warning(
                    "resource-type-mismatch",
                    f"{st.pointer}/Resource",
                    f"{action} is authorized against {' or '.join(types)} ARNs: these "
                    "resources grant nothing for it (scope clusters with ecs:cluster)",
                )
            )
    return out


def compile_policy(
    document: object,
    *,
    name: str = "policy",
    kind: PolicyKind | str = PolicyKind.IDENTITY,
) -> CompiledPolicy:
    """Parse and validate a policy document.

    Args:
        document: The decoded JSON (a mapping), or JSON text. Decode text with
            ``load_policy_json`` to have duplicate keys rejected.
        name: The policy's name, used in errors and traces.
        kind: The policy type (``PolicyKind`` or its value, e.g. ``"scp"``).

    Returns:
        The compiled policy.

    Raises:
        InvalidPolicyError: The document is not a valid policy of that kind; the
            error's ``pointer`` names the statement and element.
    """
    try:
        pkind = kind if isinstance(kind, PolicyKind) else PolicyKind(kind)
    except ValueError as exc:
        raise InvalidPolicyError(f"unknown policy kind {kind!r}", policy=name) from exc
    if isinstance(document, str | bytes):
        document = load_policy_json(document)
    if not isinstance(document, Mapping):
        raise _fail(name, "", "a policy must be a JSON object")
    if dups := _duplicates(document):
        raise _fail(name, f"/{dups[0]}", "duplicate element")
    for key in document:
        if key not in _POLICY_KEYS:
            raise _fail(name, f"/{key}", "unknown element")
    version = document.get("Version")
    if version is not None and version not in _VERSIONS:
        raise _fail(name, "/Version", f"must be {VERSION_2012!r} or {VERSION_2008!r}")
    if pkind is PolicyKind.RCP and version != VERSION_2012:
        raise _fail(name, "/Version", f"RCPs require {VERSION_2012!r}")
    if "Id" in document and not isinstance(document["Id"], str):
        raise _fail(name, "/Id", "must be a string")
    if "Statement" not in document:
        raise _fail(name, "", "missing Statement")
    raw = document["Statement"]
    substitute = version == VERSION_2012
    warnings: list[Finding] = []
    if version is None:
        warnings.append(
            _warning(
                "no-version",
                "/Version",
                "no Version: policy variables are not substituted",
            )
        )
    items: Sequence[tuple[int | None, object]]
    if isinstance(raw, list):
        items = list(enumerate(raw))
    elif isinstance(raw, Mapping):
        items = [(None, raw)]
    else:
        raise _fail(name, "/Statement", "must be an object or a list of objects")
    statements = tuple(
        _compile_statement(name, pkind, st, i, substitute=substitute, warnings=warnings)
        for i, st in items
    )
    sids = [s.sid for s in statements if s.sid]
    if len(sids) != len(set(sids)):
        warnings.append(_warning("duplicate-sid", "/Statement", "Sids are not unique"))
    by_service, any_service = _index(statements)
    return CompiledPolicy(
        name=name,
        kind=pkind,
        version=version if isinstance(version, str) else None,
        statements=statements,
        warnings=tuple(warnings),
        document=document,
        _by_service=by_service,
        _any_service=any_service,
    )


def _index(
    statements: tuple[Statement, ...],
) -> tuple[dict[str, tuple[Statement, ...]], tuple[Statement, ...]]:
    """Index statements by the service prefixes of their actions.

    NotAction statements and wildcard prefixes concern every service.
    """
    anywhere = tuple(
        s for s in statements if s.not_action or s.actions.services is None
    )
    services: set[str] = set()
    for s in statements:
        if not s.not_action and s.actions.services is not None:
            services.update(s.actions.services)
    by_service: dict[str, tuple[Statement, ...]] = {}
    for service in services:
        by_service[service] = tuple(
            s
            for s in statements
            if s.not_action
            or s.actions.services is None
            or service in s.actions.services
        )
    return by_service, anywhere
