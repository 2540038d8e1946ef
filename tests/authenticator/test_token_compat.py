"""`kubeiam token` as a drop-in: the peers' flag names, --forward-session-name, hints.

Everything runs the installed ``kubeiam`` against the STS emulator, so a token
is judged by what STS says about it, not by how it looks.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from authenticator.emulator import Credentials, STSEmulator
from authenticator.token import decode_token
from authenticator.token_cli import parse_common_flags
from tests.fixtures.executables import KUBEIAM
from tests.fixtures.sts import assume_role, aws_env, get_caller_identity, unique_name

ROOT = Path(__file__).resolve().parents[2]
V1 = "client.authentication.k8s.io/v1"


def _token(
    env: dict[str, str], *args: str
) -> tuple[subprocess.CompletedProcess[str], str | None]:
    """Run ``kubeiam token ARGS --no-cache``; return the result and the caller ARN."""
    result = subprocess.run(
        [KUBEIAM, "token", *args, "--no-cache"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        return result, None
    url = decode_token(json.loads(result.stdout)["status"]["token"])
    cluster = args[args.index("--cluster-name") + 1 if "--cluster-name" in args else 1]
    answer = get_caller_identity(url, cluster)
    assert answer.status_code == 200, answer.text
    arn = answer.json()["GetCallerIdentityResponse"]["GetCallerIdentityResult"]["Arn"]
    return result, str(arn)


class TestPeerFlagNames:
    """aws-iam-authenticator's and `aws eks get-token`'s spellings."""

    def test_aws_eks_get_token_names(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """--cluster-name / --role-arn sign for the cluster as the assumed role."""
        role_arn = sts_emulator.create_role(unique_name("role"))
        env = aws_env(iam_user, "us-east-1", sts_emulator.url)
        argv = (
            "--cluster-name",
            "prod",
            "--role-arn",
            role_arn,
            "--region",
            "us-east-1",
        )
        result, arn = _token(env, *argv)
        assert result.returncode == 0, result.stderr
        assert arn is not None
        assert f":assumed-role/{role_arn.rsplit('/', 1)[-1]}/" in arn

    @pytest.mark.parametrize(
        ("argv", "expected"),
        [
            (
                ["--cluster-name", "c", "--role-arn", "R"],
                {"cluster_id": "c", "role": "R"},
            ),
            (["--cluster-name=c", "--role-arn=R"], {"cluster_id": "c", "role": "R"}),
            (
                ["-i", "c", "-r", "R", "--forward-session-name", "--token-only"],
                {"cluster_id": "c", "forward_session_name": True, "token_only": True},
            ),
        ],
    )
    def test_fast_parser_reads_the_aliases(
        self, argv: list[str], expected: dict[str, object]
    ) -> None:
        """The cache-hit parser reads the aliases (no argparse fallback)."""
        flags = parse_common_flags(argv)
        assert flags is not None
        for field, value in expected.items():
            assert getattr(flags, field) == value


class TestForwardSessionName:
    """--forward-session-name: the caller's session name becomes the role's."""

    def test_session_name_is_forwarded(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """A role session `alice` assuming another role keeps `alice`."""
        sso_like = assume_role(sts_emulator, iam_user, session_name="alice")
        target = sts_emulator.create_role(unique_name("target"))
        env = aws_env(sso_like, "us-east-1", sts_emulator.url)
        result, arn = _token(env, "-i", "prod", "-r", target, "--forward-session-name")
        assert result.returncode == 0, result.stderr
        assert arn is not None
        assert arn.endswith(f":assumed-role/{target.rsplit('/', 1)[-1]}/alice")
        # Without the flag the default kubeiam-<seconds> name is used.
        plain, plain_arn = _token(env, "-i", "prod", "-r", target)
        assert plain.returncode == 0, plain.stderr
        assert plain_arn is not None
        assert "/kubeiam-" in plain_arn

    def test_excludes_session_name(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """With -s as well: one line, exit 1, as in the reference."""
        env = aws_env(iam_user, "us-east-1", sts_emulator.url)
        result, _ = _token(
            env, "-i", "c", "-r", "arn:aws:iam::1:role/x", "-s", "me",
            "--forward-session-name",
        )  # fmt: skip
        assert result.returncode == 1
        assert result.stdout == ""
        assert "--forward-session-name and -s/--session-name" in result.stderr


class TestMissingClusterHint:
    """The missing-cluster-ID message says whether kubectl passed cluster info."""

    @pytest.mark.parametrize(
        ("exec_info", "needle"),
        [
            (None, "not run by kubectl (no KUBERNETES_EXEC_INFO)"),
            (
                {"apiVersion": V1, "spec": {"interactive": False}},
                "kubectl passed no cluster info",
            ),
            (
                {
                    "apiVersion": V1,
                    "spec": {
                        "interactive": False,
                        "cluster": {"server": "https://x", "config": {"region": "r"}},
                    },
                },
                "kubectl passed cluster info but its",
            ),
        ],
    )
    def test_hint(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        exec_info: dict[str, object] | None,
        needle: str,
    ) -> None:
        """Each case names its cause and the fix (-i in the exec args)."""
        env = aws_env(iam_user, "us-east-1", sts_emulator.url)
        env.pop("KUBERNETES_EXEC_INFO", None)
        if exec_info is not None:
            env["KUBERNETES_EXEC_INFO"] = json.dumps(exec_info)
        result = subprocess.run(
            [KUBEIAM, "token"], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1
        assert needle in result.stderr
        assert "pass -i/--cluster-id in the exec args" in result.stderr
