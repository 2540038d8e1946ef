"""CI behaviour of ``kubeiam policy tiers``: baselines, exit codes, inputs, context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy.errors import InvalidPolicyError
from policy.iam.accounts import parse_account_authorization_details
from policy.tiers.baseline import parse_baseline, resource_policy_document
from policy.tiers.checks import requested_region
from policy.tiers.cli import main
from policy.tiers.report import evaluate_ecs_tiers, evaluate_eks_tiers
from policy.tiers.workloads import (
    EKSWorkload,
    parse_pod_identity_association,
    parse_task_definition,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "tiers"
CORPUS = DATA / "corpus"
A = "111122223333"


def _scenario(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((CORPUS / f"{name}.yaml").read_text())
    return doc


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """argv for the legacy task (high findings, no critical)."""
    del tmp_path_factory
    return [
        "tiers",
        "--task-definition",
        str(DATA / "td-legacy.json"),
        "--account",
        str(DATA / "account.json"),
        "--cluster-arn",
        f"arn:aws:ecs:us-east-1:{A}:cluster/prod",
    ]


class TestExitCodes:
    """0 clean, 1 input error, 3 threshold hit."""

    def test_threshold(self, legacy, capsys):
        """--fail-on high hits (exit 1), --fail-on critical does not (exit 0)."""
        assert main([*legacy, "--fail-on", "high"]) == 3
        assert main([*legacy, "--fail-on", "critical"]) == 0
        capsys.readouterr()

    def test_input_errors(self, legacy, tmp_path, capsys):
        """Bad baseline or resource policy: exit 1, one stderr line, no report."""
        bad = tmp_path / "baseline.yaml"
        bad.write_text("suppressions:\n  - {id: KI-T002, subject: x}\n")
        assert main([*legacy, "--baseline", str(bad), "--fail-on", "high"]) == 1
        out = capsys.readouterr()
        assert out.out == "" and out.err.count("\n") == 1 and "reason" in out.err
        rp = tmp_path / "rp.json"
        rp.write_text('{"Policy": "not json"}')
        assert (
            main([*legacy, "--resource-policy", f"arn:aws:kms:x:{A}:key/k={rp}"]) == 1
        )
        assert "not JSON" in capsys.readouterr().err
        rp.write_text('{"Policy": "{\\"Statement\\": []}", "PolicyName": "default"}')
        assert main([*legacy, "--resource-policy", str(rp)]) == 1
        assert "names no resource" in capsys.readouterr().err


class TestBaseline:
    """Accepted findings stop counting; unused entries are reported."""

    def test_write_then_apply(self, legacy, tmp_path, capsys):
        """A written baseline suppresses every current finding."""
        base = tmp_path / "tiers-baseline.yaml"
        assert main([*legacy, "--write-baseline", str(base), "-o", "json"]) == 0
        before = json.loads(capsys.readouterr().out)
        entries = parse_baseline(yaml.safe_load(base.read_text()))
        assert {(i, s) for i, s, _ in entries} == {
            (f["id"], f["subject"]) for f in before["findings"]
        }
        argv = [*legacy, "--baseline", str(base), "--fail-on", "low", "-o", "json"]
        assert main(argv) == 0
        after = json.loads(capsys.readouterr().out)
        assert after["findings"] == []
        assert len(after["suppressed"]) == len(before["findings"])
        assert all(s["reason"] for s in after["suppressed"])

    def test_partial_and_unused(self, legacy, tmp_path, capsys):
        """One accepted id (any subject) plus a stale entry."""
        base = tmp_path / "b.json"
        base.write_text(
            json.dumps(
                {
                    "suppressions": [
                        {
                            "id": "KI-T002",
                            "subject": "*",
                            "reason": "legacy, ticket 42",
                        },
                        {"id": "KI-H010", "subject": "gone", "reason": "old"},
                    ]
                }
            )
        )
        argv = [*legacy, "--baseline", str(base), "-o", "json"]
        assert main(argv) == 0
        doc = json.loads(capsys.readouterr().out)
        assert "KI-T002" not in {f["id"] for f in doc["findings"]}
        assert [s["id"] for s in doc["suppressed"]] == ["KI-T002"]
        assert doc["unusedSuppressions"] == [{"id": "KI-H010", "subject": "gone"}]
        assert main([*legacy, "--baseline", str(base)]) == 0
        text = capsys.readouterr().out
        assert "SUPPRESSED BY THE BASELINE (1)" in text
        assert "baseline entry KI-H010 gone matches nothing" in text

    def test_parse_errors(self):
        """Shape errors name the entry."""
        with pytest.raises(InvalidPolicyError, match="suppressions list"):
            parse_baseline({"x": 1})
        with pytest.raises(InvalidPolicyError, match=r"suppressions\[1\]"):
            parse_baseline(
                {
                    "suppressions": [
                        {"id": "a", "subject": "b", "reason": "c"},
                        {"id": "a", "subject": "b", "reason": " "},
                    ]
                }
            )


class TestContext:
    """The request context AWS sends."""

    @pytest.mark.parametrize(
        ("action", "resource", "expected"),
        [
            ("iam:CreateAccessKey", f"arn:aws:iam::{A}:user/u", "us-east-1"),
            ("iam:PassRole", f"arn:aws:iam::{A}:role/r", "eu-west-1"),
            (
                "ecr:BatchGetImage",
                f"arn:aws:ecr:ap-south-1:{A}:repository/x",
                "ap-south-1",
            ),
            ("ecr:GetAuthorizationToken", "*", "eu-west-1"),
            ("s3:GetObject", "arn:aws:s3:::b/k", "eu-west-1"),
        ],
    )
    def test_requested_region(self, action, resource, expected):
        """IAM's global endpoint, else the resource's region, else the workload's."""
        assert requested_region(action, resource, "eu-west-1") == expected

    def test_no_silent_region(self):
        """No ARN names the region: an input error, not us-east-1."""
        s = _scenario("01-ecs-standard-execution-role")
        td = dict(s["taskDefinition"])
        del td["taskDefinitionArn"]
        for c in td["containerDefinitions"]:
            del c["logConfiguration"]["options"]["awslogs-region"]
        account = parse_account_authorization_details(s["account"])
        task = parse_task_definition(td)
        assert task.region == ""
        with pytest.raises(InvalidPolicyError, match="region"):
            evaluate_ecs_tiers(account, task)
        report = evaluate_ecs_tiers(
            account, task, cluster_arn=f"arn:aws:ecs:ap-south-1:{A}:cluster/c"
        )
        assert report.workload["region"] == "ap-south-1"
        with pytest.raises(InvalidPolicyError, match="region"):
            evaluate_eks_tiers(
                account, EKSWorkload("ns", "sa", "arn:aws:iam::1:role/r")
            )

    def test_pod_identity_region_and_tags(self):
        """Region from the association ARN; the session tags reach ABAC statements."""
        s = _scenario("17-eks-pod-identity-session-tags")
        account = parse_account_authorization_details(s["account"])
        pia = parse_pod_identity_association(s["podIdentityAssociation"])
        report = evaluate_eks_tiers(account, EKSWorkload("jobs", "worker", "", pia))
        assert (
            report.workload["cluster"] == f"arn:aws:eks:eu-west-1:{A}:cluster/prod-eks"
        )
        # The role's S3 grant is ${aws:PrincipalTag/kubernetes-namespace}/*: jobs/.
        assert not any(f.code == "KI-A004" for f in report.findings)
        line = next(g for g in report.application if g.service == "s3")
        assert "PrincipalTag/kubernetes-namespace" in line.wording
        # Another namespace in the association: the trust's tag condition refuses.
        other = parse_pod_identity_association(
            {**s["podIdentityAssociation"], "namespace": "web"}
        )
        report = evaluate_eks_tiers(account, EKSWorkload("web", "worker", "", other))
        assert {f.code for f in report.findings if f.tier == "task"} == {"KI-T030"}

    def test_resource_policy_outputs(self):
        """The three services' get-*-policy outputs and a bare document."""
        doc = {"Version": "2012-10-17", "Statement": []}
        text = json.dumps(doc)
        arn = f"arn:aws:secretsmanager:eu-west-1:{A}:secret:s-AbCdEf"
        for out, named in (
            ({"registryId": A, "repositoryName": "r", "policyText": text}, ""),
            ({"Policy": text, "PolicyName": "default"}, ""),
            ({"ARN": arn, "Name": "s", "ResourcePolicy": text}, arn),
            (doc, ""),
        ):
            got, compiled = resource_policy_document(out, "f")
            assert got == named and compiled is not None
        with pytest.raises(InvalidPolicyError, match="no policy document"):
            resource_policy_document({"x": 1}, "f")


