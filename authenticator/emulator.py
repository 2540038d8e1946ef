"""The embedded STS: a signature-checking front over moto's server (extra ``local``).

moto's server alone cannot stand in for STS behind a token verifier: it routes
by the ``Authorization`` header (which a presigned URL lacks, so the token's
GET lands on S3's ListBuckets), it checks no signatures, and it answers XML
only. :class:`STSEmulator` serves a WSGI front that:

- answers every request whose query carries an ``X-Amz-Credential`` with an
  ``sts`` credential scope itself, checking it as AWS STS does: the SigV4 query
  signature recomputed with botocore against the secret moto's IAM/STS state
  holds for the access key, the incoming ``x-k8s-aws-id`` (and every other
  signed header) as part of the signature, the session token of temporary
  credentials, and the 15-minute window around ``X-Amz-Date``. The answer is a
  GetCallerIdentity result in JSON (``Accept: application/json``) or XML, or
  AWS's error body and status code;
- hands everything else to moto unchanged, so IAM users, access keys, roles,
  AssumeRole, EC2 and EKS work as usual.

This is a local toy for demos and tests: plain HTTP, no authorization, every
secret held in memory. moto keeps its state in process-global backends.
"""

from __future__ import annotations

import collections
import hmac
import json
import re
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials
from moto.core.exceptions import ServiceException
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.iam.utils import generate_access_key_id_from_account_id
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, make_server

# STS honours a presigned request for 15 minutes either side of X-Amz-Date
# ("Signature expired: ... (now - 15 min.)", "Signature not yet current: ...").
SIGNATURE_WINDOW = timedelta(minutes=15)
# The STS query API version and its XML namespace (GetCallerIdentity responses).
STS_VERSION = "2011-06-15"
STS_XML_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
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
# Where moto's iam/sts backends are asked in when no region says otherwise.
DEFAULT_REGION = "us-east-1"
# AWS's error messages (as seen in SDK and aws-iam-authenticator logs).
_MSG_BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you "
    "provided. Check your AWS Secret Access Key and signing method. Consult the "
    "service documentation for details."
)
_MSG_UNKNOWN_KEY = "The security token included in the request is invalid."
_MSG_SESSION_EXPIRED = "The security token included in the request is expired"
_REASONS = {400: "Bad Request", 403: "Forbidden"}
# What moto's backends raise for refused calls (IAM errors; older REST errors).
_MOTO_ERRORS = (ServiceException, HTTPException)


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """AWS credentials the emulator issued, with the identity they belong to.

    Attributes:
        access_key_id: ``AKIA...`` (IAM user) or ``ASIA...`` (temporary).
        secret_access_key: The secret (a toy secret: it lives in moto's memory).
        session_token: Temporary credentials only.
        arn: The ARN GetCallerIdentity reports for these credentials.
        user_id: The UserId GetCallerIdentity reports.
        account_id: The 12-digit account.
        expiration: When temporary credentials expire (aware UTC); ``None`` otherwise.
    """

    access_key_id: str
    secret_access_key: str
    arn: str
    user_id: str
    account_id: str
    session_token: str | None = None
    expiration: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Principal:
    """What moto's state says about an access key."""

    arn: str
    user_id: str
    account_id: str
    secret_access_key: str
    session_token: str | None
    expiration: datetime | None


class _STSFaultError(Exception):
    """An STS error answer: HTTP status, AWS error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _incomplete(message: str) -> _STSFaultError:
    return _STSFaultError(400, "IncompleteSignature", message)


def _aware(value: datetime) -> datetime:
    """moto keeps naive UTC datetimes; make them aware."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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


def _aws_user_id(user: object, account_id: str) -> str:
    """Give a moto IAM user an AWS-shaped UserId (``AIDA`` + 17), once, in place.

    moto names users with random lower-case IDs; AWS uses ``AIDA...``, and the
    verifier checks that shape. Rewriting moto's record keeps IAM's GetUser and
    STS's GetCallerIdentity in agreement.
    """
    current = str(getattr(user, "id", ""))
    if not re.fullmatch(r"AIDA[A-Z0-9]{13,}", current):
        current = generate_access_key_id_from_account_id(
            account_id, prefix="AIDA", total_length=21
        )
        user.id = current  # type: ignore[attr-defined]  # moto's User has no stubs
    return current


