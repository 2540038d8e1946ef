"""POST /authorize: SubjectAccessReview v1/v1beta1 through gunicorn, and in-process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from flask import Flask

from webhook.authorize import AuthorizationSettings, RBACHolder, install_authorizer
from webhook.errors import ConfigError

RBAC = Path(__file__).parent.parent / "data" / "rbac" / "cluster"
DENY = [
    {
        "name": "no-prod-configmaps-for-ci",
        "subjects": [{"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}],
        "verbs": ["update"],
        "apiGroups": [""],
        "resources": ["configmaps"],
        "namespaces": ["prod"],
    }
]
AUTHZ = {"rbacPaths": [str(RBAC)], "denyRules": DENY}
V1 = "authorization.k8s.io/v1"
V1BETA1 = "authorization.k8s.io/v1beta1"


def sar(api: str, user: str, groups: list[str], **attrs: str) -> dict[str, object]:
    """A SubjectAccessReview as kube-apiserver sends it (with status.allowed)."""
    key = "groups" if api == V1 else "group"
    kind = "nonResourceAttributes" if "path" in attrs else "resourceAttributes"
    return {
        "apiVersion": api,
        "kind": "SubjectAccessReview",
        "spec": {kind: attrs, "user": user, key: groups, "uid": "u-1", "extra": {}},
        "status": {"allowed": False},
    }


CASES = [
    # (user, groups, attributes, expected status)
    (
        "alice",
        ["system:authenticated"],
        {
            "namespace": "dev",
            "verb": "create",
            "group": "rbac.authorization.k8s.io",
            "resource": "rolebindings",
        },
        {
            "allowed": True,
            "reason": 'RBAC: allowed by RoleBinding "dev-admins/dev" of ClusterRole '
            '"admin" to User "alice"',
        },
    ),
    (
        "carol",
        ["dev-team", "system:authenticated"],
        {"namespace": "prod", "verb": "get", "resource": "pods", "version": "v1"},
        {
            "allowed": False,
            "evaluationError": 'role.rbac.authorization.k8s.io "does-not-exist" '
            "not found in namespace prod",
        },
    ),
    (
        "system:serviceaccount:ci:builder",
        ["system:serviceaccounts", "system:serviceaccounts:ci"],
        {
            "namespace": "prod",
            "verb": "update",
            "resource": "configmaps",
            "name": "app-config",
        },
        {
            "allowed": False,
            "denied": True,
            "reason": "kubeiam: denied by deny rule 'no-prod-configmaps-for-ci'",
        },
    ),
    (
        "system:serviceaccount:ci:builder",
        ["system:serviceaccounts", "system:serviceaccounts:ci"],
        {
            "namespace": "prod",
            "verb": "get",
            "resource": "configmaps",
            "name": "app-config",
        },
        {
            "allowed": True,
            "reason": 'RBAC: allowed by RoleBinding "ci-config/prod" of Role '
            '"config-reader" to ServiceAccount "builder/ci"',
        },
    ),
    (
        "dave",
        ["system:authenticated"],
        {"path": "/healthz", "verb": "get"},
        {
            "allowed": True,
            "reason": 'RBAC: allowed by ClusterRoleBinding "system:discovery" of '
            'ClusterRole "system:discovery" to Group "system:authenticated"',
        },
    ),
    ("dave", [], {"path": "/healthz", "verb": "get"}, {"allowed": False}),
]


@pytest.fixture(scope="module")
def server(webhook_factory):
    """One kubeiam server (gunicorn, mTLS) with the RBAC fixture and a deny rule."""
    return webhook_factory({"mapRoles": []}, config={"authorization": AUTHZ})


class TestThroughGunicorn:
    """The real server, as kube-apiserver calls it."""

    @pytest.mark.parametrize("version", [V1, V1BETA1])
    @pytest.mark.parametrize(("user", "groups", "attrs", "status"), CASES)
    def test_decisions(self, server, version, user, groups, attrs, status):
        """Allow, deny, no opinion, evaluationError; in the request's version."""
        resp = server.post(
            json.dumps(sar(version, user, groups, **dict(attrs))), path="/authorize"
        )
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.json() == {
            "apiVersion": version,
            "kind": "SubjectAccessReview",
            "status": status,
        }

    def test_v1beta1_group_spelling_matters(self, server):
        """A v1beta1 body's groups are in `group`; `groups` there grants nothing."""
        body = sar(V1BETA1, "dave", [], path="/healthz", verb="get")
        spec = body["spec"]
        assert isinstance(spec, dict)
        spec["groups"] = ["system:authenticated"]
        assert server.post(json.dumps(body), path="/authorize").json()["status"] == {
            "allowed": False
        }

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b"{}",
            json.dumps({"apiVersion": V1, "kind": "TokenReview"}).encode(),
            json.dumps(sar(V1, "u", [], verb="get"))
            .encode()
            .replace(b"resourceAttributes", b"x"),
        ],
    )
    def test_bad_bodies(self, server, body):
        """Anything but a SubjectAccessReview is a 400."""
        assert server.post(body, path="/authorize").status_code == 400

    def test_needs_client_certificate(self, server):
        """Like /authenticate, /authorize needs the API server's certificate."""
        import requests

        with pytest.raises(requests.exceptions.RequestException):
            server.post(
                json.dumps(sar(V1, "alice", [], path="/healthz", verb="get")),
                path="/authorize",
                cert=False,
            )


