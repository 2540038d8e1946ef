"""The kubectl exec-plugin protocol: ``KUBERNETES_EXEC_INFO`` in, ExecCredential out.

Pure functions only (kubernetes.md section 2): the shell reads the environment
and the clock and passes them in.

This module is on the path of every cache hit of ``kubeiam token`` (kubectl runs
the plugin on every command). Its value types, and those of the token cache,
derive from :class:`FrozenRecord` rather than ``@dataclass(frozen=True,
slots=True)`` or ``typing.NamedTuple``: importing ``dataclasses`` (with
``inspect``) costs ~11 ms and ``typing`` ~5 ms, paid again on every kubectl
command, against a process that otherwise starts in ~60 ms. For the same
reason it reads and writes JSON through :func:`json_loads` and
:func:`json_dumps`, which give exactly what the json module gives without
importing it (and ``re``) in the common case.
"""

from __future__ import annotations

# cache.py and token_cli.py import these three names from here (re-exported).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import UTC as UTC
    from datetime import datetime as datetime
    from datetime import timedelta as timedelta
else:
    try:
        # The C classes themselves: datetime.py defines a pure-Python copy of
        # everything (~3 ms with math and operator) before re-exporting these.
        from _datetime import UTC, datetime, timedelta
    except ImportError:  # pragma: no cover - CPython always has _datetime
        from datetime import UTC, datetime, timedelta

try:
    # The C halves of the json module. Importing json itself loads re (with enum,
    # functools and collections), ~13 ms on every kubectl call; these two are
    # all that json.loads / json.dumps run for the documents of a cache hit.
    from _json import encode_basestring_ascii as _c_encode_string
    from _json import make_scanner as _c_make_scanner

    _HAVE_C_JSON = True
except ImportError:  # pragma: no cover - CPython always has _json
    _HAVE_C_JSON = False

# client.authentication.k8s.io versions kubectl still speaks (v1alpha1 is gone
# since kubectl 1.24); kubernetes.md section 2.2.
EXEC_API_V1 = "client.authentication.k8s.io/v1"
EXEC_API_V1BETA1 = "client.authentication.k8s.io/v1beta1"
SUPPORTED_API_VERSIONS = (EXEC_API_V1, EXEC_API_V1BETA1)
# docs/token-format.md: default when KUBERNETES_EXEC_INFO is absent or unparsable.
DEFAULT_API_VERSION = EXEC_API_V1BETA1
# The reserved cluster-extension name whose object arrives as spec.cluster.config.
EXEC_EXTENSION_NAME = "client.authentication.k8s.io/exec"
# STS honours a presigned URL for 15 minutes; the reference and aws-cli advertise
# 14 (a one-minute cushion). authentication.md section 1.2.
TOKEN_LIFETIME = timedelta(minutes=14)
# RFC 3339, UTC, second precision, "Z" (client-go parses this; docs/token-format.md).
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


# JSON whitespace (json.decoder.WHITESPACE) and json's float constants.
_JSON_WS = " \t\n\r"
_JSON_CONSTANTS = {
    "-Infinity": float("-inf"),
    "Infinity": float("inf"),
    "NaN": float("nan"),
}
# Deeper documents go to the json module (which detects cycles).
_MAX_DUMP_DEPTH = 32


class _ScanContext:
    """What ``_json.make_scanner`` reads: ``json.JSONDecoder()``'s settings."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _JSON_CONSTANTS.__getitem__


_scan = (
    _c_make_scanner(_ScanContext())  # type: ignore[arg-type]  # duck-typed context
    if _HAVE_C_JSON
    else None
)


def json_loads(text: str) -> object:
    """Return ``json.loads(text)``, importing json only when that is needed.

    A document the C scanner reads whole is returned as json would return it
    (json.loads runs the same scanner); anything else (a syntax error, a BOM,
    trailing data) is handed to :func:`json.loads`, which returns or raises
    exactly as it always does.

    Args:
        text: The JSON text.

    Raises:
        json.JSONDecodeError: Not JSON (a ValueError).
    """
    if _scan is not None and not text.startswith("\ufeff"):
        start = len(text) - len(text.lstrip(_JSON_WS))
        try:
            value, end = _scan(text, start)
        except (StopIteration, ValueError):
            pass
        else:
            if not text[end:].strip(_JSON_WS):
                return value
    import json

    return json.loads(text)


def json_dumps(doc: object, *, sort_keys: bool = False) -> str:
    """Return ``json.dumps(doc, separators=(",", ":"), sort_keys=sort_keys)``.

    Dicts with string keys, lists, strings, ints, booleans and None are
    written here (ASCII-escaped by json's own C function); any other value
    (floats, subclasses, very deep nesting) is handed to :func:`json.dumps`.

    Args:
        doc: The document.
        sort_keys: Sort object keys, as json's ``sort_keys``.
    """
    out: list[str] = []
    if _HAVE_C_JSON and _dump_into(out, doc, sort_keys, 0):
        return "".join(out)
    import json

    return json.dumps(doc, separators=(",", ":"), sort_keys=sort_keys)


def _dump_into(out: list[str], doc: object, sort_keys: bool, depth: int) -> bool:
    kind = type(doc)
    if isinstance(doc, str) and kind is str:
        out.append(_c_encode_string(doc))
    elif doc is None:
        out.append("null")
    elif doc is True:
        out.append("true")
    elif doc is False:
        out.append("false")
    elif isinstance(doc, int) and kind is int:
        out.append(int.__repr__(doc))
    elif depth >= _MAX_DUMP_DEPTH:
        return False
    elif isinstance(doc, dict) and kind is dict:
        items = sorted(doc.items()) if sort_keys else doc.items()
        out.append("{")
        for index, (name, value) in enumerate(items):
            if type(name) is not str:
                return False
            if index:
                out.append(",")
            out.append(_c_encode_string(name))
            out.append(":")
            if not _dump_into(out, value, sort_keys, depth + 1):
                return False
        out.append("}")
    elif isinstance(doc, list | tuple) and kind in (list, tuple):
        out.append("[")
        for index, value in enumerate(doc):
            if index:
                out.append(",")
            if not _dump_into(out, value, sort_keys, depth + 1):
                return False
        out.append("]")
    else:
        return False
    return True


class FrozenRecord:
    """An immutable, slotted value type compared field by field.

    A start-up-cheap stand-in for a frozen, slotted dataclass (see the module
    docstring). Subclasses name their fields in ``__slots__``, annotate them,
    and set them once in a typed ``__init__`` through :meth:`_set`. Fields
    named in ``_SECRET_FIELDS`` are masked in ``repr``.
    """

    __slots__: tuple[str, ...] = ()
    _SECRET_FIELDS: frozenset[str] = frozenset()

    def _set(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def as_dict(self) -> dict[str, object]:
        """Return the fields as a dict, in declaration order."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FrozenRecord) or type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        shown = (
            f"{name}=<hidden>"
            if name in self._SECRET_FIELDS
            else f"{name}={getattr(self, name)!r}"
            for name in self.__slots__
        )
        return f"{type(self).__name__}({', '.join(shown)})"


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
    aws-cli and the reference do (kubernetes.md section 2.2).

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
    return json_dumps(doc) + "\n"
