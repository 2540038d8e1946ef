"""The server's STS region from instance metadata (issue 14, item 5).

A loopback IMDS stand-in (IMDSv2: a token PUT, then the availability zone)
answers; nothing reaches the real 169.254.169.254.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from authenticator.ec2 import region_from_instance_metadata
from tests.fixtures.webhook import free_port, make_pki, server_env, write_config
from webhook.imds import with_region
from webhook.settings import parse_settings

TOKEN = "imds-token-for-tests"


class _IMDS(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.zone = "eu-west-3b"
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _IMDS

    def log_message(self, *_args: object) -> None:
        """Quiet."""

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        self.server.paths.append(f"PUT {self.path}")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        self._send(200 if ttl else 400, TOKEN if ttl else "")

    def do_GET(self) -> None:
        self.server.paths.append(f"GET {self.path}")
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            self._send(401, "")
        elif self.path == "/latest/meta-data/placement/availability-zone/":
            self._send(200, self.server.zone)
        else:
            self._send(404, "")


@pytest.fixture(scope="module")
def imds() -> Iterator[_IMDS]:
    """The stand-in, for the whole module."""
    server = _IMDS()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _env(imds: _IMDS) -> dict[str, str]:
    return {"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url}


class TestRegionFromMetadata:
    """region_from_instance_metadata and with_region."""

    def test_zone_gives_region(self, imds: _IMDS) -> None:
        """IMDSv2: a token, then the zone minus its letter."""
        imds.paths.clear()
        assert region_from_instance_metadata(_env(imds)) == "eu-west-3"
        assert imds.paths == [
            "PUT /latest/api/token",
            "GET /latest/meta-data/placement/availability-zone/",
        ]

    def test_disabled_asks_nothing(self, imds: _IMDS) -> None:
        """AWS_EC2_METADATA_DISABLED=true: no request at all."""
        imds.paths.clear()
        env = {**_env(imds), "AWS_EC2_METADATA_DISABLED": "true"}
        assert region_from_instance_metadata(env) is None
        assert imds.paths == []

    def test_unreachable_is_quick_none(self) -> None:
        """A closed port: None (one attempt), never an exception."""
        env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
        assert region_from_instance_metadata(env) is None

    def test_configured_region_wins(self, imds: _IMDS) -> None:
        """sts.region in the config: metadata is not asked."""
        imds.paths.clear()
        settings = parse_settings({"clusterID": "c", "sts": {"region": "us-west-2"}})
        out, source = with_region(settings, _env(imds))
        assert (out.sts.region, source) == ("us-west-2", "config")
        assert imds.paths == []

    def test_filled_when_unset(self, imds: _IMDS) -> None:
        """No sts.region: the metadata region is used."""
        out, source = with_region(parse_settings({"clusterID": "c"}), _env(imds))
        assert (out.sts.region, source) == ("eu-west-3", "instance metadata")

    def test_other_partition_ignored(self, imds: _IMDS) -> None:
        """A region of another partition than the server's is not taken."""
        imds.zone = "cn-north-1a"
        try:
            out, source = with_region(parse_settings({"clusterID": "c"}), _env(imds))
        finally:
            imds.zone = "eu-west-3b"
        assert (out.sts.region, source) == (None, "default")

    @pytest.mark.parametrize("zone", ["", "EU-WEST-3B", "eu west 3b"])
    def test_garbage_ignored(self, imds: _IMDS, zone: str) -> None:
        """An answer that is not a zone gives no region."""
        imds.zone = zone
        try:
            assert region_from_instance_metadata(_env(imds)) is None
        finally:
            imds.zone = "eu-west-3b"


def test_server_logs_the_metadata_region(imds: _IMDS, tmp_path: Path) -> None:
    """kubeiam server without sts.region starts with the metadata region."""
    pki = make_pki(tmp_path)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(json.dumps({"mapUsers": []}))
    config = write_config(tmp_path, pki=pki, port=free_port(), mapping_path=mapping)
    doc = json.loads(config.read_text())
    del doc["sts"]["region"]
    config.write_text(json.dumps(doc))
    env = server_env()
    del env["AWS_EC2_METADATA_DISABLED"]
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubeiam", "server", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        start = None
        for _ in range(300):  # at most 30 s
            for line in log.read_text().splitlines():
                doc = json.loads(line)
                if doc.get("event") == "start":
                    start = doc
            if start is not None or proc.poll() is not None:
                break
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert start is not None, log.read_text()
    assert start["stsRegion"] == "eu-west-3"
    assert start["stsRegionFrom"] == "instance metadata"
