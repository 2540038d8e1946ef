"""aws-iam-authenticator's server config, read as it is (see docs/configuration.md).

:func:`translate_authenticator_config` turns the reference's document
(``clusterID``, ``server.mapRoles/mapUsers/mapAccounts``, ``server.backendMode``,
``server.reservedPrefixConfig``, ``server.stateDir``...) into kubeiam's; what
carries over is translated, what does not is refused with a message that says
what to do. :func:`is_authenticator_config` tells the two apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import PurePosixPath

from webhook.errors import ConfigError

__all__ = ["is_authenticator_config", "translate_authenticator_config"]

# The reference's default state directory (where it keeps cert.pem / key.pem).
DEFAULT_STATE_DIR = "/var/aws-iam-authenticator"
# server.* keys only the reference has; any of them marks its format.
_REFERENCE_SERVER_KEYS = frozenset(
    {
        "mapRoles",
        "mapUsers",
        "mapAccounts",
        "backendMode",
        "reservedPrefixConfig",
        "stateDir",
        "generateKubeconfig",
        "kubeconfigPregenerated",
        "kubeconfig",
        "master",
        "ec2DescribeInstancesRoleARN",
        "ec2DescribeInstancesQps",
        "ec2DescribeInstancesBurst",
        "scrubbedAccounts",
        "dynamicfilepath",
        "dynamicfileUserIDStrict",
        "dynamicBackendModePath",
    }
)
_REFERENCE_TOP_KEYS = frozenset({"defaultRole", "featureGates"})
# Accepted and without effect here (generation, tuning, client-side defaults).
_IGNORED_SERVER_KEYS = frozenset(
    {
        "generateKubeconfig",
        "kubeconfigPregenerated",
        "ec2DescribeInstancesQps",
        "ec2DescribeInstancesBurst",
    }
)
_IGNORED_TOP_KEYS = frozenset({"defaultRole", "featureGates"})
# kubeiam's own sections may be added to the reference's file as they are.
_KUBEIAM_ADDITIONS = frozenset({"sts", "cache", "authorization"})
# server.* keys with no kubeiam equivalent: what to do instead.
_REFUSED_SERVER_KEYS = {
    "master": "put the API server URL into the kubeconfig (server.kubeconfig)",
    "ec2DescribeInstancesRoleARN": (
        "not supported: give the server's own credentials ec2:DescribeInstances"
    ),
    "dynamicfilepath": (
        "DynamicFile is not supported: move the mappings into a mapping file "
        "(sources: [{file: {path: ...}}])"
    ),
    "dynamicfileUserIDStrict": "DynamicFile is not supported",
    "dynamicBackendModePath": "DynamicFile is not supported",
}
# backendMode values -> kubeiam source kind ("inline": the file's own mappings).
_BACKENDS = {
    "MountedFile": "inline",
    "File": "inline",
    "EKSConfigMap": "configMap",
    "ConfigMap": "configMap",
    "CRD": "crd",
}


def is_authenticator_config(doc: object) -> bool:
    """Whether a parsed config is in aws-iam-authenticator's format.

    Args:
        doc: The parsed YAML.

    Returns:
        True when ``server`` holds a key only the reference has (mappings,
        ``backendMode``, ``stateDir``...) or the top level has ``defaultRole``
        or ``featureGates``.
    """
    if not isinstance(doc, Mapping):
        return False
    server = doc.get("server")
    if isinstance(server, Mapping) and _REFERENCE_SERVER_KEYS & set(server):
        return True
    return bool(_REFERENCE_TOP_KEYS & set(doc))


def translate_authenticator_config(
    doc: Mapping[str, object],
    *,
    fail: Callable[[str, str], ConfigError],
    exists: Callable[[str], bool],
) -> dict[str, object]:
    """Translate aws-iam-authenticator's server config into kubeiam's.

    ``clusterID`` and ``partition`` carry over; ``server.address``/``port``
    too; ``server.mapRoles/mapUsers/mapAccounts`` become the inline mappings
    (backend ``MountedFile``); ``EKSConfigMap`` and ``CRD`` become sources in
    ``backendMode`` order; ``reservedPrefixConfig`` becomes
    ``reservedPrefixes``; the serving certificate is the reference's
    ``<stateDir>/cert.pem`` and ``key.pem``; ``server.kubeconfig`` stays.

    Args:
        doc: The reference's document.
        fail: Builds the error for a key path and a reason.
        exists: Whether a file exists (for ``stateDir``).

    Returns:
        A kubeiam config document (for ``parse_settings``).

    Raises:
        ConfigError: A key has no kubeiam equivalent, or a value is wrong.
    """
    out: dict[str, object] = {}
    for key, value in doc.items():
        if key in ("clusterID", "partition") or key in _KUBEIAM_ADDITIONS:
            out[key] = value
        elif key not in _IGNORED_TOP_KEYS and key != "server":
            raise fail(
                str(key),
                "unknown key in an aws-iam-authenticator config (kubeiam reads "
                "clusterID, partition, server.*, and its own sts, cache, "
                "authorization; see docs/configuration.md)",
            )
    raw = doc.get("server") or {}
    if not isinstance(raw, Mapping):
        raise fail("server", "must be a mapping")
    server: dict[str, object] = {}
    for key, value in raw.items():
        if key in _REFUSED_SERVER_KEYS:
            raise fail(f"server.{key}", _REFUSED_SERVER_KEYS[key])
        if key == "scrubbedAccounts" and value:
            raise fail(
                "server.scrubbedAccounts",
                "not supported: kubeiam never logs tokens; drop the key",
            )
        if key in ("address", "port"):
            server[key] = value
        elif key not in _REFERENCE_SERVER_KEYS and key not in ("address", "port"):
            raise fail(
                f"server.{key}",
                "unknown key in an aws-iam-authenticator config "
                "(see docs/configuration.md)",
            )
    modes = _backend_modes(raw.get("backendMode"), fail)
    sources: list[object] = []
    for i, kind in enumerate(modes):
        if kind == "inline":
            if i != 0:
                raise fail(
                    f"server.backendMode[{i}]",
                    "MountedFile must come first (kubeiam reads the config's own "
                    "mappings before every source)",
                )
            for key in ("mapRoles", "mapUsers", "mapAccounts"):
                if key in raw:
                    out[key] = raw[key]
        else:
            sources.append({kind: {}})
    if "inline" not in modes:
        for key in ("mapRoles", "mapUsers", "mapAccounts"):
            if raw.get(key):
                raise fail(
                    f"server.{key}",
                    "backendMode has no MountedFile, so these mappings would be "
                    "ignored; add MountedFile or drop them",
                )
    if sources:
        out["sources"] = sources
    reserved = _reserved(raw.get("reservedPrefixConfig"), fail)
    if reserved:
        out["reservedPrefixes"] = reserved
    state_dir = raw.get("stateDir", DEFAULT_STATE_DIR)
    if not isinstance(state_dir, str) or not state_dir:
        raise fail("server.stateDir", "must be a directory path")
    cert = str(PurePosixPath(state_dir) / "cert.pem")
    key = str(PurePosixPath(state_dir) / "key.pem")
    if exists(cert) and exists(key):
        server["certFile"], server["keyFile"] = cert, key
    if server:
        out["server"] = server
    if raw.get("kubeconfig"):
        out["kubeconfig"] = raw["kubeconfig"]
    return out


def _backend_modes(value: object, fail: Callable[[str, str], ConfigError]) -> list[str]:
    if value is None:
        return ["inline"]
    if isinstance(value, str):
        # The reference's flag form: "MountedFile,EKSConfigMap".
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value:
        raise fail("server.backendMode", "must be a non-empty list of backend modes")
    kinds: list[str] = []
    for i, mode in enumerate(value):
        if mode == "DynamicFile":
            raise fail(
                f"server.backendMode[{i}]",
                "DynamicFile is not supported: move its mappings into a mapping "
                "file (sources: [{file: {path: ...}}])",
            )
        kind = _BACKENDS.get(mode) if isinstance(mode, str) else None
        if kind is None:
            raise fail(
                f"server.backendMode[{i}]",
                f"unknown backend mode {mode!r} (known: {', '.join(_BACKENDS)})",
            )
        if kind in kinds:
            raise fail(f"server.backendMode[{i}]", f"{mode} is listed twice")
        kinds.append(kind)
    return kinds


def _reserved(
    value: object, fail: Callable[[str, str], ConfigError]
) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise fail("server.reservedPrefixConfig", "must be a mapping of backend modes")
    out: dict[str, object] = {}
    for mode, body in value.items():
        where = f"server.reservedPrefixConfig.{mode}"
        kind = _BACKENDS.get(mode) if isinstance(mode, str) else None
        if kind is None:
            raise fail(where, f"unknown backend mode (known: {', '.join(_BACKENDS)})")
        if not isinstance(body, Mapping) or set(body) - {"usernamePrefixReserveList"}:
            raise fail(where, "must be {usernamePrefixReserveList: [...]}")
        out[kind] = body.get("usernamePrefixReserveList") or []
    return out
