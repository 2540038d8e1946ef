"""The offline verifier: every rule rejects with its own reason and sends nothing.

Each rejection runs the full path (``verify_token`` then, only if it passed,
``STSClient``) with a loopback canary server registered as an extra STS
endpoint; the canary must receive nothing. Valid tokens are presigned with
botocore directly.

Helpers here (``LocalServer``, ``presign``, ``build_url``) are shared by the
other verifier test modules.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import botocore.session
import pytest

from authenticator.errors import MalformedTokenError
from authenticator.hosts import AllowedHosts, build_allowed_hosts
from authenticator.identity import Identity
from authenticator.sts import STSClient
from authenticator.token import TOKEN_PREFIX, encode_token
from authenticator.verify import REASONS, RULES, PresignedCall, verify_token

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
DATE = "20261127T120000Z"
AKID = "AKIAIOSFODNN7EXAMPLE"
SIG = "0123456789abcdef" * 4
CLUSTER = "demo-cluster"
SERVER_REGION = "us-west-2"


# --------------------------------------------------------------------------- servers


@dataclass
class Recorded:
    """One request a local server received."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    client_port: int = 0


Responder = Callable[[BaseHTTPRequestHandler], None]


def reply(
    status: int,
    body: bytes = b"",
    content_type: str = "application/json",
    headers: tuple[tuple[str, str], ...] = (),
) -> Responder:
    """A responder that sends one fixed answer."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return respond


@dataclass
class LocalServer:
    """A threaded HTTP server on 127.0.0.1 that records requests and answers as told."""

    respond: Responder = field(default_factory=lambda: reply(200, b"{}"))
    requests: list[Recorded] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> LocalServer:
        """Bind a free port and serve in a daemon thread."""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                outer.requests.append(
                    Recorded(
                        self.command,
                        self.path,
                        list(self.headers.items()),
                        int(self.client_address[1]),
                    )
                )
                outer.respond(self)

            do_GET = do_POST = do_PUT = do_HEAD = _any  # noqa: N815 - http.server API

            def log_message(self, format: str, *args: object) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self._server = server
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        self.stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        """The bound port."""
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def netloc(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def canary() -> Iterator[LocalServer]:
    """A loopback server that must never be contacted by a rejected token."""
    server = LocalServer().start()
    try:
        yield server
    finally:
        server.close()


# --------------------------------------------------------------------------- tokens


def build_query(region: str = "us-west-2", **overrides: str | None) -> str:
    """A canonical presigned query; overrides replace (None: drop) raw values."""
    params: dict[str, str | None] = {
        "Action": "GetCallerIdentity",
        "Version": "2011-06-15",
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{AKID}%2F{DATE[:8]}%2F{region}%2Fsts%2Faws4_request",
        "X-Amz-Date": DATE,
        "X-Amz-Expires": "60",
        "X-Amz-SignedHeaders": "host%3Bx-k8s-aws-id",
        "X-Amz-Signature": SIG,
    }
    params.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return "&".join(f"{k}={v}" for k, v in params.items() if v is not None)


def build_url(
    host: str = "sts.us-west-2.amazonaws.com",
    region: str = "us-west-2",
    scheme: str = "https",
    **overrides: str | None,
) -> str:
    """A presigned-looking URL (fake signature) for ``host``."""
    return f"{scheme}://{host}/?{build_query(region, **overrides)}"


def tok(url: str) -> str:
    """The token for a URL."""
    return encode_token(url)


def presign(
    endpoint_url: str,
    region: str,
    *,
    cluster_id: str = CLUSTER,
    access_key: str = AKID,
    session_token: str | None = None,
) -> str:
    """Presign GetCallerIdentity with botocore, x-k8s-aws-id signed (as aws-cli)."""
    key = (endpoint_url, region, cluster_id, access_key, session_token)
    client = _CLIENTS.get(key)
    if client is None:
        client = _CLIENTS[key] = _sts_client(*key)
    url = client.generate_presigned_url(
        "get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET"
    )
    return str(url)


# botocore clients are slow to create: one per signing set-up, for the session.
_CLIENTS: dict[tuple[str, str, str, str, str | None], Any] = {}
_BOTOCORE = botocore.session.Session()


def _sts_client(
    endpoint_url: str,
    region: str,
    cluster_id: str,
    access_key: str,
    session_token: str | None,
) -> Any:
    """A botocore STS client that signs x-k8s-aws-id."""
    session = _BOTOCORE
    client = session.create_client(
        "sts",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        aws_session_token=session_token,
    )

    def add_header(request: object, **_: object) -> None:
        request.headers["x-k8s-aws-id"] = cluster_id  # type: ignore[attr-defined]

    client.meta.events.register("before-sign.sts.GetCallerIdentity", add_header)
    return client


def signed_at(url: str) -> datetime:
    """X-Amz-Date of a URL."""
    date = dict(parse_qsl(urlsplit(url).query))["X-Amz-Date"]
    return datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def allowed_for(canary: LocalServer, partition: str = "aws") -> AllowedHosts:
    """The allow-list of the tests: the partition plus the canary as extra endpoint."""
    return build_allowed_hosts(partition, [canary.url], region=SERVER_REGION)


def full_path(token: str, allowed: AllowedHosts, *, now: datetime = NOW) -> Identity:
    """verify_token, then (only if it passed) the STS call, as the webhook does."""
    call = verify_token(token, cluster_id=CLUSTER, now=now, allowed_hosts=allowed)
    if urlsplit(call.url).hostname != "127.0.0.1":
        pytest.fail(f"verify_token accepted a token for {urlsplit(call.url).hostname}")
    client = STSClient(timeout=0.5)
    try:
        return client.call_get_caller_identity(call)
    finally:
        client.close()


def assert_rejected(
    token: str,
    reason: str,
    canary: LocalServer,
    *,
    partition: str = "aws",
    now: datetime = NOW,
) -> MalformedTokenError:
    """The token is rejected offline with ``reason`` and the canary hears nothing."""
    before = len(canary.requests)
    with pytest.raises(MalformedTokenError) as info:
        full_path(token, allowed_for(canary, partition), now=now)
    assert info.value.reason == reason, info.value.message
    assert len(canary.requests) == before
    assert info.value.reason in REASONS
    return info.value


def canary_url(
    canary: LocalServer, region: str = SERVER_REGION, **overrides: str | None
) -> str:
    """A fake-signed URL aimed at the canary (a registered http loopback endpoint)."""
    return build_url(canary.netloc, region, scheme="http", **overrides)


# --------------------------------------------------------------------------- cases

RAW_TOKEN_CASES = [
    ("token_too_large", TOKEN_PREFIX + "A" * (4097 - len(TOKEN_PREFIX))),
    ("token_too_large", TOKEN_PREFIX + "é" * 2100),
    ("bad_prefix", "k8s-aws-v2.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8"),
    ("bad_prefix", "K8S-AWS-V1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8"),
    ("bad_prefix", ""),
    ("bad_prefix", "Bearer k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8"),
    ("bad_base64", "k8s-aws-v1.decodingerror"),
    ("bad_base64", "k8s-aws-v1.decodingerror!"),
    ("bad_base64", TOKEN_PREFIX + "aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8="),
    ("bad_base64", TOKEN_PREFIX + "aHR0cHM6Ly9z+dHMu"),
    ("bad_base64", TOKEN_PREFIX + "aHR0cHM6Ly9z/dHMu"),
    ("bad_base64", TOKEN_PREFIX + "aHR0cHM6\r\nLy9zdHMu"),
    ("bad_base64", TOKEN_PREFIX + "aHR0 cHM6Ly9zdHMu"),
    ("bad_base64", TOKEN_PREFIX + "aHR0c"),
    ("bad_base64", TOKEN_PREFIX + "aHR0cHN"),  # non-zero trailing bits
    ("bad_encoding", TOKEN_PREFIX + base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode()),
]

# (reason, url) for URL-level rules against the commercial partition.
URL_CASES: list[tuple[str, str]] = [
    # rule: characters (non-ASCII, controls, whitespace, backslash, unsafe ASCII)
    ("bad_url", build_url(Action="GetCallerIdentité")),
    ("bad_url", build_url().replace("?", "?\x00")),
    ("bad_url", build_url().replace("Action", "\tAction")),
    ("bad_url", build_url().replace("&Version", "\n&Version")),
    ("bad_url", build_url(Action="Get CallerIdentity")),
    ("bad_url", build_url(host="sts.amazonaws.com\\@evil.com")),
    ("bad_url", build_url(host="sts.amazonaws.com\\")),
    ("bad_url", build_url(Action='"GetCallerIdentity"')),
    ("bad_url", build_url(Action="{GetCallerIdentity}")),
    ("bad_url", build_url(Action="Get|CallerIdentity")),
    ("bad_url", build_url(host="\u0455ts.amazonaws.com")),  # Cyrillic s
    # rule: URL shape
    ("bad_url", ":ab:cd.af:/asda"),
    ("bad_url", "https:/sts.amazonaws.com/?" + build_query("us-east-1")),
    ("bad_url", "//sts.amazonaws.com/?" + build_query("us-east-1")),
    ("bad_url", "sts.amazonaws.com/?" + build_query("us-east-1")),
    ("bad_url", "https://[::1/?" + build_query("us-east-1")),
    ("bad_url", "https://[::1]x/?" + build_query("us-east-1")),
    # rule: scheme
    ("bad_scheme", "http://"),
    ("bad_scheme", build_url(scheme="http")),
    (
        "bad_scheme",
        build_url(host="sts.amazonaws.com", region="us-east-1", scheme="ftp"),
    ),
    ("bad_scheme", build_url(scheme="wss")),
    # rule: userinfo (hosts that merely look like STS)
    ("userinfo", build_url(host="sts.amazonaws.com@evil.com", region="us-east-1")),
    ("userinfo", build_url(host="user:pass@sts.us-west-2.amazonaws.com")),
    ("userinfo", build_url(host="@sts.us-west-2.amazonaws.com")),
    ("userinfo", build_url(host="sts.us-west-2.amazonaws.com:443@evil.com")),
    # rule: port
    ("port", build_url(host="sts.us-east-1.amazonaws.com:443", region="us-east-1")),
    ("port", build_url(host="sts.amazonaws.com:443", region="us-east-1")),
    ("port", build_url(host="sts.amazonaws.com:", region="us-east-1")),
    ("port", build_url(host="sts.amazonaws.com:abc", region="us-east-1")),
    ("port", build_url(host="sts.us-west-2.amazonaws.com:8443")),
    # rule: fragment
    ("fragment", build_url() + "#frag"),
    ("fragment", build_url() + "#"),
    ("fragment", build_url().replace("/?", "/#?")),
    # rule: host allow-list
    ("host_not_allowed", build_url(host="google.com")),
    ("host_not_allowed", build_url(host="evil.com")),
    (
        "host_not_allowed",
        build_url(host="sts.amazonaws.com.evil.com", region="us-east-1"),
    ),
    ("host_not_allowed", build_url(host="sts.us-west-2.amazonaws.com.evil.com")),
    ("host_not_allowed", build_url(host="evilsts.amazonaws.com", region="us-east-1")),
    ("host_not_allowed", build_url(host="evil-sts.us-west-2.amazonaws.com")),
    ("host_not_allowed", build_url(host="sts.amazonaws.com.", region="us-east-1")),
    ("host_not_allowed", build_url(host="sts.us-west-2.amazonaws.com.")),
    ("host_not_allowed", build_url(host="STS.AMAZONAWS.COM", region="us-east-1")),
    ("host_not_allowed", build_url(host="sts.US-WEST-2.amazonaws.com")),
    ("host_not_allowed", build_url(host="Sts.us-west-2.amazonaws.com")),
    (
        "host_not_allowed",
        build_url(host="sts.cn-north-1.amazonaws.com.cn", region="cn-north-1"),
    ),
    ("host_not_allowed", build_url(host="sts.us-west-2.amazonaws.com.cn")),
    ("host_not_allowed", build_url(host="sts.amazonaws.com.cn", region="us-east-1")),
    (
        "host_not_allowed",
        build_url(host="sts.us-iso-east-1.c2s.ic.gov", region="us-iso-east-1"),
    ),
    ("host_not_allowed", build_url(host="sts.cn-north-1.api.amazonwebservices.com.cn")),
    ("host_not_allowed", build_url(host="sts.us-gov-west-1.amazonaws.com")),
    ("host_not_allowed", build_url(host="sts.not-a-region.amazonaws.com")),
    ("host_not_allowed", build_url(host="sts..amazonaws.com")),
    ("host_not_allowed", build_url(host="sts.us-west-2.evil.amazonaws.com")),
    ("host_not_allowed", build_url(host="sts-fips.amazonaws.com", region="us-east-1")),
    ("host_not_allowed", build_url(host="website.amazonaws.com")),
    ("host_not_allowed", build_url(host="sts.us-west-2.api.aws.evil.com")),
    ("host_not_allowed", build_url(host="54.239.28.85", region="us-east-1")),
    ("host_not_allowed", build_url(host="[2600:1f18::1]", region="us-east-1")),
    ("host_not_allowed", build_url(host="[::1]", region="us-east-1")),
    ("host_not_allowed", build_url(host="127.0.0.1", region="us-west-2")),
    ("host_not_allowed", build_url(host="localhost", region="us-west-2")),
    ("host_not_allowed", build_url(host="sts%2Eamazonaws.com", region="us-east-1")),
    ("host_not_allowed", build_url(host="sts.amazonaws%2Ecom", region="us-east-1")),
    ("host_not_allowed", build_url(host="", region="us-east-1")),
    # rule: path
    ("bad_path", "https://sts.amazonaws.com/abc?" + build_query("us-east-1")),
    ("bad_path", "https://sts.amazonaws.com?" + build_query("us-east-1")),
    ("bad_path", "https://sts.us-west-2.amazonaws.com//?" + build_query()),
    ("bad_path", "https://sts.us-west-2.amazonaws.com/%2F?" + build_query()),
    ("bad_path", "https://sts.us-west-2.amazonaws.com/./?" + build_query()),
    ("bad_path", "https://sts.us-west-2.amazonaws.com/" + build_query()),
    # rule: strict query syntax
    ("bad_query", build_url().replace("&Version", ";Version")),
    ("bad_query", build_url(X_Amz_Expires="60;x=1")),
    ("bad_query", build_url(X_Amz_Expires="60%gh")),
    ("bad_query", build_url(X_Amz_Expires="60%")),
    ("bad_query", build_url(X_Amz_Expires="60%4")),
    ("bad_query", build_url().replace("&Version", "&&Version")),
    ("bad_query", build_url() + "&"),
    ("bad_query", build_url().replace("/?", "/?&")),
    ("bad_query", build_url() + "&X-Amz-Security-Token"),
    ("bad_query", build_url() + "&=abc"),
    ("bad_query", build_url().replace("Action=", "%41ction=")),
    ("bad_query", build_url().replace("Action=", "Action+=")),
    ("bad_query", build_url(X_Amz_Security_Token="%ff%fe")),
    ("bad_query", build_url(X_Amz_Security_Token="[abc]")),
    ("unknown_parameter", build_url().replace("/?", "/??")),
    # rule: duplicate names, ignoring case (CVE-2022-2385 family)
    ("duplicate_parameter", build_url() + "&x-amz-credential=eve"),
    (
        "duplicate_parameter",
        build_url()
        + "&X-AMZ-CREDENTIAL=ASIAVICTIM%2F20261127%2Fus-west-2%2Fsts%2Faws4_request",
    ),
    ("duplicate_parameter", build_url() + "&action=AssumeRole"),
    ("duplicate_parameter", build_url() + "&ACTION=GetCallerIdentity"),
    (
        "duplicate_parameter",
        build_url(X_Amz_SignedHeaders="host") + "&x-amz-signedheaders=x-k8s-aws-id",
    ),
    ("duplicate_parameter", build_url() + "&x-amz-signedheaders=host%3Bx-k8s-aws-id"),
    ("duplicate_parameter", build_url() + "&Action=GetCallerIdentity"),
    ("duplicate_parameter", build_url() + "&X-Amz-Date=" + DATE),
    ("duplicate_parameter", build_url() + "&x-amz-date=19900422T010203Z"),
    ("duplicate_parameter", build_url() + "&version=2011-06-15"),
    ("duplicate_parameter", build_url() + "&X-Amz-Signature=" + SIG),
    (
        "duplicate_parameter",
        build_url(X_Amz_Security_Token="abc") + "&x-amz-security-token=def",
    ),
    ("duplicate_parameter", build_url() + "&NotAllowed=1&notallowed=2"),
    ("duplicate_parameter", "https://sts.amazonaws.com/?action=get&action=post"),
    # rule: allowed names only
    ("unknown_parameter", "https://sts.amazonaws.com/?NoInWhiteList=abc"),
    ("unknown_parameter", build_url() + "&X-Amz-Foo=1"),
    (
        "unknown_parameter",
        build_url() + "&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2FAdmin",
    ),
    ("unknown_parameter", build_url() + "&Expires=1"),
    ("unknown_parameter", build_url() + "&x-k8s-aws-id=demo-cluster"),
    # rule: Action
    ("bad_action", build_url(Action="AssumeRole")),
    ("bad_action", build_url(Action="AssumeRoleWithWebIdentity")),
    ("bad_action", build_url(Action="GetSessionToken")),
    ("bad_action", build_url(Action="getcalleridentity")),
    ("bad_action", build_url(Action="GetCallerIdentity+")),
    ("bad_action", build_url(Action="GetCallerIdentity%00")),
    ("bad_action", build_url(Action="")),
    ("bad_action", build_url(Action=None)),
    ("bad_action", "https://sts.amazonaws.com/?action=NotGetCallerIdenity"),
    ("bad_action", "https://sts.amazonaws.com/?"),
    ("bad_action", "https://sts.amazonaws.com/"),
    # rule: Version
    ("bad_version", build_url(Version=None)),
    ("bad_version", build_url(Version="2011-06-16")),
    ("bad_version", build_url(Version="")),
    ("bad_version", build_url(Version="2011-06-15+")),
    # rule: the cluster-ID header is signed
    ("unsigned_cluster_id", build_url(X_Amz_SignedHeaders=None)),
    ("unsigned_cluster_id", build_url(X_Amz_SignedHeaders="host")),
    ("unsigned_cluster_id", build_url(X_Amz_SignedHeaders="")),
    ("unsigned_cluster_id", build_url(X_Amz_SignedHeaders="abc%3Bx-k8s-aws-i%3Bdef")),
    ("unsigned_cluster_id", build_url(X_Amz_SignedHeaders="host%3Bx-k8s-aws-id-2")),
    ("unsigned_cluster_id", build_url(X_Amz_SignedHeaders="host%2Cx-k8s-aws-id")),
    # rule: nothing else signed (aws-sdk-go-v2 1.24.1 signed amz-sdk-request)
    (
        "extra_signed_header",
        build_url(X_Amz_SignedHeaders="amz-sdk-request%3Bhost%3Bx-k8s-aws-id"),
    ),
    (
        "extra_signed_header",
        build_url(X_Amz_SignedHeaders="host%3Bx-amz-date%3Bx-k8s-aws-id"),
    ),
    ("extra_signed_header", build_url(X_Amz_SignedHeaders="host%3Bx-k8s-aws-id%3B")),
    # rule: exactly host;x-k8s-aws-id
    ("extra_signed_header", build_url(X_Amz_SignedHeaders="x-k8s-aws-id")),
    ("extra_signed_header", build_url(X_Amz_SignedHeaders="x-k8s-aws-id%3Bhost")),
    # (host;X-K8S-AWS-ID passes: names compare ignoring case, test_verify_compat.py)
    (
        "extra_signed_header",
        build_url(X_Amz_SignedHeaders="host%3Bhost%3Bx-k8s-aws-id"),
    ),
    # rule: X-Amz-Expires in [0, 900]
    ("bad_expires", build_url(X_Amz_Expires="901")),
    ("bad_expires", build_url(X_Amz_Expires="-1")),
    ("bad_expires", build_url(X_Amz_Expires="abc")),
    ("bad_expires", build_url(X_Amz_Expires=None)),
    ("bad_expires", build_url(X_Amz_Expires="")),
    ("bad_expires", build_url(X_Amz_Expires="9999999")),
    ("bad_expires", build_url(X_Amz_Expires="99999999999999999999999")),
    ("bad_expires", build_url(X_Amz_Expires="1e2")),
    ("bad_expires", build_url(X_Amz_Expires="+60")),
    ("bad_expires", build_url(X_Amz_Expires="60.0")),
    ("bad_expires", build_url(X_Amz_Expires="%EF%BC%96%EF%BC%90")),  # full-width digits
    # rule: X-Amz-Date present and well-formed
    ("missing_date", build_url(X_Amz_Date=None)),
    ("missing_date", build_url(X_Amz_Date="")),
    ("bad_date", build_url(X_Amz_Date="xxxxxxx")),
    ("bad_date", build_url(X_Amz_Date="20261127T120000")),
    ("bad_date", build_url(X_Amz_Date="20261327T120000Z")),
    ("bad_date", build_url(X_Amz_Date="20261127T250000Z")),
    ("bad_date", build_url(X_Amz_Date="20260230T120000Z")),
    ("bad_date", build_url(X_Amz_Date="2026-11-27T12%3A00%3A00Z")),
    ("bad_date", build_url(X_Amz_Date="20261127t120000z")),
    ("bad_date", build_url(X_Amz_Date="00001127T120000Z")),
    # rule: age
    ("expired", build_url(X_Amz_Date="19900422T010203Z")),
    ("expired", build_url(X_Amz_Date="20261127T114459Z")),
    ("future_date", build_url(X_Amz_Date="20261127T120501Z")),
    ("future_date", build_url(X_Amz_Date="99991231T235959Z")),
    # rule: credential scope
    ("bad_credential_scope", build_url(X_Amz_Credential=None)),
    ("bad_credential_scope", build_url(X_Amz_Credential="")),
    (
        "bad_credential_scope",
        build_url(
            X_Amz_Credential=f"{AKID}%2F20261127%2Fus-west-2%2Fs3%2Faws4_request"
        ),
    ),
    (
        "bad_credential_scope",
        build_url(X_Amz_Credential=f"{AKID}%2F20261127%2Fus-west-2%2Fsts"),
    ),
    (
        "bad_credential_scope",
        build_url(
            X_Amz_Credential=f"{AKID}%2F20261127%2Fus-west-2%2Fsts%2Faws4_request%2Fx"
        ),
    ),
    (
        "bad_credential_scope",
        build_url(
            X_Amz_Credential=f"{AKID}%2F20261127%2Fus-west-2%2Fsts%2Faws4_request2"
        ),
    ),
    ("bad_credential_scope", build_url(X_Amz_Credential="eve")),
    (
        "bad_credential_scope",
        build_url(X_Amz_Credential="%2F20261127%2Fus-west-2%2Fsts%2Faws4_request"),
    ),
    (
        "bad_credential_scope",
        build_url(
            X_Amz_Credential="AKIA-BAD%2F20261127%2Fus-west-2%2Fsts%2Faws4_request"
        ),
    ),
    (
        "bad_credential_scope",
        build_url(
            X_Amz_Credential="AKIA%3AX%2F20261127%2Fus-west-2%2Fsts%2Faws4_request"
        ),
    ),
    (
        "bad_credential_scope",
        build_url(
            X_Amz_Credential="AKI%C3%81%2F20261127%2Fus-west-2%2Fsts%2Faws4_request"
        ),
    ),
    (
        "bad_credential_scope",
        build_url(
            X_Amz_Credential=f"{AKID}%2F20261126%2Fus-west-2%2Fsts%2Faws4_request"
        ),
    ),
    (
        "bad_credential_scope",
        build_url(
            X_Amz_Credential=f"{AKID}%2F2026112%2Fus-west-2%2Fsts%2Faws4_request"
        ),
    ),
    ("bad_credential_scope", build_url(region="us-east-1")),
    ("bad_credential_scope", build_url(host="sts.amazonaws.com", region="us-west-2")),
    ("bad_credential_scope", build_url(host="sts.amazonaws.com", region="global")),
    (
        "bad_credential_scope",
        build_url(host="sts-fips.us-east-2.amazonaws.com", region="us-east-1"),
    ),
    ("bad_credential_scope", build_url(region="")),
    # rule: algorithm, signature, security token
    ("bad_algorithm", build_url(X_Amz_Algorithm=None)),
    ("bad_algorithm", build_url(X_Amz_Algorithm="AWS4-HMAC-SHA512")),
    ("bad_algorithm", build_url(X_Amz_Algorithm="aws4-hmac-sha256")),
    ("bad_algorithm", build_url(X_Amz_Algorithm="AWS4-ECDSA-P256-SHA256")),
    ("bad_signature_format", build_url(X_Amz_Signature=None)),
    ("bad_signature_format", build_url(X_Amz_Signature=SIG[:-1])),
    ("bad_signature_format", build_url(X_Amz_Signature=SIG + "0")),
    ("bad_signature_format", build_url(X_Amz_Signature=SIG.upper())),
    ("bad_signature_format", build_url(X_Amz_Signature="g" * 64)),
    ("bad_signature_format", build_url(X_Amz_Signature="999999999999999999")),
    ("bad_security_token", build_url(X_Amz_Security_Token="")),
]


class TestRejections:
    """Every rule rejects with its own reason code and sends nothing to STS."""

    @pytest.mark.parametrize(("reason", "token"), RAW_TOKEN_CASES)
    def test_token_level(self, reason: str, token: str, canary: LocalServer) -> None:
        """Size, prefix and base64 rules reject before anything else."""
        assert_rejected(token, reason, canary)

    @pytest.mark.parametrize(("reason", "url"), URL_CASES)
    def test_url_level(self, reason: str, url: str, canary: LocalServer) -> None:
        """Each URL rule rejects with its reason, offline."""
        assert_rejected(tok(url), reason, canary)

    def test_every_reason_is_exercised(self) -> None:
        """The case tables above cover every reason code verify_token can raise."""
        covered = {r for r, _ in RAW_TOKEN_CASES} | {r for r, _ in URL_CASES}
        assert covered == set(REASONS)
        assert list(REASONS) == list(RULES)


class TestCanaryEndpoint:
    """Rejections on a registered loopback endpoint (a passing token would reach it)."""

    @pytest.mark.parametrize(
        ("reason", "overrides"),
        [
            (
                "duplicate_parameter",
                {"extra": "&x-amz-credential=ASIAVICTIMKEY0000000%2F20261127"},
            ),
            ("duplicate_parameter", {"extra": "&action=AssumeRole"}),
            ("duplicate_parameter", {"extra": "&x-amz-signedheaders=x-k8s-aws-id"}),
            ("bad_action", {"Action": "AssumeRole"}),
            ("bad_version", {"Version": None}),
            ("unsigned_cluster_id", {"X_Amz_SignedHeaders": "host"}),
            ("bad_expires", {"X_Amz_Expires": "901"}),
            ("expired", {"X_Amz_Date": "20261127T114459Z"}),
            ("future_date", {"X_Amz_Date": "20261127T120501Z"}),
            ("bad_credential_scope", {"region": "us-east-1"}),
            ("bad_signature_format", {"X_Amz_Signature": "abc"}),
            ("unknown_parameter", {"extra": "&Foo=bar"}),
            ("bad_query", {"extra": "&X-Amz-Security-Token=a%zz"}),
        ],
    )
    def test_rejected_on_extra_endpoint(
        self, reason: str, overrides: dict[str, str | None], canary: LocalServer
    ) -> None:
        """A bad token aimed at a configured endpoint still never reaches it."""
        extra = overrides.pop("extra", None) or ""
        region = overrides.pop("region", None) or SERVER_REGION
        assert_rejected(
            tok(canary_url(canary, region, **overrides) + extra), reason, canary
        )

    def test_wrong_scheme_port_host_and_userinfo(self, canary: LocalServer) -> None:
        """Endpoints match on exact scheme, host and port; userinfo never passes."""
        query = build_query(SERVER_REGION)
        cases = [
            # an unconfigured loopback endpoint is "not allowed" (issue 14)
            ("host_not_allowed", f"https://127.0.0.1:{canary.port}/?{query}"),
            ("host_not_allowed", f"http://127.0.0.1:{canary.port + 1}/?{query}"),
            ("host_not_allowed", f"http://127.0.0.2:{canary.port}/?{query}"),
            ("bad_scheme", f"http://localhost:{canary.port}/?{query}"),
            ("host_not_allowed", f"http://127.0.0.1/?{query}"),
            ("userinfo", f"http://x@127.0.0.1:{canary.port}/?{query}"),
            (
                "userinfo",
                f"http://127.0.0.1:{canary.port}@127.0.0.1:{canary.port}/?{query}",
            ),
            ("fragment", f"http://127.0.0.1:{canary.port}/?{query}#x"),
            ("bad_path", f"http://127.0.0.1:{canary.port}/sts?{query}"),
        ]
        for reason, url in cases:
            assert_rejected(tok(url), reason, canary)

    def test_fake_signed_token_reaches_the_canary(self, canary: LocalServer) -> None:
        """Control: a token passing every local check does reach the endpoint."""
        canary.respond = reply(
            403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>"
        )
        before = len(canary.requests)
        with pytest.raises(Exception) as info:
            full_path(tok(canary_url(canary)), allowed_for(canary))
        assert not isinstance(info.value, MalformedTokenError)
        assert len(canary.requests) == before + 1
        canary.respond = reply(200, b"{}")


class TestOrder:
    """Checks run in the reference's order."""

    def test_duplicates_before_allow_list_and_values(self, canary: LocalServer) -> None:
        """A duplicated unknown name is a duplicate, not an unknown or a bad action."""
        url = build_url(Action="AssumeRole") + "&Evil=1&evil=2"
        assert_rejected(tok(url), "duplicate_parameter", canary)

    def test_host_before_query(self, canary: LocalServer) -> None:
        """A foreign host is reported even when the query is also bad."""
        url = build_url(host="evil.com", Action="AssumeRole").replace(
            "&Version", ";Version"
        )
        assert_rejected(tok(url), "host_not_allowed", canary)

    def test_scheme_before_host(self, canary: LocalServer) -> None:
        """http to a foreign host is a scheme error first."""
        assert_rejected(
            tok(build_url(host="evil.com", scheme="http")), "bad_scheme", canary
        )

    def test_expires_before_date(self, canary: LocalServer) -> None:
        """Expires is checked before the date (reference rows 16 and 17)."""
        url = build_url(X_Amz_Expires="901", X_Amz_Date=None)
        assert_rejected(tok(url), "bad_expires", canary)


