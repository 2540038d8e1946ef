"""The whole path with real processes: kubectl -> exec plugin -> API server -> webhook.

Real kubectl runs ``.venv/bin/kubeiam token`` (by absolute path) with the
credentials of an embedded-STS identity in the exec ``env``; the token goes to
a small TLS "API server" that sends each bearer token to ``kubeiam server``
(gunicorn) as a TokenReview over mutual TLS and serves ``/version`` only when
the webhook says ``authenticated: true``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from authenticator.emulator import Credentials, STSEmulator
from tests.fixtures.apiserver import (
    FakeAPIServer,
    kubectl_binary,
    write_exec_kubeconfig,
)
from tests.fixtures.executables import KUBEIAM
from tests.fixtures.sts import assume_role, unique_name
from tests.fixtures.webhook import (
    DEFAULT_CLUSTER_ID,
    WebhookFactory,
    WebhookServer,
    tokenreview,
)

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


@pytest.fixture(scope="module")
def mapped_role(sts_emulator: STSEmulator) -> str:
    """A role the webhook maps."""
    return sts_emulator.create_role(unique_name("kubectl-admin"))


@pytest.fixture(scope="module")
def webhook(webhook_factory: WebhookFactory, mapped_role: str) -> WebhookServer:
    """``kubeiam server`` (mTLS) mapping the role to ``admin:{{SessionName}}``."""
    mapping = {
        "mapRoles": [
            {
                "rolearn": mapped_role,
                "username": "admin:{{SessionName}}",
                "groups": ["admins"],
            }
        ]
    }
    return webhook_factory(mapping, workers=1, threads=4)


def webhook_authenticator(
    webhook: WebhookServer, seen: list[dict[str, object]]
) -> Callable[[str], bool]:
    """The API server's side: a v1 TokenReview over mTLS; ``authenticated``?"""
    session = requests.Session()

    def authenticate(token: str) -> bool:
        resp = session.post(
            webhook.url + "/authenticate?timeout=30s",
            json=tokenreview(token),
            verify=str(webhook.pki.ca_file),
            cert=webhook.pki.client,
            timeout=30,
        )
        body = resp.json()
        seen.append(body)
        return resp.status_code == 200 and body["status"].get("authenticated") is True

    return authenticate


def _kubectl(kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [kubectl_binary(), "--kubeconfig", str(kubeconfig), "get", "--raw", "/version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def _exec_env(creds: Credentials, sts_url: str) -> dict[str, str]:
    env = {
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if creds.session_token:
        env["AWS_SESSION_TOKEN"] = creds.session_token
    return env


def _kubeconfig(
    tmp_path: Path, apiserver: FakeAPIServer, creds: Credentials, sts_url: str
) -> Path:
    return write_exec_kubeconfig(
        tmp_path / "kubeconfig",
        server=apiserver.url,
        ca_file=apiserver.ca_file,
        command=KUBEIAM,
        args=["token", "-i", DEFAULT_CLUSTER_ID, "--sts-endpoint", sts_url],
        env=_exec_env(creds, sts_url),
    )


class TestKubectlPath:
    """kubectl get --raw /version via exec plugin, API server and webhook."""

    def test_mapped_role_gets_version(
        self,
        tmp_path: Path,
        fake_apiserver: FakeAPIServer,
        webhook: WebhookServer,
        sts_emulator: STSEmulator,
        mapped_role: str,
    ) -> None:
        """A mapped role's session: kubectl succeeds; the webhook named the user."""
        base = sts_emulator.create_user(unique_name("kubectl-user"))
        session = assume_role(sts_emulator, base, mapped_role, session_name="carol")
        seen: list[dict[str, object]] = []
        fake_apiserver.authenticate = webhook_authenticator(webhook, seen)
        out = _kubectl(_kubeconfig(tmp_path, fake_apiserver, session, sts_emulator.url))
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["major"] == "1"
        assert fake_apiserver.received_tokens
        assert all(t.startswith("k8s-aws-v1.") for t in fake_apiserver.received_tokens)
        status = seen[-1]["status"]
        assert isinstance(status, dict)
        assert status["user"]["username"] == "admin:carol"
        assert status["user"]["groups"] == ["admins"]

    def test_unmapped_identity_gets_401(
        self,
        tmp_path: Path,
        fake_apiserver: FakeAPIServer,
        webhook: WebhookServer,
        sts_emulator: STSEmulator,
    ) -> None:
        """An unmapped user: kubectl fails with Unauthorized; the webhook said why."""
        stranger = sts_emulator.create_user(unique_name("kubectl-stranger"))
        seen: list[dict[str, object]] = []
        fake_apiserver.authenticate = webhook_authenticator(webhook, seen)
        out = _kubectl(
            _kubeconfig(tmp_path, fake_apiserver, stranger, sts_emulator.url)
        )
        assert out.returncode != 0
        assert "Unauthorized" in out.stderr
        assert seen
        status = seen[-1]["status"]
        assert isinstance(status, dict)
        assert status["authenticated"] is False
        assert "is not mapped" in str(status["error"])
