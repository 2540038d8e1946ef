"""The explaining IAM evaluator: the decision and its trace at once (pure).

``evaluate_traced`` walks the decision procedure of ``policy.iam.evaluator``
(docs/policy-semantics.md) statement by statement and records every result:
per-type verdicts, deciding statements, condition results and missing keys.
It is the reference ``policy.iam.evaluator.decide`` is tested against, and
what builds ``evaluate``'s trace when ``result.trace`` is first read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import cast

from policy.iam.arnmatch import arn_regex
from policy.iam.conditions import ClauseResult, evaluate_clause
from policy.iam.context import (
    ALWAYS_ALLOWED,
    TRUST_ACTIONS,
    derived_context,
    resource_account_of,
)
from policy.iam.keys import is_multi_valued
from policy.iam.principals import (
    Grant,
    PrincipalKind,
    grant_for,
    not_principal_excepts,
)
from policy.iam.request import NOT_APPLICABLE, Decision, PolicySet, Request
from policy.iam.statement import (
    CompiledPolicy,
    Effect,
    PolicyKind,
    Statement,
)
from policy.iam.trace import EvaluationResult, StatementResult, Trace
from policy.iam.variables import resolve_template

__all__ = ["evaluate_traced"]

# Decision strings of the trace's per-type verdicts (enum ``.value`` is slow).
_ALLOWED = Decision.ALLOWED.value
_IMPLICITLY_DENIED = Decision.IMPLICITLY_DENIED.value
_EXPLICITLY_DENIED = Decision.EXPLICITLY_DENIED.value


class _Eval:
    """Per-request evaluation state (local to one ``evaluate`` call)."""

    __slots__ = ("bounded", "ctx", "explain", "p", "req", "results", "service")

    def __init__(
        self,
        req: Request,
        ctx: Mapping[str, tuple[str, ...]],
        explain: bool,
        *,
        bounded: bool = False,
    ) -> None:
        self.bounded = bounded
        self.req = req
        self.p = req.principal_info
        self.ctx = ctx
        self.explain = explain
        self.service = req.action.split(":", 1)[0].lower()
        self.results: list[StatementResult] = []

    def lookup(self, key: str) -> str | None:
        # A multivalued key is never a policy variable, even with one value
        # (Variables and tags: "You cannot use ... multivalued keys").
        if is_multi_valued(key):
            return None
        values = self.ctx.get(key)
        return values[0] if values is not None and len(values) == 1 else None

    def run(
        self, ptype: str, policies: Iterable[CompiledPolicy], level: int | None = None
    ) -> list[StatementResult]:
        """Evaluate policies; return the statements that apply."""
        applied: list[StatementResult] = []
        for policy in policies:
            for st in policy.candidates(self.service):
                res = self.statement(ptype, policy, st, level)
                if res is None:
                    continue
                if self.explain or res.applies:
                    self.results.append(res)
                if res.applies:
                    applied.append(res)
        return applied

    def statement(
        self, ptype: str, policy: CompiledPolicy, st: Statement, level: int | None
    ) -> StatementResult | None:
        def result(
            applies: bool,
            failed: str | None,
            conds: tuple[ClauseResult, ...] = (),
            grant: Grant | None = None,
        ) -> StatementResult:
            return StatementResult(
                ptype,
                policy.name,
                st.pointer,
                st.index,
                st.sid,
                "Allow" if st.effect is Effect.ALLOW else "Deny",
                applies,
                failed,
                conds,
                grant,
                level,
            )

        if st.actions.matches(self.req.action) == st.not_action:
            return (
                result(False, "NotAction" if st.not_action else "Action")
                if self.explain
                else None
            )
        if st.resources is not None and self.resource_match(st) == st.not_resource:
            return result(False, "NotResource" if st.not_resource else "Resource")
        grant = None
        if st.principal is not None:
            if st.not_principal:
                # Deny + NotPrincipal always denies a principal that has a
                # permissions boundary (Permissions boundaries for IAM entities).
                if not self.bounded and not_principal_excepts(st.principal, self.p):
                    return result(False, "NotPrincipal")
                grant = Grant.DIRECT
            else:
                grant = grant_for(st.principal, self.p)
                if grant is None:
                    return result(False, "Principal")
        conds: list[ClauseResult] = []
        ok = True
        for clause in st.conditions:
            outcome = evaluate_clause(clause, self.ctx, self.lookup)
            conds.append(outcome)
            if not outcome.result:
                ok = False
                if not self.explain:
                    break
        return result(
            ok, None if ok else "Condition", tuple(conds), grant if ok else None
        )

    def resource_match(self, st: Statement) -> bool:
        resource = self.req.resource
        for pattern in st.resources or ():
            if pattern.match_all:
                return True
            if pattern.compiled is not None:
                if pattern.compiled.fullmatch(resource):
                    return True
                continue
            chunks = resolve_template(pattern.template, self.lookup)
            if chunks is not None and arn_regex(chunks).fullmatch(resource):
                return True
        return False


def _verdict(applied: list[StatementResult]) -> str:
    if any(r.effect == "Deny" for r in applied):
        return _EXPLICITLY_DENIED
    if any(r.effect == "Allow" for r in applied):
        return _ALLOWED
    return _IMPLICITLY_DENIED


def _allows(applied: list[StatementResult]) -> list[StatementResult]:
    return [r for r in applied if r.effect == "Allow"]


def evaluate_traced(
    policy_set: PolicySet, request: Request, *, explain: bool = True
) -> EvaluationResult:
    """Decide a request and build its trace at once (the explaining evaluator).

    ``evaluate`` gives the same decision; this is the reference it is tested
    against, and what builds ``evaluate``'s trace on demand.

    Args:
        policy_set: The compiled policies.
        request: The request.
        explain: Keep every statement whose action matched, and every condition
            result, in the trace (False: only the applying ones).

    Returns:
        The decision and its trace.
    """
    p = request.principal_info
    r_account = resource_account_of(request, p)
    ctx = derived_context(request, p, r_account)
    has_boundary = (
        bool(policy_set.boundaries)
        and p.kind.is_iam
        and p.kind is not PrincipalKind.ROOT
    )
    ev = _Eval(request, ctx, explain, bounded=has_boundary)
    cross = p.account is not None and r_account is not None and p.account != r_account
    action = request.action.lower()
    verdicts: dict[str, str] = {}

    def finish(
        decision: Decision, reason: str, decisive: Sequence[StatementResult] = ()
    ) -> EvaluationResult:
        missing = sorted({c.key for s in ev.results for c in s.conditions if c.missing})
        trace = Trace(
            reason,
            verdicts,
            tuple(decisive),
            tuple(ev.results),
            p,
            r_account,
            cross,
            tuple(missing),
        )
        return EvaluationResult(decision, trace)

    if action in ALWAYS_ALLOWED:
        return finish(Decision.ALLOWED, "sts:GetCallerIdentity is always allowed")

    iam_principal = p.kind.is_iam
    org_exempt = p.is_service_linked
    applies_scp = iam_principal and not org_exempt and bool(policy_set.scps)
    applies_rcp = not org_exempt and bool(policy_set.rcps)
    applies_boundary = (
        bool(policy_set.boundaries)
        and iam_principal
        and p.kind is not PrincipalKind.ROOT
    )
    session_policies = cast("tuple[CompiledPolicy, ...]", policy_set.session)
    scp_defs, rcp_defs = policy_set.scp_levels, policy_set.rcp_levels
    applies_session = iam_principal and (
        bool(session_policies) or p.kind is PrincipalKind.FEDERATED_USER
    )

    scp_levels = (
        [ev.run("scp", lvl.policies, i) for i, lvl in enumerate(scp_defs)]
        if applies_scp
        else []
    )
    rcp_levels = (
        [ev.run("rcp", lvl.policies, i) for i, lvl in enumerate(rcp_defs)]
        if applies_rcp
        else []
    )
    resource = (
        ev.run("resource", [policy_set.resource])
        if policy_set.resource is not None
        else []
    )
    identity = ev.run("identity", policy_set.identity) if iam_principal else []
    boundary = ev.run("boundary", policy_set.boundaries) if applies_boundary else []
    session = ev.run("session", session_policies) if applies_session else []

    verdicts["scp"] = _level_verdict(scp_levels) if applies_scp else NOT_APPLICABLE
    rcp_denied = any(r.effect == "Deny" for lvl in rcp_levels for r in lvl)
    verdicts["rcp"] = (
        (_EXPLICITLY_DENIED if rcp_denied else _ALLOWED)
        if applies_rcp
        else NOT_APPLICABLE
    )
    verdicts["resource"] = (
        _verdict(resource) if policy_set.resource is not None else NOT_APPLICABLE
    )
    verdicts["identity"] = _verdict(identity) if iam_principal else NOT_APPLICABLE
    verdicts["boundary"] = _verdict(boundary) if applies_boundary else NOT_APPLICABLE
    verdicts["session"] = _verdict(session) if applies_session else NOT_APPLICABLE

    everything = (
        [r for lvl in scp_levels + rcp_levels for r in lvl]
        + resource
        + identity
        + boundary
        + session
    )
    denies = [r for r in everything if r.effect == "Deny"]
    if denies:
        first = denies[0]
        return finish(
            Decision.EXPLICITLY_DENIED,
            f"explicit Deny in {first.policy_type} policy {first.policy!r} "
            f"{first.statement}",
            denies,
        )

    for i, lvl in enumerate(scp_levels):
        if not _allows(lvl):
            name = scp_defs[i].name or str(i)
            return finish(
                Decision.IMPLICITLY_DENIED,
                f"no SCP at level {name!r} allows the action",
            )

    res_allows = _allows(resource)
    grant = max((r.grant for r in res_allows if r.grant is not None), default=None)
    identity_allows = _allows(identity)
    identity_ok = bool(identity_allows) or p.kind is PrincipalKind.ROOT
    boundary_ok = not applies_boundary or bool(_allows(boundary))
    session_ok = not applies_session or bool(_allows(session))
    explicit_needed = policy_set.resource is not None and (
        policy_set.resource.kind is PolicyKind.TRUST
        or action in TRUST_ACTIONS
        or ev.service == "kms"
    )

    def limits() -> tuple[bool, str]:
        if not boundary_ok:
            return False, "the permissions boundary does not allow the action"
        if not session_ok:
            return (
                False,
                "no session policy allows the action"
                if session_policies
                else "a federated-user session without a session policy has no "
                "permissions",
            )
        return True, ""

    if not iam_principal:
        if grant is not None:
            return finish(
                Decision.ALLOWED,
                "the resource policy allows this principal",
                res_allows,
            )
        return finish(
            Decision.IMPLICITLY_DENIED,
            f"no resource policy allows the {p.kind.value.lower()} principal",
        )

    if cross:
        if grant is None:
            return finish(
                Decision.IMPLICITLY_DENIED,
                "cross-account: the resource policy does not allow the principal",
            )
        if not identity_ok:
            return finish(
                Decision.IMPLICITLY_DENIED,
                "cross-account: no identity policy allows the action",
            )
        ok, why = limits()
        if not ok:
            return finish(Decision.IMPLICITLY_DENIED, f"cross-account: {why}")
        return finish(
            Decision.ALLOWED,
            "cross-account: both the resource policy and the principal's "
            "policies allow",
            res_allows + identity_allows,
        )

    if grant is Grant.DIRECT and p.kind is not PrincipalKind.ROLE:
        return finish(
            Decision.ALLOWED,
            "the resource policy names the principal directly",
            res_allows,
        )
    if grant in (Grant.ROLE, Grant.DIRECT):
        ok, why = limits()
        if ok:
            return finish(
                Decision.ALLOWED,
                "the resource policy names the role; boundary and session policy allow",
                res_allows,
            )
        return finish(Decision.IMPLICITLY_DENIED, why)
    if explicit_needed and grant is None:
        what = (
            "trust"
            if (
                policy_set.resource is not None
                and policy_set.resource.kind is PolicyKind.TRUST
            )
            or action in TRUST_ACTIONS
            else "key"
        )
        return finish(
            Decision.IMPLICITLY_DENIED,
            f"the {what} policy does not allow the principal (explicit allow required)",
        )
    if not identity_ok:
        return finish(
            Decision.IMPLICITLY_DENIED, "no identity-based policy allows the action"
        )
    ok, why = limits()
    if not ok:
        return finish(Decision.IMPLICITLY_DENIED, why)
    return finish(
        Decision.ALLOWED,
        "an identity-based policy allows the action",
        identity_allows + res_allows,
    )


def _level_verdict(levels: list[list[StatementResult]]) -> str:
    if any(r.effect == "Deny" for lvl in levels for r in lvl):
        return _EXPLICITLY_DENIED
    if all(_allows(lvl) for lvl in levels):
        return _ALLOWED
    return _IMPLICITLY_DENIED
