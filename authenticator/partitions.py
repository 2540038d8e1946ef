"""AWS partitions and their STS hosts (authentication.md sections 1.3 and 3.1)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from authenticator.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Partition:
    """One AWS partition.

    Attributes:
        name: ``aws``, ``aws-cn``, ...
        domain: The regular DNS suffix (``amazonaws.com``).
        dualstack_domain: The dual-stack suffix, or ``""`` when the partition has none.
        region_prefixes: Region name prefixes that belong to this partition.
        default_region: The region used when none is configured.
    """

    name: str
    domain: str
    dualstack_domain: str
    region_prefixes: tuple[str, ...]
    default_region: str


# Domains: authentication.md section 3.1 (botocore's endpoints.json partitions).
PARTITIONS: dict[str, Partition] = {
    p.name: p
    for p in (
        Partition(
            "aws",
            "amazonaws.com",
            "api.aws",
            ("us-", "eu-", "ap-", "sa-", "ca-", "me-", "af-", "il-", "mx-"),
            "us-east-1",
        ),
        Partition(
            "aws-cn",
            "amazonaws.com.cn",
            "api.amazonwebservices.com.cn",
            ("cn-",),
            "cn-north-1",
        ),
        Partition(
            "aws-us-gov", "amazonaws.com", "api.aws", ("us-gov-",), "us-gov-west-1"
        ),
        Partition("aws-iso", "c2s.ic.gov", "", ("us-iso-",), "us-iso-east-1"),
        Partition("aws-iso-b", "sc2s.sgov.gov", "", ("us-isob-",), "us-isob-east-1"),
        Partition("aws-iso-e", "cloud.adc-e.uk", "", ("eu-isoe-",), "eu-isoe-west-1"),
        Partition("aws-iso-f", "csp.hci.ic.gov", "", ("us-isof-",), "us-isof-south-1"),
        Partition(
            "aws-eusc",
            "amazonaws.eu",
            "api.amazonwebservices.eu",
            ("eusc-",),
            "eusc-de-east-1",
        ),
    )
}

# The global (legacy) STS host; its credential scope region is us-east-1.
GLOBAL_STS_HOST = "sts.amazonaws.com"
GLOBAL_STS_REGION = "us-east-1"

# Region label format (reference allow-list step 3), lower-case only in kubeiam.
REGION_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


def get_partition(name: str) -> Partition:
    """Return the partition called ``name``.

    Raises:
        ConfigError: The name is not a known partition.
    """
    try:
        return PARTITIONS[name]
    except KeyError:
        known = ", ".join(PARTITIONS)
        raise ConfigError(f"unknown partition {name!r} (known: {known})") from None


def partition_for_region(region: str) -> Partition:
    """Return the partition of a region (longest matching prefix; default ``aws``).

    Args:
        region: A region name such as ``us-gov-west-1``.
    """
    best: Partition | None = None
    best_len = -1
    for part in PARTITIONS.values():
        for prefix in part.region_prefixes:
            if region.startswith(prefix) and len(prefix) > best_len:
                best, best_len = part, len(prefix)
    return best or PARTITIONS["aws"]


def sts_host(region: str, *, fips: bool = False, dualstack: bool = False) -> str:
    """Return the regional STS host a client signs for.

    Args:
        region: The signing region.
        fips: Use the ``sts-fips`` host (``AWS_USE_FIPS_ENDPOINT``).
        dualstack: Use the dual-stack domain (``AWS_USE_DUALSTACK_ENDPOINT``).

    Raises:
        ConfigError: The region is malformed, or the partition has no dual-stack domain.
    """
    if not REGION_RE.fullmatch(region):
        raise ConfigError(f"invalid region {region!r}")
    part = partition_for_region(region)
    domain = part.domain
    if dualstack:
        if not part.dualstack_domain:
            raise ConfigError(f"partition {part.name} has no dual-stack STS endpoint")
        domain = part.dualstack_domain
    prefix = "sts-fips" if fips else "sts"
    return f"{prefix}.{region}.{domain}"
