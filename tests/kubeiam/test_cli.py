"""The ``kubeiam`` dispatcher."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kubeiam.cli import COMMANDS, main


class TestDispatcher:
    """Top-level help, unknown commands and lazy loading."""

    def test_help_lists_every_command(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``kubeiam --help`` lists every subcommand and exits 0."""
        assert main(["--help"]) == 0
        out = capsys.readouterr().out
        for name in COMMANDS:
            assert name in out

    def test_no_arguments_is_a_usage_error(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No command prints usage on stderr and exits 2."""
        assert main([]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert "token" in captured.err

    def test_unknown_command_exits_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown command is a usage error on stderr."""
        assert main(["frobnicate"]) == 2
        assert "unknown command" in capsys.readouterr().err

    def test_dispatcher_imports_no_subcommand_module(self) -> None:
        """Importing the dispatcher loads no Flask, botocore or policy engine."""
        code = (
            "import sys, kubeiam.cli; "
            "bad=[m for m in ('flask','botocore','boto3','policy','webhook') "
            "if m in sys.modules]; "
            "print(','.join(bad))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == ""

    @pytest.mark.parametrize("name", sorted(COMMANDS))
    def test_every_subcommand_has_help(self, name: str) -> None:
        """``kubeiam SUB --help`` works for every subcommand and exits 0."""
        proc = subprocess.run(
            [sys.executable, "-m", "kubeiam", name, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert "usage" in proc.stdout.lower()
