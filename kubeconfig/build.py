"""Pure kubeconfig building: entries, merging, validation; returns plain dicts.

The entries follow ``aws eks update-kubeconfig`` in their names. By default
the cluster ID, region and role go into the exec ``args`` (as
``aws eks update-kubeconfig`` writes them), so clients without
``provideClusterInfo`` (the Python kubernetes client before 32.0) work. For a
user entry shared by many clusters (``--user-alias``) they go into the
cluster's ``client.authentication.k8s.io/exec`` extension instead, which
kubectl hands to the plugin when ``provideClusterInfo`` is true. The cluster
entry carries the extension in both forms.

:func:`replace_exec_users` rewrites, in place, user entries that run
``aws-iam-authenticator token`` or ``aws eks get-token`` so that they run
``kubeiam token`` with the same cluster, role, region and profile.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from authenticator.wire import EXEC_API_V1, EXEC_API_V1BETA1, EXEC_EXTENSION_NAME
from kubeconfig.errors import KubeconfigError

__all__ = [
    "EXEC_API_VERSION",
    "EXEC_EXTENSION_NAME",
    "Action",
    "ClusterSpec",
    "EntryNames",
    "MergeResult",
    "ReplacedUser",
    "build_cluster",
    "build_context",
    "build_names",
    "build_server_config",
    "build_user",
    "build_webhook_kubeconfig",
    "merge_entries",
    "new_kubeconfig",
    "parse_kubeconfig",
    "region_from_arn",
    "replace_exec_users",
    "token_args",
]

# The exec plugin API version `aws eks update-kubeconfig` writes; kubectl >= 1.24
# accepts it (Kubernetes exec plugin docs).
EXEC_API_VERSION = EXEC_API_V1BETA1
# stdin only when it is a terminal nobody else needs (MFA prompts), Kubernetes exec
# plugin docs.
_INTERACTIVE_MODE = "IfAvailable"
_INSTALL_HINT = "kubeiam is the credential plugin for this cluster: pip install kubeiam"
# The three named lists of a kubeconfig and the key holding each entry's body.
_SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))
# Entry names in the webhook kubeconfig `kubeiam init` writes (Kubernetes webhook authn
# docs).
_WEBHOOK_CLUSTER = "kubeiam-webhook"
_WEBHOOK_USER = "kube-apiserver"
_WEBHOOK_CONTEXT = "webhook"


class Action(Enum):
    """What a merge did to one entry."""

    ADDED = "added"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """Everything known about the cluster being added.

    ``ca_data`` is base64 of the PEM CA bundle, as in
    ``certificate-authority-data``.
    """

    cluster_id: str
    server: str
    ca_data: str
    region: str | None = None
    role_arn: str | None = None
    cluster_arn: str | None = None


@dataclass(frozen=True, slots=True)
class EntryNames:
    """The names of the cluster, user and context entries."""

    cluster: str
    user: str
    context: str


@dataclass(frozen=True, slots=True)
class MergeResult:
    """A merged kubeconfig document and what happened to each entry."""

    doc: dict[str, object]
    cluster: Action
    user: Action
    context: Action
    current_context: str | None
    current_context_changed: bool
    context_retargeted_from: str | None = None


def region_from_arn(arn: str | None) -> str | None:
    """Return the region field of an ARN (``arn:aws:eks:REGION:ACCOUNT:cluster/NAME``).

    Args:
        arn: An ARN, or None.

    Returns:
        The region, or None when there is no ARN or no region in it.
    """
    if not arn:
        return None
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn" or not parts[3]:
        return None
    return parts[3]


def build_names(
    spec: ClusterSpec, *, alias: str | None = None, user_alias: str | None = None
) -> EntryNames:
    """Name the entries as ``aws eks update-kubeconfig`` does (docs/eks.md).

    The cluster is named by its ARN when known, else by the cluster ID; the
    user by ``user_alias`` or the cluster name; the context by ``alias``, else
    the user's name.

    Args:
        spec: The cluster.
        alias: ``--alias``.
        user_alias: ``--user-alias``.

    Returns:
        The three names.
    """
    cluster = spec.cluster_arn or spec.cluster_id
    user = user_alias or cluster
    return EntryNames(cluster=cluster, user=user, context=alias or user)


def build_cluster(name: str, spec: ClusterSpec) -> dict[str, object]:
    """Build a ``clusters[]`` entry carrying the exec extension.

    Args:
        name: The entry's name.
        spec: The cluster.

    Returns:
        ``{"name": ..., "cluster": {...}}``.
    """
    extension: dict[str, object] = {"clusterID": spec.cluster_id}
    if spec.region:
        extension["region"] = spec.region
    if spec.role_arn:
        extension["roleARN"] = spec.role_arn
    return {
        "name": name,
        "cluster": {
            "server": spec.server,
            "certificate-authority-data": spec.ca_data,
            "extensions": [{"name": EXEC_EXTENSION_NAME, "extension": extension}],
        },
    }


def token_args(spec: ClusterSpec) -> list[str]:
    """The ``args`` of an exec stanza that names its cluster itself.

    Args:
        spec: The cluster.

    Returns:
        ``["token", "-i", ID, "--region", REGION, "-r", ROLE]`` (region and
        role only when known).
    """
    args = ["token", "-i", spec.cluster_id]
    if spec.region:
        args += ["--region", spec.region]
    if spec.role_arn:
        args += ["-r", spec.role_arn]
    return args


def build_user(
    name: str,
    *,
    command: str,
    profile: str | None = None,
    spec: ClusterSpec | None = None,
) -> dict[str, object]:
    """Build a ``users[]`` entry whose exec stanza runs ``kubeiam token``.

    With ``spec`` the cluster ID, region and role are written into ``args``
    (every client works). Without it the plugin reads them from the cluster
    extension (``provideClusterInfo: true``), so the same user entry serves
    every cluster that has one.

    Args:
        name: The entry's name.
        command: Absolute path of the ``kubeiam`` executable.
        profile: An AWS profile, passed as ``AWS_PROFILE`` in ``env``.
        spec: The cluster, for the args form; None for the extension form.

    Returns:
        ``{"name": ..., "user": {"exec": {...}}}``.
    """
    exec_: dict[str, object] = {
        "apiVersion": EXEC_API_VERSION,
        "command": command,
        "args": token_args(spec) if spec is not None else ["token"],
    }
    if profile:
        exec_["env"] = [{"name": "AWS_PROFILE", "value": profile}]
    exec_["interactiveMode"] = _INTERACTIVE_MODE
    exec_["provideClusterInfo"] = spec is None
    exec_["installHint"] = _INSTALL_HINT
    return {"name": name, "user": {"exec": exec_}}


def build_context(name: str, *, cluster: str, user: str) -> dict[str, object]:
    """Build a ``contexts[]`` entry.

    Args:
        name: The entry's name.
        cluster: The cluster entry's name.
        user: The user entry's name.

    Returns:
        ``{"name": ..., "context": {"cluster": ..., "user": ...}}``.
    """
    return {"name": name, "context": {"cluster": cluster, "user": user}}


def new_kubeconfig() -> dict[str, object]:
    """Return an empty kubeconfig with the header ``aws eks update-kubeconfig`` writes.

    Returns:
        A new document.
    """
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [],
        "users": [],
        "contexts": [],
        "current-context": "",
    }


def parse_kubeconfig(doc: object, *, source: str) -> dict[str, object]:
    """Check that a loaded YAML document is a kubeconfig this tool can merge into.

    An empty document (``None``) becomes a new kubeconfig. Anything kubectl
    would not load, or that a merge could not keep intact, is refused.

    Args:
        doc: The result of YAML loading the file.
        source: The file name, for messages.

    Returns:
        The document (the same object), or a new one for ``None``.

    Raises:
        KubeconfigError: The document is not a valid kubeconfig; the message
            names the file and the offending field.
    """
    if doc is None:
        return new_kubeconfig()
    if not isinstance(doc, dict):
        raise KubeconfigError(
            f"{source}: not a kubeconfig: the top level is {_kind(doc)}, not a mapping"
        )
    if doc.get("kind") not in (None, "Config"):
        raise KubeconfigError(
            f"{source}: not a kubeconfig: kind is {doc.get('kind')!r}, not 'Config'"
        )
    if doc.get("apiVersion") not in (None, "v1"):
        raise KubeconfigError(
            f"{source}: unsupported kubeconfig apiVersion "
            f"{doc.get('apiVersion')!r} (expected 'v1')"
        )
    current = doc.get("current-context")
    if current is not None and not isinstance(current, str):
        raise KubeconfigError(
            f"{source}: current-context is {_kind(current)}, not a string"
        )
    for section, body in _SECTIONS:
        entries = doc.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise KubeconfigError(
                f"{source}: {section} is {_kind(entries)}, not a list"
            )
        for i, entry in enumerate(entries):
            where = f"{source}: {section}[{i}]"
            if not isinstance(entry, dict):
                raise KubeconfigError(f"{where} is {_kind(entry)}, not a mapping")
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                raise KubeconfigError(f"{where} has no name")
            if entry.get(body) is not None and not isinstance(entry[body], dict):
                raise KubeconfigError(
                    f"{where} ({name}): {body} is {_kind(entry[body])}, not a mapping"
                )
    return doc


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _upsert(
    entries: list[object], entry: Mapping[str, object]
) -> tuple[list[object], Action]:
    """Replace the first same-named entry (dropping later duplicates) or append."""
    name = entry["name"]
    out: list[object] = []
    action = Action.ADDED
    for old in entries:
        if isinstance(old, dict) and old.get("name") == name:
            if action is Action.ADDED:
                action = Action.UNCHANGED if old == entry else Action.REPLACED
                out.append(dict(entry))
            continue
        out.append(old)
    if action is Action.ADDED:
        out.append(dict(entry))
    return out, action


def merge_entries(
    doc: Mapping[str, object],
    *,
    cluster: Mapping[str, object],
    user: Mapping[str, object],
    context: Mapping[str, object],
    set_current: bool | None,
) -> MergeResult:
    """Add or replace one cluster, user and context; keep everything else.

    Args:
        doc: A document accepted by :func:`parse_kubeconfig` (not modified).
        cluster: The new ``clusters[]`` entry.
        user: The new ``users[]`` entry.
        context: The new ``contexts[]`` entry.
        set_current: True: make the context current. False: keep
            ``current-context``. None: make it current only when none is set.

    Returns:
        The merged document and what happened to each entry.
    """
    out = copy.deepcopy(dict(doc))
    retargeted = _context_cluster(out.get("contexts"), context)
    actions: list[Action] = []
    for (section, _), entry in zip(_SECTIONS, (cluster, user, context), strict=True):
        old = out.get(section)
        merged, action = _upsert(list(old) if isinstance(old, list) else [], entry)
        out[section] = merged
        actions.append(action)
    before = out.get("current-context")
    before_str = before if isinstance(before, str) and before else None
    name = str(context["name"])
    if set_current or (set_current is None and before_str is None):
        out["current-context"] = name
    after = out.get("current-context")
    after_str = after if isinstance(after, str) and after else None
    return MergeResult(
        doc=out,
        cluster=actions[0],
        user=actions[1],
        context=actions[2],
        current_context=after_str,
        current_context_changed=after_str != before_str,
        context_retargeted_from=retargeted,
    )


def _context_cluster(contexts: object, new: Mapping[str, object]) -> str | None:
    """The cluster a same-named context pointed at, when it differs from the new one.

    With ``aws eks update-kubeconfig`` naming, ``--user-alias`` without
    ``--alias`` names the context after the shared user, so a second cluster
    silently takes over the first one's context; the shell warns about it.
    """
    if not isinstance(contexts, list):
        return None
    body = new.get("context")
    target = body.get("cluster") if isinstance(body, dict) else None
    for old in contexts:
        if isinstance(old, dict) and old.get("name") == new.get("name"):
            old_body = old.get("context")
            was = old_body.get("cluster") if isinstance(old_body, dict) else None
            return was if isinstance(was, str) and was != target else None
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_webhook_kubeconfig(
    *, server_url: str, ca_pem: bytes, client_cert_pem: bytes, client_key_pem: bytes
) -> dict[str, object]:
    """Build the file for ``--authentication-token-webhook-config-file``.

    See Kubernetes webhook authn docs. Roles are inverted: the cluster is the webhook
    (its
    URL with the path and the CA of its serving certificate), the user is
    kube-apiserver (its client certificate). Material is inlined so the file
    works wherever it is mounted.

    Args:
        server_url: ``https://ADDRESS:PORT/authenticate``.
        ca_pem: The CA that signed the webhook's serving certificate.
        client_cert_pem: The API server's client certificate.
        client_key_pem: Its private key.

    Returns:
        The kubeconfig document.
    """
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": _WEBHOOK_CLUSTER,
                "cluster": {
                    "server": server_url,
                    "certificate-authority-data": _b64(ca_pem),
                },
            }
        ],
        "users": [
            {
                "name": _WEBHOOK_USER,
                "user": {
                    "client-certificate-data": _b64(client_cert_pem),
                    "client-key-data": _b64(client_key_pem),
                },
            }
        ],
        "contexts": [
            build_context(
                _WEBHOOK_CONTEXT, cluster=_WEBHOOK_CLUSTER, user=_WEBHOOK_USER
            )
        ],
        "current-context": _WEBHOOK_CONTEXT,
    }


def build_server_config(
    *,
    cluster_id: str,
    address: str,
    port: int,
    cert_file: str,
    key_file: str,
    client_ca_file: str,
    sources: Sequence[Mapping[str, object]] = (),
) -> dict[str, object]:
    """Build a server config document (docs/configuration.md) naming the TLS files.

    Args:
        cluster_id: The cluster ID tokens must carry.
        address: The listen address.
        port: The listen port.
        cert_file: The serving certificate.
        key_file: Its key.
        client_ca_file: The CA client certificates must chain to.
        sources: Mapping sources; none by default.

    Returns:
        The config document.
    """
    config: dict[str, object] = {
        "clusterID": cluster_id,
        "server": {
            "address": address,
            "port": port,
            "certFile": cert_file,
            "keyFile": key_file,
            "clientCAFile": client_ca_file,
        },
    }
    if sources:
        config["sources"] = [dict(s) for s in sources]
    return config


@dataclass(frozen=True, slots=True)
class ReplacedUser:
    """One user entry :func:`replace_exec_users` rewrote.

    Attributes:
        name: The entry's name (kept, so contexts still point at it).
        was: ``aws-iam-authenticator`` or ``aws eks get-token``.
        args: The new ``args``.
    """

    name: str
    was: str
    args: tuple[str, ...]


# aws-iam-authenticator token flags -> kubeiam token flags (None: a switch).
_AIA_VALUES = {
    "-i": "-i",
    "--cluster-id": "-i",
    "-r": "-r",
    "--role": "-r",
    "-e": "-e",
    "--external-id": "-e",
    "-s": "-s",
    "--session-name": "-s",
    "--region": "--region",
}
_AIA_SWITCHES = {"--forward-session-name": "--forward-session-name", "--cache": ""}
# aws eks get-token (and the aws global options it is written with).
_AWS_VALUES = {
    "--cluster-name": "--cluster-name",
    "--cluster-id": "-i",
    "--role-arn": "-r",
    "--region": "--region",
    "--profile": "--profile",
    "--output": "",
}
_AWS_SWITCHES: dict[str, str] = {}
_AIA_COMMANDS = frozenset({"aws-iam-authenticator", "aws-iam-authenticator.exe"})
_AWS_COMMANDS = frozenset({"aws", "aws.exe", "aws.cmd"})


def _basename(command: str) -> str:
    return command.replace("\\", "/").rsplit("/", 1)[-1]


def _translate_flags(
    args: Sequence[str],
    *,
    values: Mapping[str, str],
    switches: Mapping[str, str],
    where: str,
) -> list[str]:
    """Map a peer's flags onto ``kubeiam token`` flags; refuse what has no match."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in switches and not eq:
            if switches[name]:
                out.append(switches[name])
            continue
        if name not in values:
            raise KubeconfigError(
                f"{where}: argument {arg!r} has no kubeiam equivalent; edit the "
                "entry by hand or write a new one with `kubeiam kubeconfig`"
            )
        if not eq:
            if i >= len(args):
                raise KubeconfigError(f"{where}: {arg} needs a value")
            value = args[i]
            i += 1
        if values[name]:
            out += [values[name], value]
    return out


