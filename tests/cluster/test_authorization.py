"""Authorization through the real chain: Node, kubeiam's /authorize, then RBAC.

The fixture's API server reads ``manifests/authorization-config.yaml``; kubeiam's
``/authorize`` has one deny rule (group ``contractors`` may not read secrets) and
grants group ``kubeiam-viewers`` get/list on services; the cluster's own RBAC
objects are created here with kubectl.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from authenticator.emulator import Credentials, STSEmulator
from tests.fixtures.controlplane import DENIED_GROUP, WEBHOOK_VIEWERS, ControlPlane
from tests.fixtures.sts import unique_name

FORBIDDEN = "Forbidden"


@pytest.fixture(scope="module")
def namespaces(control_plane: ControlPlane) -> tuple[str, str]:
    """Two fresh namespaces: the team's and another one."""
    mine, other = unique_name("team"), unique_name("other")
    for ns in (mine, other):
        control_plane.admin("create", "namespace", ns)
    return mine, other


def _mapped(
    cp: ControlPlane, sts: STSEmulator, groups: list[str], tmp_path: Path
) -> tuple[Credentials, Path]:
    user = sts.create_user(unique_name("authz"))
    cp.map_identity(user.arn, unique_name("authz-user"), groups)
    kubeconfig = cp.user_kubeconfig(tmp_path / "kubeconfig")
    cp.wait_whoami(user, kubeconfig)
    return user, kubeconfig


class TestChain:
    """A mapped group's rights come from RBAC, unless kubeiam denies first."""

    def test_role_in_own_namespace_only(
        self,
        control_plane: ControlPlane,
        sts_emulator: STSEmulator,
        namespaces: tuple[str, str],
        tmp_path: Path,
    ) -> None:
        """Group bound to a Role: get pods in its namespace, not in another."""
        mine, other = namespaces
        group = unique_name("readers")
        control_plane.admin(
            "-n", mine, "create", "role", "pod-reader", "--verb=get,list",
            "--resource=pods",
        )  # fmt: skip
        control_plane.admin(
            "-n", mine, "create", "rolebinding", "pod-readers",
            "--role=pod-reader", f"--group={group}",
        )  # fmt: skip
        user, kubeconfig = _mapped(control_plane, sts_emulator, [group], tmp_path)
        ok = control_plane.as_identity(user, kubeconfig, "-n", mine, "get", "pods")
        assert ok.returncode == 0, ok.stderr
        no = control_plane.as_identity(user, kubeconfig, "-n", other, "get", "pods")
        assert no.returncode != 0
        assert FORBIDDEN in no.stderr

    def test_deny_rule_wins_over_rbac(
        self,
        control_plane: ControlPlane,
        sts_emulator: STSEmulator,
        namespaces: tuple[str, str],
        tmp_path: Path,
    ) -> None:
        """Contractors: RBAC allows secrets and configmaps; kubeiam denies secrets."""
        mine, _ = namespaces
        control_plane.admin(
            "-n", mine, "create", "role", "contractor-reader", "--verb=get,list",
            "--resource=secrets,configmaps",
        )  # fmt: skip
        control_plane.admin(
            "-n", mine, "create", "rolebinding", "contractor-readers",
            "--role=contractor-reader", f"--group={DENIED_GROUP}",
        )  # fmt: skip
        user, kubeconfig = _mapped(
            control_plane, sts_emulator, [DENIED_GROUP], tmp_path
        )
        cms = control_plane.as_identity(
            user, kubeconfig, "-n", mine, "get", "configmaps"
        )
        assert cms.returncode == 0, cms.stderr
        secrets = control_plane.as_identity(
            user, kubeconfig, "-n", mine, "get", "secrets"
        )
        assert secrets.returncode != 0
        assert FORBIDDEN in secrets.stderr
        assert "no-secrets-for-contractors" in secrets.stderr
        # Asked through impersonation, the chain answers the same.
        sar = control_plane.kubectl(
            "auth", "can-i", "get", "secrets", "-n", mine,
            "--as", "someone", f"--as-group={DENIED_GROUP}",
        )  # fmt: skip
        assert sar.stdout.split()[0] == "no", sar.stderr
        assert "no-secrets-for-contractors" in sar.stdout

    def test_no_opinion_falls_through_and_webhook_allows(
        self,
        control_plane: ControlPlane,
        sts_emulator: STSEmulator,
        namespaces: tuple[str, str],
        tmp_path: Path,
    ) -> None:
        """kubeiam has no opinion on pods (RBAC says no) but allows services."""
        mine, _ = namespaces
        user, kubeconfig = _mapped(
            control_plane, sts_emulator, [WEBHOOK_VIEWERS], tmp_path
        )
        services = control_plane.as_identity(
            user, kubeconfig, "-n", mine, "get", "services"
        )
        assert services.returncode == 0, services.stderr
        pods = control_plane.as_identity(user, kubeconfig, "-n", mine, "get", "pods")
        assert pods.returncode != 0
        assert FORBIDDEN in pods.stderr
        # Nobody in the cluster's RBAC grants services to this group.
        bindings = control_plane.admin(
            "get", "clusterrolebindings,rolebindings", "-A", "-o", "json"
        )
        assert WEBHOOK_VIEWERS not in bindings
