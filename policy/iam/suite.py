"""Simulation cases (SPEC §8) and YAML policy test suites.

A *case* is the JSON object ``kubeiam policy simulate`` reads::

    {"id", "identityPolicies": [policy | {"name", "policy"}], "resourcePolicy",
     "permissionBoundaries": [...], "sessionPolicy", "scps": [...], "rcps": [...],
     "request": {"principal", "action", "resource", "resourceAccount", "context"},
     "expect": "Allowed|ImplicitlyDenied|ExplicitlyDenied", "rule": "..."}

``scps``/``rcps`` are a flat list (one level) or ``[{"orgIdentifier",
"policies"}]``. kubeiam extensions: ``resourcePolicyKind`` (``resource`` or
``trust``) and ``webIdentityToken`` (a JWT whose ``<issuer>:sub/aud`` keys are
added to the context, decoded without verification).

A *suite* is YAML (docs/policy-tests.md): named ``policies``, ``defaults`` and
``tests`` that expand to cases. ``parse_case``, ``expand_suite`` and
``run_cases`` are pure; ``load_suite`` reads files.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import yaml

from policy.errors import InvalidPolicyError, describe_parse_error
from policy.iam.evaluator import evaluate
from policy.iam.model import compile_policy, load_policy_json
from policy.iam.request import Decision, Level, PolicySet, Request
from policy.iam.statement import CompiledPolicy, PolicyKind
from policy.iam.trace import EvaluationResult
from policy.iam.webidentity import parse_web_identity_token, web_identity_context

__all__ = [
    "Case",
    "Outcome",
    "Suite",
    "expand_suite",
    "format_error",
    "junit_xml",
    "load_suite",
    "parse_case",
    "run_cases",
]

_DECISIONS = {d.value: d for d in Decision}


@dataclass(frozen=True, slots=True)
class Case:
    """A parsed simulation case.

    Attributes:
        id: The case id.
        policy_set: The compiled policies.
        request: The request.
        expect: The expected decision, when given.
        rule: The rule the case pins, when given.
    """

    id: str
    policy_set: PolicySet
    request: Request
    expect: Decision | None = None
    rule: str | None = None


def _bad(where: str, message: str) -> InvalidPolicyError:
    return InvalidPolicyError(message, pointer=where, policy="case")


def _policy(
    entry: object, *, default_name: str, kind: PolicyKind, where: str
) -> CompiledPolicy:
    if isinstance(entry, Mapping) and "policy" in entry and "Statement" not in entry:
        name = entry.get("name", default_name)
        if not isinstance(name, str):
            raise _bad(f"{where}/name", "must be a string")
        return compile_policy(entry["policy"], name=name, kind=kind)
    return compile_policy(entry, name=default_name, kind=kind)


def _policy_list(
    value: object, *, prefix: str, kind: PolicyKind, where: str
) -> list[CompiledPolicy]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [
        _policy(item, default_name=f"{prefix}-{i}", kind=kind, where=f"{where}/{i}")
        for i, item in enumerate(items)
    ]


def _org_levels(
    value: object, *, prefix: str, kind: PolicyKind, where: str
) -> list[Level]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(where, "must be a list of policies or of {orgIdentifier, policies}")
    if not value:
        # An empty list: no SCPs (RCPs) apply, not one level with nothing attached.
        return []
    if value and all(isinstance(v, Mapping) and "policies" in v for v in value):
        levels: list[Level] = []
        for i, level in enumerate(value):
            org = level.get("orgIdentifier", str(i))
            policies = _policy_list(
                level["policies"],
                prefix=f"{prefix}-{org}",
                kind=kind,
                where=f"{where}/{i}/policies",
            )
            levels.append(Level(tuple(policies), name=str(org)))
        return levels
    if value and all(isinstance(v, list) for v in value):
        return [
            Level(
                tuple(
                    _policy_list(
                        v, prefix=f"{prefix}-{i}", kind=kind, where=f"{where}/{i}"
                    )
                ),
                name=str(i),
            )
            for i, v in enumerate(value)
        ]
    flat = _policy_list(value, prefix=prefix, kind=kind, where=where)
    return [Level(tuple(flat), name="0")]


def _resource_kind(case: Mapping[str, object], action: object) -> PolicyKind:
    declared = case.get("resourcePolicyKind")
    if declared is not None:
        if declared not in ("resource", "trust"):
            raise _bad("/resourcePolicyKind", 'must be "resource" or "trust"')
        return PolicyKind(declared)
    return PolicyKind.RESOURCE


def parse_case(case: object, *, index: int = 0, strict_expect: bool = True) -> Case:
    """Parse one SPEC §8 case.

    Args:
        case: The decoded case object.
        index: Its position, for a default id.
        strict_expect: Reject an ``expect`` that is not a decision (suites);
            False ignores it (``simulate`` does not use it).

    Returns:
        The compiled case.

    Raises:
        InvalidPolicyError: A policy or the request is invalid.
    """
    if not isinstance(case, Mapping):
        raise _bad("", "a case must be an object")
    case_id = str(case.get("id", f"case-{index}"))
    request = case.get("request")
    if not isinstance(request, Mapping):
        raise _bad("/request", "missing request object")
    context = request.get("context") or {}
    if not isinstance(context, Mapping):
        raise _bad("/request/context", "must be an object")
    context = dict(context)
    token = case.get("webIdentityToken")
    if token is not None:
        if not isinstance(token, str):
            raise _bad("/webIdentityToken", "must be a JWT string")
        context = {**web_identity_context(parse_web_identity_token(token)), **context}
    resource_doc = case.get("resourcePolicy")
    policy_set = PolicySet(
        identity=_policy_list(
            case.get("identityPolicies"),
            prefix="identity",
            kind=PolicyKind.IDENTITY,
            where="/identityPolicies",
        ),
        resource=(
            _policy(
                resource_doc,
                default_name="resource",
                kind=_resource_kind(case, request.get("action")),
                where="/resourcePolicy",
            )
            if resource_doc is not None
            else None
        ),
        boundaries=_policy_list(
            case.get("permissionBoundaries"),
            prefix="boundary",
            kind=PolicyKind.BOUNDARY,
            where="/permissionBoundaries",
        ),
        session=_policy_list(
            case.get("sessionPolicy"),
            prefix="session",
            kind=PolicyKind.SESSION,
            where="/sessionPolicy",
        ),
        scps=_org_levels(
            case.get("scps"), prefix="scp", kind=PolicyKind.SCP, where="/scps"
        ),
        rcps=_org_levels(
            case.get("rcps"), prefix="rcp", kind=PolicyKind.RCP, where="/rcps"
        ),
    )
    resource_account = request.get("resourceAccount")
    if isinstance(resource_account, int) and not isinstance(resource_account, bool):
        resource_account = str(resource_account).zfill(
            12
        )  # a JSON number lost its zeros
    if resource_account is not None and not isinstance(resource_account, str):
        raise _bad("/request/resourceAccount", "must be a string")
    req = Request(
        principal=request.get("principal"),
        action=request.get("action"),  # type: ignore[arg-type]  # Request validates
        resource=request.get("resource", "*"),
        resource_account=resource_account,
        context=context,
    )
    expect = case.get("expect")
    decision = None
    if expect is not None:
        decision = _DECISIONS.get(expect) if isinstance(expect, str) else None
        if decision is None and strict_expect:
            raise _bad("/expect", f"must be one of {', '.join(_DECISIONS)}")
    rule = case.get("rule")
    return Case(
        case_id, policy_set, req, decision, rule if isinstance(rule, str) else None
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one case or suite test.

    Attributes:
        id: The case id or test name.
        expect: The expected decision, if any.
        result: The evaluation, or None when the case did not parse.
        error: The parse error, if any.
    """

    id: str
    expect: Decision | None
    result: EvaluationResult | None
    error: str | None = None

    @property
    def passed(self) -> bool:
        """True when the case parsed and matched its expectation (if any)."""
        if self.result is None:
            return False
        return self.expect is None or self.result.decision is self.expect


