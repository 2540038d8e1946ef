"""``kubeiam demo`` runs the whole path and shows identities and a rejection."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kubeiam.demo import STEPS, DemoContext, Step, main, run_steps

KUBEIAM = str(Path(sys.executable).with_name("kubeiam"))


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBEIAM, "demo", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def summary() -> dict[str, object]:
    """The ``-o json`` summary of one demo run."""
    done = _demo("-o", "json")
    assert done.returncode == 0, done.stderr
    parsed = json.loads(done.stdout)
    assert isinstance(parsed, dict)
    return parsed


@pytest.fixture(scope="module")
def human_output() -> str:
    """The human output of one demo run."""
    done = _demo()
    assert done.returncode == 0, done.stderr
    return done.stdout


class TestHumanOutput:
    """The default output explains each step."""

    def test_steps_identities_and_rejection(self, human_output: str) -> None:
        """Numbered steps, both verified identities, and the refused replay appear."""
        out = human_output
        titles = re.findall(r"^\[(\d+)/(\d+)\] (.+)$", out, re.MULTILINE)
        assert [t[2] for t in titles] == [step.title for step in STEPS]
        assert [int(t[0]) for t in titles] == list(range(1, len(STEPS) + 1))
        assert re.search(r"arn\s+arn:aws:iam::\d{12}:user/demo/alice", out)
        assert re.search(
            r"arn\s+arn:aws:sts::\d{12}:assumed-role/deployer/alice-session", out
        )
        assert re.search(r"canonicalArn\s+arn:aws:iam::\d{12}:role/deployer\n", out)
        assert "refused by STS (reason sts_rejected)" in out
        assert "SignatureDoesNotMatch" in out

    def test_no_secret_is_printed(self, human_output: str) -> None:
        """Signatures and session tokens are elided; no secret key is shown."""
        out = human_output
        assert "X-Amz-Signature       <64 characters, elided>" in out
        assert re.search(r"X-Amz-Security-Token  <\d+ characters, elided>", out)
        assert not re.search(r"\b[0-9a-f]{64}\b", out)


class TestJSONOutput:
    """``-o json`` is a machine summary."""

    def test_identities(self, summary: dict[str, object]) -> None:
        """Both principals verify to identities with the SPEC field names."""
        identities = summary["identities"]
        assert isinstance(identities, list)
        by_principal = {i["principal"]: i for i in identities}
        user, role = by_principal["user"], by_principal["role"]
        assert re.fullmatch(r"arn:aws:iam::\d{12}:user/demo/alice", user["arn"])
        assert user["canonicalArn"] == user["arn"]
        assert user["sessionName"] == ""
        assert user["userId"].startswith("AIDA")
        assert role["sessionName"] == "alice-session"
        assert role["canonicalArn"] == f"arn:aws:iam::{role['accountId']}:role/deployer"
        assert role["userId"].startswith("AROA")
        principals = summary["principals"]
        assert isinstance(principals, dict)
        assert user["accessKeyId"] == principals["user"]["accessKeyId"]
        assert role["accessKeyId"] == principals["role"]["accessKeyId"]

    def test_rejection(self, summary: dict[str, object]) -> None:
        """The replay against another cluster is refused by STS with its reason."""
        assert summary["rejections"] == [
            {
                "case": "token for another cluster",
                "cluster": "another-cluster",
                "error": "STSRejectedError",
                "reason": "sts_rejected",
                "message": summary["rejections"][0]["message"],  # type: ignore[index]
            }
        ]
        assert summary["stsOutcomes"] == {"OK": 2, "SignatureDoesNotMatch": 1}

    def test_decoded_token_elides_secrets(self, summary: dict[str, object]) -> None:
        """The decoded token lists the presigned parameters, secrets elided."""
        decoded = summary["decodedToken"]
        assert isinstance(decoded, dict)
        params = decoded["parameters"]
        assert params["Action"] == "GetCallerIdentity"
        assert params["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
        assert params["X-Amz-Signature"] == "<64 characters, elided>"
        assert summary["steps"] == [step.name for step in STEPS]


class TestSteps:
    """The step list is extensible."""

    def test_appended_step_sees_the_context(self) -> None:
        """A step added after the built-in ones reads their results from the context."""
        seen: dict[str, object] = {}

        def extra(ctx: DemoContext) -> None:
            seen["identities"] = sorted(ctx.identities)
            ctx.record("extra", True)

        ctx = DemoContext(cluster_id="ext", region="us-east-1", out=None)
        try:
            run_steps(ctx, [*STEPS, Step("extra", "An added step", extra)])
        finally:
            if ctx.sts is not None:
                ctx.sts.close()
            if ctx.emulator is not None:
                ctx.emulator.stop()
        assert seen["identities"] == ["role", "user"]
        assert ctx.summary["extra"] is True
        assert ctx.summary["steps"] == [*(s.name for s in STEPS), "extra"]

    def test_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown option is a usage error (exit 2)."""
        with pytest.raises(SystemExit) as info:
            main(["--no-such-flag"])
        assert info.value.code == 2
        assert "usage: kubeiam demo" in capsys.readouterr().err

    def test_missing_local_extra(self, tmp_path: Path) -> None:
        """Without moto (the 'local' extra) the demo says what to install, exit 1."""
        fake = tmp_path / "moto"
        fake.mkdir()
        (fake / "__init__.py").write_text('raise ImportError("absent", name="moto")\n')
        done = subprocess.run(
            [KUBEIAM, "demo"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(tmp_path)},
        )
        assert done.returncode == 1
        assert done.stderr.strip().endswith("(moto is missing)")
        assert "pip install 'kubeiam[local]'" in done.stderr
        assert done.stderr.count("\n") == 1


