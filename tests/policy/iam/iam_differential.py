"""Differential fuzzing of the IAM engine against @cloud-copilot/iam-simulate.

A seeded generator builds simulation cases (the ``kubeiam policy simulate`` case format)
biased towards near misses: a third Allowed, a third ImplicitlyDenied and a third
ExplicitlyDenied by kubeiam's decision. Each case goes through kubeiam
(``policy.iam.evaluator.evaluate``) and through the peer
(``tests/peers/npm/simulate.cjs``, one node process for the whole batch). A disagreement
is *listed* when the case uses a construct named in
``tests/data/iam_differential/known_divergences.json`` (each entry quotes the AWS
documentation that decides it); an unlisted one is delta-minimised while both decisions
stay the same, so the report shows a small reproduction.

Run ``python -m tests.policy.iam.iam_differential --count 20000 --seed 1`` (``make
differential``); the suite runs a fixed-seed sample of 2,000
(``tests/policy/iam/test_iam_differential.py``).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy.errors import InvalidPolicyError
from policy.iam.evaluator import evaluate
from policy.iam.suite import parse_case

ROOT = Path(__file__).resolve().parents[3]
PEER_DIR = ROOT / "tests" / "peers" / "npm"
PEER_SCRIPT = PEER_DIR / "simulate.cjs"
KNOWN_FILE = ROOT / "tests" / "data" / "iam_differential" / "known_divergences.json"

Case = dict[str, Any]
Json = Any

A = "111111111111"
B = "222222222222"
V = "2012-10-17"
DECISIONS = ("Allowed", "ImplicitlyDenied", "ExplicitlyDenied")

# --- requests

_ACTIONS: dict[str, tuple[str, ...]] = {
    "dynamodb": ("GetItem", "PutItem", "DeleteItem", "Query"),
    "sqs": ("SendMessage", "ReceiveMessage", "DeleteMessage"),
    "ec2": ("StartInstances", "StopInstances", "TerminateInstances"),
    "s3": ("GetObject", "PutObject", "DeleteObject"),
}


def _resource_arn(service: str, account: str, name: str) -> str:
    if service == "dynamodb":
        return f"arn:aws:dynamodb:us-east-1:{account}:table/{name}"
    if service == "sqs":
        return f"arn:aws:sqs:us-east-1:{account}:{name}"
    if service == "ec2":
        return f"arn:aws:ec2:us-east-1:{account}:instance/i-{name}"
    return f"arn:aws:s3:::bucket-{name}/key/{name}"


@dataclass(frozen=True, slots=True)
class Principal:
    """A request principal and the context AWS derives for it."""

    kind: str
    arn: str | None
    account: str | None
    context: dict[str, str]


def _principal(rng: random.Random, account: str) -> Principal:
    kind = rng.choices(
        ["user", "session", "federated", "root", "service", "slr", "anonymous"],
        weights=[30, 30, 12, 8, 8, 6, 6],
    )[0]
    if kind == "user":
        name = rng.choice(["alice", "bob"])
        arn = f"arn:aws:iam::{account}:user/{name}"
        ctx = {"aws:username": name, "aws:PrincipalType": "User"}
        return Principal(kind, arn, account, ctx | _iam_ctx(arn, account))
    if kind == "session":
        role = rng.choice(["app", "ops"])
        arn = f"arn:aws:sts::{account}:assumed-role/{role}/s1"
        ctx = {"aws:PrincipalType": "AssumedRole"}
        return Principal(
            kind,
            arn,
            account,
            ctx | _iam_ctx(f"arn:aws:iam::{account}:role/{role}", account),
        )
    if kind == "slr":
        role = "AWSServiceRoleForECS"
        arn = f"arn:aws:sts::{account}:assumed-role/{role}/ecs"
        role_arn = (
            f"arn:aws:iam::{account}:role/aws-service-role/ecs.amazonaws.com/{role}"
        )
        ctx = {"aws:PrincipalType": "AssumedRole"}
        return Principal(kind, arn, account, ctx | _iam_ctx(role_arn, account))
    if kind == "federated":
        name = rng.choice(["bob", "carol"])
        arn = f"arn:aws:sts::{account}:federated-user/{name}"
        ctx = {"aws:PrincipalType": "FederatedUser"}
        return Principal(kind, arn, account, ctx | _iam_ctx(arn, account))
    if kind == "root":
        arn = f"arn:aws:iam::{account}:root"
        return Principal(
            kind,
            arn,
            account,
            {"aws:PrincipalType": "Account"} | _iam_ctx(arn, account),
        )
    if kind == "service":
        name = rng.choice(["ecs.amazonaws.com", "lambda.amazonaws.com"])
        return Principal(
            kind,
            name,
            None,
            {"aws:PrincipalServiceName": name, "aws:PrincipalIsAWSService": "true"},
        )
    return Principal("anonymous", None, None, {})


def _iam_ctx(principal_arn: str, account: str) -> dict[str, str]:
    return {
        "aws:PrincipalArn": principal_arn,
        "aws:PrincipalAccount": account,
        "aws:PrincipalIsAWSService": "false",
    }


# --- context

_TEAMS = ("red", "blue", "Red", "green")
_IPS = ("10.0.0.5", "10.0.1.7", "192.168.1.20", "2001:db8::5")
_TIMES = ("2024-05-01T12:00:00Z", "2023-01-15T00:00:00Z", "2025-12-31T23:59:59Z")
_TAGKEYS = (["team"], ["team", "env"], ["env", "cost"], ["Team"])


def _context(
    rng: random.Random, p: Principal, resource_account: str
) -> dict[str, Json]:
    ctx: dict[str, Json] = dict(p.context)
    if rng.random() < 0.8:
        ctx["aws:ResourceAccount"] = resource_account
    if rng.random() < 0.6:
        ctx["aws:PrincipalTag/team"] = rng.choice(_TEAMS)
    if rng.random() < 0.4:
        ctx["aws:RequestTag/env"] = rng.choice(["prod", "dev", "Prod"])
    if rng.random() < 0.5:
        ctx["aws:SourceIp"] = rng.choice(_IPS)
    if rng.random() < 0.5:
        ctx["aws:CurrentTime"] = rng.choice(_TIMES)
    if rng.random() < 0.5:
        ctx["aws:SecureTransport"] = rng.choice(["true", "false"])
    if rng.random() < 0.4:
        ctx["s3:max-keys"] = rng.choice(["5", "10", "100", "10.0"])
    if rng.random() < 0.4:
        ctx["aws:SourceArn"] = rng.choice(
            [
                f"arn:aws:sqs:us-east-1:{A}:q1",
                f"arn:aws:sns:eu-west-1:{B}:topic",
                "arn:aws:s3:::bucket-x",
            ]
        )
    if rng.random() < 0.4:
        ctx["aws:TagKeys"] = list(rng.choice(_TAGKEYS))
    if rng.random() < 0.2:
        ctx["aws:MultiFactorAuthPresent"] = rng.choice(["true", "false"])
    return ctx


# --- generator


@dataclass(slots=True)
class Gen:
    """Per-case generation state: the request the policies are near-misses of."""

    rng: random.Random
    service: str
    action: str
    resource: str
    principal: Principal
    resource_account: str
    ctx: dict[str, Json]
    features: set[str] = field(default_factory=set)
    corners: bool = True

    # ------------------------------------------------------------------ actions
    def action_pattern(self) -> str:
        r = self.rng.random()
        svc, name = self.action.split(":")
        other = self.rng.choice([a for a in _ACTIONS[svc] if a != name] or [name])
        if r < 0.35:
            return self.action
        if r < 0.45:
            return f"{svc}:*"
        if r < 0.5:
            return "*"
        if r < 0.6:
            return f"{svc}:{other}"
        if r < 0.67:
            return f"{svc}:{name[:3]}*"
        if r < 0.72:
            return f"{svc}:{name[:-2]}??"
        if r < 0.78:
            return f"{svc.upper()}:{name.lower()}"
        if r < 0.84:
            return self.rng.choice([s for s in _ACTIONS if s != svc]) + ":*"
        if r < 0.86 and self.corners:
            self.features.add("action-service-wildcard")
            return f"{svc[:2]}*:{name}"
        return f"{svc}:{other}"

    # ---------------------------------------------------------------- resources
    def resource_pattern(self) -> str:
        r = self.rng.random()
        res = self.resource
        if r < 0.3:
            return res
        if r < 0.42:
            return "*"
        if r < 0.52:
            head, _, _ = res.rpartition("/") if "/" in res else (res, "", "")
            return (head + "/*") if "/" in res else res.rsplit(":", 1)[0] + ":*"
        if r < 0.6:
            parts = res.split(":", 5)
            parts[3] = "*" if parts[3] else ""
            return ":".join(parts)
        if r < 0.68:
            return res[:-1] + ("x" if res[-1] != "x" else "y")
        if r < 0.74:
            parts = res.split(":", 5)
            parts[4] = B if parts[4] == A else (A if parts[4] else "")
            return ":".join(parts)
        if r < 0.8:
            return res[:-1] + "?"
        if r < 0.88:
            return self.variable_resource()
        if r < 0.82 and self.corners:
            self.features.add("arn-case")
            parts = res.split(":", 5)
            i = self.rng.choice([1, 2, 3])
            parts[i] = parts[i].upper() if parts[i] else parts[i]
            return ":".join(parts)
        return res

    def variable_resource(self) -> str:
        res = self.resource
        head, sep, last = res.rpartition("/")
        if not sep:
            head, sep, last = res.rpartition(":")
        var = self.variable()
        r = self.rng.random()
        if r < 0.1 and self.corners:
            # A variable before the fifth colon (only the resource part resolves).
            self.features.add("variable-arn-prefix")
            parts = res.split(":", 5)
            parts[4] = "${aws:PrincipalAccount}"
            return ":".join(parts)
        if sep == ":" and var != "${*}":
            # The resource part is a bare resource-id (an SQS queue name).
            self.features.add("variable-in-untyped-resource")
        return f"{head}{sep}{var}" if r < 0.6 else f"{head}{sep}{last[:1]}{var}"

    def variable(self) -> str:
        r = self.rng.random()
        if r < 0.3:
            return "${aws:PrincipalTag/team}"
        if r < 0.45:
            return "${aws:username}"
        if r < 0.6:
            return "${aws:PrincipalTag/team, 'red'}"
        if r < 0.7:
            return "${aws:RequestTag/missing, 'blue'}"
        if r < 0.78:
            return "${*}"
        if r < 0.81 and self.corners:
            self.features.add("variable-default-no-space")
            return "${aws:PrincipalTag/team,'red'}"
        if r < 0.85 and self.corners:
            self.features.add("variable-multivalued")
            return "${aws:TagKeys}"
        return "${aws:PrincipalAccount}"

    # --------------------------------------------------------------- conditions
    def condition(self) -> dict[str, dict[str, Json]]:
        family = self.rng.choice(
            ["string", "string", "numeric", "date", "bool", "ip", "arn", "null", "set"]
        )
        return getattr(self, f"cond_{family}")()  # type: ignore[no-any-return]

    def _suffix(self, op: str) -> str:
        return op + ("IfExists" if self.rng.random() < 0.2 else "")

    def _values(self, choices: Sequence[Json]) -> Json:
        n = self.rng.choice([1, 1, 1, 2, 3])
        vals = self.rng.sample(list(choices), min(n, len(choices)))
        return vals[0] if len(vals) == 1 and self.rng.random() < 0.7 else vals

    def cond_string(self) -> dict[str, dict[str, Json]]:
        op = self.rng.choice(
            [
                "StringEquals",
                "StringNotEquals",
                "StringEqualsIgnoreCase",
                "StringNotEqualsIgnoreCase",
                "StringLike",
                "StringNotLike",
            ]
        )
        key = self.rng.choice(
            [
                "aws:PrincipalTag/team",
                "aws:RequestTag/env",
                "aws:username",
                "aws:PrincipalAccount",
            ]
        )
        choices: list[Json] = [
            "red",
            "RED",
            "blue",
            "r*",
            "?ed",
            "prod",
            "dev",
            "alice",
            A,
            B,
        ]
        if self.rng.random() < 0.25:
            var = self.variable()
            choices.append(var)
            name = var[2:-1].split(",")[0].strip().lower()
            present = {k.lower() for k in self.ctx}
            if "Not" in op and "," not in var and name not in present | {"*"}:
                self.features.add("negated-unresolved-variable")
        return {self._suffix(op): {key: self._values(choices)}}

    def cond_numeric(self) -> dict[str, dict[str, Json]]:
        op = self.rng.choice(
            [
                "NumericEquals",
                "NumericNotEquals",
                "NumericLessThan",
                "NumericLessThanEquals",
                "NumericGreaterThan",
                "NumericGreaterThanEquals",
            ]
        )
        return {
            self._suffix(op): {"s3:max-keys": self._values(["5", "10", "50", "100"])}
        }

    def cond_date(self) -> dict[str, dict[str, Json]]:
        op = self.rng.choice(
            [
                "DateEquals",
                "DateNotEquals",
                "DateLessThan",
                "DateLessThanEquals",
                "DateGreaterThan",
                "DateGreaterThanEquals",
            ]
        )
        choices: list[Json] = [*_TIMES, "2024-01-01T00:00:00Z"]
        if self.corners and self.rng.random() < 0.08:
            self.features.add("date-epoch")
            choices = ["1714564800", "1700000000"]
        return {self._suffix(op): {"aws:CurrentTime": self._values(choices)}}

    def cond_bool(self) -> dict[str, dict[str, Json]]:
        key = self.rng.choice(["aws:SecureTransport", "aws:MultiFactorAuthPresent"])
        return {self._suffix("Bool"): {key: self.rng.choice(["true", "false"])}}

    def cond_ip(self) -> dict[str, dict[str, Json]]:
        op = self.rng.choice(["IpAddress", "NotIpAddress"])
        choices = [
            "10.0.0.0/24",
            "10.0.0.5/32",
            "192.168.0.0/16",
            "2001:db8::/64",
            "10.0.1.0/24",
        ]
        return {self._suffix(op): {"aws:SourceIp": self._values(choices)}}

    def cond_arn(self) -> dict[str, dict[str, Json]]:
        op = self.rng.choice(["ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"])
        choices = [
            f"arn:aws:sqs:us-east-1:{A}:q1",
            f"arn:aws:sqs:*:{A}:*",
            "arn:aws:sns:*:*:topic",
            f"arn:aws:sqs:us-east-1:{B}:q*",
            "arn:aws:s3:::bucket-*",
        ]
        if self.corners and self.rng.random() < 0.1:
            choices.append("arn:aws:sqs:*:${aws:PrincipalAccount}:q*")
        return {self._suffix(op): {"aws:SourceArn": self._values(choices)}}

    def cond_null(self) -> dict[str, dict[str, Json]]:
        key = self.rng.choice(
            [
                "aws:PrincipalTag/team",
                "aws:SourceIp",
                "aws:TagKeys",
                "aws:RequestTag/env",
            ]
        )
        if key == "aws:TagKeys" and self.ctx.get("aws:TagKeys") == []:
            self.features.add("empty-multivalued")
        return {"Null": {key: self.rng.choice(["true", "false"])}}

    def cond_set(self) -> dict[str, dict[str, Json]]:
        qual = self.rng.choice(["ForAllValues", "ForAnyValue"])
        base = self.rng.choice(
            ["StringEquals", "StringLike", "StringNotEquals", "StringNotLike"]
        )
        if_exists = self.rng.random() < 0.2
        if self.corners and self.rng.random() < 0.05:
            self.ctx["aws:TagKeys"] = []
        if self.ctx.get("aws:TagKeys") == []:
            self.features.add("empty-multivalued")
        if if_exists and qual == "ForAnyValue" and "aws:TagKeys" not in self.ctx:
            self.features.add("set-ifexists-absent")
        op = f"{qual}:{base}{'IfExists' if if_exists else ''}"
        vals = self._values(["team", "env", "cost", "t*", "Team"])
        return {op: {"aws:TagKeys": vals}}

    # --------------------------------------------------------------- statements
    def statement(self, effect: str, *, principal: bool = False) -> dict[str, Json]:
        st: dict[str, Json] = {"Effect": effect}
        acts = [self.action_pattern() for _ in range(self.rng.choice([1, 1, 2]))]
        st["NotAction" if self.rng.random() < 0.1 else "Action"] = (
            acts[0] if len(acts) == 1 else acts
        )
        res = [self.resource_pattern() for _ in range(self.rng.choice([1, 1, 2]))]
        not_resource = self.rng.random() < 0.08
        if not_resource and any("${" in r for r in res):
            self.features.add("notresource-variable")
        st["NotResource" if not_resource else "Resource"] = (
            res[0] if len(res) == 1 else res
        )
        if principal:
            st["Principal"] = self.principal_element()
        if self.rng.random() < 0.45:
            cond: dict[str, dict[str, Json]] = {}
            for _ in range(self.rng.choice([1, 1, 2])):
                for op, block in self.condition().items():
                    cond.setdefault(op, {}).update(block)
            st["Condition"] = cond
        return st

    def principal_element(self) -> Json:
        p = self.principal
        r = self.rng.random()
        if r < 0.12:
            return "*"
        if p.kind == "service":
            return {"Service": p.arn if r < 0.7 else "sns.amazonaws.com"}
        if p.kind == "anonymous" or p.account is None or p.arn is None:
            return {"AWS": self.rng.choice([A, f"arn:aws:iam::{B}:root"])}
        acct = p.account
        if r < 0.35:
            return {"AWS": self.rng.choice([acct, f"arn:aws:iam::{acct}:root"])}
        if r < 0.6:
            return {"AWS": p.arn}
        if r < 0.75:
            if p.kind in ("session", "slr"):
                role = p.context["aws:PrincipalArn"]
                return {"AWS": role}
            if p.kind == "federated":
                return {"AWS": f"arn:aws:iam::{acct}:user/{p.arn.rsplit('/', 1)[1]}"}
            return {"AWS": p.arn}
        other = A if acct == B else B
        return {
            "AWS": self.rng.choice(
                [
                    other,
                    f"arn:aws:iam::{acct}:user/mallory",
                    f"arn:aws:iam::{acct}:role/other",
                ]
            )
        }

    def policy(
        self, *, principal: bool = False, allow_bias: float = 0.7
    ) -> dict[str, Json]:
        n = self.rng.choice([1, 1, 2, 3])
        sts = [
            self.statement(
                "Allow" if self.rng.random() < allow_bias else "Deny",
                principal=principal,
            )
            for _ in range(n)
        ]
        return {"Version": V, "Statement": sts}


def generate_case(rng: random.Random, index: int, *, corners: bool = True) -> Case:
    """Build one random case (not yet balanced by decision).

    Args:
        rng: The seeded generator.
        index: The case number (for its id).
        corners: Also generate the undocumented corners (docs/policy-semantics.md).

    Returns:
        The case, with ``_features`` naming the corners it uses.
    """
    service = rng.choice(list(_ACTIONS))
    action = f"{service}:{rng.choice(_ACTIONS[service])}"
    principal_account = A
    cross = rng.random() < 0.3
    resource_account = B if cross else A
    name = rng.choice(["alice", "red", "t1", "x"])
    resource = _resource_arn(service, resource_account, name)
    p = _principal(rng, principal_account)
    ctx = _context(rng, p, resource_account)
    g = Gen(rng, service, action, resource, p, resource_account, ctx, corners=corners)
    case: Case = {"id": f"gen-{index}"}
    # Service principals and anonymous callers have no identity policies, boundary,
    # session or SCPs: only the resource side (and RCPs) takes part.
    iam = p.kind not in ("service", "anonymous")
    if iam:
        case["identityPolicies"] = [g.policy() for _ in range(rng.choice([1, 1, 2]))]
    if rng.random() < 0.5 or not iam:
        case["resourcePolicy"] = g.policy(principal=True)
    if iam and p.kind != "root" and rng.random() < 0.2:
        # The root user cannot have a permissions boundary.
        case["permissionBoundaries"] = [g.policy(allow_bias=0.85)]
    if p.kind in ("session", "federated") and rng.random() < (
        0.3 if p.kind == "session" else 0.8
    ):
        case["sessionPolicy"] = g.policy(allow_bias=0.85)
    if iam and rng.random() < 0.25:
        full = {
            "Version": V,
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        if rng.random() < 0.5:
            case["scps"] = [full, g.policy(allow_bias=0.5)]
        else:
            case["scps"] = [
                {"orgIdentifier": "r-root", "policies": [full]},
                {"orgIdentifier": "ou-1", "policies": [g.policy(allow_bias=0.8)]},
            ]
    if rng.random() < 0.2:
        case["rcps"] = [
            {
                "orgIdentifier": "r-root",
                "policies": [g.policy(allow_bias=0.2, principal=rng.random() < 0.5)],
            }
        ]
    if corners and iam and rng.random() < 0.03:
        case["scps"] = []
    request: dict[str, Json] = {
        "principal": p.arn,
        "action": action,
        "resource": resource,
        "resourceAccount": resource_account,
    }
    if ctx:
        request["context"] = ctx
    case["request"] = request
    case["_features"] = sorted(g.features)
    return case


# --- engines


def kubeiam_decision(case: Case) -> str:
    """kubeiam's decision for a case (``Error`` when it rejects the input)."""
    try:
        parsed = parse_case(_public(case))
        return evaluate(parsed.policy_set, parsed.request, explain=False).decision.value
    except InvalidPolicyError:
        return "Error"


