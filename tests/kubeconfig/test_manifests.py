"""manifests/: offline schema validation and the wiring between the files."""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from authenticator.mapping import (
    parse_aws_auth,
    parse_identity_mappings,
    validate_aws_auth,
)
from webhook.settings import parse_settings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
DATA = ROOT / "tests" / "data" / "kubeconfig"
# The Kubernetes version whose OpenAPI schemas are used (kubernetes-validate ships
# them; the kubectl the tests run is 1.33).
K8S_VERSION = "1.33.0"
# Documents that are not Kubernetes API objects, each checked by its own schema.
NOT_API_OBJECTS = {
    "kind.x-k8s.io/v1alpha4",
    "apiserver.config.k8s.io/v1",
    "iamauthenticator.k8s.aws/v1alpha1",
}
YAML_FILES = sorted(MANIFESTS.glob("*.yaml"))
ALL_FILES = sorted(p for p in MANIFESTS.iterdir() if p.is_file())


def _docs(path: Path) -> list[dict[str, Any]]:
    """A fresh copy of every document in one file (tests may modify it)."""
    return copy.deepcopy(_parsed(path))


@functools.cache
def _parsed(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert all(isinstance(d, dict) for d in docs), path
    return docs


def _all_docs() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, d) for p in YAML_FILES for d in _docs(p)]


def _one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d
        for _, d in _all_docs()
        if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


API_OBJECTS = [
    (f"{f}:{d['kind']}/{d.get('metadata', {}).get('name')}", d)
    for f, d in _all_docs()
    if d.get("apiVersion") not in NOT_API_OBJECTS
]


class TestEveryFile:
    """Conventions every file in manifests/ follows."""

    def test_the_expected_files_exist(self) -> None:
        """One file per concern, all present."""
        names = {p.name for p in ALL_FILES}
        assert {
            "kind-cluster.yaml",
            "authorization-config.yaml",
            "rbac.yaml",
            "daemonset.yaml",
            "server-configmap.yaml",
            "crd-iamidentitymapping.yaml",
            "iamidentitymapping-examples.yaml",
            "aws-auth-configmap.yaml",
            "Containerfile",
            "kind-up.sh",
        } <= names

    @pytest.mark.parametrize("path", ALL_FILES, ids=[p.name for p in ALL_FILES])
    def test_starts_with_a_comment_on_what_to_edit(self, path: Path) -> None:
        """Each file opens with a comment block that says what to edit."""
        lines = path.read_text().splitlines()
        if lines[0].startswith("#!"):
            lines = lines[1:]
        header = []
        for line in lines:
            if not line.startswith("#"):
                break
            header.append(line)
        assert header, path
        assert "Edit" in "\n".join(header), path


class TestKubernetesSchemas:
    """Every Kubernetes object validates offline against the API's OpenAPI schemas."""

    @pytest.mark.parametrize(
        ("ident", "doc"), API_OBJECTS, ids=[i for i, _ in API_OBJECTS]
    )
    def test_validates_strictly(self, ident: str, doc: dict[str, Any]) -> None:
        """kubernetes-validate, strict (unknown fields fail), Kubernetes 1.33."""
        assert kubernetes_validate.validate(doc, K8S_VERSION, strict=True) == "1.33"

    def test_strict_mode_catches_a_typo(self) -> None:
        """The validator is really strict: a misspelt field fails."""
        doc = json.loads(json.dumps(_one("DaemonSet")))
        doc["spec"]["template"]["spec"]["hostNetwrk"] = True
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


