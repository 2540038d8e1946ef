"""IAM evaluation throughput on the corpus: compiled policies vs parse-each-time.

``peer`` is the cold path (every case parsed and compiled before it is
evaluated, as an evaluator without a compile step does); ``ours`` evaluates
pre-compiled policy sets. Both run in the same process on the same cases.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Row, paired_row
from policy.iam.evaluator import evaluate
from policy.iam.suite import parse_case

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "iam_cases"
# Passes over the corpus per sample, and samples per measurement.
PASSES = 5
SAMPLES = 7


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


def run() -> list[Row]:
    """Measure decisions/s on the corpus, cold and compiled."""
    raw = _cases()
    compiled = [parse_case(c) for c in raw]

    def cold() -> None:
        for case in raw:
            parsed = parse_case(case)
            evaluate(parsed.policy_set, parsed.request)

    def warm(explain: bool) -> None:
        for case in compiled:
            evaluate(case.policy_set, case.request, explain=explain)

    cold()
    warm(False)
    peer = _rate(cold, len(raw))
    rows: list[Row] = []
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
                peer=peer,
                peer_name="kubeiam cold (parse each time)",
                higher_is_better=True,
            )
        )
    return rows
