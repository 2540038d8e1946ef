"""Errors of the webhook.

The webhook reuses the core tree (``authenticator.errors``)::

    KubeIAMError
    ├── ConfigError                   a bad server config or mapping source
    └── TokenError ...                see authenticator/errors.py
"""

from __future__ import annotations

from authenticator.errors import ConfigError, KubeIAMError

__all__ = ["ConfigError", "KubeIAMError"]
