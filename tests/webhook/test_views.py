"""The webhook's endpoints through Flask's test client (webhook/views.py, create_app).

Tokens are real (botocore-presigned, checked by the real verifier); STS is a
recording fake, the real ``STSClient`` against a closed port, or the real client
with ``responses`` for the failures a local server cannot be made to produce.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authenticator.errors import (
    MalformedTokenError,
    STSRejectedError,
    STSThrottledError,
    STSUnavailableError,
    TokenError,
)
from authenticator.identity import Identity
from authenticator.mapping import MappingSet, parse_mappings
from authenticator.presign import StaticCredentials, presign_get_caller_identity
from authenticator.verify import PresignedCall
from tests.fixtures.verifier import LocalServer, reply
from webhook import create_app
from webhook.metrics import WebhookMetrics
from webhook.services import Services
from webhook.settings import CacheSettings, STSSettings, WebhookSettings

CLUSTER = "test-cluster"
ACCOUNT = "111122223333"
NOW = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
# A loopback "STS" nobody listens on: the fakes and `responses` answer instead.
ENDPOINT = "http://127.0.0.1:9"
V1 = "authentication.k8s.io/v1"
V1BETA1 = "authentication.k8s.io/v1beta1"
THROTTLE_BODY = (
    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
    "<Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
    "</Error><RequestId>1</RequestId></ErrorResponse>"
)

ROLE_ID = "AROAEXAMPLEROLEID0001"
USER_ID = "AIDAEXAMPLEUSERID0001"
ROLE = Identity(
    arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/Deploy/alice@example.com",
    canonical_arn=f"arn:aws:iam::{ACCOUNT}:role/Deploy",
    account_id=ACCOUNT,
    user_id=ROLE_ID,
    session_name="alice@example.com",
    access_key_id="ASIAEXAMPLE",
)
STRANGER = Identity(
    arn=f"arn:aws:iam::{ACCOUNT}:user/stranger",
    canonical_arn=f"arn:aws:iam::{ACCOUNT}:user/stranger",
    account_id=ACCOUNT,
    user_id=USER_ID,
    session_name="",
    access_key_id="AKIASTRANGER",
)
MAPPING = {
    "mapRoles": [
        {
            "rolearn": f"arn:aws:iam::{ACCOUNT}:role/team/Deploy",
            "username": "deploy:{{SessionName}}",
            "groups": ["deployers", "acct-{{AccountID}}"],
        },
        {"rolearn": f"arn:aws:iam::{ACCOUNT}:role/Sneaky", "username": "system:admin"},
    ]
}


def _mapping(doc: Mapping[str, object], reserved: Sequence[str] = ()) -> MappingSet:
    return parse_mappings(
        doc, source="inline", where="test", reserved_prefixes=reserved
    )


@dataclass
class FakeRegistry:
    """A mapping registry whose table a test swaps."""

    sets: tuple[MappingSet, ...]
    ready: bool = True

    def snapshot(self) -> tuple[MappingSet, ...]:
        return self.sets


@dataclass
class FakeSTS:
    """Answers with ``identity`` or raises ``error``; records the calls."""

    identity: Identity = ROLE
    error: TokenError | None = None
    calls: list[PresignedCall] = field(default_factory=list)

    def call_get_caller_identity(self, call: PresignedCall) -> Identity:
        self.calls.append(call)
        if self.error is not None:
            raise self.error
        return self.identity


def _settings(endpoint: str = ENDPOINT, ttl: float = 60) -> WebhookSettings:
    return WebhookSettings(
        cluster_id=CLUSTER,
        sts=STSSettings(region="us-west-2", extra_endpoints=(endpoint,), timeout_s=2),
        cache=CacheSettings(ttl_seconds=ttl, max_entries=100),
    )


def _token(
    *,
    key: str = "AKIAEXAMPLE",
    at: datetime = NOW,
    cluster: str = CLUSTER,
    endpoint: str = ENDPOINT,
) -> str:
    creds = StaticCredentials(access_key_id=key, secret_access_key="secret" + key)
    return presign_get_caller_identity(
        credentials=creds,
        region="us-west-2",
        cluster_id=cluster,
        now=at,
        endpoint_url=endpoint,
    ).token


def _review(token: str, version: str = V1, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": version,
        "kind": "TokenReview",
        "spec": {"token": token, **spec},
    }


@dataclass
class Harness:
    """An app with fakes, its client and its parts."""

    app: Flask
    client: FlaskClient
    sts: FakeSTS
    registry: FakeRegistry
    metrics: WebhookMetrics

    def post(
        self, body: object, path: str = "/authenticate"
    ) -> tuple[int, dict[str, object]]:
        resp = self.client.post(
            path, data=json.dumps(body), content_type="application/json"
        )
        return resp.status_code, resp.get_json()

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@pytest.fixture
def harness() -> Iterator[Harness]:
    """The app over a fake STS (answers ROLE) and the inline MAPPING."""
    sts = FakeSTS()
    registry = FakeRegistry((_mapping(MAPPING, reserved=("system:",)),))
    metrics = WebhookMetrics()
    app = create_app(
        _settings(), sts=sts, registry=registry, clock=lambda: NOW, metrics=metrics
    )
    yield Harness(app, app.test_client(), sts, registry, metrics)
    app.extensions["kubeiam"].close()


def _status(body: dict[str, object]) -> dict[str, object]:
    status = body["status"]
    assert isinstance(status, dict)
    return status


class TestAuthenticated:
    """Valid and mapped: 200, authenticated true, the user of docs/operations.md."""

    @pytest.mark.parametrize("version", [V1, V1BETA1])
    def test_mapped_role_in_both_versions(self, harness: Harness, version: str) -> None:
        """The answer echoes the version and carries username, uid, groups and extra."""
        code, body = harness.post(_review(_token(), version))
        assert code == 200
        assert body == {
            "apiVersion": version,
            "kind": "TokenReview",
            "status": {
                "authenticated": True,
                "user": {
                    "username": "deploy:alice-example.com",
                    "uid": f"aws-iam-authenticator:{ACCOUNT}:{ROLE_ID}",
                    "groups": ["deployers", f"acct-{ACCOUNT}"],
                    "extra": {
                        "arn": [ROLE.arn],
                        "canonicalArn": [ROLE.canonical_arn],
                        "sessionName": ["alice@example.com"],
                        "accessKeyId": ["ASIAEXAMPLE"],
                        "principalId": [ROLE_ID],
                        "sigs.k8s.io/aws-iam-authenticator/principalId": [ROLE_ID],
                    },
                },
            },
        }

    def test_content_type_is_json(self, harness: Harness) -> None:
        """Answers are application/json (text/* would be an error to the API server)."""
        resp = harness.client.post("/authenticate", json=_review(_token()))
        assert resp.mimetype == "application/json"

    def test_timeout_query_metadata_and_audiences_are_ignored(
        self, harness: Harness
    ) -> None:
        """?timeout=, metadata, spec.audiences change nothing; no status.audiences."""
        body = _review(_token(), audiences=["https://kubernetes.default.svc"])
        body["metadata"] = {"creationTimestamp": None}
        resp = harness.client.post("/authenticate?timeout=30s", json=body)
        assert resp.status_code == 200
        status = _status(resp.get_json())
        assert status["authenticated"] is True
        assert "audiences" not in status

    def test_sts_gets_the_server_cluster_id_and_rebuilt_url(
        self, harness: Harness
    ) -> None:
        """The STS call carries the server's cluster ID and the validated URL."""
        harness.post(_review(_token()))
        (call,) = harness.sts.calls
        assert call.cluster_id == CLUSTER
        assert call.url.startswith(ENDPOINT + "/?")


class TestRejected:
    """Tokens that can never become valid: 200, authenticated false, no error."""

    @pytest.mark.parametrize(
        "token",
        [
            "",
            "garbage",
            "k8s-aws-v1.!!!",
            _token(at=NOW - timedelta(minutes=16)),
            _token(endpoint="http://127.0.0.1:10"),
        ],
        ids=["empty", "garbage", "bad-base64", "expired", "foreign-host"],
    )
    def test_offline_rejection_is_cacheable_and_never_calls_sts(
        self, harness: Harness, token: str
    ) -> None:
        """A token failing a local check is a plain deny; STS is never called."""
        code, body = harness.post(_review(token, V1BETA1))
        assert code == 200
        assert body == {
            "apiVersion": V1BETA1,
            "kind": "TokenReview",
            "status": {"authenticated": False, "user": {}},
        }
        assert harness.sts.calls == []
        assert (
            harness.metric(
                "kubeiam_authenticate_latency_seconds_count", result="invalid_token"
            )
            == 1
        )

    def test_sts_refusal_is_cacheable(self, harness: Harness) -> None:
        """STS refusing the signature (wrong cluster) is a plain deny, no error."""
        harness.sts.error = STSRejectedError(
            "sts_rejected", "403 SignatureDoesNotMatch"
        )
        code, body = harness.post(_review(_token(cluster="other-cluster")))
        assert (code, _status(body)) == (200, {"authenticated": False, "user": {}})
        assert (
            harness.metric(
                "kubeiam_authenticate_latency_seconds_count", result="invalid_token"
            )
            == 1
        )

    def test_sts_nonsense_is_cacheable_but_counted_as_sts_error(
        self, harness: Harness
    ) -> None:
        """A 200 that is no GetCallerIdentity result: plain deny, counted sts_error."""
        harness.sts.error = STSRejectedError("sts_bad_body", "not a result")
        code, body = harness.post(_review(_token()))
        assert (code, _status(body)) == (200, {"authenticated": False, "user": {}})
        assert (
            harness.metric(
                "kubeiam_authenticate_latency_seconds_count", result="sts_error"
            )
            == 1
        )

    def test_reserved_prefix_is_a_plain_deny(self, harness: Harness) -> None:
        """A mapping rendering a reserved username: denied without error (cacheable)."""
        harness.sts.identity = Identity(
            arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/Sneaky/s",
            canonical_arn=f"arn:aws:iam::{ACCOUNT}:role/Sneaky",
            account_id=ACCOUNT,
            user_id="AROASNEAKY",
            session_name="s",
            access_key_id="ASIA1",
        )
        code, body = harness.post(_review(_token()))
        assert (code, _status(body)) == (200, {"authenticated": False, "user": {}})


class TestErrors:
    """Answers the API server must not cache: status.error, or a 429."""

    def test_unmapped_identity_carries_error(self, harness: Harness) -> None:
        """A valid identity no mapping matches: authenticated false, status.error."""
        harness.sts.identity = STRANGER
        code, body = harness.post(_review(_token()))
        assert code == 200
        status = _status(body)
        assert status["authenticated"] is False
        assert status["error"] == f"kubeiam: {STRANGER.canonical_arn} is not mapped"
        assert (
            harness.metric(
                "kubeiam_authenticate_latency_seconds_count", result="unknown_user"
            )
            == 1
        )

    def test_new_mapping_works_at_once_for_a_cached_identity(
        self, harness: Harness
    ) -> None:
        """Mapping is applied per request: the same token authenticates once mapped."""
        harness.sts.identity = STRANGER
        token = _token()
        assert _status(harness.post(_review(token))[1])["authenticated"] is False
        harness.registry.sets = (
            _mapping({"mapUsers": [{"userarn": STRANGER.arn, "username": "stranger"}]}),
        )
        _, body = harness.post(_review(token))
        assert _status(body)["authenticated"] is True
        assert len(harness.sts.calls) == 1  # the identity came from the cache

    def test_sts_unavailable_carries_error(self, harness: Harness) -> None:
        """STS unreachable or 5xx: 200, authenticated false, status.error."""
        harness.sts.error = STSUnavailableError("sts_timeout", "no answer")
        code, body = harness.post(_review(_token()))
        assert code == 200
        status = _status(body)
        assert status["authenticated"] is False
        assert "unavailable" in str(status["error"])
        assert (
            harness.metric(
                "kubeiam_authenticate_latency_seconds_count", result="sts_error"
            )
            == 1
        )

    def test_throttled_is_429_without_retry_after(self, harness: Harness) -> None:
        """STS throttling: 429 and no Retry-After header."""
        harness.sts.error = STSThrottledError("sts_throttled", "Throttling")
        resp = harness.client.post("/authenticate", json=_review(_token()))
        assert resp.status_code == 429
        assert "Retry-After" not in resp.headers
        assert resp.mimetype == "application/json"
        assert (
            harness.metric(
                "kubeiam_authenticate_latency_seconds_count", result="sts_throttling"
            )
            == 1
        )

    def test_failures_are_not_cached(self, harness: Harness) -> None:
        """Only valid STS answers enter the verification cache."""
        token = _token()
        harness.sts.error = STSUnavailableError("sts_timeout", "no answer")
        harness.post(_review(token))
        harness.sts.error = None
        _, body = harness.post(_review(token))
        assert _status(body)["authenticated"] is True
        assert len(harness.sts.calls) == 2


@pytest.fixture
def local_sts() -> Iterator[LocalServer]:
    """A local HTTP server standing in for STS (answers as each test says)."""
    server = LocalServer().start()
    try:
        yield server
    finally:
        server.close()


class TestRealSTSClient:
    """The real STSClient: a closed port, and a local HTTP server for throttling/5xx."""

    def _app(self, endpoint: str) -> tuple[Flask, WebhookMetrics]:
        metrics = WebhookMetrics()
        registry = FakeRegistry((_mapping(MAPPING),))
        return create_app(
            _settings(endpoint), registry=registry, clock=lambda: NOW, metrics=metrics
        ), metrics

    def test_closed_port_is_unavailable(self) -> None:
        """An extra endpoint nobody listens on: status.error, counted as sts_error."""
        app, metrics = self._app("http://127.0.0.1:1")
        try:
            resp = app.test_client().post(
                "/authenticate", json=_review(_token(endpoint="http://127.0.0.1:1"))
            )
            status = _status(resp.get_json())
            assert resp.status_code == 200
            assert status["authenticated"] is False
            assert status["error"]
            assert (
                metrics.registry.get_sample_value(
                    "kubeiam_sts_requests_total", {"code": "error"}
                )
                == 1
            )
        finally:
            app.extensions["kubeiam"].close()

    def test_throttling_body_is_429(self, local_sts: LocalServer) -> None:
        """STS's 400 Throttling answer becomes a 429 without Retry-After."""
        local_sts.respond = reply(400, THROTTLE_BODY.encode(), content_type="text/xml")
        app, metrics = self._app(local_sts.url)
        try:
            resp = app.test_client().post(
                "/authenticate", json=_review(_token(endpoint=local_sts.url))
            )
            assert resp.status_code == 429
            assert "Retry-After" not in resp.headers
            assert (
                metrics.registry.get_sample_value(
                    "kubeiam_sts_requests_total", {"code": "400"}
                )
                == 1
            )
        finally:
            app.extensions["kubeiam"].close()

    def test_server_error_is_unavailable(self, local_sts: LocalServer) -> None:
        """STS 503: 200 with status.error."""
        local_sts.respond = reply(503, b"{}")
        app, _ = self._app(local_sts.url)
        try:
            resp = app.test_client().post(
                "/authenticate", json=_review(_token(endpoint=local_sts.url))
            )
            assert resp.status_code == 200
            assert _status(resp.get_json())["error"]
        finally:
            app.extensions["kubeiam"].close()


class TestMalformedRequests:
    """400 / 405 / 413, logged and counted as malformed_request."""

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"{",
            b"[]",
            json.dumps({"apiVersion": V1, "kind": "Pod"}).encode(),
            json.dumps(
                {"apiVersion": "authentication.k8s.io/v2", "kind": "TokenReview"}
            ).encode(),
        ],
        ids=["empty", "broken-json", "array", "wrong-kind", "unknown-version"],
    )
    def test_not_a_tokenreview_is_400(self, harness: Harness, body: bytes) -> None:
        """A body that is not a TokenReview gets 400 and a Status object."""
        resp = harness.client.post(
            "/authenticate", data=body, content_type="application/json"
        )
        assert resp.status_code == 400
        assert resp.get_json()["kind"] == "Status"
        assert harness.sts.calls == []

    @pytest.mark.parametrize(
        "method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]
    )
    def test_not_post_is_405(self, harness: Harness, method: str) -> None:
        """Any method but POST gets 405 with Allow: POST."""
        resp = harness.client.open("/authenticate", method=method)
        assert resp.status_code == 405
        assert resp.headers["Allow"] == "POST"
        assert (
            harness.metric(
                "kubeiam_authenticate_latency_seconds_count", result="malformed_request"
            )
            == 1
        )

    def test_body_over_64k_is_413(self, harness: Harness) -> None:
        """A body one byte over 64 KiB gets 413; exactly 64 KiB is read."""
        review = json.dumps(_review("x")).encode()
        at_cap = review + b" " * (64 * 1024 - len(review))
        assert (
            harness.client.post(
                "/authenticate", data=at_cap, content_type="application/json"
            ).status_code
            == 200
        )
        resp = harness.client.post(
            "/authenticate", data=at_cap + b" ", content_type="application/json"
        )
        assert resp.status_code == 413
        assert (
            harness.metric(
                "kubeiam_authenticate_latency_seconds_count", result="malformed_request"
            )
            == 1
        )


class TestOperations:
    """healthz, readyz, metrics and logs."""

    def test_healthz(self, harness: Harness) -> None:
        """/healthz answers 200 while the process lives."""
        assert harness.client.get("/healthz").status_code == 200

    def test_readyz_follows_the_registry(self, harness: Harness) -> None:
        """/readyz is 503 until the mappings have loaded, then 200."""
        harness.registry.ready = False
        assert harness.client.get("/readyz").status_code == 503
        harness.registry.ready = True
        assert harness.client.get("/readyz").status_code == 200

    def test_metrics_exposes_the_spec_names(self, harness: Harness) -> None:
        """/metrics serves every documented family from the app's own registry."""
        token = _token()
        harness.post(_review(token))
        harness.post(_review(token))
        harness.metrics.observe_reload("file", "success", 3)
        text = harness.client.get("/metrics").get_data(as_text=True)
        for result in (
            "success",
            "malformed_request",
            "invalid_token",
            "sts_error",
            "sts_throttling",
            "unknown_user",
        ):
            assert (
                f'kubeiam_authenticate_latency_seconds_count{{result="{result}"}}'
                in text
            )
        assert (
            'kubeiam_authenticate_latency_seconds_count{result="success"} 2.0' in text
        )
        assert 'kubeiam_verify_cache_total{outcome="hit"} 1.0' in text
        assert 'kubeiam_verify_cache_total{outcome="miss"} 1.0' in text
        assert (
            'kubeiam_mapping_reloads_total{result="success",source="file"} 1.0' in text
        )
        assert 'kubeiam_mapping_entries{source="file"} 3.0' in text

    def test_apps_do_not_share_metrics(self) -> None:
        """Two apps in one process keep separate registries."""
        a = create_app(
            _settings(), sts=FakeSTS(), registry=FakeRegistry(()), clock=lambda: NOW
        )
        b = create_app(
            _settings(), sts=FakeSTS(), registry=FakeRegistry(()), clock=lambda: NOW
        )
        a.test_client().get("/authenticate")
        services_b = b.extensions["kubeiam"]
        assert isinstance(services_b, Services)
        assert (
            services_b.metrics.registry.get_sample_value(
                "kubeiam_authenticate_latency_seconds_count",
                {"result": "malformed_request"},
            )
            == 0
        )

    def test_one_log_line_per_review_without_secrets(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Each review logs result, reason, ARN, username, latency; never the token."""
        token, other = _token(), _token(key="AKIAOTHER")  # minted before capture starts
        signature = re.search(r"X-Amz-Signature=([0-9a-f]+)", harness_url(token))
        assert signature is not None
        caplog.set_level(logging.DEBUG)
        harness.post(_review(token))
        harness.sts.identity = STRANGER
        harness.post(_review(other))
        harness.post(_review("k8s-aws-v1.garbage"))
        reviews = [r.kubeiam for r in caplog.records if getattr(r, "kubeiam", None)]  # type: ignore[attr-defined]  # set through `extra`
        assert [r["result"] for r in reviews] == [
            "success",
            "unknown_user",
            "invalid_token",
        ]
        first = reviews[0]
        assert first["arn"] == ROLE.arn
        assert first["username"] == "deploy:alice-example.com"
        assert first["reason"] == "mapped"
        assert isinstance(first["latencyMs"], float)
        assert reviews[2]["reason"] == "bad_base64"
        dump = "\n".join(
            f"{r.getMessage()} {json.dumps(getattr(r, 'kubeiam', {}))} {r.__dict__}"
            for r in caplog.records
        )
        assert token not in dump
        assert token.removeprefix("k8s-aws-v1.")[:40] not in dump
        assert signature.group(1) not in dump


def harness_url(token: str) -> str:
    """The presigned URL inside a token (to find its signature)."""
    body = token.removeprefix("k8s-aws-v1.")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


class TestVerificationCache:
    """The cache saves STS calls but never outlives the token."""

    def test_hit_skips_sts_and_expiry_still_applies(self) -> None:
        """A repeat is served from the cache; past the token's life it is rejected."""
        now = [NOW]
        sts = FakeSTS()
        metrics = WebhookMetrics()
        app = create_app(
            _settings(ttl=900),
            sts=sts,
            registry=FakeRegistry((_mapping(MAPPING),)),
            clock=lambda: now[0],
            metrics=metrics,
        )
        client = app.test_client()
        token = _token()
        try:
            for _ in range(3):
                resp = client.post("/authenticate", json=_review(token))
                assert _status(resp.get_json())["authenticated"] is True
            assert len(sts.calls) == 1
            now[0] = NOW + timedelta(minutes=15, seconds=1)
            resp = client.post("/authenticate", json=_review(token))
            assert _status(resp.get_json()) == {"authenticated": False, "user": {}}
            assert len(sts.calls) == 1
            assert (
                metrics.registry.get_sample_value(
                    "kubeiam_verify_cache_total", {"outcome": "expired"}
                )
                == 1
            )
        finally:
            app.extensions["kubeiam"].close()


class TestUnexpectedFailure:
    """A bug below the views becomes a 500 Status, logged by type only."""

    def test_internal_error_is_500_json(self, caplog: pytest.LogCaptureFixture) -> None:
        """An unexpected exception answers 500 JSON (the API server retries it)."""

        class BrokenRegistry(FakeRegistry):
            def snapshot(self) -> tuple[MappingSet, ...]:
                raise KeyError("k8s-aws-v1.SECRET-IN-MESSAGE")

        app = create_app(
            _settings(), sts=FakeSTS(), registry=BrokenRegistry(()), clock=lambda: NOW
        )
        token = _token()
        try:
            resp = app.test_client().post("/authenticate", json=_review(token))
        finally:
            app.extensions["kubeiam"].close()
        assert resp.status_code == 500
        assert resp.get_json()["kind"] == "Status"
        text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
        assert "KeyError" in text
        assert "SECRET-IN-MESSAGE" not in text
        assert token not in text


# --- The WSGI front (webhook.front): the same answers as the Flask view, without Flask.


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
