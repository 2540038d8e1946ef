"""Properties: deny monotonicity, order independence, JSON round trips, fuzzing."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.errors import InvalidPolicyError
from policy.iam.evaluator import evaluate
from policy.iam.model import compile_policy, load_policy_json
from policy.iam.request import Decision, PolicySet, Request
from policy.iam.statement import PolicyKind

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
