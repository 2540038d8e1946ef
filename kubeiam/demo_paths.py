"""The demo's access-path step: one path across the IAM/Kubernetes border, drawn.

A developer role is mapped (aws-auth) into a group that may create pods in
``prod``; a ServiceAccount there has an IRSA role with AdministratorAccess. The
step prints the path ``kubeiam policy paths`` finds and writes it as SVG (DOT
when Graphviz is missing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubeiam.demo_context import DemoContext

__all__ = ["step_paths"]

_A = "111122223333"
_OIDC = "oidc.eks.us-east-1.amazonaws.com/id/DEMO"
_RBAC = "rbac.authorization.k8s.io"


def _role(name: str, trust: list[dict[str, object]], attach: list[str]) -> object:
    return {
        "RoleName": name,
        "Arn": f"arn:aws:iam::{_A}:role/{name}",
        "Path": "/",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": trust},
        "RolePolicyList": [],
        "AttachedManagedPolicies": [
            {"PolicyName": a.rsplit("/", 1)[-1], "PolicyArn": a} for a in attach
        ],
    }


DEMO_PATHS_ACCOUNT: dict[str, object] = {
    "UserDetailList": [],
    "GroupDetailList": [],
    "Policies": [],
    "RoleDetailList": [
        _role(
            "developer",
            [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{_A}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
            [],
        ),
        _role(
            "shop-admin",
            [
                {
                    "Effect": "Allow",
                    "Principal": {
                        "Federated": f"arn:aws:iam::{_A}:oidc-provider/{_OIDC}"
                    },
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{_OIDC}:sub": "system:serviceaccount:prod:shop",
                            f"{_OIDC}:aud": "sts.amazonaws.com",
                        }
                    },
                }
            ],
            ["arn:aws:iam::aws:policy/AdministratorAccess"],
        ),
    ],
}
DEMO_PATHS_K8S: list[dict[str, object]] = [
    {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "shop",
            "namespace": "prod",
            "annotations": {
                "eks.amazonaws.com/role-arn": f"arn:aws:iam::{_A}:role/shop-admin"
            },
        },
    },
    {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": "deploy", "namespace": "prod"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}],
    },
    {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "developers-deploy", "namespace": "prod"},
        "roleRef": {"apiGroup": _RBAC, "kind": "Role", "name": "deploy"},
        "subjects": [{"kind": "Group", "name": "developers"}],
    },
]
DEMO_PATHS_AWS_AUTH = f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: aws-auth, namespace: kube-system}}
data:
  mapRoles: |
    - rolearn: arn:aws:iam::{_A}:role/developer
      username: dev:{{{{SessionName}}}}
      groups: [developers]
"""


def step_paths(ctx: DemoContext) -> None:
    """Find the developer role's path to AWS administrator and draw it."""
    import json

    from authenticator.yamlio import dump_yaml
    from policy.iam.accounts import parse_account_authorization_details
    from policy.paths.cli import build_inputs, build_mapper, render_svg
    from policy.paths.graph import AccessGraph
    from policy.paths.model import parse_target
    from policy.paths.query import resolve_source, shortest_path
    from policy.paths.render import render_dot, render_paths

    inputs = build_inputs(
        accounts=[parse_account_authorization_details(DEMO_PATHS_ACCOUNT)],
        k8s_documents=[(f"demo[{i}]", d) for i, d in enumerate(DEMO_PATHS_K8S)],
        mapper=build_mapper([("demo aws-auth", DEMO_PATHS_AWS_AUTH)]),
    )
    graph = AccessGraph(inputs)
    source = resolve_source(graph, "role/developer")
    path = shortest_path(graph, source, parse_target("aws-admin"))
    if path is None:
        raise RuntimeError("the demo's cross-border path was not found")
    account = ctx.write_file(
        "paths/auth.json", json.dumps(DEMO_PATHS_ACCOUNT, indent=2) + "\n"
    )
    k8s = ctx.write_file(
        "paths/k8s.yaml", "---\n".join(dump_yaml(doc) for doc in DEMO_PATHS_K8S)
    )
    aws_auth = ctx.write_file("paths/aws-auth.yaml", DEMO_PATHS_AWS_AUTH)
    ctx.say(f"The account changes again: AWS account {_A} runs an EKS cluster whose")
    ctx.say("aws-auth maps the 'developer' role into the group 'developers'. Can that")
    ctx.say(
        "role end up with AWS administrator rights? kubeiam follows the path across"
    )
    ctx.say("IAM and Kubernetes, each step with the statement or binding behind it:")
    ctx.say()
    text = render_paths(graph, [path], title="role/developer -> aws-admin")
    for line in text.splitlines():
        ctx.say(line)
    dot = render_dot(graph, [path], title="role/developer -> aws-admin")
    out_dir = account.parent
    svg = render_svg(dot)
    if svg is not None:
        picture = out_dir / "access-path.svg"
        picture.write_text(svg, encoding="utf-8")
    else:
        picture = out_dir / "access-path.dot"
        picture.write_text(dot, encoding="utf-8")
    ctx.say()
    ctx.say(f"The picture of this path: {picture}")
    ctx.say("The same query, from the files this step wrote:")
    ctx.say(f"  kubeiam policy paths --account {account} \\")
    ctx.say(f"      --mapping {aws_auth} --k8s {k8s} \\")
    ctx.say("      --from role/developer --to aws-admin")
    ctx.record("paths", {"path": path.to_json(), "picture": str(picture)})
    ctx.conclude(
        f"role/developer reaches AWS administrator in {len(path.edges)} steps "
        "across the IAM/Kubernetes border"
    )
