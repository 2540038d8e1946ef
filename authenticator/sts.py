"""The STS call: GET a validated presigned GetCallerIdentity URL (docs/token-format.md).

``STSClient`` is the I/O shell (kept-alive connections from
:mod:`authenticator.sts_pool` that take the validated URL as it is, or a
``requests.Session`` through a proxy; no redirects, a timeout, a capped body);
``parse_get_caller_identity`` is the pure, strict parser of STS's answer (JSON
or XML) into an :class:`Identity`.

What goes on the wire: ``GET /?<query>`` with the headers ``Host`` (added by
the HTTP library from the pinned host; it is signed), ``x-k8s-aws-id`` and
``Accept: application/json``. urllib3's automatic ``User-Agent`` and
``Accept-Encoding`` are suppressed with its ``SKIP_HEADER`` marker (and, on a
proxied call, requests' session defaults are removed), so nothing else is sent,
no cookie is kept and nothing from the client is forwarded.

Proxies: an ``https`` STS URL goes through ``HTTPS_PROXY`` (or ``https_proxy``)
unless ``NO_PROXY`` matches its host, as aws-iam-authenticator's Go client does.
The environment is read once, when the client is made; nothing else from it is
used (no ``.netrc``, no CA bundle). A plain ``http`` URL (a loopback emulator)
is never proxied. Only a token that passed every offline check gets this far.
A call that is not proxied skips requests altogether (its URL preparation
was most of a cold review's CPU): see :mod:`authenticator.sts_pool`.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import time
from collections.abc import Callable, Mapping
from http.cookiejar import DefaultCookiePolicy
from typing import Any, NoReturn
from urllib.parse import urlsplit
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]
from xml.parsers import expat

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.util import SKIP_HEADER

from authenticator.arn import canonicalize_arn, parse_arn
from authenticator.errors import (
    InvalidARNError,
    STSRejectedError,
    STSThrottledError,
    STSUnavailableError,
)
from authenticator.identity import Identity
from authenticator.sts_pool import PooledResponse, STSConnections
from authenticator.verify import PresignedCall
from authenticator.wire import CLUSTER_ID_HEADER, STS_XML_NAMESPACE

# Reason codes of the STS outcomes (TokenError.reason), for logs and metrics.
STS_REASONS: dict[str, str] = {
    "sts_redirect": "STS answered with a redirect (never followed)",
    "sts_rejected": "STS refused the request (4xx), e.g. a wrong cluster ID",
    "sts_bad_status": "STS answered an unexpected status",
    "sts_body_too_large": "STS's answer is larger than the cap",
    "sts_bad_body": "STS's 200 answer is not one well-formed GetCallerIdentity result",
    "sts_bad_identity": "STS's answer names an identity that fails the shape checks",
    "sts_throttled": "STS throttled the request",
    "sts_server_error": "STS answered 5xx",
    "sts_timeout": "STS did not answer in time",
    "sts_unreachable": "STS could not be reached",
}
_JSON_TYPES = frozenset(
    {"application/json", "application/x-amz-json-1.0", "application/x-amz-json-1.1"}
)
_XML_TYPES = frozenset({"text/xml", "application/xml"})
_RESULT_FIELDS = ("Arn", "UserId", "Account")
# Account IDs are 12 digits.
_ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
# Unique IDs (AIDA..., AROA...): letters and digits; the prefixes are not
# checked so that STS emulators with other ID schemes still work.
_UNIQUE_ID_RE = re.compile(r"^[A-Za-z0-9]{1,128}$")
# AWS unique-ID prefixes that name a principal type (IAM identifiers reference):
# a UserId carrying one must agree with the ARN's type.
_ID_PREFIX_KINDS: dict[str, frozenset[str]] = {
    "AIDA": frozenset({"user"}),
    "AROA": frozenset({"role", "assumed-role"}),
}
# Session and federated-user names: IAM RoleSessionName / Name pattern.
_NAME_RE = re.compile(r"^[A-Za-z0-9_+=,.@-]{1,128}$")
# An AWS error code in an error body, quoted in messages (never the body itself).
_ERROR_CODE_RE = re.compile(
    rb"<Code>([A-Za-z0-9.]{1,64})</Code>|\"Code\"\s*:\s*\"([A-Za-z0-9.]{1,64})\""
)
_CHUNK = 16 * 1024
# What each STS error code on a presigned GetCallerIdentity usually means.
_STS_ERROR_HINTS: dict[str, str] = {
    "SignatureDoesNotMatch": (
        "the signature does not cover this cluster ID: the token was most likely "
        "minted for another cluster ID (kubeiam token -i <cluster-id>)"
    ),
    "InvalidClientTokenId": (
        "STS does not know the access key: the credentials are wrong or deleted, "
        "or they belong to another partition or a region not enabled for the account"
    ),
    "ExpiredToken": (
        "the session credentials that signed the token have expired; refresh them "
        "(aws sso login, a new AssumeRole) and mint a new token"
    ),
    "IncompleteSignature": "the token's signature is incomplete; mint a new token",
    "AccessDenied": (
        "the identity may not call sts:GetCallerIdentity here (an SCP or a VPC "
        "endpoint policy)"
    ),
    "RequestExpired": (
        "the token is older than STS accepts; check the client's clock and mint "
        "a new token"
    ),
}
_DEFAULT_HINT = "the token is not valid for this STS endpoint; mint a new one"


class _NoRedirectSession(requests.Session):
    """A session that never treats an answer as a redirect.

    With ``allow_redirects=False`` requests still reads the whole body of a 3xx
    to prepare the next request; with no redirect target it reads nothing.
    """

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        """Never a redirect target (STS answers are final)."""
        return None


class _PreloadedTLSAdapter(HTTPAdapter):
    """An adapter that verifies TLS with one context holding the CA bundle.

    requests hands urllib3 the bundle's *path* for every new connection, and
    urllib3 then parses the whole bundle again (~150 certificates, tens of
    milliseconds of CPU per connection, most of a cold TokenReview's cost).
    Here the bundle (the same file requests uses) is loaded once per client.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.ssl_context = ssl.create_default_context(cafile=DEFAULT_CA_BUNDLE_PATH)
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """The pool manager, with the preloaded context for every HTTPS pool."""
        pool_kwargs["ssl_context"] = self.ssl_context
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """As requests does, without re-reading the default bundle per connection."""
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]  # untyped in types-requests
        if verify is True:
            conn.ca_certs = None  # the preloaded context already trusts the bundle
            conn.ca_cert_dir = None


