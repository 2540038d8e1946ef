"""The kubectl exec-plugin protocol: ``KUBERNETES_EXEC_INFO`` in, ExecCredential out.

Pure functions only (Kubernetes exec plugin docs): the shell reads the environment
and the clock and passes them in.

This module is on the path of every cache hit of ``kubeiam token`` (kubectl runs
the plugin on every command), so its value types are
:class:`~authenticator._startup.FrozenRecord` s and it reads and writes JSON
through the shortcuts of :mod:`authenticator._startup`.
"""

from __future__ import annotations

from authenticator._startup import UTC, FrozenRecord, datetime, json_dumps, json_loads
from authenticator.wire import (
    ADVERTISED_TOKEN_LIFETIME,
    EXEC_API_V1,
    EXEC_API_V1BETA1,
    EXEC_EXTENSION_NAME,
)

__all__ = [
    "DEFAULT_API_VERSION",
    "EXEC_API_V1",
    "EXEC_API_V1BETA1",
    "EXEC_EXTENSION_NAME",
    "SUPPORTED_API_VERSIONS",
    "ClusterConfig",
    "ExecInfo",
    "build_exec_credential",
    "build_expiration",
    "format_timestamp",
    "parse_exec_info",
    "render_exec_credential",
]

SUPPORTED_API_VERSIONS = (EXEC_API_V1, EXEC_API_V1BETA1)
# docs/token-format.md: default when KUBERNETES_EXEC_INFO is absent or unparsable.
DEFAULT_API_VERSION = EXEC_API_V1BETA1
# RFC 3339, UTC, second precision, "Z" (client-go parses this; docs/token-format.md).
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class ClusterConfig(FrozenRecord):
    """kubeiam's keys in the exec cluster extension (docs/token-format.md).

    Attributes:
        cluster_id: ``clusterID``, the value signed as ``x-k8s-aws-id``.
        region: ``region``, the STS region to sign for.
        role_arn: ``roleARN``, a role to assume before signing.
    """

    __slots__ = ("cluster_id", "region", "role_arn")
    cluster_id: str | None
    region: str | None
    role_arn: str | None

    def __init__(
        self,
        cluster_id: str | None = None,
        region: str | None = None,
        role_arn: str | None = None,
    ) -> None:
        self._set(cluster_id=cluster_id, region=region, role_arn=role_arn)


class ExecInfo(FrozenRecord):
    """What kubectl told the plugin through ``KUBERNETES_EXEC_INFO``.

    Attributes:
        api_version: The apiVersion to answer in (v1 or v1beta1).
        interactive: ``spec.interactive`` (whether stdin belongs to the plugin), or
            None when ``KUBERNETES_EXEC_INFO`` was absent or unusable.
        cluster: The cluster extension, when ``provideClusterInfo`` is on and set.
        warnings: Human notes for stderr (unparsable input, ignored fields).
        cluster_passed: Whether ``spec.cluster`` was there at all (kubectl
            sends it only with ``provideClusterInfo: true``).
    """

    __slots__ = ("api_version", "cluster", "cluster_passed", "interactive", "warnings")
    api_version: str
    interactive: bool | None
    cluster: ClusterConfig | None
    cluster_passed: bool
    warnings: tuple[str, ...]

    def __init__(
        self,
        api_version: str = DEFAULT_API_VERSION,
        interactive: bool | None = None,
        cluster: ClusterConfig | None = None,
        warnings: tuple[str, ...] = (),
        cluster_passed: bool = False,
    ) -> None:
        self._set(
            api_version=api_version,
            interactive=interactive,
            cluster=cluster,
            cluster_passed=cluster_passed,
            warnings=warnings,
        )


def parse_exec_info(raw: str | None) -> ExecInfo:
    """Parse ``KUBERNETES_EXEC_INFO``, tolerating unknown fields.

    Anything unusable falls back to the v1beta1 default with a warning, as
    aws-cli and the reference do (Kubernetes exec plugin docs).

    Args:
        raw: The variable's value, or None when unset.

    Returns:
        The parsed information.
    """
    if raw is None or not raw.strip():
        return ExecInfo()
    try:
        doc = json_loads(raw)
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
        cluster_passed=isinstance(cluster, dict),
    )


def _parse_cluster_config(config: object, warnings: list[str]) -> ClusterConfig | None:
    if not isinstance(config, dict):  # JSON objects are dicts
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
    (docs/token-format.md). Truncated to whole seconds, UTC.

    Args:
        signed_at: The SigV4 signing time (aware).
        credential_expiry: When the signing credentials expire, or None.

    Returns:
        The expiry, aware UTC, second precision.
    """
    expires = signed_at + ADVERTISED_TOKEN_LIFETIME
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
    return json_dumps(doc) + "\n"
