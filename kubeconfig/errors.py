"""Errors of the kubeconfig package.

The tree::

    KubeIAMError                      authenticator/errors.py
    └── KubeconfigError               kubeconfig/errors.py
"""

from __future__ import annotations

from authenticator.errors import KubeIAMError


class KubeconfigError(KubeIAMError):
    """A kubeconfig or certificate file that cannot be read or written safely."""
