"""authenticator.wire: each wire constant has one home, and every side uses it."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from authenticator import wire
from authenticator.emulator_protocol import STSFaultError, _check_window
from authenticator.exec_credential import build_expiration
from authenticator.hosts import build_allowed_hosts
from authenticator.presign import StaticCredentials, presign_get_caller_identity
from authenticator.token import decode_token
from authenticator.verify import verify_token
from kubeconfig.build import EXEC_API_VERSION

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("authenticator", "webhook", "kubeconfig", "kubeiam", "policy", "bench")
NOW = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
ONE_SECOND = timedelta(seconds=1)
CREDS = StaticCredentials("AKIAIOSFODNN7EXAMPLE", "s" * 40)


def _wire_strings() -> dict[str, str]:
    return {
        value: name
        for name, value in vars(wire).items()
        if name.isupper() and name != "TYPE_CHECKING" and isinstance(value, str)
    }


class TestOneHome:
    """No product module spells a wire constant itself."""

    def test_no_copies_of_wire_strings(self) -> None:
        """The literal of a wire constant appears only in authenticator/wire.py."""
        strings = _wire_strings()
        copies = []
        for package in PRODUCT:
            for path in sorted((ROOT / package).rglob("*.py")):
                if path == ROOT / "authenticator" / "wire.py":
                    continue
                for node in ast.walk(ast.parse(path.read_text(), str(path))):
                    if isinstance(node, ast.Constant) and node.value in strings:
                        where = f"{path.relative_to(ROOT)}:{node.lineno}"
                        copies.append(f"{where} {strings[node.value]}")
        assert copies == []

    def test_no_lifetime_copies(self) -> None:
        """No product module builds a 14- or 15-minute timedelta of its own."""
        copies = []
        for package in PRODUCT:
            for path in sorted((ROOT / package).rglob("*.py")):
                if path == ROOT / "authenticator" / "wire.py":
                    continue
                for node in ast.walk(ast.parse(path.read_text(), str(path))):
                    if (
                        isinstance(node, ast.Call)
                        and isinstance(node.func, ast.Name)
                        and node.func.id == "timedelta"
                    ):
                        minutes = [k.value for k in node.keywords if k.arg == "minutes"]
                        if any(
                            isinstance(m, ast.Constant) and m.value in (14, 15)
                            for m in minutes
                        ):
                            copies.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        assert copies == []

    def test_two_lifetimes_are_distinct(self) -> None:
        """STS honours 15 minutes; clients advertise 14 (a one-minute cushion)."""
        assert wire.STS_URL_LIFETIME.total_seconds() == 15 * 60
        assert wire.ADVERTISED_TOKEN_LIFETIME.total_seconds() == 14 * 60
        assert 0 <= wire.PRESIGN_EXPIRES_S <= wire.MAX_PRESIGN_EXPIRES_S
        assert not hasattr(wire, "TOKEN_LIFETIME")


class TestEverySideAgrees:
    """presign, verify, the emulator and kubeconfig speak the same constants."""

    def test_minted_token_carries_the_wire_values(self) -> None:
        """The client's token has the prefix, Action, Version, headers and expiry."""
        minted = presign_get_caller_identity(
            credentials=CREDS, region="us-west-2", cluster_id="c", now=NOW
        )
        assert minted.token.startswith(wire.TOKEN_PREFIX)
        query = parse_qs(urlsplit(decode_token(minted.token)).query)
        assert query["Action"] == [wire.STS_ACTION]
        assert query["Version"] == [wire.STS_API_VERSION]
        assert query["X-Amz-SignedHeaders"] == [wire.SIGNED_HEADERS]
        assert query["X-Amz-Expires"] == [str(wire.PRESIGN_EXPIRES_S)]
        assert minted.expires_at == NOW + wire.ADVERTISED_TOKEN_LIFETIME
        assert build_expiration(NOW, None) == NOW + wire.ADVERTISED_TOKEN_LIFETIME

    def test_verifier_and_emulator_use_the_sts_lifetime(self) -> None:
        """The verifier's expiry and the emulator's window are STS_URL_LIFETIME."""
        minted = presign_get_caller_identity(
            credentials=CREDS, region="us-west-2", cluster_id="c", now=NOW
        )
        allowed = build_allowed_hosts("aws", region="us-west-2")
        call = verify_token(
            minted.token, cluster_id="c", now=NOW, allowed_hosts=allowed
        )
        assert call.expires_at == NOW + wire.STS_URL_LIFETIME
        stamp = NOW.strftime("%Y%m%dT%H%M%SZ")
        _check_window(stamp, NOW, NOW + wire.STS_URL_LIFETIME)
        _check_window(stamp, NOW, NOW - wire.STS_URL_LIFETIME)
        for beyond in (
            wire.STS_URL_LIFETIME + ONE_SECOND,
            -wire.STS_URL_LIFETIME - ONE_SECOND,
        ):
            with pytest.raises(STSFaultError, match="Signature"):
                _check_window(stamp, NOW, NOW + beyond)

    def test_kubeconfig_writes_a_version_the_plugin_speaks(self) -> None:
        """The exec apiVersion kubeconfig writes is one the plugin answers in."""
        assert EXEC_API_VERSION in (wire.EXEC_API_V1, wire.EXEC_API_V1BETA1)