def _role(name: str, trust: dict[str, Any], statements: list[dict[str, Any]]) -> Any:
    return {
        "RoleName": name,
        "Arn": f"arn:aws:iam::{A}:role/{name}",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust]},
        "RolePolicyList": [
            {
                "PolicyName": "p",
                "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
            }
        ]
        if statements
        else [],
        "AttachedManagedPolicies": [],
    }


def _svc(service: str) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }


ADMIN = {"Effect": "Allow", "Action": "*", "Resource": "*"}


class TestEscalationRoutes:
    """PassRole + compute routes other than the corpus's RunTask and Lambda."""

    @pytest.mark.parametrize(
        ("service", "actions", "route"),
        [
            (
                "ecs-tasks.amazonaws.com",
                ["ecs:RegisterTaskDefinition", "ecs:CreateService"],
                "ecs:RegisterTaskDefinition + ecs:CreateService",
            ),
            ("ec2.amazonaws.com", ["ec2:RunInstances"], "ec2:RunInstances"),
        ],
    )
    def test_route(self, service, actions, route):
        """A path to the admin role, critical, naming the route; none without launch."""
        src = _role(
            "src",
            _svc("ecs-tasks.amazonaws.com"),
            [
                {
                    "Sid": "Launch",
                    "Effect": "Allow",
                    "Action": actions,
                    "Resource": "*",
                },
                {
                    "Sid": "Pass",
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": "*",
                },
            ],
        )
        admin = _role("admin", _svc(service), [ADMIN])
        account = parse_account_authorization_details({"RoleDetailList": [src, admin]})
        task = parse_task_definition(
            {
                "taskDefinitionArn": f"arn:aws:ecs:eu-west-1:{A}:task-definition/t:1",
                "family": "t",
                "taskRoleArn": src["Arn"],
                "containerDefinitions": [{"name": "c", "image": "nginx"}],
            }
        )
        report = evaluate_ecs_tiers(account, task)
        (f,) = [f for f in report.findings if f.code == "KI-E001"]
        assert f.where == admin["Arn"] and f.severity.value == "critical"
        assert route in f.detail and "Pass" in f.granted_by
        src["RolePolicyList"][0]["PolicyDocument"]["Statement"].pop(0)
        account = parse_account_authorization_details({"RoleDetailList": [src, admin]})
        report = evaluate_ecs_tiers(account, task)
        assert not any(f.code == "KI-E001" for f in report.findings)


