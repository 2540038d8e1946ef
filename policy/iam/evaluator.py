"""IAM policy evaluation with AWS's decision procedure and explain traces (pure).

Public API (stable; other modules build on it)::

    from policy.iam.evaluator import (Decision, PolicyKind, PolicySet, Request,
                            compile_policy, evaluate)

    identity = compile_policy(doc, name="deploy", kind="identity")   # parse once
    trust = compile_policy(trust_doc, name="trust", kind="trust")
    ps = PolicySet(identity=[identity], resource=trust,
                   boundaries=[...], session=[...],
                   scps=[[root_scp], [ou_scp], [acct_scp]],  # each level must allow
                   rcps=[[...]])
    req = Request(principal="arn:aws:sts::111122223333:assumed-role/app/s1",
                  action="s3:GetObject", resource="arn:aws:s3:::bucket/key",
                  resource_account="111122223333",
                  context={"aws:SourceIp": "10.0.0.1", "aws:TagKeys": ["a", "b"]})
    result = evaluate(ps, req)            # evaluate many: ps and req are immutable
    result.decision is Decision.ALLOWED   # .value == "Allowed"
    result.trace.to_json()      # explain: verdict per policy type, deciding
                                # statements, conditions, missing keys
    evaluate(ps, req, explain=False)      # the trace keeps only matching statements
    decide(ps, req)                       # the decision alone

``evaluate`` decides with ``decide`` (the decision-only path) and builds the
trace with ``evaluate_traced`` when ``result.trace`` is first read.

Everything is immutable; the only shared state is bounded caches that fill on
first use (compiled regexes and parsed request values in ``lru_cache``s, the
action index of each ``CompiledPolicy``, the (action, resource) index of each
``PolicySet``, the derived context of each ``Request``): a race only recomputes
an entry, so one ``PolicySet`` may be evaluated from many threads. Invalid
input raises ``InvalidPolicyError``; denial is a value.

Decision procedure (docs/policy-semantics.md; P = principal's
account, R = resource's account):

1. ``sts:GetCallerIdentity`` is always allowed.
2. Any applicable ``Deny`` in any policy type -> ExplicitlyDenied.
3. SCP levels (principal side; not for service-linked roles, service principals,
   web identities or anonymous): each level needs an applicable Allow.
   RCPs only deny: ``RCPFullAWSAccess`` is always attached at every level.
4. Resource policy: cross-account (P != R) needs its Allow **and** the principal
   side (identity, boundary, session policy). Same account: naming the user or
   session grants on its own; naming the role still needs boundary and session
   policy; naming the account only delegates. Trust (``sts:AssumeRole*``,
   ``sts:TagSession``) and KMS key policies must allow explicitly when given.
5. Identity policies, then the permissions boundary, then the session policy
   must allow; the first that does not gives ImplicitlyDenied.
6. Otherwise Allowed.

Modules: ``policy.iam.model`` parses and validates (``compile_policy``),
``policy.iam.statement`` holds the compiled types, ``policy.iam.request`` the inputs,
``policy.iam.trace`` the results, ``policy.iam.principals`` principal matching,
``policy.iam.conditions``/``policy.iam.variables``/``policy.iam.arnmatch`` the matchers.
docs/policy-semantics.md states every rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import cast

from policy.iam.arnmatch import arn_regex, split_arn
from policy.iam.conditions import ClauseResult, clause_holds, evaluate_clause
from policy.iam.keys import is_multi_valued
from policy.iam.principals import (
    Grant,
    PrincipalInfo,
    PrincipalKind,
    grant_for,
    not_principal_excepts,
)
from policy.iam.request import NOT_APPLICABLE, Decision, PolicySet, Request
from policy.iam.statement import (
    ACTION_INDEX_LIMIT,
    CompiledPolicy,
    Effect,
    PolicyKind,
    Statement,
)
from policy.iam.trace import EvaluationResult, StatementResult, Trace
from policy.iam.variables import resolve_template

__all__ = [
    "decide",
    "evaluate",
    "evaluate_traced",
]

TRUST_ACTIONS = frozenset(
    {
        "sts:assumerole",
        "sts:assumerolewithwebidentity",
        "sts:assumerolewithsaml",
        "sts:tagsession",
        "sts:setsourceidentity",
        "sts:setcontext",
    }
)
# Decision strings of the trace's per-type verdicts (enum ``.value`` is slow).
_ALLOWED = Decision.ALLOWED.value
_IMPLICITLY_DENIED = Decision.IMPLICITLY_DENIED.value
_EXPLICITLY_DENIED = Decision.EXPLICITLY_DENIED.value
# Always allowed, even against an explicit deny (STS API reference).
ALWAYS_ALLOWED = frozenset({"sts:getcalleridentity"})


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


def _resource_account(req: Request, p: PrincipalInfo) -> str | None:
    if req.resource_account:
        return req.resource_account
    parts = split_arn(req.resource)
    if parts is not None and parts[4]:
        return parts[4]
    return p.account


def _derived_context(
    req: Request, p: PrincipalInfo, resource_account: str | None
) -> dict[str, tuple[str, ...]]:
    """Keys AWS puts in every request context, unless the case gives them."""
    derived: dict[str, tuple[str, ...]] = {}
    if p.kind.is_iam:
        if p.principal_arn:
            derived["aws:principalarn"] = (p.principal_arn,)
        if p.account:
            derived["aws:principalaccount"] = (p.account,)
        # A role acts through sessions: its type is AssumedRole (global condition keys).
        ptype = "AssumedRole" if p.kind is PrincipalKind.ROLE else p.kind.value
        derived["aws:principaltype"] = (ptype,)
        if p.kind is PrincipalKind.USER and p.name:
            derived["aws:username"] = (p.name,)
    if p.kind is PrincipalKind.SERVICE:
        derived["aws:principalservicename"] = (p.arn,)
    if p.kind is not PrincipalKind.ANONYMOUS:
        derived["aws:principalisawsservice"] = (
            "true" if p.kind is PrincipalKind.SERVICE else "false",
        )
    if resource_account and (req.resource_account or req.resource != "*"):
        derived["aws:resourceaccount"] = (resource_account,)
    derived.update(req._ctx)
    return derived


def _verdict(applied: list[StatementResult]) -> str:
    if any(r.effect == "Deny" for r in applied):
        return _EXPLICITLY_DENIED
    if any(r.effect == "Allow" for r in applied):
        return _ALLOWED
    return _IMPLICITLY_DENIED


def _allows(applied: list[StatementResult]) -> list[StatementResult]:
    return [r for r in applied if r.effect == "Allow"]


def evaluate(
    policy_set: PolicySet, request: Request, *, explain: bool = True
) -> EvaluationResult:
    """Decide a request the way AWS does.

    The decision comes from the decision-only path (``decide``); the trace is
    computed when ``result.trace`` is first read, by the explaining evaluator.

    Args:
        policy_set: The compiled policies.
        request: The request.
        explain: Keep every statement whose action matched, and every condition
            result, in the trace (False: only the applying ones).

    Returns:
        The decision and its (lazily built) trace.
    """
    return EvaluationResult(
        decide(policy_set, request), None, (_trace, policy_set, request, explain)
    )


def _trace(policy_set: PolicySet, request: Request, explain: bool) -> Trace:
    return evaluate_traced(policy_set, request, explain=explain).trace


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
    r_account = _resource_account(request, p)
    ctx = _derived_context(request, p, r_account)
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


# --- the decision-only path: same procedure, no trace, nothing built per statement


class _Prepared:
    """What a request implies before any policy is read (cached on the Request)."""

    __slots__ = (
        "action",
        "bounded_kind",
        "cross",
        "ctx",
        "iam",
        "key",
        "org_exempt",
        "p",
        "resource",
        "root",
        "service",
    )

    def __init__(self, req: Request) -> None:
        p = req.principal_info
        r_account = _resource_account(req, p)
        self.p = p
        self.ctx = _derived_context(req, p, r_account)
        self.cross = (
            p.account is not None and r_account is not None and p.account != r_account
        )
        self.action = req.action.lower()
        self.service = self.action.split(":", 1)[0]
        self.resource = req.resource
        self.key = (self.action, req.resource)
        self.iam = p.kind.is_iam
        self.root = p.kind is PrincipalKind.ROOT
        self.bounded_kind = self.iam and not self.root
        self.org_exempt = p.is_service_linked

    def lookup(self, key: str) -> str | None:
        if is_multi_valued(key):
            return None
        values = self.ctx.get(key)
        return values[0] if values is not None and len(values) == 1 else None


def _prepared(req: Request) -> _Prepared:
    f = _Prepared(req)
    object.__setattr__(req, "_derived", f)
    return f


_MISS = object()


def _match(f: _Prepared, st: Statement, check_resource: bool, bounded: bool) -> object:
    """``_MISS`` when an indexed statement does not apply, else its grant.

    ``check_resource`` is False when the index already matched the Resource
    element (patterns without variables, decided once per resource).
    """
    if check_resource and _resource_match(f, st) == st.not_resource:
        return _MISS
    grant = None
    spec = st.principal
    if spec is not None:
        if st.not_principal:
            if not bounded and not_principal_excepts(spec, f.p):
                return _MISS
            grant = Grant.DIRECT
        else:
            grant = grant_for(spec, f.p)
            if grant is None:
                return _MISS
    if st.conditions:
        ctx, lookup = f.ctx, f.lookup
        for clause in st.conditions:
            if not clause_holds(clause, ctx, lookup):
                return _MISS
    return grant


def _resource_match(f: _Prepared, st: Statement) -> bool:
    resource = f.resource
    for pattern in st.resources or ():
        if pattern.match_all:
            return True
        compiled = pattern.compiled
        if compiled is not None:
            if compiled.fullmatch(resource):
                return True
            continue
        chunks = resolve_template(pattern.template, f.lookup)
        if chunks is not None and arn_regex(chunks).fullmatch(resource):
            return True
    return False


# An indexed statement: (statement, what is left to test). ``_ALWAYS``: nothing
# (no Principal, no Condition, Resource matched by the index): it applies.
_ALWAYS, _TEST, _TEST_RESOURCE = 0, 1, 2
_Entry = tuple[Statement, int]


def _hit(f: _Prepared, entries: tuple[_Entry, ...], bounded: bool) -> bool:
    for st, left in entries:
        if (
            left == _ALWAYS
            or _match(f, st, left == _TEST_RESOURCE, bounded) is not _MISS
        ):
            return True
    return False


def _best_grant(
    f: _Prepared, entries: tuple[_Entry, ...], bounded: bool
) -> Grant | None:
    best: Grant | None = None
    for st, left in entries:
        if left == _ALWAYS:
            continue  # no Principal: no grant
        grant = _match(f, st, left == _TEST_RESOURCE, bounded)
        if grant is not _MISS and grant is not None:
            if grant is Grant.DIRECT:
                return Grant.DIRECT
            if best is None or grant > best:  # type: ignore[operator]  # a Grant
                best = grant  # type: ignore[assignment]  # a Grant
    return best


def _static_resource(st: Statement, resource: str) -> bool | None:
    """Whether the Resource element lets ``resource`` through, when that does not
    depend on the request context (None when a pattern has variables)."""
    if st.resources is None:
        return True
    matched = False
    for pattern in st.resources:
        if pattern.match_all or (
            pattern.compiled is not None and pattern.compiled.fullmatch(resource)
        ):
            matched = True
            break
        if pattern.compiled is None:
            return None
    return matched != st.not_resource


class _ActionIndex:
    """One policy set's statements that can apply to one (action, resource).

    Action/NotAction matched, and Resource/NotResource too when its patterns
    have no variables (those statements are dropped when they do not match;
    the others keep a flag to match per request). Statements of all policies
    of a type are merged (a statement applies or not on its own); SCP Allows
    stay per level. Also the set's shape flags.
    """

    __slots__ = (
        "boundary",
        "explicit_kind",
        "id_allow",
        "id_deny",
        "pb_allow",
        "pb_deny",
        "rcp_deny",
        "rcps",
        "res_allow",
        "res_deny",
        "resource",
        "scp_allow",
        "scp_deny",
        "scps",
        "se_allow",
        "se_deny",
        "session",
    )

    def __init__(self, ps: PolicySet, action: str, resource: str) -> None:
        def keep(statements: tuple[Statement, ...], out: list[_Entry]) -> None:
            for st in statements:
                static = _static_resource(st, resource)
                if static is None:
                    out.append((st, _TEST_RESOURCE))
                elif static and st.principal is None and not st.conditions:
                    out.insert(0, (st, _ALWAYS))  # first: it decides a ``_hit``
                elif static:
                    out.append((st, _TEST))

        def split(
            policies: Iterable[CompiledPolicy],
        ) -> tuple[tuple[_Entry, ...], tuple[_Entry, ...]]:
            deny: list[_Entry] = []
            allow: list[_Entry] = []
            for policy in policies:
                d, a = policy.by_action(action)
                keep(d, deny)
                keep(a, allow)
            return tuple(deny), tuple(allow)

        session = cast("tuple[CompiledPolicy, ...]", ps.session)
        self.scps = bool(ps.scps)
        self.rcps = bool(ps.rcps)
        self.boundary = bool(ps.boundaries)
        self.session = bool(session)
        self.resource = ps.resource is not None
        self.explicit_kind = (
            ps.resource is not None and ps.resource.kind is PolicyKind.TRUST
        )
        self.scp_deny = split(p for lvl in ps.scp_levels for p in lvl.policies)[0]
        self.scp_allow = tuple(split(lvl.policies)[1] for lvl in ps.scp_levels)
        self.rcp_deny = split(p for lvl in ps.rcp_levels for p in lvl.policies)[0]
        self.res_deny, self.res_allow = split(
            (ps.resource,) if ps.resource is not None else ()
        )
        self.id_deny, self.id_allow = split(ps.identity)
        self.pb_deny, self.pb_allow = split(ps.boundaries)
        self.se_deny, self.se_allow = split(session)


def _action_index(ps: PolicySet, key: tuple[str, str]) -> _ActionIndex:
    index = ps._by_action
    if len(index) >= ACTION_INDEX_LIMIT:
        index.clear()
    entry = _ActionIndex(ps, *key)
    index[key] = entry
    return entry


def decide(policy_set: PolicySet, request: Request) -> Decision:
    """The decision alone: ``evaluate(...).decision`` without building a trace.

    Statements are looked up by action in the policy set's index, the request's
    derived context is computed once per ``Request``, and conditions are tested
    with their dispatch precomputed (``clause_holds``).

    Args:
        policy_set: The compiled policies.
        request: The request.

    Returns:
        The decision.
    """
    f: _Prepared = request._derived  # type: ignore[assignment]  # set only here
    if f is None:
        f = _prepared(request)
    action = f.action
    if action in ALWAYS_ALLOWED:
        return Decision.ALLOWED
    ix: _ActionIndex = policy_set._by_action.get(f.key)  # type: ignore[assignment]  # set only here
    if ix is None:
        ix = _action_index(policy_set, f.key)
    iam_principal = f.iam
    bounded = f.bounded_kind and ix.boundary
    applies_scp = iam_principal and ix.scps and not f.org_exempt
    applies_session = iam_principal and (
        ix.session or f.p.kind is PrincipalKind.FEDERATED_USER
    )

    # Any applicable Deny anywhere decides.
    if (
        (applies_scp and ix.scp_deny and _hit(f, ix.scp_deny, bounded))
        or (
            ix.rcp_deny
            and ix.rcps
            and not f.org_exempt
            and _hit(f, ix.rcp_deny, bounded)
        )
        or (ix.res_deny and _hit(f, ix.res_deny, bounded))
        or (iam_principal and ix.id_deny and _hit(f, ix.id_deny, bounded))
        or (bounded and ix.pb_deny and _hit(f, ix.pb_deny, bounded))
        or (applies_session and ix.se_deny and _hit(f, ix.se_deny, bounded))
    ):
        return Decision.EXPLICITLY_DENIED
    if applies_scp:
        for allows in ix.scp_allow:
            if not _hit(f, allows, bounded):
                return Decision.IMPLICITLY_DENIED

    grant = _best_grant(f, ix.res_allow, bounded) if ix.res_allow else None
    if not iam_principal:
        return Decision.ALLOWED if grant is not None else Decision.IMPLICITLY_DENIED
    # The limits: the permissions boundary and the session policy must allow.
    limits_ok = (not bounded or _hit(f, ix.pb_allow, bounded)) and (
        not applies_session or _hit(f, ix.se_allow, bounded)
    )
    if f.cross:
        if (
            grant is None
            or not (f.root or _hit(f, ix.id_allow, bounded))
            or not limits_ok
        ):
            return Decision.IMPLICITLY_DENIED
        return Decision.ALLOWED
    if grant is Grant.DIRECT and f.p.kind is not PrincipalKind.ROLE:
        return Decision.ALLOWED
    if grant is Grant.ROLE or grant is Grant.DIRECT:
        return Decision.ALLOWED if limits_ok else Decision.IMPLICITLY_DENIED
    if (
        grant is None
        and ix.resource
        and (ix.explicit_kind or action in TRUST_ACTIONS or f.service == "kms")
    ):
        return Decision.IMPLICITLY_DENIED
    if not (f.root or _hit(f, ix.id_allow, bounded)) or not limits_ok:
        return Decision.IMPLICITLY_DENIED
    return Decision.ALLOWED
