"""YAML suites (`policy test`), `explain`, `lint` and simulate input forms."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from policy.errors import InvalidPolicyError
from policy.iam import cli as iam_cli
from policy.iam.suite import expand_suite, load_suite

SUITE = """
name: platform guardrails
policies:
  deployer:
    file: deployer.json
  region-lock:
    Version: "2012-10-17"
    Statement:
      - Sid: DenyOutsideEU
        Effect: Deny
        NotAction: ["iam:*", "sts:*"]
        Resource: "*"
        Condition:
          StringNotEquals: {aws:RequestedRegion: [eu-west-1]}
  full-access:
    Version: "2012-10-17"
    Statement: [{Effect: Allow, Action: "*", Resource: "*"}]
defaults:
  identityPolicies: [deployer]
  scps: [full-access, region-lock]
  request:
    principal: arn:aws:sts::111122223333:assumed-role/deployer/ci
    context: {aws:RequestedRegion: eu-west-1}
tests:
  - name: deployer updates prod services
    request:
      action: [ecs:UpdateService, ecs:DescribeServices]
      resource: arn:aws:ecs:eu-west-1:111122223333:service/prod/web
    expect: Allowed
  - name: nothing runs outside eu-west-1
    request:
      action: ecs:UpdateService
      resource: arn:aws:ecs:us-east-1:111122223333:service/prod/web
      context: {aws:RequestedRegion: us-east-1}
    expect: ExplicitlyDenied
  - name: deployer cannot create users
    request: {action: iam:CreateUser, resource: "arn:aws:iam::111122223333:user/x"}
    expect: ImplicitlyDenied
