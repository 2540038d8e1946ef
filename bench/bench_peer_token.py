"""`kubeiam token` (cache hit and miss) against the real `aws-iam-authenticator token`.

The Go binary is the pinned peer from the peers cache (``tests/peers/build.sh``).
Every command runs as kubectl runs it: a fresh process per token, the same static
fake credentials, region ``us-west-2`` (minting is local: no network). The
commands are interleaved round by round so load from other processes falls on
all of them alike. aws-iam-authenticator has no token cache of its own (its
``--cache`` caches assumed-role credentials, not tokens), so each of its runs
is a full mint.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.bench_token import CLUSTER, KUBEIAM, REGION, ROOT, _env
from bench.common import Row, paired_row

RUNS = 15
WARMUP = 2


def peer_binary() -> str:
    """aws-iam-authenticator from the peers cache (built once per machine)."""
    out = subprocess.run(
        ["bash", str(ROOT / "tests" / "peers" / "build.sh"), "aws-iam-authenticator"],
        capture_output=True,
        text=True,
        check=True,
    )
    return str(Path(out.stdout.strip().splitlines()[-1]) / "aws-iam-authenticator")


def _once(argv: Sequence[str], env: Mapping[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(list(argv), env=dict(env), check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def run(runs: int = RUNS) -> list[Row]:
    """kubeiam hit and miss vs the Go binary's mint, interleaved."""
    go_argv = [peer_binary(), "token", "-i", CLUSTER, "--region", REGION]
    ours_argv = [KUBEIAM, "token", "-i", CLUSTER, "--region", REGION]
    hit: list[float] = []
    miss: list[float] = []
    go: list[float] = []
    with tempfile.TemporaryDirectory(prefix="kubeiam-bench-peer-") as tmp:
        base = Path(tmp)
        hit_env = _env(base / "hit-cache")
        hit_env["HOME"] = str(base)
        subprocess.run(ours_argv, env=hit_env, check=True, stdout=subprocess.DEVNULL)
        for i in range(WARMUP + runs):
            miss_env = {**hit_env, "KUBEIAM_CACHE_DIR": str(base / f"miss-{i}")}
            sample = (
                _once(ours_argv, hit_env),
                _once(ours_argv, miss_env),
                _once(go_argv, hit_env),
            )
            if i >= WARMUP:
                hit.append(sample[0])
                miss.append(sample[1])
                go.append(sample[2])

    def row(name: str, ours: list[float], target: str) -> Row:
        return paired_row(
            name,
            "ms",
            ours=ours,
            peer=go,
            peer_name="aws-iam-authenticator token (Go)",
            labels=("kubeiam", "aws-iam-authenticator"),
            target=target,
        )

    return [
        row("kubeiam token, cache hit vs Go mint", hit, "> 1x"),
        row("kubeiam token, cache miss vs Go mint", miss, ""),
    ]


if __name__ == "__main__":
    from bench.common import render_table

    print(render_table(run(int(sys.argv[1]) if len(sys.argv) > 1 else RUNS)))
