"""``kubeiam server`` on a port already in use: one line naming it, at once."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.webhook import make_pki, server_env, write_config
from webhook.errors import ConfigError
from webhook.portcheck import check_port_free


def test_busy_port_is_one_line(tmp_path: Path) -> None:
    """A listener on the port: exit 1, one stderr line naming the port, no retries."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = int(busy.getsockname()[1])
        mapping = tmp_path / "mapping.yaml"
        mapping.write_text(json.dumps({"mapUsers": []}))
        config = write_config(
            tmp_path, pki=make_pki(tmp_path), port=port, mapping_path=mapping
        )
        done = subprocess.run(
            [sys.executable, "-m", "kubeiam", "server", "--config", str(config)],
            env=server_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {port} is already in use (127.0.0.1:{port})" in lines[0]
    assert lines[0].startswith("kubeiam server: ")
    assert done.stdout == ""


def test_free_port_passes_and_stays_free() -> None:
    """The check binds and releases: the port can be bound right after."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    check_port_free("127.0.0.1", port)
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_unbindable_address_is_named() -> None:
    """An address this machine does not have is reported with the address."""
    with pytest.raises(ConfigError, match=r"cannot listen on 192\.0\.2\.1:"):
        check_port_free("192.0.2.1", 8443)  # TEST-NET-1: bind fails, nothing sent