"""
DEPLOYER = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}],
}


@pytest.fixture
def suite_dir(tmp_path: Path) -> Path:
    """A suite file with a policy referenced by path."""
    (tmp_path / "deployer.json").write_text(json.dumps(DEPLOYER))
    (tmp_path / "guardrails.yaml").write_text(SUITE)
    return tmp_path


class TestSuites:
    """Suite expansion and `kubeiam policy test`."""

    def test_expand(self, suite_dir: Path) -> None:
        """Defaults merge into tests and action lists expand into one case each."""
        suite = load_suite(suite_dir / "guardrails.yaml")
        assert suite.name == "platform guardrails"
        assert len(suite.cases) == 4
        first = suite.cases[0]
        assert first["request"]["context"] == {"aws:RequestedRegion": "eu-west-1"}  # type: ignore[index]
        assert first["identityPolicies"] == [{"name": "deployer", "policy": DEPLOYER}]

    def test_pass_and_junit(
        self, suite_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """All tests pass; the summary and JUnit XML report it."""
        report = suite_dir / "report.xml"
        assert (
            iam_cli.main(
                ["test", str(suite_dir / "guardrails.yaml"), "--junit-xml", str(report)]
            )
            == 0
        )
        assert "4 passed, 0 failed, 4 total" in capsys.readouterr().out
        root = ElementTree.parse(report).getroot()
        suite = root.find("testsuite")
        assert (
            suite is not None
            and suite.get("tests") == "4"
            and suite.get("failures") == "0"
        )

    def test_failure_exit_1(
        self, suite_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A wrong expectation fails the run with exit 1 and a FAIL line."""
        text = SUITE.replace("expect: ImplicitlyDenied", "expect: Allowed")
        (suite_dir / "bad.yaml").write_text(text)
        report = suite_dir / "r.xml"
        assert (
            iam_cli.main(
                ["test", str(suite_dir / "bad.yaml"), "--junit-xml", str(report)]
            )
            == 1
        )
        out = capsys.readouterr().out
        assert (
            "FAIL platform guardrails :: deployer cannot create users: "
            "expected Allowed, got ImplicitlyDenied" in out
        )
        assert (
            ElementTree.parse(report).getroot().find("testsuite/testcase/failure")
            is not None
        )

    def test_json_output(
        self, suite_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """-o json lists every test with its decision."""
        assert (
            iam_cli.main(["test", str(suite_dir / "guardrails.yaml"), "-o", "json"])
            == 0
        )
        rows = json.loads(capsys.readouterr().out)
        assert [r["passed"] for r in rows] == [True] * 4

    @pytest.mark.parametrize(
        "doc",
        [
            {"tests": "x"},
            {"tests": [], "policies": ["x"]},
            {
                "tests": [
                    {"identityPolicies": ["missing"], "request": {"action": "s3:x"}}
                ]
            },
        ],
    )
    def test_malformed(self, doc: object) -> None:
        """Malformed suites are InvalidPolicyError."""
        with pytest.raises(InvalidPolicyError):
            expand_suite(doc)

    def test_bad_policy_is_error_outcome(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A test whose policy does not parse is an error and fails the run."""
        (tmp_path / "s.yaml").write_text(
            "tests:\n  - name: broken\n    identityPolicies:\n"
            "      [{Version: '2012-10-17',\n"
            "        Statement: [{Effect: Allow, Action: s3}]}]\n"
            "    request: {principal: '111122223333', action: s3:GetObject}\n"
            "    expect: Allowed\n"
        )
        assert iam_cli.main(["test", str(tmp_path / "s.yaml")]) == 1
        assert "ERROR" in capsys.readouterr().out

    def test_unreadable_suite(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing or non-YAML file exits 1 with one line on stderr."""
        assert iam_cli.main(["test", str(tmp_path / "none.yaml")]) == 1
        err = capsys.readouterr().err
        assert err == (
            f"kubeiam policy test: {tmp_path / 'none.yaml'}: "
            "cannot read: No such file or directory\n"
        )

    def test_duplicate_effect_is_refused(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`Effect: Deny` then `Effect: Allow` in one statement is an error.

        PyYAML's safe_load kept the last key, so this suite used to pass as
        Allowed; `policy simulate` refuses the same policy as JSON.
        """
        (tmp_path / "s.yaml").write_text(
            "tests:\n  - name: dup\n    identityPolicies:\n"
            "      - Version: '2012-10-17'\n"
            "        Statement:\n"
            "          - Effect: Deny\n"
            "            Effect: Allow\n"
            "            Action: s3:GetObject\n"
            "            Resource: '*'\n"
            "    request: {principal: '111122223333', action: s3:GetObject}\n"
            "    expect: Allowed\n"
        )
        assert iam_cli.main(["test", str(tmp_path / "s.yaml")]) == 1
        captured = capsys.readouterr()
        assert "1 passed" not in captured.out
        assert captured.err == (
            f"kubeiam policy test: {tmp_path / 's.yaml'}: not a valid YAML suite: "
            "not valid YAML: line 7, column 13: duplicate key 'Effect'\n"
        )


MALFORMED = {
    "yaml": "a: [\n",
    "binary": b"\xff\xfe\x00bad",
    "deep": "[" * 1001 + "]" * 1001,  # past the default recursion limit
}


def test_no_subcommand_is_usage_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """`kubeiam policy` alone prints usage on stderr and exits 2; --help exits 0."""
    from policy import cli

    assert cli.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "simulate" in captured.err
    assert cli.main(["--help"]) == 0
    assert "simulate" in capsys.readouterr().out


class TestMalformedInputFiles:
    """Every `kubeiam policy` subcommand reports a broken input file in one line."""

    @pytest.mark.parametrize("content", MALFORMED.values(), ids=MALFORMED.keys())
    @pytest.mark.parametrize(
        "argv",
        [
            ["simulate", "{f}"],
            ["explain", "{f}"],
            ["test", "{f}"],
            ["can-i", "--rbac", "{f}", "--as", "a", "get", "pods"],
            ["who-can", "--rbac", "{f}", "get", "pods"],
            ["rbac", "--rbac", "{ok}", "--requests", "{f}"],
            ["tiers", "--task-definition", "{f}", "--account", "{ok}"],
        ],
        ids=lambda a: a[0],
    )
    def test_one_line_exit_1(
        self,
        argv: list[str],
        content: str | bytes,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Bad YAML, non-UTF-8 bytes and deep nesting: exit 1, one stderr line."""
        from policy import cli

        bad = tmp_path / "bad.yaml"
        if isinstance(content, bytes):
            bad.write_bytes(content)
        else:
            bad.write_text(content, encoding="utf-8")
        (tmp_path / "ok.json").write_text("{}", encoding="utf-8")
        args = [a.format(f=bad, ok=tmp_path / "ok.json") for a in argv]
        # can-i's error code is 3 (1 is its "no"); every other command uses 1.
        assert cli.main(args) == (3 if argv[0] == "can-i" else 1)
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert err.startswith(f"kubeiam policy {argv[0]}: {bad}: ")


CASE = {
    "id": "c1",
    "identityPolicies": [
        {
            "name": "reader",
            "policy": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "Read",
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": "*",
                        "Condition": {"Bool": {"aws:SecureTransport": "true"}},
                    }
                ],
            },
        }
    ],
    "request": {
        "principal": "arn:aws:iam::111122223333:user/alice",
        "action": "s3:GetObject",
        "resource": "arn:aws:s3:::b/k",
    },
}


