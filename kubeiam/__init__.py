"""kubeiam: AWS IAM identities for Kubernetes (the command's package)."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