class TestBoundaries:
    """Edges of the size, expiry and clock rules."""

    def test_exactly_4096_bytes_is_not_too_large(self, canary: LocalServer) -> None:
        """4096 bytes passes the size rule (and then fails base64: 4085 is 1 mod 4)."""
        token = TOKEN_PREFIX + "A" * (4096 - len(TOKEN_PREFIX))
        assert len(token) == 4096
        assert_rejected(token, "bad_base64", canary)

    def test_largest_valid_token_passes(self, canary: LocalServer) -> None:
        """A 4095-byte token (the largest valid base64 length) verifies."""
        base = build_url(X_Amz_Security_Token="A")
        # 3063 URL bytes encode to 4084 base64 characters: 4095 with the prefix.
        url = build_url(X_Amz_Security_Token="A" * (1 + 3063 - len(base)))
        token = tok(url)
        assert len(token) == 4095
        call = verify_token(
            token, cluster_id=CLUSTER, now=NOW, allowed_hosts=allowed_for(canary)
        )
        assert call.url == url

    @pytest.mark.parametrize("expires", ["0", "900", "60", "0900", "000"])
    def test_expires_accepted(self, expires: str, canary: LocalServer) -> None:
        """X-Amz-Expires 0..900 passes (Go clients sent 0 for years)."""
        url = build_url(X_Amz_Expires=expires)
        verify_token(
            tok(url), cluster_id=CLUSTER, now=NOW, allowed_hosts=allowed_for(canary)
        )

    @pytest.mark.parametrize(
        ("delta", "reason"),
        [
            (timedelta(minutes=15), None),
            (timedelta(minutes=15, seconds=1), "expired"),
            (timedelta(hours=3), "expired"),
            (timedelta(minutes=-5), None),
            (timedelta(minutes=-5, seconds=-1), "future_date"),
            (timedelta(0), None),
        ],
    )
    def test_age_window(
        self, delta: timedelta, reason: str | None, canary: LocalServer
    ) -> None:
        """Exactly 15 min old and 5 min ahead pass; one second more fails."""
        now = NOW + delta
        token = tok(build_url())
        if reason is None:
            call = verify_token(
                token, cluster_id=CLUSTER, now=now, allowed_hosts=allowed_for(canary)
            )
            assert call.signed_at == NOW
            assert call.expires_at == NOW + timedelta(minutes=15)
        else:
            assert_rejected(token, reason, canary, now=now)

    def test_naive_now_is_utc(self, canary: LocalServer) -> None:
        """A naive ``now`` is taken as UTC."""
        naive = NOW.replace(tzinfo=None) + timedelta(minutes=16)
        with pytest.raises(MalformedTokenError, match="16m00s old"):
            verify_token(
                tok(build_url()),
                cluster_id=CLUSTER,
                now=naive,
                allowed_hosts=allowed_for(canary),
            )

    def test_empty_cluster_id_is_a_programming_error(self, canary: LocalServer) -> None:
        """The server must be configured with a cluster ID."""
        with pytest.raises(ValueError, match="cluster_id"):
            verify_token(
                tok(build_url()),
                cluster_id="",
                now=NOW,
                allowed_hosts=allowed_for(canary),
            )


