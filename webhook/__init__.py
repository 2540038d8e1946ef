"""The TokenReview webhook: a Flask app factory over the identity core.

``create_app(settings)`` builds the app that ``kubeiam server`` runs under
gunicorn (``webhook.server_cli``) and that tests drive with Flask's test
client. Everything it depends on is built from the settings here, once, or
injected (``sts``, ``registry``, ``clock``...): nothing below reads the
environment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask

from authenticator.hosts import AllowedHosts, build_allowed_hosts
from authenticator.mapping import MappingSet, parse_mappings
from authenticator.mapping_model import with_group_prefixes
from authenticator.partitions import get_partition
from webhook import views
from webhook.cache import VerificationCache
from webhook.errors import ConfigError
from webhook.metrics import WebhookMetrics
from webhook.services import Clock, MappingSnapshots, Services, STSCaller
from webhook.settings import WebhookSettings
from webhook.sources import (
    InlineSource,
    MappingRegistry,
    Source,
    build_registry,
)
from webhook.sources_file import (
    CHILD_PARSE_BYTES,
    FileSource,
    LoadedFile,
    read_mapping_file,
)
from webhook.sources_kube import ConfigMapSource, CRDSource, load_api_client
from webhook.tokenreview import MAX_BODY_BYTES

__all__ = [
    "ConfigError",
    "Services",
    "WebhookSettings",
    "build_allowed_hosts_for",
    "build_mapping_registry",
    "check_settings",
    "create_app",
]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def build_allowed_hosts_for(settings: WebhookSettings) -> AllowedHosts:
    """Return the STS allow-list the settings describe.

    Args:
        settings: The server settings.

    Returns:
        The allow-list (partition hosts plus ``sts.extraEndpoints``).

    Raises:
        ConfigError: An extra endpoint or the region is invalid.
    """
    region = settings.sts.region or get_partition(settings.partition).default_region
    where = str(settings.config_file or "config")
    try:
        return build_allowed_hosts(
            settings.partition, settings.sts.extra_endpoints, region=region
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: sts: {exc}") from exc


def _inline_set(settings: WebhookSettings) -> MappingSet | None:
    if settings.inline is None:
        return None
    return with_group_prefixes(
        parse_mappings(
            settings.inline,
            source="inline",
            where=str(settings.config_file or "config"),
            reserved_prefixes=settings.inline_reserved_prefixes,
        ),
        settings.inline_reserved_group_prefixes,
    )


def _source_names(settings: WebhookSettings) -> list[str]:
    """Metric/log names: the kind, or ``kind[i]`` when a kind appears twice."""
    kinds = [s.kind for s in settings.sources]
    return [
        kind if kinds.count(kind) == 1 else f"{kind}[{i}]"
        for i, kind in enumerate(kinds)
    ]


def build_mapping_registry(
    settings: WebhookSettings,
    *,
    on_reload: Callable[[str, str, int], None] | None = None,
    preloaded: dict[int, LoadedFile] | None = None,
) -> MappingRegistry:
    """Build the (not yet started) mapping registry the settings describe.

    The inline mappings come first, then ``sources`` in order (docs/configuration.md).

    Args:
        settings: The server settings.
        on_reload: Called with (source, ``success``/``error``, entries) per load.
        preloaded: Files :func:`check_settings` read, by index in ``sources``:
            served at start instead of reading them again (each is taken out
            of the dict, so it is freed once a reload replaces it).

    Returns:
        The registry; ``start()`` it in the serving process.

    Raises:
        ConfigError: The inline mappings or the kubeconfig are invalid.
    """
    sources: list[Source] = []
    inline = _inline_set(settings)
    if inline is not None:
        sources.append(InlineSource(inline))
    api_client = None
    names = _source_names(settings)
    for i, (spec, name) in enumerate(zip(settings.sources, names, strict=True)):
        if spec.kind == "file":
            assert spec.path is not None  # noqa: S101 - parse_settings requires it
            # Taken out, so the worker frees it once a reload replaces it.
            initial = preloaded.pop(i, None) if preloaded is not None else None
            sources.append(
                FileSource(
                    spec.path,
                    reserved_prefixes=spec.reserved_prefixes,
                    source=name,
                    reserved_group_prefixes=spec.reserved_group_prefixes or (),
                    max_bytes=spec.max_bytes,
                    initial=initial,
                )
            )
            continue
        if api_client is None:
            api_client = load_api_client(settings.kubeconfig)
        if spec.kind == "configMap":
            sources.append(
                ConfigMapSource(
                    spec.namespace,
                    spec.name,
                    api_client=api_client,
                    reserved_prefixes=spec.reserved_prefixes,
                    reserved_group_prefixes=spec.reserved_group_prefixes,
                )
            )
        else:
            sources.append(
                CRDSource(
                    api_client=api_client,
                    reserved_prefixes=spec.reserved_prefixes,
                    reserved_group_prefixes=spec.reserved_group_prefixes,
                )
            )
    return build_registry(sources, on_reload=on_reload)


def check_settings(settings: WebhookSettings) -> dict[int, LoadedFile]:
    """Fail fast on what only shows when the app is built (``kubeiam server``).

    Builds the STS allow-list, parses the inline mappings, loads every
    mapping file once and builds the Kubernetes client the configMap/crd
    sources need (no request), so a bad endpoint, a broken mapping file or no
    usable kubeconfig stops start-up with exit 1 instead of leaving a server
    that is never ready.

    Args:
        settings: The server settings.

    Returns:
        The mapping files it read, by index in ``settings.sources``: pass them
        to :func:`create_app` (``preloaded``) so workers forked after this
        serve them without reading them again.

    Raises:
        ConfigError: Something in the settings or a local source is invalid.
    """
    build_allowed_hosts_for(settings)
    _inline_set(settings)
    if settings.authorization is not None:
        from webhook.authorize import AuthorizationSettings, RBACHolder

        base_dir = settings.config_file.parent if settings.config_file else None
        auth = AuthorizationSettings.parse(settings.authorization, base_dir=base_dir)
        RBACHolder(auth.rbac_paths)
    where = settings.config_file or "config"
    loaded: dict[int, LoadedFile] = {}
    names = _source_names(settings)
    for i, spec in enumerate(settings.sources):
        try:
            if spec.kind == "file":
                assert spec.path is not None  # noqa: S101 - parse_settings requires it
                loaded[i] = read_mapping_file(
                    spec.path,
                    reserved_prefixes=spec.reserved_prefixes,
                    source=names[i],
                    reserved_group_prefixes=spec.reserved_group_prefixes or (),
                    max_bytes=spec.max_bytes,
                    child_parse_bytes=CHILD_PARSE_BYTES,
                )
            else:
                # Build (no request yet) the client a configMap/crd source needs,
                # so a missing kubeconfig or in-cluster environment is exit 1 with
                # the file and key instead of every worker dying at boot.
                load_api_client(settings.kubeconfig).close()
        except ConfigError as exc:
            key = "file.path" if spec.kind == "file" else spec.kind
            raise ConfigError(f"{where}: sources[{i}].{key}: {exc}") from exc
    return loaded


class _LazyEC2:
    """``{{EC2PrivateDNSName}}`` lookups; boto3 is imported on first use only."""

    def __init__(self, region: str) -> None:
        self._region = region
        self._lock = threading.Lock()
        self._resolver: Callable[[str], str] | None = None

    def __call__(self, instance_id: str) -> str:
        with self._lock:
            if self._resolver is None:
                from authenticator.ec2 import EC2PrivateDNSResolver

                self._resolver = EC2PrivateDNSResolver(region=self._region)
            resolver = self._resolver
        return resolver(instance_id)


def create_app(
    settings: WebhookSettings,
    *,
    sts: STSCaller | None = None,
    registry: MappingSnapshots | None = None,
    clock: Clock | None = None,
    ec2_private_dns: Callable[[str], str] | None = None,
    metrics: WebhookMetrics | None = None,
    multiprocess_dir: str | None = None,
    preloaded: dict[int, LoadedFile] | None = None,
) -> Flask:
    """Build the webhook app.

    Args:
        settings: The server settings.
        sts: The STS caller (default: a pooled ``STSClient`` from the settings).
        registry: The mapping sources (default: built from ``settings.sources``
            and the inline mappings, and started).
        clock: The current time (default: the system clock, UTC).
        ec2_private_dns: The ``{{EC2PrivateDNSName}}`` lookup (default: EC2
            DescribeInstances in the STS region, created on first use).
        metrics: The metrics (default: a fresh private registry).
        multiprocess_dir: ``PROMETHEUS_MULTIPROC_DIR`` when several gunicorn
            workers share metrics (see :mod:`webhook.metrics`).

        preloaded: Mapping files already read (:func:`check_settings`).
    Returns:
        The Flask app; ``app.extensions["kubeiam"]`` holds its
        :class:`Services` (call ``.close()`` to stop source watchers).

    Raises:
        ConfigError: The settings cannot be turned into a working app.
    """
    metrics = metrics or WebhookMetrics(multiprocess_dir=multiprocess_dir)
    allowed_hosts = build_allowed_hosts_for(settings)
    closers: list[Callable[[], None]] = []
    if sts is None:
        from authenticator.sts import STSClient

        client = STSClient(
            timeout=settings.sts.timeout_s,
            max_body_bytes=settings.sts.max_body_bytes,
            pool_maxsize=settings.server.threads,
            observe=metrics.observe_sts,
        )
        closers.append(client.close)
        sts = client
    if registry is None:
        built = build_mapping_registry(
            settings, on_reload=metrics.observe_reload, preloaded=preloaded
        )
        built.start()
        closers.append(built.stop)
        registry = built
    region = settings.sts.region or get_partition(settings.partition).default_region
    services = Services(
        settings=settings,
        allowed_hosts=allowed_hosts,
        sts=sts,
        registry=registry,
        cache=VerificationCache(
            ttl_seconds=settings.cache.ttl_seconds,
            max_entries=settings.cache.max_entries,
            observe=metrics.observe_cache,
        ),
        metrics=metrics,
        clock=clock or _utcnow,
        ec2_private_dns=ec2_private_dns or _LazyEC2(region),
        closers=closers,
    )
    app = Flask(__name__)
    # Werkzeug refuses a larger declared body with 413; the view checks again.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["kubeiam"] = services
    app.register_blueprint(views.bp)
    # Optional POST /authorize (SubjectAccessReview): config key ``authorization``.
    from webhook.authorize import install_authorizer

    base_dir = settings.config_file.parent if settings.config_file else None
    install_authorizer(app, settings.authorization, base_dir=base_dir)
    # POST /authenticate answered without Flask's per-request machinery.
    from webhook.front import TokenReviewFront

    app.wsgi_app = TokenReviewFront(app.wsgi_app, services)  # type: ignore[method-assign]
    return app
