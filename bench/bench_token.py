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
- the floor (issue 15, target 5): the hit against ``python -c pass`` of the
  same venv, the least any Python command can cost. A paired loop alternates
  the two (wall time, and the CPU time of each child from ``RUSAGE_CHILDREN``,
  which other load on the machine barely moves); with hyperfine installed
  (``make deps-system``) a hyperfine row is added. Target: the hit within 1.3x
  of the floor, i.e. a ratio (floor / hit) of at least 0.77x.

``PYTHONDONTWRITEBYTECODE`` is dropped from the environment so that the
priming run byte-compiles kubeiam as any ``pip install`` does (awscli and
botocore in the venv are byte-compiled already).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
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
# The floor comparison alternates two cheap commands: more samples.
FLOOR_RUNS = 60
PYTHON = str(ROOT / ".venv" / "bin" / "python")
FLOOR_TARGET = "hit <= 1.3x floor (ratio >= 0.77x)"
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


def _once_cpu(argv: Sequence[str], env: Mapping[str, str]) -> tuple[float, float]:
    """Run once; return (wall ms, the child's user + system CPU ms)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(list(argv), env=dict(env), check=True, stdout=subprocess.DEVNULL)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu * 1000


def _floor_rows(
    hit_argv: Sequence[str], env: Mapping[str, str], runs: int
) -> list[Row]:
    """The cache hit against `python -c pass` of the same venv (issue 15 target 5)."""
    bare = [PYTHON, "-c", "pass"]
    walls: dict[str, list[float]] = {"hit": [], "bare": []}
    cpus: dict[str, list[float]] = {"hit": [], "bare": []}
    for i in range(WARMUP + runs):
        # Alternate which goes first, so neither always follows the other.
        order = (("hit", hit_argv), ("bare", bare))
        for label, argv in order if i % 2 else order[::-1]:
            wall, cpu = _once_cpu(argv, env)
            if i >= WARMUP:
                walls[label].append(wall)
                cpus[label].append(cpu)
    rows = [
        paired_row(
            "kubeiam token, cache hit vs bare python (wall)",
            "ms",
            ours=walls["hit"],
            peer=walls["bare"],
            peer_name="python -c pass",
            labels=("kubeiam hit", "python -c pass"),
            target=FLOOR_TARGET,
        ),
        paired_row(
            "kubeiam token, cache hit vs bare python (CPU)",
            "ms",
            ours=cpus["hit"],
            peer=cpus["bare"],
            peer_name="python -c pass",
            labels=("kubeiam hit CPU", "python -c pass CPU"),
            target=FLOOR_TARGET,
        ),
    ]
    hyperfine = shutil.which("hyperfine")
    if hyperfine is not None:
        rows.append(_hyperfine_row(hyperfine, hit_argv, bare, env, runs))
    return rows


def _hyperfine_row(
    hyperfine: str,
    hit_argv: Sequence[str],
    bare: Sequence[str],
    env: Mapping[str, str],
    runs: int,
) -> Row:
    """hyperfine's view of the same pair (no shell, warm-up, its own statistics)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [
                hyperfine,
                "--shell=none",
                "--warmup",
                str(WARMUP + 3),
                "--runs",
                str(runs),
                "--export-json",
                out.name,
                "--style",
                "none",
                " ".join(hit_argv),
                " ".join(bare),
            ],
            env=dict(env),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        results = json.loads(Path(out.name).read_text())["results"]
    hit, floor = ([t * 1000 for t in r["times"]] for r in results)
    return paired_row(
        "kubeiam token, cache hit vs bare python (hyperfine)",
        "ms",
        ours=hit,
        peer=floor,
        peer_name="python -c pass",
        labels=("kubeiam hit (hyperfine)", "python -c pass (hyperfine)"),
        target=FLOOR_TARGET,
    )


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
        against awscli; then the hit against a bare interpreter (wall, CPU and,
        with hyperfine installed, hyperfine's figures).
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
        floor = _floor_rows(ours_argv, hit_env, max(runs, FLOOR_RUNS))
    return [
        _row("kubeiam token, cache hit", hit, aws, ">= 10x"),
        _row("kubeiam token, cache hit, ~/.aws/config", hit_config, aws, ">= 10x"),
        _row("kubeiam token, cache miss", miss, aws, ">= 2x"),
        *floor,
    ]


if __name__ == "__main__":
    from bench.common import render_table

    print(render_table(run(int(sys.argv[1]) if len(sys.argv) > 1 else RUNS)))