class TestMessages:
    """Messages explain the problem and never leak the token or signature."""

    def test_expired_message_says_how_old_and_what_to_do(
        self, canary: LocalServer
    ) -> None:
        """The expiry message gives the age, the lifetime and the fix."""
        error = assert_rejected(
            tok(build_url()), "expired", canary, now=NOW + timedelta(minutes=17)
        )
        assert "17m00s old" in error.message
        assert "15 minutes" in error.message
        assert "clock" in error.message

    def test_secrets_never_in_messages(self, canary: LocalServer) -> None:
        """No message contains the signature, the security token or the token."""
        secret = "SECRETSESSIONTOKEN"
        for reason, url in URL_CASES:
            url = url.replace(SIG, "f" * 64)
            token = tok(url + f"&X-Amz-Security-Token={secret}")
            try:
                verify_token(
                    token,
                    cluster_id=CLUSTER,
                    now=NOW,
                    allowed_hosts=allowed_for(canary),
                )
            except MalformedTokenError as exc:
                assert "f" * 64 not in exc.message, reason
                assert secret not in exc.message, reason
                assert token[len(TOKEN_PREFIX) :][:40] not in exc.message, reason

    def test_host_message_names_the_partition(self, canary: LocalServer) -> None:
        """A foreign host's message names the host and the partition."""
        error = assert_rejected(
            tok(build_url(host="evil.com")), "host_not_allowed", canary
        )
        assert "'evil.com'" in error.message and "aws" in error.message


