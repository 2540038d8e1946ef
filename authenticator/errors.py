"""Errors of the identity core.

The tree (every kubeiam error derives from :class:`KubeIAMError`)::

    KubeIAMError                      authenticator/errors.py
    ├── InvalidARNError(ValueError)
    ├── ConfigError                   bad or missing settings; raised only in shells
    ├── TokenError
    │   ├── MalformedTokenError       the caller's fault: failed a local check
    │   ├── STSRejectedError          STS refused the signature (4xx, 3xx, bad body)
    │   ├── STSUnavailableError       network error, timeout, 5xx
    │   └── STSThrottledError
    ├── PolicyError                   policy/errors.py
    │   └── InvalidPolicyError
    └── KubeconfigError               kubeconfig/errors.py

Messages never contain a token, a signature or credentials.
"""

from __future__ import annotations


class KubeIAMError(Exception):
    """Base of every error kubeiam raises on purpose."""


class InvalidARNError(KubeIAMError, ValueError):
    """An ARN that does not parse or is not an identity ARN."""


class ConfigError(KubeIAMError):
    """Bad or missing settings (raised only in shells)."""


class TokenError(KubeIAMError):
    """A token could not be turned into an identity.

    Args:
        reason: A stable, machine-readable reason code (snake_case).
        message: A human explanation that never contains the token.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return self.message


class MalformedTokenError(TokenError):
    """The token failed a local (offline) check."""


class STSRejectedError(TokenError):
    """STS refused the presigned request, redirected, or answered nonsense."""


class STSUnavailableError(TokenError):
    """STS could not be reached, timed out, or answered 5xx."""


class STSThrottledError(TokenError):
    """STS throttled the request."""
