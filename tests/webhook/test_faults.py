"""Fault injection: STS misbehaving behind ``kubeiam server`` under gunicorn (issue 7).

One webhook (gunicorn, TLS, mTLS, one worker with four threads, STS timeout
1.5 s) has the ``fault_sts`` stand-in registered as an extra STS endpoint; a
token picks the fault through its access key ID. For every fault the review
gets the docs/operations.md / docs/token-format.md outcome, STS sees
exactly one request for it (no retries, no redirect followed), and, while the
faulty review is in flight, a valid review and ``/healthz`` are answered
promptly by the same server.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from authenticator.emulator import STSEmulator
from authenticator.presign import StaticCredentials, presign_get_caller_identity
from authenticator.token import decode_token
from tests.fixtures.faultsts import ACCOUNT, SLOW_SECONDS, FaultSTS, fault_key
from tests.fixtures.webhook import (
    DEFAULT_CLUSTER_ID,
    TOKENREVIEW_V1,
    WebhookServer,
    tokenreview,
)

# The webhook's sts.timeoutSeconds: above the stand-in's SLOW_SECONDS (0.6 s)
# with room for a busy two-core machine, short enough to keep the suite fast.
STS_TIMEOUT_S = 1.5
# How long a review or /healthz may take while another one hangs.
PROMPT_S = 1.0
UNAVAILABLE = "kubeiam: STS is unavailable; try again"
MAPPED = ("ok", "slow")
MAPPING = {
    "mapUsers": [
        {
            "userarn": f"arn:aws:iam::{ACCOUNT}:user/fault-{mode}",
            "username": f"fault-{mode}",
            "groups": ["faults"],
        }
        for mode in MAPPED
    ]
}


def mint(fault_sts: FaultSTS, mode: str, *, key: str | None = None) -> str:
    """A fresh token for the stand-in that selects ``mode`` (never cached before)."""
    creds = StaticCredentials(
        access_key_id=key or fault_key(mode), secret_access_key=uuid.uuid4().hex
    )
    return presign_get_caller_identity(
        credentials=creds,
        region="us-east-1",
        cluster_id=DEFAULT_CLUSTER_ID,
        now=datetime.now(UTC),
        endpoint_url=fault_sts.url,
    ).token


def signature_of(token: str) -> str:
    """X-Amz-Signature of a token (to find its requests in the stand-in's log)."""
    query = parse_qs(urlsplit(decode_token(token)).query)
    return query["X-Amz-Signature"][0]


@dataclass
class Answer:
    """One HTTP answer and how long it took."""

    status: int
    body: dict[str, object]
    headers: dict[str, str]
    seconds: float

    @property
    def review_status(self) -> dict[str, object]:
        """``status`` of the TokenReview answer."""
        status = self.body["status"]
        assert isinstance(status, dict)
        return status


def post_review(server: WebhookServer, token: str) -> Answer:
    """POST a TokenReview over mTLS in a session of its own (safe in threads)."""
    with requests.Session() as session:
        start = time.monotonic()
        resp = session.post(
            server.url + "/authenticate?timeout=30s",
            data=json.dumps(tokenreview(token, TOKENREVIEW_V1)),
            headers={"Content-Type": "application/json"},
            verify=str(server.pki.ca_file),
            cert=server.pki.client,
            timeout=30,
        )
        seconds = time.monotonic() - start
    body = (
        resp.json()
        if resp.headers.get("Content-Type", "").startswith("application/json")
        else {}
    )
    return Answer(resp.status_code, body, dict(resp.headers), seconds)


def get_healthz(server: WebhookServer) -> Answer:
    """GET /healthz over mTLS in a session of its own."""
    with requests.Session() as session:
        start = time.monotonic()
        resp = session.get(
            server.url + "/healthz",
            verify=str(server.pki.ca_file),
            cert=server.pki.client,
            timeout=30,
        )
        seconds = time.monotonic() - start
    return Answer(resp.status_code, {}, dict(resp.headers), seconds)


@pytest.fixture(scope="module")
def server(
    webhook_factory: Callable[..., WebhookServer],
    fault_sts: FaultSTS,
    sts_emulator: STSEmulator,
) -> WebhookServer:
    """kubeiam server with the fault stand-in as an extra STS endpoint."""
    return webhook_factory(
        MAPPING,
        threads=4,
        config={
            "sts": {
                "region": "us-east-1",
                "timeoutSeconds": STS_TIMEOUT_S,
                "extraEndpoints": [sts_emulator.url, fault_sts.url],
            }
        },
    )


def assert_plain_deny(answer: Answer) -> None:
    """200, authenticated false, no error: the API server caches the rejection."""
    assert answer.status == 200, answer
    assert answer.review_status["authenticated"] is False
    assert "error" not in answer.review_status


def assert_unavailable(answer: Answer) -> None:
    """200, authenticated false, status.error: not cached, not retried."""
    assert answer.status == 200, answer
    assert answer.review_status["authenticated"] is False
    assert answer.review_status["error"] == UNAVAILABLE


def assert_mapped(username: str) -> Callable[[Answer], None]:
    """200, authenticated true as ``username``."""

    def check(answer: Answer) -> None:
        assert answer.status == 200, answer
        assert answer.review_status["authenticated"] is True
        user = answer.review_status["user"]
        assert isinstance(user, dict)
        assert user["username"] == username

    return check


def assert_throttled(answer: Answer) -> None:
    """429 without Retry-After (the API server backs off by itself)."""
    assert answer.status == 429, answer
    assert "Retry-After" not in answer.headers
    assert answer.body["kind"] == "Status"


# mode -> the documented outcome (docs/token-format.md, docs/operations.md).
OUTCOMES: dict[str, Callable[[Answer], None]] = {
    "ok": assert_mapped("fault-ok"),
    "slow": assert_mapped("fault-slow"),
    "hang": assert_unavailable,
    "500": assert_unavailable,
    "503": assert_unavailable,
    "reset": assert_unavailable,
    "throttle": assert_throttled,
    "redirect": assert_plain_deny,
    "huge": assert_plain_deny,
    "garbage": assert_plain_deny,
    "deny": assert_plain_deny,
}


class TestFaults:
    """Each STS fault gets its documented outcome while the server keeps serving."""

    @pytest.mark.parametrize("mode", list(OUTCOMES))
    def test_fault_outcome_and_server_keeps_serving(
        self, server: WebhookServer, fault_sts: FaultSTS, mode: str
    ) -> None:
        """The faulty review gets its outcome; a valid one and /healthz do not wait."""
        token = mint(fault_sts, mode)
        signature = signature_of(token)
        faulty: list[Answer] = []
        thread = threading.Thread(
            target=lambda: faulty.append(post_review(server, token)), daemon=True
        )
        thread.start()
        # Wait until the faulty review has reached STS: it is now in flight.
        deadline = time.monotonic() + 10
        while not any(signature in p for p in fault_sts.requests):
            assert time.monotonic() < deadline, "the review never reached STS"
            time.sleep(0.01)
        healthz = get_healthz(server)
        valid = post_review(server, mint(fault_sts, "ok"))
        still_in_flight = thread.is_alive()
        thread.join(STS_TIMEOUT_S + 10)
        assert faulty, "the faulty review got no answer"
        OUTCOMES[mode](faulty[0])
        assert healthz.status == 200 and healthz.seconds < PROMPT_S, healthz
        assert_mapped("fault-ok")(valid)
        assert valid.seconds < PROMPT_S, valid
        if mode == "hang":
            assert still_in_flight, "the valid review waited for the faulty one"
        else:
            # Every other fault is answered without waiting for the STS timeout
            # (a 10 MiB body is cut at the cap, not read to the end).
            assert faulty[0].seconds < STS_TIMEOUT_S, faulty[0]
        # One STS request per review: no retry, no redirect followed.
        assert sum(signature in p for p in fault_sts.requests) == 1

    def test_hang_ends_at_the_sts_timeout(
        self, server: WebhookServer, fault_sts: FaultSTS
    ) -> None:
        """A hanging STS costs the configured timeout, not the API server's 30 s."""
        answer = post_review(server, mint(fault_sts, "hang"))
        assert_unavailable(answer)
        assert STS_TIMEOUT_S <= answer.seconds < STS_TIMEOUT_S + 3, answer.seconds

    def test_slow_sts_is_served(
        self, server: WebhookServer, fault_sts: FaultSTS
    ) -> None:
        """A slow STS within the timeout still authenticates."""
        answer = post_review(server, mint(fault_sts, "slow"))
        assert_mapped("fault-slow")(answer)
        assert answer.seconds >= SLOW_SECONDS

    def test_redirect_target_is_never_contacted(
        self, server: WebhookServer, fault_sts: FaultSTS
    ) -> None:
        """A 302 from STS is a plain deny and its Location is never fetched."""
        assert_plain_deny(post_review(server, mint(fault_sts, "redirect")))
        time.sleep(0.2)
        assert fault_sts.canary_hits == []

    def test_failures_are_not_cached(
        self, server: WebhookServer, fault_sts: FaultSTS
    ) -> None:
        """The same unavailable token asked twice goes to STS twice."""
        token = mint(fault_sts, "503")
        signature = signature_of(token)
        assert_unavailable(post_review(server, token))
        assert_unavailable(post_review(server, token))
        assert sum(signature in p for p in fault_sts.requests) == 2

    def test_concurrent_hangs_do_not_block_health(
        self, server: WebhookServer, fault_sts: FaultSTS
    ) -> None:
        """Three hanging reviews at once (of four threads) leave room for /healthz."""
        answers: list[Answer] = []
        threads = [
            threading.Thread(
                target=lambda: answers.append(
                    post_review(server, mint(fault_sts, "hang"))
                ),
                daemon=True,
            )
            for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        healthz = get_healthz(server)
        for thread in threads:
            thread.join(STS_TIMEOUT_S + 10)
        assert healthz.status == 200 and healthz.seconds < PROMPT_S, healthz
        assert len(answers) == 3
        for answer in answers:
            assert_unavailable(answer)
        assert server.process.poll() is None

    def test_metrics_count_the_outcomes(
        self, server: WebhookServer, fault_sts: FaultSTS
    ) -> None:
        """Each outcome is counted under its result label of docs/operations.md."""
        modes = {"ok": "success", "503": "sts_error", "throttle": "sts_throttling"}
        modes |= {"deny": "invalid_token", "garbage": "sts_error"}
        before = count_results(server.metrics())
        for mode in modes:
            post_review(server, mint(fault_sts, mode))
        after = count_results(server.metrics())
        for result in set(modes.values()):
            expected = list(modes.values()).count(result)
            assert after.get(result, 0) - before.get(result, 0) == expected, result


def count_results(metrics: str) -> dict[str, float]:
    """``kubeiam_authenticate_latency_seconds_count`` by result label."""
    prefix = 'kubeiam_authenticate_latency_seconds_count{result="'
    counts: dict[str, float] = {}
    for row in metrics.splitlines():
        if row.startswith(prefix):
            label, _, value = row[len(prefix) :].partition('"} ')
            counts[label] = float(value)
    return counts
