"""Tier reports on realistic fixtures: each finding asserted."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from authenticator.findings import Severity
from policy.errors import InvalidPolicyError
from policy.iam.accounts import Account, parse_account_authorization_details, parse_scps
from policy.tiers.cli import main
from policy.tiers.model import TierReport
from policy.tiers.report import evaluate_ecs_tiers, evaluate_eks_tiers
from policy.tiers.workloads import (
    ecr_repository,
    parse_access_entries,
    parse_pod_identity_association,
    parse_service_account,
    parse_task_definition,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "tiers"
A = "111122223333"
ECS_CLUSTER = f"arn:aws:ecs:us-east-1:{A}:cluster/prod"
EKS_CLUSTER = f"arn:aws:eks:us-east-1:{A}:cluster/prod-eks"
ROLE = f"arn:aws:iam::{A}:role/"
USER = f"arn:aws:iam::{A}:user/"


def _load(name: str) -> Any:
    text = (DATA / name).read_text()
    return json.loads(text) if name.endswith(".json") else yaml.safe_load(text)


@pytest.fixture(scope="module")
def account():
    """The realistic account, parsed once."""
    return parse_account_authorization_details(_load("account.json"))


def _ecs(account: Account, td: str) -> TierReport:
    return evaluate_ecs_tiers(
        account, parse_task_definition(_load(td)), cluster_arn=ECS_CLUSTER
    )


def _ids(report: TierReport, tier: str | None = None) -> set[tuple[str, str]]:
    return {
        (f.code, f.where) for f in report.findings if tier is None or f.tier == tier
    }


CLUSTER_FINDINGS = {
    ("KI-C001", USER + "alice"),
    ("KI-C001", USER + "bob"),
    ("KI-C002", USER + "alice"),
    ("KI-C002", USER + "dave"),
    ("KI-C003", USER + "alice"),
    ("KI-C003", USER + "bob"),
}


class TestECS:
    """The three ECS fixtures."""

    def test_correct_task(self, account):
        """A correct task: no task or housekeeping finding; every check passes."""
        report = _ecs(account, "td-web.json")
        assert _ids(report, "task") == set()
        assert _ids(report, "housekeeping") == set()
        hk = [c for c in report.checks if c.tier == "housekeeping"]
        assert {c.action for c in hk} == {
            "ecr:GetAuthorizationToken",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "secretsmanager:GetSecretValue",
        }
        assert all(c.allowed for c in hk)
        secret = next(c for c in hk if c.action == "secretsmanager:GetSecretValue")
        assert (
            secret.resource
            == f"arn:aws:secretsmanager:us-east-1:{A}:secret:web/db-AbCdEf"
        )

    def test_cluster_tier(self, account):
        """Who operates the cluster: rows per principal and the operator findings."""
        report = _ecs(account, "td-web.json")
        rows = {r.principal: set(r.actions) for r in report.cluster}
        assert set(rows) == {USER + n for n in ("alice", "bob", "carol", "dave")}
        assert rows[USER + "carol"] == {
            "ecs:DescribeTasks",
            "ecs:ListTasks",
            "ecs:DescribeServices",
        }
        assert rows[USER + "dave"] == {"ecs:DescribeTasks", "ecs:ExecuteCommand"}
        assert (
            "ecs:RunTask" in rows[USER + "bob"]
            and "ecs:StartTask" not in rows[USER + "bob"]
        )
        assert _ids(report, "cluster") == CLUSTER_FINDINGS

    def test_other_cluster(self, account):
        """bob's grants are scoped by ecs:cluster: nothing in another cluster."""
        task = parse_task_definition(_load("td-web.json"))
        report = evaluate_ecs_tiers(
            account, task, cluster_arn=f"arn:aws:ecs:us-east-1:{A}:cluster/dev"
        )
        assert USER + "bob" not in {r.principal for r in report.cluster}
        assert USER + "dave" not in {r.principal for r in report.cluster}

    def test_cannot_pull(self, account):
        """An execution role without ECR rights: critical KI-H010, the task fails."""
        report = _ecs(account, "td-no-pull.json")
        (f,) = [f for f in report.findings if f.tier == "housekeeping"]
        image = f"{A}.dkr.ecr.us-east-1.amazonaws.com/web:1.4.2"
        assert (f.code, f.severity, f.where) == ("KI-H010", Severity.CRITICAL, image)
        assert "ecr:GetAuthorizationToken on *" in f.detail
        assert (
            f"ecr:BatchGetImage on arn:aws:ecr:us-east-1:{A}:repository/web" in f.detail
        )
        assert "task fails to start" in f.detail
        assert {
            c.action for c in report.checks if c.tier == "housekeeping" and c.allowed
        } == {"logs:CreateLogStream", "logs:PutLogEvents"}
        # bob may pass only the web roles; this execution role is another one.
        assert ("KI-C001", USER + "bob") not in _ids(report)

    def test_unguarded_legacy_task_role(self, account):
        """No confused-deputy guard, iam:PassRole on *, s3:* on *."""
        report = _ecs(account, "td-legacy.json")
        role = ROLE + "legacy-task-role"
        task = {(f.code, f.severity) for f in report.findings if f.tier == "task"}
        assert task == {
            ("KI-T010", Severity.MEDIUM),
            ("KI-T002", Severity.HIGH),
            ("KI-T004", Severity.MEDIUM),
        }
        t010 = next(f for f in report.findings if f.code == "KI-T010")
        assert t010.where == role
        assert "aws:SourceAccount" in t010.detail
        t004 = next(f for f in report.findings if f.code == "KI-T004")
        assert t004.detail == "inline:legacy statement 0: s3:* on *"

    def test_scps_remove_exec(self, account):
        """An SCP level that denies ecs:ExecuteCommand removes KI-C002."""
        scps = parse_scps(_load("scps.json"))
        acct = parse_account_authorization_details(_load("account.json"), scps=scps)
        report = _ecs(acct, "td-web.json")
        assert not any(f.code == "KI-C002" for f in report.findings)

    def test_missing_roles_and_slr(self):
        """No execution role, unknown task role, no ECS service-linked role."""
        acct = parse_account_authorization_details(
            {
                "UserDetailList": [
                    {"UserName": "u", "Arn": USER + "u", "UserPolicyList": []}
                ]
            }
        )
        td = _load("td-web.json")
        td = {
            "taskDefinition": {
                k: v for k, v in td["taskDefinition"].items() if k != "executionRoleArn"
            }
        }
        report = evaluate_ecs_tiers(acct, parse_task_definition(td))
        found = {(f.code, f.severity) for f in report.findings}
        assert ("KI-H001", Severity.CRITICAL) in found
        assert ("KI-T040", Severity.HIGH) in found
        assert ("KI-H040", Severity.MEDIUM) in found
        assert (
            report.workload["cluster"] == f"arn:aws:ecs:us-east-1:{A}:cluster/default"
        )

    def test_kms_and_log_group_creation(self, account):
        """awslogs-create-group needs CreateLogGroup; a named CMK needs kms:Decrypt."""
        td = _load("td-web.json")
        td["taskDefinition"]["containerDefinitions"][0]["logConfiguration"]["options"][
            "awslogs-create-group"
        ] = "true"
        key = f"arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        report = evaluate_ecs_tiers(
            account, parse_task_definition(td), cluster_arn=ECS_CLUSTER, kms_keys=[key]
        )
        assert {
            (f.code, f.where) for f in report.findings if f.tier == "housekeeping"
        } == {("KI-H020", "/ecs/web"), ("KI-H031", key)}


