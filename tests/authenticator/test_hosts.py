"""The STS host allow-list and extra endpoints (docs/token-format.md)."""

from __future__ import annotations

import pytest

from authenticator.errors import ConfigError
from authenticator.hosts import (
    Endpoint,
    build_allowed_hosts,
    find_extra_endpoint,
    parse_endpoint,
    region_for_host,
)

# (partition, host, server region, expected scope region or None). Rows marked
# "ref" are the reference's own TestSTSEndpoints cases; "stricter" rows are
# where kubeiam deliberately rejects what the reference accepts.
HOST_CASES = [
    # global endpoint: partition aws only (ref)
    ("aws", "sts.amazonaws.com", "us-east-1", "us-east-1"),
    ("aws-cn", "sts.amazonaws.com", "cn-north-1", None),
    ("aws-us-gov", "sts.amazonaws.com", "us-gov-west-1", None),
    ("aws-iso", "sts.amazonaws.com", "us-iso-east-1", None),
    ("aws-iso-b", "sts.amazonaws.com", "us-isob-east-1", None),
    ("aws-iso-e", "sts.amazonaws.com", "eu-isoe-west-1", None),
    ("aws-iso-f", "sts.amazonaws.com", "us-isof-south-1", None),
    # aws-cn (ref)
    ("aws-cn", "sts.cn-northwest-1.amazonaws.com.cn", "cn-north-1", "cn-northwest-1"),
    ("aws-cn", "sts.cn-north-1.amazonaws.com.cn", "cn-north-1", "cn-north-1"),
    ("aws-cn", "sts.us-iso-east-1.c2s.ic.gov", "cn-north-1", None),
    ("aws-cn", "sts.not-a-region1.amazonaws.com.cn", "cn-north-1", None),
    ("aws-cn", "sts.not-a-region2.amazonaws.com.cn", "not-a-region2", "not-a-region2"),
    ("aws-cn", "sts.not-a-region5.amazonaws.com.cn", "us-west-2", None),
    ("aws-cn", "sts.us-west-2.amazonaws.com.cn", "cn-north-1", None),
    ("aws-cn", "sts-fips.us-east-1.amazonaws.com", "cn-north-1", None),
    ("aws-cn", "sts.us-isob-east-1.amazonaws.com.cn", "cn-north-1", None),
    (
        "aws-cn",
        "sts.cn-north-1.api.amazonwebservices.com.cn",
        "cn-north-1",
        "cn-north-1",
    ),
    ("aws-cn", "sts.not-a-region.amazonaws.com", "not-a-region", None),
    # stricter: another partition's region, even when it is the server's region
    ("aws-cn", "sts.us-isob-east-1.amazonaws.com.cn", "us-isob-east-1", None),
    # aws (ref)
    ("aws", "sts-fips.us-west-2.amazonaws.com", "us-east-1", "us-west-2"),
    ("aws", "sts-fips.us-east-1.amazonaws.com", "us-east-1", "us-east-1"),
    ("aws", "sts.us-east-1.amazonaws.com", "us-east-1", "us-east-1"),
    ("aws", "sts.us-east-2.amazonaws.com", "us-east-1", "us-east-2"),
    ("aws", "sts.ap-south-1.amazonaws.com", "us-east-1", "ap-south-1"),
    ("aws", "sts.ap-northeast-2.amazonaws.com", "us-east-1", "ap-northeast-2"),
    ("aws", "sts.ca-central-1.amazonaws.com", "us-east-1", "ca-central-1"),
    ("aws", "sts.eu-north-1.amazonaws.com", "us-east-1", "eu-north-1"),
    ("aws", "sts.me-central-1.amazonaws.com", "us-east-1", "me-central-1"),
    ("aws", "sts.il-central-1.amazonaws.com", "us-east-1", "il-central-1"),
    ("aws", "sts.mx-central-1.amazonaws.com", "us-east-1", "mx-central-1"),
    ("aws", "sts.af-south-1.amazonaws.com", "us-east-1", "af-south-1"),
    ("aws", "sts.sa-east-1.amazonaws.com", "us-east-1", "sa-east-1"),
    ("aws", "sts.amazonaws.com.cn", "us-east-1", None),
    ("aws", "website.amazonaws.com", "us-east-1", None),
    ("aws", "sts.default-region.amazonaws.com", "default-region", "default-region"),
    ("aws", "sts.us-west-2.api.aws", "us-east-1", "us-west-2"),
    ("aws", "sts-fips.us-west-2.api.aws", "us-east-1", "us-west-2"),
    ("aws", "sts.cn-north-1.api.amazonwebservices.com.cn", "us-east-1", None),
    ("aws", "sts.us-west-2.amazonaws.com.cn", "us-west-2", None),
    # stricter: unknown or other-partition regions in the commercial domain
    ("aws", "sts.not-a-region.amazonaws.com", "us-east-1", None),
    ("aws", "sts.not-a-region.amazonaws.com", "us-west-2", None),
    ("aws", "sts.us-gov-west-1.amazonaws.com", "us-east-1", None),
    ("aws", "sts.us-gov-west-1.amazonaws.com", "us-gov-west-1", None),
    ("aws", "sts.eu-isoe-west-1.amazonaws.com", "us-east-1", None),
    ("aws", "sts.eusc-de-east-1.amazonaws.com", "us-east-1", None),
    # iso / gov (ref)
    ("aws-iso", "sts.us-iso-east-1.c2s.ic.gov", "us-iso-east-1", "us-iso-east-1"),
    ("aws-iso", "sts.cn-north-1.amazonaws.com.cn", "us-iso-east-1", None),
    ("aws-iso-b", "sts.cn-north-1.amazonaws.com.cn", "us-isob-east-1", None),
    ("aws-iso-b", "sts.us-isob-east-1.amazonaws.com.cn", "us-isob-east-1", None),
    (
        "aws-iso-b",
        "sts.us-isob-east-1.sc2s.sgov.gov",
        "us-isob-east-1",
        "us-isob-east-1",
    ),
    ("aws-us-gov", "sts.us-gov-east-1.amazonaws.com", "us-gov-west-1", "us-gov-east-1"),
    ("aws-us-gov", "sts.us-gov-east-1.api.aws", "us-gov-west-1", "us-gov-east-1"),
    ("aws-us-gov", "sts.us-east-1.amazonaws.com", "us-gov-west-1", None),
    ("aws-us-gov", "sts.us-east-1.amazonaws.com", "us-east-1", None),
    ("aws-iso", "sts.us-iso-east-1.api.aws", "us-iso-east-1", None),
    ("aws-eusc", "sts.eusc-de-east-1.amazonaws.eu", "eusc-de-east-1", "eusc-de-east-1"),
    (
        "aws-eusc",
        "sts.eusc-de-east-1.api.amazonwebservices.eu",
        "eusc-de-east-1",
        "eusc-de-east-1",
    ),
    # look-alikes (security history item 2)
    ("aws", "sts.amazonaws.com.evil.com", "us-east-1", None),
    ("aws", "evilsts.amazonaws.com", "us-east-1", None),
    ("aws", "sts.amazonaws.com.", "us-east-1", None),
    ("aws", "sts.us-east-1.amazonaws.com.", "us-east-1", None),
    ("aws", "STS.AMAZONAWS.COM", "us-east-1", None),
    ("aws", "sts.US-EAST-1.amazonaws.com", "us-east-1", None),
    ("aws", "sts.us-east-1.amazonaws.com:443", "us-east-1", None),
    ("aws", "sts.us-east-1.evil.amazonaws.com", "us-east-1", None),
    ("aws", "sts..amazonaws.com", "us-east-1", None),
    ("aws", "sts-fips.amazonaws.com", "us-east-1", None),
    ("aws", "sts.-us-east-1.amazonaws.com", "us-east-1", None),
    ("aws", "sts.us_east_1.amazonaws.com", "us-east-1", None),
    ("aws", "", "us-east-1", None),
    ("aws", "sts", "us-east-1", None),
    ("aws", "54.239.28.85", "us-east-1", None),
    ("aws", "sts.us-east-1.amazonaws.com.cn.evil", "us-east-1", None),
]