class TestWebhookStep:
    """The webhook step: ``kubeiam server`` over mTLS answers three TokenReviews."""

    def test_reviews_as_the_api_server_reads_them(
        self, summary: dict[str, object]
    ) -> None:
        """Mapped role and user are authenticated; the unmapped one gets an error."""
        webhook = summary["webhook"]
        assert isinstance(webhook, dict)
        reviews = {r["principal"]: r for r in webhook["reviews"]}
        role, user, unmapped = reviews["role"], reviews["user"], reviews["unmapped"]
        for review in (role, user, unmapped):
            assert review["httpStatus"] == 200
            assert review["apiVersion"] == "authentication.k8s.io/v1"
            assert review["kind"] == "TokenReview"
        assert role["status"]["user"]["username"] == "deployer:alice-session"
        assert role["status"]["user"]["groups"] == ["deployers"]
        assert role["status"]["user"]["extra"]["canonicalArn"] == [
            f"arn:aws:iam::{role['status']['user']['uid'].split(':')[1]}:role/deployer"
        ]
        assert user["status"]["user"]["username"] == "alice"
        assert user["verdict"] == "allow"
        assert unmapped["status"]["authenticated"] is False
        assert unmapped["status"]["error"].endswith("user/demo/mallory is not mapped")
        assert unmapped["verdict"] == "error"

    def test_human_output_shows_the_answers(self, human_output: str) -> None:
        """The human output shows each answer and what the API server makes of it."""
        assert (
            "kubeiam server (gunicorn, gthread) on https://127.0.0.1:" in human_output
        )
        assert '"username": "deployer:alice-session"' in human_output
        assert "is not mapped" in human_output
        assert "NOT cached" in human_output


def _pids_with(fragment: str) -> list[int]:
    """PIDs whose command line mentions ``fragment``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if fragment.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_stops_the_webhook_and_removes_its_keys(
    tmp_path: Path, signum: int
) -> None:
    """SIGTERM/SIGHUP while the demo's webhook runs: server stopped, keys removed."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    demo = subprocess.Popen(
        [KUBEIAM, "demo"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    servers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        directory = None
        while time.monotonic() < deadline and directory is None:
            for candidate in tmp_path.glob("kubeiam-demo-webhook-*"):
                log = candidate / "server.log"
                if log.exists() and log.stat().st_size > 0:
                    directory = candidate
            time.sleep(0.05)
        assert directory is not None, "the demo's webhook never started"
        assert list(directory.glob("*.key"))
        servers = _pids_with(str(directory))
        assert servers, "no server process found"
        demo.send_signal(signum)
        assert demo.wait(30) == 128 + signum
        wait_deadline = time.monotonic() + 20
        while any(_alive(p) for p in servers) and time.monotonic() < wait_deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in servers)
        assert not directory.exists()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(5)
        for pid in servers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
