"""IAM throughput on the corpus: kubeiam vs iam-simulate, and vs its cold mode.

The peer row: kubeiam and @cloud-copilot/iam-simulate each run in their own
process (``python -m bench.bench_policy --loop`` and
``tests/peers/npm/bench.cjs``), load the whole corpus once (policies parsed,
requests built), warm up, then decide the corpus PASSES times per sample. Both
report decisions per wall-clock second and per CPU-second of the process (the
machine is shared, so the CPU figure is the steadier one); the two processes
alternate ROUNDS times so they see the same load.

The in-process rows compare compiled policy sets with the cold path (every
case parsed and compiled before it is evaluated), with and without reading
the full explain trace.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.common import Row, paired_row
from policy.iam.evaluator import evaluate
from policy.iam.suite import parse_case

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "iam_cases"
PEER_DIR = ROOT / "tests" / "peers" / "npm"
# Passes over the corpus per sample, and samples per measurement.
PASSES = 5
SAMPLES = 7
# The peer comparison: processes per side (alternating), samples per process.
ROUNDS = 3
PEER_PASSES = 10
PEER_SAMPLES = 5
PEER_NAME = "iam-simulate 0.1.173 authorize() (node, pre-loaded policies)"


def _cases() -> list[dict[str, object]]:
    cases: list[dict[str, object]] = []
    for path in sorted(CORPUS.glob("*.json")):
        cases.extend(json.loads(path.read_text(encoding="utf-8")))
    return cases


def _rate(func: Callable[[], None], n: int) -> list[float]:
    """Decisions per second over SAMPLES samples of PASSES passes."""
    out: list[float] = []
    for _ in range(SAMPLES):
        start = time.perf_counter()
        for _ in range(PASSES):
            func()
        out.append(n * PASSES / (time.perf_counter() - start))
    return out


def loop(path: str, passes: int, samples: int) -> dict[str, object]:
    """kubeiam's side of the peer row (the twin of tests/peers/npm/bench.cjs).

    Args:
        path: A JSON array of simulation cases.
        passes: Passes over the cases per sample.
        samples: Samples.

    Returns:
        ``{"cases", "rates", "cpuRates", "decisions"}`` as the node runner prints.
    """
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    cases = [(c.policy_set, c.request) for c in (parse_case(r) for r in raw)]
    decisions: dict[str, int] = {}
    for ps, req in cases:
        value = evaluate(ps, req, explain=False).decision.value
        decisions[value] = decisions.get(value, 0) + 1

    def one_pass() -> None:
        for ps, req in cases:
            evaluate(ps, req, explain=False).decision  # noqa: B018 - the work measured

    for _ in range(30):
        one_pass()
    rates: list[float] = []
    cpu_rates: list[float] = []
    for _ in range(samples):
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(passes):
            one_pass()
        n = len(cases) * passes
        cpu_rates.append(n / (time.process_time() - cpu))
        rates.append(n / (time.perf_counter() - start))
    return {
        "cases": len(cases),
        "rates": rates,
        "cpuRates": cpu_rates,
        "decisions": decisions,
    }


def _peer_available() -> bool:
    return (PEER_DIR / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir()


def _run_json(argv: Sequence[str]) -> dict[str, object]:
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, check=True, timeout=600
    )
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def peer_rows(raw: list[dict[str, object]]) -> list[Row]:
    """kubeiam vs iam-simulate, whole processes, same corpus, policies loaded once."""
    if not _peer_available():
        subprocess.run(["make", "peer-npm"], cwd=ROOT, check=True, timeout=900)
    ours: dict[str, list[float]] = {"rates": [], "cpuRates": []}
    peer: dict[str, list[float]] = {"rates": [], "cpuRates": []}
    counts: set[tuple[str, object]] = set()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.json"
        corpus.write_text(json.dumps(raw), encoding="utf-8")
        args = [str(corpus), str(PEER_PASSES), str(PEER_SAMPLES)]
        for _ in range(ROUNDS):
            a = _run_json([sys.executable, "-m", "bench.bench_policy", "--loop", *args])
            b = _run_json(["node", str(PEER_DIR / "bench.cjs"), *args])
            for key in ours:
                ours[key] += list(a[key])  # type: ignore[call-overload]
                peer[key] += list(b[key])  # type: ignore[call-overload]
            counts.add(("kubeiam", a["cases"]))
            counts.add(("peer", b["cases"]))
    if {n for _, n in counts} != {len(raw)}:
        raise RuntimeError(f"the two sides decided different case counts: {counts}")
    return [
        paired_row(
            f"IAM decisions/s, {len(raw)}-case corpus, whole process, policies "
            f"loaded once ({label})",
            unit,
            ours=ours[key],
            peer=peer[key],
            peer_name=PEER_NAME,
            higher_is_better=True,
            target=">= 10x",
        )
        for key, unit, label in (
            ("rates", "decisions/s", "wall clock"),
            ("cpuRates", "decisions/CPU-s", "per CPU-second"),
        )
    ]


def run() -> list[Row]:
    """Measure decisions/s on the corpus: against iam-simulate, and cold vs compiled."""
    raw = _cases()
    rows = peer_rows(raw)
    compiled = [parse_case(c) for c in raw]

    def cold() -> None:
        for case in raw:
            parsed = parse_case(case)
            evaluate(parsed.policy_set, parsed.request)

    def warm(explain: bool) -> None:
        for case in compiled:
            result = evaluate(case.policy_set, case.request, explain=explain)
            if explain:
                result.trace  # noqa: B018 - build the trace (it is lazy)

    cold()
    warm(False)
    cold_rate = _rate(cold, len(raw))
    for explain, label in (
        (False, "compiled"),
        (True, "compiled + full explain trace"),
    ):
        ours = _rate(functools.partial(warm, explain), len(raw))
        rows.append(
            paired_row(
                f"IAM decisions/s, {len(raw)}-case corpus ({label})",
                "decisions/s",
                ours=ours,
                peer=cold_rate,
                peer_name="kubeiam cold (parse each time)",
                higher_is_better=True,
            )
        )
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] != ["--loop"] or len(sys.argv) != 5:
        sys.exit("usage: python -m bench.bench_policy --loop CASES.json PASSES SAMPLES")
    print(json.dumps(loop(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
