"""kubeiam's IAM engine against @cloud-copilot/iam-simulate on a fixed-seed sample.

2,000 generated cases (a third of each decision) go through both engines; every
disagreement must be listed in tests/data/iam_differential/known_divergences.json,
which quotes the AWS documentation that decides it. An unlisted one fails with a
delta-minimised reproduction. ``make differential`` runs 20,000.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.policy.iam import iam_differential as diff

SEED = 20260
COUNT = 2000


@pytest.fixture(scope="module")
def report() -> diff.Report:
    """One run of the fixed-seed sample (installs the pinned peer if needed)."""
    if not diff.peer_available():
        diff.install_peer()
    return diff.run(SEED, COUNT)


def test_sample_is_balanced(report: diff.Report) -> None:
    """At least 2,000 cases, about a third of each kubeiam decision."""
    assert report.count >= COUNT
    for decision in diff.DECISIONS:
        assert report.by_decision[decision] >= COUNT // 3 - 1


def test_no_unlisted_disagreement(report: diff.Report) -> None:
    """Every disagreement is a listed divergence; else show a minimised case."""
    if report.unlisted:
        case, ours, theirs = report.unlisted[0]
        small = diff.minimize(case, decide=diff.decide_both)
        pytest.fail(
            f"{len(report.unlisted)} unlisted disagreements; first (kubeiam {ours}, "
            f"iam-simulate {theirs}), minimised:\n{json.dumps(small, indent=1)}"
        )
    assert report.peer_errors == 0
    assert report.agree + sum(report.listed.values()) == report.count


def test_every_listed_divergence_cites_documentation() -> None:
    """Each entry names the deciding documentation and who follows it."""
    known = diff.load_known()
    assert known
    assert len({k.id for k in known}) == len(known)
    for k in known:
        assert k.when, k.id
        assert k.verdict in ("peer-bug", "kubeiam-choice"), k.id
        assert "Guide" in k.documentation or "Reference" in k.documentation, k.id


def test_classifier_rejects_unexplained_disagreement() -> None:
    """A disagreement without a listed feature is unlisted (the gate can fail)."""
    known = diff.load_known()
    case: diff.Case = {
        "identityPolicies": [],
        "request": {
            "principal": f"arn:aws:iam::{diff.A}:user/alice",
            "action": "s3:GetObject",
            "resource": "arn:aws:s3:::b/k",
        },
    }
    assert diff.classify(case, "Allowed", "ImplicitlyDenied", known) is None
    root = {
        **case,
        "request": {**case["request"], "principal": f"arn:aws:iam::{diff.A}:root"},
    }
    assert diff.classify(root, "Allowed", "ImplicitlyDenied", known) == (
        "root-user-full-access"
    )
    assert diff.classify(root, "ExplicitlyDenied", "Allowed", known) is None


def test_minimize_keeps_both_decisions() -> None:
    """Delta-minimisation shrinks a case while both decisions stay the same."""
    if not diff.peer_available():
        diff.install_peer()
    noise = {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}
    case: diff.Case = {
        "identityPolicies": [
            {"Version": diff.V, "Statement": [noise, noise]},
            {"Version": diff.V, "Statement": [noise]},
        ],
        "request": {
            "principal": f"arn:aws:iam::{diff.A}:root",
            "action": "s3:GetObject",
            "resource": "arn:aws:s3:::b/k",
            "resourceAccount": diff.A,
            "context": {"aws:SourceIp": "10.0.0.1"},
        },
    }
    before = diff.decide_both([case])[0]
    assert before == ("Allowed", "ImplicitlyDenied")
    small = diff.minimize(case, decide=diff.decide_both)
    assert diff.decide_both([small])[0] == before
    assert "identityPolicies" not in small or len(
        json.dumps(small["identityPolicies"])
    ) < len(json.dumps(case["identityPolicies"]))
    assert "context" not in small["request"]


def test_report_counts_by_group(report: diff.Report) -> None:
    """The summary gives counts per listed divergence."""
    text = report.summary()
    for kid, n in Counter(report.listed).items():
        assert f"{kid}: {n}" in text
