"""Migrating through the real webhook: SSO permission sets, the reference's config."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import requests

from authenticator.emulator import Credentials, STSEmulator
from authenticator.presign import StaticCredentials, presign_get_caller_identity
from tests.fixtures.sts import assume_role, unique_name
from tests.fixtures.webhook import (
    DEFAULT_CLUSTER_ID,
    WebhookFactory,
    WebhookServer,
    free_port,
    launch_server,
    make_pki,
    wait_ready,
)

REGION = "us-east-1"
SSO_PATH = "/aws-reserved/sso.amazonaws.com/eu-west-1/"


@dataclass
class World:
    """One webhook mapping the Admin permission set, and two SSO roles."""

    server: WebhookServer
    sts: STSEmulator
    user: Credentials
    admin_role: str
    billing_role: str


def _sso_role(sts: STSEmulator, permission_set: str) -> str:
    """An IAM Identity Center role as it creates them (path, random suffix)."""
    name = f"AWSReservedSSO_{permission_set}_{uuid.uuid4().hex[:16]}"
    return sts.create_role(name, path=SSO_PATH)


@pytest.fixture(scope="module")
def world(webhook_factory: WebhookFactory, sts_emulator: STSEmulator) -> World:
    """The server maps `sso: {permissionSetName: Admin, accountID: <emulator's>}`."""
    mapping = {
        "mapRoles": [
            {
                "sso": {
                    "permissionSetName": "Admin",
                    "accountID": sts_emulator.account_id,
                },
                "username": "sso:{{SessionName}}",
                "groups": ["sso-admins"],
            }
        ]
    }
    return World(
        server=webhook_factory(mapping, workers=1, threads=2),
        sts=sts_emulator,
        user=sts_emulator.create_user(unique_name("person")),
        admin_role=_sso_role(sts_emulator, "Admin"),
        billing_role=_sso_role(sts_emulator, "Billing"),
    )


def _token(creds: Credentials, endpoint: str) -> str:
    static = StaticCredentials(
        creds.access_key_id, creds.secret_access_key, creds.session_token
    )
    return presign_get_caller_identity(
        credentials=static,
        region=REGION,
        cluster_id=DEFAULT_CLUSTER_ID,
        now=datetime.now(UTC),
        endpoint_url=endpoint,
    ).token


def _status(resp: requests.Response) -> dict[str, object]:
    assert resp.status_code == 200, resp.text
    status = resp.json()["status"]
    assert isinstance(status, dict)
    return status


class TestSSOPermissionSets:
    """An SSO role session through gunicorn, TLS and the embedded STS."""

    def test_permission_set_session_is_mapped(self, world: World) -> None:
        """A session of AWSReservedSSO_Admin_<suffix> gets the sso entry's user."""
        session = assume_role(
            world.sts, world.user, world.admin_role, session_name="jdoe@example.com"
        )
        status = _status(world.server.review(_token(session, world.sts.url)))
        assert status["authenticated"] is True
        user = status["user"]
        assert isinstance(user, dict)
        assert user["username"] == "sso:jdoe-example.com"
        assert user["groups"] == ["sso-admins"]
        assert user["extra"]["arn"][0].endswith(
            f"assumed-role/{world.admin_role.rsplit('/', 1)[-1]}/jdoe@example.com"
        )

    def test_other_permission_set_is_not_mapped(self, world: World) -> None:
        """A session of another permission set's role is refused."""
        session = assume_role(world.sts, world.user, world.billing_role, "jdoe")
        status = _status(world.server.review(_token(session, world.sts.url)))
        assert status["authenticated"] is False


class TestReferenceServerConfig:
    """`kubeiam server --config` on aws-iam-authenticator's own config file."""

    def test_reference_file_is_served(
        self, sts_emulator: STSEmulator, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        """Its mapRoles/mapUsers, port and stateDir certificates: a real review.

        The file is the reference's (README keys, stateDir holding the
        reference's cert.pem/key.pem); the one added section is kubeiam's
        ``sts.extraEndpoints``, without which nothing may reach the loopback STS.
        """
        directory = tmp_path_factory.mktemp("aia")
        pki = make_pki(directory)
        state = directory / "state"
        state.mkdir()
        shutil.copy(pki.server_cert, state / "cert.pem")
        shutil.copy(pki.server_key, state / "key.pem")
        user = sts_emulator.create_user(unique_name("alice"))
        role = sts_emulator.create_role(unique_name("admin"))
        port = free_port()
        config = directory / "aws-iam-authenticator.yaml"
        config.write_text(
            f"clusterID: {DEFAULT_CLUSTER_ID}\n"
            f"defaultRole: {role}\n"
            "featureGates:\n  SSORoleMatch: true\n"
            "server:\n"
            f"  port: {port}\n"
            f"  stateDir: {state}\n"
            "  generateKubeconfig: /etc/kubernetes/aws-iam-authenticator.kubeconfig\n"
            "  backendMode: [MountedFile]\n"
            "  mapRoles:\n"
            f"  - roleARN: {role}\n"
            "    username: admin:{{SessionName}}\n"
            "    groups: [system:masters]\n"
            "  mapUsers:\n"
            f"  - userARN: {user.arn}\n"
            "    username: alice\n"
            "    groups: [devs]\n"
            # kubeiam's addition: the loopback STS emulator is allowed.
            f"sts:\n  extraEndpoints: [{sts_emulator.url}]\n"
        )
        server = launch_server(
            config,
            port=port,
            pki=pki,
            mapping_path=config,
            output_path=directory / "server.log",
        )
        try:
            wait_ready(server)
            status = _status(server.review(_token(user, sts_emulator.url)))
            assert status["authenticated"] is True
            assert status["user"]["username"] == "alice"  # type: ignore[index]
            session = assume_role(sts_emulator, user, role, session_name="ops")
            status = _status(server.review(_token(session, sts_emulator.url)))
            assert status["user"]["username"] == "admin:ops"  # type: ignore[index]
            assert status["user"]["groups"] == ["system:masters"]  # type: ignore[index]
        finally:
            server.stop()