def _public(case: Case) -> Case:
    return {k: v for k, v in case.items() if not k.startswith("_")}


def peer_available() -> bool:
    """True when node and the installed peer package are present."""
    return (
        shutil.which("node") is not None
        and (PEER_DIR / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir()
    )


def install_peer() -> None:
    """Install the pinned peer (``npm ci``) into tests/peers/npm/node_modules."""
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--silent"],
        cwd=PEER_DIR,
        check=True,
        timeout=600,
    )


def peer_decisions(cases: Sequence[Case]) -> list[str]:
    """The peer's decisions for a batch, one node process for all of them."""
    if not cases:
        return []
    payload = "\n".join(json.dumps(_public(c)) for c in cases) + "\n"
    proc = subprocess.run(
        ["node", str(PEER_SCRIPT)],
        input=payload,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"iam-simulate runner failed: {proc.stderr[-2000:]}")
    lines = proc.stdout.splitlines()
    if len(lines) != len(cases):
        raise RuntimeError(
            f"iam-simulate runner: {len(lines)} results for {len(cases)} cases"
        )
    out: list[str] = []
    for line in lines:
        row = json.loads(line)
        out.append(row.get("decision", "Error"))
    return out


# --- balance


def balanced_cases(seed: int, count: int, *, corners: bool = True) -> list[Case]:
    """``count`` cases, about a third of each kubeiam decision.

    Args:
        seed: The generator seed (same seed, same cases).
        count: How many.
        corners: Include the undocumented corners.

    Returns:
        The cases, ``_kubeiam`` holding kubeiam's decision.
    """
    rng = random.Random(seed)
    quota = {
        d: count // 3 + (1 if i < count % 3 else 0) for i, d in enumerate(DECISIONS)
    }
    out: list[Case] = []
    index = 0
    attempts = 0
    while len(out) < count and attempts < count * 40:
        attempts += 1
        case = generate_case(rng, index, corners=corners)
        decision = kubeiam_decision(case)
        if decision == "Error" or quota.get(decision, 0) <= 0:
            continue
        quota[decision] -= 1
        case["_kubeiam"] = decision
        out.append(case)
        index += 1
    return out


