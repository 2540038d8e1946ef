"""The Kubernetes mapping sources: the aws-auth ConfigMap and IAMIdentityMapping CRD.

Both use the ``kubernetes`` client for a list followed by a watch from the
list's ``resourceVersion``; a watch that ends is re-opened from the last
version seen, a ``410 Gone`` triggers a fresh list, and other errors back off
exponentially (the reference re-watches 5 s after an error).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

import kubernetes.client
import kubernetes.config
import orjson
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from authenticator.errors import ConfigError
from authenticator.mapping import (
    IdentityMappingTable,
    MappingSet,
    parse_aws_auth,
)
from authenticator.mapping_model import (
    DEFAULT_RESERVED_GROUP_PREFIXES,
    with_group_prefixes,
)
from webhook.sources import Failure, Update, fail_unexpected

# One logger for every mapping source (webhook.sources, _file, _kube).
log = logging.getLogger("webhook.sources")

# IAMIdentityMapping, iamauthenticator.k8s.aws/v1alpha1 (docs/configuration.md).
CRD_GROUP = "iamauthenticator.k8s.aws"
CRD_VERSION = "v1alpha1"
CRD_PLURAL = "iamidentitymappings"
# A watch is closed by the server after this long and re-opened from the last version.
DEFAULT_WATCH_TIMEOUT_S = 300
# Back-off after a failed list or watch: start, cap (the reference waits a fixed 5 s).
DEFAULT_BACKOFF_S = (1.0, 30.0)
# HTTP 410 Gone: the watch's resourceVersion is too old; list again.
_GONE = 410
# After publishing a set, events that arrive within this long are applied
# together (a burst of 1,000 object creations is a few rebuilds, not 1,000).
APPLY_INTERVAL_S = 0.1
# A list is read in pages of this many objects (about 4 MB of JSON each).
LIST_PAGE = 10_000


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
        reserved_prefixes: Sequence[str] = (),
        watch_timeout: int = DEFAULT_WATCH_TIMEOUT_S,
        backoff: tuple[float, float] = DEFAULT_BACKOFF_S,
        reserved_group_prefixes: Sequence[str] | None = None,
    ) -> None:
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
        # _objects (and a subclass's parsed state) change under _lock; one
        # set is built and published at a time (_apply_lock); _dirty wakes
        # the applier thread after events.
        self._lock = threading.Lock()
        self._apply_lock = threading.Lock()
        self._dirty = threading.Event()
        self._applier: threading.Thread | None = None
        self._setup(api_client)

    # --- per-kind hooks -----------------------------------------------------
    def _setup(self, api_client: kubernetes.client.ApiClient) -> None:
        """Build the kind's API and state (the end of ``__init__``)."""

    def _call(self, **kwargs: object) -> urllib3.HTTPResponse:
        raise NotImplementedError

    def _build(self) -> MappingSet:
        raise NotImplementedError

    def _page(self, page: Sequence[tuple[str, Mapping[str, object]]]) -> None:
        """A page of a list came in, by name (called under ``_lock``)."""

    def _listed(self) -> None:
        """``_objects`` was replaced by a fresh list (called under ``_lock``)."""

    def _put(self, name: str, obj: Mapping[str, object]) -> None:
        """An object was added or changed (called under ``_lock``)."""

    def _removed(self, name: str) -> None:
        """An object was deleted (called under ``_lock``)."""

    # --- the loop -------------------------------------------------------------
    def start(self, update: Update, fail: Failure) -> None:
        """Start the list + watch thread (the first set arrives asynchronously)."""
        self._thread = threading.Thread(
            target=self._run,
            args=(update, fail),
            name=f"kubeiam-{self.name}",
            daemon=True,
        )
        self._applier = threading.Thread(
            target=self._apply_loop,
            args=(update, fail),
            name=f"kubeiam-{self.name}-apply",
            daemon=True,
        )
        self._thread.start()
        self._applier.start()

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
        self._dirty.set()  # wake the applier to see the stop
        if self._applier is not None:
            self._applier.join(max(deadline - time.monotonic(), 0.1))

    def _apply_loop(self, update: Update, fail: Failure) -> None:
        """Publish after events: at once, then at most every APPLY_INTERVAL_S."""
        while not self._stop.is_set():
            if not self._dirty.wait(1.0) or self._stop.is_set():
                continue
            self._dirty.clear()
            try:
                self._apply(update, fail)
            except Exception as exc:  # a failing hook must not end the applier
                fail_unexpected(self.name, exc, fail)
            self._stop.wait(APPLY_INTERVAL_S)

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
                fail_unexpected(self.name, exc, fail)
                self._stop.wait(delay)
                delay = min(delay * 2, self._backoff[1])

    def _list(self) -> str:
        """List every object (in pages) into ``_objects``; the list's version.

        The next page is fetched and decoded in a helper thread while this one
        is handed to ``_page`` (the API server's work and ours overlap). No set
        is published until the whole list is in (``_apply_lock`` is held).
        """
        objects: dict[str, Mapping[str, object]] = {}
        version = ""
        with self._apply_lock:
            for n, body in enumerate(self._pages()):
                if n == 0:
                    version = str(_metadata(body).get("resourceVersion", ""))
                items = body.get("items") or []
                page = [
                    (_name(item), item)
                    for item in (items if isinstance(items, list) else [])
                    if isinstance(item, dict)
                ]
                objects.update(page)
                with self._lock:
                    self._page(page)
            with self._lock:
                self._objects = objects
                self._listed()
        return version

    def _pages(self) -> Iterator[dict[str, object]]:
        """The list's pages, decoded, each fetched while the one before is used."""
        ready: queue.Queue[tuple[dict[str, object] | None, BaseException | None]]
        ready = queue.Queue(maxsize=1)
        done = threading.Event()

        def offer(item: tuple[dict[str, object] | None, BaseException | None]) -> None:
            while not (done.is_set() or self._stop.is_set()):
                with contextlib.suppress(queue.Full):
                    ready.put(item, timeout=0.1)
                    return

        def fetch() -> None:
            token = ""
            try:
                while not (done.is_set() or self._stop.is_set()):
                    extra = {"_continue": token} if token else {}
                    resp = self._call(
                        limit=LIST_PAGE,
                        _preload_content=False,
                        _request_timeout=(10, 60),
                        **extra,
                    )
                    try:
                        body = orjson.loads(resp.data)
                    finally:
                        resp.release_conn()
                    if not isinstance(body, dict):
                        raise ValueError("list reply is not an object")
                    token = str(_metadata(body).get("continue") or "")
                    offer((body, None))
                    if not token:
                        offer((None, None))
                        return
            except BaseException as exc:  # handed to the listing thread
                offer((None, exc))

        helper = threading.Thread(
            target=fetch, name=f"kubeiam-{self.name}-list", daemon=True
        )
        helper.start()
        try:
            while True:
                try:
                    body, error = ready.get(timeout=0.5)
                except queue.Empty:
                    if self._stop.is_set() or not helper.is_alive():
                        raise ValueError("the list was stopped") from None
                    continue
                if error is not None:
                    raise error
                if body is None:
                    return
                yield body
        finally:
            done.set()
            helper.join(5)

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
                version = self._event(orjson.loads(line), version, update, fail)
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
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            raise ValueError(f"unknown watch event type {kind!r}")
        name = _name(obj)
        with self._lock:
            if kind == "DELETED":
                self._objects.pop(name, None)
                self._removed(name)
            else:
                self._objects[name] = obj
                self._put(name, obj)
        self._dirty.set()  # the applier thread publishes (events coalesce)
        return new_version

    def _apply(self, update: Update, fail: Failure) -> None:
        with self._apply_lock:
            try:
                with self._lock:
                    mapping_set = self._build()
            except ConfigError as exc:
                fail(str(exc))
                return
            except Exception as exc:  # a bad object must not end the watch
                fail_unexpected(self.name, exc, fail)
                return
            update(mapping_set)


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
    """The ``aws-auth`` ConfigMap (docs/configuration.md), listed and watched.

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

    def _setup(self, api_client: kubernetes.client.ApiClient) -> None:
        self._api = kubernetes.client.CustomObjectsApi(api_client)
        self._table = IdentityMappingTable(
            where=CRD_PLURAL, reserved_prefixes=self._reserved, source=self.name
        )

    def _call(self, **kwargs: object) -> urllib3.HTTPResponse:
        return self._api.list_cluster_custom_object(  # type: ignore[no-any-return]  # the client is untyped
            CRD_GROUP, CRD_VERSION, CRD_PLURAL, **kwargs
        )

    def _page(self, page: Sequence[tuple[str, Mapping[str, object]]]) -> None:
        self._table.put_many(page)  # parsed again only if its version changed

    def _listed(self) -> None:
        self._table.keep_only(self._objects)

    def _put(self, name: str, obj: Mapping[str, object]) -> None:
        self._table.put(name, obj)

    def _removed(self, name: str) -> None:
        self._table.remove(name)

    def _build(self) -> MappingSet:
        return with_group_prefixes(self._table.build(), self._reserved_groups)
