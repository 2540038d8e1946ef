"""policy package: IAM policy evaluation (and, alongside, RBAC and tier reports).

The IAM engine's public names are importable from here; they load lazily so
that importing ``policy`` (e.g. for ``policy.errors``) does not load the engine.
See ``policy.iam`` for the API.
"""

from __future__ import annotations

import importlib

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "CompiledPolicy": "policy.model",
    "Decision": "policy.iam",
    "EvaluationResult": "policy.iam",
    "InvalidPolicyError": "policy.errors",
    "Level": "policy.iam",
    "PolicyError": "policy.errors",
    "PolicyKind": "policy.model",
    "PolicySet": "policy.iam",
    "Request": "policy.iam",
    "Trace": "policy.iam",
    "compile_policy": "policy.model",
    "evaluate": "policy.iam",
    "load_policy_json": "policy.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """Import a public name on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'policy' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
