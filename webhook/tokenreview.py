"""TokenReview bodies: parse a request, build the answers (pure).

The wire protocol is the Kubernetes docs' (Webhook Token Authentication) and
the answers are docs/operations.md's:
the request's ``apiVersion`` is echoed with ``kind: TokenReview``; a plain
``authenticated: false`` is cached by the API server, one that carries
``status.error`` is not. ``status.audiences`` is never returned (the
Kubernetes docs, Webhook Token Authentication, on audiences:
STS tokens have no Kubernetes audience, and any value we invented would empty
the API server's audience intersection).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from webhook.errors import InvalidReviewError

# The two TokenReview versions kube-apiserver can send
# (--authentication-token-webhook-version; Kubernetes webhook authn docs).
API_VERSIONS = frozenset({"authentication.k8s.io/v1", "authentication.k8s.io/v1beta1"})

# The kind both versions carry (Kubernetes webhook authn docs).
KIND = "TokenReview"

# docs/operations.md: a request body over 64 KiB is refused with 413.
MAX_BODY_BYTES = 64 * 1024

__all__ = [
    "API_VERSIONS",
    "KIND",
    "MAX_BODY_BYTES",
    "TokenReviewRequest",
    "UserInfo",
    "build_allow",
    "build_deny",
    "build_status",
    "parse_json_body",
    "parse_review",
]


class UserInfo(Protocol):
    """What an authenticated answer needs (``authenticator.mapping.KubernetesUser``)."""

    @property
    def username(self) -> str:
        """The Kubernetes user name (never empty)."""

    @property
    def uid(self) -> str:
        """``aws-iam-authenticator:<accountId>:<userId>``."""

    @property
    def groups(self) -> Sequence[str]:
        """The mapped groups (without ``system:authenticated``)."""

    @property
    def extra(self) -> Mapping[str, Sequence[str]]:
        """The ``user.extra`` map (each value a list of strings)."""


@dataclass(frozen=True, slots=True)
class TokenReviewRequest:
    """The parts of a TokenReview request kubeiam uses.

    Attributes:
        api_version: ``authentication.k8s.io/v1`` or ``v1beta1``; the answer echoes it.
        token: ``spec.token`` (may be empty: the verifier then rejects it).
    """

    api_version: str
    token: str

    def __repr__(self) -> str:
        # Never let a token reach a log line through a repr.
        return f"TokenReviewRequest(api_version={self.api_version!r}, token=<redacted>)"


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """``json`` object hook: refuse a key given twice (one parse, one meaning)."""
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidReviewError("duplicate_key", "a JSON object repeats a key")
        out[key] = value
    return out


def parse_json_body(body: bytes) -> object:
    """Decode a request body as strict JSON (shared by /authenticate and /authorize).

    Args:
        body: The raw request body.

    Returns:
        The decoded document.

    Raises:
        InvalidReviewError: The body is empty, not UTF-8 JSON (also: nested
            past Python's recursion limit), or an object repeats a key.
    """
    if not body:
        raise InvalidReviewError("empty_body", "expected a request body")
    try:
        return json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # json.JSONDecodeError is a ValueError; the message never quotes the input.
        raise InvalidReviewError("not_json", "the body is not UTF-8 JSON") from exc


def parse_review(body: bytes) -> TokenReviewRequest:
    """Parse a request body into the TokenReview parts kubeiam uses.

    ``metadata``, ``spec.audiences``, ``status`` and unknown fields are ignored
    (Kubernetes webhook authn docs: the API server may send empty ones).

    Args:
        body: The raw request body (at most :data:`MAX_BODY_BYTES`, checked by
            the shell).

    Returns:
        The review's version and token.

    Raises:
        InvalidReviewError: The body is not a JSON TokenReview in a supported version.
    """
    doc = parse_json_body(body)
    if not isinstance(doc, dict):
        raise InvalidReviewError("not_object", "the body is not a JSON object")
    kind = doc.get("kind")
    if kind != KIND:
        # Input values are never echoed: a log line must not carry what a client sent.
        raise InvalidReviewError("wrong_kind", f"expected kind {KIND}")
    version = doc.get("apiVersion")
    if not isinstance(version, str) or version not in API_VERSIONS:
        raise InvalidReviewError(
            "unsupported_version",
            f"expected apiVersion {' or '.join(sorted(API_VERSIONS))}",
        )
    spec = doc.get("spec", {})
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise InvalidReviewError("bad_spec", "spec is not an object")
    token = spec.get("token", "")
    if token is None:
        token = ""
    if not isinstance(token, str):
        raise InvalidReviewError("bad_token_field", "spec.token is not a string")
    return TokenReviewRequest(api_version=version, token=token)


def _review(api_version: str, status: dict[str, object]) -> dict[str, object]:
    return {"apiVersion": api_version, "kind": KIND, "status": status}


def build_allow(user: UserInfo, *, api_version: str) -> dict[str, object]:
    """Build the answer for a valid, mapped token.

    Args:
        user: The mapped Kubernetes user.
        api_version: The request's apiVersion (echoed).

    Returns:
        A TokenReview with ``status.authenticated: true`` and ``status.user``.
    """
    return _review(
        api_version,
        {
            "authenticated": True,
            "user": {
                "username": user.username,
                "uid": user.uid,
                "groups": list(user.groups),
                "extra": {key: list(values) for key, values in user.extra.items()},
            },
        },
    )


def build_deny(*, api_version: str, error: str | None = None) -> dict[str, object]:
    """Build an ``authenticated: false`` answer.

    Args:
        api_version: The request's apiVersion (echoed).
        error: ``None`` for a plain rejection the API server caches (bad token);
            a message for one it must not cache (unmapped, STS unavailable).

    Returns:
        A TokenReview with ``status.authenticated: false`` and maybe ``status.error``.
    """
    status: dict[str, object] = {"authenticated": False, "user": {}}
    if error:
        status["error"] = error
    return _review(api_version, status)


def build_status(code: int, reason: str, message: str) -> dict[str, object]:
    """Build a Kubernetes ``Status`` body for a 4xx answer (client-go decodes it).

    Args:
        code: The HTTP status code.
        reason: The Kubernetes ``StatusReason`` (``BadRequest``...).
        message: A short explanation; never contains the token.

    Returns:
        A ``v1`` ``Status`` object with ``status: Failure``.
    """
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
