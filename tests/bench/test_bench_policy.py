"""The IAM peer row of ``make bench``: both runners decide the same corpus."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bench import bench_policy
from tests.policy.iam import iam_differential as diff


@pytest.fixture(scope="module")
def corpus(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[dict[str, object]]]:
    raw = bench_policy._cases()
    path = tmp_path_factory.mktemp("bench") / "corpus.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path, raw


def test_kubeiam_runner_decides_the_corpus_as_expected(
    corpus: tuple[Path, list[dict[str, object]]],
) -> None:
    """Every case decided, with the corpus's expected decisions, and rates reported."""
    path, raw = corpus
    out = bench_policy.loop(str(path), 1, 2)
    assert out["cases"] == len(raw)
    expected: dict[str, int] = {}
    for case in raw:
        key = str(case["expect"])
        expected[key] = expected.get(key, 0) + 1
    assert out["decisions"] == expected
    for key in ("rates", "cpuRates"):
        rates = out[key]
        assert isinstance(rates, list) and len(rates) == 2
        assert all(r > 0 for r in rates)


def test_peer_runner_decides_every_case_like_the_batch_runner(
    corpus: tuple[Path, list[dict[str, object]]],
) -> None:
    """bench.cjs loads every case and decides as simulate.cjs does, case for case."""
    if not diff.peer_available():
        diff.install_peer()
    path, raw = corpus
    proc = subprocess.run(
        ["node", str(bench_policy.PEER_DIR / "bench.cjs"), str(path), "1", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    out = json.loads(proc.stdout)
    assert out["cases"] == len(raw)
    assert out["errors"] == 0
    batch: dict[str, int] = {}
    for decision in diff.peer_decisions(raw):
        batch[decision] = batch.get(decision, 0) + 1
    assert out["decisions"] == batch
    assert len(out["rates"]) == 1 and out["rates"][0] > 0