class TestEKS:
    """IRSA and Pod Identity fixtures."""

    @staticmethod
    def _mapper(arn: str) -> tuple[str, tuple[str, ...]] | None:
        return {ROLE + "platform-admin": ("platform-admin", ("system:masters",))}.get(
            arn
        )

    def _eks(self, account: Account, sa: str, pia: str | None = None) -> TierReport:
        w = parse_service_account(_load(sa))
        if pia:
            w = dataclasses.replace(
                w, pod_identity=parse_pod_identity_association(_load(pia))
            )
        return evaluate_eks_tiers(
            account, w, cluster_arn=EKS_CLUSTER, mapper=self._mapper
        )

    def test_irsa_sound(self, account):
        """IRSA bound to one service account and the sts audience: no task finding."""
        report = self._eks(account, "sa-web-api.yaml")
        assert _ids(report, "task") == set()
        assert report.workload["irsaRolePolicies"] == ["inline:dynamo"]

    def test_irsa_trusts_every_service_account(self, account):
        """No :sub condition: critical KI-T021."""
        report = self._eks(account, "sa-open.yaml")
        assert _ids(report, "task") == {("KI-T021", ROLE + "irsa-open-role")}
        assert (
            next(f for f in report.findings if f.code == "KI-T021").severity
            is Severity.CRITICAL
        )

    @pytest.mark.parametrize(
        ("condition", "expected"),
        [
            (
                {
                    "StringLike": {
                        "{iss}:sub": "system:serviceaccount:web:*",
                        "{iss}:aud": "sts.amazonaws.com",
                    }
                },
                {"KI-T022"},
            ),
            (
                {"StringEquals": {"{iss}:sub": "system:serviceaccount:web:web-api"}},
                {"KI-T023"},
            ),
            (
                {"StringEquals": {"{iss}:sub": "system:serviceaccount:web:other"}},
                {"KI-T020"},
            ),
        ],
    )
    def test_irsa_trust_shapes(self, account, condition, expected):
        """Namespace wildcards, a missing aud check and a trust for another SA."""
        details = _load("account.json")
        role = next(
            r for r in details["RoleDetailList"] if r["RoleName"] == "irsa-web-role"
        )
        stmt = role["AssumeRolePolicyDocument"]["Statement"][0]
        iss = next(iter(stmt["Condition"]["StringEquals"])).rsplit(":", 1)[0]
        stmt["Condition"] = {
            op: {k.format(iss=iss): v for k, v in kv.items()}
            for op, kv in condition.items()
        }
        acct = parse_account_authorization_details(details)
        report = self._eks(acct, "sa-web-api.yaml")
        assert {f.code for f in report.findings if f.tier == "task"} == expected

    def test_pod_identity(self, account):
        """Pod Identity with TagSession and a guard; a node role can serve it."""
        report = self._eks(account, "sa-worker.yaml", "pia-worker.json")
        assert _ids(report, "task") == set()
        assert _ids(report, "housekeeping") == set()
        (agent,) = [
            c for c in report.checks if c.action == "eks-auth:AssumeRoleForPodIdentity"
        ]
        assert agent.principal == ROLE + "eks-node-role" and agent.allowed

    def test_pod_identity_without_tag_session(self):
        """A trust without sts:TagSession: KI-T030; no guard would be KI-T031."""
        details = _load("account.json")
        role = next(
            r for r in details["RoleDetailList"] if r["RoleName"] == "pod-identity-role"
        )
        role["AssumeRolePolicyDocument"]["Statement"][0]["Action"] = "sts:AssumeRole"
        report = self._eks(
            parse_account_authorization_details(details),
            "sa-worker.yaml",
            "pia-worker.json",
        )
        assert {f.code for f in report.findings if f.tier == "task"} == {"KI-T030"}
        del role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
        role["AssumeRolePolicyDocument"]["Statement"][0]["Action"] = [
            "sts:AssumeRole",
            "sts:TagSession",
        ]
        report = self._eks(
            parse_account_authorization_details(details),
            "sa-worker.yaml",
            "pia-worker.json",
        )
        assert {f.code for f in report.findings if f.tier == "task"} == {"KI-T031"}

    def test_cluster_tier(self, account):
        """system:masters mapping, access-entry self-grant, Pod Identity rebinding."""
        report = self._eks(account, "sa-web-api.yaml")
        assert _ids(report, "cluster") == {
            ("KI-C010", ROLE + "platform-admin"),
            ("KI-C011", ROLE + "platform-admin"),
            ("KI-C011", USER + "alice"),
            ("KI-C012", USER + "alice"),
        }
        row = next(r for r in report.cluster if r.principal == ROLE + "platform-admin")
        assert (row.kubernetes_user, row.kubernetes_groups) == (
            "platform-admin",
            ("system:masters",),
        )


