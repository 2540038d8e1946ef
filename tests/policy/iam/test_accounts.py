"""Account input in AWS's own format: get-account-authorization-details and SCPs."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import ClassVar

import pytest

from policy.errors import InvalidPolicyError
from policy.iam.accounts import parse_account_authorization_details, parse_scps
from policy.iam.evaluator import evaluate
from policy.iam.request import Request

DATA = Path(__file__).resolve().parents[2] / "data" / "tiers"
A = "111122223333"
BOUNDARY = f"arn:aws:iam::{A}:policy/s3-boundary"


@pytest.fixture(scope="module")
def details():
    """The realistic account fixture as decoded JSON."""
    return json.loads((DATA / "account.json").read_text())


class TestParse:
    """Principals, their policies and documents in both encodings."""

    def test_principals(self, details):
        """Users and roles keyed by ARN; the account comes from the ARNs."""
        acct = parse_account_authorization_details(details)
        assert acct.account_id == A and acct.partition == "aws"
        kinds = sorted((p.kind, p.name) for p in acct.principals.values())
        assert ("user", "alice") in kinds and ("role", "web-task-role") in kinds
        assert len(kinds) == 14
        assert acct.unresolved == []

    def test_group_policies_reach_members(self, details):
        """A user gets its groups' inline and managed policies."""
        acct = parse_account_authorization_details(details)
        alice = acct.principals[f"arn:aws:iam::{A}:user/alice"]
        assert alice.groups == ("Admins",)
        assert [(p.source, p.name) for p in alice.identity_policies] == [
            ("group:Admins/managed", "AdministratorAccess")
        ]

    def test_default_version_is_used(self, details):
        """Only the IsDefaultVersion document of a managed policy counts."""
        acct = parse_account_authorization_details(details)
        role = acct.principals[f"arn:aws:iam::{A}:role/web-exec-role"]
        ps = acct.policy_set(role)
        caller = f"arn:aws:sts::{A}:assumed-role/web-exec-role/s"
        assert evaluate(ps, Request(caller, "ecr:BatchGetImage", "*")).allowed
        # v1 (not default) allowed logs:*; v2 does not allow DeleteLogGroup.
        assert not evaluate(ps, Request(caller, "logs:DeleteLogGroup", "*")).allowed

    def test_url_encoded_documents(self, details):
        """URL-encoded trust and policy documents (the raw IAM API form) decode."""
        acct = parse_account_authorization_details(details)
        role = acct.principals[f"arn:aws:iam::{A}:role/web-task-role"]
        assert isinstance(role.trust_policy, dict)
        assert role.trust_policy["Statement"][0]["Principal"] == {
            "Service": "ecs-tasks.amazonaws.com"
        }
        assert acct.managed["arn:aws:iam::aws:policy/AdministratorAccess"]["Statement"]

    def test_builtin_managed_fallback(self, details):
        """An attached AWS managed policy absent from Policies comes from the table."""
        acct = parse_account_authorization_details(details)
        node = acct.principals[f"arn:aws:iam::{A}:role/eks-node-role"]
        assert [p.name for p in node.identity_policies] == ["AmazonEKSWorkerNodePolicy"]

    def test_unknown_managed_policy_is_reported(self):
        """A missing customer policy lands in `unresolved`; SLR policies do not."""
        doc = {
            "RoleDetailList": [
                {
                    "RoleName": "r",
                    "Arn": f"arn:aws:iam::{A}:role/r",
                    "Path": "/",
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [],
                    },
                    "AttachedManagedPolicies": [
                        {"PolicyName": "x", "PolicyArn": f"arn:aws:iam::{A}:policy/x"}
                    ],
                },
                {
                    "RoleName": "AWSServiceRoleForECS",
                    "Arn": f"arn:aws:iam::{A}:role/aws-service-role/ecs.amazonaws.com/"
                    "AWSServiceRoleForECS",
                    "Path": "/aws-service-role/ecs.amazonaws.com/",
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [],
                    },
                    "AttachedManagedPolicies": [
                        {
                            "PolicyName": "y",
                            "PolicyArn": "arn:aws:iam::aws:policy/aws-service-role/y",
                        }
                    ],
                },
            ]
        }
        acct = parse_account_authorization_details(doc)
        assert acct.unresolved == [f"arn:aws:iam::{A}:policy/x"]
        slr = acct.role("AWSServiceRoleForECS")
        assert slr is not None and slr.is_service_linked

    def test_permissions_boundary(self):
        """A boundary limits the role; an unknown boundary allows nothing."""
        allow_all = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        s3_only = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        doc = {
            "RoleDetailList": [
                {
                    "RoleName": "b",
                    "Arn": f"arn:aws:iam::{A}:role/b",
                    "AssumeRolePolicyDocument": allow_all,
                    "RolePolicyList": [
                        {
                            "PolicyName": "all",
                            "PolicyDocument": urllib.parse.quote(json.dumps(allow_all)),
                        }
                    ],
                    "PermissionsBoundary": {
                        "PermissionsBoundaryType": "Policy",
                        "PermissionsBoundaryArn": BOUNDARY,
                    },
                },
            ],
            "Policies": [
                {
                    "PolicyName": "s3-boundary",
                    "Arn": f"arn:aws:iam::{A}:policy/s3-boundary",
                    "DefaultVersionId": "v3",
                    "PolicyVersionList": [{"Document": s3_only, "VersionId": "v3"}],
                }
            ],
        }
        acct = parse_account_authorization_details(doc)
        role = acct.role("b")
        assert role is not None
        caller = f"arn:aws:sts::{A}:assumed-role/b/s"
        assert evaluate(
            acct.policy_set(role), Request(caller, "s3:GetObject", "*")
        ).allowed
        assert not evaluate(
            acct.policy_set(role), Request(caller, "ec2:RunInstances", "*")
        ).allowed

    @pytest.mark.parametrize(
        ("doc", "message"),
        [
            ([], "must be a JSON object"),
            ({"UserDetailList": {}}, "must be a list"),
            ({"UserDetailList": [{"UserName": "u"}]}, "Arn is required"),
            (
                {
                    "RoleDetailList": [
                        {
                            "RoleName": "r",
                            "Arn": f"arn:aws:iam::{A}:role/r",
                            "AssumeRolePolicyDocument": "%7Bnot json",
                        }
                    ]
                },
                "not a policy document",
            ),
        ],
    )
    def test_malformed(self, doc, message):
        """Malformed account JSON raises InvalidPolicyError."""
        with pytest.raises(InvalidPolicyError, match=message):
            parse_account_authorization_details(doc)


