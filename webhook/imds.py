"""The server's STS region from EC2 instance metadata, when none is configured.

``kubeiam server`` on EC2 (or EKS nodes) without ``sts.region`` asks the
instance metadata service once, at start (``authenticator.ec2``: botocore's
IMDSv2 client, one attempt, a one-second timeout), so a machine that is not on
EC2 starts at once.
``AWS_EC2_METADATA_DISABLED=true`` turns it off (the test suite always does);
``AWS_EC2_METADATA_SERVICE_ENDPOINT`` points it elsewhere, as for the AWS SDKs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from authenticator.ec2 import region_from_instance_metadata
from authenticator.partitions import partition_for_region
from webhook.settings import WebhookSettings


def with_region(
    settings: WebhookSettings, env: Mapping[str, str] | None = None
) -> tuple[WebhookSettings, str]:
    """Fill ``sts.region`` from instance metadata when the config has none.

    A region of another partition than the server's is not used.

    Args:
        settings: The loaded settings.
        env: The environment (default ``os.environ``).

    Returns:
        The settings (changed only when metadata gave a region) and where the
        region comes from: ``config``, ``instance metadata`` or ``default``.
    """
    if settings.sts.region is not None:
        return settings, "config"
    region = region_from_instance_metadata(env)
    if region is None or partition_for_region(region).name != settings.partition:
        return settings, "default"
    return replace(settings, sts=replace(settings.sts, region=region)), (
        "instance metadata"
    )
