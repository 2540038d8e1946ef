"""IAM decisions/s on generated cases: kubeiam vs @cloud-copilot/iam-simulate.

The same 2,000 seeded cases (tests/policy/iam/iam_differential.py) go through
kubeiam (parse and evaluate each case, as the peer loads each one) and through
iam-simulate in one node process per sample (its start-up included). The
disagreement counts are in ``make differential``; this measures speed only.
"""

from __future__ import annotations

import time

from bench.common import Row, paired_row
from tests.policy.iam import iam_differential as diff

SEED = 20260
COUNT = 2000
SAMPLES = 3


def run() -> list[Row]:
    """Measure decisions/s for both engines on the same cases."""
    if not diff.peer_available():
        diff.install_peer()
    cases = diff.balanced_cases(SEED, COUNT)
    ours: list[float] = []
    peer: list[float] = []
    for _ in range(SAMPLES):
        start = time.perf_counter()
        for case in cases:
            diff.kubeiam_decision(case)
        ours.append(len(cases) / (time.perf_counter() - start))
        start = time.perf_counter()
        diff.peer_decisions(cases)
        peer.append(len(cases) / (time.perf_counter() - start))
    return [
        paired_row(
            f"IAM decisions/s, {len(cases)} generated cases (parse + evaluate)",
            "decisions/s",
            ours=ours,
            peer=peer,
            peer_name="iam-simulate 0.1.173 (node, one process per batch)",
            higher_is_better=True,
        )
    ]
