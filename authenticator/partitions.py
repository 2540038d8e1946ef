"""AWS partitions and their STS hosts (docs/token-format.md).

The one place that knows what an STS host name looks like: :func:`sts_host`
builds the host a client signs for, :func:`split_sts_host` reads the region
back out of one (for the client's credential scope and the server's
allow-list). ``tests/authenticator/test_partitions.py`` checks the table and
the builder against botocore's partition data and STS endpoint rules, so a
new region, partition or host variant in botocore fails a test here.
"""

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
        regular_host_is_fips: The regular ``sts.`` host is the FIPS endpoint, so a
            FIPS client without dual-stack signs for it (GovCloud; STS's
            endpoint rules).
    """

    name: str
    domain: str
    dualstack_domain: str
    region_prefixes: tuple[str, ...]
    default_region: str
    regular_host_is_fips: bool = False


# Domains: docs/token-format.md; checked against botocore's
# partitions.json (dnsSuffix, dualStackDnsSuffix, regionRegex) in a test.
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
            "aws-us-gov",
            "amazonaws.com",
            "api.aws",
            ("us-gov-",),
            "us-gov-west-1",
            regular_host_is_fips=True,
        ),
        Partition(
            "aws-iso", "c2s.ic.gov", "api.aws.ic.gov", ("us-iso-",), "us-iso-east-1"
        ),
        Partition(
            "aws-iso-b",
            "sc2s.sgov.gov",
            "api.aws.scloud",
            ("us-isob-",),
            "us-isob-east-1",
        ),
        Partition(
            "aws-iso-e",
            "cloud.adc-e.uk",
            "api.cloud-aws.adc-e.uk",
            ("eu-isoe-",),
            "eu-isoe-west-1",
        ),
        Partition(
            "aws-iso-f",
            "csp.hci.ic.gov",
            "api.aws.hci.ic.gov",
            ("us-isof-",),
            "us-isof-south-1",
        ),
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


def claiming_partition(region: str) -> Partition | None:
    """Return the partition whose region prefix (the longest) matches, or None.

    Args:
        region: A region name such as ``us-gov-west-1``.
    """
    best: Partition | None = None
    best_len = -1
    for part in PARTITIONS.values():
        for prefix in part.region_prefixes:
            if region.startswith(prefix) and len(prefix) > best_len:
                best, best_len = part, len(prefix)
    return best


def partition_for_region(region: str) -> Partition:
    """Return the partition of a region (longest matching prefix; default ``aws``).

    Args:
        region: A region name such as ``us-gov-west-1``.
    """
    return claiming_partition(region) or PARTITIONS["aws"]


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
    if fips and not dualstack and part.regular_host_is_fips:
        fips = False
    prefix = "sts-fips" if fips else "sts"
    return f"{prefix}.{region}.{domain}"


# STS host name prefixes: regular and FIPS (docs/token-format.md).
STS_HOST_PREFIXES = ("sts.", "sts-fips.")


def split_sts_host(host: str, domains: tuple[str, ...] | None = None) -> str | None:
    """Return the region label of ``sts[-fips].<label>.<domain>``, or None.

    The inverse of :func:`sts_host` (plus the FIPS form); the label is not yet
    checked to be a region.

    Args:
        host: A lower-case host name.
        domains: The DNS suffixes to accept (default: every partition's regular
            and dual-stack suffix).
    """
    if domains is None:
        domains = _ALL_DOMAINS
    for prefix in STS_HOST_PREFIXES:
        if not host.startswith(prefix):
            continue
        for domain in domains:
            suffix = "." + domain
            if host.endswith(suffix) and len(host) > len(prefix) + len(suffix):
                return host[len(prefix) : -len(suffix)]
    return None


def signing_region_for_host(host: str) -> str | None:
    """Return the credential-scope region STS expects on an AWS STS host, or None.

    The global host is ``us-east-1``; a regional host its own region. Any other
    host (a VPC endpoint, an emulator) has none: the caller signs for its
    configured region.

    Args:
        host: A lower-case host name.
    """
    if host == GLOBAL_STS_HOST:
        return GLOBAL_STS_REGION
    label = split_sts_host(host)
    return label if label is not None and REGION_RE.fullmatch(label) else None


# Longest first, so that no suffix shadows a longer one that contains it.
_ALL_DOMAINS = tuple(
    sorted(
        {d for p in PARTITIONS.values() for d in (p.domain, p.dualstack_domain) if d},
        key=len,
        reverse=True,
    )
)
