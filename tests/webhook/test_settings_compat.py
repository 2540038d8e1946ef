"""aws-iam-authenticator's server config, as `kubeiam server` and `mappings` read it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from webhook.errors import ConfigError
from webhook.settings import load_settings, parse_settings

VALIDATE = [sys.executable, "-m", "kubeiam", "mappings", "validate"]
ACCT = "111122223333"
# A reference config as its README documents it (all the keys people have).
REFERENCE = f"""\
clusterID: my-dev-cluster.example.com
defaultRole: arn:aws:iam::{ACCT}:role/KubernetesAdmin
featureGates:
  SSORoleMatch: true
server:
  port: 21363
  stateDir: STATE
  generateKubeconfig: /etc/kubernetes/aws-iam-authenticator.kubeconfig
  kubeconfigPregenerated: false
  backendMode:
  - MountedFile
  - EKSConfigMap
  - CRD
  reservedPrefixConfig:
    CRD:
      usernamePrefixReserveList: ["system:", "eks:"]
  mapRoles:
  - roleARN: arn:aws:iam::{ACCT}:role/KubernetesAdmin
    username: kubernetes-admin
    groups: [system:masters]
  mapUsers:
  - userARN: arn:aws:iam::{ACCT}:user/Alice
    username: alice
  mapAccounts:
  - "{ACCT}"
"""


def _write(tmp_path: Path, text: str, *, with_certs: bool = True) -> Path:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    if with_certs:
        (state / "cert.pem").write_text("x")
        (state / "key.pem").write_text("x")
    path = tmp_path / "aws-iam-authenticator.yaml"
    path.write_text(text.replace("STATE", str(state)))
    return path


class TestTranslation:
    """What carries over, and to what."""

    def test_reference_file_as_it_is(self, tmp_path: Path) -> None:
        """Mappings, backends, reserved prefixes, port and stateDir certificates."""
        settings = load_settings(_write(tmp_path, REFERENCE))
        assert settings.cluster_id == "my-dev-cluster.example.com"
        assert settings.server.port == 21363
        assert settings.server.cert_file == tmp_path / "state" / "cert.pem"
        assert settings.server.key_file == tmp_path / "state" / "key.pem"
        assert [s.kind for s in settings.sources] == ["configMap", "crd"]
        assert settings.sources[1].reserved_prefixes == ("system:", "eks:")
        assert settings.inline is not None
        assert settings.inline["mapAccounts"] == [ACCT]
        roles = settings.inline["mapRoles"]
        assert isinstance(roles, list)
        assert roles[0]["username"] == "kubernetes-admin"

    def test_no_certificates_in_state_dir(self, tmp_path: Path) -> None:
        """Without cert.pem/key.pem the server section has no TLS files."""
        settings = load_settings(_write(tmp_path, REFERENCE, with_certs=False))
        assert settings.server.cert_file is None

    @pytest.mark.parametrize(
        ("old", "new", "where", "hint"),
        [
            ("  - CRD\n", "  - DynamicFile\n", "server.backendMode[2]", "DynamicFile"),
            ("  - CRD\n", "  - CRD\n  - CRD\n", "server.backendMode[3]", "twice"),
            ("  - MountedFile\n  - EKSConfigMap\n",
             "  - EKSConfigMap\n  - MountedFile\n",
             "server.backendMode[1]", "must come first"),
            ("  port: 21363\n", "  master: https://x\n", "server.master",
             "server.kubeconfig"),
            ("  port: 21363\n", "  scrubbedAccounts: ['1']\n",
             "server.scrubbedAccounts", "drop the key"),
            ("  port: 21363\n", "  bogus: 1\n", "server.bogus", "unknown key"),
            ("    CRD:\n", "    Nope:\n", "server.reservedPrefixConfig.Nope",
             "unknown backend mode"),
        ],
    )  # fmt: skip
    def test_refusals_say_what_to_do(
        self, tmp_path: Path, old: str, new: str, where: str, hint: str
    ) -> None:
        """Each refusal names the whole key path and what to do instead."""
        assert old in REFERENCE
        path = _write(tmp_path, REFERENCE.replace(old, new, 1))
        with pytest.raises(
            ConfigError, match=re.escape(where) + ": .*" + re.escape(hint)
        ):
            load_settings(path)

    def test_kubeiam_format_is_untouched(self) -> None:
        """A kubeiam config (server.address/port only) is not mistaken for one."""
        settings = parse_settings({"clusterID": "c", "server": {"port": 1234}})
        assert settings.server.port == 1234
        assert settings.sources == ()


class TestMappingsValidate:
    """`kubeiam mappings validate --config` accepts the reference's file."""

    def test_validate_accepts_and_refuses(self, tmp_path: Path) -> None:
        """Exit 0 on the file as it is; exit 1 naming the key when a mapping is bad."""
        good = _write(tmp_path, REFERENCE)
        ok = subprocess.run(
            [*VALIDATE, str(good)],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        doc = yaml.safe_load(good.read_text())
        doc["server"]["mapRoles"][0]["roleARN"] = "not-an-arn"
        good.write_text(yaml.safe_dump(doc))
        bad = subprocess.run(
            [*VALIDATE, str(good)],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert bad.returncode == 1
        assert "mapRoles[0]" in bad.stdout + bad.stderr


class TestSSOInMappingsCLI:
    """`mappings show` and `lint` display an sso entry as its role pattern."""

    def test_show_and_lint(self, tmp_path: Path) -> None:
        """show: the AWSReservedSSO_<set>_* pattern, not "never matches"; lint quiet."""
        path = tmp_path / "mappings.yaml"
        path.write_text(
            "mapRoles:\n"
            f'- sso: {{permissionSetName: Admin, accountID: "{ACCT}"}}\n'
            "  username: sso-admin\n  groups: [admins]\n"
        )
        mappings = [sys.executable, "-m", "kubeiam", "mappings"]
        show = subprocess.run(
            [*mappings, "show", str(path), "-o", "json"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert show.returncode == 0, show.stderr
        assert f"arn:aws:iam::{ACCT}:role/AWSReservedSSO_Admin_*" in show.stdout
        assert "never matches" not in show.stdout
        lint = subprocess.run(
            [*mappings, "lint", str(path), "--fail-on", "low"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert "never-matches" not in lint.stdout
        assert lint.returncode == 0, lint.stdout + lint.stderr
