"""Errors of the policy engine.

The tree::

    KubeIAMError                      authenticator/errors.py
    └── PolicyError                   policy/errors.py
        └── InvalidPolicyError        a policy or RBAC document that does not parse
"""

from __future__ import annotations

from authenticator.errors import KubeIAMError


class PolicyError(KubeIAMError):
    """Base of the policy engine's errors."""


class InvalidPolicyError(PolicyError):
    """A policy or RBAC document that does not parse or validate.

    Args:
        message: What is wrong.
        pointer: A JSON-pointer-like location, e.g. ``/Statement/0/Condition``.
        policy: The policy's name, when known.
    """

    def __init__(self, message: str, *, pointer: str = "", policy: str = "") -> None:
        where = f"{policy}{pointer}" if (policy or pointer) else ""
        super().__init__(f"{where}: {message}" if where else message)
        self.pointer = pointer
        self.policy = policy
        self.detail = message
