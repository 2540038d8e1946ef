"""The demo's authorization steps: an ECS tier report and a can-i walk.

``step_tiers`` analyses a demo ECS task (an account in
``get-account-authorization-details`` form, embedded here) and shows its
cluster, task and housekeeping findings. ``step_can_i`` takes the role session
the core steps verified through STS, maps it through an aws-auth-style mapping
to a Kubernetes user and decides a few requests with Kubernetes RBAC, as the
API server would after the webhook authenticated the token.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from authenticator.mapping import evaluate_mapping, parse_mappings
from authenticator.yamlio import dump_yaml

if TYPE_CHECKING:
    from kubeiam.demo_context import DemoContext

__all__ = ["DEMO_ACCOUNT", "DEMO_RBAC", "DEMO_TASK", "step_can_i", "step_tiers"]

_A = "111122223333"
_R = "us-east-1"


def _trust(guarded: bool) -> dict[str, object]:
    st: dict[str, object] = {
        "Effect": "Allow",
        "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    if guarded:
        st["Condition"] = {
            "StringEquals": {"aws:SourceAccount": _A},
            "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:{_R}:{_A}:*"},
        }
    return {"Version": "2012-10-17", "Statement": [st]}


def _allow(actions: list[str], resource: object = "*") -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}],
    }


def _role(
    name: str, trust: dict[str, object], policy: dict[str, object]
) -> dict[str, object]:
    return {
        "RoleName": name,
        "Path": "/",
        "Arn": f"arn:aws:iam::{_A}:role/{name}",
        "AssumeRolePolicyDocument": trust,
        "RolePolicyList": [{"PolicyName": f"{name}-policy", "PolicyDocument": policy}],
        "AttachedManagedPolicies": [],
    }


# A small account: an operator, a task role without confused-deputy guards that
# may pass any role, and an execution role that can pull and log but not read
# the task's secret.
DEMO_ACCOUNT: dict[str, object] = {
    "UserDetailList": [
        {
            "UserName": "ops",
            "Arn": f"arn:aws:iam::{_A}:user/ops",
            "UserPolicyList": [
                {
                    "PolicyName": "operate-shop",
                    "PolicyDocument": _allow(
                        [
                            "ecs:RunTask",
                            "ecs:DescribeTasks",
                            "ecs:ExecuteCommand",
                            "iam:PassRole",
                        ]
                    ),
                }
            ],
        }
    ],
    "RoleDetailList": [
        _role("shop-task", _trust(False), _allow(["s3:GetObject", "iam:PassRole"])),
        _role(
            "shop-exec",
            _trust(True),
            _allow(
                [
                    "ecr:GetAuthorizationToken",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                ]
            ),
        ),
    ],
}
DEMO_TASK: dict[str, object] = {
    "taskDefinition": {
        "taskDefinitionArn": f"arn:aws:ecs:{_R}:{_A}:task-definition/shop:3",
        "family": "shop",
        "revision": 3,
        "networkMode": "awsvpc",
        "taskRoleArn": f"arn:aws:iam::{_A}:role/shop-task",
        "executionRoleArn": f"arn:aws:iam::{_A}:role/shop-exec",
        "containerDefinitions": [
            {
                "name": "shop",
                "image": f"{_A}.dkr.ecr.{_R}.amazonaws.com/shop:2.1",
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": "/ecs/shop", "awslogs-region": _R},
                },
                "secrets": [
                    {
                        "name": "DB_URL",
                        "valueFrom": f"arn:aws:ssm:{_R}:{_A}:parameter/shop/db-url",
                    }
                ],
            }
        ],
    }
}
# Kubernetes RBAC for the can-i walk: the role's group may read and scale in "shop".
DEMO_RBAC: list[dict[str, object]] = [
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "shop-deployer", "namespace": "shop"},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["pods", "pods/log"],
                "verbs": ["get", "list"],
            },
            {
                "apiGroups": ["apps"],
                "resources": ["deployments/scale"],
                "verbs": ["update"],
            },
        ],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "deployers", "namespace": "shop"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "shop-deployer",
        },
        "subjects": [
            {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Group",
                "name": "deployers",
            }
        ],
    },
]


def step_tiers(ctx: DemoContext) -> None:
    """Report the three permission tiers of a demo ECS task, with findings."""
    from policy.iam.accounts import parse_account_authorization_details
    from policy.tiers.report import evaluate_ecs_tiers
    from policy.tiers.workloads import parse_task_definition

    account = parse_account_authorization_details(DEMO_ACCOUNT)
    task = parse_task_definition(DEMO_TASK)
    cluster = f"arn:aws:ecs:{_R}:{_A}:cluster/shop"
    report = evaluate_ecs_tiers(account, task, cluster_arn=cluster)
    td = ctx.write_file("td.json", json.dumps(DEMO_TASK, indent=2) + "\n")
    auth = ctx.write_file("auth.json", json.dumps(DEMO_ACCOUNT, indent=2) + "\n")
    ctx.say(f"The account changes: this step looks at AWS account {_A}, which")
    ctx.say("runs an ECS cluster named 'shop' (no Kubernetes, no STS emulator here).")
    ctx.say(f"Task definition {task.arn};")
    ctx.say("the account's users, roles and policies are in the form")
    ctx.say("`aws iam get-account-authorization-details` prints, and kubeiam's IAM")
    ctx.say("policy engine answers every question below.")
    ctx.say()
    for row in report.cluster:
        acts = ", ".join(a.split(":", 1)[1] for a in row.actions)
        ctx.say(f"cluster tier: {row.principal} may {acts}")
    ctx.say()
    rows: list[tuple[str, ...]] = [("severity", "id", "finding")]
    rows += [(f.severity.value, f.code, f.message) for f in report.sorted_findings()]
    ctx.table(rows)
    ctx.say()
    ctx.say("The same report, from the files this step wrote:")
    ctx.say(f"  kubeiam policy tiers --task-definition {td} \\")
    ctx.say(f"      --account {auth} \\")
    ctx.say(f"      --cluster-arn {cluster}")
    ctx.record("tiers", report.to_json())
    ctx.record("tiersFiles", {"taskDefinition": str(td), "account": str(auth)})
    worst = report.sorted_findings()[0] if report.sorted_findings() else None
    ctx.conclude(
        f"account {_A}'s ECS task shop:3: {len(report.sorted_findings())} findings"
        + (f", worst {worst.severity.value} {worst.code}" if worst else "")
    )


def step_can_i(ctx: DemoContext) -> None:
    """Walk from the verified IAM role session through the mapping to RBAC decisions."""
    from policy.rbac.authz import decide
    from policy.rbac.load import parse_rbac_documents
    from policy.rbac.model import ResourceAttributes, UserInfo

    identity = ctx.identities.get("role")
    if identity is None:
        raise RuntimeError("the role session was not verified by an earlier step")
    mapping_entries = [
        {
            "rolearn": identity.canonical_arn,
            "username": "deployer:{{SessionName}}",
            "groups": ["deployers"],
        }
    ]
    mappings = parse_mappings(
        {"mapRoles": mapping_entries}, source="inline", where="demo"
    )
    result = evaluate_mapping(identity, [mappings])
    if result.user is None:
        raise RuntimeError(
            f"the demo mapping did not map {identity.arn}: {result.detail}"
        )
    user = UserInfo(result.user.username, (*result.user.groups, "system:authenticated"))
    ctx.say(f"Back to account {identity.account_id} and the Kubernetes cluster")
    ctx.say(f"{ctx.cluster_id!r}: the API server authorizes what the authenticated")
    ctx.say("role session may do, with Kubernetes RBAC (a Role and a RoleBinding in")
    ctx.say("namespace 'shop').")
    ctx.say()
    ctx.say(f"IAM identity  {identity.arn}")
    ctx.say(f"  mapping     {identity.canonical_arn} -> username {user.name!r},")
    ctx.say(f"              groups {list(user.groups)}")
    policy = parse_rbac_documents(
        [(f"demo[{i}]", d) for i, d in enumerate(DEMO_RBAC)]
    ).policy()
    asks = [
        ResourceAttributes("get", "pods", "", "shop", "log", "web-1"),
        ResourceAttributes("update", "deployments", "apps", "shop", "scale", "web"),
        ResourceAttributes("delete", "deployments", "apps", "shop", "", "web"),
        ResourceAttributes("get", "pods", "", "kube-system"),
    ]
    rows: list[tuple[str, ...]] = [("kubectl auth can-i ...", "answer", "why")]
    answers = []
    for a in asks:
        r = decide(policy, user, a)
        res = a.resource + (f".{a.group}" if a.group else "")
        res += f"/{a.subresource}" if a.subresource else ""
        ask = f"{a.verb} {res} {a.name} -n {a.namespace}".replace("  ", " ")
        answer = "yes" if r.decision.value == "Allow" else "no"
        rows.append(
            (ask, answer, r.reason.removeprefix("RBAC: ") or "no rule allows it")
        )
        answers.append({"request": ask, "allowed": answer == "yes"})
    ctx.table(rows)
    rbac = ctx.write_file(
        "rbac/shop.yaml", "---\n".join(dump_yaml(doc) for doc in DEMO_RBAC)
    )
    map_roles = dump_yaml(mapping_entries)
    aws_auth = ctx.write_file(
        "aws-auth.yaml",
        "apiVersion: v1\nkind: ConfigMap\n"
        "metadata: {name: aws-auth, namespace: kube-system}\n"
        "data:\n  mapRoles: |\n"
        + "".join(f"    {line}\n" for line in map_roles.splitlines()),
    )
    ctx.say()
    ctx.say("The same walk, from the files this step wrote:")
    ctx.say(f"  kubeiam policy can-i --rbac {rbac.parent} \\")
    ctx.say(f"      --mapping {aws_auth} \\")
    ctx.say(f"      --as-arn {identity.arn} \\")
    ctx.say("      get pods/log web-1 -n shop")
    ctx.record(
        "canI", {"user": user.name, "groups": list(user.groups), "answers": answers}
    )
    ctx.record("canIFiles", {"rbac": str(rbac.parent), "mapping": str(aws_auth)})
    allowed = sum(1 for a in answers if a["allowed"])
    ctx.conclude(
        f"RBAC in {ctx.cluster_id!r} lets {user.name} do {allowed} of the "
        f"{len(answers)} requests asked"
    )
