"""`kubeiam kubeconfig` via kubeconfig_main: real files, refusals, EKS via moto."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from authenticator.presign import StaticCredentials, presign_get_caller_identity
from authenticator.token import decode_token
from kubeconfig import certs
from kubeconfig.cli import find_kubeiam_command, kubeconfig_main
from tests.fixtures.apiserver import FakeAPIServer, kubectl_binary

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
# What a user's existing kubeconfig looks like: comments, several clusters, tokens,
# client certificates, preferences and extensions.
EXISTING = """\
# my clusters
apiVersion: v1
kind: Config
preferences:
  colors: true
clusters:
- name: kind-dev
  cluster:
    server: https://127.0.0.1:40000
    certificate-authority-data: Zm9v
- name: staging
  cluster:
    server: https://staging.example:6443
    insecure-skip-tls-verify: true
    extensions:
    - name: other
      extension: {a: "yes", b: 0123}
users:
- name: kind-dev
  user:
    client-certificate-data: YmFy
    client-key-data: YmF6
- name: staging
  user:
    token: abc
contexts:
- name: kind-dev
  context: {cluster: kind-dev, user: kind-dev, namespace: work}
- name: staging
  context: {cluster: staging, user: staging}
current-context: kind-dev
"""


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PEM CA file for --ca-file."""
    path = tmp_path_factory.mktemp("ca") / "ca.crt"
    path.write_bytes(certs.generate_ca("cluster-ca", now=datetime.now(UTC)).cert_pem)
    return path


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can touch the real ~/.kube/config."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)


def _args(ca_file: Path, *extra: str, cluster: str = "demo") -> list[str]:
    return [
        "-i",
        cluster,
        "--server",
        "https://127.0.0.1:6443",
        "--ca-file",
        str(ca_file),
        *extra,
    ]


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def _named(doc: dict[str, Any], section: str) -> dict[str, Any]:
    entries = doc[section]
    assert isinstance(entries, list)
    return {e["name"]: e for e in entries}


