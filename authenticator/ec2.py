"""Private DNS names of EC2 instances for ``{{EC2PrivateDNSName}}``.

The lookup is ``ec2:DescribeInstances`` through botocore, behind a cache that
is bounded in size and in time: the reference caches every answer forever
(docs/configuration.md), which lets a caller who can name random
instance IDs grow the server's memory without limit. Concurrent lookups of one
instance ID share one call. Failures return ``""``, the "no DNS name" value the
pure mapper treats as a template error; unknown instance IDs are cached
briefly so that a flood of made-up IDs does not become a flood of EC2 calls.
Transient failures (throttling, network) are not cached.

Also here, behind the same botocore door: :func:`region_from_instance_metadata`,
the machine's region from the instance metadata service (IMDSv2), for a server
with no ``sts.region``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import boto3
import botocore.config
import botocore.exceptions
from botocore.utils import METADATA_BASE_URL, InstanceMetadataRegionFetcher

from authenticator.partitions import REGION_RE

log = logging.getLogger(__name__)

# Bounds of the cache (docs/configuration.md: bound it, give it a TTL).
DEFAULT_MAX_ENTRIES = 4096
DEFAULT_TTL_SECONDS = 900.0
# Unknown instance IDs are remembered briefly (made-up IDs are cheap to send).
DEFAULT_NEGATIVE_TTL_SECONDS = 30.0
# The reference waits up to 5 s for a lookup of the same ID already in flight.
DEFAULT_TIMEOUT_SECONDS = 5.0
# EC2 error codes that mean "this instance does not exist", not "EC2 is unwell".
_NOT_FOUND_CODES = frozenset(
    {"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"}
)


@dataclass(slots=True)
class EC2CacheStats:
    """Counters of the resolver (read them for metrics and tests).

    Attributes:
        hits: Answers served from the cache.
        misses: Lookups that went to EC2.
        failures: Lookups that returned no name.
        evictions: Entries dropped because the cache was full.
    """

    hits: int = 0
    misses: int = 0
    failures: int = 0
    evictions: int = 0


class EC2PrivateDNSResolver:
    """``instance ID -> private DNS name`` through DescribeInstances, cached.

    Call the object (it is the ``ec2_private_dns`` argument of
    :func:`authenticator.mapping.evaluate_mapping`). Thread-safe.

    Args:
        region: The EC2 region to ask.
        endpoint_url: Another EC2 endpoint (tests, VPC endpoints).
        max_entries: Cache size cap; the least recently used entry goes first.
        ttl_seconds: How long a found name is reused.
        negative_ttl_seconds: How long "no such instance" is remembered.
        timeout_seconds: Connect and read timeout of one call.
        clock: Monotonic seconds (injectable for tests).
        session: A boto3 session (default: a new one, default credential chain).
    """

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None = None,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        negative_ttl_seconds: float = DEFAULT_NEGATIVE_TTL_SECONDS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        session: boto3.session.Session | None = None,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._region = region
        self._endpoint_url = endpoint_url
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self._negative_ttl = negative_ttl_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._session = session
        self._client: object | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._in_flight: dict[str, threading.Event] = {}
        self.stats = EC2CacheStats()

    def __len__(self) -> int:
        """Return the number of cached entries (expired ones included until touched)."""
        return len(self._cache)

    def __call__(self, instance_id: str) -> str:
        """Return the instance's private DNS name, or ``""`` if it cannot.

        Args:
            instance_id: An EC2 instance ID (``i-...``).

        Returns:
            The private DNS name, or ``""`` (unknown instance, no name, EC2 error).
        """
        while True:
            with self._lock:
                cached = self._get_cached(instance_id)
                if cached is not None:
                    self.stats.hits += 1
                    return cached
                waiter = self._in_flight.get(instance_id)
                if waiter is None:
                    done = self._in_flight[instance_id] = threading.Event()
                    break
            if not waiter.wait(self._timeout):
                return ""
            with self._lock:
                cached = self._get_cached(instance_id)
            # The other lookup failed without caching: answer "" rather than
            # repeat a call EC2 just refused.
            return "" if cached is None else cached
        try:
            name, ttl = self._describe(instance_id)
            with self._lock:
                self.stats.misses += 1
                if not name:
                    self.stats.failures += 1
                if ttl > 0:
                    self._put(instance_id, name, ttl)
            return name
        finally:
            with self._lock:
                del self._in_flight[instance_id]
            done.set()

    def _get_cached(self, instance_id: str) -> str | None:
        item = self._cache.get(instance_id)
        if item is None:
            return None
        name, expires = item
        if self._clock() >= expires:
            del self._cache[instance_id]
            return None
        self._cache.move_to_end(instance_id)
        return name

    def _put(self, instance_id: str, name: str, ttl: float) -> None:
        self._cache[instance_id] = (name, self._clock() + ttl)
        self._cache.move_to_end(instance_id)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
            self.stats.evictions += 1

    def _ec2(self) -> object:
        with self._lock:
            if self._client is None:
                session = self._session or boto3.session.Session()
                config = botocore.config.Config(
                    connect_timeout=self._timeout,
                    read_timeout=self._timeout,
                    retries={"max_attempts": 2, "mode": "standard"},
                )
                self._client = session.client(
                    "ec2",
                    region_name=self._region,
                    endpoint_url=self._endpoint_url,
                    config=config,
                )
            return self._client

    def _describe(self, instance_id: str) -> tuple[str, float]:
        """Return (name, seconds to cache it); a ttl of 0 means do not cache."""
        client = self._ec2()
        try:
            reply = client.describe_instances(InstanceIds=[instance_id])  # type: ignore[attr-defined]  # botocore clients are generated at run time
        except botocore.exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND_CODES:
                log.info("ec2 instance not found", extra={"instance_id": instance_id})
                return "", self._negative_ttl
            log.warning("ec2 DescribeInstances failed", extra={"code": code})
            return "", 0.0
        except botocore.exceptions.BotoCoreError as exc:
            log.warning(
                "ec2 DescribeInstances failed", extra={"error": type(exc).__name__}
            )
            return "", 0.0
        for reservation in reply.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                if instance.get("InstanceId") == instance_id:
                    name = str(instance.get("PrivateDnsName") or "")
                    # An empty private DNS name is a failure (reference).
                    return name, self._ttl if name else self._negative_ttl
        return "", self._negative_ttl


# One attempt of at most this many seconds per request (token, then region).
IMDS_TIMEOUT_S = 1.0


def region_from_instance_metadata(env: Mapping[str, str] | None = None) -> str | None:
    """Ask instance metadata for this machine's region.

    Args:
        env: The environment (default ``os.environ``).

    Returns:
        The region, or None when disabled, unreachable or not a region name.
    """
    env = dict(os.environ if env is None else env)
    if env.get("AWS_EC2_METADATA_DISABLED", "").strip().lower() == "true":
        return None
    fetcher = InstanceMetadataRegionFetcher(
        timeout=IMDS_TIMEOUT_S,
        num_attempts=1,
        base_url=env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or METADATA_BASE_URL,
        env=env,
    )
    try:
        region = fetcher.retrieve_region()
    except (botocore.exceptions.BotoCoreError, OSError, ValueError):
        return None
    if not isinstance(region, str) or not REGION_RE.fullmatch(region):
        return None
    return region
