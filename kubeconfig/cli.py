"""``kubeiam kubeconfig`` and ``kubeiam init``: the shells of the kubeconfig package.

``kubeconfig_main`` gathers the cluster (flags or eks:DescribeCluster), builds
the entries with :mod:`kubeconfig.build`, merges them into the file kubectl
would use and writes it with :mod:`kubeconfig.render`. ``init_main`` writes
the webhook's PKI with :func:`kubeconfig.pki.write_pki`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import shutil
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from authenticator.yamlio import with_yaml11_numbers
from kubeconfig import build, certs, pki, render
from kubeconfig.errors import KubeconfigError

__all__ = ["find_kubeiam_command", "init_main", "kubeconfig_main"]

# `aws eks update-kubeconfig` accepts only these cluster states (docs/eks.md).
_USABLE_EKS_STATES = frozenset({"ACTIVE", "UPDATING"})
# Version-manager shims re-dispatch on every run (slow) and may pick another
# interpreter later; their directory is called "shims" (pyenv, asdf, rbenv, mise)
# or their script runs "<manager> exec".
_SHIM_DIR = "shims"
_SHIM_MARKERS = (
    b"PYENV_ROOT",
    b"pyenv exec",
    b'pyenv" exec',
    b"asdf exec",
    b"mise exec",
)
_EXECUTABLE = "kubeiam"

_KUBECONFIG_EPILOG = """\
The user entry runs `kubeiam token` (absolute path of this installation) with
the cluster ID, region and role in its args, as `aws eks update-kubeconfig`
writes them, so every client works (also those without provideClusterInfo,
such as the Python kubernetes client before 32.0). With --user-alias (one user
entry for many clusters) the args are just `token` and provideClusterInfo is
true: the cluster ID, region and role come from the cluster's
client.authentication.k8s.io/exec extension, which every cluster entry
carries. Entries are named as `aws eks update-kubeconfig` names them: the
cluster ARN when known (--from-eks), else the cluster ID.

The new context becomes current-context (as with `aws eks update-kubeconfig`);
--no-set-context keeps the current one.

--replace-existing rewrites, in place, the user entries that run
`aws-iam-authenticator token` or `aws eks get-token` (only those for
-i/--cluster-id when given) so that they run `kubeiam token` with the same
cluster, role, region and profile; names, env, clusters and contexts are kept.
An entry with a flag kubeiam has no equivalent for is refused and nothing is
written. See docs/migrating.md.

The file is --kubeconfig; else the first KUBECONFIG file that already has the
cluster; else the first KUBECONFIG entry; else ~/.kube/config. It is written
atomically with mode 0600. A path through a symlink is followed only to an
existing regular file you own, in a directory you (or root) own that is not
group- or world-writable. A file that is not a valid kubeconfig is refused and
left untouched.

examples:
  kubeiam kubeconfig -i demo --server https://127.0.0.1:6443 --ca-file ca.crt
  kubeiam kubeconfig --from-eks prod --region eu-west-1 --profile admin
  kubeiam kubeconfig -i demo --server https://10.0.0.1:6443 --ca-data "$CA" \\
      --role arn:aws:iam::111122223333:role/dev --user-alias kubeiam --dry-run
  kubeiam kubeconfig --replace-existing                  # every peer entry
  kubeiam kubeconfig --replace-existing -i prod --dry-run
"""

_INIT_EPILOG = """\
Writes into DIR: ca.crt/ca.key (the CA), webhook.crt/webhook.key (serving
certificate; SANs localhost, 127.0.0.1, ::1, the --address and every
--hostname), apiserver-client.crt/.key (CN=kube-apiserver, no groups),
webhook.kubeconfig (for kube-apiserver's
--authentication-token-webhook-config-file), authorize.kubeconfig (the same
for /authorize, for an --authorization-config webhook authorizer) and
server-config.yaml (for `kubeiam server --config`). Keys are mode 0600,
ECDSA P-256. A re-run keeps the CA and keys (and certificates that still
fit); --force replaces them.

examples:
  kubeiam init --cluster-id demo --output-dir ./pki
  kubeiam init --cluster-id prod --output-dir /etc/kubeiam --hostname webhook.internal
