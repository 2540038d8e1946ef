"""The WSGI front: ``POST /authenticate`` without Flask's request machinery.

A warm TokenReview (a verification-cache hit) costs little beyond parsing and
mapping; Flask's per-request work (request and app contexts, routing,
``Request``/``Response`` objects, error-handler lookup) was a third of it. The
front answers the common case itself, a ``POST /authenticate`` with a plain
``Content-Length`` of at most 64 KiB, through the same core as the Flask view
(:func:`webhook.views.review_outcome` and :func:`webhook.views.finish`): the
same answers, status codes, metrics and log line. Everything else (another
path or method, a chunked or oversized body, a malformed length) goes to the
Flask app unchanged, so the HTTP contract has one definition per case.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from webhook.services import Services
from webhook.tokenreview import MAX_BODY_BYTES
from webhook.views import (
    Review,
    finish,
    internal_error,
    read_stream,
    review_outcome,
)

__all__ = ["TokenReviewFront"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_REASONS = {
    200: "200 OK",
    400: "400 Bad Request",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
}
_DIGITS = frozenset("0123456789")


class TokenReviewFront:
    """Answer ``POST /authenticate`` directly; pass anything else to ``app``.

    Args:
        app: The Flask app's WSGI callable (``Flask.wsgi_app``).
        services: The app's :class:`~webhook.services.Services`.
    """

    def __init__(self, app: WSGIApp, services: Services) -> None:
        self._app = app
        self._services = services

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH") or ""
        if (
            environ.get("PATH_INFO") != "/authenticate"
            or environ.get("REQUEST_METHOD") != "POST"
            or not 0 < len(length) <= 6
            or not _DIGITS.issuperset(length)
            or int(length) > MAX_BODY_BYTES
            or environ.get("HTTP_TRANSFER_ENCODING")
        ):
            return self._app(environ, start_response)
        review = Review(start=time.perf_counter())
        body = read_stream(environ["wsgi.input"], int(length))
        try:
            result, reason, status, answer = review_outcome(
                self._services, review, body
            )
            text = finish(self._services, review, result, reason, status, answer)
        except Exception as exc:  # a bug: 500, logged by type and place only
            status, text = 500, internal_error(review, exc)
        start_response(
            _REASONS.get(status) or f"{status} Error",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(text))),
            ],
        )
        return [text]