class _ProxiedResponse:
    """A requests answer (a proxied call) with :class:`PooledResponse`'s interface."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = response.headers

    def read1(self, amt: int) -> bytes:
        chunk: bytes = self._response.raw.read1(amt, decode_content=False)
        return chunk

    def __enter__(self) -> _ProxiedResponse:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._response.close()


_Answer = PooledResponse | _ProxiedResponse


class _SlowAnswerError(Exception):
    """The answer took longer than the whole-call timeout."""


class STSClient:
    """Calls STS GetCallerIdentity through one pooled session.

    Args:
        timeout: Seconds for connecting and for the whole answer.
        max_body_bytes: The largest answer body read; larger is a rejection.
        pool_maxsize: Connections kept per host.
        observe: Called once per STS request with the HTTP status as text
            (``"200"``, ``"403"``) or ``"error"`` / ``"timeout"``.
        environ: Where ``HTTPS_PROXY`` / ``NO_PROXY`` are read (default: the
            process environment; ``{}``: never proxy).
    """

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_body_bytes: int = 64 * 1024,
        pool_maxsize: int = 32,
        observe: Callable[[str], None] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self._https_proxy = env.get("https_proxy") or env.get("HTTPS_PROXY") or None
        self._no_proxy = env.get("no_proxy") or env.get("NO_PROXY") or None
        # scheme://host[:port] -> its proxy (or None): the allow-list is finite.
        self._proxy_by_origin: dict[str, dict[str, str] | None] = {}
        self._timeout = timeout
        self._max_body = max_body_bytes
        self._observe = observe or (lambda _code: None)
        session = _NoRedirectSession()
        session.headers.clear()
        session.trust_env = False  # no proxies or .netrc from the environment
        # STS cookies are never stored, so never sent back.
        session.cookies = RequestsCookieJar(
            policy=DefaultCookiePolicy(allowed_domains=[])
        )
        adapter = _PreloadedTLSAdapter(
            pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self._session = session
        # The direct (unproxied) calls verify with the adapter's context: the
        # bundle is read once per client.
        self._connections = STSConnections(
            timeout=timeout, maxsize=pool_maxsize, ssl_context=adapter.ssl_context
        )

    def call_get_caller_identity(self, call: PresignedCall) -> Identity:
        """GET the presigned URL and return the identity STS reports.

        Args:
            call: The validated call from ``verify_token``.

        Returns:
            The caller's identity.

        Raises:
            STSRejectedError: 3xx (never followed), 4xx other than throttling,
                another non-200 status, a body over the cap, or a 200 body that
                is not one well-formed GetCallerIdentity result.
            STSThrottledError: 429, or a non-200 answer whose body mentions
                Throttling.
            STSUnavailableError: 5xx, a transport failure or a timeout.
        """
        headers = {
            CLUSTER_ID_HEADER: call.cluster_id,
            "Accept": "application/json",
            "User-Agent": SKIP_HEADER,
            "Accept-Encoding": SKIP_HEADER,
        }
        deadline = time.monotonic() + self._timeout
        proxies = self._proxies_for(call.url)
        response: _Answer
        try:
            if proxies is None:
                response = self._connections.get(call.url, headers)
            else:
                response = _ProxiedResponse(
                    self._session.get(
                        call.url,
                        proxies=proxies,
                        headers=headers,
                        timeout=self._timeout,
                        allow_redirects=False,
                        stream=True,
                    )
                )
        except (requests.Timeout, TimeoutError) as exc:
            self._observe("timeout")
            raise STSUnavailableError(
                "sts_timeout", f"STS did not answer within {self._timeout:g} s"
            ) from exc
        except ConnectTimeoutError as exc:
            # urllib3's NewConnectionError (refused, no route) is a subclass.
            timed_out = not isinstance(exc, NewConnectionError)
            self._observe("timeout" if timed_out else "error")
            if timed_out:
                raise STSUnavailableError(
                    "sts_timeout", f"STS did not answer within {self._timeout:g} s"
                ) from exc
            raise STSUnavailableError(
                "sts_unreachable", f"could not reach STS: {type(exc).__name__}"
            ) from exc
        except (
            requests.RequestException,
            OSError,
            HTTPError,
            http.client.HTTPException,
            ValueError,
        ) as exc:
            self._observe("error")
            raise STSUnavailableError(
                "sts_unreachable", f"could not reach STS: {type(exc).__name__}"
            ) from exc
        with response:
            self._observe(str(response.status))
            body = self._read(response, deadline)
            return self._outcome(response, body, call)

    def _proxies_for(self, url: str) -> dict[str, str] | None:
        """``{"https": proxy}`` when an https URL goes through the proxy."""
        if self._https_proxy is None or not url.startswith("https://"):
            return None
        origin = urlsplit(url).netloc
        if origin not in self._proxy_by_origin:
            # The standard library's NO_PROXY rules (proxy_bypass_environment is
            # public since Python 2 but missing from typeshed) (names, suffixes, "*"),
            # given the value read at start: the environment is never touched.
            bypass = bool(self._no_proxy) and bool(
                proxy_bypass_environment(origin, {"no": self._no_proxy or ""})
            )
            self._proxy_by_origin[origin] = (
                None if bypass else {"https": self._https_proxy}
            )
        return self._proxy_by_origin[origin]

    def close(self) -> None:
        """Close the pooled connections."""
        self._connections.close()
        self._session.close()

    def _read(self, response: _Answer, deadline: float) -> bytes:
        """Read at most ``max_body_bytes`` + 1 raw bytes, within the deadline."""
        chunks: list[bytes] = []
        size = 0
        try:
            while size <= self._max_body:
                want = min(_CHUNK, self._max_body + 1 - size)
                # read1: one socket read, so a dripping body cannot outlast
                # the deadline inside a single call.
                chunk = response.read1(want)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if time.monotonic() > deadline:
                    raise _SlowAnswerError
        except (ReadTimeoutError, _SlowAnswerError) as exc:
            raise STSUnavailableError(
                "sts_timeout",
                f"STS did not finish its answer within {self._timeout:g} s",
            ) from exc
        except (
            OSError,
            HTTPError,
            http.client.HTTPException,
            requests.RequestException,
        ) as exc:
            raise STSUnavailableError(
                "sts_unreachable", f"reading STS's answer failed: {type(exc).__name__}"
            ) from exc
        return b"".join(chunks)

    def _outcome(self, response: _Answer, body: bytes, call: PresignedCall) -> Identity:
        status = response.status
        if 300 <= status < 400:
            raise STSRejectedError(
                "sts_redirect",
                f"STS answered {status} (a redirect); redirects are never followed",
            )
        too_large = len(body) > self._max_body
        if status != 200:
            if status == 429 or b"Throttling" in body:
                raise STSThrottledError(
                    "sts_throttled", f"STS throttled the request ({status})"
                )
            code = _error_code(body)
            if status >= 500:
                raise STSUnavailableError(
                    "sts_server_error", f"STS answered {status}{code}"
                )
            if 400 <= status < 500:
                hint = _STS_ERROR_HINTS.get(code.strip(), _DEFAULT_HINT)
                raise STSRejectedError(
                    "sts_rejected", f"STS refused the token ({status}{code}): {hint}"
                )
            raise STSRejectedError(
                "sts_bad_status", f"STS answered an unexpected {status}"
            )
        if too_large:
            raise STSRejectedError(
                "sts_body_too_large",
                f"STS's answer is larger than {self._max_body} bytes",
            )
        if response.headers.get("Content-Encoding", "identity").lower() != "identity":
            raise STSRejectedError("sts_bad_body", "STS's answer is content-encoded")
        return parse_get_caller_identity(
            body,
            content_type=response.headers.get("Content-Type", ""),
            access_key_id=call.access_key_id,
        )


def parse_get_caller_identity(
    body: bytes, *, content_type: str, access_key_id: str
) -> Identity:
    """Parse a GetCallerIdentity answer strictly into an identity.

    JSON (``{"GetCallerIdentityResponse": {"GetCallerIdentityResult": {...},
    "ResponseMetadata": {"RequestId": ...}}}``) or XML (the STS namespace, no
    DTD, entities, comments or processing instructions), each of ``Arn``,
    ``UserId`` and ``Account`` exactly once as a non-empty string, nothing else.

    Args:
        body: The answer body.
        content_type: The ``Content-Type`` header (JSON or XML; empty: sniffed).
        access_key_id: The token's access key ID (from its credential scope).

    Returns:
        The identity (docs/token-format.md).

    Raises:
        STSRejectedError: ``sts_bad_body`` when the body is not exactly one
            well-formed result; ``sts_bad_identity`` when the ARN does not
            canonicalize, the account is not 12 digits or not the ARN's, or the
            UserId has the wrong shape.
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if not media:
        media = "application/json" if body.lstrip()[:1] == b"{" else "text/xml"
    if media in _JSON_TYPES:
        fields = _parse_json(body)
    elif media in _XML_TYPES:
        fields = _parse_xml(body)
    else:
        _bad_body(f"its Content-Type is {media[:60]!r}, not JSON or XML")
    return _identity(fields["Arn"], fields["UserId"], fields["Account"], access_key_id)


