"""The webhook under connection attacks: reviews answered in 1 s vs stock gthread.

Both servers are real processes serving the *same* app (``webhook.create_app``)
from the same kind of config with the same gunicorn options
(``webhook.server_cli.build_gunicorn_options``, 2 workers x 16 threads, mTLS);
the peer only swaps the worker class back to gunicorn's stock ``gthread``.
Attacks, on loopback and bounded (``tests/fixtures/attack.py``):

- stalled handshakes: :data:`STALLED` connections send one byte of a TLS record;
- idle connections: :data:`IDLE` connections send nothing (run last: it takes
  the stock worker down for good).

During each attack :data:`REVIEWS` mTLS TokenReviews, each on a new
connection, are sent one after another (a review not answered in
:data:`CLIENT_TIMEOUT_S` is a miss; at most :data:`BUDGET_S` per series); the
row is the share answered within 1 s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Row

REPO = Path(__file__).resolve().parent.parent
WORKERS = 2
THREADS_PER_WORKER = 16
STALLED = 96
IDLE = 2600
REVIEWS = 50
WITHIN_S = 1.0
CLIENT_TIMEOUT_S = 1.0
BUDGET_S = 10.0
CLUSTER_ID = "bench-cluster"


def serve_stock(config: str) -> int:
    """Run the webhook app with the webhook's gunicorn options but stock gthread."""
    from webhook import create_app
    from webhook.server_cli import build_gunicorn_options, run_gunicorn
    from webhook.settings import load_settings

    settings = load_settings(Path(config))
    options = {**build_gunicorn_options(settings), "worker_class": "gthread"}
    return run_gunicorn(options, lambda: create_app(settings))


def _attack(server: object, token: str, port: int) -> tuple[float, float]:
    """Share of reviews answered within 1 s during the stalled and the idle attack."""
    from tests.fixtures.attack import answered, close_all, open_connections, reviews

    shares: list[float] = []
    for count, first in ((STALLED, b"\x16"), (IDLE, b"")):
        socks = open_connections(port, count, first)
        try:
            time.sleep(1.0)
            got = reviews(
                server,  # type: ignore[arg-type]  # a WebhookServer
                token,
                REVIEWS,
                within=WITHIN_S,
                timeout=CLIENT_TIMEOUT_S,
                budget_s=BUDGET_S,
            )
        finally:
            close_all(socks)
        shares.append(100.0 * answered(got, WITHIN_S) / REVIEWS)
        time.sleep(1.0)
    return shares[0], shares[1]


def run() -> list[Row]:
    """Attack kubeiam's worker and stock gthread; return the table rows."""
    import subprocess

    from authenticator.emulator import STSEmulator
    from authenticator.presign import StaticCredentials, presign_get_caller_identity
    from tests.fixtures.attack import raise_nofile_limit
    from tests.fixtures.webhook import (
        WebhookServer,
        free_port,
        server_env,
        start_webhook,
        wait_ready,
        write_config,
    )

    raise_nofile_limit(IDLE + 1024)
    work = Path(tempfile.mkdtemp(prefix="kubeiam-bench-attack-"))
    with STSEmulator() as sts:
        creds = sts.create_user("bench-attack-user")
        mapping = {
            "mapUsers": [{"userarn": creds.arn, "username": "bench", "groups": ["b"]}]
        }
        (work / "ours").mkdir()
        ours = start_webhook(
            work / "ours",
            mapping=mapping,
            extra_endpoints=[sts.url],
            cluster_id=CLUSTER_ID,
            workers=WORKERS,
            threads=THREADS_PER_WORKER,
        )
        token = presign_get_caller_identity(
            credentials=StaticCredentials(creds.access_key_id, creds.secret_access_key),
            region="us-east-1",
            cluster_id=CLUSTER_ID,
            now=datetime.now(UTC),
            endpoint_url=sts.url,
        ).token
        try:
            ours_shares = _attack(ours, token, int(ours.url.rsplit(":", 1)[1]))
        finally:
            ours.stop()
        stock_dir = work / "stock"
        stock_dir.mkdir()
        port = free_port()
        config = write_config(
            stock_dir,
            pki=ours.pki,
            port=port,
            mapping_path=ours.mapping_path,
            extra_endpoints=[sts.url],
            cluster_id=CLUSTER_ID,
            workers=WORKERS,
            threads=THREADS_PER_WORKER,
        )
        log = stock_dir / "stock.log"
        code = (
            "import sys; from bench.bench_attack import serve_stock; "
            "sys.exit(serve_stock(sys.argv[1]))"
        )
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-c", code, str(config)],
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**server_env(), "PYTHONPATH": str(REPO)},
                start_new_session=True,
            )
        stock = WebhookServer(
            url=f"https://127.0.0.1:{port}",
            pki=ours.pki,
            config_path=config,
            mapping_path=ours.mapping_path,
            output_path=log,
            process=process,
        )
        try:
            wait_ready(stock)
            stock_shares = _attack(stock, token, port)
        finally:
            stock.stop()
    label = f"{WORKERS}x{THREADS_PER_WORKER}, mTLS, new connection per review"
    rows = []
    for i, attack in enumerate(
        (f"{STALLED} stalled TLS handshakes", f"{IDLE} idle connections")
    ):
        rows.append(
            Row(
                name=f"webhook reviews answered in 1 s during {attack} ({label})",
                unit="%",
                ours=ours_shares[i],
                peer=stock_shares[i],
                peer_name="stock gunicorn gthread, same app and options",
                higher_is_better=True,
                target=">= 99%",
            )
        )
    return rows
