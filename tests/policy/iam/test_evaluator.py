"""The evaluation API: requests, principals, policy sets, traces, threads."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from policy.errors import InvalidPolicyError
from policy.iam.evaluator import evaluate
from policy.iam.model import compile_policy
from policy.iam.principals import (
    Grant,
    PrincipalKind,
    grant_for,
    not_principal_excepts,
    parse_principal,
)
from policy.iam.request import Decision, Level, PolicySet, Request
from policy.iam.statement import CompiledPolicy, PolicyKind, PrincipalSpec

A = "111122223333"
ALICE = f"arn:aws:iam::{A}:user/alice"
V = "2012-10-17"


def _policy(
    *stmts: dict[str, object], kind: str = "identity", name: str = "p"
) -> CompiledPolicy:
    return compile_policy(
        {"Version": V, "Statement": list(stmts)}, name=name, kind=kind
    )


class TestPrincipals:
    """Request principal classification and Principal matching."""

    @pytest.mark.parametrize(
        ("value", "kind", "account"),
        [
            (ALICE, PrincipalKind.USER, A),
            (f"arn:aws:iam::{A}:role/path/app", PrincipalKind.ROLE, A),
            (f"arn:aws:sts::{A}:assumed-role/app/s1", PrincipalKind.ASSUMED_ROLE, A),
            (f"arn:aws:sts::{A}:federated-user/bob", PrincipalKind.FEDERATED_USER, A),
            (f"arn:aws:iam::{A}:root", PrincipalKind.ROOT, A),
            (A, PrincipalKind.ROOT, A),
            ("ecs-tasks.amazonaws.com", PrincipalKind.SERVICE, None),
            ({"Service": "pods.eks.amazonaws.com"}, PrincipalKind.SERVICE, None),
            ("accounts.google.com", PrincipalKind.WEB_IDENTITY, None),
            (
                f"arn:aws:iam::{A}:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X",
                PrincipalKind.WEB_IDENTITY,
                A,
            ),
            (None, PrincipalKind.ANONYMOUS, None),
            ("*", PrincipalKind.ANONYMOUS, None),
        ],
    )
    def test_classify(
        self, value: object, kind: PrincipalKind, account: str | None
    ) -> None:
        """Each principal form is classified with its account."""
        info = parse_principal(value)
        assert (info.kind, info.account) == (kind, account)

    @pytest.mark.parametrize(
        "value",
        [
            "arn:aws:s3:::bucket",
            "bob",
            12.5,
            {"AWS": 1},
            {"X": "y"},
            f"arn:aws:sts::{A}:assumed-role/app",
        ],
    )
    def test_invalid(self, value: object) -> None:
        """Unrecognised principals are InvalidPolicyError."""
        with pytest.raises(InvalidPolicyError):
            parse_principal(value)

    def test_service_linked_role(self) -> None:
        """Service-linked roles are recognised by path or name."""
        assert parse_principal(
            f"arn:aws:iam::{A}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"
        ).is_service_linked
        assert parse_principal(
            f"arn:aws:sts::{A}:assumed-role/AWSServiceRoleForECS/x"
        ).is_service_linked
        assert not parse_principal(
            f"arn:aws:sts::{A}:assumed-role/app/x"
        ).is_service_linked

    def test_grants(self) -> None:
        """How a Principal names a session: directly, by its role, or by its account."""
        session = parse_principal(f"arn:aws:sts::{A}:assumed-role/app/s1")
        assert grant_for(PrincipalSpec(aws=(session.arn,)), session) is Grant.DIRECT
        assert (
            grant_for(PrincipalSpec(aws=(f"arn:aws:iam::{A}:role/app",)), session)
            is Grant.ROLE
        )
        assert grant_for(PrincipalSpec(aws=(A,)), session) is Grant.ACCOUNT
        assert grant_for(PrincipalSpec(aws=("999999999999",)), session) is None
        assert (
            grant_for(PrincipalSpec(aws=(f"arn:aws:iam::{A}:role/*",)), session) is None
        )
        assert (
            grant_for(PrincipalSpec(wildcard=True), parse_principal(None))
            is Grant.DIRECT
        )

    def test_not_principal_needs_every_identity(self) -> None:
        """NotPrincipal excepts a session only if session, role, account are listed."""
        session = parse_principal(f"arn:aws:sts::{A}:assumed-role/app/s1")
        role, root = f"arn:aws:iam::{A}:role/app", f"arn:aws:iam::{A}:root"
        assert not not_principal_excepts(PrincipalSpec(aws=(role, root)), session)
        assert not not_principal_excepts(
            PrincipalSpec(aws=(session.arn, role)), session
        )
        assert not_principal_excepts(
            PrincipalSpec(aws=(session.arn, role, root)), session
        )


class TestRequest:
    """Request normalisation."""

    def test_context_normalised(self) -> None:
        """Keys fold to lower case; values become string tuples; None drops the key."""
        req = Request(
            ALICE,
            "s3:GetObject",
            context={
                "AWS:SecureTransport": True,
                "aws:TagKeys": ["a", "b"],
                "n": 5,
                "gone": None,
            },
        )
        assert req._ctx == {
            "aws:securetransport": ("true",),
            "aws:tagkeys": ("a", "b"),
            "n": ("5",),
        }

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"action": "GetObject"},
            {"action": "s3:GetObject", "resource": ""},
            {"action": "s3:GetObject", "context": {"k": {"nested": 1}}},
            {"action": "s3:GetObject", "context": ["x"]},
        ],
    )
    def test_invalid(self, kwargs: dict[str, object]) -> None:
        """Malformed requests raise InvalidPolicyError."""
        with pytest.raises(InvalidPolicyError):
            Request(ALICE, **kwargs)  # type: ignore[arg-type]  # deliberately bad input


class TestEvaluate:
    """Decisions and traces through the public API."""

    def test_trace_names_decisive_statement_and_conditions(self) -> None:
        """The trace reports verdicts, the deciding statement and missing keys."""
        ident = _policy(
            {
                "Sid": "Read",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "*",
            },
            {
                "Sid": "NoHttp",
                "Effect": "Deny",
                "Action": "s3:*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "Tagged",
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/team": "x"}},
            },
            name="reader",
        )
        result = evaluate(
            PolicySet(identity=[ident]),
            Request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k"),
        )
        assert result.decision is Decision.ALLOWED and result.allowed
        data: dict[str, Any] = result.trace.to_json()
        json.dumps(data)
        assert data["policyTypes"]["identity"] == "Allowed"
        assert data["policyTypes"]["scp"] == "NotApplicable"
        assert [d["sid"] for d in data["decisive"]] == ["Read"]
        tagged = next(s for s in data["statements"] if s["sid"] == "Tagged")
        assert tagged["failed"] == "Condition"
        assert tagged["conditions"][0]["missing"] is True
        assert sorted(data["missingKeys"]) == [
            "aws:PrincipalTag/team",
            "aws:SecureTransport",
        ]

    def test_explain_false_keeps_only_applying_statements(self) -> None:
        """explain=False returns the same decision with a smaller trace."""
        ident = _policy(
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        )
        ps = PolicySet(identity=[ident])
        full = evaluate(ps, Request(ALICE, "s3:GetObject"))
        lean = evaluate(ps, Request(ALICE, "s3:GetObject"), explain=False)
        assert full.decision is lean.decision is Decision.ALLOWED
        assert len(lean.trace.statements) == 1 < len(full.trace.statements)

    def test_policy_set_accepts_levels_and_single_session(self) -> None:
        """SCPs as Level objects or lists; a single session policy is accepted."""
        full = _policy({"Effect": "Allow", "Action": "*", "Resource": "*"}, kind="scp")
        only_s3 = _policy(
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, kind="scp"
        )
        ident = _policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
        session = _policy(
            {"Effect": "Allow", "Action": "*", "Resource": "*"}, kind="session"
        )
        ps = PolicySet(
            identity=[ident], session=session, scps=[Level((full,), "root"), [only_s3]]
        )
        principal = f"arn:aws:sts::{A}:assumed-role/app/s"
        assert (
            evaluate(ps, Request(principal, "s3:GetObject")).decision
            is Decision.ALLOWED
        )
        denied = evaluate(ps, Request(principal, "ec2:RunInstances"))
        assert denied.decision is Decision.IMPLICITLY_DENIED
        assert "'1'" in denied.trace.reason

    def test_trust_kind_requires_explicit_allow(self) -> None:
        """A trust-kind policy must allow explicitly, whatever the action."""
        trust = _policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{A}:root"},
                "Action": "sts:*",
            },
            kind="trust",
        )
        ident = _policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
        ps = PolicySet(identity=[ident], resource=trust)
        assert (
            evaluate(
                ps, Request(ALICE, "sts:AssumeRole", f"arn:aws:iam::{A}:role/x")
            ).decision
            is Decision.ALLOWED
        )
        other = PolicySet(
            identity=[ident],
            resource=_policy(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "999999999999"},
                    "Action": "sts:*",
                },
                kind="trust",
            ),
        )
        assert (
            evaluate(other, Request(ALICE, "sts:DecodeAuthorizationMessage")).decision
            is Decision.IMPLICITLY_DENIED
        )

    def test_thread_safe(self) -> None:
        """One policy set evaluated from many threads gives the same answers."""
        ident = _policy(
            {
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": "arn:aws:s3:::b/${aws:username}/*",
            }
        )
        ps = PolicySet(identity=[ident])
        users = [f"u{i}" for i in range(40)]

        def decide(name: str) -> tuple[bool, bool]:
            principal = f"arn:aws:iam::{A}:user/{name}"
            own = evaluate(
                ps,
                Request(principal, "s3:GetObject", f"arn:aws:s3:::b/{name}/k"),
                explain=False,
            )
            other = evaluate(
                ps,
                Request(principal, "s3:GetObject", "arn:aws:s3:::b/zz/k"),
                explain=False,
            )
            return own.allowed, other.allowed

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(decide, users * 5))
        assert results == [(True, False)] * len(results)

    def test_kind_enum_exported(self) -> None:
        """PolicyKind values are the case-format names."""
        assert {k.value for k in PolicyKind} == {
            "identity",
            "resource",
            "trust",
            "boundary",
            "session",
            "scp",
            "rcp",
        }


def test_numeric_account_principal() -> None:
    """An account ID given as a JSON number is the zero-padded account."""
    info = parse_principal(12345678901)
    assert (info.kind, info.account) == (PrincipalKind.ROOT, "012345678901")


def test_set_for_single_valued_key_rejected() -> None:
    """A list of several values for a single-valued key is an error, never coerced."""
    with pytest.raises(InvalidPolicyError, match="single-valued"):
        Request(
            ALICE, "s3:GetObject", context={"aws:SourceIp": ["10.0.0.1", "10.0.0.2"]}
        )
    one = Request(ALICE, "s3:GetObject", context={"aws:SourceIp": ["10.0.0.1"]})
    assert one._ctx["aws:sourceip"] == ("10.0.0.1",)
