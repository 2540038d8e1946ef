"""`kubeiam token` (cache hit and cache miss) against `aws eks get-token`.

Both run as kubectl runs them: a fresh process per token, the installed
scripts by absolute path, the same static fake credentials, ``--region
us-west-2``. The three commands are interleaved round by round so that load
from other processes on the machine falls on all of them alike.

- hit: the cache holds a fresh token for the key (primed once).
- hit with a config file: the same, with a usual ``~/.aws/config`` (a
  ``[default]`` section) instead of none, as most users have: the profile's
  FIPS / dual-stack settings are read on every call. Its peer column repeats
  the awscli samples.
- miss: an empty cache directory per run (read, lock, mint with botocore,
  atomic write), i.e. the first kubectl command of the 14-minute cycle.

``PYTHONDONTWRITEBYTECODE`` is dropped from the environment so that the
priming run byte-compiles kubeiam as any ``pip install`` does (awscli and
botocore in the venv are byte-compiled already).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.common import Row, paired_row

ROOT = Path(__file__).resolve().parent.parent
KUBEIAM = str(ROOT / ".venv" / "bin" / "kubeiam")
AWS = str(ROOT / ".venv" / "bin" / "aws")
# Median of at least 10 runs each (issue 2 acceptance).
RUNS = 15
WARMUP = 2
CLUSTER = "bench-cluster"
REGION = "us-west-2"


def _env(cache_dir: Path, config: Path | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "KUBE")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
        AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        AWS_CONFIG_FILE=str(config) if config else os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
        KUBEIAM_CACHE_DIR=str(cache_dir),
    )
    return env


def _once(argv: Sequence[str], env: Mapping[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(list(argv), env=dict(env), check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def _row(name: str, ours: list[float], peer: list[float], target: str) -> Row:
    return paired_row(
        name,
        "ms",
        ours=ours,
        peer=peer,
        peer_name="aws eks get-token",
        labels=("kubeiam", "aws"),
        target=target,
    )


def run(runs: int = RUNS) -> list[Row]:
    """Measure hit, miss and awscli, interleaved, ``runs`` times each.

    Returns:
        Three rows: cache hit, cache hit with a config file and cache miss, each
        against awscli.
    """
    ours_argv = [KUBEIAM, "token", "-i", CLUSTER, "--region", REGION]
    aws_argv = [AWS, "eks", "get-token", "--cluster-name", CLUSTER, "--region", REGION]
    hit: list[float] = []
    hit_config: list[float] = []
    miss: list[float] = []
    aws: list[float] = []
    with tempfile.TemporaryDirectory(prefix="kubeiam-bench-") as tmp:
        base = Path(tmp)
        hit_env = _env(base / "hit-cache")
        subprocess.run(ours_argv, env=hit_env, check=True, stdout=subprocess.DEVNULL)
        config = base / "config"
        config.write_text(f"[default]\nregion = {REGION}\noutput = json\n")
        config_env = _env(base / "config-cache", config)
        subprocess.run(ours_argv, env=config_env, check=True, stdout=subprocess.DEVNULL)
        for i in range(WARMUP + runs):
            miss_env = _env(base / f"miss-cache-{i}")
            sample = (
                _once(ours_argv, hit_env),
                _once(ours_argv, miss_env),
                _once(aws_argv, hit_env),
                _once(ours_argv, config_env),
            )
            if i >= WARMUP:
                hit.append(sample[0])
                miss.append(sample[1])
                aws.append(sample[2])
                hit_config.append(sample[3])
    return [
        _row("kubeiam token, cache hit", hit, aws, ">= 10x"),
        _row("kubeiam token, cache hit, ~/.aws/config", hit_config, aws, ">= 10x"),
        _row("kubeiam token, cache miss", miss, aws, ">= 2x"),
    ]


if __name__ == "__main__":
    from bench.common import render_table

    print(render_table(run(int(sys.argv[1]) if len(sys.argv) > 1 else RUNS)))
