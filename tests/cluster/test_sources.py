"""The Kubernetes mapping sources against the real API server.

``kubeiam server`` reads ``kube-system/aws-auth`` and the ``IAMIdentityMapping``
objects with a TokenRequest token of the ``kubeiam`` ServiceAccount from
``manifests/rbac.yaml`` (tests/fixtures/controlplane.py); every change here is
made with kubectl and observed through ``kubectl auth whoami`` as the mapped
identity. The tests in a class run in order (they share one aws-auth).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path

import pytest
import urllib3

from authenticator.emulator import Credentials, STSEmulator
from authenticator.mapping_model import MappingSet
from tests.fixtures.controlplane import CLUSTER_ID, REGION, ControlPlane, token_from_url
from tests.fixtures.sts import presign_url, unique_name
from webhook.sources_kube import ConfigMapSource, load_api_client

# How long a kubectl edit may take to reach the webhook (watch event + rebuild);
# measured well under 2 s on two busy cores.
PROPAGATION_BOUND_S = 10.0
# After an API-server restart the watch reconnects with backoff (1, 2, 4 ... s).
RESTART_BOUND_S = 45.0


def _aws_auth(map_users: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "aws-auth", "namespace": "kube-system"},
        "data": {"mapUsers": map_users},
    }


def _entry(user: Credentials, username: str, groups: list[str]) -> str:
    return (
        f'- userarn: "{user.arn}"\n  username: "{username}"\n'
        f"  groups: {json.dumps(groups)}\n"
    )


def _reload_count(cp: ControlPlane, source: str, result: str) -> float:
    pattern = re.compile(
        r'^kubeiam_mapping_reloads_total\{(?=[^}]*source="'
        + re.escape(source)
        + r'")(?=[^}]*result="'
        + re.escape(result)
        + r'")[^}]*\} (\S+)$',
        re.M,
    )
    return sum(float(m) for m in pattern.findall(cp.webhook_get("/metrics").text))


def _whoami(cp: ControlPlane, creds: Credentials, kubeconfig: Path) -> str | None:
    """The username the API server sees, or None when it answers 401."""
    out = cp.as_identity(creds, kubeconfig, "auth", "whoami", "-o", "json")
    if out.returncode != 0:
        assert "Unauthorized" in out.stderr, out.stderr
        return None
    return str(json.loads(out.stdout)["status"]["userInfo"]["username"])


def _until_unmapped(cp: ControlPlane, creds: Credentials, bound: float) -> float:
    """Seconds until a freshly signed token is refused; fail after ``bound``.

    Fresh tokens, because the API server caches a successful TokenReview for
    the webhook cache TTL (30 s here): a token it accepted before the removal
    keeps working until then. A new token each try (signatures change every
    second), so no try hits that cache.
    """
    start = time.monotonic()
    while True:
        token = token_from_url(
            presign_url(
                creds, endpoint=cp.sts_url, cluster_id=CLUSTER_ID, region=REGION
            )
        )
        out = cp.with_token(token, "auth", "whoami", "-o", "json")
        if out.returncode != 0:
            assert "Unauthorized" in out.stderr, out.stderr
            return time.monotonic() - start
        assert time.monotonic() - start < bound, f"still mapped after {bound} s"
        time.sleep(1.1)


def _until(
    cp: ControlPlane,
    creds: Credentials,
    kubeconfig: Path,
    want: str | None,
    bound: float,
) -> float:
    """Seconds until whoami says ``want``; fail after ``bound``."""
    start = time.monotonic()
    while (got := _whoami(cp, creds, kubeconfig)) != want:
        assert time.monotonic() - start < bound, f"still {got!r} after {bound} s"
        time.sleep(0.25)
    return time.monotonic() - start


class TestAwsAuthConfigMap:
    """kubectl edits of kube-system/aws-auth reach the webhook through its watch."""

    @pytest.fixture(scope="class")
    def users(self, sts_emulator: STSEmulator) -> tuple[Credentials, Credentials]:
        return (
            sts_emulator.create_user(unique_name("cm-first")),
            sts_emulator.create_user(unique_name("cm-second")),
        )

    def test_apply_takes_effect(
        self,
        control_plane: ControlPlane,
        users: tuple[Credentials, Credentials],
        tmp_path: Path,
    ) -> None:
        """Unmapped, then ``kubectl apply`` maps it: whoami works within the bound."""
        first, _ = users
        kubeconfig = control_plane.user_kubeconfig(tmp_path / "kubeconfig")
        assert _whoami(control_plane, first, kubeconfig) is None
        control_plane.apply(_aws_auth(_entry(first, "cm-first", ["cm"])))
        took = _until(control_plane, first, kubeconfig, "cm-first", PROPAGATION_BOUND_S)
        print(f"aws-auth apply -> mapping in effect: {took:.2f} s")

    def test_broken_edit_keeps_last_good(
        self,
        control_plane: ControlPlane,
        users: tuple[Credentials, Credentials],
        tmp_path: Path,
    ) -> None:
        """An aws-auth that does not parse: counted as an error, old table stays."""
        first, _ = users
        kubeconfig = control_plane.user_kubeconfig(tmp_path / "kubeconfig")
        assert _whoami(control_plane, first, kubeconfig) == "cm-first"
        errors = _reload_count(control_plane, "configMap", "error")
        control_plane.apply(_aws_auth("- userarn: [unterminated\n"))
        deadline = time.monotonic() + PROPAGATION_BOUND_S
        while _reload_count(control_plane, "configMap", "error") <= errors:
            assert time.monotonic() < deadline, "the broken edit was never seen"
            time.sleep(0.25)
        assert _whoami(control_plane, first, kubeconfig) == "cm-first"

    def test_watch_survives_apiserver_restart_and_compaction(
        self,
        control_plane: ControlPlane,
        users: tuple[Credentials, Credentials],
        tmp_path: Path,
    ) -> None:
        """API server restarted, etcd compacted meanwhile: new edits still arrive."""
        first, second = users
        kubeconfig = control_plane.user_kubeconfig(tmp_path / "kubeconfig")
        # Writes after the watch's last event, then compact past them: the
        # watch's resourceVersion no longer exists in etcd.
        control_plane.admin(
            "-n", "default", "create", "configmap", unique_name("bump")
        )  # fmt: skip
        control_plane.stop_apiserver()
        revision = control_plane.compact_etcd()
        control_plane.start_apiserver()
        assert revision > 0
        both = _entry(first, "cm-first", ["cm"]) + _entry(second, "cm-second", ["cm"])
        control_plane.apply(_aws_auth(both))
        took = _until(control_plane, second, kubeconfig, "cm-second", RESTART_BOUND_S)
        assert _whoami(control_plane, first, kubeconfig) == "cm-first"
        print(f"after restart + compaction: new mapping in {took:.2f} s")
        # And removal works through the same watch ...
        control_plane.apply(_aws_auth(_entry(second, "cm-second", ["cm"])))
        _until_unmapped(control_plane, first, PROPAGATION_BOUND_S)
        # ... while the token the API server accepted a moment ago stays valid
        # until its TokenReview cache entry expires (30 s): the documented lag.
        assert _whoami(control_plane, first, kubeconfig) == "cm-first"


class TestCRD:
    """IAMIdentityMapping objects made with kubectl; the schema is the API server's."""

    def test_objects_map_and_unmap(
        self, control_plane: ControlPlane, sts_emulator: STSEmulator, tmp_path: Path
    ) -> None:
        """Create an object: mapped; delete it: unmapped again."""
        user = sts_emulator.create_user(unique_name("crd-user"))
        name = unique_name("crd")
        kubeconfig = control_plane.user_kubeconfig(tmp_path / "kubeconfig")
        assert _whoami(control_plane, user, kubeconfig) is None
        control_plane.apply(
            {
                "apiVersion": "iamauthenticator.k8s.aws/v1alpha1",
                "kind": "IAMIdentityMapping",
                "metadata": {"name": name},
                "spec": {"arn": user.arn, "username": "crd:{{AccountID}}"},
            }
        )
        want = f"crd:{user.account_id}"
        _until(control_plane, user, kubeconfig, want, PROPAGATION_BOUND_S)
        listed = control_plane.admin("get", "iamidentitymappings", name)
        assert user.arn in listed
        control_plane.admin("delete", "iamidentitymapping", name)
        _until_unmapped(control_plane, user, PROPAGATION_BOUND_S)

    @pytest.mark.parametrize(
        ("spec", "complaint"),
        [
            ({"username": "x"}, "spec.arn: Required value"),
            ({"arn": "arn:aws:iam::123456789012:role/r"}, "spec.username"),
            ({"arn": "not-an-arn", "username": "x"}, "spec.arn"),
            (
                {"arn": "arn:aws:iam::123456789012:role/r", "username": ""},
                "spec.username",
            ),
            (
                {
                    "arn": "arn:aws:iam::123456789012:role/r",
                    "username": "x",
                    "groups": [""],
                },
                "spec.groups[0]",
            ),
            (
                {"arn": "arn:aws:iam::123456789012:role/r", "username": 7},
                "spec.username",
            ),
        ],
    )
    def test_schema_refuses(
        self, control_plane: ControlPlane, spec: dict[str, object], complaint: str
    ) -> None:
        """Objects the CRD schema forbids are refused by the API server itself."""
        name = unique_name("bad")
        doc = {
            "apiVersion": "iamauthenticator.k8s.aws/v1alpha1",
            "kind": "IAMIdentityMapping",
            "metadata": {"name": name},
            "spec": spec,
        }
        out = control_plane.kubectl("create", "-f", "-", stdin=json.dumps(doc))
        assert out.returncode != 0
        assert "is invalid" in out.stderr
        assert complaint in out.stderr
        missing = control_plane.kubectl("get", "iamidentitymapping", name)
        assert missing.returncode != 0