class TestValidTokens:
    """Tokens presigned by botocore pass with the right PresignedCall."""

    @pytest.mark.parametrize(
        ("partition", "endpoint", "region"),
        [
            ("aws", "https://sts.us-west-2.amazonaws.com", "us-west-2"),
            ("aws", "https://sts.amazonaws.com", "us-east-1"),
            ("aws", "https://sts.us-east-1.amazonaws.com", "us-east-1"),
            ("aws", "https://sts-fips.us-east-2.amazonaws.com", "us-east-2"),
            ("aws", "https://sts.eu-central-1.api.aws", "eu-central-1"),
            ("aws", "https://sts-fips.ca-central-1.api.aws", "ca-central-1"),
            ("aws", "https://sts.ap-southeast-5.amazonaws.com", "ap-southeast-5"),
            ("aws-cn", "https://sts.cn-north-1.amazonaws.com.cn", "cn-north-1"),
            (
                "aws-cn",
                "https://sts.cn-northwest-1.api.amazonwebservices.com.cn",
                "cn-northwest-1",
            ),
            ("aws-us-gov", "https://sts.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
            ("aws-iso", "https://sts.us-iso-east-1.c2s.ic.gov", "us-iso-east-1"),
            ("aws-iso-b", "https://sts.us-isob-east-1.sc2s.sgov.gov", "us-isob-east-1"),
            (
                "aws-iso-e",
                "https://sts.eu-isoe-west-1.cloud.adc-e.uk",
                "eu-isoe-west-1",
            ),
            (
                "aws-iso-f",
                "https://sts.us-isof-south-1.csp.hci.ic.gov",
                "us-isof-south-1",
            ),
            ("aws-eusc", "https://sts.eusc-de-east-1.amazonaws.eu", "eusc-de-east-1"),
        ],
    )
    def test_presigned_by_botocore(
        self, partition: str, endpoint: str, region: str
    ) -> None:
        """A real presigned URL verifies; it is rebuilt with the query unchanged."""
        url = presign(endpoint, region)
        when = signed_at(url)
        allowed = build_allowed_hosts(partition, region=SERVER_REGION)
        call = verify_token(
            tok(url),
            cluster_id=CLUSTER,
            now=when + timedelta(seconds=30),
            allowed_hosts=allowed,
        )
        assert call == PresignedCall(
            url=url,
            cluster_id=CLUSTER,
            access_key_id=AKID,
            region=region,
            signed_at=when,
            expires_at=when + timedelta(minutes=15),
        )
        assert urlsplit(call.url).query == urlsplit(url).query

    def test_temporary_credentials(self) -> None:
        """A session token is kept, byte for byte, in the rebuilt URL."""
        url = presign(
            "https://sts.us-west-2.amazonaws.com",
            "us-west-2",
            access_key="ASIAIOSFODNN7EXAMPLE",
            session_token="FwoGZXIvYXdzE+/==xyz",
        )
        call = verify_token(
            tok(url),
            cluster_id=CLUSTER,
            now=signed_at(url),
            allowed_hosts=build_allowed_hosts(),
        )
        assert call.url == url
        assert "X-Amz-Security-Token=FwoGZXIvYXdzE%2B%2F%3D%3Dxyz" in call.url
        assert call.access_key_id == "ASIAIOSFODNN7EXAMPLE"

    def test_extra_endpoint(self, canary: LocalServer) -> None:
        """A loopback endpoint registered as extra passes with the server's region."""
        url = presign(canary.url, SERVER_REGION)
        call = verify_token(
            tok(url),
            cluster_id=CLUSTER,
            now=signed_at(url),
            allowed_hosts=allowed_for(canary),
        )
        assert call.url == url
        assert call.region == SERVER_REGION

    def test_ipv6_loopback_endpoint(self) -> None:
        """An http endpoint on [::1] matches exactly and is rebuilt in brackets."""
        allowed = build_allowed_hosts(
            "aws", ["http://[::1]:8080"], region=SERVER_REGION
        )
        url = build_url("[::1]:8080", SERVER_REGION, scheme="http")
        call = verify_token(
            tok(url), cluster_id=CLUSTER, now=NOW, allowed_hosts=allowed
        )
        assert call.url == url
        with pytest.raises(MalformedTokenError) as info:
            verify_token(
                tok(build_url("[::1]:8081", SERVER_REGION, scheme="http")),
                cluster_id=CLUSTER,
                now=NOW,
                allowed_hosts=allowed,
            )
        assert info.value.reason == "host_not_allowed"  # not allowed, not bad_scheme
        assert "endpoint http://[::1]:8081 is not allowed" in info.value.message

    def test_url_is_rebuilt_from_validated_parts(self, canary: LocalServer) -> None:
        """An upper-case scheme is normalised; the query stays byte-identical."""
        url = build_url(scheme="HTTPS")
        call = verify_token(
            tok(url), cluster_id=CLUSTER, now=NOW, allowed_hosts=allowed_for(canary)
        )
        assert call.url == "https://sts.us-west-2.amazonaws.com/?" + build_query()

    def test_parameter_names_match_case_insensitively(
        self, canary: LocalServer
    ) -> None:
        """Lower-case parameter names pass, as in the reference (STS decides)."""
        query = (
            build_query()
            .replace("Action=", "action=")
            .replace("X-Amz-Date", "x-amz-date")
        )
        call = verify_token(
            tok(f"https://sts.us-west-2.amazonaws.com/?{query}"),
            cluster_id=CLUSTER,
            now=NOW,
            allowed_hosts=allowed_for(canary),
        )
        assert call.url.endswith(query)

    def test_parameter_order_is_free(self, canary: LocalServer) -> None:
        """Parameters in another order (the Go SDK's) pass, the order kept."""
        parts = build_query().split("&")
        query = "&".join(reversed(parts))
        call = verify_token(
            tok(f"https://sts.us-west-2.amazonaws.com/?{query}"),
            cluster_id=CLUSTER,
            now=NOW,
            allowed_hosts=allowed_for(canary),
        )
        assert call.url.endswith("/?" + query)

    def test_reference_golden_token_shape(self) -> None:
        """The reference's golden Go SDK v2 token verifies at its signing time."""
        token = (
            "k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtd2VzdC0yLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZ"
            "XRDYWxsZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXU"
            "zQtSE1BQy1TSEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BU0lBUjJURzQ0VjZBUzNaWkU3QyUyR"
            "jIwMjMwNDI4JTJGdXMtd2VzdC0yJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9M"
            "jAyMzA0MjhUMDAwMDAwWiZYLUFtei1FeHBpcmVzPTYwJlgtQW16LVNpZ25lZEhlYWRlcnM9a"
            "G9zdCUzQngtazhzLWF3cy1pZCZYLUFtei1TaWduYXR1cmU9ZTIxMWRiYTc3YWJhOWRjNDRiM"
            "GI2YmUzOGI4ZWFhZDA5MjU5OWM1MTU3ZjYzMTQ0NDRjNWI5ZDg1NzQ3ZjVjZQ"
        )
        when = datetime(2023, 4, 28, tzinfo=UTC)
        call = verify_token(
            token,
            cluster_id="test-cluster",
            now=when,
            allowed_hosts=build_allowed_hosts(),
        )
        assert call.access_key_id == "ASIAR2TG44V6AS3ZZE7C"
        assert call.region == "us-west-2"
        assert call.url.startswith(
            "https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity&"
        )
