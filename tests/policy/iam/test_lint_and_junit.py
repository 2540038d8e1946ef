"""`policy lint` flags Allow "*" on "*"; `policy test` always writes its JUnit file."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from policy.iam import cli as iam_cli
from tests.policy.iam.test_suite_cli import suite_dir

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
