"""What the views need, gathered once per app (no Flask here).

:func:`webhook.create_app` builds one :class:`Services` and stores it in
``app.extensions["kubeiam"]``; the views read it. Each dependency that does
I/O is a :class:`~typing.Protocol`, so tests inject fakes or real local
services without monkeypatching.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from authenticator.hosts import AllowedHosts
from authenticator.identity import Identity
from authenticator.mapping import MappingSet
from authenticator.verify import PresignedCall
from webhook.cache import VerificationCache
from webhook.metrics import WebhookMetrics
from webhook.settings import WebhookSettings

__all__ = ["Clock", "MappingSnapshots", "STSCaller", "Services"]

Clock = Callable[[], datetime]


class STSCaller(Protocol):
    """Calls GetCallerIdentity (``authenticator.sts.STSClient``)."""

    def call_get_caller_identity(self, call: PresignedCall) -> Identity:
        """Return the identity STS reports for a validated presigned call.

        Raises:
            STSRejectedError: STS refused the signature or answered nonsense.
            STSThrottledError: STS throttled the call.
            STSUnavailableError: STS could not be reached, timed out or answered 5xx.
        """


class MappingSnapshots(Protocol):
    """The mapping sources (``webhook.sources.MappingRegistry``)."""

    @property
    def ready(self) -> bool:
        """Whether every source has loaded once."""

    def snapshot(self) -> Sequence[MappingSet]:
        """Return the mapping sets in precedence order (one immutable table)."""


@dataclass(slots=True)
class Services:
    """Everything ``POST /authenticate`` uses.

    Attributes:
        settings: The server settings.
        allowed_hosts: The STS host allow-list built from them.
        sts: The STS caller.
        registry: The mapping sources.
        cache: The verification cache.
        metrics: This app's metrics.
        clock: The current time (timezone-aware UTC).
        ec2_private_dns: The ``{{EC2PrivateDNSName}}`` lookup, if any.
        closers: Called by :meth:`close` (stop watchers, close pools).
    """

    settings: WebhookSettings
    allowed_hosts: AllowedHosts
    sts: STSCaller
    registry: MappingSnapshots
    cache: VerificationCache
    metrics: WebhookMetrics
    clock: Clock
    ec2_private_dns: Callable[[str], str] | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Stop background work (source watchers) and release connections."""
        while self.closers:
            self.closers.pop()()