def _find_principal(access_key_id: str, region: str) -> _Principal | None:
    """Look an access key up in moto's IAM and STS state (all accounts)."""
    partition = get_partition(region)
    for account_id, account in list(iam_backends.items()):
        iam = account[partition]
        key = iam.access_keys.get(access_key_id)
        if key is None or key.status != "Active":
            continue
        if key.user_name is not None:
            user = iam.get_user(key.user_name)
            return _Principal(
                arn=user.arn,
                user_id=_aws_user_id(user, account_id),
                account_id=account_id,
                secret_access_key=key.secret_access_key,
                session_token=None,
                expiration=None,
            )
        assumed = sts_backends[account_id][partition].get_assumed_role_from_access_key(
            access_key_id
        )
        if assumed is not None:
            return _Principal(
                arn=assumed.arn,
                user_id=assumed.user_id,
                account_id=assumed.account_id,
                secret_access_key=assumed.secret_access_key,
                session_token=assumed.session_token,
                expiration=_aware(assumed.expiration),
            )
    return None


@dataclass(frozen=True, slots=True)
class _Incoming:
    """The parts of an HTTP request that SigV4 covers."""

    method: str
    host: str
    raw_path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case name -> value


def _single(query: list[tuple[str, str]], name: str) -> str | None:
    values = [v for k, v in query if k == name]
    return values[0] if values else None


