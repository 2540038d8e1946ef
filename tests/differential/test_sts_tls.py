"""kubeiam's STS client over real TLS to the real host names (the namespace's emulator).

Found by the webhook benchmark against aws-iam-authenticator: requests made
urllib3 re-read the whole CA bundle for every new STS connection. The client
now loads it once; these tests pin that it still verifies certificates (host
name and issuer) and that new connections no longer re-read the bundle.
"""

from __future__ import annotations

import ssl
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from authenticator.emulator import Credentials
from authenticator.errors import STSUnavailableError
from authenticator.hosts import build_allowed_hosts
from authenticator.presign import StaticCredentials, presign_get_caller_identity
from authenticator.sts import STSClient
from authenticator.verify import verify_token
from tests.differential.harness import CLUSTER_ID
from tests.fixtures.stsnamespace import STSNamespace

_CHECK = """
import sys
from datetime import UTC, datetime
from authenticator.hosts import build_allowed_hosts
from authenticator.sts import STSClient
from authenticator.verify import verify_token
call = verify_token(sys.argv[1], cluster_id=sys.argv[2], now=datetime.now(UTC),
                    allowed_hosts=build_allowed_hosts("aws"))
client = STSClient()
for _ in range(3):
    client._session.close()  # a new connection each time
    print(client.call_get_caller_identity(call).arn)
"""


def _token(creds: Credentials, endpoint: str | None = None) -> str:
    return presign_get_caller_identity(
        credentials=StaticCredentials(
            creds.access_key_id, creds.secret_access_key, creds.session_token
        ),
        region="us-east-1",
        cluster_id=CLUSTER_ID,
        now=datetime.now(UTC),
        endpoint_url=endpoint,
    ).token


def test_verified_tls_to_the_real_host_name(
    sts_namespace: STSNamespace, identities: list[Credentials]
) -> None:
    out = sts_namespace.run(
        [sys.executable, "-c", _CHECK, _token(identities[0]), CLUSTER_ID]
    )
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().split() == [identities[0].arn] * 3


def test_an_untrusted_certificate_is_refused(
    sts_namespace: STSNamespace, identities: list[Credentials]
) -> None:
    """Outside the namespace's mount, the test CA is not trusted: the call fails."""
    endpoint = "https://127.0.0.1:443"
    token = _token(identities[0], endpoint)
    call = verify_token(
        token,
        cluster_id=CLUSTER_ID,
        now=datetime.now(UTC),
        allowed_hosts=build_allowed_hosts("aws", [endpoint]),
    )
    client = STSClient(timeout=5)
    with pytest.raises(STSUnavailableError):
        sts_namespace.submit(client.call_get_caller_identity, call).result(30)


def test_new_connections_do_not_reread_the_bundle(
    sts_namespace: STSNamespace,
    identities: list[Credentials],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The bundle is read when the client is made, never per connection."""
    endpoint = "https://127.0.0.1:443"
    call = verify_token(
        _token(identities[0], endpoint),
        cluster_id=CLUSTER_ID,
        now=datetime.now(UTC),
        allowed_hosts=build_allowed_hosts("aws", [endpoint]),
    )
    client = STSClient(timeout=5)
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    for _ in range(3):
        client._session.close()
        with pytest.raises(STSUnavailableError):  # untrusted here, see above
            sts_namespace.submit(client.call_get_caller_identity, call).result(30)
    assert loads == []
