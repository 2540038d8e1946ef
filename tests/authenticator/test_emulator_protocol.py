"""The emulator's pure STS rules: query checks, the 15-minute window, answer bodies."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from authenticator.emulator_protocol import (
    Incoming,
    Principal,
    SigningScope,
    STSFaultError,
    build_answer,
    parse_incoming,
    verify_presigned_call,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KEY = "AKIAEXAMPLEKEY000001"
NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
PRINCIPAL = Principal(
    arn="arn:aws:iam::123456789012:user/alice",
    user_id="AIDAEXAMPLEUSER000001",
    account_id="123456789012",
    secret_access_key="secret",
    session_token=None,
    expiration=None,
)


def _query(
    edit: dict[str, str | None] | None = None, signed_at: datetime = NOW
) -> list[tuple[str, str]]:
    """A well-formed presigned GetCallerIdentity query, with edits (None drops)."""
    stamp = signed_at.strftime("%Y%m%dT%H%M%SZ")
    params: dict[str, str | None] = {
        "Action": "GetCallerIdentity",
        "Version": "2011-06-15",
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{KEY}/{stamp[:8]}/us-east-1/sts/aws4_request",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": "60",
        "X-Amz-SignedHeaders": "host;x-k8s-aws-id",
        "X-Amz-Signature": "good",
    }
    params.update(edit or {})
    return [(k, v) for k, v in params.items() if v is not None]


def _incoming(query: list[tuple[str, str]]) -> Incoming:
    return Incoming("GET", "sts.example", "/", query, {"host": "sts.example"})


def _lookup(access_key_id: str, region: str) -> Principal | None:
    return PRINCIPAL if (access_key_id, region) == (KEY, "us-east-1") else None


def _sign(incoming: Incoming, principal: Principal, scope: SigningScope) -> str:
    """A stand-in signer: "good" exactly for the expected key, region and headers."""
    ok = scope.signed_headers == ("host", "x-k8s-aws-id") and principal is PRINCIPAL
    return "good" if ok else "other"


def _fault(query: list[tuple[str, str]], now: datetime = NOW) -> tuple[int, str]:
    with pytest.raises(STSFaultError) as info:
        verify_presigned_call(_incoming(query), now=now, lookup=_lookup, sign=_sign)
    return info.value.status, info.value.code


class TestVerifyPresignedCall:
    """verify_presigned_call answers as STS does, in STS's order."""

    def test_good_call_returns_the_signer(self) -> None:
        """A well-formed, correctly signed, current call yields the principal."""
        got = verify_presigned_call(
            _incoming(_query()), now=NOW, lookup=_lookup, sign=_sign
        )
        assert got is PRINCIPAL

    @pytest.mark.parametrize(
        ("edit", "expected"),
        [
            ({"Action": None}, (400, "MissingAction")),
            ({"Action": "AssumeRole"}, (400, "InvalidAction")),
            ({"Version": "2010-01-01"}, (400, "InvalidAction")),
            ({"X-Amz-Signature": None}, (400, "IncompleteSignature")),
            ({"X-Amz-Algorithm": "AWS4-HMAC-SHA1"}, (400, "IncompleteSignature")),
            ({"X-Amz-Date": "2026-01-02"}, (400, "IncompleteSignature")),
            ({"X-Amz-Date": "20261302T030405Z"}, (400, "IncompleteSignature")),
            ({"X-Amz-Expires": "soon"}, (400, "IncompleteSignature")),
            (
                {"X-Amz-Credential": f"{KEY}/20260102/us-east-1/s3/aws4_request"},
                (400, "IncompleteSignature"),
            ),
            (
                {"X-Amz-Credential": f"{KEY}/20260101/us-east-1/sts/aws4_request"},
                (403, "SignatureDoesNotMatch"),
            ),
            ({"X-Amz-SignedHeaders": "x-k8s-aws-id"}, (400, "IncompleteSignature")),
            (
                {"X-Amz-Credential": "AKIAUNKNOWN/20260102/us-east-1/sts/aws4_request"},
                (403, "InvalidClientTokenId"),
            ),
            ({"X-Amz-Security-Token": "unexpected"}, (403, "InvalidClientTokenId")),
            ({"X-Amz-SignedHeaders": "host"}, (403, "SignatureDoesNotMatch")),
            ({"X-Amz-Signature": "forged"}, (403, "SignatureDoesNotMatch")),
        ],
    )
    def test_refusals(
        self, edit: dict[str, str | None], expected: tuple[int, str]
    ) -> None:
        """Each malformed or mis-signed query gets AWS's status and error code."""
        assert _fault(_query(edit)) == expected

    def test_repeated_parameter(self) -> None:
        """A parameter given twice is a 400 MalformedQueryString."""
        assert _fault([*_query(), ("Action", "GetCallerIdentity")]) == (
            400,
            "MalformedQueryString",
        )

    @pytest.mark.parametrize(
        ("offset", "ok"),
        [
            (timedelta(minutes=-15), True),
            (timedelta(minutes=-15, seconds=-1), False),
            (timedelta(minutes=15), True),
            (timedelta(minutes=15, seconds=1), False),
        ],
    )
    def test_fifteen_minute_window(self, offset: timedelta, ok: bool) -> None:
        """A signature is honoured up to 15 minutes either side of X-Amz-Date."""
        query = _query(signed_at=NOW + offset)
        if ok:
            assert verify_presigned_call(
                _incoming(query), now=NOW, lookup=_lookup, sign=_sign
            )
        else:
            assert _fault(query) == (403, "SignatureDoesNotMatch")

    def test_expired_session(self) -> None:
        """Temporary credentials past their expiration are a 403 ExpiredToken."""
        session = Principal(
            "arn:aws:sts::123456789012:assumed-role/r/s",
            "AROAX:s",
            "123456789012",
            "secret",
            "token",
            NOW,
        )

        def lookup(key: str, region: str) -> Principal:
            return session

        def sign(incoming: Incoming, principal: Principal, s: SigningScope) -> str:
            return "good"

        with pytest.raises(STSFaultError) as info:
            verify_presigned_call(
                _incoming(_query({"X-Amz-Security-Token": "token"})),
                now=NOW,
                lookup=lookup,
                sign=sign,
            )
        assert (info.value.status, info.value.code) == (403, "ExpiredToken")


