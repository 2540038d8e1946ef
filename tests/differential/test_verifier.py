"""Verifier differential: generated token variants through both verifiers.

Both servers verify every variant against the same STS (the emulator on :443 in
the namespace). Every disagreement must be a rule listed in
``docs/token-format.md`` section 8 (kubeiam refuses, aws-iam-authenticator
accepts, for the written reason); anything else fails the test. The suite runs a
fixed seed and a bounded count (``KUBEIAM_DIFFERENTIAL_COUNT``, default 600);
``make differential`` runs 10,000 or more.
"""

from __future__ import annotations

import os

from authenticator.emulator import Credentials
from authenticator.verify import REASONS
from tests.differential.harness import Server
from tests.differential.runner import (
    classify,
    describe,
    run_verifier_differential,
    stricter_rules,
)
from tests.differential.variants import MUTATIONS

SEED = 20261203
COUNT = int(os.environ.get("KUBEIAM_DIFFERENTIAL_COUNT", "600"))


def test_the_written_list_names_kubeiam_reasons_with_a_why() -> None:
    rules = stricter_rules()
    assert rules, "docs/token-format.md section 8 lists no rule"
    assert set(rules) <= set(REASONS), set(rules) - set(REASONS)
    assert all(len(why) > 20 for why in rules.values())


def test_verifier_differential(
    go_server: Server, kubeiam_server: Server, identities: list[Credentials]
) -> None:
    rules = stricter_rules()
    outcomes = run_verifier_differential(
        go_server, kubeiam_server, identities, count=COUNT, seed=SEED
    )
    report = classify(outcomes, rules)
    text = describe(report)
    print(text)
    assert report.total >= min(COUNT, 2 * (len(MUTATIONS) + 1))
    # Unmodified tokens of both identities pass both verifiers.
    valid = [o for o in outcomes if not o.variant.labels]
    assert valid and all(o.go_ok and o.kubeiam_ok for o in valid), text
    assert not report.unlisted, text
    assert not report.identity_mismatch, text
    # Every written rule is one the differential actually observes (no stale rows).
    assert set(report.stricter) == set(rules), (set(rules) ^ set(report.stricter), text)
