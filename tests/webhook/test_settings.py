"""The server config file (webhook/settings.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook.errors import ConfigError
from webhook.settings import (
    DEFAULT_PORT,
    CacheSettings,
    ServerSettings,
    SourceSettings,
    STSSettings,
    WebhookSettings,
    load_settings,
    load_yaml,
    parse_settings,
)

FULL = """
clusterID: demo
partition: aws
server: {address: 127.0.0.1, port: 8443, certFile: tls/cert.pem, keyFile: /abs/key.pem,
         clientCAFile: ca.pem, workers: 1, threads: 4}
sts: {region: us-west-2, timeoutSeconds: 5, extraEndpoints: ["http://127.0.0.1:5000"]}
cache: {ttlSeconds: 60, maxEntries: 10000}
sources:
  - file: {path: mapping.yaml}
  - configMap: {namespace: kube-system, name: aws-auth}
  - crd: {}
reservedPrefixes: {crd: ["system:", "eks:"], inline: ["system:"]}
mapRoles:
  - {rolearn: "arn:aws:iam::111122223333:role/Admin", username: admin, groups: [ops]}
mapAccounts: ["111122223333"]
"""


class TestParse:
    """Valid documents become the expected settings."""

    def test_full_example(self, tmp_path: Path) -> None:
        """Documented keys land in their fields; relative paths use the file's dir."""
        path = tmp_path / "config.yaml"
        path.write_text(FULL)
        s = load_settings(path)
        base = tmp_path.resolve()
        assert s.cluster_id == "demo"
        assert s.partition == "aws"
        assert s.server == ServerSettings(
            address="127.0.0.1",
            port=8443,
            cert_file=base / "tls/cert.pem",
            key_file=Path("/abs/key.pem"),
            client_ca_file=base / "ca.pem",
            workers=1,
            threads=4,
        )
        assert s.sts == STSSettings(
            region="us-west-2",
            timeout_s=5.0,
            extra_endpoints=("http://127.0.0.1:5000",),
        )
        assert s.cache == CacheSettings(ttl_seconds=60, max_entries=10000)
        assert s.sources == (
            SourceSettings(
                kind="file", where="sources[0].file", path=base / "mapping.yaml"
            ),
            SourceSettings(kind="configMap", where="sources[1].configMap"),
            SourceSettings(
                kind="crd",
                where="sources[2].crd",
                reserved_prefixes=("system:", "eks:"),
            ),
        )
        assert s.inline is not None
        assert s.inline["mapAccounts"] == ["111122223333"]
        assert s.inline_reserved_prefixes == ("system:",)
        assert s.config_file == path

    def test_minimal_defaults(self) -> None:
        """Only clusterID is required; everything else has the documented default."""
        s = parse_settings({"clusterID": "c"})
        assert s == WebhookSettings(cluster_id="c")
        assert s.server.port == DEFAULT_PORT
        assert s.server.address == "127.0.0.1"
        assert s.inline is None

    def test_settings_are_frozen(self) -> None:
        """Settings cannot be changed after parsing."""
        s = parse_settings({"clusterID": "c"})
        with pytest.raises(AttributeError):
            s.cluster_id = "other"  # type: ignore[misc]


