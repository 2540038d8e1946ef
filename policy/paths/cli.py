"""``kubeiam policy paths``: access paths across IAM and Kubernetes.

The shell around :mod:`policy.paths.query`: reads the account JSON, SCPs, mappings,
access entries, Kubernetes objects (RBAC, ServiceAccounts), Pod Identity
associations and ECS task definitions; builds the graph; answers one query;
prints text, JSON, DOT or SVG (Graphviz's ``dot``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from authenticator.errors import ConfigError, KubeIAMError
from authenticator.mapping import MappingSet, mapping_for_arn, parse_mapping_text
from authenticator.yamlio import YAMLError, load_yaml_documents
from policy.errors import InvalidPolicyError, describe_parse_error
from policy.iam.accounts import Account, parse_account_authorization_details, parse_scps
from policy.paths.graph import AccessGraph, PathInputs
from policy.paths.model import Path as AccessPath
from policy.paths.model import parse_target
from policy.paths.query import (
    find_findings,
    reachable,
    resolve_source,
    shortest_path,
    who_can_reach,
)
from policy.paths.render import render_dot, render_findings, render_paths
from policy.rbac.load import parse_rbac_documents
from policy.tiers.model import KubeMapper
from policy.tiers.workloads import (
    EKSWorkload,
    parse_access_entries,
    parse_pod_identity_association,
    parse_service_account,
    parse_task_definition,
)

__all__ = ["build_inputs", "build_mapper", "main"]

_EPILOG = """targets (--to, --who-can-reach):
  cluster-admin | aws-admin | arn:aws:iam::111122223333:role/admin | role/NAME |
  user/NAME | aws:s3:GetObject@arn:aws:s3:::bucket/key | k8s:get:secrets@prod |
  k8s:create:pods/exec@prod | group:system:masters | sa:prod/app | k8s-user:NAME

examples:
  kubeiam policy paths --account auth.json --mapping aws-auth.yaml --k8s rbac/ \\
      --from role/developer --to k8s:get:secrets@prod
  kubeiam policy paths --account auth.json --k8s k8s/ --from sa:prod/app --reachable
  kubeiam policy paths --account auth.json --mapping aws-auth.yaml --k8s rbac/ \\
      --who-can-reach cluster-admin -o json
  kubeiam policy paths --account auth.json --mapping aws-auth.yaml --k8s rbac/ \\
      --findings
  kubeiam policy paths ... --from role/developer --to cluster-admin -o svg \\
      --write path.svg

exit codes: 0 answered (for --to: a path exists), 1 error or (--to) no path,
2 usage.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubeiam policy paths",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Find access paths across AWS IAM and Kubernetes: role "
        "assumption, PassRole, credential and policy editing, the IAM-to-Kubernetes "
        "mapping, RBAC escalation, IRSA and Pod Identity. Every step names the IAM "
        "statement or RBAC binding that allows it.",
        epilog=_EPILOG,
    )
    add = p.add_argument
    add(
        "--account",
        action="append",
        type=Path,
        default=[],
        metavar="AUTH.json",
        help="aws iam get-account-authorization-details output (repeatable)",
    )
    add("--scps", type=Path, metavar="SCPS.json", help="SCPs of the accounts")
    add(
        "--mapping",
        action="append",
        type=Path,
        default=[],
        help="aws-auth ConfigMap or mapping YAML (repeatable)",
    )
    add(
        "--access-entries",
        type=Path,
        metavar="ENTRIES.json",
        help="EKS access entries with associatedAccessPolicies",
    )
    add(
        "--k8s",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="Kubernetes YAML files or directories: RBAC objects and "
        "ServiceAccounts (IRSA annotations) (repeatable)",
    )
    add(
        "--pod-identity-association",
        action="append",
        type=Path,
        default=[],
        metavar="PIA.json",
        help="(repeatable)",
    )
    add(
        "--task-definition",
        action="append",
        type=Path,
        default=[],
        metavar="TD.json",
        help="ECS task definition (repeatable)",
    )
    add(
        "--cluster-arn",
        action="append",
        default=[],
        help="EKS cluster ARN for the eks:* edges (repeatable; default: any)",
    )
    add("--from", dest="source", metavar="PRINCIPAL")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--to", metavar="TARGET")
    q.add_argument("--reachable", action="store_true")
    q.add_argument("--who-can-reach", metavar="TARGET")
    q.add_argument("--findings", action="store_true")
    add("-o", "--output", choices=("text", "json", "dot", "svg"), default="text")
    add("--write", type=Path, metavar="FILE", help="write the output to FILE")
    return p


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPolicyError(describe_parse_error(exc), policy=str(path)) from exc


def _json(path: Path) -> object:
    try:
        return json.loads(_text(path))
    except (ValueError, RecursionError) as exc:
        raise InvalidPolicyError(
            f"not valid JSON: {describe_parse_error(exc)}", policy=str(path)
        ) from exc