class TestWorkloads:
    """Workload parsing."""

    @pytest.mark.parametrize(
        ("image", "expected"),
        [
            (
                f"{A}.dkr.ecr.us-east-1.amazonaws.com/web:1",
                (A, "us-east-1", "web", "aws"),
            ),
            (
                f"{A}.dkr.ecr.cn-north-1.amazonaws.com.cn/team/api@sha256:ab",
                (A, "cn-north-1", "team/api", "aws-cn"),
            ),
            ("public.ecr.aws/nginx/nginx:latest", None),
            ("nginx:1.27", None),
        ],
    )
    def test_ecr_repository(self, image, expected):
        """ECR image references split into account, region, repository, partition."""
        assert ecr_repository(image) == expected

    def test_bare_task_definition_and_errors(self):
        """A bare task definition works; one naming no account is rejected."""
        td = _load("td-web.json")["taskDefinition"]
        assert parse_task_definition(td).family == "web"
        with pytest.raises(InvalidPolicyError, match="names the account"):
            parse_task_definition(
                {"family": "x", "containerDefinitions": [{"name": "a", "image": "b"}]}
            )
        with pytest.raises(InvalidPolicyError, match="ServiceAccount"):
            parse_service_account({"kind": "Pod"})
        with pytest.raises(InvalidPolicyError, match="roleArn"):
            parse_pod_identity_association({"association": {"clusterName": "c"}})


