"""``kubeiam sts-emulator --exports-only`` returns, so ``eval "$(...)"`` works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from authenticator.emulator import STSEmulator
from tests.fixtures.executables import KUBEIAM
from tests.fixtures.sts import unique_name

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(KUBEIAM).parent


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_REGION="us-east-1",
        KUBEIAM_CACHE_DIR=str(tmp_path / "cache"),
    )
    return env


def test_eval_exports_then_token_and_verify(tmp_path: Path) -> None:
    """eval "$(... --exports-only)" returns; token and verify then use the exports."""
    user = unique_name("exports")
    script = f"""
set -e
eval "$(kubeiam sts-emulator --port 0 --create-user {user} --exports-only)"
echo "pid=$KUBEIAM_STS_EMULATOR_PID"
trap 'kill "$KUBEIAM_STS_EMULATOR_PID"' EXIT
kubeiam token -i demo --token-only --no-cache | kubeiam verify -t - -i demo -o json
"""
    done = subprocess.run(
        ["bash", "-c", script],
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    first, rest = done.stdout.split("\n", 1)
    pid = int(first.removeprefix("pid="))
    assert json.loads(rest)["arn"].endswith(f":user/{user}")
    # the trap stopped the background server (bounded wait: 10 s)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the background emulator outlived kill")


def test_busy_port_fails_in_the_foreground(
    sts_emulator: STSEmulator, tmp_path: Path
) -> None:
    """A start-up error comes back on stderr with exit 1, and no export lines."""
    done = subprocess.run(
        [
            KUBEIAM,
            "sts-emulator",
            "--port",
            str(sts_emulator.port),
            "--exports-only",
        ],
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "cannot listen" in done.stderr
