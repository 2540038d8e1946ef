"""Drop-in kubeconfigs: every client, current-context, replacing peer entries in place.

The Python kubernetes client before 32.0 ignores ``provideClusterInfo``; a real
28.x client (in a venv created once under ``~/.cache/kubeiam/``) loads what
``kubeiam kubeconfig`` writes and gets a token from the installed ``kubeiam``.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

from authenticator.presign import StaticCredentials, presign_get_caller_identity
from authenticator.token import decode_token
from kubeconfig.cli import kubeconfig_main
from tests.fixtures.apiserver import FakeAPIServer, kubectl_binary
from tests.fixtures.executables import KUBEIAM

ROOT = Path(__file__).resolve().parents[2]
AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CLIENT_VENV = Path.home() / ".cache" / "kubeiam" / "k8s-client-28"
CLIENT_SPEC = "kubernetes>=28,<29"
# What the old client runs: load the kubeconfig, call /version.
CLIENT_SCRIPT = """\
import sys
import kubernetes
from kubernetes import client, config
assert kubernetes.__version__.startswith("28."), kubernetes.__version__
config.load_kube_config(config_file=sys.argv[1])
# GET /version (VersionApi asks for /version/, which the stand-in does not serve).
answer = client.ApiClient().call_api(
    "/version", "GET", auth_settings=["BearerToken"], response_type="object",
    _return_http_data_only=True,
)
print(answer["gitVersion"])
"""
PEERS = """\
apiVersion: v1
kind: Config
clusters:
- name: arn:aws:eks:us-west-2:111122223333:cluster/prod
  cluster: {server: SERVER, certificate-authority: CA}
- name: legacy
  cluster: {server: SERVER, certificate-authority: CA}
users:
- name: eks-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [--region, us-west-2, eks, get-token, --cluster-name, prod, --output, json]
      env: [{name: AWS_PROFILE, value: prod-admin}]
- name: aia-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1alpha1
      command: /usr/local/bin/aws-iam-authenticator
      args: [token, -i, legacy, -r, "arn:aws:iam::111122223333:role/ops", --region,
             eu-west-1]
- name: other
  user: {token: abc}
contexts:
- name: prod
  context: {cluster: "arn:aws:eks:us-west-2:111122223333:cluster/prod", user: eks-user}
- name: legacy
  context: {cluster: legacy, user: aia-user}
current-context: prod
"""


@pytest.fixture(scope="session")
def old_client_python() -> Path:
    """The Python of a venv with the kubernetes client 28.x (made once per machine)."""
    CLIENT_VENV.parent.mkdir(parents=True, exist_ok=True)
    python = CLIENT_VENV / "bin" / "python"
    with (CLIENT_VENV.parent / "k8s-client-28.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers wait for one install
        ready = python.exists() and (
            subprocess.run(
                [str(python), "-c", "import kubernetes"],
                capture_output=True,
                check=False,
                timeout=60,
            ).returncode
            == 0
        )
        if not ready:
            subprocess.run(
                [sys.executable, "-m", "venv", "--clear", str(CLIENT_VENV)],
                check=True,
                timeout=120,
            )
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", CLIENT_SPEC],
                check=True,
                timeout=600,
            )
    return python


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)


def _client_env(tmp_path: Path) -> dict[str, str]:
    """What the plugin inherits: static fake keys, no AWS config, a private cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBE"))}
    env.update(
        HOME=str(tmp_path / "home"),
        AWS_ACCESS_KEY_ID=AKID,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        KUBEIAM_CACHE_DIR=str(tmp_path / "plugin-cache"),
    )
    return env


def _signed_for(token: str, cluster_id: str, region: str) -> bool:
    url = decode_token(token)
    query = dict(parse_qsl(urlsplit(url).query, strict_parsing=True))
    if urlsplit(url).netloc != f"sts.{region}.amazonaws.com":
        return False
    at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    again = presign_get_caller_identity(
        credentials=StaticCredentials(AKID, SECRET),
        region=region,
        cluster_id=cluster_id,
        now=at,
    )
    return again.token == token