"""


def _err(command: str, message: str) -> int:
    sys.stderr.write(f"kubeiam {command}: error: {message}\n")
    return 1


def _is_shim(path: Path) -> bool:
    """Whether ``path`` is a version-manager shim rather than the real script."""
    if path.parent.name == _SHIM_DIR:
        return True
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return head.startswith(b"#!") and any(m in head for m in _SHIM_MARKERS)


def _usable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK) and not _is_shim(path)


def find_kubeiam_command(
    *,
    argv0: str,
    executable: str,
    which: Callable[[str], str | None] = shutil.which,
) -> str | None:
    """Find the absolute path of the installed ``kubeiam`` to put in the exec stanza.

    Tried in order, skipping version-manager shims (``.../shims/kubeiam``,
    scripts that run ``pyenv exec``): the running program when it is
    ``kubeiam``; the ``kubeiam`` next to the running interpreter (a venv's
    ``bin``); ``kubeiam`` on ``PATH``. Paths are made absolute but symlinks are
    kept, so a stable link such as ``/usr/local/bin/kubeiam`` survives upgrades.

    Args:
        argv0: ``sys.argv[0]``.
        executable: ``sys.executable``.
        which: PATH lookup (``shutil.which``).

    Returns:
        The absolute path, or None when no usable executable is found.
    """
    candidates: list[Path] = []
    if argv0 and Path(argv0).name == _EXECUTABLE:
        candidates.append(Path(os.path.abspath(argv0)))
    if executable:
        candidates.append(Path(os.path.abspath(executable)).parent / _EXECUTABLE)
    found = which(_EXECUTABLE)
    if found:
        candidates.append(Path(os.path.abspath(found)))
    for candidate in candidates:
        if _usable(candidate):
            return str(candidate)
    return None


def _kubeconfig_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubeiam kubeconfig",
        description="Add or replace a cluster, user and context using kubeiam.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_KUBECONFIG_EPILOG,
    )
    parser.add_argument("-i", "--cluster-id", help="the cluster ID signed into tokens")
    parser.add_argument("--server", help="the API server URL (https://...)")
    ca = parser.add_mutually_exclusive_group()
    ca.add_argument("--ca-file", help="PEM file of the API server's CA")
    ca.add_argument(
        "--ca-data", help="base64 of the PEM CA (certificate-authority-data)"
    )
    parser.add_argument(
        "--from-eks",
        metavar="NAME",
        help="read endpoint, CA and ARN of this EKS cluster (eks:DescribeCluster)",
    )
    parser.add_argument("--role", help="IAM role ARN to assume before signing tokens")
    parser.add_argument("--profile", help="AWS profile (exec env AWS_PROFILE)")
    parser.add_argument("--region", help="STS region (default: from the cluster ARN)")
    parser.add_argument("--alias", help="context name (default: the user name)")
    parser.add_argument("--user-alias", help="user name (default: the cluster name)")
    parser.add_argument("--kubeconfig", help="file to write (default: see below)")
    parser.add_argument(
        "--command",
        dest="exec_command",
        metavar="PATH",
        help="kubeiam executable for the exec stanza (default: this installation)",
    )
    parser.add_argument(
        "--set-context",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="make the new context current (default; --no-set-context keeps it)",
    )
    parser.add_argument(
        "--replace-existing",
        action="store_true",
        help="rewrite aws-iam-authenticator / `aws eks get-token` users in place",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the merged kubeconfig (YAML; JSON with -o json), write nothing",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace a read-only kubeconfig"
    )
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")
    return parser


def _read_ca(args: argparse.Namespace) -> str:
    """Return the CA as base64 ``certificate-authority-data``, checked to be PEM."""
    if args.ca_file:
        try:
            pem = Path(args.ca_file).read_bytes()
        except OSError as exc:
            raise KubeconfigError(
                f"{args.ca_file}: cannot read: {exc.strerror}"
            ) from exc
        where = args.ca_file
    else:
        try:
            pem = base64.b64decode(args.ca_data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KubeconfigError(f"--ca-data is not base64: {exc}") from exc
        where = "--ca-data"
    try:
        certs.parse_ca_bundle(pem)
    except KubeconfigError as exc:
        raise KubeconfigError(f"{where}: {exc}") from exc
    return base64.b64encode(pem).decode("ascii")


def _check_server(url: str) -> None:
    parts = urlsplit(url)
    # client-go attaches exec credentials only to https servers (Kubernetes exec plugin
    # docs).
    if parts.scheme != "https" or not parts.hostname:
        raise KubeconfigError(
            f"--server {url!r}: must be an https:// URL (kubectl sends exec "
            "credentials only over https)"
        )


def _describe_eks(
    name: str, *, region: str | None, profile: str | None
) -> dict[str, object]:
    """Call eks:DescribeCluster (endpoint from AWS_ENDPOINT_URL_EKS / config if set)."""
    import boto3
    import botocore.config
    import botocore.exceptions

    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
        if not session.region_name:
            raise KubeconfigError(
                f"--from-eks {name}: no region; pass --region or set AWS_REGION"
            )
        client = session.client(
            "eks",
            config=botocore.config.Config(
                connect_timeout=5, read_timeout=15, retries={"max_attempts": 3}
            ),
        )
        response = client.describe_cluster(name=name)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise KubeconfigError(
            f"eks:DescribeCluster {name}: {error.get('Code', 'error')}: "
            f"{error.get('Message', '')}"
        ) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise KubeconfigError(f"eks:DescribeCluster {name}: {exc}") from exc
    cluster = response.get("cluster")
    if not isinstance(cluster, dict):
        raise KubeconfigError(f"eks:DescribeCluster {name}: no cluster in the answer")
    return cluster


def _spec_from_eks(args: argparse.Namespace) -> build.ClusterSpec:
    cluster = _describe_eks(args.from_eks, region=args.region, profile=args.profile)
    status = cluster.get("status")
    if status not in _USABLE_EKS_STATES:
        raise KubeconfigError(
            f"EKS cluster {args.from_eks} is {status}; it must be ACTIVE or UPDATING"
        )
    endpoint = cluster.get("endpoint")
    ca = cluster.get("certificateAuthority")
    ca_data = ca.get("data") if isinstance(ca, dict) else None
    arn = cluster.get("arn")
    if not isinstance(endpoint, str) or not isinstance(ca_data, str):
        raise KubeconfigError(f"EKS cluster {args.from_eks} has no endpoint or CA yet")
    _check_server(endpoint)
    # Outposts local clusters sign their own ID, not the name (docs/eks.md).
    local_id = cluster.get("id") if cluster.get("outpostConfig") else None
    cluster_id = args.cluster_id or (
        local_id if isinstance(local_id, str) else args.from_eks
    )
    arn_str = arn if isinstance(arn, str) else None
    return build.ClusterSpec(
        cluster_id=cluster_id,
        server=endpoint,
        ca_data=ca_data,
        region=args.region or build.region_from_arn(arn_str),
        role_arn=args.role,
        cluster_arn=arn_str,
    )


def _spec_from_flags(args: argparse.Namespace) -> build.ClusterSpec:
    _check_server(args.server)
    return build.ClusterSpec(
        cluster_id=args.cluster_id,
        server=args.server,
        ca_data=_read_ca(args),
        region=args.region,
        role_arn=args.role,
    )


def _choose_file(
    args: argparse.Namespace, env: Mapping[str, str], cluster_name: str
) -> tuple[Path, Path]:
    """Return (path as named, resolved path to write) under the KUBECONFIG rules."""
    paths = render.kubeconfig_paths(args.kubeconfig, env, Path.home())
    chosen = paths[0]
    if len(paths) > 1:
        chosen = render.first_path_defining(paths, "clusters", cluster_name) or paths[0]
    return chosen, render.check_write_target(chosen)


def _report(
    path: Path, names: build.EntryNames, result: build.MergeResult, output: str
) -> str:
    if output == "json":
        return (
            json.dumps(
                {
                    "file": str(path),
                    "cluster": {"name": names.cluster, "action": result.cluster.value},
                    "user": {"name": names.user, "action": result.user.value},
                    "context": {"name": names.context, "action": result.context.value},
                    "currentContext": result.current_context,
                    "currentContextChanged": result.current_context_changed,
                },
                indent=2,
            )
            + "\n"
        )
    lines = [f"{path}:"]
    for kind, name, action in (
        ("cluster", names.cluster, result.cluster),
        ("user", names.user, result.user),
        ("context", names.context, result.context),
    ):
        lines.append(f"  {action.value:<9} {kind:<8} {name}")
    state = "switched to" if result.current_context_changed else "kept"
    lines.append(f"  current-context {state} {result.current_context or '(none)'}")
    return "\n".join(lines) + "\n"


def kubeconfig_main(argv: Sequence[str]) -> int:
    """Run ``kubeiam kubeconfig``.

    Args:
        argv: Arguments after ``kubeconfig``.

    Returns:
        0 written or printed, 1 error, 2 usage error.
    """
    parser = _kubeconfig_parser()
    args = parser.parse_args(list(argv))
    if args.replace_existing:
        extra = [
            flag
            for flag, value in (
                ("--server", args.server),
                ("--ca-file", args.ca_file),
                ("--ca-data", args.ca_data),
                ("--from-eks", args.from_eks),
                ("--role", args.role),
                ("--profile", args.profile),
                ("--region", args.region),
                ("--alias", args.alias),
                ("--user-alias", args.user_alias),
            )
            if value
        ]
        if extra:
            parser.error(
                "--replace-existing keeps each entry's own settings; drop "
                + ", ".join(extra)
            )
        return _replace_existing(args)
    if args.from_eks:
        if args.server or args.ca_file or args.ca_data:
            parser.error(
                "--from-eks reads endpoint and CA; drop --server/--ca-file/--ca-data"
            )
    elif not (args.cluster_id and args.server and (args.ca_file or args.ca_data)):
        parser.error(
            "need -i/--cluster-id, --server and --ca-file or --ca-data (or --from-eks)"
        )
    try:
        command = _exec_command(args.exec_command)
        spec = _spec_from_eks(args) if args.from_eks else _spec_from_flags(args)
        names = build.build_names(spec, alias=args.alias, user_alias=args.user_alias)
        named, target = _choose_file(args, os.environ, names.cluster)
        loaded = render.load_yaml_file(target)
        doc = build.parse_kubeconfig(
            None if loaded is None else loaded[0], source=str(named)
        )
        result = build.merge_entries(
            doc,
            cluster=build.build_cluster(names.cluster, spec),
            user=build.build_user(
                names.user,
                command=command,
                profile=args.profile,
                # One user for many clusters reads the cluster from its extension.
                spec=None if args.user_alias else spec,
            ),
            context=build.build_context(
                names.context, cluster=names.cluster, user=names.user
            ),
            set_current=args.set_context,
        )
        text = render.dump_yaml(result.doc)
        if result.context_retargeted_from:
            sys.stderr.write(
                f"kubeiam kubeconfig: warning: context {names.context!r} pointed at "
                f"cluster {result.context_retargeted_from!r} and now points at "
                f"{names.cluster!r}; pass --alias to keep one context per cluster\n"
            )
        if args.dry_run:
            # -o json: the same merged kubeconfig as JSON (kubectl reads either).
            out = text
            if args.output == "json":
                out = (
                    json.dumps(with_yaml11_numbers(result.doc), indent=2, default=str)
                    + "\n"
                )
            sys.stdout.write(out)
            return 0
        _refuse_read_only(target, force=args.force)
        render.ensure_private_dir(target.parent)
        render.write_atomic(target, text.encode("utf-8"), mode=0o600)
    except KubeconfigError as exc:
        return _err("kubeconfig", f"{exc}; nothing was written")
    sys.stdout.write(_report(named, names, result, args.output))
    return 0


def _replace_existing(args: argparse.Namespace) -> int:
    """``--replace-existing``: rewrite peer exec users in place."""
    try:
        command = _exec_command(args.exec_command)
        paths = render.kubeconfig_paths(args.kubeconfig, os.environ, Path.home())
        named = paths[0]
        target = render.check_write_target(named)
        loaded = render.load_yaml_file(target)
        if loaded is None:
            raise KubeconfigError(f"{named}: no such kubeconfig")
        doc = build.parse_kubeconfig(loaded[0], source=str(named))
        new, replaced = build.replace_exec_users(
            doc, command=command, cluster_id=args.cluster_id
        )
        text = render.dump_yaml(new)
        if args.dry_run:
            out = text
            if args.output == "json":
                out = json.dumps(with_yaml11_numbers(new), indent=2, default=str) + "\n"
            sys.stdout.write(out)
            return 0
        render.write_atomic(target, text.encode("utf-8"), mode=0o600)
    except KubeconfigError as exc:
        return _err("kubeconfig", f"{exc}; nothing was written")
    if args.output == "json":
        report = {
            "file": str(named),
            "replaced": [
                {"user": r.name, "was": r.was, "args": list(r.args)} for r in replaced
            ],
        }
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return 0
    lines = [f"{named}:"]
    for r in replaced:
        lines.append(
            f"  replaced  user     {r.name} ({r.was} -> kubeiam {' '.join(r.args)})"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _refuse_read_only(target: Path, *, force: bool) -> None:
    """Replace a kubeconfig its owner made read-only (0400) only with --force."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise KubeconfigError(f"{target}: {exc.strerror}") from exc
    if not mode & stat.S_IWUSR and not force:
        raise KubeconfigError(
            f"{target}: read-only (mode {mode:04o}); pass --force to replace it"
        )


