"""The server config file (docs/configuration.md) as frozen dataclasses.

``parse_settings`` is pure: a parsed YAML document in, :class:`WebhookSettings`
out, or a :class:`~webhook.errors.ConfigError` naming the file, the key path
inside it and what is wrong (``config.yaml: sts.timeoutSeconds: must be a
positive number``). ``load_settings`` is its shell: it reads the file.

Relative paths in the file (``server.certFile``, ``sources[].file.path``...)
resolve against the file's directory, as kube-apiserver resolves the paths in
its webhook kubeconfig (docs/configuration.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from authenticator import yamlio
from authenticator.hosts import parse_endpoint
from authenticator.partitions import PARTITIONS, REGION_RE
from authenticator.wire import DEFAULT_WEBHOOK_PORT as DEFAULT_PORT
from webhook.errors import ConfigError
from webhook.settings_compat import (
    is_authenticator_config,
    translate_authenticator_config,
)

__all__ = [
    "DEFAULT_PORT",
    "SOURCE_KINDS",
    "CacheSettings",
    "STSSettings",
    "ServerSettings",
    "SourceSettings",
    "WebhookSettings",
    "load_settings",
    "load_yaml",
    "parse_settings",
]

# The reference's default listen address (docs/configuration.md); the port is
# authenticator.wire.DEFAULT_WEBHOOK_PORT, shared with the kubeconfig writer.
DEFAULT_ADDRESS = "127.0.0.1"

# docs/operations.md: "start with workers: 2, threads: 16"; the STS call is I/O.
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 16

# docs/configuration.md example values; the reference's STS timeout is 10 s
# (docs/operations.md), well under the API server's 30 s attempt.
DEFAULT_STS_TIMEOUT_S = 5.0
DEFAULT_CACHE_TTL_S = 60.0
DEFAULT_CACHE_MAX_ENTRIES = 10_000

# A GetCallerIdentity answer is about 500 bytes; 64 KiB leaves room for any real one.
DEFAULT_STS_MAX_BODY_BYTES = 64 * 1024

# Tokens stay valid 15 minutes after X-Amz-Date (docs/token-format.md):
# a longer cache TTL would never be used.
MAX_CACHE_TTL_S = 15 * 60

# A file source's ``maxBytes``: its default and the most it may be set to.
DEFAULT_MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_FILE_BYTES_LIMIT = 1024 * 1024 * 1024

# The mapping source kinds of docs/configuration.md, in the config's spelling.
SOURCE_KINDS = ("file", "configMap", "crd")

# Keys of reservedPrefixes: each source kind, plus the file's own inline mappings.
RESERVED_PREFIX_KEYS = (*SOURCE_KINDS, "inline")

# Keys of the optional ``authorization`` section (webhook/authorize.py parses it).
_AUTHORIZATION_KEYS = frozenset({"rbacPaths", "denyRules", "privilegedBypass"})
_TOP_KEYS = frozenset(
    {
        "clusterID",
        "partition",
        "server",
        "sts",
        "cache",
        "sources",
        "reservedPrefixes",
        "reservedGroupPrefixes",
        "mapRoles",
        "mapUsers",
        "mapAccounts",
        "kubeconfig",
        "authorization",
    }
)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """``server:`` - where and how gunicorn listens.

    Attributes:
        address: Listen address.
        port: Listen port.
        cert_file: Serving certificate (PEM); required by ``kubeiam server``.
        key_file: Its private key (PEM).
        client_ca_file: When set, only clients with a certificate signed by
            this CA complete the TLS handshake (the API server's, from
            ``kubeiam init``).
        workers: gunicorn worker processes.
        threads: Threads per worker (gthread).
    """

    address: str = DEFAULT_ADDRESS
    port: int = DEFAULT_PORT
    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    workers: int = DEFAULT_WORKERS
    threads: int = DEFAULT_THREADS


@dataclass(frozen=True, slots=True)
class STSSettings:
    """``sts:`` - how GetCallerIdentity is called.

    Attributes:
        region: The server's region (``None``: the partition's default).
        timeout_s: Per-call timeout in seconds.
        extra_endpoints: Extra allowed STS endpoints (``scheme://host[:port]``).
        max_body_bytes: Cap on an STS answer's body.
    """

    region: str | None = None
    timeout_s: float = DEFAULT_STS_TIMEOUT_S
    extra_endpoints: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_STS_MAX_BODY_BYTES


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """``cache:`` - the verification cache.

    Attributes:
        ttl_seconds: Longest life of an entry (``0`` disables the cache).
        max_entries: Most entries kept.
    """

    ttl_seconds: float = DEFAULT_CACHE_TTL_S
    max_entries: int = DEFAULT_CACHE_MAX_ENTRIES


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """One entry of ``sources:``.

    Attributes:
        kind: ``file``, ``configMap`` or ``crd``.
        where: Its key path in the config (``sources[0].file``), for messages.
        path: The mapping file (``file``).
        namespace: The ConfigMap's namespace (``configMap``; default ``kube-system``).
        name: The ConfigMap's name (``configMap``; default ``aws-auth``).
        reserved_prefixes: Username prefixes this source may not grant.
        reserved_group_prefixes: Group prefixes this source may not grant
            (``reservedGroupPrefixes``; None: the kind's default, ``system:``
            for ``crd``, none for the others).
        max_bytes: The largest mapping file read (``file``; ``maxBytes``);
            a larger one is refused before it is parsed.
    """

    kind: str
    where: str
    path: Path | None = None
    namespace: str = "kube-system"
    name: str = "aws-auth"
    reserved_prefixes: tuple[str, ...] = ()
    reserved_group_prefixes: tuple[str, ...] | None = None
    max_bytes: int = DEFAULT_MAX_FILE_BYTES


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """The whole server config.

    Attributes:
        cluster_id: The ID tokens must be signed for (``x-k8s-aws-id``).
        partition: The AWS partition whose STS hosts are allowed.
        server: Listening and TLS.
        sts: The STS call.
        cache: The verification cache.
        sources: Mapping sources, tried in order after the inline mappings.
        inline: The file's own ``mapRoles``/``mapUsers``/``mapAccounts``
            (a document for ``authenticator.mapping.parse_mappings``), or ``None``.
        inline_reserved_prefixes: Reserved prefixes for the inline mappings.
        inline_reserved_group_prefixes: Reserved group prefixes for them.
        kubeconfig: Kubeconfig for the Kubernetes sources (``None``: in-cluster).
        config_file: The file the settings came from (for messages).
        authorization: The raw ``authorization`` section (``POST /authorize``;
            parsed by :mod:`webhook.authorize`), or None.
    """

    cluster_id: str
    partition: str = "aws"
    server: ServerSettings = field(default_factory=ServerSettings)
    sts: STSSettings = field(default_factory=STSSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    sources: tuple[SourceSettings, ...] = ()
    inline: Mapping[str, object] | None = None
    inline_reserved_prefixes: tuple[str, ...] = ()
    inline_reserved_group_prefixes: tuple[str, ...] = ()
    kubeconfig: Path | None = None
    config_file: Path | None = None
    authorization: Mapping[str, object] | None = None


class _Reader:
    """Typed access to a parsed document, every failure naming file and key path."""

    def __init__(self, where: str, base: Path | None) -> None:
        self.where = where
        self.base = base

    def fail(self, path: str, reason: str) -> ConfigError:
        return ConfigError(f"{self.where}: {path}: {reason}")

    def mapping(
        self, value: object, path: str, keys: frozenset[str]
    ) -> dict[str, object]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, "must be a mapping")
        for key in value:
            if not isinstance(key, str) or key not in keys:
                prefix = f"{path}." if path else ""
                raise self.fail(
                    f"{prefix}{key}", f"unknown key (known: {', '.join(sorted(keys))})"
                )
        return value

    def string(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, "must be a non-empty string")
        return value

    def integer(self, value: object, path: str, low: int, high: int) -> int:
        # bool is an int in Python; YAML's `true` is not a port number.
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not low <= value <= high
        ):
            raise self.fail(path, f"must be an integer from {low} to {high}")
        return value

    def number(self, value: object, path: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, "must be a number")
        if not low <= float(value) <= high:
            raise self.fail(path, f"must be from {low:g} to {high:g}")
        return float(value)

    def file(self, value: object, path: str) -> Path:
        raw = Path(self.string(value, path))
        return raw if raw.is_absolute() or self.base is None else self.base / raw

    def strings(self, value: object, path: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(path, "must be a list of strings")
        return tuple(self.string(item, f"{path}[{i}]") for i, item in enumerate(value))


def _parse_server(r: _Reader, raw: object) -> ServerSettings:
    keys = frozenset(
        {"address", "port", "certFile", "keyFile", "clientCAFile", "workers", "threads"}
    )
    doc = r.mapping(raw, "server", keys)
    d = ServerSettings()
    cert = r.file(doc["certFile"], "server.certFile") if "certFile" in doc else None
    key = r.file(doc["keyFile"], "server.keyFile") if "keyFile" in doc else None
    if (cert is None) != (key is None):
        missing = "server.keyFile" if key is None else "server.certFile"
        raise r.fail(missing, "certFile and keyFile go together")
    ca = doc.get("clientCAFile")
    return ServerSettings(
        address=r.string(doc.get("address", d.address), "server.address"),
        port=r.integer(doc.get("port", d.port), "server.port", 1, 65535),
        cert_file=cert,
        key_file=key,
        client_ca_file=None if ca is None else r.file(ca, "server.clientCAFile"),
        workers=r.integer(doc.get("workers", d.workers), "server.workers", 1, 64),
        threads=r.integer(doc.get("threads", d.threads), "server.threads", 1, 1024),
    )


def _parse_sts(r: _Reader, raw: object) -> STSSettings:
    keys = frozenset({"region", "timeoutSeconds", "extraEndpoints", "maxBodyBytes"})
    doc = r.mapping(raw, "sts", keys)
    d = STSSettings()
    region = doc.get("region")
    if region is not None and not REGION_RE.fullmatch(r.string(region, "sts.region")):
        raise r.fail("sts.region", f"{region!r} is not a region name (e.g. us-west-2)")
    endpoints = r.strings(doc.get("extraEndpoints", []), "sts.extraEndpoints")
    for i, url in enumerate(endpoints):
        try:
            parse_endpoint(url)
        except ConfigError as exc:
            raise r.fail(f"sts.extraEndpoints[{i}]", str(exc)) from exc
    return STSSettings(
        region=None if region is None else r.string(region, "sts.region"),
        # The API server gives each attempt 30 s (docs/operations.md).
        timeout_s=r.number(
            doc.get("timeoutSeconds", d.timeout_s), "sts.timeoutSeconds", 0.1, 30
        ),
        extra_endpoints=endpoints,
        max_body_bytes=r.integer(
            doc.get("maxBodyBytes", d.max_body_bytes), "sts.maxBodyBytes", 1024, 1 << 20
        ),
    )


def _parse_cache(r: _Reader, raw: object) -> CacheSettings:
    doc = r.mapping(raw, "cache", frozenset({"ttlSeconds", "maxEntries"}))
    d = CacheSettings()
    return CacheSettings(
        ttl_seconds=r.number(
            doc.get("ttlSeconds", d.ttl_seconds), "cache.ttlSeconds", 0, MAX_CACHE_TTL_S
        ),
        max_entries=r.integer(
            doc.get("maxEntries", d.max_entries), "cache.maxEntries", 0, 10_000_000
        ),
    )


def _parse_reserved(
    r: _Reader, raw: object, key: str = "reservedPrefixes"
) -> dict[str, tuple[str, ...]]:
    doc = r.mapping(raw, key, frozenset(RESERVED_PREFIX_KEYS))
    return {kind: r.strings(value, f"{key}.{kind}") for kind, value in doc.items()}


def _parse_sources(
    r: _Reader, raw: object, reserved: Mapping[str, tuple[str, ...]]
) -> tuple[SourceSettings, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise r.fail("sources", "must be a list")
    out: list[SourceSettings] = []
    for i, item in enumerate(raw):
        here = f"sources[{i}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise r.fail(
                here, f"must be a mapping with exactly one of {', '.join(SOURCE_KINDS)}"
            )
        ((kind, body),) = item.items()
        if kind not in SOURCE_KINDS:
            raise r.fail(
                f"{here}.{kind}", f"unknown source (known: {', '.join(SOURCE_KINDS)})"
            )
        where = f"{here}.{kind}"
        prefixes = reserved.get(kind, ())
        if kind == "file":
            doc = r.mapping(body, where, frozenset({"path", "maxBytes"}))
            if "path" not in doc:
                raise r.fail(f"{where}.path", "required")
            out.append(
                SourceSettings(
                    kind=kind,
                    where=where,
                    path=r.file(doc["path"], f"{where}.path"),
                    reserved_prefixes=prefixes,
                    max_bytes=r.integer(
                        doc.get("maxBytes", DEFAULT_MAX_FILE_BYTES),
                        f"{where}.maxBytes",
                        1,
                        MAX_FILE_BYTES_LIMIT,
                    ),
                )
            )
        elif kind == "configMap":
            doc = r.mapping(body, where, frozenset({"namespace", "name"}))
            out.append(
                SourceSettings(
                    kind=kind,
                    where=where,
                    namespace=r.string(
                        doc.get("namespace", "kube-system"), f"{where}.namespace"
                    ),
                    name=r.string(doc.get("name", "aws-auth"), f"{where}.name"),
                    reserved_prefixes=prefixes,
                )
            )
        else:
            r.mapping(body, where, frozenset())
            out.append(
                SourceSettings(kind=kind, where=where, reserved_prefixes=prefixes)
            )
    return tuple(out)


def parse_settings(
    doc: object, *, where: str = "config", base_dir: Path | None = None
) -> WebhookSettings:
    """Build settings from a parsed config document.

    Args:
        doc: The parsed YAML (a mapping).
        where: The file name used in messages.
        base_dir: The directory relative paths resolve against (``None``: kept
            relative).

    Returns:
        The settings.

    Raises:
        ConfigError: A key is unknown, missing or has a bad value; the message
            names ``where``, the key path and the problem.
    """
    r = _Reader(where, base_dir)
    if not isinstance(doc, dict):
        raise r.fail("(top)", "the config must be a YAML mapping")
    if is_authenticator_config(doc):
        # aws-iam-authenticator's own file, accepted as it is (docs/configuration.md).
        doc = translate_authenticator_config(
            doc,
            fail=r.fail,
            exists=lambda name: r.file(name, "server.stateDir").is_file(),
        )
    top = r.mapping(doc, "", _TOP_KEYS)
    if "clusterID" not in top:
        raise r.fail("clusterID", "required")
    partition = r.string(top.get("partition", "aws"), "partition")
    if partition not in PARTITIONS:
        raise r.fail("partition", f"unknown partition (known: {', '.join(PARTITIONS)})")
    reserved = _parse_reserved(r, top.get("reservedPrefixes"))
    groups = _parse_reserved(
        r, top.get("reservedGroupPrefixes"), "reservedGroupPrefixes"
    )
    inline_keys = ("mapRoles", "mapUsers", "mapAccounts")
    inline = {key: top[key] for key in inline_keys if key in top}
    for key, value in inline.items():
        if value is not None and not isinstance(value, list):
            raise r.fail(key, "must be a list")
    kubeconfig = top.get("kubeconfig")
    return WebhookSettings(
        cluster_id=r.string(top["clusterID"], "clusterID"),
        partition=partition,
        server=_parse_server(r, top.get("server")),
        sts=_parse_sts(r, top.get("sts")),
        cache=_parse_cache(r, top.get("cache")),
        sources=tuple(
            replace(s, reserved_group_prefixes=groups[s.kind])
            if s.kind in groups
            else s
            for s in _parse_sources(r, top.get("sources"), reserved)
        ),
        inline=inline or None,
        inline_reserved_prefixes=reserved.get("inline", ()),
        inline_reserved_group_prefixes=groups.get("inline", ()),
        kubeconfig=None if kubeconfig is None else r.file(kubeconfig, "kubeconfig"),
        authorization=None
        if top.get("authorization") is None
        else r.mapping(top["authorization"], "authorization", _AUTHORIZATION_KEYS),
    )


def load_yaml(text: str, *, where: str) -> object:
    """Parse the config's YAML through the strict door, :mod:`authenticator.yamlio`.

    Args:
        text: The document.
        where: The file name used in messages.

    Returns:
        The parsed document.

    Raises:
        ConfigError: The text is not valid YAML.
    """
    try:
        return yamlio.load_yaml(text)
    except yamlio.YAMLError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def load_settings(path: Path) -> WebhookSettings:
    """Read and parse the server config file.

    Args:
        path: The YAML file.

    Returns:
        The settings; relative paths in the file resolve against its directory.

    Raises:
        ConfigError: The file cannot be read or is invalid (message names the
            file, the key path and the problem).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    doc = load_yaml(text, where=str(path))
    settings = parse_settings(doc, where=str(path), base_dir=path.resolve().parent)
    return replace(settings, config_file=path)
