"""IRSA web-identity tokens: PyJWT decoding, JWKS checks, derived condition keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from policy.errors import InvalidPolicyError
from policy.iam import cli as iam_cli
from policy.iam.evaluator import evaluate
from policy.iam.model import compile_policy
from policy.iam.request import Decision, PolicySet, Request
from policy.iam.webidentity import (
    load_web_identity_token,
    parse_web_identity_token,
    web_identity_context,
)

A = "111122223333"
ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
HOST = ISSUER.removeprefix("https://")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def keys() -> tuple[Any, dict[str, Any]]:
    """An RSA signing key and the JWKS that publishes its public half."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": "k1", "alg": "RS256", "use": "sig"})
    return private, {"keys": [jwk]}


def _token(private: Any, **claims: Any) -> str:
    body = {
        "iss": ISSUER,
        "sub": "system:serviceaccount:prod:api",
        "aud": ["sts.amazonaws.com"],
        "exp": int(NOW.timestamp()) + 3600,
        "iat": int(NOW.timestamp()),
        **claims,
    }
    return jwt.encode(body, private, algorithm="RS256", headers={"kid": "k1"})


class TestDecode:
    """Token decoding and verification."""

    def test_verified_with_jwks(self, keys: tuple[Any, dict[str, Any]]) -> None:
        """A token signed by a JWKS key verifies and yields its claims."""
        private, jwks = keys
        tok = parse_web_identity_token(_token(private), jwks=jwks, now=NOW)
        assert tok.verified and "verified" in tok.note
        assert (tok.subject, tok.audiences, tok.issuer_key) == (
            "system:serviceaccount:prod:api",
            ("sts.amazonaws.com",),
            HOST,
        )
        assert tok.provider_arn(A) == f"arn:aws:iam::{A}:oidc-provider/{HOST}"

    def test_unverified_without_jwks(self, keys: tuple[Any, dict[str, Any]]) -> None:
        """Without a JWKS the token is decoded and marked unverified."""
        tok = parse_web_identity_token(_token(keys[0]))
        assert not tok.verified and "NOT verified" in tok.note

    def test_wrong_key_rejected(self, keys: tuple[Any, dict[str, Any]]) -> None:
        """A token signed by another key fails verification."""
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with pytest.raises(InvalidPolicyError, match="cannot read token"):
            parse_web_identity_token(_token(other), jwks=keys[1], now=NOW)

    def test_expired_rejected(self, keys: tuple[Any, dict[str, Any]]) -> None:
        """An expired token is rejected when verifying."""
        with pytest.raises(InvalidPolicyError, match="expired"):
            parse_web_identity_token(
                _token(keys[0], exp=int(NOW.timestamp()) - 3600), jwks=keys[1], now=NOW
            )

    def test_unknown_kid_and_garbage(self, keys: tuple[Any, dict[str, Any]]) -> None:
        """Unknown key ids and non-JWT text are InvalidPolicyError."""
        token = jwt.encode(
            {"iss": ISSUER, "sub": "x"},
            keys[0],
            algorithm="RS256",
            headers={"kid": "other"},
        )
        with pytest.raises(InvalidPolicyError, match="kid"):
            parse_web_identity_token(token, jwks=keys[1])
        with pytest.raises(InvalidPolicyError):
            parse_web_identity_token("not-a-jwt")

    def test_context_keys(self, keys: tuple[Any, dict[str, Any]]) -> None:
        """The token gives <issuer>:sub, :aud and :amr keys without the scheme."""
        tok = parse_web_identity_token(
            _token(keys[0], aud="sts.amazonaws.com", amr=["authenticated"])
        )
        assert web_identity_context(tok) == {
            f"{HOST}:sub": "system:serviceaccount:prod:api",
            f"{HOST}:aud": "sts.amazonaws.com",
            f"{HOST}:amr": ["authenticated"],
        }

    def test_load_files(self, keys: tuple[Any, dict[str, Any]], tmp_path: Path) -> None:
        """load_web_identity_token reads the token and JWKS files."""
        (tmp_path / "t").write_text(_token(keys[0]) + "\n")
        (tmp_path / "j").write_text(json.dumps(keys[1]))
        assert load_web_identity_token(
            tmp_path / "t", jwks_path=tmp_path / "j", now=NOW
        ).verified
        with pytest.raises(InvalidPolicyError):
            load_web_identity_token(tmp_path / "missing")


TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Federated": f"arn:aws:iam::{A}:oidc-provider/{HOST}"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{HOST}:sub": "system:serviceaccount:prod:api",
                    f"{HOST}:aud": "sts.amazonaws.com",
                }
            },
        }
    ],
}


class TestTrust:
    """The token decides AssumeRoleWithWebIdentity through the trust policy."""

    def test_engine(self, keys: tuple[Any, dict[str, Any]]) -> None:
        """The right service account may assume the role; another may not."""
        trust = compile_policy(TRUST, name="irsa-trust", kind="trust")
        for sub, expected in [
            ("system:serviceaccount:prod:api", Decision.ALLOWED),
            ("system:serviceaccount:dev:api", Decision.IMPLICITLY_DENIED),
        ]:
            tok = parse_web_identity_token(
                _token(keys[0], sub=sub), jwks=keys[1], now=NOW
            )
            req = Request(
                tok.provider_arn(A),
                "sts:AssumeRoleWithWebIdentity",
                f"arn:aws:iam::{A}:role/irsa",
                context=web_identity_context(tok),
            )
            assert evaluate(PolicySet(resource=trust), req).decision is expected

    def test_cli_flags(
        self,
        keys: tuple[Any, dict[str, Any]],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """`simulate --web-identity-token --jwks` adds the token keys to each case."""
        (tmp_path / "t").write_text(_token(keys[0], exp=4102444800))
        (tmp_path / "j").write_text(json.dumps(keys[1]))
        case = {
            "id": "irsa",
            "resourcePolicy": TRUST,
            "request": {
                "principal": f"arn:aws:iam::{A}:oidc-provider/{HOST}",
                "action": "sts:AssumeRoleWithWebIdentity",
                "resource": f"arn:aws:iam::{A}:role/irsa",
            },
        }
        (tmp_path / "c.json").write_text(json.dumps(case))
        code = iam_cli.main(
            [
                "simulate",
                str(tmp_path / "c.json"),
                "--web-identity-token",
                str(tmp_path / "t"),
                "--jwks",
                str(tmp_path / "j"),
            ]
        )
        out, err = capsys.readouterr()
        assert code == 0
        assert json.loads(out)["decision"] == "Allowed"
        assert "verified" in err

    def test_case_field(
        self,
        keys: tuple[Any, dict[str, Any]],
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
    ) -> None:
        """A case's webIdentityToken supplies the keys (decoded, not verified)."""
        case = {
            "id": "irsa",
            "resourcePolicy": TRUST,
            "webIdentityToken": _token(keys[0], sub="system:serviceaccount:x:y"),
            "request": {
                "principal": f"arn:aws:iam::{A}:oidc-provider/{HOST}",
                "action": "sts:AssumeRoleWithWebIdentity",
                "resource": f"arn:aws:iam::{A}:role/irsa",
            },
        }
        (tmp_path / "c.json").write_text(json.dumps(case))
        assert iam_cli.main(["simulate", str(tmp_path / "c.json")]) == 0
        assert json.loads(capsys.readouterr().out)["decision"] == "ImplicitlyDenied"
