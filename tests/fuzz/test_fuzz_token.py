"""Fuzzing the offline verifier: only MalformedTokenError escapes, nothing is sent.

Inputs are random token strings, random bytes under the token prefix, decoded
URLs assembled from plausible and hostile parts, and mutations of a real
botocore-presigned URL (duplicate and case-variant parameters, extra
parameters, bad escapes, ``;``, other hosts, ports, user info, fragments,
schemes and paths, raw character edits). Each input goes through the path the
webhook takes: ``verify_token`` with every socket call refused, then, only
when it passes and targets the loopback canary (a registered extra STS
endpoint), the real ``STSClient``. Properties:

* ``verify_token`` raises nothing but :class:`MalformedTokenError`, with one of
  the documented reason codes, and opens no socket;
* a token it rejects never reaches the canary;
* a token it accepts satisfies an independent oracle (one of each allowed
  parameter, ignoring case; https STS host of the partition or the exact extra
  endpoint; path ``/``; no fragment, user info or port), and the request the
  canary receives carries the token's query byte for byte;
* mutations known to be fatal (a parameter twice, an unknown parameter, ``;``,
  a bad escape) are rejected with their own reason.
"""

from __future__ import annotations

import base64
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock
from urllib.parse import unquote_to_bytes, urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from authenticator.errors import MalformedTokenError, TokenError
from authenticator.hosts import AllowedHosts, build_allowed_hosts
from authenticator.presign import StaticCredentials, presign_get_caller_identity
from authenticator.sts import STSClient
from authenticator.token import TOKEN_PREFIX, decode_token, encode_token
from authenticator.verify import ALLOWED_PARAMETERS, REASONS, verify_token

NOW = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
SIGNED_AT = NOW - timedelta(minutes=1)
CLUSTER = "fuzz-cluster"
REGION = "us-west-2"
ACCOUNT = "111122223333"
# Bounded so the whole fuzz set runs in well under a minute on two cores.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
# The hosts a token signed for REGION may name (aws partition, docs/token-format.md).
AWS_HOSTS = frozenset(
    f"{prefix}.{REGION}.{domain}"
    for prefix in ("sts", "sts-fips")
    for domain in ("amazonaws.com", "api.aws")
)
# RFC 3986 characters plus a few that must be escaped, for random URL text.
URL_ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "-._~:/?#[]@!$&'()*+,;=% \"<>\\^`{|}\t\n\x00\x7f\u00e9\u2028"
)
# A '%' not followed by two hex digits.
BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
IDENTITY_BODY = (
    '{"GetCallerIdentityResponse":{"GetCallerIdentityResult":{'
    f'"Account":"{ACCOUNT}","Arn":"arn:aws:iam::{ACCOUNT}:user/fuzz",'
    '"UserId":"AIDAFUZZFUZZFUZZFUZZ"},'
    '"ResponseMetadata":{"RequestId":"1"}}}'
).encode()


# --------------------------------------------------------------------------- canary


@dataclass
class Canary:
    """A loopback STS stand-in that records every request it receives."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self) -> int:
        """How many requests arrived so far."""
        with self.lock:
            return len(self.requests)


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    """A recording loopback server, registered as the verifier's extra endpoint."""
    canary = Canary()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            with canary.lock:
                canary.requests.append((self.path, dict(self.headers.items())))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(IDENTITY_BODY)))
            self.end_headers()
            self.wfile.write(IDENTITY_BODY)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    canary.server = server
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        yield canary
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def allowed(canary: Canary) -> AllowedHosts:
    """The allow-list: partition aws plus the canary."""
    return build_allowed_hosts("aws", [canary.url], region=REGION)


@pytest.fixture(scope="module")
def sts_client() -> Iterator[STSClient]:
    """The real STS client, used only for tokens that pass the offline checks."""
    client = STSClient(timeout=2.0)
    yield client
    client.close()


# --------------------------------------------------------------------------- oracle