class TestBuildAnswer:
    """build_answer renders STS's JSON and XML bodies, status and headers."""

    def _environ(
        self, accept: str, edit: dict[str, str | None] | None = None
    ) -> dict[str, object]:
        return {
            "REQUEST_METHOD": "GET",
            "RAW_URI": "/?" + urlencode(_query(edit)),
            "QUERY_STRING": urlencode(_query(edit)),
            "HTTP_HOST": "sts.example",
            "HTTP_ACCEPT": accept,
        }

    def test_identity_in_json(self) -> None:
        """Accept: application/json gets AWS's JSON GetCallerIdentity shape."""
        answer = build_answer(
            self._environ("application/json"),
            now=NOW,
            request_id="req-1",
            lookup=_lookup,
            sign=_sign,
        )
        assert (answer.outcome, answer.status) == ("OK", "200 OK")
        assert ("Content-Type", "application/json") in answer.headers
        assert ("Content-Length", str(len(answer.body))) in answer.headers
        assert json.loads(answer.body) == {
            "GetCallerIdentityResponse": {
                "GetCallerIdentityResult": {
                    "Account": PRINCIPAL.account_id,
                    "Arn": PRINCIPAL.arn,
                    "UserId": PRINCIPAL.user_id,
                },
                "ResponseMetadata": {"RequestId": "req-1"},
            }
        }

    def test_error_in_xml(self) -> None:
        """Without JSON in Accept an error is AWS's XML ErrorResponse with 403."""
        answer = build_answer(
            self._environ("*/*", {"X-Amz-Signature": "forged"}),
            now=NOW,
            request_id="req-2",
            lookup=_lookup,
            sign=_sign,
        )
        assert (answer.outcome, answer.status) == (
            "SignatureDoesNotMatch",
            "403 Forbidden",
        )
        assert ("Content-Type", "text/xml") in answer.headers
        root = ET.fromstring(answer.body)
        assert root.tag == f"{NS}ErrorResponse"
        assert root.findtext(f"{NS}Error/{NS}Code") == "SignatureDoesNotMatch"
        assert root.findtext(f"{NS}Error/{NS}Type") == "Sender"
        assert root.findtext(f"{NS}RequestId") == "req-2"


class TestParseIncoming:
    """parse_incoming keeps exactly what SigV4 signs."""

    def test_raw_path_query_and_headers(self) -> None:
        """The raw path (undecoded), ordered query and lower-case headers are kept."""
        got = parse_incoming(
            {
                "REQUEST_METHOD": "GET",
                "RAW_URI": "/a%2Fb?x=1",
                "QUERY_STRING": "x=1&y=&x=2",
                "HTTP_HOST": "h:1",
                "HTTP_X_K8S_AWS_ID": "c",
            }
        )
        assert got == Incoming(
            "GET",
            "h:1",
            "/a%2Fb",
            [("x", "1"), ("y", ""), ("x", "2")],
            {"host": "h:1", "x-k8s-aws-id": "c"},
        )
