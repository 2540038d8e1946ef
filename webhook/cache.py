"""The verification cache: token hash -> identity STS confirmed.

docs/operations.md (Tuning the caches): the reference calls STS for every review; the
API server caches answers per process only. kubeiam keeps a short cache of
*identities* (valid STS answers), never of decisions: mapping is applied fresh
on every request, so a mapping change works at once. An entry never outlives
its token (the deadline is the earlier of ``ttlSeconds`` and the token's
expiry), the key is a SHA-256 of the token (the token itself is never kept),
the size is bounded (least recently used entries go first) and every method
is thread-safe (gunicorn's gthread workers share one cache per process).
"""

from __future__ import annotations

import enum
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

from authenticator.identity import Identity

__all__ = ["CacheOutcome", "VerificationCache", "token_key"]


class CacheOutcome(enum.StrEnum):
    """The ``outcome`` label values of ``kubeiam_verify_cache_total``."""

    HIT = "hit"
    MISS = "miss"
    EXPIRED = "expired"
    STORE = "store"
    EVICT = "evict"


def token_key(token: str) -> bytes:
    """Return the cache key of a token: its SHA-256 digest.

    Args:
        token: The bearer token.

    Returns:
        32 bytes; the token cannot be recovered from them. Every string has a
        key: a lone surrogate (a legal JSON escape, never in a valid token) is
        encoded as itself rather than raising, so distinct tokens keep
        distinct keys.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _ignore(_outcome: str) -> None:
    return None


class VerificationCache:
    """A bounded, thread-safe LRU map from token hash to verified identity.

    Args:
        ttl_seconds: Longest life of an entry; ``<= 0`` disables the cache.
        max_entries: Most entries kept; ``<= 0`` disables the cache.
        observe: Called with a :class:`CacheOutcome` value for every lookup,
            store and eviction (the metrics hook).
    """

    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_entries: int,
        observe: Callable[[str], None] = _ignore,
    ) -> None:
        self._ttl = timedelta(seconds=max(ttl_seconds, 0.0))
        self._max = max(max_entries, 0)
        self._observe = observe
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, tuple[Identity, datetime]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """Whether entries are kept at all."""
        return self._max > 0 and self._ttl > timedelta(0)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, token: str, *, now: datetime) -> Identity | None:
        """Return the identity cached for ``token`` if its entry is still live.

        Args:
            token: The bearer token.
            now: The current time (timezone-aware).

        Returns:
            The identity, or ``None`` when absent or past its deadline.
        """
        if not self.enabled:
            return None
        key = token_key(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                outcome, found = CacheOutcome.MISS, None
            elif entry[1] <= now:
                del self._entries[key]
                outcome, found = CacheOutcome.EXPIRED, None
            else:
                self._entries.move_to_end(key)
                outcome, found = CacheOutcome.HIT, entry[0]
        self._observe(outcome)
        return found

    def put(
        self, token: str, identity: Identity, *, expires_at: datetime, now: datetime
    ) -> None:
        """Remember the identity STS confirmed for ``token``.

        Args:
            token: The bearer token.
            identity: What STS answered.
            expires_at: When the token stops being valid (the entry dies no later).
            now: The current time (timezone-aware).
        """
        if not self.enabled:
            return
        deadline = min(now + self._ttl, expires_at)
        if deadline <= now:
            return
        key = token_key(token)
        evicted = 0
        with self._lock:
            self._entries[key] = (identity, deadline)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
                evicted += 1
        self._observe(CacheOutcome.STORE)
        for _ in range(evicted):
            self._observe(CacheOutcome.EVICT)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
