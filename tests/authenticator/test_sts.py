"""The STS call against real local HTTP servers, and the strict answer parser."""

from __future__ import annotations

import json
import socket
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest

from authenticator.errors import (
    STSRejectedError,
    STSThrottledError,
    STSUnavailableError,
    TokenError,
)
from authenticator.hosts import build_allowed_hosts
from authenticator.identity import Identity
from authenticator.sts import STS_REASONS, STSClient, parse_get_caller_identity
from authenticator.verify import PresignedCall, verify_token
from tests.fixtures.verifier import (
    CLUSTER,
    SERVER_REGION,
    USER,
    LocalServer,
    call_for,
    json_body,
    presign,
    reply,
    signed_at,
    tok,
)

ACCT = "111122223333"
NS = "https://sts.amazonaws.com/doc/2011-06-15/"
KEY = "AKIAIOSFODNN7EXAMPLE"
SESSION = (
    f"arn:aws:sts::{ACCT}:assumed-role/Deploy/alice@example.com",
    "AROAEXAMPLEROLEID0001:alice@example.com",
    ACCT,
)
ROOT = (f"arn:aws:iam::{ACCT}:root", ACCT, ACCT)
FEDERATED = (f"arn:aws:sts::{ACCT}:federated-user/Bob", f"{ACCT}:Bob", ACCT)


