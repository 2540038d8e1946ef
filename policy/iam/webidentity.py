"""Web-identity (IRSA) tokens: read a projected service-account JWT into condition keys.

``sts:AssumeRoleWithWebIdentity`` is decided by the role's trust policy alone
(docs/policy-semantics.md). The trust policy tests ``<issuer>:sub`` and
``<issuer>:aud``,
where ``<issuer>`` is the token's ``iss`` without ``https://``
(``oidc.eks.<region>.amazonaws.com/id/<ID>``), and names the OIDC provider
``arn:aws:iam::<acct>:oidc-provider/<issuer>`` as the ``Federated`` principal.

The signature is checked against a JWKS when one is given (PyJWT); otherwise
the token is decoded without verification and the result says so.
``parse_web_identity_token`` is pure (``now`` is an argument);
``load_web_identity_token`` reads the files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jwt
from jwt.types import Options

from policy.errors import InvalidPolicyError

__all__ = [
    "WebIdentityToken",
    "load_web_identity_token",
    "parse_web_identity_token",
    "web_identity_context",
]

# Clock skew accepted on exp/nbf, in seconds (PyJWT's leeway; STS allows a few minutes).
LEEWAY_S = 300
# Asymmetric algorithms a Kubernetes service-account issuer uses.
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256")


@dataclass(frozen=True, slots=True)
class WebIdentityToken:
    """The claims of a web-identity token that IAM turns into condition keys.

    Attributes:
        issuer: ``iss`` as in the token (``https://...``).
        subject: ``sub`` (``system:serviceaccount:<ns>:<sa>`` for IRSA).
        audiences: ``aud`` values.
        amr: ``amr`` values (Cognito), possibly empty.
        verified: True when the signature was checked against a JWKS.
        note: How the token was read (for traces).
    """

    issuer: str
    subject: str
    audiences: tuple[str, ...]
    amr: tuple[str, ...]
    verified: bool
    note: str

    @property
    def issuer_key(self) -> str:
        """The issuer as a condition-key prefix: no scheme, no trailing slash."""
        host = self.issuer.split("://", 1)[-1]
        return host.rstrip("/")

    def provider_arn(self, account: str, partition: str = "aws") -> str:
        """The OIDC provider ARN that trust policies name as ``Federated``."""
        return f"arn:{partition}:iam::{account}:oidc-provider/{self.issuer_key}"


def _bad(message: str) -> InvalidPolicyError:
    return InvalidPolicyError(message, policy="web-identity-token")


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return ()


def parse_web_identity_token(
    token: str, *, jwks: Mapping[str, object] | None = None, now: datetime | None = None
) -> WebIdentityToken:
    """Decode a web-identity JWT, verifying its signature when a JWKS is given.

    Args:
        token: The compact JWT.
        jwks: A JSON Web Key Set (``{"keys": [...]}``); None decodes without
            verification.
        now: The time for ``exp``/``nbf`` checks (only with a JWKS); None skips them.

    Returns:
        The claims.

    Raises:
        InvalidPolicyError: The token does not decode, its signature or times do
            not check out, or ``iss``/``sub`` are missing.
    """
    options: Options = {
        "verify_signature": False,
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": False,
    }
    try:
        if jwks is None:
            claims = jwt.decode(token, options=options)
            verified, note = False, "signature NOT verified (no JWKS given)"
        else:
            key = _signing_key(token, jwks)
            claims = jwt.decode(
                token,
                key=key,
                algorithms=list(ALGORITHMS),
                options={**options, "verify_signature": True},
            )
            verified, note = True, "signature verified against the JWKS"
    except jwt.PyJWTError as exc:
        raise _bad(f"cannot read token: {exc}") from exc
    if jwks is not None and now is not None:
        _check_times(claims, now)
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not isinstance(subject, str):
        raise _bad("token has no iss or sub")
    return WebIdentityToken(
        issuer=issuer,
        subject=subject,
        audiences=_strings(claims.get("aud")),
        amr=_strings(claims.get("amr")),
        verified=verified,
        note=note,
    )


def _signing_key(token: str, jwks: Mapping[str, object]) -> jwt.PyJWK:
    try:
        keyset = jwt.PyJWKSet.from_dict(dict(jwks))
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise _bad(f"bad JWKS or token header: {exc}") from exc
    keys = [k for k in keyset.keys if kid is None or k.key_id == kid]
    if not keys:
        raise _bad(f"no key with kid {kid!r} in the JWKS")
    return keys[0]


def _check_times(claims: Mapping[str, object], now: datetime) -> None:
    ts = now.timestamp()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if isinstance(exp, int | float) and ts > exp + LEEWAY_S:
        raise _bad("token has expired")
    if isinstance(nbf, int | float) and ts < nbf - LEEWAY_S:
        raise _bad("token is not valid yet")


def web_identity_context(token: WebIdentityToken) -> dict[str, object]:
    """The condition keys IAM derives from a web-identity token.

    Args:
        token: The decoded token.

    Returns:
        ``<issuer>:sub``, ``<issuer>:aud`` (one value, or a list when several)
        and, when present, ``<issuer>:amr`` (multi-valued).
    """
    prefix = token.issuer_key
    out: dict[str, object] = {f"{prefix}:sub": token.subject}
    if token.audiences:
        aud = token.audiences
        out[f"{prefix}:aud"] = aud[0] if len(aud) == 1 else list(aud)
    if token.amr:
        out[f"{prefix}:amr"] = list(token.amr)
    return out


def load_web_identity_token(
    token_path: str | Path,
    *,
    jwks_path: str | Path | None = None,
    now: datetime | None = None,
) -> WebIdentityToken:
    """Read a projected service-account token (and a JWKS file) and decode it.

    Args:
        token_path: The token file.
        jwks_path: A JWKS JSON file, or None to decode without verification.
        now: The time for expiry checks.

    Returns:
        The claims.

    Raises:
        InvalidPolicyError: A file cannot be read or the token does not check out.
    """
    try:
        token = Path(token_path).read_text(encoding="utf-8").strip()
        jwks = None
        if jwks_path is not None:
            loaded = json.loads(Path(jwks_path).read_text(encoding="utf-8"))
            if not isinstance(loaded, Mapping):
                raise _bad("the JWKS file must hold a JSON object")
            jwks = loaded
    except (OSError, ValueError) as exc:
        raise _bad(f"cannot read: {exc}") from exc
    return parse_web_identity_token(token, jwks=jwks, now=now)