def _exec_command(explicit: str | None) -> str:
    if explicit:
        path = Path(os.path.abspath(explicit))
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise KubeconfigError(f"--command {explicit}: not an executable file")
        return str(path)
    found = find_kubeiam_command(argv0=sys.argv[0], executable=sys.executable)
    if found is None:
        raise KubeconfigError(
            "cannot find the installed kubeiam executable (only shims or nothing on "
            "PATH); pass --command /absolute/path/to/kubeiam"
        )
    return found


def _init_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubeiam init",
        description="Write the webhook's certificates and its API-server kubeconfig.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_INIT_EPILOG,
    )
    parser.add_argument(
        "--cluster-id", required=True, help="the cluster ID tokens carry"
    )
    parser.add_argument("--output-dir", required=True, type=Path, help="where to write")
    parser.add_argument(
        "--hostname",
        action="append",
        default=[],
        help="extra DNS name or IP for the serving certificate (repeatable)",
    )
    parser.add_argument(
        "--address",
        default="127.0.0.1",
        help="the webhook's listen address (127.0.0.1)",
    )
    parser.add_argument(
        "--port", type=int, default=pki.DEFAULT_PORT, help="its port (%(default)s)"
    )
    parser.add_argument("--force", action="store_true", help="replace the CA and keys")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")
    return parser


