"""Shared test set-up: no test sees the developer's AWS environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Fixture modules, one per concern, each owned by the package it serves.
pytest_plugins = [
    "tests.fixtures.sts",
    "tests.fixtures.apiserver",
    "tests.fixtures.webhook",
    "tests.fixtures.faultsts",
    "tests.fixtures.kubeapi",
    "tests.fixtures.controlplane",
]


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test can see the developer's AWS environment or files."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("KUBEIAM_CACHE_DIR", str(tmp_path / "kubeiam-cache"))
