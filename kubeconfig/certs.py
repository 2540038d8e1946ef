"""Webhook certificates: a CA, the serving certificate, the API server's client one.

This module is the only door to ``cryptography`` (architecture.md). The ``generate_*``
functions are pure: they take the current time and return PEM bytes. The
shell, :func:`write_pki`, writes the files that ``kubeiam init`` promises
(SPEC §7) and keeps existing keys on a re-run.

Choices, and where they come from:

- ECDSA P-256 keys with SHA-256 signatures: Go's TLS stack (kube-apiserver)
  flags SHA-1 and accepts ECDSA; P-256 keys are generated in microseconds,
  where RSA-2048 takes tens of milliseconds (kubernetes.md §1.2).
- One CA signs both leaves. The webhook trusts it as ``clientCAFile``; the
  API server trusts it as the webhook kubeconfig's ``certificate-authority``.
  The leaves are kept apart by their extended key usage: the serving
  certificate is ``serverAuth`` only and cannot log in as a client.
- The API server's client certificate has ``CN=kube-apiserver`` and **no
  organization**. It only authenticates the API server to the webhook; if
  the CA were ever trusted by a kube-apiserver's ``--client-ca-file`` by
  mistake, the certificate would map to a user with no groups (certainly not
  ``system:masters``) and so to no permissions.
- Certificates are back-dated by five minutes so that a node whose clock is
  slightly behind still accepts them.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeconfig import build, render
from kubeconfig.errors import KubeconfigError

__all__ = [
    "API_SERVER_CLIENT_CN",
    "DEFAULT_PORT",
    "KeyPair",
    "PKIPaths",
    "generate_ca",
    "generate_client_cert",
    "generate_serving_cert",
    "parse_ca_bundle",
    "webhook_url",
    "write_pki",
]

# The port aws-iam-authenticator's webhook listens on (kubernetes.md §5.3).
DEFAULT_PORT = 21362
# The API server's identity towards the webhook; no organization (module docstring).
API_SERVER_CLIENT_CN = "kube-apiserver"
# Tolerated clock skew between the machine that signs and the one that verifies.
_BACKDATE = timedelta(minutes=5)
# A leaf certificate closer than this to its expiry is reissued by a re-run of `init`.
_RENEW_BEFORE = timedelta(days=30)
_CA_DAYS = 3650
_LEAF_DAYS = 365
# Always in the serving certificate: the API server dials 127.0.0.1 (k8s §5.2).
_DEFAULT_DNS = ("localhost",)
_DEFAULT_IPS = ("127.0.0.1", "::1")
_UNSPECIFIED = frozenset({"0.0.0.0", "::"})  # noqa: S104 (compared against, never bound)


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A PEM certificate and its PEM (PKCS#8, unencrypted) private key.

    ``repr`` leaves the key out, so a logged or printed pair never leaks it.
    """

    cert_pem: bytes
    key_pem: bytes = field(repr=False)


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


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KubeconfigError(f"not a PEM private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KubeconfigError("private key is not an ECDSA key")
    return key


def _load_cert(cert_pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise KubeconfigError(f"not a PEM certificate: {exc}") from exc


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    *,
    now: datetime,
    days: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
    )


def _leaf_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def generate_ca(common_name: str, *, now: datetime, days: int = _CA_DAYS) -> KeyPair:
    """Create a self-signed CA that may sign leaf certificates only (path length 0).

    Args:
        common_name: The CA's subject CN.
        now: The current time (timezone-aware).
        days: Validity in days from ``now``.

    Returns:
        The CA certificate and key.
    """
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        _builder(name, name, key.public_key(), now=now, days=days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _sign_leaf(
    ca: KeyPair,
    subject: x509.Name,
    *,
    usage: x509.ObjectIdentifier,
    sans: Sequence[x509.GeneralName],
    now: datetime,
    days: int,
    key_pem: bytes | None,
) -> KeyPair:
    ca_cert = _load_cert(ca.cert_pem)
    ca_key = _load_key(ca.key_pem)
    key = _load_key(key_pem) if key_pem is not None else _new_key()
    builder = (
        _builder(subject, ca_cert.subject, key.public_key(), now=now, days=days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(list(sans)), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def generate_serving_cert(
    ca: KeyPair,
    *,
    dns_names: Iterable[str],
    ip_addresses: Iterable[str],
    now: datetime,
    days: int = _LEAF_DAYS,
    key_pem: bytes | None = None,
) -> KeyPair:
    """Create the webhook's TLS serving certificate (EKU serverAuth), signed by ``ca``.

    Go's TLS client checks only the SANs, never the CN (kubernetes.md §1.2),
    so every name the API server may dial must be listed.

    Args:
        ca: The signing CA.
        dns_names: DNS SANs (duplicates dropped, order kept).
        ip_addresses: IP SANs as text (IPv4 or IPv6).
        now: The current time (timezone-aware).
        days: Validity in days from ``now``.
        key_pem: Reuse this private key instead of generating one.

    Returns:
        The serving certificate and key.

    Raises:
        KubeconfigError: An IP address does not parse, or there are no SANs.
    """
    dns = list(dict.fromkeys(dns_names))
    try:
        ips = list(dict.fromkeys(ipaddress.ip_address(a) for a in ip_addresses))
    except ValueError as exc:
        raise KubeconfigError(
            f"bad IP address for the serving certificate: {exc}"
        ) from exc
    if not dns and not ips:
        raise KubeconfigError(
            "the serving certificate needs at least one DNS name or IP"
        )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ip) for ip in ips]
    common_name = dns[0] if dns else str(ips[0])
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return _sign_leaf(
        ca,
        subject,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        sans=sans,
        now=now,
        days=days,
        key_pem=key_pem,
    )


def generate_client_cert(
    ca: KeyPair,
    *,
    common_name: str,
    organizations: Iterable[str] = (),
    now: datetime,
    days: int = _LEAF_DAYS,
    key_pem: bytes | None = None,
) -> KeyPair:
    """Create a TLS client certificate (EKU clientAuth), signed by ``ca``.

    Args:
        ca: The signing CA.
        common_name: The subject CN (Kubernetes reads it as the user name).
        organizations: Subject O values (Kubernetes reads them as groups).
        now: The current time (timezone-aware).
        days: Validity in days from ``now``.
        key_pem: Reuse this private key instead of generating one.

    Returns:
        The client certificate and key.
    """
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return _sign_leaf(
        ca,
        x509.Name(attrs),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        sans=(),
        now=now,
        days=days,
        key_pem=key_pem,
    )


def parse_ca_bundle(pem: bytes) -> int:
    """Check that ``pem`` is one or more PEM certificates.

    Args:
        pem: The bytes of a CA file or of decoded ``certificate-authority-data``.

    Returns:
        The number of certificates.

    Raises:
        KubeconfigError: No certificate, or one that does not parse.
    """
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise KubeconfigError(f"not a PEM certificate bundle: {exc}") from exc
    return len(certs)


def _still_good(
    pair: KeyPair, ca: KeyPair, *, now: datetime, sans: frozenset[str] | None
) -> bool:
    """Whether a leaf can stay: signed by ``ca``, its key, not expiring, same SANs."""
    try:
        cert = _load_cert(pair.cert_pem)
        key = _load_key(pair.key_pem)
        ca_cert = _load_cert(ca.cert_pem)
        cert.verify_directly_issued_by(ca_cert)
    except (KubeconfigError, ValueError, TypeError, InvalidSignature):
        return False
    if cert.public_key() != key.public_key():
        return False
    if cert.not_valid_after_utc - _RENEW_BEFORE < now:
        return False
    if sans is None:
        return True
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(v) for v in ext.get_values_for_type(x509.DNSName)}
    have |= {str(v) for v in ext.get_values_for_type(x509.IPAddress)}
    return have == sans


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
            if (
                _load_cert(ca_cert_pem).public_key()
                != _load_key(ca_key_pem).public_key()
            ):
                raise KubeconfigError("the CA certificate does not match its key")
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
            _load_key(key_pem)
        except KubeconfigError as exc:
            raise KubeconfigError(
                f"{key_path}: {exc} (use --force to replace)"
            ) from exc
        kept.append(key_path)
        if cert_pem is not None and _still_good(
            KeyPair(cert_pem, key_pem), ca, now=now, sans=sans
        ):
            kept.append(cert_path)
            return KeyPair(cert_pem, key_pem)
    pair = issue(key_pem)
    if key_pem is None:
        render.write_atomic(key_path, pair.key_pem, mode=0o600)
    render.write_atomic(cert_path, pair.cert_pem, mode=0o644)
    return pair