class TestInProcess:
    """Settings, reloads and the off switch."""

    def test_off_without_config(self):
        """Without an authorization section there is no /authorize."""
        app = Flask(__name__)
        assert install_authorizer(app, None) is False
        assert app.test_client().post("/authorize", json={}).status_code == 404

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"[" * 50_000,
            json.dumps(sar(V1, "alice", [], verb="get", resource="pods"))[:-1].encode()
            + b', "kind": "SubjectAccessReview"}',
        ],
        ids=["empty", "deep", "duplicate-key"],
    )
    def test_bodies_that_are_not_strict_json_are_400(self, body):
        """Empty, too deeply nested or key-repeating JSON is a 400 JSON answer."""
        app = Flask(__name__)
        install_authorizer(app, {"rbacPaths": [str(RBAC)]})
        resp = app.test_client().post("/authorize", data=body)
        assert resp.status_code == 400 and resp.mimetype == "application/json"
        assert resp.get_json()["error"] == "not a SubjectAccessReview"

    @pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "OPTIONS", "TRACE"])
    def test_other_methods_are_a_json_405(self, method):
        """Any method but POST (OPTIONS too) is 405 with a Status body and Allow."""
        app = Flask(__name__)
        install_authorizer(app, {"rbacPaths": [str(RBAC)]})
        resp = app.test_client().open("/authorize", method=method)
        assert resp.status_code == 405 and resp.headers["Allow"] == "POST"
        if method != "HEAD":
            assert resp.get_json()["reason"] == "MethodNotAllowed"

    def test_body_over_64k_is_a_json_413(self):
        """A body over 64 KiB is 413 with a Status body."""
        app = Flask(__name__)
        install_authorizer(app, {"rbacPaths": [str(RBAC)]})
        doc = sar(V1, "alice", [], verb="get", resource="pods")
        doc["pad"] = "x" * 65_536
        resp = app.test_client().post("/authorize", data=json.dumps(doc))
        assert resp.status_code == 413
        assert resp.get_json()["reason"] == "RequestEntityTooLarge"

    def test_privileged_bypass_off(self):
        """privilegedBypass: false sends system:masters through RBAC."""
        app = Flask(__name__)
        install_authorizer(app, {"rbacPaths": [str(RBAC)], "privilegedBypass": False})
        resp = app.test_client().post(
            "/authorize",
            data=json.dumps(
                sar(V1, "x", ["system:masters"], verb="delete", resource="nodes")
            ),
        )
        doc = resp.get_json()
        assert doc is not None
        assert doc["status"]["reason"].startswith(
            'RBAC: allowed by ClusterRoleBinding "cluster-admin"'
        )

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            ([], "must be a mapping"),
            ({"rbacPaths": "x"}, "list of paths"),
            ({"rbacPaths": [], "extra": 1}, "unknown key"),
            ({"rbacPaths": [], "privilegedBypass": "yes"}, "true or false"),
            (
                {"rbacPaths": [], "denyRules": [{"verbs": ["get"]}]},
                "denyRules/0/subjects",
            ),
        ],
    )
    def test_bad_settings(self, raw, message):
        """A bad authorization section is a ConfigError naming the key."""
        with pytest.raises(ConfigError, match=message):
            AuthorizationSettings.parse(raw)

    def test_relative_paths_and_bad_files(self, tmp_path):
        """rbacPaths resolve against the config dir; invalid RBAC stops start-up."""
        settings = AuthorizationSettings.parse(
            {"rbacPaths": ["rbac"]}, base_dir=tmp_path
        )
        assert settings.rbac_paths == (tmp_path / "rbac",)
        bad = tmp_path / "bad.yaml"
        bad.write_text(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {}\n"
        )
        with pytest.raises(ConfigError, match="metadata/name"):
            RBACHolder((bad,))

    def test_reload(self, tmp_path):
        """A changed file is re-read after the interval; a broken one is ignored."""
        shutil.copytree(RBAC, tmp_path / "rbac")
        now = [0.0]
        holder = RBACHolder((tmp_path / "rbac",), clock=lambda: now[0])
        assert "node-reader" in holder.current().cluster_roles
        (tmp_path / "rbac" / "20-nodes.json").unlink()
        assert "node-reader" in holder.current().cluster_roles  # not checked yet
        now[0] = 5.0
        assert "node-reader" not in holder.current().cluster_roles
        (tmp_path / "rbac" / "99-bad.yaml").write_text(
            "kind: Role\napiVersion: rbac.authorization.k8s.io/v1\n"
        )
        now[0] = 10.0
        assert "admin" in holder.current().cluster_roles  # the last good objects stay