# --- divergences


@dataclass(frozen=True, slots=True)
class Known:
    """One listed peer divergence.

    Attributes:
        id: Short name.
        when: Case features that must all be present (``case_features``).
        kubeiam: kubeiam decisions this entry covers (empty: any).
        peer: iam-simulate decisions this entry covers (empty: any).
        verdict: Who follows the documentation (``peer-bug`` or ``kubeiam-choice``).
        documentation: The AWS documentation text that decides it.
        summary: One line.
    """

    id: str
    when: tuple[str, ...]
    kubeiam: tuple[str, ...]
    peer: tuple[str, ...]
    verdict: str
    documentation: str
    summary: str

    def covers(self, features: set[str], ours: str, theirs: str) -> bool:
        """Whether this entry explains a disagreement."""
        return (
            set(self.when) <= features
            and (not self.kubeiam or ours in self.kubeiam)
            and (not self.peer or theirs in self.peer)
        )


def load_known(path: Path = KNOWN_FILE) -> list[Known]:
    """The listed divergences (each with the documentation that decides it)."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [
        Known(
            r["id"],
            tuple(r["when"]),
            tuple(r.get("kubeiam", ())),
            tuple(r.get("peer", ())),
            r["verdict"],
            r["documentation"],
            r["summary"],
        )
        for r in rows
    ]


def case_features(case: Case) -> set[str]:
    """Generator corners plus the principal kind and policy types of a case."""
    features = set(case.get("_features", ()))
    principal = case["request"].get("principal")
    if principal is None:
        features.add("principal:anonymous")
    elif ":" not in principal:
        features.add("principal:service")
    elif "AWSServiceRoleFor" in principal:
        features.add("principal:service-linked-role")
    else:
        resource = principal.split(":", 5)[5]
        features.add(
            {
                "root": "principal:root",
                "user": "principal:user",
                "assumed-role": "principal:session",
                "federated-user": "principal:federated-user",
            }.get(resource.split("/")[0], "principal:other")
        )
    for key in (
        "resourcePolicy",
        "permissionBoundaries",
        "sessionPolicy",
        "scps",
        "rcps",
    ):
        features.add(f"has:{key}" if case.get(key) else f"no:{key}")
    return features


def classify(case: Case, ours: str, theirs: str, known: Sequence[Known]) -> str | None:
    """The id of the listed divergence that explains a disagreement, if any."""
    features = case_features(case)
    for k in known:
        if k.covers(features, ours, theirs):
            return k.id
    return None


# --- minimise


def _reductions(value: Json, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths of list items and optional object members that could be removed."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            if len(value) > 1 or path[-1:] in (
                ("identityPolicies",),
                ("scps",),
                ("rcps",),
            ):
                yield (*path, i)
            yield from _reductions(item, (*path, i))
    elif isinstance(value, dict):
        for k, item in value.items():
            if (
                k in _OPTIONAL
                or (path[-1:] == ("context",))
                or (path[-1:] == ("Condition",))
            ):
                yield (*path, k)
            if path[-2:-1] == ("Condition",):
                yield (*path, k)
            yield from _reductions(item, (*path, k))


_OPTIONAL = frozenset(
    {
        "identityPolicies",
        "resourcePolicy",
        "permissionBoundaries",
        "sessionPolicy",
        "scps",
        "rcps",
        "Condition",
        "context",
        "resourceAccount",
    }
)


def _without(case: Case, path: tuple[Any, ...]) -> Case:
    out = copy.deepcopy(case)
    node: Json = out
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return out


def minimize(
    case: Case,
    *,
    decide: Callable[[Sequence[Case]], list[tuple[str, str]]],
    rounds: int = 60,
) -> Case:
    """Delta-minimise a disagreeing case while both decisions stay the same.

    Args:
        case: The case (public keys only are kept).
        decide: Batch function returning (kubeiam, peer) decisions per case.
        rounds: Upper bound on shrinking rounds.

    Returns:
        A smaller case with the same two decisions (1-minimal for single removals).
    """
    current = _public(case)
    target = decide([current])[0]
    for _ in range(rounds):
        candidates = [_without(current, p) for p in _reductions(current)]
        candidates = [c for c in candidates if "request" in c]
        if not candidates:
            break
        results = decide(candidates)
        for cand, res in zip(candidates, results, strict=True):
            if res == target:
                current = cand
                break
        else:
            break
    return current


def decide_both(cases: Sequence[Case]) -> list[tuple[str, str]]:
    """(kubeiam, peer) decisions for a batch."""
    ours = [kubeiam_decision(c) for c in cases]
    theirs = peer_decisions(cases)
    return list(zip(ours, theirs, strict=True))


# --- run


@dataclass(slots=True)
class Report:
    """The outcome of one differential run."""

    count: int
    seconds_kubeiam: float
    seconds_peer: float
    by_decision: Counter[str]
    agree: int
    listed: Counter[str]
    unlisted: list[tuple[Case, str, str]]
    peer_errors: int

    def summary(self) -> str:
        """A human table."""
        lines = [
            f"cases: {self.count} (kubeiam: "
            + ", ".join(f"{d} {self.by_decision[d]}" for d in DECISIONS)
            + ")",
            f"agree: {self.agree}",
            f"listed divergences: {sum(self.listed.values())}",
        ]
        for k, n in sorted(self.listed.items()):
            lines.append(f"  {k}: {n}")
        lines.append(f"peer errors: {self.peer_errors}")
        lines.append(f"unlisted disagreements: {len(self.unlisted)}")
        lines.append(
            f"time: kubeiam {self.seconds_kubeiam:.2f}s, "
            f"iam-simulate {self.seconds_peer:.2f}s"
        )
        return "\n".join(lines)


def run(seed: int, count: int, *, corners: bool = True) -> Report:
    """Generate, decide with both engines and classify the disagreements."""
    cases = balanced_cases(seed, count, corners=corners)
    known = load_known()
    t0 = time.perf_counter()
    ours = [kubeiam_decision(c) for c in cases]
    t1 = time.perf_counter()
    theirs = peer_decisions(cases)
    t2 = time.perf_counter()
    listed: Counter[str] = Counter()
    unlisted: list[tuple[Case, str, str]] = []
    errors = 0
    agree = 0
    for case, a, b in zip(cases, ours, theirs, strict=True):
        if b == "Error":
            errors += 1
        if a == b:
            agree += 1
            continue
        kid = classify(case, a, b, known)
        if kid is None:
            unlisted.append((case, a, b))
        else:
            listed[kid] += 1
    return Report(
        count=len(cases),
        seconds_kubeiam=t1 - t0,
        seconds_peer=t2 - t1,
        by_decision=Counter(ours),
        agree=agree,
        listed=listed,
        unlisted=unlisted,
        peer_errors=errors,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m tests.policy.iam.iam_differential [--seed N] [--count N]``."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.policy.iam.iam_differential",
        description="Compare kubeiam's IAM engine with @cloud-copilot/iam-simulate.",
        epilog="example: python -m tests.policy.iam.iam_differential --count 20000",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--no-corners", action="store_true", help="skip the corners")
    parser.add_argument("--show", type=int, default=5, help="minimised repros to print")
    args = parser.parse_args(argv)
    if not peer_available():
        install_peer()
    report = run(args.seed, args.count, corners=not args.no_corners)
    print(report.summary())
    for case, a, b in report.unlisted[: args.show]:
        small = minimize(case, decide=decide_both)
        print(f"\nunlisted: kubeiam {a}, iam-simulate {b}; minimised:")
        print(json.dumps(small, indent=1))
    return 1 if report.unlisted else 0


if __name__ == "__main__":
    sys.exit(main())
