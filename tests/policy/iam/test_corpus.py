"""The IAM corpus (tests/data/iam_cases): engine and `kubeiam policy simulate`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from policy.iam.evaluator import evaluate
from policy.iam.suite import parse_case

CASE_DIR = Path(__file__).resolve().parents[2] / "data" / "iam_cases"
ROOT = Path(__file__).resolve().parents[3]


def _load() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in sorted(CASE_DIR.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8")):
            cases.append({**case, "_file": path.name})
    return cases


CASES = _load()
IDS = [c["id"] for c in CASES]


def _strip(case: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in case.items() if k != "_file"}


class TestCorpusShape:
    """The corpus itself: size, ids, citations and coverage."""

    def test_size_and_unique_ids(self) -> None:
        """At least 150 cases, ids unique across files."""
        assert len(CASES) >= 150
        assert len(set(IDS)) == len(IDS)

    def test_every_case_cites_a_rule_and_expects(self) -> None:
        """Every case names the rule it pins and a SPEC decision."""
        for case in CASES:
            assert case.get("rule"), case["id"]
            assert case["expect"] in (
                "Allowed",
                "ImplicitlyDenied",
                "ExplicitlyDenied",
            ), case["id"]

    def test_covers_every_operator_family_present_and_missing(self) -> None:
        """Each operator family appears with the key present and with it missing."""
        seen: dict[str, set[bool]] = {}
        for case in CASES:
            ctx = {k.lower() for k in (case["request"].get("context") or {})}
            for family in (
                "String",
                "Numeric",
                "Date",
                "Bool",
                "Binary",
                "IpAddress",
                "Arn",
                "Null",
            ):
                for doc in _policies(case):
                    for st in _statements(doc):
                        for op, block in (st.get("Condition") or {}).items():
                            base = op.split(":")[-1]
                            if base.startswith(family) or (
                                family == "IpAddress" and "IpAddress" in base
                            ):
                                for key in block:
                                    seen.setdefault(family, set()).add(
                                        key.lower() in ctx
                                    )
        for family in (
            "String",
            "Numeric",
            "Date",
            "Bool",
            "Binary",
            "IpAddress",
            "Arn",
            "Null",
        ):
            assert seen.get(family) == {True, False}, family

    def test_covers_every_policy_type(self) -> None:
        """Identity, resource, boundary, session, SCP and RCP policies all appear."""
        keys = {k for c in CASES for k in c}
        assert {
            "identityPolicies",
            "resourcePolicy",
            "permissionBoundaries",
            "sessionPolicy",
            "scps",
            "rcps",
        } <= keys
        assert any(c["request"].get("resourceAccount") for c in CASES)

    def test_every_decision_occurs(self) -> None:
        """All three decisions are expected somewhere."""
        assert {c["expect"] for c in CASES} == {
            "Allowed",
            "ImplicitlyDenied",
            "ExplicitlyDenied",
        }


def _policies(case: Mapping[str, Any]) -> list[Any]:
    out: list[Any] = []
    for key in ("identityPolicies", "permissionBoundaries", "scps", "rcps"):
        for item in case.get(key) or []:
            if isinstance(item, Mapping) and "policies" in item:
                out.extend(item["policies"])
            elif isinstance(item, Mapping) and "policy" in item:
                out.append(item["policy"])
            else:
                out.append(item)
    for key in ("resourcePolicy", "sessionPolicy"):
        if case.get(key) is not None:
            out.append(case[key])
    return out


def _statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    st = doc["Statement"]
    return st if isinstance(st, list) else [st]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_engine_decides_case(case: dict[str, Any]) -> None:
    """The engine reaches the case's expected decision."""
    parsed = parse_case(_strip(case))
    result = evaluate(parsed.policy_set, parsed.request)
    assert result.decision.value == case["expect"], (
        case["rule"],
        result.trace.to_json(),
    )


@pytest.fixture(scope="module")
def cli_decisions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run every case through `kubeiam policy simulate` once, as a batch."""
    path = tmp_path_factory.mktemp("corpus") / "cases.json"
    path.write_text(json.dumps([_strip(c) for c in CASES]), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "kubeiam", "policy", "simulate", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all(set(line) == {"id", "decision", "explain"} for line in lines)
    return {line["id"]: line["decision"] for line in lines}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cli_simulate_decides_case(
    case: dict[str, Any], cli_decisions: dict[str, str]
) -> None:
    """`kubeiam policy simulate` prints the expected decision for the case."""
    assert cli_decisions[case["id"]] == case["expect"]
