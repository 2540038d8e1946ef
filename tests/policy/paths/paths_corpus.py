"""Build access-graph inputs from the compact scenarios of tests/data/paths/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from policy.iam.accounts import parse_account_authorization_details, parse_scps
from policy.paths.cli import build_inputs, build_mapper
from policy.paths.graph import AccessGraph

CORPUS = Path(__file__).resolve().parents[2] / "data" / "paths" / "scenarios.yaml"
ACCOUNT = "111122223333"


def _doc(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def _principal(value: str) -> dict[str, str]:
    if value.endswith(".amazonaws.com"):
        return {"Service": value}
    if ":oidc-provider/" in value:
        return {"Federated": value}
    return {"AWS": value}


def account_details(spec: dict[str, Any], account: str = ACCOUNT) -> dict[str, Any]:
    """get-account-authorization-details JSON from the compact form."""
    iam = f"arn:aws:iam::{account}"
    managed = spec.get("managed", {})
    policies = [
        {
            "PolicyName": name,
            "Arn": f"{iam}:policy/{name}",
            "PolicyVersionList": [
                {"Document": _doc(stmts), "IsDefaultVersion": True, "VersionId": "v1"}
            ],
        }
        for name, stmts in managed.items()
    ]

    def attached(entity: dict[str, Any]) -> list[dict[str, str]]:
        out = []
        for name in entity.get("attach", []):
            arn = name if name.startswith("arn:") else f"{iam}:policy/{name}"
            out.append({"PolicyName": arn.rsplit("/", 1)[-1], "PolicyArn": arn})
        return out

    def inline(entity: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"PolicyName": f"p{i}", "PolicyDocument": _doc(stmts)}
            for i, stmts in enumerate(entity.get("policies", []))
        ]

    def boundary(entity: dict[str, Any]) -> dict[str, Any]:
        if "boundary" not in entity:
            return {}
        name = entity["boundary"]
        return {
            "PermissionsBoundary": {
                "PermissionsBoundaryType": "Policy",
                "PermissionsBoundaryArn": f"{iam}:policy/{name}",
            }
        }

    users = [
        {
            "UserName": name,
            "Arn": f"{iam}:user/{name}",
            "Path": "/",
            "GroupList": u.get("groups", []),
            "UserPolicyList": [
                {"PolicyName": p["PolicyName"], "PolicyDocument": p["PolicyDocument"]}
                for p in inline(u)
            ],
            "AttachedManagedPolicies": attached(u),
            **boundary(u),
        }
        for name, u in (spec.get("users") or {}).items()
    ]
    groups = [
        {
            "GroupName": name,
            "Arn": f"{iam}:group/{name}",
            "GroupPolicyList": inline(g),
            "AttachedManagedPolicies": attached(g),
        }
        for name, g in (spec.get("groups") or {}).items()
    ]
    roles = []
    for name, r in (spec.get("roles") or {}).items():
        trust = r.get("trust")
        if trust is None:
            trust = [
                {
                    "Effect": "Allow",
                    "Principal": _principal(p),
                    "Action": (
                        "sts:AssumeRoleWithWebIdentity"
                        if ":oidc-provider/" in p
                        else ["sts:AssumeRole", "sts:TagSession"]
                    ),
                }
                for p in r.get("trusts", [])
            ]
        roles.append(
            {
                "RoleName": name,
                "Arn": f"{iam}:role/{name}",
                "Path": "/",
                "AssumeRolePolicyDocument": _doc(trust),
                "RolePolicyList": inline(r),
                "AttachedManagedPolicies": attached(r),
                **boundary(r),
            }
        )
    return {
        "UserDetailList": users,
        "GroupDetailList": groups,
        "RoleDetailList": roles,
        "Policies": policies,
    }


def build_graph(sc: dict[str, Any]) -> AccessGraph:
    """The access graph of one scenario, through the same parsers as the CLI."""
    scps = parse_scps(sc["scps"]) if "scps" in sc else []
    accounts = [
        parse_account_authorization_details(
            account_details(sc.get("account", {})), scps=scps
        )
    ]
    for acct_id, spec in (sc.get("other_accounts") or {}).items():
        accounts.append(
            parse_account_authorization_details(account_details(spec, str(acct_id)))
        )
    mapping = sc.get("mapping")
    if "map_roles" in sc:
        mapping = yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "aws-auth", "namespace": "kube-system"},
                "data": {"mapRoles": yaml.safe_dump(sc["map_roles"])},
            }
        )
    mapper = build_mapper([("mapping", mapping)]) if mapping else None
    docs = [(f"k8s[{i}]", d) for i, d in enumerate(sc.get("k8s", []))]
    inputs = build_inputs(
        accounts=accounts,
        k8s_documents=docs,
        mapper=mapper,
        access_entries=sc.get("access_entries"),
        pod_identity=sc.get("pod_identity", []),
        task_definitions=sc.get("task_definitions", []),
        cluster_arns=sc.get("cluster_arns", []),
    )
    return AccessGraph(inputs)


def load_scenarios() -> list[dict[str, Any]]:
    """Every scenario of the corpus."""
    data = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    assert isinstance(data, list)
    return data
