"""The webhook under gunicorn: TokenReview/s (warm) vs a bare Flask echo; cold latency.

Both servers are real processes started with the *same* gunicorn options
(``webhook.server_cli.build_gunicorn_options``: gthread workers, threads, TLS
with the client CA, keep-alive, JSON access log), from the same config file.
The echo app parses the JSON body and answers a TokenReview-shaped JSON: the
floor any Flask TokenReview server pays. The load generator is bounded and on
loopback: ``THREADS`` threads, each with one keep-alive mTLS connection, send a
fixed number of reviews; rounds alternate echo / webhook.

- warm: each thread re-sends one token that its connection already verified,
  so every review is a verification-cache hit (offline checks + mapping).
- cold: every review carries a new token (distinct signing times), so each one
  costs an STS call to the embedded STS (moto + SigV4 check); sequential, p50/p99.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import Row, median, paired_row

if TYPE_CHECKING:
    from tests.fixtures.webhook import PKI

REPO = Path(__file__).resolve().parent.parent
# gunicorn settings of the comparison (docs/operations.md: "start with workers: 2,
# threads: 16").
WORKERS = 2
THREADS_PER_WORKER = 16
# Load generator: threads x requests per round, after a warm-up on each connection.
THREADS = 8
REQUESTS_PER_THREAD = 250
WARMUP_PER_THREAD = 25
ROUNDS = 3
COLD_REVIEWS = 200
CLUSTER_ID = "bench-cluster"
TARGET_RATIO = 0.70


def echo_app() -> object:
    """A bare Flask app: parse the JSON body, answer a TokenReview-shaped JSON."""
    from flask import Flask, Response, request

    app = Flask("echo")

    @app.post("/authenticate")
    def authenticate() -> Response:
        doc = json.loads(request.get_data())
        body = {
            "apiVersion": doc.get("apiVersion"),
            "kind": "TokenReview",
            "status": {"authenticated": True, "user": {"username": "echo"}},
        }
        return Response(json.dumps(body), mimetype="application/json")

    @app.get("/readyz")
    def readyz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    return app


def serve_echo(config: str) -> int:
    """Run :func:`echo_app` under the webhook's gunicorn options for ``config``."""
    from webhook.server_cli import build_gunicorn_options, run_gunicorn
    from webhook.settings import load_settings

    settings = load_settings(Path(config))
    return run_gunicorn(build_gunicorn_options(settings), echo_app)


def _context(pki: PKI) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    ctx.load_cert_chain(*pki.client)
    return ctx


def _review_body(token: str) -> bytes:
    from tests.fixtures.webhook import tokenreview

    return json.dumps(tokenreview(token)).encode()


