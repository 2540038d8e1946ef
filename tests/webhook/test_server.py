"""``kubeiam server`` as real processes: gunicorn, (m)TLS, the embedded STS, clients.

One gunicorn (two gthread workers) serves the whole module. Its extra STS
endpoints are the embedded STS, a closed port (STS unreachable) and the
fault-injecting stand-in (throttling).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from authenticator.emulator import Credentials, STSEmulator
from authenticator.presign import StaticCredentials, presign_get_caller_identity
from tests.fixtures.faultsts import FaultSTS, fault_key
from tests.fixtures.sts import assume_role, aws_env, unique_name
from tests.fixtures.webhook import (
    DEFAULT_CLUSTER_ID,
    TOKENREVIEW_V1,
    TOKENREVIEW_V1BETA1,
    WebhookFactory,
    WebhookServer,
    free_port,
    server_env,
    tokenreview,
)

REPO = Path(__file__).resolve().parents[2]
KUBEIAM = str(REPO / ".venv" / "bin" / "kubeiam")
AWS = str(REPO / ".venv" / "bin" / "aws")
REGION = "us-east-1"


@dataclass
class World:
    """The module's server and identities."""

    server: WebhookServer
    sts: STSEmulator
    alice: Credentials
    role_arn: str
    deployer: Credentials
    stranger: Credentials
    closed_endpoint: str
    fault: FaultSTS

    def mapping(self, *, with_stranger: bool = False) -> dict[str, object]:
        users: list[dict[str, object]] = [
            {
                "userarn": self.alice.arn,
                "username": "alice",
                "groups": ["devs", "team-{{AccountID}}"],
            }
        ]
        if with_stranger:
            users.append({"userarn": self.stranger.arn, "username": "stranger"})
        return {
            "mapRoles": [
                {
                    "rolearn": self.role_arn,
                    "username": "deploy:{{SessionName}}",
                    "groups": ["deployers"],
                }
            ],
            "mapUsers": users,
        }


@pytest.fixture(scope="module")
def world(
    webhook_factory: WebhookFactory, sts_emulator: STSEmulator, fault_sts: FaultSTS
) -> Iterator[World]:
    """Identities in the embedded STS and one running webhook that maps some of them."""
    alice = sts_emulator.create_user(unique_name("alice"))
    deployer = sts_emulator.create_user(unique_name("deployer"))
    role_arn = sts_emulator.create_role(unique_name("deploy"))
    stranger = sts_emulator.create_user(unique_name("stranger"))
    closed = f"http://127.0.0.1:{free_port()}"
    partial = World(
        server=None,  # type: ignore[arg-type]  # set below
        sts=sts_emulator,
        alice=alice,
        role_arn=role_arn,
        deployer=deployer,
        stranger=stranger,
        closed_endpoint=closed,
        fault=fault_sts,
    )
    partial.server = webhook_factory(
        partial.mapping(), extra_endpoints=[closed, fault_sts.url], workers=2, threads=4
    )
    yield partial


def _mint(creds: Credentials, endpoint: str, cluster: str = DEFAULT_CLUSTER_ID) -> str:
    """A token signed in-process with authenticator.presign."""
    from datetime import UTC, datetime

    static = StaticCredentials(
        creds.access_key_id, creds.secret_access_key, creds.session_token
    )
    return presign_get_caller_identity(
        credentials=static,
        region=REGION,
        cluster_id=cluster,
        now=datetime.now(UTC),
        endpoint_url=endpoint,
    ).token


