"""The CRD source with 100,000 IAMIdentityMapping objects in a real API server.

The same control plane the cluster tests use (etcd, kube-apiserver and the
rest, built from the pinned sources by ``make peers``). The 100,000 objects
are written into etcd in transactions of 128 (creating them one by one
through the API server would take minutes); the API server picks them up
through its own watch, and the bench waits until it lists them all, so
everything the source reads is served by the real API server.

- load: a new :class:`webhook.sources_kube.CRDSource` from start to its first
  set (list of 100,000 objects, parse, index), against the 2 s budget, and
  against the API server's own LIST of those objects read as bytes (the part
  no client can avoid).
- burst: 1,000 more objects created through the API server (real POSTs, 8 at
  a time) while a source watches; the time from the last creation until the
  source serves all of them, and how many sets it published for them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kubernetes.client
import requests

from bench.bench_webhook import start_emulator
from bench.common import Row, paired_row
from webhook.sources import MappingRegistry
from webhook.sources_kube import (
    CRD_GROUP,
    CRD_PLURAL,
    CRD_VERSION,
    CRDSource,
    load_api_client,
)

OBJECTS = 100_000
BURST = 1_000
ACCOUNT = "111122223333"
LOAD_BUDGET_S = 2.0
SAMPLES = 3
_TXN_OPS = 128  # etcd's default --max-txn-ops
_GROUP, _VERSION, _PLURAL = CRD_GROUP, CRD_VERSION, CRD_PLURAL


def _object(i: int, created: str) -> dict[str, object]:
    return {
        "apiVersion": f"{_GROUP}/v1alpha1",
        "kind": "IAMIdentityMapping",
        "metadata": {
            "name": f"m-{i:06}",
            "uid": str(uuid.uuid4()),
            "generation": 1,
            "creationTimestamp": created,
        },
        "spec": {
            "arn": f"arn:aws:iam::{ACCOUNT}:role/team-{i % 97}/role-{i}",
            "username": "role-{{SessionName}}",
            "groups": [f"group-{i % 50}"],
        },
    }


def _fill_etcd(etcd_url: str, count: int) -> None:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    session = requests.Session()
    for start in range(0, count, _TXN_OPS):
        puts = []
        for i in range(start, min(start + _TXN_OPS, count)):
            obj = _object(i, created)
            key = f"/registry/{_GROUP}/{_PLURAL}/m-{i:06}"
            puts.append(
                {
                    "requestPut": {
                        "key": base64.b64encode(key.encode()).decode(),
                        "value": base64.b64encode(json.dumps(obj).encode()).decode(),
                    }
                }
            )
        resp = session.post(etcd_url + "/v3/kv/txn", json={"success": puts}, timeout=60)
        resp.raise_for_status()


def _listed(api: Any, timeout: float = 180) -> int:
    """Wait until the API server lists every object (``limit=1``); the count."""
    deadline = time.monotonic() + timeout
    total = 0
    while time.monotonic() < deadline:
        page = api.list_cluster_custom_object(_GROUP, _VERSION, _PLURAL, limit=1)
        total = len(page.get("items", [])) + int(
            page.get("metadata", {}).get("remainingItemCount", 0) or 0
        )
        if total >= OBJECTS:
            return total
        time.sleep(1)
    raise RuntimeError(f"the API server lists {total} of {OBJECTS} objects")


def _started(
    client: Any, on_reload: Callable[[str, str, int], None] | None = None
) -> MappingRegistry:
    """A registry over a new CRDSource, started and loaded."""
    registry = MappingRegistry([CRDSource(api_client=client)], on_reload=on_reload)
    registry.start()
    if not registry.wait_ready(120):
        raise RuntimeError("the CRD source did not load")
    return registry


def run() -> list[Row]:
    """Load 100,000 objects through CRDSource; then a burst of creations."""
    from tests.fixtures.controlplane import start_control_plane

    work = Path(tempfile.mkdtemp(prefix="kubeiam-bench-crd-"))
    emulator = start_emulator(None, work / "sts.log")
    cp = None
    try:
        cp = start_control_plane(work / "cp", emulator.url)
        client = load_api_client(cp.admin_kubeconfig)
        api = kubernetes.client.CustomObjectsApi(client)
        started = time.perf_counter()
        _fill_etcd(cp.etcd_url, OBJECTS)
        _listed(api)
        print(
            f"bench_crd_scale: {OBJECTS:,} objects in the API server after "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        loads: list[float] = []
        for _ in range(SAMPLES):
            start = time.perf_counter()
            registry = _started(client)
            loads.append(time.perf_counter() - start)
            entries = registry.snapshot()[0].entries
            registry.stop()
            if entries != OBJECTS:
                raise RuntimeError(f"the CRD source has {entries} entries")

        floor: list[float] = []
        for _ in range(SAMPLES):
            start = time.perf_counter()
            resp = api.list_cluster_custom_object(
                _GROUP, _VERSION, _PLURAL, _preload_content=False
            )
            size_mb = len(resp.data) / 1e6
            resp.release_conn()
            floor.append(time.perf_counter() - start)

        published: list[int] = []
        registry = _started(client, lambda _s, _r, n: published.append(n))
        before = len(published)
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        def create(i: int) -> None:
            body = _object(OBJECTS + i, created)
            body["metadata"] = {"name": f"m-{OBJECTS + i:06}"}
            api.create_cluster_custom_object(_GROUP, _VERSION, _PLURAL, body)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(BURST)))
        last = time.perf_counter()
        deadline = last + 60
        while registry.snapshot()[0].entries < OBJECTS + BURST:
            if time.perf_counter() > deadline:
                raise RuntimeError("the burst was not applied within 60 s")
            time.sleep(0.01)
        lag = time.perf_counter() - last
        rebuilds = len(published) - before
        registry.stop()
        return [
            paired_row(
                f"CRD source load, {OBJECTS:,} IAMIdentityMapping objects "
                "(real API server: list, parse, index)",
                "s",
                ours=loads,
                peer=[LOAD_BUDGET_S],
                peer_name="issue budget",
                target="< 2 s (ratio > 1)",
            ),
            paired_row(
                "CRD source load vs the API server's own LIST of the same objects "
                f"({size_mb:.0f} MB of JSON, read but not parsed)",
                "s",
                ours=loads,
                peer=floor,
                peer_name="the same list call, body read, not parsed",
                labels=("CRD source load", "bare LIST"),
            ),
            Row(
                name=(
                    f"CRD source, {BURST:,} objects created through the API server "
                    f"beside {OBJECTS:,}: served {lag:.2f} s after the last "
                    f"creation, in {rebuilds} published sets"
                ),
                unit="s",
                ours=lag,
                peer=None,
            ),
        ]
    finally:
        if cp is not None:
            with contextlib.suppress(Exception):
                cp.stop()
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)
