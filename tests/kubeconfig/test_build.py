"""kubeconfig.build: entry names, the exec stanza, merging and validation (pure)."""

from __future__ import annotations

import copy

import pytest

from kubeconfig import build
from kubeconfig.errors import KubeconfigError

ARN = "arn:aws:eks:eu-west-1:111122223333:cluster/prod"
PROD_SPEC = build.ClusterSpec(
    cluster_id="prod", server="https://k8s.example:443", ca_data="Q0E="
)
EKS_SPEC = build.ClusterSpec(
    cluster_id="prod",
    server="https://k8s.example:443",
    ca_data="Q0E=",
    region="eu-west-1",
    role_arn="arn:aws:iam::111122223333:role/dev",
    cluster_arn=ARN,
)


def _entry(name: str, body: str = "cluster", **fields: object) -> dict[str, object]:
    return {"name": name, body: dict(fields)}


class TestNames:
    """Entry names follow `aws eks update-kubeconfig` (docs/eks.md)."""

    @pytest.mark.parametrize(
        ("spec", "alias", "user_alias", "expected"),
        [
            (PROD_SPEC, None, None, ("prod", "prod", "prod")),
            (EKS_SPEC, None, None, (ARN, ARN, ARN)),
            (EKS_SPEC, "p", None, (ARN, ARN, "p")),
            (EKS_SPEC, None, "me", (ARN, "me", "me")),
            (EKS_SPEC, "p", "me", (ARN, "me", "p")),
        ],
    )
    def test_names(
        self,
        spec: build.ClusterSpec,
        alias: str | None,
        user_alias: str | None,
        expected: tuple[str, str, str],
    ) -> None:
        """Cluster: ARN or ID; user: --user-alias or cluster; context: alias or user."""
        names = build.build_names(spec, alias=alias, user_alias=user_alias)
        assert (names.cluster, names.user, names.context) == expected

    @pytest.mark.parametrize(
        ("arn", "region"),
        [
            (ARN, "eu-west-1"),
            ("arn:aws-cn:eks:cn-north-1:111122223333:cluster/x", "cn-north-1"),
            ("arn:aws:iam::111122223333:role/x", None),
            ("not-an-arn", None),
            (None, None),
        ],
    )
    def test_region_from_arn(self, arn: str | None, region: str | None) -> None:
        """The region is the fourth ARN field, when there is one."""
        assert build.region_from_arn(arn) == region


class TestEntries:
    """The cluster and user entries."""

    def test_cluster_extension_carries_id_region_role(self) -> None:
        """The exec extension holds clusterID, region, roleARN; server and CA set."""
        entry = build.build_cluster(ARN, EKS_SPEC)
        cluster = entry["cluster"]
        assert isinstance(cluster, dict)
        assert cluster["server"] == "https://k8s.example:443"
        assert cluster["certificate-authority-data"] == "Q0E="
        assert cluster["extensions"] == [
            {
                "name": "client.authentication.k8s.io/exec",
                "extension": {
                    "clusterID": "prod",
                    "region": "eu-west-1",
                    "roleARN": "arn:aws:iam::111122223333:role/dev",
                },
            }
        ]

    def test_cluster_extension_omits_unknowns(self) -> None:
        """Without region or role the extension holds only clusterID."""
        cluster = build.build_cluster("prod", PROD_SPEC)["cluster"]
        assert isinstance(cluster, dict)
        assert cluster["extensions"][0]["extension"] == {"clusterID": "prod"}

    @pytest.mark.parametrize("profile", [None, "admin"])
    def test_user_exec_stanza(self, profile: str | None) -> None:
        """Exec: absolute command, [token], v1beta1, cluster info, env iff profile."""
        exec_ = build.build_user("u", command="/opt/bin/kubeiam", profile=profile)[
            "user"
        ]
        assert isinstance(exec_, dict)
        stanza = exec_["exec"]
        assert stanza["command"] == "/opt/bin/kubeiam"
        assert stanza["args"] == ["token"]
        assert stanza["apiVersion"] == "client.authentication.k8s.io/v1beta1"
        assert stanza["provideClusterInfo"] is True
        assert stanza["interactiveMode"] == "IfAvailable"
        if profile:
            assert stanza["env"] == [{"name": "AWS_PROFILE", "value": "admin"}]
        else:
            assert "env" not in stanza


class TestParse:
    """parse_kubeconfig refuses what a merge could not keep intact."""

    @pytest.mark.parametrize(
        ("doc", "message"),
        [
            ([1, 2], "top level is a list"),
            ("text", "top level is a string"),
            ({"kind": "Pod"}, "kind is 'Pod'"),
            ({"apiVersion": "v2"}, "apiVersion 'v2'"),
            ({"clusters": {"a": 1}}, "clusters is a mapping, not a list"),
            ({"users": "x"}, "users is a string, not a list"),
            ({"contexts": [1]}, r"contexts\[0\] is a number"),
            ({"clusters": [{"cluster": {}}]}, r"clusters\[0\] has no name"),
            ({"clusters": [{"name": ""}]}, r"clusters\[0\] has no name"),
            (
                {"users": [{"name": "u", "user": "x"}]},
                r"users\[0\] \(u\): user is a string",
            ),
            ({"current-context": 3}, "current-context is a number"),
        ],
    )
    def test_refused(self, doc: object, message: str) -> None:
        """Each malformed shape is a KubeconfigError naming the file and the field."""
        with pytest.raises(KubeconfigError, match=message) as exc:
            build.parse_kubeconfig(doc, source="/home/u/.kube/config")
        assert str(exc.value).startswith("/home/u/.kube/config: ")

    def test_empty_document_is_a_new_kubeconfig(self) -> None:
        """An empty file parses as a new kubeconfig with the aws-cli header."""
        doc = build.parse_kubeconfig(None, source="x")
        assert doc["apiVersion"] == "v1"
        assert doc["kind"] == "Config"
        assert doc["clusters"] == []

    def test_null_lists_are_accepted(self) -> None:
        """client-go writes `clusters: null`; that is a valid, empty list."""
        doc = {"apiVersion": "v1", "kind": "Config", "clusters": None, "users": None}
        assert build.parse_kubeconfig(doc, source="x") is doc


