"""Webhook TokenReviews/s and latency: kubeiam server vs aws-iam-authenticator server.

Both servers run side by side in the STS namespace (``docs/testing.md``): the same
STS emulator on :443 behind the real STS host names, the same mappings
(``mapAccounts``), the same TLS (server certificate only: the Go server cannot
ask for a client certificate, so kubeiam runs without mTLS here too), the same
load tool (``wrk``, run inside the namespace) and the same connections.

- warm: the same token on every review (kubeiam answers from its verification
  cache; aws-iam-authenticator has none and calls STS every time);
- cold: a new token on every review (distinct signing times and identities),
  so both call STS for each one;
- crowded: warm again while 2,500 idle TCP connections and 100 connections
  stalled in the middle of a TLS ClientHello are held open against the server
  (reviews/s kept, as a share of its own warm figure).
"""

from __future__ import annotations

import re
import socket
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import Row, paired_row

DURATION_S = 8
CONNECTIONS = 16
THREADS = 2
USERS = 12
COLD_TOKENS_PER_USER = 500
IDLE = 2500
SLOW_HANDSHAKES = 100
# The first bytes of a TLS ClientHello: a handshake that never finishes.
_PARTIAL_HELLO = bytes.fromhex("160301020001000001fc0303")

_LUA = """
local tokens = {}
for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  local t = tokens[((i - 1) %% #tokens) + 1]
  local body = '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview",' ..
    '"spec":{"token":"' .. t .. '"}}'
  return wrk.format(nil, "/authenticate", nil, body)
end
"""


def _wrk(
    namespace: object, url: str, tokens: Path, script_dir: Path
) -> dict[str, float]:
    from tests.fixtures.stsnamespace import STSNamespace

    assert isinstance(namespace, STSNamespace)
    script = script_dir / f"{tokens.stem}.lua"
    script.write_text(_LUA % {"tokens": tokens})
    out = namespace.run(
        [
            "wrk",
            f"-t{THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{DURATION_S}s",
            "--latency",
            "-s",
            str(script),
            url + "/authenticate",
        ],
        timeout=DURATION_S + 60,
    )
    text = out.stdout.decode()
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr.decode()}{text}")
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])}  # type: ignore[index]
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if m:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m[2]]
            result[f"p{pct}"] = float(m[1]) * scale
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    result["non2xx"] = float(errors[1]) if errors else 0.0
    return result


def _crowd(namespace: object, port: int) -> list[socket.socket]:
    """Open the idle and stalled connections from inside the namespace."""
    from tests.fixtures.stsnamespace import STSNamespace

    assert isinstance(namespace, STSNamespace)

    def open_one(i: int) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            return None  # the server stopped accepting: counted as not held
        if i < SLOW_HANDSHAKES:
            sock.sendall(_PARTIAL_HELLO)
        return sock

    opened = namespace.map(open_one, list(range(IDLE + SLOW_HANDSHAKES)))
    return [s for s in opened if s is not None]


def run() -> list[Row]:
    """Warm and cold reviews/s and p50/p99, kubeiam vs the Go server."""
    from authenticator.emulator import STSEmulator
    from authenticator.presign import StaticCredentials, presign_get_caller_identity
    from tests.differential.harness import (
        start_go_server,
        start_kubeiam_server,
        user_of,
    )
    from tests.fixtures.stsnamespace import STSNamespace

    rows: list[Row] = []
    with (
        STSEmulator() as emulator,
        tempfile.TemporaryDirectory(prefix="kubeiam-bench-peer-") as tmp,
    ):
        base = Path(tmp)
        namespace = STSNamespace(base)
        namespace.start()
        servers = []
        try:
            mapping = {"mapAccounts": [emulator.account_id]}
            (base / "go").mkdir()
            (base / "kubeiam").mkdir()
            go = start_go_server(namespace, base / "go", mapping)
            servers.append(go)
            ours = start_kubeiam_server(
                namespace,
                base / "kubeiam",
                mapping,
                workers=2,
                threads=16,
                mtls=False,
                cache={"ttlSeconds": 60, "maxEntries": 100000},
            )
            servers.append(ours)
            now = datetime.now(UTC)
            users = [emulator.create_user(f"bench-peer-{i}") for i in range(USERS)]
            cold = []
            for user in users:
                creds = StaticCredentials(user.access_key_id, user.secret_access_key)
                for age in range(COLD_TOKENS_PER_USER):
                    cold.append(
                        presign_get_caller_identity(
                            credentials=creds,
                            region="us-east-1",
                            cluster_id="diff-cluster",
                            now=now - timedelta(seconds=age),
                        ).token
                    )
            warm = cold[:1]
            assert user_of(go.review(warm[0])) and user_of(ours.review(warm[0]))
            (base / "warm.txt").write_text("\n".join(warm) + "\n")
            (base / "cold-go.txt").write_text("\n".join(cold[0::2]) + "\n")
            (base / "cold-kubeiam.txt").write_text("\n".join(cold[1::2]) + "\n")
            results = {}
            for label, server, tokens in (
                ("warm-go", go, "warm.txt"),
                ("warm-kubeiam", ours, "warm.txt"),
                ("cold-go", go, "cold-go.txt"),
                ("cold-kubeiam", ours, "cold-kubeiam.txt"),
            ):
                results[label] = _wrk(namespace, server.url, base / tokens, base)
            for label, server in (("crowded-go", go), ("crowded-kubeiam", ours)):
                port = int(server.url.rsplit(":", 1)[1])
                held = _crowd(namespace, port)
                try:
                    results[label] = _wrk(
                        namespace, server.url, base / "warm.txt", base
                    )
                    results[label]["held"] = float(len(held))
                finally:
                    for sock in held:
                        sock.close()
        finally:
            for server in servers:
                server.stop()
            namespace.stop()
    peer = "aws-iam-authenticator server (Go), same STS, wrk"
    for kind in ("warm", "cold"):
        g, k = results[f"{kind}-go"], results[f"{kind}-kubeiam"]
        what = "same token" if kind == "warm" else "new token each review, STS called"
        rows.append(
            paired_row(
                f"webhook TokenReview/s vs Go server, {kind} ({what}; "
                f"{CONNECTIONS} conns; non-2xx {int(k['non2xx'])}/{int(g['non2xx'])})",
                "reviews/s",
                ours=[k["rps"]],
                peer=[g["rps"]],
                peer_name=peer,
                higher_is_better=True,
                target="> 1x" if kind == "warm" else ">= 0.8x",
            )
        )
        for pct in ("p50", "p99"):
            if pct in k and pct in g:
                rows.append(
                    paired_row(
                        f"webhook latency {pct} vs Go server, {kind}",
                        "ms",
                        ours=[k[pct]],
                        peer=[g[pct]],
                        peer_name=peer,
                    )
                )
    g, k = results["crowded-go"], results["crowded-kubeiam"]
    rows.append(
        paired_row(
            f"webhook TokenReview/s vs Go server, warm, with {IDLE} idle + "
            f"{SLOW_HANDSHAKES} stalled-handshake connections held "
            f"(held {int(k['held'])}/{int(g['held'])}; share of own warm rate "
            f"{k['rps'] / results['warm-kubeiam']['rps']:.0%}/"
            f"{g['rps'] / results['warm-go']['rps']:.0%})",
            "reviews/s",
            ours=[k["rps"]],
            peer=[g["rps"]],
            peer_name=peer,
            higher_is_better=True,
        )
    )
    return rows


if __name__ == "__main__":
    from bench.common import render_table

    print(render_table(run()))