def _bad_body(why: str) -> NoReturn:
    raise STSRejectedError(
        "sts_bad_body", f"STS's answer is not a GetCallerIdentity result: {why}"
    )


def _bad_identity(why: str) -> NoReturn:
    raise STSRejectedError(
        "sts_bad_identity", f"STS's answer names a malformed identity: {why}"
    )


def _error_code(body: bytes) -> str:
    match = _ERROR_CODE_RE.search(body[:8192])
    if not match:
        return ""
    return " " + (match[1] or match[2]).decode("ascii")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            _bad_body(f"key {key[:40]!r} appears twice")
        out[key] = value
    return out


def _reject_constant(name: str) -> NoReturn:
    _bad_body(f"it contains {name}")


def _parse_json(body: bytes) -> dict[str, str]:
    try:
        doc: object = json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        _bad_body("it is not valid UTF-8 JSON")
    response = _only_object(doc, "the document", {"GetCallerIdentityResponse"}, set())
    inner = _only_object(
        response["GetCallerIdentityResponse"],
        "GetCallerIdentityResponse",
        {"GetCallerIdentityResult"},
        {"ResponseMetadata"},
    )
    if "ResponseMetadata" in inner:
        meta = _object_with(inner["ResponseMetadata"], "ResponseMetadata", set())
        if not isinstance(meta.get("RequestId", ""), str):
            _bad_body("RequestId is not a string")
    # Fields STS may add to the result or metadata later are ignored (as AWS's own
    # SDKs and aws-iam-authenticator do): refusing them would turn an additive API
    # change into an outage, and the three fields read here are checked strictly.
    result = _object_with(
        inner["GetCallerIdentityResult"], "GetCallerIdentityResult", set(_RESULT_FIELDS)
    )
    fields: dict[str, str] = {}
    for name in _RESULT_FIELDS:
        value = result[name]
        if not isinstance(value, str) or not value:
            _bad_body(f"{name} is not a non-empty string")
        fields[name] = value
    return fields