class TestCRD:
    """The IAMIdentityMapping CRD and its examples."""

    @pytest.fixture(scope="class")
    def schema(self) -> dict[str, Any]:
        """The CRD's openAPIV3Schema."""
        crd = _one("CustomResourceDefinition")
        (version,) = crd["spec"]["versions"]
        return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]

    def test_shape(self) -> None:
        """Group, version, kind, cluster scope, status subresource: as the reference."""
        crd = _one("CustomResourceDefinition")
        spec = crd["spec"]
        assert crd["metadata"]["name"] == "iamidentitymappings.iamauthenticator.k8s.aws"
        assert spec["group"] == "iamauthenticator.k8s.aws"
        assert spec["scope"] == "Cluster"
        assert spec["names"]["kind"] == "IAMIdentityMapping"
        (version,) = spec["versions"]
        assert version["name"] == "v1alpha1"
        assert version["subresources"] == {"status": {}}
        spec_schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        assert spec_schema["required"] == ["arn", "username"]
        assert spec_schema["properties"]["groups"]["type"] == "array"

    def test_examples_validate(self, schema: dict[str, Any]) -> None:
        """Every example object validates against the CRD's own schema."""
        examples = _docs(MANIFESTS / "iamidentitymapping-examples.yaml")
        assert len(examples) >= 2
        for doc in examples:
            assert doc["apiVersion"] == "iamauthenticator.k8s.aws/v1alpha1"
            assert doc["kind"] == "IAMIdentityMapping"
            assert "namespace" not in doc["metadata"]  # cluster-scoped
            jsonschema.Draft7Validator(schema).validate(doc)

    @pytest.mark.parametrize(
        "spec",
        [
            {"arn": "arn:aws:iam::111122223333:role/x"},
            {"username": "u"},
            {"arn": "not-an-arn", "username": "u"},
            {"arn": "arn:aws:s3:::bucket", "username": "u"},
            {"arn": "arn:aws:sts::111122223333:assumed-role/r/s", "username": "u"},
            {"arn": "arn:aws:iam::111122223333:role/x", "username": ""},
            {
                "arn": "arn:aws:iam::111122223333:role/x",
                "username": "u",
                "groups": [""],
            },
            {"arn": "arn:aws:iam::111122223333:role/x", "username": "u", "groups": "g"},
        ],
    )
    def test_schema_rejects(
        self, schema: dict[str, Any], spec: dict[str, object]
    ) -> None:
        """Missing fields, non-IAM ARNs, empty names and non-list groups are refused."""
        doc = {"apiVersion": "x", "kind": "IAMIdentityMapping", "spec": spec}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft7Validator(schema).validate(doc)

    def test_patterns_are_re2_safe(self, schema: dict[str, Any]) -> None:
        """CRD patterns avoid lookarounds/backreferences (the API server uses RE2)."""
        pattern = schema["properties"]["spec"]["properties"]["arn"]["pattern"]
        assert not re.search(r"\(\?[=!<]|\\[1-9]", pattern)