def init_main(argv: Sequence[str]) -> int:
    """Run ``kubeiam init``.

    Args:
        argv: Arguments after ``init``.

    Returns:
        0 written, 1 error, 2 usage error.
    """
    parser = _init_parser()
    args = parser.parse_args(list(argv))
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port}: must be 1-65535")
    if not args.cluster_id.strip():
        parser.error("--cluster-id: must not be empty")
    try:
        paths = pki.write_pki(
            args.output_dir,
            cluster_id=args.cluster_id,
            hostnames=args.hostname,
            address=args.address,
            port=args.port,
            now=datetime.now(UTC),
            force=args.force,
        )
    except KubeconfigError as exc:
        return _err("init", str(exc))
    if args.output == "json":
        files = {
            str(p): ("kept" if p in paths.kept else "written") for p in paths.all()
        }
        out: dict[str, object] = {
            "outputDir": str(paths.output_dir),
            "serverURL": paths.server_url,
            "files": files,
        }
        if paths.server_config_new is not None:
            files[str(paths.server_config_new)] = "written"
            out["serverConfigEdited"] = True
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return 0
    lines = [f"{paths.output_dir}:"]
    for path in paths.all():
        lines.append(f"  {'kept' if path in paths.kept else 'wrote':<6} {path.name}")
    if paths.server_config_new is not None:
        lines += [
            f"  wrote  {paths.server_config_new.name}",
            "",
            f"{paths.server_config.name} differs from what init writes (edited?): "
            f"kept it; the new one is {paths.server_config_new.name}.",
        ]
    lines += [
        "",
        "Next:",
        f"  kubeiam server --config {paths.server_config}",
        "  kube-apiserver flags:",
        f"    --authentication-token-webhook-config-file={paths.webhook_kubeconfig}",
        "    --authentication-token-webhook-version=v1",
        f"  authorizer kubeconfig: {paths.authorize_kubeconfig}",
        f"  (the API server will call {paths.server_url})",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