class TestMerge:
    """merge_entries adds or replaces exactly one cluster, user and context."""

    def _merge(
        self, doc: dict[str, object], set_current: bool | None
    ) -> build.MergeResult:
        return build.merge_entries(
            doc,
            cluster=_entry("new", server="https://n"),
            user=_entry("new", "user", token="t"),
            context=_entry("new", "context", cluster="new", user="new"),
            set_current=set_current,
        )

    def test_keeps_others_and_appends(self) -> None:
        """Other entries, unknown keys and order are kept; new entries appended."""
        doc: dict[str, object] = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {"colors": True},
            "clusters": [_entry("a", server="https://a")],
            "users": [_entry("a", "user", token="x")],
            "contexts": [_entry("a", "context", cluster="a", user="a")],
            "current-context": "a",
            "extensions": [{"name": "x", "extension": {"k": 1}}],
        }
        original = copy.deepcopy(doc)
        result = self._merge(doc, None)
        assert doc == original  # the input is not modified
        assert result.doc["clusters"] == [
            _entry("a", server="https://a"),
            _entry("new", server="https://n"),
        ]
        assert result.doc["extensions"] == original["extensions"]
        assert result.doc["preferences"] == {"colors": True}
        assert result.cluster is build.Action.ADDED
        assert result.current_context == "a"
        assert result.current_context_changed is False

    def test_replaces_in_place_and_drops_duplicates(self) -> None:
        """A same-named entry is replaced where it was; later duplicates are dropped."""
        doc: dict[str, object] = {
            "clusters": [
                _entry("new", server="https://old"),
                _entry("b", server="https://b"),
                _entry("new", server="https://older"),
            ]
        }
        result = self._merge(doc, None)
        assert result.doc["clusters"] == [
            _entry("new", server="https://n"),
            _entry("b", server="https://b"),
        ]
        assert result.cluster is build.Action.REPLACED
        assert result.user is build.Action.ADDED

    def test_identical_entry_is_unchanged(self) -> None:
        """Merging the same entry twice reports it unchanged."""
        first = self._merge({}, None)
        second = self._merge(first.doc, None)
        assert second.doc == first.doc
        assert second.cluster is build.Action.UNCHANGED

    @pytest.mark.parametrize(
        ("before", "set_current", "after", "changed"),
        [
            (None, None, "new", True),
            ("", None, "new", True),
            ("a", None, "a", False),
            ("a", True, "new", True),
            ("a", False, "a", False),
            (None, False, None, False),
        ],
    )
    def test_current_context(
        self,
        before: str | None,
        set_current: bool | None,
        after: str | None,
        changed: bool,
    ) -> None:
        """current-context: set when none, forced by True, never touched by False."""
        doc: dict[str, object] = {} if before is None else {"current-context": before}
        result = self._merge(doc, set_current)
        assert result.current_context == after
        assert result.current_context_changed is changed


class TestWebhookDocuments:
    """The webhook kubeconfig and server config builders."""

    def test_webhook_kubeconfig_shape(self) -> None:
        """One cluster (URL + CA), one user (client cert), a current context."""
        doc = build.build_webhook_kubeconfig(
            server_url="https://127.0.0.1:21362/authenticate",
            ca_pem=b"CA",
            client_cert_pem=b"CERT",
            client_key_pem=b"KEY",
        )
        assert build.parse_kubeconfig(doc, source="x") is doc
        assert doc["clusters"] == [
            {
                "name": "kubeiam-webhook",
                "cluster": {
                    "server": "https://127.0.0.1:21362/authenticate",
                    "certificate-authority-data": "Q0E=",
                },
            }
        ]
        assert doc["users"] == [
            {
                "name": "kube-apiserver",
                "user": {
                    "client-certificate-data": "Q0VSVA==",
                    "client-key-data": "S0VZ",
                },
            }
        ]
        assert doc["current-context"] == "webhook"

    def test_server_config_sources_optional(self) -> None:
        """Sources appear only when given."""
        kwargs = {
            "cluster_id": "c",
            "address": "127.0.0.1",
            "port": 1,
            "cert_file": "a",
            "key_file": "b",
            "client_ca_file": "c",
        }
        assert "sources" not in build.build_server_config(**kwargs)  # type: ignore[arg-type]
        with_sources = build.build_server_config(
            **kwargs,  # type: ignore[arg-type]
            sources=[{"configMap": {"namespace": "kube-system", "name": "aws-auth"}}],
        )
        assert with_sources["sources"] == [
            {"configMap": {"namespace": "kube-system", "name": "aws-auth"}}
        ]
