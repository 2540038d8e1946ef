"""webhook.mappings_cli: ``kubeiam mappings validate|show|lint`` through main(argv)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webhook.mappings_cli import main

DATA = Path(__file__).resolve().parent.parent / "data" / "mappings"
CONFIG = str(DATA / "config.yaml")
AWS_AUTH = str(DATA / "aws-auth.yaml")
BROKEN = str(DATA / "broken.yaml")
TRUST = str(DATA / "auth.json")


class TestValidate:
    """validate: exit 1 with every problem and where it is."""

    def test_valid_files(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A server config (and the file it names) plus an aws-auth ConfigMap: valid."""
        assert main(["validate", CONFIG, AWS_AUTH]) == 0
        out = capsys.readouterr().out
        assert "OK: 13 entries in 3 source(s)" in out
        assert "sources[1].configMap is read from the cluster" in out

    def test_every_problem_listed(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Each problem is printed with file and path; exit 1."""
        assert main(["validate", BROKEN]) == 1
        captured = capsys.readouterr()
        lines = captured.out.splitlines()
        assert [line.split(": ", 2)[1] for line in lines] == [
            "mapRoles[0].rolearn",
            "mapRoles[1].rolearn",
            "mapRoles[2].username",
            "mapRoles[3].groups",
            "mapUsers[0].usrname",
            "mapAccounts[0]",
        ]
        assert all(line.startswith(f"{BROKEN}: ") for line in lines)
        assert "6 problems" in captured.err

    def test_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """-o json gives valid, entries, problems and notes."""
        assert main(["validate", BROKEN, "-o", "json"]) == 1
        doc = json.loads(capsys.readouterr().out)
        assert doc["valid"] is False and len(doc["problems"]) == 6
        assert doc["problems"][2] == {
            "where": f"{BROKEN}: mapRoles[2].username",
            "message": "is required",
        }

    def test_broken_aws_auth_configmap(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A ConfigMap whose data string is not YAML names data.<key>."""
        path = tmp_path / "cm.yaml"
        path.write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: aws-auth}\n"
            "data:\n  mapRoles: |\n    - rolearn: [oops\n"
        )
        assert main(["validate", str(path)]) == 1
        assert f"{path}: data.mapRoles: not valid YAML" in capsys.readouterr().out

    def test_missing_file_and_bad_yaml(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unreadable file is one error line; a YAML syntax error is a problem."""
        assert main(["validate", str(tmp_path / "nope.yaml")]) == 1
        assert "cannot read" in capsys.readouterr().err
        bad = tmp_path / "bad.yaml"
        bad.write_text("mapRoles: [\n")
        assert main(["validate", str(bad)]) == 1
        assert f"{bad}: (file): not valid YAML" in capsys.readouterr().out

    def test_server_config_missing_source_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A file source that does not exist is a problem of the config."""
        config = tmp_path / "config.yaml"
        config.write_text("clusterID: x\nsources:\n  - file: {path: gone.yaml}\n")
        assert main(["validate", str(config)]) == 1
        assert "sources[0].file.path" in capsys.readouterr().out

    def test_usage_errors(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No subcommand or no file: exit 2; --help: exit 0 with examples."""
        assert main([]) == 2
        assert main(["validate"]) == 2
        capsys.readouterr()
        assert main(["lint", "--help"]) == 0
        assert "examples:" in capsys.readouterr().out


class TestShow:
    """show: the effective table after precedence."""

    def test_json_table(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Rows in precedence order, canonical path-stripped ARNs, shadowed-by."""
        assert main(["show", CONFIG, AWS_AUTH, "-o", "json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [r["source"] for r in rows][:2] == ["inline", "inline"]
        admin = rows[0]
        assert admin["arn"] == "arn:aws:iam::111122223333:role/Admin"  # path stripped
        assert admin["groups"] == ["system:masters"] and admin["shadowedBy"] == ""
        by_user = {r["username"]: r for r in rows}
        assert by_user["other-admin"]["shadowedBy"] == f"{CONFIG}: mapRoles[0]"
        assert by_user["carol"]["shadowedBy"] == f"{CONFIG}: mapAccounts[0]"
        assert by_user["deploy-again"]["shadowedBy"] == f"{AWS_AUTH}: data.mapRoles[1]"
        assert by_user["viewer"]["shadowedBy"] == "(never matches)"
        accounts = [r["arn"] for r in rows if r["kind"] == "account"]
        assert accounts == ["444455556666", "000123456701"]  # text, leading zeros kept

    def test_text_table(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The human table has a header and one line per entry."""
        assert main(["show", AWS_AUTH]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split() == [
            "SOURCE",
            "KIND",
            "ARN",
            "USERNAME",
            "GROUPS",
            "SHADOWED-BY",
        ]
        assert len(lines) == 1 + 6

    def test_problems_exit_1(self, capsys: pytest.CaptureFixture[str]) -> None:
        """show still prints what parsed, but exits 1 when there are problems."""
        assert main(["show", BROKEN]) == 1
        assert "run validate" in capsys.readouterr().err


class TestLint:
    """lint: findings with a severity, -o json, --trust-policies, --fail-on."""

    def test_findings_with_trust_policies(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The sample files produce the expected findings; exit 1 on high ones."""
        assert (
            main(["lint", CONFIG, AWS_AUTH, "--trust-policies", TRUST, "-o", "json"])
            == 1
        )
        findings = json.loads(capsys.readouterr().out)
        assert {tuple(sorted(f)) for f in findings} == {
            ("code", "message", "severity", "where")
        }
        got = {
            (f["severity"], f["code"], f["where"].rsplit("/", 1)[-1]) for f in findings
        }
        expected = {
            ("high", "system-masters", "config.yaml: mapRoles[0]"),
            ("high", "reserved-prefix", "mapping.yaml: mapRoles[2]"),
            ("high", "system-masters", "aws-auth.yaml: data.mapRoles[1]"),
            ("high", "session-template", "aws-auth.yaml: data.mapRoles[1]"),
            ("medium", "numeric-account", "aws-auth.yaml: data.mapAccounts[0]"),
            ("medium", "duplicate", "mapping.yaml: mapRoles[0]"),
            ("medium", "shadowed-by-account", "mapping.yaml: mapUsers[0]"),
            ("medium", "duplicate", "aws-auth.yaml: data.mapRoles[2]"),
            ("medium", "session-template", "mapping.yaml: mapRoles[1]"),
            ("medium", "username-from-session", "aws-auth.yaml: data.mapRoles[1]"),
            ("medium", "system-group", "aws-auth.yaml: data.mapRoles[3]"),
            ("medium", "never-matches", "aws-auth.yaml: data.mapRoles[3]"),
            ("low", "account-automap", "config.yaml: mapAccounts[0]"),
            ("low", "account-automap", "aws-auth.yaml: data.mapAccounts[0]"),
            ("low", "wrong-list", "aws-auth.yaml: data.mapUsers[0]"),
            ("info", "session-template", "aws-auth.yaml: data.mapRoles[0]"),
        }
        assert got == expected
        assert [f["severity"] for f in findings] == sorted(
            (f["severity"] for f in findings),
            key=["high", "medium", "low", "info"].index,
        )

    def test_without_trust_policies_the_node_role_is_medium(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without account data the node template is medium, with a note saying why."""
        main(["lint", AWS_AUTH, "-o", "json"])
        findings = json.loads(capsys.readouterr().out)
        node = [f for f in findings if f["where"].endswith("data.mapRoles[0]")]
        assert [(f["severity"], f["code"]) for f in node] == [
            ("medium", "session-template")
        ]
        assert "--trust-policies" in node[0]["message"]

    @pytest.mark.parametrize(
        ("fail_on", "code"),
        [
            ("critical", 0),
            ("high", 0),
            ("medium", 0),
            ("low", 1),
            ("info", 1),
            ("never", 0),
        ],
    )
    def test_fail_on(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        fail_on: str,
        code: int,
    ) -> None:
        """--fail-on sets the severity that makes lint exit 1."""
        path = tmp_path / "m.yaml"
        path.write_text("mapAccounts: ['111122223333']\n")  # one low finding
        assert main(["lint", str(path), "--fail-on", fail_on]) == code
        assert "LOW" in capsys.readouterr().out

    def test_reserved_prefix_flag(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--reserved-prefix applies to plain files."""
        path = tmp_path / "m.yaml"
        path.write_text(
            "mapRoles:\n- rolearn: arn:aws:iam::111122223333:role/A\n  username: "
            "eks:a\n"
        )
        assert main(["lint", str(path), "--reserved-prefix", "eks:"]) == 1
        assert "reserved-prefix" in capsys.readouterr().out

    def test_crd_objects_granting_system_masters_are_explained(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An IAMIdentityMapping granting system:masters: a HIGH finding says why."""
        path = tmp_path / "crd.yaml"
        path.write_text(
            "apiVersion: iamauthenticator.k8s.aws/v1alpha1\n"
            "kind: IAMIdentityMapping\n"
            "metadata: {name: admin}\n"
            "spec:\n"
            "  arn: arn:aws:iam::111122223333:role/Admin\n"
            "  username: admin\n"
            "  groups: [system:masters]\n"
        )
        assert main(["lint", str(path)]) == 1
        out = capsys.readouterr().out
        assert "reserved-group-prefix" in out
        assert "'system:masters' begins with 'system:'" in out
        assert "reserved for source crd" in out

    def test_clean_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A clean file: no findings, exit 0."""
        path = tmp_path / "m.yaml"
        path.write_text(
            "mapRoles:\n- rolearn: arn:aws:iam::111122223333:role/A\n  username: a\n"
        )
        assert main(["lint", str(path)]) == 0
        assert capsys.readouterr().out == "no findings\n"

    def test_bad_trust_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A trust-policy file that is not JSON is one error line, exit 1."""
        bad = tmp_path / "auth.json"
        bad.write_text("{nope")
        assert main(["lint", AWS_AUTH, "--trust-policies", str(bad)]) == 1
        assert "not JSON" in capsys.readouterr().err


def test_dispatcher_runs_mappings(capsys: pytest.CaptureFixture[str]) -> None:
    """`kubeiam mappings` reaches this CLI through the lazy dispatcher."""
    from kubeiam.cli import main as kubeiam_main

    assert kubeiam_main(["mappings", "validate", AWS_AUTH]) == 0
    assert "OK: 6 entries" in capsys.readouterr().out


class TestLintTrustThroughTheEngine:
    """--trust-policies is answered by the IAM engine: conditions and Deny count."""

    NODE = "arn:aws:iam::111122223333:role/node"

    def _template(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], trust: object
    ) -> tuple[int, list[dict[str, str]]]:
        mapping = tmp_path / "aws-auth.yaml"
        mapping.write_text(
            f"mapRoles:\n- rolearn: {self.NODE}\n  username: node:{{{{SessionName}}}}\n"
        )
        policies = tmp_path / "trust.json"
        policies.write_text(json.dumps({self.NODE: trust}))
        code = main(
            ["lint", str(mapping), "--trust-policies", str(policies), "-o", "json"]
        )
        out = capsys.readouterr().out
        found = json.loads(out) if out else []
        return code, [f for f in found if f["code"] == "session-template"]

    def test_condition_makes_it_conditional(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Principal * limited to an organisation: medium, naming the key."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}},
                }
            ],
        }
        _, [finding] = self._template(tmp_path, capsys, trust)
        assert finding["severity"] == "medium"
        assert "AWS:* (if aws:PrincipalOrgID)" in finding["message"]

    def test_deny_leaves_no_one(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An Allow undone by a Deny for everyone: info, no one can assume it."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
                    "Action": "sts:AssumeRole",
                },
                {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"},
            ],
        }
        _, [finding] = self._template(tmp_path, capsys, trust)
        assert finding["severity"] == "info"

    def test_invalid_trust_policy_is_an_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A trust policy the engine refuses: one error line naming the role."""
        trust = {"Statement": [{"Effect": "Maybe", "Action": "sts:AssumeRole"}]}
        mapping = tmp_path / "aws-auth.yaml"
        mapping.write_text(f"mapRoles:\n- rolearn: {self.NODE}\n  username: n\n")
        policies = tmp_path / "trust.json"
        policies.write_text(json.dumps({self.NODE: trust}))
        assert main(["lint", str(mapping), "--trust-policies", str(policies)]) == 1
        captured = capsys.readouterr()
        assert f"trust policy of {self.NODE}" in captured.err
        assert captured.out == ""
