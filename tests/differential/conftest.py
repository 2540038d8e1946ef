"""Fixtures of the differential tests: both servers in the STS namespace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from authenticator.emulator import Credentials, STSEmulator
from tests.differential.harness import Server, start_go_server, start_kubeiam_server
from tests.fixtures.sts import assume_role, unique_name
from tests.fixtures.stsnamespace import STSNamespace, sts_namespace

__all__ = ["sts_namespace"]


@pytest.fixture(scope="module")
def identities(sts_emulator: STSEmulator) -> list[Credentials]:
    """An IAM user (long-term key) and a role session (with a session token)."""
    user = sts_emulator.create_user(unique_name("diff-user"))
    session = assume_role(sts_emulator, user, session_name="diff-session")
    return [user, session]


@pytest.fixture(scope="module")
def account_mapping(sts_emulator: STSEmulator) -> dict[str, object]:
    """mapAccounts of the emulator's account: every verified identity maps."""
    return {"mapAccounts": [sts_emulator.account_id]}


@pytest.fixture(scope="module")
def go_server(
    sts_namespace: STSNamespace,
    tmp_path_factory: pytest.TempPathFactory,
    account_mapping: dict[str, object],
) -> Iterator[Server]:
    """aws-iam-authenticator server with the account mapping."""
    server = start_go_server(
        sts_namespace, Path(tmp_path_factory.mktemp("go")), account_mapping
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kubeiam_server(
    sts_namespace: STSNamespace,
    tmp_path_factory: pytest.TempPathFactory,
    account_mapping: dict[str, object],
) -> Iterator[Server]:
    """kubeiam server with the same mapping (no verification cache hits: new tokens)."""
    server = start_kubeiam_server(
        sts_namespace, Path(tmp_path_factory.mktemp("kubeiam")), account_mapping
    )
    yield server
    server.stop()
