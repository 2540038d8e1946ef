"""``kubeiam verify``, wired to the server's own config parser.

``kubeiam verify --config FILE`` must accept exactly the files ``kubeiam
server`` accepts (and refuse the same typos), so the file is read by
:func:`webhook.settings.load_settings`, not by a second parser. The command
itself lives in :mod:`authenticator.verify_cli`; the identity core cannot
import the webhook, so the two meet here, at the top.
"""

from __future__ import annotations

from pathlib import Path

from authenticator.partitions import get_partition
from authenticator.verify_cli import VerifySettings
from authenticator.verify_cli import main as verify_main

__all__ = ["main", "read_server_config"]


def read_server_config(path: Path) -> VerifySettings:
    """Read the server config the way the server does, keep what verify needs.

    Args:
        path: The server config file.

    Returns:
        Cluster ID, partition, STS region (the partition's default when the file
        names none, as the server does), timeout and extra endpoints.

    Raises:
        ConfigError: The server would refuse the file.
    """
    from webhook.settings import load_settings

    settings = load_settings(path)
    return VerifySettings(
        cluster_id=settings.cluster_id,
        partition=settings.partition,
        region=settings.sts.region or get_partition(settings.partition).default_region,
        timeout_s=settings.sts.timeout_s,
        extra_endpoints=settings.sts.extra_endpoints,
    )


def main(argv: list[str]) -> int:
    """Run ``kubeiam verify`` (see :mod:`authenticator.verify_cli`).

    Args:
        argv: Arguments after ``verify``.

    Returns:
        The exit code.
    """
    return verify_main(argv, read_config=read_server_config)