class TestRegionForHost:
    """Which hosts each partition accepts, and the scope region they imply."""

    @pytest.mark.parametrize(
        ("partition", "host", "server_region", "expected"), HOST_CASES
    )
    def test_host(
        self, partition: str, host: str, server_region: str, expected: str | None
    ) -> None:
        """The host is accepted exactly when expected, with its region."""
        allowed = build_allowed_hosts(partition, region=server_region)
        assert region_for_host(allowed, host) == expected


class TestExtraEndpoints:
    """Operator-added endpoints: exact scheme, host and port; http only on loopback."""

    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("http://127.0.0.1:5000", Endpoint("http", "127.0.0.1", 5000)),
            ("http://127.0.0.1:5000/", Endpoint("http", "127.0.0.1", 5000)),
            ("http://127.8.9.10:1", Endpoint("http", "127.8.9.10", 1)),
            ("http://[::1]:8080", Endpoint("http", "::1", 8080)),
            (
                "https://vpce-1.sts.us-east-1.vpce.amazonaws.com",
                Endpoint("https", "vpce-1.sts.us-east-1.vpce.amazonaws.com", None),
            ),
            (
                "HTTPS://STS.Example.COM:8443",
                Endpoint("https", "sts.example.com", 8443),
            ),
        ],
    )
    def test_parse(self, url: str, expected: Endpoint) -> None:
        """Valid endpoint URLs parse to scheme, lower-case host and port."""
        assert parse_endpoint(url) == expected

    @pytest.mark.parametrize(
        "url",
        [
            "http://sts.us-east-1.amazonaws.com",
            "http://localhost:5000",
            "http://10.0.0.1:5000",
            "http://[2001:db8::1]:80",
            "ftp://127.0.0.1:21",
            "https://user@sts.example.com",
            "https://sts.example.com/path",
            "https://sts.example.com/?x=1",
            "https://sts.example.com#f",
            "https://sts.example.com:0",
            "https://sts.example.com:70000",
            "https://sts.example.com.",
            "127.0.0.1:5000",
            "",
            "http://127.0.0.1:5000\n",
        ],
    )
    def test_rejected(self, url: str) -> None:
        """Malformed endpoints and http to non-loopback hosts are config errors."""
        with pytest.raises(ConfigError):
            build_allowed_hosts("aws", [url])

    def test_match_is_exact(self) -> None:
        """Only the exact (scheme, host, port) matches."""
        allowed = build_allowed_hosts(
            "aws", ["http://127.0.0.1:5000"], region="us-west-2"
        )
        assert find_extra_endpoint(allowed, "http", "127.0.0.1", 5000) is not None
        assert find_extra_endpoint(allowed, "https", "127.0.0.1", 5000) is None
        assert find_extra_endpoint(allowed, "http", "127.0.0.1", 5001) is None
        assert find_extra_endpoint(allowed, "http", "127.0.0.1", None) is None
        assert find_extra_endpoint(allowed, "http", "localhost", 5000) is None
        assert allowed.extra_region == "us-west-2"

    def test_netloc(self) -> None:
        """IPv6 hosts are bracketed; a missing port is omitted."""
        assert Endpoint("http", "::1", 80).netloc() == "[::1]:80"
        assert Endpoint("https", "sts.example.com", None).netloc() == "sts.example.com"