@contextmanager
def no_network() -> Iterator[list[str]]:
    """Refuse (and record) every socket connection and name lookup in the block."""
    attempts: list[str] = []

    def refuse(name: str) -> object:
        def call(*args: object, **kwargs: object) -> object:
            attempts.append(name)
            raise AssertionError(f"network call ({name}) during the offline checks")

        return call

    with (
        mock.patch.object(socket.socket, "connect", refuse("connect")),
        mock.patch.object(socket.socket, "connect_ex", refuse("connect_ex")),
        mock.patch.object(socket.socket, "sendto", refuse("sendto")),
        mock.patch.object(socket, "getaddrinfo", refuse("getaddrinfo")),
        mock.patch.object(socket, "create_connection", refuse("create_connection")),
    ):
        yield attempts


def strict_pairs(query: str) -> list[tuple[str, str]] | None:
    """Split ``name=value&...`` strictly; None when any piece is malformed."""
    pairs = []
    for piece in query.split("&"):
        name, eq, value = piece.partition("=")
        if not name or not eq:
            return None
        pairs.append((name, value))
    return pairs


def assert_acceptable(url: str, call_url: str, canary_netloc: str) -> None:
    """An accepted token's URL satisfies every rule, checked independently."""
    parts = urlsplit(url)
    assert parts.fragment == "" and "#" not in url
    assert parts.path == "/"
    assert "@" not in parts.netloc
    assert ";" not in parts.query
    host = parts.netloc
    if host == canary_netloc:
        assert parts.scheme.lower() == "http"
    else:
        assert parts.scheme.lower() == "https"
        assert host in AWS_HOSTS, host
    pairs = strict_pairs(parts.query)
    assert pairs is not None
    names = [name.lower() for name, _ in pairs]
    assert len(names) == len(set(names)), f"a parameter twice: {names}"
    assert set(names) <= set(ALLOWED_PARAMETERS), names
    for name, value in pairs:
        assert not BAD_ESCAPE_RE.search(name + value)
        unquote_to_bytes(value).decode("utf-8")  # raises on bad UTF-8
    values = {name.lower(): value for name, value in pairs}
    assert values["action"] == "GetCallerIdentity"
    assert values["version"] == "2011-06-15"
    assert values["x-amz-signedheaders"].lower() in ("host%3bx-k8s-aws-id",)
    # The call is rebuilt from the validated parts; the query stays byte-identical.
    assert call_url == f"{parts.scheme.lower()}://{host}/?{parts.query}"


@dataclass
class Outcome:
    """What the full path did with one token."""

    reason: str | None
    call_url: str | None = None


def full_path(
    token: str, allowed: AllowedHosts, canary: Canary, sts: STSClient
) -> Outcome:
    """verify_token offline, then (only if it passed) STS, as the webhook does."""
    before = canary.count()
    reason: str | None = None
    with no_network() as attempts:
        try:
            call = verify_token(
                token, cluster_id=CLUSTER, now=NOW, allowed_hosts=allowed
            )
        except MalformedTokenError as exc:
            assert exc.reason in REASONS, exc.reason
            call, reason = None, exc.reason
    assert attempts == [], "verify_token touched the network"
    if call is None:
        assert canary.count() == before, "a rejected token reached STS"
        return Outcome(reason=reason)
    assert call.url.startswith(("https://", "http://")), call.url
    if urlsplit(call.url).netloc == urlsplit(canary.url).netloc:
        try:
            sts.call_get_caller_identity(call)
        except TokenError as exc:  # pragma: no cover - the canary always answers
            pytest.fail(f"the canary's answer was refused: {exc.reason}")
        assert canary.count() == before + 1
        path, headers = canary.requests[-1]
        assert path == "/?" + urlsplit(call.url).query
        assert headers.get("x-k8s-aws-id") == CLUSTER
    return Outcome(reason=None, call_url=call.url)


# --------------------------------------------------------------------------- tokens


def presigned_url(endpoint: str | None, *, session_token: str | None = None) -> str:
    """A real presigned URL (botocore), signed a minute before NOW."""
    creds = StaticCredentials(
        access_key_id="AKIAFUZZFUZZFUZZFUZZ",
        secret_access_key="fuzz-secret",
        session_token=session_token,
    )
    return presign_get_caller_identity(
        credentials=creds,
        region=REGION,
        cluster_id=CLUSTER,
        now=SIGNED_AT,
        endpoint_url=endpoint,
    ).url


