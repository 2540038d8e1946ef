"""The kubectl exec-plugin protocol: ``KUBERNETES_EXEC_INFO`` in, ExecCredential out.

Pure functions only (kubernetes.md section 2): the shell reads the environment
and the clock and passes them in.

This module is on the path of every cache hit of ``kubeiam token`` (kubectl runs
the plugin on every command), so its value types are ``typing.NamedTuple``: as
immutable and typed as a frozen dataclass, without the ~20 ms that importing
``dataclasses`` (and ``inspect``) and generating dataclass methods costs at
start-up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

# client.authentication.k8s.io versions kubectl still speaks (v1alpha1 is gone
# since kubectl 1.24); kubernetes.md section 2.2.
EXEC_API_V1 = "client.authentication.k8s.io/v1"
EXEC_API_V1BETA1 = "client.authentication.k8s.io/v1beta1"
SUPPORTED_API_VERSIONS = (EXEC_API_V1, EXEC_API_V1BETA1)
# SPEC section 2: default when KUBERNETES_EXEC_INFO is absent or unparsable.
DEFAULT_API_VERSION = EXEC_API_V1BETA1
# The reserved cluster-extension name whose object arrives as spec.cluster.config.
EXEC_EXTENSION_NAME = "client.authentication.k8s.io/exec"
# STS honours a presigned URL for 15 minutes; the reference and aws-cli advertise
# 14 (a one-minute cushion). authentication.md section 1.2.
TOKEN_LIFETIME = timedelta(minutes=14)
# RFC 3339, UTC, second precision, "Z" (client-go parses this; SPEC section 2).
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class ClusterConfig(NamedTuple):
    """kubeiam's keys in the exec cluster extension (SPEC section 2).

    Attributes:
        cluster_id: ``clusterID``, the value signed as ``x-k8s-aws-id``.
        region: ``region``, the STS region to sign for.
        role_arn: ``roleARN``, a role to assume before signing.
    """

    cluster_id: str | None = None
    region: str | None = None
    role_arn: str | None = None


class ExecInfo(NamedTuple):
    """What kubectl told the plugin through ``KUBERNETES_EXEC_INFO``.

    Attributes:
        api_version: The apiVersion to answer in (v1 or v1beta1).
        interactive: ``spec.interactive`` (whether stdin belongs to the plugin), or
            None when ``KUBERNETES_EXEC_INFO`` was absent or unusable.
        cluster: The cluster extension, when ``provideClusterInfo`` is on and set.
        warnings: Human notes for stderr (unparsable input, ignored fields).
    """

    api_version: str = DEFAULT_API_VERSION
    interactive: bool | None = None
    cluster: ClusterConfig | None = None
    warnings: tuple[str, ...] = ()


def parse_exec_info(raw: str | None) -> ExecInfo:
    """Parse ``KUBERNETES_EXEC_INFO``, tolerating unknown fields.

    Anything unusable falls back to the v1beta1 default with a warning, as
    aws-cli and the reference do (kubernetes.md section 2.2).

    Args:
        raw: The variable's value, or None when unset.

    Returns:
        The parsed information.
    """
    if raw is None or not raw.strip():
        return ExecInfo()
    try:
        doc = json.loads(raw)
    except ValueError:
        return ExecInfo(
            warnings=("KUBERNETES_EXEC_INFO is not JSON; answering in v1beta1",)
        )
    if not isinstance(doc, dict):
        return ExecInfo(
            warnings=("KUBERNETES_EXEC_INFO is not an object; answering in v1beta1",)
        )
    warnings: list[str] = []
    api_version = doc.get("apiVersion")
    if api_version not in SUPPORTED_API_VERSIONS:
        warnings.append(
            f"KUBERNETES_EXEC_INFO apiVersion {api_version!r} is not supported; "
            "answering in v1beta1"
        )
        api_version = DEFAULT_API_VERSION
    spec = doc.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    interactive = spec.get("interactive") is True
    cluster = spec.get("cluster")
    config = cluster.get("config") if isinstance(cluster, dict) else None
    parsed = _parse_cluster_config(config, warnings) if config is not None else None
    return ExecInfo(
        api_version=str(api_version),
        interactive=interactive,
        cluster=parsed,
        warnings=tuple(warnings),
    )


def _parse_cluster_config(config: object, warnings: list[str]) -> ClusterConfig | None:
    if not isinstance(config, Mapping):
        warnings.append(
            f"exec cluster extension {EXEC_EXTENSION_NAME} is not an object; ignored"
        )
        return None
    values: dict[str, str | None] = {}
    for field, attr in (
        ("clusterID", "cluster_id"),
        ("region", "region"),
        ("roleARN", "role_arn"),
    ):
        value = config.get(field)
        if value is None or value == "":
            values[attr] = None
        elif isinstance(value, str):
            values[attr] = value
        else:
            warnings.append(
                f"exec cluster extension field {field!r} is not a string; ignored"
            )
            values[attr] = None
    return ClusterConfig(**values)


def build_expiration(
    signed_at: datetime, credential_expiry: datetime | None
) -> datetime:
    """Return the advertised expiry of a token signed at ``signed_at``.

    Signing time + 14 minutes, never later than the signing credentials' own
    expiry: a URL signed with temporary credentials dies with them
    (authentication.md section 1.2). Truncated to whole seconds, UTC.

    Args:
        signed_at: The SigV4 signing time (aware).
        credential_expiry: When the signing credentials expire, or None.

    Returns:
        The expiry, aware UTC, second precision.
    """
    expires = signed_at + TOKEN_LIFETIME
    if credential_expiry is not None and credential_expiry < expires:
        expires = credential_expiry
    return expires.astimezone(UTC).replace(microsecond=0)


def format_timestamp(moment: datetime) -> str:
    """Return ``moment`` as RFC 3339 UTC with ``Z`` and second precision.

    Args:
        moment: An aware datetime.
    """
    return moment.astimezone(UTC).strftime(_TIMESTAMP_FORMAT)


def build_exec_credential(
    *, api_version: str, token: str, expires_at: datetime
) -> dict[str, object]:
    """Return the ExecCredential object kubectl expects on stdout.

    Args:
        api_version: The version to answer in (echoed from the input).
        token: The bearer token.
        expires_at: The advertised expiry.

    Returns:
        The document, with an empty ``spec`` as aws-cli and the reference emit.
    """
    return {
        "kind": "ExecCredential",
        "apiVersion": api_version,
        "spec": {},
        "status": {"expirationTimestamp": format_timestamp(expires_at), "token": token},
    }


def render_exec_credential(
    *, api_version: str, token: str, expires_at: datetime
) -> str:
    """Return the ExecCredential as one line of JSON plus a newline.

    Args:
        api_version: The version to answer in.
        token: The bearer token.
        expires_at: The advertised expiry.
    """
    doc = build_exec_credential(
        api_version=api_version, token=token, expires_at=expires_at
    )
    return json.dumps(doc, separators=(",", ":")) + "\n"
