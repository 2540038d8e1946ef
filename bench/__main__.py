"""Run every ``bench/bench_*.py`` module and print one table.

Each module has ``run() -> list[Row]``; a row compares kubeiam with its peer
measured in the same run.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

from bench.common import Row, render_table


def main(argv: list[str]) -> int:
    """Run the benchmarks named in argv (default: all) and print the table."""
    names = sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent))]) if m.name.startswith("bench_")
    )
    if argv:
        names = [n for n in names if any(a in n for a in argv)]
    rows: list[Row] = []
    for name in names:
        start = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"bench.{name}")
        rows.extend(module.run())
        print(f"[bench] {name} done in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    print(render_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
