"""``kubeiam policy can-i | rbac | who-can | covers``: Kubernetes RBAC from files.

The shell around :mod:`policy.rbac.evaluator`: reads RBAC objects (files or
directories), optional aws-auth mappings, and prints decisions. ``--as-arn``
walks from an IAM identity through the mapping (the ``authenticator.mapping``
core) to a Kubernetes user, then to an RBAC decision.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from authenticator.arn import canonicalize_arn, parse_arn
from authenticator.errors import ConfigError, KubeIAMError
from authenticator.identity import Identity
from authenticator.mapping import evaluate_mapping, parse_mapping_text
from authenticator.yamlio import YAMLError, load_yaml_documents
from policy.errors import InvalidPolicyError, describe_parse_error
from policy.rbac.authz import decide
from policy.rbac.builtin import KUBERNETES_VERSION, with_builtin
from policy.rbac.covers import compact_rules, covers
from policy.rbac.evaluator import RBACPolicy, rules_for, who_can
from policy.rbac.load import load_rbac_paths
from policy.rbac.model import (
    SERVICE_ACCOUNT_PREFIX,
    Attributes,
    NonResourceAttributes,
    PolicyRule,
    ResourceAttributes,
    Subject,
    UserInfo,
    service_account_groups,
)
from policy.rbac.sar import parse_sar_spec

# Well-known resources -> (plural, API group), standing in for kubectl's discovery.
_KNOWN: dict[str, tuple[str, str]] = {}
for _group, _names in {
    "": "pods:po services:svc configmaps:cm secrets serviceaccounts:sa namespaces:ns "
    "nodes:no persistentvolumes:pv persistentvolumeclaims:pvc endpoints:ep events:ev "
    "replicationcontrollers:rc resourcequotas:quota limitranges:limits",
    "apps": "deployments:deploy replicasets:rs statefulsets:sts daemonsets:ds "
    "controllerrevisions",
    "batch": "jobs cronjobs:cj",
    "autoscaling": "horizontalpodautoscalers:hpa",
    "policy": "poddisruptionbudgets:pdb",
    "networking.k8s.io": "ingresses:ing networkpolicies:netpol ingressclasses",
    "rbac.authorization.k8s.io": "roles rolebindings clusterroles clusterrolebindings",
    "storage.k8s.io": "storageclasses:sc csidrivers csinodes volumeattachments",
    "apiextensions.k8s.io": "customresourcedefinitions:crd:crds",
    "certificates.k8s.io": "certificatesigningrequests:csr",
    "coordination.k8s.io": "leases",
    "authorization.k8s.io": "selfsubjectaccessreviews selfsubjectrulesreviews "
    "subjectaccessreviews localsubjectaccessreviews",
    "authentication.k8s.io": "tokenreviews selfsubjectreviews",
}.items():
    for _entry in _names.split():
        _plural, *_aliases = _entry.split(":")
        for _alias in (_plural, *_aliases):
            _KNOWN[_alias] = (_plural, _group)
# Cluster-scoped resources: their requests carry namespace "" whatever -n says.
_CLUSTER_SCOPED = frozenset(
    {
        "namespaces",
        "nodes",
        "persistentvolumes",
        "clusterroles",
        "clusterrolebindings",
        "storageclasses",
        "csidrivers",
        "csinodes",
        "volumeattachments",
        "customresourcedefinitions",
        "certificatesigningrequests",
        "ingressclasses",
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
        "subjectaccessreviews",
        "tokenreviews",
        "selfsubjectreviews",
    }
)
# can-i's exit code for an error (1 is "no", 2 a usage error, as argparse's).
CAN_I_ERROR = 3
_MASTERS = Subject("Group", "system:masters", "", "rbac.authorization.k8s.io")
_EPILOG = """examples:
  kubeiam policy can-i --rbac rbac/ --as alice get pods -n dev
  kubeiam policy can-i --rbac rbac/ --as carol --as-group dev-team \\
      update deployments/scale -n dev
  kubeiam policy can-i --rbac rbac/ --as-arn arn:aws:iam::111122223333:role/Dev \\
      --mapping aws-auth.yaml create rolebindings.rbac.authorization.k8s.io -n dev
  kubeiam policy can-i --rbac rbac/ --as dave get /healthz
  kubeiam policy can-i --rbac rbac/ --as alice --list -n dev
  kubeiam policy rbac --rbac rbac/ --requests reviews.json -o json
  kubeiam policy who-can --rbac rbac/ delete secrets -n prod
  kubeiam policy covers --rbac rbac/ clusterrole/admin clusterrole/edit
