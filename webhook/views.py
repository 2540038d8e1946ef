"""The webhook's HTTP endpoints (a Flask blueprint); the one place errors become HTTP.

``POST /authenticate`` composes the steps of docs/architecture.md: body cap,
TokenReview parse, offline token checks, verification cache, STS, mapping. Each
step raises a named error or returns a value; the error handlers below turn
every outcome into the answer of docs/operations.md,
observe ``kubeiam_authenticate_latency_seconds{result}`` and write one JSON log
line. The detailed reason is logged and counted, never sent back; the token,
its signature and the presigned URL are never logged.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from authenticator.errors import (
    MalformedTokenError,
    STSRejectedError,
    STSThrottledError,
    STSUnavailableError,
)
from authenticator.identity import Identity
from authenticator.mapping import MappingOutcome, evaluate_mapping
from authenticator.verify import verify_token
from webhook.errors import InvalidReviewError
from webhook.metrics import Result
from webhook.services import Services
from webhook.tokenreview import (
    MAX_BODY_BYTES,
    build_allow,
    build_deny,
    build_status,
    parse_review,
)

__all__ = [
    "ALL_METHODS",
    "Outcome",
    "Review",
    "bp",
    "finish",
    "internal_error",
    "log",
    "read_body",
    "review_outcome",
]

log = logging.getLogger("kubeiam.webhook")

bp = Blueprint("kubeiam", __name__)

# Every method is routed to /authenticate so that a wrong one is answered (405),
# logged and counted here rather than by Flask's router (HEAD comes with GET).
# OPTIONS is listed so that Flask's automatic 200 answer never applies: anything
# but POST is answered with 405 (docs/operations.md).
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")

# STSRejectedError reasons that mean STS itself misbehaved (a 3xx, a body that is
# not a GetCallerIdentity result) rather than refusing the caller's signature;
# docs/token-format.md counts those as sts_error. The answer is the same
# plain, cacheable rejection either way.
_STS_MISBEHAVED_REASONS = frozenset(
    {
        "sts_redirect",
        "sts_bad_status",
        "sts_body_too_large",
        "sts_bad_body",
        "sts_bad_identity",
    }
)

# What status.error says; the detail stays in the log (never a secret in an answer).
_UNAVAILABLE_MESSAGE = "kubeiam: STS is unavailable; try again"
_THROTTLED_MESSAGE = "kubeiam: STS is throttling requests"
_TEMPLATE_MESSAGE = "kubeiam: the identity's mapping could not be rendered"


@dataclass(slots=True)
class Review:
    """Per-request facts for the log line (in ``flask.g``, or the front's local)."""

    start: float
    api_version: str = ""
    arn: str = ""
    username: str = ""
    source: str = ""
    cache: str = ""
    fields: dict[str, str] = field(default_factory=dict)


def _services() -> Services:
    services = current_app.extensions["kubeiam"]
    assert isinstance(services, Services)  # noqa: S101 - set by create_app
    return services


def _review() -> Review:
    review = g.get("kubeiam_review")
    if review is None:
        review = Review(start=time.perf_counter())
        g.kubeiam_review = review
    assert isinstance(review, Review)  # noqa: S101 - only this module sets it
    return review


def finish(
    svc: Services,
    review: Review,
    result: Result,
    reason: str,
    status: int,
    body: dict[str, object],
) -> bytes:
    """Observe, log one line and serialize the answer (every outcome ends here).

    Shared by the Flask view and the WSGI front (:mod:`webhook.front`).
    """
    seconds = time.perf_counter() - review.start
    svc.metrics.observe_review(result, seconds)
    if log.isEnabledFor(logging.INFO if result is Result.SUCCESS else logging.WARNING):
        fields: dict[str, object] = {
            "event": "tokenreview",
            "result": result.value,
            "reason": reason,
            "status": status,
            "apiVersion": review.api_version,
            "arn": review.arn,
            "username": review.username,
            "source": review.source,
            "cache": review.cache,
            "latencyMs": round(seconds * 1000, 3),
        }
        level = logging.INFO if result is Result.SUCCESS else logging.WARNING
        log.log(level, "tokenreview %s", result.value, extra={"kubeiam": fields})
    return json.dumps(body, separators=(",", ":")).encode()


def _answer(
    result: Result, reason: str, status: int, body: dict[str, object]
) -> Response:
    """:func:`finish` inside a Flask request."""
    text = finish(_services(), _review(), result, reason, status, body)
    return Response(text, status=status, mimetype="application/json")


def read_body() -> bytes:
    """Read the request body, at most MAX_BODY_BYTES; one byte more is a 413.

    Werkzeug refuses a declared Content-Length over MAX_CONTENT_LENGTH. The body
    is read from the server's own ``wsgi.input`` (gunicorn ends it at the
    declared length or the last chunk), not through Werkzeug's capped stream:
    that one raises 413 on any read after exactly MAX_BODY_BYTES bytes, so a
    body of exactly 64 KiB would be refused. The cap holds whatever the framing
    (docs/operations.md: 64 KiB; 65,536 bytes answered, 65,537 refused).

    Returns:
        The body.

    Raises:
        RequestEntityTooLarge: The body is over MAX_BODY_BYTES.
    """
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise RequestEntityTooLarge()
    environ = request.environ
    if length is None and not environ.get("wsgi.input_terminated"):
        # No length and a server that does not end the stream: Werkzeug reads
        # no body either.
        return b""
    body = read_stream(
        environ["wsgi.input"], length if length is not None else MAX_BODY_BYTES + 1
    )
    if len(body) > MAX_BODY_BYTES:
        raise RequestEntityTooLarge()
    return body


def read_stream(stream: Any, length: int) -> bytes:
    """Read ``length`` bytes from a WSGI input (fewer when the client stops early).

    A read may return less than asked (one chunk of a chunked body): loop.
    """
    parts: list[bytes] = []
    size = 0
    while size < length:
        part = stream.read(length - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _identity(svc: Services, review: Review, token: str) -> Identity:
    """The cache, else the offline checks and STS (docs/architecture.md steps 2-4).

    A hit skips the offline checks safely: an entry exists only for these exact
    token bytes after they passed every check and STS, for this app's fixed
    cluster ID and allow-list; the one check that changes with time (the
    token's age) is covered by the entry's deadline, never later than the
    token's expiry.
    """
    now = svc.clock()
    cached = svc.cache.get(token, now=now)
    if cached is not None:
        review.cache = "hit"
        return cached
    review.cache = "miss" if svc.cache.enabled else "off"
    call = verify_token(
        token,
        cluster_id=svc.settings.cluster_id,
        now=now,
        allowed_hosts=svc.allowed_hosts,
    )
    identity = svc.sts.call_get_caller_identity(call)
    svc.cache.put(token, identity, expires_at=call.expires_at, now=svc.clock())
    return identity


Outcome = tuple[Result, str, int, dict[str, object]]


def _mapped(svc: Services, review: Review, body: bytes) -> Outcome:
    parsed = parse_review(body)
    review.api_version = parsed.api_version
    identity = _identity(svc, review, parsed.token)
    review.arn = identity.arn
    mapped = evaluate_mapping(
        identity, svc.registry.snapshot(), ec2_private_dns=svc.ec2_private_dns
    )
    review.source = mapped.source
    version = parsed.api_version
    if mapped.user is not None:
        review.username = mapped.user.username
        allow = build_allow(mapped.user, api_version=version)
        return Result.SUCCESS, mapped.outcome.value, 200, allow
    if mapped.outcome is MappingOutcome.RESERVED_PREFIX:
        # A grant the source may never make: permanent, so a plain (cached) deny.
        deny = build_deny(api_version=version)
    elif mapped.outcome is MappingOutcome.TEMPLATE_ERROR:
        # e.g. the EC2 lookup failed: may recover, so not cacheable.
        deny = build_deny(api_version=version, error=_TEMPLATE_MESSAGE)
    else:
        # Not cached by the API server: a mapping added a moment later works at once.
        message = f"kubeiam: {identity.canonical_arn} is not mapped"
        deny = build_deny(api_version=version, error=message)
    return Result.UNKNOWN_USER, mapped.outcome.value, 200, deny


def review_outcome(svc: Services, review: Review, body: bytes) -> Outcome:
    """Decide one TokenReview body: (result, reason, HTTP status, answer).

    Framework-free: the Flask view and the WSGI front (:mod:`webhook.front`)
    both call it. Every named failure becomes its answer here; anything else
    propagates (a 500 from the caller).
    """
    try:
        return _mapped(svc, review, body)
    except InvalidReviewError as exc:
        message = f"expected a TokenReview: {exc.message}"
        status = build_status(400, "BadRequest", message)
        return Result.MALFORMED_REQUEST, exc.reason, 400, status
    except MalformedTokenError as exc:
        # Can never become valid: a plain deny the API server caches.
        version = review.api_version
        return Result.INVALID_TOKEN, exc.reason, 200, build_deny(api_version=version)
    except STSRejectedError as exc:
        # Wrong cluster, expired or unknown credentials: permanent, so cacheable.
        version = review.api_version
        misbehaved = exc.reason in _STS_MISBEHAVED_REASONS
        result = Result.STS_ERROR if misbehaved else Result.INVALID_TOKEN
        return result, exc.reason, 200, build_deny(api_version=version)
    except STSThrottledError as exc:
        # 429 without Retry-After: the API server's webhook client retries it with
        # its own backoff, client-go's Retry-After loop does not join in (k8s 1.6).
        status = build_status(429, "TooManyRequests", _THROTTLED_MESSAGE)
        return Result.STS_THROTTLING, exc.reason, 429, status
    except STSUnavailableError as exc:
        # status.error: an error to the API server, so neither cached nor retried.
        version = review.api_version
        deny = build_deny(api_version=version, error=_UNAVAILABLE_MESSAGE)
        return Result.STS_ERROR, exc.reason, 200, deny


def internal_error(review: Review, exc: BaseException) -> bytes:
    """Log an unexpected failure (its type and place only); the 500 body.

    A bug or an unexpected library failure: 500, which the API server retries
    (Kubernetes webhook authn docs). Only the exception's type is logged: its text could
    quote input; the innermost frame says where it happened.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    log.error(
        "tokenreview failed",
        extra={
            "kubeiam": {
                "event": "tokenreview",
                "result": "internal_error",
                "reason": type(exc).__name__,
                "where": where,
                "status": 500,
                "apiVersion": review.api_version,
                "latencyMs": round((time.perf_counter() - review.start) * 1000, 3),
            }
        },
    )
    body = build_status(500, "InternalError", "kubeiam: internal error")
    return json.dumps(body, separators=(",", ":")).encode()


@bp.route("/authenticate", methods=list(ALL_METHODS), provide_automatic_options=False)
def authenticate() -> ResponseReturnValue:
    """Answer one TokenReview (docs/operations.md)."""
    review = _review()
    if request.method != "POST":
        raise MethodNotAllowed(valid_methods=["POST"])
    outcome = review_outcome(_services(), review, read_body())
    return _answer(*outcome)


@bp.errorhandler(MethodNotAllowed)
def _method_not_allowed(exc: MethodNotAllowed) -> ResponseReturnValue:
    response = _answer(
        Result.MALFORMED_REQUEST,
        "method_not_allowed",
        405,
        build_status(405, "MethodNotAllowed", "expected POST"),
    )
    response.headers["Allow"] = "POST"
    return response


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
    message = f"the body exceeds {MAX_BODY_BYTES} bytes"
    return _answer(
        Result.MALFORMED_REQUEST,
        "body_too_large",
        413,
        build_status(413, "RequestEntityTooLarge", message),
    )


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> ResponseReturnValue:
    if isinstance(exc, HTTPException):
        return exc  # werkzeug's own answer (e.g. 400 for a client that disconnected)
    body = internal_error(_review(), exc)
    return Response(body, status=500, mimetype="application/json")


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Liveness: the process answers."""
    return Response("ok\n", mimetype="text/plain")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Readiness: every mapping source has loaded once."""
    if _services().registry.ready:
        return Response("ok\n", mimetype="text/plain")
    return Response("mappings not loaded\n", status=503, mimetype="text/plain")


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    """Prometheus exposition of this app's registry."""
    body, content_type = _services().metrics.render()
    return Response(body, content_type=content_type)
