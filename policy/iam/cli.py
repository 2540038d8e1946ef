"""``kubeiam policy simulate|explain|test|lint``: the IAM evaluator's shell."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from authenticator.findings import Finding, Severity
from policy.errors import InvalidPolicyError, describe_parse_error
from policy.iam.model import compile_policy, load_policy_json
from policy.iam.statement import PolicyKind
from policy.iam.suite import (
    Outcome,
    Suite,
    format_error,
    junit_xml,
    load_suite,
    run_cases,
)
from policy.iam.trace import EvaluationResult
from policy.iam.webidentity import load_web_identity_token, web_identity_context

_EPILOG = {
    "simulate": """examples:
  kubeiam policy simulate cases.json            # one JSON line per case
  cat cases.json | kubeiam policy simulate -
  kubeiam policy simulate case.json --web-identity-token token.jwt --jwks jwks.json

Input: a JSON array of cases, an object {"cases": [...]}, one case, or JSON lines.
A case (SPEC section 8): {"id", "identityPolicies", "resourcePolicy",
"permissionBoundaries", "sessionPolicy", "scps", "rcps",
"request": {"principal", "action", "resource", "resourceAccount", "context"}}.
Exit 1 when a case does not parse (its line carries "error").""",
    "explain": """examples:
  kubeiam policy explain case.json              # readable trace per case
  kubeiam policy explain cases.json -o json""",
    "test": """examples:
  kubeiam policy test security/*.yaml
  kubeiam policy test suite.yaml --junit-xml report.xml

Suites are YAML; the format is in docs/policy-tests.md. Exit 1 when a test fails.""",
    "lint": """examples:
  kubeiam policy lint deploy-policy.json
  kubeiam policy lint --kind scp scps/*.json
  kubeiam policy lint cases.json -o json        # every policy in a case file

Errors are what AWS rejects on write; warnings are risky but valid.
Exit 1 on errors.""",
}


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"kubeiam policy {command}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG[command],
    )
    if command in ("simulate", "explain"):
        parser.description = "Evaluate IAM cases with AWS's decision procedure."
        parser.add_argument("file", help="case file, or - for stdin")
        parser.add_argument(
            "--web-identity-token",
            metavar="FILE",
            help="projected service-account JWT (IRSA)",
        )
        parser.add_argument(
            "--jwks", metavar="FILE", help="JWKS to verify the token's signature"
        )
        parser.add_argument(
            "-o",
            "--output",
            choices=("text", "json"),
            default="json" if command == "simulate" else "text",
        )
    elif command == "test":
        parser.description = "Run YAML policy test suites."
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument(
            "--junit-xml", metavar="PATH", help="write a JUnit XML report"
        )
        parser.add_argument("-o", "--output", choices=("text", "json"), default="text")
    else:
        parser.description = "Validate policies and report findings."
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument(
            "--kind",
            choices=[k.value for k in PolicyKind],
            default="identity",
            help="policy type of plain policy files (default: identity)",
        )
        parser.add_argument("-o", "--output", choices=("text", "json"), default="text")
    return parser


def _read(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPolicyError(describe_parse_error(exc), policy=path) from exc


def _cases(text: str) -> list[object]:
    try:
        doc = load_policy_json(text)
    except InvalidPolicyError:
        lines = [line for line in text.splitlines() if line.strip()]
        return [load_policy_json(line) for line in lines]
    if isinstance(doc, list):
        return doc
    if isinstance(doc, Mapping) and isinstance(doc.get("cases"), list):
        return list(doc["cases"])
    return [doc]


def _render_trace(outcome: Outcome) -> str:
    if outcome.result is None:
        return f"== {outcome.id}: ERROR {outcome.error}\n"
    res: EvaluationResult = outcome.result
    trace = res.trace
    lines = [f"== {outcome.id}: {res.decision.value}", f"   why: {trace.reason}"]
    p = trace.principal
    lines.append(
        f"   principal: {p.arn} ({p.kind.value}, account {p.account}); "
        f"resource account "
        f"{trace.resource_account}{' (cross-account)' if trace.cross_account else ''}"
    )
    lines.append(
        "   policy types: "
        + ", ".join(
            f"{k}={v}" for k, v in trace.verdicts.items() if v != "NotApplicable"
        )
    )
    for st in trace.statements:
        mark = "APPLIES" if st.applies else f"no ({st.failed})"
        sid = f' Sid "{st.sid}"' if st.sid else ""
        decisive = " <- decisive" if st in trace.decisive else ""
        lines.append(
            f"   - {st.policy_type} {st.policy!r} #{st.index}{sid} {st.effect}: "
            f"{mark}{decisive}"
        )
        for c in st.conditions:
            missing = " [key missing]" if c.missing else ""
            lines.append(
                f"       {c.operator} {c.key} {list(c.policy_values)} vs "
                f"{list(c.request_values)}"
                f" -> {c.result}{missing}"
            )
    if trace.missing_keys:
        lines.append("   missing keys: " + ", ".join(trace.missing_keys))
    return "\n".join(lines) + "\n"


def _simulate(args: argparse.Namespace, *, readable: bool) -> int:
    try:
        cases = _cases(_read(args.file))
    except InvalidPolicyError as exc:
        if exc.policy:
            raise
        raise InvalidPolicyError(exc.detail, policy=args.file) from exc
    if args.web_identity_token:
        token = load_web_identity_token(
            args.web_identity_token, jwks_path=args.jwks, now=datetime.now(UTC)
        )
        extra = web_identity_context(token)
        sys.stderr.write(f"web identity token: {token.note}\n")
        cases = [_with_context(c, extra) for c in cases]
    outcomes = run_cases(cases, strict_expect=False)
    for o in outcomes:
        if readable and args.output == "text":
            sys.stdout.write(_render_trace(o))
        elif o.result is None:
            sys.stdout.write(json.dumps({"id": o.id, "error": o.error}) + "\n")
        else:
            line = {
                "id": o.id,
                "decision": o.result.decision.value,
                "explain": o.result.trace.to_json(),
            }
            sys.stdout.write(json.dumps(line) + "\n")
    return 1 if any(o.result is None for o in outcomes) else 0


def _with_context(case: object, extra: Mapping[str, object]) -> object:
    if not isinstance(case, Mapping) or not isinstance(case.get("request"), Mapping):
        return case
    req = case["request"]
    ctx = req.get("context") if isinstance(req.get("context"), Mapping) else {}
    return {**case, "request": {**req, "context": {**extra, **ctx}}}


def _test(args: argparse.Namespace) -> int:
    results: list[tuple[Suite, list[Outcome]]] = []
    # Suites that do not parse: reported, and in the JUnit file as an error,
    # while the others still run (a CI job then shows every problem at once).
    broken: list[tuple[str, str]] = []
    for path in args.files:
        try:
            suite = load_suite(path)
        except (InvalidPolicyError, OSError) as exc:
            message = (
                format_error(exc)
                if isinstance(exc, InvalidPolicyError)
                else f"{path}: cannot read: {exc.strerror or exc}"
            )
            sys.stderr.write(f"kubeiam policy test: {message}\n")
            broken.append((path, message))
            continue
        results.append((suite, run_cases(list(suite.cases))))
    total = sum(len(o) for _, o in results)
    failed = [(s, o) for s, outs in results for o in outs if not o.passed]
    if args.output == "json":
        report = [
            {
                "suite": s.name,
                "test": o.id,
                "passed": o.passed,
                "expect": o.expect.value if o.expect else None,
                "decision": o.result.decision.value if o.result else None,
                "error": o.error,
            }
            for s, outs in results
            for o in outs
        ]
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        for suite, o in failed:
            if o.result is None:
                sys.stdout.write(f"ERROR {suite.name} :: {o.id}: {o.error}\n")
            else:
                expect = o.expect.value if o.expect else "?"
                sys.stdout.write(
                    f"FAIL {suite.name} :: {o.id}: expected {expect}, "
                    f"got {o.result.decision.value}"
                    f" ({o.result.trace.reason})\n"
                )
        sys.stdout.write(
            f"{total - len(failed)} passed, {len(failed)} failed, {total} total\n"
        )
    if args.junit_xml:
        Path(args.junit_xml).write_text(
            junit_xml(results, broken=broken), encoding="utf-8"
        )
    return 1 if failed or broken else 0


def _lint_documents(path: str, kind: str) -> list[tuple[str, object, str]]:
    """(name, document, kind) for a policy file or every policy in a case file."""
    doc = load_policy_json(_read(path))
    if isinstance(doc, Mapping) and "Statement" in doc:
        return [(path, doc, kind)]
    cases = doc if isinstance(doc, list) else [doc]
    out: list[tuple[str, object, str]] = []
    fields = (
        ("identityPolicies", "identity"),
        ("permissionBoundaries", "boundary"),
        ("sessionPolicy", "session"),
        ("resourcePolicy", "resource"),
        ("scps", "scp"),
        ("rcps", "rcp"),
    )
    for i, case in enumerate(cases):
        if not isinstance(case, Mapping):
            continue
        cid = case.get("id", i)
        for field, fkind in fields:
            value = case.get(field)
            items = (
                value if isinstance(value, list) else [] if value is None else [value]
            )
            for j, item in enumerate(items):
                if isinstance(item, Mapping) and "policies" in item:
                    out.extend(
                        (f"{path}#{cid}/{field}/{j}/{k}", p, fkind)
                        for k, p in enumerate(item["policies"])
                    )
                elif (
                    isinstance(item, Mapping)
                    and "policy" in item
                    and "Statement" not in item
                ):
                    out.append(
                        (
                            f"{path}#{cid}/{field}/{item.get('name', j)}",
                            item["policy"],
                            fkind,
                        )
                    )
                else:
                    out.append((f"{path}#{cid}/{field}/{j}", item, fkind))
    return out


def _lint(args: argparse.Namespace) -> int:
    findings: list[tuple[str, Finding]] = []
    for path in args.files:
        try:
            docs = _lint_documents(path, args.kind)
        except (OSError, InvalidPolicyError) as exc:
            findings.append((path, _error("", str(exc))))
            continue
        for name, doc, kind in docs:
            try:
                policy = compile_policy(doc, name=name, kind=kind)
            except InvalidPolicyError as exc:
                findings.append((name, _error(exc.pointer, exc.detail)))
                continue
            findings.extend((name, w) for w in policy.warnings)
    if args.output == "json":
        data = [
            {
                "policy": n,
                "severity": _lint_level(f),
                "pointer": f.where,
                "message": f.message,
            }
            for n, f in findings
        ]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        for name, f in findings:
            where = f"{name}: {f.where}" if f.where else name
            sys.stdout.write(f"{_lint_level(f)}: {where}: {f.message}\n")
        errors = sum(1 for _, f in findings if _lint_level(f) == "error")
        sys.stdout.write(f"{errors} error(s), {len(findings) - errors} warning(s)\n")
    return 1 if any(_lint_level(f) == "error" for _, f in findings) else 0


def _error(pointer: str, message: str) -> Finding:
    """A policy ``lint`` cannot compile: an error, as severe as lint gets."""
    return Finding(Severity.HIGH, "invalid", pointer, message)


def _lint_level(finding: Finding) -> str:
    """``error`` (the policy is refused) or ``warning``, as ``lint`` prints it."""
    return "error" if finding.severity.at_least(Severity.HIGH) else "warning"


def main(argv: Sequence[str]) -> int:
    """Run ``kubeiam policy simulate|explain|test|lint``.

    Args:
        argv: The subcommand name followed by its arguments.

    Returns:
        The exit code: 0 ok, 1 failure or invalid input, 2 usage error.
    """
    if not argv or argv[0] not in _EPILOG:
        sys.stderr.write("usage: kubeiam policy {simulate,explain,test,lint} ...\n")
        return 2
    command = argv[0]
    try:
        args = _parser(command).parse_args(list(argv[1:]))
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        if command in ("simulate", "explain"):
            return _simulate(args, readable=command == "explain")
        if command == "test":
            return _test(args)
        return _lint(args)
    except InvalidPolicyError as exc:
        sys.stderr.write(f"kubeiam policy {command}: {format_error(exc)}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"kubeiam policy {command}: {exc}\n")
        return 1