class TestKind:
    """manifests/kind-cluster.yaml against the fields kind documents."""

    @pytest.fixture(scope="class")
    def cluster(self) -> dict[str, Any]:
        """The kind Cluster document."""
        (doc,) = _docs(MANIFESTS / "kind-cluster.yaml")
        return doc

    @pytest.fixture(scope="class")
    def patch(self, cluster: dict[str, Any]) -> dict[str, Any]:
        """The control plane's ClusterConfiguration patch, parsed."""
        (node,) = cluster["nodes"]
        (text,) = node["kubeadmConfigPatches"]
        doc = yaml.safe_load(text)
        assert doc["kind"] == "ClusterConfiguration"
        return doc  # type: ignore[no-any-return]

    def test_validates_against_kinds_fields(self, cluster: dict[str, Any]) -> None:
        """The config uses only fields kind's v1alpha4 Cluster type has."""
        schema = json.loads((DATA / "kind-cluster-v1alpha4.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.Draft202012Validator(schema).validate(cluster)

    def test_schema_rejects_unknown_fields(self) -> None:
        """The kind schema is strict: a misspelt node field fails."""
        schema = json.loads((DATA / "kind-cluster-v1alpha4.schema.json").read_text())
        bad: dict[str, object] = {
            "kind": "Cluster",
            "apiVersion": "kind.x-k8s.io/v1alpha4",
        }
        bad["nodes"] = [{"role": "control-plane", "extraMount": []}]
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(schema).validate(bad)

    def test_kubeadm_patch_fields(self, patch: dict[str, Any]) -> None:
        """The patch uses kubeadm ClusterConfiguration fields; flag values are text."""
        volume = {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "hostPath", "mountPath"],
            "properties": {
                "name": {"type": "string"},
                "hostPath": {"type": "string", "pattern": "^/"},
                "mountPath": {"type": "string", "pattern": "^/"},
                "readOnly": {"type": "boolean"},
                "pathType": {
                    "enum": [
                        "",
                        "DirectoryOrCreate",
                        "Directory",
                        "FileOrCreate",
                        "File",
                    ]
                },
            },
        }
        schema = {
            "type": "object",
            "additionalProperties": False,
            "required": ["kind", "apiServer"],
            "properties": {
                "kind": {"const": "ClusterConfiguration"},
                "apiServer": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        # map[string]string in kubeadm v1beta3: an unquoted `true`
                        # or number would fail kubeadm's strict decoding.
                        "extraArgs": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "extraVolumes": {"type": "array", "items": volume},
                    },
                },
            },
        }
        jsonschema.Draft202012Validator(schema).validate(patch)

    def test_webhook_flags(self, patch: dict[str, Any]) -> None:
        """The API server gets the webhook file, v1, and the authorization config."""
        args = patch["apiServer"]["extraArgs"]
        assert args["authentication-token-webhook-version"] == "v1"
        assert args["authentication-token-webhook-config-file"].endswith(
            "/webhook.kubeconfig"
        )
        assert args["authorization-config"].endswith("/authorization-config.yaml")
        # --authorization-config excludes the legacy authorization flags.
        assert not any(
            k.startswith(("authorization-mode", "authorization-webhook")) for k in args
        )

    def test_files_reach_the_api_server(
        self, cluster: dict[str, Any], patch: dict[str, Any]
    ) -> None:
        """Each file flag is under an extraVolume whose hostPath is an extraMount."""
        (node,) = cluster["nodes"]
        assert node["role"] == "control-plane"
        mounts = {m["containerPath"]: m for m in node["extraMounts"]}
        volumes = patch["apiServer"]["extraVolumes"]
        for volume in volumes:
            assert volume["hostPath"] in mounts
            assert volume["readOnly"] is True
        args = patch["apiServer"]["extraArgs"]
        authz = yaml.safe_load((MANIFESTS / "authorization-config.yaml").read_text())
        webhook = next(a for a in authz["authorizers"] if a["type"] == "Webhook")
        files = [
            args["authentication-token-webhook-config-file"],
            args["authorization-config"],
            webhook["webhook"]["connectionInfo"]["kubeConfigFile"],
        ]
        for path in files:
            assert any(path.startswith(v["mountPath"] + "/") for v in volumes), path

    def test_kind_up_fills_the_mounted_directory(self, cluster: dict[str, Any]) -> None:
        """kind-up.sh writes each file the API server reads into the hostPath."""
        (node,) = cluster["nodes"]
        (mount,) = node["extraMounts"]
        script = (MANIFESTS / "kind-up.sh").read_text()
        for name in (
            "webhook.kubeconfig",
            "authorize.kubeconfig",
            "authorization-config.yaml",
        ):
            assert name in script
        assert '"$STATE/control-plane' in script
        assert mount["hostPath"] == ".kubeiam/control-plane"
        assert "ca.key" not in script.replace("never the CA key", "")


