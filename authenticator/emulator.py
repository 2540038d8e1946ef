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

The checks and the answers are pure and live in
:mod:`authenticator.emulator_protocol`; this module is the shell around them:
the WSGI front, the key lookup in moto's state and botocore's signing.

This is a local toy for demos and tests: plain HTTP, no authorization, every
secret held in memory. moto keeps its state in process-global backends.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import re
import socket
import ssl
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self
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

from authenticator.emulator_protocol import (
    Incoming,
    Principal,
    SigningScope,
    build_answer,
    iam_write_action,
    is_presigned_sts_query,
)

__all__ = ["Credentials", "STSEmulator", "is_presigned_sts_query"]

# Where moto's iam/sts backends are asked in when no region says otherwise.
DEFAULT_REGION = "us-east-1"
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


def _aware(value: datetime) -> datetime:
    """moto keeps naive UTC datetimes; make them aware."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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


def _find_principal(access_key_id: str, region: str) -> Principal | None:
    """Look an access key up in moto's IAM and STS state (all accounts)."""
    partition = get_partition(region)
    for account_id, account in list(iam_backends.items()):
        iam = account[partition]
        key = iam.access_keys.get(access_key_id)
        if key is None or key.status != "Active":
            continue
        if key.user_name is not None:
            user = iam.get_user(key.user_name)
            return Principal(
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
            return Principal(
                arn=assumed.arn,
                user_id=assumed.user_id,
                account_id=assumed.account_id,
                secret_access_key=assumed.secret_access_key,
                session_token=assumed.session_token,
                expiration=_aware(assumed.expiration),
            )
    return None


def _compute_signature(
    incoming: Incoming, principal: Principal, signing: SigningScope
) -> str | None:
    """Recompute the SigV4 query signature with botocore's canonical-request helpers.

    Returns ``None`` when the signed headers the request claims are not the ones
    it carries (AWS answers SignatureDoesNotMatch then too).
    """
    headers = {
        name: incoming.headers[name]
        for name in signing.signed_headers
        if name in incoming.headers
    }
    request = AWSRequest(
        method=incoming.method,
        url=f"http://{incoming.host}{incoming.raw_path}",
        headers=headers,
        params=[(k, v) for k, v in incoming.query if k != "X-Amz-Signature"],
    )
    request.context["timestamp"] = signing.amz_date
    auth = SigV4QueryAuth(
        BotocoreCredentials(
            signing.access_key_id, principal.secret_access_key, principal.session_token
        ),
        "sts",
        signing.region,
    )
    claimed = ";".join(signing.signed_headers)
    if auth.signed_headers(auth.headers_to_sign(request)) != claimed:
        return None
    canonical_request = auth.canonical_request(request)
    string_to_sign = auth.string_to_sign(request, canonical_request)
    return str(auth.signature(string_to_sign, request))


def _utcnow() -> datetime:
    return datetime.now(UTC)


# Seconds an idle keep-alive connection to the emulator stays open.
KEEPALIVE_IDLE_S = 15.0

StartResponse = Callable[[str, list[tuple[str, str]]], object]


class _Front:
    """The WSGI application: presigned STS calls here, everything else to moto."""

    def __init__(
        self, clock: Callable[[], datetime], *, allow_iam_writes: bool = False
    ) -> None:
        self._moto = DomainDispatcherApplication(create_backend_app)
        self.clock = clock
        self.allow_iam_writes = allow_iam_writes
        self._lock = threading.Lock()
        self.requests_total = 0
        self.outcomes: collections.Counter[str] = collections.Counter()

    def __call__(
        self, environ: dict[str, object], start_response: StartResponse
    ) -> Iterable[bytes]:
        with self._lock:
            self.requests_total += 1
        if not is_presigned_sts_query(str(environ.get("QUERY_STRING", ""))):
            refused = None if self.allow_iam_writes else self._iam_write(environ)
            if refused is not None:
                return self._refuse(refused, start_response)
            result: Iterable[bytes] = self._moto(environ, start_response)
            return result
        answer = build_answer(
            environ,
            now=self.clock(),
            request_id=str(uuid.uuid4()),
            lookup=_find_principal,
            sign=_compute_signature,
        )
        with self._lock:
            self.outcomes[answer.outcome] += 1
        start_response(answer.status, answer.headers)
        return [answer.body]

    @staticmethod
    def _iam_write(environ: dict[str, object]) -> str | None:
        """The IAM write this request asks for (its body is read and put back)."""
        body = b""
        content_type = str(environ.get("CONTENT_TYPE", ""))
        if content_type.startswith("application/x-www-form-urlencoded"):
            try:
                length = int(str(environ.get("CONTENT_LENGTH") or 0))
            except ValueError:
                length = 0
            stream = environ["wsgi.input"]
            body = stream.read(min(length, 1 << 20)) if length > 0 else b""  # type: ignore[attr-defined]  # a WSGI input stream
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return iam_write_action(
            str(environ.get("QUERY_STRING", "")),
            body,
            str(environ.get("HTTP_AUTHORIZATION", "")),
        )

    @staticmethod
    def _refuse(action: str, start_response: StartResponse) -> Iterable[bytes]:
        message = (
            f"kubeiam sts-emulator: IAM write {action} refused: only the emulator's "
            "own process creates users and roles (start it with "
            "--allow-remote-iam-writes to allow this)"
        )
        body = (
            '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            f"<Error><Type>Sender</Type><Code>AccessDenied</Code>"
            f"<Message>{escape(message)}</Message></Error>"
            "<RequestId>kubeiam-emulator</RequestId></ErrorResponse>"
        ).encode()
        start_response(
            "403 Forbidden",
            [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]


class _RequestHandler(MotoRequestHandler):
    """moto's handler: keep-alive for body-less requests, a log line without the query.

    The query of a presigned URL holds a signature and maybe a session token:
    it never reaches a log.

    Werkzeug's handler closes every connection (``Connection: close``), so each
    presigned call cost its client a new TCP connection. A GET or HEAD without
    a body whose answer has a ``Content-Length`` leaves nothing unread on
    either side, so its connection is kept open for the next request; anything
    else (a body to drain, a chunked answer, an HTTP/1.0 client) still closes.
    An idle connection ends after :data:`KEEPALIVE_IDLE_S`.
    """

    protocol_version = "HTTP/1.1"
    # socketserver.StreamRequestHandler: the socket timeout; a read past it ends
    # the connection (werkzeug's handle() treats it as a dropped connection).
    timeout = KEEPALIVE_IDLE_S
    _kubeiam_reusable = False
    _kubeiam_sized = False

    def setup(self) -> None:
        super().setup()
        # The status line, headers and body go out in separate writes: without
        # TCP_NODELAY a kept-alive connection waits out the peer's delayed ACK.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        headers = self.headers
        self._kubeiam_reusable = (
            self.command in ("GET", "HEAD")
            and headers.get("Content-Length", "0").strip() == "0"
            and "Transfer-Encoding" not in headers
        )
        self._kubeiam_sized = False
        real_rfile = self.rfile
        try:
            super().run_wsgi()
        finally:
            self.rfile = real_rfile

    def make_environ(self) -> Any:
        environ = super().make_environ()
        if self._kubeiam_reusable:
            # After answering, werkzeug drains whatever the socket holds (it
            # assumes the connection closes): that would swallow the client's
            # next request. The environ keeps the real stream (a body-less
            # request has nothing in it); the drain reads this empty one.
            self.rfile = io.BytesIO()
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        name = keyword.lower()
        if name == "content-length":
            self._kubeiam_sized = True
        elif name == "transfer-encoding":
            self._kubeiam_sized = False
        elif (
            name == "connection"
            and value.lower() == "close"
            and self._kubeiam_reusable
            and self._kubeiam_sized
        ):
            return  # keep the connection: nothing is left to read on either side
        super().send_header(keyword, value)

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
        allow_iam_writes: Serve IAM writes (CreateUser, CreateAccessKey,
            PutRolePolicy...) that come over HTTP. Off by default: anyone who
            can reach the port could otherwise mint identities a webhook that
            trusts this STS would accept; this process's own helpers
            (:meth:`create_user`, :meth:`create_role`) always work.
        ssl_context: Serve HTTPS with this context (its certificate names the
            STS hosts a test maps to the listening address); plain HTTP if None.

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
        allow_iam_writes: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self._ssl_context = ssl_context
        self._requested_port = port
        self._front = _Front(clock or _utcnow, allow_iam_writes=allow_iam_writes)
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
                ssl_context=self._ssl_context,
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
        """The endpoint, ``http[s]://HOST:PORT`` (use it as the STS endpoint URL)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "http" if self._ssl_context is None else "https"
        return f"{scheme}://{host}:{self.port}"

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
