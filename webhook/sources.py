"""Mapping sources (file, aws-auth ConfigMap, IAMIdentityMapping CRD), their registry.

Each source turns what it reads into one immutable
:class:`authenticator.mapping.MappingSet` and hands it to the
:class:`MappingRegistry`, which publishes an immutable tuple of sets by a
single attribute assignment: a request reads one snapshot and never sees a
half-applied table. A reload that fails to parse or validate keeps that
source's last good set whole (the reference applies the valid half of a broken
aws-auth edit), is logged without its content, and is reported through
``on_reload(source, "error", entries)``. No failure ends a source's thread:
an unexpected exception (a bug, a library failure) is logged by type and
place only, reported as a reload error, and the source keeps watching.

The Kubernetes sources use the ``kubernetes`` client for a list followed by a
watch from the list's ``resourceVersion``; a watch that ends is re-opened from
the last version seen, a ``410 Gone`` triggers a fresh list, and other errors
back off exponentially (the reference re-watches 5 s after an error).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import kubernetes.client
import kubernetes.config
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from authenticator.errors import ConfigError
from authenticator.mapping import (
    MappingSet,
    parse_aws_auth,
    parse_identity_mappings,
    parse_mapping_text,
)
from authenticator.mapping_model import (
    DEFAULT_RESERVED_GROUP_PREFIXES,
    with_group_prefixes,
)

log = logging.getLogger(__name__)

# IAMIdentityMapping, iamauthenticator.k8s.aws/v1alpha1 (authentication.md section 9).
CRD_GROUP = "iamauthenticator.k8s.aws"
CRD_VERSION = "v1alpha1"
CRD_PLURAL = "iamidentitymappings"
# A watch is closed by the server after this long and re-opened from the last version.
DEFAULT_WATCH_TIMEOUT_S = 300
# Back-off after a failed list or watch: start, cap (the reference waits a fixed 5 s).
DEFAULT_BACKOFF_S = (1.0, 30.0)
# The largest mapping file we read (a mapping file is a few KiB).
MAX_FILE_BYTES = 4 * 1024 * 1024
# HTTP 410 Gone: the watch's resourceVersion is too old; list again.
_GONE = 410

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
                self._sets[i] = mapping_set
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


def load_file_mappings(
    path: str | os.PathLike[str],
    *,
    reserved_prefixes: Sequence[str] = (),
    source: str = "file",
    reserved_group_prefixes: Sequence[str] = (),
) -> MappingSet:
    """Read and parse a mapping file (plain, aws-auth ConfigMap or CRD objects).

    Args:
        path: The file.
        reserved_prefixes: Username prefixes this source may not grant.
        source: The source name.
        reserved_group_prefixes: Group prefixes this source may not grant.

    Returns:
        The mapping set.

    Raises:
        ConfigError: The file cannot be read, or is invalid (every problem listed).
    """
    text, _ = _read_file(Path(path))
    return with_group_prefixes(
        parse_mapping_text(
            text, source=source, where=str(path), reserved_prefixes=reserved_prefixes
        ),
        reserved_group_prefixes,
    )


def _read_file(path: Path) -> tuple[str, str]:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    return text, hashlib.sha256(data).hexdigest()


class FileSource:
    """A mapping file, re-read when it changes.

    A poll thread compares the file's inode, size, mtime and ctime every
    ``poll_interval`` seconds; a change is applied only once the file has
    stayed the same for a short settle time (so a writer that truncates and
    rewrites is not read half-way), and only if its content hash differs.

    Args:
        path: The mapping file.
        reserved_prefixes: Username prefixes this source may not grant.
        poll_interval: Seconds between checks.
        source: The source name.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        reserved_prefixes: Sequence[str] = (),
        poll_interval: float = 0.5,
        source: str = "file",
        reserved_group_prefixes: Sequence[str] = (),
    ) -> None:
        self.name = source
        self.path = Path(path)
        self._reserved = tuple(reserved_prefixes)
        self._reserved_groups = tuple(reserved_group_prefixes)
        self._interval = poll_interval
        self._settle = min(0.1, poll_interval / 2)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stat: tuple[int, ...] | None = None
        self._digest = ""
        self._loaded = False

    def start(self, update: Update, fail: Failure) -> None:
        """Load the file now, then watch it from a daemon thread."""
        self._stat = self._stat_now()
        self._load(update, fail)
        self._thread = threading.Thread(
            target=self._poll,
            args=(update, fail),
            name=f"kubeiam-file-{self.path.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _stat_now(self) -> tuple[int, ...] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _poll(self, update: Update, fail: Failure) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._check(update, fail)
            except Exception as exc:  # the poll thread must survive
                _log_unexpected(self.name, exc)

    def _check(self, update: Update, fail: Failure) -> None:
        current = self._stat_now()
        if current == self._stat:
            return
        if self._stop.wait(self._settle) or self._stat_now() != current:
            return  # still being written: look again at the next poll
        self._stat = current
        self._load(update, fail)

    def _load(self, update: Update, fail: Failure) -> None:
        try:
            text, digest = _read_file(self.path)
            if digest == self._digest:
                return
            if self._loaded and not text.strip():
                # Editors and config tools truncate before they write: an empty
                # file is a write in progress (or a mistake), never "no mappings".
                raise ConfigError(
                    f"{self.path}: the file is empty; keeping the last good "
                    "mappings (to remove every entry, write `mapRoles: []`)"
                )
            self._digest = digest
            mapping_set = parse_mapping_text(
                text,
                source=self.name,
                where=str(self.path),
                reserved_prefixes=self._reserved,
            )
            mapping_set = with_group_prefixes(mapping_set, self._reserved_groups)
        except ConfigError as exc:
            fail(str(exc))
            return
        except Exception as exc:  # a bad file must not end the source
            _fail_unexpected(self.name, exc, fail)
            return
        self._loaded = True
        update(mapping_set)


def load_api_client(
    kubeconfig: str | os.PathLike[str] | None,
) -> kubernetes.client.ApiClient:
    """Return a Kubernetes API client from a kubeconfig file, or in-cluster.

    Args:
        kubeconfig: A kubeconfig path, or None for the pod's service account.

    Returns:
        The API client.

    Raises:
        ConfigError: The kubeconfig (or the in-cluster environment) is unusable.
    """
    try:
        if kubeconfig is not None:
            return kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_incluster_config(client_configuration=configuration)
        return kubernetes.client.ApiClient(configuration)
    except (ConfigException, OSError, TypeError, ValueError) as exc:
        where = str(kubeconfig) if kubeconfig is not None else "in-cluster config"
        raise ConfigError(f"{where}: cannot build a Kubernetes client: {exc}") from exc


class _WatchExpiredError(Exception):
    """The watch's resourceVersion expired (HTTP 410): list again."""


class _WatchSource:
    """List + watch loop shared by the ConfigMap and CRD sources."""

    name = ""

    def __init__(
        self,
        *,
        api_client: kubernetes.client.ApiClient,
        reserved_prefixes: Sequence[str],
        watch_timeout: int,
        backoff: tuple[float, float],
        reserved_group_prefixes: Sequence[str] | None = None,
    ) -> None:
        self._api_client = api_client
        self._reserved = tuple(reserved_prefixes)
        self._reserved_groups = (
            DEFAULT_RESERVED_GROUP_PREFIXES.get(self.name, ())
            if reserved_group_prefixes is None
            else tuple(reserved_group_prefixes)
        )
        self._watch_timeout = watch_timeout
        self._backoff = backoff
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._resp: urllib3.HTTPResponse | None = None
        self._objects: dict[str, Mapping[str, object]] = {}

    # --- per-kind hooks -----------------------------------------------------
    def _call(self, **kwargs: object) -> urllib3.HTTPResponse:
        raise NotImplementedError

    def _build(self) -> MappingSet:
        raise NotImplementedError

    # --- the loop -------------------------------------------------------------
    def start(self, update: Update, fail: Failure) -> None:
        """Start the list + watch thread (the first set arrives asynchronously)."""
        self._thread = threading.Thread(
            target=self._run,
            args=(update, fail),
            name=f"kubeiam-{self.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and close the open watch connection."""
        self._stop.set()
        thread = self._thread
        deadline = time.monotonic() + 5
        while thread is not None and thread.is_alive() and time.monotonic() < deadline:
            resp = self._resp
            if resp is not None:
                try:
                    resp.shutdown()
                except (OSError, ValueError):
                    log.debug("closing the watch connection failed")
            thread.join(0.05)

    def _run(self, update: Update, fail: Failure) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            try:
                version = self._list()
                self._apply(update, fail)
                delay = self._backoff[0]
                while not self._stop.is_set():
                    version = self._watch(version, update, fail)
                    delay = self._backoff[0]
            except _WatchExpiredError:
                log.info(
                    "watch expired (410 Gone); listing again",
                    extra={"source": self.name},
                )
                continue
            except (
                ApiException,
                urllib3.exceptions.HTTPError,
                OSError,
                ValueError,
            ) as exc:
                if self._stop.is_set():
                    return
                log.warning(
                    "kubernetes list/watch failed; retrying",
                    extra={
                        "source": self.name,
                        "error": _describe(exc),
                        "retry_s": delay,
                    },
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self._backoff[1])
            except Exception as exc:  # the watch thread must survive
                if self._stop.is_set():
                    return
                _fail_unexpected(self.name, exc, fail)
                self._stop.wait(delay)
                delay = min(delay * 2, self._backoff[1])

    def _list(self) -> str:
        resp = self._call(_preload_content=False, _request_timeout=(10, 60))
        try:
            body = json.loads(resp.data)
        finally:
            resp.release_conn()
        if not isinstance(body, dict):
            raise ValueError("list reply is not an object")
        items = body.get("items") or []
        self._objects = {}
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                self._objects[_name(item)] = item
        return str(_metadata(body).get("resourceVersion", ""))

    def _watch(self, version: str, update: Update, fail: Failure) -> str:
        resp = self._call(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout,
            _preload_content=False,
            _request_timeout=(10, self._watch_timeout + 30),
        )
        self._resp = resp
        try:
            for line in _lines(resp):
                if self._stop.is_set():
                    break
                version = self._event(json.loads(line), version, update, fail)
        finally:
            self._resp = None
            resp.release_conn()
        return version

    def _event(self, event: object, version: str, update: Update, fail: Failure) -> str:
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            raise ValueError("watch event is not an object")
        kind, obj = event.get("type"), event["object"]
        if kind == "ERROR":
            if obj.get("code") == _GONE:
                raise _WatchExpiredError
            raise ValueError(f"watch error {obj.get('code')}: {obj.get('reason')}")
        new_version = str(_metadata(obj).get("resourceVersion", version))
        if kind == "BOOKMARK":
            return new_version
        if kind in ("ADDED", "MODIFIED"):
            self._objects[_name(obj)] = obj
        elif kind == "DELETED":
            self._objects.pop(_name(obj), None)
        else:
            raise ValueError(f"unknown watch event type {kind!r}")
        self._apply(update, fail)
        return new_version

    def _apply(self, update: Update, fail: Failure) -> None:
        try:
            mapping_set = self._build()
        except ConfigError as exc:
            fail(str(exc))
            return
        except Exception as exc:  # a bad object must not end the watch
            _fail_unexpected(self.name, exc, fail)
            return
        update(mapping_set)


def _log_unexpected(source: str, exc: BaseException) -> None:
    """Log a failure by type and innermost frame (its text may quote input)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    log.error(
        "mapping source failed unexpectedly; keeping the last good mappings",
        extra={"source": source, "error": type(exc).__name__, "where": where},
    )


def _fail_unexpected(source: str, exc: BaseException, fail: Failure) -> None:
    """Log an unexpected failure and report it as a reload error (never raises)."""
    _log_unexpected(source, exc)
    try:
        fail(f"unexpected {type(exc).__name__} while loading the mappings")
    except Exception as report_exc:  # reporting must not end the thread
        _log_unexpected(source, report_exc)


def _lines(resp: urllib3.HTTPResponse) -> Iterator[str]:
    buffer = b""
    for chunk in resp.stream(amt=None, decode_content=True):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield line.decode("utf-8")
    if buffer.strip():
        yield buffer.decode("utf-8")


def _metadata(obj: Mapping[str, object]) -> Mapping[str, object]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _name(obj: Mapping[str, object]) -> str:
    return str(_metadata(obj).get("name", ""))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


class ConfigMapSource(_WatchSource):
    """The ``aws-auth`` ConfigMap (authentication.md section 8), listed and watched.

    A deleted ConfigMap serves an empty set (nothing is mapped by it).

    Args:
        namespace: The ConfigMap's namespace.
        name: The ConfigMap's name.
        api_client: A Kubernetes API client (:func:`load_api_client`).
        reserved_prefixes: Username prefixes this source may not grant.
        watch_timeout: Seconds before the server ends a watch (it is re-opened).
        backoff: First and longest wait after a failed list or watch.
        reserved_group_prefixes: Group prefixes this source may not grant
            (None: :data:`DEFAULT_RESERVED_GROUP_PREFIXES` for its kind).
    """

    name = "configMap"

    def __init__(
        self,
        namespace: str = "kube-system",
        name: str = "aws-auth",
        *,
        api_client: kubernetes.client.ApiClient,
        reserved_prefixes: Sequence[str] = (),
        watch_timeout: int = DEFAULT_WATCH_TIMEOUT_S,
        backoff: tuple[float, float] = DEFAULT_BACKOFF_S,
        reserved_group_prefixes: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            api_client=api_client,
            reserved_prefixes=reserved_prefixes,
            watch_timeout=watch_timeout,
            backoff=backoff,
            reserved_group_prefixes=reserved_group_prefixes,
        )
        self.namespace = namespace
        self.object_name = name
        self._api = kubernetes.client.CoreV1Api(api_client)

    def _call(self, **kwargs: object) -> urllib3.HTTPResponse:
        return self._api.list_namespaced_config_map(  # type: ignore[no-any-return]  # the client is untyped
            self.namespace, field_selector=f"metadata.name={self.object_name}", **kwargs
        )

    def _build(self) -> MappingSet:
        obj = self._objects.get(self.object_name)
        data = obj.get("data") if obj is not None else None
        return with_group_prefixes(
            parse_aws_auth(
                data if isinstance(data, Mapping) else None,
                where=f"{self.namespace}/{self.object_name}",
                reserved_prefixes=self._reserved,
                source=self.name,
            ),
            self._reserved_groups,
        )


class CRDSource(_WatchSource):
    """IAMIdentityMapping objects (``iamauthenticator.k8s.aws/v1alpha1``), watched.

    Objects are evaluated in name order, so the winner among duplicates does not
    depend on the order events arrived in.

    Args:
        api_client: A Kubernetes API client (:func:`load_api_client`).
        reserved_prefixes: Username prefixes this source may not grant.
        watch_timeout: Seconds before the server ends a watch (it is re-opened).
        backoff: First and longest wait after a failed list or watch.
        reserved_group_prefixes: Group prefixes this source may not grant
            (None: :data:`DEFAULT_RESERVED_GROUP_PREFIXES` for its kind).
    """

    name = "crd"

    def __init__(
        self,
        *,
        api_client: kubernetes.client.ApiClient,
        reserved_prefixes: Sequence[str] = (),
        watch_timeout: int = DEFAULT_WATCH_TIMEOUT_S,
        backoff: tuple[float, float] = DEFAULT_BACKOFF_S,
        reserved_group_prefixes: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            api_client=api_client,
            reserved_prefixes=reserved_prefixes,
            watch_timeout=watch_timeout,
            backoff=backoff,
            reserved_group_prefixes=reserved_group_prefixes,
        )
        self._api = kubernetes.client.CustomObjectsApi(api_client)

    def _call(self, **kwargs: object) -> urllib3.HTTPResponse:
        return self._api.list_cluster_custom_object(  # type: ignore[no-any-return]  # the client is untyped
            CRD_GROUP, CRD_VERSION, CRD_PLURAL, **kwargs
        )

    def _build(self) -> MappingSet:
        items = [self._objects[name] for name in sorted(self._objects)]
        return with_group_prefixes(
            parse_identity_mappings(
                items,
                where=CRD_PLURAL,
                reserved_prefixes=self._reserved,
                source=self.name,
            ),
            self._reserved_groups,
        )
