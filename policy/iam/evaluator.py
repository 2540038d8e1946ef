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

``evaluate`` decides with ``decide`` (the decision-only path, here) and builds
the trace with ``policy.iam.traced.evaluate_traced`` (the explaining reference
evaluator) when ``result.trace`` is first read.

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
``policy.iam.trace`` the results, ``policy.iam.traced`` the explaining evaluator,
``policy.iam.context`` the request context both evaluators derive,
``policy.iam.principals`` principal matching,
``policy.iam.conditions``/``policy.iam.variables``/``policy.iam.arnmatch`` the matchers.
docs/policy-semantics.md states every rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from policy.iam.arnmatch import arn_regex
from policy.iam.conditions import clause_holds
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
from policy.iam.request import Decision, PolicySet, Request
from policy.iam.statement import (
    ACTION_INDEX_LIMIT,
    CompiledPolicy,
    PolicyKind,
    Statement,
)
from policy.iam.trace import EvaluationResult, Trace
from policy.iam.traced import evaluate_traced
from policy.iam.variables import resolve_template

__all__ = [
    "decide",
    "evaluate",
]


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
        r_account = resource_account_of(req, p)
        self.p = p
        self.ctx = derived_context(req, p, r_account)
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
