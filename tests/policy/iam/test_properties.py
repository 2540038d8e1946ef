"""Properties: deny monotonicity, order independence, JSON round trips, fuzzing."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.errors import InvalidPolicyError
from policy.iam.conditions import (
    clause_holds,
    compile_clause,
    evaluate_clause,
    parse_operator,
)
from policy.iam.evaluator import decide, evaluate
from policy.iam.model import compile_policy, load_policy_json
from policy.iam.request import Decision, PolicySet, Request
from policy.iam.statement import ACTION_INDEX_LIMIT, PolicyKind
from policy.iam.suite import Case, parse_case
from policy.iam.traced import evaluate_traced
from tests.policy.iam import iam_differential as diff

A = "111122223333"
B = "444455556666"
PROPS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "ec2:RunInstances",
    "iam:PassRole",
    "sts:AssumeRole",
]
ACTION_PATTERNS = [
    "*",
    "s3:*",
    "s3:Get*",
    "S3:getobject",
    "ec2:Run?nstances",
    "iam:*",
    "sts:AssumeRole",
    "s3:PutObject",
]
RESOURCES = [
    "arn:aws:s3:::b/k",
    "arn:aws:s3:::b/x/y",
    f"arn:aws:iam::{A}:role/app",
    "arn:aws:s3:::other/k",
]
RESOURCE_PATTERNS = [
    "*",
    "arn:aws:s3:::b/*",
    "arn:aws:s3:::b/k",
    f"arn:aws:iam::{A}:role/*",
    "arn:aws:s3:::${aws:PrincipalTag/bucket}/*",
]
CONDITIONS = [
    None,
    {"StringEquals": {"aws:PrincipalTag/team": "payments"}},
    {"StringNotEquals": {"aws:PrincipalTag/team": ["web", "ops"]}},
    {"Bool": {"aws:SecureTransport": "true"}},
    {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}},
    {"ForAnyValue:StringLike": {"aws:TagKeys": ["t*"]}},
    {"Null": {"aws:SourceIp": "true"}},
]
PRINCIPALS = [
    f"arn:aws:iam::{A}:user/alice",
    f"arn:aws:sts::{A}:assumed-role/app/s1",
    f"arn:aws:iam::{B}:user/bob",
    "ecs-tasks.amazonaws.com",
]
CONTEXTS = [
    {},
    {
        "aws:PrincipalTag/team": "payments",
        "aws:SecureTransport": "true",
        "aws:PrincipalTag/bucket": "b",
    },
    {"aws:SourceIp": "10.1.2.3", "aws:TagKeys": ["env", "team"]},
    {"aws:TagKeys": [], "aws:PrincipalTag/team": "web"},
]


@st.composite
def statements(
    draw: Any, *, principal: bool = False, effect: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": effect or draw(st.sampled_from(["Allow", "Deny"]))}
    key = (
        draw(st.sampled_from(["Action", "NotAction"]))
        if out["Effect"] == "Deny" or draw(st.booleans())
        else "Action"
    )
    out[key] = draw(st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=3))
    rkey = draw(st.sampled_from(["Resource", "NotResource"]))
    out[rkey] = draw(
        st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=2)
    )
    if principal:
        out["Principal"] = draw(
            st.sampled_from(
                [
                    "*",
                    {"AWS": A},
                    {"AWS": PRINCIPALS[0]},
                    {"AWS": f"arn:aws:iam::{A}:role/app"},
                    {"AWS": B},
                    {"Service": "ecs-tasks.amazonaws.com"},
                ]
            )
        )
    cond = draw(st.sampled_from(CONDITIONS))
    if cond:
        out["Condition"] = cond
    return out


def policies(*, principal: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda stmts: {"Version": "2012-10-17", "Statement": stmts},
        st.lists(statements(principal=principal), min_size=1, max_size=4),
    )


@st.composite
def scenarios(draw: Any) -> dict[str, Any]:
    return {
        "identity": draw(st.lists(policies(), max_size=3)),
        "resource": draw(st.none() | policies(principal=True)),
        "boundary": draw(st.none() | policies()),
        "scp": draw(st.none() | policies()),
        "request": {
            "principal": draw(st.sampled_from(PRINCIPALS)),
            "action": draw(st.sampled_from(ACTIONS)),
            "resource": draw(st.sampled_from(RESOURCES)),
            "context": draw(st.sampled_from(CONTEXTS)),
        },
    }


def _decide(sc: dict[str, Any]) -> Decision:
    ps = PolicySet(
        identity=[
            compile_policy(p, name=f"id{i}") for i, p in enumerate(sc["identity"])
        ],
        resource=compile_policy(sc["resource"], name="res", kind="resource")
        if sc["resource"]
        else None,
        boundaries=[compile_policy(sc["boundary"], name="pb", kind="boundary")]
        if sc["boundary"]
        else [],
        scps=[compile_policy(sc["scp"], name="scp", kind="scp")] if sc["scp"] else [],
    )
    req = sc["request"]
    return evaluate(
        ps,
        Request(
            principal=req["principal"],
            action=req["action"],
            resource=req["resource"],
            context=req["context"],
        ),
        explain=False,
    ).decision


class TestProperties:
    """Invariants of the decision procedure."""

    @PROPS
    @given(
        scenarios(),
        statements(effect="Deny"),
        st.sampled_from(["identity", "boundary", "scp"]),
    )
    def test_adding_a_deny_never_allows(
        self, sc: dict[str, Any], extra: dict[str, Any], where: str
    ) -> None:
        """Adding an explicit Deny never turns a denied request into an allowed one."""
        before = _decide(sc)
        doc = {"Version": "2012-10-17", "Statement": [extra]}
        if where == "identity":
            after_sc = {**sc, "identity": [*sc["identity"], doc]}
        else:
            key = where
            base = sc[key]["Statement"] if sc[key] else []
            after_sc = {
                **sc,
                key: {"Version": "2012-10-17", "Statement": [*base, extra]},
            }
        after = _decide(after_sc)
        if before is not Decision.ALLOWED:
            assert after is not Decision.ALLOWED
        if before is Decision.EXPLICITLY_DENIED:
            assert after is Decision.EXPLICITLY_DENIED

    @PROPS
    @given(scenarios(), st.randoms(use_true_random=False))
    def test_statement_and_policy_order_do_not_matter(
        self, sc: dict[str, Any], rnd: Any
    ) -> None:
        """Shuffling statements and identity policies keeps the decision."""
        before = _decide(sc)

        def shuffled(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is None:
                return None
            stmts = list(doc["Statement"])
            rnd.shuffle(stmts)
            return {**doc, "Statement": stmts}

        identity = [shuffled(p) for p in sc["identity"]]
        rnd.shuffle(identity)
        after = _decide(
            {
                **sc,
                "identity": identity,
                "resource": shuffled(sc["resource"]),
                "boundary": shuffled(sc["boundary"]),
                "scp": shuffled(sc["scp"]),
            }
        )
        assert after is before

    @PROPS
    @given(scenarios())
    def test_json_round_trip_decides_the_same(self, sc: dict[str, Any]) -> None:
        """A policy set and its JSON round trip decide the same."""
        text = json.dumps(sc)
        again = load_policy_json(text)
        assert isinstance(again, dict)
        assert _decide(again) is _decide(sc)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
ELEMENTS = [
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
]
SCALARS = st.sampled_from(
    [
        "*",
        "Allow",
        "Deny",
        "s3:*",
        "arn:aws:s3:::b/*",
        "arn:aws",
        "${x}",
        "",
        "StringEquals",
        "true",
        "10.0.0.0/8",
    ]
)
POLICY_ISH = st.fixed_dictionaries(
    {"Version": st.sampled_from(["2012-10-17", "2008-10-17", "x", 1])},
    optional={
        "Statement": st.lists(
            st.dictionaries(
                st.sampled_from(ELEMENTS),
                SCALARS
                | JSON
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "AWS",
                            "Service",
                            "StringLike",
                            "Null",
                            "ForAnyValue:IpAddress",
                            "DateEquals",
                        ]
                    ),
                    SCALARS
                    | JSON
                    | st.dictionaries(st.text(max_size=6), SCALARS | JSON, max_size=2),
                    max_size=3,
                ),
                max_size=6,
            ),
            max_size=3,
        )
    },
)


class TestFuzz:
    """Only InvalidPolicyError may escape parsing, whatever JSON it is given."""

    @settings(max_examples=150, deadline=None)
    @given(JSON | POLICY_ISH, st.sampled_from(list(PolicyKind)))
    def test_parse_never_crashes(self, doc: Any, kind: PolicyKind) -> None:
        """Parsing any JSON value returns a policy or raises InvalidPolicyError."""
        try:
            policy = compile_policy(doc, name="fuzz", kind=kind)
        except InvalidPolicyError as exc:
            assert exc.policy == "fuzz" or exc.policy == ""
            return
        ps = (
            PolicySet(identity=[policy]) if kind is PolicyKind.IDENTITY else PolicySet()
        )
        evaluate(
            ps,
            Request(
                principal=PRINCIPALS[0],
                action="s3:GetObject",
                resource="arn:aws:s3:::b/k",
            ),
        )

    @settings(max_examples=100, deadline=None)
    @given(st.text(max_size=40))
    def test_policy_text_never_crashes(self, text: str) -> None:
        """Decoding arbitrary text raises only InvalidPolicyError."""
        with contextlib.suppress(InvalidPolicyError):
            compile_policy(text, name="fuzz")


# --- The decision-only path (``decide``) against the explaining evaluator.

CASE_DIR = Path(__file__).resolve().parents[2] / "data" / "iam_cases"


def _corpus() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in sorted(CASE_DIR.glob("*.json")):
        cases.extend(json.loads(path.read_text(encoding="utf-8")))
    return cases


@pytest.fixture(scope="module")
def corpus() -> list[Case]:
    return [parse_case(c) for c in _corpus()]


class TestAgreement:
    """``decide`` and ``evaluate_traced`` give the same decision."""

    def test_corpus(self, corpus: list[Case]) -> None:
        """Every corpus case: same decision, and it is the expected one."""
        for case in corpus:
            fast = decide(case.policy_set, case.request)
            slow = evaluate_traced(case.policy_set, case.request).decision
            assert fast is slow, case.id
            assert fast is case.expect, case.id

    def test_generated_cases(self) -> None:
        """600 seeded near-miss cases of the differential generator."""
        seen: set[Decision] = set()
        for raw in diff.balanced_cases(7, 600):
            case = parse_case({k: v for k, v in raw.items() if not k.startswith("_")})
            fast = decide(case.policy_set, case.request)
            assert fast is evaluate_traced(case.policy_set, case.request).decision
            seen.add(fast)
        assert seen == set(Decision)

    @settings(
        max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(scenarios())
    def test_random_scenarios(self, sc: dict[str, Any]) -> None:
        """Random policy sets and requests (the property tests' generator)."""
        ps = PolicySet(
            identity=[
                compile_policy(p, name=f"id{i}") for i, p in enumerate(sc["identity"])
            ],
            resource=compile_policy(sc["resource"], name="res", kind="resource")
            if sc["resource"]
            else None,
            boundaries=[compile_policy(sc["boundary"], name="pb", kind="boundary")]
            if sc["boundary"]
            else [],
            scps=[compile_policy(sc["scp"], name="scp", kind="scp")]
            if sc["scp"]
            else [],
        )
        req = Request(**sc["request"])
        assert decide(ps, req) is evaluate_traced(ps, req).decision

    def test_conditions_clause_by_clause(self, corpus: list[Case]) -> None:
        """``clause_holds`` equals ``evaluate_clause(...).result`` on every clause."""
        checked = 0
        for case in corpus:
            ctx = {k.lower(): v for k, v in case.request._ctx.items()}

            def lookup(key: str, ctx: dict[str, tuple[str, ...]] = ctx) -> str | None:
                values = ctx.get(key)
                return values[0] if values is not None and len(values) == 1 else None

            ps = case.policy_set
            policies = [*ps.identity, *ps.boundaries]
            if ps.resource is not None:
                policies.append(ps.resource)
            for policy in policies:
                for stmt in policy.statements:
                    for clause in stmt.conditions:
                        expected = evaluate_clause(clause, ctx, lookup).result
                        assert clause_holds(clause, ctx, lookup) is expected, case.id
                        checked += 1
        assert checked > 100


class TestLazyTrace:
    """The trace is built on first access, and equals the explaining evaluator's."""

    def test_trace_equals_the_explaining_evaluator(self, corpus: list[Case]) -> None:
        """Both explain modes, every corpus case."""
        for case in corpus[:120]:
            for explain in (True, False):
                lazy = evaluate(case.policy_set, case.request, explain=explain)
                eager = evaluate_traced(case.policy_set, case.request, explain=explain)
                assert lazy.trace.to_json() == eager.trace.to_json(), case.id
                assert lazy == eager

    def test_trace_not_built_for_a_decision(self, corpus: list[Case]) -> None:
        """Reading the decision leaves the trace unbuilt; reading it builds it once."""
        case = corpus[0]
        result = evaluate(case.policy_set, case.request)
        assert result.decision is case.expect
        assert result._trace is None
        first = result.trace
        assert result.trace is first


class TestActionIndex:
    """Statements indexed by action: right split, bounded size."""

    def test_index_splits_by_effect_and_matches_case_insensitively(self) -> None:
        """Deny/Allow statements whose Action or NotAction matches the action."""
        policy = compile_policy(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "S3:Get*", "Resource": "*"},
                    {"Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "*"},
                    {"Effect": "Deny", "Action": "s3:getobject", "Resource": "*"},
                    {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
                ],
            },
            name="p",
        )
        denies, allows = policy.by_action("s3:getobject")
        assert [s.index for s in denies] == [2]
        assert [s.index for s in allows] == [0]
        denies, allows = policy.by_action("ec2:runinstances")
        assert [s.index for s in denies] == [1]
        assert [s.index for s in allows] == [3]

    def test_index_is_bounded(self) -> None:
        """Past the limit the index starts over; answers stay right."""
        policy = compile_policy(
            {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]},
            name="p",
        )
        for i in range(ACTION_INDEX_LIMIT + 10):
            assert len(policy.by_action(f"s3:action{i}")[1]) == 1
        assert len(policy._by_action) <= ACTION_INDEX_LIMIT
        assert policy.by_action("ec2:x") == ((), ())

    def test_policy_set_index_is_per_action_and_resource(self) -> None:
        """Same action, other resource: another index entry, maybe another decision."""
        policy = compile_policy(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::b/*",
                    },
                    {
                        "Effect": "Deny",
                        "Action": "s3:GetObject",
                        "NotResource": "arn:aws:s3:::b/public/*",
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::${aws:username}/*",
                    },
                ],
            },
            name="p",
        )
        ps = PolicySet(identity=[policy])
        user = "arn:aws:iam::111122223333:user/alice"

        def req(resource: str, secure: str = "true") -> Request:
            return Request(
                principal=user,
                action="s3:GetObject",
                resource=resource,
                context={"aws:SecureTransport": secure},
            )

        cases = [
            (req("arn:aws:s3:::b/k"), Decision.ALLOWED),
            (req("arn:aws:s3:::b/k", "false"), Decision.EXPLICITLY_DENIED),
            (req("arn:aws:s3:::b/public/k", "false"), Decision.ALLOWED),
            (req("arn:aws:s3:::alice/k"), Decision.ALLOWED),
            (req("arn:aws:s3:::bob/k"), Decision.IMPLICITLY_DENIED),
        ]
        for _ in range(2):  # the second round reads the index built by the first
            for request, expected in cases:
                assert decide(ps, request) is expected, request.resource
                assert evaluate_traced(ps, request).decision is expected
        assert len(ps._by_action) == len(cases) - 1  # b/k twice: one entry


_OPERATORS = [
    f"{q}{base}{suffix}"
    for q in ("", "ForAllValues:", "ForAnyValue:")
    for base in (
        "StringEquals",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
        "NumericLessThan",
        "DateGreaterThanEquals",
        "Bool",
        "IpAddress",
        "NotIpAddress",
        "ArnLike",
        "ArnNotEquals",
    )
    for suffix in ("", "IfExists")
] + ["Null"]
_POLICY_VALUES: dict[str, list[str]] = {
    "String": ["a", "A", "a*", "${aws:username}", "b?"],
    "Numeric": ["1", "10", "-2.5"],
    "Date": ["2020-01-01T00:00:00Z", "1600000000"],
    "Bool": ["true", "false"],
    "IpAddress": ["10.0.0.0/8", "2001:db8::/32"],
    "NotIpAddress": ["10.0.0.0/8", "192.0.2.1"],
    "Arn": ["arn:aws:s3:::b/*", "arn:aws:iam::*:role/${aws:username}", "*"],
    "Null": ["true", "false"],
}
_REQUEST_VALUES = [
    "a",
    "A",
    "abc",
    "bx",
    "5",
    "x",
    "true",
    "10.1.2.3",
    "2001:db8::1",
    "2021-06-01T00:00:00Z",
    "arn:aws:s3:::b/k",
    "arn:aws:iam::111122223333:role/alice",
]


def _family(op: str) -> str:
    base = op.split(":")[-1]
    for name in ("NotIpAddress", "IpAddress", "Null", "Bool"):
        if base.startswith(name):
            return name
    for prefix in ("String", "Numeric", "Date", "Arn"):
        if base.startswith(prefix):
            return prefix
    raise AssertionError(op)


@st.composite
def _clauses(draw: Any) -> tuple[str, list[str], tuple[str, ...] | None, str | None]:
    op = draw(st.sampled_from(_OPERATORS))
    pool = _POLICY_VALUES[_family(op)]
    values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    request = draw(
        st.none() | st.lists(st.sampled_from(_REQUEST_VALUES), max_size=3).map(tuple)
    )
    user = draw(st.none() | st.sampled_from(["a", "alice"]))
    return op, values, request, user


class TestClauseHolds:
    """``clause_holds`` against ``evaluate_clause`` on random clauses."""

    @settings(max_examples=300, deadline=None)
    @given(_clauses())
    def test_agrees(
        self, clause: tuple[str, list[str], tuple[str, ...] | None, str | None]
    ) -> None:
        """Every family, qualifier, IfExists, absent/empty/several values, variables."""
        op_name, values, request, user = clause
        operator = parse_operator(op_name)
        assert operator is not None
        compiled = compile_clause(operator, "k", values, substitute=True)
        ctx: dict[str, tuple[str, ...]] = {}
        if request is not None:
            ctx["k"] = request
        if user is not None:
            ctx["aws:username"] = (user,)

        def lookup(key: str) -> str | None:
            got = ctx.get(key)
            return got[0] if got is not None and len(got) == 1 else None

        expected = evaluate_clause(compiled, ctx, lookup).result
        assert clause_holds(compiled, ctx, lookup) is expected