def _check_presigned_call(
    incoming: _Incoming,
    *,
    now: datetime,
    lookup: Callable[[str, str], _Principal | None],
) -> _Principal:
    """Check a presigned STS request as AWS does and return the signer.

    Args:
        incoming: The request.
        now: The current time (aware UTC).
        lookup: ``(access_key_id, region) -> principal or None``.

    Returns:
        The principal whose credentials signed the request.

    Raises:
        _STSFaultError: The status, code and message AWS would answer.
    """
    names = [k for k, _ in incoming.query]
    if len(set(names)) != len(names):
        raise _STSFaultError(
            400, "MalformedQueryString", "A query parameter appears more than once."
        )
    action = _single(incoming.query, "Action")
    version = _single(incoming.query, "Version") or "NO_VERSION_SPECIFIED"
    if action is None:
        raise _STSFaultError(400, "MissingAction", "Missing Action")
    if action != "GetCallerIdentity" or version != STS_VERSION:
        raise _STSFaultError(
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
        raise _STSFaultError(
            403,
            "SignatureDoesNotMatch",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
            f"version of date from HTTP: '{scope_date}' != '{amz_date[:8]}', "
            f"from '{amz_date}'.",
        )
    signed_names = params["X-Amz-SignedHeaders"].split(";")
    if "host" not in signed_names:
        raise _incomplete("'Host' must be a 'SignedHeader' in the AWS Authorization.")

    principal = lookup(access_key_id, region)
    if principal is None:
        raise _STSFaultError(403, "InvalidClientTokenId", _MSG_UNKNOWN_KEY)
    if _single(incoming.query, "X-Amz-Security-Token") != principal.session_token:
        raise _STSFaultError(403, "InvalidClientTokenId", _MSG_UNKNOWN_KEY)

    stamp = now.strftime(SIGV4_DATE_FORMAT)
    if signed_at < now - SIGNATURE_WINDOW:
        limit = (now - SIGNATURE_WINDOW).strftime(SIGV4_DATE_FORMAT)
        raise _STSFaultError(
            403,
            "SignatureDoesNotMatch",
            f"Signature expired: {amz_date} is now earlier than {limit} "
            f"({stamp} - 15 min.)",
        )
    if signed_at > now + SIGNATURE_WINDOW:
        limit = (now + SIGNATURE_WINDOW).strftime(SIGV4_DATE_FORMAT)
        raise _STSFaultError(
            403,
            "SignatureDoesNotMatch",
            f"Signature not yet current: {amz_date} is still later than {limit} "
            f"({stamp} + 15 min.)",
        )

    expected = _compute_signature(
        incoming, access_key_id, principal, region, amz_date, signed_names
    )
    if expected is None or not hmac.compare_digest(
        expected.encode("ascii"), params["X-Amz-Signature"].encode("ascii", "replace")
    ):
        raise _STSFaultError(403, "SignatureDoesNotMatch", _MSG_BAD_SIGNATURE)
    if principal.expiration is not None and principal.expiration <= now:
        raise _STSFaultError(403, "ExpiredToken", _MSG_SESSION_EXPIRED)
    return principal


def _compute_signature(
    incoming: _Incoming,
    access_key_id: str,
    principal: _Principal,
    region: str,
    amz_date: str,
    signed_names: list[str],
) -> str | None:
    """Recompute the SigV4 query signature with botocore's canonical-request helpers.

    Returns ``None`` when the signed headers the request claims are not the ones
    it carries (AWS answers SignatureDoesNotMatch then too).
    """
    headers = {
        name: incoming.headers[name]
        for name in signed_names
        if name in incoming.headers
    }
    request = AWSRequest(
        method=incoming.method,
        url=f"http://{incoming.host}{incoming.raw_path}",
        headers=headers,
        params=[(k, v) for k, v in incoming.query if k != "X-Amz-Signature"],
    )
    request.context["timestamp"] = amz_date
    auth = SigV4QueryAuth(
        BotocoreCredentials(
            access_key_id, principal.secret_access_key, principal.session_token
        ),
        "sts",
        region,
    )
    if auth.signed_headers(auth.headers_to_sign(request)) != ";".join(signed_names):
        return None
    canonical_request = auth.canonical_request(request)
    string_to_sign = auth.string_to_sign(request, canonical_request)
    return str(auth.signature(string_to_sign, request))


def _render_identity(principal: _Principal, request_id: str, *, as_json: bool) -> bytes:
    """Render a GetCallerIdentity answer in AWS's exact JSON or XML shape."""
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


def _render_error(fault: _STSFaultError, request_id: str, *, as_json: bool) -> bytes:
    """Render an AWS query-protocol error body (``Type`` Sender: the caller's fault)."""
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


def _incoming_from_environ(environ: dict[str, object]) -> _Incoming:
    """Collect the SigV4-relevant parts of a WSGI request."""
    raw_uri = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "/")
    raw_path = raw_uri.split("?", 1)[0] or "/"
    headers = {
        key[5:].lower().replace("_", "-"): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    return _Incoming(
        method=str(environ.get("REQUEST_METHOD", "GET")),
        host=headers.get("host", ""),
        raw_path=raw_path,
        query=parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True),
        headers=headers,
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


StartResponse = Callable[[str, list[tuple[str, str]]], object]


class _Front:
    """The WSGI application: presigned STS calls here, everything else to moto."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._moto = DomainDispatcherApplication(create_backend_app)
        self.clock = clock
        self._lock = threading.Lock()
        self.requests_total = 0
        self.outcomes: collections.Counter[str] = collections.Counter()

    def __call__(
        self, environ: dict[str, object], start_response: StartResponse
    ) -> Iterable[bytes]:
        with self._lock:
            self.requests_total += 1
        if not is_presigned_sts_query(str(environ.get("QUERY_STRING", ""))):
            result: Iterable[bytes] = self._moto(environ, start_response)
            return result
        as_json = "application/json" in str(environ.get("HTTP_ACCEPT", ""))
        request_id = str(uuid.uuid4())
        try:
            principal = _check_presigned_call(
                _incoming_from_environ(environ),
                now=self.clock(),
                lookup=_find_principal,
            )
        except _STSFaultError as fault:
            outcome, status = fault.code, f"{fault.status} {_REASONS[fault.status]}"
            body = _render_error(fault, request_id, as_json=as_json)
        else:
            outcome, status = "OK", "200 OK"
            body = _render_identity(principal, request_id, as_json=as_json)
        with self._lock:
            self.outcomes[outcome] += 1
        content_type = "application/json" if as_json else "text/xml"
        start_response(
            status,
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                ("x-amzn-RequestId", request_id),
            ],
        )
        return [body]


class _RequestHandler(MotoRequestHandler):
    """moto's handler, logging one line per request without the query string.

    The query of a presigned URL holds a signature and maybe a session token:
    it never reaches a log.
    """

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if getattr(self.server, "kubeiam_verbose", False):
            path = self.path.split("?", 1)[0]
            sys.stderr.write(f"{self.command} {path} {code}\n")

    def log(self, type: str, message: str, *args: object) -> None:
        # Errors (a crash inside moto) always show; the rest only when verbose.
        if type == "error" or getattr(self.server, "kubeiam_verbose", False):
            sys.stderr.write(f"{type}: {message % args}\n")


class STSEmulator:
    """A local STS that checks presigned GetCallerIdentity calls like AWS.

    Args:
        host: The address to listen on (loopback by default).
        port: The TCP port; 0 picks a free one.
        clock: Returns the current time (aware UTC); the real clock by default.
        verbose: Log one line per request (without query strings) to stderr.

    Example::

        with STSEmulator() as sts:
            creds = sts.create_user("alice")
            # presign GetCallerIdentity against sts.url with creds, then GET it
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Callable[[], datetime] | None = None,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._front = _Front(clock or _utcnow)
        self._verbose = verbose
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.account_id = DEFAULT_ACCOUNT_ID

    def start(self) -> None:
        """Bind the port and serve in a background thread.

        Raises:
            OSError: The address cannot be bound.
        """
        if self._server is not None:
            return
        # Bind here: werkzeug's own bind prints to stderr and calls sys.exit on
        # failure, and callers need an OSError they can report.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.create_server(
            (self.host, self._requested_port), family=family
        ) as sock:
            server = make_server(
                self.host,
                sock.getsockname()[1],
                self._front,
                threaded=True,
                request_handler=_RequestHandler,
                fd=sock.fileno(),
            )
        server.kubeiam_verbose = self._verbose  # type: ignore[attr-defined]  # read by _RequestHandler
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="kubeiam-sts-emulator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port (moto's state is kept)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port.

        Raises:
            RuntimeError: The emulator is not started.
        """
        if self._server is None:
            raise RuntimeError("STSEmulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The endpoint, ``http://HOST:PORT`` (use it as the STS endpoint URL)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def requests_total(self) -> int:
        """Every request served so far, moto's included."""
        return self._front.requests_total

    @property
    def presigned_total(self) -> int:
        """Presigned STS requests checked so far (accepted or not)."""
        return sum(self._front.outcomes.values())

    @property
    def outcomes(self) -> dict[str, int]:
        """Presigned STS outcomes so far: ``OK`` or the AWS error code -> count."""
        return dict(self._front.outcomes)

    def create_user(self, name: str, path: str = "/") -> Credentials:
        """Create an IAM user with an access key in moto's state.

        Args:
            name: The user name (unique in the account).
            path: The IAM path, ``/`` or ``/a/b/``.

        Returns:
            The user's long-term credentials and identity.

        Raises:
            ValueError: The user exists already (or moto refused the name).
        """
        iam = iam_backends[self.account_id][get_partition(DEFAULT_REGION)]
        try:
            user = iam.create_user(
                region_name=DEFAULT_REGION, user_name=name, path=path
            )
            key = iam.create_access_key(user_name=name)
        except _MOTO_ERRORS as exc:
            raise ValueError(f"cannot create IAM user {name!r}: {exc}") from exc
        return Credentials(
            access_key_id=key.access_key_id,
            secret_access_key=key.secret_access_key,
            arn=user.arn,
            user_id=_aws_user_id(user, self.account_id),
            account_id=self.account_id,
        )

    def create_role(
        self, name: str, path: str = "/", trust_policy: dict[str, object] | None = None
    ) -> str:
        """Create an IAM role in moto's state.

        Args:
            name: The role name.
            path: The IAM path.
            trust_policy: The assume-role policy; by default the account may assume it.

        Returns:
            The role ARN.

        Raises:
            ValueError: The role exists already (or moto refused the name).
        """
        partition = get_partition(DEFAULT_REGION)
        policy = trust_policy or {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {
                        "AWS": f"arn:{partition}:iam::{self.account_id}:root"
                    },
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        try:
            role = iam_backends[self.account_id][partition].create_role(
                role_name=name,
                assume_role_policy_document=json.dumps(policy),
                path=path,
                permissions_boundary=None,
                description="",
                tags=[],
                max_session_duration=None,
            )
        except _MOTO_ERRORS as exc:
            raise ValueError(f"cannot create IAM role {name!r}: {exc}") from exc
        return str(role.arn)

    def assume_role(
        self,
        creds: Credentials,
        role_arn: str,
        session_name: str,
        *,
        duration_seconds: int = 900,
    ) -> Credentials:
        """Assume a role with ``creds`` (moto does not evaluate trust policies).

        Args:
            creds: The caller's credentials; they must be known and active.
            role_arn: The role to assume.
            session_name: The RoleSessionName.
            duration_seconds: The session length (AWS minimum 900).

        Returns:
            Temporary credentials with a session token and expiration.

        Raises:
            ValueError: ``creds`` are not credentials the emulator knows.
        """
        caller = _find_principal(creds.access_key_id, DEFAULT_REGION)
        if caller is None or caller.secret_access_key != creds.secret_access_key:
            raise ValueError("unknown or inactive credentials")
        sts = sts_backends[caller.account_id][get_partition(DEFAULT_REGION)]
        assumed = sts.assume_role(
            region_name=DEFAULT_REGION,
            role_session_name=session_name,
            role_arn=role_arn,
            policy="",
            duration=duration_seconds,
            external_id="",
        )
        return Credentials(
            access_key_id=assumed.access_key_id,
            secret_access_key=assumed.secret_access_key,
            session_token=assumed.session_token,
            arn=assumed.arn,
            user_id=assumed.user_id,
            account_id=assumed.account_id,
            expiration=_aware(assumed.expiration),
        )

    def expire_session(self, creds: Credentials) -> None:
        """Make temporary credentials expire now (for tests and the demo).

        Args:
            creds: Credentials from :meth:`assume_role` (or AssumeRole through moto).

        Raises:
            ValueError: ``creds`` are not temporary credentials the emulator knows.
        """
        partition = get_partition(DEFAULT_REGION)
        for account_id in list(iam_backends):
            sts = sts_backends[account_id][partition]
            assumed = sts.get_assumed_role_from_access_key(creds.access_key_id)
            if assumed is not None:
                past = self._front.clock() - timedelta(seconds=1)
                assumed.expiration = past.astimezone(UTC).replace(tzinfo=None)
                return
        raise ValueError("not temporary credentials of this emulator")
