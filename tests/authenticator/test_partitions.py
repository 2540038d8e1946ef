"""authenticator.partitions against botocore's partition data and STS endpoint rules.

botocore ships the partition table (``botocore/data/partitions.json``: DNS and
dual-stack suffixes, region patterns, known regions) and STS's endpoint rule
set. When a botocore upgrade brings a region, a partition or a host variant
that kubeiam's table does not know, a test here fails.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.endpoint_provider import EndpointProvider
from botocore.loaders import create_loader

from authenticator.errors import ConfigError
from authenticator.hosts import build_allowed_hosts, region_for_host
from authenticator.partitions import (
    PARTITIONS,
    partition_for_region,
    signing_region_for_host,
    split_sts_host,
    sts_host,
)

_LOADER = create_loader()
_PARTITION_DATA: dict[str, Any] = _LOADER.load_data("partitions")
_STS_RULES: dict[str, Any] = _LOADER.load_service_model("sts", "endpoint-rule-set-1")
_BOTOCORE_PARTITIONS: dict[str, dict[str, Any]] = {
    p["id"]: p for p in _PARTITION_DATA["partitions"]
}
# Every (partition, region) botocore knows, without the "-global" pseudo-regions.
_REGIONS = [
    (pid, region)
    for pid, part in _BOTOCORE_PARTITIONS.items()
    for region in sorted(part["regions"])
    if not region.endswith("-global")
]


def _botocore_sts_host(region: str, *, fips: bool, dualstack: bool) -> str:
    """The regional STS host botocore's endpoint rules give (no global endpoint)."""
    provider = EndpointProvider(_STS_RULES, _PARTITION_DATA)
    url: str = provider.resolve_endpoint(
        Region=region, UseFIPS=fips, UseDualStack=dualstack, UseGlobalEndpoint=False
    ).url
    return url.removeprefix("https://")


def _botocore_prefixes(pid: str) -> list[str]:
    """The region-name prefixes a partition's regionRegex fixes (``us-gov-``, ...)."""
    pattern = _BOTOCORE_PARTITIONS[pid]["regionRegex"]
    head = pattern.removeprefix("^").split(r"\w")[0].replace("\\", "")
    expanded = [""]
    for piece in re.split(r"(\([^)]*\))", head):
        options = piece[1:-1].split("|") if piece.startswith("(") else [piece]
        expanded = [done + option for done in expanded for option in options]
    return expanded


class TestTableMatchesBotocore:
    """The partition table is botocore's, field by field."""

    def test_same_partitions(self) -> None:
        """kubeiam knows exactly botocore's partitions."""
        assert set(PARTITIONS) == set(_BOTOCORE_PARTITIONS)

    @pytest.mark.parametrize("pid", sorted(_BOTOCORE_PARTITIONS))
    def test_dns_suffixes(self, pid: str) -> None:
        """Regular and dual-stack suffixes (the ISO dual-stack ones included)."""
        outputs = _BOTOCORE_PARTITIONS[pid]["outputs"]
        assert PARTITIONS[pid].domain == outputs["dnsSuffix"]
        assert PARTITIONS[pid].dualstack_domain == outputs["dualStackDnsSuffix"]

    @pytest.mark.parametrize("pid", sorted(_BOTOCORE_PARTITIONS))
    def test_region_prefixes_claim_new_regions(self, pid: str) -> None:
        """A region botocore's regionRegex would give this partition maps to it."""
        pattern = re.compile(_BOTOCORE_PARTITIONS[pid]["regionRegex"])
        for prefix in _botocore_prefixes(pid):
            future = f"{prefix}newplace-9"
            assert pattern.match(future), future
            assert partition_for_region(future).name == pid, future

    @pytest.mark.parametrize(("pid", "region"), _REGIONS)
    def test_every_known_region_belongs_to_its_partition(
        self, pid: str, region: str
    ) -> None:
        """partition_for_region agrees with botocore for every listed region."""
        assert partition_for_region(region).name == pid


class TestHostBuilderMatchesBotocore:
    """sts_host gives the host botocore's STS endpoint rules give."""

    @pytest.mark.parametrize(("pid", "region"), _REGIONS)
    @pytest.mark.parametrize(
        ("fips", "dualstack"),
        [(False, False), (True, False), (False, True), (True, True)],
    )
    def test_host(self, pid: str, region: str, fips: bool, dualstack: bool) -> None:
        """Regular, FIPS, dual-stack and FIPS dual-stack hosts, every region."""
        want = _botocore_sts_host(region, fips=fips, dualstack=dualstack)
        assert sts_host(region, fips=fips, dualstack=dualstack) == want

    @pytest.mark.parametrize(("pid", "region"), _REGIONS)
    def test_server_accepts_what_clients_sign_for(self, pid: str, region: str) -> None:
        """Every botocore host of a region is on its partition's allow-list."""
        allowed = build_allowed_hosts(pid, region=PARTITIONS[pid].default_region)
        for fips in (False, True):
            for dualstack in (False, True):
                host = _botocore_sts_host(region, fips=fips, dualstack=dualstack)
                assert region_for_host(allowed, host) == region, host
                assert signing_region_for_host(host) == region, host


class TestSplit:
    """split_sts_host reads back what sts_host builds, and nothing else."""

    def test_round_trip(self) -> None:
        """The region of every built host is read back."""
        for _, region in _REGIONS:
            for fips in (False, True):
                host = sts_host(region, fips=fips)
                assert split_sts_host(host) == region

    @pytest.mark.parametrize(
        "host",
        [
            "sts.amazonaws.com.evil.example",
            "sts..amazonaws.com",
            "ec2.us-east-1.amazonaws.com",
            "sts.us-east-1.amazonaws.co",
            "xsts.us-east-1.amazonaws.com",
        ],
    )
    def test_not_sts_hosts(self, host: str) -> None:
        """Other services, other suffixes and empty labels are not STS hosts."""
        assert split_sts_host(host) is None

    def test_global_host_and_others(self) -> None:
        """The global host signs for us-east-1; unknown hosts for nothing."""
        assert signing_region_for_host("sts.amazonaws.com") == "us-east-1"
        assert signing_region_for_host("vpce-1.sts.us-west-2.vpce.example") is None

    def test_bad_region_is_refused(self) -> None:
        """The builder refuses a label that is not a region name."""
        with pytest.raises(ConfigError):
            sts_host("Not_A_Region")
