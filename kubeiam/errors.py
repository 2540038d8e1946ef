"""Errors of the ``kubeiam`` command package.

The command raises nothing of its own: each subcommand's errors come from the
package that runs it, all rooted in :class:`authenticator.errors.KubeIAMError`::

    KubeIAMError                      authenticator/errors.py
    ├── InvalidARNError, ConfigError, TokenError ...
    ├── PolicyError                   policy/errors.py
    └── KubeconfigError               kubeconfig/errors.py
"""

from __future__ import annotations

from authenticator.errors import ConfigError, KubeIAMError

__all__ = ["ConfigError", "KubeIAMError"]
