"""Shared benchmark helpers: timing, statistics and the table."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Row:
    """One benchmark line: ours against the peer, same run.

    ``higher_is_better`` is True for throughputs (ops/s) and False for latencies.
    """

    name: str
    unit: str
    ours: float
    peer: float | None
    peer_name: str = ""
    higher_is_better: bool = False
    ours_min: float | None = None
    ours_max: float | None = None
    peer_min: float | None = None
    peer_max: float | None = None
    target: str = ""
    samples: Mapping[str, Sequence[float]] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """How many times better ours is than the peer (>1 means better)."""
        if self.peer is None or self.ours == 0 or self.peer == 0:
            return None
        return self.ours / self.peer if self.higher_is_better else self.peer / self.ours


def paired_row(
    name: str,
    unit: str,
    *,
    ours: Sequence[float],
    peer: Sequence[float],
    peer_name: str,
    labels: tuple[str, str] = ("ours", "peer"),
    higher_is_better: bool = False,
    target: str = "",
) -> Row:
    """Build a row from ours' and the peer's samples: medians, ranges, samples.

    ``labels`` name the two sample series (they label the chart's boxes).
    """
    return Row(
        name=name,
        unit=unit,
        ours=median(ours),
        peer=median(peer),
        peer_name=peer_name,
        higher_is_better=higher_is_better,
        ours_min=min(ours),
        ours_max=max(ours),
        peer_min=min(peer),
        peer_max=max(peer),
        target=target,
        samples={labels[0]: ours, labels[1]: peer},
    )


def time_command(
    argv: Sequence[str],
    *,
    runs: int,
    env: Mapping[str, str] | None = None,
    warmup: int = 1,
) -> list[float]:
    """Run a command ``runs`` times and return wall times in milliseconds."""
    out: list[float] = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        subprocess.run(
            list(argv),
            env=dict(env) if env is not None else None,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if i >= warmup:
            out.append((time.perf_counter() - start) * 1000)
    return out


def time_call(func: Callable[[], object], *, runs: int) -> list[float]:
    """Call ``func`` ``runs`` times and return wall times in milliseconds."""
    out: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        out.append((time.perf_counter() - start) * 1000)
    return out


def median(values: Sequence[float]) -> float:
    """The median of ``values``."""
    return float(statistics.median(values))


def process_tree(pid: int) -> list[int]:
    """A process and its children (a gunicorn arbiter and its workers)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    return pids


def render_table(rows: Sequence[Row]) -> str:
    """Render rows as a Markdown table."""
    head = (
        "| benchmark | unit | kubeiam (median) | min-max | peer | peer (median) "
        "| min-max | ratio | target |"
    )
    sep = "|" + "---|" * 9
    lines = [head, sep]
    for r in rows:
        rng = f"{r.ours_min:.2f}-{r.ours_max:.2f}" if r.ours_min is not None else ""
        prng = f"{r.peer_min:.2f}-{r.peer_max:.2f}" if r.peer_min is not None else ""
        peer = f"{r.peer:.2f}" if r.peer is not None else ""
        ratio = f"{r.ratio:.1f}x" if r.ratio is not None else ""
        lines.append(
            f"| {r.name} | {r.unit} | {r.ours:.2f} | {rng} | {r.peer_name} | {peer} "
            f"| {prng} | {ratio} | {r.target} |"
        )
    return "\n".join(lines)


def machine_info() -> str:
    """Describe the machine the benchmarks ran on (one Markdown line)."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            kb = int(fh.readline().split()[1])
            mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"Machine: {cpu}, {os.cpu_count()} cores{mem}; "
        f"{platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
    )


def write_chart(rows: Sequence[Row], path: object) -> bool:
    """Draw the latency rows' distributions (unit ms, with samples) as box plots."""
    import textwrap

    series = [
        (textwrap.fill(f"{r.name} [{label}]", 30), list(vals))
        for r in rows
        if r.unit == "ms"
        for label, vals in r.samples.items()
        if vals
    ]
    if not series:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(7, 2.0 * len(series)), 6))
    ax.boxplot([v for _, v in series], showfliers=True)
    ax.set_xticks(range(1, len(series) + 1), [n for n, _ in series], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("milliseconds (log scale)")
    ax.set_title("kubeiam vs peers: latency distributions (same run)")
    fig.tight_layout()
    fig.savefig(str(path), dpi=110)
    plt.close(fig)
    return True
