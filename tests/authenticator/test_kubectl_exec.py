"""Real kubectl runs `kubeiam token` as its exec plugin against a TLS API server."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from authenticator.presign import StaticCredentials, presign_get_caller_identity
from authenticator.token import decode_token
from tests.fixtures.apiserver import (
    FakeAPIServer,
    kubectl_binary,
    write_exec_kubeconfig,
)
from tests.fixtures.executables import KUBEIAM

ROOT = Path(__file__).resolve().parents[2]
AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


def _plugin_env(tmp_path: Path) -> dict[str, str]:
    """Static fake credentials handed to the plugin through the exec env."""
    return {
        "AWS_ACCESS_KEY_ID": AKID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "KUBEIAM_CACHE_DIR": str(tmp_path / "plugin-cache"),
    }


def _kubectl(
    kubeconfig: Path, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBE"))}
    env["HOME"] = str(tmp_path / "home")
    return subprocess.run(
        [kubectl_binary(), "--kubeconfig", str(kubeconfig), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _assert_token_for(token: str, cluster_id: str, region: str) -> None:
    """The token is a cluster-scoped presigned GetCallerIdentity signed by our key."""
    url = decode_token(token)
    query = dict(parse_qsl(urlsplit(url).query, strict_parsing=True))
    assert urlsplit(url).netloc == f"sts.{region}.amazonaws.com"
    assert query["Action"] == "GetCallerIdentity"
    assert query["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-Credential"].startswith(f"{AKID}/")
    assert query["X-Amz-Credential"].endswith(f"/{region}/sts/aws4_request")
    # The cluster ID is only in the signature: re-sign at the same second to compare.
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=UTC
    )
    again = presign_get_caller_identity(
        credentials=StaticCredentials(AKID, SECRET),
        region=region,
        cluster_id=cluster_id,
        now=signed_at,
    )
    assert again.token == token


class TestKubectlRunsThePlugin:
    """kubectl get --raw /version with an exec user."""

    @pytest.mark.parametrize("api_version", [V1, V1BETA1])
    def test_bearer_token_reaches_the_server(
        self, fake_apiserver: FakeAPIServer, tmp_path: Path, api_version: str
    ) -> None:
        """kubectl accepts our ExecCredential and sends `Bearer k8s-aws-v1.…`."""
        kubeconfig = write_exec_kubeconfig(
            tmp_path / "kubeconfig",
            server=fake_apiserver.url,
            ca_file=fake_apiserver.ca_file,
            command=KUBEIAM,
            args=["token", "-i", "kind-test", "--region", "us-west-2"],
            env=_plugin_env(tmp_path),
            api_version=api_version,
        )
        result = _kubectl(kubeconfig, tmp_path, "get", "--raw", "/version")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["gitVersion"].startswith("v1.33")
        assert fake_apiserver.received_tokens
        token = fake_apiserver.received_tokens[0]
        assert token.startswith("k8s-aws-v1.")
        _assert_token_for(token, "kind-test", "us-west-2")

    def test_provide_cluster_info_supplies_cluster_id_and_region(
        self, fake_apiserver: FakeAPIServer, tmp_path: Path
    ) -> None:
        """With provideClusterInfo, the extension's clusterID and region are used."""
        kubeconfig = write_exec_kubeconfig(
            tmp_path / "kubeconfig",
            server=fake_apiserver.url,
            ca_file=fake_apiserver.ca_file,
            command=KUBEIAM,
            args=["token"],
            env=_plugin_env(tmp_path),
            api_version=V1,
            provide_cluster_info=True,
            cluster_extension={"clusterID": "from-extension", "region": "eu-central-1"},
        )
        result = _kubectl(kubeconfig, tmp_path, "get", "--raw", "/version")
        assert result.returncode == 0, result.stderr
        _assert_token_for(
            fake_apiserver.received_tokens[0], "from-extension", "eu-central-1"
        )

    def test_rejected_token_is_reported_by_kubectl(
        self, fake_apiserver: FakeAPIServer, tmp_path: Path
    ) -> None:
        """When the server refuses the token kubectl fails with Unauthorized."""
        fake_apiserver.authenticate = lambda _token: False
        kubeconfig = write_exec_kubeconfig(
            tmp_path / "kubeconfig",
            server=fake_apiserver.url,
            ca_file=fake_apiserver.ca_file,
            command=KUBEIAM,
            args=["token", "-i", "c"],
            env=_plugin_env(tmp_path),
        )
        result = _kubectl(kubeconfig, tmp_path, "get", "--raw", "/version")
        assert result.returncode != 0
        assert "Unauthorized" in result.stderr
        assert all(t.startswith("k8s-aws-v1.") for t in fake_apiserver.received_tokens)

    def test_plugin_error_surfaces_in_kubectl(
        self, fake_apiserver: FakeAPIServer, tmp_path: Path
    ) -> None:
        """A missing cluster ID fails the plugin and kubectl shows our message."""
        kubeconfig = write_exec_kubeconfig(
            tmp_path / "kubeconfig",
            server=fake_apiserver.url,
            ca_file=fake_apiserver.ca_file,
            command=KUBEIAM,
            args=["token"],
            env=_plugin_env(tmp_path),
        )
        result = _kubectl(kubeconfig, tmp_path, "get", "--raw", "/version")
        assert result.returncode != 0
        assert "cluster ID not specified" in result.stderr
        assert fake_apiserver.received_tokens == []

    def test_second_kubectl_call_reuses_the_cached_token(
        self, fake_apiserver: FakeAPIServer, tmp_path: Path
    ) -> None:
        """Two kubectl commands send the same token: the second run was a hit."""
        kubeconfig = write_exec_kubeconfig(
            tmp_path / "kubeconfig",
            server=fake_apiserver.url,
            ca_file=fake_apiserver.ca_file,
            command=KUBEIAM,
            args=["token", "-i", "cached", "--region", "us-west-2"],
            env=_plugin_env(tmp_path),
        )
        for _ in range(2):
            result = _kubectl(kubeconfig, tmp_path, "get", "--raw", "/version")
            assert result.returncode == 0, result.stderr
        assert len(fake_apiserver.received_tokens) == 2
        assert len(set(fake_apiserver.received_tokens)) == 1


def test_kubectl_binary_is_a_real_kubectl() -> None:
    """kubectl_binary() never returns the /usr/bin/kubectl dispatcher."""
    path = kubectl_binary()
    assert Path(path).resolve() != Path("/usr/bin/kubectl").resolve()
    out = subprocess.run(
        [path, "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["clientVersion"]["major"] == "1"