def _object_with(value: object, where: str, required: set[str]) -> dict[str, object]:
    """``value`` is an object with (at least) the required keys."""
    if not isinstance(value, dict):
        _bad_body(f"{where} is not an object")
    if not required <= set(value):
        _bad_body(f"{where} lacks {sorted(required - set(value))!r}")
    return value


def _only_object(
    value: object, where: str, required: set[str], optional: set[str]
) -> dict[str, object]:
    """``value`` is an object with the required keys, optional ones, no other."""
    if not isinstance(value, dict):
        _bad_body(f"{where} is not an object")
    keys = set(value)
    if not required <= keys or not keys <= required | optional:
        _bad_body(
            f"{where} has keys {sorted(keys)[:8]!r}, expected {sorted(required)!r}"
        )
    return value


class _Element:
    """A minimal XML element: name, child elements, text (no attributes)."""

    __slots__ = ("children", "name", "text")

    def __init__(self, name: str) -> None:
        self.name = name
        self.children: list[_Element] = []
        self.text = ""


def _parse_xml(body: bytes) -> dict[str, str]:
    root = _build_xml_tree(body)
    ns = STS_XML_NAMESPACE + " "
    if root.name != ns + "GetCallerIdentityResponse" or root.text.strip():
        _bad_body("the root is not an STS GetCallerIdentityResponse")
    names = [child.name for child in root.children]
    if names not in (
        [ns + "GetCallerIdentityResult"],
        [ns + "GetCallerIdentityResult", ns + "ResponseMetadata"],
    ):
        _bad_body("GetCallerIdentityResponse has unexpected elements")
    result = root.children[0]
    if result.text.strip():
        _bad_body("GetCallerIdentityResult has stray text")
    fields: dict[str, str] = {}
    for child in result.children:
        name = child.name.removeprefix(ns)
        if child.name == name:
            _bad_body(f"GetCallerIdentityResult has a foreign element {name[:40]!r}")
        if name not in _RESULT_FIELDS:
            continue  # a field STS added later: ignored, like the JSON form
        if name in fields:
            _bad_body(f"GetCallerIdentityResult repeats {name!r}")
        if child.children or not child.text:
            _bad_body(f"{name} is not a non-empty text element")
        fields[name] = child.text
    if set(fields) != set(_RESULT_FIELDS):
        _bad_body("GetCallerIdentityResult lacks Arn, UserId or Account")
    if len(root.children) == 2:
        meta = root.children[1]
        if meta.text.strip():
            _bad_body("ResponseMetadata has stray text")
        request_ids = [c for c in meta.children if c.name == ns + "RequestId"]
        if len(request_ids) > 1 or any(c.children for c in request_ids):
            _bad_body("RequestId is not one text element")
    return fields