def _write(
    fake_apiserver: FakeAPIServer, config: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    argv = [
        "-i",
        "demo",
        "--server",
        fake_apiserver.url,
        "--ca-file",
        str(fake_apiserver.ca_file),
        "--region",
        "us-west-2",
        "--kubeconfig",
        str(config),
        "--command",
        KUBEIAM,
        *extra,
    ]
    return subprocess.run(
        [KUBEIAM, "kubeconfig", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


class TestOldPythonClient:
    """kubernetes 28.x (no provideClusterInfo) with `kubeiam kubeconfig`'s file."""

    def test_default_file_gets_a_token(
        self, old_client_python: Path, fake_apiserver: FakeAPIServer, tmp_path: Path
    ) -> None:
        """The args form works: the client runs kubeiam and the server sees a token."""
        config = tmp_path / "config"
        written = _write(fake_apiserver, config)
        assert written.returncode == 0, written.stderr
        result = subprocess.run(
            [str(old_client_python), "-c", CLIENT_SCRIPT, str(config)],
            env=_client_env(tmp_path),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().startswith("v1.33")
        assert fake_apiserver.received_tokens
        assert _signed_for(fake_apiserver.received_tokens[-1], "demo", "us-west-2")

    def test_shared_user_form_says_why_it_fails(
        self, old_client_python: Path, fake_apiserver: FakeAPIServer, tmp_path: Path
    ) -> None:
        """--user-alias needs provideClusterInfo; the old client's failure says so."""
        config = tmp_path / "config"
        written = _write(fake_apiserver, config, "--user-alias", "kubeiam")
        assert written.returncode == 0, written.stderr
        result = subprocess.run(
            [str(old_client_python), "-c", CLIENT_SCRIPT, str(config)],
            env=_client_env(tmp_path),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode != 0
        assert not fake_apiserver.received_tokens
        assert "kubectl passed no cluster info" in result.stdout + result.stderr


class TestCurrentContext:
    """The new context becomes current, as with `aws eks update-kubeconfig`."""

    def test_default_switches_and_flag_keeps(
        self, fake_apiserver: FakeAPIServer, tmp_path: Path
    ) -> None:
        """Default: switched to the new context; --no-set-context: the old one stays."""
        config = tmp_path / "config"
        config.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: old\n"
            "contexts: [{name: old, context: {cluster: x, user: y}}]\n"
        )
        kept = _write(fake_apiserver, config, "--alias", "kept", "--no-set-context")
        assert kept.returncode == 0, kept.stderr
        assert _load(config)["current-context"] == "old"
        assert "current-context kept old" in kept.stdout
        switched = _write(fake_apiserver, config)
        assert switched.returncode == 0, switched.stderr
        assert _load(config)["current-context"] == "demo"
        assert "current-context switched to demo" in switched.stdout


class TestReplaceExisting:
    """--replace-existing rewrites aws-iam-authenticator / aws eks entries in place."""

    @pytest.fixture
    def peers(self, fake_apiserver: FakeAPIServer, tmp_path: Path) -> Path:
        path = tmp_path / "config"
        path.write_text(
            PEERS.replace("SERVER", fake_apiserver.url).replace(
                "CA", str(fake_apiserver.ca_file)
            )
        )
        path.chmod(0o600)
        return path

    def _replace(self, config: Path, *extra: str) -> int:
        argv = ["--replace-existing", "--kubeconfig", str(config), "--command", KUBEIAM]
        return kubeconfig_main([*argv, *extra])

    def test_entries_translated_and_rest_kept(
        self, peers: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Both peer users run kubeiam with their own settings; nothing else moves."""
        before = _load(peers)
        assert self._replace(peers, "-o", "json") == 0
        report = json.loads(capsys.readouterr().out)
        assert [r["user"] for r in report["replaced"]] == ["eks-user", "aia-user"]
        after = _load(peers)
        users = {u["name"]: u["user"] for u in after["users"]}
        eks, aia = users["eks-user"]["exec"], users["aia-user"]["exec"]
        assert eks["command"] == aia["command"] == KUBEIAM
        assert eks["args"] == [
            "token",
            "--region",
            "us-west-2",
            "--cluster-name",
            "prod",
        ]
        assert eks["env"] == [{"name": "AWS_PROFILE", "value": "prod-admin"}]
        assert aia["args"] == [
            "token",
            "-i",
            "legacy",
            "-r",
            "arn:aws:iam::111122223333:role/ops",
            "--region",
            "eu-west-1",
        ]
        assert aia["apiVersion"] == "client.authentication.k8s.io/v1beta1"
        assert users["other"] == {"token": "abc"}
        for key in ("clusters", "contexts", "current-context"):
            assert after[key] == before[key]

    def test_only_the_named_cluster(self, peers: Path) -> None:
        """With -i only that cluster's entry is rewritten."""
        assert self._replace(peers, "-i", "legacy") == 0
        users = {u["name"]: u["user"] for u in _load(peers)["users"]}
        assert users["eks-user"]["exec"]["command"] == "aws"
        assert users["aia-user"]["exec"]["command"] == KUBEIAM

    def test_kubectl_gets_a_token_through_the_replaced_entry(
        self, peers: Path, fake_apiserver: FakeAPIServer, tmp_path: Path
    ) -> None:
        """Real kubectl runs the rewritten aws eks entry; the token is for `prod`."""
        doc = _load(peers)
        # The fake keys, not the prod-admin profile (which exists nowhere here).
        doc["users"][0]["user"]["exec"]["env"] = []
        peers.write_text(yaml.safe_dump(doc))
        assert self._replace(peers, "-i", "prod") == 0
        result = subprocess.run(
            [kubectl_binary(), "--kubeconfig", str(peers), "get", "--raw", "/version"],
            env=_client_env(tmp_path),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert _signed_for(fake_apiserver.received_tokens[-1], "prod", "us-west-2")

    @pytest.mark.parametrize(
        ("edit", "message"),
        [
            (("--output", "--cache-dir"), "has no kubeiam equivalent"),
            (("prod", "other-cluster"), "no user entry runs"),
        ],
    )
    def test_refusals_write_nothing(
        self,
        peers: Path,
        capsys: pytest.CaptureFixture[str],
        edit: tuple[str, str],
        message: str,
    ) -> None:
        """An untranslatable flag or no match: exit 1, one message, file unchanged."""
        text = peers.read_text().replace(*edit)
        peers.write_text(text)
        assert self._replace(peers, "-i", "prod") == 1
        err = capsys.readouterr().err
        assert message in err
        assert "nothing was written" in err
        assert peers.read_text() == text

    def test_cluster_flags_are_a_usage_error(self, peers: Path) -> None:
        """--replace-existing keeps each entry's settings: --role etc. are refused."""
        with pytest.raises(SystemExit) as exc:
            self._replace(peers, "--role", "arn:aws:iam::1:role/x")
        assert exc.value.code == 2


class TestMigratingDoc:
    """docs/migrating.md's client section: its commands run and print what it shows."""

    def test_console_blocks(self, tmp_path: Path) -> None:
        """Each `$ kubeiam ...` block, run on the doc's file, prints its output."""
        from datetime import UTC, datetime

        from kubeconfig import certs

        text = (ROOT / "docs" / "migrating.md").read_text()
        section = text[text.index("## Clients: swapping the command") :]
        (tmp_path / "config").write_text(
            section.split("```yaml\n", 1)[1].split("```")[0]
        )
        ca = certs.generate_ca("doc-ca", now=datetime.now(UTC)).cert_pem
        (tmp_path / "ca.crt").write_bytes(ca)
        blocks = [b.split("```")[0] for b in section.split("```console\n")[1:]]
        assert len(blocks) == 2
        for block in blocks:
            command, _, expected = block.partition("\n")
            assert command.startswith("$ kubeiam ")
            result = subprocess.run(
                [KUBEIAM, *command[len("$ kubeiam ") :].split()],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            assert result.returncode == 0, result.stderr
            assert result.stdout == expected
        users = {
            u["name"]: u["user"]["exec"] for u in _load(tmp_path / "config")["users"]
        }
        assert users["prod"]["command"] == KUBEIAM
        assert users["prod"]["env"] == [{"name": "AWS_PROFILE", "value": "admin"}]
