"""End to end on the embedded STS: kubeiam and awscli tokens verify to identities."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from authenticator.emulator import Credentials, STSEmulator
from authenticator.errors import MalformedTokenError, STSRejectedError
from authenticator.hosts import AllowedHosts, build_allowed_hosts
from authenticator.identity import Identity
from authenticator.presign import StaticCredentials, presign_get_caller_identity
from authenticator.sts import STSClient
from authenticator.token import decode_token, encode_token
from authenticator.verify import verify_token
from tests.fixtures.executables import KUBEIAM
from tests.fixtures.sts import assume_role, aws_env, unique_name

CLUSTER = "cluster-a"
REGION = "us-east-1"
BIN = Path(sys.executable).parent
AWS = str(BIN / "aws")


@pytest.fixture(scope="module")
def allowed(sts_emulator: STSEmulator) -> AllowedHosts:
    """The verifier's allow-list with the emulator as an extra endpoint."""
    return build_allowed_hosts("aws", [sts_emulator.url], region=REGION)


@pytest.fixture(scope="module")
def sts_client() -> Iterator[STSClient]:
    """One pooled STS client, as the webhook keeps."""
    client = STSClient(timeout=5)
    yield client
    client.close()


def _mint(
    emulator: STSEmulator,
    creds: Credentials,
    *,
    cluster_id: str = CLUSTER,
    now: datetime | None = None,
) -> str:
    """Mint a token through kubeiam's presigning path (the library call)."""
    static = StaticCredentials(
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        session_token=creds.session_token,
        expiration=creds.expiration,
    )
    minted = presign_get_caller_identity(
        credentials=static,
        region=REGION,
        cluster_id=cluster_id,
        now=now or datetime.now(UTC),
        endpoint_url=emulator.url,
    )
    return minted.token


def _verify(
    token: str,
    allowed: AllowedHosts,
    client: STSClient,
    *,
    cluster_id: str = CLUSTER,
    now: datetime | None = None,
) -> Identity:
    call = verify_token(
        token,
        cluster_id=cluster_id,
        now=now or datetime.now(UTC),
        allowed_hosts=allowed,
    )
    return client.call_get_caller_identity(call)


