"""``kubeiam policy tiers``: the cluster, task and housekeeping tiers of a workload.

The shell around :mod:`policy.tiers.report`: reads the account JSON (``aws iam
get-account-authorization-details``), optional SCPs, the workload (an ECS task
definition, or an EKS service account with an optional Pod Identity
association), optional aws-auth mappings, resource policies, describe-services
output and a baseline, then prints a readable report or JSON.

Exit codes are made for CI: 0 no unsuppressed finding at or above
``--fail-on``, 1 input error (one line on stderr, nothing reported), 2 usage,
3 findings at or above ``--fail-on`` (so a CI gate tells a broken input from a
finding; nothing is
reported then).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from authenticator.errors import ConfigError, InvalidARNError
from authenticator.findings import Severity
from authenticator.mapping import MappingSet, mapping_for_arn, parse_mapping_text
from authenticator.yamlio import YAMLError, dump_yaml, load_yaml
from policy.errors import InvalidPolicyError, describe_parse_error
from policy.iam.accounts import parse_account_authorization_details, parse_scps
from policy.iam.statement import CompiledPolicy
from policy.rbac.load import load_rbac_paths
from policy.tiers.baseline import (
    apply_baseline,
    baseline_document,
    parse_baseline,
    resource_policy_document,
)
from policy.tiers.model import KubeMapper, TierReport
from policy.tiers.report import evaluate_ecs_tiers, evaluate_eks_tiers
from policy.tiers.workloads import (
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
  # cross-account image and key: give their own policies
  aws ecr get-repository-policy --registry-id 444455556666 \\
      --repository-name base > repo.json
  kubeiam policy tiers --task-definition td.json --account auth.json \\
      --resource-policy arn:aws:ecr:eu-west-1:444455556666:repository/base=repo.json
  # CI: accept today's findings, fail on new high ones
  kubeiam policy tiers ... --write-baseline tiers-baseline.yaml
  kubeiam policy tiers ... --baseline tiers-baseline.yaml --fail-on high

exit codes: 0 no unsuppressed finding at or above --fail-on, 1 input error,
2 usage, 3 findings at or above --fail-on.
"""
# Exit status when findings reach --fail-on (1 is an input error, 2 usage).
FINDINGS_EXIT = 3
_TITLES = {
    "cluster": "CLUSTER TIER: who operates the workload",
    "task": "TASK TIER: what the workload's own role may do",
    "housekeeping": "HOUSEKEEPING TIER: what AWS does for the workload",
    "application": "APPLICATION TIER: what the workload's role can reach",
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
        metavar="ARN[=SECRET]",
        help="CMK that encrypts the task's secrets; KEY_ARN=SECRET for the one "
        "secret or parameter (valueFrom) it encrypts (repeatable)",
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
    p.add_argument(
        "--resource-policy",
        action="append",
        default=[],
        metavar="[ARN=]FILE",
        help="a resource's own policy: aws ecr get-repository-policy, kms "
        "get-key-policy or secretsmanager get-resource-policy output, or the bare "
        "document (ARN= may be left out when the output names it; repeatable)",
    )
    p.add_argument(
        "--services",
        type=Path,
        metavar="SERVICES.json",
        help="aws ecs describe-services output: the service name, cluster and "
        "ECS Exec setting",
    )
    p.add_argument(
        "--node-role",
        action="append",
        default=[],
        metavar="ARN",
        help="EKS node group role (repeatable; default: roles EC2 may assume, "
        "asked only about the Pod Identity agent)",
    )
    p.add_argument(
        "--rbac",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="EKS: RBAC manifests (files or directories, e.g. kubectl get "
        "roles,rolebindings,clusterroles,clusterrolebindings -A -o yaml): who may "
        "run pods as, or mint tokens for, the service account",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="BASELINE.yaml",
        help="accepted findings (suppressions: id, subject, reason)",
    )
    p.add_argument(
        "--write-baseline",
        type=Path,
        metavar="BASELINE.yaml",
        help="write a baseline accepting every current finding",
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
        return json.loads(text) if path.suffix == ".json" else load_yaml(text)
    except YAMLError as exc:
        raise InvalidPolicyError(str(exc), policy=str(path)) from exc
    except ValueError as exc:
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
        return mapping_for_arn(
            arn, sources, session_name="kubeiam", user_id="AIDAKUBEIAMTIERS"
        )

    return mapper


def _resource_policies(specs: Sequence[str]) -> dict[str, CompiledPolicy]:
    out: dict[str, CompiledPolicy] = {}
    for spec in specs:
        arn, sep, file = spec.rpartition("=")
        path = Path(file if sep else spec)
        named, compiled = resource_policy_document(_read(path), str(path))
        key = arn or named
        if not key:
            raise ConfigError(
                f"{path}: the output names no resource; give --resource-policy ARN=FILE"
            )
        if not key.startswith("arn:"):
            raise ConfigError(f"{key!r} is not an ARN (--resource-policy ARN=FILE)")
        out[key] = compiled
        if ":key/" in key:
            out[key.rsplit("/", 1)[-1]] = compiled
    return out


def _service(path: Path, cluster_arn: str, service: str) -> tuple[str, str, bool]:
    doc = _read(path)
    items = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise InvalidPolicyError(
            "needs describe-services output (a services list)", policy=str(path)
        )
    chosen = next(
        (
            s
            for s in items
            if isinstance(s, dict) and (not service or s.get("serviceName") == service)
        ),
        None,
    )
    if chosen is None:
        raise InvalidPolicyError(f"no service named {service!r}", policy=str(path))
    name = str(chosen.get("serviceName") or service)
    cluster = cluster_arn or str(chosen.get("clusterArn") or "")
    return cluster, name, bool(chosen.get("enableExecuteCommand"))


def _report(args: argparse.Namespace) -> TierReport:
    scps = parse_scps(_read(args.scps)) if args.scps else []
    account = parse_account_authorization_details(_read(args.account), scps=scps)
    policies = _resource_policies(args.resource_policy)
    if args.task_definition:
        task = parse_task_definition(_read(args.task_definition))
        cluster, service, exec_on = args.cluster_arn, args.service, False
        if args.services:
            cluster, service, exec_on = _service(args.services, cluster, service)
        return evaluate_ecs_tiers(
            account,
            task,
            cluster_arn=cluster,
            service=service,
            kms_keys=args.kms_key,
            resource_policies=policies,
            exec_enabled=exec_on,
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
        node_roles=args.node_role,
        rbac=load_rbac_paths(list(args.rbac)).policy() if args.rbac else None,
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
            if c.depends:
                mark = "??  "
            lines.append(f"  {mark}{c.action} on {c.resource}  ({c.purpose})")
        if tier == "task":
            lines += ["", _TITLES["application"]]
            if not report.application:
                lines.append("  (no Allow statement)")
            for g in report.application:
                flags = f"  [{', '.join(g.flags)}]" if g.flags else ""
                lines.append(f"  {g.service:16} {g.wording}{flags}")
                lines.append(f"  {'':16} by {g.granted_by}")
    findings = report.sorted_findings()
    counts = ", ".join(
        f"{n} {s.value}"
        for s in Severity
        if (n := sum(f.severity is s for f in findings))
    )
    lines += ["", f"FINDINGS ({len(findings)}{': ' + counts if counts else ''})"]
    for f in findings:
        lines.append(f"  [{f.severity.value}] {f.code} {f.message}")
        if f.detail:
            lines.append(f"      {f.detail}")
        if f.granted_by:
            lines.append(f"      granted by: {f.granted_by}")
        if f.denied_by:
            lines.append(f"      denied by: {f.denied_by}")
        if f.remediation:
            lines.append(f"      fix: {f.remediation}")
    if report.suppressed:
        lines += ["", f"SUPPRESSED BY THE BASELINE ({len(report.suppressed)})"]
        for f, why in report.suppressed:
            lines.append(f"  [{f.severity.value}] {f.code} {f.message}  ({why})")
    for fid, subject in report.unused_suppressions:
        lines.append(f"  baseline entry {fid} {subject} matches nothing")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Run ``kubeiam policy tiers``.

    Args:
        argv: ``["tiers", *args]``.

    Returns:
        0 no unsuppressed finding at or above ``--fail-on``, 1 input error,
        2 usage, 3 findings at or above ``--fail-on``.
    """
    args = _parser().parse_args(argv[1:] if argv and argv[0] == "tiers" else argv)
    try:
        entries = (
            parse_baseline(_read(args.baseline), str(args.baseline))
            if args.baseline
            else []
        )
        report = _report(args)
    except (InvalidPolicyError, ConfigError, InvalidARNError, OSError) as exc:
        sys.stderr.write(f"kubeiam policy tiers: {exc}\n")
        return 1
    if args.write_baseline:
        doc = baseline_document(report, "accepted when the baseline was written")
        text = (
            json.dumps(doc, indent=2) + "\n"
            if args.write_baseline.suffix == ".json"
            else dump_yaml(doc)
        )
        try:
            args.write_baseline.write_text(text, encoding="utf-8")
        except OSError as exc:
            sys.stderr.write(f"kubeiam policy tiers: {exc}\n")
            return 1
    apply_baseline(report, entries)
    if args.output == "json":
        print(json.dumps(report.to_json(), indent=2))
    else:
        sys.stdout.write(render_report(report))
    if args.fail_on:
        threshold = Severity(args.fail_on)
        if any(f.severity.at_least(threshold) for f in report.findings):
            return FINDINGS_EXIT
    return 0
