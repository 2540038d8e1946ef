"""The offline verifier: every local check on a token, in order (docs/token-format.md).

Pure: no network, no clock (``now`` is an argument), no environment. A token
that fails any check raises :class:`MalformedTokenError` with a stable reason
code (see :data:`REASONS`) and never reaches STS. The rules and their order
follow aws-iam-authenticator's verifier (docs/token-format.md), plus the
stricter checks kubeiam's contract adds.

Messages tell the user what was wrong and how to fix it; they never contain the
token, the signature or the security token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn
from urllib.parse import unquote_to_bytes

from authenticator.errors import MalformedTokenError
from authenticator.hosts import (
    AllowedHosts,
    find_extra_endpoint,
    is_loopback,
    region_for_host,
)
from authenticator.token import decode_token
from authenticator.wire import (
    CLUSTER_ID_HEADER,
    MAX_PRESIGN_EXPIRES_S,
    SIGNED_HEADERS,
    STS_ACTION,
    STS_API_VERSION,
    STS_URL_LIFETIME,
)

# reason code -> the rule it enforces, in the order the checks run.
RULES: dict[str, str] = {
    "token_too_large": "the token is at most 4096 bytes",
    "bad_prefix": "the token starts with k8s-aws-v1.",
    "bad_base64": "the body is strict unpadded base64url",
    "bad_encoding": "the decoded URL is UTF-8 text",
    "bad_url": "the URL is printable ASCII and parses as scheme://host/path?query",
    "bad_scheme": "the scheme is https (http only for a configured loopback endpoint)",
    "userinfo": "the URL has no user information (user@host)",
    "port": "the URL names no port (unless a configured endpoint has it)",
    "fragment": "the URL has no #fragment",
    "host_not_allowed": "the host is an STS host of the server's partition",
    "bad_path": "the path is exactly /",
    "bad_query": "the query is name=value pairs joined by &, with valid % escapes",
    "duplicate_parameter": "no parameter name appears twice, ignoring case",
    "unknown_parameter": "only the 9 presigned GetCallerIdentity parameters appear",
    "bad_action": "Action is GetCallerIdentity",
    "bad_version": "Version is 2011-06-15",
    "unsigned_cluster_id": "X-Amz-SignedHeaders includes x-k8s-aws-id",
    "extra_signed_header": (
        "X-Amz-SignedHeaders is exactly host;x-k8s-aws-id, ignoring case"
    ),
    "bad_expires": "X-Amz-Expires is an integer from 0 to 900",
    "missing_date": "X-Amz-Date is present",
    "bad_date": "X-Amz-Date is YYYYMMDDTHHMMSSZ",
    "expired": "X-Amz-Date is at most 15 minutes old",
    "future_date": "X-Amz-Date is at most 5 minutes in the future",
    "bad_credential_scope": (
        "X-Amz-Credential is <key>/<yyyymmdd>/<region>/sts/aws4_request with a "
        "non-empty key, the date of X-Amz-Date and the STS host's region"
    ),
    "bad_algorithm": "X-Amz-Algorithm is AWS4-HMAC-SHA256",
    "bad_signature_format": "X-Amz-Signature is 64 lower-case hex characters",
    "bad_security_token": "X-Amz-Security-Token, when present, is not empty",
}
# Every reason code verify_token can raise, in check order.
REASONS: tuple[str, ...] = tuple(RULES)

# kubeiam rejects dates more than 5 minutes ahead (docs/token-format.md; the
# reference has no lower bound).
MAX_CLOCK_SKEW = timedelta(minutes=5)
# The only query parameters of a presigned GetCallerIdentity (reference
# parameterWhitelist), by lower-case name.
ALLOWED_PARAMETERS: dict[str, str] = {
    name.lower(): name
    for name in (
        "Action",
        "Version",
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
    )
}
# SigV4's only algorithm name.
ALGORITHM = "AWS4-HMAC-SHA256"
# SigV4 date format (basic ISO 8601, UTC).
_DATE_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")
_SIGNATURE_RE = re.compile(r"^[0-9a-f]{64}$")
# IAM AccessKeyId: 16-128 word characters; kubeiam accepts letters and digits.
_ACCESS_KEY_RE = re.compile(r"^[A-Za-z0-9]{1,128}$")
_EXPIRES_RE = re.compile(r"^[0-9]{1,9}$")
# RFC 3986 characters (unreserved, reserved and "%"): anything else is refused.
_URL_CHARS_RE = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")
# RFC 3986 query characters without ";" (checked first, with its own message).
_QUERY_CHARS_RE = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,=:@/?%]*$")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Text safe to repeat in a message (short, no separators that could join secrets).
_SHOWABLE_RE = re.compile(r"[A-Za-z0-9._:;,@-]{0,64}")


@dataclass(frozen=True, slots=True)
class PresignedCall:
    """The STS request a valid token stands for.

    Attributes:
        url: Rebuilt from validated parts: ``scheme://<pinned host[:port]>/?<query>``
            with the query byte-identical to the token's.
        cluster_id: The server's cluster ID, sent as ``x-k8s-aws-id``.
        access_key_id: From the credential scope.
        region: The credential-scope region (that of the STS host).
        signed_at: X-Amz-Date.
        expires_at: ``signed_at`` + 15 minutes, the last moment STS honours it.
    """

    url: str
    cluster_id: str
    access_key_id: str
    region: str
    signed_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class _URLParts:
    scheme: str
    userinfo: str | None
    host: str
    port: str | None
    path: str
    query: str
    fragment: str | None


def verify_token(
    token: str, *, cluster_id: str, now: datetime, allowed_hosts: AllowedHosts
) -> PresignedCall:
    """Run every local check on a token and return the STS call to make.

    Args:
        token: The bearer token (``k8s-aws-v1.`` + base64url of a presigned URL).
        cluster_id: The server's cluster ID (the value STS will check the
            signature of ``x-k8s-aws-id`` against).
        now: The current time (timezone-aware; naive values are taken as UTC).
        allowed_hosts: The STS host allow-list.

    Returns:
        The validated call.

    Raises:
        MalformedTokenError: The token fails a local check; ``.reason`` is one of
            :data:`REASONS`.
        ValueError: ``cluster_id`` is empty (a server configuration bug).
    """
    if not cluster_id:
        raise ValueError("cluster_id must not be empty")
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    url = decode_token(token)
    parts = _split_url(url)
    netloc, region = _check_location(parts, allowed_hosts)
    if parts.path != "/":
        _fail(
            "bad_path", f"the URL path is {_show(parts.path)}; it must be exactly '/'"
        )
    params = _parse_query(parts.query)
    _check_action_and_version(params)
    _check_signed_headers(params)
    _check_expires(params)
    signed_at = _check_date(params, now)
    access_key_id = _check_scope(params, signed_at, region)
    _check_signature_fields(params)
    return PresignedCall(
        url=f"{parts.scheme}://{netloc}/?{parts.query}",
        cluster_id=cluster_id,
        access_key_id=access_key_id,
        region=region,
        signed_at=signed_at,
        expires_at=signed_at + STS_URL_LIFETIME,
    )


def _fail(reason: str, message: str) -> NoReturn:
    raise MalformedTokenError(reason, message)


def _split_url(url: str) -> _URLParts:
    """Split the URL strictly (rows 4 and the character rule)."""
    if not _URL_CHARS_RE.fullmatch(url):
        bad = next(ch for ch in url if not _URL_CHARS_RE.fullmatch(ch))
        _fail(
            "bad_url",
            f"the token's URL contains a character not allowed in URLs "
            f"({ord(bad):#04x}); "
            "re-create the token with kubeiam token or aws eks get-token",
        )
    match = _SCHEME_RE.match(url)
    rest = url[match.end() :] if match else ""
    if not match or not rest.startswith("//"):
        _fail("bad_url", "the token's URL is not of the form https://host/?query")
    rest, hash_sign, fragment = rest[2:].partition("#")
    end = min(
        (i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest)
    )
    authority, remainder = rest[:end], rest[end:]
    path, _, query = remainder.partition("?")
    userinfo, at, hostport = authority.rpartition("@")
    host, port = _split_hostport(hostport)
    return _URLParts(
        scheme=match[1].lower(),
        userinfo=userinfo if at else None,
        host=host,
        port=port,
        path=path,
        query=query,
        fragment=fragment if hash_sign else None,
    )


def _split_hostport(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):
        inside, bracket, after = hostport[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            _fail("bad_url", "the token's URL has a malformed IPv6 host")
        return inside, after[1:] if after else None
    host, colon, port = hostport.partition(":")
    return host, port if colon else None


def _check_location(parts: _URLParts, allowed: AllowedHosts) -> tuple[str, str]:
    """Scheme, userinfo, port, fragment and host (rows 5-7): (netloc, scope region)."""
    port_num: int | None = None
    if parts.port is not None and parts.port.isdigit() and len(parts.port) <= 5:
        port_num = int(parts.port)
    endpoint = None
    if parts.port is None or port_num is not None:
        endpoint = find_extra_endpoint(allowed, parts.scheme, parts.host, port_num)
    if (
        endpoint is None
        and parts.scheme in ("http", "https")
        and is_loopback(parts.host)
    ):
        # A local STS (an emulator) the server was not told about: say so, rather
        # than blaming the scheme or the port.
        host = f"[{parts.host}]" if ":" in parts.host else parts.host
        port = f":{_show(parts.port)[1:-1]}" if parts.port is not None else ""
        _fail(
            "host_not_allowed",
            f"endpoint {parts.scheme}://{host}{port} is not allowed: it is not "
            "among the configured STS endpoints "
            "(add it to sts.extraEndpoints; kubeiam verify: --sts-endpoint or "
            "AWS_ENDPOINT_URL_STS)",
        )
    if endpoint is None and parts.scheme != "https":
        _fail(
            "bad_scheme",
            f"the token's URL uses {_show(parts.scheme)}; STS URLs must be https "
            "(plain http only for a loopback endpoint in sts.extraEndpoints)",
        )
    if parts.userinfo is not None:
        _fail(
            "userinfo",
            "the token's URL carries user information before '@' in the host; "
            "a real STS URL never does",
        )
    if parts.port is not None and endpoint is None:
        _fail(
            "port",
            f"the token's URL names port {_show(parts.port)}; STS URLs have no port "
            "(add the full endpoint URL to sts.extraEndpoints for a custom one)",
        )
    if parts.fragment is not None:
        _fail("fragment", "the token's URL has a #fragment; a real STS URL never does")
    if endpoint is not None:
        return endpoint.netloc(), allowed.extra_region
    region = region_for_host(allowed, parts.host)
    if region is None:
        if not parts.host:
            _fail("host_not_allowed", "the token's URL has an empty host")
        _fail(
            "host_not_allowed",
            f"host {_show(parts.host)} is not an STS endpoint of partition "
            f"{allowed.partition} (expected sts[-fips].<region>.<domain>, lower case; "
            "add custom endpoints to sts.extraEndpoints)",
        )
    return parts.host, region


def _parse_query(query: str) -> dict[str, str]:
    """Strict query parse (row 9), duplicates (10) and the allow-list (11)."""
    if ";" in query:
        _fail(
            "bad_query",
            "the query contains an unescaped ';' (not a parameter separator for STS)",
        )
    if not _QUERY_CHARS_RE.fullmatch(query):
        _fail("bad_query", "the query contains characters that must be %-escaped")
    pairs: list[tuple[str, str]] = []
    for piece in query.split("&") if query else []:
        name, eq, raw_value = piece.partition("=")
        if not piece or not eq or not name:
            _fail("bad_query", "the query has an empty parameter or one without '='")
        if _unquote(name) != name:
            _fail("bad_query", f"parameter name {_show(name)} must not be %-escaped")
        pairs.append((name, _unquote(raw_value)))
    seen: dict[str, str] = {}
    for name, _ in pairs:
        key = name.lower()
        if key in seen:
            _fail(
                "duplicate_parameter",
                f"query parameter {_show(name)} appears twice (also as "
                f"{_show(seen[key])}), ignoring case (CVE-2022-2385)",
            )
        seen[key] = name
    for name in seen.values():
        if name.lower() not in ALLOWED_PARAMETERS:
            _fail(
                "unknown_parameter",
                f"query parameter {_show(name)} is not one of a presigned "
                "GetCallerIdentity's: " + ", ".join(ALLOWED_PARAMETERS.values()),
            )
    return {name.lower(): value for name, value in pairs}


def _unquote(text: str) -> str:
    """Strict form decoding: ``+`` is a space, ``%`` needs two hex digits, UTF-8."""
    if "%" not in text and "+" not in text:
        return text  # ASCII already (checked by _QUERY_CHARS_RE)
    if _BAD_ESCAPE_RE.search(text):
        _fail("bad_query", "the query has a '%' not followed by two hex digits")
    try:
        return unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        _fail("bad_query", "a query value does not decode to UTF-8")


def _check_action_and_version(params: dict[str, str]) -> None:
    """Rows 13 and 14."""
    action = params.get("action")
    if action != STS_ACTION:
        got = "missing" if action is None else f"{_show(action)}"
        _fail("bad_action", f"Action is {got}; a token must presign {STS_ACTION} only")
    version = params.get("version")
    if version != STS_API_VERSION:
        got = "missing" if version is None else f"{_show(version)}"
        _fail("bad_version", f"Version is {got}; it must be {STS_API_VERSION}")


def _check_signed_headers(params: dict[str, str]) -> None:
    """Row 15 (cluster binding) and the exact signed-header set."""
    raw = params.get("x-amz-signedheaders")
    names = raw.split(";") if raw is not None else []
    if CLUSTER_ID_HEADER not in (n.lower() for n in names):
        _fail(
            "unsigned_cluster_id",
            f"the client did not sign the {CLUSTER_ID_HEADER} header, so the token is "
            "not bound to a cluster; mint it with kubeiam token -i <cluster-id> or "
            "aws eks get-token",
        )
    extra = [n for n in names if n.lower() not in ("host", CLUSTER_ID_HEADER)]
    if extra:
        _fail(
            "extra_signed_header",
            f"the token signs header(s) {_show(';'.join(extra))} that the verifier "
            "never sends, so STS would reject it; use a client signing only host and "
            f"{CLUSTER_ID_HEADER}",
        )
    # Header names are case-insensitive: the reference accepts host;X-K8S-AWS-ID.
    if (raw or "").lower() != SIGNED_HEADERS:
        _fail(
            "extra_signed_header",
            f"X-Amz-SignedHeaders is {_show(raw or '')}; it must be exactly "
            f"{SIGNED_HEADERS}",
        )


def _check_expires(params: dict[str, str]) -> None:
    """Row 16."""
    raw = params.get("x-amz-expires")
    top = MAX_PRESIGN_EXPIRES_S
    if raw is None or not _EXPIRES_RE.fullmatch(raw) or int(raw) > top:
        got = "missing" if raw is None else _show(raw)
        _fail(
            "bad_expires",
            f"X-Amz-Expires is {got}; it must be an integer from 0 to {top}",
        )


def _check_date(params: dict[str, str], now: datetime) -> datetime:
    """Rows 17-20: presence, format, age, future dates."""
    raw = params.get("x-amz-date")
    if not raw:
        _fail("missing_date", "X-Amz-Date is missing; a presigned URL must carry it")
    signed_at: datetime | None = None
    if _DATE_RE.fullmatch(raw):
        try:
            signed_at = datetime.strptime(raw, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            signed_at = None
    if signed_at is None:
        _fail("bad_date", f"X-Amz-Date {_show(raw)} is not a YYYYMMDDTHHMMSSZ UTC time")
    if now - signed_at > STS_URL_LIFETIME:
        _fail(
            "expired",
            f"X-Amz-Date is {_duration(now - signed_at)} old; tokens live 15 minutes: "
            "check the client clock or token cache",
        )
    if signed_at - now > MAX_CLOCK_SKEW:
        _fail(
            "future_date",
            f"X-Amz-Date is {_duration(signed_at - now)} in the future (more than 5 "
            "minutes): check the client's clock",
        )
    return signed_at


def _check_scope(params: dict[str, str], signed_at: datetime, region: str) -> str:
    """Row 21: ``<akid>/<yyyymmdd>/<region>/sts/aws4_request``; returns the key ID."""
    raw = params.get("x-amz-credential")
    parts = raw.split("/") if raw is not None else []
    if len(parts) != 5 or parts[3] != "sts" or parts[4] != "aws4_request":
        _fail(
            "bad_credential_scope",
            "X-Amz-Credential is "
            + ("missing" if raw is None else "malformed")
            + "; it must be <access key id>/<yyyymmdd>/<region>/sts/aws4_request",
        )
    access_key_id, date, scope_region = parts[0], parts[1], parts[2]
    if not _ACCESS_KEY_RE.fullmatch(access_key_id):
        _fail(
            "bad_credential_scope",
            "the access key ID in X-Amz-Credential is "
            + ("empty" if not access_key_id else "not alphanumeric"),
        )
    expected_date = signed_at.strftime("%Y%m%d")
    if date != expected_date:
        _fail(
            "bad_credential_scope",
            f"the credential-scope date {_show(date)} is not the date of X-Amz-Date "
            f"({expected_date})",
        )
    if scope_region != region:
        _fail(
            "bad_credential_scope",
            f"the token is signed for region {_show(scope_region)} but its STS host "
            f"expects {region}; sign for the region of the STS host",
        )
    return access_key_id


def _check_signature_fields(params: dict[str, str]) -> None:
    """Row 22: algorithm and signature format; a present security token is not empty."""
    algorithm = params.get("x-amz-algorithm")
    if algorithm != ALGORITHM:
        got = "missing" if algorithm is None else _show(algorithm)
        _fail("bad_algorithm", f"X-Amz-Algorithm is {got}; it must be {ALGORITHM}")
    signature = params.get("x-amz-signature")
    if signature is None or not _SIGNATURE_RE.fullmatch(signature):
        _fail(
            "bad_signature_format",
            "X-Amz-Signature is "
            + ("missing" if signature is None else "malformed")
            + "; it must be 64 lower-case hex characters",
        )
    if params.get("x-amz-security-token") == "":
        _fail("bad_security_token", "X-Amz-Security-Token is present but empty")


def _duration(delta: timedelta) -> str:
    """``17m03s`` style, for messages."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s"


def _show(text: str) -> str:
    """Quote short, plain, non-secret text for a message; hide anything else.

    Values are echoed only when they look like a parameter name, an action,
    a date or a host: a fragment of a token (a path, a security token glued to
    a host) is never repeated back.
    """
    if _SHOWABLE_RE.fullmatch(text):
        return repr(text)
    return f"<{len(text)} characters, not shown>"
