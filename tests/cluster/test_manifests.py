"""``manifests/`` against the real API server.

Server-side dry run, real creation, and ``kubectl auth can-i`` for the webhook.

The fixture already applied ``rbac.yaml`` and ``crd-iamidentitymapping.yaml`` for
real (and the webhook reads aws-auth and the CRD with that ServiceAccount).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.fixtures.controlplane import MANIFESTS, ControlPlane
from tests.fixtures.sts import unique_name

SA = "system:serviceaccount:kube-system:kubeiam"
# Files that are not API objects: kind's cluster config and the API server's
# --authorization-config file.
NOT_API_OBJECTS = {"kind-cluster.yaml", "authorization-config.yaml"}
API_MANIFESTS = sorted(
    p.name for p in MANIFESTS.glob("*.yaml") if p.name not in NOT_API_OBJECTS
)


def test_every_api_manifest_is_listed() -> None:
    """Every manifest is dry-run below or known not to be an API object."""
    assert {"rbac.yaml", "daemonset.yaml", "crd-iamidentitymapping.yaml"} <= set(
        API_MANIFESTS
    )
    for name in NOT_API_OBJECTS:
        kinds = {d["kind"] for d in yaml.safe_load_all((MANIFESTS / name).read_text())}
        assert kinds <= {"Cluster", "AuthorizationConfiguration"}, (name, kinds)


@pytest.mark.parametrize("name", API_MANIFESTS)
def test_dry_run_server(control_plane: ControlPlane, name: str) -> None:
    """``kubectl apply --dry-run=server`` accepts each manifest (admission, schema)."""
    out = control_plane.kubectl(
        "apply", "--dry-run=server", "-f", str(MANIFESTS / name)
    )
    assert out.returncode == 0, out.stderr
    assert "(server dry run)" in out.stdout


def test_create_for_real(control_plane: ControlPlane) -> None:
    """The server ConfigMap and the DaemonSet are created; the aws-auth example too."""
    for name in ("server-configmap.yaml", "daemonset.yaml"):
        control_plane.admin("apply", "-f", str(MANIFESTS / name))
    ds = json.loads(
        control_plane.admin(
            "-n", "kube-system", "get", "daemonset", "kubeiam", "-o", "json"
        )
    )
    spec = ds["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "kubeiam"
    assert spec["hostNetwork"] is True
    # The example aws-auth in a namespace of its own (kube-system/aws-auth is the
    # one the running webhook watches).
    ns = unique_name("example")
    control_plane.admin("create", "namespace", ns)
    doc = yaml.safe_load((MANIFESTS / "aws-auth-configmap.yaml").read_text())
    doc["metadata"]["namespace"] = ns
    control_plane.apply(doc)
    got = json.loads(
        control_plane.admin("-n", ns, "get", "configmap", "aws-auth", "-o", "json")
    )
    assert "mapRoles" in got["data"] and "mapAccounts" in got["data"]
    for name in ("crd-iamidentitymapping.yaml", "rbac.yaml"):
        out = control_plane.admin("apply", "-f", str(MANIFESTS / name))
        assert "unchanged" in out or "configured" in out


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        (["get", "configmaps/aws-auth", "-n", "kube-system"], "yes"),
        (["list", "configmaps/aws-auth", "-n", "kube-system"], "yes"),
        (["watch", "configmaps/aws-auth", "-n", "kube-system"], "yes"),
        (["get", "iamidentitymappings.iamauthenticator.k8s.aws"], "yes"),
        (["watch", "iamidentitymappings.iamauthenticator.k8s.aws"], "yes"),
        (
            [
                "patch",
                "iamidentitymappings.iamauthenticator.k8s.aws",
                "--subresource=status",
            ],
            "yes",
        ),
        (["create", "events", "-n", "kube-system"], "yes"),
        # ... and nothing more.
        (["get", "configmaps/kubeiam-config", "-n", "kube-system"], "no"),
        (["list", "configmaps", "-n", "kube-system"], "no"),
        (["update", "configmaps/aws-auth", "-n", "kube-system"], "no"),
        (["patch", "configmaps/aws-auth", "-n", "kube-system"], "no"),
        (["delete", "configmaps/aws-auth", "-n", "kube-system"], "no"),
        (["get", "configmaps/aws-auth", "-n", "default"], "no"),
        (["get", "secrets", "-n", "kube-system"], "no"),
        (["create", "iamidentitymappings.iamauthenticator.k8s.aws"], "no"),
        (["delete", "iamidentitymappings.iamauthenticator.k8s.aws"], "no"),
        (["update", "iamidentitymappings.iamauthenticator.k8s.aws"], "no"),
        (["get", "pods", "-A"], "no"),
        (["create", "tokenreviews.authentication.k8s.io"], "no"),
        (["impersonate", "users"], "no"),
        (["create", "serviceaccounts/token", "-n", "kube-system"], "no"),
    ],
)
def test_webhook_serviceaccount_rights(
    control_plane: ControlPlane, question: list[str], answer: str
) -> None:
    """``kubectl auth can-i --as`` its ServiceAccount: exactly what it needs."""
    out = control_plane.kubectl("auth", "can-i", *question, "--as", SA)
    assert out.stdout.split()[:1] == [answer], (question, out.stdout, out.stderr)


def test_webhook_serviceaccount_reads_with_its_token(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """The token the webhook uses reads aws-auth and is refused elsewhere (real 403)."""
    config = json.loads(control_plane.webhook_config.read_text())
    kubeconfig = Path(config["kubeconfig"])
    ok = control_plane.kubectl(
        "-n", "kube-system", "get", "configmap", "aws-auth", kubeconfig=kubeconfig
    )
    assert ok.returncode == 0, ok.stderr
    no = control_plane.kubectl(
        "-n", "kube-system", "get", "secrets", kubeconfig=kubeconfig
    )
    assert no.returncode != 0
    assert "Forbidden" in no.stderr
