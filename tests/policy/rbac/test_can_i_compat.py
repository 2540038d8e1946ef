"""`kubeiam policy can-i` says why, and tells "no" from an error (issue 14, item 7)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from policy.rbac.cli import CAN_I_ERROR, main
from tests.policy.rbac.test_cli import MAPPING, RBAC, run


class TestReasonInText:
    """Text mode prints the reason: on stdout after "no", on stderr after "yes"."""

    def test_yes_keeps_stdout_and_gives_the_reason(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """stdout is exactly "yes" (scripts compare it); stderr says which binding."""
        code, out, err = run(
            capsys,
            "can-i",
            *RBAC,
            "--as",
            "x",
            "--as-group",
            "auditors",
            "list",
            "pods",
            "-A",
        )
        assert (code, out) == (0, "yes\n")
        assert err.startswith("reason: ") and "auditors" in err

    def test_no_says_why(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A denial prints "no - <reason>" like kubectl does."""
        code, out, _ = run(capsys, "can-i", *RBAC, "--as", "nobody", "delete", "nodes")
        assert code == 1
        assert out.startswith("no - ") and len(out.strip()) > len("no - ")


class TestExitCodes:
    """0 yes, 1 no, 2 usage, 3 error."""

    def test_error_is_not_no(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A missing RBAC path or a bad ARN exits 3, with one line on stderr."""
        code, out, err = run(
            capsys,
            "can-i",
            "--rbac",
            str(tmp_path / "nope"),
            "--as",
            "a",
            "get",
            "pods",
        )
        assert (code, out) == (CAN_I_ERROR, "")
        assert err.count("\n") == 1
        code, _, err = run(
            capsys, "can-i", *RBAC, *MAPPING, "--as-arn", "not-an-arn", "get", "pods"
        )
        assert code == CAN_I_ERROR == 3
        assert "arn" in err.lower()

    def test_usage_is_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No verb and no --list is a usage error."""
        with pytest.raises(SystemExit) as info:
            main(["can-i", *RBAC, "--as", "a"])
        assert info.value.code == 2

    def test_installed_command(self, tmp_path: Path) -> None:
        """The exit code reaches the shell: 1 for no, 3 for an error."""
        base = [sys.executable, "-m", "kubeiam", "policy", "can-i"]
        no = subprocess.run(
            [*base, *RBAC, "--as", "nobody", "delete", "nodes"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        bad = subprocess.run(
            [*base, "--rbac", str(tmp_path / "nope"), "--as", "a", "get", "pods"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert (no.returncode, bad.returncode) == (1, 3)


class TestEmptySessionWarning:
    """--as-arn with a {{SessionName}} template and an ARN without a session."""

    def test_role_arn_warns(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The role's own ARN renders dev: with an empty session: a warning says so."""
        _code, _out, err = run(
            capsys,
            "can-i",
            *RBAC,
            *MAPPING,
            "--as-arn",
            "arn:aws:iam::111122223333:role/team/DevRole",
            "get",
            "pods",
            "-n",
            "dev",
        )
        assert "warning:" in err and "{{SessionName}}" in err
        assert "mapRoles[0]" in err

    @pytest.mark.parametrize(
        "arn",
        [
            "arn:aws:sts::111122223333:assumed-role/DevRole/alice",
            "arn:aws:iam::111122223333:role/Auditor",  # no template: nothing to warn
        ],
    )
    def test_no_warning(self, capsys: pytest.CaptureFixture[str], arn: str) -> None:
        """A session ARN, or an entry without the template, gives no warning."""
        _code, _out, err = run(
            capsys, "can-i", *RBAC, *MAPPING, "--as-arn", arn, "get", "pods"
        )
        assert "warning:" not in err