class TestCompactedResourceVersion:
    """A watch re-opened from a compacted resourceVersion: a real 410, then a relist."""

    def test_410_relists_and_keeps_following(self, control_plane: ControlPlane) -> None:
        """The source (2 s watches) gets 410 Gone from the API server, lists, goes on.

        ``kubeiam server`` re-opens its watch every 300 s, too slow for a test, so
        this drives :class:`webhook.sources_kube.ConfigMapSource` in-process with 2 s
        watches against the same API server (ConfigMap watches served by etcd).
        """
        ns = unique_name("gone")
        control_plane.admin("create", "namespace", ns)
        arns: list[list[str]] = []
        errors: list[str] = []

        def update(mapping_set: MappingSet) -> None:
            arns.append(sorted(e.arn for e in mapping_set.users))

        def configmap(account: str) -> dict[str, object]:
            arn = f"arn:aws:iam::{account}:user/gone"
            return {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "aws-auth", "namespace": ns},
                "data": {"mapUsers": f'- userarn: "{arn}"\n  username: gone\n'},
            }

        def wait_for(account: str) -> None:
            deadline = time.monotonic() + PROPAGATION_BOUND_S
            while not arns or account not in arns[-1][0]:
                assert time.monotonic() < deadline, (arns, errors)
                time.sleep(0.1)

        control_plane.apply(configmap("111111111111"))
        source = ConfigMapSource(
            ns,
            "aws-auth",
            api_client=load_api_client(control_plane.admin_kubeconfig),
            watch_timeout=2,
            backoff=(0.2, 1.0),
        )
        # A handler on the source's own logger: whatever propagation is set to.
        seen: list[str] = []
        handler = logging.Handler(logging.INFO)
        handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
        logger = logging.getLogger("webhook.sources")
        old_level = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        # On cue, hold the next re-watch (its resourceVersion already chosen)
        # until etcd is compacted past it; the request itself goes out unchanged.
        gate, waiting = threading.Event(), threading.Event()
        gate.set()
        real_call = source._call

        def gated_call(**kwargs: object) -> urllib3.HTTPResponse:
            if kwargs.get("watch") and not gate.is_set():
                waiting.set()
                gate.wait(30)
            return real_call(**kwargs)

        source._call = gated_call  # type: ignore[method-assign]
        source.start(update, errors.append)
        try:
            wait_for("111111111111")
            gate.clear()
            assert waiting.wait(10), "the source never re-opened its watch"
            # Two newer revisions elsewhere, then compact at the newest: the
            # watch would resume after its version, which is now compacted.
            for bump in ("bump-1", "bump-2"):
                control_plane.admin("-n", ns, "create", "configmap", bump)
            control_plane.compact_etcd()
            gate.set()
            deadline = time.monotonic() + 10
            while not any("410 Gone" in m for m in seen):
                assert time.monotonic() < deadline, seen
                time.sleep(0.1)
            control_plane.apply(configmap("222222222222"))
            wait_for("222222222222")
        finally:
            source.stop()
            logger.removeHandler(handler)
            logger.setLevel(old_level)
        assert not errors
