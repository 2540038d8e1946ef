"""Both servers, side by side, in the STS namespace.

:func:`start_go_server` runs ``aws-iam-authenticator server`` (its own config file
with mapRoles/mapUsers/mapAccounts, its self-signed certificate) and
:func:`start_kubeiam_server` runs ``kubeiam server`` (gunicorn, TLS) with the same
mappings, both inside :class:`tests.fixtures.stsnamespace.STSNamespace`, both
calling the real STS host names (the emulator there). :class:`Server.review`
POSTs a TokenReview from a thread inside the namespace.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.fixtures.stsnamespace import STSNamespace, peer_bin
from tests.fixtures.webhook import make_pki, tokenreview, write_config

CLUSTER_ID = "diff-cluster"
READY_TIMEOUT_S = 60.0


@dataclass
class Server:
    """A TokenReview webhook running inside the namespace."""

    name: str
    url: str
    verify: str | bool
    cert: tuple[str, str] | None
    process: subprocess.Popen[bytes]
    log: Path
    namespace: STSNamespace
    sessions: dict[int, requests.Session] = field(default_factory=dict)

    def _session(self) -> requests.Session:
        key = threading.get_ident()
        session = self.sessions.get(key)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            self.sessions[key] = session
        return session

    def _post(self, body: bytes) -> dict[str, Any]:
        response = self._session().post(
            self.url + "/authenticate",
            data=body,
            headers={"Content-Type": "application/json"},
            verify=self.verify,
            cert=self.cert,
            timeout=30,
        )
        try:
            doc: dict[str, Any] = response.json()
        except ValueError:
            doc = {}
        doc["_http_status"] = response.status_code
        return doc

    def review(self, token: str) -> dict[str, Any]:
        """The TokenReview answer for ``token`` (``_http_status`` added)."""
        body = json.dumps(tokenreview(token)).encode()
        return self.namespace.submit(self._post, body).result(timeout=60)

    def review_many(self, tokens: Sequence[str]) -> list[dict[str, Any]]:
        """Reviews of many tokens, concurrently (the namespace's threads)."""
        bodies = [json.dumps(tokenreview(t)).encode() for t in tokens]
        return self.namespace.map(self._post, bodies)

    def output(self) -> str:
        """Everything the server printed."""
        return self.log.read_text(errors="replace")

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the process group; SIGKILL if it has not exited after ``grace`` s."""
        for session in self.sessions.values():
            session.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def _free_port_in(namespace: STSNamespace) -> int:
    def pick() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    return namespace.submit(pick).result(timeout=10)


def _wait_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S

    def probe() -> int:
        return requests.get(
            server.url + path, verify=server.verify, cert=server.cert, timeout=5
        ).status_code

    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.output()}")
        try:
            if server.namespace.submit(probe).result(timeout=10) == 200:
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{server.name} not ready:\n{server.output()}")


def go_config(
    mappings: Mapping[str, Any],
    *,
    state_dir: Path,
    port: int,
    cluster_id: str,
    backend_modes: Sequence[str] = ("MountedFile",),
) -> dict[str, Any]:
    """aws-iam-authenticator's server config file (mounted-file backend unless told)."""
    return {
        "clusterID": cluster_id,
        "server": {
            "address": "127.0.0.1",
            "port": port,
            "stateDir": str(state_dir),
            "generateKubeconfig": str(state_dir / "kubeconfig.yaml"),
            "backendMode": list(backend_modes),
            "partition": "aws",
            **{k: v for k, v in mappings.items() if k in _MAPPING_KEYS},
        },
    }


_MAPPING_KEYS = ("mapRoles", "mapUsers", "mapAccounts")


def start_go_server(
    namespace: STSNamespace,
    directory: Path,
    mappings: Mapping[str, Any],
    *,
    cluster_id: str = CLUSTER_ID,
    backend_modes: Sequence[str] = ("MountedFile",),
    kubeconfig: Path | None = None,
) -> Server:
    """Start ``aws-iam-authenticator server`` inside the namespace.

    ``mappings`` go into its config file (the MountedFile backend);
    ``backend_modes=("EKSConfigMap",)`` with a ``kubeconfig`` makes it read
    ``kube-system/aws-auth`` from that API server instead.
    """
    binary = peer_bin() / "aws-iam-authenticator"
    port = _free_port_in(namespace)
    state = directory / "state"
    state.mkdir(parents=True, exist_ok=True)
    config = directory / "go-config.yaml"
    config.write_text(
        json.dumps(
            go_config(
                mappings,
                state_dir=state,
                port=port,
                cluster_id=cluster_id,
                backend_modes=backend_modes,
            )
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    log = directory / "go-server.log"
    process = namespace.popen(
        [
            str(binary),
            "server",
            "--config",
            str(config),
            "--log-verbosity",
            "warn",
            # `sso:` mapRoles entries match only behind this (alpha) gate.
            "--feature-gates=SSORoleMatch=true",
            *([f"--kubeconfig={kubeconfig}"] if kubeconfig is not None else []),
        ],
        env=env,
        log=log,
    )
    # It writes a self-signed certificate (localhost, 127.0.0.1) into its state
    # directory at start-up: that certificate is the CA the client trusts.
    cert = state / "cert.pem"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not cert.exists() and time.monotonic() < deadline:
        if process.poll() is not None:
            break
        time.sleep(0.05)
    server = Server(
        name="aws-iam-authenticator server",
        url=f"https://127.0.0.1:{port}",
        verify=str(cert),
        cert=None,
        process=process,
        log=log,
        namespace=namespace,
    )
    _wait_ready(server, "/healthz")
    return server


def start_kubeiam_server(
    namespace: STSNamespace,
    directory: Path,
    mappings: Mapping[str, Any],
    *,
    cluster_id: str = CLUSTER_ID,
    workers: int = 1,
    threads: int = 8,
    cache: Mapping[str, Any] | None = None,
    mtls: bool = True,
    sources: Sequence[Mapping[str, Any]] | None = None,
    kubeconfig: Path | None = None,
) -> Server:
    """Start ``kubeiam server`` (gunicorn, TLS, mTLS unless told) in the namespace.

    ``mappings`` go into its file source; ``sources`` replaces that source list
    (e.g. ``[{"configMap": {}}]`` with a ``kubeconfig`` for the API server).
    """
    pki = make_pki(directory)
    port = _free_port_in(namespace)
    mapping_path = directory / "mapping.yaml"
    mapping_path.write_text(json.dumps(dict(mappings)))
    config = write_config(
        directory,
        pki=pki,
        port=port,
        mapping_path=mapping_path,
        cluster_id=cluster_id,
        workers=workers,
        threads=threads,
        mtls=mtls,
        cache=cache or {"ttlSeconds": 60, "maxEntries": 10000},
        config={
            "sts": {"region": "us-east-1", "timeoutSeconds": 10},
            **({"sources": list(sources)} if sources is not None else {}),
            **({"kubeconfig": str(kubeconfig)} if kubeconfig is not None else {}),
        },
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PYTHONUNBUFFERED"] = "1"
    log = directory / "kubeiam-server.log"
    process = namespace.popen(
        [sys.executable, "-m", "kubeiam", "server", "--config", str(config)],
        env=env,
        log=log,
    )
    server = Server(
        name="kubeiam server",
        url=f"https://127.0.0.1:{port}",
        verify=str(pki.ca_file),
        cert=pki.client if mtls else None,
        process=process,
        log=log,
        namespace=namespace,
    )
    _wait_ready(server, "/readyz")
    return server


def user_of(review: Mapping[str, Any]) -> dict[str, Any] | None:
    """``status.user`` of an authenticated review, else None."""
    status = review.get("status")
    if not isinstance(status, dict) or not status.get("authenticated"):
        return None
    user: dict[str, Any] = status.get("user") or {}
    return user