class TestAccessEntries:
    """describe-access-entry parsing."""

    def test_shapes(self):
        """A list, {accessEntries: [...]} and a single bare entry all parse."""
        entries = parse_access_entries(_load("access-entries.json"))
        assert [e.type for e in entries] == ["STANDARD"] * 3
        assert entries[0].policies == (
            (
                "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy",
                "namespace",
                ("platform-*",),
            ),
        )
        bare = {"principalArn": f"arn:aws:iam::{A}:role/team/Dev", "username": "dev"}
        wrapped = parse_access_entries({"accessEntries": [bare]})
        assert wrapped == parse_access_entries(bare)
        assert wrapped[0].matches(ROLE + "Dev") and wrapped[0].matches(ROLE + "x/dev")
        assert not wrapped[0].matches(ROLE + "Ops")

    def test_errors(self):
        """An entry without principalArn, or a policy without policyArn, is rejected."""
        with pytest.raises(InvalidPolicyError, match="principalArn"):
            parse_access_entries([{"accessEntry": {"username": "x"}}])
        with pytest.raises(InvalidPolicyError, match="policyArn"):
            parse_access_entries(
                [{"principalArn": ROLE + "r", "associatedAccessPolicies": [{}]}]
            )


class TestCLI:
    """`kubeiam policy tiers` through main(argv)."""

    def test_json_and_fail_on(self, capsys):
        """-o json carries the tiers; --fail-on critical fails on KI-H010."""
        argv = [
            "tiers",
            "--task-definition",
            str(DATA / "td-no-pull.json"),
            "--account",
            str(DATA / "account.json"),
            "--cluster-arn",
            ECS_CLUSTER,
            "-o",
            "json",
            "--fail-on",
            "critical",
        ]
        assert main(argv) == 3
        doc = json.loads(capsys.readouterr().out)
        assert doc["findings"][0]["id"] == "KI-H010"
        assert doc["summary"]["critical"] == 1
        assert set(doc["tiers"]) == {"cluster", "task", "housekeeping", "application"}

    def test_text_report(self, capsys):
        """The human report has the three tiers and the findings."""
        argv = [
            "tiers",
            "--task-definition",
            str(DATA / "td-legacy.json"),
            "--account",
            str(DATA / "account.json"),
            "--cluster-arn",
            ECS_CLUSTER,
        ]
        assert main(argv) == 0
        out = capsys.readouterr().out
        for title in ("CLUSTER TIER", "TASK TIER", "HOUSEKEEPING TIER", "FINDINGS"):
            assert title in out
        assert (
            "[medium] KI-T010 task role legacy-task-role trusts ecs-tasks.amazonaws.com"
            in out
        )

    def test_eks_with_mapping(self, capsys):
        """--mapping turns principals into Kubernetes users (node templates kept)."""
        argv = [
            "tiers",
            "--eks-service-account",
            str(DATA / "sa-open.yaml"),
            "--account",
            str(DATA / "account.json"),
            "--mapping",
            str(DATA / "aws-auth.yaml"),
            "--cluster-arn",
            EKS_CLUSTER,
            "-o",
            "json",
        ]
        assert main(argv) == 0
        doc = json.loads(capsys.readouterr().out)
        rows = {
            r["principal"]: (r["kubernetes"]["username"], r["kubernetes"]["groups"])
            for r in doc["tiers"]["cluster"]
            if "kubernetes" in r
        }
        assert rows[ROLE + "platform-admin"] == ("platform-admin", ["system:masters"])
        assert rows[ROLE + "eks-node-role"] == (
            "system:node:{{EC2PrivateDNSName}}",
            ["system:bootstrappers", "system:nodes"],
        )
        assert rows[USER + "carol"] == ("carol", ["viewers"])
        assert {f["id"] for f in doc["findings"]} >= {"KI-C010", "KI-T021"}

    def test_access_entries_win_over_aws_auth(self, capsys):
        """Access entries replace aws-auth; cluster-admin access is flagged."""
        argv = [
            "tiers",
            "--eks-service-account",
            str(DATA / "sa-web-api.yaml"),
            "--account",
            str(DATA / "account.json"),
            "--mapping",
            str(DATA / "aws-auth.yaml"),
            "--access-entries",
            str(DATA / "access-entries.json"),
            "--cluster-arn",
            EKS_CLUSTER,
            "-o",
            "json",
        ]
        assert main(argv) == 0
        doc = json.loads(capsys.readouterr().out)
        rows = {r["principal"]: r.get("kubernetes") for r in doc["tiers"]["cluster"]}
        assert rows[ROLE + "platform-admin"] == {
            "username": "platform-admin",
            "groups": ["platform-team"],
            "via": "access entry",
            "accessPolicies": ["AmazonEKSEditPolicy in platform-*"],
        }
        assert rows[USER + "alice"]["accessPolicies"] == [
            "AmazonEKSClusterAdminPolicy (cluster)"
        ]
        # Default username of a role entry without one: its session ARN template.
        assert rows[ROLE + "web-task-role"]["username"] == (
            f"arn:aws:sts::{A}:assumed-role/web-task-role/{{{{SessionName}}}}"
        )
        assert rows[USER + "carol"]["via"] == "aws-auth"
        ids = {(f["id"], f["subject"]) for f in doc["findings"]}
        assert ("KI-C013", USER + "alice") in ids
        assert not any(i == "KI-C010" for i, _ in ids)

    def test_errors(self, capsys, tmp_path):
        """A service account without a role, and unreadable input, exit 1."""
        argv = [
            "tiers",
            "--eks-service-account",
            str(DATA / "sa-worker.yaml"),
            "--account",
            str(DATA / "account.json"),
        ]
        assert main(argv) == 1
        assert "no eks.amazonaws.com/role-arn" in capsys.readouterr().err
        assert (
            main(
                [
                    "tiers",
                    "--task-definition",
                    str(tmp_path / "x.json"),
                    "--account",
                    str(DATA / "account.json"),
                ]
            )
            == 1
        )