def _run(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _exec_credential_token(stdout: str) -> str:
    document = json.loads(stdout)
    assert document["kind"] == "ExecCredential"
    token = document["status"]["token"]
    assert isinstance(token, str)
    return token


class TestLibraryPath:
    """presign_get_caller_identity -> verify_token -> STSClient, in process."""

    def test_iam_user(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        allowed: AllowedHosts,
        sts_client: STSClient,
    ) -> None:
        """Long-term user keys verify to the user's identity, no session name."""
        identity = _verify(_mint(sts_emulator, iam_user), allowed, sts_client)
        assert identity.to_json() == {
            "arn": iam_user.arn,
            "canonicalArn": iam_user.arn,
            "accountId": iam_user.account_id,
            "userId": iam_user.user_id,
            "sessionName": "",
            "accessKeyId": iam_user.access_key_id,
        }

    def test_assumed_role(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        allowed: AllowedHosts,
        sts_client: STSClient,
    ) -> None:
        """Assumed-role keys (with session token) verify; canonical ARN has no path."""
        role = unique_name("deploy")
        role_arn = sts_emulator.create_role(role, path="/team/")
        temp = assume_role(sts_emulator, iam_user, role_arn, session_name="alice")
        token = _mint(sts_emulator, temp)
        assert "X-Amz-Security-Token" in decode_token(token)
        identity = _verify(token, allowed, sts_client)
        account = temp.account_id
        assert identity.arn == f"arn:aws:sts::{account}:assumed-role/{role}/alice"
        assert identity.canonical_arn == f"arn:aws:iam::{account}:role/{role}"
        assert identity.account_id == account
        assert identity.user_id == temp.user_id.split(":")[0]
        assert identity.user_id.startswith("AROA")
        assert identity.session_name == "alice"
        assert identity.access_key_id == temp.access_key_id


class TestRejections:
    """What AWS STS refuses, the whole path refuses."""

    def test_token_for_another_cluster(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        allowed: AllowedHosts,
        sts_client: STSClient,
    ) -> None:
        """A token for cluster A passes B's offline checks and STS refuses it."""
        before = sts_emulator.outcomes.get("SignatureDoesNotMatch", 0)
        token = _mint(sts_emulator, iam_user, cluster_id="cluster-a")
        with pytest.raises(STSRejectedError) as info:
            _verify(token, allowed, sts_client, cluster_id="cluster-b")
        assert info.value.reason == "sts_rejected"
        assert sts_emulator.outcomes["SignatureDoesNotMatch"] == before + 1

    def test_tampered_signature(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        allowed: AllowedHosts,
        sts_client: STSClient,
    ) -> None:
        """A well-formed but wrong signature is refused by STS, not offline."""
        url = decode_token(_mint(sts_emulator, iam_user))
        parts = urlsplit(url)
        query = parse_qsl(parts.query)
        query = [(k, v[::-1] if k == "X-Amz-Signature" else v) for k, v in query]
        forged = encode_token(urlunsplit(parts._replace(query=urlencode(query))))
        with pytest.raises(STSRejectedError):
            _verify(forged, allowed, sts_client)

    def test_expired_offline_without_traffic(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        allowed: AllowedHosts,
        sts_client: STSClient,
    ) -> None:
        """A token older than 15 minutes is refused offline; STS sees nothing."""
        before = sts_emulator.requests_total
        old = datetime.now(UTC) - timedelta(minutes=16)
        with pytest.raises(MalformedTokenError) as info:
            _verify(_mint(sts_emulator, iam_user, now=old), allowed, sts_client)
        assert info.value.reason == "expired"
        assert sts_emulator.requests_total == before

    def test_expired_at_sts(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        allowed: AllowedHosts,
        sts_client: STSClient,
    ) -> None:
        """A lagging verifier clock cannot pass an old token: the STS window holds."""
        old = datetime.now(UTC) - timedelta(minutes=16)
        token = _mint(sts_emulator, iam_user, now=old)
        with pytest.raises(STSRejectedError):
            _verify(token, allowed, sts_client, now=old + timedelta(minutes=1))

    def test_expired_session(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        allowed: AllowedHosts,
        sts_client: STSClient,
    ) -> None:
        """A token signed with temporary credentials dies when they expire."""
        temp = assume_role(sts_emulator, iam_user)
        token = _mint(sts_emulator, temp)
        assert _verify(token, allowed, sts_client).access_key_id == temp.access_key_id
        sts_emulator.expire_session(temp)
        with pytest.raises(STSRejectedError):
            _verify(token, allowed, sts_client)


class TestCommandLineClients:
    """Tokens printed by ``kubeiam token`` and ``aws eks get-token`` (subprocesses)."""

    def test_kubeiam_token_user(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        allowed: AllowedHosts,
        sts_client: STSClient,
    ) -> None:
        """kubeiam token --sts-endpoint prints an ExecCredential that verifies."""
        env = aws_env(iam_user, REGION, sts_emulator.url)
        stdout = _run(
            [
                KUBEIAM,
                "token",
                "-i",
                CLUSTER,
                "--sts-endpoint",
                sts_emulator.url,
                "--no-cache",
            ],
            env,
        )
        identity = _verify(_exec_credential_token(stdout), allowed, sts_client)
        assert (identity.arn, identity.user_id) == (iam_user.arn, iam_user.user_id)

    def test_kubeiam_token_with_session_credentials(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        allowed: AllowedHosts,
        sts_client: STSClient,
    ) -> None:
        """Temporary credentials in the environment (AWS_SESSION_TOKEN) work."""
        temp = assume_role(sts_emulator, iam_user, session_name="from-env")
        env = aws_env(temp, REGION, sts_emulator.url)
        token = _run(
            [KUBEIAM, "token", "-i", CLUSTER, "--token-only", "--no-cache"], env
        ).strip()
        identity = _verify(token, allowed, sts_client)
        assert identity.arn == temp.arn
        assert identity.session_name == "from-env"

    def test_kubeiam_token_assumes_role(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        allowed: AllowedHosts,
        sts_client: STSClient,
    ) -> None:
        """-r/-s assume the role through the same STS and sign as the session."""
        role = unique_name("admin")
        role_arn = sts_emulator.create_role(role)
        env = aws_env(iam_user, REGION, sts_emulator.url)
        argv = [KUBEIAM, "token", "-i", CLUSTER, "-r", role_arn, "-s", "ops"]
        stdout = _run([*argv, "--sts-endpoint", sts_emulator.url, "--no-cache"], env)
        identity = _verify(_exec_credential_token(stdout), allowed, sts_client)
        assert identity.canonical_arn == role_arn
        assert identity.session_name == "ops"

    def test_aws_eks_get_token(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        allowed: AllowedHosts,
        sts_client: STSClient,
    ) -> None:
        """awscli's token (AWS_ENDPOINT_URL_STS points it at the emulator) verifies."""
        env = aws_env(iam_user, REGION, sts_emulator.url)
        stdout = _run([AWS, "eks", "get-token", "--cluster-name", CLUSTER], env)
        token = _exec_credential_token(stdout)
        assert urlsplit(decode_token(token)).netloc == urlsplit(sts_emulator.url).netloc
        identity = _verify(token, allowed, sts_client)
        assert identity.arn == iam_user.arn
        assert identity.access_key_id == iam_user.access_key_id

    def test_aws_eks_get_token_with_role(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        allowed: AllowedHosts,
        sts_client: STSClient,
    ) -> None:
        """awscli --role-arn assumes the role (session EKSGetTokenAuth); it verifies."""
        role = unique_name("viewer")
        role_arn = sts_emulator.create_role(role)
        env = aws_env(iam_user, REGION, sts_emulator.url)
        stdout = _run(
            [
                AWS,
                "eks",
                "get-token",
                "--cluster-name",
                CLUSTER,
                "--role-arn",
                role_arn,
            ],
            env,
        )
        identity = _verify(_exec_credential_token(stdout), allowed, sts_client)
        assert identity.canonical_arn == role_arn
        assert identity.session_name == "EKSGetTokenAuth"

    def test_awscli_token_for_another_cluster(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        allowed: AllowedHosts,
        sts_client: STSClient,
    ) -> None:
        """awscli's token is bound to its cluster name like ours."""
        env = aws_env(iam_user, REGION, sts_emulator.url)
        stdout = _run([AWS, "eks", "get-token", "--cluster-name", "cluster-a"], env)
        with pytest.raises(STSRejectedError):
            _verify(
                _exec_credential_token(stdout),
                allowed,
                sts_client,
                cluster_id="cluster-b",
            )

    def test_kubeiam_verify_command(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """kubeiam token piped into kubeiam verify -o json prints the identity."""
        env = aws_env(iam_user, REGION, sts_emulator.url)
        token = _run(
            [KUBEIAM, "token", "-i", CLUSTER, "--token-only", "--no-cache"], env
        ).strip()
        argv = [KUBEIAM, "verify", "-t", token, "-i", CLUSTER, "-o", "json"]
        stdout = _run(
            [*argv, "--region", REGION, "--sts-endpoint", sts_emulator.url], env
        )
        identity = json.loads(stdout)
        assert identity["arn"] == iam_user.arn
        assert identity["userId"] == iam_user.user_id
        assert identity["accessKeyId"] == iam_user.access_key_id