def _kubeiam_args(
    command: str, args: Sequence[str], where: str
) -> tuple[str, list[str]] | None:
    """(what it was, kubeiam args) for a peer exec stanza; None for anything else."""
    base = _basename(command)
    if base in _AIA_COMMANDS and args[:1] == ["token"]:
        flags = _translate_flags(
            args[1:], values=_AIA_VALUES, switches=_AIA_SWITCHES, where=where
        )
        return "aws-iam-authenticator", ["token", *flags]
    if base in _AWS_COMMANDS and "eks" in args:
        at = args.index("eks")
        if args[at + 1 : at + 2] != ["get-token"]:
            return None
        rest = [*args[:at], *args[at + 2 :]]
        flags = _translate_flags(
            rest, values=_AWS_VALUES, switches=_AWS_SWITCHES, where=where
        )
        # --cluster-id (EKS local clusters on Outposts) is what is signed.
        if "-i" in flags and "--cluster-name" in flags:
            at = flags.index("--cluster-name")
            del flags[at : at + 2]
        return "aws eks get-token", ["token", *flags]
    return None


def _signed_id(args: Sequence[str]) -> str | None:
    for flag in ("-i", "--cluster-name"):
        if flag in args[:-1]:
            return args[args.index(flag) + 1]
    return None