@dataclass
class URLParts:
    """A URL as editable pieces (the query as raw name/value text)."""

    scheme: str
    netloc: str
    path: str
    pairs: list[tuple[str, str]]
    fragment: str | None = None
    separators: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, url: str) -> URLParts:
        """Split a well-formed URL."""
        parts = urlsplit(url)
        pairs = strict_pairs(parts.query)
        assert pairs is not None
        return cls(parts.scheme, parts.netloc, parts.path, pairs)

    def render(self) -> str:
        """Reassemble the URL text."""
        seps = self.separators + ["&"] * len(self.pairs)
        query = ""
        for i, (name, value) in enumerate(self.pairs):
            query += (seps[i - 1] if i else "") + f"{name}={value}"
        url = f"{self.scheme}://{self.netloc}{self.path}?{query}"
        return url if self.fragment is None else f"{url}#{self.fragment}"


url_text = st.text(alphabet=URL_ALPHABET, max_size=40)
param_names = st.sampled_from(sorted(ALLOWED_PARAMETERS.values()))
HOSTS = [
    "sts.us-west-2.amazonaws.com",
    "STS.us-west-2.amazonaws.com",
    "sts.us-west-2.amazonaws.com.",
    "sts.amazonaws.com",
    "sts.us-east-1.amazonaws.com",
    "sts-fips.us-west-2.amazonaws.com",
    "sts.us-west-2.api.aws",
    "sts.cn-north-1.amazonaws.com.cn",
    "sts.us-gov-west-1.amazonaws.com",
    "sts.us-west-2.amazonaws.com.evil.example",
    "evil.example",
    "sts.us-west-2.amazonaws.com:443",
    "sts.us-west-2.amazonaws.com:",
    "user@sts.us-west-2.amazonaws.com",
    "sts.us-west-2.amazonaws.com@evil.example",
    "sts.us-west-2.amazonaws.com%2F@evil.example",
    "%73ts.us-west-2.amazonaws.com",
    "127.0.0.1",
    "localhost",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "0x7f.0.0.1",
    "",
]


@st.composite
def mutated_urls(draw: st.DrawFn, canary_netloc: str) -> str:
    """A real presigned URL (regional host or the canary) with 1-4 edits."""
    base = draw(st.sampled_from(["aws", "canary", "aws-session"]))
    endpoint = None if base != "canary" else f"http://{canary_netloc}"
    token = "tok/en+=" if base == "aws-session" else None
    parts = URLParts.of(presigned_url(endpoint, session_token=token))
    hosts = [*HOSTS, canary_netloc, canary_netloc.replace("127.0.0.1", "localhost")]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(
            st.sampled_from(
                [
                    "duplicate",
                    "case_duplicate",
                    "extra",
                    "drop",
                    "value",
                    "bad_escape",
                    "semicolon",
                    "rename_case",
                    "shuffle",
                    "host",
                    "scheme",
                    "path",
                    "fragment",
                    "empty_piece",
                ]
            )
        )
        i = draw(st.integers(0, len(parts.pairs) - 1)) if parts.pairs else 0
        if op in ("duplicate", "case_duplicate") and parts.pairs:
            name, value = parts.pairs[i]
            if op == "case_duplicate":
                name = draw(
                    st.sampled_from([name.upper(), name.lower(), name.swapcase()])
                )
            value = draw(st.sampled_from([value, value + "x", ""]))
            parts.pairs.insert(draw(st.integers(0, len(parts.pairs))), (name, value))
        elif op == "extra":
            name = draw(
                st.sampled_from(
                    ["X-Amz-Foo", "Action2", "x-k8s-aws-id", "DurationSeconds"]
                )
                | st.text(alphabet="abcXYZ-_.~019", min_size=1, max_size=12)
            )
            parts.pairs.append((name, draw(url_text.filter(lambda v: "&" not in v))))
        elif op == "drop" and parts.pairs:
            parts.pairs.pop(i)
        elif op == "value" and parts.pairs:
            parts.pairs[i] = (parts.pairs[i][0], draw(url_text))
        elif op == "bad_escape" and parts.pairs:
            name, value = parts.pairs[i]
            bad = draw(st.sampled_from(["%", "%G1", "%2", "%%", "%zz", "%e9"]))
            where = draw(st.integers(0, len(value)))
            parts.pairs[i] = (name, value[:where] + bad + value[where:])
        elif op == "semicolon" and len(parts.pairs) > 1:
            parts.separators = [";" if j == i else "&" for j in range(len(parts.pairs))]
        elif op == "rename_case" and parts.pairs:
            name, value = parts.pairs[i]
            parts.pairs[i] = (name.swapcase(), value)
        elif op == "shuffle":
            parts.pairs = draw(st.permutations(parts.pairs))
        elif op == "host":
            parts.netloc = draw(st.sampled_from(hosts) | url_text)
        elif op == "scheme":
            parts.scheme = draw(st.sampled_from(["http", "HTTPS", "ftp", "", "https:"]))
        elif op == "path":
            parts.path = draw(st.sampled_from(["", "//", "/a", "/%2F", "/.", "/?"]))
        elif op == "fragment":
            parts.fragment = draw(url_text)
        elif op == "empty_piece":
            parts.pairs.insert(i, ("", ""))
    return parts.render()


