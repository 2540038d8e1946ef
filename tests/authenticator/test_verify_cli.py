"""``kubeiam verify``: through ``main(argv)`` and once as a subprocess."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeiam.verify_cli import main
from tests.fixtures.verifier import (
    CLUSTER,
    SERVER_REGION,
    USER,
    LocalServer,
    build_url,
    json_body,
    presign,
    reply,
    tok,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sts() -> Iterator[LocalServer]:
    """A local STS stand-in answering a user's identity."""
    server = LocalServer(respond=reply(200, json_body(*USER))).start()
    try:
        yield server
    finally:
        server.close()


def flags(sts: LocalServer) -> list[str]:
    """The flags that point kubeiam verify at the stand-in."""
    return ["-i", CLUSTER, "--sts-endpoint", sts.url, "--region", SERVER_REGION]


class TestMain:
    """main(argv) prints the identity or the rejection reason."""

    def test_human_output(
        self, sts: LocalServer, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A valid token prints a readable table and exits 0."""
        token = tok(presign(sts.url, SERVER_REGION))
        assert main(["-t", token, *flags(sts)]) == 0
        out = capsys.readouterr().out
        assert f"arn           {USER[0]}" in out
        assert "accessKeyId   AKIAIOSFODNN7EXAMPLE" in out
        assert token not in out

    def test_json_output(
        self, sts: LocalServer, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """-o json prints Identity.to_json()."""
        token = tok(presign(sts.url, SERVER_REGION))
        assert main(["-t", token, *flags(sts), "-o", "json"]) == 0
        assert json.loads(capsys.readouterr().out) == {
            "arn": USER[0],
            "canonicalArn": USER[0],
            "accountId": USER[2],
            "userId": USER[1],
            "sessionName": "",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
        }
        [request] = sts.requests
        assert ("x-k8s-aws-id", CLUSTER) in request.headers

    def test_offline_rejection(
        self, sts: LocalServer, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A malformed token exits 1 with its reason and never reaches STS."""
        url = build_url(sts.netloc, SERVER_REGION, scheme="http", Action="AssumeRole")
        assert main(["-t", tok(url), *flags(sts)]) == 1
        captured = capsys.readouterr()
        assert "(bad_action)" in captured.err
        assert "AssumeRole" in captured.err
        assert captured.err.count("\n") == 1
        assert sts.requests == []

    def test_rejection_as_json(
        self, sts: LocalServer, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """-o json also prints the rejection as data."""
        assert main(["-t", "k8s-aws-v2.x", *flags(sts), "-o", "json"]) == 1
        doc = json.loads(capsys.readouterr().out)
        assert doc["verified"] is False
        assert doc["reason"] == "bad_prefix"

    def test_sts_rejection(
        self, sts: LocalServer, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A 403 from STS (a token for another cluster) exits 1 with sts_rejected."""
        sts.respond = reply(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
        token = tok(presign(sts.url, SERVER_REGION, cluster_id="other-cluster"))
        assert main(["-t", token, *flags(sts)]) == 1
        err = capsys.readouterr().err
        assert (
            "rejected by STS (sts_rejected)" in err and "SignatureDoesNotMatch" in err
        )

    def test_sts_unavailable(
        self, sts: LocalServer, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A 503 exits 1 saying STS is unavailable."""
        sts.respond = reply(503, b"")
        token = tok(presign(sts.url, SERVER_REGION))
        assert main(["-t", token, *flags(sts)]) == 1
        assert "STS unavailable (sts_server_error)" in capsys.readouterr().err

    def test_token_from_stdin(
        self,
        sts: LocalServer,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """-t - reads the token from stdin (trailing newline ignored)."""
        token = tok(presign(sts.url, SERVER_REGION))
        monkeypatch.setattr(sys, "stdin", io.StringIO(token + "\n"))
        assert main(["-t", "-", *flags(sts), "-o", "json"]) == 0
        assert json.loads(capsys.readouterr().out)["arn"] == USER[0]


class TestConfig:
    """--config reads the server config; flags override it."""

    def _config(self, tmp_path: Path, sts: LocalServer, cluster: str = CLUSTER) -> Path:
        path = tmp_path / "config.yaml"
        path.write_text(
            f"clusterID: {cluster}\n"
            "partition: aws\n"
            "server: {address: 127.0.0.1, port: 21362}\n"
            f"sts: {{region: {SERVER_REGION}, timeoutSeconds: 2, "
            f'extraEndpoints: ["{sts.url}"]}}\n',
            encoding="utf-8",
        )
        return path

    def test_config_alone(
        self, sts: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """clusterID, sts.region and sts.extraEndpoints come from the file."""
        token = tok(presign(sts.url, SERVER_REGION))
        assert main(["-t", token, "--config", str(self._config(tmp_path, sts))]) == 0
        assert USER[0] in capsys.readouterr().out

    def test_flags_override(
        self, sts: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """-i wins over clusterID: the header STS receives is the flag's value."""
        config = self._config(tmp_path, sts, cluster="from-file")
        token = tok(presign(sts.url, SERVER_REGION))
        assert main(["-t", token, "--config", str(config), "-i", CLUSTER]) == 0
        assert ("x-k8s-aws-id", CLUSTER) in sts.requests[0].headers

    def test_region_flag_changes_the_expected_scope(
        self, sts: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--region overrides sts.region, so a us-west-2 token no longer matches."""
        token = tok(presign(sts.url, SERVER_REGION))
        config = str(self._config(tmp_path, sts))
        assert main(["-t", token, "--config", config, "--region", "eu-west-1"]) == 1
        assert "(bad_credential_scope)" in capsys.readouterr().err
        assert sts.requests == []

    @pytest.mark.parametrize(
        ("text", "needle"),
        [
            ("clusterID: [\n", "not valid YAML"),
            ("- a\n- b\n", "the config must be a YAML mapping"),
            ("clusterID: x\nsts: 3\n", "sts: must be a mapping"),
            (
                "clusterID: x\nsts: {extraEndpoints: http://10.0.0.1:5000}\n",
                "extraEndpoints",
            ),
            (
                "clusterID: x\nsts: {extraEndpoints: ['http://10.0.0.1:5000']}\n",
                "loopback",
            ),
            ("clusterID: x\nsts: {timeoutSeconds: -1}\n", "timeoutSeconds"),
            ("clusterID: x\npartition: aws-moon\n", "partition"),
            ("clusterID: 12\n", "clusterID: must be a non-empty string"),
            ("partition: aws\n", "clusterID: required"),
            # what `kubeiam server` refuses, verify --config refuses too
            ("clusterId: x\n", "clusterId: unknown key"),
            ("clusterID: a\nclusterID: b\n", "duplicate key 'clusterID'"),
            (
                "clusterID: x\nsts: {extraEndpoint: 'http://127.0.0.1:1'}\n",
                "sts.extraEndpoint: unknown key",
            ),
        ],
    )
    def test_bad_config(
        self, text: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad config exits 1 with one line saying what is wrong."""
        path = tmp_path / "config.yaml"
        path.write_text(text, encoding="utf-8")
        assert main(["-t", "k8s-aws-v1.x", "--config", str(path)]) == 1
        err = capsys.readouterr().err
        assert needle in err
        assert err.count("\n") == 1

    @pytest.mark.parametrize(
        ("content", "needle"),
        [
            (b"\xff\xfe\x00bad", "not UTF-8 text"),
            (
                b"[" * 1001 + b"]" * 1001,
                "not valid YAML: nested deeper than 100 levels",
            ),
        ],
        ids=["binary", "deep"],
    )
    def test_undecodable_config(
        self,
        content: bytes,
        needle: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Non-UTF-8 or absurdly nested config: exit 1, one line, not a traceback."""
        path = tmp_path / "config.yaml"
        path.write_bytes(content)
        assert main(["-t", "k8s-aws-v1.x", "--config", str(path)]) == 1
        err = capsys.readouterr().err
        assert err == f"kubeiam verify: {path}: {needle}\n"

    def test_missing_config_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unreadable config file exits 1 naming it."""
        missing = tmp_path / "nope.yaml"
        assert main(["-t", "k8s-aws-v1.x", "--config", str(missing)]) == 1
        assert str(missing) in capsys.readouterr().err


class TestUsage:
    """Usage errors exit 2; --help shows examples."""

    def test_no_token(self, capsys: pytest.CaptureFixture[str]) -> None:
        """-t is required."""
        assert main(["-i", CLUSTER]) == 2
        assert "--token" in capsys.readouterr().err

    def test_help(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--help exits 0 and shows examples."""
        assert main(["--help"]) == 0
        out = capsys.readouterr().out
        assert "examples:" in out and "kubeiam verify -t" in out

    def test_bad_timeout_names_the_flag(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--timeout 0 without a config: exit 1 naming --timeout (not 'None')."""
        assert main(["-t", "k8s-aws-v1.x", "-i", CLUSTER, "--timeout", "0"]) == 1
        err = capsys.readouterr().err
        assert err == "kubeiam verify: --timeout must be a positive number\n"

    def test_missing_cluster_id(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without -i or a config there is no cluster ID: exit 1."""
        assert main(["-t", "k8s-aws-v1.x"]) == 1
        assert "cluster ID is required" in capsys.readouterr().err


def test_subprocess(sts: LocalServer) -> None:
    """``python -m kubeiam verify`` verifies a token end to end, -o json."""
    token = tok(presign(sts.url, SERVER_REGION))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubeiam",
            "verify",
            "-t",
            token,
            *flags(sts),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["canonicalArn"] == USER[0]

    bad = subprocess.run(
        [sys.executable, "-m", "kubeiam", "verify", "-t", token + "!", *flags(sts)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1
    assert "(bad_base64)" in bad.stderr
    assert len(sts.requests) == 1
