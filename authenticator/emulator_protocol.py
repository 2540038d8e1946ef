"""The embedded STS's protocol rules: checks and answers, pure (no moto, no botocore).

:mod:`authenticator.emulator` is the shell: it serves HTTP, looks access keys
up in moto's state and recomputes SigV4 signatures with botocore. This module
holds what it decides with them, as AWS STS does for a presigned
GetCallerIdentity call:

- :func:`parse_incoming` collects the SigV4-relevant parts of a WSGI request;
- :func:`verify_presigned_call` runs AWS's checks in AWS's order (query shape,
  credential scope, known key and session token, the 15-minute window around
  ``X-Amz-Date``, the signature, session expiry), with the key lookup and the
  signature computation passed in;
- :func:`build_answer` turns the outcome into AWS's JSON or XML body, status
  and headers.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from authenticator.wire import (
    STS_ACTION,
    STS_API_VERSION,
    STS_URL_LIFETIME,
    STS_XML_NAMESPACE,
)

# SigV4 constants (AWS "Signature Version 4 signing process").
SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
SIGV4_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_SIGV4_DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")
# The auth parameters a SigV4 query-signed request must carry.
_REQUIRED_AUTH_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
)
# AWS's error messages (as seen in SDK and aws-iam-authenticator logs).
_MSG_BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you "
    "provided. Check your AWS Secret Access Key and signing method. Consult the "
    "service documentation for details."
)
_MSG_UNKNOWN_KEY = "The security token included in the request is invalid."
_MSG_SESSION_EXPIRED = "The security token included in the request is expired"
# The HTTP reason phrases of the statuses STS answers presigned calls with.
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden"}


@dataclass(frozen=True, slots=True)
class Principal:
    """What the emulator's state says about an access key.

    Attributes:
        arn: The ARN GetCallerIdentity reports.
        user_id: The UserId GetCallerIdentity reports.
        account_id: The 12-digit account.
        secret_access_key: The secret the signature must be made with.
        session_token: Temporary credentials only.
        expiration: When temporary credentials expire (aware UTC); ``None`` otherwise.
    """

    arn: str
    user_id: str
    account_id: str
    secret_access_key: str
    session_token: str | None
    expiration: datetime | None


@dataclass(frozen=True, slots=True)
class Incoming:
    """The parts of an HTTP request that SigV4 covers.

    Attributes:
        method: The HTTP method.
        host: The ``Host`` header.
        raw_path: The path as sent (not decoded).
        query: The query parameters in order, repeats kept.
        headers: Lower-case header name -> value.
    """

    method: str
    host: str
    raw_path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class SigningScope:
    """What a presigned request says it was signed with (from its query).

    Attributes:
        access_key_id: The key in ``X-Amz-Credential``.
        region: The region in the credential scope.
        amz_date: ``X-Amz-Date`` (``yyyymmddThhmmssZ``).
        signed_headers: ``X-Amz-SignedHeaders``, split on ``;``.
    """

    access_key_id: str
    region: str
    amz_date: str
    signed_headers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer to a presigned STS call.

    Attributes:
        outcome: ``OK`` or the AWS error code (for the emulator's counters).
        status: The WSGI status line, e.g. ``403 Forbidden``.
        headers: The response headers.
        body: The response body.
    """

    outcome: str
    status: str
    headers: list[tuple[str, str]]
    body: bytes


# (access_key_id, region) -> the key's principal, or None when unknown/inactive.
PrincipalLookup = Callable[[str, str], Principal | None]
# Recompute the request's SigV4 signature with the principal's secret; None when
# the signed headers the request claims are not the ones it carries.
SignatureComputer = Callable[[Incoming, Principal, SigningScope], str | None]