class TestErrors:
    """A bad config names the file, the key path and the problem."""

    @pytest.mark.parametrize(
        ("doc", "path", "reason"),
        [
            ({}, "clusterID", "required"),
            ({"clusterID": ""}, "clusterID", "non-empty string"),
            ({"clusterID": 5}, "clusterID", "non-empty string"),
            ({"clusterID": "c", "partition": "mars"}, "partition", "unknown partition"),
            ({"clusterID": "c", "bogus": 1}, "bogus", "unknown key"),
            (
                {"clusterID": "c", "server": {"port": 0}},
                "server.port",
                "integer from 1 to 65535",
            ),
            ({"clusterID": "c", "server": {"port": "80"}}, "server.port", "integer"),
            ({"clusterID": "c", "server": {"port": True}}, "server.port", "integer"),
            (
                {"clusterID": "c", "server": {"certFile": "c.pem"}},
                "server.keyFile",
                "go together",
            ),
            ({"clusterID": "c", "server": {"tls": 1}}, "server.tls", "unknown key"),
            ({"clusterID": "c", "server": []}, "server", "must be a mapping"),
            (
                {"clusterID": "c", "sts": {"timeoutSeconds": 0}},
                "sts.timeoutSeconds",
                "from 0.1 to 30",
            ),
            (
                {"clusterID": "c", "sts": {"timeoutSeconds": "5"}},
                "sts.timeoutSeconds",
                "number",
            ),
            (
                {"clusterID": "c", "sts": {"extraEndpoints": "http://x"}},
                "sts.extraEndpoints",
                "list",
            ),
            (
                {"clusterID": "c", "sts": {"extraEndpoints": [1]}},
                "sts.extraEndpoints[0]",
                "string",
            ),
            (
                {"clusterID": "c", "cache": {"ttlSeconds": 901}},
                "cache.ttlSeconds",
                "from 0 to 900",
            ),
            (
                {"clusterID": "c", "cache": {"maxEntries": -1}},
                "cache.maxEntries",
                "integer",
            ),
            ({"clusterID": "c", "sources": {"file": {}}}, "sources", "must be a list"),
            (
                {"clusterID": "c", "sources": [{"file": {}, "crd": {}}]},
                "sources[0]",
                "exactly one",
            ),
            (
                {"clusterID": "c", "sources": [{"ldap": {}}]},
                "sources[0].ldap",
                "unknown source",
            ),
            (
                {"clusterID": "c", "sources": [{"file": {}}]},
                "sources[0].file.path",
                "required",
            ),
            (
                {"clusterID": "c", "sources": [{"file": {"path": "m", "x": 1}}]},
                "sources[0].file.x",
                "unknown key",
            ),
            (
                {"clusterID": "c", "sources": [{"crd": {"x": 1}}]},
                "sources[0].crd.x",
                "unknown key",
            ),
            (
                {"clusterID": "c", "sources": [{"file": {"path": "m", "maxBytes": 0}}]},
                "sources[0].file.maxBytes",
                "integer from 1 to 1073741824",
            ),
            (
                {"clusterID": "c", "sources": [{"crd": {"maxBytes": 10}}]},
                "sources[0].crd.maxBytes",
                "unknown key",
            ),
            (
                {"clusterID": "c", "reservedPrefixes": {"ldap": []}},
                "reservedPrefixes.ldap",
                "unknown key",
            ),
            (
                {"clusterID": "c", "reservedPrefixes": {"crd": "system:"}},
                "reservedPrefixes.crd",
                "list",
            ),
            (
                {"clusterID": "c", "reservedGroupPrefixes": {"ldap": []}},
                "reservedGroupPrefixes.ldap",
                "unknown key",
            ),
            ({"clusterID": "c", "mapRoles": {"a": 1}}, "mapRoles", "must be a list"),
            ([], "(top)", "mapping"),
        ],
    )
    def test_bad_values(self, doc: object, path: str, reason: str) -> None:
        """Each bad value is reported as 'file: key.path: reason'."""
        with pytest.raises(ConfigError) as info:
            parse_settings(doc, where="cfg.yaml")
        message = str(info.value)
        assert message.startswith(f"cfg.yaml: {path}: "), message
        assert reason in message

    def test_reserved_group_prefixes(self) -> None:
        """reservedGroupPrefixes per kind; unset kinds keep their default (None)."""
        s = parse_settings(
            {
                "clusterID": "c",
                "sources": [{"crd": {}}, {"configMap": {}}, {"crd": {}}],
                "reservedGroupPrefixes": {
                    "configMap": ["system:masters"],
                    "inline": ["system:"],
                },
                "mapRoles": [],
            }
        )
        assert [x.reserved_group_prefixes for x in s.sources] == [
            None,
            ("system:masters",),
            None,
        ]
        assert s.inline_reserved_group_prefixes == ("system:",)
        opened = parse_settings(
            {
                "clusterID": "c",
                "sources": [{"crd": {}}],
                "reservedGroupPrefixes": {"crd": []},
            }
        )
        assert opened.sources[0].reserved_group_prefixes == ()

    def test_missing_file(self, tmp_path: Path) -> None:
        """An unreadable file is a ConfigError naming it."""
        missing = tmp_path / "nope.yaml"
        with pytest.raises(ConfigError) as info:
            load_settings(missing)
        assert str(info.value) == f"{missing}: cannot read: No such file or directory"

    def test_binary_file(self, tmp_path: Path) -> None:
        """A file that is not UTF-8 is a ConfigError naming it."""
        path = tmp_path / "config.yaml"
        path.write_bytes(b"\xff\xfe\x00")
        with pytest.raises(ConfigError) as info:
            load_settings(path)
        assert str(info.value) == f"{path}: not UTF-8 text"

    def test_invalid_yaml_names_the_line(self, tmp_path: Path) -> None:
        """Broken YAML is reported with the file and the line."""
        path = tmp_path / "c.yaml"
        path.write_text("clusterID: demo\nserver: {port: [\n")
        with pytest.raises(
            ConfigError, match=r"c\.yaml: not valid YAML: line \d+, column \d+: "
        ):
            load_settings(path)

    def test_duplicate_keys_are_refused(self) -> None:
        """A key given twice is an error, not 'the last one wins'."""
        with pytest.raises(ConfigError, match="duplicate key 'clusterID'"):
            load_yaml("clusterID: a\nclusterID: b\n", where="c.yaml")
        with pytest.raises(ConfigError, match="duplicate key 'port'"):
            load_yaml("server:\n  port: 1\n  port: 2\n", where="c.yaml")

    def test_yaml_is_loaded_safely(self) -> None:
        """Python-object tags are refused (safe loader)."""
        with pytest.raises(ConfigError, match=r"tag .* is not allowed"):
            load_yaml("x: !!python/object/apply:os.system ['true']\n", where="c.yaml")


def test_file_source_max_bytes() -> None:
    """``sources[].file.maxBytes`` is read; without it the 32 MiB default applies."""
    doc = {
        "clusterID": "c",
        "sources": [{"file": {"path": "a"}}, {"file": {"path": "b", "maxBytes": 99}}],
    }
    first, second = parse_settings(doc, where="cfg.yaml").sources
    assert (first.max_bytes, second.max_bytes) == (32 * 1024 * 1024, 99)