def format_error(exc: InvalidPolicyError) -> str:
    """The display form of a policy error: ``<policy>: <pointer>: <message>``.

    Args:
        exc: The error.

    Returns:
        One line.
    """
    parts = [p for p in (exc.policy, exc.pointer) if p]
    return ": ".join([*parts, exc.detail])


def run_cases(
    cases: Sequence[object], *, explain: bool = True, strict_expect: bool = True
) -> list[Outcome]:
    """Parse and evaluate raw cases; a case that does not parse is an error outcome.

    Args:
        cases: Decoded case objects.
        explain: Build full traces.
        strict_expect: Passed to ``parse_case``.

    Returns:
        One outcome per case, in order.
    """
    out: list[Outcome] = []
    for i, raw in enumerate(cases):
        case_id = (
            str(raw.get("id", f"case-{i}")) if isinstance(raw, Mapping) else f"case-{i}"
        )
        try:
            case = parse_case(raw, index=i, strict_expect=strict_expect)
        except InvalidPolicyError as exc:
            out.append(Outcome(case_id, None, None, format_error(exc)))
            continue
        out.append(
            Outcome(
                case.id,
                case.expect,
                evaluate(case.policy_set, case.request, explain=explain),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Suite:
    """A YAML suite expanded into cases.

    Attributes:
        name: The suite's name.
        path: Where it was read from.
        cases: SPEC §8 case objects with ``id`` = test name and ``expect``.
    """

    name: str
    path: str
    cases: tuple[Mapping[str, object], ...]


_POLICY_FIELDS = (
    "identityPolicies",
    "permissionBoundaries",
    "sessionPolicy",
    "scps",
    "rcps",
)


def _resolve_ref(ref: object, named: Mapping[str, object], where: str) -> object:
    if isinstance(ref, str):
        if ref not in named:
            raise _bad(where, f"unknown policy {ref!r} (not under policies:)")
        return {"name": ref, "policy": named[ref]}
    return ref


def _resolve_field(
    key: str, value: object, named: Mapping[str, object], where: str
) -> object:
    if key == "resourcePolicy":
        return _resolve_ref(value, named, where)
    if isinstance(value, list):
        out: list[object] = []
        for i, item in enumerate(value):
            if (
                isinstance(item, Mapping)
                and "policies" in item
                and key in ("scps", "rcps")
            ):
                pols = item["policies"]
                pols = pols if isinstance(pols, list) else [pols]
                out.append(
                    {
                        **item,
                        "policies": [
                            _resolve_ref(p, named, f"{where}/{i}") for p in pols
                        ],
                    }
                )
            else:
                out.append(_resolve_ref(item, named, f"{where}/{i}"))
        return out
    return _resolve_ref(value, named, where)


def expand_suite(
    doc: object, *, name: str = "suite", base_dir: Path | None = None
) -> Suite:
    """Expand a decoded suite into SPEC §8 cases (pure but for ``file:`` policies).

    Args:
        doc: The decoded YAML.
        name: A default suite name (the file name).
        base_dir: Where ``file:`` references are resolved.

    Returns:
        The suite.

    Raises:
        InvalidPolicyError: The suite is malformed.
    """
    if not isinstance(doc, Mapping) or not isinstance(doc.get("tests"), list):
        raise _bad("/tests", "a suite is an object with a tests: list")
    named: dict[str, object] = {}
    policies = doc.get("policies") or {}
    if not isinstance(policies, Mapping):
        raise _bad("/policies", "must map names to policies")
    for pname, pdoc in policies.items():
        if isinstance(pdoc, Mapping) and "file" in pdoc and "Statement" not in pdoc:
            path = Path(str(pdoc["file"]))
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            try:
                named[str(pname)] = load_policy_json(path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise _bad(f"/policies/{pname}", f"cannot read {path}: {exc}") from exc
        else:
            named[str(pname)] = pdoc
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise _bad("/defaults", "must be an object")
    cases: list[Mapping[str, object]] = []
    for i, test in enumerate(doc["tests"]):
        where = f"/tests/{i}"
        if not isinstance(test, Mapping):
            raise _bad(where, "a test must be an object")
        merged: dict[str, object] = {**defaults, **test}
        req = {**_mapping(defaults.get("request")), **_mapping(test.get("request"))}
        req["context"] = {
            **_mapping(_mapping(defaults.get("request")).get("context")),
            **_mapping(_mapping(test.get("request")).get("context")),
        }
        title = str(test.get("name", f"test-{i}"))
        actions = req.get("action")
        resources = req.get("resource", "*")
        combos = list(
            itertools.product(
                actions if isinstance(actions, list) else [actions],
                resources if isinstance(resources, list) else [resources],
            )
        )
        for action, resource in combos:
            case: dict[str, object] = {
                "id": title if len(combos) == 1 else f"{title} [{action} {resource}]"
            }
            for key in (*_POLICY_FIELDS, "resourcePolicy"):
                if merged.get(key) is not None:
                    case[key] = _resolve_field(
                        key, merged[key], named, f"{where}/{key}"
                    )
            for key in ("resourcePolicyKind", "expect", "rule", "webIdentityToken"):
                if key in merged:
                    case[key] = merged[key]
            case["request"] = {**req, "action": action, "resource": resource}
            cases.append(case)
    suite_name = doc.get("name", name)
    return Suite(str(suite_name), name, tuple(cases))


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def load_suite(path: str | Path) -> Suite:
    """Read a YAML (or JSON) suite file.

    Args:
        path: The file.

    Returns:
        The expanded suite.

    Raises:
        InvalidPolicyError: The file cannot be read or is malformed.
    """
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError, RecursionError) as exc:
        # ValueError: UnicodeDecodeError, or a NUL byte PyYAML refuses
        why = describe_parse_error(exc)
        if not isinstance(exc, OSError):
            why = f"not a valid YAML suite: {why}"
        raise InvalidPolicyError(why, policy=str(p)) from exc
    return expand_suite(doc, name=str(p), base_dir=p.parent)


def junit_xml(
    results: Sequence[tuple[Suite, Sequence[Outcome]]],
    *,
    broken: Sequence[tuple[str, str]] = (),
) -> str:
    """Render suite outcomes as JUnit XML.

    Args:
        results: Each suite with its outcomes.
        broken: (path, message) of suites that failed to load: each becomes a
            suite with one errored test case, so CI shows it.

    Returns:
        The XML document.
    """
    root = ElementTree.Element("testsuites")
    for suite, outcomes in results:
        failures = sum(1 for o in outcomes if o.result is not None and not o.passed)
        errors = sum(1 for o in outcomes if o.result is None)
        el = ElementTree.SubElement(
            root,
            "testsuite",
            name=suite.name,
            tests=str(len(outcomes)),
            failures=str(failures),
            errors=str(errors),
        )
        for o in outcomes:
            tc = ElementTree.SubElement(el, "testcase", classname=suite.name, name=o.id)
            if o.result is None:
                ElementTree.SubElement(tc, "error", message=o.error or "error")
            elif not o.passed:
                expect = o.expect.value if o.expect else ""
                got = o.result.decision.value
                msg = f"expected {expect}, got {got}: {o.result.trace.reason}"
                fail = ElementTree.SubElement(tc, "failure", message=msg)
                fail.text = json.dumps(o.result.trace.to_json(), indent=2)
    for path, message in broken:
        el = ElementTree.SubElement(
            root, "testsuite", name=path, tests="1", failures="0", errors="1"
        )
        tc = ElementTree.SubElement(el, "testcase", classname=path, name="load")
        ElementTree.SubElement(tc, "error", message=message).text = message
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)