class TestBuild:
    """build_allowed_hosts validates the partition and region."""

    def test_unknown_partition(self) -> None:
        """An unknown partition is a config error."""
        with pytest.raises(ConfigError, match="partition"):
            build_allowed_hosts("aws-not-a-partition")

    @pytest.mark.parametrize(
        "region", ["", "US-EAST-1", "us_east_1", "us-east-1\n", "-x"]
    )
    def test_bad_region(self, region: str) -> None:
        """A malformed server region is a config error."""
        with pytest.raises(ConfigError, match="region"):
            build_allowed_hosts("aws", region=region)


# Endpoint URLs both sides must judge alike: (url, accepted).
_ENDPOINT_CASES = [
    ("https://sts.us-west-2.amazonaws.com", True),
    ("https://sts.us-west-2.amazonaws.com/", True),
    ("HTTPS://STS.Example.COM:8443", True),
    ("https://vpce-1.sts.us-east-1.vpce.amazonaws.com:443", True),
    ("http://127.0.0.1:5000", True),
    ("http://127.8.9.10:1", True),
    ("http://[::1]:8080", True),
    ("http://localhost:5000", False),
    ("http://LOCALHOST", False),
    ("http://10.0.0.1:5000", False),
    ("http://sts.us-east-1.amazonaws.com", False),
    ("ftp://127.0.0.1:21", False),
    ("https://user@sts.example.com", False),
    ("https://sts.example.com/path", False),
    ("https://sts.example.com/?x=1", False),
    ("https://sts.example.com#f", False),
    ("https://sts.example.com:0", False),
    ("https://sts.example.com:70000", False),
    ("https://sts.example.com.", False),
    ("127.0.0.1:5000", False),
    (" https://sts.example.com", False),
    ("http://127.0.0.1:5000\n", False),
]


class TestOneEndpointRule:
    """The client signs for exactly the endpoints a server can list."""

    @staticmethod
    def _client(url: str) -> str | None:
        """What `kubeiam token --sts-endpoint url` signs for, or None if refused."""
        from authenticator.exec_credential import ExecInfo
        from authenticator.token_cli import TokenFlags, resolve_settings

        try:
            settings = resolve_settings(
                TokenFlags(cluster_id="c", region="us-west-2", sts_endpoint=url),
                ExecInfo(),
                {"AWS_CONFIG_FILE": "/nonexistent"},
            )
        except ConfigError:
            return None
        return settings.endpoint_url

    @staticmethod
    def _server(url: str) -> Endpoint | None:
        """The endpoint a server with sts.extraEndpoints: [url] allows, or None."""
        try:
            allowed = build_allowed_hosts("aws", [url], region="us-west-2")
        except ConfigError:
            return None
        (endpoint,) = allowed.extra_endpoints
        return endpoint

    @pytest.mark.parametrize(("url", "accepted"), _ENDPOINT_CASES)
    def test_client_and_server_agree(self, url: str, accepted: bool) -> None:
        """Both sides accept or refuse alike, and agree on the normal form."""
        client, server = self._client(url), self._server(url)
        assert (client is not None) is accepted
        assert (server is not None) is accepted
        if client is not None and server is not None:
            assert client == server.url()
            assert parse_endpoint(client) == server

    def test_sources_are_named_in_messages(self) -> None:
        """The message says which setting was wrong."""
        with pytest.raises(ConfigError, match=r"^STS endpoint 'http://localhost:5000'"):
            build_allowed_hosts("aws", ["http://localhost:5000"])
        with pytest.raises(ConfigError, match=r"^AWS_ENDPOINT_URL_STS: .*localhost"):
            parse_endpoint("http://localhost:5000", "AWS_ENDPOINT_URL_STS")
