"""Prometheus metrics of the webhook (docs/operations.md).

Each app owns a dedicated :class:`~prometheus_client.CollectorRegistry`, so
several apps in one process (tests, the demo) never share or clash over
series, and nothing lands in prometheus_client's global default registry.

Several gunicorn workers are several processes, each with its own counters; a
scrape reaches one of them. The multiprocess-safe choice: ``kubeiam server``
runs one worker by default (gthread: the STS call is I/O, threads suffice), and
when started with ``--workers N > 1`` it points ``PROMETHEUS_MULTIPROC_DIR`` at
a private directory *before* any worker imports prometheus_client. Values then
live in per-process files; ``/metrics`` aggregates all of them with
:class:`~prometheus_client.multiprocess.MultiProcessCollector` (counters and
histograms summed; the entries gauge takes the most recent value), and the
arbiter removes a dead worker's files (``mark_process_dead``).
"""

from __future__ import annotations

import enum

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from webhook.cache import CacheOutcome

__all__ = ["LATENCY_BUCKETS", "Result", "WebhookMetrics"]

# Seconds. A cache hit costs well under a millisecond, an STS round trip tens to
# hundreds; the API server's per-attempt deadline is 30 s (Kubernetes webhook authn
# docs).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


class Result(enum.StrEnum):
    """The ``result`` label of ``kubeiam_authenticate_latency_seconds``.

    The values are the reference's (docs/operations.md), with
    ``unknown_user`` spelled correctly.
    """

    SUCCESS = "success"
    MALFORMED_REQUEST = "malformed_request"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - a label value, not a secret
    STS_ERROR = "sts_error"
    STS_THROTTLING = "sts_throttling"
    UNKNOWN_USER = "unknown_user"


class WebhookMetrics:
    """The webhook's metric families, registered in one private registry.

    Args:
        multiprocess_dir: ``PROMETHEUS_MULTIPROC_DIR`` when several worker
            processes share the metrics (see the module docstring), else ``None``.
    """

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._multiprocess_dir = multiprocess_dir
        self.latency = Histogram(
            "kubeiam_authenticate_latency_seconds",
            "Time to answer a TokenReview, by result.",
            ["result"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sts_requests = Counter(
            "kubeiam_sts_requests",
            "GetCallerIdentity calls to STS, by HTTP status code or failure kind.",
            ["code"],
            registry=self.registry,
        )
        self.verify_cache = Counter(
            "kubeiam_verify_cache",
            "Verification cache lookups, stores and evictions, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.mapping_reloads = Counter(
            "kubeiam_mapping_reloads",
            "Mapping source (re)loads, by source and result.",
            ["source", "result"],
            registry=self.registry,
        )
        self.mapping_entries = Gauge(
            "kubeiam_mapping_entries",
            "Mapping entries in effect, by source.",
            ["source"],
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )
        # Export every family from the start, so rate() sees a zero, not a gap,
        # and a scrape before the first STS call or cache lookup still lists it.
        for result in Result:
            self.latency.labels(result=result.value)
        self.sts_requests.labels(code="200")
        for outcome in CacheOutcome:
            self.verify_cache.labels(outcome=outcome.value)

    def observe_review(self, result: Result, seconds: float) -> None:
        """Record one answered TokenReview.

        Args:
            result: How it ended.
            seconds: How long it took.
        """
        self.latency.labels(result=result.value).observe(seconds)

    def observe_sts(self, code: str) -> None:
        """Count one STS call (``STSClient``'s ``observe`` hook).

        Args:
            code: The HTTP status code as text, or a failure kind (``timeout``...).
        """
        self.sts_requests.labels(code=code).inc()

    def observe_cache(self, outcome: str) -> None:
        """Count one verification-cache event (``VerificationCache``'s hook).

        Args:
            outcome: A :class:`webhook.cache.CacheOutcome` value.
        """
        self.verify_cache.labels(outcome=outcome).inc()

    def observe_reload(self, source: str, result: str, entries: int | None) -> None:
        """Count one mapping-source load and publish its entry count.

        Args:
            source: The source's name (``file``, ``configMap``, ``crd``, ``inline``).
            result: ``success`` or ``error``.
            entries: Entries in effect for the source after the load, if known.
        """
        self.mapping_reloads.labels(source=source, result=result).inc()
        if entries is not None:
            self.mapping_entries.labels(source=source).set(entries)

    def render(self) -> tuple[bytes, str]:
        """Return the exposition text and its content type for ``GET /metrics``.

        Returns:
            ``(body, content_type)``.
        """
        if self._multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        # prometheus_client leaves this constructor unannotated.
        MultiProcessCollector(merged, path=self._multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST
