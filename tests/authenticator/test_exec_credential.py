"""authenticator.exec_credential: KUBERNETES_EXEC_INFO in, ExecCredential out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from authenticator.exec_credential import (
    EXEC_API_V1,
    EXEC_API_V1BETA1,
    ClusterConfig,
    build_exec_credential,
    build_expiration,
    format_timestamp,
    parse_exec_info,
    render_exec_credential,
)

NOW = datetime(2026, 11, 27, 5, 0, 0, tzinfo=UTC)


def _info(api_version: str, *, interactive: bool = False, config: object = None) -> str:
    spec: dict[str, object] = {"interactive": interactive}
    if config is not None:
        spec["cluster"] = {"server": "https://127.0.0.1:6443", "config": config}
    return (
        json.dumps({"kind": "ExecCredential", "apiVersion": api_version, "spec": spec})
        + "\n"
    )


class TestParseExecInfo:
    """KUBERNETES_EXEC_INFO parsing: echo the version, read the cluster extension."""

    @pytest.mark.parametrize("version", [EXEC_API_V1, EXEC_API_V1BETA1])
    def test_supported_versions_are_echoed(self, version: str) -> None:
        """v1 and v1beta1 come back unchanged, without warnings."""
        info = parse_exec_info(_info(version))
        assert info.api_version == version
        assert info.warnings == ()
        assert info.interactive is False

    @pytest.mark.parametrize("raw", [None, "", "   \n"])
    def test_absent_defaults_to_v1beta1_silently(self, raw: str | None) -> None:
        """No variable: v1beta1, interactive unknown, no warning."""
        info = parse_exec_info(raw)
        assert info.api_version == EXEC_API_V1BETA1
        assert info.interactive is None
        assert info.warnings == ()

    @pytest.mark.parametrize(
        "raw",
        [
            "{not json",
            "[1, 2]",
            json.dumps({"apiVersion": "client.authentication.k8s.io/v1alpha1"}),
            json.dumps({"apiVersion": "client.authentication.k8s.io/v2"}),
            json.dumps({"kind": "ExecCredential"}),
        ],
    )
    def test_unusable_input_falls_back_with_a_warning(self, raw: str) -> None:
        """Broken JSON or an unknown apiVersion gives v1beta1 and a warning."""
        info = parse_exec_info(raw)
        assert info.api_version == EXEC_API_V1BETA1
        assert len(info.warnings) == 1

    def test_interactive_flag_is_read(self) -> None:
        """spec.interactive true is reported."""
        assert parse_exec_info(_info(EXEC_API_V1, interactive=True)).interactive is True

    def test_cluster_extension_is_read(self) -> None:
        """clusterID, region and roleARN come from spec.cluster.config."""
        config = {
            "clusterID": "prod",
            "region": "eu-west-1",
            "roleARN": "arn:aws:iam::1:role/r",
            "x": 1,
        }
        info = parse_exec_info(_info(EXEC_API_V1, config=config))
        assert info.cluster == ClusterConfig(
            cluster_id="prod", region="eu-west-1", role_arn="arn:aws:iam::1:role/r"
        )
        assert info.warnings == ()

    def test_partial_extension(self) -> None:
        """Missing or empty keys are None."""
        info = parse_exec_info(
            _info(EXEC_API_V1BETA1, config={"clusterID": "c", "region": ""})
        )
        assert info.cluster == ClusterConfig(cluster_id="c", region=None, role_arn=None)

    def test_non_string_fields_are_ignored_with_a_warning(self) -> None:
        """A clusterID that is not a string is dropped and reported."""
        info = parse_exec_info(
            _info(EXEC_API_V1, config={"clusterID": 42, "region": "us-east-1"})
        )
        assert info.cluster == ClusterConfig(
            cluster_id=None, region="us-east-1", role_arn=None
        )
        assert any("clusterID" in w for w in info.warnings)

    def test_non_object_extension_is_ignored(self) -> None:
        """An extension that is not an object yields no cluster config and a warning."""
        info = parse_exec_info(_info(EXEC_API_V1, config=["c"]))
        assert info.cluster is None
        assert len(info.warnings) == 1

    def test_no_cluster_info(self) -> None:
        """Without provideClusterInfo there is no cluster config."""
        assert parse_exec_info(_info(EXEC_API_V1)).cluster is None


class TestExpiration:
    """Advertised expiry: + 14 min, bounded by the credentials, second precision."""

    @pytest.mark.parametrize(
        ("credential_expiry", "expected"),
        [
            (None, NOW + timedelta(minutes=14)),
            (NOW + timedelta(hours=1), NOW + timedelta(minutes=14)),
            (NOW + timedelta(minutes=14), NOW + timedelta(minutes=14)),
            (
                NOW + timedelta(minutes=3, seconds=30),
                NOW + timedelta(minutes=3, seconds=30),
            ),
            (
                NOW + timedelta(minutes=2, microseconds=700_000),
                NOW + timedelta(minutes=2),
            ),
        ],
    )
    def test_build_expiration(
        self, credential_expiry: datetime | None, expected: datetime
    ) -> None:
        """The earlier of signing + 14 min and the credentials' expiry, truncated."""
        assert build_expiration(NOW, credential_expiry) == expected

    def test_other_timezones_are_normalised_to_utc(self) -> None:
        """A credential expiry in another zone still bounds the token, in UTC."""
        cet = timezone(timedelta(hours=1))
        expiry = datetime(2026, 11, 27, 6, 5, 0, tzinfo=cet)  # 05:05 UTC
        got = build_expiration(NOW, expiry)
        assert got == NOW + timedelta(minutes=5)
        assert got.tzinfo == UTC

    def test_format_timestamp_is_rfc3339_z(self) -> None:
        """RFC 3339, UTC, Z, no fractional seconds."""
        assert (
            format_timestamp(NOW + timedelta(microseconds=5)) == "2026-11-27T05:00:00Z"
        )
        assert format_timestamp(
            datetime(2026, 1, 2, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))
        ) == ("2026-01-02T02:05:06Z")


class TestBuildExecCredential:
    """The ExecCredential document kubectl validates."""

    @pytest.mark.parametrize("version", [EXEC_API_V1, EXEC_API_V1BETA1])
    def test_shape(self, version: str) -> None:
        """apiVersion, kind, empty spec, status.token and status.expirationTimestamp."""
        doc = build_exec_credential(
            api_version=version, token="k8s-aws-v1.abc", expires_at=NOW
        )
        assert doc == {
            "kind": "ExecCredential",
            "apiVersion": version,
            "spec": {},
            "status": {
                "expirationTimestamp": "2026-11-27T05:00:00Z",
                "token": "k8s-aws-v1.abc",
            },
        }

    def test_render_is_one_json_line(self) -> None:
        """The rendered credential is exactly one JSON document and a newline."""
        text = render_exec_credential(
            api_version=EXEC_API_V1, token="k8s-aws-v1.abc", expires_at=NOW
        )
        assert text.endswith("\n")
        assert text.count("\n") == 1
        assert json.loads(text)["status"]["token"] == "k8s-aws-v1.abc"
