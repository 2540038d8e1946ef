"""Webhook certificates: a CA, the serving certificate, the API server's client one.

The only door to ``cryptography`` (docs/development.md). Everything here is
pure: the ``generate_*`` functions take the current time and return PEM
bytes, and the checks (:func:`check_key`, :func:`check_pair`,
:func:`leaf_still_good`) read PEM bytes and touch no file. Writing the files
of ``kubeiam init`` is :mod:`kubeconfig.pki`'s job.

Choices, and where they come from:

- ECDSA P-256 keys with SHA-256 signatures: Go's TLS stack (kube-apiserver)
  flags SHA-1 and accepts ECDSA; P-256 keys are generated in microseconds,
  where RSA-2048 takes tens of milliseconds (docs/threat-model.md).
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeconfig.errors import KubeconfigError

__all__ = [
    "KeyPair",
    "check_key",
    "check_pair",
    "generate_ca",
    "generate_client_cert",
    "generate_serving_cert",
    "leaf_still_good",
    "parse_ca_bundle",
]

# Tolerated clock skew between the machine that signs and the one that verifies.
_BACKDATE = timedelta(minutes=5)
_CA_DAYS = 3650
_LEAF_DAYS = 365


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A PEM certificate and its PEM (PKCS#8, unencrypted) private key.

    ``repr`` leaves the key out, so a logged or printed pair never leaks it.
    """

    cert_pem: bytes
    key_pem: bytes = field(repr=False)


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

    Go's TLS client checks only the SANs, never the CN (Kubernetes webhook authn docs),
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


def check_key(key_pem: bytes) -> None:
    """Check that ``key_pem`` is an unencrypted PEM ECDSA private key.

    Args:
        key_pem: The bytes of a key file.

    Raises:
        KubeconfigError: It does not parse, or is not an ECDSA key.
    """
    _load_key(key_pem)


def check_pair(pair: KeyPair) -> None:
    """Check that a certificate and a key parse and belong together.

    Args:
        pair: The certificate and key, as read from their files.

    Raises:
        KubeconfigError: Either does not parse, or the certificate is not
            the key's.
    """
    if _load_cert(pair.cert_pem).public_key() != _load_key(pair.key_pem).public_key():
        raise KubeconfigError("the certificate does not match its key")


def leaf_still_good(
    pair: KeyPair,
    ca: KeyPair,
    *,
    now: datetime,
    renew_before: timedelta,
    sans: frozenset[str] | None,
) -> bool:
    """Whether a leaf can stay: signed by ``ca``, its key, not expiring, same SANs.

    Args:
        pair: The leaf certificate and its key.
        ca: The CA that must have signed it.
        now: The current time (timezone-aware).
        renew_before: A leaf closer than this to its expiry must be reissued.
        sans: The DNS and IP SANs (as text) it must carry, exactly; ``None``
            skips the check.

    Returns:
        True when the leaf can be kept as it is.
    """
    try:
        cert = _load_cert(pair.cert_pem)
        key = _load_key(pair.key_pem)
        ca_cert = _load_cert(ca.cert_pem)
        cert.verify_directly_issued_by(ca_cert)
    except (KubeconfigError, ValueError, TypeError, InvalidSignature):
        return False
    if cert.public_key() != key.public_key():
        return False
    if cert.not_valid_after_utc - renew_before < now:
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
