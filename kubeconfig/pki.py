"""The webhook's PKI on disk: the files ``kubeiam init`` writes and trusts.

The shell around :mod:`kubeconfig.certs` (which makes the certificates and
is the only door to ``cryptography``): :func:`write_pki` writes the files
that ``kubeiam init`` promises (docs/migrating.md), keeps existing keys on a
re-run, and first refuses files it must not trust (another user's, a
symbolic link, a private key others can read).
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from authenticator.wire import DEFAULT_WEBHOOK_PORT as DEFAULT_PORT
from kubeconfig import build, render
from kubeconfig.certs import (
    KeyPair,
    check_key,
    check_pair,
    generate_ca,
    generate_client_cert,
    generate_serving_cert,
    leaf_still_good,
)
from kubeconfig.errors import KubeconfigError

__all__ = [
    "API_SERVER_CLIENT_CN",
    "DEFAULT_PORT",
    "PKIPaths",
    "webhook_url",
    "write_pki",
]

# The API server's identity towards the webhook; no organization (see
# kubeconfig.certs: a mistaken --client-ca-file trust maps it to no groups).
API_SERVER_CLIENT_CN = "kube-apiserver"
# A leaf certificate closer than this to its expiry is reissued by a re-run of `init`.
_RENEW_BEFORE = timedelta(days=30)
# Always in the serving certificate: the API server of a local cluster dials
# the webhook over loopback.
_DEFAULT_DNS = ("localhost",)
_DEFAULT_IPS = ("127.0.0.1", "::1")
_UNSPECIFIED = frozenset({"0.0.0.0", "::"})  # noqa: S104 (compared against, never bound)


@dataclass(frozen=True, slots=True)
class PKIPaths:
    """The files ``kubeiam init`` writes into its output directory.

    ``kept`` lists the files a re-run left as they were; every other path was
    written by this run.
    """

    output_dir: Path
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    client_cert: Path
    client_key: Path
    webhook_kubeconfig: Path
    authorize_kubeconfig: Path
    server_config: Path
    server_url: str
    kept: tuple[Path, ...] = field(default=())
    # Set when the server config was edited since it was written: the new one
    # went to this path beside it and the edited file was kept.
    server_config_new: Path | None = None

    def all(self) -> tuple[Path, ...]:
        """Return every file path, in the order they are written.

        Returns:
            The CA, serving, client, kubeconfig and server config paths.
        """
        return (
            self.ca_cert,
            self.ca_key,
            self.serving_cert,
            self.serving_key,
            self.client_cert,
            self.client_key,
            self.webhook_kubeconfig,
            self.authorize_kubeconfig,
            self.server_config,
        )


def _read_if_exists(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KubeconfigError(f"{path}: cannot read: {exc.strerror}") from exc


def _split_names(hostnames: Iterable[str], address: str) -> tuple[list[str], list[str]]:
    """Sort names into DNS and IP SANs; the listen address counts unless unspecified."""
    dns = list(_DEFAULT_DNS)
    ips = list(_DEFAULT_IPS)
    for name in [*hostnames, address]:
        if name in _UNSPECIFIED or not name:
            continue
        try:
            ips.append(str(ipaddress.ip_address(name)))
        except ValueError:
            dns.append(name.lower())
    return list(dict.fromkeys(dns)), list(dict.fromkeys(ips))


def webhook_url(
    address: str,
    port: int,
    hostnames: Sequence[str] = (),
    *,
    path: str = "/authenticate",
) -> str:
    """Return the URL the API server dials: ``https://ADDRESS:PORT/authenticate``.

    An unspecified listen address (``0.0.0.0``, ``::``) is not dialable; the
    first hostname, else 127.0.0.1, is used instead. IPv6 is bracketed.

    Args:
        address: The webhook's listen address.
        port: The webhook's port.
        hostnames: Extra names from ``--hostname``.
        path: ``/authenticate`` (TokenReview) or ``/authorize`` (SubjectAccessReview).

    Returns:
        The URL.
    """
    host = address
    if address in _UNSPECIFIED or not address:
        host = hostnames[0] if hostnames else "127.0.0.1"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return f"https://{host}:{port}{path}"


def write_pki(
    output_dir: Path,
    *,
    cluster_id: str,
    hostnames: Sequence[str],
    address: str,
    port: int,
    now: datetime,
    force: bool,
) -> PKIPaths:
    """Write the CA, the leaf certificates, the webhook kubeconfigs and a server config.

    A re-run keeps the CA and every private key; a leaf certificate is
    reissued (with its existing key) only when it is missing, not signed by
    the CA, within 30 days of expiry, or (serving) has other SANs than asked
    for. ``force`` replaces everything. The webhook kubeconfig and the server
    config snippet are always rewritten from the current files.
    ``authorize.kubeconfig`` is the same file pointing at ``/authorize``, for
    an ``--authorization-config`` webhook authorizer.

    Args:
        output_dir: Where to write (created 0700 if missing).
        cluster_id: The cluster ID for the server config.
        hostnames: Extra names for the serving certificate.
        address: The webhook's listen address.
        port: The webhook's port.
        now: The current time (timezone-aware).
        force: Replace an existing CA and keys.

    Returns:
        The paths written.

    Raises:
        KubeconfigError: A file exists but is unusable (without ``force``),
            or a file cannot be written.
    """
    out = output_dir.absolute()
    paths = PKIPaths(
        output_dir=out,
        ca_cert=out / "ca.crt",
        ca_key=out / "ca.key",
        serving_cert=out / "webhook.crt",
        serving_key=out / "webhook.key",
        client_cert=out / "apiserver-client.crt",
        client_key=out / "apiserver-client.key",
        webhook_kubeconfig=out / "webhook.kubeconfig",
        authorize_kubeconfig=out / "authorize.kubeconfig",
        server_config=out / "server-config.yaml",
        server_url=webhook_url(address, port, hostnames),
    )
    _check_trusted(paths, force=force)
    render.ensure_private_dir(out)
    kept: list[Path] = []

    ca_cert_pem = None if force else _read_if_exists(paths.ca_cert)
    ca_key_pem = None if force else _read_if_exists(paths.ca_key)
    if ca_cert_pem is not None and ca_key_pem is not None:
        ca = KeyPair(ca_cert_pem, ca_key_pem)
        try:
            check_pair(ca)
        except KubeconfigError as exc:
            raise KubeconfigError(
                f"{paths.ca_cert}: {exc} (use --force to replace)"
            ) from exc
        kept += [paths.ca_cert, paths.ca_key]
    elif ca_cert_pem is not None or ca_key_pem is not None:
        missing = paths.ca_key if ca_key_pem is None else paths.ca_cert
        raise KubeconfigError(
            f"{missing}: missing while its pair exists (use --force to replace)"
        )
    else:
        ca = generate_ca(f"kubeiam-webhook-ca {cluster_id}", now=now)
        render.write_atomic(paths.ca_key, ca.key_pem, mode=0o600)
        render.write_atomic(paths.ca_cert, ca.cert_pem, mode=0o644)

    dns, ips = _split_names(hostnames, address)
    _leaf(
        paths.serving_cert,
        paths.serving_key,
        ca,
        now=now,
        force=force,
        sans=frozenset(dns + ips),
        issue=lambda key: generate_serving_cert(
            ca, dns_names=dns, ip_addresses=ips, now=now, key_pem=key
        ),
        kept=kept,
    )
    client = _leaf(
        paths.client_cert,
        paths.client_key,
        ca,
        now=now,
        force=force,
        sans=None,
        issue=lambda key: generate_client_cert(
            ca, common_name=API_SERVER_CLIENT_CN, now=now, key_pem=key
        ),
        kept=kept,
    )
    # The same client identity serves both webhooks; only the URL path differs.
    for target, url in (
        (paths.webhook_kubeconfig, paths.server_url),
        (
            paths.authorize_kubeconfig,
            webhook_url(address, port, hostnames, path="/authorize"),
        ),
    ):
        kubeconfig = build.build_webhook_kubeconfig(
            server_url=url,
            ca_pem=ca.cert_pem,
            client_cert_pem=client.cert_pem,
            client_key_pem=client.key_pem,
        )
        render.write_atomic(target, render.dump_yaml(kubeconfig).encode(), mode=0o600)
    config = build.build_server_config(
        cluster_id=cluster_id,
        address=address,
        port=port,
        cert_file=str(paths.serving_cert),
        key_file=str(paths.serving_key),
        client_ca_file=str(paths.ca_cert),
    )
    rendered = render.dump_yaml(config).encode()
    existing = _read_if_exists(paths.server_config)
    if existing is not None and existing != rendered:
        # The operator edited it (or it was written for other flags): keep it.
        new = paths.server_config.with_name(paths.server_config.name + ".new")
        render.write_atomic(new, rendered, mode=0o644)
        kept.append(paths.server_config)
        return replace(paths, kept=tuple(kept), server_config_new=new)
    render.write_atomic(paths.server_config, rendered, mode=0o644)
    return replace(paths, kept=tuple(kept))


def _check_trusted(paths: PKIPaths, *, force: bool) -> None:
    """Refuse, before anything is written, files init must not trust or reuse.

    The output directory must be ours when it exists. Without ``force``, every
    existing CA, key and certificate file must be ours, a regular file (not a
    symbolic link), and a private key (the CA's included) readable by nobody
    else: a key others could read is compromised, a file another user owns
    could have been planted. ``force`` regenerates every key and certificate.
    """
    me = os.geteuid()
    try:
        st = os.lstat(paths.output_dir)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise KubeconfigError(f"{paths.output_dir}: {exc.strerror}") from exc
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise KubeconfigError(
            f"{paths.output_dir}: not a directory (a symbolic link or a file); "
            "choose another --output-dir"
        )
    if st.st_uid != me:
        raise KubeconfigError(
            f"{paths.output_dir}: owned by uid {st.st_uid}, not by you (uid {me}); "
            "use a directory you own for --output-dir"
        )
    if force:
        return
    keys = (paths.ca_key, paths.serving_key, paths.client_key)
    for path in (paths.ca_cert, *keys, paths.serving_cert, paths.client_cert):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise KubeconfigError(f"{path}: {exc.strerror}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise KubeconfigError(
                f"{path}: not a regular file (a symbolic link?); remove it, "
                "or run with --force to regenerate the keys and certificates"
            )
        if st.st_uid != me:
            raise KubeconfigError(
                f"{path}: owned by uid {st.st_uid}, not by you (uid {me}); remove "
                "it, or run with --force to regenerate the keys and certificates"
            )
        mode = stat.S_IMODE(st.st_mode)
        if path in keys and mode & 0o077:
            raise KubeconfigError(
                f"{path}: private key readable by group or others (mode "
                f"{mode:04o}), so it may be known to others; run with --force to "
                f"regenerate the keys (or `chmod 600 {path}` if it never left "
                "your hands)"
            )


def _leaf(
    cert_path: Path,
    key_path: Path,
    ca: KeyPair,
    *,
    now: datetime,
    force: bool,
    sans: frozenset[str] | None,
    issue: Callable[[bytes | None], KeyPair],
    kept: list[Path],
) -> KeyPair:
    """Keep, reissue (same key) or create one leaf certificate and key."""
    key_pem = None if force else _read_if_exists(key_path)
    cert_pem = None if force else _read_if_exists(cert_path)
    if key_pem is not None:
        try:
            check_key(key_pem)
        except KubeconfigError as exc:
            raise KubeconfigError(
                f"{key_path}: {exc} (use --force to replace)"
            ) from exc
        kept.append(key_path)
        if cert_pem is not None and leaf_still_good(
            KeyPair(cert_pem, key_pem),
            ca,
            now=now,
            renew_before=_RENEW_BEFORE,
            sans=sans,
        ):
            kept.append(cert_path)
            return KeyPair(cert_pem, key_pem)
    pair = issue(key_pem)
    if key_pem is None:
        render.write_atomic(key_path, pair.key_pem, mode=0o600)
    render.write_atomic(cert_path, pair.cert_pem, mode=0o644)
    return pair