class TestSCPs:
    """The three accepted SCP shapes."""

    deny: ClassVar[dict[str, object]] = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Action": "ecs:ExecuteCommand", "Resource": "*"}
        ],
    }
    full: ClassVar[dict[str, object]] = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }

    def test_flat_list_is_one_level(self):
        """A list of policies is one level."""
        levels = parse_scps([self.full, self.deny])
        assert [len(level) for level in levels] == [2]

    def test_levels(self, details):
        """[{orgIdentifier, policies}] is a level each; a deny removes the right."""
        levels = parse_scps(json.loads((DATA / "scps.json").read_text()))
        assert [len(level) for level in levels] == [1, 2]
        acct = parse_account_authorization_details(details, scps=levels)
        dave = acct.principals[f"arn:aws:iam::{A}:user/dave"]
        req = Request(
            dave.arn, "ecs:ExecuteCommand", f"arn:aws:ecs:us-east-1:{A}:task/prod/1"
        )
        assert not evaluate(acct.policy_set(dave), req).allowed

    def test_describe_policy_output(self):
        """`aws organizations describe-policy` output: Content is a JSON string."""
        raw = {
            "Policy": {
                "PolicySummary": {"Name": "NoExec"},
                "Content": json.dumps(self.deny),
            }
        }
        (level,) = parse_scps(raw)
        assert level[0].name == "NoExec" and level[0].document == self.deny
