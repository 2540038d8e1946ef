"""Errors of the webhook.

The webhook reuses the core tree (``authenticator.errors``)::

    KubeIAMError
    ├── ConfigError                   a bad server config or mapping source
    ├── TokenError ...                see authenticator/errors.py
    └── InvalidReviewError            a body that is not a TokenReview (HTTP 400)
"""

from __future__ import annotations

from authenticator.errors import ConfigError, KubeIAMError

__all__ = ["ConfigError", "InvalidReviewError", "KubeIAMError"]


class InvalidReviewError(KubeIAMError):
    """A request body that is not a TokenReview kubeiam can answer.

    Args:
        reason: A stable, machine-readable reason code (snake_case).
        message: A human explanation; never contains the token.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return self.message
