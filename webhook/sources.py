"""The mapping registry: the sources' sets in precedence order, swapped atomically.

Each source (:mod:`webhook.sources_file`, :mod:`webhook.sources_kube`, or the
inline set here) turns what it reads into one immutable
:class:`authenticator.mapping.MappingSet` and hands it to the
:class:`MappingRegistry`, which publishes an immutable tuple of sets by a
single attribute assignment: a request reads one snapshot and never sees a
half-applied table. A reload that fails to parse or validate keeps that
source's last good set whole (the reference applies the valid half of a broken
aws-auth edit), is logged without its content, and is reported through
``on_reload(source, "error", entries)``. No failure ends a source's thread:
an unexpected exception (a bug, a library failure) is logged by type and
place only, reported as a reload error, and the source keeps watching.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import Protocol

from authenticator.mapping import MappingSet
from authenticator.mapping_child import release_gradually

# One logger for every mapping source (webhook.sources, _file, _kube).
log = logging.getLogger("webhook.sources")

Update = Callable[[MappingSet], None]
Failure = Callable[[str], None]
OnReload = Callable[[str, str, int], None]


class Source(Protocol):
    """A mapping source the registry drives."""

    name: str

    def start(self, update: Update, fail: Failure) -> None:
        """Deliver the first set (now or later) and every change after it."""

    def stop(self) -> None:
        """Stop watching; no call to ``update`` or ``fail`` follows."""


class MappingRegistry:
    """The mapping sets of every source, in precedence order, swapped atomically.

    Args:
        sources: The sources, in precedence order.
        on_reload: Called with (source name, ``"success"``/``"error"``, entry
            count of the set now served) after every load attempt.
    """

    def __init__(
        self, sources: Sequence[Source], *, on_reload: OnReload | None = None
    ) -> None:
        self._sources = tuple(sources)
        self._on_reload = on_reload
        self._sets: list[MappingSet | None] = [None] * len(self._sources)
        self._snapshot: tuple[MappingSet, ...] = ()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        if not self._sources:
            self._ready.set()

    @property
    def ready(self) -> bool:
        """Return whether every source has loaded once."""
        return self._ready.is_set()

    def snapshot(self) -> tuple[MappingSet, ...]:
        """Return the sets to evaluate, in order.

        Only the leading sources that have loaded are included: a later source
        never answers for an identity an earlier, not yet loaded source might map.

        Returns:
            An immutable tuple; it never changes after it is returned.
        """
        return self._snapshot

    def wait_ready(self, timeout: float) -> bool:
        """Block until every source has loaded once, or ``timeout`` seconds.

        Args:
            timeout: Seconds to wait.

        Returns:
            Whether the registry is ready.
        """
        return self._ready.wait(timeout)

    def start(self) -> None:
        """Start every source (file and inline sources load before this returns)."""
        for i, source in enumerate(self._sources):
            source.start(self._updater(i), self._failer(i))

    def stop(self) -> None:
        """Stop every source."""
        for source in self._sources:
            source.stop()

    def _updater(self, i: int) -> Update:
        def update(mapping_set: MappingSet) -> None:
            with self._lock:
                previous = self._sets[i]
                retired: list[MappingSet] = []
                if previous is not None and previous is not mapping_set:
                    retired.append(previous)
                self._sets[i] = mapping_set
                del previous
                prefix: list[MappingSet] = []
                for item in self._sets:
                    if item is None:
                        break
                    prefix.append(item)
                self._snapshot = tuple(prefix)
                if len(prefix) == len(self._sets):
                    self._ready.set()
            log.info(
                "mappings loaded",
                extra={"source": self._sources[i].name, "entries": mapping_set.entries},
            )
            self._report(i, "success", mapping_set.entries)
            release_gradually(retired)  # here in the source's thread, not a request's

        return update

    def _failer(self, i: int) -> Failure:
        def fail(message: str) -> None:
            with self._lock:
                current = self._sets[i]
            entries = current.entries if current is not None else 0
            log.warning(
                "mapping reload failed; keeping the last good mappings",
                extra={"source": self._sources[i].name, "error": message},
            )
            self._report(i, "error", entries)

        return fail

    def _report(self, i: int, result: str, entries: int) -> None:
        if self._on_reload is not None:
            self._on_reload(self._sources[i].name, result, entries)


def build_registry(
    sources: Sequence[Source], *, on_reload: OnReload | None = None
) -> MappingRegistry:
    """Build a (not yet started) registry over ``sources``.

    Args:
        sources: The sources, in precedence order.
        on_reload: See :class:`MappingRegistry`.

    Returns:
        The registry; call ``start()`` in the process that serves requests.
    """
    return MappingRegistry(sources, on_reload=on_reload)


class InlineSource:
    """A fixed mapping set (the server config's own mapRoles/mapUsers/mapAccounts).

    Args:
        mapping_set: The set to serve.
    """

    def __init__(self, mapping_set: MappingSet) -> None:
        self.name = mapping_set.source
        self._set = mapping_set

    def start(self, update: Update, fail: Failure) -> None:
        """Deliver the set at once."""
        update(self._set)

    def stop(self) -> None:
        """Nothing to stop."""


def log_unexpected(source: str, exc: BaseException) -> None:
    """Log a failure by type and innermost frame (its text may quote input)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    log.error(
        "mapping source failed unexpectedly; keeping the last good mappings",
        extra={"source": source, "error": type(exc).__name__, "where": where},
    )


def fail_unexpected(source: str, exc: BaseException, fail: Failure) -> None:
    """Log an unexpected failure and report it as a reload error (never raises)."""
    log_unexpected(source, exc)
    try:
        fail(f"unexpected {type(exc).__name__} while loading the mappings")
    except Exception as report_exc:  # reporting must not end the thread
        log_unexpected(source, report_exc)
