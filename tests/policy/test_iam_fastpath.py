"""The decision-only path (``decide``) against the explaining evaluator.

``evaluate`` decides with ``policy.iam.decide`` (statements indexed by action,
conditions through ``clause_holds``) and builds its trace lazily with
``evaluate_traced``; the two must always agree on the decision, and the lazy
trace must be the one the explaining evaluator builds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.conditions import (
    clause_holds,
    compile_clause,
    evaluate_clause,
    parse_operator,
)
from policy.iam import (
    Decision,
    PolicySet,
    Request,
    compile_policy,
    decide,
    evaluate,
    evaluate_traced,
)
from policy.statement import ACTION_INDEX_LIMIT
from policy.suite import Case, parse_case
from tests.policy import iam_differential as diff
from tests.policy.test_properties import scenarios

CASE_DIR = Path(__file__).resolve().parents[1] / "data" / "iam_cases"


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
