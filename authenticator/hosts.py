"""The STS host allow-list (docs/token-format.md section 3).

Pure: ``build_allowed_hosts`` validates operator settings once (in a shell) and
``region_for_host`` / ``find_extra_endpoint`` answer for each token.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from authenticator.errors import ConfigError
from authenticator.partitions import (
    GLOBAL_STS_HOST,
    GLOBAL_STS_REGION,
    PARTITIONS,
    REGION_RE,
    claiming_partition,
    get_partition,
    split_sts_host,
)

# The shape of an AWS region name: a short geography, one or more words, a
# number (us-east-1, us-gov-west-1, eu-isoe-west-1, eusc-de-east-1).
_REGION_SHAPE_RE = re.compile(r"^[a-z]{2,5}(?:-[a-z]+)+-[0-9]{1,2}$")
# Extra endpoints: scheme://host[:port] with an optional trailing "/".
_ENDPOINT_RE = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)"
    r"(?::(?P<port>[0-9]{1,5}))?/?$"
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One operator-added STS endpoint; a token host matches it exactly.

    Attributes:
        scheme: ``https``, or ``http`` for loopback addresses only.
        host: Lower-case host name or IP address (IPv6 without brackets).
        port: The explicit port, or None when the URL names none.
    """

    scheme: str
    host: str
    port: int | None

    def netloc(self) -> str:
        """Return ``host[:port]`` as it appears in a URL (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def url(self) -> str:
        """Return the normal form ``scheme://host[:port]`` (no trailing ``/``)."""
        return f"{self.scheme}://{self.netloc()}"


@dataclass(frozen=True, slots=True)
class AllowedHosts:
    """Which STS hosts a verifier accepts.

    Attributes:
        partition: The server's partition; only its STS hosts are accepted.
        extra_endpoints: Operator-added endpoints (VPC endpoints, a local emulator).
        extra_region: The server's ``sts.region``: the credential-scope region
            expected on extra endpoints, and also accepted as the region label of
            a regular STS host (as the reference accepts its own region).
    """

    partition: str
    extra_endpoints: frozenset[Endpoint]
    extra_region: str


def build_allowed_hosts(
    partition: str = "aws",
    extra_endpoints: Sequence[str] = (),
    *,
    region: str = "us-east-1",
) -> AllowedHosts:
    """Validate the server's STS settings and return the allow-list.

    Args:
        partition: The server's partition (``aws``, ``aws-cn``, ...).
        extra_endpoints: Full ``scheme://host[:port]`` URLs of extra STS endpoints.
        region: The server's STS region (``sts.region``).

    Returns:
        The allow-list.

    Raises:
        ConfigError: Unknown partition, malformed region, an endpoint that is not
            ``scheme://host[:port]``, or plain ``http`` to a non-loopback host.
    """
    get_partition(partition)
    if not REGION_RE.fullmatch(region):
        raise ConfigError(
            f"sts.region {region!r} is not a region name (e.g. us-west-2)"
        )
    return AllowedHosts(
        partition=partition,
        extra_endpoints=frozenset(parse_endpoint(url) for url in extra_endpoints),
        extra_region=region,
    )


def parse_endpoint(url: str, source: str | None = None) -> Endpoint:
    """Parse an STS endpoint URL: THE rule for client and server alike.

    ``kubeiam token --sts-endpoint`` / ``AWS_ENDPOINT_URL_STS`` (where a token is
    signed for) and ``sts.extraEndpoints`` (which hosts a server accepts) both
    go through here, so a client never signs for an endpoint a server would
    refuse to list (docs/configuration.md, "STS endpoints"). The rule:
    ``scheme://host[:port]`` with an optional trailing ``/`` and nothing else
    (no user, path, query, fragment or surrounding space); ``https``, or plain
    ``http`` only for a loopback IP literal (127.0.0.0/8, ``::1``; never a
    name such as ``localhost``, which can be re-pointed).

    Args:
        url: The URL.
        source: Where it came from, to start the message with (``--sts-endpoint``,
            ``AWS_ENDPOINT_URL_STS``); None for "STS endpoint <url>".

    Returns:
        The endpoint.

    Raises:
        ConfigError: The URL is malformed, has a path, query, fragment or
            userinfo, or uses ``http`` for a host that is not a loopback address.
    """
    what = f"{source}: {url!r}" if source else f"STS endpoint {url!r}"
    match = _ENDPOINT_RE.fullmatch(url)
    if not match:
        raise ConfigError(
            f"{what} must be scheme://host[:port] with no user, path, "
            "query or fragment (e.g. https://sts.us-west-2.amazonaws.com)"
        )
    scheme = match["scheme"].lower()
    host = match["host"].lower().strip("[]")
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"{what} has an invalid port")
    if scheme not in ("https", "http"):
        raise ConfigError(f"{what} must use https")
    if scheme == "http" and not is_loopback(host):
        raise ConfigError(
            f"{what}: plain http is allowed only for loopback addresses "
            "(127.0.0.0/8 or ::1, not a name such as localhost); use https"
        )
    if not host or host.endswith("."):
        raise ConfigError(f"{what} has an empty or dotted host")
    return Endpoint(scheme=scheme, host=host, port=port)


def is_loopback(host: str) -> bool:
    """Return True when ``host`` is a loopback IP literal (names never count).

    Args:
        host: A host without brackets.
    """
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def find_extra_endpoint(
    allowed: AllowedHosts, scheme: str, host: str, port: int | None
) -> Endpoint | None:
    """Return the extra endpoint that matches exactly, if any.

    Args:
        allowed: The allow-list.
        scheme: The token URL's scheme (lower-case).
        host: The token URL's host as written (IPv6 without brackets).
        port: The token URL's explicit port, or None.
    """
    candidate = Endpoint(scheme=scheme, host=host, port=port)
    return candidate if candidate in allowed.extra_endpoints else None


def region_for_host(allowed: AllowedHosts, host: str) -> str | None:
    """Return the credential-scope region of an allowed regular STS host.

    Accepted, for the configured partition only and as exact lower-case text:
    ``sts.amazonaws.com`` (partition ``aws``; region ``us-east-1``) and
    ``sts[-fips].<region>.<domain | dual-stack domain>``, where ``<region>``
    belongs to the partition by its prefix or equals the server's own region.

    Args:
        allowed: The allow-list.
        host: The host as written in the token URL.

    Returns:
        The region, or None when the host is not an allowed STS host.
    """
    if host == GLOBAL_STS_HOST:
        return GLOBAL_STS_REGION if allowed.partition == "aws" else None
    part = PARTITIONS[allowed.partition]
    domains = tuple(d for d in (part.domain, part.dualstack_domain) if d)
    region = split_sts_host(host, domains)
    if region is not None and _region_in_partition(region, allowed):
        return region
    return None


def _region_in_partition(region: str, allowed: AllowedHosts) -> bool:
    """A region label accepted for the server's partition.

    A region that another partition claims by prefix is never accepted (no
    cross-partition tokens); an unclaimed label only when it is the server's own
    region (as the reference accepts its own, possibly unlisted, region).
    """
    if not REGION_RE.fullmatch(region):
        return False
    claimed = claiming_partition(region)
    if claimed is None:
        return region == allowed.extra_region
    return claimed.name == allowed.partition and (
        region == allowed.extra_region or bool(_REGION_SHAPE_RE.fullmatch(region))
    )
