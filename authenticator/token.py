"""The token format: ``k8s-aws-v1.`` + unpadded base64url of a presigned URL."""

from __future__ import annotations

import base64
import re

from authenticator.errors import MalformedTokenError
from authenticator.wire import MAX_TOKEN_BYTES, TOKEN_PREFIX

__all__ = [
    "MAX_TOKEN_BYTES",
    "TOKEN_PREFIX",
    "decode_token",
    "encode_token",
    "encode_token_body",
]
_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*$")


def encode_token(url: str) -> str:
    """Return the token for a presigned URL.

    Args:
        url: The presigned GetCallerIdentity URL.
    """
    raw = base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii")
    return TOKEN_PREFIX + raw.rstrip("=")


def decode_token(token: str) -> str:
    """Run the size, prefix and strict base64url checks and return the URL text.

    Args:
        token: The bearer token.

    Returns:
        The decoded URL (not yet validated).

    Raises:
        MalformedTokenError: ``token_too_large``, ``bad_prefix``, ``bad_base64`` or
            ``bad_encoding``.
    """
    if len(token.encode("utf-8", "surrogatepass")) > MAX_TOKEN_BYTES:
        raise MalformedTokenError(
            "token_too_large", f"token is larger than {MAX_TOKEN_BYTES} bytes"
        )
    if not token.startswith(TOKEN_PREFIX):
        raise MalformedTokenError(
            "bad_prefix", f"token is missing the expected {TOKEN_PREFIX!r} prefix"
        )
    body = token[len(TOKEN_PREFIX) :]
    # Python's decoders are lenient (they drop stray characters); check the alphabet
    # first. A length of 1 mod 4 cannot come from any byte string.
    if not _B64URL_RE.match(body) or len(body) % 4 == 1:
        raise MalformedTokenError(
            "bad_base64", "token body is not unpadded base64url (A-Z a-z 0-9 - _)"
        )
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError as exc:
        raise MalformedTokenError(
            "bad_base64", "token body is not valid base64url"
        ) from exc
    # Non-canonical trailing bits would let two token strings map to one URL.
    if encode_token_body(raw) != body:
        raise MalformedTokenError(
            "bad_base64", "token body has non-canonical base64 padding bits"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedTokenError(
            "bad_encoding", "decoded token is not UTF-8 text"
        ) from exc


def encode_token_body(raw: bytes) -> str:
    """Return the unpadded base64url text of ``raw`` (no prefix)."""
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
