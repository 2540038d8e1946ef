"""Access-path edges decided by the IAM engine (pure).

Every edge here is one or more :func:`policy.iam.evaluator.evaluate` calls; the decisive
statements become the edge's evidence. The edges follow PMapper's documented
escalation edges (``sts:AssumeRole``, ``iam:PassRole`` plus a service launch,
credential creation, trust and policy editing) and add the EKS API ones
(``eks:CreateAccessEntry`` + ``eks:AssociateAccessPolicy``).

Speed: a principal's identity policies are scanned once for the actions that
can make edges (a statement that cannot match an action cannot allow it), and
trust policies are indexed by the principals they name, so a role is only
evaluated for callers its trust can match. Both filters are over-approximate:
the engine still decides every edge.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from authenticator.arn import strip_role_path
from policy.iam.accounts import Account, Principal
from policy.iam.evaluator import evaluate
from policy.iam.model import compile_policy
from policy.iam.request import PolicySet, Request
from policy.iam.statement import CompiledPolicy, Effect
from policy.iam.trace import EvaluationResult
from policy.paths.model import (
    AWS_ADMIN_PREFIX,
    CLUSTER_ADMIN,
    Edge,
    EdgeKind,
    Node,
    NodeKind,
)
from policy.tiers.workloads import ECSTask

__all__ = ["ESCALATED_SUFFIX", "IAMActor", "IAMSide", "decisive_statements"]

# Suffix of the node that stands for "this principal with any policy attached".
ESCALATED_SUFFIX = " (any policy)"
# An action no policy names except by wildcard: allowed only by "*" (or a
# NotAction that does not exclude it), which is what "administrator" means here.
PROBE_ACTION = "kubeiam-probe:AnyAction"
# Session name used for a role's caller ARN (aws:PrincipalArn is the role's).
_SESSION = "kubeiam-paths"
# "Attach AdministratorAccess" as a document: what a self-editing principal gets.
_ANY_POLICY: Mapping[str, object] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
# Service principals that take a passed role, and the calls that launch code
# with it (PMapper edges: ec2, lambda; ECS from the ECS developer guide).
LAUNCHES: dict[str, tuple[str, ...]] = {
    "ecs-tasks.amazonaws.com": ("ecs:RegisterTaskDefinition", "ecs:RunTask"),
    "lambda.amazonaws.com": ("lambda:CreateFunction", "lambda:InvokeFunction"),
    "ec2.amazonaws.com": ("ec2:RunInstances",),
}
_USER_EDITS = ("iam:PutUserPolicy", "iam:AttachUserPolicy")
_GROUP_EDITS = ("iam:PutGroupPolicy", "iam:AttachGroupPolicy")
_ROLE_EDITS = ("iam:PutRolePolicy", "iam:AttachRolePolicy")
_EDGE_ACTIONS = (
    "sts:AssumeRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:PassRole",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:CreatePolicyVersion",
    "ecs:RunTask",
    "eks:AssociateAccessPolicy",
    "eks:CreateAccessEntry",
    PROBE_ACTION,
    *_USER_EDITS,
    *_GROUP_EDITS,
    *_ROLE_EDITS,
    *(a for calls in LAUNCHES.values() for a in calls),
)


def decisive_statements(result: EvaluationResult) -> tuple[str, ...]:
    """The statements that made an evaluation come out as it did, for humans.

    Args:
        result: An evaluation.

    Returns:
        ``<type> policy '<name>' /Statement/<i> (Sid "...")`` strings.
    """
    stmts = result.trace.decisive or tuple(
        s for s in result.trace.statements if s.applies and s.effect == "Allow"
    )
    return tuple(f"{s.policy_type} policy {s.policy!r} {s.statement}" for s in stmts)


@dataclass(frozen=True, slots=True)
class IAMActor:
    """An IAM node with what it needs to be evaluated."""

    node: Node
    account: Account
    principal: Principal
    policy_set: PolicySet
    caller: str
    may: frozenset[str]

    def check(
        self,
        action: str,
        resource: str,
        context: Mapping[str, object] | None = None,
        *,
        resource_policy: CompiledPolicy | None = None,
    ) -> EvaluationResult | None:
        """Evaluate one request as this node; the result if allowed, else None.

        Args:
            action: ``service:Action``.
            resource: The resource ARN.
            context: Extra condition keys.
            resource_policy: A resource (trust) policy taking part.

        Returns:
            The allowing result, or None.
        """
        ps = self.policy_set
        if resource_policy is not None:
            ps = PolicySet(
                identity=ps.identity,
                boundaries=ps.boundaries,
                scps=ps.scps,
                resource=resource_policy,
            )
        req = Request(self.caller, action, resource, context=dict(context or {}))
        result = evaluate(ps, req, explain=False)
        return result if result.allowed else None


def _may(identity: Sequence[CompiledPolicy]) -> frozenset[str]:
    out: set[str] = set()
    for action in _EDGE_ACTIONS:
        for pol in identity:
            if any(
                st.effect is Effect.ALLOW
                and st.actions.matches(action) != st.not_action
                for st in pol.statements
            ):
                out.add(action)
                break
    return frozenset(out)


def _key(arn: str) -> str:
    return strip_role_path(arn).lower()


@dataclass(slots=True)
class IAMSide:
    """The IAM principals of some accounts and the edges between them."""

    accounts: Sequence[Account]
    tasks: Sequence[ECSTask] = ()
    cluster_arns: Sequence[str] = ()
    has_access_entry: frozenset[str] = frozenset()
    principals: dict[str, tuple[Account, Principal]] = field(default_factory=dict)
    _trust_by_name: dict[str, list[str]] = field(default_factory=dict)
    _trust_any: list[str] = field(default_factory=list)
    _service_roles: dict[str, list[str]] = field(default_factory=dict)
    _actors: dict[str, IAMActor] = field(default_factory=dict)
    _any_policy: dict[str, CompiledPolicy] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for account in self.accounts:
            for arn, p in account.principals.items():
                self.principals[arn] = (account, p)
                if p.kind == "role":
                    self._index_trust(account, p)

    def _index_trust(self, account: Account, role: Principal) -> None:
        trust = account.trust(role)
        if trust is None:
            return
        names: set[str] = set()
        wildcard = False
        for st in trust.statements:
            spec = st.principal
            if st.effect is not Effect.ALLOW or spec is None:
                continue
            if st.not_principal or spec.wildcard:
                wildcard = True
                continue
            for value in spec.aws:
                if "*" in value:
                    wildcard = True
                elif value.isdigit() or value.endswith(":root"):
                    names.add(
                        "acct:" + (value if value.isdigit() else value.split(":")[4])
                    )
                else:
                    names.add(_key(value))
            for service in spec.service:
                self._service_roles.setdefault(service, []).append(role.arn)
        if wildcard:
            self._trust_any.append(role.arn)
        for name in names:
            self._trust_by_name.setdefault(name, []).append(role.arn)

    def node(self, arn: str) -> Node:
        """The node of an IAM principal.

        Args:
            arn: The principal's ARN, or ARN + :data:`ESCALATED_SUFFIX`.

        Returns:
            The node.
        """
        base = arn.removesuffix(ESCALATED_SUFFIX)
        account, p = self.principals[base]
        kind = NodeKind.IAM_ROLE if p.kind == "role" else NodeKind.IAM_USER
        if base != arn:
            kind = NodeKind.IAM_ESCALATED
        label = f"{p.kind} {p.name}" + (ESCALATED_SUFFIX if base != arn else "")
        return Node(arn, kind, label, account.account_id)

    def actor(self, node_id: str) -> IAMActor:
        """The evaluation context of an IAM node (built once).

        Args:
            node_id: An IAM node id.

        Returns:
            The actor.
        """
        actor = self._actors.get(node_id)
        if actor is not None:
            return actor
        base = node_id.removesuffix(ESCALATED_SUFFIX)
        account, p = self.principals[base]
        ps = account.policy_set(p)
        if base != node_id:
            extra = self._any_policy.get(account.account_id)
            if extra is None:
                extra = compile_policy(
                    dict(_ANY_POLICY), name="any policy", kind="identity"
                )
                self._any_policy[account.account_id] = extra
            ps = PolicySet(
                identity=(*ps.identity, extra), boundaries=ps.boundaries, scps=ps.scps
            )
        caller = p.arn
        if p.kind == "role":
            caller = (
                f"arn:{account.partition}:sts::{account.account_id}:"
                f"assumed-role/{p.name}/{_SESSION}"
            )
        actor = IAMActor(self.node(node_id), account, p, ps, caller, _may(ps.identity))
        self._actors[node_id] = actor
        return actor

    def is_admin(self, node_id: str) -> Edge | None:
        """The edge to ``aws-admin:<account>`` when the node may do anything.

        Args:
            node_id: An IAM node id.

        Returns:
            The edge, or None.
        """
        a = self.actor(node_id)
        if PROBE_ACTION not in a.may:
            return None
        hit = a.check(PROBE_ACTION, "*")
        if hit is None or a.check("iam:AttachRolePolicy", "*") is None:
            return None
        return Edge(
            node_id,
            AWS_ADMIN_PREFIX + a.account.account_id,
            EdgeKind.GRANTS,
            "allowed every action on every resource",
            decisive_statements(hit),
        )

    def edges_from(self, node_id: str) -> list[Edge]:
        """Every IAM-decided edge out of an IAM node.

        Args:
            node_id: An IAM node id.

        Returns:
            The edges (the admin edge included).
        """
        a = self.actor(node_id)
        admin = self.is_admin(node_id)
        if admin is not None:
            # An administrator can become every principal of its own account
            # (UpdateAssumeRolePolicy, CreateAccessKey): aws-admin:<account> stands
            # for all of that; only the edges that leave the account are listed.
            own = a.account.account_id
            return [
                admin,
                *(
                    e
                    for e in self._assume(a)
                    if self.principals[e.dst][0].account_id != own
                ),
                *self._eks(a),
            ]
        edges = list(self._assume(a))
        edges += self._same_account(a)
        edges += self._eks(a)
        if not node_id.endswith(ESCALATED_SUFFIX):
            edges += self._edits(a, {e.dst for e in edges})
        return edges

    def _assume(self, a: IAMActor) -> Iterator[Edge]:
        p = a.principal
        named = self._trust_by_name.get(_key(p.arn), [])
        broad = self._trust_by_name.get("acct:" + a.account.account_id, [])
        if "sts:AssumeRole" in a.may:
            candidates = dict.fromkeys([*named, *broad, *self._trust_any])
        else:
            # A trust policy that names the caller's ARN can grant on its own.
            candidates = dict.fromkeys(named)
        for role_arn in candidates:
            if role_arn == p.arn:
                continue
            account, role = self.principals[role_arn]
            hit = a.check(
                "sts:AssumeRole", role_arn, resource_policy=account.trust(role)
            )
            if hit is not None:
                yield Edge(
                    a.node.id,
                    role_arn,
                    EdgeKind.ASSUME_ROLE,
                    f"may call sts:AssumeRole on {role.name} and its trust policy "
                    "allows it",
                    decisive_statements(hit),
                )

    def _same_account(self, a: IAMActor) -> Iterator[Edge]:
        src = a.node.id
        account = a.account
        if "iam:UpdateAssumeRolePolicy" in a.may:
            for arn, p in account.principals.items():
                if p.kind != "role" or arn == a.principal.arn:
                    continue
                hit = a.check("iam:UpdateAssumeRolePolicy", arn)
                if hit is not None:
                    yield Edge(
                        src,
                        arn,
                        EdgeKind.UPDATE_TRUST,
                        f"may rewrite the trust policy of {p.name} to trust itself",
                        decisive_statements(hit),
                    )
        if "iam:PassRole" in a.may:
            yield from self._pass_role(a)
        for action, kind, why in (
            ("iam:CreateAccessKey", EdgeKind.ACCESS_KEY, "create an access key for"),
            ("iam:CreateLoginProfile", EdgeKind.LOGIN_PROFILE, "set a password for"),
            ("iam:UpdateLoginProfile", EdgeKind.LOGIN_PROFILE, "reset the password of"),
        ):
            if action not in a.may:
                continue
            for arn, p in account.principals.items():
                if p.kind != "user" or arn == a.principal.arn:
                    continue
                hit = a.check(action, arn)
                if hit is not None:
                    yield Edge(
                        src,
                        arn,
                        kind,
                        f"may {why} user {p.name}",
                        decisive_statements(hit),
                    )

    def _pass_role(self, a: IAMActor) -> Iterator[Edge]:
        seen: set[str] = set()
        for service, calls in LAUNCHES.items():
            if not all(c in a.may for c in calls):
                continue
            launches = [a.check(c, "*") for c in calls]
            if not all(launches):
                continue
            for role_arn in self._service_roles.get(service, ()):
                if role_arn in seen:
                    continue
                account, role = self.principals[role_arn]
                if account is not a.account:
                    continue  # a role is passed within its own account
                trust = account.trust(role)
                req = Request({"Service": service}, "sts:AssumeRole", role_arn)
                if (
                    trust is None
                    or not evaluate(
                        PolicySet(resource=trust), req, explain=False
                    ).allowed
                ):
                    continue
                hit = a.check(
                    "iam:PassRole", role_arn, {"iam:PassedToService": service}
                )
                if hit is None:
                    continue
                seen.add(role_arn)
                evidence = decisive_statements(hit)
                for launch in launches:
                    assert launch is not None  # noqa: S101 - all() checked above
                    evidence += decisive_statements(launch)
                yield Edge(
                    a.node.id,
                    role_arn,
                    EdgeKind.PASS_ROLE,
                    f"may pass {role.name} to {service} and launch it "
                    f"({', '.join(calls)})",
                    evidence,
                )
        yield from self._run_task(a)

    def _run_task(self, a: IAMActor) -> Iterator[Edge]:
        if "ecs:RunTask" not in a.may:
            return
        for task in self.tasks:
            if not task.task_role_arn or task.task_role_arn not in self.principals:
                continue
            run = a.check("ecs:RunTask", task.arn or "*")
            passed = a.check(
                "iam:PassRole",
                task.task_role_arn,
                {"iam:PassedToService": "ecs-tasks.amazonaws.com"},
            )
            if run is None or passed is None:
                continue
            yield Edge(
                a.node.id,
                task.task_role_arn,
                EdgeKind.RUN_TASK,
                f"may run task definition {task.family}:{task.revision} "
                "(with a command override), whose task role this is",
                decisive_statements(run) + decisive_statements(passed),
            )

    def _eks(self, a: IAMActor) -> Iterator[Edge]:
        if "eks:AssociateAccessPolicy" not in a.may:
            return
        for cluster in self.cluster_arns or ("*",):
            assoc = a.check("eks:AssociateAccessPolicy", cluster)
            if assoc is None:
                continue
            evidence = decisive_statements(assoc)
            if _key(a.principal.arn) not in self.has_access_entry:
                create = a.check("eks:CreateAccessEntry", cluster)
                if create is None:
                    continue
                evidence += decisive_statements(create)
            yield Edge(
                a.node.id,
                CLUSTER_ADMIN,
                EdgeKind.EKS_ACCESS_ENTRY,
                "may give itself an access entry with AmazonEKSClusterAdminPolicy "
                f"on {cluster}",
                evidence,
            )
            return

    def _edit_evidence(self, a: IAMActor, target: Principal) -> tuple[str, ...]:
        account = a.account
        pairs: list[tuple[str, str]] = []
        if target.kind == "user":
            pairs += [(act, target.arn) for act in _USER_EDITS]
            for g in target.groups:
                group_arn = (
                    f"arn:{account.partition}:iam::{account.account_id}:group/{g}"
                )
                pairs += [(act, group_arn) for act in _GROUP_EDITS]
        else:
            pairs += [(act, target.arn) for act in _ROLE_EDITS]
        pairs += [
            ("iam:CreatePolicyVersion", pol.arn)
            for pol in target.identity_policies
            if pol.arn and ":iam::aws:policy/" not in pol.arn
        ]
        for action, resource in pairs:
            if action not in a.may:
                continue
            hit = a.check(action, resource)
            if hit is not None:
                return (f"{action} on {resource}", *decisive_statements(hit))
        return ()

    def _edits(self, a: IAMActor, reached: set[str]) -> Iterator[Edge]:
        if not any(
            act in a.may
            for act in (
                *_USER_EDITS,
                *_GROUP_EDITS,
                *_ROLE_EDITS,
                "iam:CreatePolicyVersion",
            )
        ):
            return
        me = a.principal.arn
        for arn in [me, *sorted(reached)]:
            if arn not in self.principals or self.principals[arn][0] is not a.account:
                continue
            evidence = self._edit_evidence(a, self.principals[arn][1])
            if not evidence:
                continue
            name = self.principals[arn][1].name
            why = (
                "may attach any policy to itself"
                if arn == me
                else f"may attach any policy to {name}, and can act as {name}"
            )
            yield Edge(
                a.node.id, arn + ESCALATED_SUFFIX, EdgeKind.EDIT_POLICY, why, evidence
            )