_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, */*"}


def _post(conn: http.client.HTTPSConnection, body: bytes) -> bytes:
    conn.request("POST", "/authenticate?timeout=30s", body, _HEADERS)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"unexpected {resp.status}: {data[:200]!r}")
    return data


def _throughput(port: int, ctx: ssl.SSLContext, bodies: Sequence[bytes]) -> float:
    """Reviews per second: THREADS keep-alive connections, a fixed count each."""
    barrier = threading.Barrier(THREADS + 1)
    done = threading.Barrier(THREADS + 1)
    errors: list[BaseException] = []

    def worker(body: bytes) -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
        try:
            for _ in range(WARMUP_PER_THREAD):
                _post(conn, body)
            barrier.wait()
            for _ in range(REQUESTS_PER_THREAD):
                _post(conn, body)
        except BaseException as exc:  # reported after the round
            errors.append(exc)
            barrier.abort()
        finally:
            conn.close()
            with contextlib.suppress(threading.BrokenBarrierError):
                done.wait()

    threads = [
        threading.Thread(target=worker, args=(bodies[i % len(bodies)],))
        for i in range(THREADS)
    ]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    start = time.perf_counter()
    with contextlib.suppress(threading.BrokenBarrierError):
        done.wait()
    elapsed = time.perf_counter() - start
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"load generator failed: {errors[0]!r}")
    return THREADS * REQUESTS_PER_THREAD / elapsed


def _latencies(port: int, ctx: ssl.SSLContext, bodies: Sequence[bytes]) -> list[float]:
    """Milliseconds per review, one connection, sequential."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    out: list[float] = []
    try:
        for body in bodies:
            start = time.perf_counter()
            data = _post(conn, body)
            out.append((time.perf_counter() - start) * 1000)
            if b'"authenticated":true' not in data:
                raise RuntimeError(f"cold review not authenticated: {data[:200]!r}")
    finally:
        conn.close()
    return out


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _start_echo(config: Path, log: Path) -> subprocess.Popen[bytes]:
    from tests.fixtures.webhook import server_env

    code = (
        "import sys; from bench.bench_webhook import serve_echo; "
        "sys.exit(serve_echo(sys.argv[1]))"
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code, str(config)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**server_env(), "PYTHONPATH": str(REPO)},
            start_new_session=True,
        )


def run() -> list[Row]:
    """Measure the webhook against the bare echo; return the table rows."""
    from authenticator.emulator import STSEmulator
    from authenticator.presign import StaticCredentials, presign_get_caller_identity
    from tests.fixtures.webhook import (
        WebhookServer,
        free_port,
        start_webhook,
        wait_ready,
        write_config,
    )

    work = Path(tempfile.mkdtemp(prefix="kubeiam-bench-webhook-"))
    with STSEmulator() as sts:
        creds = sts.create_user("bench-user")
        mapping = {
            "mapUsers": [
                {"userarn": creds.arn, "username": "bench", "groups": ["bench"]}
            ]
        }
        (work / "webhook").mkdir()
        server = start_webhook(
            work / "webhook",
            mapping=mapping,
            extra_endpoints=[sts.url],
            cluster_id=CLUSTER_ID,
            workers=WORKERS,
            threads=THREADS_PER_WORKER,
        )
        echo_dir = work / "echo"
        echo_dir.mkdir()
        echo_port = free_port()
        echo_config = write_config(
            echo_dir,
            pki=server.pki,
            port=echo_port,
            mapping_path=server.mapping_path,
            cluster_id=CLUSTER_ID,
            workers=WORKERS,
            threads=THREADS_PER_WORKER,
        )
        echo_log = echo_dir / "echo.log"
        echo = WebhookServer(
            url=f"https://127.0.0.1:{echo_port}",
            pki=server.pki,
            config_path=echo_config,
            mapping_path=server.mapping_path,
            output_path=echo_log,
            process=_start_echo(echo_config, echo_log),
        )
        ctx = _context(server.pki)
        webhook_port = int(server.url.rsplit(":", 1)[1])
        try:
            wait_ready(echo)
            static = StaticCredentials(creds.access_key_id, creds.secret_access_key)
            now = datetime.now(UTC)

            def mint(seconds_ago: int) -> str:
                return presign_get_caller_identity(
                    credentials=static,
                    region="us-east-1",
                    cluster_id=CLUSTER_ID,
                    now=now - timedelta(seconds=seconds_ago),
                    endpoint_url=sts.url,
                ).token

            warm_bodies = [_review_body(mint(i)) for i in range(THREADS)]
            cold_bodies = [_review_body(mint(THREADS + i)) for i in range(COLD_REVIEWS)]
            echo_rps: list[float] = []
            hook_rps: list[float] = []
            for _ in range(ROUNDS):
                echo_rps.append(_throughput(echo_port, ctx, warm_bodies))
                hook_rps.append(_throughput(webhook_port, ctx, warm_bodies))
            cold = _latencies(webhook_port, ctx, cold_bodies)
            warm = _latencies(webhook_port, ctx, warm_bodies * 25)
        finally:
            echo.stop()
            server.stop()
    ours, peer = median(hook_rps), median(echo_rps)
    label = (
        f"gunicorn gthread {WORKERS}x{THREADS_PER_WORKER}, mTLS, "
        f"{THREADS} keep-alive clients"
    )
    return [
        paired_row(
            f"webhook TokenReview/s, warm verification cache ({label})",
            "reviews/s",
            ours=hook_rps,
            peer=echo_rps,
            peer_name="bare Flask JSON echo, same gunicorn",
            labels=("kubeiam", "echo"),
            higher_is_better=True,
            target=f">= {TARGET_RATIO:.0%} of echo (got {ours / peer:.0%})",
        ),
        Row(
            name="webhook latency p50, cold (new token, embedded STS called)",
            unit="ms",
            ours=_percentile(cold, 0.50),
            peer=None,
            ours_min=min(cold),
            ours_max=max(cold),
            samples={"cold": cold},
        ),
        Row(
            name="webhook latency p99, cold (new token, embedded STS called)",
            unit="ms",
            ours=_percentile(cold, 0.99),
            peer=None,
        ),
        Row(
            name="webhook latency p50, warm (cache hit), sequential",
            unit="ms",
            ours=_percentile(warm, 0.50),
            peer=None,
            ours_min=min(warm),
            ours_max=max(warm),
            samples={"warm": warm},
        ),
    ]
