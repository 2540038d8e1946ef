"""Networks people have (issue 14, item 5): proxies and endpoint variables.

The proxy is a small loopback CONNECT proxy started here: it records what it is
asked and answers 502 without connecting anywhere (a fault on cue), so no
traffic ever leaves the machine. The STS emulator stands in for STS wherever a
real answer is needed.
"""

from __future__ import annotations

import json
import socket
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from authenticator.emulator import Credentials, STSEmulator
from authenticator.errors import MalformedTokenError, STSUnavailableError
from authenticator.hosts import build_allowed_hosts
from authenticator.sts import STSClient
from authenticator.token import decode_token
from authenticator.verify import PresignedCall, verify_token
from tests.fixtures.executables import KUBEIAM
from tests.fixtures.sts import aws_env
from tests.fixtures.verifier import build_url, tok

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = "net-cluster"


class _RecordingProxy(socketserver.ThreadingTCPServer):
    """Records each request (``CONNECT host:port``), answers 502."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        assert isinstance(self.server, _RecordingProxy)
        line = self.rfile.readline(1024).decode("latin-1").strip()
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass
        self.server.requests.append(" ".join(line.split()[:2]))  # no HTTP version
        self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture(scope="module")
def proxy() -> Iterator[_RecordingProxy]:
    """A loopback CONNECT proxy that never connects out."""
    server = _RecordingProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(url: str) -> PresignedCall:
    return PresignedCall(
        url=url,
        cluster_id=CLUSTER,
        access_key_id="AKIAEXAMPLE",
        region="us-west-2",
        signed_at=datetime.now(UTC),
        expires_at=datetime.now(UTC),
    )


class TestProxy:
    """HTTPS_PROXY / NO_PROXY for https STS endpoints; http loopback is direct."""

    def test_https_sts_goes_through_the_proxy(self, proxy: _RecordingProxy) -> None:
        """A real STS host is reached with CONNECT through HTTPS_PROXY."""
        proxy.requests.clear()
        client = STSClient(timeout=2, environ={"HTTPS_PROXY": proxy.url})
        try:
            with pytest.raises(STSUnavailableError) as info:
                client.call_get_caller_identity(
                    _call("https://sts.us-west-2.amazonaws.com/?Action=x")
                )
        finally:
            client.close()
        assert info.value.reason == "sts_unreachable"
        assert proxy.requests == ["CONNECT sts.us-west-2.amazonaws.com:443"]

    def test_lower_case_variable_wins(self, proxy: _RecordingProxy) -> None:
        """https_proxy is read before HTTPS_PROXY (curl's and Go's order)."""
        proxy.requests.clear()
        port = _closed_port()
        env = {"https_proxy": proxy.url, "HTTPS_PROXY": f"http://127.0.0.1:{port}"}
        client = STSClient(timeout=2, environ=env)
        try:
            with pytest.raises(STSUnavailableError):
                client.call_get_caller_identity(_call(f"https://127.0.0.1:{port}/?a=b"))
        finally:
            client.close()
        assert proxy.requests == [f"CONNECT 127.0.0.1:{port}"]

    @pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "example.com,127.0.0.1"])
    def test_no_proxy_bypasses(self, proxy: _RecordingProxy, no_proxy: str) -> None:
        """A host NO_PROXY matches is connected to directly (refused here)."""
        proxy.requests.clear()
        port = _closed_port()
        env = {"HTTPS_PROXY": proxy.url, "NO_PROXY": no_proxy}
        client = STSClient(timeout=2, environ=env)
        try:
            with pytest.raises(STSUnavailableError) as info:
                client.call_get_caller_identity(_call(f"https://127.0.0.1:{port}/?a=b"))
        finally:
            client.close()
        assert info.value.reason == "sts_unreachable"
        assert proxy.requests == []

    def test_http_loopback_is_never_proxied(
        self, proxy: _RecordingProxy, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """The emulator (plain http on loopback) answers directly, proxy or not."""
        proxy.requests.clear()
        env = aws_env(iam_user, "us-east-1", sts_emulator.url)
        env["HTTPS_PROXY"] = env["HTTP_PROXY"] = proxy.url
        result = subprocess.run(
            [KUBEIAM, "token", "-i", CLUSTER, "--token-only", "--no-cache"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        verified = subprocess.run(
            [KUBEIAM, "verify", "-t", "-", "-i", CLUSTER, "-o", "json"],
            input=result.stdout,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert verified.returncode == 0, verified.stderr
        assert json.loads(verified.stdout)["arn"] == iam_user.arn
        assert proxy.requests == []

    def test_verify_cli_uses_the_proxy_only_after_offline_checks(
        self, proxy: _RecordingProxy
    ) -> None:
        """kubeiam verify: offline rejections reach nothing, a good token the proxy."""
        proxy.requests.clear()
        env = {"PATH": "/usr/bin:/bin", "HTTPS_PROXY": proxy.url}
        now = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        good = tok(build_url(X_Amz_Date=now).replace("20261127", now[:8]))
        bad = tok(build_url(host="sts.us-west-2.evil.com"))
        outcomes = []
        for token in (bad, good):
            done = subprocess.run(
                [
                    KUBEIAM,
                    "verify",
                    "-t",
                    token,
                    "-i",
                    CLUSTER,
                    "--region",
                    "us-west-2",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            outcomes.append((done.returncode, done.stderr))
            if token is bad:
                assert proxy.requests == [], "an offline rejection reached the proxy"
        assert outcomes[0][0] == 1 and "host_not_allowed" in outcomes[0][1]
        assert outcomes[1][0] == 1 and "STS unavailable" in outcomes[1][1]
        assert proxy.requests == ["CONNECT sts.us-west-2.amazonaws.com:443"]


class TestEndpointVariables:
    """AWS_ENDPOINT_URL (global) on the client; kubeiam verify reads both."""

    @pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"])
    def test_token_and_verify_follow_the_variable(
        self, variable: str, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """A token signed for the variable's endpoint verifies with no flag."""
        env = aws_env(iam_user, "us-east-1", sts_emulator.url)
        del env["AWS_ENDPOINT_URL_STS"]
        env[variable] = sts_emulator.url
        token = subprocess.run(
            [KUBEIAM, "token", "-i", CLUSTER, "--token-only", "--no-cache"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        assert decode_token(token).startswith(sts_emulator.url + "/?")
        verified = subprocess.run(
            [KUBEIAM, "verify", "-t", token, "-i", CLUSTER, "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert verified.returncode == 0, verified.stderr
        assert json.loads(verified.stdout)["arn"] == iam_user.arn

    def test_ignore_configured_endpoints(self) -> None:
        """AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true: the regional host is used."""
        from authenticator.token_cli import sts_endpoint_from_env

        env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
        assert sts_endpoint_from_env(env) == (
            "AWS_ENDPOINT_URL",
            env["AWS_ENDPOINT_URL"],
        )
        env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true"
        assert sts_endpoint_from_env(env)[1] is None

    def test_verify_without_variable_refuses_the_emulator(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """Without the variable the emulator is not on the allow-list: nothing sent."""
        before = sts_emulator.requests_total
        env = aws_env(iam_user, "us-east-1", sts_emulator.url)
        token = subprocess.run(
            [KUBEIAM, "token", "-i", CLUSTER, "--token-only", "--no-cache"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        del env["AWS_ENDPOINT_URL_STS"]
        allowed = build_allowed_hosts("aws", region="us-east-1")
        with pytest.raises(MalformedTokenError) as info:
            verify_token(
                token, cluster_id=CLUSTER, now=datetime.now(UTC), allowed_hosts=allowed
            )
        assert info.value.reason == "host_not_allowed"
        assert f"endpoint {sts_emulator.url} is not allowed" in info.value.message
        done = subprocess.run(
            [KUBEIAM, "verify", "-t", token, "-i", CLUSTER],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 1
        assert "is not allowed" in done.stderr and "bad_scheme" not in done.stderr
        assert sts_emulator.requests_total == before  # minting and refusing: no call
