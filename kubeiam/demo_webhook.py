"""The demo's webhook step: ``kubeiam server`` over mutual TLS, three TokenReviews.

It runs after the core steps (which leave an embedded STS, a user, a role
session and their tokens in the :class:`~kubeiam.demo_context.DemoContext`): a PKI is
generated, ``kubeiam server`` starts under gunicorn on a free loopback port with
a mapping for the role and the user, and the demo sends what kube-apiserver
would send - a ``authentication.k8s.io/v1`` TokenReview over mTLS with the
API server's client certificate - for the role session, the user and an
identity nobody mapped. The answers are shown as the API server reads them.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kubeconfig.certs import generate_ca, generate_client_cert, generate_serving_cert

if TYPE_CHECKING:
    from kubeiam.demo_context import DemoContext

# The TokenReview version kube-apiserver is told to use (Kubernetes webhook authn docs:
# set v1).
TOKENREVIEW_VERSION = "authentication.k8s.io/v1"
# Seconds to wait for gunicorn's first worker to be ready.
READY_TIMEOUT_S = 30.0
# What each answer means to kube-apiserver (Kubernetes webhook authn docs).
_MEANING = {
    "allow": "authenticated; cached for --authentication-token-webhook-cache-ttl",
    "deny": "not authenticated; the API server caches the rejection",
    "error": "an error to the API server: 401 now, NOT cached (a new mapping works"
    " at once)",
}


@dataclass(frozen=True, slots=True)
class _Files:
    directory: Path
    ca: Path
    client_cert: Path
    client_key: Path
    config: Path


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(ctx: DemoContext, directory: Path, port: int, sts_url: str) -> _Files:
    """PKI, mapping file and server config (what ``kubeiam init`` would write)."""
    now = ctx.now()
    ca = generate_ca("kubeiam-demo-ca", now=now)
    serving = generate_serving_cert(
        ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"], now=now
    )
    client = generate_client_cert(ca, common_name="kube-apiserver", now=now)
    ca_file = _write(directory / "ca.crt", ca.cert_pem, 0o644)
    role = ctx.identities["role"].canonical_arn
    user = ctx.identities["user"].arn
    mapping = {
        "mapRoles": [
            {
                "rolearn": role,
                "username": "deployer:{{SessionName}}",
                "groups": ["deployers"],
            }
        ],
        "mapUsers": [{"userarn": user, "username": "alice", "groups": ["viewers"]}],
    }
    mapping_file = directory / "mapping.yaml"
    mapping_file.write_text(json.dumps(mapping, indent=2))
    config = {
        "clusterID": ctx.cluster_id,
        "server": {
            "address": "127.0.0.1",
            "port": port,
            "certFile": str(_write(directory / "server.crt", serving.cert_pem, 0o644)),
            "keyFile": str(_write(directory / "server.key", serving.key_pem)),
            "clientCAFile": str(ca_file),
            "workers": 1,
            "threads": 4,
        },
        "sts": {"region": ctx.region, "extraEndpoints": [sts_url]},
        "sources": [{"file": {"path": str(mapping_file)}}],
    }
    config_file = directory / "config.yaml"
    config_file.write_text(json.dumps(config, indent=2))
    return _Files(
        directory=directory,
        ca=ca_file,
        client_cert=_write(directory / "apiserver.crt", client.cert_pem, 0o644),
        client_key=_write(directory / "apiserver.key", client.key_pem),
        config=config_file,
    )


def _connection(files: _Files, port: int) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=str(files.ca))
    context.load_cert_chain(files.client_cert, files.client_key)
    return http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)


def _wait_ready(
    proc: subprocess.Popen[bytes], files: _Files, port: int, log: Path
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"kubeiam server exited {proc.returncode}:\n{tail}")
        try:
            conn = _connection(files, port)
            conn.request("GET", "/readyz")
            ready = conn.getresponse().status == 200
            conn.close()
            if ready:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("kubeiam server did not become ready")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _review(
    conn: http.client.HTTPSConnection, token: str
) -> tuple[int, dict[str, object]]:
    """POST a TokenReview exactly as kube-apiserver's webhook client does."""
    body = {
        "apiVersion": TOKENREVIEW_VERSION,
        "kind": "TokenReview",
        "metadata": {"creationTimestamp": None},
        "spec": {"token": token, "audiences": ["https://kubernetes.default.svc"]},
        "status": {"user": {}},
    }
    conn.request(
        "POST",
        "/authenticate?timeout=30s",
        json.dumps(body),
        {"Content-Type": "application/json", "Accept": "application/json, */*"},
    )
    resp = conn.getresponse()
    answer = json.loads(resp.read())
    if not isinstance(answer, dict):
        raise RuntimeError("the webhook did not answer a JSON object")
    return resp.status, answer