"""


def _parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"kubeiam policy {command}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
        description={
            "can-i": "Answer `kubectl auth can-i` from RBAC files: yes/no and why; "
            "exit 0 yes, 1 no, 2 usage error, 3 error (unreadable or bad input).",
            "rbac": "Decide SubjectAccessReview specs (user, groups, "
            "resourceAttributes | nonResourceAttributes) in batch.",
            "who-can": "List the subjects whose bindings allow VERB on RESOURCE.",
            "covers": "Escalation check: does role A hold every rule of role B?",
        }[command],
    )
    p.add_argument(
        "--rbac",
        action="append",
        required=True,
        type=Path,
        metavar="PATH",
        help="RBAC YAML/JSON file or directory (repeatable)",
    )
    p.add_argument(
        "--no-builtin-roles",
        action="store_true",
        help="use only the given files, without the roles and bindings every "
        f"cluster has (view, edit, admin, cluster-admin, system:*; Kubernetes "
        f"{KUBERNETES_VERSION})",
    )
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    return p


def _add_request_args(p: argparse.ArgumentParser, *, optional: bool = False) -> None:
    nargs = "?" if optional else None
    p.add_argument("verb", nargs=nargs, default="")
    p.add_argument(
        "resource",
        nargs=nargs,
        default="",
        help="TYPE[.group][/subresource] or a /non-resource/url",
    )
    p.add_argument("name", nargs="?", default="")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--subresource", default="")


def parse_resource_arg(
    verb: str, resource: str, name: str, namespace: str, subresource: str = ""
) -> tuple[Attributes, str]:
    """Turn kubectl-style arguments into request attributes.

    Args:
        verb: The verb.
        resource: ``TYPE[.group][/subresource]`` or a path starting with ``/``.
        name: The object name, or ``""``.
        namespace: The namespace (``""`` = all namespaces).
        subresource: A subresource given separately.

    Returns:
        The attributes and a warning (empty when the type is well known).
    """
    if resource.startswith("/"):
        return NonResourceAttributes(verb, resource), ""
    type_part, _, sub = resource.partition("/")
    plural, _, group = type_part.partition(".")
    warning = ""
    if not group:
        if plural in _KNOWN:
            plural, group = _KNOWN[plural]
        elif plural != "*":
            warning = f"Warning: the server doesn't have a resource type '{plural}'"
    if plural in _CLUSTER_SCOPED:
        namespace = ""
    attrs = ResourceAttributes(verb, plural, group, namespace, sub or subresource, name)
    return attrs, warning


def _identity_from_arn(arn: str) -> Identity:
    parsed = parse_arn(arn)
    canonical = canonicalize_arn(arn)
    session = ""
    if parsed.service == "sts" and parsed.resource.startswith("assumed-role/"):
        session = parsed.resource.rsplit("/", 1)[-1]
    return Identity(arn, canonical, parsed.account, "AIDAKUBEIAMCANI", session, "")


def _user(args: argparse.Namespace) -> tuple[UserInfo | None, str]:
    """The user the request runs as, and a note on how it was found."""
    if args.as_arn:
        if not args.mapping:
            raise ConfigError(
                "--as-arn needs --mapping FILE (aws-auth or mapping YAML)"
            )
        sources = [
            parse_mapping_text(
                p.read_text(encoding="utf-8"), source="file", where=str(p)
            )
            for p in args.mapping
        ]
        result = evaluate_mapping(_identity_from_arn(args.as_arn), sources)
        if result.user is None:
            return (
                None,
                f"{result.detail} (the API server would answer 401 Unauthorized)",
            )
        u = result.user
        identity = _identity_from_arn(args.as_arn)
        entry = result.entry
        templates = " ".join((entry.username, *entry.groups)) if entry else ""
        if not identity.session_name and "{{SessionName" in templates:
            # kubeiam token always has a session; an ARN typed here may not.
            sys.stderr.write(
                f"warning: {entry.where if entry else 'the mapping'} uses "
                "{{SessionName}} but "
                f"{args.as_arn} has no session name, so it renders empty (give "
                "the session's ARN: arn:aws:sts::<account>:assumed-role/<role>/"
                "<session>)\n"
            )
        return UserInfo(u.username, (*u.groups, "system:authenticated"), u.uid), (
            f"{args.as_arn} -> user {u.username!r} groups {list(u.groups)}"
        )
    if not args.as_user:
        raise ConfigError("give --as USER or --as-arn ARN")
    groups: list[str] = list(args.as_group or [])
    # Impersonation: a service account without explicit groups gets its SA groups;
    # every non-anonymous user also gets system:authenticated (docs/rbac-and-tiers.md).
    if not groups and args.as_user.startswith(SERVICE_ACCOUNT_PREFIX):
        ns = args.as_user[len(SERVICE_ACCOUNT_PREFIX) :].split(":", 1)[0]
        groups = list(service_account_groups(ns))
    if args.as_user != "system:anonymous" and "system:authenticated" not in groups:
        groups.append("system:authenticated")
    return UserInfo(args.as_user, tuple(groups)), ""


def _load(args: argparse.Namespace) -> RBACPolicy:
    objects = load_rbac_paths(list(args.rbac))
    if not args.no_builtin_roles:
        objects = with_builtin(objects)
    return objects.policy()


def _can_i(argv: Sequence[str]) -> int:
    p = _parser("can-i")
    _add_request_args(p, optional=True)
    p.add_argument(
        "--list",
        action="store_true",
        help="list the rules the user holds in the namespace (as kubectl --list)",
    )
    p.add_argument("--as", dest="as_user", default="", help="username to ask for")
    p.add_argument("--as-group", action="append", default=[], help="group (repeatable)")
    p.add_argument(
        "--as-arn", default="", help="IAM ARN to map with --mapping instead of --as"
    )
    p.add_argument(
        "--mapping",
        action="append",
        type=Path,
        default=[],
        help="aws-auth ConfigMap or mapping YAML for --as-arn (repeatable)",
    )
    p.add_argument(
        "--no-privileged-bypass",
        action="store_true",
        help="evaluate system:masters through RBAC like any group",
    )
    args = p.parse_args(argv)
    if not args.list and not (args.verb and args.resource):
        p.error("give VERB RESOURCE, or --list")
    policy = _load(args)
    user, note = _user(args)
    ns = "" if args.all_namespaces else args.namespace
    if args.list:
        return _list(policy, user, note, ns, args.output)
    attrs, warning = parse_resource_arg(
        args.verb, args.resource, args.name, ns, args.subresource
    )
    if warning:
        sys.stderr.write(warning + "\n")
    if user is None:
        allowed, reason, err = False, note, ""
    else:
        r = decide(policy, user, attrs, privileged_bypass=not args.no_privileged_bypass)
        allowed, reason, err = r.decision.value == "Allow", r.reason, r.evaluation_error
    if args.output == "json":
        out = {
            "allowed": allowed,
            "reason": reason,
            "evaluationError": err,
            "user": None
            if user is None
            else {"username": user.name, "groups": list(user.groups)},
        }
        print(json.dumps(out, sort_keys=True))
    else:
        if note and user is not None:
            sys.stderr.write(note + "\n")
        # kubectl's shape: "yes" alone (the reason on stderr, so scripts that
        # compare stdout with "yes" keep working), "no - <reason> - <error>".
        if allowed:
            print("yes")
            if reason:
                sys.stderr.write(f"reason: {reason}\n")
        else:
            if not reason and user is not None:
                # RBAC has no opinion on a denial; say what was looked for.
                reason = (
                    f"no RoleBinding or ClusterRoleBinding of user {user.name!r} or "
                    f"groups {list(user.groups)} grants it"
                )
            print(" - ".join(part for part in ("no", reason, err) if part))
    return 0 if allowed else 1


def _qualified(resource: str, group: str) -> str:
    # kubectl prints deployments.apps/scale: the group goes before the subresource.
    base, slash, sub = resource.partition("/")
    return (f"{base}.{group}" if group else base) + slash + sub


def _list(
    policy: RBACPolicy, user: UserInfo | None, note: str, namespace: str, output: str
) -> int:
    """Print the rules ``user`` holds in ``namespace``, as ``can-i --list`` does."""
    if user is None:
        print("no - " + note)
        return 1
    held, errors = rules_for(policy, user, namespace)
    rows: dict[tuple[str, str, str], list[str]] = {}
    for _grant, rule in held:
        names = "[" + " ".join(rule.resource_names) + "]"
        keys = [
            (_qualified(res, group), "[]", names)
            for group in rule.api_groups
            for res in rule.resources
        ]
        keys += [("", f"[{url}]", "[]") for url in rule.non_resource_urls]
        for key in keys:
            verbs = rows.setdefault(key, [])
            verbs.extend(v for v in rule.verbs if v not in verbs)
    if output == "json":
        items = [
            {"resource": r, "nonResourceURLs": u, "resourceNames": n, "verbs": v}
            for (r, u, n), v in sorted(rows.items())
        ]
        print(json.dumps({"rules": items, "errors": errors}, indent=2))
        return 0
    table = [("Resources", "Non-Resource URLs", "Resource Names", "Verbs")]
    table += [
        (r, u, n, "[" + " ".join(v) + "]") for (r, u, n), v in sorted(rows.items())
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _read_requests(path: Path) -> list[object]:
    try:
        text = (
            sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        )
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPolicyError(describe_parse_error(exc), policy=str(path)) from exc
    try:
        docs = [d for d in load_yaml_documents(text) if d is not None]
    except YAMLError as exc:
        raise InvalidPolicyError(str(exc), policy=str(path)) from exc
    if len(docs) == 1 and isinstance(docs[0], list):
        return list(docs[0])
    return docs


def _batch(argv: Sequence[str]) -> int:
    p = _parser("rbac")
    p.add_argument(
        "--requests", required=True, type=Path, help="JSON/YAML list of specs, or -"
    )
    p.add_argument("--no-privileged-bypass", action="store_true")
    args = p.parse_args(argv)
    policy = _load(args)
    results: list[dict[str, object]] = []
    for i, item in enumerate(_read_requests(args.requests)):
        spec = item.get("spec", item) if isinstance(item, dict) else item
        try:
            user, attrs = parse_sar_spec(spec, groups_key="*")
        except InvalidPolicyError as exc:
            raise InvalidPolicyError(
                exc.detail, pointer=f"/{i}{exc.pointer}", policy=str(args.requests)
            ) from exc
        d = decide(policy, user, attrs, privileged_bypass=not args.no_privileged_bypass)
        results.append(
            {
                "index": i,
                "user": user.name,
                "allowed": d.decision.value == "Allow",
                "reason": d.reason,
                "evaluationError": d.evaluation_error,
                "request": _describe(attrs),
            }
        )
    if args.output == "json":
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        for r in results:
            print(f"{'yes' if r['allowed'] else 'no ':3}  {r['user']}  {r['request']}")
    return 0


def _describe(attrs: Attributes) -> str:
    if isinstance(attrs, NonResourceAttributes):
        return f"{attrs.verb} {attrs.path}"
    res = attrs.resource + (f".{attrs.group}" if attrs.group else "")
    res += f"/{attrs.subresource}" if attrs.subresource else ""
    name = f" {attrs.name}" if attrs.name else ""
    scope = f" -n {attrs.namespace}" if attrs.namespace else " (cluster-wide)"
    return f"{attrs.verb} {res}{name}{scope}"


def _who_can(argv: Sequence[str]) -> int:
    p = _parser("who-can")
    _add_request_args(p)
    args = p.parse_args(argv)
    policy = _load(args)
    ns = "" if args.all_namespaces else args.namespace
    attrs, warning = parse_resource_arg(
        args.verb, args.resource, args.name, ns, args.subresource
    )
    if warning:
        sys.stderr.write(warning + "\n")
    grants = who_can(policy, attrs)
    rows = [
        {
            "kind": g.subject.kind,
            "name": g.subject.name,
            "namespace": g.subject.namespace,
            "binding": f"{g.binding.kind}/{_ns_prefix(g.binding.namespace)}"
            f"{g.binding.name}",
            "role": f"{g.binding.role_ref.kind}/{g.binding.role_ref.name}",
        }
        for g in grants
    ]
    if args.output == "json":
        print(json.dumps({"request": _describe(attrs), "subjects": rows}, indent=2))
        return 0
    print(f"who can {_describe(attrs)}:")
    for r in rows:
        who = f"{r['kind']} {r['namespace'] + '/' if r['namespace'] else ''}{r['name']}"
        print(f"  {who:50} via {r['binding']} ({r['role']})")
    if not any(g.subject == _MASTERS for g in grants):
        print("  (and group system:masters, which bypasses authorization)")
    return 0


def _ns_prefix(namespace: str) -> str:
    return f"{namespace}/" if namespace else ""


def _role(policy: RBACPolicy, ref: str) -> tuple[PolicyRule, ...]:
    parts = ref.split("/")
    kind = parts[0].lower() if len(parts) > 1 else "clusterrole"
    if kind == "clusterrole" and len(parts) <= 2 and parts[-1] in policy.cluster_roles:
        return policy.cluster_roles[parts[-1]].rules
    if kind == "role" and len(parts) == 3 and (parts[1], parts[2]) in policy.roles:
        return policy.roles[(parts[1], parts[2])].rules
    raise ConfigError(
        f"no such role {ref!r} (write clusterrole/NAME or role/NAMESPACE/NAME)"
    )


def _covers(argv: Sequence[str]) -> int:
    p = _parser("covers")
    p.add_argument("role_a", help="the owner: clusterrole/NAME, role/NS/NAME or NAME")
    p.add_argument("role_b", help="the role whose rules must be covered")
    args = p.parse_args(argv)
    policy = _load(args)
    ok, missing = covers(_role(policy, args.role_a), _role(policy, args.role_b))
    if args.output == "json":
        out = {"covers": ok, "uncovered": [r.to_json() for r in compact_rules(missing)]}
        print(json.dumps(out, indent=2))
    else:
        print(f"{args.role_a} {'covers' if ok else 'does not cover'} {args.role_b}")
        for rule in compact_rules(missing):
            print(f"  missing {rule.compact()}")
    return 0 if ok else 1


_COMMANDS = {"can-i": _can_i, "rbac": _batch, "who-can": _who_can, "covers": _covers}


def main(argv: list[str]) -> int:
    """Run one of the RBAC subcommands.

    Args:
        argv: ``[command, *args]`` with command in can-i, rbac, who-can, covers.

    Returns:
        0 ok / yes / covered, 1 no / not covered / error, 2 usage; can-i
        returns 3 for an error so that it differs from "no".
    """
    if not argv or argv[0] not in _COMMANDS:
        sys.stderr.write(f"kubeiam policy: expected one of {', '.join(_COMMANDS)}\n")
        return 2
    error_code = CAN_I_ERROR if argv[0] == "can-i" else 1
    try:
        return _COMMANDS[argv[0]](argv[1:])
    except (KubeIAMError, OSError) as exc:  # InvalidPolicyError, ConfigError, ...
        sys.stderr.write(f"kubeiam policy {argv[0]}: {exc}\n")
        return error_code
