"""``kubeiam policy tiers``: the cluster, task and housekeeping tiers of a workload.

The shell around :mod:`policy.tiers`: reads the account JSON (``aws iam
get-account-authorization-details``), optional SCPs, the workload (an ECS task
definition, or an EKS service account with an optional Pod Identity
association) and optional aws-auth mappings, then prints a readable report or
JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from authenticator.arn import canonicalize_arn, parse_arn
from authenticator.errors import ConfigError, InvalidARNError
from authenticator.identity import Identity
from authenticator.mapping import (
    MappingOutcome,
    MappingSet,
    evaluate_mapping,
    parse_mapping_text,
)
from policy.accounts import parse_account_authorization_details, parse_scps
from policy.errors import InvalidPolicyError, describe_parse_error
from policy.tiers import (
    KubeMapper,
    Severity,
    TierReport,
    evaluate_ecs_tiers,
    evaluate_eks_tiers,
)
from policy.workloads import (
    parse_access_entries,
    parse_pod_identity_association,
    parse_service_account,
    parse_task_definition,
)

_EPILOG = """examples:
  aws iam get-account-authorization-details > auth.json
  aws ecs describe-task-definition --task-definition web > td.json
  kubeiam policy tiers --task-definition td.json --account auth.json \\
      --cluster-arn arn:aws:ecs:us-east-1:111122223333:cluster/prod
  kubeiam policy tiers --eks-service-account sa.yaml --account auth.json \\
      --mapping aws-auth.yaml \\
      --cluster-arn arn:aws:eks:us-east-1:111122223333:cluster/prod
  kubeiam policy tiers --eks-service-account sa.yaml \\
      --pod-identity-association pia.json --account auth.json --scps scps.json \\
      -o json --fail-on high

