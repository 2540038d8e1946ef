"""The WSGI front (webhook.front): the same answers as the Flask view, without Flask.

Each case is sent twice to one app: with a ``Content-Length`` (answered by the
front) and as a body of unknown length that the server ends (the shape of a
chunked request, which the front hands to the Flask view). Status line,
headers that matter, body, metric and log line must be identical; a Flask
``before_request`` hook proves which path answered.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from flask import Flask

from authenticator.errors import (
    MalformedTokenError,
    STSRejectedError,
    STSThrottledError,
    STSUnavailableError,
    TokenError,
)
from authenticator.mapping import MappingSet
from tests.webhook.test_views import (
    MAPPING,
    NOW,
    FakeRegistry,
    FakeSTS,
    _mapping,
    _review,
    _settings,
    _token,
)
from webhook import create_app
from webhook.metrics import WebhookMetrics


@dataclass
class Answer:
    """One WSGI answer."""

    status: str
    headers: dict[str, str]
    body: bytes


@dataclass
class App:
    """An app over a fake STS, with a record of the requests Flask handled."""

    app: Flask
    sts: FakeSTS
    metrics: WebhookMetrics
    flask_requests: list[str] = field(default_factory=list)

    def call(self, body: bytes, *, chunked: bool, method: str = "POST") -> Answer:
        environ: dict[str, object] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": "/authenticate",
            "QUERY_STRING": "timeout=30s",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8443",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_TYPE": "application/json",
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        if chunked:
            environ["wsgi.input_terminated"] = True
            environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        else:
            environ["CONTENT_LENGTH"] = str(len(body))
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], _exc: object = None
        ) -> Callable[[bytes], object]:
            started.append((status, headers))
            return lambda _data: None

        chunks = self.app(environ, start_response)
        out = b"".join(chunks)
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        status, headers = started[0]
        return Answer(status, {k.lower(): v for k, v in headers}, out)

    def reviews_counted(self) -> float:
        total = 0.0
        for metric in self.metrics.registry.collect():
            if metric.name == "kubeiam_authenticate_latency_seconds":
                total += sum(
                    s.value for s in metric.samples if s.name.endswith("_count")
                )
        return total


@pytest.fixture
def make_app() -> Iterator[Callable[..., App]]:
    apps: list[Flask] = []

    def make(
        *, error: TokenError | None = None, registry: FakeRegistry | None = None
    ) -> App:
        sts = FakeSTS(error=error)
        metrics = WebhookMetrics()
        app = create_app(
            _settings(),
            sts=sts,
            registry=registry or FakeRegistry((_mapping(MAPPING),)),
            clock=lambda: NOW,
            metrics=metrics,
        )
        apps.append(app)
        wrapped = App(app, sts, metrics)

        @app.before_request
        def _record() -> None:
            from flask import request

            wrapped.flask_requests.append(request.path)

        return wrapped

    yield make
    for app in apps:
        app.extensions["kubeiam"].close()


class _BrokenRegistry(FakeRegistry):
    def snapshot(self) -> tuple[MappingSet, ...]:
        raise KeyError("boom")


_CASES: dict[str, tuple[dict[str, object], str]] = {
    "mapped": ({}, "200 OK"),
    "not-mapped": ({"registry": FakeRegistry(())}, "200 OK"),
    "malformed-token": ({"error": MalformedTokenError("bad_base64", "x")}, "200 OK"),
    "sts-rejected": ({"error": STSRejectedError("sts_rejected", "x")}, "200 OK"),
    "sts-throttled": (
        {"error": STSThrottledError("sts_throttled", "x")},
        "429 TOO MANY REQUESTS",
    ),
    "sts-unavailable": ({"error": STSUnavailableError("sts_timeout", "x")}, "200 OK"),
    "internal-error": (
        {"registry": _BrokenRegistry(())},
        "500 INTERNAL SERVER ERROR",
    ),
}


@pytest.mark.parametrize("case", list(_CASES))
def test_front_and_flask_view_answer_alike(
    make_app: Callable[..., App], case: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Same status, content type, body, metric and log line on both paths."""
    options, flask_status = _CASES[case]
    app = make_app(**options)
    # A distinct token per path: the second must not be a cache hit of the first.
    front_body = json.dumps(_review(_token(key="AKIAFRONT"))).encode()
    view_body = json.dumps(_review(_token(key="AKIAVIEWS"))).encode()
    caplog.set_level(logging.INFO, logger="kubeiam.webhook")
    front = app.call(front_body, chunked=False)
    front_logs = [r for r in caplog.records if r.name == "kubeiam.webhook"]
    caplog.clear()
    assert app.flask_requests == []  # the front answered without Flask
    view = app.call(view_body, chunked=True)
    view_logs = [r for r in caplog.records if r.name == "kubeiam.webhook"]
    assert app.flask_requests == ["/authenticate"]
    assert view.status.upper() == flask_status
    assert front.status.upper() == flask_status
    assert front.headers["content-type"] == view.headers["content-type"]
    assert front.headers["content-length"] == str(len(front.body))
    assert json.loads(front.body) == json.loads(view.body)
    # Every answered review is observed; a 500 (a bug) is logged, not observed.
    assert app.reviews_counted() == (0 if case == "internal-error" else 2)
    assert len(front_logs) == len(view_logs) == 1
    front_fields = dict(front_logs[0].__dict__["kubeiam"])
    view_fields = dict(view_logs[0].__dict__["kubeiam"])
    for fields in (front_fields, view_fields):
        fields.pop("latencyMs")
        fields.pop("where", None)
    assert front_fields == view_fields
    assert front_logs[0].levelno == view_logs[0].levelno


def test_mapped_answer_names_the_user(make_app: Callable[..., App]) -> None:
    """The front's success answer is the full TokenReview of the mapped user."""
    app = make_app()
    answer = app.call(json.dumps(_review(_token())).encode(), chunked=False)
    doc = json.loads(answer.body)
    assert answer.status == "200 OK"
    assert doc["status"]["authenticated"] is True
    assert doc["status"]["user"]["username"] == "deploy:alice-example.com"
    assert app.flask_requests == []


@pytest.mark.parametrize(
    ("method", "body", "status", "by_flask"),
    [
        ("GET", b"", "405", True),
        ("POST", b"x" * (64 * 1024 + 1), "413", True),
        ("POST", b"x" * (64 * 1024), "400", False),
        ("POST", b"", "400", False),
    ],
    ids=["get", "one-byte-over-the-cap", "at-the-cap", "empty"],
)
def test_who_answers_what(
    make_app: Callable[..., App], method: str, body: bytes, status: str, by_flask: bool
) -> None:
    """Another method or an oversized body goes to Flask; the cap is the front's."""
    app = make_app()
    answer = app.call(body, chunked=False, method=method)
    assert answer.status.startswith(status)
    assert app.flask_requests == (["/authenticate"] if by_flask else [])
    assert json.loads(answer.body)["kind"] == "Status"
