"""kubeconfig: user kubeconfig entries, the webhook's certificates and its kubeconfig.

Modules: ``build`` (pure: entries, merge, validation), ``render`` (YAML and
atomic private writes), ``certs`` (pure certificate making; the only door to
``cryptography``), ``pki`` (the files of ``kubeiam init``: written, kept,
trusted), ``cli`` (``kubeiam kubeconfig`` and ``kubeiam init``). The
submodules are not imported here, so ``import kubeconfig`` stays cheap.
"""

from __future__ import annotations

from kubeconfig.errors import KubeconfigError

__all__: list[str] = ["KubeconfigError", "build", "certs", "pki", "render"]
