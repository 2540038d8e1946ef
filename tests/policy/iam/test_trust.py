"""policy.iam.trust: who may assume a role, answered by the IAM engine."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from policy.errors import InvalidPolicyError
from policy.iam.trust import TrustAnswer, who_can_assume

ROLE = "arn:aws:iam::111122223333:role/node"


def doc(*statements: Mapping[str, object]) -> dict[str, object]:
    """A trust policy."""
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(principal: object, **extra: object) -> dict[str, object]:
    """An Allow of sts:AssumeRole (or extra's Action) to principal."""
    return {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"} | (
        extra
    )


class TestWhoCanAssume:
    """Each principal is probed through evaluate(); conditions and Deny count."""

    def test_service_only(self) -> None:
        """A service principal is a service, not a person."""
        got = who_can_assume(ROLE, doc(allow({"Service": "ec2.amazonaws.com"})))
        assert got == TrustAnswer((), (), ("Service:ec2.amazonaws.com",))

    def test_account_principal(self) -> None:
        """Naming an account lets its principals assume the role (trust side)."""
        got = who_can_assume(ROLE, doc(allow({"AWS": "arn:aws:iam::1:root"})))
        assert got.people == ("AWS:arn:aws:iam::1:root",)

    def test_condition_on_an_unknown_key_is_conditional(self) -> None:
        """Principal * limited by aws:PrincipalOrgID: people, if the key holds."""
        cond = {"StringEquals": {"aws:PrincipalOrgID": "o-123"}}
        got = who_can_assume(ROLE, doc(allow("*", Condition=cond)))
        assert got == TrustAnswer((), (("AWS:*", ("aws:PrincipalOrgID",)),), ())

    def test_external_id_is_conditional(self) -> None:
        """A third party's ExternalId guard is a condition the caller supplies."""
        cond = {"StringEquals": {"sts:ExternalId": "e-1"}}
        got = who_can_assume(ROLE, doc(allow({"AWS": "444455556666"}, Condition=cond)))
        assert got.conditional == (("AWS:444455556666", ("sts:ExternalId",)),)
        assert got.people == ()

    def test_deny_wins(self) -> None:
        """An explicit Deny of everyone leaves no one (the old regex said people)."""
        statements = (
            allow({"AWS": "arn:aws:iam::1:root"}),
            {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"},
        )
        assert who_can_assume(ROLE, doc(*statements)) == TrustAnswer((), (), ())

    def test_deny_outside_the_account_keeps_own_account(self) -> None:
        """* with a Deny for other accounts: the role's own account still may."""
        statements = (
            allow({"AWS": "*"}),
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringNotEquals": {"aws:PrincipalAccount": "111122223333"}
                },
            },
        )
        assert who_can_assume(ROLE, doc(*statements)).people == ("AWS:*",)

    def test_principal_arn_condition_probes_the_named_principal(self) -> None:
        """* limited to one aws:PrincipalArn: that principal may assume it."""
        cond = {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::1:role/ci"}}
        got = who_can_assume(ROLE, doc(allow("*", Condition=cond)))
        assert got.people == ("AWS:*",)

    def test_other_actions_do_not_count(self) -> None:
        """An Allow of s3:* to a principal lets it assume nothing."""
        statement = allow({"AWS": "arn:aws:iam::1:root"}, Action="s3:*")
        assert who_can_assume(ROLE, doc(statement)) == TrustAnswer((), (), ())

    @pytest.mark.parametrize(
        ("action", "provider"),
        [
            ("sts:AssumeRoleWithWebIdentity", "cognito-identity.amazonaws.com"),
            ("sts:AssumeRoleWithSAML", "arn:aws:iam::1:saml-provider/corp"),
        ],
    )
    def test_federated(self, action: str, provider: str) -> None:
        """Identity providers are probed with their own AssumeRole action."""
        got = who_can_assume(ROLE, doc(allow({"Federated": provider}, Action=action)))
        assert got.people == (f"Federated:{provider}",)

    def test_oidc_sub_condition_is_conditional(self) -> None:
        """IRSA's sub/aud conditions: the provider's callers, if they hold."""
        oidc = "oidc.eks.us-east-1.amazonaws.com/id/ABC"
        provider = f"arn:aws:iam::111122223333:oidc-provider/{oidc}"
        cond = {"StringEquals": {f"{oidc}:sub": "system:serviceaccount:a:b"}}
        statement = allow(
            {"Federated": provider},
            Action="sts:AssumeRoleWithWebIdentity",
            Condition=cond,
        )
        got = who_can_assume(ROLE, doc(statement))
        assert got.conditional == ((f"Federated:{provider}", (f"{oidc}:sub",)),)

    def test_invalid_trust_policy_is_an_error(self) -> None:
        """Allow with NotPrincipal is refused, as AWS refuses it."""
        statement = {
            "Effect": "Allow",
            "NotPrincipal": {"AWS": "arn:aws:iam::1:root"},
            "Action": "sts:AssumeRole",
        }
        with pytest.raises(InvalidPolicyError, match="NotPrincipal"):
            who_can_assume(ROLE, doc(statement))