class TestMerge:
    """Writing into existing files."""

    def test_other_entries_keep_their_meaning(
        self, tmp_path: Path, ca_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Existing entries, preferences and (--no-set-context) current-context stay."""
        config = tmp_path / "config"
        config.write_text(EXISTING)
        before = _load(config)
        argv = _args(ca_file, "--kubeconfig", str(config), "--no-set-context")
        assert kubeconfig_main(argv) == 0
        after = _load(config)
        for section in ("clusters", "users", "contexts"):
            old, new = _named(before, section), _named(after, section)
            assert {k: v for k, v in new.items() if k != "demo"} == old
            assert list(new) == [*old, "demo"]
        assert after["preferences"] == before["preferences"]
        assert after["current-context"] == "kind-dev"
        out = capsys.readouterr().out
        assert "added     cluster  demo" in out
        assert "current-context kept kind-dev" in out

    def test_new_file_mode_and_current_context(
        self, tmp_path: Path, ca_file: Path
    ) -> None:
        """A new file (and directory) is created 0600 with the context made current."""
        config = tmp_path / "new" / "dir" / "config"
        assert kubeconfig_main(_args(ca_file, "--kubeconfig", str(config))) == 0
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
        doc = _load(config)
        assert doc["current-context"] == "demo"
        assert doc["apiVersion"] == "v1"
        assert doc["kind"] == "Config"

    def test_existing_loose_mode_becomes_0600(
        self, tmp_path: Path, ca_file: Path
    ) -> None:
        """A world-readable kubeconfig is rewritten with mode 0600."""
        config = tmp_path / "config"
        config.write_text(EXISTING)
        config.chmod(0o644)
        assert kubeconfig_main(_args(ca_file, "--kubeconfig", str(config))) == 0
        assert stat.S_IMODE(config.stat().st_mode) == 0o600

    def test_replace_and_set_context(
        self, tmp_path: Path, ca_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A run with another server replaces entries; --set-context switches."""
        config = tmp_path / "config"
        config.write_text(EXISTING)
        assert kubeconfig_main(_args(ca_file, "--kubeconfig", str(config))) == 0
        args = [
            "-i",
            "demo",
            "--server",
            "https://10.0.0.9:6443",
            "--ca-file",
            str(ca_file),
            "--kubeconfig",
            str(config),
            "--set-context",
            "-o",
            "json",
        ]
        capsys.readouterr()
        assert kubeconfig_main(args) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["cluster"] == {"name": "demo", "action": "replaced"}
        assert report["user"] == {"name": "demo", "action": "unchanged"}
        assert report["currentContext"] == "demo"
        doc = _load(config)
        assert (
            _named(doc, "clusters")["demo"]["cluster"]["server"]
            == "https://10.0.0.9:6443"
        )
        assert len(doc["clusters"]) == 3

    def test_shared_user_serves_many_clusters(
        self, tmp_path: Path, ca_file: Path
    ) -> None:
        """With --user-alias two clusters share one user; each cluster has its ID."""
        config = tmp_path / "config"
        for cluster in ("one", "two"):
            argv = _args(
                ca_file,
                "--kubeconfig",
                str(config),
                "--user-alias",
                "kubeiam",
                "--alias",
                cluster,
            )
            argv[1] = cluster
            assert kubeconfig_main(argv) == 0
        doc = _load(config)
        assert list(_named(doc, "users")) == ["kubeiam"]
        clusters = _named(doc, "clusters")
        for cluster in ("one", "two"):
            ext = clusters[cluster]["cluster"]["extensions"][0]["extension"]
            assert ext == {"clusterID": cluster}
            assert _named(doc, "contexts")[cluster]["context"]["user"] == "kubeiam"

    def test_retargeted_context_is_warned_about(
        self, tmp_path: Path, ca_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--user-alias alone names the context after the user (as aws): warned."""
        config = tmp_path / "config"
        for cluster in ("one", "two"):
            argv = _args(ca_file, "--kubeconfig", str(config), "--user-alias", "shared")
            argv[1] = cluster
            assert kubeconfig_main(argv) == 0
        err = capsys.readouterr().err
        assert (
            "context 'shared' pointed at cluster 'one' and now points at 'two'" in err
        )
        assert (
            _named(_load(config), "contexts")["shared"]["context"]["cluster"] == "two"
        )

    def test_dry_run_prints_and_writes_nothing(
        self, tmp_path: Path, ca_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--dry-run prints the merged YAML and leaves the file alone."""
        config = tmp_path / "config"
        config.write_text(EXISTING)
        argv = _args(
            ca_file, "--kubeconfig", str(config), "--dry-run", "--role", "arn:r"
        )
        assert kubeconfig_main(argv) == 0
        printed = yaml.safe_load(capsys.readouterr().out)
        assert config.read_text() == EXISTING
        ext = _named(printed, "clusters")["demo"]["cluster"]["extensions"][0][
            "extension"
        ]
        assert ext == {"clusterID": "demo", "roleARN": "arn:r"}
        assert "kind-dev" in _named(printed, "clusters")

    def test_dry_run_json(
        self, tmp_path: Path, ca_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--dry-run -o json prints the same merged kubeconfig as JSON."""
        config = tmp_path / "config"
        config.write_text(EXISTING)
        argv = _args(ca_file, "--kubeconfig", str(config), "--dry-run")
        assert kubeconfig_main(argv) == 0
        as_yaml = yaml.safe_load(capsys.readouterr().out)
        assert kubeconfig_main([*argv, "-o", "json"]) == 0
        assert json.loads(capsys.readouterr().out) == as_yaml
        assert config.read_text() == EXISTING

    def test_kubectl_reads_the_result(self, tmp_path: Path, ca_file: Path) -> None:
        """Real kubectl loads the merged file and sees the exec stanza and extension."""
        config = tmp_path / "config"
        config.write_text(EXISTING)
        argv = _args(
            ca_file, "--kubeconfig", str(config), "--profile", "p", "--region", "r"
        )
        assert kubeconfig_main([*argv, "--set-context"]) == 0
        out = subprocess.run(
            [
                KUBECTL,
                "--kubeconfig",
                str(config),
                "config",
                "view",
                "--minify",
                "--raw",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        view = json.loads(out)
        exec_ = view["users"][0]["user"]["exec"]
        assert exec_["command"] == find_kubeiam_command(
            argv0="", executable=sys.executable
        )
        assert exec_["args"] == ["token", "-i", "demo", "--region", "r"]
        assert exec_["provideClusterInfo"] is False
        assert exec_["interactiveMode"] == "IfAvailable"
        assert exec_["env"] == [{"name": "AWS_PROFILE", "value": "p"}]
        (ext,) = view["clusters"][0]["cluster"]["extensions"]
        assert ext["extension"] == {"clusterID": "demo", "region": "r"}
        ca = base64.b64decode(
            view["clusters"][0]["cluster"]["certificate-authority-data"]
        )
        assert ca == ca_file.read_bytes()


class TestRefusals:
    """What is refused, and that refusing writes nothing."""

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"clusters: [\n  - {name: a\n", "not valid YAML: line "),
            (b"- just\n- a list\n", "not a kubeconfig: the top level is a list"),
            (
                b"apiVersion: v1\nclusters: {a: 1}\n",
                "clusters is a mapping, not a list",
            ),
            (b"users:\n- user: {token: x}\n", r"users\[0\] has no name"),
            (b"kind: Secret\n", "kind is 'Secret'"),
            (b"\x00\xff", "not UTF-8"),
        ],
    )
    def test_corrupt_file_is_left_byte_identical(
        self,
        tmp_path: Path,
        ca_file: Path,
        capsys: pytest.CaptureFixture[str],
        content: bytes,
        message: str,
    ) -> None:
        """Corrupt kubeconfig: exit 1, one line naming file and problem, untouched."""
        config = tmp_path / "config"
        config.write_bytes(content)
        config.chmod(0o644)
        before = config.stat()
        assert kubeconfig_main(_args(ca_file, "--kubeconfig", str(config))) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert str(config) in err
        assert re.search(message, err)
        assert "nothing was written" in err
        assert config.read_bytes() == content
        after = config.stat()
        assert (after.st_mode, after.st_mtime_ns, after.st_ino) == (
            before.st_mode,
            before.st_mtime_ns,
            before.st_ino,
        )
        assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--server", "http://127.0.0.1:6443"], "must be an https:// URL"),
            (["--ca-data", "not base64!"], "--ca-data is not base64"),
            (
                ["--ca-data", base64.b64encode(b"hello").decode()],
                "--ca-data: not a PEM",
            ),
            (["--ca-file", "/nonexistent/ca.crt"], "cannot read"),
            (["--command", "/nonexistent/kubeiam"], "not an executable file"),
        ],
    )
    def test_bad_inputs(
        self,
        tmp_path: Path,
        ca_file: Path,
        capsys: pytest.CaptureFixture[str],
        argv: list[str],
        message: str,
    ) -> None:
        """Bad server, CA or command: exit 1 with the reason, no file created."""
        base = {"--server": "https://127.0.0.1:6443", "--ca-file": str(ca_file)}
        for flag, value in zip(argv[::2], argv[1::2], strict=True):
            if flag == "--ca-data":
                base.pop("--ca-file")
            base[flag] = value
        full = ["-i", "demo", "--kubeconfig", str(tmp_path / "config")]
        for flag, value in base.items():
            full += [flag, value]
        assert kubeconfig_main(full) == 1
        assert message in capsys.readouterr().err
        assert not (tmp_path / "config").exists()

    @pytest.mark.parametrize(
        "argv",
        [
            ["-i", "demo"],
            ["--server", "https://x", "--ca-data", "eA=="],
            ["--from-eks", "x", "--server", "https://x"],
            ["-i", "d", "--server", "https://x", "--ca-file", "a", "--ca-data", "b"],
        ],
    )
    def test_usage_errors_exit_2(self, argv: list[str]) -> None:
        """Missing or conflicting flags are usage errors (exit 2)."""
        with pytest.raises(SystemExit) as exc:
            kubeconfig_main(argv)
        assert exc.value.code == 2

    def test_dangling_symlink_refused(
        self, tmp_path: Path, ca_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A kubeconfig that is a dangling symlink is refused and nothing is created."""
        target = tmp_path / "elsewhere" / "config"
        target.parent.mkdir()
        link = tmp_path / "config"
        link.symlink_to(target)
        assert kubeconfig_main(_args(ca_file, "--kubeconfig", str(link))) == 1
        assert "dangling symlink" in capsys.readouterr().err
        assert not target.exists()

    def test_symlink_to_own_file_keeps_the_link(
        self, tmp_path: Path, ca_file: Path
    ) -> None:
        """A link to an own file in a private dir is followed; it stays a link."""
        real_dir = tmp_path / "dotfiles"
        real_dir.mkdir(mode=0o700)
        (real_dir / "kubeconfig").write_text(EXISTING)
        link = tmp_path / "config"
        link.symlink_to(real_dir / "kubeconfig")
        assert kubeconfig_main(_args(ca_file, "--kubeconfig", str(link))) == 0
        assert link.is_symlink()
        assert "demo" in _named(_load(real_dir / "kubeconfig"), "clusters")


class TestKubeconfigList:
    """KUBECONFIG with several files, as kubectl reads it."""

    def test_writes_the_first_file(
        self, tmp_path: Path, ca_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """New entries go to the first listed file; the others are untouched."""
        first, second = tmp_path / "first", tmp_path / "second"
        second.write_text(EXISTING)
        monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), str(second)]))
        assert kubeconfig_main(_args(ca_file)) == 0
        assert "demo" in _named(_load(first), "clusters")
        assert second.read_text() == EXISTING

    def test_file_that_has_the_cluster_is_updated(
        self, tmp_path: Path, ca_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A cluster defined in a later file is replaced there (as aws eks does)."""
        first, second = tmp_path / "first", tmp_path / "second"
        only_kind = "clusters:\n- name: kind-dev\n  cluster: {server: https://k}\n"
        first.write_text(only_kind)
        second.write_text(EXISTING)
        monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), str(second)]))
        argv = _args(ca_file, cluster="staging")
        assert kubeconfig_main(argv) == 0
        assert first.read_text() == only_kind
        staging = _named(_load(second), "clusters")["staging"]["cluster"]
        assert staging["server"] == "https://127.0.0.1:6443"


class TestFindCommand:
    """The exec command is the real kubeiam, never a version-manager shim."""

    def _exe(self, path: Path, text: str = "#!/usr/bin/python3\n") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
        return path

    def test_argv0_named_kubeiam_wins(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A relative argv[0] called kubeiam is made absolute and used."""
        real = self._exe(tmp_path / "bin" / "kubeiam")
        monkeypatch.chdir(tmp_path)
        found = find_kubeiam_command(
            argv0="bin/kubeiam", executable="/nonexistent/python", which=lambda _: None
        )
        assert found == str(real)

    def test_venv_sibling_before_path(self, tmp_path: Path) -> None:
        """Without argv[0], the kubeiam next to the interpreter beats PATH."""
        venv = self._exe(tmp_path / "venv" / "bin" / "kubeiam")
        other = self._exe(tmp_path / "other" / "kubeiam")
        found = find_kubeiam_command(
            argv0="/usr/bin/pytest",
            executable=str(tmp_path / "venv" / "bin" / "python"),
            which=lambda _: str(other),
        )
        assert found == str(venv)

    @pytest.mark.parametrize(
        ("where", "text"),
        [
            ("pyenv/shims/kubeiam", "#!/usr/bin/env bash\nexec pyenv exec kubeiam\n"),
            (
                "bin/kubeiam",
                '#!/usr/bin/env bash\nset -e\nprogram="${0##*/}"\n'
                'export PYENV_ROOT="/h/.pyenv"\n'
                'exec "/x/libexec/pyenv" exec "$program" "$@"\n',
            ),
            ("asdf/kubeiam", '#!/usr/bin/env bash\nexec asdf exec kubeiam "$@"\n'),
        ],
    )
    def test_shims_are_skipped(self, tmp_path: Path, where: str, text: str) -> None:
        """A pyenv/asdf shim is skipped; with nothing else, no command is found."""
        shim = self._exe(tmp_path / where, text)
        found = find_kubeiam_command(
            argv0=str(shim), executable="/nonexistent/python", which=lambda _: str(shim)
        )
        assert found is None

    def test_console_script_names_itself(self, tmp_path: Path, ca_file: Path) -> None:
        """Run as the installed `kubeiam` script, the stanza names that script."""
        script = Path(sys.executable).parent / "kubeiam"
        argv = [str(script), "kubeconfig", *_args(ca_file, "--dry-run")]
        env = {**os.environ, "PATH": "/usr/bin:/bin"}
        out = subprocess.run(
            argv, capture_output=True, text=True, check=True, timeout=60, env=env
        ).stdout
        stanza = _named(yaml.safe_load(out), "users")["demo"]["user"]["exec"]
        assert stanza["command"] == str(script)
        assert Path(stanza["command"]).is_absolute()

    def test_nothing_found_is_an_error(
        self,
        tmp_path: Path,
        ca_file: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """When no real kubeiam exists the CLI says to pass --command."""
        monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
        monkeypatch.setattr("sys.argv", ["pytest"])
        monkeypatch.setenv("PATH", str(tmp_path))
        assert kubeconfig_main(_args(ca_file, "--kubeconfig", str(tmp_path / "c"))) == 1
        assert "--command" in capsys.readouterr().err


@pytest.fixture(scope="module")
def moto_eks() -> Iterator[str]:
    """moto's server on 127.0.0.1 with one ACTIVE EKS cluster called `prod`."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.client(
        "eks",
        region_name="eu-west-1",
        endpoint_url=url,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    client.create_cluster(
        name="prod",
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": []},
    )
    try:
        yield url
    finally:
        server.stop()


class TestFromEKS:
    """--from-eks against moto's EKS (eks:DescribeCluster over HTTP)."""

    @pytest.fixture(autouse=True)
    def _aws_env(self, moto_eks: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Static fake credentials and AWS_ENDPOINT_URL_EKS pointing at moto."""
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        monkeypatch.setenv(
            "AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        )
        monkeypatch.setenv("AWS_ENDPOINT_URL_EKS", moto_eks)

    def test_entries_named_by_arn(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Entries are named by the ARN; endpoint, CA and region come from EKS."""
        config = tmp_path / "config"
        argv = [
            "--from-eks",
            "prod",
            "--region",
            "eu-west-1",
            "--kubeconfig",
            str(config),
        ]
        assert kubeconfig_main(argv) == 0
        described = boto3.client("eks", region_name="eu-west-1").describe_cluster(
            name="prod"
        )
        arn = described["cluster"]["arn"]
        doc = _load(config)
        cluster = _named(doc, "clusters")[arn]["cluster"]
        assert cluster["server"] == described["cluster"]["endpoint"]
        assert (
            cluster["certificate-authority-data"]
            == (described["cluster"]["certificateAuthority"]["data"])
        )
        assert cluster["extensions"][0]["extension"] == {
            "clusterID": "prod",
            "region": "eu-west-1",
        }
        assert arn in _named(doc, "users")
        assert doc["current-context"] == arn
        assert arn in capsys.readouterr().out

    def test_aliases(self, tmp_path: Path) -> None:
        """--alias and --user-alias rename the context and user, not the cluster."""
        config = tmp_path / "config"
        argv = [
            "--from-eks",
            "prod",
            "--region",
            "eu-west-1",
            "--alias",
            "p",
            "--user-alias",
            "me",
            "--kubeconfig",
            str(config),
        ]
        assert kubeconfig_main(argv) == 0
        doc = _load(config)
        assert _named(doc, "contexts")["p"]["context"]["user"] == "me"
        assert list(_named(doc, "users")) == ["me"]

    def test_unknown_cluster(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unknown cluster: exit 1 with EKS's error code, nothing written."""
        config = tmp_path / "config"
        argv = [
            "--from-eks",
            "nope",
            "--region",
            "eu-west-1",
            "--kubeconfig",
            str(config),
        ]
        assert kubeconfig_main(argv) == 1
        assert "ResourceNotFoundException" in capsys.readouterr().err
        assert not config.exists()

    def test_region_is_required(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without --region or AWS_REGION the CLI says so."""
        argv = ["--from-eks", "prod", "--kubeconfig", str(tmp_path / "c")]
        assert kubeconfig_main(argv) == 1
        assert "no region" in capsys.readouterr().err


AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _expected_token(token: str, *, cluster_id: str, region: str) -> str:
    """Re-sign with the same credentials and X-Amz-Date for ``cluster_id``."""
    query = parse_qs(urlsplit(decode_token(token)).query)
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=UTC
    )
    return presign_get_caller_identity(
        credentials=StaticCredentials(AKID, SECRET),
        region=region,
        cluster_id=cluster_id,
        now=signed_at,
    ).token


class TestUnderKubectl:
    """The written exec stanza runs `kubeiam token` under real kubectl."""

    def _kubectl(self, config: Path, context: str, tmp_path: Path) -> dict[str, Any]:
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": AKID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_REGION": "eu-central-1",
            "HOME": str(tmp_path / "home"),
        }
        command = [kubectl_binary(), "--kubeconfig", str(config), "--context", context]
        result = subprocess.run(
            [*command, "get", "--raw", "/version"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def test_one_user_serves_two_clusters(
        self, tmp_path: Path, fake_apiserver: FakeAPIServer
    ) -> None:
        """kubectl runs the plugin; each token is signed for its cluster's own ID."""
        config = tmp_path / "config"
        config.write_text(EXISTING)
        for cluster, region in (("blue", "us-west-2"), ("green", None)):
            argv = [
                "-i",
                cluster,
                "--server",
                fake_apiserver.url,
                "--ca-file",
                str(fake_apiserver.ca_file),
                "--user-alias",
                "kubeiam",
                "--alias",
                cluster,
                "--kubeconfig",
                str(config),
            ]
            assert kubeconfig_main(argv + (["--region", region] if region else [])) == 0
        for cluster, region in (("blue", "us-west-2"), ("green", "eu-central-1")):
            fake_apiserver.received_tokens.clear()
            version = self._kubectl(config, cluster, tmp_path)
            assert version["gitVersion"].startswith("v1.33")
            assert fake_apiserver.received_tokens
            token = fake_apiserver.received_tokens[-1]
            assert token.startswith("k8s-aws-v1.")
            url = urlsplit(decode_token(token))
            assert url.hostname == f"sts.{region}.amazonaws.com"
            assert parse_qs(url.query)["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]
            assert token == _expected_token(token, cluster_id=cluster, region=region)
            assert token != _expected_token(token, cluster_id="other", region=region)


class TestPrivateFiles:
    """Directories 0700 under any umask; a read-only kubeconfig needs --force."""

    def test_created_directories_are_0700_under_umask_000(
        self, tmp_path: Path, ca_file: Path
    ) -> None:
        """~/.kube and any parent created for --kubeconfig are 0700 under umask 000."""
        home = tmp_path / "home"
        home.mkdir()
        nested = tmp_path / "a" / "b" / "config"
        old = os.umask(0)
        try:
            assert kubeconfig_main(_args(ca_file)) == 0
            assert kubeconfig_main(_args(ca_file, "--kubeconfig", str(nested))) == 0
        finally:
            os.umask(old)
        for directory in (home / ".kube", tmp_path / "a", tmp_path / "a" / "b"):
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
        assert stat.S_IMODE((home / ".kube" / "config").stat().st_mode) == 0o600

    def test_read_only_kubeconfig_is_replaced_only_with_force(
        self, tmp_path: Path, ca_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A 0400 kubeconfig: exit 1 (unchanged) naming --force; --force replaces."""
        target = tmp_path / "kubeconfig"
        assert kubeconfig_main(_args(ca_file, "--kubeconfig", str(target))) == 0
        target.chmod(0o400)
        before = target.read_bytes()
        capsys.readouterr()
        argv = _args(ca_file, "--kubeconfig", str(target), cluster="other")
        assert kubeconfig_main(argv) == 1
        err = capsys.readouterr().err
        assert str(target) in err and "read-only" in err and "--force" in err
        assert target.read_bytes() == before
        assert stat.S_IMODE(target.stat().st_mode) == 0o400
        assert kubeconfig_main([*argv, "--force"]) == 0
        assert b"other" in target.read_bytes()
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
