"""Client differential: aws-iam-authenticator token, kubeiam token, aws eks get-token.

The three clients mint tokens with the same credentials inside the STS
namespace (so every one of them signs for the real STS host names). Each
verifier accepts every client's token with the same identity, and with the same
signing time the presigned URLs agree field by field: the Go binary's
X-Amz-Date is fed to kubeiam's presigner, and every parameter, the signature
included, must be equal. What remains different (the parameter order with a
session token) is asserted here and listed in docs/migrating.md.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from authenticator.emulator import Credentials
from authenticator.presign import StaticCredentials, presign_get_caller_identity
from tests.differential.harness import CLUSTER_ID, Server, user_of
from tests.fixtures.executables import KUBEIAM
from tests.fixtures.stsnamespace import STSNamespace, peer_bin

REGION = "us-east-1"
_VENV_BIN = Path(sys.executable).parent


def client_env(creds: Credentials, cache_dir: Path) -> dict[str, str]:
    """Credentials and region only: no endpoint override, so real STS host names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "KUBEIAM_CACHE_DIR": str(cache_dir),
            "HOME": str(cache_dir),
        }
    )
    if creds.session_token:
        env["AWS_SESSION_TOKEN"] = creds.session_token
    return env


CLIENTS: dict[str, list[str]] = {
    "aws-iam-authenticator": ["{peer}", "token", "-i", CLUSTER_ID],
    "kubeiam": [KUBEIAM, "token", "-i", CLUSTER_ID],
    "aws eks get-token": [
        str(_VENV_BIN / "aws"),
        "eks",
        "get-token",
        "--cluster-name",
        CLUSTER_ID,
    ],
}


def mint(namespace: STSNamespace, client: str, creds: Credentials, tmp: Path) -> str:
    """A token from ``client`` run inside the namespace."""
    argv = [
        a.replace("{peer}", str(peer_bin() / "aws-iam-authenticator"))
        for a in CLIENTS[client]
    ]
    out = namespace.run(argv, env=client_env(creds, tmp))
    assert out.returncode == 0, (client, out.stderr.decode(errors="replace"))
    token: str = json.loads(out.stdout)["status"]["token"]
    return token


def url_of(token: str) -> str:
    body = token.removeprefix("k8s-aws-v1.")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


@pytest.fixture(scope="module")
def tokens(
    sts_namespace: STSNamespace,
    identities: list[Credentials],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[tuple[str, int], str]:
    """Every client's token for every identity."""
    out: dict[tuple[str, int], str] = {}
    for i, creds in enumerate(identities):
        for client in CLIENTS:
            out[(client, i)] = mint(
                sts_namespace, client, creds, Path(tmp_path_factory.mktemp("client"))
            )
    return out


def test_each_verifier_accepts_every_clients_token(
    tokens: Mapping[tuple[str, int], str], go_server: Server, kubeiam_server: Server
) -> None:
    for (client, i), token in tokens.items():
        go = user_of(go_server.review(token))
        ours = user_of(kubeiam_server.review(token))
        assert go is not None, (client, i, "refused by aws-iam-authenticator")
        assert ours is not None, (client, i, "refused by kubeiam")
        assert go["username"] == ours["username"], (client, i, go, ours)
        assert go["uid"] == ours["uid"], (client, i, go, ours)


def test_same_signing_time_gives_the_same_url_field_by_field(
    tokens: Mapping[tuple[str, int], str], identities: list[Credentials]
) -> None:
    for i, creds in enumerate(identities):
        go_url = url_of(tokens[("aws-iam-authenticator", i)])
        go_parts = urlsplit(go_url)
        go_query = parse_qsl(
            go_parts.query, keep_blank_values=True, strict_parsing=True
        )
        fields = dict(go_query)
        signed_at = datetime.strptime(fields["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=UTC
        )
        ours = presign_get_caller_identity(
            credentials=StaticCredentials(
                creds.access_key_id, creds.secret_access_key, creds.session_token
            ),
            region=REGION,
            cluster_id=CLUSTER_ID,
            now=signed_at,
        )
        our_parts = urlsplit(ours.url)
        our_query = parse_qsl(
            our_parts.query, keep_blank_values=True, strict_parsing=True
        )
        # Same scheme, host and path; same parameters with the same values,
        # the signature included.
        assert (go_parts.scheme, go_parts.netloc, go_parts.path) == (
            our_parts.scheme,
            our_parts.netloc,
            our_parts.path,
        )
        assert dict(go_query) == dict(our_query)
        assert len(go_query) == len(our_query)


def test_the_remaining_differences_are_the_listed_ones(
    tokens: Mapping[tuple[str, int], str],
) -> None:
    """Measured: the same host for all three clients; the only difference is the
    parameter order with temporary credentials (the Go SDK sorts the query, so
    X-Amz-Security-Token comes before X-Amz-SignedHeaders; botocore, in kubeiam
    and awscli, appends it after). Signature last everywhere."""
    for i in (0, 1):
        urls = {client: url_of(tokens[(client, i)]) for client in CLIENTS}
        orders = {
            client: [k for k, _ in parse_qsl(urlsplit(url).query)]
            for client, url in urls.items()
        }
        hosts = {client: urlsplit(url).netloc for client, url in urls.items()}
        assert set(hosts.values()) == {f"sts.{REGION}.amazonaws.com"}, hosts
        assert len({frozenset(order) for order in orders.values()}) == 1, orders
        assert all(order[-1] == "X-Amz-Signature" for order in orders.values())
        assert orders["kubeiam"] == orders["aws eks get-token"]
        go = orders["aws-iam-authenticator"]
        assert go[:-1] == sorted(go[:-1])
        if "X-Amz-Security-Token" in go:
            assert orders["kubeiam"] != go
            assert orders["kubeiam"].index("X-Amz-SignedHeaders") < orders[
                "kubeiam"
            ].index("X-Amz-Security-Token")
        else:
            assert orders["kubeiam"] == go
