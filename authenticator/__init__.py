"""The identity core: tokens, presigning, verification, STS and mapping.

Import submodules directly (``from authenticator.verify import verify_token``);
this package imports nothing heavy so that ``kubeiam token`` stays fast.
"""

from __future__ import annotations

from authenticator.errors import (
    ConfigError,
    InvalidARNError,
    KubeIAMError,
    MalformedTokenError,
    STSRejectedError,
    STSThrottledError,
    STSUnavailableError,
    TokenError,
)

__all__ = [
    "ConfigError",
    "InvalidARNError",
    "KubeIAMError",
    "MalformedTokenError",
    "STSRejectedError",
    "STSThrottledError",
    "STSUnavailableError",
    "TokenError",
]