def token_for(url: str) -> str:
    """The token of a URL; URL text that is not UTF-8-encodable is escaped first."""
    return encode_token(url.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))


# --------------------------------------------------------------------------- tests


class TestPositiveControls:
    """The oracle and the canary see real traffic for real tokens."""

    def test_real_token_reaches_the_canary(
        self, allowed: AllowedHosts, canary: Canary, sts_client: STSClient
    ) -> None:
        """A presigned token for the canary passes and its query arrives unchanged."""
        url = presigned_url(canary.url)
        outcome = full_path(token_for(url), allowed, canary, sts_client)
        assert outcome.reason is None
        assert outcome.call_url is not None
        assert_acceptable(url, outcome.call_url, urlsplit(canary.url).netloc)

    def test_real_aws_token_passes_offline(
        self, allowed: AllowedHosts, canary: Canary, sts_client: STSClient
    ) -> None:
        """A presigned token for the regional host passes without any network use."""
        url = presigned_url(None, session_token="tok/en+=")
        outcome = full_path(token_for(url), allowed, canary, sts_client)
        assert outcome.call_url == url


class TestRandomTokens:
    """Arbitrary strings: only MalformedTokenError, and nothing sent."""

    @FUZZ
    @given(token=st.text(max_size=300))
    @example(token="")
    @example(token=TOKEN_PREFIX)
    @example(token=TOKEN_PREFIX + "=")
    @example(token=TOKEN_PREFIX + "a")
    @example(token="K8S-AWS-V1." + "aHR0cHM6Ly8")
    @example(token=TOKEN_PREFIX + "A" * 5000)
    @example(token=TOKEN_PREFIX + "\udcff")
    def test_any_text(
        self, token: str, allowed: AllowedHosts, canary: Canary, sts_client: STSClient
    ) -> None:
        """Random text is rejected offline with a documented reason."""
        outcome = full_path(token, allowed, canary, sts_client)
        assert outcome.reason is not None

    @FUZZ
    @given(raw=st.binary(max_size=400), pad=st.sampled_from(["", "=", "==", "\n"]))
    def test_any_bytes_under_the_prefix(
        self,
        raw: bytes,
        pad: str,
        allowed: AllowedHosts,
        canary: Canary,
        sts_client: STSClient,
    ) -> None:
        """Random bytes, base64url-encoded (stray padding too), are rejected offline."""
        body = base64.urlsafe_b64encode(raw).decode().rstrip("=") + pad
        outcome = full_path(TOKEN_PREFIX + body, allowed, canary, sts_client)
        assert outcome.reason is not None
        if pad:
            assert outcome.reason == "bad_base64"

    @FUZZ
    @given(data=st.data())
    def test_edited_token_text(
        self,
        data: st.DataObject,
        allowed: AllowedHosts,
        canary: Canary,
        sts_client: STSClient,
    ) -> None:
        """A real token with characters replaced, inserted or cut stays contained."""
        token = token_for(presigned_url(canary.url))
        i = data.draw(st.integers(0, len(token)))
        j = data.draw(st.integers(i, min(len(token), i + 8)))
        insert = data.draw(st.text(alphabet="A-_=+/.%aZ09 \x00", max_size=4))
        edited = token[:i] + insert + token[j:]
        outcome = full_path(edited, allowed, canary, sts_client)
        if outcome.call_url is not None:
            url = decode_token(edited)
            assert_acceptable(url, outcome.call_url, urlsplit(canary.url).netloc)