def replace_exec_users(
    doc: Mapping[str, object], *, command: str, cluster_id: str | None = None
) -> tuple[dict[str, object], list[ReplacedUser]]:
    """Rewrite ``aws-iam-authenticator`` / ``aws eks get-token`` users to run kubeiam.

    Each matching user keeps its name, ``env`` (e.g. ``AWS_PROFILE``) and
    ``interactiveMode``, so the contexts that use it keep working; only
    ``command``, ``args`` (translated flag by flag), ``apiVersion`` (an old
    v1alpha1 becomes v1beta1) and ``installHint`` change. Clusters, contexts
    and every other entry are left alone.

    Args:
        doc: A document accepted by :func:`parse_kubeconfig` (not modified).
        command: Absolute path of the ``kubeiam`` executable.
        cluster_id: Only entries for this cluster ID (None: all of them).

    Returns:
        The new document and the entries rewritten.

    Raises:
        KubeconfigError: No entry matched, or one has a flag with no kubeiam
            equivalent (then nothing is rewritten).
    """
    out = copy.deepcopy(dict(doc))
    users = out.get("users")
    replaced: list[ReplacedUser] = []
    for i, entry in enumerate(users if isinstance(users, list) else []):
        body = entry.get("user") if isinstance(entry, dict) else None
        exec_ = body.get("exec") if isinstance(body, dict) else None
        if not isinstance(exec_, dict) or not isinstance(exec_.get("command"), str):
            continue
        args = exec_.get("args") or []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            continue
        where = f"users[{i}] ({entry.get('name')})"
        found = _kubeiam_args(exec_["command"], args, where)
        if found is None:
            continue
        was, new_args = found
        if cluster_id is not None and _signed_id(new_args) != cluster_id:
            continue
        if _signed_id(new_args) is None:
            raise KubeconfigError(f"{where}: runs {was} without a cluster ID")
        exec_["command"] = command
        exec_["args"] = new_args
        if exec_.get("apiVersion") not in (EXEC_API_V1BETA1, EXEC_API_V1):
            exec_["apiVersion"] = EXEC_API_VERSION
        exec_["installHint"] = _INSTALL_HINT
        replaced.append(ReplacedUser(str(entry.get("name")), was, tuple(new_args)))
    if not replaced:
        which = f" for cluster {cluster_id!r}" if cluster_id else ""
        raise KubeconfigError(
            f"no user entry runs aws-iam-authenticator or `aws eks get-token`{which}"
        )
    return out, replaced