def _build_xml_tree(body: bytes) -> _Element:
    """Parse with expat, refusing DTDs, entities, comments, CDATA, PIs, attributes."""
    try:
        body.decode("utf-8")  # STS answers in UTF-8; expat would honour a BOM
    except UnicodeDecodeError:
        _bad_body("it is not UTF-8")
    parser = expat.ParserCreate(encoding="utf-8", namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[_Element] = []
    roots: list[_Element] = []

    def refuse(what: str) -> Callable[..., None]:
        def handler(*_args: object) -> None:
            _bad_body(f"it contains {what}")

        return handler

    def start(name: str, attrs: dict[str, str]) -> None:
        if attrs:
            _bad_body("it has XML attributes")
        element = _Element(name)
        (stack[-1].children if stack else roots).append(element)
        stack.append(element)

    def end(_name: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if not stack:
            return
        current = stack[-1]
        if current.children and data.strip():
            _bad_body("it mixes text and elements")
        current.text += data

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = refuse("a DOCTYPE")
    parser.EntityDeclHandler = refuse("an entity declaration")
    parser.UnparsedEntityDeclHandler = refuse("an entity declaration")
    parser.NotationDeclHandler = refuse("a notation declaration")
    parser.ExternalEntityRefHandler = _refuse_external
    parser.SkippedEntityHandler = refuse("an entity reference")
    parser.CommentHandler = refuse("a comment")
    parser.ProcessingInstructionHandler = refuse("a processing instruction")
    parser.StartCdataSectionHandler = refuse("a CDATA section")
    try:
        parser.Parse(body, True)
    except expat.ExpatError:
        _bad_body("it is not well-formed XML")
    if len(roots) != 1:
        _bad_body("it has no single root element")
    return roots[0]


def _refuse_external(*_args: object) -> int:
    _bad_body("it refers to an external entity")


def _identity(arn: str, user_id: str, account: str, access_key_id: str) -> Identity:
    """Apply the identity rules of docs/token-format.md."""
    if not _ACCOUNT_RE.fullmatch(account):
        _bad_identity("Account is not 12 digits")
    try:
        canonical = canonicalize_arn(arn)
    except InvalidARNError as exc:
        raise STSRejectedError(
            "sts_bad_identity", f"STS's ARN does not canonicalize: {exc}"
        ) from exc
    parsed = parse_arn(arn)
    if parsed.account != account:
        _bad_identity("the ARN's account is not Account")
    kind = parsed.resource.split("/", 1)[0]
    principal, sep, session = user_id.partition(":")
    if kind == "root":
        if user_id != account:
            _bad_identity("a root identity's UserId must be its account ID")
        principal, session = user_id, ""
    elif kind == "federated-user":
        # Federated users keep the whole UserId (<account>:<name>): splitting it
        # would make it equal the root's UserId (commit 9fa86f7d).
        if principal != account or not _NAME_RE.fullmatch(session):
            _bad_identity("a federated user's UserId must be <account>:<name>")
        principal, session = user_id, ""
    elif kind == "assumed-role":
        if (
            not sep
            or not _UNIQUE_ID_RE.fullmatch(principal)
            or not _NAME_RE.fullmatch(session)
        ):
            _bad_identity("a role session's UserId must be <role id>:<session name>")
    elif kind == "role":
        # A role only ever calls STS through a session: an iam::role/ ARN with a
        # UserId that is not <role id>:<session> is a type/shape disagreement.
        if (
            not sep
            or not _UNIQUE_ID_RE.fullmatch(principal)
            or not _NAME_RE.fullmatch(session)
        ):
            _bad_identity("a role's UserId must be <role id>:<session name>")
    elif sep or not _UNIQUE_ID_RE.fullmatch(user_id):
        _bad_identity("a user's UserId must be its unique ID")
    kinds = _ID_PREFIX_KINDS.get(principal[:4])
    if kinds is not None and kind not in kinds:
        _bad_identity(
            f"the UserId is a {principal[:4]} ID but the ARN names a {kind[:20]!r}"
        )
    return Identity(
        arn=arn,
        canonical_arn=canonical,
        account_id=account,
        user_id=principal,
        session_name=session,
        access_key_id=access_key_id,
    )
