"""Run every ``bench/bench_*.py`` module; print one table, write results.md and a chart.

Each module has ``run() -> list[Row]``; a row compares kubeiam with its peer
measured in the same run. ``python -m bench [NAME-FILTER...] [--no-write]``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

from bench.common import Row, machine_info, render_table, write_chart

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    """Run the benchmarks named in argv (default: all) and print the table."""
    write = "--no-write" not in argv
    filters = [a for a in argv if not a.startswith("--")]
    names = sorted(
        m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_")
    )
    if filters:
        names = [n for n in names if any(f in n for f in filters)]
    rows: list[Row] = []
    failed: list[str] = []
    started = time.perf_counter()
    for i, name in enumerate(names, 1):
        t0 = time.perf_counter()
        print(f"[bench {i}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            rows.extend(module.run())
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(
            f"[bench {i}/{len(names)}] {name} done in {time.perf_counter() - t0:.1f}s",
            file=sys.stderr,
            flush=True,
        )
    table = render_table(rows)
    info = machine_info()
    print(info)
    print()
    print(table)
    if write and not filters:
        chart = HERE / "latency.png"
        charted = write_chart(rows, chart)
        lines = [
            "# Benchmark results",
            "",
            "Written by `make bench` (`python -m bench`). Every figure is next to its",
            "peer measured in the same run; ratio > 1 means kubeiam is better",
            "(faster or higher throughput).",
            "",
            info,
            "",
            table,
            "",
        ]
        if charted:
            lines += ["![latency distributions](latency.png)", ""]
        targeted = [r for r in rows if r.target]
        if targeted:
            lines += ["Targets (ratio against the peer in this run):", ""]
            lines += [
                f"- {r.name}: **{r.ratio:.1f}x** (target {r.target})"
                if r.ratio is not None
                else f"- {r.name}: {r.ours:.2f} {r.unit} (target {r.target})"
                for r in targeted
            ]
            lines.append("")
        if failed:
            lines += [f"Failed benchmarks: {', '.join(failed)}", ""]
        lines.append(f"Total bench time: {time.perf_counter() - started:.0f} s.")
        (HERE / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"\nwrote {HERE / 'results.md'}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
