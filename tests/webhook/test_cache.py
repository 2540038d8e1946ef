"""The verification cache (webhook/cache.py)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from authenticator.identity import Identity
from webhook.cache import CacheOutcome, VerificationCache, token_key

NOW = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=15)


def _identity(n: int = 0) -> Identity:
    return Identity(
        arn=f"arn:aws:iam::111122223333:user/u{n}",
        canonical_arn=f"arn:aws:iam::111122223333:user/u{n}",
        account_id="111122223333",
        user_id=f"AIDA{n:016d}",
        session_name="",
        access_key_id="AKIAEXAMPLE",
    )


class TestVerificationCache:
    """Lookups, deadlines, bounds and outcomes."""

    def test_hit_after_put(self) -> None:
        """A stored identity comes back for the same token."""
        cache = VerificationCache(ttl_seconds=60, max_entries=10)
        cache.put("tok", _identity(), expires_at=LATER, now=NOW)
        assert cache.get("tok", now=NOW + timedelta(seconds=59)) == _identity()
        assert cache.get("other", now=NOW) is None

    def test_ttl_bounds_the_entry(self) -> None:
        """An entry dies after ttlSeconds."""
        cache = VerificationCache(ttl_seconds=60, max_entries=10)
        cache.put("tok", _identity(), expires_at=LATER, now=NOW)
        assert cache.get("tok", now=NOW + timedelta(seconds=60)) is None
        assert len(cache) == 0

    def test_never_outlives_the_token(self) -> None:
        """An entry dies when its token expires, even if the TTL is longer."""
        cache = VerificationCache(ttl_seconds=900, max_entries=10)
        cache.put("tok", _identity(), expires_at=NOW + timedelta(seconds=5), now=NOW)
        assert cache.get("tok", now=NOW + timedelta(seconds=4)) is not None
        assert cache.get("tok", now=NOW + timedelta(seconds=5)) is None

    def test_expired_token_is_not_stored(self) -> None:
        """A token already past its expiry is never stored."""
        cache = VerificationCache(ttl_seconds=60, max_entries=10)
        cache.put("tok", _identity(), expires_at=NOW, now=NOW)
        assert len(cache) == 0

    def test_lru_eviction(self) -> None:
        """Past maxEntries the least recently used entry goes first."""
        cache = VerificationCache(ttl_seconds=60, max_entries=2)
        cache.put("a", _identity(1), expires_at=LATER, now=NOW)
        cache.put("b", _identity(2), expires_at=LATER, now=NOW)
        assert cache.get("a", now=NOW) is not None  # a is now the most recent
        cache.put("c", _identity(3), expires_at=LATER, now=NOW)
        assert cache.get("b", now=NOW) is None
        assert cache.get("a", now=NOW) == _identity(1)
        assert cache.get("c", now=NOW) == _identity(3)
        assert len(cache) == 2

    @pytest.mark.parametrize(("ttl", "size"), [(0, 10), (60, 0)])
    def test_disabled(self, ttl: float, size: int) -> None:
        """ttlSeconds 0 or maxEntries 0 disables the cache."""
        cache = VerificationCache(ttl_seconds=ttl, max_entries=size)
        cache.put("tok", _identity(), expires_at=LATER, now=NOW)
        assert not cache.enabled
        assert cache.get("tok", now=NOW) is None

    def test_outcomes_are_reported(self) -> None:
        """miss, store, hit, evict and expired reach the observe hook."""
        seen: list[str] = []
        cache = VerificationCache(ttl_seconds=10, max_entries=1, observe=seen.append)
        cache.get("a", now=NOW)
        cache.put("a", _identity(), expires_at=LATER, now=NOW)
        cache.get("a", now=NOW)
        cache.put("b", _identity(), expires_at=LATER, now=NOW)
        cache.get("b", now=NOW + timedelta(seconds=11))
        assert seen == [
            CacheOutcome.MISS,
            CacheOutcome.STORE,
            CacheOutcome.HIT,
            CacheOutcome.STORE,
            CacheOutcome.EVICT,
            CacheOutcome.EXPIRED,
        ]

    def test_key_is_a_hash_not_the_token(self) -> None:
        """The cache never holds the token: keys are SHA-256 digests."""
        cache = VerificationCache(ttl_seconds=60, max_entries=10)
        cache.put("k8s-aws-v1.SECRET", _identity(), expires_at=LATER, now=NOW)
        keys = list(cache._entries)
        assert keys == [token_key("k8s-aws-v1.SECRET")]
        assert len(keys[0]) == 32
        assert b"SECRET" not in keys[0]

    def test_thread_safe_under_concurrent_use(self) -> None:
        """Concurrent puts and gets keep the bound and never raise."""
        cache = VerificationCache(ttl_seconds=60, max_entries=50)
        errors: list[BaseException] = []

        def work(offset: int) -> None:
            try:
                for i in range(500):
                    cache.put(f"t{offset}-{i}", _identity(i), expires_at=LATER, now=NOW)
                    cache.get(f"t{offset}-{i // 2}", now=NOW)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(cache) == 50