def _kubeiam_token(creds: Credentials, endpoint: str, *extra: str) -> str:
    """A token from the real `kubeiam token` command."""
    env = aws_env(creds, REGION, endpoint)
    out = subprocess.run(
        [
            KUBEIAM,
            "token",
            "-i",
            DEFAULT_CLUSTER_ID,
            "--sts-endpoint",
            endpoint,
            "--no-cache",
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return str(json.loads(out.stdout)["status"]["token"])


def _status(resp: requests.Response) -> dict[str, object]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert body["kind"] == "TokenReview"
    status = body["status"]
    assert isinstance(status, dict)
    return status


class TestAuthentication:
    """Real tokens through gunicorn and the embedded STS."""

    def test_kubeiam_token_for_a_mapped_user(self, world: World) -> None:
        """A `kubeiam token` token authenticates with username, groups, uid, extra."""
        token = _kubeiam_token(world.alice, world.sts.url)
        status = _status(world.server.review(token))
        acct = world.alice.account_id
        assert status == {
            "authenticated": True,
            "user": {
                "username": "alice",
                "uid": f"aws-iam-authenticator:{acct}:{world.alice.user_id}",
                "groups": ["devs", f"team-{acct}"],
                "extra": {
                    "arn": [world.alice.arn],
                    "canonicalArn": [world.alice.arn],
                    "sessionName": [""],
                    "accessKeyId": [world.alice.access_key_id],
                    "principalId": [world.alice.user_id],
                    "sigs.k8s.io/aws-iam-authenticator/principalId": [
                        world.alice.user_id
                    ],
                },
            },
        }

    def test_aws_eks_get_token_for_a_mapped_role(self, world: World) -> None:
        """An `aws eks get-token` token for an assumed role maps via the role entry."""
        session = assume_role(
            world.sts, world.deployer, world.role_arn, session_name="bob@example.com"
        )
        out = subprocess.run(
            [
                AWS,
                "eks",
                "get-token",
                "--cluster-name",
                DEFAULT_CLUSTER_ID,
                "--output",
                "json",
            ],
            env=aws_env(session, REGION, world.sts.url),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        token = json.loads(out.stdout)["status"]["token"]
        status = _status(world.server.review(token, version=TOKENREVIEW_V1BETA1))
        user = status["user"]
        assert isinstance(user, dict)
        assert status["authenticated"] is True
        assert user["username"] == "deploy:bob-example.com"
        assert user["groups"] == ["deployers"]
        role_id = session.user_id.split(":")[0]
        assert user["uid"] == f"aws-iam-authenticator:{session.account_id}:{role_id}"
        assert user["extra"]["canonicalArn"] == [world.role_arn]
        assert user["extra"]["sessionName"] == ["bob@example.com"]

    @pytest.mark.parametrize("version", [TOKENREVIEW_V1, TOKENREVIEW_V1BETA1])
    def test_version_is_echoed(self, world: World, version: str) -> None:
        """The answer's apiVersion is the request's, for v1 and v1beta1."""
        resp = world.server.review(_mint(world.alice, world.sts.url), version=version)
        assert resp.json()["apiVersion"] == version

    def test_invalid_tokens_are_plain_denials(self, world: World) -> None:
        """Garbage, a wrong-cluster and a tampered token: 200, false, no error."""
        wrong_cluster = _mint(world.alice, world.sts.url, cluster="another-cluster")
        good = _mint(world.alice, world.sts.url)
        tampered = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
        for token in ("k8s-aws-v1.bm9wZQ", wrong_cluster, tampered):
            assert _status(world.server.review(token)) == {
                "authenticated": False,
                "user": {},
            }

    def test_unmapped_identity_then_mapped_within_two_seconds(
        self, world: World
    ) -> None:
        """Unmapped: status.error; after a file change the SAME token works in 2 s."""
        token = _kubeiam_token(world.stranger, world.sts.url)
        status = _status(world.server.review(token))
        assert status["authenticated"] is False
        assert "is not mapped" in str(status["error"])
        world.server.write_mapping(world.mapping(with_stranger=True))
        try:
            deadline = time.monotonic() + 2.0
            while True:
                status = _status(world.server.review(token))
                if status["authenticated"] is True or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert status["authenticated"] is True
            # both workers have the new table: every request now succeeds
            for _ in range(6):
                assert _status(world.server.review(token))["authenticated"] is True
        finally:
            world.server.write_mapping(world.mapping())

    def test_invalid_reload_keeps_the_last_good_mappings(self, world: World) -> None:
        """A broken mapping file is refused, counted, and the old table still serves."""
        token = _mint(world.alice, world.sts.url)
        world.server.write_mapping("mapUsers: [ {userarn: not-an-arn, username: x}\n")
        try:
            deadline = time.monotonic() + 3.0
            while (
                'kubeiam_mapping_reloads_total{result="error",source="file"}'
                not in world.server.metrics()
            ):
                assert time.monotonic() < deadline, "the broken file was never reported"
                time.sleep(0.1)
            for _ in range(4):
                assert _status(world.server.review(token))["authenticated"] is True
        finally:
            world.server.write_mapping(world.mapping())


class TestSTSFailures:
    """STS unreachable and throttling, through the real client."""

    def test_unreachable_sts_carries_error(self, world: World) -> None:
        """A token for an extra endpoint nobody listens on: 200, false, status.error."""
        status = _status(world.server.review(_mint(world.alice, world.closed_endpoint)))
        assert status["authenticated"] is False
        assert status["error"]

    def test_throttling_is_429_without_retry_after(self, world: World) -> None:
        """STS answering 400 Throttling: the webhook answers 429, no Retry-After."""
        creds = Credentials(
            access_key_id=fault_key("THROTTLE"),
            secret_access_key="x",
            arn="",
            user_id="",
            account_id="",
        )
        resp = world.server.review(_mint(creds, world.fault.url))
        assert resp.status_code == 429
        assert "Retry-After" not in resp.headers
        assert resp.headers["Content-Type"].startswith("application/json")


class TestHTTP:
    """400 / 405 / 413 and the health endpoints over TLS."""

    def test_not_a_tokenreview_is_400(self, world: World) -> None:
        """A JSON body that is not a TokenReview gets 400."""
        assert world.server.post(json.dumps({"kind": "Pod"})).status_code == 400

    def test_not_post_is_405(self, world: World) -> None:
        """GET /authenticate gets 405."""
        assert world.server.post("", method="GET").status_code == 405

    def test_over_64k_is_413(self, world: World) -> None:
        """A body over 64 KiB gets 413, with Content-Length and chunked alike."""
        big = json.dumps(tokenreview("x")) + " " * (64 * 1024)
        assert world.server.post(big).status_code == 413

        def chunks() -> Iterator[bytes]:
            data = big.encode()
            for i in range(0, len(data), 8192):
                yield data[i : i + 8192]

        assert world.server.post(chunks()).status_code == 413  # type: ignore[arg-type]  # requests streams it

    @pytest.mark.parametrize("chunked", [False, True])
    def test_exactly_64k_is_answered_one_more_byte_is_413(
        self, world: World, chunked: bool
    ) -> None:
        """65,536 bytes is a TokenReview (200); 65,537 is 413 (under gunicorn)."""
        doc = json.dumps(tokenreview("k8s-aws-v1.garbage"))
        exact = (doc + " " * (64 * 1024 - len(doc))).encode()
        assert len(exact) == 65536

        def body(data: bytes) -> bytes | Iterator[bytes]:
            if not chunked:
                return data
            return iter([data[i : i + 8192] for i in range(0, len(data), 8192)])

        answered = world.server.post(body(exact))  # type: ignore[arg-type]  # requests streams it
        assert answered.status_code == 200, answered.text
        assert answered.json()["status"]["authenticated"] is False
        refused = world.server.post(body(exact + b" "))  # type: ignore[arg-type]  # requests streams it
        assert refused.status_code == 413

    def test_health_endpoints(self, world: World) -> None:
        """/healthz and /readyz answer 200; /metrics has the SPEC families."""
        assert world.server.get("/healthz").status_code == 200
        assert world.server.get("/readyz").status_code == 200
        text = world.server.metrics()
        for family in (
            "kubeiam_authenticate_latency_seconds",
            "kubeiam_sts_requests_total",
            "kubeiam_verify_cache_total",
            "kubeiam_mapping_reloads_total",
            "kubeiam_mapping_entries",
        ):
            assert family in text


class TestMutualTLS:
    """Only a client with the API server's certificate completes the handshake."""

    def test_client_without_certificate_is_refused(self, world: World) -> None:
        """No client certificate: the TLS handshake fails; no HTTP answer at all."""
        with pytest.raises(requests.exceptions.ConnectionError):
            world.server.post(json.dumps(tokenreview("x")), cert=False)

    def test_client_with_another_cas_certificate_is_refused(self, world: World) -> None:
        """A certificate from another CA: refused at the TLS layer."""
        port = int(world.server.url.rsplit(":", 1)[1])
        context = ssl.create_default_context(cafile=str(world.server.pki.ca_file))
        context.load_cert_chain(*world.server.pki.rogue)
        refused = (ssl.SSLError, ConnectionResetError, BrokenPipeError)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            pytest.raises(refused),
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            # TLS 1.3: the server's verdict arrives with the first read.
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            if not tls.recv(1024):
                raise ConnectionResetError("closed without an answer")

    def test_client_with_the_apiserver_certificate_is_served(
        self, world: World
    ) -> None:
        """The API server's certificate is accepted."""
        assert world.server.get("/healthz").status_code == 200


class TestLogs:
    """Logs carry the review outcome and never the token, signature or query."""

    def test_plain_http_sts_endpoint_is_warned_about_at_start(
        self, world: World
    ) -> None:
        """The embedded STS (http on loopback) gets a warning line; mTLS gets none."""
        lines = [
            json.loads(x) for x in world.server.output().splitlines() if x[:1] == "{"
        ]
        warnings = [x for x in lines if x.get("event") == "insecure-setting"]
        assert any(
            world.sts.url in w["msg"] and "plain http" in w["msg"] for w in warnings
        ), warnings
        assert all(w["level"] == "warning" for w in warnings)
        assert not any("clientCAFile" in w["msg"] for w in warnings)

    def test_startup_warnings_name_each_open_door(self) -> None:
        """Plain-http STS endpoints and a missing clientCAFile are each named."""
        from webhook.server_cli import startup_warnings
        from webhook.settings import parse_settings

        doc = {
            "clusterID": "c",
            "sts": {"extraEndpoints": ["http://127.0.0.1:5000", "https://sts.local"]},
        }
        warnings = startup_warnings(parse_settings(doc))
        assert len(warnings) == 2
        assert warnings[0].startswith("sts.extraEndpoints[0] http://127.0.0.1:5000")
        assert "server.clientCAFile is not set" in warnings[1]
        secure = parse_settings(
            {"clusterID": "c", "server": {"clientCAFile": "ca.crt"}}
        )
        assert startup_warnings(secure) == []

    def test_output_never_contains_token_or_signature(self, world: World) -> None:
        """gunicorn's and the app's output hold no token, signature or query string."""
        token = _kubeiam_token(world.alice, world.sts.url)
        world.server.review(token, query="?timeout=30s&secret=query")
        world.server.review(token[:-1])  # a broken one is logged as rejected
        time.sleep(0.2)
        out = world.server.output()
        url = _decode(token)
        signature = re.search(r"X-Amz-Signature=([0-9a-f]{64})", url)
        assert signature is not None
        assert token not in out
        assert token[11:51] not in out
        assert signature.group(1) not in out
        assert "X-Amz-Credential" not in out
        assert "secret=query" not in out
        reviews = [
            json.loads(line)
            for line in out.splitlines()
            if '"event":"tokenreview"' in line
        ]
        assert any(
            r["result"] == "success" and r["arn"] == world.alice.arn for r in reviews
        )
        assert any(r["result"] == "invalid_token" for r in reviews)
        access = [
            json.loads(line) for line in out.splitlines() if '"event":"access"' in line
        ]
        assert access and all("?" not in a["path"] for a in access)


def _decode(token: str) -> str:
    import base64

    body = token.removeprefix("k8s-aws-v1.")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


class TestLifecycle:
    """Start-up failures and graceful shutdown."""

    def test_bad_config_exits_1_naming_file_key_and_reason(
        self, tmp_path: Path
    ) -> None:
        """`kubeiam server` with a bad value exits 1 with file, key path and reason."""
        config = tmp_path / "config.yaml"
        config.write_text("clusterID: demo\nserver: {port: 99999}\n")
        out = subprocess.run(
            [sys.executable, "-m", "kubeiam", "server", "--config", str(config)],
            capture_output=True,
            text=True,
            env=server_env(),
            timeout=60,
        )
        assert out.returncode == 1
        assert (
            f"{config}: server.port: must be an integer from 1 to 65535" in out.stderr
        )

    def test_sigterm_finishes_in_flight_reviews(
        self, webhook_factory: WebhookFactory, fault_sts: FaultSTS
    ) -> None:
        """SIGTERM: a review waiting on a slow STS still gets its answer; exit 0."""
        server = webhook_factory(
            {}, extra_endpoints=[fault_sts.url], workers=1, threads=2
        )
        creds = Credentials(
            access_key_id=fault_key("SLOW"),
            secret_access_key="x",
            arn="",
            user_id="",
            account_id="",
        )
        token = _mint(creds, fault_sts.url)
        answers: list[requests.Response] = []
        worker = threading.Thread(target=lambda: answers.append(server.review(token)))
        seen = len(fault_sts.requests)
        worker.start()
        deadline = time.monotonic() + 5
        while len(fault_sts.requests) == seen and time.monotonic() < deadline:
            time.sleep(0.01)
        server.terminate()
        worker.join(15)
        assert server.stop() == 0
        assert len(answers) == 1
        status = _status(answers[0])
        # the fault STS's identity is not mapped: a complete, well-formed answer
        assert "is not mapped" in str(status["error"])


class TestCLI:
    """`kubeiam server` start-up checks, in-process (they fail before gunicorn)."""

    def _config(self, tmp_path: Path, **server: object) -> Path:
        from tests.fixtures.webhook import make_pki

        pki = make_pki(tmp_path)
        mapping = tmp_path / "mapping.yaml"
        mapping.write_text("mapUsers: []\n")
        doc: dict[str, object] = {
            "clusterID": "c",
            "server": {
                "certFile": str(pki.server_cert),
                "keyFile": str(pki.server_key),
                **server,
            },
            "sources": [{"file": {"path": str(mapping)}}],
        }
        path = tmp_path / "config.yaml"
        path.write_text(json.dumps(doc))
        return path

    def _run(
        self, argv: list[str], capsys: pytest.CaptureFixture[str]
    ) -> tuple[int, str]:
        from webhook.server_cli import main

        code = main(argv)
        return code, capsys.readouterr().err

    def test_help_has_examples(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--help exits 0 and shows examples."""
        from webhook.server_cli import main

        assert main(["--help"]) == 0
        assert (
            "kubeiam server --config /etc/kubeiam/config.yaml"
            in capsys.readouterr().out
        )

    def test_missing_config_flag_is_usage_error(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No --config: exit 2."""
        code, err = self._run([], capsys)
        assert code == 2
        assert "--config" in err

    def test_tls_is_required(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A config without certFile/keyFile is refused: the webhook serves TLS only."""
        path = tmp_path / "config.yaml"
        path.write_text("clusterID: c\n")
        code, err = self._run(["--config", str(path)], capsys)
        assert code == 1
        assert f"{path}: server.certFile: required" in err

    def test_unloadable_certificate(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A key that does not match its certificate is refused at start."""
        path = self._config(tmp_path)
        (tmp_path / "x").mkdir()
        other = self._config(tmp_path / "x")
        doc = json.loads(path.read_text())
        doc["server"]["keyFile"] = json.loads(other.read_text())["server"]["keyFile"]
        path.write_text(json.dumps(doc))
        code, err = self._run(["--config", str(path)], capsys)
        assert code == 1
        assert "server.certFile/keyFile: cannot load" in err

    def test_missing_client_ca(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A clientCAFile that does not exist is refused at start."""
        path = self._config(tmp_path, clientCAFile=str(tmp_path / "nope.crt"))
        code, err = self._run(["--config", str(path)], capsys)
        assert code == 1
        assert "server.clientCAFile: cannot load" in err

    def test_broken_mapping_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A mapping file that does not validate: exit 1, one line naming both files."""
        path = self._config(tmp_path)
        (tmp_path / "mapping.yaml").write_text(
            "mapUsers: [{userarn: nope, username: x}, {userarn: no, username: y}]\n"
        )
        code, err = self._run(["--config", str(path)], capsys)
        assert code == 1
        assert "2 problems" in err
        assert err.startswith(f"kubeiam server: {path}: sources[0].file.path: ")
        assert str(tmp_path / "mapping.yaml") in err
        assert "mapUsers[0].userarn" in err
        assert err.count("\n") == 1

    def test_kubernetes_source_without_a_kubeconfig(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A configMap source with no kubeconfig outside a pod: exit 1 naming it."""
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        path = self._config(tmp_path)
        doc = json.loads(path.read_text())
        doc["sources"].append({"configMap": {"namespace": "kube-system", "name": "a"}})
        path.write_text(json.dumps(doc))
        code, err = self._run(["--config", str(path)], capsys)
        assert code == 1
        assert err.startswith(f"kubeiam server: {path}: sources[1].configMap: ")
        assert "in-cluster config" in err
        assert err.count("\n") == 1

    def test_plain_http_sts_endpoint_off_loopback(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An extra endpoint with plain http to a non-loopback host is refused."""
        path = self._config(tmp_path)
        doc = json.loads(path.read_text())
        doc["sts"] = {"extraEndpoints": ["http://sts.example.com"]}
        path.write_text(json.dumps(doc))
        code, err = self._run(["--config", str(path)], capsys)
        assert code == 1
        assert f"{path}: sts.extraEndpoints[0]:" in err
        assert "loopback" in err

    @pytest.mark.parametrize(
        ("flag", "value"), [("--port", "0"), ("--workers", "0"), ("--threads", "-1")]
    )
    def test_bad_flag_values(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
    ) -> None:
        """Out-of-range flag values are refused with the flag's name."""
        code, err = self._run(
            ["--config", str(self._config(tmp_path)), flag, value], capsys
        )
        assert code == 1
        assert flag in err

    def test_gunicorn_options(self, tmp_path: Path) -> None:
        """gthread workers, TLS, CERT_REQUIRED with a client CA, bracketed IPv6 bind."""
        from webhook.server_cli import build_gunicorn_options
        from webhook.settings import load_settings

        path = self._config(tmp_path, address="::1", port=8443, workers=3, threads=7)
        doc = json.loads(path.read_text())
        doc["server"]["clientCAFile"] = str(tmp_path / "ca.crt")
        path.write_text(json.dumps(doc))
        options = build_gunicorn_options(load_settings(path))
        assert options["bind"] == ["[::1]:8443"]
        assert options["worker_class"] == "webhook.server_worker.GuardedThreadWorker"
        assert (options["workers"], options["threads"]) == (3, 7)
        assert options["cert_reqs"] == ssl.CERT_REQUIRED
        assert options["ca_certs"] == str(tmp_path / "ca.crt")
        assert options["certfile"].endswith("server.crt")
        assert options["preload_app"] is False


class TestReloadConsistency:
    """Requests during reloads see one whole table, never a mix."""

    def test_answers_match_one_table_while_it_flips(self, world: World) -> None:
        """While the file flips between two tables, each answer matches one of them."""
        token = _mint(world.alice, world.sts.url)
        tables = [
            {
                "mapUsers": [
                    {
                        "userarn": world.alice.arn,
                        "username": "alice-a",
                        "groups": ["ga1", "ga2"],
                    }
                ]
            },
            {
                "mapUsers": [
                    {
                        "userarn": world.alice.arn,
                        "username": "alice-b",
                        "groups": ["gb1", "gb2"],
                    }
                ]
            },
        ]
        allowed = {
            ("alice", ("devs", f"team-{world.alice.account_id}")),
            ("alice-a", ("ga1", "ga2")),
            ("alice-b", ("gb1", "gb2")),
        }
        seen: set[tuple[str, tuple[str, ...]]] = set()
        stop = threading.Event()
        errors: list[str] = []

        def reviewer() -> None:
            while not stop.is_set():
                status = _status(world.server.review(token))
                user = status["user"]
                assert isinstance(user, dict)
                pair = (str(user["username"]), tuple(user["groups"]))
                seen.add(pair)
                if pair not in allowed:
                    errors.append(repr(pair))

        thread = threading.Thread(target=reviewer)
        thread.start()
        try:
            # Each table stays long enough (reload debounce + poll) to be served
            # even on a loaded 2-core machine; the property under test is "never a mix".
            for i in range(4):
                world.server.write_mapping(tables[i % 2])
                time.sleep(1.2)
        finally:
            stop.set()
            thread.join(10)
            world.server.write_mapping(world.mapping())
        assert errors == []
        assert {"alice-a", "alice-b"} <= {name for name, _ in seen}