class TestAuthorizationConfig:
    """manifests/authorization-config.yaml."""

    @pytest.fixture(scope="class")
    def config(self) -> dict[str, Any]:
        """The AuthorizationConfiguration document."""
        (doc,) = _docs(MANIFESTS / "authorization-config.yaml")
        return doc

    def test_validates(self, config: dict[str, Any]) -> None:
        """The document matches AuthorizationConfiguration's fields and rules."""
        schema = json.loads((DATA / "authorization-config-v1.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.Draft202012Validator(schema).validate(config)

    def test_kubeiam_before_rbac(self, config: dict[str, Any]) -> None:
        """Node, then the kubeiam webhook, then RBAC: it can deny before RBAC."""
        order = [a["type"] for a in config["authorizers"]]
        assert order == ["Node", "Webhook", "RBAC"]
        webhook = config["authorizers"][1]["webhook"]
        timeout = re.fullmatch(r"(\d+)s", webhook["timeout"])
        assert timeout is not None
        assert int(timeout.group(1)) <= 30
        assert webhook["subjectAccessReviewVersion"] == "v1"

    def test_break_glass_admins_skip_the_webhook(self, config: dict[str, Any]) -> None:
        """system:masters and system: users never depend on the webhook."""
        conditions = [
            c["expression"]
            for c in config["authorizers"][1]["webhook"]["matchConditions"]
        ]
        assert any("system:masters" in c for c in conditions)
        assert any("startsWith('system:')" in c for c in conditions)


class TestWebhookWiring:
    """DaemonSet, RBAC, ConfigMaps: the parts fit together."""

    def test_daemonset_runs_on_control_plane_host_network(self) -> None:
        """hostNetwork on control-plane nodes, tolerating the taint, non-root."""
        spec = _one("DaemonSet")["spec"]["template"]["spec"]
        assert spec["hostNetwork"] is True
        assert spec["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
        assert {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                "effect": "NoSchedule"} in spec["tolerations"]  # fmt: skip
        assert spec["securityContext"]["runAsNonRoot"] is True
        (container,) = spec["containers"]
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert container["ports"][0]["containerPort"] == 21362

    def test_daemonset_references_exist(self) -> None:
        """The DaemonSet's ServiceAccount and ConfigMap exist; the config path fits."""
        spec = _one("DaemonSet")["spec"]["template"]["spec"]
        _one("ServiceAccount", spec["serviceAccountName"])
        volumes = {v["name"]: v for v in spec["volumes"]}
        configmap = _one("ConfigMap", volumes["config"]["configMap"]["name"])
        (container,) = spec["containers"]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
        config_path = container["args"][container["args"].index("--config") + 1]
        assert config_path == f"{mount['mountPath']}/config.yaml"
        assert "config.yaml" in configmap["data"]

    def test_server_config_parses_and_listens_where_the_api_server_calls(self) -> None:
        """The ConfigMap's config.yaml is a valid server config on 127.0.0.1:21362."""
        data = _one("ConfigMap", "kubeiam-config")["data"]["config.yaml"]
        settings = parse_settings(yaml.safe_load(data), where="server-configmap.yaml")
        assert settings.server.address == "127.0.0.1"
        assert settings.server.port == 21362
        tls_mount = next(
            m
            for m in _one("DaemonSet")["spec"]["template"]["spec"]["containers"][0][
                "volumeMounts"
            ]
            if m["name"] == "tls"
        )
        doc = yaml.safe_load(data)["server"]
        for key in ("certFile", "keyFile", "clientCAFile"):
            assert doc[key].startswith(tls_mount["mountPath"] + "/")

    def test_crd_is_granted_by_a_cluster_role_binding(self) -> None:
        """IAMIdentityMappings are granted by a ClusterRole + ClusterRoleBinding."""
        docs = [d for _, d in _all_docs()]
        granting = [
            d
            for d in docs
            if d["kind"] in ("Role", "ClusterRole")
            and any("iamidentitymappings" in r.get("resources", []) for r in d["rules"])
        ]
        assert [d["kind"] for d in granting] == ["ClusterRole"]
        name = granting[0]["metadata"]["name"]
        bindings = [d for d in docs if d.get("roleRef", {}).get("name") == name]
        assert [b["kind"] for b in bindings] == ["ClusterRoleBinding"]
        assert bindings[0]["subjects"] == [
            {"kind": "ServiceAccount", "name": "kubeiam", "namespace": "kube-system"}
        ]

    def test_aws_auth_read_access_is_narrow(self) -> None:
        """ConfigMap access is a kube-system Role limited to aws-auth, read-only."""
        role = _one("Role", "kubeiam-aws-auth")
        assert role["metadata"]["namespace"] == "kube-system"
        (rule,) = role["rules"]
        assert rule["resources"] == ["configmaps"]
        assert rule["resourceNames"] == ["aws-auth"]
        assert sorted(rule["verbs"]) == ["get", "list", "watch"]

    def test_aws_auth_example(self) -> None:
        """aws-auth's data values are YAML strings; account IDs stay quoted text."""
        cm = _one("ConfigMap", "aws-auth")
        assert cm["metadata"]["namespace"] == "kube-system"
        for key in ("mapRoles", "mapUsers", "mapAccounts"):
            assert isinstance(cm["data"][key], str)
            assert isinstance(yaml.safe_load(cm["data"][key]), list)
        accounts = yaml.safe_load(cm["data"]["mapAccounts"])
        assert all(isinstance(a, str) and re.fullmatch(r"\d{12}", a) for a in accounts)
        # Quoting matters: the leading zero survives only as text.
        assert '"044455556666"' in cm["data"]["mapAccounts"]
        for entry in yaml.safe_load(cm["data"]["mapRoles"]):
            assert set(entry) == {"rolearn", "username", "groups"}
            assert "system:masters" not in entry["groups"]

    def test_examples_parse_with_kubeiams_own_parsers(self) -> None:
        """The aws-auth and CRD examples load with the webhook's mapping parsers."""
        data = _one("ConfigMap", "aws-auth")["data"]
        assert validate_aws_auth(data, where="kube-system/aws-auth") == []
        aws_auth = parse_aws_auth(data, where="kube-system/aws-auth")
        assert (len(aws_auth.roles), len(aws_auth.users)) == (2, 1)
        assert aws_auth.accounts == ("044455556666",)
        config = yaml.safe_load(
            _one("ConfigMap", "kubeiam-config")["data"]["config.yaml"]
        )
        crd = parse_identity_mappings(
            _docs(MANIFESTS / "iamidentitymapping-examples.yaml"),
            where="iamidentitymapping-examples.yaml",
            reserved_prefixes=config["reservedPrefixes"]["crd"],
        )
        assert (len(crd.roles), len(crd.users)) == (1, 1)


class TestImageAndScript:
    """The Containerfile and kind-up.sh (neither can run here: no Docker)."""

    def test_containerfile(self) -> None:
        """python slim, pip install ., numeric non-root USER, kubeiam entrypoint."""
        text = (MANIFESTS / "Containerfile").read_text()
        froms = re.findall(r"^FROM (\S+)", text, re.M)
        assert froms
        assert all(re.fullmatch(r"python:3\.1[1-9]-slim", f) for f in froms)
        assert re.search(r"pip install --no-cache-dir \.$", text, re.M)
        (user,) = re.findall(r"^USER (\S+)", text, re.M)
        assert user.split(":")[0].isdigit()
        assert user.split(":")[0] != "0"
        daemonset = _one("DaemonSet")["spec"]["template"]["spec"]
        assert daemonset["securityContext"]["runAsUser"] == int(user.split(":")[0])
        assert 'ENTRYPOINT ["kubeiam"]' in text

    def test_kind_up_is_valid_bash_and_names_real_files(self) -> None:
        """kind-up.sh parses with bash -n and every manifests/ path it names exists."""
        script = MANIFESTS / "kind-up.sh"
        subprocess.run(["bash", "-n", str(script)], check=True, timeout=10)
        names = set(re.findall(r"manifests/([\w.-]+)", script.read_text()))
        assert names
        for name in names:
            assert (MANIFESTS / name).is_file(), name
        assert script.stat().st_mode & 0o111


DOCS = [
    ROOT / "docs" / n for n in ("getting-started-kind.md", "eks.md", "migrating.md")
]


class TestDocs:
    """The kind, EKS and migration guides point at things that exist."""

    @pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
    def test_referenced_files_and_commands_exist(self, doc: Path) -> None:
        """Every manifests/ path, docs link and `kubeiam SUB` named is real."""
        from kubeiam.cli import COMMANDS

        text = doc.read_text()
        for name in set(re.findall(r"manifests/([\w.-]+\w)", text)):
            assert (MANIFESTS / name).is_file(), (doc.name, name)
        for link in set(re.findall(r"\]\(([\w.-]+\.md)(?:#[\w-]+)?\)", text)):
            assert (doc.parent / link).is_file(), (doc.name, link)
        for sub in set(re.findall(r"`kubeiam ([a-z-]+)", text)):
            assert sub in COMMANDS, (doc.name, sub)


class TestServerAuthorizationSection:
    """The shipped server config turns on /authorize with loadable RBAC objects."""

    def test_authorization_section_and_rbac_file_load(self, tmp_path: Path) -> None:
        """authorization parses, and rbacPaths names the ConfigMap's rbac.yaml."""
        from policy.rbac.load import load_rbac_paths
        from webhook.authorize import AuthorizationSettings

        data = _one("ConfigMap", "kubeiam-config")["data"]
        config = yaml.safe_load(data["config.yaml"])
        auth = AuthorizationSettings.parse(config["authorization"])
        assert [str(p) for p in auth.rbac_paths] == ["/etc/kubeiam/config/rbac.yaml"]
        assert [r.name for r in auth.deny_rules] == ["no-secrets-for-contractors"]
        rbac_file = tmp_path / "rbac.yaml"
        rbac_file.write_text(data["rbac.yaml"], encoding="utf-8")
        objects = load_rbac_paths([rbac_file])
        assert len(objects.cluster_roles) == 1
        assert len(objects.bindings) == 1
