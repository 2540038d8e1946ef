"""kubeconfig.pki and `kubeiam init`: the webhook PKI on disk, checked with real TLS."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from kubeconfig.cli import init_main
from kubeconfig.errors import KubeconfigError
from kubeconfig.pki import PKIPaths, webhook_url, write_pki

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def _cert(path_or_pem: Path | bytes) -> x509.Certificate:
    pem = path_or_pem.read_bytes() if isinstance(path_or_pem, Path) else path_or_pem
    return x509.load_pem_x509_certificate(pem)


def _sans(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in ext.get_values_for_type(x509.DNSName)} | {
        str(v) for v in ext.get_values_for_type(x509.IPAddress)
    }


def _eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKIPaths:
    """One PKI written with the current time (so real TLS accepts it)."""
    out = tmp_path_factory.mktemp("pki") / "out"
    return write_pki(
        out,
        cluster_id="demo",
        hostnames=["webhook.example.internal", "10.1.2.3"],
        address="127.0.0.1",
        port=21362,
        now=datetime.now(UTC),
        force=False,
    )


class TestWebhookURL:
    """webhook_url: the URL the API server dials."""

    @pytest.mark.parametrize(
        ("address", "hostnames", "url"),
        [
            ("127.0.0.1", [], "https://127.0.0.1:21362/authenticate"),
            ("::1", [], "https://[::1]:21362/authenticate"),
            ("0.0.0.0", ["webhook.local"], "https://webhook.local:21362/authenticate"),
            ("0.0.0.0", [], "https://127.0.0.1:21362/authenticate"),
        ],
    )
    def test_webhook_url(self, address: str, hostnames: list[str], url: str) -> None:
        """The URL uses the address, brackets IPv6, avoids unspecified addresses."""
        assert webhook_url(address, 21362, hostnames) == url


class TestWritePKI:
    """write_pki's files."""

    def test_chain_and_sans(self, pki: PKIPaths) -> None:
        """Both leaves verify against ca.crt; SANs are the defaults plus hostnames."""
        ca = _cert(pki.ca_cert)
        for leaf in (pki.serving_cert, pki.client_cert):
            _cert(leaf).verify_directly_issued_by(ca)
        assert _sans(_cert(pki.serving_cert)) == {
            "localhost",
            "webhook.example.internal",
            "127.0.0.1",
            "::1",
            "10.1.2.3",
        }

    def test_client_cert_has_no_groups(self, pki: PKIPaths) -> None:
        """The API server's client cert is CN=kube-apiserver with no O (no groups)."""
        subject = _cert(pki.client_cert).subject
        assert (
            subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
            == "kube-apiserver"
        )
        assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME) == []

    def test_modes(self, pki: PKIPaths) -> None:
        """Keys and the kubeconfig (it holds a key) are 0600; the directory is 0700."""
        for path in (
            pki.ca_key,
            pki.serving_key,
            pki.client_key,
            pki.webhook_kubeconfig,
        ):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(pki.output_dir.stat().st_mode) == 0o700

    def test_webhook_kubeconfig(self, pki: PKIPaths) -> None:
        """Cluster = webhook URL + CA, user = client cert/key, current-context set."""
        doc = yaml.safe_load(pki.webhook_kubeconfig.read_text())
        cluster = doc["clusters"][0]["cluster"]
        user = doc["users"][0]["user"]
        assert cluster["server"] == "https://127.0.0.1:21362/authenticate"
        assert (
            base64.b64decode(cluster["certificate-authority-data"])
            == pki.ca_cert.read_bytes()
        )
        assert (
            base64.b64decode(user["client-certificate-data"])
            == pki.client_cert.read_bytes()
        )
        assert base64.b64decode(user["client-key-data"]) == pki.client_key.read_bytes()
        (context,) = doc["contexts"]
        assert doc["current-context"] == context["name"]
        assert context["context"] == {
            "cluster": doc["clusters"][0]["name"],
            "user": doc["users"][0]["name"],
        }

    def test_authorize_kubeconfig_differs_only_in_path(self, pki: PKIPaths) -> None:
        """authorize.kubeconfig is webhook.kubeconfig with the /authorize path."""
        authn = yaml.safe_load(pki.webhook_kubeconfig.read_text())
        authz = yaml.safe_load(pki.authorize_kubeconfig.read_text())
        server = authz["clusters"][0]["cluster"].pop("server")
        assert server == "https://127.0.0.1:21362/authorize"
        authn["clusters"][0]["cluster"].pop("server")
        assert authz == authn
        assert stat.S_IMODE(pki.authorize_kubeconfig.stat().st_mode) == 0o600

    def test_server_config_points_at_the_files(self, pki: PKIPaths) -> None:
        """server-config.yaml names the cluster ID and the TLS files."""
        doc = yaml.safe_load(pki.server_config.read_text())
        assert doc["clusterID"] == "demo"
        assert doc["server"] == {
            "address": "127.0.0.1",
            "port": 21362,
            "certFile": str(pki.serving_cert),
            "keyFile": str(pki.serving_key),
            "clientCAFile": str(pki.ca_cert),
        }

    def test_rerun_keeps_keys_and_force_replaces(self, tmp_path: Path) -> None:
        """A re-run keeps every key and certificate; --force writes new keys."""
        kwargs = {
            "cluster_id": "c",
            "hostnames": [],
            "address": "127.0.0.1",
            "port": 21362,
            "now": NOW,
        }
        first = write_pki(tmp_path, force=False, **kwargs)  # type: ignore[arg-type]
        before = {p: p.read_bytes() for p in first.all()[:6]}
        again = write_pki(tmp_path, force=False, **kwargs)  # type: ignore[arg-type]
        assert set(again.kept) == set(before)
        assert {p: p.read_bytes() for p in before} == before
        forced = write_pki(tmp_path, force=True, **kwargs)  # type: ignore[arg-type]
        assert forced.kept == ()
        for path in (first.ca_key, first.serving_key, first.client_key, first.ca_cert):
            assert path.read_bytes() != before[path]

    def test_new_hostname_reissues_the_serving_cert_with_the_same_key(
        self, tmp_path: Path
    ) -> None:
        """Changing --hostname reissues webhook.crt but keeps webhook.key and the CA."""
        first = write_pki(
            tmp_path,
            cluster_id="c",
            hostnames=[],
            address="127.0.0.1",
            port=1,
            now=NOW,
            force=False,
        )
        key, cert = first.serving_key.read_bytes(), first.serving_cert.read_bytes()
        second = write_pki(
            tmp_path,
            cluster_id="c",
            hostnames=["new.example"],
            address="127.0.0.1",
            port=1,
            now=NOW,
            force=False,
        )
        assert second.serving_key.read_bytes() == key
        assert second.serving_cert.read_bytes() != cert
        assert "new.example" in _sans(_cert(second.serving_cert))
        assert second.serving_key in second.kept
        assert second.serving_cert not in second.kept
        assert second.ca_cert in second.kept

    def test_expiring_leaf_is_reissued(self, tmp_path: Path) -> None:
        """A leaf within 30 days of expiry is reissued by a re-run, key kept."""
        first = write_pki(
            tmp_path,
            cluster_id="c",
            hostnames=[],
            address="127.0.0.1",
            port=1,
            now=NOW,
            force=False,
        )
        later = NOW + timedelta(days=340)
        second = write_pki(
            tmp_path,
            cluster_id="c",
            hostnames=[],
            address="127.0.0.1",
            port=1,
            now=later,
            force=False,
        )
        assert second.client_cert not in second.kept
        assert _cert(second.client_cert).not_valid_after_utc == later + timedelta(
            days=365
        )
        assert second.client_key.read_bytes() == first.client_key.read_bytes()

    def test_half_a_ca_is_refused(self, tmp_path: Path) -> None:
        """A CA certificate without its key is an error that names the missing file."""
        write_pki(
            tmp_path,
            cluster_id="c",
            hostnames=[],
            address="127.0.0.1",
            port=1,
            now=NOW,
            force=False,
        )
        (tmp_path / "ca.key").unlink()
        with pytest.raises(KubeconfigError, match=r"ca\.key: missing"):
            write_pki(
                tmp_path,
                cluster_id="c",
                hostnames=[],
                address="127.0.0.1",
                port=1,
                now=NOW,
                force=False,
            )

    @staticmethod
    def _write(directory: Path, *, force: bool = False) -> PKIPaths:
        return write_pki(
            directory,
            cluster_id="c",
            hostnames=[],
            address="127.0.0.1",
            port=1,
            now=NOW,
            force=force,
        )

    @staticmethod
    def _snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
        return {
            p.name: (p.read_bytes(), p.stat().st_mode, p.stat().st_uid)
            for p in sorted(directory.iterdir())
        }

    @pytest.mark.parametrize("key", ["ca.key", "webhook.key", "apiserver-client.key"])
    @pytest.mark.parametrize("mode", [0o640, 0o604])
    def test_key_readable_by_others_is_refused(
        self, tmp_path: Path, key: str, mode: int
    ) -> None:
        """A key others can read: refused, nothing changed; --force regenerates."""
        first = self._write(tmp_path)
        (tmp_path / key).chmod(mode)
        before = self._snapshot(tmp_path)
        with pytest.raises(KubeconfigError) as exc:
            self._write(tmp_path)
        assert str(tmp_path / key) in str(exc.value)
        assert "--force" in str(exc.value)
        assert self._snapshot(tmp_path) == before
        forced = self._write(tmp_path, force=True)
        assert (tmp_path / key).read_bytes() != before[key][0]
        for path in (forced.ca_key, forced.serving_key, forced.client_key):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert first.all() == forced.all()

    @pytest.mark.parametrize("name", ["ca.key", "ca.crt", "apiserver-client.key"])
    def test_files_of_another_user_are_refused(self, tmp_path: Path, name: str) -> None:
        """An existing CA/key file owned by another user is refused, nothing changed."""
        self._write(tmp_path)
        os.chown(tmp_path / name, 65534, 65534)
        before = self._snapshot(tmp_path)
        with pytest.raises(KubeconfigError) as exc:
            self._write(tmp_path)
        assert str(tmp_path / name) in str(exc.value)
        assert "owned by uid 65534" in str(exc.value)
        assert self._snapshot(tmp_path) == before
        self._write(tmp_path, force=True)
        assert (tmp_path / name).stat().st_uid == os.geteuid()

    def test_output_dir_of_another_user_is_refused(self, tmp_path: Path) -> None:
        """An output directory owned by another user is refused, even with --force."""
        out = tmp_path / "pki"
        out.mkdir()
        os.chown(out, 65534, 65534)
        for force in (False, True):
            with pytest.raises(KubeconfigError, match="owned by uid 65534"):
                self._write(out, force=force)
        assert list(out.iterdir()) == []

    def test_edited_server_config_is_kept(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A re-run keeps an edited server config and writes the new one beside it."""
        argv = ["--cluster-id", "d", "--output-dir", str(tmp_path)]
        assert init_main(argv) == 0
        config = tmp_path / "server-config.yaml"
        original = config.read_text()
        # An unedited re-run rewrites it (same content), no .new.
        assert init_main(argv) == 0
        assert config.read_text() == original
        assert not (tmp_path / "server-config.yaml.new").exists()
        edited = original + "sources:\n- file: {path: /etc/kubeiam/mapping.yaml}\n"
        config.write_text(edited)
        capsys.readouterr()
        assert init_main(argv) == 0
        out = capsys.readouterr().out
        assert config.read_text() == edited
        assert (tmp_path / "server-config.yaml.new").read_text() == original
        assert "kept it; the new one is server-config.yaml.new" in out
        assert init_main([*argv, "-o", "json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["files"][str(config)] == "kept"
        assert report["serverConfigEdited"] is True


def _handshake(pki: PKIPaths, client_pair: tuple[Path, Path] | None) -> str | None:
    """Serve one mTLS connection; return the server's error or None."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki.serving_cert, pki.serving_key)
    server_ctx.load_verify_locations(cafile=pki.ca_cert)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    if client_pair is not None:
        client_ctx.load_cert_chain(*client_pair)
    outcome: dict[str, str | None] = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                try:
                    with server_ctx.wrap_socket(conn, server_side=True) as tls:
                        peer = tls.getpeercert()
                        tls.sendall(b"ok")
                        outcome["peer"] = str(peer.get("subject") if peer else None)
                        outcome["error"] = None
                except (ssl.SSLError, OSError) as exc:
                    outcome["error"] = type(exc).__name__ + ": " + str(exc)

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                data = tls.recv(2)
                if data != b"ok":
                    outcome["client"] = "no data"
        except (ssl.SSLError, OSError) as exc:
            outcome["client"] = str(exc)
        thread.join(timeout=5)
    assert ("client" in outcome) == (outcome.get("error") is not None)
    return outcome["error"]


class TestTLS:
    """A real TLS handshake with the generated material (ssl module, CERT_REQUIRED)."""

    def test_client_certificate_is_accepted(self, pki: PKIPaths) -> None:
        """The API-server client certificate completes mTLS with the webhook."""
        assert _handshake(pki, (pki.client_cert, pki.client_key)) is None

    def test_missing_client_certificate_is_refused(self, pki: PKIPaths) -> None:
        """Without a client certificate the server refuses the handshake."""
        error = _handshake(pki, None)
        assert error is not None
        assert "certificate" in error.lower()

    def test_serving_certificate_cannot_log_in_as_a_client(self, pki: PKIPaths) -> None:
        """The serving cert (EKU serverAuth only) is refused as a client cert."""
        error = _handshake(pki, (pki.serving_cert, pki.serving_key))
        assert error is not None

    def test_serving_cert_carries_the_address_sans(self, pki: PKIPaths) -> None:
        """The certificate the API server checks names 127.0.0.1 as an IP SAN."""
        ext = _cert(pki.serving_cert).extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
        assert ipaddress.ip_address("127.0.0.1") in ext.value.get_values_for_type(
            x509.IPAddress
        )


class TestInitCLI:
    """`kubeiam init` through init_main."""

    def test_writes_and_reports(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """init writes every file, then a re-run reports them kept (JSON output)."""
        out = tmp_path / "pki"
        assert init_main(["--cluster-id", "demo", "--output-dir", str(out)]) == 0
        text = capsys.readouterr().out
        assert "wrote  webhook.kubeconfig" in text
        assert "--authentication-token-webhook-version=v1" in text
        assert (
            init_main(["--cluster-id", "demo", "--output-dir", str(out), "-o", "json"])
            == 0
        )
        report = json.loads(capsys.readouterr().out)
        assert report["files"][str(out / "ca.key")] == "kept"
        assert report["files"][str(out / "webhook.kubeconfig")] == "written"
        assert report["serverURL"] == "https://127.0.0.1:21362/authenticate"

    def test_bad_port_is_a_usage_error(self, tmp_path: Path) -> None:
        """--port outside 1-65535 exits 2."""
        with pytest.raises(SystemExit) as exc:
            init_main(
                ["--cluster-id", "d", "--output-dir", str(tmp_path), "--port", "70000"]
            )
        assert exc.value.code == 2

    @pytest.mark.parametrize("cluster_id", ["", "  "])
    def test_empty_cluster_id_is_a_usage_error(
        self, cluster_id: str, tmp_path: Path
    ) -> None:
        """An empty --cluster-id exits 2 and writes nothing."""
        out = tmp_path / "pki"
        with pytest.raises(SystemExit) as exc:
            init_main(["--cluster-id", cluster_id, "--output-dir", str(out)])
        assert exc.value.code == 2
        assert not out.exists()

    def test_unusable_existing_key_is_an_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A garbage key file makes init exit 1 with the file name, leaving it alone."""
        assert init_main(["--cluster-id", "d", "--output-dir", str(tmp_path)]) == 0
        (tmp_path / "webhook.key").write_bytes(b"garbage")
        assert init_main(["--cluster-id", "d", "--output-dir", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert "webhook.key" in err
        assert "--force" in err
        assert (tmp_path / "webhook.key").read_bytes() == b"garbage"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKIPaths]:
    """`kubeiam init` output, served by a real `kubeiam server` (its server-config)."""
    out = tmp_path_factory.mktemp("served") / "pki"
    port = _free_port()
    assert (
        init_main(
            ["--cluster-id", "demo", "--output-dir", str(out), "--port", str(port)]
        )
        == 0
    )
    paths = write_pki(
        out,
        cluster_id="demo",
        hostnames=[],
        address="127.0.0.1",
        port=port,
        now=datetime.now(UTC),
        force=False,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    argv = [
        "server",
        "--config",
        str(paths.server_config),
        "--workers",
        "1",
        "--threads",
        "2",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubeiam", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _review(paths, "k8s-aws-v1.x")
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "kubeiam server did not start"
                time.sleep(0.2)
        yield paths
    finally:
        proc.send_signal(signal.SIGINT)  # gunicorn: quick shutdown
        proc.communicate(timeout=15)


def _review(paths: PKIPaths, token: str, *, client_cert: bool = True) -> dict[str, Any]:
    """POST a TokenReview the way kube-apiserver does, using only webhook.kubeconfig."""
    doc = yaml.safe_load(paths.webhook_kubeconfig.read_text())
    cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
    ctx = ssl.create_default_context(
        cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
    )
    if client_cert:
        material = paths.output_dir / "material"
        material.mkdir(mode=0o700, exist_ok=True)
        crt, key = material / "client.crt", material / "client.key"
        crt.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        ctx.load_cert_chain(crt, key)
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token},
    }
    request = urllib.request.Request(
        cluster["server"] + "?timeout=30s",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=ctx, timeout=10) as response:
        result: dict[str, Any] = json.load(response)
    return result


class TestServedByKubeiamServer:
    """The files `kubeiam init` writes run the real webhook and admit the API server."""

    def test_webhook_kubeconfig_reaches_the_webhook(self, served_pki: PKIPaths) -> None:
        """With webhook.kubeconfig's CA and client cert a TokenReview is answered."""
        answer = _review(served_pki, "k8s-aws-v1.not-a-token")
        assert answer["kind"] == "TokenReview"
        assert answer["status"]["authenticated"] is False

    def test_without_the_client_cert_the_webhook_refuses(
        self, served_pki: PKIPaths
    ) -> None:
        """The server config requires the API server's client certificate."""
        with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
            _review(served_pki, "k8s-aws-v1.not-a-token", client_cert=False)

    @pytest.mark.parametrize("probe", ["readinessProbe", "livenessProbe"])
    def test_daemonset_probes_pass(self, served_pki: PKIPaths, probe: str) -> None:
        """The DaemonSet's exec probes, on these files, pass against the server."""
        manifest = Path(__file__).resolve().parents[2] / "manifests" / "daemonset.yaml"
        pod = yaml.safe_load(manifest.read_text())["spec"]["template"]["spec"]
        command = pod["containers"][0][probe]["exec"]["command"]
        port = served_pki.server_url.rsplit(":", 1)[1].split("/")[0]
        local = {
            "/etc/kubeiam/tls/ca.crt": str(served_pki.ca_cert),
            "/etc/kubeiam/tls/client.crt": str(served_pki.client_cert),
            "/etc/kubeiam/tls/client.key": str(served_pki.client_key),
            "127.0.0.1:21362": f"127.0.0.1:{port}",
        }
        script = command[2]
        for old, new in local.items():
            assert old in script
            script = script.replace(old, new)
        assert command[0] == "python"
        result = subprocess.run(
            [sys.executable, command[1], script, *command[3:]],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
