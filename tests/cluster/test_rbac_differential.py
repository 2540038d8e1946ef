"""Differential RBAC: ``kubeiam policy rbac`` vs the API server's SubjectAccessReview.

A seeded generator writes Roles, ClusterRoles (some aggregated), RoleBindings and
ClusterRoleBindings into the real cluster and draws requests over them:
wildcards in verbs/groups/resources, subresources (``pods/log``, ``*/scale``,
``pods/*``), resourceNames, non-resource URLs (exact and ``/prefix/*``), Users,
Groups, ServiceAccounts (with and without a subject namespace), bindings to roles
that do not exist, the ``escalate``/``bind`` verbs, and ClusterRole
aggregation (materialised by the real kube-controller-manager). Every request is
answered by the API server (``POST .../subjectaccessreviews`` as the admin) and
by the engine from a dump of *all* RBAC objects in the cluster (bootstrap policy
included), in which the generated aggregated roles' rules are emptied so the
engine aggregates them itself. Agreement must be 100%.

Reproduce a run: ``KUBEIAM_RBAC_SEED=<seed>`` (default fixed); the case count is
``KUBEIAM_RBAC_CASES`` (default 600).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
import requests

from tests.fixtures.controlplane import KUBEIAM, ControlPlane
from tests.fixtures.sts import unique_name

SEED = int(os.environ.get("KUBEIAM_RBAC_SEED", "20261203"))
CASES = int(os.environ.get("KUBEIAM_RBAC_CASES", "600"))
RBAC_GROUP = "rbac.authorization.k8s.io"
SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"

VERBS = ["get", "list", "watch", "create", "update", "patch", "delete",
         "deletecollection", "escalate", "bind"]  # fmt: skip
API_GROUPS = ["", "apps", "example.com"]
# (group, resource, subresources a request may carry)
RESOURCES = [
    ("", "pods", ["", "log", "status", "exec"]),
    ("", "configmaps", [""]),
    ("", "secrets", [""]),
    ("", "services", ["", "status"]),
    ("apps", "deployments", ["", "scale", "status"]),
    ("example.com", "widgets", ["", "status"]),
]
RULE_RESOURCES = ["pods", "pods/log", "pods/*", "configmaps", "secrets", "services",
                  "deployments", "deployments/scale", "*/scale", "*/status", "widgets",
                  "*"]  # fmt: skip
NAMES = ["", "alpha", "beta"]
URLS = ["/healthz", "/healthz/ping", "/metrics", "/logs/kube", "/api", "/version",
        "/custom/a/b"]  # fmt: skip
RULE_URLS = ["/healthz", "/healthz/*", "/metrics", "/logs/*", "/custom/*", "*"]
URL_VERBS = ["get", "post", "put", "delete"]


class _World:
    """The generated objects and the subjects they name."""

    def __init__(self, rng: random.Random, prefix: str, namespaces: list[str]):
        self.rng = rng
        self.prefix = prefix
        self.namespaces = namespaces
        self.users = [f"{prefix}-u{i}" for i in range(5)]
        self.groups = [f"{prefix}-g{i}" for i in range(4)]
        self.sas = [(ns, f"sa{i}") for ns in namespaces for i in range(2)]
        self.objects: list[dict[str, object]] = []
        self.aggregated: list[str] = []

    def _subset(self, items: list[str], most: int) -> list[str]:
        return self.rng.sample(items, self.rng.randint(1, min(most, len(items))))

    def resource_rule(self) -> dict[str, object]:
        rng = self.rng
        rule: dict[str, object] = {
            "apiGroups": ["*"] if rng.random() < 0.15 else self._subset(API_GROUPS, 2),
            "resources": self._subset(RULE_RESOURCES, 3),
            "verbs": ["*"] if rng.random() < 0.15 else self._subset(VERBS, 3),
        }
        if rng.random() < 0.25:
            rule["resourceNames"] = self._subset(["alpha", "beta"], 1)
        return rule

    def url_rule(self) -> dict[str, object]:
        verbs = ["*"] if self.rng.random() < 0.2 else self._subset(URL_VERBS, 2)
        return {"nonResourceURLs": self._subset(RULE_URLS, 2), "verbs": verbs}

    def subject(self, namespaced: bool) -> dict[str, object]:
        kind = self.rng.choice(["User", "Group", "ServiceAccount"])
        if kind == "User":
            return {"kind": "User", "apiGroup": RBAC_GROUP,
                    "name": self.rng.choice(self.users)}  # fmt: skip
        if kind == "Group":
            return {"kind": "Group", "apiGroup": RBAC_GROUP,
                    "name": self.rng.choice(self.groups)}  # fmt: skip
        ns, name = self.rng.choice(self.sas)
        sa: dict[str, object] = {"kind": "ServiceAccount", "name": name}
        # In a RoleBinding an SA subject without a namespace means the binding's.
        if not (namespaced and self.rng.random() < 0.3):
            sa["namespace"] = ns
        return sa

    def build(self) -> None:
        rng, p = self.rng, self.prefix
        cluster_roles: list[str] = []
        for i in range(8):
            name = f"{p}-cr{i}"
            rules = [self.resource_rule() for _ in range(rng.randint(1, 3))]
            if rng.random() < 0.4:
                rules.append(self.url_rule())
            labels = {f"{p}-agg{j}": "true" for j in range(2) if rng.random() < 0.4}
            self.objects.append(
                {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole",
                 "metadata": {"name": name, "labels": labels}, "rules": rules}
            )  # fmt: skip
            cluster_roles.append(name)
        for j in range(2):
            name = f"{p}-aggregate{j}"
            self.objects.append(
                {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole",
                 "metadata": {"name": name},
                 "aggregationRule": {"clusterRoleSelectors": [
                     {"matchLabels": {f"{p}-agg{j}": "true"}}]},
                 "rules": []}
            )  # fmt: skip
            cluster_roles.append(name)
            self.aggregated.append(name)
        roles: dict[str, list[str]] = {ns: [] for ns in self.namespaces}
        for ns in self.namespaces:
            for i in range(3):
                name = f"{p}-r{i}"
                rules = [self.resource_rule() for _ in range(rng.randint(1, 3))]
                self.objects.append(
                    {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "Role",
                     "metadata": {"name": name, "namespace": ns}, "rules": rules}
                )  # fmt: skip
                roles[ns].append(name)
        for i in range(5):
            # Now and then a binding to a role that does not exist (legal; grants
            # nothing).
            role = rng.choice(cluster_roles) if rng.random() > 0.1 else f"{p}-missing"
            self.objects.append(
                {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": f"{p}-crb{i}"},
                 "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole",
                             "name": role},
                 "subjects": [self.subject(False) for _ in range(rng.randint(1, 3))]}
            )  # fmt: skip
        for ns in self.namespaces:
            for i in range(5):
                if rng.random() < 0.05:
                    ref = {"apiGroup": RBAC_GROUP, "kind": "Role",
                           "name": f"{p}-missing"}  # fmt: skip
                elif rng.random() < 0.5:
                    ref = {"apiGroup": RBAC_GROUP, "kind": "Role",
                           "name": rng.choice(roles[ns])}  # fmt: skip
                else:
                    ref = {"apiGroup": RBAC_GROUP, "kind": "ClusterRole",
                           "name": rng.choice(cluster_roles)}  # fmt: skip
                self.objects.append(
                    {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding",
                     "metadata": {"name": f"{p}-rb{i}", "namespace": ns},
                     "roleRef": ref,
                     "subjects": [self.subject(True)
                                  for _ in range(rng.randint(1, 3))]}
                )  # fmt: skip

    def request(self) -> dict[str, object]:
        rng = self.rng
        who = rng.random()
        if who < 0.3:
            ns, name = rng.choice(self.sas)
            user = f"system:serviceaccount:{ns}:{name}"
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}",
                      "system:authenticated"]  # fmt: skip
        else:
            user = rng.choice(self.users)
            groups = rng.sample(self.groups, rng.randint(0, 2))
            if rng.random() < 0.5:
                groups.append("system:authenticated")
        spec: dict[str, object] = {"user": user, "groups": groups}
        if rng.random() < 0.2:
            spec["nonResourceAttributes"] = {
                "path": rng.choice(URLS), "verb": rng.choice(URL_VERBS)
            }  # fmt: skip
            return spec
        group, resource, subresources = rng.choice(RESOURCES)
        attrs: dict[str, object] = {
            "verb": rng.choice(VERBS),
            "group": group,
            "version": "v1",
            "resource": resource,
            "subresource": rng.choice(subresources),
            "name": rng.choice(NAMES),
            "namespace": rng.choice([*self.namespaces, self.namespaces[0], ""]),
        }
        spec["resourceAttributes"] = attrs
        return spec


def _sar(
    session: requests.Session, cp: ControlPlane, spec: Mapping[str, object]
) -> bool:
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": dict(spec)}  # fmt: skip
    pki = cp.directory / "pki"
    resp = session.post(
        cp.url + SAR_PATH,
        json=body,
        timeout=30,
        # Per request: a session's verify loses to REQUESTS_CA_BUNDLE.
        verify=str(cp.ca_file),
        cert=(str(pki / "admin.crt"), str(pki / "admin.key")),
    )
    resp.raise_for_status()
    status = resp.json()["status"]
    return bool(status.get("allowed", False))


def _wait_aggregated(cp: ControlPlane, world: _World) -> None:
    """Until the controller-manager has filled every aggregated role it should."""
    expected: dict[str, int] = {}
    for name in world.aggregated:
        j = name.rsplit("aggregate", 1)[1]
        label = f"{world.prefix}-agg{j}"
        rules: list[str] = []
        for obj in world.objects:
            meta = obj["metadata"]
            assert isinstance(meta, dict)
            if obj["kind"] == "ClusterRole" and label in meta.get("labels", {}):
                for rule in obj["rules"]:  # type: ignore[attr-defined]
                    key = json.dumps(rule, sort_keys=True)
                    if key not in rules:
                        rules.append(key)
        expected[name] = len(rules)
    deadline = time.monotonic() + 60
    while True:
        got = {
            name: len(json.loads(cp.admin("get", "clusterrole", name, "-o", "json"))
                      .get("rules") or [])
            for name in world.aggregated
        }  # fmt: skip
        if got == expected:
            return
        assert time.monotonic() < deadline, f"aggregation: {got} != {expected}"
        time.sleep(0.5)


def _dump(cp: ControlPlane, world: _World, path: Path) -> Path:
    """All RBAC objects of the cluster; generated aggregated roles without rules."""
    listed = json.loads(
        cp.admin("get", "clusterroles,clusterrolebindings,roles,rolebindings",
                 "-A", "-o", "json")
    )  # fmt: skip
    for item in listed["items"]:
        item["metadata"].pop("managedFields", None)
        if (
            item["kind"] == "ClusterRole"
            and item["metadata"]["name"] in world.aggregated
        ):
            item["rules"] = []
    path.write_text(json.dumps(listed))
    return path


@pytest.fixture(scope="module")
def world(control_plane: ControlPlane) -> _World:
    """The generated objects, created in the cluster and aggregated."""
    prefix = unique_name("diff")
    namespaces = [f"{prefix}-a", f"{prefix}-b"]
    for ns in namespaces:
        control_plane.admin("create", "namespace", ns)
    w = _World(random.Random(SEED), prefix, namespaces)
    w.build()
    control_plane.apply(w.objects)
    _wait_aggregated(control_plane, w)
    return w


def test_engine_agrees_with_apiserver(
    control_plane: ControlPlane, world: _World, tmp_path: Path
) -> None:
    """>= 500 seeded cases: the engine and the API server give the same answer."""
    specs = [world.request() for _ in range(CASES)]
    session = requests.Session()
    real = [_sar(session, control_plane, spec) for spec in specs]
    requests_path = tmp_path / "requests.json"
    requests_path.write_text(json.dumps(specs))
    out = subprocess.run(
        [KUBEIAM, "policy", "rbac", "--rbac", str(_dump(control_plane, world,
         tmp_path / "rbac.json")), "--requests", str(requests_path), "-o", "json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    engine = [bool(r["allowed"]) for r in json.loads(out.stdout)]
    assert len(engine) == len(real) >= 500
    mismatches = [
        (spec, want, got)
        for spec, want, got in zip(specs, real, engine, strict=True)
        if want != got
    ]
    allowed = sum(real)
    print(
        f"RBAC differential (seed {SEED}): {len(specs)} cases, {allowed} allowed, "
        f"{len(mismatches)} mismatches"
    )
    # Both answers must be exercised, or agreement proves little.
    assert 0.05 * len(real) < allowed < 0.95 * len(real)
    assert not mismatches, json.dumps(mismatches[:10], indent=1)