def _verdict(code: int, status: Mapping[str, object]) -> str:
    if code == 200 and status.get("authenticated") is True:
        return "allow"
    return "error" if code != 200 or status.get("error") else "deny"


def step_webhook(ctx: DemoContext) -> None:
    """Run ``kubeiam server`` over mTLS; send TokenReviews as the API server does."""
    emulator = ctx.require_emulator()
    # Import here: the demo module imports this one.
    from kubeiam.demo_context import create_unique, mint

    stranger = create_unique(
        lambda n: emulator.create_user(n, path="/demo/"), "mallory"
    )
    ctx.say(f"A new IAM user joins, in the same account: {stranger.arn},")
    ctx.say("whom no mapping names. From here the demo plays the API server of")
    ctx.say(f"cluster {ctx.cluster_id!r}: it starts the cluster's webhook (kubeiam")
    ctx.say("server) and posts each token to it as a TokenReview.")
    ctx.say()
    tokens = {
        "role": ctx.tokens["role"],
        "user": ctx.tokens["user"],
        "unmapped": mint(ctx, stranger, ctx.cluster_id),
    }
    directory = Path(tempfile.mkdtemp(prefix="kubeiam-demo-webhook-"))
    port = _free_port()
    files = _prepare(ctx, directory, port, emulator.url)
    log = directory / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our interpreter and our own file
            [sys.executable, "-m", "kubeiam", "server", "--config", str(files.config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    reviews: list[dict[str, object]] = []
    try:
        _wait_ready(proc, files, port, log)
        ctx.say(
            f"kubeiam server (gunicorn, gthread) on https://127.0.0.1:{port}, ready in "
            f"{time.perf_counter() - started:.1f} s"
        )
        ctx.say("TLS with a generated CA; clientCAFile set, so only the holder of the")
        ctx.say("API server's client certificate completes the handshake (mTLS).")
        ctx.say("Mappings: role -> deployer:{{SessionName}} [deployers],")
        ctx.say("          user -> alice [viewers]; mallory is mapped by nobody.")
        conn = _connection(files, port)
        try:
            for label, token in tokens.items():
                code, answer = _review(conn, token)
                status = answer.get("status")
                if not isinstance(status, dict):
                    raise RuntimeError("the webhook's answer has no status")
                verdict = _verdict(code, status)
                ctx.say()
                ctx.say(
                    f"{label}: POST /authenticate  TokenReview {TOKENREVIEW_VERSION}"
                )
                ctx.say(f"  <- HTTP {code} {json.dumps(status)}")
                ctx.say(f"  API server: {_MEANING[verdict]}")
                reviews.append(
                    {
                        "principal": label,
                        "httpStatus": code,
                        "verdict": verdict,
                        **answer,
                    }
                )
        finally:
            conn.close()
    finally:
        _stop(proc)
        shutil.rmtree(directory, ignore_errors=True)
    ctx.say()
    ctx.say("kubectl never sees status.error: the API server answers 401 and logs it.")
    ctx.conclude(
        "the webhook mapped the session and alice to Kubernetes users; mallory got 401"
    )
    ctx.record(
        "webhook", {"tokenReviewVersion": TOKENREVIEW_VERSION, "reviews": reviews}
    )
