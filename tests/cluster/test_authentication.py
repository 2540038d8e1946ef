"""Authentication judged by a real kube-apiserver.

The path: kubectl -> kubeiam token -> API server -> kubeiam server.

Each test makes its own IAM identities in the STS emulator and maps them in the
webhook's file source; the kubeconfig is the one ``kubeiam kubeconfig`` writes.
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from authenticator.emulator import Credentials, STSEmulator
from tests.fixtures.controlplane import (
    CLUSTER_ID,
    KUBEIAM,
    REGION,
    ControlPlane,
    token_from_url,
)
from tests.fixtures.sts import assume_role, presign_url, unique_name

UNAUTHORIZED = "You must be logged in to the server (Unauthorized)"


def _mint(cp: ControlPlane, creds: Credentials, cluster_id: str) -> str:
    """``kubeiam token --token-only`` for ``cluster_id``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(cp.exec_env(creds))
    out = subprocess.run(
        [KUBEIAM, "token", "-i", cluster_id, "--token-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _whoami_with_token(
    cp: ControlPlane, token: str
) -> subprocess.CompletedProcess[str]:
    return cp.with_token(token, "auth", "whoami", "-o", "json")


class TestWhoAmI:
    """``kubectl auth whoami`` shows what kubeiam said, as the API server took it."""

    def test_iam_user(
        self, control_plane: ControlPlane, sts_emulator: STSEmulator, tmp_path: Path
    ) -> None:
        """An IAM user: username, uid, groups (+ system:authenticated) and extra."""
        user = sts_emulator.create_user(unique_name("whoami-user"))
        control_plane.map_identity(user.arn, "alice-{{AccountID}}", ["team-x"])
        kubeconfig = control_plane.user_kubeconfig(tmp_path / "kubeconfig")
        info = control_plane.wait_whoami(user, kubeconfig)
        assert info["username"] == f"alice-{user.account_id}"
        assert info["uid"] == f"aws-iam-authenticator:{user.account_id}:{user.user_id}"
        assert info["groups"] == ["team-x", "system:authenticated"]
        extra = info["extra"]
        assert isinstance(extra, dict)
        assert extra["arn"] == [user.arn]
        assert extra["canonicalArn"] == [user.arn]
        assert extra["accessKeyId"] == [user.access_key_id]
        assert extra["principalId"] == [user.user_id]
        assert extra["sigs.k8s.io/aws-iam-authenticator/principalId"] == [user.user_id]

    def test_role_session(
        self, control_plane: ControlPlane, sts_emulator: STSEmulator, tmp_path: Path
    ) -> None:
        """A role session: the session name is in the username and in extra."""
        role = sts_emulator.create_role(unique_name("whoami-role"))
        base = sts_emulator.create_user(unique_name("whoami-base"))
        session = assume_role(sts_emulator, base, role, session_name="carol")
        control_plane.map_identity(role, "dev:{{SessionName}}", ["developers"])
        kubeconfig = control_plane.user_kubeconfig(tmp_path / "kubeconfig")
        info = control_plane.wait_whoami(session, kubeconfig)
        assert info["username"] == "dev:carol"
        assert info["groups"] == ["developers", "system:authenticated"]
        extra = info["extra"]
        assert isinstance(extra, dict)
        assert extra["sessionName"] == ["carol"]
        assert extra["canonicalArn"] == [role]
        assert str(extra["arn"][0]).endswith(f"/{role.rsplit('/', 1)[1]}/carol")
        assert str(info["uid"]).startswith(
            f"aws-iam-authenticator:{session.account_id}:"
        )


class TestRefused:
    """What the API server refuses because kubeiam said no."""

    def test_unmapped_identity_gets_401(
        self, control_plane: ControlPlane, sts_emulator: STSEmulator, tmp_path: Path
    ) -> None:
        """A valid but unmapped IAM user: kubectl gets 401 Unauthorized."""
        stranger = sts_emulator.create_user(unique_name("stranger"))
        kubeconfig = control_plane.user_kubeconfig(tmp_path / "kubeconfig")
        out = control_plane.as_identity(
            stranger, kubeconfig, "get", "--raw", "/version"
        )
        assert out.returncode != 0
        assert UNAUTHORIZED in out.stderr
        assert "is not mapped" in control_plane.webhook_log() or (
            "unknown_user" in control_plane.webhook_log()
        )

    def test_token_for_another_cluster_fails(
        self, control_plane: ControlPlane, sts_emulator: STSEmulator
    ) -> None:
        """A mapped user's token minted for another cluster ID is refused."""
        user = sts_emulator.create_user(unique_name("other-cluster"))
        control_plane.map_identity(user.arn, "other-cluster-user")
        good = _mint(control_plane, user, CLUSTER_ID)
        deadline = time.monotonic() + 30
        while _whoami_with_token(control_plane, good).returncode != 0:
            assert time.monotonic() < deadline, "mapping never took effect"
            time.sleep(0.5)
        other = _mint(control_plane, user, "another-cluster")
        out = _whoami_with_token(control_plane, other)
        assert out.returncode != 0
        assert UNAUTHORIZED in out.stderr

    def test_expired_token_fails(
        self, control_plane: ControlPlane, sts_emulator: STSEmulator
    ) -> None:
        """A token signed an hour ago is refused; the same signed now is accepted."""
        user = sts_emulator.create_user(unique_name("expired"))
        control_plane.map_identity(user.arn, "expired-user")

        def token(signed_at: datetime | None) -> str:
            return token_from_url(
                presign_url(
                    user,
                    endpoint=control_plane.sts_url,
                    cluster_id=CLUSTER_ID,
                    region=REGION,
                    signed_at=signed_at,
                )
            )

        deadline = time.monotonic() + 30
        while _whoami_with_token(control_plane, token(None)).returncode != 0:
            assert time.monotonic() < deadline, "a fresh token was never accepted"
            time.sleep(0.5)
        old = token(datetime.now(UTC) - timedelta(hours=1))
        out = _whoami_with_token(control_plane, old)
        assert out.returncode != 0
        assert UNAUTHORIZED in out.stderr


class TestOutage:
    """kubeiam server stopped: fast 401s; the API server's cache keeps known tokens."""

    def test_stop_and_restart(
        self, control_plane: ControlPlane, sts_emulator: STSEmulator, tmp_path: Path
    ) -> None:
        """Stopped: a new token fails fast with 401; a cached one still works.

        Restarted: the new token works again.
        """
        known = sts_emulator.create_user(unique_name("outage-known"))
        fresh = sts_emulator.create_user(unique_name("outage-fresh"))
        control_plane.map_identity(known.arn, "known")
        control_plane.map_identity(fresh.arn, "fresh")
        known_token = _mint(control_plane, known, CLUSTER_ID)
        fresh_token = _mint(control_plane, fresh, CLUSTER_ID)
        deadline = time.monotonic() + 30
        while _whoami_with_token(control_plane, known_token).returncode != 0:
            assert time.monotonic() < deadline, "mapping never took effect"
            time.sleep(0.5)
        cached_at = time.monotonic()
        control_plane.stop_webhook()
        try:
            start = time.monotonic()
            out = _whoami_with_token(control_plane, fresh_token)
            refused_in = time.monotonic() - start
            assert out.returncode != 0
            assert UNAUTHORIZED in out.stderr
            assert refused_in < 15.0, f"401 took {refused_in:.1f} s"
            # The API server cached the known token's TokenReview (cache TTL 30 s).
            cached = _whoami_with_token(control_plane, known_token)
            if time.monotonic() - cached_at < 25.0:
                assert cached.returncode == 0, cached.stderr
        finally:
            control_plane.start_webhook()
        deadline = time.monotonic() + 30
        while (out := _whoami_with_token(control_plane, fresh_token)).returncode != 0:
            assert time.monotonic() < deadline, out.stderr
            time.sleep(0.5)
        print(f"outage: 401 for an uncached token after {refused_in:.2f} s")