exit codes: 0 report printed (no finding at or above --fail-on), 1 error or
findings at or above --fail-on, 2 usage.
"""
_TITLES = {
    "cluster": "CLUSTER TIER: who operates the workload",
    "task": "TASK TIER: what the workload's own role may do",
    "housekeeping": "HOUSEKEEPING TIER: what AWS does for the workload",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubeiam policy tiers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Report the cluster, task and housekeeping permission tiers of an "
        "ECS task definition or an EKS workload, with findings.",
        epilog=_EPILOG,
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--task-definition", type=Path, metavar="TD.json")
    what.add_argument("--eks-service-account", type=Path, metavar="SA.yaml")
    p.add_argument("--pod-identity-association", type=Path, metavar="PIA.json")
    p.add_argument("--account", type=Path, required=True, metavar="AUTH.json")
    p.add_argument("--scps", type=Path, metavar="SCPS.json")
    p.add_argument("--cluster-arn", default="")
    p.add_argument(
        "--service", default="", help="ECS service name (default: the family)"
    )
    p.add_argument(
        "--kms-key",
        action="append",
        default=[],
        metavar="ARN",
        help="CMK that encrypts the task's secrets (repeatable)",
    )
    p.add_argument(
        "--mapping",
        action="append",
        type=Path,
        default=[],
        help="aws-auth ConfigMap or mapping YAML (EKS; repeatable)",
    )
    p.add_argument(
        "--access-entries",
        type=Path,
        metavar="ENTRIES.json",
        help="EKS access entries (describe-access-entry outputs, with "
        "associatedAccessPolicies); they win over --mapping",
    )
    p.add_argument("--fail-on", choices=[s.value for s in Severity], default=None)
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    return p


def _read(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPolicyError(describe_parse_error(exc), policy=str(path)) from exc
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        raise InvalidPolicyError(
            f"not valid JSON/YAML: {describe_parse_error(exc)}", policy=str(path)
        ) from exc


def _mapper(paths: Sequence[Path]) -> KubeMapper | None:
    if not paths:
        return None
    sources: list[MappingSet] = [
        parse_mapping_text(p.read_text(encoding="utf-8"), source="file", where=str(p))
        for p in paths
    ]

    def mapper(arn: str) -> tuple[str, tuple[str, ...]] | None:
        try:
            parsed = parse_arn(arn)
            canonical = canonicalize_arn(arn)
        except InvalidARNError:
            return None
        session = "kubeiam" if parsed.resource.startswith("role/") else ""
        identity = Identity(
            arn, canonical, parsed.account, "AIDAKUBEIAMTIERS", session, ""
        )
        result = evaluate_mapping(identity, sources)
        if result.user is not None:
            return result.user.username, result.user.groups
        if result.outcome is MappingOutcome.TEMPLATE_ERROR and result.entry is not None:
            # e.g. {{EC2PrivateDNSName}} for node roles: show the templates as written.
            return result.entry.username, result.entry.groups
        return None

    return mapper


def _report(args: argparse.Namespace) -> TierReport:
    scps = parse_scps(_read(args.scps)) if args.scps else []
    account = parse_account_authorization_details(_read(args.account), scps=scps)
    if args.task_definition:
        task = parse_task_definition(_read(args.task_definition))
        return evaluate_ecs_tiers(
            account,
            task,
            cluster_arn=args.cluster_arn,
            service=args.service,
            kms_keys=args.kms_key,
        )
    workload = parse_service_account(_read(args.eks_service_account))
    if args.pod_identity_association:
        pia = parse_pod_identity_association(_read(args.pod_identity_association))
        workload = dataclasses.replace(workload, pod_identity=pia)
    if not workload.irsa_role_arn and workload.pod_identity is None:
        raise ConfigError(
            "the service account has no eks.amazonaws.com/role-arn annotation; "
            "give --pod-identity-association"
        )
    entries = []
    if args.access_entries:
        entries = parse_access_entries(_read(args.access_entries))
    return evaluate_eks_tiers(
        account,
        workload,
        cluster_arn=args.cluster_arn,
        mapper=_mapper(args.mapping),
        access_entries=entries,
    )


def render_report(report: TierReport) -> str:
    """The human report.

    Args:
        report: The tier report.

    Returns:
        Text with one section per tier and the findings, most severe first.
    """
    w = report.workload
    lines = [f"kubeiam tiers: {w['type']}"]
    lines += [f"  {k}: {v}" for k, v in w.items() if k != "type" and v]
    lines += ["", _TITLES["cluster"]]
    if not report.cluster:
        lines.append("  (no principal in the account data)")
    for row in report.cluster:
        name = row.principal.split(":", 5)[-1]
        acts = " ".join(a.split(":", 1)[1] for a in row.actions) or "-"
        k8s = ""
        if row.kubernetes_user:
            k8s = f"  k8s ({row.kubernetes_via}): {row.kubernetes_user} "
            k8s += str(list(row.kubernetes_groups))
            if row.access_policies:
                k8s += " + " + ", ".join(row.access_policies)
        lines.append(f"  {name:32} {acts}{k8s}")
    for tier in ("task", "housekeeping"):
        lines += ["", _TITLES[tier]]
        checks = [c for c in report.checks if c.tier == tier]
        if not checks:
            lines.append("  (nothing to check)")
        for c in checks:
            mark = "ok  " if c.allowed else "NO  "
            if tier == "task":
                mark = "yes " if c.allowed else "no  "
            lines.append(f"  {mark}{c.action} on {c.resource}  ({c.purpose})")
    findings = report.sorted_findings()
    counts = ", ".join(
        f"{n} {s.value}"
        for s in Severity
        if (n := sum(f.severity is s for f in findings))
    )
    lines += ["", f"FINDINGS ({len(findings)}{': ' + counts if counts else ''})"]
    for f in findings:
        lines.append(f"  [{f.severity.value}] {f.id} {f.title}")
        if f.detail:
            lines.append(f"      {f.detail}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Run ``kubeiam policy tiers``.

    Args:
        argv: ``["tiers", *args]``.

    Returns:
        0 ok, 1 error or findings at or above ``--fail-on``, 2 usage.
    """
    args = _parser().parse_args(argv[1:] if argv and argv[0] == "tiers" else argv)
    try:
        report = _report(args)
    except (InvalidPolicyError, ConfigError, InvalidARNError, OSError) as exc:
        sys.stderr.write(f"kubeiam policy tiers: {exc}\n")
        return 1
    if args.output == "json":
        print(json.dumps(report.to_json(), indent=2))
    else:
        sys.stdout.write(render_report(report))
    if args.fail_on:
        threshold = Severity(args.fail_on).rank
        if any(f.severity.rank <= threshold for f in report.findings):
            return 1
    return 0