class TestSimulateExplain:
    """Input forms, errors and the readable trace."""

    @pytest.mark.parametrize("form", ["array", "object", "single", "lines"])
    def test_input_forms(
        self, form: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Arrays, {"cases": [...]}, a single case and JSON lines are all read."""
        two = [CASE, {**CASE, "id": "c2"}]
        text = {
            "array": json.dumps(two),
            "object": json.dumps({"cases": two}),
            "single": json.dumps(CASE),
            "lines": "\n".join(json.dumps(c) for c in two),
        }[form]
        (tmp_path / "c.json").write_text(text)
        assert iam_cli.main(["simulate", str(tmp_path / "c.json")]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == (1 if form == "single" else 2)
        assert json.loads(lines[0])["decision"] == "ImplicitlyDenied"

    def test_stdin(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`-` reads cases from stdin."""
        import io

        monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(CASE)))
        assert iam_cli.main(["simulate", "-"]) == 0
        assert json.loads(capsys.readouterr().out)["id"] == "c1"

    def test_invalid_case_line_and_exit_1(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A case that does not parse prints an error line; the others still run."""
        bad = {
            **CASE,
            "id": "bad",
            "identityPolicies": [
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:*"}],
                }
            ],
        }
        (tmp_path / "c.json").write_text(json.dumps([bad, CASE]))
        assert iam_cli.main(["simulate", str(tmp_path / "c.json")]) == 1
        first, second = (
            json.loads(line) for line in capsys.readouterr().out.splitlines()
        )
        assert (
            first["id"] == "bad"
            and "identity-0: /Statement/0: needs Resource or NotResource"
            in first["error"]
        )
        assert second["decision"] == "ImplicitlyDenied"

    def test_explain_readable(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """explain shows the decision, the failing condition and the missing key."""
        (tmp_path / "c.json").write_text(json.dumps(CASE))
        assert iam_cli.main(["explain", str(tmp_path / "c.json")]) == 0
        out = capsys.readouterr().out
        assert "== c1: ImplicitlyDenied" in out
        assert "identity 'reader' #0 Sid \"Read\" Allow: no (Condition)" in out
        assert "Bool aws:SecureTransport ['true'] vs [] -> False [key missing]" in out
        assert "missing keys: aws:SecureTransport" in out

    def test_usage(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Unknown subcommands and bad flags are usage errors; --help exits 0."""
        assert iam_cli.main(["frobnicate"]) == 2
        assert iam_cli.main(["simulate"]) == 2
        assert iam_cli.main(["lint", "--help"]) == 0
        assert "examples:" in capsys.readouterr().out

    def test_missing_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing case file exits 1 with a message."""
        assert iam_cli.main(["simulate", str(tmp_path / "nope.json")]) == 1
        assert "nope.json" in capsys.readouterr().err


class TestLint:
    """`kubeiam policy lint`."""

    def test_policy_file_errors_and_warnings(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Errors carry the pointer; warnings do not fail the run."""
        (tmp_path / "ok.json").write_text(
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
                    ],
                }
            )
        )
        assert iam_cli.main(["lint", str(tmp_path / "ok.json")]) == 0
        assert "warning:" in capsys.readouterr().out
        (tmp_path / "bad.json").write_text(
            '{"Version": "2012-10-17", "Statement": [{"Sid": "AllowS3", '
            '"Effect": "Allow", "Action": "s3:*", "Resource": "*", '
            '"Condition": {"StringEqulas": {"a": "b"}}}]}'
        )
        assert iam_cli.main(["lint", str(tmp_path / "bad.json")]) == 1
        assert (
            "error: " in (out := capsys.readouterr().out)
            and '/Statement/0 (Sid "AllowS3")/Condition/StringEqulas: unknown operator'
            in out
        )

    def test_json_shape_and_levels(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """-o json: policy/severity/pointer/message; severity is error or warning."""
        (tmp_path / "w.json").write_text(
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "A",
                            "Effect": "Allow",
                            "Action": "s3:*",
                            "Resource": "*",
                        },
                        {
                            "Sid": "A",
                            "Effect": "Allow",
                            "Action": "s3:*",
                            "Resource": "*",
                        },
                    ],
                }
            )
        )
        (tmp_path / "e.json").write_text('{"Statement": "nope"}')
        files = [str(tmp_path / "w.json"), str(tmp_path / "e.json")]
        assert iam_cli.main(["lint", "-o", "json", *files]) == 1
        findings = json.loads(capsys.readouterr().out)
        assert {tuple(sorted(f)) for f in findings} == {
            ("message", "pointer", "policy", "severity")
        }
        levels = {(f["policy"].rsplit("/", 1)[-1], f["severity"]) for f in findings}
        assert levels == {("w.json", "warning"), ("e.json", "error")}
        assert iam_cli.main(["lint", str(tmp_path / "w.json")]) == 0
        assert "0 error(s), 1 warning(s)" in capsys.readouterr().out

    def test_kind_and_json(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--kind selects the policy type; -o json lists findings."""
        (tmp_path / "p.json").write_text(
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": "*",
                        }
                    ],
                }
            )
        )
        assert (
            iam_cli.main(
                ["lint", "--kind", "scp", "-o", "json", str(tmp_path / "p.json")]
            )
            == 1
        )
        findings = json.loads(capsys.readouterr().out)
        assert findings[0]["pointer"] == "/Statement/0/Principal"

    def test_case_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A case file is linted policy by policy with each policy's type."""
        case = {
            **CASE,
            "scps": [
                {
                    "orgIdentifier": "r",
                    "policies": [
                        {
                            "Version": "2012-10-17",
                            "Statement": [
                                {"Effect": "Allow", "Principal": "*", "Action": "*"}
                            ],
                        }
                    ],
                }
            ],
        }
        (tmp_path / "c.json").write_text(json.dumps([case]))
        assert iam_cli.main(["lint", str(tmp_path / "c.json")]) == 1
        assert "c.json#c1/scps/0/0: /Statement/0/Principal" in capsys.readouterr().out


DOCS = Path(__file__).resolve().parents[3] / "docs" / "policy-tests.md"


def test_documented_suites_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every example suite in docs/policy-tests.md runs and passes."""
    import re

    blocks = [
        b
        for b in re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
        if "\ntests:" in b and "<" not in b
    ]
    assert len(blocks) >= 3
    paths = []
    for i, block in enumerate(blocks):
        path = tmp_path / f"doc{i}.yaml"
        path.write_text(block)
        paths.append(str(path))
    assert iam_cli.main(["test", *paths]) == 0
    assert " 0 failed" in capsys.readouterr().out


def test_nested_list_scp_levels() -> None:
    """scps may also be a list of lists: each inner list is one level."""
    from policy.iam.suite import parse_case

    allow_all = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    deny_only = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "ec2:*", "Resource": "*"}],
    }
    case = parse_case(
        {
            "identityPolicies": [allow_all],
            "scps": [[allow_all], [deny_only]],
            "request": {"principal": "111122223333", "action": "s3:GetObject"},
        }
    )
    assert len(case.policy_set.scp_levels) == 2


def test_simulate_ignores_unknown_expect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """simulate decides a case whatever its expect says; suites reject bad expects."""
    from policy.iam.suite import parse_case

    (tmp_path / "c.json").write_text(json.dumps({**CASE, "expect": "deny"}))
    assert iam_cli.main(["simulate", str(tmp_path / "c.json")]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "ImplicitlyDenied"
    with pytest.raises(InvalidPolicyError, match="expect"):
        parse_case({**CASE, "expect": "deny"})


# --- `policy lint` flags Allow "*" on "*"; `policy test` always writes its JUnit file.

__all__ = ["suite_dir"]  # the fixture, used by name below

ADMIN = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def _lint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: object, *flags: str
) -> list[dict[str, str]]:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    assert iam_cli.main(["lint", str(path), "-o", "json", *flags]) == 0
    findings: list[dict[str, str]] = json.loads(capsys.readouterr().out)
    return findings


class TestLintAdministrator:
    """Allow of every action on every resource is a warning."""

    @pytest.mark.parametrize(
        "statement",
        [
            ADMIN,
            {**ADMIN, "Action": ["s3:GetObject", "*"]},
            {**ADMIN, "Action": "*:*"},
            {
                **ADMIN,
                "Resource": ["*"],
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            },
        ],
    )
    def test_flagged(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], statement: object
    ) -> None:
        """Each spelling of "*" on "*" gives one warning at the statement's Action."""
        doc = {"Version": "2012-10-17", "Statement": [statement]}
        findings = _lint(tmp_path, capsys, doc)
        starred = [f for f in findings if 'Allow "*" on "*"' in f["message"]]
        assert len(starred) == 1
        assert starred[0]["severity"] == "warning"
        assert starred[0]["pointer"].startswith("/Statement/0")

    @pytest.mark.parametrize(
        ("statement", "flags"),
        [
            ({**ADMIN, "Effect": "Deny"}, ()),
            ({**ADMIN, "Action": "s3:*"}, ()),
            ({**ADMIN, "Resource": "arn:aws:s3:::bucket/*"}, ()),
            (ADMIN, ("--kind", "scp")),  # FullAWSAccess: the SCP default
            (ADMIN, ("--kind", "boundary")),
        ],
    )
    def test_not_flagged(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        statement: object,
        flags: tuple[str, ...],
    ) -> None:
        """Deny, scoped actions or resources, SCPs and boundaries pass quietly."""
        doc = {"Version": "2012-10-17", "Statement": [statement]}
        findings = _lint(tmp_path, capsys, doc, *flags)
        assert not [f for f in findings if 'Allow "*" on "*"' in f["message"]]


class TestJUnitWithBrokenSuite:
    """A suite that fails to parse is an error in the JUnit file, not a missing file."""

    def test_report_written(
        self, suite_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The good suite runs and the broken one is an errored test case."""
        broken = suite_dir / "broken.yaml"
        broken.write_text("tests: [unclosed\n")
        report = suite_dir / "report.xml"
        code = iam_cli.main(
            [
                "test",
                str(broken),
                str(suite_dir / "guardrails.yaml"),
                "--junit-xml",
                str(report),
            ]
        )
        captured = capsys.readouterr()
        assert code == 1
        assert "4 passed, 0 failed, 4 total" in captured.out
        assert str(broken) in captured.err
        root = ElementTree.parse(report).getroot()
        suites = {s.get("name"): s for s in root.iter("testsuite")}
        assert suites["platform guardrails"].get("tests") == "4"
        bad = suites[str(broken)]
        assert bad.get("errors") == "1"
        error = bad.find("testcase/error")
        assert error is not None and str(broken) in (error.get("message") or "")

    def test_missing_suite_file(
        self, suite_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unreadable suite path is reported the same way."""
        report = suite_dir / "r.xml"
        missing = suite_dir / "nope.yaml"
        code = iam_cli.main(["test", str(missing), "--junit-xml", str(report)])
        assert code == 1
        assert "cannot read" in capsys.readouterr().err
        assert (
            ElementTree.parse(report).getroot().find("testsuite/testcase/error")
            is not None
        )
