"""kubeconfig.certs: the pure certificate makers and checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeconfig import certs
from kubeconfig.errors import KubeconfigError

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def _cert(path_or_pem: Path | bytes) -> x509.Certificate:
    pem = path_or_pem.read_bytes() if isinstance(path_or_pem, Path) else path_or_pem
    return x509.load_pem_x509_certificate(pem)


def _sans(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in ext.get_values_for_type(x509.DNSName)} | {
        str(v) for v in ext.get_values_for_type(x509.IPAddress)
    }


def _eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


class TestGenerate:
    """The pure generators."""

    def test_ca_is_self_signed_path_length_zero(self) -> None:
        """The CA verifies its own signature and may sign leaves only."""
        ca = _cert(certs.generate_ca("test-ca", now=NOW).cert_pem)
        ca.verify_directly_issued_by(ca)
        bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert bc.ca is True
        assert bc.path_length == 0
        assert ca.not_valid_after_utc == NOW + timedelta(days=3650)
        assert ca.not_valid_before_utc < NOW

    def test_serving_cert_chains_to_the_ca_and_is_server_auth_only(self) -> None:
        """The serving cert is signed by the CA, names it as issuer, EKU serverAuth."""
        ca = certs.generate_ca("test-ca", now=NOW)
        leaf = _cert(
            certs.generate_serving_cert(
                ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"], now=NOW
            ).cert_pem
        )
        ca_cert = _cert(ca.cert_pem)
        leaf.verify_directly_issued_by(ca_cert)
        assert leaf.issuer == ca_cert.subject
        assert _eku(leaf) == [ExtendedKeyUsageOID.SERVER_AUTH]
        bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert bc.ca is False

    def test_leaf_does_not_verify_against_another_ca(self) -> None:
        """A certificate signed by one CA fails the signature check of another."""
        ca, other = (certs.generate_ca(n, now=NOW) for n in ("a", "b"))
        leaf = _cert(certs.generate_client_cert(ca, common_name="x", now=NOW).cert_pem)
        with pytest.raises((InvalidSignature, ValueError)):
            leaf.verify_directly_issued_by(_cert(other.cert_pem))

    def test_client_cert_subject_and_usage(self) -> None:
        """The client certificate carries the CN and O asked for and EKU clientAuth."""
        ca = certs.generate_ca("test-ca", now=NOW)
        leaf = _cert(
            certs.generate_client_cert(
                ca, common_name="kube-apiserver", organizations=["team"], now=NOW
            ).cert_pem
        )
        assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
            "kube-apiserver"
        )
        assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[
            0
        ].value == ("team")
        assert _eku(leaf) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        assert leaf.not_valid_after_utc == NOW + timedelta(days=365)

    def test_reusing_a_key_keeps_the_public_key(self) -> None:
        """Reissuing with key_pem keeps the key pair."""
        ca = certs.generate_ca("test-ca", now=NOW)
        first = certs.generate_client_cert(ca, common_name="x", now=NOW)
        second = certs.generate_client_cert(
            ca, common_name="x", now=NOW, key_pem=first.key_pem
        )
        assert second.key_pem == first.key_pem
        assert _cert(second.cert_pem).public_key() == _cert(first.cert_pem).public_key()
        assert second.cert_pem != first.cert_pem

    @pytest.mark.parametrize(
        ("dns", "ips", "message"),
        [
            ([], [], "at least one"),
            (["localhost"], ["not-an-ip"], "bad IP address"),
        ],
    )
    def test_bad_serving_names_are_refused(
        self, dns: list[str], ips: list[str], message: str
    ) -> None:
        """No SANs, or an IP that does not parse, is a KubeconfigError."""
        ca = certs.generate_ca("test-ca", now=NOW)
        with pytest.raises(KubeconfigError, match=message):
            certs.generate_serving_cert(ca, dns_names=dns, ip_addresses=ips, now=NOW)

    def test_repr_hides_the_key(self) -> None:
        """A KeyPair's repr shows the certificate, never the private key."""
        pair = certs.generate_ca("test-ca", now=NOW)
        assert b"PRIVATE KEY" in pair.key_pem
        assert "PRIVATE KEY" not in repr(pair)

    def test_parse_ca_bundle_counts_and_refuses(self) -> None:
        """A bundle of two certificates counts two; text that is not PEM is refused."""
        a, b = (certs.generate_ca(n, now=NOW).cert_pem for n in ("a", "b"))
        assert certs.parse_ca_bundle(a + b) == 2
        with pytest.raises(KubeconfigError):
            certs.parse_ca_bundle(b"hello")


class TestChecks:
    """The pure checks write_pki uses before it keeps a file."""

    def test_check_key_refuses_what_is_not_an_ecdsa_key(self) -> None:
        """A key passes; a certificate or text given as a key is refused."""
        pair = certs.generate_ca("test-ca", now=NOW)
        certs.check_key(pair.key_pem)
        for bad in (pair.cert_pem, b"hello"):
            with pytest.raises(KubeconfigError, match="not a PEM private key"):
                certs.check_key(bad)

    def test_check_pair_refuses_a_foreign_key(self) -> None:
        """A certificate with another CA's key does not match."""
        a, b = (certs.generate_ca(n, now=NOW) for n in ("a", "b"))
        certs.check_pair(a)
        with pytest.raises(KubeconfigError, match="does not match its key"):
            certs.check_pair(certs.KeyPair(a.cert_pem, b.key_pem))

    def test_leaf_still_good(self) -> None:
        """Kept only when signed by the CA, with its key, not expiring, same SANs."""
        ca, other = (certs.generate_ca(n, now=NOW) for n in ("a", "b"))
        leaf = certs.generate_serving_cert(
            ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"], now=NOW
        )
        sans = frozenset({"localhost", "127.0.0.1"})
        month = timedelta(days=30)

        def good(pair: certs.KeyPair, signer: certs.KeyPair, **kw: object) -> bool:
            args: dict[str, object] = {"now": NOW, "renew_before": month, "sans": sans}
            args.update(kw)
            return certs.leaf_still_good(pair, signer, **args)  # type: ignore[arg-type]

        assert good(leaf, ca)
        assert good(leaf, ca, sans=None)
        assert not good(leaf, other)
        assert not good(certs.KeyPair(leaf.cert_pem, other.key_pem), ca)
        assert not good(leaf, ca, sans=frozenset({"localhost"}))
        assert not good(leaf, ca, now=NOW + timedelta(days=340))