def _yaml_files(paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(
                f for f in path.rglob("*") if f.suffix in (".yaml", ".yml", ".json")
            )
        else:
            out.append(path)
    return out


def build_mapper(texts: Sequence[tuple[str, str]]) -> KubeMapper | None:
    """An IAM ARN -> (username, groups) function over mapping files.

    Args:
        texts: ``(where, YAML text)`` of aws-auth ConfigMaps or mapping files.

    Returns:
        The mapper, or None without mappings.

    Raises:
        ConfigError: A mapping file is invalid.
    """
    if not texts:
        return None
    sources: list[MappingSet] = [
        parse_mapping_text(text, source="file", where=where) for where, text in texts
    ]

    def mapper(arn: str) -> tuple[str, tuple[str, ...]] | None:
        return mapping_for_arn(
            arn, sources, session_name="kubeiam-paths", user_id="AIDAKUBEIAMPATHS"
        )

    return mapper


def build_inputs(
    *,
    accounts: Sequence[Account] = (),
    k8s_documents: Sequence[tuple[str, object]] = (),
    mapper: KubeMapper | None = None,
    access_entries: object = None,
    pod_identity: Sequence[object] = (),
    task_definitions: Sequence[object] = (),
    cluster_arns: Sequence[str] = (),
) -> PathInputs:
    """Turn decoded documents into graph inputs.

    Args:
        accounts: Parsed accounts.
        k8s_documents: ``(source, document)`` Kubernetes objects (RBAC kinds and
            ServiceAccounts are used, others skipped).
        mapper: The IAM -> Kubernetes mapper.
        access_entries: Decoded access entries JSON, or None.
        pod_identity: Decoded Pod Identity associations.
        task_definitions: Decoded ECS task definitions.
        cluster_arns: EKS cluster ARNs.

    Returns:
        The inputs.

    Raises:
        InvalidPolicyError: A document is invalid.
    """
    rbac = parse_rbac_documents(k8s_documents).policy()
    workloads: list[EKSWorkload] = [
        parse_service_account(doc)
        for _, doc in k8s_documents
        if isinstance(doc, dict) and doc.get("kind") == "ServiceAccount"
    ]
    return PathInputs(
        accounts=accounts,
        rbac=rbac,
        mapper=mapper,
        access_entries=(
            parse_access_entries(access_entries) if access_entries is not None else ()
        ),
        workloads=workloads,
        pod_identity=[parse_pod_identity_association(d) for d in pod_identity],
        tasks=[parse_task_definition(d) for d in task_definitions],
        cluster_arns=cluster_arns,
    )


def _inputs(args: argparse.Namespace) -> PathInputs:
    scps = parse_scps(_json(args.scps)) if args.scps else []
    accounts = [
        parse_account_authorization_details(_json(p), scps=scps) for p in args.account
    ]
    docs: list[tuple[str, object]] = []
    for path in _yaml_files(args.k8s):
        try:
            loaded = load_yaml_documents(_text(path))
        except YAMLError as exc:
            raise InvalidPolicyError(str(exc), policy=str(path)) from exc
        docs += [(f"{path}[{i}]", d) for i, d in enumerate(loaded) if d is not None]
    return build_inputs(
        accounts=accounts,
        k8s_documents=docs,
        mapper=build_mapper([(str(p), _text(p)) for p in args.mapping]),
        access_entries=_json(args.access_entries) if args.access_entries else None,
        pod_identity=[_json(p) for p in args.pod_identity_association],
        task_definitions=[_json(p) for p in args.task_definition],
        cluster_arns=args.cluster_arn,
    )


def render_svg(dot: str) -> str | None:
    """Render DOT text as SVG with Graphviz's ``dot``.

    Returns:
        The SVG text, or None when ``dot`` is not installed.

    Raises:
        ConfigError: ``dot`` failed.
    """
    exe = shutil.which("dot")
    if exe is None:
        return None
    done = subprocess.run(  # noqa: S603 - fixed argv, DOT text on stdin
        [exe, "-Tsvg"],
        input=dot,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise ConfigError(f"dot failed: {done.stderr.strip()[:400]}")
    return done.stdout


def _run(args: argparse.Namespace) -> tuple[str, int]:
    graph = AccessGraph(_inputs(args))
    known = frozenset(graph.nodes)
    paths: list[AccessPath] = []
    if args.findings:
        findings = find_findings(graph)
        paths = [f.path for f in findings]
        if args.output == "text":
            return render_findings(graph, findings), 0
        if args.output == "json":
            body = {"findings": [f.to_json() for f in findings]}
            return json.dumps(body, indent=2) + "\n", 0
        title = "findings"
    elif args.who_can_reach:
        target = parse_target(args.who_can_reach, known=known)
        paths = who_can_reach(graph, target)
        title = f"who can reach {target.spec}"
    else:
        if not args.source:
            raise ConfigError("--to and --reachable need --from PRINCIPAL")
        source = resolve_source(graph, args.source)
        if args.reachable:
            paths = reachable(graph, source)
            title = f"reachable from {args.source}"
        else:
            target = parse_target(args.to, known=known)
            found = shortest_path(graph, source, target)
            paths = [found] if found else []
            title = f"paths from {args.source} to {target.spec}"
    code = 1 if args.to and not paths else 0
    if args.output == "json":
        result: dict[str, object] = {
            "query": title,
            "paths": [p.to_json() for p in paths],
            "nodes": {n: graph.node(n).to_json() for p in paths for n in p.nodes},
        }
        return json.dumps(result, indent=2) + "\n", code
    if args.output in ("dot", "svg"):
        dot = render_dot(graph, paths, title=title)
        if args.output == "dot":
            return dot, code
        svg = render_svg(dot)
        if svg is None:
            raise ConfigError("-o svg needs Graphviz's dot (apt-get install graphviz)")
        return svg, code
    return render_paths(graph, paths, title=title), code


def main(argv: list[str]) -> int:
    """Run ``kubeiam policy paths``.

    Args:
        argv: Arguments, starting with ``paths``.

    Returns:
        The exit code.
    """
    args = _parser().parse_args(argv[1:] if argv and argv[0] == "paths" else argv)
    try:
        out, code = _run(args)
    except (KubeIAMError, OSError) as exc:
        sys.stderr.write(f"kubeiam policy paths: {exc}\n")
        return 1
    if args.write:
        try:
            args.write.write_text(out, encoding="utf-8")
        except OSError as exc:
            sys.stderr.write(
                f"kubeiam policy paths: cannot write {args.write}: {exc}\n"
            )
            return 1
    else:
        sys.stdout.write(out)
    return code