class STSFaultError(Exception):
    """An STS error answer: HTTP status, AWS error code and message.

    Args:
        status: The HTTP status (400 or 403).
        code: The AWS error code, e.g. ``SignatureDoesNotMatch``.
        message: AWS's error message.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _incomplete(message: str) -> STSFaultError:
    return STSFaultError(400, "IncompleteSignature", message)


def is_presigned_sts_query(query_string: str) -> bool:
    """Tell whether a query string carries an ``X-Amz-Credential`` scoped to ``sts``.

    Args:
        query_string: The raw query string of a request.

    Returns:
        True when some ``X-Amz-Credential`` parameter (any case) names service ``sts``.
    """
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        if name.lower() == "x-amz-credential":
            parts = value.split("/")
            if len(parts) >= 4 and parts[3] == "sts":
                return True
    return False


# STS actions (query protocol): never an IAM write, whoever sends them.
_STS_ACTIONS = frozenset(
    {
        "AssumeRole",
        "AssumeRoleWithSAML",
        "AssumeRoleWithWebIdentity",
        "DecodeAuthorizationMessage",
        "GetAccessKeyInfo",
        STS_ACTION,
        "GetFederationToken",
        "GetSessionToken",
    }
)
_SCOPE_SERVICE = re.compile(r"Credential=[^/,\s]*/[^/]*/[^/]*/([^/]*)/aws4_request")


def iam_write_action(query_string: str, body: bytes, authorization: str) -> str | None:
    """Return the IAM write a request asks for, or None when it asks for none.

    A request signed for ``sts`` never is one. Otherwise the ``Action`` of the
    query or the form body decides: an STS action, or an IAM read (``Get*``,
    ``List*``), is not a write; anything else sent to the IAM service (signed
    for ``iam``, or unsigned) is.

    Args:
        query_string: The raw query string.
        body: The form-encoded body (empty when there is none).
        authorization: The ``Authorization`` header, or ``""``.

    Returns:
        The action name, e.g. ``CreateUser``, or None.
    """
    scope = _SCOPE_SERVICE.search(authorization)
    service = scope.group(1) if scope else None
    if service is None:
        for name, value in parse_qsl(query_string, keep_blank_values=True):
            if name.lower() == "x-amz-credential":
                parts = value.split("/")
                service = parts[3] if len(parts) >= 4 else service
    if service not in (None, "iam"):
        return None
    action = ""
    for source in (query_string, body.decode("utf-8", "replace")):
        for name, value in parse_qsl(source, keep_blank_values=True):
            if name == "Action":
                action = value
    if not action or action in _STS_ACTIONS or action.startswith(("Get", "List")):
        return None
    return action


def parse_incoming(environ: Mapping[str, object]) -> Incoming:
    """Collect the SigV4-relevant parts of a WSGI request.

    Args:
        environ: The WSGI environ.

    Returns:
        The method, host, raw path, query and headers.
    """
    raw_uri = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "/")
    raw_path = raw_uri.split("?", 1)[0] or "/"
    headers = {
        key[5:].lower().replace("_", "-"): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    return Incoming(
        method=str(environ.get("REQUEST_METHOD", "GET")),
        host=headers.get("host", ""),
        raw_path=raw_path,
        query=parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True),
        headers=headers,
    )


def _single(query: list[tuple[str, str]], name: str) -> str | None:
    values = [v for k, v in query if k == name]
    return values[0] if values else None


def _parse_query(incoming: Incoming) -> tuple[SigningScope, datetime, str]:
    """Check the query's shape and credential scope as STS does.

    Returns:
        The signing scope, when it was signed and the signature it carries.

    Raises:
        STSFaultError: The status, code and message AWS would answer.
    """
    names = [k for k, _ in incoming.query]
    if len(set(names)) != len(names):
        raise STSFaultError(
            400, "MalformedQueryString", "A query parameter appears more than once."
        )
    action = _single(incoming.query, "Action")
    version = _single(incoming.query, "Version") or "NO_VERSION_SPECIFIED"
    if action is None:
        raise STSFaultError(400, "MissingAction", "Missing Action")
    if action != STS_ACTION or version != STS_API_VERSION:
        raise STSFaultError(
            400,
            "InvalidAction",
            f"Could not find operation {action} for version {version}",
        )
    if any(_single(incoming.query, p) is None for p in _REQUIRED_AUTH_PARAMS):
        raise _incomplete(
            "AWS query-string parameters must include "
            + ", ".join(f"'{p}'" for p in _REQUIRED_AUTH_PARAMS)
            + ". Re-examine the query-string parameters."
        )
    params = {p: _single(incoming.query, p) or "" for p in _REQUIRED_AUTH_PARAMS}
    if params["X-Amz-Algorithm"] != SIGV4_ALGORITHM:
        raise _incomplete(f"Unsupported AWS 'algorithm': '{params['X-Amz-Algorithm']}'")
    amz_date = params["X-Amz-Date"]
    if not _SIGV4_DATE_RE.match(amz_date):
        raise _incomplete(
            f"Invalid X-Amz-Date '{amz_date}'; expected yyyyMMdd'T'HHmmss'Z'"
        )
    try:
        signed_at = datetime.strptime(amz_date, SIGV4_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise _incomplete(f"Invalid X-Amz-Date '{amz_date}'") from None
    expires = _single(incoming.query, "X-Amz-Expires")
    if expires is not None and not expires.isdigit():
        raise _incomplete(f"Invalid X-Amz-Expires '{expires}'")
    scope = params["X-Amz-Credential"].split("/")
    if (
        len(scope) != 5
        or scope[3] != "sts"
        or scope[4] != "aws4_request"
        or not scope[0]
    ):
        raise _incomplete(
            "Credential should be scoped to a valid region, service and "
            "terminator: '<key>/<date>/<region>/sts/aws4_request'."
        )
    access_key_id, scope_date, region = scope[0], scope[1], scope[2]
    if scope_date != amz_date[:8]:
        raise STSFaultError(
            403,
            "SignatureDoesNotMatch",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
            f"version of date from HTTP: '{scope_date}' != '{amz_date[:8]}', "
            f"from '{amz_date}'.",
        )
    signed_names = tuple(params["X-Amz-SignedHeaders"].split(";"))
    if "host" not in signed_names:
        raise _incomplete("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    signing = SigningScope(access_key_id, region, amz_date, signed_names)
    return signing, signed_at, params["X-Amz-Signature"]


def _check_window(amz_date: str, signed_at: datetime, now: datetime) -> None:
    """Refuse a signature made more than 15 minutes either side of ``now``.

    Raises:
        STSFaultError: 403 SignatureDoesNotMatch outside the window.
    """
    stamp = now.strftime(SIGV4_DATE_FORMAT)
    if signed_at < now - STS_URL_LIFETIME:
        limit = (now - STS_URL_LIFETIME).strftime(SIGV4_DATE_FORMAT)
        raise STSFaultError(
            403,
            "SignatureDoesNotMatch",
            f"Signature expired: {amz_date} is now earlier than {limit} "
            f"({stamp} - 15 min.)",
        )
    if signed_at > now + STS_URL_LIFETIME:
        limit = (now + STS_URL_LIFETIME).strftime(SIGV4_DATE_FORMAT)
        raise STSFaultError(
            403,
            "SignatureDoesNotMatch",
            f"Signature not yet current: {amz_date} is still later than {limit} "
            f"({stamp} + 15 min.)",
        )


def verify_presigned_call(
    incoming: Incoming,
    *,
    now: datetime,
    lookup: PrincipalLookup,
    sign: SignatureComputer,
) -> Principal:
    """Check a presigned STS request as AWS does and return the signer.

    Args:
        incoming: The request.
        now: The current time (aware UTC).
        lookup: ``(access_key_id, region) -> principal or None``.
        sign: Recomputes the request's signature with the principal's secret.

    Returns:
        The principal whose credentials signed the request.

    Raises:
        STSFaultError: The status, code and message AWS would answer.
    """
    signing, signed_at, signature = _parse_query(incoming)
    principal = lookup(signing.access_key_id, signing.region)
    if principal is None:
        raise STSFaultError(403, "InvalidClientTokenId", _MSG_UNKNOWN_KEY)
    if _single(incoming.query, "X-Amz-Security-Token") != principal.session_token:
        raise STSFaultError(403, "InvalidClientTokenId", _MSG_UNKNOWN_KEY)
    _check_window(signing.amz_date, signed_at, now)
    expected = sign(incoming, principal, signing)
    if expected is None or not hmac.compare_digest(
        expected.encode("ascii"), signature.encode("ascii", "replace")
    ):
        raise STSFaultError(403, "SignatureDoesNotMatch", _MSG_BAD_SIGNATURE)
    if principal.expiration is not None and principal.expiration <= now:
        raise STSFaultError(403, "ExpiredToken", _MSG_SESSION_EXPIRED)
    return principal


def build_identity_body(
    principal: Principal, request_id: str, *, as_json: bool
) -> bytes:
    """Render a GetCallerIdentity answer in AWS's exact JSON or XML shape.

    Args:
        principal: The caller.
        request_id: The request ID to report.
        as_json: JSON (``Accept: application/json``) rather than XML.

    Returns:
        The response body.
    """
    if as_json:
        body: object = {
            "GetCallerIdentityResponse": {
                "GetCallerIdentityResult": {
                    "Account": principal.account_id,
                    "Arn": principal.arn,
                    "UserId": principal.user_id,
                },
                "ResponseMetadata": {"RequestId": request_id},
            }
        }
        return json.dumps(body).encode("utf-8")
    return (
        f'<GetCallerIdentityResponse xmlns="{STS_XML_NAMESPACE}">\n'
        "  <GetCallerIdentityResult>\n"
        f"    <Arn>{escape(principal.arn)}</Arn>\n"
        f"    <UserId>{escape(principal.user_id)}</UserId>\n"
        f"    <Account>{escape(principal.account_id)}</Account>\n"
        "  </GetCallerIdentityResult>\n"
        "  <ResponseMetadata>\n"
        f"    <RequestId>{request_id}</RequestId>\n"
        "  </ResponseMetadata>\n"
        "</GetCallerIdentityResponse>\n"
    ).encode()


def build_error_body(fault: STSFaultError, request_id: str, *, as_json: bool) -> bytes:
    """Render an AWS query-protocol error body (``Type`` Sender: the caller's fault).

    Args:
        fault: The error to report.
        request_id: The request ID to report.
        as_json: JSON (``Accept: application/json``) rather than XML.

    Returns:
        The response body.
    """
    if as_json:
        body = {
            "Error": {"Code": fault.code, "Message": fault.message, "Type": "Sender"},
            "RequestId": request_id,
        }
        return json.dumps(body).encode("utf-8")
    return (
        f'<ErrorResponse xmlns="{STS_XML_NAMESPACE}">\n'
        "  <Error>\n"
        "    <Type>Sender</Type>\n"
        f"    <Code>{escape(fault.code)}</Code>\n"
        f"    <Message>{escape(fault.message)}</Message>\n"
        "  </Error>\n"
        f"  <RequestId>{request_id}</RequestId>\n"
        "</ErrorResponse>\n"
    ).encode()


def build_answer(
    environ: Mapping[str, object],
    *,
    now: datetime,
    request_id: str,
    lookup: PrincipalLookup,
    sign: SignatureComputer,
) -> Answer:
    """Check a presigned STS request and build STS's HTTP answer to it.

    Args:
        environ: The WSGI environ of a presigned STS request.
        now: The current time (aware UTC).
        request_id: The request ID to report.
        lookup: ``(access_key_id, region) -> principal or None``.
        sign: Recomputes the request's signature with the principal's secret.

    Returns:
        The outcome, status line, headers and body.
    """
    as_json = "application/json" in str(environ.get("HTTP_ACCEPT", ""))
    try:
        principal = verify_presigned_call(
            parse_incoming(environ), now=now, lookup=lookup, sign=sign
        )
    except STSFaultError as fault:
        outcome, status = fault.code, fault.status
        body = build_error_body(fault, request_id, as_json=as_json)
    else:
        outcome, status = "OK", 200
        body = build_identity_body(principal, request_id, as_json=as_json)
    headers = [
        ("Content-Type", "application/json" if as_json else "text/xml"),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", request_id),
    ]
    return Answer(outcome, f"{status} {_REASONS[status]}", headers, body)