class TestDecodedURLs:
    """URLs built from hostile parts, encoded as tokens."""

    @FUZZ
    @given(
        scheme=st.sampled_from(["https", "http", "HTTPS", "ftp", "", "javascript"]),
        host=st.sampled_from(HOSTS) | url_text,
        path=st.sampled_from(["/", "", "//", "/x", "/%2e"]) | url_text,
        pairs=st.lists(
            st.tuples(param_names | url_text, url_text), min_size=0, max_size=12
        ),
        tail=st.sampled_from(["", "#", "#x", "&", ";", "&&"]),
    )
    def test_assembled_urls(
        self,
        scheme: str,
        host: str,
        path: str,
        pairs: list[tuple[str, str]],
        tail: str,
        allowed: AllowedHosts,
        canary: Canary,
        sts_client: STSClient,
    ) -> None:
        """No combination of parts escapes as anything but MalformedTokenError."""
        query = "&".join(f"{n}={v}" for n, v in pairs)
        url = f"{scheme}://{host}{path}?{query}{tail}"
        outcome = full_path(token_for(url), allowed, canary, sts_client)
        if outcome.call_url is not None:
            assert_acceptable(url, outcome.call_url, urlsplit(canary.url).netloc)


class TestMutatedPresignedURLs:
    """Mutations of a real presigned URL (the CVE-2022-2385 family and friends)."""

    @FUZZ
    @given(data=st.data())
    def test_mutations(
        self,
        data: st.DataObject,
        allowed: AllowedHosts,
        canary: Canary,
        sts_client: STSClient,
    ) -> None:
        """A mutated URL is either rejected offline or satisfies every rule."""
        netloc = urlsplit(canary.url).netloc
        url = data.draw(mutated_urls(netloc))
        outcome = full_path(token_for(url), allowed, canary, sts_client)
        if outcome.call_url is not None:
            assert_acceptable(url, outcome.call_url, netloc)

    @pytest.mark.parametrize("base", ["aws", "canary"])
    @pytest.mark.parametrize(
        "name",
        ["Action", "action", "ACTION", "X-Amz-Credential", "x-amz-signedheaders"],
    )
    def test_duplicate_parameter_is_rejected(
        self,
        base: str,
        name: str,
        allowed: AllowedHosts,
        canary: Canary,
        sts_client: STSClient,
    ) -> None:
        """A parameter given twice, in any case, is rejected (CVE-2022-2385)."""
        parts = URLParts.of(presigned_url(canary.url if base == "canary" else None))
        original = next(v for n, v in parts.pairs if n.lower() == name.lower())
        parts.pairs.append((name, original))
        outcome = full_path(token_for(parts.render()), allowed, canary, sts_client)
        assert outcome.reason == "duplicate_parameter"

    @pytest.mark.parametrize(
        ("edit", "reason"),
        [
            (lambda q: q + "&X-Amz-Foo=1", "unknown_parameter"),
            (lambda q: q.replace("&Version", ";Version", 1), "bad_query"),
            (lambda q: q + "&X-Amz-Security-Token=%G1", "bad_query"),
            (lambda q: q.replace("Action", "Act%69on", 1), "bad_query"),
            (lambda q: q + "&", "bad_query"),
        ],
    )
    def test_fatal_query_edits(
        self,
        edit: object,
        reason: str,
        allowed: AllowedHosts,
        canary: Canary,
        sts_client: STSClient,
    ) -> None:
        """Each fatal query edit is rejected with its own reason and sends nothing."""
        assert callable(edit)
        url = presigned_url(canary.url)
        base, _, query = url.partition("?")
        edited = f"{base}?{edit(query)}"
        outcome = full_path(token_for(edited), allowed, canary, sts_client)
        assert outcome.reason == reason