def xml_body(
    arn: str, user_id: str, account: str, *, ns: str = NS, extra: str = ""
) -> bytes:
    """A GetCallerIdentity answer in XML (the query-protocol default)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<GetCallerIdentityResponse xmlns="{ns}">\n'
        "  <GetCallerIdentityResult>\n"
        f"    <Arn>{arn}</Arn>\n"
        f"    <UserId>{user_id}</UserId>\n"
        f"    <Account>{account}</Account>{extra}\n"
        "  </GetCallerIdentityResult>\n"
        "  <ResponseMetadata>\n"
        "    <RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId>\n"
        "  </ResponseMetadata>\n"
        "</GetCallerIdentityResponse>\n"
    ).encode()


@pytest.fixture
def server(local_sts: LocalServer) -> LocalServer:
    """A fresh local STS stand-in per test."""
    return local_sts


def run(
    call: PresignedCall, *, timeout: float = 2.0, max_body_bytes: int = 65536
) -> Identity:
    """One STS call through a fresh client."""
    client = STSClient(timeout=timeout, max_body_bytes=max_body_bytes)
    try:
        return client.call_get_caller_identity(call)
    finally:
        client.close()


class TestRequest:
    """What goes on the wire."""

    def test_exact_request(self, server: LocalServer) -> None:
        """GET, path and query byte-identical, exactly Host, x-k8s-aws-id and Accept."""
        server.respond = reply(200, json_body(*USER))
        url = presign(server.url, SERVER_REGION)
        identity = run(call_for(server, url))
        assert identity.arn == USER[0]
        [request] = server.requests
        assert request.method == "GET"
        assert request.target == "/?" + urlsplit(url).query
        assert sorted(request.headers) == sorted(
            [
                ("Host", server.netloc),
                ("x-k8s-aws-id", CLUSTER),
                ("Accept", "application/json"),
            ]
        )

    def test_cookies_are_never_sent_back(self, server: LocalServer) -> None:
        """A Set-Cookie from STS does not add a Cookie header to later calls."""
        server.respond = reply(
            200, json_body(*USER), headers=(("Set-Cookie", "session=abc; Path=/"),)
        )
        call = call_for(server)
        client = STSClient(timeout=2.0)
        try:
            client.call_get_caller_identity(call)
            client.call_get_caller_identity(call)
        finally:
            client.close()
        assert [name for name, _ in server.requests[1].headers] == [
            name for name, _ in server.requests[0].headers
        ]
        assert all(name.lower() != "cookie" for name, _ in server.requests[1].headers)

    def test_connections_are_pooled(self, server: LocalServer) -> None:
        """Two calls through one client reuse one connection."""
        server.respond = reply(200, json_body(*USER))
        call = call_for(server)
        client = STSClient(timeout=2.0)
        try:
            client.call_get_caller_identity(call)
            client.call_get_caller_identity(call)
        finally:
            client.close()
        assert len(server.requests) == 2
        assert server.requests[0].client_port == server.requests[1].client_port

    def test_observe_reports_status(self, server: LocalServer) -> None:
        """observe() receives one code per request."""
        seen: list[str] = []
        server.respond = reply(403, b"denied")
        client = STSClient(timeout=2.0, observe=seen.append)
        try:
            with pytest.raises(STSRejectedError):
                client.call_get_caller_identity(call_for(server))
            server.respond = reply(200, json_body(*USER))
            client.call_get_caller_identity(call_for(server))
        finally:
            client.close()
        assert seen == ["403", "200"]


class TestOutcomes:
    """Each STS answer maps to rejection, throttling or unavailability."""

    @pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
    def test_redirect_is_rejected_and_never_followed(
        self, status: int, server: LocalServer
    ) -> None:
        """A 3xx is a rejection; the Location target receives nothing."""
        target = LocalServer(respond=reply(200, json_body(*USER))).start()
        try:
            server.respond = reply(
                status, b"", headers=(("Location", target.url + "/?x=1"),)
            )
            with pytest.raises(STSRejectedError) as info:
                run(call_for(server))
            assert info.value.reason == "sts_redirect"
            assert target.requests == []
            assert len(server.requests) == 1
        finally:
            target.close()

    def test_403_is_rejected(self, server: LocalServer) -> None:
        """A 403 SignatureDoesNotMatch (wrong cluster ID): a rejection with its code."""
        body = (
            b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            b"<Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The "
            b"request signature we calculated does not match</Message></Error>"
            b"</ErrorResponse>"
        )
        server.respond = reply(403, body, "text/xml")
        with pytest.raises(STSRejectedError) as info:
            run(call_for(server))
        assert info.value.reason == "sts_rejected"
        assert "403 SignatureDoesNotMatch" in info.value.message

    @pytest.mark.parametrize(
        ("status", "body"),
        [
            (
                400,
                b'{"Error":{"Code":"Throttling","Message":"Rate exceeded"}}',
            ),
            (
                400,
                b"<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>",
            ),
            (429, b""),
            (503, b"<Error><Code>Throttling</Code></Error>"),
        ],
    )
    def test_throttling(self, status: int, body: bytes, server: LocalServer) -> None:
        """429, or a non-200 body mentioning Throttling, is its own outcome."""
        server.respond = reply(status, body)
        with pytest.raises(STSThrottledError) as info:
            run(call_for(server))
        assert info.value.reason == "sts_throttled"

    @pytest.mark.parametrize("status", [500, 502, 503, 504])
    def test_server_errors_mean_unavailable(
        self, status: int, server: LocalServer
    ) -> None:
        """5xx means STS is unavailable."""
        server.respond = reply(status, b'{"Error":{"Code":"InternalFailure"}}')
        with pytest.raises(STSUnavailableError) as info:
            run(call_for(server))
        assert info.value.reason == "sts_server_error"

    @pytest.mark.parametrize("status", [201, 204, 206])
    def test_other_statuses_are_rejected(
        self, status: int, server: LocalServer
    ) -> None:
        """Any other status is a rejection, never an identity."""
        server.respond = reply(status, b"" if status == 204 else json_body(*USER))
        with pytest.raises(STSRejectedError) as info:
            run(call_for(server))
        assert info.value.reason == "sts_bad_status"

    def test_connection_refused(self) -> None:
        """Nothing listening: unavailable, observed as "error"."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        url = f"http://127.0.0.1:{port}"
        presigned = presign(url, SERVER_REGION)
        allowed = build_allowed_hosts("aws", [url], region=SERVER_REGION)
        call = verify_token(
            tok(presigned),
            cluster_id=CLUSTER,
            now=signed_at(presigned),
            allowed_hosts=allowed,
        )
        seen: list[str] = []
        client = STSClient(timeout=1.0, observe=seen.append)
        with pytest.raises(STSUnavailableError) as info:
            client.call_get_caller_identity(call)
        client.close()
        assert info.value.reason == "sts_unreachable"
        assert seen == ["error"]

    def test_hanging_server_times_out(self, server: LocalServer) -> None:
        """No answer within the timeout: unavailable, observed as "timeout"."""

        def hang(handler: BaseHTTPRequestHandler) -> None:
            server.stop.wait(10)

        server.respond = hang
        seen: list[str] = []
        client = STSClient(timeout=0.5, observe=seen.append)
        start = time.monotonic()
        with pytest.raises(STSUnavailableError) as info:
            client.call_get_caller_identity(call_for(server))
        client.close()
        assert time.monotonic() - start < 2.0
        assert info.value.reason == "sts_timeout"
        assert seen == ["timeout"]

    def test_slow_body_hits_the_whole_call_deadline(self, server: LocalServer) -> None:
        """A body dripped slower than the deadline is a timeout, not a hang."""

        def drip(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", "1000")
            handler.end_headers()
            for _ in range(1000):
                if server.stop.wait(0.1):
                    return
                try:
                    handler.wfile.write(b" ")
                    handler.wfile.flush()
                except OSError:
                    return

        server.respond = drip
        start = time.monotonic()
        with pytest.raises(STSUnavailableError) as info:
            run(call_for(server), timeout=0.5)
        assert time.monotonic() - start < 2.0
        assert info.value.reason == "sts_timeout"

    def test_huge_body_is_rejected_without_reading_it(
        self, server: LocalServer
    ) -> None:
        """A body over the cap is rejected after cap + 1 bytes; the rest is unread."""
        total = 64 * 1024 * 1024
        sent: list[int] = []

        def huge(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(total))
            handler.end_headers()
            chunk = b" " * 65536
            written = 0
            try:
                while written < total:
                    handler.wfile.write(chunk)
                    written += len(chunk)
            except OSError:
                pass
            sent.append(written)

        server.respond = huge
        start = time.monotonic()
        with pytest.raises(STSRejectedError) as info:
            run(call_for(server), max_body_bytes=4096)
        assert info.value.reason == "sts_body_too_large"
        assert time.monotonic() - start < 2.0
        deadline = time.monotonic() + 5
        while not sent and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sent and sent[0] < total

    def test_body_cap_boundary(self, server: LocalServer) -> None:
        """A body of exactly the cap parses; one byte more is rejected."""
        body = json_body(*USER)
        server.respond = reply(200, body)
        assert run(call_for(server), max_body_bytes=len(body)).arn == USER[0]
        with pytest.raises(STSRejectedError) as info:
            run(call_for(server), max_body_bytes=len(body) - 1)
        assert info.value.reason == "sts_body_too_large"

    def test_chunked_answer(self, server: LocalServer) -> None:
        """A chunked answer (no Content-Length) is read and parsed."""
        body = xml_body(*SESSION)

        def chunked(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/xml")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for start in range(0, len(body), 100):
                piece = body[start : start + 100]
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            handler.wfile.write(b"0\r\n\r\n")

        server.respond = chunked
        assert run(call_for(server)).session_name == "alice@example.com"

    def test_content_encoding_is_rejected(self, server: LocalServer) -> None:
        """A compressed answer (never requested) is not decoded."""
        server.respond = reply(
            200, json_body(*USER), headers=(("Content-Encoding", "gzip"),)
        )
        with pytest.raises(STSRejectedError) as info:
            run(call_for(server))
        assert info.value.reason == "sts_bad_body"

    def test_answer_that_is_not_get_caller_identity(self, server: LocalServer) -> None:
        """A 200 with another document (moto's S3 ListBuckets) is a rejection."""
        body = (
            b'<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01">'
            b"<Owner><ID>bcaf1ffd86f41161ca5fb16fd081034f</ID></Owner><Buckets/>"
            b"</ListAllMyBucketsResult>"
        )
        server.respond = reply(200, body, "text/xml")
        with pytest.raises(STSRejectedError) as info:
            run(call_for(server))
        assert info.value.reason == "sts_bad_body"


class TestIdentities:
    """Good answers, JSON and XML, over a real server and parsed directly."""

    @pytest.mark.parametrize("fmt", ["json", "xml"])
    @pytest.mark.parametrize(
        ("answer", "expected"),
        [
            (USER, (USER[0], USER[0], ACCT, "AIDAEXAMPLEUSERID0001", "")),
            (
                SESSION,
                (
                    SESSION[0],
                    f"arn:aws:iam::{ACCT}:role/Deploy",
                    ACCT,
                    "AROAEXAMPLEROLEID0001",
                    "alice@example.com",
                ),
            ),
            (ROOT, (ROOT[0], ROOT[0], ACCT, ACCT, "")),
            (FEDERATED, (FEDERATED[0], FEDERATED[0], ACCT, f"{ACCT}:Bob", "")),
        ],
    )
    def test_over_http(
        self,
        fmt: str,
        answer: tuple[str, str, str],
        expected: tuple[str, ...],
        server: LocalServer,
    ) -> None:
        """Each identity kind comes out with the documented fields."""
        if fmt == "json":
            server.respond = reply(200, json_body(*answer), "application/json")
        else:
            server.respond = reply(200, xml_body(*answer), "text/xml")
        identity = run(call_for(server))
        arn, canonical, account, user_id, session = expected
        assert identity == Identity(arn, canonical, account, user_id, session, KEY)

    def test_federated_uid_differs_from_root(self) -> None:
        """A federated user's userId is not the account ID (commit 9fa86f7d)."""
        fed = parse_get_caller_identity(
            json_body(*FEDERATED), content_type="application/json", access_key_id=KEY
        )
        root = parse_get_caller_identity(
            json_body(*ROOT), content_type="application/json", access_key_id=KEY
        )
        assert fed.user_id != root.user_id

    @pytest.mark.parametrize(
        ("content_type", "body"),
        [
            ("application/json; charset=utf-8", json_body(*USER)),
            ("application/x-amz-json-1.1", json_body(*USER)),
            ("text/xml;charset=UTF-8", xml_body(*USER)),
            ("application/xml", xml_body(*USER)),
            ("", json_body(*USER)),
            ("", xml_body(*USER)),
        ],
    )
    def test_content_types(self, content_type: str, body: bytes) -> None:
        """JSON and XML media types parse; an absent type is sniffed."""
        identity = parse_get_caller_identity(
            body, content_type=content_type, access_key_id=KEY
        )
        assert identity.arn == USER[0]

    def test_prefixed_xml_namespace(self) -> None:
        """A namespace prefix instead of a default namespace is the same document."""
        body = xml_body(*USER).replace(b"<", b"<s:").replace(b"<s:/", b"</s:")
        body = body.replace(b"<s:?xml", b"<?xml").replace(b' xmlns="', b' xmlns:s="')
        identity = parse_get_caller_identity(
            body, content_type="text/xml", access_key_id=KEY
        )
        assert identity.account_id == ACCT

    def test_json_without_response_metadata(self) -> None:
        """ResponseMetadata is optional."""
        body = json.dumps(
            {
                "GetCallerIdentityResponse": {
                    "GetCallerIdentityResult": {
                        "Account": ACCT,
                        "Arn": USER[0],
                        "UserId": USER[1],
                    }
                }
            }
        ).encode()
        assert (
            parse_get_caller_identity(
                body, content_type="application/json", access_key_id=KEY
            ).user_id
            == USER[1]
        )


def _json(doc: object) -> bytes:
    return json.dumps(doc).encode()


_RESULT = {"Account": ACCT, "Arn": USER[0], "UserId": USER[1]}
_META = {"RequestId": "r"}

BAD_JSON = [
    ("sts_bad_body", b""),
    ("sts_bad_body", b"xxxx"),
    ("sts_bad_body", b"\xff\xfe{}"),
    ("sts_bad_body", b"[]"),
    ("sts_bad_body", b"null"),
    ("sts_bad_body", _json({"UserId": USER[1], "Account": ACCT, "Arn": USER[0]})),
    ("sts_bad_body", _json({"GetCallerIdentityResponse": {}})),
    (
        "sts_bad_body",
        _json({"GetCallerIdentityResponse": {"GetCallerIdentityResult": {}}}),
    ),
    (
        "sts_bad_body",
        _json(
            {
                "GetCallerIdentityResponse": {
                    "GetCallerIdentityResult": {"Account": ACCT, "Arn": USER[0]}
                }
            }
        ),
    ),
    (
        "sts_bad_body",
        _json(
            {
                "GetCallerIdentityResponse": {
                    "GetCallerIdentityResult": {**_RESULT, "Account": 111122223333}
                }
            }
        ),
    ),
    (
        "sts_bad_body",
        _json(
            {
                "GetCallerIdentityResponse": {
                    "GetCallerIdentityResult": {**_RESULT, "Arn": ""}
                }
            }
        ),
    ),
    (
        "sts_bad_body",
        _json(
            {
                "GetCallerIdentityResponse": {
                    "GetCallerIdentityResult": {**_RESULT, "Arn": [USER[0]]}
                }
            }
        ),
    ),
    (
        "sts_bad_body",
        _json(
            {
                "GetCallerIdentityResponse": {
                    "GetCallerIdentityResult": _RESULT,
                    "ResponseMetadata": _META,
                },
                "Other": {},
            }
        ),
    ),
    (
        "sts_bad_body",
        _json(
            {
                "GetCallerIdentityResponse": {
                    "GetCallerIdentityResult": _RESULT,
                    "Extra": {},
                }
            }
        ),
    ),
    ("sts_bad_body", _json({"AssumeRoleResponse": {"AssumeRoleResult": _RESULT}})),
    # duplicate keys: the last would win in a lenient parser
    (
        "sts_bad_body",
        (
            b'{"GetCallerIdentityResponse": {"GetCallerIdentityResult": '
            b'{"Account": "111122223333",'
            b' "Arn": "arn:aws:iam::111122223333:user/alice", "UserId": "AIDAX",'
            b' "Arn": "arn:aws:iam::111122223333:user/admin"}}}'
        ),
    ),
    (
        "sts_bad_body",
        (
            b'{"GetCallerIdentityResponse": {"GetCallerIdentityResult": '
            b'{"Account": "111122223333",'
            b' "Arn": "arn:aws:iam::111122223333:user/alice", "UserId": "AIDAX"}},'
            b' "GetCallerIdentityResponse": {}}'
        ),
    ),
    ("sts_bad_body", b'{"GetCallerIdentityResponse": NaN}'),
    # identity shape
    ("sts_bad_identity", json_body("arn", "1000", "userid")),
    ("sts_bad_identity", json_body(USER[0], USER[1], "999999999999")),
    ("sts_bad_identity", json_body(USER[0], USER[1], "11112222333")),
    ("sts_bad_identity", json_body(f"arn:aws:iam::{ACCT}:group/g", USER[1], ACCT)),
    (
        "sts_bad_identity",
        json_body(f"arn:aws:iam::{ACCT}:role/Alice", "not:vailid:userid", ACCT),
    ),
    ("sts_bad_identity", json_body(SESSION[0], "AROAEXAMPLEROLEID0001", ACCT)),
    ("sts_bad_identity", json_body(SESSION[0], "AROAEXAMPLE:a:b", ACCT)),
    ("sts_bad_identity", json_body(SESSION[0], ":alice", ACCT)),
    ("sts_bad_identity", json_body(SESSION[0], "AROAEXAMPLE:", ACCT)),
    ("sts_bad_identity", json_body(USER[0], "AIDA:session", ACCT)),
    ("sts_bad_identity", json_body(USER[0], "AIDA EXAMPLE", ACCT)),
    ("sts_bad_identity", json_body(ROOT[0], "AIDAEXAMPLE", ACCT)),
    ("sts_bad_identity", json_body(FEDERATED[0], "Bob", ACCT)),
    ("sts_bad_identity", json_body(FEDERATED[0], "999999999999:Bob", ACCT)),
]

BAD_XML = [
    ("sts_bad_body", b"<notxml"),
    ("sts_bad_body", xml_body(*USER, ns="https://sts.amazonaws.com/doc/2011-06-16/")),
    ("sts_bad_body", xml_body(*USER, ns="")),
    (
        "sts_bad_body",
        xml_body(*USER, extra="<Arn>arn:aws:iam::111122223333:user/admin</Arn>"),
    ),
    ("sts_bad_body", xml_body(*USER).replace(b"<Account>111122223333</Account>", b"")),
    (
        "sts_bad_body",
        xml_body(*USER).replace(
            b"<UserId>AIDAEXAMPLEUSERID0001</UserId>", b"<UserId></UserId>"
        ),
    ),
    ("sts_bad_body", xml_body(*USER).replace(b"<Arn>", b'<Arn kind="x">')),
    ("sts_bad_body", xml_body(*USER).replace(b"<Arn>", b"<Arn><!-- c -->")),
    ("sts_bad_body", xml_body(*USER).replace(b"<Arn>", b"<Arn><?pi x?>")),
    ("sts_bad_body", xml_body(*USER).replace(b"<Arn>arn", b"<Arn><![CDATA[arn]]>")),
    (
        "sts_bad_body",
        xml_body(*USER).replace(
            b"<Arn>arn:aws:iam::111122223333:user/alice</Arn>", b"<Arn><X>arn</X></Arn>"
        ),
    ),
    (
        "sts_bad_body",
        xml_body(*USER).replace(
            b"</GetCallerIdentityResult>",
            b"</GetCallerIdentityResult><GetCallerIdentityResult/>",
        ),
    ),
    (
        "sts_bad_body",
        xml_body(*USER).replace(
            b"<GetCallerIdentityResult>", b"<GetCallerIdentityResult>text"
        ),
    ),
    (
        "sts_bad_body",
        (
            b'<?xml version="1.0"?>\n'
            b'<!DOCTYPE r [<!ENTITY a "arn:aws:iam::111122223333:user/x">]>\n'
            + xml_body(*USER)
            .split(b"\n", 1)[1]
            .replace(b"arn:aws:iam::111122223333:user/alice", b"&a;")
        ),
    ),
    (
        "sts_bad_body",
        (
            b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            b"<lolz>&lol2;</lolz>"
        ),
    ),
    (
        "sts_bad_body",
        (
            b'<?xml version="1.0"?>\n<!DOCTYPE r SYSTEM "http://127.0.0.1:1/evil.dtd">\n'
            + xml_body(*USER).split(b"\n", 1)[1]
        ),
    ),
    (
        "sts_bad_body",
        xml_body(*USER)
        .replace(b"alice</Arn>", b"&amp;alice</Arn>")
        .replace(b"<Arn>", b"<Arn>&unknown;"),
    ),
    ("sts_bad_body", xml_body(*USER) + b"<Second/>"),
    (
        "sts_bad_body",
        xml_body(*USER).decode().replace("UTF-8", "UTF-16").encode("utf-16"),
    ),
    (
        "sts_bad_body",
        xml_body(*USER).replace(b"GetCallerIdentityResponse", b"AssumeRoleResponse"),
    ),
    ("sts_bad_identity", xml_body(USER[0], USER[1], "222233334444")),
    ("sts_bad_identity", xml_body("arn:aws:s3:::bucket", USER[1], ACCT)),
]


class TestStrictParsing:
    """Anything but exactly one well-formed result is rejected."""

    def test_fields_sts_may_add_are_ignored(self) -> None:
        """Unknown result/metadata fields (an additive API change) don't refuse.

        The three fields read are still checked: a repeated known element or a
        non-string value rejects (see BAD_JSON / BAD_XML).
        """
        bodies = [
            (
                "application/json",
                _json(
                    {
                        "GetCallerIdentityResponse": {
                            "GetCallerIdentityResult": {**_RESULT, "Extra": [1]},
                            "ResponseMetadata": {**_META, "X": "y"},
                        }
                    }
                ),
            ),
            ("text/xml", xml_body(*USER, extra="<Extra>x</Extra>")),
        ]
        for content_type, body in bodies:
            identity = parse_get_caller_identity(
                body, content_type=content_type, access_key_id=KEY
            )
            assert identity.arn == USER[0]

    @pytest.mark.parametrize(("reason", "body"), BAD_JSON)
    def test_bad_json(self, reason: str, body: bytes) -> None:
        """Malformed, ambiguous or foreign JSON answers are rejected."""
        with pytest.raises(STSRejectedError) as info:
            parse_get_caller_identity(
                body, content_type="application/json", access_key_id=KEY
            )
        assert info.value.reason == reason

    @pytest.mark.parametrize(("reason", "body"), BAD_XML)
    def test_bad_xml(self, reason: str, body: bytes) -> None:
        """DTDs, entities, wrong namespaces and extra elements are rejected."""
        with pytest.raises(STSRejectedError) as info:
            parse_get_caller_identity(body, content_type="text/xml", access_key_id=KEY)
        assert info.value.reason == reason

    @pytest.mark.parametrize(
        "content_type", ["text/html", "text/plain", "application/octet-stream"]
    )
    def test_other_content_types(self, content_type: str) -> None:
        """Only JSON and XML media types are parsed."""
        with pytest.raises(STSRejectedError) as info:
            parse_get_caller_identity(
                json_body(*USER), content_type=content_type, access_key_id=KEY
            )
        assert info.value.reason == "sts_bad_body"

    def test_bad_body_over_http(self, server: LocalServer) -> None:
        """A 200 with a non-result body over the wire is a rejection."""
        server.respond = reply(200, b'{"GetCallerIdentityResponse": {"Nope": true}}')
        with pytest.raises(STSRejectedError) as info:
            run(call_for(server))
        assert info.value.reason == "sts_bad_body"

    def test_reasons_are_listed(self) -> None:
        """Every reason raised in this module's tests is a listed STS reason."""
        reasons = {r for r, _ in BAD_JSON + BAD_XML}
        assert reasons <= set(STS_REASONS)
        assert issubclass(STSRejectedError, TokenError)


def test_expired_window_is_not_checked_by_the_client(server: LocalServer) -> None:
    """The client does not re-check time; verify_token did."""
    server.respond = reply(200, json_body(*USER))
    call = call_for(server)
    assert call.expires_at - call.signed_at == timedelta(minutes=15)
    assert run(call).access_key_id == KEY