def test_application_wording():
    """NotAction and NotResource statements are worded for what they grant."""
    role = _role(
        "app",
        _svc("ecs-tasks.amazonaws.com"),
        [
            {
                "Sid": "NotIam",
                "Effect": "Allow",
                "NotAction": "iam:*",
                "Resource": "arn:aws:s3:::b/*",
            },
            {
                "Sid": "AllButProd",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "NotResource": "arn:aws:s3:::prod/*",
            },
        ],
    )
    account = parse_account_authorization_details({"RoleDetailList": [role]})
    task = parse_task_definition(
        {
            "taskDefinitionArn": f"arn:aws:ecs:eu-west-1:{A}:task-definition/t:1",
            "family": "t",
            "taskRoleArn": role["Arn"],
            "containerDefinitions": [{"name": "c", "image": "nginx"}],
        }
    )
    report = evaluate_ecs_tiers(account, task)
    words = {g.granted_by.rsplit(" ", 2)[-1]: g.wording for g in report.application}
    assert words['"NotIam")'] == (
        "may call every action of every service except iam:* on arn:aws:s3:::b/*"
    )
    assert words['"AllButProd")'] == (
        "may s3:GetObject on every resource except arn:aws:s3:::prod/*"
    )
    ids = {f.code: f for f in report.findings if f.tier == "application"}
    assert set(ids) >= {"KI-A010", "KI-A011", "KI-A004"}
    assert 'Sid "AllButProd"' in ids["KI-A004"].granted_by


def test_same_inline_policy_name_on_two_roles():
    """Inline policies named alike on two roles are two policies (compile cache)."""
    from policy.tiers.checks import can

    admin = _role("admin", _svc("ec2.amazonaws.com"), [ADMIN])
    small = _role(
        "small",
        _svc("ec2.amazonaws.com"),
        [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    )
    account = parse_account_authorization_details({"RoleDetailList": [small, admin]})
    for name, expected in (("small", "ImplicitlyDenied"), ("admin", "Allowed")):
        role = account.role(name)
        assert role is not None
        got = can(account, role, "ec2:RunInstances", "*", region="eu-west-1")
        assert got.value == expected, name
